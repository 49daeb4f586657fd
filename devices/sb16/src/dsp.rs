//! The DSP (version 4.05): its command/data ports, and PCM transfers over ISA DMA laid out on
//! the virtual clock. A transfer plays `rate` frames per second from `start_ns`; frame `k`
//! of a block is fetched from DMA when virtual time reaches it, and the block's interrupt
//! comes when its last frame has played.

use serde::{Deserialize, Serialize};

/// DSP version reported by command 0xE1.
pub const VERSION: (u8, u8) = (4, 5);

/// Copyright string returned by command 0xE3.
const COPYRIGHT: &[u8] = b"COPYRIGHT (C) CREATIVE TECHNOLOGY LTD, 1992.\0";

/// A PCM transfer in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub bits16: bool,
    pub stereo: bool,
    pub signed: bool,
    pub auto_init: bool,
    /// Recording (ADC): the card writes silence into guest memory.
    pub input: bool,
    /// Command 0x80: no data moves, only the interrupt after the block.
    pub silence: bool,
    /// Frames per second.
    pub rate: u32,
    /// Samples per block (a stereo frame is two).
    pub block_samples: u32,
    /// Virtual time at which the block's frame 0 plays.
    pub start_ns: u64,
    /// Frames of this block fetched so far.
    pub done: u32,
    /// Paused (commands 0xD0/0xD5) at this time.
    pub paused_at_ns: Option<u64>,
    /// Commands 0xD9/0xDA: the auto-init transfer ends with the current block.
    pub exit_after_block: bool,
}

impl Transfer {
    #[must_use]
    pub fn block_frames(&self) -> u32 {
        let per = if self.stereo { 2 } else { 1 };
        (self.block_samples / per).max(1)
    }

    #[must_use]
    pub fn bytes_per_frame(&self) -> usize {
        usize::from(1 + u8::from(self.bits16)) * usize::from(1 + u8::from(self.stereo))
    }

    /// Virtual time of frame `k` of the block.
    #[must_use]
    pub fn frame_ns(&self, k: u64) -> u64 {
        let ns = u128::from(k) * 1_000_000_000 / u128::from(self.rate.max(1));
        self.start_ns
            .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Frames of the block whose time has come by `t`.
    #[must_use]
    pub fn due(&self, t: u64) -> u32 {
        if t < self.start_ns {
            return 0;
        }
        let k = u128::from(t - self.start_ns) * u128::from(self.rate.max(1)) / 1_000_000_000 + 1;
        k.min(u128::from(self.block_frames())) as u32
    }

    /// When the block's last frame has finished: its interrupt.
    #[must_use]
    pub fn block_end_ns(&self) -> u64 {
        self.frame_ns(u64::from(self.block_frames()))
    }

    /// The sample value of silence in this format.
    #[must_use]
    pub fn silence_byte(&self) -> u8 {
        if self.signed || self.bits16 {
            0
        } else {
            0x80
        }
    }

    /// Decode one frame (left, right) from its bytes.
    #[must_use]
    pub fn decode(&self, bytes: &[u8]) -> [i16; 2] {
        let sample = |i: usize| -> i16 {
            if self.bits16 {
                let raw = u16::from_le_bytes([
                    bytes.get(2 * i).copied().unwrap_or(0),
                    bytes.get(2 * i + 1).copied().unwrap_or(0),
                ]);
                if self.signed {
                    raw as i16
                } else {
                    (raw ^ 0x8000) as i16
                }
            } else {
                let b = bytes.get(i).copied().unwrap_or(self.silence_byte());
                let v = if self.signed {
                    b as i8 as i16
                } else {
                    i16::from(b) - 128
                };
                v << 8
            }
        };
        if self.stereo {
            [sample(0), sample(1)]
        } else {
            let s = sample(0);
            [s, s]
        }
    }
}

/// Guest-visible DSP state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DspState {
    /// Reset port (base+6) bit 0 as last written.
    pub reset_high: bool,
    /// Bytes waiting in the read-data port (base+A).
    pub output: Vec<u8>,
    /// Last byte read, returned again when the queue is empty.
    pub last_read: u8,
    /// Command being collected and its parameter bytes so far.
    pub command: Option<u8>,
    pub params: Vec<u8>,
    pub speaker_on: bool,
    /// Output rate in frames per second (0x40 or 0x41).
    pub rate: u32,
    /// Block size in samples for 0x1C, 0x90, 0x91 (0x48).
    pub block_samples: u32,
    pub test_register: u8,
    /// Last direct-DAC (0x10) value, unsigned 8-bit.
    pub direct_sample: u8,
    pub irq8_pending: bool,
    pub irq16_pending: bool,
    /// Level last driven on the IRQ line, and which line.
    pub irq_level: bool,
    pub irq_line: u8,
    pub transfer: Option<Transfer>,
    /// The frame the DSP outputs now.
    pub current: [i16; 2],
}

impl Default for DspState {
    fn default() -> Self {
        Self {
            reset_high: false,
            output: Vec::new(),
            last_read: 0xff,
            command: None,
            params: Vec::new(),
            speaker_on: false,
            rate: 11_025,
            block_samples: 0x800,
            test_register: 0,
            direct_sample: 0x80,
            irq8_pending: false,
            irq16_pending: false,
            irq_level: false,
            irq_line: 5,
            transfer: None,
            current: [0, 0],
        }
    }
}

/// Parameter bytes each command takes.
fn param_count(cmd: u8) -> usize {
    match cmd {
        0x10 | 0x40 | 0xe0 | 0xe2 | 0xe4 => 1,
        0x14 | 0x16 | 0x17 | 0x24 | 0x41 | 0x42 | 0x48 | 0x74..=0x77 | 0x80 => 2,
        0xb0..=0xcf => 3,
        _ => 0,
    }
}

impl DspState {
    /// Reset port high then low: the DSP answers 0xAA. The IRQ line keeps its level until
    /// the device drives it again.
    pub fn reset(&mut self) {
        let (level, line) = (self.irq_level, self.irq_line);
        *self = Self {
            output: vec![0xaa],
            irq_level: level,
            irq_line: line,
            ..Self::default()
        };
    }

    /// Pop the next byte of the read-data port.
    pub fn read_data(&mut self) -> u8 {
        if !self.output.is_empty() {
            self.last_read = self.output.remove(0);
        }
        self.last_read
    }

    fn reply(&mut self, bytes: &[u8]) {
        // The real FIFO is small; a guest that never reads must not grow it for ever.
        if self.output.len() < 64 {
            self.output.extend_from_slice(bytes);
        }
    }

    /// A byte written to the command/data port at virtual time `now`.
    pub fn write(&mut self, value: u8, now: u64) {
        let cmd = match self.command {
            Some(cmd) => {
                self.params.push(value);
                cmd
            }
            None => {
                self.command = Some(value);
                self.params.clear();
                value
            }
        };
        if self.params.len() >= param_count(cmd) {
            self.command = None;
            let params = std::mem::take(&mut self.params);
            self.execute(cmd, &params, now);
        }
    }

    fn param16(params: &[u8], first_low: bool) -> u32 {
        let (a, b) = (
            u32::from(params.first().copied().unwrap_or(0)),
            u32::from(params.get(1).copied().unwrap_or(0)),
        );
        if first_low {
            a | b << 8
        } else {
            a << 8 | b
        }
    }

    fn execute(&mut self, cmd: u8, p: &[u8], now: u64) {
        let byte = |i: usize| p.get(i).copied().unwrap_or(0);
        match cmd {
            0x10 => self.direct_sample = byte(0),
            0x14 | 0x16 | 0x17 => self.start_8bit(Self::param16(p, true) + 1, false, false, now),
            0x1c | 0x1f => self.start_8bit(self.block_samples, true, false, now),
            0x20 => self.reply(&[0x80]),
            0x24 => self.start_8bit(Self::param16(p, true) + 1, false, true, now),
            0x2c => self.start_8bit(self.block_samples, true, true, now),
            0x40 => self.rate = 1_000_000 / (256 - u32::from(byte(0))),
            0x41 | 0x42 => self.rate = Self::param16(p, false).clamp(1, 65_535),
            0x45 | 0x47 => {
                if let Some(t) = &mut self.transfer {
                    t.exit_after_block = false;
                }
            }
            0x48 => self.block_samples = Self::param16(p, true) + 1,
            0x80 => {
                self.start_8bit(Self::param16(p, true) + 1, false, false, now);
                if let Some(t) = &mut self.transfer {
                    t.silence = true;
                }
            }
            0x90 | 0x98 => self.start_8bit(self.block_samples, true, cmd == 0x98, now),
            0x91 | 0x99 => self.start_8bit(self.block_samples, false, cmd == 0x99, now),
            0xb0..=0xcf => {
                let len = Self::param16(p.get(1..).unwrap_or(&[]), true) + 1;
                self.start_sb16(cmd, byte(0), len, now);
            }
            0xd0 | 0xd5 => self.pause(now),
            0xd4 | 0xd6 => self.resume(now),
            0xd1 => self.speaker_on = true,
            0xd3 => self.speaker_on = false,
            0xd8 => self.reply(&[if self.speaker_on { 0xff } else { 0x00 }]),
            0xd9 | 0xda => {
                if let Some(t) = &mut self.transfer {
                    t.exit_after_block = true;
                }
            }
            0xe0 => self.reply(&[!byte(0)]),
            0xe1 => self.reply(&[VERSION.0, VERSION.1]),
            0xe3 => self.reply(COPYRIGHT),
            0xe4 => self.test_register = byte(0),
            0xe8 => self.reply(&[self.test_register]),
            0xf2 => self.irq8_pending = true,
            0xf3 => self.irq16_pending = true,
            0xf8 => self.reply(&[0]),
            _ => {}
        }
    }

    fn start_8bit(&mut self, samples: u32, auto_init: bool, input: bool, now: u64) {
        self.transfer = Some(Transfer {
            bits16: false,
            stereo: false,
            signed: false,
            auto_init,
            input,
            silence: false,
            rate: self.rate,
            block_samples: samples,
            start_ns: now,
            done: 0,
            paused_at_ns: None,
            exit_after_block: false,
        });
    }

    /// Commands 0xBx (16-bit) and 0xCx (8-bit): bit 3 input, bit 2 auto-init; mode bit 4
    /// signed, bit 5 stereo.
    fn start_sb16(&mut self, cmd: u8, mode: u8, samples: u32, now: u64) {
        self.transfer = Some(Transfer {
            bits16: cmd < 0xc0,
            stereo: mode & 0x20 != 0,
            signed: mode & 0x10 != 0,
            auto_init: cmd & 0x04 != 0,
            input: cmd & 0x08 != 0,
            silence: false,
            rate: self.rate,
            block_samples: samples,
            start_ns: now,
            done: 0,
            paused_at_ns: None,
            exit_after_block: false,
        });
    }

    fn pause(&mut self, now: u64) {
        if let Some(t) = &mut self.transfer {
            t.paused_at_ns.get_or_insert(now);
        }
    }

    fn resume(&mut self, now: u64) {
        if let Some(t) = &mut self.transfer {
            if let Some(at) = t.paused_at_ns.take() {
                // The rest of the block plays from now on as it would have from the pause.
                t.start_ns = t.start_ns.saturating_add(now.saturating_sub(at));
            }
        }
    }

    /// The interrupt request the DSP drives.
    #[must_use]
    pub fn irq_requested(&self) -> bool {
        self.irq8_pending || self.irq16_pending
    }
}
