//! Hardware task switches: JMP, CALL (NT and back-link), INT through a task gate, IRET;
//! 16-bit TSS, GDT task gates, the T bit.

use super::*;

#[test]
fn task_switches_by_jmp_call_int_and_iret() {
    const TSS_B: u64 = 0x6000;
    const TSS_C: u64 = 0x6100;
    let mut p = Prog::new();
    let mut task_b = p.label();
    let mut task_c = p.label();
    p.main();
    p.report(0xa0);
    p.a.mov(ebx, 0xa5a5u32).unwrap();
    p.a.jmp_far(0x40, 0).unwrap();
    // Back in A after B jumped to it.
    p.report(0xa1);
    p.report_reg(ebx);
    p.a.str(ax).unwrap();
    p.a.movzx(eax, ax).unwrap();
    p.report_reg(eax);
    p.a.hlt().unwrap();
    // Task B: entered by JMP (A is no longer busy, B is).
    p.set(&mut task_b);
    p.report(0xb0);
    p.a.movzx(eax, byte_ptr(GDT as u32 + u32::from(sel::TSS0) + 5))
        .unwrap();
    p.report_reg(eax);
    p.a.movzx(eax, byte_ptr(GDT as u32 + 0x45)).unwrap();
    p.report_reg(eax);
    p.a.mov(ebx, 0xb5b5u32).unwrap();
    p.a.call_far(0x48, 0).unwrap();
    p.report(0xb1);
    p.report_reg(ebx);
    p.a.sldt(eax).unwrap();
    p.report_reg(eax);
    p.a.pushfd().unwrap();
    p.a.pop(eax).unwrap();
    p.a.and(eax, 0x4000).unwrap();
    p.report_reg(eax);
    p.a.int(0x40).unwrap();
    p.report(0xb2);
    p.a.jmp_far(sel::TSS0, 0).unwrap();
    // Task C: nested (NT set, back-link B); returns with IRET, re-entered after it.
    p.set(&mut task_c);
    p.report(0xc0);
    p.a.pushfd().unwrap();
    p.a.pop(eax).unwrap();
    p.a.and(eax, 0x4000).unwrap();
    p.report_reg(eax);
    p.a.movzx(eax, word_ptr(TSS_C as u32)).unwrap();
    p.report_reg(eax);
    p.a.movzx(eax, byte_ptr(GDT as u32 + 0x4d)).unwrap();
    p.report_reg(eax);
    // C has its own LDT: FS comes from it.
    p.a.mov(ax, 0x0cu32).unwrap();
    p.a.mov(fs, ax).unwrap();
    p.report_mem(dword_ptr(0).fs());
    p.a.iretd().unwrap();
    p.a.jmp(task_c).unwrap();
    let mut m = p.build();
    m.set_gdt(0x40, system(TSS_B as u32, 0x67, ty::TSS32, 0));
    m.set_gdt(0x48, system(TSS_C as u32, 0x67, ty::TSS32, 0));
    let b = Tss32::ring0(m.addr(task_b), 0x7f000);
    m.tss32(TSS_B, &b);
    let mut c = Tss32::ring0(m.addr(task_c), 0x7e000);
    c.ldt = 0x58;
    m.tss32(TSS_C, &c);
    m.set_gdt(0x58, system(0x6800, 0x0f, ty::LDT, 0));
    m.w64(0x6808, seg(0x6900, 0xff, 0x92, 0));
    m.w32(0x6900, 0x1d7);
    m.set_idt(0x40, gate(ty::TASK, 0, 0x48, 0, 0));
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0xa0, 0xb0, 0x89, 0x8b, 0xc0, 0x4000, 0x40, 0x8b, 0x1d7, 0xb1, 0xb5b5, 0, 0, 0xc0,
            0x4000, 0x40, 0x8b, 0x1d7, 0xb2, 0xa1, 0xa5a5, 0x38
        ]
    );
    // Busy bits at the end: A busy, B and C available; CR0.TS set by the switches.
    assert_eq!((m.gdt(0x38) >> 40) & 0xf, 0xb);
    assert_eq!((m.gdt(0x40) >> 40) & 0xf, 0x9);
    assert_eq!((m.gdt(0x48) >> 40) & 0xf, 0x9);
    assert_ne!(m.cpu.s.cr0 & cr0::TS, 0);
    // B's saved state: EBX and the EIP after its JMP back to A.
    assert_eq!(m.r32(TSS_B + 0x34), 0xb5b5);
}

#[test]
fn task_switch_to_16bit_tss_through_a_gdt_task_gate_and_t_bit_trap() {
    const TSS_D: u64 = 0x6000;
    const TSS_E: u64 = 0x6100;
    let mut p = Prog::new();
    let mut db = p.label();
    p.set(&mut db);
    p.report(0xdb);
    p.a.mov(eax, dr6).unwrap();
    p.a.and(eax, 0x8000).unwrap();
    p.report_reg(eax);
    p.report_mem(dword_ptr(esp));
    p.a.iretd().unwrap();
    let mut task_d = p.label();
    let mut task_e = p.label();
    p.main();
    p.report(0xa0);
    p.a.call_far(0x48, 0).unwrap(); // task gate in the GDT -> 16-bit TSS
    p.report(0xa1);
    p.a.movzx(eax, word_ptr(TSS_D as u32 + 0x18)).unwrap(); // D's saved BX
    p.report_reg(eax);
    p.a.jmp_far(0x50, 0).unwrap(); // TSS with the T bit: #DB before E's first instruction
    p.set(&mut task_d);
    p.report(0xd0);
    p.a.movzx(eax, bx).unwrap();
    p.report_reg(eax);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.mov(bx, 0x4321u32).unwrap();
    p.a.iretd().unwrap(); // NT: back to A
    p.set(&mut task_e);
    p.report(0xe0);
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(1, db, 0);
    // D runs 32-bit code in a segment based at CODE32 so that its 16-bit IP reaches it.
    m.set_gdt(0x58, seg(CODE32 as u32, 0xffff, 0x9a, 0x4));
    m.set_gdt(0x40, system(TSS_D as u32, 0x2b, ty::TSS16, 0));
    m.set_gdt(0x48, gate(ty::TASK, 0, 0x40, 0, 0));
    let ip = m.addr(task_d) - CODE32 as u32;
    m.w16(TSS_D + 0x0e, ip as u16);
    m.w16(TSS_D + 0x10, 2); // FLAGS
    m.w16(TSS_D + 0x18, 0x1234); // BX
    m.w16(TSS_D + 0x1a, 0xf000); // SP
    for (off, v) in [
        (0x22, sel::DATA0),
        (0x24, 0x58),
        (0x26, sel::DATA0),
        (0x28, sel::DATA0),
    ] {
        m.w16(TSS_D + off, v);
    }
    m.set_gdt(0x50, system(TSS_E as u32, 0x67, ty::TSS32, 0));
    let mut e = Tss32::ring0(m.addr(task_e), 0x7e000);
    e.trap = true;
    m.tss32(TSS_E, &e);
    let e_entry = m.addr(task_e);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [0xa0, 0xd0, 0x1234, 0x58, 0xa1, 0x4321, 0xdb, 0x8000, e_entry, 0xe0]
    );
    assert_eq!(m.cpu.s.tr.selector, 0x50);
}
