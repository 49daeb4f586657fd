//! Test doubles for device crates (cargo feature `testing`): a machine context that records what
//! a device does, and a character backend whose input and output a test can reach.
//!
//! ```
//! use nestor_device::testing::FakeContext;
//! use nestor_device::{DeviceContext, ExitRequest};
//!
//! let mut ctx = FakeContext::new();
//! ctx.set_irq(4, true);
//! ctx.request_exit(ExitRequest::PowerOff);
//! ctx.now_ns = 1_000;
//! assert!(ctx.irq(4));
//! assert_eq!(ctx.rising_edges(4), 1);
//! assert_eq!(ctx.exits, vec![ExitRequest::PowerOff]);
//! assert_eq!(ctx.now_ns(), 1_000);
//! ```

use crate::{CharBackend, Device, DeviceContext, DmaError, ExitRequest};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One call of [`DeviceContext::set_irq`], with the virtual time it happened at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqEvent {
    pub at_ns: u64,
    pub line: u8,
    pub level: bool,
}

/// A [`DeviceContext`] for tests: settable clock, recorded IRQ levels and exit requests, and a
/// small RAM for DMA.
#[derive(Clone, Debug, Default)]
pub struct FakeContext {
    /// Virtual time returned by [`DeviceContext::now_ns`]; tests move it by hand.
    pub now_ns: u64,
    /// Every `set_irq` call in order.
    pub irq_events: Vec<IrqEvent>,
    /// Every exit request in order.
    pub exits: Vec<ExitRequest>,
    /// Guest RAM at physical address 0.
    pub ram: Vec<u8>,
    /// How many times the device asked the machine to remap it.
    pub remaps: usize,
    levels: BTreeMap<u8, bool>,
}

impl FakeContext {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A context with `bytes` of zeroed RAM at guest physical 0.
    #[must_use]
    pub fn with_ram(bytes: usize) -> Self {
        Self {
            ram: vec![0; bytes],
            ..Self::default()
        }
    }

    /// Current level of an IRQ line (low if never driven).
    #[must_use]
    pub fn irq(&self, line: u8) -> bool {
        self.levels.get(&line).copied().unwrap_or(false)
    }

    /// How many low-to-high transitions the line made over the recorded events.
    #[must_use]
    pub fn rising_edges(&self, line: u8) -> usize {
        let mut level = false;
        let mut edges = 0;
        for e in self.irq_events.iter().filter(|e| e.line == line) {
            if e.level && !level {
                edges += 1;
            }
            level = e.level;
        }
        edges
    }

    /// Times (ns) of the low-to-high transitions of a line.
    #[must_use]
    pub fn rising_edge_times(&self, line: u8) -> Vec<u64> {
        let mut level = false;
        let mut times = Vec::new();
        for e in self.irq_events.iter().filter(|e| e.line == line) {
            if e.level && !level {
                times.push(e.at_ns);
            }
            level = e.level;
        }
        times
    }

    /// Forget recorded IRQ events and exit requests (current levels are kept).
    pub fn clear_events(&mut self) {
        self.irq_events.clear();
        self.exits.clear();
    }

    /// Advance virtual time to `until_ns`, calling the device's timer at each deadline it asks
    /// for on the way, exactly at that deadline.
    ///
    /// # Panics
    /// If the device keeps asking for timers without time moving on (a device bug).
    pub fn run_until(&mut self, dev: &mut dyn Device, until_ns: u64) {
        let mut calls_at_same_time = 0u32;
        while let Some(deadline) = dev.next_deadline_ns() {
            if deadline > until_ns {
                break;
            }
            if deadline <= self.now_ns {
                calls_at_same_time += 1;
                assert!(
                    calls_at_same_time < 1000,
                    "device asks again and again for a timer at {deadline} ns (now {} ns)",
                    self.now_ns
                );
            } else {
                calls_at_same_time = 0;
                self.now_ns = deadline;
            }
            dev.on_timer(self);
        }
        self.now_ns = self.now_ns.max(until_ns);
    }

    fn ram_range(&self, paddr: u64, len: usize) -> Result<std::ops::Range<usize>, DmaError> {
        let err = DmaError { paddr, len };
        let start = usize::try_from(paddr).map_err(|_| err.clone())?;
        let end = start.checked_add(len).ok_or(err.clone())?;
        if end > self.ram.len() {
            return Err(err);
        }
        Ok(start..end)
    }
}

impl DeviceContext for FakeContext {
    fn set_irq(&mut self, line: u8, level: bool) {
        self.levels.insert(line, level);
        self.irq_events.push(IrqEvent {
            at_ns: self.now_ns,
            line,
            level,
        });
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn dma_read(&mut self, paddr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let range = self.ram_range(paddr, buf.len())?;
        buf.copy_from_slice(&self.ram[range]);
        Ok(())
    }

    fn dma_write(&mut self, paddr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let range = self.ram_range(paddr, buf.len())?;
        self.ram[range].copy_from_slice(buf);
        Ok(())
    }

    fn request_exit(&mut self, why: ExitRequest) {
        self.exits.push(why);
    }
    fn remap(&mut self) {
        self.remaps += 1;
    }
}

#[derive(Debug, Default)]
struct Buffers {
    output: Vec<u8>,
    input: VecDeque<u8>,
    flushes: usize,
}

/// A [`CharBackend`] whose clones share one buffer: give one clone to the device, keep another
/// to feed input and inspect output.
///
/// ```
/// use nestor_device::testing::BufferBackend;
/// use nestor_device::CharBackend;
///
/// let handle = BufferBackend::new();
/// let mut device_side: Box<dyn CharBackend> = Box::new(handle.clone());
/// handle.push_input(b"hi");
/// assert_eq!(device_side.read(), Some(b'h'));
/// device_side.write(b"ok");
/// assert_eq!(handle.output(), b"ok");
/// ```
#[derive(Clone, Debug, Default)]
pub struct BufferBackend {
    inner: Arc<Mutex<Buffers>>,
    output_only: bool,
}

impl BufferBackend {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend that reports it never has input ([`CharBackend::has_input`] is false).
    #[must_use]
    pub fn output_only() -> Self {
        Self {
            output_only: true,
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffers> {
        // A test that panicked while holding the lock has failed already; keep the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue bytes for the device to read.
    pub fn push_input(&self, bytes: &[u8]) {
        self.lock().input.extend(bytes);
    }

    /// Bytes still waiting to be read by the device.
    #[must_use]
    pub fn pending_input(&self) -> usize {
        self.lock().input.len()
    }

    /// Everything the device wrote so far.
    #[must_use]
    pub fn output(&self) -> Vec<u8> {
        self.lock().output.clone()
    }

    /// Everything the device wrote so far, as text (lossy).
    #[must_use]
    pub fn output_string(&self) -> String {
        String::from_utf8_lossy(&self.lock().output).into_owned()
    }

    /// Take the output written so far, leaving the buffer empty.
    pub fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut self.lock().output)
    }

    /// How many times the device called [`CharBackend::flush`].
    #[must_use]
    pub fn flushes(&self) -> usize {
        self.lock().flushes
    }
}

impl CharBackend for BufferBackend {
    fn write(&mut self, bytes: &[u8]) {
        self.lock().output.extend_from_slice(bytes);
    }

    fn read(&mut self) -> Option<u8> {
        self.lock().input.pop_front()
    }

    fn flush(&mut self) {
        self.lock().flushes += 1;
    }

    fn has_input(&self) -> bool {
        !self.output_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_is_bounds_checked() {
        let mut ctx = FakeContext::with_ram(16);
        ctx.dma_write(12, &[1, 2, 3, 4]).unwrap();
        let mut buf = [0; 4];
        ctx.dma_read(12, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        assert!(ctx.dma_write(13, &[0; 4]).is_err());
        assert!(ctx.dma_read(u64::MAX, &mut buf).is_err());
    }

    #[test]
    fn edges_are_counted_per_line() {
        let mut ctx = FakeContext::new();
        for level in [true, true, false, true] {
            ctx.set_irq(3, level);
        }
        ctx.set_irq(4, true);
        assert_eq!(ctx.rising_edges(3), 2);
        assert_eq!(ctx.rising_edges(4), 1);
        assert_eq!(ctx.rising_edges(5), 0);
    }
}
