//! Unit tests for 64-bit mode: REX registers, zero-extension, RIP-relative addressing, the
//! 64-bit integer forms, canonical checks, the long-mode system instructions, and coverage
//! of the dispatch table and the CPUID model.

use crate::cpuid::NESTOR64;
use crate::fault::Fault;
use crate::state::{attr, cr0, cr4, efer, rflags, SegReg, Segment};
use crate::table::entry;
use crate::testbus::FlatBus;
use crate::Cpu;
use iced_x86::code_asm::*;
use iced_x86::Code;

pub(crate) const PML4: u64 = 0x1000;
pub(crate) const PDPT: u64 = 0x2000;
pub(crate) const CODE: u64 = 0x10000;

/// A 64-bit-mode CPU (nestor64) at CPL 0 with 4-level paging: PML4[0] -> PDPT whose first
/// four entries are 1 GiB pages identity-mapping 0..4 GiB, except that 1 GiB..2 GiB maps
/// physical 0 again (an alias of the first gigabyte). RSP = 0x8000, RIP = `CODE`.
pub(crate) fn long_cpu() -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(4 << 20);
    bus.load(PML4, &(PDPT | 3).to_le_bytes());
    for k in 0..4u64 {
        let phys = if k == 1 { 0 } else { k << 30 };
        bus.load(PDPT + 8 * k, &(phys | 0x83).to_le_bytes());
    }
    let mut cpu = Cpu::with_model(NESTOR64);
    cpu.s.cr0 = cr0::PE | cr0::PG | cr0::ET | cr0::WP;
    cpu.s.cr4 = cr4::PAE;
    cpu.s.cr3 = PML4;
    cpu.s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
    let flat = |selector, kind| Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | attr::ACCESSED | attr::G | kind,
    };
    cpu.s.seg[SegReg::Cs as usize] = flat(8, attr::CODE | attr::RW | attr::L);
    for s in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        cpu.s.seg[s as usize] = flat(0x10, attr::RW | attr::DB);
    }
    cpu.s.gpr[4] = 0x8000;
    cpu.s.rip = CODE;
    (cpu, bus)
}

/// Assemble 64-bit code at `CODE`, run `n` instructions.
pub(crate) fn run64(
    n: u64,
    f: impl FnOnce(&mut CodeAssembler),
    setup: impl FnOnce(&mut Cpu, &mut FlatBus),
) -> (Cpu, FlatBus) {
    let (mut cpu, mut bus) = long_cpu();
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a);
    bus.load(CODE, &a.assemble(CODE).unwrap());
    setup(&mut cpu, &mut bus);
    cpu.run(&mut bus, n);
    (cpu, bus)
}

/// Execute one 64-bit instruction at the current RIP through its handler.
pub(crate) fn exec64(
    cpu: &mut Cpu,
    bus: &mut FlatBus,
    f: impl FnOnce(&mut CodeAssembler),
) -> crate::Exec {
    crate::handlers::segment::tests::exec(cpu, bus, f)
}

#[test]
fn rex_byte_registers() {
    let (cpu, _) = run64(
        9,
        |a| {
            a.mov(rax, 0x1111_1111_1111_1111u64).unwrap();
            a.mov(ah, 0x22).unwrap();
            a.mov(spl, 0x33).unwrap();
            a.mov(sil, 0x44).unwrap();
            a.mov(dil, 0x55).unwrap();
            a.mov(r15b, 0x66).unwrap();
            a.mov(bh, 0x77).unwrap();
            a.mov(bpl, 0x88).unwrap();
            // BH (no REX prefix) and BPL (with one) name different bytes.
            a.mov(al, bh).unwrap();
        },
        |_, _| {},
    );
    assert_eq!(cpu.s.gpr[0], 0x1111_1111_1111_2277);
    assert_eq!(cpu.s.gpr[3] & 0xff00, 0x7700);
    assert_eq!(cpu.s.gpr[5] & 0xff, 0x88);
    assert_eq!(cpu.s.gpr[4], 0x8033);
    assert_eq!(cpu.s.gpr[6] & 0xff, 0x44);
    assert_eq!(cpu.s.gpr[7] & 0xff, 0x55);
    assert_eq!(cpu.s.gpr[15] & 0xff, 0x66);
}

#[test]
fn thirty_two_bit_writes_zero_extend() {
    let (cpu, _) = run64(
        9,
        |a| {
            a.mov(rax, -1i64).unwrap();
            a.mov(eax, 1).unwrap();
            a.mov(rbx, -1i64).unwrap();
            a.mov(bx, 2).unwrap();
            a.mov(rcx, -1i64).unwrap();
            a.cmp(eax, eax).unwrap();
            a.cmovne(ecx, eax).unwrap();
            a.mov(rdx, -1i64).unwrap();
            a.shl(edx, 0).unwrap();
        },
        |_, _| {},
    );
    assert_eq!(cpu.s.gpr[0], 1);
    assert_eq!(cpu.s.gpr[3], 0xffff_ffff_ffff_0002, "16-bit writes merge");
    assert_eq!(cpu.s.gpr[1], 0xffff_ffff, "CMOV r32 writes even when false");
    assert_eq!(
        cpu.s.gpr[2], 0xffff_ffff,
        "a zero-count shift still zero-extends"
    );
}

#[test]
fn rip_relative_addressing_follows_the_linear_alias() {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut data = a.create_label();
    a.lea(rax, ptr(data)).unwrap();
    a.mov(rbx, qword_ptr(data)).unwrap();
    a.hlt().unwrap();
    a.set_label(&mut data).unwrap();
    a.dq(&[0x1234_5678_9abc_def0]).unwrap();
    let code = a.assemble(CODE).unwrap();
    let (mut cpu, mut bus) = long_cpu();
    bus.load(CODE, &code);
    cpu.run(&mut bus, 3);
    let data_at = CODE + code.len() as u64 - 8;
    assert_eq!(cpu.s.gpr[0], data_at);
    assert_eq!(cpu.s.gpr[3], 0x1234_5678_9abc_def0);
    // The same physical code, now cached, run through the alias at 1 GiB.
    cpu.s.events.halted = false;
    cpu.s.rip = CODE + (1 << 30);
    cpu.run(&mut bus, 3);
    assert_eq!(cpu.s.gpr[0], data_at + (1 << 30));
}

#[test]
fn cmpxchg16b_outcomes_and_alignment() {
    let (mut cpu, mut bus) = long_cpu();
    bus.load(0x3000, &[0; 16]);
    cpu.s.gpr[3] = 0x1111; // RBX
    cpu.s.gpr[1] = 0x2222; // RCX
    cpu.s.gpr[6] = 0x3000; // RSI
    cpu.s.gpr[0] = 0;
    cpu.s.gpr[2] = 0;
    exec64(&mut cpu, &mut bus, |a| {
        a.cmpxchg16b(xmmword_ptr(rsi)).unwrap()
    })
    .unwrap();
    assert_ne!(cpu.flags() & rflags::ZF, 0);
    assert_eq!(&bus.ram()[0x3000..0x3002], &[0x11, 0x11]);
    assert_eq!(&bus.ram()[0x3008..0x300a], &[0x22, 0x22]);
    // Mismatch: memory goes to RDX:RAX, ZF clear.
    exec64(&mut cpu, &mut bus, |a| {
        a.cmpxchg16b(xmmword_ptr(rsi)).unwrap()
    })
    .unwrap();
    assert_eq!((cpu.s.gpr[0], cpu.s.gpr[2]), (0x1111, 0x2222));
    assert_eq!(cpu.flags() & rflags::ZF, 0);
    cpu.s.gpr[6] = 0x3008;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a
            .cmpxchg16b(xmmword_ptr(rsi))
            .unwrap()),
        Err(Fault::gp(0))
    );
}

#[test]
fn sixty_four_bit_arithmetic() {
    let (cpu, _) = run64(
        11,
        |a| {
            a.mov(eax, 0x8000_0000u32).unwrap();
            a.movsxd(rbx, eax).unwrap();
            a.cdqe().unwrap();
            a.cqo().unwrap();
            a.mov(r10, -7i64).unwrap();
            a.mov(r11, r10).unwrap();
            a.sar(r11, 63).unwrap();
            a.push(r10).unwrap();
            a.pop(r12).unwrap();
            a.mov(r8, 0x4000_0000_0000_0000u64).unwrap();
            a.imul_3(r9, r8, 4).unwrap();
        },
        |_, _| {},
    );
    assert_eq!(cpu.s.gpr[3], 0xffff_ffff_8000_0000, "MOVSXD");
    assert_eq!(cpu.s.gpr[0], 0xffff_ffff_8000_0000, "CDQE");
    assert_eq!(cpu.s.gpr[2], u64::MAX, "CQO");
    assert_eq!(cpu.s.gpr[9], 0);
    assert_ne!(cpu.flags() & rflags::OF, 0, "IMUL r64 overflow");
    assert_eq!(cpu.s.gpr[11], u64::MAX);
    assert_eq!(cpu.s.gpr[12], (-7i64) as u64);
    assert_eq!(cpu.s.gpr[4], 0x8000);
    // 128-by-64 division and multiplication.
    let (cpu, _) = run64(
        6,
        |a| {
            a.mov(rdx, 1u64).unwrap();
            a.xor(eax, eax).unwrap();
            a.mov(rcx, 2u64).unwrap();
            a.div(rcx).unwrap();
            a.mov(rbx, u64::MAX).unwrap();
            a.mul(rbx).unwrap();
        },
        |_, _| {},
    );
    // (2^64 / 2) * (2^64 - 1) = 2^127 - 2^63
    assert_eq!(cpu.s.gpr[0], 0x8000_0000_0000_0000);
    assert_eq!(cpu.s.gpr[2], 0x7fff_ffff_ffff_ffff);
}

#[test]
fn canonical_checks_give_gp_or_ss() {
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.gpr[3] = 0x0000_8000_0000_0000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(rax, qword_ptr(rbx)).unwrap()),
        Err(Fault::gp(0))
    );
    cpu.s.gpr[5] = 0x0000_8000_0000_0000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(rax, qword_ptr(rbp)).unwrap()),
        Err(Fault::ss(0)),
        "RBP-based addresses use SS"
    );
    // FS base counts; other bases do not.
    cpu.s.seg[SegReg::Fs as usize].base = 0x7fff_ffff_f000;
    cpu.s.seg[SegReg::Ds as usize].base = 0x1234_0000;
    cpu.s.gpr[3] = 0x1000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a
            .mov(rax, qword_ptr(rbx).fs())
            .unwrap()),
        Err(Fault::gp(0))
    );
    cpu.s.gpr[3] = 0x5000;
    bus.load(0x5000, &[0x5a]);
    exec64(&mut cpu, &mut bus, |a| a.mov(al, byte_ptr(rbx)).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0] & 0xff, 0x5a);
    // A jump to a non-canonical target faults on the jump.
    cpu.s.gpr[0] = 0xffff_7000_0000_0000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.jmp(rax).unwrap()),
        Err(Fault::gp(0))
    );
}

#[test]
fn swapgs_and_fsgsbase() {
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.msr.kernel_gs_base = 0xffff_8000_0000_1000;
    exec64(&mut cpu, &mut bus, |a| a.swapgs().unwrap()).unwrap();
    assert_eq!(cpu.s.seg(SegReg::Gs).base, 0xffff_8000_0000_1000);
    assert_eq!(cpu.s.msr.kernel_gs_base, 0);
    // RDFSBASE needs CR4.FSGSBASE.
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.rdgsbase(rax).unwrap()),
        Err(Fault::UD)
    );
    cpu.s.cr4 |= cr4::FSGSBASE;
    exec64(&mut cpu, &mut bus, |a| a.rdgsbase(rax).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 0xffff_8000_0000_1000);
    cpu.s.gpr[0] = 0x0001_0000_0000_0000; // canonical for 57 bits only
    exec64(&mut cpu, &mut bus, |a| a.wrfsbase(rax).unwrap()).unwrap();
    cpu.s.gpr[0] = 0x0100_0000_0000_0000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.wrfsbase(rax).unwrap()),
        Err(Fault::gp(0))
    );
    // WRFSBASE with a 32-bit register zero-extends.
    cpu.s.gpr[1] = 0xffff_ffff_8000_0000;
    exec64(&mut cpu, &mut bus, |a| a.wrfsbase(ecx).unwrap()).unwrap();
    assert_eq!(cpu.s.seg(SegReg::Fs).base, 0x8000_0000);
    // Ring 3: SWAPGS faults.
    cpu.s.seg[SegReg::Ss as usize].attr |= 3 << attr::DPL_SHIFT;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.swapgs().unwrap()),
        Err(Fault::gp(0))
    );
}

#[test]
fn msrs_and_cr8() {
    let (mut cpu, mut bus) = long_cpu();
    let wrmsr = |cpu: &mut Cpu, bus: &mut FlatBus, index: u32, v: u64| {
        cpu.s.gpr[1] = u64::from(index);
        cpu.s.gpr[0] = v & 0xffff_ffff;
        cpu.s.gpr[2] = v >> 32;
        exec64(cpu, bus, |a| a.wrmsr().unwrap())
    };
    assert_eq!(
        wrmsr(&mut cpu, &mut bus, 0xc000_0082, 0xffff_ffff_8100_0000),
        Ok(())
    );
    assert_eq!(cpu.s.msr.lstar, 0xffff_ffff_8100_0000);
    assert_eq!(
        wrmsr(&mut cpu, &mut bus, 0xc000_0082, 0x8000_0000_0000_0000),
        Err(Fault::gp(0)),
        "LSTAR must be canonical"
    );
    assert_eq!(
        wrmsr(&mut cpu, &mut bus, 0xc000_0080, efer::NXE),
        Err(Fault::gp(0)),
        "EFER.LME cannot change while paging is on"
    );
    assert_eq!(wrmsr(&mut cpu, &mut bus, 0xc000_0100, 0x1234_5000), Ok(()));
    assert_eq!(cpu.s.seg(SegReg::Fs).base, 0x1234_5000);
    assert_eq!(wrmsr(&mut cpu, &mut bus, 0x6e0, 12345), Ok(()));
    assert_eq!(cpu.s.msr.tsc_deadline, 12345);
    assert_eq!(wrmsr(&mut cpu, &mut bus, 0xdead, 0), Err(Fault::gp(0)));
    // RDMSR of EFER sees LMA.
    cpu.s.gpr[1] = 0xc000_0080;
    exec64(&mut cpu, &mut bus, |a| a.rdmsr().unwrap()).unwrap();
    assert_ne!(cpu.s.gpr[0] & efer::LMA, 0);
    // CR8 holds the task priority.
    cpu.s.gpr[0] = 9;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr8, rax).unwrap()).unwrap();
    assert_eq!(cpu.s.cr8, 9);
    cpu.s.gpr[0] = 0x10;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr8, rax).unwrap()),
        Err(Fault::gp(0))
    );
    exec64(&mut cpu, &mut bus, |a| a.mov(rbx, cr8).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[3], 9);
}

#[test]
fn rdtscp_rdpid_and_debugctl_block_step() {
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.msr.tsc_aux = 7;
    exec64(&mut cpu, &mut bus, |a| a.rdtscp().unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[1], 7);
    exec64(&mut cpu, &mut bus, |a| a.rdpid(rax).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 7);
    // With DEBUGCTL.BTF, TF traps only after taken branches (#DB handler at 0x20000).
    let (cpu, _) = run64(
        3,
        |a| {
            let mut l = a.create_label();
            a.nop().unwrap();
            a.nop().unwrap();
            a.jmp(l).unwrap();
            a.set_label(&mut l).unwrap();
            a.nop().unwrap();
        },
        |cpu, bus| {
            cpu.s.msr.debugctl = 2;
            cpu.set_flags(rflags::TF);
            // IDT at 0x4000, vector 1 -> 0x20000 in code selector 8.
            cpu.s.idtr.base = 0x4000;
            cpu.s.idtr.limit = 0xfff;
            bus.load(0x4010, &[0x00, 0x00, 0x08, 0x00, 0x00, 0x8e, 0x02, 0x00]);
            bus.load(0x3000 + 8, &0x0020_9a00_0000_ffffu64.to_le_bytes());
            cpu.s.gdtr.base = 0x3000;
            cpu.s.gdtr.limit = 0xff;
        },
    );
    assert_eq!(cpu.s.rip, 0x20000, "trapped after the jump, not the NOPs");
    assert_eq!(cpu.s.msr.debugctl & 2, 0, "the #DB cleared BTF");
    assert_eq!(cpu.retired, 3);
}

/// Is `code` a general-purpose (or long-mode system) instruction valid in 64-bit mode?
fn long_mode_integer(code: Code) -> bool {
    use iced_x86::CpuidFeature as F;
    let op = code.op_code();
    if !op.mode64() || !op.is_instruction() {
        return false;
    }
    let allowed = [
        F::INTEL8086,
        F::INTEL186,
        F::INTEL286,
        F::INTEL386,
        F::INTEL486,
        F::X64,
        F::CPUID,
        F::TSC,
        F::MSR,
        F::CX8,
        F::CMOV,
        F::MULTIBYTENOP,
        F::CMPXCHG16B,
        F::SYSCALL,
        F::SEP,
        F::RDTSCP,
        F::RDPID,
        F::FSGSBASE,
        F::INVPCID,
        F::SMAP,
        F::MONITOR,
        F::CLFSH,
        F::CLFLUSHOPT,
        F::CLWB,
        F::PREFETCHW,
        F::PAUSE,
    ];
    code.cpuid_features().iter().all(|f| allowed.contains(f))
}

#[test]
fn every_long_mode_integer_code_has_a_handler() {
    let set: Vec<Code> = Code::values()
        .filter(|&c| c != Code::INVALID && long_mode_integer(c))
        .collect();
    assert!(set.len() > 700, "only {} codes in the set", set.len());
    let missing: Vec<String> = set
        .into_iter()
        .filter(|&c| entry(c).meta.is_none())
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(missing.is_empty(), "unhandled: {missing:?}");
}

#[test]
fn every_advertised_feature_has_handlers() {
    use crate::cpuid::{ecx, edx, ext, leaf7};
    let m = NESTOR64;
    let checks: &[(u32, u32, &[Code])] = &[
        (
            m.features_edx,
            edx::SEP,
            &[Code::Sysenter, Code::Sysexitd, Code::Sysexitq],
        ),
        (m.features_edx, edx::CLFSH, &[Code::Clflush_m8]),
        (m.features_edx, edx::CX8, &[Code::Cmpxchg8b_m64]),
        (m.features_edx, edx::CMOV, &[Code::Cmove_r64_rm64]),
        (m.features_edx, edx::TSC, &[Code::Rdtsc]),
        (m.features_edx, edx::MSR, &[Code::Rdmsr, Code::Wrmsr]),
        (m.features_ecx, ecx::MONITOR, &[Code::Monitorq, Code::Mwait]),
        (m.features_ecx, ecx::CX16, &[Code::Cmpxchg16b_m128]),
        (m.features_ecx, ecx::PCID, &[Code::Mov_cr_r64]),
        (
            m.leaf7[0],
            leaf7::EBX_FSGSBASE,
            &[Code::Rdfsbase_r64, Code::Wrgsbase_r64],
        ),
        (m.leaf7[0], leaf7::EBX_INVPCID, &[Code::Invpcid_r64_m128]),
        (m.leaf7[0], leaf7::EBX_SMAP, &[Code::Stac, Code::Clac]),
        (m.leaf7[0], leaf7::EBX_CLFLUSHOPT, &[Code::Clflushopt_m8]),
        (m.leaf7[0], leaf7::EBX_CLWB, &[Code::Clwb_m8]),
        (m.leaf7[1], leaf7::ECX_RDPID, &[Code::Rdpid_r64]),
        (
            m.leaf7[1],
            leaf7::ECX_UMIP,
            &[Code::Sgdt_m1664, Code::Smsw_r64m16],
        ),
        (m.ext_edx, ext::EDX_SYSCALL, &[Code::Syscall, Code::Sysretq]),
        (m.ext_edx, ext::EDX_RDTSCP, &[Code::Rdtscp]),
        (
            m.ext_edx,
            ext::EDX_LM,
            &[Code::Iretq, Code::Swapgs, Code::Movsxd_r64_rm32],
        ),
        (m.ext_ecx, ext::ECX_LAHF_LM, &[Code::Lahf, Code::Sahf]),
        (m.ext_ecx, ext::ECX_PREFETCHW, &[Code::Prefetchw_m8]),
    ];
    for (word, bit, codes) in checks {
        if word & bit != 0 {
            for c in *codes {
                assert!(
                    entry(*c).meta.is_some(),
                    "{c:?} advertised without a handler"
                );
            }
        }
    }
    // Control-register features the model advertises are writable.
    let cpu = Cpu::with_model(m);
    for bit in [
        cr4::FSGSBASE,
        cr4::SMEP,
        cr4::SMAP,
        cr4::UMIP,
        cr4::LA57,
        cr4::PCIDE,
    ] {
        assert_ne!(cpu.cr4_supported() & bit, 0);
    }
    assert_eq!(
        Cpu::new().cr4_supported() & (cr4::SMEP | cr4::PCIDE),
        0,
        "the Pentium Pro has none of them"
    );
}

#[test]
fn entering_and_leaving_ia32e_mode() {
    let (mut cpu, mut bus) = long_cpu();
    // Start from 32-bit protected mode without paging, EFER.LME set.
    cpu.s.cr0 = cr0::PE | cr0::ET;
    cpu.s.cr4 = 0;
    cpu.s.efer = efer::LME;
    cpu.s.seg[SegReg::Cs as usize].attr = (cpu.s.seg(SegReg::Cs).attr & !attr::L) | attr::DB;
    cpu.s.gpr[0] = cr0::PE | cr0::PG;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()),
        Err(Fault::gp(0)),
        "IA-32e mode needs CR4.PAE"
    );
    cpu.s.cr4 = cr4::PAE;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()).unwrap();
    assert!(cpu.s.long_mode() && !cpu.s.long64(), "compatibility mode");
    // PAE and LA57 are fixed while IA-32e mode is active.
    cpu.s.gpr[0] = 0;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr4, eax).unwrap()),
        Err(Fault::gp(0))
    );
    cpu.s.gpr[0] = cr4::PAE | cr4::LA57;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr4, eax).unwrap()),
        Err(Fault::gp(0))
    );
    // Turning paging off from 64-bit mode is refused; from compatibility mode it leaves.
    let (mut cpu64, mut bus64) = long_cpu();
    cpu64.s.gpr[0] = cr0::PE | cr0::ET;
    assert_eq!(
        exec64(&mut cpu64, &mut bus64, |a| a.mov(cr0, rax).unwrap()),
        Err(Fault::gp(0))
    );
    cpu.s.gpr[0] = cr0::PE;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()).unwrap();
    assert!(!cpu.s.long_mode());
}

#[test]
fn pcid_rules_noflush_and_invpcid() {
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.cr3 = PML4 | 5;
    cpu.s.gpr[0] = cr4::PAE | cr4::PCIDE;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr4, rax).unwrap()),
        Err(Fault::gp(0)),
        "PCIDE needs PCID 0 in CR3"
    );
    cpu.s.cr3 = PML4;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr4, rax).unwrap()).unwrap();
    // Through the alias at 1 GiB, physical 0x5000 holds 0x11.
    bus.load(0x5000, &[0x11]);
    cpu.s.gpr[3] = (1 << 30) + 0x5000;
    let read = |cpu: &mut Cpu, bus: &mut FlatBus| {
        exec64(cpu, bus, |a| a.mov(al, byte_ptr(rbx)).unwrap()).unwrap();
        cpu.s.gpr[0] & 0xff
    };
    assert_eq!(read(&mut cpu, &mut bus), 0x11);
    // Remap the alias to nothing (open bus reads all ones) without telling the TLB.
    bus.load(PDPT + 8, &((1u64 << 30) | 0x83).to_le_bytes());
    // MOV CR3 with bit 63 and the same PCID keeps the cached translation.
    cpu.s.gpr[0] = PML4 | 1 << 63;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr3, rax).unwrap()).unwrap();
    assert_eq!(cpu.s.cr3, PML4, "bit 63 is not stored");
    assert_eq!(read(&mut cpu, &mut bus), 0x11);
    // INVPCID type 0 (one address in PCID 0) drops it.
    bus.load(0x7000, &0u64.to_le_bytes());
    bus.load(0x7008, &cpu.s.gpr[3].to_le_bytes());
    cpu.s.gpr[6] = 0x7000;
    cpu.s.gpr[1] = 0;
    exec64(&mut cpu, &mut bus, |a| {
        a.invpcid(rcx, xmmword_ptr(rsi)).unwrap()
    })
    .unwrap();
    assert_eq!(read(&mut cpu, &mut bus), 0xff);
    // Reserved descriptor bits and unknown types fault.
    cpu.s.gpr[1] = 4;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a
            .invpcid(rcx, xmmword_ptr(rsi))
            .unwrap()),
        Err(Fault::gp(0))
    );
}

#[test]
fn umip_and_sysret_checks() {
    let (mut cpu, mut bus) = long_cpu();
    // Make the first gigabyte a user page.
    bus.load(PML4, &(PDPT | 7).to_le_bytes());
    bus.load(PDPT, &0x87u64.to_le_bytes());
    cpu.s.gpr[3] = 0x7000;
    for s in [SegReg::Cs, SegReg::Ss] {
        cpu.s.seg[s as usize].attr |= 3 << attr::DPL_SHIFT;
    }
    exec64(&mut cpu, &mut bus, |a| a.sgdt(ptr(rbx)).unwrap()).unwrap();
    cpu.s.cr4 |= cr4::UMIP;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.sgdt(ptr(rbx)).unwrap()),
        Err(Fault::gp(0))
    );
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.smsw(eax).unwrap()),
        Err(Fault::gp(0))
    );
    // SYSRET at CPL 3 is #GP; to a non-canonical RCX it is #GP in ring 0.
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.sysretq().unwrap()),
        Err(Fault::gp(0))
    );
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.gpr[1] = 0x0000_8000_0000_0000;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.sysretq().unwrap()),
        Err(Fault::gp(0))
    );
    // SYSCALL needs EFER.SCE.
    cpu.s.efer &= !efer::SCE;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.syscall().unwrap()),
        Err(Fault::UD)
    );
}
