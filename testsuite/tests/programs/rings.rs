//! Privilege transitions: call gates with parameters, IRET to ring 3, interrupts back to
//! ring 0 on the TSS stack, conforming segments, 16-bit call gates.

use super::*;

#[test]
fn call_gates_and_interrupts_across_rings() {
    let mut p = Prog::new();
    // Ring-0 routine behind the call gate: reports CS, SS, ESP, both parameters and the
    // caller's SS, loads ES with a ring-0 segment, and returns releasing the parameters.
    let mut routine = p.label();
    p.set(&mut routine);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.mov(eax, ss).unwrap();
    p.report_reg(eax);
    p.report_reg(esp);
    p.report_mem(dword_ptr(esp + 8));
    p.report_mem(dword_ptr(esp + 12));
    p.report_mem(dword_ptr(esp + 20));
    p.a.mov(ax, u32::from(sel::DATA0)).unwrap();
    p.a.mov(es, ax).unwrap();
    p.a.retf_1(8).unwrap();
    // INT 80h handler (DPL 3 gate): reports the frame the stack switch built.
    let mut int80 = p.label();
    p.set(&mut int80);
    p.report(0x80);
    p.report_reg(esp);
    p.report_mem(dword_ptr(esp + 4));
    p.report_mem(dword_ptr(esp + 12));
    p.report_mem(dword_ptr(esp + 16));
    p.a.iretd().unwrap();
    // INT 82h ends the program in ring 0.
    let mut done = p.label();
    p.set(&mut done);
    p.report(0x82);
    p.a.hlt().unwrap();
    let gp = resume_handler(&mut p, 13);
    let mut user = p.label();
    p.main();
    p.enter_ring3(user, 0x3002);
    p.set(&mut user);
    p.a.mov(ax, u32::from(sel::DATA3)).unwrap();
    p.a.mov(ds, ax).unwrap();
    p.a.mov(es, ax).unwrap();
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.push(0x1111u32).unwrap();
    p.a.push(0x2222u32).unwrap();
    p.a.call_far(0x43, 0).unwrap();
    p.report_reg(esp);
    p.a.mov(eax, es).unwrap();
    p.report_reg(eax);
    p.a.int(0x80).unwrap();
    p.report(0x8a);
    // A DPL-0 interrupt gate from ring 3: #GP(81h*8+2).
    let mut r1 = p.label();
    expect_fault(&mut p, r1);
    p.a.int(0x81).unwrap();
    p.set(&mut r1);
    // A DPL-0 call gate from ring 3: #GP(48).
    let mut r2 = p.label();
    expect_fault(&mut p, r2);
    p.a.call_far(0x4b, 0).unwrap();
    p.set(&mut r2);
    // Privileged instruction at CPL 3: #GP(0).
    let mut r3 = p.label();
    expect_fault(&mut p, r3);
    p.a.mov(eax, cr0).unwrap();
    p.set(&mut r3);
    // A far jump straight to ring-0 code: #GP(08).
    let mut r4 = p.label();
    expect_fault(&mut p, r4);
    p.a.jmp_far(sel::CODE0, 0).unwrap();
    p.set(&mut r4);
    p.a.int(0x82).unwrap();
    let mut m = p.build();
    let routine = m.addr(routine);
    m.set_gdt(0x40, gate(ty::CALL32, 3, sel::CODE0, routine, 2));
    m.set_gdt(0x48, gate(ty::CALL32, 0, sel::CODE0, routine, 0));
    m.int_gate(0x80, int80, 3);
    m.int_gate(0x81, int80, 0);
    m.int_gate(0x82, done, 3);
    m.int_gate(13, gp, 0);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let (s0, s3) = (STACK0, STACK3);
    let gate_call = [0x2b, 0x08, 0x10, s0 - 24, 0x2222, 0x1111, 0x33, s3, 0];
    let int80 = [0x80, s0 - 20, 0x2b, s3, 0x33, 0x8a];
    let faults = [0xf00d, 0x40a, 0xf00d, 0x48, 0xf00d, 0, 0xf00d, 0x08, 0x82];
    assert_eq!(m.reports(), [&gate_call[..], &int80, &faults].concat());
    assert_eq!(m.cpu.s.cpl(), 0);
}

#[test]
fn conforming_segments_and_16bit_call_gates() {
    let mut p = Prog::new();
    // Conforming ring-0 code called from ring 3 runs at CPL 3.
    let mut conforming = p.label();
    p.set(&mut conforming);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.retf().unwrap();
    // Ring-0 routine behind a 16-bit call gate: a 16-bit frame with one word parameter.
    let mut routine = p.label();
    p.set(&mut routine);
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.report_reg(esp);
    for off in [0, 2, 4, 6, 8] {
        p.a.movzx(eax, word_ptr(esp + off)).unwrap();
        p.report_reg(eax);
    }
    p.a.add_instruction(Instruction::with1(Code::Retfw_imm16, 2u32).unwrap())
        .unwrap();
    let mut done = p.label();
    p.set(&mut done);
    p.report(0x82);
    p.a.hlt().unwrap();
    let mut user = p.label();
    p.main();
    p.enter_ring3(user, 0x3002);
    p.set(&mut user);
    p.a.call_far(0x63, 0).unwrap(); // offset patched below
    p.a.jmp_far(0x7b, 0).unwrap(); // to 16-bit ring-3 code
    let mut m = p.build();
    m.int_gate(0x82, done, 3);
    // 0x60: conforming code based at CODE32; the far call's offset is patched to reach it.
    m.set_gdt(0x60, seg(CODE32 as u32, 0xffff, 0x9e, 0x4));
    let call_at = m.addr(user);
    let target = m.addr(conforming) - CODE32 as u32;
    m.w32(u64::from(call_at) + 1, target);
    // 0x68: 16-bit call gate (DPL 3, one parameter) to ring-0 code based at CODE32.
    m.set_gdt(0x70, seg(CODE32 as u32, 0xffff, 0x9a, 0x4));
    let r = m.addr(routine) - CODE32 as u32;
    m.set_gdt(0x68, gate(ty::CALL16, 3, 0x70, r, 1));
    // 0x78: 16-bit ring-3 code at CODE16, 0x80: 16-bit ring-3 stack based at 0x80000.
    m.set_gdt(0x78, seg(CODE16 as u32, 0xffff, 0xfa, 0));
    m.set_gdt(0x80, seg(0x8_0000, 0xffff, 0xf2, 0));
    let (code, at) = asm16(0, |a, _| {
        let mut ret = a.create_label();
        a.mov(ax, 0x83u32).unwrap();
        a.mov(ss, ax).unwrap();
        a.mov(sp, 0xf000u32).unwrap();
        a.push(0x55u32).unwrap();
        a.call_far(0x6b, 0).unwrap();
        a.set_label(&mut ret).unwrap();
        a.movzx(eax, sp).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.mov(ax, cs).unwrap();
        a.out(PORT as u32, ax).unwrap();
        a.int(0x82).unwrap();
        vec![ret]
    });
    m.bus.load(CODE16, &code);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let frame16 = [at[0], 0x7b, 0x55, 0xeffe, 0x83];
    let expected = [
        &[0x63, 0x70, STACK0 - 10][..],
        &frame16,
        &[0xf000, 0x7b, 0x82],
    ];
    assert_eq!(m.reports(), expected.concat());
}
