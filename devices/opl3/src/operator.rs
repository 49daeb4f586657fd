//! One operator: phase generator, envelope generator (attack, decay, sustain, release) and the
//! waveform, computed the way the chip does, in the logarithmic domain.

use crate::tables::{level, log_sin, KSL_BLOCK7, MULT_X2, STEP_PATTERN};
use serde::{Deserialize, Serialize};

/// Maximum attenuation of the envelope (96 dB in 0.1875 dB steps).
pub const ENV_MAX: u16 = 511;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnvPhase {
    Attack,
    Decay,
    Sustain,
    Release,
    #[default]
    Off,
}

/// An operator's register fields, decoded from the register file.
#[derive(Clone, Copy, Debug, Default)]
pub struct OperatorRegs {
    pub tremolo: bool,
    pub vibrato: bool,
    /// Sustaining envelope: hold at the sustain level while the key is on.
    pub egt: bool,
    pub ksr: bool,
    pub mult: u8,
    pub ksl: u8,
    pub total_level: u8,
    pub attack: u8,
    pub decay: u8,
    pub sustain: u8,
    pub release: u8,
    pub waveform: u8,
}

impl OperatorRegs {
    /// Decode from the bytes at 0x20, 0x40, 0x60, 0x80 and 0xE0 (+ slot offset).
    #[must_use]
    pub fn decode(r20: u8, r40: u8, r60: u8, r80: u8, re0: u8) -> Self {
        Self {
            tremolo: r20 & 0x80 != 0,
            vibrato: r20 & 0x40 != 0,
            egt: r20 & 0x20 != 0,
            ksr: r20 & 0x10 != 0,
            mult: r20 & 0x0f,
            ksl: r40 >> 6,
            total_level: r40 & 0x3f,
            attack: r60 >> 4,
            decay: r60 & 0x0f,
            sustain: r80 >> 4,
            release: r80 & 0x0f,
            waveform: re0 & 7,
        }
    }
}

/// What the channel tells its operators each sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pitch {
    pub fnum: u16,
    pub block: u8,
    /// Register 0x08 bit 6: the key scale rate follows F-number bit 8 rather than bit 9.
    pub note_select: bool,
}

impl Pitch {
    fn key_scale_rate(self, ksr: bool) -> u8 {
        let bit = if self.note_select {
            (self.fnum >> 8) & 1
        } else {
            (self.fnum >> 9) & 1
        } as u8;
        let v = (self.block & 7) * 2 + bit;
        if ksr {
            v
        } else {
            v >> 2
        }
    }

    /// Key scale level in envelope units for KSL 0-3 (1 = 3 dB/oct, 2 = 1.5, 3 = 6).
    fn key_scale_level(self, ksl: u8) -> u16 {
        let base = KSL_BLOCK7[usize::from((self.fnum >> 6) & 0xf)];
        let drop = 16 * u16::from(7 - (self.block & 7));
        let v = base.saturating_sub(drop);
        match ksl {
            1 => v,
            2 => v >> 1,
            3 => v << 1,
            _ => 0,
        }
    }
}

/// The operator's running state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OperatorState {
    /// Phase in 1/2^20 of a cycle (wraps).
    pub phase: u32,
    pub envelope: u16,
    pub env_phase: EnvPhase,
    pub key_on: bool,
    /// The last two outputs (feedback uses both).
    pub out: i32,
    pub prev_out: i32,
}

impl Default for OperatorState {
    fn default() -> Self {
        Self {
            phase: 0,
            envelope: ENV_MAX,
            env_phase: EnvPhase::Off,
            key_on: false,
            out: 0,
            prev_out: 0,
        }
    }
}

/// Chip-wide inputs of one sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clocks {
    pub eg_counter: u32,
    /// Tremolo attenuation now, in envelope units.
    pub tremolo: u16,
    /// Vibrato now: F-number offset in 1/1024 of the F-number (signed).
    pub vibrato: i32,
    /// All eight waveforms (OPL3 mode), only 0-3 (OPL2 with WSE) or only the sine.
    pub waveforms: u8,
}

impl OperatorState {
    pub fn set_key(&mut self, on: bool) {
        if on && !self.key_on {
            self.phase = 0;
            self.env_phase = EnvPhase::Attack;
        } else if !on && self.key_on && self.env_phase != EnvPhase::Off {
            self.env_phase = EnvPhase::Release;
        }
        self.key_on = on;
    }

    /// Whether the operator makes no sound and will make none until keyed on.
    #[must_use]
    pub fn silent(&self) -> bool {
        self.env_phase == EnvPhase::Off
    }

    fn rate(value: u8, ksr_offset: u8) -> u8 {
        if value == 0 {
            0
        } else {
            (value * 4 + ksr_offset).min(63)
        }
    }

    fn step_envelope(&mut self, regs: &OperatorRegs, pitch: Pitch, counter: u32) {
        let ksr = pitch.key_scale_rate(regs.ksr);
        let sustain_level = if regs.sustain == 15 {
            0x1f0
        } else {
            u16::from(regs.sustain) << 4
        };
        let rate = match self.env_phase {
            EnvPhase::Attack => Self::rate(regs.attack, ksr),
            EnvPhase::Decay => Self::rate(regs.decay, ksr),
            EnvPhase::Sustain if regs.egt => 0,
            EnvPhase::Sustain | EnvPhase::Release => Self::rate(regs.release, ksr),
            EnvPhase::Off => return,
        };
        let inc = envelope_increment(rate, counter);
        match self.env_phase {
            EnvPhase::Attack => {
                if rate >= 60 {
                    self.envelope = 0;
                } else if inc > 0 {
                    let e = i32::from(self.envelope);
                    let next = e + ((!e * i32::from(inc)) >> 3);
                    self.envelope = next.clamp(0, i32::from(ENV_MAX)) as u16;
                }
                if self.envelope == 0 {
                    self.env_phase = EnvPhase::Decay;
                }
            }
            _ => {
                self.envelope = (self.envelope + u16::from(inc)).min(ENV_MAX);
                if self.env_phase == EnvPhase::Decay && self.envelope >= sustain_level {
                    self.env_phase = EnvPhase::Sustain;
                }
                if self.envelope >= ENV_MAX && self.env_phase != EnvPhase::Decay {
                    self.env_phase = EnvPhase::Off;
                }
            }
        }
    }

    /// Advance one sample and return the output (about -4096..=4096) for phase modulation
    /// `modulation` (1024 per cycle).
    pub fn tick(
        &mut self,
        regs: &OperatorRegs,
        pitch: Pitch,
        clocks: &Clocks,
        modulation: i32,
    ) -> i32 {
        let index = (self.phase >> 10).wrapping_add(modulation as u32) & 0x3ff;
        self.tick_at(regs, pitch, clocks, index)
    }

    /// The waveform's phase step (0..1024) now: what the rhythm instruments build on.
    #[must_use]
    pub fn phase_index(&self) -> u32 {
        (self.phase >> 10) & 0x3ff
    }

    /// Advance one sample, reading the waveform at `index` (0..1024) instead of the phase.
    pub fn tick_at(
        &mut self,
        regs: &OperatorRegs,
        pitch: Pitch,
        clocks: &Clocks,
        index: u32,
    ) -> i32 {
        self.step_envelope(regs, pitch, clocks.eg_counter);
        let attenuation = u32::from(self.envelope)
            + (u32::from(regs.total_level) << 2)
            + u32::from(pitch.key_scale_level(regs.ksl))
            + if regs.tremolo {
                u32::from(clocks.tremolo)
            } else {
                0
            };
        let index = index & 0x3ff;
        let waveform = regs.waveform.min(clocks.waveforms);
        let out = if self.env_phase == EnvPhase::Off {
            0
        } else {
            wave(waveform, index, attenuation.min(u32::from(ENV_MAX)))
        };
        let fnum = if regs.vibrato {
            let delta = (i32::from(pitch.fnum) * clocks.vibrato) >> 10;
            (i32::from(pitch.fnum) + delta).clamp(0, 1023) as u32
        } else {
            u32::from(pitch.fnum)
        };
        let inc = (fnum << (pitch.block & 7)) * MULT_X2[usize::from(regs.mult & 15)] / 2;
        self.phase = self.phase.wrapping_add(inc) & 0xf_ffff;
        self.prev_out = self.out;
        self.out = out;
        out
    }
}

/// How far the envelope moves this sample at `rate` (0..=63).
fn envelope_increment(rate: u8, counter: u32) -> u8 {
    if rate == 0 {
        return 0;
    }
    let (hi, lo) = (u32::from(rate >> 2), usize::from(rate & 3));
    if hi < 12 {
        let shift = 12 - hi;
        if counter & ((1 << shift) - 1) != 0 {
            return 0;
        }
        STEP_PATTERN[lo][((counter >> shift) & 7) as usize]
    } else {
        STEP_PATTERN[lo][(counter & 7) as usize].max(1) << (hi - 12)
    }
}

/// One waveform sample at phase `index` (0..1024) and envelope attenuation (0.1875 dB units).
fn wave(waveform: u8, index: u32, attenuation: u32) -> i32 {
    let half = index & 0x200 != 0;
    let quarter = |i: u32| {
        if i & 0x100 != 0 {
            log_sin(255 - (i & 0xff))
        } else {
            log_sin(i & 0xff)
        }
    };
    // (log attenuation of the wave, negative?) or silence.
    let shape = match waveform {
        0 => Some((quarter(index), half)),
        1 => (!half).then(|| (quarter(index), false)),
        2 => Some((quarter(index), false)),
        3 => (index & 0x100 == 0).then(|| (quarter(index), false)),
        4 => (!half).then(|| (quarter(index << 1), index & 0x100 != 0)),
        5 => (!half).then(|| (quarter(index << 1), false)),
        6 => Some((0, half)),
        _ => {
            let ramp = if half {
                0x1ff - (index & 0x1ff)
            } else {
                index & 0x1ff
            };
            Some((ramp << 3, half))
        }
    };
    let Some((log, negative)) = shape else {
        return 0;
    };
    let v = level(log + (attenuation << 3));
    if negative {
        -v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveforms_have_their_shapes() {
        assert!(wave(0, 256, 0) > 4000);
        assert!(wave(0, 768, 0) < -4000);
        assert_eq!(wave(1, 768, 0), 0);
        assert!(wave(2, 768, 0) > 4000);
        assert_eq!(wave(3, 300, 0), 0);
        assert_eq!(wave(6, 10, 0), 4096);
        assert_eq!(wave(6, 600, 0), -4096);
        assert_eq!(wave(0, 256, 511), 0);
        // 6 dB (32 steps) halves the level.
        let full = wave(0, 256, 0);
        assert!((wave(0, 256, 32) - full / 2).abs() < full / 50);
    }

    #[test]
    fn envelope_rates_follow_the_step_patterns() {
        let steps = |rate| {
            (0..4096u32)
                .map(|c| u32::from(envelope_increment(rate, c)))
                .sum::<u32>()
        };
        assert_eq!(steps(0), 0);
        assert_eq!(
            steps(4),
            1,
            "rate 1: one step per 2048 ticks, half of them taken"
        );
        assert_eq!(steps(44), 1024);
        assert!(steps(47) > steps(44));
        assert_eq!(steps(60), 4096 * 8);
    }
}
