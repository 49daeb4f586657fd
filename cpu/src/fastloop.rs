//! The interpreter's fast path: the run loop used when no debugger or tracer watches.
//!
//! Two things make it cheaper than stepping: it polls the bus (stop requests, the INTR line,
//! the memory map) only after an instruction made a bus call that can change them, and it
//! finds the next instruction through a window on the decoded code page under RIP instead
//! of a translation and a hash lookup. Both give exactly the results of [`Cpu::step`].

use crate::bus::{Bus, PageTarget, PAGE_SIZE};
use crate::cpu::RunExit;
use crate::icache::{Decoded, PageHandle};
use crate::state::{rflags, CpuState, SegReg, Segment};
use crate::Cpu;

/// The bus as the fast loop lends it to instructions: it notes every call that can change
/// what the loop would otherwise poll before each instruction (a stop request, the INTR line,
/// the memory map), so that the loop polls only after such a call.
struct WatchedBus<'a> {
    inner: &'a mut dyn Bus,
    touched: bool,
}

impl Bus for WatchedBus<'_> {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        self.inner.page(page_addr)
    }
    fn map_generation(&self) -> u64 {
        self.inner.map_generation()
    }
    fn a20_mask(&self) -> u64 {
        self.inner.a20_mask()
    }
    fn mmio_read(&mut self, paddr: u64, data: &mut [u8]) {
        self.touched = true;
        self.inner.mmio_read(paddr, data);
    }
    fn mmio_write(&mut self, paddr: u64, data: &[u8]) {
        self.touched = true;
        self.inner.mmio_write(paddr, data);
    }
    fn sync_retired(&mut self, retired: u64) {
        self.inner.sync_retired(retired);
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.touched = true;
        self.inner.io_in(port, size)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.touched = true;
        self.inner.io_out(port, size, value);
    }
    fn interrupt_pending(&mut self) -> bool {
        self.inner.interrupt_pending()
    }
    fn interrupt_ack(&mut self) -> u8 {
        self.touched = true;
        self.inner.interrupt_ack()
    }
    fn stop_requested(&self) -> bool {
        self.inner.stop_requested()
    }
    fn tsc_ticks(&mut self, retired: u64) -> Option<u64> {
        self.inner.tsc_ticks(retired)
    }
    fn tsc_written(&mut self, offset: u64) {
        self.touched = true;
        self.inner.tsc_written(offset);
    }
    fn apic_tpr(&mut self) -> Option<u8> {
        self.inner.apic_tpr()
    }
    fn set_apic_tpr(&mut self, tpr: u8) {
        self.touched = true;
        self.inner.set_apic_tpr(tpr);
    }
    fn apic_base_written(&mut self, retired: u64, value: u64) {
        self.touched = true;
        self.inner.apic_base_written(retired, value);
    }
    fn tsc_deadline(&mut self, retired: u64) -> Option<u64> {
        self.touched = true;
        self.inner.tsc_deadline(retired)
    }
    fn set_tsc_deadline(&mut self, retired: u64, deadline: u64, offset: u64) -> bool {
        self.touched = true;
        self.inner.set_tsc_deadline(retired, deadline, offset)
    }
}

/// The decoded page the last full fetch found RIP on. While nothing a fetch depends on has
/// changed (CS, SS's attributes for CPL, the mode bits, the TLB, the decode cache), an
/// instruction at another RIP of that page is found by index, with the result a full fetch
/// would give.
#[derive(Clone, Copy)]
pub(crate) struct CodeWindow {
    /// The RIP whose linear address is the first byte of the page.
    ip_base: u64,
    /// Highest RIP an instruction's last byte may have (the CS limit; none in 64-bit mode).
    limit: u64,
    cs: Segment,
    ss_attr: u16,
    cr0: u64,
    cr4: u64,
    efer: u64,
    vm: u64,
    tlb_epoch: u64,
    page: PageHandle,
}

impl CodeWindow {
    /// Is every input of the fetch as it was when the window was opened?
    #[inline(always)]
    fn holds(&self, s: &CpuState, tlb_epoch: u64) -> bool {
        let cs = &s.seg[SegReg::Cs as usize];
        let ss = &s.seg[SegReg::Ss as usize];
        // Any change at all, even one that would not matter, just costs one full fetch.
        let changed = (cs.base ^ self.cs.base)
            | u64::from(cs.limit ^ self.cs.limit)
            | u64::from(cs.attr ^ self.cs.attr)
            | u64::from(ss.attr ^ self.ss_attr)
            | (s.cr0 ^ self.cr0)
            | (s.cr4 ^ self.cr4)
            | (s.efer ^ self.efer)
            | ((s.rflags ^ self.vm) & rflags::VM)
            | (tlb_epoch ^ self.tlb_epoch);
        changed == 0
    }
}

/// Instructions between two polls of the bus when no instruction touched it, so that a stop
/// request raised from outside the CPU (another thread, a signal) is seen within a bounded
/// time.
const POLL_INTERVAL: u64 = 1 << 16;

/// IP wrap-around mask by iced `CodeSize` (unknown, 16, 32, 64).
const IP_MASKS: [u64; 4] = [u64::MAX, 0xffff, 0xffff_ffff, u64::MAX];

/// Where the next IP wraps for an instruction decoded in its code size.
#[inline(always)]
pub(crate) fn ip_mask(insn: &iced_x86::Instruction) -> u64 {
    IP_MASKS[insn.code_size() as usize & 3]
}

impl Cpu {
    /// Run until `retired` reaches `end`, the CPU halts or shuts down, or the bus asks to stop,
    /// with the same results as stepping (no debugger or tracer may be active).
    pub(crate) fn run_fast(&mut self, bus: &mut dyn Bus, end: u64) -> crate::RunExit {
        let mut bus = WatchedBus {
            inner: bus,
            touched: true,
        };
        let mut next_poll = 0;
        loop {
            if self.s.events.shutdown {
                return RunExit::Shutdown;
            }
            // Stop requests, the INTR line and the memory map change only through bus calls.
            if bus.touched || self.retired >= next_poll {
                bus.touched = false;
                next_poll = self.retired.saturating_add(POLL_INTERVAL);
                if bus.inner.stop_requested() {
                    return RunExit::Stopped;
                }
                self.sync_map_generation(bus.inner);
                self.irq_line = None;
            }
            // The common case: instruction after instruction while nothing else can happen.
            let quiet_end = end.min(next_poll);
            while self.retired < quiet_end && !bus.touched && self.quiet() {
                self.execute_quiet(&mut bus);
            }
            if bus.touched || self.s.events.shutdown || self.retired >= next_poll {
                continue;
            }
            if self.retired >= end {
                return RunExit::Budget;
            }
            if !self.step_polled(&mut bus) {
                return RunExit::Halted;
            }
        }
    }

    /// Nothing but the next instruction can happen now: no interrupt shadow, NMI, halt,
    /// shutdown, single-step or resume flag, and no maskable interrupt that could be taken.
    #[inline(always)]
    fn quiet(&self) -> bool {
        let e = &self.s.events;
        let f = self.s.rflags;
        !(e.interrupt_shadow | e.nmi_pending | e.halted | e.shutdown)
            && f & (rflags::TF | rflags::RF) == 0
            && (f & rflags::IF == 0 || self.irq_line == Some(false))
    }

    /// [`Cpu::step_polled`] for a quiet CPU: fetch, execute, retire.
    #[inline(always)]
    fn execute_quiet(&mut self, bus: &mut WatchedBus) {
        let fetched;
        let d: &Decoded = match self.window_insn() {
            // SAFETY: the decode cache keeps the instruction where it is until the next full
            // fetch (pages dropped meanwhile wait in its graveyard), and the handler does not
            // fetch.
            Some(p) => unsafe { &*p },
            None => match self.fetch(bus) {
                Ok(d) => {
                    fetched = d;
                    &fetched
                }
                Err(f) => return self.retire_fault(bus, f),
            },
        };
        self.next_ip = self.s.rip.wrapping_add(d.insn.len() as u64) & ip_mask(&d.insn);
        match (d.handler)(self, bus, &d.insn) {
            Ok(()) => {
                self.s.rip = self.next_ip;
                self.retired += 1;
            }
            Err(f) => self.retire_fault(bus, f),
        }
    }

    /// The instruction at CS:IP from the code window, when the window still holds and the
    /// instruction is decoded there and within the CS limit (else the full fetch decides).
    /// The pointer stays valid until the next full fetch.
    #[inline(always)]
    pub(crate) fn window_insn(&self) -> Option<*const Decoded> {
        let w = self.window.as_ref()?;
        let ip = self.s.rip;
        let off = ip.wrapping_sub(w.ip_base);
        if off >= PAGE_SIZE || !w.holds(&self.s, self.tlb.epoch()) {
            return None;
        }
        let d = self.icache.get_by_handle(w.page, off)?;
        if ip.wrapping_add(d.insn.len() as u64).wrapping_sub(1) > w.limit {
            return None;
        }
        Some(d)
    }

    /// Point the code window at the page of the instruction a full fetch just found at `ip`
    /// (linear `lin`, physical page `ppage`).
    pub(crate) fn open_window(&mut self, ppage: u64, ip: u64, lin: u64, bitness: u32, limit: u32) {
        let s = &self.s;
        self.window = self.icache.handle(ppage, bitness).map(|page| CodeWindow {
            ip_base: ip.wrapping_sub(lin & (PAGE_SIZE - 1)),
            limit: if bitness == 64 {
                u64::MAX
            } else {
                u64::from(limit)
            },
            cs: s.seg[SegReg::Cs as usize],
            ss_attr: s.seg[SegReg::Ss as usize].attr,
            cr0: s.cr0,
            cr4: s.cr4,
            efer: s.efer,
            vm: s.rflags & rflags::VM,
            tlb_epoch: self.tlb.epoch(),
            page,
        });
    }
}

#[cfg(test)]
#[path = "fastloop_tests.rs"]
mod tests;
