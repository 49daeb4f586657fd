//! The local APIC registers the CPU reaches without MMIO: CR8 (the TPR), IA32_APIC_BASE and
//! IA32_TSC_DEADLINE, and the time-stamp counter they are measured against.

use super::{Board, Ctx, LAPIC_SLOT};
use crate::clock::NS_PER_INSN;
use nestor_device::Device;
use nestor_lapic::tsc_at;

/// TSC rate: one tick per instruction of the deterministic clock (250 MHz), so that a
/// guest that never halts sees the same TSC as one tick per retired instruction.
pub const TSC_HZ: u64 = 1_000_000_000 / NS_PER_INSN;

impl Board {
    /// TSC ticks since power-on after `retired` instructions: virtual time at [`TSC_HZ`],
    /// which keeps counting through idle time skipped while the CPU is halted.
    pub(super) fn tsc_ticks_at(&self, retired: u64) -> u64 {
        tsc_at(self.clock.now_ns(retired), TSC_HZ, 0)
    }

    /// The TSC now reads `offset` plus [`Board::tsc_ticks_at`]: the APIC measures deadlines
    /// against the same counter.
    pub(super) fn set_tsc_offset(&mut self, offset: u64) {
        self.irq.lapic.set_tsc_clock(TSC_HZ, offset);
        self.note_deadline();
    }

    /// IA32_TSC_DEADLINE as the APIC holds it, after running a timer that is already due
    /// (so a fired deadline reads 0 at once).
    pub(super) fn read_tsc_deadline(&mut self, retired: u64) -> u64 {
        self.retired = retired;
        self.fire_lapic_timer();
        self.irq.lapic.tsc_deadline()
    }

    /// WRMSR IA32_TSC_DEADLINE: arm or disarm the APIC timer (ignored outside TSC-deadline
    /// mode); a deadline that falls in the running slice stops the CPU after the WRMSR.
    pub(super) fn write_tsc_deadline(&mut self, retired: u64, deadline: u64, offset: u64) {
        self.retired = retired;
        self.irq.lapic.set_tsc_clock(TSC_HZ, offset);
        self.irq.lapic.set_tsc_deadline(deadline);
        self.note_deadline();
    }

    /// WRMSR IA32_APIC_BASE (validated by the CPU): the APIC's window moves, or the APIC
    /// turns off (resetting it) or on; the MMIO map follows before the next instruction.
    pub(crate) fn write_apic_base(&mut self, retired: u64, value: u64) {
        self.retired = retired;
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now: self.clock.now_ns(retired),
            source: LAPIC_SLOT,
        };
        if self.irq.lapic.set_apic_base(value, &mut ctx).is_err() {
            tracing::warn!("IA32_APIC_BASE {value:#x} refused by the local APIC");
        }
        self.irq_dirty = true;
        self.settle();
    }

    /// MOV to CR8.
    pub(super) fn write_tpr(&mut self, tpr: u8) {
        self.irq.lapic.set_tpr(tpr);
    }

    fn fire_lapic_timer(&mut self) {
        let now = self.now_ns();
        if self.run_lapic_timer_if_due(now) {
            self.settle();
        }
    }

    /// Runs the local APIC's timer if its deadline is at or before `now`; true if it ran.
    pub(super) fn run_lapic_timer_if_due(&mut self, now: u64) -> bool {
        if self.irq.lapic.next_deadline_ns().is_none_or(|d| d > now) {
            return false;
        }
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now,
            source: LAPIC_SLOT,
        };
        self.irq.lapic.on_timer(&mut ctx);
        self.irq_dirty = true;
        true
    }
}
