//! The CT1745 mixer at base+4 (index) and base+5 (data): volumes, and the IRQ and DMA
//! selections that Plug-and-Play-less SB16s keep in registers 0x80 and 0x81.

use serde::{Deserialize, Serialize};

/// Register indices (SB16 layout; the SBPro ones below 0x30 are mapped onto them).
pub mod reg {
    pub const RESET: u8 = 0x00;
    pub const MASTER_L: u8 = 0x30;
    pub const MASTER_R: u8 = 0x31;
    pub const VOICE_L: u8 = 0x32;
    pub const VOICE_R: u8 = 0x33;
    pub const FM_L: u8 = 0x34;
    pub const FM_R: u8 = 0x35;
    pub const IRQ_SELECT: u8 = 0x80;
    pub const DMA_SELECT: u8 = 0x81;
    pub const IRQ_STATUS: u8 = 0x82;
}

/// Guest-visible mixer state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MixerState {
    /// Index register (base+4).
    pub index: u8,
    /// The 256 registers as last written (read-only ones are computed on read).
    pub registers: Vec<u8>,
}

impl Default for MixerState {
    fn default() -> Self {
        let mut m = Self {
            index: 0,
            registers: vec![0; 256],
        };
        m.reset_volumes();
        m.set(reg::IRQ_SELECT, 0x02); // IRQ 5
        m.set(reg::DMA_SELECT, 0x22); // DMA 1 and 5
        m
    }
}

/// SBPro register -> (left, right) SB16 pair; a nibble per side, 4 bits -> 5 bits.
fn sbpro_pair(index: u8) -> Option<(u8, u8)> {
    match index {
        0x04 => Some((reg::VOICE_L, reg::VOICE_R)),
        0x22 => Some((reg::MASTER_L, reg::MASTER_R)),
        0x26 => Some((reg::FM_L, reg::FM_R)),
        0x28 => Some((0x36, 0x37)),
        0x2e => Some((0x38, 0x39)),
        _ => None,
    }
}

impl MixerState {
    fn set(&mut self, index: u8, value: u8) {
        if let Some(r) = self.registers.get_mut(usize::from(index)) {
            *r = value;
        }
    }

    #[must_use]
    pub fn get(&self, index: u8) -> u8 {
        self.registers.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Register 0x00 write: every volume to its power-on level.
    fn reset_volumes(&mut self) {
        for r in 0x30..=0x47u8 {
            self.set(r, 0);
        }
        for r in [
            reg::MASTER_L,
            reg::MASTER_R,
            reg::VOICE_L,
            reg::VOICE_R,
            reg::FM_L,
            reg::FM_R,
        ] {
            self.set(r, 0xc0);
        }
        for r in [0x3f, 0x40, 0x41, 0x42] {
            self.set(r, 0); // input/output gain x1
        }
        self.set(0x3c, 0x1f); // output switches on
        self.set(0x43, 0);
        for r in 0x44..=0x47 {
            self.set(r, 0x80); // treble/bass flat
        }
    }

    pub fn write_data(&mut self, value: u8) {
        let index = self.index;
        match index {
            reg::RESET => self.reset_volumes(),
            reg::IRQ_STATUS => {} // read-only
            _ => {
                if let Some((l, r)) = sbpro_pair(index) {
                    self.set(l, (value & 0xf0) | 0x08);
                    self.set(r, (value << 4) | 0x08);
                }
                self.set(index, value);
            }
        }
    }

    /// Data read; `irq_status` supplies register 0x82's pending bits.
    #[must_use]
    pub fn read_data(&self, irq_status: u8) -> u8 {
        match self.index {
            reg::IRQ_STATUS => irq_status | 0x20, // bit 5: SB16 revision
            i => match sbpro_pair(i) {
                Some((l, r)) => (self.get(l) & 0xf0) | (self.get(r) >> 4),
                None => self.get(i),
            },
        }
    }

    /// The ISA IRQ line register 0x80 selects (IRQ 5 if none is).
    #[must_use]
    pub fn irq_line(&self) -> u8 {
        let v = self.get(reg::IRQ_SELECT);
        [(0x01, 9), (0x02, 5), (0x04, 7), (0x08, 10)]
            .into_iter()
            .find(|(bit, _)| v & bit != 0)
            .map_or(5, |(_, line)| line)
    }

    /// The 8-bit and 16-bit DMA channels register 0x81 selects (1 and 5 by default). With no
    /// 16-bit channel the 16-bit transfers use the 8-bit one, as the card does.
    #[must_use]
    pub fn dma_channels(&self) -> (u8, u8) {
        let v = self.get(reg::DMA_SELECT);
        let low = [(0x01, 0), (0x02, 1), (0x08, 3)]
            .into_iter()
            .find(|(bit, _)| v & bit != 0)
            .map_or(1, |(_, ch)| ch);
        let high = [(0x20, 5), (0x40, 6), (0x80, 7)]
            .into_iter()
            .find(|(bit, _)| v & bit != 0)
            .map_or(low, |(_, ch)| ch);
        (low, high)
    }

    /// Gain in 1/65536 of a volume register (5 bits in 7-3: 31 = 0 dB, 2 dB steps down).
    #[must_use]
    pub fn gain(&self, index: u8) -> i64 {
        static GAINS: std::sync::OnceLock<[i64; 32]> = std::sync::OnceLock::new();
        let table = GAINS.get_or_init(|| {
            std::array::from_fn(|v| {
                let steps = 31 - v as i32;
                (65536.0 * 10f64.powf(-f64::from(steps) * 2.0 / 20.0)).round() as i64
            })
        });
        table[usize::from(self.get(index) >> 3)]
    }

    /// (left, right) gains of a source's pair times the master's, in 1/65536.
    #[must_use]
    pub fn source_gains(&self, left: u8, right: u8) -> [i64; 2] {
        [
            (self.gain(left) * self.gain(reg::MASTER_L)) >> 16,
            (self.gain(right) * self.gain(reg::MASTER_R)) >> 16,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbpro_registers_map_onto_sb16_pairs_and_volumes_scale() {
        let mut m = MixerState::default();
        assert_eq!(m.irq_line(), 5);
        assert_eq!(m.dma_channels(), (1, 5));
        m.index = 0x22;
        m.write_data(0xf7);
        assert_eq!(m.get(reg::MASTER_L), 0xf8);
        assert_eq!(m.get(reg::MASTER_R), 0x78);
        assert_eq!(m.read_data(0), 0xf7);
        assert_eq!(m.gain(reg::MASTER_L), 65536);
        m.index = reg::VOICE_L;
        m.write_data(31 << 3);
        m.index = reg::VOICE_R;
        m.write_data(28 << 3);
        let [l, r] = m.source_gains(reg::VOICE_L, reg::VOICE_R);
        assert_eq!(l, 65536);
        assert!((m.gain(reg::VOICE_R) - 32845).abs() < 10, "-6 dB");
        assert_eq!(r, (m.gain(reg::VOICE_R) * m.gain(reg::MASTER_R)) >> 16);
        m.index = 0;
        m.write_data(0);
        assert_eq!(m.get(reg::MASTER_L), 0xc0);
        m.index = reg::IRQ_SELECT;
        m.write_data(0x04);
        m.index = reg::DMA_SELECT;
        m.write_data(0x08);
        assert_eq!((m.irq_line(), m.dma_channels()), (7, (3, 3)));
        m.index = reg::IRQ_STATUS;
        m.write_data(0xff);
        assert_eq!(m.read_data(0x01), 0x21);
    }
}
