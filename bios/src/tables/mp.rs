//! The MultiProcessor Specification 1.4 table: processors, buses, the I/O APIC and the
//! interrupt wiring, for OSes (or kernels booted with `acpi=off`) that do not read ACPI.

use super::acpi::{IOAPIC_BASE, LAPIC_BASE};
use super::{checksum, Area, Platforms};
use crate::pci;
use crate::Platform;

const BUS_PCI: u8 = 0;
const BUS_ISA: u8 = 1;
/// Interrupt flags: conforming, or active high + level triggered.
const CONFORMING: u16 = 0;
const LEVEL_HIGH: u16 = 0x000D;

fn io_interrupt(e: &mut Vec<u8>, kind: u8, flags: u16, bus: u8, irq: u8, apic: u8, pin: u8) {
    e.extend_from_slice(&[3, kind]);
    e.extend_from_slice(&flags.to_le_bytes());
    e.extend_from_slice(&[bus, irq, apic, pin]);
}

/// The configuration table's entries and their count.
fn entries(hw: &Platforms, p: &mut dyn Platform) -> (Vec<u8>, u16) {
    let mut e = Vec::new();
    let mut n = 0u16;
    for cpu in 0..hw.cpus.min(255) as u8 {
        let flags = if cpu == 0 { 0x03 } else { 0x01 };
        e.extend_from_slice(&[0, cpu, 0x14, flags]);
        // Signature (family 6) and features (FPU, APIC).
        e.extend_from_slice(&0x0000_0611u32.to_le_bytes());
        e.extend_from_slice(&0x0000_0201u32.to_le_bytes());
        e.extend_from_slice(&[0; 8]);
        n += 1;
    }
    e.extend_from_slice(&[1, BUS_PCI, b'P', b'C', b'I', b' ', b' ', b' ']);
    e.extend_from_slice(&[1, BUS_ISA, b'I', b'S', b'A', b' ', b' ', b' ']);
    n += 2;
    let apic = hw.cpus.min(254) as u8;
    if hw.ioapic {
        e.extend_from_slice(&[2, apic, 0x11, 1]);
        e.extend_from_slice(&IOAPIC_BASE.to_le_bytes());
        n += 1;
        let level: Vec<u8> = std::iter::once(9).chain(pci::PIRQ_IRQS).collect();
        for irq in 0..16u8 {
            if irq == 2 {
                continue;
            }
            // The PIT is wired to pin 2; the rest of the ISA IRQs to their own pins.
            let pin = if irq == 0 { 2 } else { irq };
            let flags = if level.contains(&irq) {
                LEVEL_HIGH
            } else {
                CONFORMING
            };
            io_interrupt(&mut e, 0, flags, BUS_ISA, irq, apic, pin);
            n += 1;
        }
        for bdf in pci::devices(p) {
            let pin = pci::read8(p, bdf, 0x3D);
            if !(1..=4).contains(&pin) {
                continue;
            }
            let slot = (bdf >> 3) as u8 & 0x1F;
            let src = (slot << 2) | (pin - 1);
            io_interrupt(
                &mut e,
                0,
                LEVEL_HIGH,
                BUS_PCI,
                src,
                apic,
                pci::slot_irq(slot, pin),
            );
            n += 1;
        }
    }
    // ExtINT on LINT0 (the 8259s in virtual wire mode), NMI on LINT1, for every CPU.
    e.extend_from_slice(&[4, 3, 0, 0, BUS_ISA, 0, 0xFF, 0]);
    e.extend_from_slice(&[4, 1, 0, 0, BUS_ISA, 0, 0xFF, 1]);
    n += 2;
    (e, n)
}

/// Builds the configuration table in `area`; returns the floating pointer to place.
pub fn build(hw: &Platforms, p: &mut dyn Platform, area: &mut Area) -> Option<Vec<u8>> {
    let (body, count) = entries(hw, p);
    let mut t = vec![0u8; 44];
    t[0..4].copy_from_slice(b"PCMP");
    let len = (44 + body.len()) as u16;
    t[4..6].copy_from_slice(&len.to_le_bytes());
    t[6] = 4;
    t[8..16].copy_from_slice(b"NESTOR  ");
    t[16..28].copy_from_slice(b"NESTOR PC   ");
    t[34..36].copy_from_slice(&count.to_le_bytes());
    t[36..40].copy_from_slice(&LAPIC_BASE.to_le_bytes());
    t.extend_from_slice(&body);
    t[7] = checksum(&t);
    let at = area.put(p, &t, 16)?;
    let mut fp = vec![0u8; 16];
    fp[0..4].copy_from_slice(b"_MP_");
    fp[4..8].copy_from_slice(&(at as u32).to_le_bytes());
    fp[8] = 1;
    fp[9] = 4;
    fp[10] = checksum(&fp);
    Some(fp)
}
