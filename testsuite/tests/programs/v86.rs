//! Virtual-8086 mode: the monitor for IOPL-sensitive instructions, the I/O bitmap, INT
//! through the IDT with IOPL 3, and CR4.VME interrupt redirection.

use super::*;

/// The virtual-8086 monitor (#GP handler): reports 0xD0, the error code, IP and the
/// opcode at CS:IP; skips CLI (1 byte) and two-byte instructions; HLT ends the program.
fn v86_monitor(p: &mut Prog) -> CodeLabel {
    let mut l = p.label();
    let mut one = p.label();
    let mut done = p.label();
    let mut back = p.label();
    p.set(&mut l);
    p.report(0xd0);
    // Interrupts from virtual-8086 mode leave DS..GS null in ring 0.
    p.a.mov(eax, ds).unwrap();
    p.report_reg(eax);
    p.a.mov(ax, u32::from(sel::DATA0)).unwrap();
    p.a.mov(ds, ax).unwrap();
    p.report_mem(dword_ptr(esp));
    p.report_mem(dword_ptr(esp + 4));
    p.a.movzx(ebx, word_ptr(esp + 8)).unwrap();
    p.a.shl(ebx, 4).unwrap();
    p.a.add(ebx, dword_ptr(esp + 4)).unwrap();
    p.a.movzx(eax, byte_ptr(ebx)).unwrap();
    p.report_reg(eax);
    p.a.cmp(al, 0xf4).unwrap();
    p.a.je(done).unwrap();
    p.a.cmp(al, 0xfa).unwrap();
    p.a.je(one).unwrap();
    p.a.add(dword_ptr(esp + 4), 2).unwrap();
    p.a.jmp(back).unwrap();
    p.set(&mut one);
    p.a.add(dword_ptr(esp + 4), 1).unwrap();
    p.set(&mut back);
    p.a.add(esp, 4).unwrap();
    p.a.iretd().unwrap();
    p.set(&mut done);
    // The frame from virtual-8086 mode: EFLAGS with VM, then ESP, SS, ES, DS, FS, GS.
    p.report_mem(dword_ptr(esp + 12));
    p.report_mem(dword_ptr(esp + 20));
    p.report_mem(dword_ptr(esp + 28));
    p.a.hlt().unwrap();
    l
}

/// IRETD from ring 0 into virtual-8086 mode at 0800:0000 (linear `CODE16`), SS:SP 0700:FFFE,
/// DS = 0x0123.
fn enter_v86(p: &mut Prog, eflags: u32) {
    for v in [0u32, 0, 0x0123, 0, 0x0700, 0xfffe, eflags, 0x0800, 0] {
        p.a.push(v).unwrap();
    }
    p.a.iretd().unwrap();
}

#[test]
fn v86_mode_with_iopl_0_traps_to_the_monitor() {
    let mut p = Prog::new();
    let monitor = v86_monitor(&mut p);
    p.main();
    enter_v86(&mut p, 0x2_0002);
    let mut m = p.build();
    m.int_gate(13, monitor, 0);
    let (code, _) = asm16(CODE16, |a, _| {
        a.mov(al, 0x11).unwrap();
        a.out(PORT as u32, al).unwrap(); // port allowed by the I/O bitmap
        a.out(0xec, al).unwrap(); // port denied: #GP(0)
        a.mov(ax, ds).unwrap();
        a.out(PORT as u32, ax).unwrap();
        a.int(0x21).unwrap(); // IOPL < 3: #GP(0)
        a.cli().unwrap(); // IOPL < 3: #GP(0)
        a.hlt().unwrap(); // CPL 3: #GP(0)
        Vec::new()
    });
    m.bus.load(CODE16, &code);
    m.w8(TSS0 + TSS0_IOMAP + 0xec / 8, 1 << (0xec % 8));
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            0x11, 0xd0, 0, 0, 4, 0xe6, 0x123, 0xd0, 0, 0, 0xa, 0xcd, 0xd0, 0, 0, 0xc, 0xfa, 0xd0,
            // The #GP of HLT is a fault: the pushed EFLAGS has RF set (SDM 17.3.1.1).
            0, 0, 0xd, 0xf4, 0x3_0002, 0x0700, 0x0123
        ]
    );
    assert!(!m.cpu.s.v86_mode());
}

#[test]
fn v86_mode_vme_interrupt_redirection() {
    let mut p = Prog::new();
    let monitor = v86_monitor(&mut p);
    let mut int20 = p.label();
    p.set(&mut int20);
    p.report(0x20);
    p.report_mem(dword_ptr(esp + 8)); // EFLAGS image: VM set
    p.a.iretd().unwrap();
    p.main();
    p.a.mov(eax, cr4).unwrap();
    p.a.or(eax, 1).unwrap(); // VME
    p.a.mov(cr4, eax).unwrap();
    enter_v86(&mut p, 0x2_0002);
    let mut m = p.build();
    m.int_gate(13, monitor, 0);
    m.int_gate(0x20, int20, 3);
    let (code, at) = asm16(CODE16, |a, _| {
        let mut handler = a.create_label();
        a.int(0x21).unwrap(); // redirected to the program's own IVT entry
        a.mov(al, 0x12).unwrap();
        a.out(PORT as u32, al).unwrap();
        a.int(0x20).unwrap(); // bit set in the redirection bitmap, IOPL 0: #GP(0)
        a.hlt().unwrap();
        a.set_label(&mut handler).unwrap();
        a.mov(al, 0x21).unwrap();
        a.out(PORT as u32, al).unwrap();
        a.pushf().unwrap();
        a.pop(ax).unwrap();
        a.out(PORT as u32, ax).unwrap(); // FLAGS inside: IF clear, IOPL 3 as VME shows it
        a.iret().unwrap();
        vec![handler]
    });
    m.bus.load(CODE16, &code);
    m.w16(0x21 * 4, (at[0] - CODE16 as u32) as u16);
    m.w16(0x21 * 4 + 2, 0x0800);
    m.w8(TSS0 + TSS0_REDIR + 0x20 / 8, 1);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        // The #GP of HLT is a fault: the pushed EFLAGS has RF set (SDM 17.3.1.1).
        [0x21, 0x3002, 0x12, 0xd0, 0, 0, 6, 0xcd, 0xd0, 0, 0, 8, 0xf4, 0x3_0002, 0x0700, 0x0123]
    );
}

#[test]
fn v86_mode_with_iopl_3_interrupts_through_the_idt() {
    let mut p = Prog::new();
    let monitor = v86_monitor(&mut p);
    let mut int20 = p.label();
    p.set(&mut int20);
    p.report(0x20);
    p.report_mem(dword_ptr(esp + 8));
    p.report_mem(dword_ptr(esp + 16));
    p.a.iretd().unwrap();
    p.main();
    enter_v86(&mut p, 0x2_3002);
    let mut m = p.build();
    m.int_gate(13, monitor, 0);
    m.int_gate(0x20, int20, 3);
    m.int_gate(0x22, int20, 0);
    let (code, _) = asm16(CODE16, |a, _| {
        a.cli().unwrap();
        a.sti().unwrap();
        a.int(0x20).unwrap();
        a.pushf().unwrap();
        a.pop(ax).unwrap();
        a.out(PORT as u32, ax).unwrap();
        a.int(0x22).unwrap(); // DPL-0 gate: #GP(22h*8+2)
        a.hlt().unwrap();
        Vec::new()
    });
    m.bus.load(CODE16, &code);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [
            // The #GP of HLT is a fault: the pushed EFLAGS has RF set (SDM 17.3.1.1).
            0x20, 0x2_3202, 0x0700, 0x3202, 0xd0, 0, 0x112, 0x8, 0xcd, 0xd0, 0, 0, 0xa, 0xf4,
            0x3_3202, 0x0700, 0x0123
        ]
    );
}
