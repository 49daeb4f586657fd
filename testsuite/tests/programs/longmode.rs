//! Long mode: entry from real mode through protected mode (PAE tables, EFER.LME, CR0.PG, far
//! jump to a 64-bit code segment) and the way back; 4- and 5-level paging with 2 MiB and
//! 1 GiB pages; NX, SMEP and SMAP faults; IST stacks; SYSCALL/SYSRET and SYSENTER/SYSEXIT;
//! canonical-address faults; compatibility mode; IRETQ to ring 3. The environment is in
//! `long_env.rs`.

use super::long_env::*;
use super::*;
use nestor_cpu::cpuid::NESTOR64;
use nestor_cpu::state::efer;

/// Compatibility-mode code that turns paging off (leaving IA-32e mode), clears EFER.LME and
/// jumps to the 16-bit code segment.
fn compat_exit_code() -> Vec<u8> {
    asm_at(32, COMPAT, |a| {
        a.mov(eax, 0x33u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        // Paging off leaves IA-32e mode; then LME can be cleared.
        a.mov(eax, cr0).unwrap();
        a.and(eax, 0x7fff_ffff).unwrap();
        a.mov(cr0, eax).unwrap();
        a.mov(ecx, 0xc000_0080u32).unwrap();
        a.rdmsr().unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.and(eax, !0x100).unwrap();
        a.wrmsr().unwrap();
        a.rdmsr().unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.jmp_far(sel::CODE16, CODE16 as u32).unwrap();
        Vec::new()
    })
    .0
}

/// 16-bit protected-mode code at `CODE16` that returns to real mode and reports 0x16.
fn real_mode_code() -> Vec<u8> {
    asm16(CODE16, |a, at| {
        let mut real = a.create_label();
        a.mov(ax, sel::DATA16 as u32).unwrap();
        a.mov(ds, ax).unwrap();
        a.mov(ss, ax).unwrap();
        a.mov(eax, cr0).unwrap();
        a.and(eax, !1i32).unwrap();
        a.mov(cr0, eax).unwrap();
        a.jmp_far(0, at[0]).unwrap();
        a.set_label(&mut real).unwrap();
        a.xor(ax, ax).unwrap();
        a.mov(ss, ax).unwrap();
        a.mov(eax, 0x16u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.hlt().unwrap();
        vec![real]
    })
    .0
}

#[test]
fn long_mode_entry_paging_and_exit_to_real_mode() {
    let mut k = Kernel::new();
    k.main();
    let mut data = k.a.create_label();
    let a = &mut k.a;
    report64(a, 0x64);
    a.mov(rax, 0x1234_5678_9abc_def0u64).unwrap();
    a.shr(rax, 32).unwrap();
    a.out(PORT as u32, eax).unwrap();
    // EFER shows LMA.
    a.mov(ecx, 0xc000_0080u32).unwrap();
    a.rdmsr().unwrap();
    a.out(PORT as u32, eax).unwrap();
    // 1 GiB page alias: physical 0x20000 is also at 0x4002_0000.
    a.mov(dword_ptr(DATA as u32), 0x600d_f00du32).unwrap();
    a.mov(rbx, 0x4000_0000 + DATA).unwrap();
    a.mov(eax, dword_ptr(rbx)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    // RIP-relative data.
    a.mov(eax, dword_ptr(data)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    // To compatibility mode: RETFQ to the 32-bit ring-0 code segment.
    a.push(i32::from(sel::CODE0)).unwrap();
    a.mov(rax, COMPAT).unwrap();
    a.push(rax).unwrap();
    a.add_instruction(Instruction::with(Code::Retfq)).unwrap();
    a.set_label(&mut data).unwrap();
    a.dd(&[0x5151_5151]).unwrap();
    let compat = compat_exit_code();
    let (mut m, _) = build(
        k,
        &[],
        Setup {
            compat: Some(compat),
            ..Setup::default()
        },
    );
    let code16 = real_mode_code();
    m.bus.load(CODE16, &code16);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let lme_nxe_sce = (efer::LME | efer::NXE | efer::SCE) as u32;
    assert_eq!(
        m.reports(),
        [
            0x32,
            0x64,
            0x1234_5678,
            lme_nxe_sce | efer::LMA as u32,
            0x600d_f00d,
            0x5151_5151,
            0x33,
            lme_nxe_sce,
            lme_nxe_sce & !(efer::LME as u32),
            0x16
        ]
    );
    assert!(!m.cpu.s.protected_mode() && !m.cpu.s.long_mode());
}

#[test]
fn five_level_paging_must_be_chosen_before_paging_is_on() {
    let mut k = Kernel::new();
    k.resume(13, true, false);
    k.main();
    let mut resume = k.a.create_label();
    let a = &mut k.a;
    a.mov(dword_ptr(DATA as u32), 0xabcdu32).unwrap();
    // PML5[1] aliases PML5[0]: linear 2^48 + x is physical x (non-canonical with 4 levels).
    a.mov(rbx, (1u64 << 48) + DATA).unwrap();
    a.mov(eax, dword_ptr(rbx)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.mov(rax, cr4).unwrap();
    a.and(eax, 0x1000).unwrap();
    a.out(PORT as u32, eax).unwrap();
    // CR4.LA57 cannot change in IA-32e mode.
    a.lea(rsi, ptr(resume)).unwrap();
    a.mov(rax, cr4).unwrap();
    a.and(eax, !0x1000).unwrap();
    let mut fault = a.create_label();
    a.set_label(&mut fault).unwrap();
    a.mov(cr4, rax).unwrap();
    a.set_label(&mut resume).unwrap();
    report64(a, 0x57);
    a.hlt().unwrap();
    let (mut m, at) = build(
        k,
        &[fault],
        Setup {
            la57: true,
            ..Setup::default()
        },
    );
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [0x32, 0xabcd, 0x1000, 0xf00d, 0, at[0] as u32, 0x57]
    );
}

#[test]
fn nx_smep_and_smap_faults_and_stac() {
    let mut k = Kernel::new();
    k.resume(14, true, true);
    k.main();
    let r: Vec<CodeLabel> = (0..5).map(|_| k.a.create_label()).collect();
    let mut r = r.into_iter();
    let a = &mut k.a;
    let mut next = |a: &mut CodeAssembler| {
        let l = r.next().unwrap();
        a.lea(rsi, ptr(l)).unwrap();
        l
    };
    // NX: a fetch from a no-execute page.
    let mut l1 = next(a);
    a.mov(rax, NX_PAGE).unwrap();
    a.call(rax).unwrap();
    a.set_label(&mut l1).unwrap();
    // SMEP: a supervisor fetch from a user page.
    a.mov(rax, cr4).unwrap();
    a.or(eax, 1 << 20).unwrap();
    a.mov(cr4, rax).unwrap();
    let mut l2 = next(a);
    a.mov(rax, USER64).unwrap();
    a.call(rax).unwrap();
    a.set_label(&mut l2).unwrap();
    // SMAP: a supervisor read of a user page, then the same with EFLAGS.AC (STAC).
    a.mov(rax, cr4).unwrap();
    a.or(eax, 1 << 21).unwrap();
    a.mov(cr4, rax).unwrap();
    let mut l3 = next(a);
    a.mov(eax, dword_ptr(USER_DATA)).unwrap();
    a.set_label(&mut l3).unwrap();
    a.stac().unwrap();
    a.mov(eax, dword_ptr(USER_DATA)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.clac().unwrap();
    let mut l4 = next(a);
    a.mov(dword_ptr(USER_DATA), 1u32).unwrap();
    a.set_label(&mut l4).unwrap();
    report64(a, 0x99);
    a.hlt().unwrap();
    let (mut m, _) = build(k, &[], Setup::default());
    m.w32(USER_DATA, 0x0ace_0ace);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let reports = m.reports();
    // #PF: error code, CR2, faulting RIP (not checked: the call target or the access).
    let pf: Vec<(u32, u32)> = reports
        .windows(3)
        .filter(|w| w[0] == 0xf00e)
        .map(|w| (w[1], w[2]))
        .collect();
    assert_eq!(
        pf,
        [
            (0x11, NX_PAGE as u32),
            (0x11, USER64 as u32),
            (0x01, USER_DATA as u32),
            (0x03, USER_DATA as u32)
        ]
    );
    assert!(reports.contains(&0x0ace_0ace), "STAC let the read through");
    assert_eq!(reports.last(), Some(&0x99));
}

#[test]
fn ist_stacks_for_an_nmi_vector_and_double_fault() {
    let mut k = Kernel::new();
    let mut nmi = k.a.create_label();
    let mut df = k.a.create_label();
    let a = &mut k.a;
    a.set_label(&mut nmi).unwrap();
    report64(a, 0x2);
    out64(a, rsp);
    a.iretq().unwrap();
    a.set_label(&mut df).unwrap();
    report64(a, 0x8);
    a.pop(rax).unwrap();
    a.out(PORT as u32, eax).unwrap();
    out64(a, rsp);
    a.mov(rax, qword_ptr(rsp + 24)).unwrap();
    a.shr(rax, 32).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.hlt().unwrap();
    k.gate(2, nmi, 2, 0);
    k.gate(8, df, 1, 0);
    k.main();
    let a = &mut k.a;
    a.int(2).unwrap();
    report64(a, 0x22);
    // #SS on a non-canonical stack cannot be delivered on it: #DF, on its IST stack.
    a.mov(rsp, 0x8000_0000_0000_0000u64).unwrap();
    a.push(rax).unwrap();
    let (mut m, _) = build(k, &[], Setup::default());
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x32,
            0x2,
            (IST2_TOP - 40) as u32,
            0x22,
            0x8,
            0,
            (IST1_TOP - 40) as u32,
            0x8000_0000
        ]
    );
}

#[test]
fn syscall_sysret_round_trip() {
    let (ucode, uat) = user(|a| {
        let mut after = a.create_label();
        a.mov(eax, cs).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.mov(eax, 7).unwrap();
        a.syscall().unwrap();
        a.set_label(&mut after).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.xor(eax, eax).unwrap();
        a.syscall().unwrap();
        vec![after]
    });
    let mut k = Kernel::new();
    let mut entry = k.a.create_label();
    let mut exit = k.a.create_label();
    let a = &mut k.a;
    a.set_label(&mut entry).unwrap();
    a.swapgs().unwrap();
    a.mov(qword_ptr(8).gs(), rsp).unwrap();
    a.mov(rsp, qword_ptr(0).gs()).unwrap();
    a.mov(rbx, rax).unwrap();
    report64(a, 0x5c);
    a.mov(eax, cs).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.mov(eax, ss).unwrap();
    a.out(PORT as u32, eax).unwrap();
    out64(a, rcx);
    a.test(rbx, rbx).unwrap();
    a.jz(exit).unwrap();
    a.imul_3(eax, ebx, 6).unwrap();
    a.mov(rsp, qword_ptr(8).gs()).unwrap();
    a.swapgs().unwrap();
    a.sysretq().unwrap();
    a.set_label(&mut exit).unwrap();
    report64(a, 0xe0e0);
    a.hlt().unwrap();
    k.main();
    let a = &mut k.a;
    a.mov(rax, (u64::from(UCODE32) << 48) | (u64::from(KCODE64) << 32))
        .unwrap();
    wrmsr_rax(a, 0xc000_0081);
    a.lea(rax, ptr(entry)).unwrap();
    wrmsr_rax(a, 0xc000_0082);
    a.mov(eax, 0x4700).unwrap();
    wrmsr_rax(a, 0xc000_0084);
    a.mov(eax, PERCPU as u32).unwrap();
    wrmsr_rax(a, 0xc000_0102);
    a.mov(rcx, USER64).unwrap();
    a.mov(r11, 0x3002u64).unwrap();
    a.mov(rsp, USTACK).unwrap();
    a.sysretq().unwrap();
    let (mut m, _) = build(
        k,
        &[],
        Setup {
            user: Some(ucode),
            ..Setup::default()
        },
    );
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let kernel = |ret: u64| [0x5c, u32::from(KCODE64), u32::from(KDATA), ret as u32];
    let expected = [
        &[0x32, u32::from(UCODE64 | 3)][..],
        &kernel(uat[0]),
        &[42],
        // OUT imm8, XOR, SYSCALL: the second call returns 6 bytes further.
        &kernel(uat[0] + 6),
        &[0xe0e0],
    ];
    assert_eq!(m.reports(), expected.concat());
    assert_eq!(
        m.cpu.s.msr.kernel_gs_base, 0,
        "GS and KERNEL_GS swapped back"
    );
}

#[test]
fn sysenter_sysexit_round_trip_in_long_mode() {
    let (ucode, uat) = user(|a| {
        let mut second = a.create_label();
        a.mov(eax, cs).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.sysenter().unwrap();
        a.set_label(&mut second).unwrap();
        a.mov(eax, ss).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.hlt().unwrap();
        vec![second]
    });
    let mut k = Kernel::new();
    let mut entry = k.a.create_label();
    let a = &mut k.a;
    a.set_label(&mut entry).unwrap();
    report64(a, 0x5e);
    a.mov(eax, cs).unwrap();
    a.out(PORT as u32, eax).unwrap();
    out64(a, rsp);
    a.mov(rdx, uat[0]).unwrap();
    a.mov(rcx, USTACK).unwrap();
    a.sysexitq().unwrap();
    k.main();
    let a = &mut k.a;
    a.mov(eax, u32::from(KCODE64)).unwrap();
    wrmsr_rax(a, 0x174);
    a.mov(eax, KSTACK as u32).unwrap();
    wrmsr_rax(a, 0x175);
    a.lea(rax, ptr(entry)).unwrap();
    wrmsr_rax(a, 0x176);
    // IOPL 3 so that ring 3 may report.
    a.pushfq().unwrap();
    a.or(qword_ptr(rsp), 0x3000).unwrap();
    a.popfq().unwrap();
    a.mov(rdx, USER64).unwrap();
    a.mov(rcx, USTACK).unwrap();
    a.sysexitq().unwrap();
    let (mut m, _) = build(
        k,
        &[],
        Setup {
            user: Some(ucode),
            ..Setup::default()
        },
    );
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x32,
            u32::from(UCODE64 | 3),
            0x5e,
            u32::from(KCODE64),
            KSTACK as u32,
            u32::from(UDATA2 | 3),
            0xdead_000d
        ]
    );
}

#[test]
fn sysenter_sysexit_round_trip_in_protected_mode() {
    let mut p = Prog::new();
    let mut entry = p.label();
    let mut user = p.label();
    p.set(&mut entry);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.mov(eax, ss).unwrap();
    p.report_reg(eax);
    p.report_reg(esp);
    p.a.hlt().unwrap();
    p.main();
    for (index, v) in [(0x174u32, u32::from(sel::CODE0)), (0x175, KSTACK as u32)] {
        p.a.mov(ecx, index).unwrap();
        p.a.mov(eax, v).unwrap();
        p.a.xor(edx, edx).unwrap();
        p.a.wrmsr().unwrap();
    }
    p.a.mov(ecx, 0x176u32).unwrap();
    p.mov_label(eax, entry);
    p.a.xor(edx, edx).unwrap();
    p.a.wrmsr().unwrap();
    p.a.pushfd().unwrap();
    p.a.or(dword_ptr(esp), 0x3000).unwrap();
    p.a.popfd().unwrap();
    p.mov_label(edx, user);
    p.a.mov(ecx, STACK3).unwrap();
    p.a.sysexit().unwrap();
    p.set(&mut user);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.mov(eax, ss).unwrap();
    p.report_reg(eax);
    p.a.sysenter().unwrap();
    let mut m = p.build();
    m.cpu.model = NESTOR64;
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let code0 = u32::from(sel::CODE0);
    assert_eq!(
        m.reports(),
        [
            code0 + 16 + 3,
            code0 + 24 + 3,
            code0,
            code0 + 8,
            KSTACK as u32
        ]
    );
}

#[test]
fn canonical_addresses_fault_with_gp_or_ss() {
    let mut k = Kernel::new();
    k.resume(13, true, false);
    k.resume(12, true, false);
    k.main();
    let labels: Vec<CodeLabel> = (0..6).map(|_| k.a.create_label()).collect();
    let [mut f1, mut r1, mut f2, mut r2, mut f3, mut r3] = labels[..] else {
        unreachable!()
    };
    let a = &mut k.a;
    a.mov(rbx, 0x0000_8000_0000_0000u64).unwrap();
    a.lea(rsi, ptr(r1)).unwrap();
    a.set_label(&mut f1).unwrap();
    a.mov(rax, qword_ptr(rbx)).unwrap();
    a.set_label(&mut r1).unwrap();
    a.lea(rsi, ptr(r2)).unwrap();
    a.mov(rbp, rbx).unwrap();
    a.set_label(&mut f2).unwrap();
    a.mov(rax, qword_ptr(rbp + 8)).unwrap();
    a.set_label(&mut r2).unwrap();
    a.lea(rsi, ptr(r3)).unwrap();
    a.set_label(&mut f3).unwrap();
    a.jmp(rbx).unwrap();
    a.set_label(&mut r3).unwrap();
    report64(a, 0xc0);
    a.hlt().unwrap();
    let (mut m, at) = build(k, &[f1, f2, f3], Setup::default());
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let at: Vec<u32> = at.iter().map(|&v| v as u32).collect();
    assert_eq!(
        m.reports(),
        [0x32, 0xf00d, 0, at[0], 0xf00c, 0, at[1], 0xf00d, 0, at[2], 0xc0]
    );
}

#[test]
fn compatibility_mode_code_and_interrupts_from_it() {
    let mut k = Kernel::new();
    let mut handler = k.a.create_label();
    let a = &mut k.a;
    a.set_label(&mut handler).unwrap();
    report64(a, 0x40);
    a.mov(rax, qword_ptr(rsp + 8)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.iretq().unwrap();
    k.gate(0x40, handler, 0, 0);
    k.main();
    let a = &mut k.a;
    a.mov(dword_ptr(DATA as u32), COMPAT as u32).unwrap();
    a.mov(word_ptr(DATA as u32 + 4), u32::from(sel::CODE0))
        .unwrap();
    a.call(fword_ptr(DATA as u32)).unwrap();
    report64(a, 0x64);
    out64(a, rsp);
    a.hlt().unwrap();
    let (compat, _) = asm_at(32, COMPAT, |a| {
        a.mov(eax, 1).unwrap();
        // 40h is INC EAX here, not a REX prefix.
        a.db(&[0x40]).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.push(0x1234_5678).unwrap();
        a.pop(ebx).unwrap();
        a.mov(eax, ebx).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.mov(eax, esp).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.int(0x40).unwrap();
        a.mov(eax, 0x41).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.retf().unwrap();
        Vec::new()
    });
    let (mut m, _) = build(
        k,
        &[],
        Setup {
            compat: Some(compat),
            ..Setup::default()
        },
    );
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x32,
            2,
            0x1234_5678,
            STACK0 - 8,
            0x40,
            u32::from(sel::CODE0),
            0x41,
            0x64,
            STACK0
        ]
    );
}

#[test]
fn iretq_to_ring3_and_back_through_an_interrupt_gate() {
    let (ucode, _) = user(|a| {
        a.mov(eax, cs).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.mov(eax, ss).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.int(0x80).unwrap();
        a.mov(eax, 0x81).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.hlt().unwrap();
        Vec::new()
    });
    let mut k = Kernel::new();
    let mut int80 = k.a.create_label();
    let a = &mut k.a;
    a.set_label(&mut int80).unwrap();
    report64(a, 0x80);
    a.mov(eax, ss).unwrap();
    a.out(PORT as u32, eax).unwrap();
    out64(a, rsp);
    a.mov(rax, qword_ptr(rsp + 24)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.mov(rax, qword_ptr(rsp + 32)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    a.iretq().unwrap();
    k.gate(0x80, int80, 0, 3);
    k.main();
    let a = &mut k.a;
    a.push(i32::from(UDATA | 3)).unwrap();
    a.mov(rax, USTACK).unwrap();
    a.push(rax).unwrap();
    a.push(0x3002).unwrap();
    a.push(i32::from(UCODE64 | 3)).unwrap();
    a.mov(rax, USER64).unwrap();
    a.push(rax).unwrap();
    a.iretq().unwrap();
    let (mut m, _) = build(
        k,
        &[],
        Setup {
            user: Some(ucode),
            ..Setup::default()
        },
    );
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x32,
            u32::from(UCODE64 | 3),
            u32::from(UDATA | 3),
            0x80,
            0,
            STACK0 - 40,
            USTACK as u32,
            u32::from(UDATA | 3),
            0x81,
            0xdead_000d
        ]
    );
}
