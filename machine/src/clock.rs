//! The one virtual time source. In deterministic mode time is derived from retired
//! instructions (plus the idle time skipped while the CPU is halted), so two runs of the same
//! guest see the same times; in realtime mode it follows the host's monotonic clock.

use std::time::Instant;

/// Virtual nanoseconds per retired instruction in deterministic mode (a 250 MIPS CPU).
pub const NS_PER_INSN: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    Deterministic,
    Realtime,
}

pub struct Clock {
    mode: ClockMode,
    start: Instant,
    /// Deterministic: idle time skipped while halted.
    skipped_ns: u64,
}

impl Clock {
    #[must_use]
    pub fn new(mode: ClockMode) -> Self {
        Self {
            mode,
            start: Instant::now(),
            skipped_ns: 0,
        }
    }

    #[must_use]
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Virtual time after `retired` instructions.
    #[must_use]
    pub fn now_ns(&self, retired: u64) -> u64 {
        match self.mode {
            ClockMode::Deterministic => retired
                .saturating_mul(NS_PER_INSN)
                .saturating_add(self.skipped_ns),
            ClockMode::Realtime => self.start.elapsed().as_nanos() as u64,
        }
    }

    /// How many instructions may run before virtual time reaches `deadline_ns`.
    #[must_use]
    pub fn insns_until(&self, retired: u64, deadline_ns: u64) -> u64 {
        let now = self.now_ns(retired);
        match self.mode {
            ClockMode::Deterministic => {
                deadline_ns.saturating_sub(now).div_ceil(NS_PER_INSN).max(1)
            }
            // Realtime: run in slices and look at the clock again.
            ClockMode::Realtime => 100_000,
        }
    }

    /// Virtual time at which a slice of `budget` instructions from `retired` ends at the
    /// latest; unknown (the maximum) in realtime mode.
    #[must_use]
    pub fn slice_end_ns(&self, retired: u64, budget: u64) -> u64 {
        match self.mode {
            ClockMode::Deterministic => self.now_ns(retired.saturating_add(budget)),
            ClockMode::Realtime => u64::MAX,
        }
    }

    /// The CPU is halted until `deadline_ns`: skip (deterministic) or sleep (realtime).
    pub fn idle_until(&mut self, retired: u64, deadline_ns: u64) {
        let now = self.now_ns(retired);
        if deadline_ns <= now {
            return;
        }
        match self.mode {
            ClockMode::Deterministic => self.skipped_ns += deadline_ns - now,
            ClockMode::Realtime => {
                let wait = (deadline_ns - now).min(10_000_000);
                std::thread::sleep(std::time::Duration::from_nanos(wait));
            }
        }
    }

    /// Realtime: carry on from virtual time `ns` (a restored snapshot's), not from zero.
    pub fn continue_realtime_from(&mut self, ns: u64) {
        let back = std::time::Duration::from_nanos(ns);
        if self.mode == ClockMode::Realtime {
            self.start = Instant::now().checked_sub(back).unwrap_or(self.start);
        }
    }

    /// Skipped idle time, for snapshots.
    #[must_use]
    pub fn skipped_ns(&self) -> u64 {
        self.skipped_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_time_counts_instructions_and_idle() {
        let mut c = Clock::new(ClockMode::Deterministic);
        assert_eq!(c.now_ns(10), 40);
        assert_eq!(c.insns_until(10, 100), 15);
        c.idle_until(10, 1000);
        assert_eq!(c.now_ns(10), 1000);
        assert_eq!(c.now_ns(11), 1004);
        assert_eq!(c.insns_until(11, 1000), 1);
    }

    #[test]
    fn a_restored_realtime_clock_goes_on_from_the_saved_time() {
        let mut c = Clock::new(ClockMode::Realtime);
        c.continue_realtime_from(5_000_000_000);
        assert!(c.now_ns(0) >= 5_000_000_000);
        // Deterministic time comes from instructions only.
        let mut d = Clock::new(ClockMode::Deterministic);
        d.continue_realtime_from(5_000_000_000);
        assert_eq!(d.now_ns(10), 40);
    }
}
