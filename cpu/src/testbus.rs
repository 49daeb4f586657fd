//! A bus with flat RAM and recorded port I/O, for unit tests and conformance runners.

use crate::bus::{Bus, PageTarget, PAGE_SIZE};
use std::ptr::NonNull;

/// Flat RAM from physical 0; reads beyond it return all ones, writes are dropped. Port writes
/// are recorded; port reads return `port_value`.
pub struct FlatBus {
    ram: Vec<u8>,
    pub a20: bool,
    pub generation: u64,
    pub port_writes: Vec<(u16, u8, u32)>,
    pub port_value: u32,
    /// Vector to hand out at the next INTA, with INTR asserted while it is `Some`.
    pub pending_irq: Option<u8>,
    pub stop: bool,
}

impl FlatBus {
    #[must_use]
    pub fn new(ram_bytes: usize) -> Self {
        let pages = ram_bytes.div_ceil(PAGE_SIZE as usize);
        Self {
            ram: vec![0; pages * PAGE_SIZE as usize],
            a20: true,
            generation: 0,
            port_writes: Vec::new(),
            port_value: 0xffff_ffff,
            pending_irq: None,
            stop: false,
        }
    }

    #[must_use]
    pub fn ram(&self) -> &[u8] {
        &self.ram
    }

    pub fn ram_mut(&mut self) -> &mut [u8] {
        &mut self.ram
    }

    /// Copy `data` into RAM at `addr` (silently clipped at the end of RAM).
    pub fn load(&mut self, addr: u64, data: &[u8]) {
        let start = (addr as usize).min(self.ram.len());
        let end = start.saturating_add(data.len()).min(self.ram.len());
        self.ram[start..end].copy_from_slice(&data[..end - start]);
    }
}

impl Bus for FlatBus {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        let at = page_addr as usize;
        if page_addr < self.ram.len() as u64 {
            if let Some(ptr) = NonNull::new(self.ram[at..].as_mut_ptr()) {
                return PageTarget::Host {
                    ptr,
                    writable: true,
                };
            }
        }
        PageTarget::Mmio
    }
    fn map_generation(&self) -> u64 {
        self.generation
    }
    fn a20_mask(&self) -> u64 {
        if self.a20 {
            u64::MAX
        } else {
            !(1 << 20)
        }
    }
    fn mmio_read(&mut self, _paddr: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn mmio_write(&mut self, _paddr: u64, _data: &[u8]) {}
    fn sync_retired(&mut self, _retired: u64) {}
    fn io_in(&mut self, _port: u16, size: u8) -> u32 {
        self.port_value & crate::flags::size_mask(size) as u32
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.port_writes.push((port, size, value));
    }
    fn interrupt_pending(&mut self) -> bool {
        self.pending_irq.is_some()
    }
    fn interrupt_ack(&mut self) -> u8 {
        self.pending_irq.take().unwrap_or(0xff)
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
}
