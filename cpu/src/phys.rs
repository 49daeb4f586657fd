//! Physical memory access by the CPU itself (page-table entries, and the slow path of
//! linear accesses): host memory through the bus's page pointers, the rest as MMIO.

use crate::bus::{Bus, PageTarget, PAGE_SIZE};

/// Read `buf.len()` bytes at `paddr`; the range must not cross a page.
pub fn read(bus: &mut dyn Bus, paddr: u64, buf: &mut [u8]) {
    let paddr = paddr & bus.a20_mask();
    debug_assert!(paddr % PAGE_SIZE + buf.len() as u64 <= PAGE_SIZE);
    match bus.page(paddr & !(PAGE_SIZE - 1)) {
        PageTarget::Host { ptr, .. } => {
            let off = (paddr % PAGE_SIZE) as usize;
            // SAFETY: the bus guarantees 4096 valid bytes at `ptr`, and off+len stays inside.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len());
            }
        }
        PageTarget::Mmio => bus.mmio_read(paddr, buf),
    }
}

/// Write `data` at `paddr`; the range must not cross a page. ROM pages ignore writes.
pub fn write(bus: &mut dyn Bus, paddr: u64, data: &[u8]) {
    let paddr = paddr & bus.a20_mask();
    debug_assert!(paddr % PAGE_SIZE + data.len() as u64 <= PAGE_SIZE);
    match bus.page(paddr & !(PAGE_SIZE - 1)) {
        PageTarget::Host {
            ptr,
            writable: true,
        } => {
            let off = (paddr % PAGE_SIZE) as usize;
            // SAFETY: as in `read`; the page is writable host memory.
            unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr().add(off), data.len());
            }
        }
        _ => bus.mmio_write(paddr, data),
    }
}

/// Read a naturally aligned page-table entry of 4 or 8 bytes.
#[must_use]
pub fn read_entry(bus: &mut dyn Bus, paddr: u64, size: u8) -> u64 {
    let mut b = [0u8; 8];
    read(bus, paddr, &mut b[..usize::from(size)]);
    u64::from_le_bytes(b)
}

pub fn write_entry(bus: &mut dyn Bus, paddr: u64, value: u64, size: u8) {
    write(bus, paddr, &value.to_le_bytes()[..usize::from(size)]);
}
