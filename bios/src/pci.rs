//! PCI configuration space (mechanism #1, ports 0xCF8/0xCFC) and the PCI BIOS: INT 1Ah
//! AH=B1h in real mode, and the same functions through the 32-bit entry the BIOS32 service
//! directory hands out.

use crate::call::{r, Call, Outcome};
use crate::guest;
use crate::io::{inb, inl, inw, outb, outl, outw};
use crate::{rom_layout, Platform, TrapResult};
use nestor_cpu::state::rflags;
use nestor_cpu::{CpuState, SegReg};

/// Bus, device and function packed as the PCI BIOS does: bus << 8 | device << 3 | function.
pub type Bdf = u16;

fn address(bdf: Bdf, reg: u16) -> u32 {
    0x8000_0000 | (u32::from(bdf) << 8) | u32::from(reg & 0xFC)
}

pub fn read32(p: &mut dyn Platform, bdf: Bdf, reg: u16) -> u32 {
    outl(p, 0xCF8, address(bdf, reg));
    inl(p, 0xCFC)
}
pub fn read16(p: &mut dyn Platform, bdf: Bdf, reg: u16) -> u16 {
    outl(p, 0xCF8, address(bdf, reg));
    inw(p, 0xCFC + (reg & 2))
}
pub fn read8(p: &mut dyn Platform, bdf: Bdf, reg: u16) -> u8 {
    outl(p, 0xCF8, address(bdf, reg));
    inb(p, 0xCFC + (reg & 3))
}
pub fn write32(p: &mut dyn Platform, bdf: Bdf, reg: u16, v: u32) {
    outl(p, 0xCF8, address(bdf, reg));
    outl(p, 0xCFC, v);
}
pub fn write16(p: &mut dyn Platform, bdf: Bdf, reg: u16, v: u16) {
    outl(p, 0xCF8, address(bdf, reg));
    outw(p, 0xCFC + (reg & 2), v);
}
pub fn write8(p: &mut dyn Platform, bdf: Bdf, reg: u16, v: u8) {
    outl(p, 0xCF8, address(bdf, reg));
    outb(p, 0xCFC + (reg & 3), v);
}

/// Every function present on bus 0 (multi-function devices included), in order.
pub fn devices(p: &mut dyn Platform) -> Vec<Bdf> {
    let mut found = Vec::new();
    for dev in 0..32u16 {
        let bdf = dev << 3;
        if read16(p, bdf, 0) == 0xFFFF {
            continue;
        }
        found.push(bdf);
        if read8(p, bdf, 0x0E) & 0x80 != 0 {
            for f in 1..8 {
                if read16(p, bdf | f, 0) != 0xFFFF {
                    found.push(bdf | f);
                }
            }
        }
    }
    found
}

/// The `index`-th function with class/subclass `class` (programming interface ignored).
pub fn find_class(p: &mut dyn Platform, class: u16, index: usize) -> Option<Bdf> {
    devices(p)
        .into_iter()
        .filter(|&bdf| (read32(p, bdf, 8) >> 16) as u16 == class)
        .nth(index)
}

/// The registers a PCI BIOS function reads and writes.
#[derive(Clone, Copy, Debug, Default)]
struct Regs {
    eax: u32,
    ebx: u32,
    ecx: u32,
    edx: u32,
    esi: u32,
    edi: u32,
}

const SUCCESSFUL: u8 = 0x00;
const FUNC_NOT_SUPPORTED: u8 = 0x81;
const BAD_VENDOR_ID: u8 = 0x83;
const DEVICE_NOT_FOUND: u8 = 0x86;
const BAD_REGISTER_NUMBER: u8 = 0x87;

fn set_ah(r: &mut Regs, v: u8) {
    r.eax = (r.eax & !0xFF00) | (u32::from(v) << 8);
}

/// One PCI BIOS function (AL of AX=B1xxh); returns CF.
fn function(p: &mut dyn Platform, r: &mut Regs) -> bool {
    let bdf = r.ebx as u16;
    let reg = r.edi as u16;
    let status = match r.eax as u8 {
        0x01 => {
            // Mechanism #1, interface level 2.10, one bus, "PCI ", the 32-bit entry.
            r.eax = (r.eax & 0xFFFF_0000) | 0x0001;
            r.ebx = (r.ebx & 0xFFFF_0000) | 0x0210;
            r.ecx &= 0xFFFF_FF00;
            r.edx = 0x2049_4350;
            r.edi = 0xF_0000 + u32::from(rom_layout::F_PCI32_ENTRY);
            SUCCESSFUL
        }
        0x02 => {
            let (dev, ven) = (r.ecx as u16, r.edx as u16);
            if ven == 0xFFFF {
                BAD_VENDOR_ID
            } else {
                let found = devices(p)
                    .into_iter()
                    .filter(|&b| read32(p, b, 0) == (u32::from(dev) << 16 | u32::from(ven)))
                    .nth(usize::from(r.esi as u16));
                found.map_or(DEVICE_NOT_FOUND, |b| {
                    r.ebx = (r.ebx & 0xFFFF_0000) | u32::from(b);
                    SUCCESSFUL
                })
            }
        }
        0x03 => {
            let class = r.ecx & 0xFF_FFFF;
            let found = devices(p)
                .into_iter()
                .filter(|&b| read32(p, b, 8) >> 8 == class)
                .nth(usize::from(r.esi as u16));
            found.map_or(DEVICE_NOT_FOUND, |b| {
                r.ebx = (r.ebx & 0xFFFF_0000) | u32::from(b);
                SUCCESSFUL
            })
        }
        0x08 => {
            r.ecx = (r.ecx & !0xFF) | u32::from(read8(p, bdf, reg));
            SUCCESSFUL
        }
        0x09 | 0x0C if reg & 1 != 0 => BAD_REGISTER_NUMBER,
        0x0A | 0x0D if reg & 3 != 0 => BAD_REGISTER_NUMBER,
        0x09 => {
            r.ecx = (r.ecx & !0xFFFF) | u32::from(read16(p, bdf, reg));
            SUCCESSFUL
        }
        0x0A => {
            r.ecx = read32(p, bdf, reg);
            SUCCESSFUL
        }
        0x0B => {
            write8(p, bdf, reg, r.ecx as u8);
            SUCCESSFUL
        }
        0x0C => {
            write16(p, bdf, reg, r.ecx as u16);
            SUCCESSFUL
        }
        0x0D => {
            write32(p, bdf, reg, r.ecx);
            SUCCESSFUL
        }
        _ => FUNC_NOT_SUPPORTED,
    };
    set_ah(r, status);
    status != SUCCESSFUL
}

/// INT 1Ah AH=B1h.
pub fn int1a_b1(c: &mut Call) -> Outcome {
    let mut regs = Regs {
        eax: c.r.get32(r::AX),
        ebx: c.r.get32(r::BX),
        ecx: c.r.get32(r::CX),
        edx: c.r.get32(r::DX),
        esi: c.r.get32(r::SI),
        edi: c.r.get32(r::DI),
    };
    let cf = function(c.p, &mut regs);
    for (reg, v) in [
        (r::AX, regs.eax),
        (r::BX, regs.ebx),
        (r::CX, regs.ecx),
        (r::DX, regs.edx),
        (r::SI, regs.esi),
        (r::DI, regs.edi),
    ] {
        c.set32(reg, v);
    }
    c.set_cf(cf);
    Outcome::Return
}

/// The 32-bit entry: EAX and EDX were pushed by the stub (32-bit stack), the rest is live;
/// CF goes straight into RFLAGS (the stub returns with RETF).
pub fn pci32(cpu: &mut CpuState, p: &mut dyn Platform) -> TrapResult {
    let ss = cpu.seg(SegReg::Ss);
    let esp = if ss.big() {
        cpu.gpr[r::SP] & 0xFFFF_FFFF
    } else {
        cpu.gpr[r::SP] & 0xFFFF
    };
    let Some(frame) = guest::translate(cpu, p, ss.base.wrapping_add(esp)) else {
        return TrapResult::Continue;
    };
    let mut regs = Regs {
        eax: guest::rd32(p, frame),
        ebx: cpu.gpr[r::BX] as u32,
        ecx: cpu.gpr[r::CX] as u32,
        edx: guest::rd32(p, frame + 4),
        esi: cpu.gpr[r::SI] as u32,
        edi: cpu.gpr[r::DI] as u32,
    };
    let cf = function(p, &mut regs);
    guest::wr32(p, frame, regs.eax);
    guest::wr32(p, frame + 4, regs.edx);
    for (reg, v) in [
        (r::BX, regs.ebx),
        (r::CX, regs.ecx),
        (r::SI, regs.esi),
        (r::DI, regs.edi),
    ] {
        cpu.gpr[reg] = (cpu.gpr[reg] & !0xFFFF_FFFF) | u64::from(v);
    }
    cpu.rflags = if cf {
        cpu.rflags | rflags::CF
    } else {
        cpu.rflags & !rflags::CF
    };
    TrapResult::Continue
}

/// ISA IRQs the PIIX3 routes PIRQA..PIRQD to (level-triggered, shared).
pub const PIRQ_IRQS: [u8; 4] = [10, 10, 11, 11];
/// I/O base of the PIIX4 ACPI power management block.
pub const PM_BASE: u16 = 0x600;
/// Where memory BARs go: the PCI hole up to the I/O APIC.
pub const MEM_WINDOW: (u32, u32) = (0xE000_0000, 0xFEC0_0000);
/// Where I/O BARs go.
pub const IO_WINDOW: (u32, u32) = (0xC000, 0x1_0000);

const PIIX3_ISA: u32 = 0x7000_8086;
const PIIX4_PM: u32 = 0x7113_8086;

/// The ISA IRQ of the PCI interrupt `pin` (1 = INTA) of a device in `slot`: the i440FX
/// swizzle onto PIRQA..D.
#[must_use]
pub fn slot_irq(slot: u8, pin: u8) -> u8 {
    PIRQ_IRQS[usize::from((slot + pin.wrapping_sub(1)) & 3)]
}

/// One BAR to place.
struct BarReq {
    bdf: Bdf,
    reg: u16,
    size: u64,
    io: bool,
    wide: bool,
}

/// Sizes the BARs of `bdf` (writing all ones and reading back).
fn bars_of(p: &mut dyn Platform, bdf: Bdf, out: &mut Vec<BarReq>) {
    // Decoding off while the BARs hold all ones.
    let cmd = read16(p, bdf, 0x04);
    write16(p, bdf, 0x04, cmd & !0x03);
    let mut i = 0u16;
    while i < 6 {
        let reg = 0x10 + i * 4;
        let old = read32(p, bdf, reg);
        write32(p, bdf, reg, 0xFFFF_FFFF);
        let mask = read32(p, bdf, reg);
        write32(p, bdf, reg, old);
        i += 1;
        if mask == 0 || mask == 0xFFFF_FFFF {
            continue;
        }
        let io = mask & 1 != 0;
        let wide = !io && (mask >> 1) & 3 == 2;
        // I/O BARs decode 16 bits: their upper half may read back as zero.
        let mut size_mask = if io {
            u64::from(mask & 0xFFFF_FFFC) | 0xFFFF_FFFF_FFFF_0000
        } else {
            u64::from(mask & 0xFFFF_FFF0)
        };
        if wide {
            let hreg = 0x10 + i * 4;
            let hold = read32(p, bdf, hreg);
            write32(p, bdf, hreg, 0xFFFF_FFFF);
            size_mask |= u64::from(read32(p, bdf, hreg)) << 32;
            write32(p, bdf, hreg, hold);
            i += 1;
        } else {
            size_mask |= 0xFFFF_FFFF_0000_0000;
        }
        let size = (!size_mask).wrapping_add(1);
        if size != 0 {
            out.push(BarReq {
                bdf,
                reg,
                size,
                io,
                wide,
            });
        }
    }
    write16(p, bdf, 0x04, cmd);
}

/// Assigns every BAR on bus 0 (largest first, naturally aligned), enables decoding, routes
/// the PIRQs, sets interrupt lines, and turns on the PIIX4 PM block at [`PM_BASE`].
pub fn init(p: &mut dyn Platform) {
    let functions = devices(p);
    let mut bars = Vec::new();
    for &bdf in &functions {
        let class = read32(p, bdf, 8) >> 16;
        if read8(p, bdf, 0x0E) & 0x7F != 0 || class == 0x0600 {
            continue;
        }
        bars_of(p, bdf, &mut bars);
    }
    bars.sort_by_key(|b| std::cmp::Reverse(b.size));
    let (mut mem, mut io) = (u64::from(MEM_WINDOW.0), u64::from(IO_WINDOW.0));
    for b in &bars {
        let (next, limit) = if b.io {
            (&mut io, IO_WINDOW.1)
        } else {
            (&mut mem, MEM_WINDOW.1)
        };
        let at = next.next_multiple_of(b.size.max(4));
        if at + b.size > u64::from(limit) {
            tracing::warn!(
                bdf = b.bdf,
                reg = b.reg,
                size = b.size,
                "no room for a PCI BAR"
            );
            continue;
        }
        *next = at + b.size;
        let low = read32(p, b.bdf, b.reg) & if b.io { 0x3 } else { 0xF };
        write32(p, b.bdf, b.reg, (at as u32) | low);
        if b.wide {
            write32(p, b.bdf, b.reg + 4, (at >> 32) as u32);
        }
    }
    for &bdf in &functions {
        let id = read32(p, bdf, 0);
        let class = read32(p, bdf, 8) >> 16;
        let has = |io: bool| bars.iter().any(|b| b.bdf == bdf && b.io == io);
        let mut cmd = read16(p, bdf, 0x04);
        if has(true) || class == 0x0101 || class == 0x0300 {
            cmd |= 0x01;
        }
        if has(false) || class == 0x0300 {
            cmd |= 0x02;
        }
        if class == 0x0101 {
            cmd |= 0x04;
        }
        write16(p, bdf, 0x04, cmd);
        let pin = read8(p, bdf, 0x3D);
        if (1..=4).contains(&pin) && class != 0x0101 {
            write8(p, bdf, 0x3C, slot_irq((bdf >> 3) as u8 & 0x1F, pin));
        }
        match id {
            PIIX3_ISA => {
                for (i, irq) in PIRQ_IRQS.iter().enumerate() {
                    write8(p, bdf, 0x60 + i as u16, *irq);
                }
            }
            PIIX4_PM => {
                write32(p, bdf, 0x40, u32::from(PM_BASE) | 1);
                let misc = read8(p, bdf, 0x80);
                write8(p, bdf, 0x80, misc | 1);
                write8(p, bdf, 0x3C, 9);
            }
            _ => {}
        }
    }
    // ELCR: the PCI IRQs and the SCI (IRQ 9) are level-triggered.
    let mut elcr: u16 = 1 << 9;
    for irq in PIRQ_IRQS {
        elcr |= 1 << irq;
    }
    outb(p, 0x4D0, elcr as u8);
    outb(p, 0x4D1, (elcr >> 8) as u8);
}

/// Is the PIIX4 PM function there (so the ACPI tables can describe it)?
pub fn has_pm(p: &mut dyn Platform) -> bool {
    devices(p)
        .into_iter()
        .any(|bdf| read32(p, bdf, 0) == PIIX4_PM)
}
