//! Yamaha YMF262 (OPL3) FM synthesis, which also plays OPL2 (YM3812) music unchanged.
//!
//! 36 operators in 18 two-operator channels over two register banks, FM and additive
//! connections, operator feedback, the eight OPL3 waveforms, four-operator channels,
//! left/right output bits, tremolo and vibrato, rhythm mode, and the two status timers that
//! AdLib detection relies on. The chip runs at its own sample rate ([`SAMPLE_RATE`], 14.318
//! MHz / 288); the card that holds it picks samples by virtual time. Facts (register map,
//! operator slots, multipliers, KSL, envelope rates, timer periods) come from the YMF262 and
//! YM3812 application manuals.
//!
//! ```
//! use nestor_opl3::Opl3;
//! let mut opl = Opl3::new();
//! // Channel 0: operator 1 silent (TL 63), operator 2 a sustained sine; 440 Hz, key on.
//! for (reg, value) in [(0x20, 0x01), (0x40, 0x3f), (0x23, 0x21), (0x43, 0x00), (0x63, 0xf0),
//!                      (0x83, 0x0f), (0xa0, 0x44), (0xb0, 0x32)] {
//!     opl.write(0, reg, value, 0);
//! }
//! let samples: Vec<i32> = (0..200).map(|_| opl.generate()[0]).collect();
//! assert!(samples.iter().any(|&s| s > 1000));
//! ```

mod operator;
mod tables;

pub use operator::{EnvPhase, OperatorState};

use operator::{Clocks, OperatorRegs, Pitch};
use serde::{Deserialize, Serialize};

/// The chip's sample rate in Hz (14.31818 MHz / 288).
pub const SAMPLE_RATE: u32 = 49_716;

/// Registers per bank; two banks.
const BANK: usize = 0x100;
const OPERATORS: usize = 36;

/// Timer 1 counts 80 us steps, timer 2 320 us steps.
const TIMER1_STEP_NS: u64 = 80_000;
const TIMER2_STEP_NS: u64 = 320_000;

/// Tremolo: 3.7 Hz triangle, 0..=26 envelope steps deep (4.8 dB) or a quarter (1 dB).
const TREMOLO_PERIOD: u32 = 13_440;
const TREMOLO_DEPTH: u32 = 26;
/// Vibrato: 6.1 Hz triangle, +/- 8/1024 of the F-number (14 cents) or half (7 cents).
const VIBRATO_PERIOD: u32 = 8_192;

/// Operator slot (0..18 within a bank) of register offset 0x00..0x15, if any.
fn slot_of_offset(offset: u8) -> Option<usize> {
    match offset {
        0x00..=0x05 => Some(usize::from(offset)),
        0x08..=0x0d => Some(usize::from(offset) - 2),
        0x10..=0x15 => Some(usize::from(offset) - 4),
        _ => None,
    }
}

/// Register offset of a slot (inverse of [`slot_of_offset`]).
fn offset_of_slot(slot: usize) -> usize {
    slot + 2 * (slot / 6)
}

/// First operator slot of channel 0..9 of a bank; the second is three slots on.
fn first_slot(channel: usize) -> usize {
    (channel / 3) * 6 + channel % 3
}

/// Guest-visible state of the chip.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Opl3State {
    /// Both register banks, 0x000-0x1FF.
    pub registers: Vec<u8>,
    /// Operators 0..18 (bank 0) and 18..36 (bank 1) by slot.
    pub operators: Vec<OperatorState>,
    /// Register address latched by the last address-port write (bit 8: bank 1).
    pub address: u16,
    /// Samples generated since power-on (the envelope and LFO clock).
    pub samples: u64,
    pub timer1_next_ns: Option<u64>,
    pub timer2_next_ns: Option<u64>,
    pub timer1_flag: bool,
    pub timer2_flag: bool,
    /// Rhythm noise generator (23-bit LFSR).
    pub noise: u32,
}

impl Default for Opl3State {
    fn default() -> Self {
        Self {
            registers: vec![0; 2 * BANK],
            operators: vec![OperatorState::default(); OPERATORS],
            address: 0,
            samples: 0,
            timer1_next_ns: None,
            timer2_next_ns: None,
            timer1_flag: false,
            timer2_flag: false,
            noise: 1,
        }
    }
}

/// The OPL3 chip.
#[derive(Clone, Debug, Default)]
pub struct Opl3 {
    state: Opl3State,
}

impl Opl3 {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn state(&self) -> &Opl3State {
        &self.state
    }

    /// Replace the state; refuses one whose register file or operator list has the wrong size.
    pub fn set_state(&mut self, state: Opl3State) -> Result<(), &'static str> {
        if state.registers.len() != 2 * BANK || state.operators.len() != OPERATORS {
            return Err("OPL3 state has the wrong number of registers or operators");
        }
        self.state = state;
        Ok(())
    }

    fn reg(&self, index: usize) -> u8 {
        self.state.registers.get(index).copied().unwrap_or(0)
    }

    /// OPL3 mode (register 0x105 bit 0): both banks, stereo, eight waveforms.
    #[must_use]
    pub fn opl3_mode(&self) -> bool {
        self.reg(0x105) & 1 != 0
    }

    /// Whether every operator is silent (the card may stop rendering until a key-on).
    #[must_use]
    pub fn silent(&self) -> bool {
        self.state.operators.iter().all(OperatorState::silent)
    }

    /// Address port write: `bank` 0 (0x388/0x220) or 1 (0x38A/0x222).
    pub fn write_address(&mut self, bank: u8, value: u8) {
        self.state.address = u16::from(value) | u16::from(bank & 1) << 8;
    }

    /// Data port write to the latched register, at virtual time `now_ns` (timers).
    pub fn write_data(&mut self, value: u8, now_ns: u64) {
        let address = usize::from(self.state.address);
        self.write_register(address, value, now_ns);
    }

    /// Address then data in one call.
    pub fn write(&mut self, bank: u8, register: u8, value: u8, now_ns: u64) {
        self.write_address(bank, register);
        self.write_data(value, now_ns);
    }

    fn write_register(&mut self, address: usize, value: u8, now_ns: u64) {
        let Some(r) = self.state.registers.get_mut(address) else {
            return;
        };
        *r = value;
        match address {
            0x04 => self.write_timer_control(value, now_ns),
            0xb0..=0xb8 | 0x1b0..=0x1b8 | 0xbd | 0x104 | 0x105 => self.update_keys(),
            _ => {}
        }
    }

    fn write_timer_control(&mut self, value: u8, now_ns: u64) {
        self.update_timers(now_ns);
        if value & 0x80 != 0 {
            self.state.timer1_flag = false;
            self.state.timer2_flag = false;
            return;
        }
        let period1 = u64::from(256 - u32::from(self.reg(0x02))) * TIMER1_STEP_NS;
        let period2 = u64::from(256 - u32::from(self.reg(0x03))) * TIMER2_STEP_NS;
        self.state.timer1_next_ns = (value & 1 != 0).then(|| now_ns.saturating_add(period1));
        self.state.timer2_next_ns = (value & 2 != 0).then(|| now_ns.saturating_add(period2));
    }

    fn update_timers(&mut self, now_ns: u64) {
        let control = self.reg(0x04);
        let timers = [
            (0x02, TIMER1_STEP_NS, 0x40, true),
            (0x03, TIMER2_STEP_NS, 0x20, false),
        ];
        for (reg, step, mask, first) in timers {
            let period = u64::from(256 - u32::from(self.reg(reg))) * step;
            let (next, flag) = if first {
                (&mut self.state.timer1_next_ns, &mut self.state.timer1_flag)
            } else {
                (&mut self.state.timer2_next_ns, &mut self.state.timer2_flag)
            };
            if let Some(n) = *next {
                if now_ns >= n {
                    *flag |= control & mask == 0;
                    let periods = (now_ns - n) / period + 1;
                    *next = Some(n.saturating_add(periods.saturating_mul(period)));
                }
            }
        }
    }

    /// The status register: bit 7 IRQ, bit 6 timer 1, bit 5 timer 2 (bits 1-2 zero: an OPL3).
    pub fn read_status(&mut self, now_ns: u64) -> u8 {
        self.update_timers(now_ns);
        let (t1, t2) = (self.state.timer1_flag, self.state.timer2_flag);
        u8::from(t1 || t2) << 7 | u8::from(t1) << 6 | u8::from(t2) << 5
    }

    /// Whether channel `ch` (0..18) is the first half of an enabled four-operator pair, and
    /// whether it is the second half of one.
    fn four_op(&self, ch: usize) -> (bool, bool) {
        if !self.opl3_mode() {
            return (false, false);
        }
        let bits = self.reg(0x104);
        let pair = |primary: usize| match primary {
            0..=2 => bits & (1 << primary) != 0,
            9..=11 => bits & (1 << (primary - 6)) != 0,
            _ => false,
        };
        let second = matches!(ch, 3..=5 | 12..=14) && pair(ch - 3);
        (pair(ch), second)
    }

    fn channel_reg(&self, base: usize, ch: usize) -> u8 {
        self.reg(base + (ch / 9) * BANK + ch % 9)
    }

    fn slots(ch: usize) -> (usize, usize) {
        let first = (ch / 9) * 18 + first_slot(ch % 9);
        (first, first + 3)
    }

    /// Key-on of every operator from the B0 key bits, four-operator pairs and rhythm keys.
    fn update_keys(&mut self) {
        let rhythm = self.reg(0xbd);
        let mut keys = [false; OPERATORS];
        for ch in 0..18 {
            let (primary, second) = self.four_op(ch);
            let key = self.channel_reg(0xb0, ch) & 0x20 != 0;
            let (a, b) = Self::slots(ch);
            if second {
                continue;
            }
            keys[a] = key;
            keys[b] = key;
            if primary {
                let (c, d) = Self::slots(ch + 3);
                keys[c] = key;
                keys[d] = key;
            }
        }
        if rhythm & 0x20 != 0 {
            // Bass drum: channel 6 both; HH, SD: channel 7; TOM, TC: channel 8.
            let (bd1, bd2) = Self::slots(6);
            let (hh, sd) = Self::slots(7);
            let (tom, tc) = Self::slots(8);
            keys[bd1] |= rhythm & 0x10 != 0;
            keys[bd2] |= rhythm & 0x10 != 0;
            keys[sd] |= rhythm & 0x08 != 0;
            keys[tom] |= rhythm & 0x04 != 0;
            keys[tc] |= rhythm & 0x02 != 0;
            keys[hh] |= rhythm & 0x01 != 0;
        }
        for (op, key) in self.state.operators.iter_mut().zip(keys) {
            op.set_key(key);
        }
    }

    fn operator_regs(&self, slot: usize) -> OperatorRegs {
        let bank = (slot / 18) * BANK;
        let off = bank + offset_of_slot(slot % 18);
        OperatorRegs::decode(
            self.reg(0x20 + off),
            self.reg(0x40 + off),
            self.reg(0x60 + off),
            self.reg(0x80 + off),
            self.reg(0xe0 + off),
        )
    }

    fn pitch(&self, ch: usize) -> Pitch {
        let b0 = self.channel_reg(0xb0, ch);
        Pitch {
            fnum: u16::from(self.channel_reg(0xa0, ch)) | u16::from(b0 & 3) << 8,
            block: (b0 >> 2) & 7,
            note_select: self.reg(0x08) & 0x40 != 0,
        }
    }

    fn clocks(&self) -> Clocks {
        let n = self.state.samples;
        let tri = |period: u32, depth: u32| {
            let pos = (n % u64::from(period)) as u32;
            let half = period / 2;
            let up = if pos < half { pos } else { period - pos };
            up * depth / half
        };
        let bd = self.reg(0xbd);
        let tremolo = tri(TREMOLO_PERIOD, TREMOLO_DEPTH);
        let vib = tri(VIBRATO_PERIOD, 32) as i32 - 16; // -16..=16
        Clocks {
            eg_counter: n as u32,
            tremolo: if bd & 0x80 != 0 { tremolo } else { tremolo / 4 } as u16,
            vibrato: if bd & 0x40 != 0 { vib / 2 } else { vib / 4 },
            waveforms: if self.opl3_mode() {
                7
            } else if self.reg(0x01) & 0x20 != 0 {
                3
            } else {
                0
            },
        }
    }

    fn tick_op(&mut self, slot: usize, pitch: Pitch, clocks: &Clocks, modulation: i32) -> i32 {
        let regs = self.operator_regs(slot);
        match self.state.operators.get_mut(slot) {
            Some(op) => op.tick(&regs, pitch, clocks, modulation),
            None => 0,
        }
    }

    /// Self-feedback of a channel's first operator, from register C0 bits 1-3.
    fn feedback(&self, slot: usize, c0: u8) -> i32 {
        let fb = (c0 >> 1) & 7;
        let Some(op) = self.state.operators.get(slot) else {
            return 0;
        };
        if fb == 0 {
            0
        } else {
            (op.out + op.prev_out) >> (9 - fb)
        }
    }

    fn two_op(&mut self, ch: usize, clocks: &Clocks) -> i32 {
        let (a, b) = Self::slots(ch);
        let c0 = self.channel_reg(0xc0, ch);
        let pitch = self.pitch(ch);
        let m = self.tick_op(a, pitch, clocks, self.feedback(a, c0));
        if c0 & 1 == 0 {
            self.tick_op(b, pitch, clocks, m)
        } else {
            m + self.tick_op(b, pitch, clocks, 0)
        }
    }

    fn four_op_channel(&mut self, ch: usize, clocks: &Clocks) -> i32 {
        let (a, b) = Self::slots(ch);
        let (c, d) = Self::slots(ch + 3);
        let c0 = self.channel_reg(0xc0, ch);
        let connection = (c0 & 1, self.channel_reg(0xc0, ch + 3) & 1);
        let pitch = self.pitch(ch);
        let o1 = self.tick_op(a, pitch, clocks, self.feedback(a, c0));
        match connection {
            (0, 0) => {
                let o2 = self.tick_op(b, pitch, clocks, o1);
                let o3 = self.tick_op(c, pitch, clocks, o2);
                self.tick_op(d, pitch, clocks, o3)
            }
            (0, _) => {
                let o2 = self.tick_op(b, pitch, clocks, o1);
                let o3 = self.tick_op(c, pitch, clocks, 0);
                o2 + self.tick_op(d, pitch, clocks, o3)
            }
            (_, 0) => {
                let o2 = self.tick_op(b, pitch, clocks, 0);
                let o3 = self.tick_op(c, pitch, clocks, o2);
                o1 + self.tick_op(d, pitch, clocks, o3)
            }
            _ => {
                let o2 = self.tick_op(b, pitch, clocks, 0);
                let o3 = self.tick_op(c, pitch, clocks, o2);
                o1 + o3 + self.tick_op(d, pitch, clocks, 0)
            }
        }
    }

    /// Rhythm mode's five instruments on channels 6-8, each sounding twice as loud. The bass
    /// drum is channel 6 as usual and the tom-tom a lone operator; the hi-hat, snare drum and
    /// top cymbal replace their phase with square waves taken from bits of the hi-hat's and
    /// cymbal's phase, mixed with the noise generator.
    fn rhythm(&mut self, clocks: &Clocks) -> i32 {
        let bass = self.two_op(6, clocks);
        let noise = u32::from(self.step_noise());
        let (hh, sd) = Self::slots(7);
        let (tom, tc) = Self::slots(8);
        let (p7, p8) = (self.pitch(7), self.pitch(8));
        let phase = |slot: usize| self.operator(slot).map_or(0, OperatorState::phase_index);
        let (h, c) = (phase(hh), phase(tc));
        let bit = |v: u32, n: u32| (v >> n) & 1;
        let square = (bit(h, 2) ^ bit(h, 7)) | (bit(h, 3) ^ bit(c, 5)) | (bit(c, 3) ^ bit(c, 5));
        let hat_phase = square << 9 | if square ^ noise != 0 { 0xd0 } else { 0x34 };
        let snare_phase = bit(h, 8) << 9 | (bit(h, 8) ^ noise) << 8;
        let cymbal_phase = square << 9 | 0x80;
        let regs = |o: &Self, slot: usize| o.operator_regs(slot);
        let mut out = bass;
        for (slot, pitch, index) in [
            (hh, p7, Some(hat_phase)),
            (sd, p7, Some(snare_phase)),
            (tom, p8, None),
            (tc, p8, Some(cymbal_phase)),
        ] {
            let r = regs(self, slot);
            if let Some(op) = self.state.operators.get_mut(slot) {
                out += match index {
                    Some(i) => op.tick_at(&r, pitch, clocks, i),
                    None => op.tick(&r, pitch, clocks, 0),
                };
            }
        }
        2 * out
    }

    fn step_noise(&mut self) -> bool {
        let n = self.state.noise;
        let bit = (n ^ (n >> 14)) & 1;
        self.state.noise = (n >> 1) | bit << 22;
        n & 1 != 0
    }

    /// One sample (left, right), at [`SAMPLE_RATE`].
    pub fn generate(&mut self) -> [i32; 2] {
        let clocks = self.clocks();
        let opl3 = self.opl3_mode();
        let rhythm = self.reg(0xbd) & 0x20 != 0;
        let (mut left, mut right) = (0i32, 0i32);
        for ch in 0..if opl3 { 18 } else { 9 } {
            let (primary, second) = self.four_op(ch);
            if second || (rhythm && (6..=8).contains(&ch)) {
                continue;
            }
            let out = if primary {
                self.four_op_channel(ch, &clocks)
            } else {
                self.two_op(ch, &clocks)
            };
            let c0 = self.channel_reg(0xc0, ch);
            if !opl3 || c0 & 0x10 != 0 {
                left += out;
            }
            if !opl3 || c0 & 0x20 != 0 {
                right += out;
            }
        }
        if rhythm {
            let out = self.rhythm(&clocks);
            let c0 = self.channel_reg(0xc0, 6);
            left += if !opl3 || c0 & 0x10 != 0 { out } else { 0 };
            right += if !opl3 || c0 & 0x20 != 0 { out } else { 0 };
        }
        self.state.samples = self.state.samples.wrapping_add(1);
        [left, right]
    }

    /// Skip `n` samples of a silent chip: only the clocks move.
    pub fn skip(&mut self, n: u64) {
        self.state.samples = self.state.samples.wrapping_add(n);
    }

    /// Register `index` (0x000-0x1FF) as last written.
    #[must_use]
    pub fn register(&self, index: u16) -> u8 {
        self.reg(usize::from(index))
    }

    /// Operator state by slot (0..36), for tests and debugging.
    #[must_use]
    pub fn operator(&self, slot: usize) -> Option<&OperatorState> {
        self.state.operators.get(slot)
    }
}

/// Slot of the operator a register in 0x20-0x95/0xE0-0xF5 (either bank) addresses.
#[must_use]
pub fn operator_slot(register: u16) -> Option<usize> {
    let bank = usize::from(register >> 8 & 1) * 18;
    let low = (register & 0xff) as u8;
    if !matches!(low, 0x20..=0x95 | 0xe0..=0xf5) {
        return None;
    }
    slot_of_offset(low & 0x1f).map(|s| s + bank)
}

#[cfg(test)]
mod tests;
