//! System instructions: SGDT/SIDT/SLDT/STR/SMSW/LMSW/CLTS, LLDT, LAR/LSL/VERR/VERW/ARPL,
//! control and debug register checks.

use super::*;

/// Report ZF as 0 or 1 (clobbers EAX).
fn report_zf(p: &mut Prog) {
    p.a.setz(al).unwrap();
    p.a.movzx(eax, al).unwrap();
    p.report_reg(eax);
}

#[test]
fn table_registers_ldt_and_descriptor_queries() {
    let mut p = Prog::new();
    p.main();
    // SGDT/SIDT, STR/SLDT (a register destination is zero-extended), SMSW.
    p.a.sgdt(ptr(DATA as u32)).unwrap();
    p.a.movzx(eax, word_ptr(DATA as u32)).unwrap();
    p.report_reg(eax);
    p.report_mem(dword_ptr(DATA as u32 + 2));
    p.a.sidt(ptr(DATA as u32)).unwrap();
    p.report_mem(dword_ptr(DATA as u32 + 2));
    p.a.mov(eax, 0xffff_ffffu32).unwrap();
    p.a.str(eax).unwrap();
    p.report_reg(eax);
    p.a.sldt(eax).unwrap();
    p.report_reg(eax);
    p.a.smsw(eax).unwrap();
    p.a.and(eax, 0xffff).unwrap();
    p.report_reg(eax);
    // LLDT, then a data segment from the LDT (selector 0x0f: index 1, TI, RPL 3).
    p.a.mov(ax, 0x40u32).unwrap();
    p.a.lldt(ax).unwrap();
    p.a.mov(ax, 0x0fu32).unwrap();
    p.a.mov(fs, ax).unwrap();
    p.report_mem(dword_ptr(0x10).fs());
    // LAR / LSL with ZF: a code segment, a byte-granular data segment, an interrupt gate
    // (invisible to both), a selector beyond the GDT. LAR masks limit bits 19:16.
    for s in [u32::from(sel::CODE0), 0x48, 0x50, 0x208] {
        p.a.mov(ecx, s).unwrap();
        p.a.mov(eax, 0x5555_5555u32).unwrap();
        p.a.lar(eax, ecx).unwrap();
        p.report_reg(eax);
        p.a.mov(eax, 0x5555_5555u32).unwrap();
        p.a.lsl(eax, ecx).unwrap();
        p.report_reg(eax);
        report_zf(&mut p);
    }
    // Code is readable but not writable; ARPL raises the RPL of the destination.
    p.a.mov(ecx, u32::from(sel::CODE0)).unwrap();
    p.a.verr(cx).unwrap();
    report_zf(&mut p);
    p.a.verw(cx).unwrap();
    report_zf(&mut p);
    p.a.mov(ecx, 0x10u32).unwrap();
    p.a.mov(edx, 0x2bu32).unwrap();
    p.a.arpl(cx, dx).unwrap();
    report_zf(&mut p);
    p.report_reg(ecx);
    p.a.hlt().unwrap();
    let mut m = p.build();
    // LDT at 0x6000 with one DPL-3 data segment based at 0x6800.
    m.set_gdt(0x40, system(0x6000, 0x0f, ty::LDT, 0));
    m.w64(0x6008, seg(0x6800, 0xfff, 0xf2, 0x4));
    m.w32(0x6810, 0x1d7d_1d7d);
    m.set_gdt(0x48, seg(0x1234_5678, 0x12345, 0xf2, 0x4));
    m.set_gdt(0x50, gate(ty::INT32, 0, sel::CODE0, 0, 0));
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let tables = [0x1ff, GDT as u32, IDT as u32, 0x38, 0, 0x11, 0x1d7d_1d7d];
    let queries = [
        [0x00c0_9b00, 0xffff_ffff, 1],
        [0x0040_f200, 0x12345, 1],
        [0x5555_5555, 0x5555_5555, 0],
        [0x5555_5555, 0x5555_5555, 0],
    ];
    let rest = [1, 0, 1, 0x13];
    let expected: Vec<u32> = tables
        .into_iter()
        .chain(queries.into_iter().flatten())
        .chain(rest)
        .collect();
    assert_eq!(m.reports(), expected);
    assert_eq!(m.cpu.s.ldtr.selector, 0x40);
}

#[test]
fn control_and_debug_register_checks() {
    let mut p = Prog::new();
    let gp = resume_handler(&mut p, 13);
    // #UD and #DB handlers resume at ESI too (no error code).
    let mut ud = p.label();
    p.set(&mut ud);
    p.report(0xf006);
    p.a.mov(dword_ptr(esp), esi).unwrap();
    p.a.iretd().unwrap();
    let mut db = p.label();
    p.set(&mut db);
    p.report(0xf001);
    p.a.mov(eax, dr6).unwrap();
    p.a.and(eax, 0x2000).unwrap();
    p.report_reg(eax);
    p.a.mov(dword_ptr(esp), esi).unwrap();
    p.a.iretd().unwrap();
    p.main();
    // CR4 bits the model lacks: #GP(0). DR4 with CR4.DE: #UD. DR7.GD: #DB on the next access.
    let mut r1 = p.label();
    expect_fault(&mut p, r1);
    p.a.mov(eax, 1u32 << 9).unwrap();
    p.a.mov(cr4, eax).unwrap();
    p.set(&mut r1);
    p.a.mov(eax, 8u32).unwrap();
    p.a.mov(cr4, eax).unwrap();
    let mut r2 = p.label();
    expect_fault(&mut p, r2);
    p.a.mov(eax, dr4).unwrap();
    p.set(&mut r2);
    p.a.mov(eax, 0x2000u32).unwrap();
    p.a.mov(dr7, eax).unwrap();
    let mut r3 = p.label();
    expect_fault(&mut p, r3);
    p.a.mov(dr0, eax).unwrap();
    p.set(&mut r3);
    p.a.mov(eax, dr7).unwrap();
    p.report_reg(eax);
    // PG without PE: #GP(0). LMSW sets TS but cannot clear PE; CLTS clears TS.
    let mut r4 = p.label();
    expect_fault(&mut p, r4);
    p.a.mov(eax, 0x8000_0000u32).unwrap();
    p.a.mov(cr0, eax).unwrap();
    p.set(&mut r4);
    p.a.mov(eax, 0x8u32).unwrap();
    p.a.lmsw(ax).unwrap();
    p.a.smsw(eax).unwrap();
    p.a.and(eax, 0xf).unwrap();
    p.report_reg(eax);
    p.a.clts().unwrap();
    p.a.smsw(eax).unwrap();
    p.a.and(eax, 0xf).unwrap();
    p.report_reg(eax);
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(13, gp, 0);
    m.int_gate(6, ud, 0);
    m.int_gate(1, db, 0);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let expected = [
        0xf00d, 0, 0xf006, 0xf001, 0x2000, 0x400, 0xf00d, 0, 0x9, 0x1,
    ];
    assert_eq!(m.reports(), expected);
    assert_eq!(m.cpu.s.cr4, 8);
}
