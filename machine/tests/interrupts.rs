//! Interrupts end to end on the whole board: the PIT's IRQ 0 reaches the CPU through the 8259
//! (local APIC in virtual-wire mode), then through the IOAPIC and local APIC with the 8259
//! masked. The guest counts both kinds in RAM and powers off.

mod common;

use common::{idt_gate, real_mode_part, IDT};
use iced_x86::code_asm::*;
use nestor_machine::{Machine, MachineConfig, MachineExit};

const PIC_COUNT: u64 = 0x2000;
const APIC_COUNT: u64 = 0x2004;

/// 32-bit part at linear 0xF1000.
fn protected_part() -> Result<Vec<u8>, IcedError> {
    const BASE: u64 = 0xf1000;
    let mut a = CodeAssembler::new(32)?;
    let mut pic_handler = a.create_label();
    let mut apic_handler = a.create_label();
    let mut wait_pic = a.create_label();
    let mut wait_apic = a.create_label();
    a.mov(ax, 0x10)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    a.mov(esp, 0x7000)?;
    // Handlers live at fixed offsets in this block (see below): 0xF1200 and 0xF1300.
    idt_gate(&mut a, 0x20, 0xf1200)?;
    idt_gate(&mut a, 0x30, 0xf1300)?;
    a.mov(word_ptr(0x830), 256 * 8 - 1)?;
    a.mov(dword_ptr(0x832), IDT)?;
    a.lidt(ptr(0x830))?;
    // 8259: ICW1-4, master at vector 0x20, only IRQ 0 unmasked.
    for (port, v) in [
        (0x20, 0x11),
        (0x21, 0x20),
        (0x21, 0x04),
        (0x21, 0x01),
        (0x21, 0xfe),
    ] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    for (port, v) in [
        (0xa0, 0x11),
        (0xa1, 0x28),
        (0xa1, 0x02),
        (0xa1, 0x01),
        (0xa1, 0xff),
    ] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    // PIT channel 0, mode 2, divisor 1193: about 1 kHz.
    for (port, v) in [(0x43, 0x34), (0x40, 1193 & 0xff), (0x40, 1193 >> 8)] {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    a.sti()?;
    a.set_label(&mut wait_pic)?;
    a.hlt()?;
    a.cmp(dword_ptr(PIC_COUNT as u32), 5)?;
    a.jb(wait_pic)?;
    // Mask the 8259; route IOAPIC pin 2 (ISA IRQ 0) to vector 0x30; enable the local APIC.
    a.mov(al, 0xff)?;
    a.out(0x21, al)?;
    a.mov(dword_ptr(0xfec0_0000u32), 0x15)?;
    a.mov(dword_ptr(0xfec0_0010u32), 0)?;
    a.mov(dword_ptr(0xfec0_0000u32), 0x14)?;
    a.mov(dword_ptr(0xfec0_0010u32), 0x30)?;
    a.mov(dword_ptr(0xfee0_00f0u32), 0x1ff)?;
    a.set_label(&mut wait_apic)?;
    a.hlt()?;
    a.cmp(dword_ptr(APIC_COUNT as u32), 5)?;
    a.jb(wait_apic)?;
    a.cli()?;
    a.mov(dx, 0x8900)?;
    for c in b"Shutdown" {
        a.mov(al, u32::from(*c))?;
        a.out(dx, al)?;
    }
    a.hlt()?;
    // Pad to the handlers' fixed offsets.
    a.zero_bytes()?;
    let mut code = a.assemble(BASE)?;
    code.resize(0x200, 0x90);
    let mut h = CodeAssembler::new(32)?;
    h.set_label(&mut pic_handler)?;
    h.inc(dword_ptr(PIC_COUNT as u32))?;
    h.mov(al, 0x20)?;
    h.out(0x20, al)?;
    h.iretd()?;
    code.extend(h.assemble(BASE + 0x200)?);
    code.resize(0x300, 0x90);
    let mut h = CodeAssembler::new(32)?;
    h.set_label(&mut apic_handler)?;
    h.inc(dword_ptr(APIC_COUNT as u32))?;
    h.mov(dword_ptr(0xfee0_00b0u32), 0)?;
    h.iretd()?;
    code.extend(h.assemble(BASE + 0x300)?);
    Ok(code)
}

fn rom() -> Vec<u8> {
    let mut image = vec![0xffu8; 64 << 10];
    let real = real_mode_part().expect("16-bit part");
    image[..real.len()].copy_from_slice(&real);
    let prot = protected_part().expect("32-bit part");
    image[0x1000..0x1000 + prot.len()].copy_from_slice(&prot);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    image
}

#[test]
fn pit_interrupts_arrive_through_the_pic_then_through_the_ioapic() {
    let mut m = Machine::new(MachineConfig::new(rom(), 16)).expect("machine");
    let exit = m.run(Some(20_000_000)).expect("run");
    let mut counts = [0u8; 8];
    assert!(m.board.wires.mem.read(PIC_COUNT, &mut counts));
    let pic = u32::from_le_bytes([counts[0], counts[1], counts[2], counts[3]]);
    let apic = u32::from_le_bytes([counts[4], counts[5], counts[6], counts[7]]);
    assert_eq!(exit, MachineExit::PowerOff, "pic {pic} apic {apic}");
    assert!(pic >= 5 && apic >= 5, "pic {pic} apic {apic}");
}
