//! x87 programs: arithmetic reported through OUT, #MF with CR0.NE = 1, the FERR#/IRQ 13
//! path with CR0.NE = 0, and #NM from CR0.TS and CR0.EM.

use super::*;

/// Report the low and high dwords of a qword of memory (clobbers EAX).
fn report_qword(p: &mut Prog, at: u32) {
    p.report_mem(dword_ptr(at));
    p.report_mem(dword_ptr(at + 4));
}

#[test]
fn fpu_arithmetic_program() {
    let d = DATA as u32;
    let mut p = Prog::new();
    p.main();
    let a = &mut p.a;
    a.mov(dword_ptr(d), 10u32).unwrap();
    a.mov(dword_ptr(d + 4), 4u32).unwrap();
    a.fninit().unwrap();
    // 10 / 4 = 2.5, stored rounded to nearest even: 2.
    a.fild(dword_ptr(d)).unwrap();
    a.fild(dword_ptr(d + 4)).unwrap();
    a.fdivp(st1, st0).unwrap();
    a.fist(dword_ptr(d + 8)).unwrap();
    // 2.5 · 2.5 = 6.25 as a double.
    a.fmul_2(st0, st0).unwrap();
    a.fstp(qword_ptr(d + 16)).unwrap();
    // π as a double, sqrt(2) as a float, 1234 as packed BCD.
    a.fldpi().unwrap();
    a.fstp(qword_ptr(d + 24)).unwrap();
    a.fld1().unwrap();
    a.fadd_2(st0, st0).unwrap();
    a.fsqrt().unwrap();
    a.fstp(dword_ptr(d + 32)).unwrap();
    a.mov(dword_ptr(d + 36), 1234u32).unwrap();
    a.fild(dword_ptr(d + 36)).unwrap();
    a.fbstp(tword_ptr(d + 40)).unwrap();
    a.fnstsw(ax).unwrap();
    a.movzx(eax, ax).unwrap();
    p.report_reg(eax);
    p.report_mem(dword_ptr(d + 8));
    report_qword(&mut p, d + 16);
    report_qword(&mut p, d + 24);
    p.report_mem(dword_ptr(d + 32));
    p.report_mem(dword_ptr(d + 40));
    p.a.hlt().unwrap();
    let mut m = p.build();
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x0020, // PE from sqrt(2) → float; TOP back at 0
            2,
            0,
            0x4019_0000,
            0x5444_2d18,
            0x4009_21fb,
            std::f32::consts::SQRT_2.to_bits(),
            0x1234,
        ]
    );
}

/// A program that divides by zero with #Z unmasked, then waits.
fn divide_by_zero(p: &mut Prog) {
    let d = DATA as u32;
    let a = &mut p.a;
    a.fninit().unwrap();
    a.mov(word_ptr(d), 0x037bu32).unwrap();
    a.fldcw(word_ptr(d)).unwrap();
    a.fld1().unwrap();
    a.fldz().unwrap();
    a.fdivp(st1, st0).unwrap();
}

#[test]
fn unmasked_exception_raises_mf_at_the_next_waiting_instruction() {
    let mut p = Prog::new();
    // #MF handler: report, FSW, clear the exception, return to the FWAIT.
    let mut mf = p.label();
    p.set(&mut mf);
    p.report(0xf010);
    p.a.fnstsw(ax).unwrap();
    p.a.movzx(eax, ax).unwrap();
    p.report_reg(eax);
    p.a.fnclex().unwrap();
    p.a.iretd().unwrap();
    p.main();
    p.a.mov(eax, cr0).unwrap();
    p.a.or(eax, cr0::NE as i32).unwrap();
    p.a.mov(cr0, eax).unwrap();
    divide_by_zero(&mut p);
    p.report(1);
    p.a.wait().unwrap();
    p.report(2);
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(16, mf, 0);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    // ZE, ES, B, TOP=6: the quotient was not stored and nothing was popped.
    assert_eq!(m.reports(), [1, 0xf010, 0xb084, 2]);
}

#[test]
fn ferr_raises_irq13_with_ne_clear() {
    let mut p = Prog::new();
    // IRQ 13 handler (INT 75h here): report, acknowledge through port F0h, clear, return.
    let mut irq13 = p.label();
    p.set(&mut irq13);
    p.report(0x75);
    p.a.xor(eax, eax).unwrap();
    p.a.out(0xf0u32, al).unwrap();
    p.a.fnclex().unwrap();
    p.a.iretd().unwrap();
    p.main();
    divide_by_zero(&mut p);
    p.report(1);
    p.a.sti().unwrap();
    p.a.wait().unwrap();
    p.report(2);
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(0x75, irq13, 0);
    // The processor freezes at the FWAIT with FERR# asserted.
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(m.reports(), [1]);
    assert!(m.cpu.s.x87.ferr);
    // The machine's part: FERR# → IRQ 13 through the PIC.
    m.bus.pending_irq = Some(0x75);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(m.reports(), [1, 0x75, 2]);
    assert!(!m.cpu.s.x87.ferr);
    assert!(m.bus.port_writes.iter().any(|w| w.0 == 0xf0));
}

#[test]
fn device_not_available_from_ts_and_em() {
    let mut p = Prog::new();
    // #NM handler: report CR0's EM/TS, clear both, retry the instruction.
    let mut nm = p.label();
    p.set(&mut nm);
    p.report(0xf007);
    p.a.mov(eax, cr0).unwrap();
    p.a.and(eax, (cr0::EM | cr0::TS) as i32).unwrap();
    p.a.out(PORT as u32, eax).unwrap();
    p.a.clts().unwrap();
    p.a.mov(eax, cr0).unwrap();
    p.a.and(eax, !(cr0::EM as i32)).unwrap();
    p.a.mov(cr0, eax).unwrap();
    p.a.iretd().unwrap();
    p.main();
    for bit in [cr0::TS, cr0::EM] {
        p.a.mov(eax, cr0).unwrap();
        p.a.or(eax, bit as i32).unwrap();
        p.a.mov(cr0, eax).unwrap();
        p.a.fninit().unwrap();
        p.report(1);
    }
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(7, nm, 0);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [0xf007, cr0::TS as u32, 1, 0xf007, cr0::EM as u32, 1]
    );
}
