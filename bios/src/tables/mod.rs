//! Firmware tables built at POST: ACPI, SMBIOS and MP. They live in a block at the top of
//! RAM below 4 GiB (reported as ACPI reclaimable in E820); their entry points go in the
//! ROM's table area in segment F000 when the platform lets the firmware write it, else in the
//! EBDA, where OSes look too (RSDP, MP floating pointer; SMBIOS has no such fallback).

pub mod acpi;
pub mod mp;
pub mod smbios;

use crate::bda;
use crate::services::layout;
use crate::{BiosState, Platform};

/// Size of the table block at the top of low RAM.
pub const AREA_SIZE: u64 = 0x1_0000;

/// What the machine has, as POST found it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Platforms {
    pub cpus: u32,
    /// The local APIC is enabled (IA32_APIC_BASE bit 11).
    pub lapic: bool,
    pub ioapic: bool,
    pub hpet: Option<u32>,
    /// The PIIX4 ACPI PM function.
    pub pm: bool,
}

/// Bump allocator over the table block.
pub struct Area {
    pub start: u64,
    pub next: u64,
    pub end: u64,
}

impl Area {
    /// Places `data` at the next `align`-byte boundary; returns its address.
    pub fn put(&mut self, p: &mut dyn Platform, data: &[u8], align: u64) -> Option<u64> {
        let at = self.next.next_multiple_of(align);
        let end = at.checked_add(data.len() as u64)?;
        if end > self.end || !p.write_mem(at, data) {
            return None;
        }
        self.next = end;
        Some(at)
    }
}

/// Sum-to-zero checksum byte for `data`.
#[must_use]
pub fn checksum(data: &[u8]) -> u8 {
    0u8.wrapping_sub(data.iter().fold(0u8, |s, b| s.wrapping_add(*b)))
}

/// Entry points: F000 table area first, EBDA second.
struct EntryPoints {
    f_next: u64,
    ebda_next: u64,
}

impl EntryPoints {
    fn put(&mut self, p: &mut dyn Platform, data: &[u8], ebda_ok: bool) -> Option<u64> {
        let f_end = u64::from(layout::ROM_BASE)
            + layout::F_SEG_IMAGE as u64
            + u64::from(layout::F_TABLES_SIZE);
        let at = self.f_next.next_multiple_of(16);
        // A ROM write may be dropped without a word: believe only what reads back.
        if at + data.len() as u64 <= f_end
            && p.write_mem(at, data)
            && crate::guest::read_vec(p, at, data.len()) == data
        {
            self.f_next = at + data.len() as u64;
            return Some(at);
        }
        if !ebda_ok {
            return None;
        }
        let at = self.ebda_next.next_multiple_of(16);
        if at + data.len() as u64 <= bda::EBDA + 0x400
            && p.write_mem(at, data)
            && crate::guest::read_vec(p, at, data.len()) == data
        {
            self.ebda_next = at + data.len() as u64;
            return Some(at);
        }
        None
    }
}

/// The i440FX host bridge and its PAM0 register (segment F000 in bits 5:4).
const I440FX: u32 = 0x1237_8086;
const PAM0: u16 = 0x59;
const PAM_F_ROM: u8 = 0x00;
const PAM_F_READ_ONLY: u8 = 0x10;
const PAM_F_WRITE_ONLY: u8 = 0x20;
const PAM_F_READ_WRITE: u8 = 0x30;

/// Makes segment F000 shadow RAM holding a copy of the ROM, writable, as a real BIOS does
/// before it writes its tables. Returns the old PAM0 value, or `None` (and changes nothing)
/// when there is no i440FX or the copy does not read back: then the ROM stays as it was.
fn open_shadow(p: &mut dyn Platform) -> Option<u8> {
    if crate::pci::read32(p, 0, 0) != I440FX {
        return None;
    }
    let old = crate::pci::read8(p, 0, PAM0);
    let base = u64::from(layout::ROM_BASE) + layout::F_SEG_IMAGE as u64;
    let rom = crate::guest::read_vec(p, base, 0x1_0000);
    // Reads still come from the ROM while writes go to RAM: copy the ROM over itself.
    crate::pci::write8(p, 0, PAM0, (old & 0x0F) | PAM_F_WRITE_ONLY);
    let copied = p.write_mem(base, &rom);
    crate::pci::write8(p, 0, PAM0, (old & 0x0F) | PAM_F_READ_WRITE);
    // The copy must read back, and the table area must now take writes.
    let probe = base + u64::from(layout::F_TABLES);
    let marker = [0x5A, 0xA5, 0x3C, 0xC3];
    let writable = p.write_mem(probe, &marker) && crate::guest::read_vec(p, probe, 4) == marker;
    p.write_mem(probe, &[0; 4]);
    if copied && writable && crate::guest::read_vec(p, base, 0x1_0000) == rom {
        return Some(old);
    }
    crate::pci::write8(p, 0, PAM0, (old & 0x0F) | PAM_F_ROM);
    None
}

/// Write-protects the shadow again.
fn close_shadow(p: &mut dyn Platform, old: u8) {
    crate::pci::write8(p, 0, PAM0, (old & 0x0F) | PAM_F_READ_ONLY);
}

/// Finds the devices the tables describe through memory and port I/O.
fn probe(st: &BiosState, p: &mut dyn Platform, lapic: bool) -> Platforms {
    // I/O APIC: select the version register and read it.
    p.write_mem(0xFEC0_0000, &1u32.to_le_bytes());
    let mut v = [0u8; 4];
    let ioapic = p.read_mem(0xFEC0_0010, &mut v) && !matches!(u32::from_le_bytes(v), 0 | u32::MAX);
    let mut caps = [0u8; 4];
    let hpet_caps = p
        .read_mem(0xFED0_0000, &mut caps)
        .then(|| u32::from_le_bytes(caps));
    let hpet = hpet_caps.filter(|c| !matches!(c >> 16, 0 | 0xFFFF));
    Platforms {
        cpus: st.cpus.max(1),
        lapic,
        ioapic,
        hpet,
        pm: crate::pci::has_pm(p),
    }
}

/// Builds the tables the platform has devices for.
pub fn build(st: &mut BiosState, p: &mut dyn Platform, lapic: bool) {
    st.acpi = None;
    let hw = probe(st, p, lapic);
    let start = st.low_ram_end.saturating_sub(AREA_SIZE) & !0xFFF;
    if start < 0x10_0000 {
        return;
    }
    let mut area = Area {
        start,
        next: start,
        end: start + AREA_SIZE,
    };
    let mut eps = EntryPoints {
        f_next: u64::from(layout::ROM_BASE)
            + layout::F_SEG_IMAGE as u64
            + u64::from(layout::F_TABLES),
        ebda_next: bda::EBDA + u64::from(bda::EBDA_RSDP),
    };
    let rsdp = if hw.pm {
        acpi::build(&hw, p, &mut area)
    } else {
        None
    };
    let mp = if hw.lapic {
        mp::build(&hw, p, &mut area)
    } else {
        None
    };
    let smbios = smbios::build(st, &hw, p, &mut area);
    let shadow = open_shadow(p);
    for (ep, ebda_ok) in [(rsdp, true), (mp, true), (smbios, false)] {
        if let Some(ep) = ep {
            eps.put(p, &ep, ebda_ok);
        }
    }
    if let Some(old) = shadow {
        close_shadow(p, old);
    }
    st.acpi = Some((area.start, AREA_SIZE));
}
