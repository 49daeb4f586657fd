//! Selector faults and their error codes, double fault, triple fault.

use super::*;

#[test]
fn selector_faults_have_the_right_error_codes() {
    let mut p = Prog::new();
    let gp = resume_handler(&mut p, 13);
    let np = resume_handler(&mut p, 11);
    let ss_fault = resume_handler(&mut p, 12);
    let mut ts_task = p.label();
    p.main();
    let loads: [(AsmRegisterSegment, u32); 7] = [
        (ds, 0x40),  // not present data segment: #NP(40)
        (ss, 0x30),  // SS with DPL 3 at CPL 0: #GP(30)
        (ss, 0x48),  // SS not present: #SS(48)
        (ds, 0x50),  // execute-only code into DS: #GP(50)
        (es, 0x208), // beyond the GDT limit: #GP(208)
        (fs, 0x0c),  // LDT selector with a null LDTR: #GP(0c)
        (ss, 0),     // null SS: #GP(0)
    ];
    for (s, v) in loads {
        let mut resume = p.label();
        expect_fault(&mut p, resume);
        p.a.mov(ax, v).unwrap();
        p.a.mov(s, ax).unwrap();
        p.set(&mut resume);
    }
    // A null DS loads, but using it is #GP(0).
    let mut resume = p.label();
    p.a.xor(eax, eax).unwrap();
    p.a.mov(ds, ax).unwrap();
    expect_fault(&mut p, resume);
    p.a.mov(eax, dword_ptr(0)).unwrap();
    p.set(&mut resume);
    // Beyond the limit of a small stack segment: #SS(0).
    let mut resume = p.label();
    p.a.mov(ax, 0x58u32).unwrap();
    p.a.mov(ss, ax).unwrap();
    p.a.mov(esp, 0xe000u32).unwrap();
    p.a.mov(ebp, 0x1_0000u32).unwrap();
    expect_fault(&mut p, resume);
    p.a.mov(eax, dword_ptr(ebp)).unwrap();
    p.set(&mut resume);
    // A TSS shorter than 0x67 bytes: #TS(60) before the switch, in TSS0.
    let mut resume_ts = p.label();
    expect_fault(&mut p, resume_ts);
    p.a.jmp_far(0x60, 0).unwrap();
    p.set(&mut resume_ts);
    // A TSS whose SS is a code segment: #TS(50) after the switch, in the new task, delivered
    // through a task gate (the faulting task's segments are not usable).
    p.a.jmp_far(0x68, 0).unwrap();
    p.a.hlt().unwrap();
    // The #TS handler task: reports the error code and its back-link; a fault of TSS0 is
    // resumed at the ESI that TSS0 saved, a fault of the broken task ends the program.
    let mut fix = p.label();
    p.set(&mut ts_task);
    p.report(0x7500);
    p.a.pop(eax).unwrap();
    p.report_reg(eax);
    p.a.movzx(eax, word_ptr(0x6100)).unwrap();
    p.report_reg(eax);
    p.a.cmp(eax, u32::from(sel::TSS0)).unwrap();
    p.a.je(fix).unwrap();
    p.a.str(ax).unwrap();
    p.a.movzx(eax, ax).unwrap();
    p.report_reg(eax);
    p.a.hlt().unwrap();
    p.set(&mut fix);
    p.report_mem(dword_ptr(TSS0 as u32 + 0x40));
    p.a.mov(eax, dword_ptr(TSS0 as u32 + 0x40)).unwrap();
    p.a.mov(dword_ptr(TSS0 as u32 + 0x20), eax).unwrap();
    p.a.iretd().unwrap();
    p.a.jmp(ts_task).unwrap();
    let mut m = p.build();
    m.int_gate(13, gp, 0);
    m.int_gate(11, np, 0);
    m.int_gate(12, ss_fault, 0);
    m.set_gdt(0x40, seg(0, 0xfffff, 0x12, 0xc));
    m.set_gdt(0x48, seg(0, 0xfffff, 0x12, 0xc));
    m.set_gdt(0x50, seg(0, 0xfffff, 0x98, 0xc));
    m.set_gdt(0x58, seg(0x9_0000, 0xefff, 0x92, 0x4));
    m.set_gdt(0x60, system(0x6000, 0x50, ty::TSS32, 0));
    m.set_gdt(0x68, system(0x6080, 0x67, ty::TSS32, 0));
    let mut bad = Tss32::ring0(0x1234, 0x7f000);
    bad.seg[SegReg::Ss as usize] = 0x50;
    m.tss32(0x6080, &bad);
    // #TS handler task.
    m.set_gdt(0x70, system(0x6100, 0x67, ty::TSS32, 0));
    let t = Tss32::ring0(m.addr(ts_task), 0x7e000);
    m.tss32(0x6100, &t);
    m.set_idt(10, gate(ty::TASK, 0, 0x70, 0, 0));
    let resume = m.addr(resume_ts);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0xf00b, 0x40, 0xf00d, 0x30, 0xf00c, 0x48, 0xf00d, 0x50, 0xf00d, 0x208, 0xf00d, 0x0c,
            0xf00d, 0, 0xf00d, 0, 0xf00c, 0, 0x7500, 0x60, 0x38, resume, 0x7500, 0x50, 0x68, 0x70
        ]
    );
    // The faulting task's EIP was saved as the new task's first instruction.
    assert_eq!(m.r32(0x6080 + 0x20), 0x1234);
}

#[test]
fn double_fault_when_the_gp_gate_is_not_present() {
    let mut p = Prog::new();
    let mut df = p.label();
    p.set(&mut df);
    p.report(0xdf);
    p.report_mem(dword_ptr(esp));
    p.report_mem(dword_ptr(esp + 4));
    p.a.hlt().unwrap();
    let mut fault = p.label();
    p.main();
    p.a.mov(ax, 0x208u32).unwrap();
    p.set(&mut fault);
    p.a.mov(ds, ax).unwrap(); // #GP(208) -> gate 13 not present: #NP(6B) -> #DF
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.set_idt(13, 0);
    m.int_gate(8, df, 0);
    let at = m.addr(fault);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(m.reports(), [0xdf, 0, at]);
}

#[test]
fn triple_fault_shuts_down() {
    let mut p = Prog::new();
    p.main();
    p.report(1);
    p.a.int3().unwrap();
    p.report(2);
    p.a.hlt().unwrap();
    let mut m = p.build();
    for v in 0..32 {
        m.set_idt(v, 0);
    }
    assert_eq!(m.run(BUDGET), RunExit::Shutdown);
    assert_eq!(m.reports(), [1]);
    assert_eq!(m.run(BUDGET), RunExit::Shutdown);
}
