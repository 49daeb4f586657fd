//! Guest physical memory: RAM in an anonymous host mapping (so that KVM can map the very same
//! pages later), the firmware ROM mapped at the top of the first megabyte and again just below
//! 4 GiB, and the PCI hole below 4 GiB with RAM above it remapped past 4 GiB.

use memmap2::MmapMut;
use nestor_cpu::{PageTarget, PAGE_SIZE};
use std::ptr::NonNull;

/// Start of the PCI hole: RAM beyond this is placed above 4 GiB.
pub const PCI_HOLE_START: u64 = 0xe000_0000;
pub const FOUR_GIB: u64 = 1 << 32;
/// The legacy VGA window and option-ROM/BIOS area: never RAM.
const LEGACY_HOLE: std::ops::Range<u64> = 0xa_0000..0x10_0000;
/// How much of the ROM appears below 1 MiB (as the "isa-bios" alias of a PC).
const LOW_ROM_MAX: u64 = 128 << 10;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot allocate {0} MiB of guest RAM: {1}")]
    Alloc(u64, std::io::Error),
    #[error("guest RAM of {0} MiB is outside the supported 1 MiB .. 64 GiB")]
    Size(u64),
}

/// The guest-visible RAM regions of a machine with `ram_bytes` of RAM, as
/// (guest physical address, offset into the RAM mapping, length).
#[must_use]
pub fn ram_regions(ram_bytes: u64) -> Vec<(u64, u64, u64)> {
    let low_ram = ram_bytes.min(PCI_HOLE_START);
    let mut regions = vec![(0, 0, low_ram.min(LEGACY_HOLE.start))];
    if low_ram > LEGACY_HOLE.end {
        regions.push((LEGACY_HOLE.end, LEGACY_HOLE.end, low_ram - LEGACY_HOLE.end));
    }
    if ram_bytes > low_ram {
        regions.push((FOUR_GIB, low_ram, ram_bytes - low_ram));
    }
    regions
}

pub struct GuestMemory {
    ram: MmapMut,
    ram_bytes: u64,
    /// RAM below the PCI hole; the rest starts at 4 GiB.
    low_ram: u64,
    rom: Vec<u8>,
    /// PAM routing of 0xC0000-0xFFFFF between shadow RAM and the ROM side.
    pub shadow: crate::shadow::ShadowMap,
}

impl GuestMemory {
    pub fn new(ram_mib: u64, rom: Vec<u8>) -> Result<Self, MemoryError> {
        if !(1..=64 << 10).contains(&ram_mib) {
            return Err(MemoryError::Size(ram_mib));
        }
        let ram_bytes = ram_mib << 20;
        let ram =
            MmapMut::map_anon(ram_bytes as usize).map_err(|e| MemoryError::Alloc(ram_mib, e))?;
        Ok(Self {
            ram,
            ram_bytes,
            low_ram: ram_bytes.min(PCI_HOLE_START),
            rom,
            shadow: crate::shadow::ShadowMap::default(),
        })
    }

    /// RAM mapped copy-on-write (MAP_PRIVATE) from `file` at `offset`, as a snapshot resume
    /// does: pages are read from the file only when touched, and guest writes never reach it.
    /// The caller checks that `offset + ram_mib MiB` lies inside the file (a mapping past its
    /// end would fault on access).
    pub fn from_file(
        file: &std::fs::File,
        offset: u64,
        ram_mib: u64,
        rom: Vec<u8>,
    ) -> Result<Self, MemoryError> {
        if !(1..=64 << 10).contains(&ram_mib) || !offset.is_multiple_of(PAGE_SIZE) {
            return Err(MemoryError::Size(ram_mib));
        }
        let ram_bytes = ram_mib << 20;
        // SAFETY: a private mapping: changes to the file by others after this point may or may
        // not be seen (the snapshot file is ours and not written again); guest writes stay
        // in the process.
        let ram = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(ram_bytes as usize)
                .map_copy(file)
        }
        .map_err(|e| MemoryError::Alloc(ram_mib, e))?;
        Ok(Self {
            ram,
            ram_bytes,
            low_ram: ram_bytes.min(PCI_HOLE_START),
            rom,
            shadow: crate::shadow::ShadowMap::default(),
        })
    }

    /// The firmware image.
    #[must_use]
    pub fn rom(&self) -> &[u8] {
        &self.rom
    }

    /// All of RAM as one host slice, low RAM first (the layout of [`Self::ram_regions`]).
    #[must_use]
    pub fn ram(&self) -> &[u8] {
        &self.ram
    }

    /// Guest-visible RAM as (guest physical address, offset into [`Self::ram`], length): below
    /// the legacy VGA/BIOS hole, from 1 MiB to the PCI hole, and above 4 GiB.
    #[must_use]
    pub fn ram_regions(&self) -> Vec<(u64, u64, u64)> {
        ram_regions(self.ram_bytes)
    }

    #[must_use]
    pub fn ram_bytes(&self) -> u64 {
        self.ram_bytes
    }

    /// RAM below the PCI hole (what the firmware reports as conventional + extended memory).
    #[must_use]
    pub fn low_ram(&self) -> u64 {
        self.low_ram
    }

    /// Offset into the RAM mapping of guest physical `paddr`, if it is RAM.
    fn ram_offset(&self, paddr: u64) -> Option<u64> {
        if paddr < self.low_ram {
            (!LEGACY_HOLE.contains(&paddr)).then_some(paddr)
        } else if paddr >= FOUR_GIB && paddr - FOUR_GIB < self.ram_bytes - self.low_ram {
            Some(self.low_ram + (paddr - FOUR_GIB))
        } else {
            None
        }
    }

    /// Offset into the ROM image of guest physical `paddr`, if the ROM is mapped there.
    fn rom_offset(&self, paddr: u64) -> Option<u64> {
        let len = self.rom.len() as u64;
        let low = len.min(LOW_ROM_MAX);
        if (0x10_0000 - low..0x10_0000).contains(&paddr) {
            return Some(len - (0x10_0000 - paddr));
        }
        (FOUR_GIB - len..FOUR_GIB)
            .contains(&paddr)
            .then(|| paddr - (FOUR_GIB - len))
    }

    /// Offset into the RAM mapping of shadow RAM at `paddr`, if PAM routes this direction
    /// of access there.
    fn shadow_offset(&self, paddr: u64, write: bool) -> Option<u64> {
        let mode = self.shadow.mode(paddr)?;
        let on = if write { mode.write_ram } else { mode.read_ram };
        (on && paddr < self.low_ram).then_some(paddr)
    }

    /// A read of the shadow area that PAM does not route to RAM: the ROM answers, or nothing
    /// (all ones). `None` outside the shadow area.
    pub fn shadow_read(&self, paddr: u64) -> Option<u8> {
        self.shadow.mode(paddr)?;
        Some(
            match (self.shadow_offset(paddr, false), self.rom_offset(paddr)) {
                (Some(o), _) => self.ram[o as usize],
                (None, Some(o)) => self.rom[o as usize],
                (None, None) => 0xff,
            },
        )
    }

    /// A byte written to the shadow area: it reaches RAM if PAM says so. False outside it.
    pub fn shadow_write(&mut self, paddr: u64, value: u8) -> bool {
        if self.shadow.mode(paddr).is_none() {
            return false;
        }
        if let Some(o) = self.shadow_offset(paddr, true) {
            self.ram[o as usize] = value;
        }
        true
    }

    /// What backs a page of the shadow area: RAM when reads go there (writable if writes
    /// do too), device-style access when only writes do, else the ROM as usual.
    fn shadow_page(&mut self, page_addr: u64) -> Option<PageTarget> {
        let mode = self.shadow.mode(page_addr)?;
        if let Some(off) = self.shadow_offset(page_addr, false) {
            // SAFETY: `off` is a page-aligned offset below `low_ram`, inside the mapping.
            let ptr = unsafe { self.ram.as_mut_ptr().add(off as usize) };
            return NonNull::new(ptr).map(|ptr| PageTarget::Host {
                ptr,
                writable: mode.write_ram,
            });
        }
        mode.write_ram.then_some(PageTarget::Mmio)
    }

    /// What backs the page at `page_addr`.
    pub fn page(&mut self, page_addr: u64) -> PageTarget {
        if let Some(target) = self.shadow_page(page_addr) {
            return target;
        }
        if let Some(off) = self.ram_offset(page_addr) {
            // SAFETY: `off` is a page-aligned offset inside the mapping, which lives as long
            // as `self` and is never remapped.
            let ptr = unsafe { self.ram.as_mut_ptr().add(off as usize) };
            if let Some(ptr) = NonNull::new(ptr) {
                return PageTarget::Host {
                    ptr,
                    writable: true,
                };
            }
        }
        if let Some(off) = self.rom_offset(page_addr) {
            if off + PAGE_SIZE <= self.rom.len() as u64 {
                if let Some(ptr) = NonNull::new(self.rom[off as usize..].as_mut_ptr()) {
                    return PageTarget::Host {
                        ptr,
                        writable: false,
                    };
                }
            }
        }
        PageTarget::Mmio
    }

    /// Copy guest memory out (for DMA and loaders). Fails if any byte is not RAM or ROM.
    pub fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = paddr.wrapping_add(i as u64);
            if let Some(v) = self.shadow_read(a) {
                *b = v;
                continue;
            }
            *b = match (self.ram_offset(a), self.rom_offset(a)) {
                (Some(o), _) => self.ram[o as usize],
                (None, Some(o)) => self.rom[o as usize],
                _ => return false,
            };
        }
        true
    }

    /// Copy into guest RAM. Fails, writing nothing, if any byte is not RAM.
    pub fn write(&mut self, paddr: u64, data: &[u8]) -> bool {
        let Some(last) = paddr.checked_add(data.len().saturating_sub(1) as u64) else {
            return false;
        };
        if paddr < crate::shadow::SHADOW_AREA.end && last >= crate::shadow::SHADOW_AREA.start {
            let all_ram = (paddr..=last).all(|a| self.shadow_offset(a, true).is_some());
            if all_ram {
                for (i, &v) in data.iter().enumerate() {
                    self.shadow_write(paddr + i as u64, v);
                }
            }
            return all_ram;
        }
        // RAM regions are contiguous, so checking both ends and the hole boundaries suffices.
        let contiguous = |a: u64| self.ram_offset(a);
        let (Some(first_off), Some(last_off)) = (contiguous(paddr), contiguous(last)) else {
            return false;
        };
        if last_off - first_off != last - paddr {
            return false;
        }
        self.ram[first_off as usize..=last_off as usize].copy_from_slice(data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_has_ram_rom_and_holes() {
        let mut rom = vec![0u8; 64 << 10];
        rom[0xfff0] = 0xea;
        let mut m = GuestMemory::new(4, rom).unwrap();
        assert!(matches!(m.page(0), PageTarget::Host { writable: true, .. }));
        assert_eq!(m.page(0xb8000), PageTarget::Mmio);
        assert!(matches!(
            m.page(0xff000),
            PageTarget::Host {
                writable: false,
                ..
            }
        ));
        assert!(matches!(
            m.page(0xffff_f000),
            PageTarget::Host {
                writable: false,
                ..
            }
        ));
        assert_eq!(m.page(0x40_0000), PageTarget::Mmio);
        let mut b = [0u8];
        assert!(m.read(0xffff0, &mut b) && b[0] == 0xea);
        assert!(m.read(0xffff_fff0, &mut b) && b[0] == 0xea);
        assert!(m.write(0x1000, &[1, 2, 3]));
        assert!(!m.write(0x9ffff, &[1, 2]), "write into the VGA hole");
        assert!(!m.write(0x3f_ffff, &[1, 2]), "write past the end of RAM");
        assert!(!m.write(u64::MAX, &[1, 2]));
    }

    #[test]
    fn file_backed_ram_is_copy_on_write() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("nestor-mem-cow-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        let mut data = vec![0u8; 3 << 20];
        data[(1 << 20) + 0x1234] = 0x5a;
        f.write_all(&data).unwrap();
        drop(f);
        let f = std::fs::File::open(&path).unwrap();
        let mut m = GuestMemory::from_file(&f, 1 << 20, 2, vec![0; 64 << 10]).unwrap();
        let mut b = [0u8];
        assert!(m.read(0x1234, &mut b) && b[0] == 0x5a);
        assert!(m.write(0x1234, &[0xa5]));
        assert!(m.read(0x1234, &mut b) && b[0] == 0xa5);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk[(1 << 20) + 0x1234], 0x5a, "the file never changes");
        assert_eq!(
            m.ram_regions(),
            vec![(0, 0, 0xa_0000), (0x10_0000, 0x10_0000, 1 << 20)]
        );
        assert!(GuestMemory::from_file(&f, 100, 2, Vec::new()).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn ram_above_pci_hole_is_remapped() {
        let mut m = GuestMemory::new(4096, vec![0; 64 << 10]).unwrap();
        assert_eq!(m.low_ram(), PCI_HOLE_START);
        assert_eq!(m.page(PCI_HOLE_START), PageTarget::Mmio);
        assert!(matches!(
            m.page(FOUR_GIB),
            PageTarget::Host { writable: true, .. }
        ));
        assert_eq!(m.page(FOUR_GIB + (512 << 20)), PageTarget::Mmio);
    }
}
