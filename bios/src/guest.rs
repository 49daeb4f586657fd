//! Guest memory as the BIOS sees it: physical reads and writes through the [`Platform`], and
//! linear → physical translation for callers that run with paging on (a virtual-8086 monitor,
//! a 32-bit kernel calling the PCI BIOS).

use crate::Platform;
use nestor_cpu::state::{cr0, cr4};
use nestor_cpu::CpuState;

pub fn rd8(p: &mut dyn Platform, paddr: u64) -> u8 {
    let mut b = [0u8; 1];
    if p.read_mem(paddr, &mut b) {
        b[0]
    } else {
        0xFF
    }
}

pub fn rd16(p: &mut dyn Platform, paddr: u64) -> u16 {
    let mut b = [0u8; 2];
    if p.read_mem(paddr, &mut b) {
        u16::from_le_bytes(b)
    } else {
        0xFFFF
    }
}

pub fn rd32(p: &mut dyn Platform, paddr: u64) -> u32 {
    let mut b = [0u8; 4];
    if p.read_mem(paddr, &mut b) {
        u32::from_le_bytes(b)
    } else {
        0xFFFF_FFFF
    }
}

pub fn rd64(p: &mut dyn Platform, paddr: u64) -> u64 {
    let mut b = [0u8; 8];
    if p.read_mem(paddr, &mut b) {
        u64::from_le_bytes(b)
    } else {
        u64::MAX
    }
}

pub fn wr8(p: &mut dyn Platform, paddr: u64, v: u8) {
    p.write_mem(paddr, &[v]);
}

pub fn wr16(p: &mut dyn Platform, paddr: u64, v: u16) {
    p.write_mem(paddr, &v.to_le_bytes());
}

pub fn wr32(p: &mut dyn Platform, paddr: u64, v: u32) {
    p.write_mem(paddr, &v.to_le_bytes());
}

/// Reads `len` bytes; unreadable memory reads as 0xFF.
pub fn read_vec(p: &mut dyn Platform, paddr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if !p.read_mem(paddr, &mut v) {
        v.fill(0xFF);
    }
    v
}

/// Physical address of a real-mode `segment:offset`.
#[must_use]
pub fn real(segment: u16, offset: u16) -> u64 {
    (u64::from(segment) << 4) + u64::from(offset)
}

const PRESENT: u64 = 1;
const LARGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// Physical address of linear `lin`, walking the guest's page tables when paging is on.
/// `None` when a level is not present.
pub fn translate(cpu: &CpuState, p: &mut dyn Platform, lin: u64) -> Option<u64> {
    if cpu.cr0 & cr0::PG == 0 {
        return Some(lin & 0xFFFF_FFFF);
    }
    let long = cpu.efer & (1 << 10) != 0;
    if long {
        let mut table = cpu.cr3 & ADDR_MASK;
        for (level, shift) in [(4, 39), (3, 30), (2, 21), (1, 12)] {
            let e = rd64(p, table + ((lin >> shift) & 0x1FF) * 8);
            if e & PRESENT == 0 {
                return None;
            }
            if level < 4 && level > 1 && e & LARGE != 0 {
                let size = 1u64 << shift;
                return Some((e & ADDR_MASK & !(size - 1)) | (lin & (size - 1)));
            }
            table = e & ADDR_MASK;
        }
        return Some(table | (lin & 0xFFF));
    }
    let lin = lin & 0xFFFF_FFFF;
    if cpu.cr4 & cr4::PAE != 0 {
        let pdpte = rd64(p, (cpu.cr3 & 0xFFFF_FFE0) + ((lin >> 30) & 3) * 8);
        if pdpte & PRESENT == 0 {
            return None;
        }
        let pde = rd64(p, (pdpte & ADDR_MASK) + ((lin >> 21) & 0x1FF) * 8);
        if pde & PRESENT == 0 {
            return None;
        }
        if pde & LARGE != 0 {
            return Some((pde & ADDR_MASK & !0x1F_FFFF) | (lin & 0x1F_FFFF));
        }
        let pte = rd64(p, (pde & ADDR_MASK) + ((lin >> 12) & 0x1FF) * 8);
        return (pte & PRESENT != 0).then_some((pte & ADDR_MASK) | (lin & 0xFFF));
    }
    let pde = u64::from(rd32(p, (cpu.cr3 & 0xFFFF_F000) + ((lin >> 22) & 0x3FF) * 4));
    if pde & PRESENT == 0 {
        return None;
    }
    if pde & LARGE != 0 && cpu.cr4 & cr4::PSE != 0 {
        let high = ((pde >> 13) & 0xFF) << 32;
        return Some(high | (pde & 0xFFC0_0000) | (lin & 0x3F_FFFF));
    }
    let pte = u64::from(rd32(p, (pde & 0xFFFF_F000) + ((lin >> 12) & 0x3FF) * 4));
    (pte & PRESENT != 0).then_some((pte & 0xFFFF_F000) | (lin & 0xFFF))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    #[test]
    fn two_level_walk_maps_pages() {
        let mut p = FakePlatform::new(0x10_0000);
        let mut cpu = CpuState::power_on();
        cpu.cr0 |= cr0::PG | cr0::PE;
        cpu.cr3 = 0x1000;
        // PDE 0x300 (linear 0xC000_0000) -> page table at 0x2000; PTE 0 -> 0x5000.
        wr32(&mut p, 0x1000 + 0x300 * 4, 0x2003);
        wr32(&mut p, 0x2000, 0x5003);
        assert_eq!(translate(&cpu, &mut p, 0xC000_0123), Some(0x5123));
        assert_eq!(translate(&cpu, &mut p, 0xC000_1000), None);
        assert_eq!(translate(&cpu, &mut p, 0x1234), None);
        cpu.cr0 &= !cr0::PG;
        assert_eq!(translate(&cpu, &mut p, 0x1234), Some(0x1234));
    }
}
