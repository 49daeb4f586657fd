//! The register file by offset (xAPIC MMIO offsets; x2APIC MSR 0x800 + n is offset n << 4),
//! and the 256-bit vector registers.

use crate::{lvt, timer, AckResult, Lapic, StartupEvent};
use crate::{ApicMessage, DeliveryMode, DestinationMode, OutgoingIpi, BROADCAST};
use serde::{Deserialize, Serialize};

/// Register offsets from the APIC base.
pub mod reg {
    pub const ID: u32 = 0x20;
    pub const VERSION: u32 = 0x30;
    pub const TPR: u32 = 0x80;
    pub const APR: u32 = 0x90;
    pub const PPR: u32 = 0xa0;
    pub const EOI: u32 = 0xb0;
    pub const RRD: u32 = 0xc0;
    pub const LDR: u32 = 0xd0;
    pub const DFR: u32 = 0xe0;
    pub const SVR: u32 = 0xf0;
    /// ISR bits 0-31; the seven registers after it every 0x10 hold the higher vectors.
    pub const ISR: u32 = 0x100;
    pub const TMR: u32 = 0x180;
    pub const IRR: u32 = 0x200;
    pub const ESR: u32 = 0x280;
    pub const ICR_LOW: u32 = 0x300;
    pub const ICR_HIGH: u32 = 0x310;
    pub const LVT_TIMER: u32 = 0x320;
    pub const LVT_THERMAL: u32 = 0x330;
    pub const LVT_PERF: u32 = 0x340;
    pub const LVT_LINT0: u32 = 0x350;
    pub const LVT_LINT1: u32 = 0x360;
    pub const LVT_ERROR: u32 = 0x370;
    pub const TIMER_INITIAL: u32 = 0x380;
    pub const TIMER_CURRENT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

/// Version register: version 0x14 (integrated APIC), highest LVT entry 5, no EOI-broadcast
/// suppression.
pub const VERSION: u32 = 0x0005_0014;

/// SVR bits: spurious vector, APIC software enable, focus processor checking disabled.
pub const SVR_WRITABLE: u32 = 0x3ff;
pub const SVR_ENABLE: u32 = 1 << 8;

/// ESR bits the model reports.
pub mod esr {
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
}

/// ICR low bits that can be written: vector, delivery mode, destination mode, level, trigger
/// mode, destination shorthand.
const ICR_LOW_WRITABLE: u32 = 0x000c_cfff;

/// Writable bits of each LVT entry (the timer's mode field includes TSC-deadline).
const LVT_TIMER_WRITABLE: u32 = 0x0007_00ff;
const LVT_DELIVERY_WRITABLE: u32 = 0x0001_07ff;
const LVT_LINT_WRITABLE: u32 = 0x0001_a7ff;
const LVT_ERROR_WRITABLE: u32 = 0x0001_00ff;

/// 256 bits, one per vector, laid out as the eight 32-bit registers the guest reads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VectorSet {
    pub words: [u32; 8],
}

impl VectorSet {
    #[must_use]
    pub fn contains(&self, v: u8) -> bool {
        self.words[usize::from(v >> 5)] & (1 << (v & 31)) != 0
    }

    pub fn set(&mut self, v: u8) {
        self.words[usize::from(v >> 5)] |= 1 << (v & 31);
    }

    pub fn clear(&mut self, v: u8) {
        self.words[usize::from(v >> 5)] &= !(1 << (v & 31));
    }

    /// The highest vector in the set.
    #[must_use]
    pub fn highest(&self) -> Option<u8> {
        let (i, w) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some((i * 32 + 31 - w.leading_zeros() as usize) as u8)
    }

    /// One of the eight registers (0 for an index past the end).
    #[must_use]
    pub fn word(&self, index: u32) -> u32 {
        self.words.get(index as usize).copied().unwrap_or(0)
    }
}

impl Lapic {
    /// Read the register at `offset` (16-byte aligned) at virtual time `now`. Write-only and
    /// reserved registers read 0.
    pub fn read_register(&mut self, offset: u32, now: u64) -> u32 {
        self.sync_timer(now);
        self.register_value(offset, now)
    }

    fn register_value(&self, offset: u32, now: u64) -> u32 {
        let s = &self.state;
        match offset {
            reg::ID => s.id,
            reg::VERSION => VERSION,
            reg::TPR => u32::from(s.tpr),
            reg::APR => u32::from(self.apr()),
            reg::PPR => u32::from(self.ppr()),
            reg::LDR => s.ldr,
            reg::DFR => s.dfr,
            reg::SVR => s.svr,
            0x100..=0x170 => s.isr.word((offset - reg::ISR) >> 4),
            0x180..=0x1f0 => s.tmr.word((offset - reg::TMR) >> 4),
            0x200..=0x270 => s.irr.word((offset - reg::IRR) >> 4),
            reg::ESR => s.esr,
            reg::ICR_LOW => s.icr_low,
            reg::ICR_HIGH => s.icr_high,
            reg::LVT_TIMER => s.lvt_timer,
            reg::LVT_THERMAL => s.lvt_thermal,
            reg::LVT_PERF => s.lvt_perf,
            reg::LVT_LINT0 => s.lvt_lint0,
            reg::LVT_LINT1 => s.lvt_lint1,
            reg::LVT_ERROR => s.lvt_error,
            reg::TIMER_INITIAL => s.timer.initial_count,
            reg::TIMER_CURRENT => match self.timer_mode() {
                lvt::TIMER_TSC_DEADLINE => 0,
                mode => s.timer.current_count(now, mode == lvt::TIMER_PERIODIC),
            },
            reg::TIMER_DIVIDE => s.timer.divide_config,
            _ => 0,
        }
    }

    /// Write the register at `offset` (16-byte aligned) at virtual time `now`. Writes to
    /// read-only and reserved registers are ignored.
    pub fn write_register(&mut self, offset: u32, value: u32, now: u64) {
        self.sync_timer(now);
        let s = &mut self.state;
        match offset {
            reg::ID => s.id = value & 0xff00_0000,
            reg::TPR => s.tpr = value as u8,
            reg::LDR => s.ldr = value & 0xff00_0000,
            reg::DFR => s.dfr = value | 0x0fff_ffff,
            // Write-then-read: the write makes the errors seen so far readable.
            reg::ESR => s.esr = std::mem::take(&mut s.esr_pending),
            reg::ICR_HIGH => s.icr_high = value & 0xff00_0000,
            reg::EOI => self.end_of_interrupt(),
            reg::SVR => {
                s.svr = value & SVR_WRITABLE;
                if value & SVR_ENABLE == 0 {
                    self.mask_all_lvts();
                }
            }
            reg::ICR_LOW => {
                s.icr_low = value & ICR_LOW_WRITABLE;
                self.send_ipi();
            }
            reg::LVT_TIMER => self.write_lvt_timer(value, now),
            reg::LVT_THERMAL => {
                self.state.lvt_thermal = self.lvt_value(value, LVT_DELIVERY_WRITABLE);
            }
            reg::LVT_PERF => self.state.lvt_perf = self.lvt_value(value, LVT_DELIVERY_WRITABLE),
            reg::LVT_LINT0 => self.write_lvt_lint(0, value),
            reg::LVT_LINT1 => self.write_lvt_lint(1, value),
            reg::LVT_ERROR => self.state.lvt_error = self.lvt_value(value, LVT_ERROR_WRITABLE),
            // In TSC-deadline mode the count registers do nothing.
            reg::TIMER_INITIAL if self.timer_mode() != lvt::TIMER_TSC_DEADLINE => {
                self.state.timer.load(value, now);
            }
            reg::TIMER_DIVIDE => {
                let periodic = self.timer_mode() == lvt::TIMER_PERIODIC;
                let t = &mut self.state.timer;
                t.rebase(now, periodic);
                t.divide_config = value & 0xb;
            }
            _ => {}
        }
    }

    /// An LVT value as stored: writable bits only, and masked while software-disabled.
    fn lvt_value(&self, value: u32, writable: u32) -> u32 {
        let value = value & writable;
        if self.software_enabled() {
            value
        } else {
            value | lvt::MASKED
        }
    }

    fn mask_all_lvts(&mut self) {
        let s = &mut self.state;
        for entry in [
            &mut s.lvt_timer,
            &mut s.lvt_thermal,
            &mut s.lvt_perf,
            &mut s.lvt_lint0,
            &mut s.lvt_lint1,
            &mut s.lvt_error,
        ] {
            *entry |= lvt::MASKED;
        }
    }

    fn write_lvt_timer(&mut self, value: u32, now: u64) {
        let old_mode = self.timer_mode();
        let periodic = old_mode == lvt::TIMER_PERIODIC;
        self.state.lvt_timer = self.lvt_value(value, LVT_TIMER_WRITABLE);
        let new_mode = self.timer_mode();
        let t = &mut self.state.timer;
        if (old_mode == lvt::TIMER_TSC_DEADLINE) != (new_mode == lvt::TIMER_TSC_DEADLINE) {
            t.disarm();
        } else if old_mode != new_mode {
            // One-shot and periodic differ in what follows zero: settle the count first.
            t.rebase(now, periodic);
        }
    }

    fn write_lvt_lint(&mut self, pin: u8, value: u32) {
        let stored = self.lvt_value(value, LVT_LINT_WRITABLE);
        let entry = if pin == 1 {
            &mut self.state.lvt_lint1
        } else {
            &mut self.state.lvt_lint0
        };
        // Remote IRR is the APIC's own; a write does not change it.
        *entry = stored | (*entry & lvt::REMOTE_IRR);
        if stored & lvt::LEVEL == 0 {
            *entry &= !lvt::REMOTE_IRR;
        }
        self.refresh_level_lint(pin);
    }

    /// Timer mode field of the timer LVT (reserved mode 3 counts as one-shot).
    pub(crate) fn timer_mode(&self) -> u32 {
        (self.state.lvt_timer >> lvt::TIMER_MODE_SHIFT) & 3
    }

    /// Deliver the expiry of the count-down or TSC-deadline timer that is due at `now`.
    pub(crate) fn sync_timer(&mut self, now: u64) {
        let mode = self.timer_mode();
        let s = &mut self.state;
        let fired = if mode == lvt::TIMER_TSC_DEADLINE {
            let deadline = s.timer.tsc_deadline;
            let due = deadline != 0 && timer::tsc_at(now, s.tsc_hz, s.tsc_offset) >= deadline;
            if due {
                s.timer.tsc_deadline = 0;
            }
            due
        } else {
            s.timer.take_expiry(now, mode == lvt::TIMER_PERIODIC)
        };
        let entry = s.lvt_timer;
        if fired && entry & lvt::MASKED == 0 && self.enabled() {
            self.accept_vector(entry as u8, false);
        }
    }

    /// EOI register write: retire the highest in-service vector; a level-triggered one is
    /// broadcast to the IOAPICs and frees a level-triggered LINT pin.
    fn end_of_interrupt(&mut self) {
        let s = &mut self.state;
        let Some(v) = s.isr.highest() else {
            return;
        };
        s.isr.clear(v);
        if !s.tmr.contains(v) {
            return;
        }
        if !s.eoi_broadcasts.contains(&v) {
            s.eoi_broadcasts.push(v);
        }
        for pin in 0..2u8 {
            let entry = if pin == 0 {
                &mut self.state.lvt_lint0
            } else {
                &mut self.state.lvt_lint1
            };
            if *entry & lvt::REMOTE_IRR != 0 && *entry as u8 == v {
                *entry &= !lvt::REMOTE_IRR;
                self.refresh_level_lint(pin);
            }
        }
    }

    /// ICR low write: send the IPI it describes.
    fn send_ipi(&mut self) {
        let icr = self.state.icr_low;
        let vector = icr as u8;
        let level_assert = icr & (1 << 14) != 0;
        let level_trigger = icr & (1 << 15) != 0;
        let Some(mode) = DeliveryMode::from_bits(icr >> 8) else {
            return;
        };
        // INIT level de-assert only resynchronizes arbitration IDs; ExtINT is reserved here.
        if (mode == DeliveryMode::Init && level_trigger && !level_assert)
            || mode == DeliveryMode::ExtInt
        {
            return;
        }
        if mode.carries_vector() && vector < 16 {
            self.record_error(esr::SEND_ILLEGAL_VECTOR);
            return;
        }
        let mut message = ApicMessage {
            vector,
            delivery_mode: mode,
            dest_mode: if icr & (1 << 11) != 0 {
                DestinationMode::Logical
            } else {
                DestinationMode::Physical
            },
            dest: self.state.icr_high >> 24,
            level_triggered: false,
        };
        let shorthand = (icr >> 18) & 3;
        if shorthand == 1 {
            self.accept(message);
            return;
        }
        if shorthand != 0 {
            message.dest_mode = DestinationMode::Physical;
            message.dest = BROADCAST;
        }
        if self.state.outgoing.len() < crate::MAX_QUEUE {
            self.state.outgoing.push(OutgoingIpi {
                message,
                exclude_sender: shorthand == 3,
            });
        }
    }

    /// Record an APIC error and raise the error LVT's interrupt.
    pub(crate) fn record_error(&mut self, bits: u32) {
        let enabled = self.enabled();
        let s = &mut self.state;
        s.esr_pending |= bits;
        let entry = s.lvt_error;
        let v = entry as u8;
        // An illegal error vector would report itself forever: it is simply not delivered.
        if entry & lvt::MASKED == 0 && v >= 16 && enabled {
            s.irr.set(v);
            s.tmr.clear(v);
        }
    }

    /// The highest-priority interrupt acknowledge: in-service bookkeeping for a fixed vector.
    pub(crate) fn acknowledge_fixed(&mut self) -> Option<AckResult> {
        let v = self.fixed_pending()?;
        self.state.irr.clear(v);
        self.state.isr.set(v);
        Some(AckResult::Vector(v))
    }

    pub(crate) fn push_startup(&mut self, event: StartupEvent) {
        if self.state.startup_events.len() < crate::MAX_QUEUE {
            self.state.startup_events.push(event);
        }
    }
}
