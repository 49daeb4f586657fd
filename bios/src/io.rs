//! Port I/O shorthands and the chips every service needs: PIC, CMOS.

use crate::Platform;

pub fn inb(p: &mut dyn Platform, port: u16) -> u8 {
    p.io_in(port, 1) as u8
}
pub fn inw(p: &mut dyn Platform, port: u16) -> u16 {
    p.io_in(port, 2) as u16
}
pub fn inl(p: &mut dyn Platform, port: u16) -> u32 {
    p.io_in(port, 4)
}
pub fn outb(p: &mut dyn Platform, port: u16, v: u8) {
    p.io_out(port, 1, u32::from(v));
}
pub fn outw(p: &mut dyn Platform, port: u16, v: u16) {
    p.io_out(port, 2, u32::from(v));
}
pub fn outl(p: &mut dyn Platform, port: u16, v: u32) {
    p.io_out(port, 4, v);
}

pub const PIC1_CMD: u16 = 0x20;
pub const PIC1_DATA: u16 = 0x21;
pub const PIC2_CMD: u16 = 0xA0;
pub const PIC2_DATA: u16 = 0xA1;
const PIC_EOI: u8 = 0x20;

/// Non-specific EOI for IRQ `irq` (both PICs for 8..=15).
pub fn eoi(p: &mut dyn Platform, irq: u8) {
    if irq >= 8 {
        outb(p, PIC2_CMD, PIC_EOI);
    }
    outb(p, PIC1_CMD, PIC_EOI);
}

/// Unmasks IRQ `irq` at its PIC.
pub fn unmask_irq(p: &mut dyn Platform, irq: u8) {
    let port = if irq >= 8 { PIC2_DATA } else { PIC1_DATA };
    let mask = inb(p, port) & !(1 << (irq & 7));
    outb(p, port, mask);
}

pub const CMOS_INDEX: u16 = 0x70;
pub const CMOS_DATA: u16 = 0x71;

pub fn cmos_read(p: &mut dyn Platform, reg: u8) -> u8 {
    outb(p, CMOS_INDEX, reg & 0x7F);
    inb(p, CMOS_DATA)
}

pub fn cmos_write(p: &mut dyn Platform, reg: u8, v: u8) {
    outb(p, CMOS_INDEX, reg & 0x7F);
    outb(p, CMOS_DATA, v);
}
