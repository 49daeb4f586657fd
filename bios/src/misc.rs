//! INT 11h, 12h, 14h (serial ports), 17h (printers) and the PS/2 mouse interrupt.

use crate::bda;
use crate::call::{Call, Outcome};
use crate::guest::rd16;
use crate::io::{eoi, inb, outb};

pub fn int11(c: &mut Call) -> Outcome {
    let v = rd16(c.p, bda::EQUIPMENT);
    c.set_ax(v);
    Outcome::Return
}

pub fn int12(c: &mut Call) -> Outcome {
    let v = rd16(c.p, bda::MEM_KIB);
    c.set_ax(v);
    Outcome::Return
}

/// Line status (AH) and modem status (AL) of the UART at `base`.
fn line_status(c: &mut Call, base: u16) -> u16 {
    (u16::from(inb(c.p, base + 5)) << 8) | u16::from(inb(c.p, base + 6))
}

pub fn int14(c: &mut Call) -> Outcome {
    let port = c.r.dx();
    let base = if port < 4 {
        rd16(c.p, bda::COM_PORTS + u64::from(port) * 2)
    } else {
        0
    };
    if base == 0 {
        c.set_ah(0x80);
        return Outcome::Return;
    }
    match c.r.ah() {
        0x00 => {
            // AL: baud (bits 7-5), parity (4-3), stop bits (2), word length (1-0).
            const DIVISORS: [u16; 8] = [1047, 768, 384, 192, 96, 48, 24, 12];
            let div = DIVISORS[usize::from(c.r.al() >> 5)];
            outb(c.p, base + 3, 0x80);
            outb(c.p, base, div as u8);
            outb(c.p, base + 1, (div >> 8) as u8);
            outb(c.p, base + 3, c.r.al() & 0x1F);
            let st = line_status(c, base);
            c.set_ax(st);
        }
        0x01 => {
            let ready = (0..1000).any(|_| inb(c.p, base + 5) & 0x20 != 0);
            if ready {
                outb(c.p, base, c.r.al());
            }
            let lsr = inb(c.p, base + 5) | if ready { 0 } else { 0x80 };
            c.set_ah(lsr);
        }
        0x02 => {
            let lsr = inb(c.p, base + 5);
            if lsr & 0x01 != 0 {
                let b = inb(c.p, base);
                c.set_al(b);
                c.set_ah(lsr & 0x1E);
            } else {
                c.set_ah(lsr | 0x80);
            }
        }
        0x03 => {
            let st = line_status(c, base);
            c.set_ax(st);
        }
        _ => {}
    }
    Outcome::Return
}

/// No printer ports are driven: report a time-out.
pub fn int17(c: &mut Call) -> Outcome {
    c.set_ah(0x01);
    Outcome::Return
}

/// IRQ 12: take the byte so the controller can go on, and acknowledge.
pub fn irq12(c: &mut Call) -> Outcome {
    inb(c.p, 0x60);
    eoi(c.p, 12);
    Outcome::Return
}
