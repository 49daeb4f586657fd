//! Shadow RAM under the option-ROM and BIOS area (0xC0000-0xFFFFF), as the i440FX's PAM
//! registers steer it: per segment, reads come from DRAM or from the ROM/PCI side, and writes
//! go to DRAM or are dropped by the ROM. Firmware such as SeaBIOS copies itself into this RAM
//! and then write-protects it.

/// The area the PAM registers control.
pub const SHADOW_AREA: std::ops::Range<u64> = 0xc_0000..0x10_0000;
/// The finest PAM granularity (the F segment is four of these, always set together).
const SEGMENT: u64 = 0x4000;
const SEGMENTS: usize = ((SHADOW_AREA.end - SHADOW_AREA.start) / SEGMENT) as usize;

/// Where one segment's accesses go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShadowMode {
    pub read_ram: bool,
    pub write_ram: bool,
}

/// The 16 segments of 16 KiB; all off at reset (the ROM answers reads, writes vanish).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShadowMap {
    modes: [ShadowMode; SEGMENTS],
}

impl ShadowMap {
    /// Set the mode of every segment in `base..base + len` (clipped to the shadow area).
    pub fn set(&mut self, base: u64, len: u64, mode: ShadowMode) {
        let end = base.saturating_add(len).min(SHADOW_AREA.end);
        let mut at = base.max(SHADOW_AREA.start);
        while at < end {
            if let Some(m) = self.modes.get_mut(Self::index(at)) {
                *m = mode;
            }
            at += SEGMENT;
        }
    }

    /// The mode for `paddr`, if it lies in the shadow area.
    #[must_use]
    pub fn mode(&self, paddr: u64) -> Option<ShadowMode> {
        SHADOW_AREA
            .contains(&paddr)
            .then(|| self.modes.get(Self::index(paddr)).copied())
            .flatten()
    }

    /// Any segment routed to RAM in either direction.
    #[must_use]
    pub fn any_ram(&self) -> bool {
        self.modes.iter().any(|m| m.read_ram || m.write_ram)
    }

    fn index(paddr: u64) -> usize {
        ((paddr - SHADOW_AREA.start) / SEGMENT) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_set_and_clipped() {
        let mut m = ShadowMap::default();
        assert_eq!(m.mode(0xf_0000), Some(ShadowMode::default()));
        assert_eq!(m.mode(0xb_ffff), None);
        assert_eq!(m.mode(0x10_0000), None);
        let rw = ShadowMode {
            read_ram: true,
            write_ram: true,
        };
        m.set(0xf_0000, 0x1_0000, rw);
        assert_eq!(m.mode(0xf_0000), Some(rw));
        assert_eq!(m.mode(0xf_ffff), Some(rw));
        assert_eq!(m.mode(0xe_ffff), Some(ShadowMode::default()));
        m.set(0xe_c000, u64::MAX, rw);
        assert_eq!(m.mode(0xe_c000), Some(rw));
        assert!(m.any_ram());
    }

    #[test]
    fn firmware_copies_itself_into_shadow_ram_and_write_protects_it() {
        use crate::memory::GuestMemory;
        use nestor_cpu::PageTarget;
        let mut rom = vec![0u8; 64 << 10];
        rom[0] = 0xAA;
        let mut m = GuestMemory::new(4, rom).expect("4 MiB");
        let mut b = [0u8];
        // At reset the ROM answers and writes vanish.
        assert!(m.read(0xf_0000, &mut b) && b[0] == 0xAA);
        assert!(!m.write(0xf_0000, &[0x55]));
        // Write-only: reads still come from the ROM, writes land in RAM.
        let write_only = ShadowMode {
            read_ram: false,
            write_ram: true,
        };
        m.shadow.set(0xf_0000, 0x1_0000, write_only);
        assert_eq!(m.page(0xf_0000), PageTarget::Mmio);
        assert!(m.shadow_write(0xf_0000, 0x55));
        assert_eq!(m.shadow_read(0xf_0000), Some(0xAA));
        // Read and write: RAM, as a writable host page.
        let rw = ShadowMode {
            read_ram: true,
            write_ram: true,
        };
        m.shadow.set(0xf_0000, 0x1_0000, rw);
        assert!(matches!(
            m.page(0xf_0000),
            PageTarget::Host { writable: true, .. }
        ));
        assert!(m.read(0xf_0000, &mut b) && b[0] == 0x55);
        assert!(m.write(0xf_0001, &[1, 2]));
        // Read-only: the copy is protected.
        let ro = ShadowMode {
            read_ram: true,
            write_ram: false,
        };
        m.shadow.set(0xf_0000, 0x1_0000, ro);
        assert!(matches!(
            m.page(0xf_0000),
            PageTarget::Host {
                writable: false,
                ..
            }
        ));
        assert!(!m.write(0xf_0000, &[0]));
        assert!(m.shadow_write(0xf_0000, 0x66), "in the area, dropped");
        assert_eq!(m.shadow_read(0xf_0000), Some(0x55));
        assert_eq!(m.shadow_read(0x9_0000), None);
    }
}
