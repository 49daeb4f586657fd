//! One counter of the 8254: its programming interface and its counting element, evaluated in
//! closed form from the input clock's tick count (no per-tick work).

use serde::{Deserialize, Serialize};

/// Which bytes of the count a counter reads and writes (control word bits RW1..RW0).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Access {
    /// Least significant byte only.
    Low,
    /// Most significant byte only.
    High,
    /// LSB then MSB.
    #[default]
    LowHigh,
}

impl Access {
    fn bits(self) -> u8 {
        match self {
            Self::Low => 1,
            Self::High => 2,
            Self::LowHigh => 3,
        }
    }
}

/// What the counting element is doing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing loaded since the control word (or, in modes 1 and 5, waiting for a trigger).
    #[default]
    Idle,
    /// The counting element was loaded with `count` on clock tick `load_tick` and counts from
    /// there. `fired` means the terminal count was already reached before `load_tick` (modes 0
    /// and 4 after counting was suspended and resumed).
    Counting {
        load_tick: u64,
        count: u32,
        fired: bool,
    },
    /// GATE is low and counting is suspended with the element at `value` (modes 0 and 4: the
    /// distance to the terminal count unless `fired`).
    Suspended { value: u32, fired: bool },
}

/// Guest-visible state of one counter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// Counter mode 0..=5 (control word modes 6 and 7 are stored as 2 and 3).
    pub mode: u8,
    pub access: Access,
    /// Count in BCD (4 decades) rather than binary.
    pub bcd: bool,
    /// The count register (CR) as last written, raw (BCD digits if `bcd`).
    pub count_register: u16,
    /// A complete count was written since the last control word.
    pub count_written: bool,
    /// LSB of an LSB-then-MSB count, waiting for the MSB.
    pub pending_low_byte: Option<u8>,
    /// LSB-then-MSB reads: the next read returns the MSB.
    pub read_high_next: bool,
    /// Count latched by a latch or read-back command, until read.
    pub latched_count: Option<u16>,
    /// Status latched by a read-back command, until read.
    pub latched_status: Option<u8>,
    /// Status bit NULL COUNT: the count register has not reached the counting element yet.
    pub null_count: bool,
    /// GATE input level.
    pub gate: bool,
    pub phase: Phase,
    /// Modes 2 and 3: tick at which a count written while counting takes over.
    pub next_period_tick: Option<u64>,
    /// What the counting element shows while idle.
    pub idle_value: u32,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            mode: 0,
            access: Access::LowHigh,
            bcd: false,
            count_register: 0,
            count_written: false,
            pending_low_byte: None,
            read_high_next: false,
            latched_count: None,
            latched_status: None,
            null_count: false,
            gate: true,
            phase: Phase::Idle,
            next_period_tick: None,
            idle_value: 0,
        }
    }
}

fn from_bcd(raw: u16) -> u32 {
    let digits = [raw >> 12, (raw >> 8) & 0xf, (raw >> 4) & 0xf, raw & 0xf];
    digits.iter().fold(0u32, |acc, d| acc * 10 + u32::from(*d)) % 10_000
}

fn to_bcd(value: u32) -> u16 {
    let v = value % 10_000;
    ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
}

/// Smallest `base + offset + m * n` greater than `t` with `m >= m_min`.
fn next_after(base: u64, n: u32, offset: u64, m_min: u64, t: u64) -> Option<u64> {
    let n = u64::from(n.max(1));
    let first = base
        .checked_add(offset)?
        .checked_add(m_min.checked_mul(n)?)?;
    if first > t {
        return Some(first);
    }
    let steps = (t - first) / n + 1;
    first.checked_add(steps.checked_mul(n)?)
}

impl ChannelState {
    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// The count register as a number of clock periods (0 means the maximum).
    pub fn effective_count(&self) -> u32 {
        let value = if self.bcd {
            from_bcd(self.count_register)
        } else {
            u32::from(self.count_register)
        };
        if value == 0 {
            self.modulus()
        } else {
            value
        }
    }

    /// Value of the counting element at tick `t`, in 0..modulus.
    fn element(&self, t: u64) -> u32 {
        let m = self.modulus();
        match self.phase {
            Phase::Idle => self.idle_value % m,
            Phase::Suspended { value, .. } => value % m,
            Phase::Counting {
                load_tick, count, ..
            } => {
                let k = t.saturating_sub(load_tick);
                let n = u64::from(count.max(1));
                let value = match self.mode {
                    2 => n - k % n,
                    3 => mode3_element(n, k),
                    _ => (i128::from(count) - i128::from(k)).rem_euclid(i128::from(m)) as u64,
                };
                (value % u64::from(m)) as u32
            }
        }
    }

    /// The count as the guest reads it (BCD encoded in BCD mode).
    pub fn read_value(&self, t: u64) -> u16 {
        let value = self.element(t);
        if self.bcd {
            to_bcd(value)
        } else {
            value as u16
        }
    }

    /// Level of the OUT pin at tick `t`.
    pub fn output(&self, t: u64) -> bool {
        match self.phase {
            Phase::Idle => self.mode != 0,
            Phase::Suspended { fired, .. } => self.mode != 0 || fired,
            Phase::Counting {
                load_tick,
                count,
                fired,
            } => {
                if t < load_tick {
                    return self.mode != 0 || fired;
                }
                let k = t - load_tick;
                let n = u64::from(count);
                match self.mode {
                    0 => fired || k >= n,
                    1 => k >= n,
                    2 => n <= 1 || k % n != n - 1,
                    3 => n <= 1 || k % n < n.div_ceil(2),
                    _ => fired || k != n,
                }
            }
        }
    }

    /// First tick after `t` at which OUT rises, if it will while nothing else changes.
    pub fn next_rising(&self, t: u64) -> Option<u64> {
        let Phase::Counting {
            load_tick: l,
            count: n,
            fired,
        } = self.phase
        else {
            return None;
        };
        let once = |tick: u64| (tick > t).then_some(tick);
        match self.mode {
            0 if !fired => once(l.checked_add(u64::from(n))?),
            1 => once(l.checked_add(u64::from(n))?),
            2 | 3 if n > 1 => next_after(l, n, 0, 1, t),
            4 | 5 if !fired => once(l.checked_add(u64::from(n) + 1)?),
            _ => None,
        }
    }

    /// First tick after `t` at which OUT falls, if it will while nothing else changes.
    pub fn next_falling(&self, t: u64) -> Option<u64> {
        let Phase::Counting {
            load_tick: l,
            count: n,
            fired,
        } = self.phase
        else {
            return None;
        };
        let once = |tick: u64| (tick > t).then_some(tick);
        match self.mode {
            1 => once(l),
            2 if n > 1 => next_after(l, n, u64::from(n) - 1, 0, t),
            3 if n > 1 => next_after(l, n, u64::from(n.div_ceil(2)), 0, t),
            4 | 5 if !fired => once(l.checked_add(u64::from(n))?),
            _ => None,
        }
    }

    /// Apply what happened by tick `t`: a new period's count, the end of NULL COUNT.
    pub fn settle(&mut self, t: u64) {
        if let Some(p) = self.next_period_tick {
            if t >= p {
                self.phase = Phase::Counting {
                    load_tick: p,
                    count: self.effective_count(),
                    fired: false,
                };
                self.next_period_tick = None;
            }
        }
        if let Phase::Counting { load_tick, .. } = self.phase {
            if t >= load_tick && self.next_period_tick.is_none() {
                self.null_count = false;
            }
        }
    }

    /// The status byte of a read-back command.
    pub fn status(&self, t: u64) -> u8 {
        u8::from(self.output(t)) << 7
            | u8::from(self.null_count) << 6
            | self.access.bits() << 4
            | (self.mode & 7) << 1
            | u8::from(self.bcd)
    }

    /// A control word for this counter (RW bits not 00) at tick `t`.
    pub fn control(&mut self, value: u8, t: u64) {
        self.idle_value = self.element(t);
        let mode = (value >> 1) & 7;
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.access = match (value >> 4) & 3 {
            1 => Access::Low,
            2 => Access::High,
            _ => Access::LowHigh,
        };
        self.bcd = value & 1 != 0;
        self.pending_low_byte = None;
        self.read_high_next = false;
        self.latched_count = None;
        self.latched_status = None;
        self.null_count = true;
        self.count_written = false;
        self.next_period_tick = None;
        self.phase = Phase::Idle;
    }

    /// Counter latch command (or the count part of a read-back).
    pub fn latch_count(&mut self, t: u64) {
        if self.latched_count.is_none() {
            self.latched_count = Some(self.read_value(t));
        }
    }

    /// Status part of a read-back command.
    pub fn latch_status(&mut self, t: u64) {
        if self.latched_status.is_none() {
            self.latched_status = Some(self.status(t));
        }
    }

    /// A read of the counter's port.
    pub fn read(&mut self, t: u64) -> u8 {
        if let Some(status) = self.latched_status.take() {
            return status;
        }
        let value = self.latched_count.unwrap_or_else(|| self.read_value(t));
        let (byte, done) = match self.access {
            Access::Low => (value as u8, true),
            Access::High => ((value >> 8) as u8, true),
            Access::LowHigh if self.read_high_next => ((value >> 8) as u8, true),
            Access::LowHigh => (value as u8, false),
        };
        self.read_high_next = !done;
        if done {
            self.latched_count = None;
        }
        byte
    }

    /// A write of the counter's port.
    pub fn write(&mut self, value: u8, t: u64) {
        match self.access {
            Access::Low => self.load(u16::from(value), t),
            Access::High => self.load(u16::from(value) << 8, t),
            Access::LowHigh => match self.pending_low_byte.take() {
                Some(low) => self.load(u16::from_le_bytes([low, value]), t),
                None => {
                    self.pending_low_byte = Some(value);
                    if self.mode == 0 {
                        // Writing the first byte stops counting and drives OUT low.
                        self.phase = Phase::Suspended {
                            value: self.element(t),
                            fired: false,
                        };
                    }
                }
            },
        }
    }

    fn load(&mut self, raw: u16, t: u64) {
        self.count_register = raw;
        self.count_written = true;
        self.null_count = true;
        let count = self.effective_count();
        let start = |gate: bool| {
            if gate {
                Phase::Counting {
                    load_tick: t.saturating_add(1),
                    count,
                    fired: false,
                }
            } else {
                Phase::Suspended {
                    value: count,
                    fired: false,
                }
            }
        };
        match (self.mode, self.phase) {
            (0 | 4, _) | (2 | 3, Phase::Idle) => self.phase = start(self.gate),
            (2 | 3, Phase::Counting { load_tick, .. }) if t < load_tick => {
                self.phase = start(true);
            }
            (
                2 | 3,
                Phase::Counting {
                    load_tick, count, ..
                },
            ) => {
                // The running period finishes first.
                self.next_period_tick = next_after(load_tick, count, 0, 1, t);
            }
            _ => {} // modes 1 and 5 wait for a trigger; suspended 2/3 reload on the gate
        }
    }

    /// Drive the GATE input at tick `t`.
    pub fn set_gate(&mut self, level: bool, t: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        self.settle(t);
        if level {
            self.gate_rose(t);
        } else {
            self.gate_fell(t);
        }
    }

    fn gate_rose(&mut self, t: u64) {
        match (self.mode, self.phase) {
            (0 | 4, Phase::Suspended { value, fired }) => {
                self.phase = Phase::Counting {
                    load_tick: t,
                    count: value,
                    fired,
                };
            }
            (1 | 2 | 3 | 5, _) if self.count_written => {
                self.next_period_tick = None;
                self.phase = Phase::Counting {
                    load_tick: t.saturating_add(1),
                    count: self.effective_count(),
                    fired: false,
                };
            }
            _ => {}
        }
    }

    fn gate_fell(&mut self, t: u64) {
        let Phase::Counting {
            load_tick,
            count,
            fired,
        } = self.phase
        else {
            return;
        };
        match self.mode {
            0 | 4 => {
                let k = t.saturating_sub(load_tick);
                self.phase = if fired || k >= u64::from(count) {
                    Phase::Suspended {
                        value: self.element(t),
                        fired: true,
                    }
                } else {
                    Phase::Suspended {
                        value: count - k as u32,
                        fired: false,
                    }
                };
            }
            2 | 3 => {
                self.next_period_tick = None;
                self.phase = Phase::Suspended {
                    value: self.element(t),
                    fired: false,
                };
            }
            _ => {} // modes 1 and 5 ignore a falling gate
        }
    }

    /// Frequency of the square wave (or pulse train) on OUT in modes 3 and 2, in Hz.
    pub fn wave_frequency(&self, clock_hz: f64) -> Option<f64> {
        match self.phase {
            Phase::Counting { count, .. } if matches!(self.mode, 2 | 3) && count > 1 => {
                Some(clock_hz / f64::from(count))
            }
            _ => None,
        }
    }
}

/// Counting element in mode 3 at `k` ticks after loading `n`: it counts down by two and
/// reloads at each half period; an odd count spends one more tick in the high half.
fn mode3_element(n: u64, k: u64) -> u64 {
    if n <= 1 {
        return n;
    }
    let high = n.div_ceil(2);
    let k = k % n;
    if n & 1 == 0 {
        n - 2 * (k % (n / 2))
    } else if k < high {
        if k == 0 {
            n
        } else {
            n + 1 - 2 * k
        }
    } else {
        let j = k - high;
        if j == 0 {
            n
        } else {
            n - 1 - 2 * j
        }
    }
}
