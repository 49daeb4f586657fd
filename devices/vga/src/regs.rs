//! The VGA's I/O registers: attribute controller, sequencer, graphics controller, CRTC, DAC,
//! miscellaneous output, feature control and the input status registers.

use crate::{dispi, Vga};
use nestor_device::{read_bytewise, write_bytewise};

/// A 59.94 Hz frame of 525 lines, 480 of them shown (the 640x480 timing).
const FRAME_NS: u64 = 16_683_333;
const LINE_NS: u64 = FRAME_NS / 525;
const VISIBLE_LINES: u64 = 480;
/// Vertical retrace lines. Longer than the real two lines, so that a guest polling for
/// retrace through a slow path still sees it.
const RETRACE_LINES: std::ops::Range<u64> = 490..502;
/// Part of a line during which pixels are shown (the rest is horizontal blanking).
const LINE_DISPLAY_NS: u64 = LINE_NS * 4 / 5;

/// Attribute controller registers 0x00-0x14.
const ATTR_REGS: usize = 0x15;
/// CRTC registers 0x00-0x18.
const CRTC_REGS: usize = 0x19;

/// Input status 1 at virtual time `now`: bit 0 display disabled (horizontal or vertical
/// blanking), bit 3 vertical retrace.
#[must_use]
pub fn input_status_1(now: u64) -> u8 {
    let t = now % FRAME_NS;
    let line = t / LINE_NS;
    let blank = line >= VISIBLE_LINES || t % LINE_NS >= LINE_DISPLAY_NS;
    u8::from(blank) | u8::from(RETRACE_LINES.contains(&line)) << 3
}

fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

impl Vga {
    pub(crate) fn port_read(&mut self, port: u16, size: u8, now: u64) -> u32 {
        match port {
            dispi::INDEX_PORT => u32::from(self.state.vbe.index) & size_mask(size),
            dispi::DATA_PORT => u32::from(self.vbe_read()) & size_mask(size),
            _ => read_bytewise(port, size, |p| self.read_byte(p, now)),
        }
    }

    pub(crate) fn port_write(&mut self, port: u16, size: u8, value: u32) {
        match port {
            dispi::INDEX_PORT => self.state.vbe.index = value as u16,
            dispi::DATA_PORT => self.vbe_write(value as u16),
            _ => write_bytewise(port, size, value, |p, b| self.write_byte(p, b)),
        }
    }

    /// Whether a CRTC/status port is the one misc output bit 0 selects.
    fn crtc_port_active(&self, port: u16) -> bool {
        (port & 0xfff0 == 0x3d0) == self.color_ports()
    }

    fn read_byte(&mut self, port: u16, now: u64) -> u8 {
        let crtc = self.crtc_port_active(port);
        let s = &mut self.state;
        match port {
            0x3c0 => s.attr_index,
            0x3c1 => attr_reg(&s.attr, s.attr_index),
            0x3c2 => 0x00, // input status 0: no retrace interrupt, switch sense low
            0x3c3 => s.video_enable,
            0x3c4 => s.seq_index,
            0x3c5 => s.seq[usize::from(s.seq_index & 7)],
            0x3c6 => s.pel_mask,
            0x3c7 => {
                if s.dac_reading {
                    3
                } else {
                    0
                }
            }
            0x3c8 => s.dac_write_index,
            0x3c9 => self.dac_read(),
            0x3ca => s.feature_control,
            0x3cc => s.misc_output,
            0x3ce => s.gc_index,
            0x3cf => s.gc[usize::from(s.gc_index & 0xf)],
            0x3b4 | 0x3d4 if crtc => s.crtc_index,
            0x3b5 | 0x3d5 if crtc => {
                let i = usize::from(s.crtc_index & 0x3f);
                if i < CRTC_REGS {
                    s.crtc[i]
                } else {
                    0
                }
            }
            0x3ba | 0x3da if crtc => {
                s.attr_flip_flop = false;
                input_status_1(now)
            }
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, value: u8) {
        let crtc = self.crtc_port_active(port);
        let s = &mut self.state;
        match port {
            0x3c0 => self.attr_write(value),
            0x3c2 => s.misc_output = value,
            0x3c3 => s.video_enable = value & 1,
            0x3c4 => s.seq_index = value,
            0x3c5 => s.seq[usize::from(s.seq_index & 7)] = value,
            0x3c6 => s.pel_mask = value,
            0x3c7 => {
                s.dac_read_index = value;
                s.dac_component = 0;
                s.dac_reading = true;
            }
            0x3c8 => {
                s.dac_write_index = value;
                s.dac_component = 0;
                s.dac_reading = false;
            }
            0x3c9 => self.dac_write(value),
            0x3ce => s.gc_index = value,
            0x3cf => s.gc[usize::from(s.gc_index & 0xf)] = value,
            0x3b4 | 0x3d4 if crtc => s.crtc_index = value,
            0x3b5 | 0x3d5 if crtc => self.crtc_write(value),
            0x3ba | 0x3da if crtc => s.feature_control = value,
            _ => return,
        }
        self.touch();
    }

    fn attr_write(&mut self, value: u8) {
        let s = &mut self.state;
        if s.attr_flip_flop {
            let i = usize::from(s.attr_index & 0x1f);
            if i < ATTR_REGS {
                s.attr[i] = value;
            }
        } else {
            s.attr_index = value & 0x3f;
        }
        s.attr_flip_flop = !s.attr_flip_flop;
    }

    fn crtc_write(&mut self, value: u8) {
        let s = &mut self.state;
        let i = usize::from(s.crtc_index & 0x3f);
        if i >= CRTC_REGS {
            return;
        }
        // Register 0x11 bit 7 protects 0-7, except the line compare bit 8 in register 7.
        if s.crtc[0x11] & 0x80 != 0 && i <= 7 {
            if i == 7 {
                s.crtc[7] = (s.crtc[7] & !0x10) | (value & 0x10);
            }
            return;
        }
        s.crtc[i] = value;
    }

    fn dac_read(&mut self) -> u8 {
        let s = &mut self.state;
        let c = s.dac_component.min(2);
        let i = usize::from(s.dac_read_index) * 3 + usize::from(c);
        let value = s.palette.get(i).copied().unwrap_or(0);
        s.dac_component = c + 1;
        if s.dac_component >= 3 {
            s.dac_component = 0;
            s.dac_read_index = s.dac_read_index.wrapping_add(1);
        }
        value
    }

    fn dac_write(&mut self, value: u8) {
        let s = &mut self.state;
        let value = if s.vbe.dac_8bit() {
            value
        } else {
            value & 0x3f
        };
        let c = s.dac_component.min(2);
        let i = usize::from(s.dac_write_index) * 3 + usize::from(c);
        if let Some(entry) = s.palette.get_mut(i) {
            *entry = value;
        }
        s.dac_component = c + 1;
        if s.dac_component >= 3 {
            s.dac_component = 0;
            s.dac_write_index = s.dac_write_index.wrapping_add(1);
        }
    }
}

fn attr_reg(attr: &[u8; 32], index: u8) -> u8 {
    let i = usize::from(index & 0x1f);
    if i < ATTR_REGS {
        attr[i]
    } else {
        0
    }
}
