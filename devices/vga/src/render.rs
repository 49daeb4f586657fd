//! Drawing the current picture: CRTC geometry and addressing, the attribute controller's
//! palette and the DAC, and the graphics and VBE pixel formats. Text modes are in `text.rs`.
//!
//! Frames are drawn at the mode's logical resolution: double scanning and repeated scan lines
//! are folded (mode 13h is 320x200, not 320x400), the halved dot clock is ignored.

use crate::Vga;

/// Virtual time of one displayed frame (the 59.94 Hz of input status 1).
const FRAME_NS: u64 = 16_683_333;

/// A drawn picture, 8-bit RGB, rows top to bottom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl Frame {
    pub(crate) fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    /// The colour of one pixel.
    #[must_use]
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb.get(i..i + 3).map(|p| [p[0], p[1], p[2]])
    }

    pub(crate) fn put(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        if let Some(p) = self.rgb.get_mut(i..i + 3) {
            p.copy_from_slice(&rgb);
        }
    }
}

/// What blinks is shown in this frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Blink {
    pub cursor: bool,
    pub chars: bool,
}

/// The kinds of picture the adapter draws.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Picture {
    Vbe,
    Text,
    Color256,
    Cga4,
    Planar,
}

/// Which frame lines to draw: `None` for all, else those set.
pub(crate) type Lines<'a> = Option<&'a [bool]>;

pub(crate) fn wanted(lines: Lines, y: u32) -> bool {
    lines.is_none_or(|mask| mask.get(y as usize).copied().unwrap_or(false))
}

impl Blink {
    /// What is shown at virtual time `now_ns`.
    pub(crate) fn at(now_ns: u64) -> Self {
        let frame = now_ns / FRAME_NS;
        Self {
            cursor: frame & 16 == 0,
            chars: frame & 32 == 0,
        }
    }
}

/// Where a displayed line comes from: CRTC address counter at its start and row scan line.
#[derive(Clone, Copy)]
pub(crate) struct LineSource {
    pub counter: u32,
    pub scan: u32,
}

fn expand5(c: u16) -> u8 {
    let c = (c & 0x1f) as u8;
    c << 3 | c >> 2
}

fn expand6(c: u16) -> u8 {
    let c = (c & 0x3f) as u8;
    c << 2 | c >> 4
}

impl Vga {
    /// The current picture, with the cursor and blinking characters shown.
    #[must_use]
    pub fn render(&self) -> Frame {
        self.draw(Blink {
            cursor: true,
            chars: true,
        })
    }

    /// The picture at virtual time `now_ns`: the cursor blinks every 16 frames, blinking
    /// characters every 32, as on a VGA.
    #[must_use]
    pub fn render_at(&self, now_ns: u64) -> Frame {
        self.draw(Blink::at(now_ns))
    }

    fn draw(&self, blink: Blink) -> Frame {
        let (width, height) = self.picture_size();
        let mut frame = Frame::new(width, height);
        self.draw_lines(&mut frame, blink, None);
        frame
    }

    /// What kind of picture the registers select.
    pub(crate) fn picture(&self) -> Picture {
        if self.state.vbe.enabled() {
            Picture::Vbe
        } else if self.state.attr[0x10] & 1 == 0 {
            Picture::Text
        } else if self.state.gc[5] & 0x40 != 0 {
            Picture::Color256
        } else if self.state.gc[5] & 0x20 != 0 {
            Picture::Cga4
        } else {
            Picture::Planar
        }
    }

    /// Width and height of the picture [`Vga::render`] draws now.
    pub(crate) fn picture_size(&self) -> (u32, u32) {
        match self.picture() {
            Picture::Vbe => {
                let v = &self.state.vbe;
                (
                    u32::from(v.xres.min(crate::dispi::MAX_XRES)),
                    u32::from(v.yres.min(crate::dispi::MAX_YRES)),
                )
            }
            Picture::Text => self.text_size(),
            Picture::Color256 => (self.columns() * 4, self.graphics_lines().len() as u32),
            Picture::Cga4 | Picture::Planar => {
                (self.columns() * 8, self.graphics_lines().len() as u32)
            }
        }
    }

    /// Draw the frame lines `lines` selects (all with `None`) into `frame`, which has the
    /// size of [`Vga::picture_size`].
    pub(crate) fn draw_lines(&self, frame: &mut Frame, blink: Blink, lines: Lines) {
        match self.picture() {
            Picture::Vbe => return self.draw_vbe(frame, lines),
            Picture::Text => self.draw_text(frame, blink, lines),
            Picture::Color256 => self.draw_256(frame, lines),
            Picture::Cga4 => self.draw_cga4(frame, lines),
            Picture::Planar => self.draw_planar(frame, lines),
        }
        // Palette access (PAS clear) or the sequencer's screen-off bit blank the display.
        if self.state.attr_index & 0x20 == 0 || self.state.seq[1] & 0x20 != 0 {
            let row = frame.width as usize * 3;
            for (y, line) in frame.rgb.chunks_mut(row.max(1)).enumerate() {
                if wanted(lines, y as u32) {
                    line.fill(0);
                }
            }
        }
    }

    /// Character clocks per line (horizontal display end + 1).
    pub(crate) fn columns(&self) -> u32 {
        u32::from(self.state.crtc[1]) + 1
    }

    /// Displayed scan lines (vertical display end + 1), halved when double scanning.
    pub(crate) fn scanlines(&self) -> u32 {
        let c = &self.state.crtc;
        let overflow = u32::from(c[7]);
        let end = u32::from(c[0x12]) | (overflow >> 1 & 1) << 8 | (overflow >> 6 & 1) << 9;
        let lines = end + 1;
        if c[9] & 0x80 != 0 {
            lines / 2
        } else {
            lines
        }
    }

    /// Scan lines per character row (maximum scan line + 1).
    pub(crate) fn row_height(&self) -> u32 {
        u32::from(self.state.crtc[9] & 0x1f) + 1
    }

    /// Address counter steps from one row to the next (offset register, in words).
    pub(crate) fn line_offset(&self) -> u32 {
        u32::from(self.state.crtc[0x13]) * 2
    }

    pub(crate) fn start_address(&self) -> u32 {
        u32::from(self.state.crtc[0x0c]) << 8 | u32::from(self.state.crtc[0x0d])
    }

    /// The plane address the CRTC fetches for address counter `counter` on row scan line
    /// `scan`: byte, word or doubleword addressing, and the CGA-style substitution of
    /// address bits 13 and 14 by the row scan counter.
    pub(crate) fn crtc_address(&self, counter: u32, scan: u32) -> u32 {
        let c = &self.state.crtc;
        let n = counter & 0xffff;
        let mut a = if c[0x14] & 0x40 != 0 {
            (n << 2) | (n >> 14 & 3)
        } else if c[0x17] & 0x40 == 0 {
            let wrap_bit = if c[0x17] & 0x20 != 0 { 15 } else { 13 };
            (n << 1) | (n >> wrap_bit & 1)
        } else {
            n
        };
        a &= 0xffff;
        if c[0x17] & 1 == 0 {
            a = (a & !0x2000) | (scan & 1) << 13;
        }
        if c[0x17] & 2 == 0 {
            a = (a & !0x4000) | (scan >> 1 & 1) << 14;
        }
        a
    }

    pub(crate) fn plane_byte(&self, addr: u32, plane: usize) -> u8 {
        self.state
            .vram
            .get(addr as usize * 4 + plane)
            .copied()
            .unwrap_or(0)
    }

    /// Lines of a graphics mode: rows whose address does not depend on the scan line are
    /// drawn once (mode 13h's repeated lines).
    pub(crate) fn graphics_lines(&self) -> Vec<LineSource> {
        let rows = self.row_height();
        let collapse = self.state.crtc[0x17] & 3 == 3;
        let (start, offset) = (self.start_address(), self.line_offset());
        let scanlines = self.scanlines();
        let count = if collapse {
            scanlines / rows
        } else {
            scanlines
        };
        (0..count)
            .map(|y| {
                let (row, scan) = if collapse {
                    (y, 0)
                } else {
                    (y / rows, y % rows)
                };
                LineSource {
                    counter: start.wrapping_add(row.wrapping_mul(offset)),
                    scan,
                }
            })
            .collect()
    }

    /// A DAC entry as 8-bit RGB, after the pel mask.
    pub(crate) fn dac_rgb(&self, index: u8) -> [u8; 3] {
        let i = usize::from(index & self.state.pel_mask) * 3;
        let c = |k: usize| u16::from(self.state.palette.get(i + k).copied().unwrap_or(0));
        if self.state.vbe.dac_8bit() {
            [c(0) as u8, c(1) as u8, c(2) as u8]
        } else {
            [expand6(c(0)), expand6(c(1)), expand6(c(2))]
        }
    }

    /// The 16 colours of the attribute palette, through colour select and the DAC.
    pub(crate) fn attr_colors(&self) -> [[u8; 3]; 16] {
        let a = &self.state.attr;
        let mut out = [[0u8; 3]; 16];
        for (i, rgb) in out.iter_mut().enumerate() {
            let pal = a[i];
            let dac = if a[0x10] & 0x80 != 0 {
                (a[0x14] & 0x0f) << 4 | (pal & 0x0f)
            } else {
                (a[0x14] & 0x0c) << 4 | (pal & 0x3f)
            };
            *rgb = self.dac_rgb(dac);
        }
        out
    }

    /// 256 colours: four pixels per address counter step, one from each plane.
    fn draw_256(&self, frame: &mut Frame, wanted_lines: Lines) {
        let lines = self.graphics_lines();
        let width = frame.width;
        for (y, line) in lines.iter().enumerate() {
            if !wanted(wanted_lines, y as u32) {
                continue;
            }
            for x in 0..width {
                let addr = self.crtc_address(line.counter.wrapping_add(x / 4), line.scan);
                let value = self.plane_byte(addr, (x & 3) as usize);
                frame.put(x, y as u32, self.dac_rgb(value));
            }
        }
    }

    /// 16 colours: eight pixels per step, one bit from each enabled plane.
    fn draw_planar(&self, frame: &mut Frame, wanted_lines: Lines) {
        let lines = self.graphics_lines();
        let width = frame.width;
        let colors = self.attr_colors();
        let enable = self.state.attr[0x12] & 0x0f;
        for (y, line) in lines.iter().enumerate() {
            if !wanted(wanted_lines, y as u32) {
                continue;
            }
            for x in 0..width {
                let addr = self.crtc_address(line.counter.wrapping_add(x / 8), line.scan);
                let bit = 7 - (x & 7);
                let mut index = 0u8;
                for p in 0..4 {
                    index |= (self.plane_byte(addr, p) >> bit & 1) << p;
                }
                frame.put(x, y as u32, colors[usize::from(index & enable)]);
            }
        }
    }

    /// CGA 4 colours (shift register interleave): two bits per pixel, four pixels from the
    /// even byte (plane 0), then four from the odd byte (plane 1).
    fn draw_cga4(&self, frame: &mut Frame, wanted_lines: Lines) {
        let lines = self.graphics_lines();
        let width = frame.width;
        let colors = self.attr_colors();
        for (y, line) in lines.iter().enumerate() {
            if !wanted(wanted_lines, y as u32) {
                continue;
            }
            for x in 0..width {
                let addr = self.crtc_address(line.counter.wrapping_add(x / 8), line.scan);
                let k = x & 7;
                let byte = self.plane_byte(addr, (k / 4) as usize);
                let index = byte >> (6 - 2 * (k & 3)) & 3;
                frame.put(x, y as u32, colors[usize::from(index)]);
            }
        }
    }

    /// A VBE mode from VRAM: virtual width, display offsets, 4 (planar) to 32 bpp.
    fn draw_vbe(&self, frame: &mut Frame, wanted_lines: Lines) {
        let v = &self.state.vbe;
        let (width, height) = (frame.width, frame.height);
        let stride = v.line_bytes();
        let bpp = v.bytes_per_pixel();
        let colors = self.attr_colors();
        let vram = &self.state.vram;
        let byte = |i: usize| vram.get(i).copied().unwrap_or(0);
        for y in (0..height).filter(|&y| wanted(wanted_lines, y)) {
            let line = (usize::from(v.y_offset) + y as usize) * stride;
            for x in 0..width {
                let px = usize::from(v.x_offset) + x as usize;
                let rgb = if v.bpp == 4 {
                    let addr = line + px / 8;
                    let bit = 7 - (px & 7);
                    let index =
                        (0..4).fold(0u8, |acc, p| acc | (byte(addr * 4 + p) >> bit & 1) << p);
                    colors[usize::from(index)]
                } else {
                    let i = line + px * bpp;
                    let word = u16::from(byte(i)) | u16::from(byte(i + 1)) << 8;
                    match v.bpp {
                        15 => [expand5(word >> 10), expand5(word >> 5), expand5(word)],
                        16 => [expand5(word >> 11), expand6(word >> 5), expand5(word)],
                        24 | 32 => [byte(i + 2), byte(i + 1), byte(i)],
                        _ => self.dac_rgb(byte(i)),
                    }
                };
                frame.put(x, y, rgb);
            }
        }
    }
}
