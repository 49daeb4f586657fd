//! The Bochs VBE "DISPI" interface: resolution, depth, enable, bank, virtual size and
//! display offsets through an index port (0x1CE) and a 16-bit data port (0x1CF).

use crate::Vga;
use serde::{Deserialize, Serialize};

/// DISPI ports, register indices and bits.
pub mod dispi {
    pub const INDEX_PORT: u16 = 0x1ce;
    pub const DATA_PORT: u16 = 0x1cf;

    pub const INDEX_ID: u16 = 0x0;
    pub const INDEX_XRES: u16 = 0x1;
    pub const INDEX_YRES: u16 = 0x2;
    pub const INDEX_BPP: u16 = 0x3;
    pub const INDEX_ENABLE: u16 = 0x4;
    pub const INDEX_BANK: u16 = 0x5;
    pub const INDEX_VIRT_WIDTH: u16 = 0x6;
    pub const INDEX_VIRT_HEIGHT: u16 = 0x7;
    pub const INDEX_X_OFFSET: u16 = 0x8;
    pub const INDEX_Y_OFFSET: u16 = 0x9;
    pub const INDEX_VIDEO_MEMORY_64K: u16 = 0xa;

    pub const ID0: u16 = 0xb0c0;
    pub const ID5: u16 = 0xb0c5;

    pub const ENABLED: u16 = 0x01;
    /// While set, XRES/YRES/BPP read back the maxima.
    pub const GETCAPS: u16 = 0x02;
    pub const DAC_8BIT: u16 = 0x20;
    pub const LFB_ENABLED: u16 = 0x40;
    pub const NOCLEARMEM: u16 = 0x80;

    pub const MAX_XRES: u16 = 2560;
    pub const MAX_YRES: u16 = 1600;
    pub const MAX_BPP: u16 = 32;

    /// Depths the interface accepts.
    pub const DEPTHS: [u16; 6] = [4, 8, 15, 16, 24, 32];
}

/// DISPI registers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct VbeState {
    pub index: u16,
    /// Interface version the guest selected (0xB0C0-0xB0C5).
    pub id: u16,
    pub xres: u16,
    pub yres: u16,
    pub bpp: u16,
    /// ENABLE register bits (see [`dispi`]).
    pub enable: u16,
    /// 64 KiB bank shown in the A0000 window.
    pub bank: u16,
    pub virt_width: u16,
    pub virt_height: u16,
    pub x_offset: u16,
    pub y_offset: u16,
}

impl Default for VbeState {
    fn default() -> Self {
        Self {
            index: 0,
            id: dispi::ID5,
            xres: 640,
            yres: 480,
            bpp: 8,
            enable: 0,
            bank: 0,
            virt_width: 640,
            virt_height: 480,
            x_offset: 0,
            y_offset: 0,
        }
    }
}

impl VbeState {
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enable & dispi::ENABLED != 0
    }

    #[must_use]
    pub fn lfb_enabled(&self) -> bool {
        self.enable & dispi::LFB_ENABLED != 0
    }

    #[must_use]
    pub fn dac_8bit(&self) -> bool {
        self.enable & dispi::DAC_8BIT != 0
    }

    /// Bytes per pixel of the packed depths (4 bpp is planar and reads as 1).
    #[must_use]
    pub fn bytes_per_pixel(&self) -> usize {
        match self.bpp {
            15 | 16 => 2,
            24 => 3,
            32 => 4,
            _ => 1,
        }
    }

    /// Bytes from one line to the next (per plane for 4 bpp).
    #[must_use]
    pub fn line_bytes(&self) -> usize {
        if self.bpp == 4 {
            usize::from(self.virt_width) / 8
        } else {
            usize::from(self.virt_width) * self.bytes_per_pixel()
        }
    }

    /// Lines of the virtual screen that fit in `vram_bytes` at the current width.
    fn fit_virt_height(&mut self, vram_bytes: usize) {
        let plane_bytes = if self.bpp == 4 {
            vram_bytes / 4
        } else {
            vram_bytes
        };
        let lines = plane_bytes / self.line_bytes().max(1);
        self.virt_height = u16::try_from(lines).unwrap_or(u16::MAX);
    }
}

impl Vga {
    pub(crate) fn vbe_read(&self) -> u16 {
        let v = &self.state.vbe;
        let caps = v.enable & dispi::GETCAPS != 0;
        match v.index {
            dispi::INDEX_ID => v.id,
            dispi::INDEX_XRES if caps => dispi::MAX_XRES,
            dispi::INDEX_YRES if caps => dispi::MAX_YRES,
            dispi::INDEX_BPP if caps => dispi::MAX_BPP,
            dispi::INDEX_XRES => v.xres,
            dispi::INDEX_YRES => v.yres,
            dispi::INDEX_BPP => v.bpp,
            dispi::INDEX_ENABLE => v.enable,
            dispi::INDEX_BANK => v.bank,
            dispi::INDEX_VIRT_WIDTH => v.virt_width,
            dispi::INDEX_VIRT_HEIGHT => v.virt_height,
            dispi::INDEX_X_OFFSET => v.x_offset,
            dispi::INDEX_Y_OFFSET => v.y_offset,
            dispi::INDEX_VIDEO_MEMORY_64K => {
                u16::try_from(self.config.vram_bytes >> 16).unwrap_or(u16::MAX)
            }
            _ => 0,
        }
    }

    pub(crate) fn vbe_write(&mut self, value: u16) {
        let vram_bytes = self.config.vram_bytes;
        let v = &mut self.state.vbe;
        let enabled = v.enabled();
        match v.index {
            dispi::INDEX_ID if (dispi::ID0..=dispi::ID5).contains(&value) => v.id = value,
            // The mode is fixed while enabled, as on Bochs.
            dispi::INDEX_XRES if !enabled && value <= dispi::MAX_XRES => v.xres = value,
            dispi::INDEX_YRES if !enabled && value <= dispi::MAX_YRES => v.yres = value,
            dispi::INDEX_BPP if !enabled => {
                // 0 means 8, as in Bochs.
                let bpp = if value == 0 { 8 } else { value };
                if dispi::DEPTHS.contains(&bpp) {
                    v.bpp = bpp;
                }
            }
            dispi::INDEX_ENABLE => self.vbe_enable(value),
            dispi::INDEX_BANK if (usize::from(value) << 16) < vram_bytes => v.bank = value,
            dispi::INDEX_VIRT_WIDTH => {
                v.virt_width = value.min(0x7fff);
                v.fit_virt_height(vram_bytes);
            }
            dispi::INDEX_X_OFFSET => v.x_offset = value,
            dispi::INDEX_Y_OFFSET => v.y_offset = value,
            _ => {}
        }
        self.touch();
    }

    fn vbe_enable(&mut self, value: u16) {
        let keep = dispi::ENABLED
            | dispi::GETCAPS
            | dispi::DAC_8BIT
            | dispi::LFB_ENABLED
            | dispi::NOCLEARMEM;
        let v = &mut self.state.vbe;
        let was = v.enabled();
        v.enable = value & keep;
        if v.enabled() && !was {
            if v.xres == 0 || v.yres == 0 {
                v.xres = 640;
                v.yres = 480;
            }
            v.virt_width = v.xres;
            v.x_offset = 0;
            v.y_offset = 0;
            v.bank = 0;
            v.fit_virt_height(self.config.vram_bytes);
            if value & dispi::NOCLEARMEM == 0 {
                self.state.vram.fill(0);
                self.dirty.invalidate();
            }
        }
    }
}
