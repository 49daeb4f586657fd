//! ACPI tables with the acpi_tables crate: RSDP (returned to the caller to place), RSDT and
//! XSDT, FADT on the PIIX4 PM block, FACS, a DSDT (PCI root bridge with static interrupt
//! routing, \_S5), MADT and HPET.

use super::{checksum, Area, Platforms};
use crate::pci::{slot_irq, MEM_WINDOW, PM_BASE};
use crate::Platform;
use acpi_tables::aml::{
    self, AddressSpace, AddressSpaceCacheable, EISAName, Name, Package, Path, ResourceTemplate, IO,
};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace as Space, GAS};
use acpi_tables::sdt::Sdt;
use acpi_tables::Aml;

const OEM_ID: [u8; 6] = *b"NESTOR";
const OEM_TABLE: [u8; 8] = *b"NESTORPC";
const OEM_REVISION: u32 = 1;
/// The SCI: ISA IRQ 9, level, active high.
const SCI_IRQ: u16 = 9;
const SMI_CMD: u32 = 0xB2;
const ACPI_ENABLE: u8 = 0xF1;
const ACPI_DISABLE: u8 = 0xF0;
/// RTC CMOS century register.
const CENTURY: u8 = 0x32;
pub const LAPIC_BASE: u32 = 0xFEE0_0000;
pub const IOAPIC_BASE: u32 = 0xFEC0_0000;
pub const HPET_BASE: u64 = 0xFED0_0000;

fn bytes(a: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    a.to_aml_bytes(&mut v);
    v
}

fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Sdt::new(*sig, 36, revision, OEM_ID, OEM_TABLE, OEM_REVISION);
    t.append_slice(body);
    t.as_slice().to_vec()
}

/// Builds the tables in `area` and returns the RSDP to place.
pub fn build(hw: &Platforms, p: &mut dyn Platform, area: &mut Area) -> Option<Vec<u8>> {
    let facs = facs();
    let facs_at = area.put(p, &facs, 64)?;
    let dsdt = table(b"DSDT", 2, &dsdt_body());
    let dsdt_at = area.put(p, &dsdt, 16)?;
    let fadt = bytes(&fadt(facs_at as u32, dsdt_at as u32));
    let mut entries = vec![area.put(p, &fadt, 16)?];
    if hw.lapic {
        entries.push(area.put(p, &table(b"APIC", 3, &madt_body(hw)), 16)?);
    }
    if let Some(caps) = hw.hpet {
        entries.push(area.put(p, &table(b"HPET", 1, &hpet_body(caps)), 16)?);
    }
    let rsdt_body: Vec<u8> = entries
        .iter()
        .flat_map(|a| (*a as u32).to_le_bytes())
        .collect();
    let rsdt_at = area.put(p, &table(b"RSDT", 1, &rsdt_body), 16)?;
    let xsdt_body: Vec<u8> = entries.iter().flat_map(|a| a.to_le_bytes()).collect();
    let xsdt_at = area.put(p, &table(b"XSDT", 1, &xsdt_body), 16)?;
    Some(rsdp(rsdt_at as u32, xsdt_at))
}

/// RSDP revision 2: both the RSDT and the XSDT.
#[must_use]
pub fn rsdp(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[0..8].copy_from_slice(b"RSD PTR ");
    r[9..15].copy_from_slice(&OEM_ID);
    r[15] = 2;
    r[16..20].copy_from_slice(&rsdt.to_le_bytes());
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

fn facs() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..4].copy_from_slice(b"FACS");
    f[4..8].copy_from_slice(&64u32.to_le_bytes());
    f[32] = 2;
    f
}

fn io_gas(port: u16, len: u8) -> GAS {
    let access = match len {
        1 => AccessSize::ByteAccess,
        2 => AccessSize::WordAccess,
        _ => AccessSize::DwordAccess,
    };
    GAS::new(Space::SystemIo, len * 8, 0, access, u64::from(port))
}

fn fadt(facs: u32, dsdt: u32) -> acpi_tables::fadt::FADT {
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE, OEM_REVISION)
        .dsdt_32(dsdt)
        .firmware_ctrl_32(facs)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup);
    f.sci_int = SCI_IRQ.into();
    f.smi_cmd = SMI_CMD.into();
    f.acpi_enable = ACPI_ENABLE;
    f.acpi_disable = ACPI_DISABLE;
    f.pm1a_evt_blk = u32::from(PM_BASE).into();
    f.pm1a_cnt_blk = u32::from(PM_BASE + 4).into();
    f.pm_tmr_blk = u32::from(PM_BASE + 8).into();
    f.gpe0_blk = u32::from(PM_BASE + 0x0C).into();
    f.pm1_evt_len = 4;
    f.pm1_cnt_len = 2;
    f.pm_tmr_len = 4;
    f.gpe0_blk_len = 4;
    // No C2/C3 states.
    f.p_lvl2_lat = 0x0FFFu16.into();
    f.p_lvl3_lat = 0x0FFFu16.into();
    f.century = CENTURY;
    // Legacy devices and an 8042.
    f.iapc_boot_arch = 0x0003u16.into();
    // Reset through the PIIX3 reset control register.
    f.reset_reg = io_gas(0xCF9, 1);
    f.reset_value = 0x06;
    f.x_pm1a_evt_blk = io_gas(PM_BASE, 4);
    f.x_pm1a_cnt_blk = io_gas(PM_BASE + 4, 2);
    f.x_pm_tmr_blk = io_gas(PM_BASE + 8, 4);
    f.x_gpe0_blk = io_gas(PM_BASE + 0x0C, 4);
    f.finalize()
}

/// The DSDT's AML: \_SB.PCI0 (PNP0A03) with its resources and a static _PRT, and \_S5.
#[must_use]
pub fn dsdt_body() -> Vec<u8> {
    let bus = AddressSpace::new_bus_number(0u16, 0xFFu16);
    let cfg = IO::new(0xCF8, 0xCF8, 1, 8);
    let io_low = AddressSpace::new_io(0u16, 0x0CF7u16, None);
    let io_high = AddressSpace::new_io(0x0D00u16, 0xFFFFu16, None);
    let vga = AddressSpace::new_memory(
        AddressSpaceCacheable::Cacheable,
        true,
        0xA_0000u32,
        0xB_FFFFu32,
        None,
    );
    let hole = AddressSpace::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        MEM_WINDOW.0,
        MEM_WINDOW.1 - 1,
        None,
    );
    let crs = ResourceTemplate::new(vec![&bus, &cfg, &io_low, &io_high, &vga, &hole]);
    let mut prt = aml::PackageBuilder::new();
    for slot in 0..32u32 {
        for pin in 0..4u8 {
            let addr = (slot << 16) | 0xFFFF;
            let irq = u32::from(slot_irq(slot as u8, pin + 1));
            let entry = Package::new(vec![&addr, &pin, &0u8, &irq]);
            prt.add_element(&entry);
        }
    }
    let hid = EISAName::new("PNP0A03");
    let n_hid = Name::new(Path::new("_HID"), &hid);
    let n_adr = Name::new(Path::new("_ADR"), &0u8);
    let n_uid = Name::new(Path::new("_UID"), &0u8);
    let n_crs = Name::new(Path::new("_CRS"), &crs);
    let n_prt = Name::new(Path::new("_PRT"), &prt);
    let pci0 = aml::Device::new(
        Path::new("PCI0"),
        vec![&n_hid, &n_adr, &n_uid, &n_crs, &n_prt],
    );
    let sb = aml::Scope::new(Path::new("\\_SB_"), vec![&pci0]);
    let s5_pkg = Package::new(vec![&0u8, &0u8, &0u8, &0u8]);
    let s5 = Name::new(Path::new("\\_S5_"), &s5_pkg);
    let mut out = Vec::new();
    sb.to_aml_bytes(&mut out);
    s5.to_aml_bytes(&mut out);
    out
}

/// MADT body: local APIC address and flags (PC-AT compatible 8259s), one local APIC per
/// CPU, the I/O APIC, the PIT on pin 2, level/high SCI and PCI IRQs, NMI on LINT1.
#[must_use]
pub fn madt_body(hw: &Platforms) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for cpu in 0..hw.cpus.min(255) as u8 {
        b.extend_from_slice(&[0, 8, cpu, cpu, 1, 0, 0, 0]);
    }
    if hw.ioapic {
        let id = hw.cpus.min(254) as u8;
        b.extend_from_slice(&[1, 12, id, 0]);
        b.extend_from_slice(&IOAPIC_BASE.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        // Interrupt source overrides: bus 0 (ISA), source IRQ, GSI, flags.
        let mut iso = |irq: u8, gsi: u32, flags: u16| {
            b.extend_from_slice(&[2, 10, 0, irq]);
            b.extend_from_slice(&gsi.to_le_bytes());
            b.extend_from_slice(&flags.to_le_bytes());
        };
        iso(0, 2, 0);
        let mut level = vec![SCI_IRQ as u8];
        for irq in crate::pci::PIRQ_IRQS {
            if !level.contains(&irq) {
                level.push(irq);
            }
        }
        for irq in level {
            // Active high (01), level triggered (11 << 2).
            iso(irq, u32::from(irq), 0x000D);
        }
    }
    // Local APIC NMI: all processors, LINT1, edge/high.
    b.extend_from_slice(&[4, 6, 0xFF, 0x05, 0x00, 1]);
    b
}

/// HPET body: the capabilities' ID, the base as a generic address, number 0, minimum tick.
#[must_use]
pub fn hpet_body(caps: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&caps.to_le_bytes());
    b.extend_from_slice(&[0, 64, 0, 0]);
    b.extend_from_slice(&HPET_BASE.to_le_bytes());
    b.push(0);
    b.extend_from_slice(&0x0080u16.to_le_bytes());
    b.push(0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_checksum_to_zero() {
        let r = rsdp(0x1234_5678, 0x9ABC_DEF0);
        assert_eq!(r[..20].iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        assert_eq!(r.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        let d = table(b"DSDT", 2, &dsdt_body());
        assert_eq!(d.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        assert_eq!(
            u32::from_le_bytes([d[4], d[5], d[6], d[7]]) as usize,
            d.len()
        );
        let f = bytes(&fadt(0x1000, 0x2000));
        assert_eq!(&f[..4], b"FACP");
        assert_eq!(f.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        // PM1a_CNT_BLK at offset 64, SCI_INT at 46.
        assert_eq!(u32::from_le_bytes([f[64], f[65], f[66], f[67]]), 0x604);
        assert_eq!(u16::from_le_bytes([f[46], f[47]]), 9);
    }

    #[test]
    fn dsdt_names_the_root_bridge_and_s5() {
        let aml = dsdt_body();
        let has = |needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"PCI0") && has(b"_PRT") && has(b"_CRS") && has(b"_S5_"));
        // EISAID("PNP0A03") as a DWord: 0x030AD041.
        assert!(has(&[0x0C, 0x41, 0xD0, 0x0A, 0x03]));
    }

    #[test]
    fn madt_lists_cpus_and_overrides() {
        let hw = Platforms {
            cpus: 2,
            lapic: true,
            ioapic: true,
            hpet: None,
            pm: true,
        };
        let b = madt_body(&hw);
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < b.len() {
            kinds.push(b[at]);
            at += usize::from(b[at + 1]);
        }
        assert_eq!(at, b.len());
        assert_eq!(kinds, vec![0, 0, 1, 2, 2, 2, 2, 4]);
    }
}
