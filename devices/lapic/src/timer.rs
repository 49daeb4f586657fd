//! The local APIC timer, counted in closed form from virtual time: the count is never
//! decremented, it is computed from the time it was loaded, so the timer costs nothing between
//! expiries.

use serde::{Deserialize, Serialize};

/// The timer's input clock (the "bus clock" before the divider), in Hz. QEMU's TCG uses the
/// same 1 GHz; guests calibrate the timer against the PIT, the HPET or the PM timer.
pub const BUS_HZ: u64 = 1_000_000_000;

const NS_PER_S: u128 = 1_000_000_000;

/// Guest-visible state of the timer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct TimerState {
    /// The initial count register as last written.
    pub initial_count: u32,
    /// The divide configuration register (bits 0, 1 and 3).
    pub divide_config: u32,
    /// Virtual time (ns) at which the count was last loaded or re-based.
    pub base_ns: u64,
    /// The count at `base_ns`; 0 when the timer is stopped.
    pub base_count: u32,
    /// Ticks after `base_ns` of the next expiry not yet signalled.
    pub next_expiry: Option<u64>,
    /// IA32_TSC_DEADLINE; 0 when disarmed.
    pub tsc_deadline: u64,
}

impl TimerState {
    /// Bus clocks per timer tick: 2, 4, ... 128, or 1 (divide configuration 0b1011).
    #[must_use]
    pub fn divisor(&self) -> u64 {
        let code = (self.divide_config & 3) | ((self.divide_config >> 1) & 4);
        1 << ((code + 1) & 7)
    }

    /// Timer ticks elapsed from `base_ns` to `now`.
    #[must_use]
    pub fn ticks_at(&self, now: u64) -> u64 {
        let ns = u128::from(now.saturating_sub(self.base_ns));
        let ticks = ns * u128::from(BUS_HZ) / (NS_PER_S * u128::from(self.divisor()));
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// The earliest virtual time at which `tick` ticks have elapsed since `base_ns`.
    #[must_use]
    pub fn tick_time(&self, tick: u64) -> u64 {
        let ns =
            (u128::from(tick) * u128::from(self.divisor()) * NS_PER_S).div_ceil(u128::from(BUS_HZ));
        self.base_ns
            .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// The current count register at `now`.
    #[must_use]
    pub fn current_count(&self, now: u64, periodic: bool) -> u32 {
        let base = u64::from(self.base_count);
        if base == 0 {
            return 0;
        }
        let t = self.ticks_at(now);
        if t < base {
            return (base - t) as u32;
        }
        let initial = u64::from(self.initial_count);
        if periodic && initial != 0 {
            // Each expiry reloads the initial count.
            return (initial - (t - base) % initial) as u32;
        }
        0
    }

    /// Write of the initial count register: the count starts from it now (0 stops the timer).
    pub fn load(&mut self, count: u32, now: u64) {
        self.initial_count = count;
        self.start(count, now);
    }

    /// Keep counting from the current count with new parameters (divider, mode) from `now`.
    pub fn rebase(&mut self, now: u64, periodic: bool) {
        let count = self.current_count(now, periodic);
        self.start(count, now);
    }

    fn start(&mut self, count: u32, now: u64) {
        self.base_ns = now;
        self.base_count = count;
        self.next_expiry = (count != 0).then_some(u64::from(count));
    }

    /// Stop the timer (mode change into or out of TSC-deadline mode disarms it).
    pub fn disarm(&mut self) {
        self.initial_count = 0;
        self.base_count = 0;
        self.next_expiry = None;
        self.tsc_deadline = 0;
    }

    /// Whether an expiry is due at `now`; if so it is consumed and the next one scheduled.
    /// Periods missed while nobody looked coalesce into this one, as on hardware with a busy
    /// interrupt line.
    pub fn take_expiry(&mut self, now: u64, periodic: bool) -> bool {
        let Some(expiry) = self.next_expiry else {
            return false;
        };
        let t = self.ticks_at(now);
        if t < expiry {
            return false;
        }
        let initial = u64::from(self.initial_count);
        self.next_expiry = if periodic && initial != 0 {
            let periods = (t - expiry) / initial + 1;
            periods
                .checked_mul(initial)
                .and_then(|d| expiry.checked_add(d))
        } else {
            None
        };
        true
    }

    /// Virtual time of the next expiry of the count-down timer.
    #[must_use]
    pub fn next_expiry_ns(&self) -> Option<u64> {
        self.next_expiry.map(|tick| self.tick_time(tick))
    }
}

/// The TSC at virtual time `now` for a TSC running at `hz` that read `offset` at time 0.
#[must_use]
pub fn tsc_at(now: u64, hz: u64, offset: u64) -> u64 {
    let scaled = u128::from(now) * u128::from(hz) / NS_PER_S;
    offset.wrapping_add(scaled as u64)
}

/// The earliest virtual time at which the TSC reaches `deadline`; `None` if it never does
/// (a TSC that does not run).
#[must_use]
pub fn tsc_time(deadline: u64, hz: u64, offset: u64) -> Option<u64> {
    if hz == 0 {
        return (deadline <= offset).then_some(0);
    }
    let Some(ticks) = deadline.checked_sub(offset) else {
        return Some(0);
    };
    let ns = (u128::from(ticks) * NS_PER_S).div_ceil(u128::from(hz));
    Some(u64::try_from(ns).unwrap_or(u64::MAX))
}
