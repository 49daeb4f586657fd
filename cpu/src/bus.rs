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

    // ----- the local APIC's registers the CPU reaches without MMIO (defaults: no APIC) -----

    /// Time-stamp counter ticks since power-on after `retired` instructions, by the machine's
    /// virtual clock (so it runs on while the CPU is halted); `None`: one per instruction.
    fn tsc_ticks(&mut self, retired: u64) -> Option<u64> {
        let _ = retired;
        None
    }
    /// The guest wrote the TSC: it now reads `offset` plus [`Bus::tsc_ticks`].
    fn tsc_written(&mut self, offset: u64) {
        let _ = offset;
    }
    /// The local APIC's task priority register (CR8 reads bits 7:4); `None`: no local APIC.
    fn apic_tpr(&mut self) -> Option<u8> {
        None
    }
    /// MOV to CR8: the task priority becomes `tpr` (CR8 << 4). Interrupt acceptance changes
    /// with it, so the CPU polls the INTR line again afterwards.
    fn set_apic_tpr(&mut self, tpr: u8) {
        let _ = tpr;
    }
    /// WRMSR IA32_APIC_BASE after `retired` instructions stored `value`: the local APIC
    /// moves its register window or is turned off or on (SDM 10.4.4).
    fn apic_base_written(&mut self, retired: u64, value: u64) {
        let _ = (retired, value);
    }
    /// RDMSR IA32_TSC_DEADLINE after `retired` instructions; `None`: no local APIC.
    fn tsc_deadline(&mut self, retired: u64) -> Option<u64> {
        let _ = retired;
        None
    }
    /// WRMSR IA32_TSC_DEADLINE after `retired` instructions, for a TSC that reads `offset`
    /// plus [`Bus::tsc_ticks`]. Returns false when there is no local APIC to take it.
    fn set_tsc_deadline(&mut self, retired: u64, deadline: u64, offset: u64) -> bool {
        let _ = (retired, deadline, offset);
        false
    }
}
