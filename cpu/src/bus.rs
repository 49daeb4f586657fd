//! The CPU's one window on the world. The CPU never names a device: RAM is reached through
//! host pointers handed out page by page (then cached in the TLB), everything else through
//! the calls below, which the machine dispatches.

use std::ptr::NonNull;

/// Guest physical page size.
pub const PAGE_SIZE: u64 = 4096;

/// What lives at a guest physical page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTarget {
    /// RAM or ROM: the host address of the page's first byte. Writes to a ROM page go to
    /// [`Bus::mmio_write`] (the machine drops them), so `writable` is false for ROM.
    Host { ptr: NonNull<u8>, writable: bool },
    /// Device memory or nothing: every access goes to the bus.
    Mmio,
}

pub trait Bus {
    /// Where the 4 KiB page at `page_addr` (page aligned) lives. A `Host` pointer must stay
    /// valid for 4096 bytes until [`Bus::map_generation`] changes.
    fn page(&mut self, page_addr: u64) -> PageTarget;
    /// Changes whenever a previously returned page mapping may no longer hold (A20 toggled,
    /// ROM shadowing changed, memory hot-plugged). The CPU then drops its TLB.
    fn map_generation(&self) -> u64;
    /// Physical address lines above A20 are masked with this (A20 gate).
    fn a20_mask(&self) -> u64;
    /// Read device memory (or open bus: all ones) at `paddr`; `data.len()` is 1, 2, 4 or 8.
    fn mmio_read(&mut self, paddr: u64, data: &mut [u8]);
    fn mmio_write(&mut self, paddr: u64, data: &[u8]);
    /// Tell the machine how many instructions have retired, so that device time is exact at
    /// the access that follows (called by [`crate::Cpu::port_in`]/[`crate::Cpu::port_out`]).
    fn sync_retired(&mut self, retired: u64);
    /// Port input of `size` bytes (1, 2 or 4).
    fn io_in(&mut self, port: u16, size: u8) -> u32;
    fn io_out(&mut self, port: u16, size: u8, value: u32);
    /// Is the INTR line asserted?
    fn interrupt_pending(&mut self) -> bool;
    /// INTA cycle: the vector of the interrupt being acknowledged.
    fn interrupt_ack(&mut self) -> u8;
    /// A device asked the machine to stop (exit request, reset): the CPU returns from `run`
    /// at the next instruction boundary.
    fn stop_requested(&self) -> bool;
}
