//! One HPET timer: configuration, comparator, period, and when it matches the main counter.

use serde::{Deserialize, Serialize};

/// Bits of a timer's configuration and capability register.
pub mod cfg {
    /// Level-triggered interrupt (else edge).
    pub const LEVEL: u64 = 1 << 1;
    /// Interrupt enable.
    pub const INT_ENABLE: u64 = 1 << 2;
    /// Periodic mode.
    pub const PERIODIC: u64 = 1 << 3;
    /// Capability: periodic mode supported.
    pub const PERIODIC_CAP: u64 = 1 << 4;
    /// Capability: 64-bit comparator.
    pub const SIZE_CAP: u64 = 1 << 5;
    /// The next comparator write sets the accumulator of a periodic timer.
    pub const VAL_SET: u64 = 1 << 6;
    /// Force 32-bit mode.
    pub const MODE32: u64 = 1 << 8;
    pub const ROUTE_SHIFT: u32 = 9;
    pub const ROUTE_MASK: u64 = 0x1f << ROUTE_SHIFT;
    /// Bits software may write (no FSB delivery: bit 14 stays 0).
    pub const WRITABLE: u64 = LEVEL | INT_ENABLE | PERIODIC | VAL_SET | MODE32 | ROUTE_MASK;
    pub const ROUTE_CAP_SHIFT: u32 = 32;
}

const LOW32: u64 = 0xffff_ffff;

/// Guest-visible state of one timer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HpetTimerState {
    /// Writable configuration bits (capabilities are added when read).
    pub config: u64,
    /// Comparator: the counter value of the next match.
    pub comparator: u64,
    /// What a periodic timer adds to the comparator at each match.
    pub period: u64,
    /// FSB interrupt route register (stored; FSB delivery is not offered).
    pub fsb_route: u64,
    /// The interrupt line this timer holds high now.
    pub driven_line: Option<u8>,
    /// Edge mode: the line was raised by the last match and stays high until the next one
    /// (so that an 8259 input, which forgets an edge whose line falls before the acknowledge,
    /// keeps it).
    pub edge_high: bool,
}

impl Default for HpetTimerState {
    fn default() -> Self {
        Self {
            config: 0,
            // The comparator resets to all ones.
            comparator: u64::MAX,
            period: 0,
            fsb_route: 0,
            driven_line: None,
            edge_high: false,
        }
    }
}

impl HpetTimerState {
    #[must_use]
    pub fn is(&self, bit: u64) -> bool {
        self.config & bit != 0
    }

    /// The comparator as the guest reads it (the high half is 0 in 32-bit mode).
    #[must_use]
    pub fn comparator_value(&self) -> u64 {
        if self.is(cfg::MODE32) {
            self.comparator & LOW32
        } else {
            self.comparator
        }
    }

    /// Configuration register write of the bytes in `mask`.
    pub fn write_config(&mut self, value: u64, mask: u64) {
        let merged = (self.config & !mask) | (value & mask);
        self.config = merged & cfg::WRITABLE;
        if self.is(cfg::MODE32) {
            self.comparator &= LOW32;
            self.period &= LOW32;
        }
    }

    /// Comparator write of the bytes in `mask`. A one-shot timer (or a periodic one with
    /// VAL_SET) takes it as the comparator; a periodic one takes it as the period. VAL_SET
    /// clears itself, so an OS writes the first match and then the period.
    pub fn write_comparator(&mut self, value: u64, mask: u64) {
        let mask = if self.is(cfg::MODE32) {
            mask & LOW32
        } else {
            mask
        };
        let periodic = self.is(cfg::PERIODIC);
        if !periodic || self.is(cfg::VAL_SET) {
            self.comparator = (self.comparator & !mask) | (value & mask);
        }
        if periodic {
            self.period = (self.period & !mask) | (value & mask);
        }
        self.config &= !cfg::VAL_SET;
    }

    /// The first counter value after `after` at which the comparator matches: in 32-bit mode
    /// the low half of the counter is compared, so it matches again every 2^32 ticks.
    #[must_use]
    pub fn next_match(&self, after: u64) -> Option<u64> {
        if self.is(cfg::MODE32) {
            let v = (after & !LOW32) | (self.comparator & LOW32);
            if v > after {
                Some(v)
            } else {
                v.checked_add(1 << 32)
            }
        } else {
            (self.comparator > after).then_some(self.comparator)
        }
    }

    /// After a match at `matched`, a periodic timer's comparator moves by whole periods past
    /// `now` (the counter value now): late matches coalesce into one interrupt.
    pub fn advance(&mut self, matched: u64, now: u64) {
        let period = if self.is(cfg::MODE32) {
            self.period & LOW32
        } else {
            self.period
        };
        if !self.is(cfg::PERIODIC) || period == 0 {
            return;
        }
        let periods = now.saturating_sub(matched) / period + 1;
        let next = matched.wrapping_add(periods.wrapping_mul(period));
        self.comparator = if self.is(cfg::MODE32) {
            next & LOW32
        } else {
            next
        };
    }
}
