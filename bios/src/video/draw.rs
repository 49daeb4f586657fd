//! Characters, pixels and scrolling in whatever mode is set, as the BDA describes it.

use super::modes::{self, Kind};
use super::regs::gc_write;
use crate::bda;
use crate::guest::{rd16, rd8, read_vec, wr16, wr8};
use crate::Platform;

/// The current mode as the BDA and the mode table describe it.
#[derive(Clone, Copy, Debug)]
pub struct Screen {
    pub kind: Kind,
    pub cols: u16,
    pub rows: u16,
    pub char_height: u8,
    pub page_size: u16,
    pub width: u16,
}

impl Screen {
    pub fn current(p: &mut dyn Platform) -> Self {
        let mode = rd8(p, bda::VIDEO_MODE);
        let m = modes::find(mode);
        Self {
            kind: m.map_or(Kind::Text, |m| m.kind),
            cols: rd16(p, bda::VIDEO_COLS).clamp(1, 255),
            rows: u16::from(rd8(p, bda::VIDEO_ROWS)) + 1,
            char_height: rd8(p, bda::CHAR_HEIGHT).clamp(1, 32),
            page_size: rd16(p, bda::VIDEO_PAGE_SIZE),
            width: m.map_or(640, |m| m.width),
        }
    }

    fn text_addr(&self, page: u8, row: u16, col: u16) -> u64 {
        0xB_8000
            + u64::from(page & 7) * u64::from(self.page_size)
            + (u64::from(row) * u64::from(self.cols) + u64::from(col)) * 2
    }

    /// Bytes per pixel row in the planar modes.
    fn planar_pitch(&self) -> u64 {
        u64::from(self.width / 8)
    }

    fn planar_page(&self, page: u8) -> u64 {
        0xA_0000 + u64::from(page & 7) * u64::from(self.page_size)
    }
}

pub fn cursor(p: &mut dyn Platform, page: u8) -> (u16, u16) {
    let pos = rd16(p, bda::CURSOR_POS + u64::from(page & 7) * 2);
    (u16::from((pos >> 8) as u8), u16::from(pos as u8))
}

/// Glyph rows of `ch` in the ROM font for `height`.
pub fn glyph(height: u8, ch: u8) -> &'static [u8] {
    let (off, h) = match height {
        14 => (crate::services::layout::F_FONT_8X14, 14),
        16 => (crate::services::layout::F_FONT_8X16, 16),
        _ => (crate::services::layout::F_FONT_8X8, 8),
    };
    let start = crate::services::layout::F_SEG_IMAGE + usize::from(off) + usize::from(ch) * h;
    crate::rom().get(start..start + h).unwrap_or(&[])
}

/// Writes `count` copies of `ch` from the cursor on; `attr` None keeps the attributes
/// (text) or draws in colour `color` (graphics).
pub fn write_chars(
    p: &mut dyn Platform,
    page: u8,
    ch: u8,
    attr: Option<u8>,
    color: u8,
    count: u16,
) {
    let s = Screen::current(p);
    let (row, col) = cursor(p, page);
    let total = u32::from(s.cols) * u32::from(s.rows);
    let start = u32::from(row) * u32::from(s.cols) + u32::from(col);
    for i in 0..u32::from(count) {
        let at = start + i;
        if at >= total {
            break;
        }
        let (r, c) = (
            (at / u32::from(s.cols)) as u16,
            (at % u32::from(s.cols)) as u16,
        );
        put_char(p, &s, page, r, c, ch, attr, color);
    }
}

/// One character cell.
#[allow(clippy::too_many_arguments)]
pub fn put_char(
    p: &mut dyn Platform,
    s: &Screen,
    page: u8,
    row: u16,
    col: u16,
    ch: u8,
    attr: Option<u8>,
    color: u8,
) {
    match s.kind {
        Kind::Text => {
            let a = s.text_addr(page, row, col);
            match attr {
                Some(at) => wr16(p, a, u16::from(ch) | (u16::from(at) << 8)),
                None => wr8(p, a, ch),
            }
        }
        _ => draw_glyph(p, s, page, row, col, ch, attr.unwrap_or(color)),
    }
}

/// Character and attribute at a text cell (graphics modes read as blank).
pub fn read_char(p: &mut dyn Platform, page: u8, row: u16, col: u16) -> (u8, u8) {
    let s = Screen::current(p);
    if s.kind != Kind::Text {
        return (0, 0);
    }
    let v = rd16(p, s.text_addr(page, row, col));
    (v as u8, (v >> 8) as u8)
}

#[allow(clippy::too_many_arguments)]
fn draw_glyph(p: &mut dyn Platform, s: &Screen, page: u8, row: u16, col: u16, ch: u8, color: u8) {
    let h = s.char_height;
    let rows = glyph(h, ch).to_vec();
    let x0 = col * 8;
    let y0 = row * u16::from(h);
    match s.kind {
        Kind::Planar => {
            let base = s.planar_page(page) + u64::from(y0) * s.planar_pitch() + u64::from(col);
            // Clear the cell, then set the glyph's pixels through the bit mask.
            planar_fill(p, base, s.planar_pitch(), h, 0xFF, 0);
            gc_write(p, 0x03, if color & 0x80 != 0 { 0x18 } else { 0x00 });
            for (i, bits) in rows.iter().enumerate() {
                planar_fill(
                    p,
                    base + i as u64 * s.planar_pitch(),
                    0,
                    1,
                    *bits,
                    color & 0x0F,
                );
            }
            gc_write(p, 0x03, 0x00);
        }
        _ => {
            for (dy, bits) in rows.iter().enumerate() {
                for dx in 0..8u16 {
                    let on = bits & (0x80 >> dx) != 0;
                    let c = if on { color } else { 0 };
                    set_pixel(p, s, page, x0 + dx, y0 + dy as u16, c & 0x7F);
                }
            }
        }
    }
}

/// Writes `rows` bytes `pitch` apart in planar memory with colour `color` through bit mask
/// `mask` (set/reset on all planes), leaving the GC as the mode set it.
fn planar_fill(p: &mut dyn Platform, addr: u64, pitch: u64, rows: u8, mask: u8, color: u8) {
    gc_write(p, 0x00, color);
    gc_write(p, 0x01, 0x0F);
    gc_write(p, 0x08, mask);
    for i in 0..u64::from(rows) {
        let a = addr + i * pitch;
        // The read loads the latches, which supply the pixels the mask leaves alone.
        rd8(p, a);
        wr8(p, a, 0);
    }
    gc_write(p, 0x00, 0x00);
    gc_write(p, 0x01, 0x00);
    gc_write(p, 0x08, 0xFF);
}

fn cga_addr(x: u16, y: u16, bits: u16) -> (u64, u8) {
    let per_byte = 8 / bits;
    let a = 0xB_8000 + u64::from(y & 1) * 0x2000 + u64::from(y >> 1) * 80 + u64::from(x / per_byte);
    let shift = (per_byte - 1 - x % per_byte) * bits;
    (a, shift as u8)
}

/// INT 10h/0Ch. Bit 7 of `color` XORs in the CGA and planar modes.
pub fn set_pixel(p: &mut dyn Platform, s: &Screen, page: u8, x: u16, y: u16, color: u8) {
    match s.kind {
        Kind::Linear8 => wr8(p, 0xA_0000 + u64::from(y) * 320 + u64::from(x), color),
        Kind::Cga4 | Kind::Cga2 => {
            let bits = if s.kind == Kind::Cga4 { 2 } else { 1 };
            let (a, shift) = cga_addr(x, y, bits);
            let mask = (((1u16 << bits) - 1) as u8) << shift;
            let v = (color << shift) & mask;
            let old = rd8(p, a);
            let new = if color & 0x80 != 0 {
                old ^ v
            } else {
                (old & !mask) | v
            };
            wr8(p, a, new);
        }
        Kind::Planar => {
            let a = s.planar_page(page) + u64::from(y) * s.planar_pitch() + u64::from(x / 8);
            gc_write(p, 0x03, if color & 0x80 != 0 { 0x18 } else { 0x00 });
            planar_fill(p, a, 0, 1, 0x80 >> (x % 8), color & 0x0F);
            gc_write(p, 0x03, 0x00);
        }
        Kind::Text => {}
    }
}

/// INT 10h/0Dh.
pub fn get_pixel(p: &mut dyn Platform, s: &Screen, page: u8, x: u16, y: u16) -> u8 {
    match s.kind {
        Kind::Linear8 => rd8(p, 0xA_0000 + u64::from(y) * 320 + u64::from(x)),
        Kind::Cga4 | Kind::Cga2 => {
            let bits = if s.kind == Kind::Cga4 { 2 } else { 1 };
            let (a, shift) = cga_addr(x, y, bits);
            (rd8(p, a) >> shift) & ((1 << bits) - 1)
        }
        Kind::Planar => {
            let a = s.planar_page(page) + u64::from(y) * s.planar_pitch() + u64::from(x / 8);
            let mut c = 0;
            for plane in 0..4 {
                gc_write(p, 0x04, plane);
                if rd8(p, a) & (0x80 >> (x % 8)) != 0 {
                    c |= 1 << plane;
                }
            }
            gc_write(p, 0x04, 0);
            c
        }
        Kind::Text => 0,
    }
}

/// A rectangle of character cells, inclusive.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub top: u16,
    pub left: u16,
    pub bottom: u16,
    pub right: u16,
}

/// INT 10h/06h and 07h: scroll `window` up (`up`) or down by `lines` (0 = clear), filling
/// with `attr` (text) or colour `attr` (graphics).
pub fn scroll(p: &mut dyn Platform, page: u8, w: Window, lines: u16, up: bool, attr: u8) {
    let s = Screen::current(p);
    let w = Window {
        bottom: w.bottom.min(s.rows - 1),
        right: w.right.min(s.cols - 1),
        ..w
    };
    if w.top > w.bottom || w.left > w.right {
        return;
    }
    let height = w.bottom - w.top + 1;
    let lines = if lines == 0 || lines > height {
        height
    } else {
        lines
    };
    for i in 0..height {
        // Walk away from the direction of travel so no row is overwritten before it moves.
        let dst = if up { w.top + i } else { w.bottom - i };
        let src_ok = i + lines < height;
        let src = if up {
            dst + lines
        } else {
            dst.wrapping_sub(lines)
        };
        if src_ok {
            copy_row(p, &s, page, src, dst, w.left, w.right);
        } else {
            clear_row(p, &s, page, dst, w.left, w.right, attr);
        }
    }
}

fn copy_row(p: &mut dyn Platform, s: &Screen, page: u8, src: u16, dst: u16, l: u16, r: u16) {
    let n = usize::from(r - l + 1);
    match s.kind {
        Kind::Text => {
            let data = read_vec(p, s.text_addr(page, src, l), n * 2);
            p.write_mem(s.text_addr(page, dst, l), &data);
        }
        Kind::Linear8 => {
            for y in 0..8u64 {
                let row = |cr: u16| 0xA_0000 + (u64::from(cr) * 8 + y) * 320 + u64::from(l) * 8;
                let data = read_vec(p, row(src), n * 8);
                p.write_mem(row(dst), &data);
            }
        }
        Kind::Cga4 | Kind::Cga2 => {
            let bpc = if s.kind == Kind::Cga4 { 2 } else { 1 };
            for y in 0..8u16 {
                let (from, _) = cga_addr(l * 8, src * 8 + y, bpc);
                let (to, _) = cga_addr(l * 8, dst * 8 + y, bpc);
                let data = read_vec(p, from, n * usize::from(bpc));
                p.write_mem(to, &data);
            }
        }
        Kind::Planar => {
            // Write mode 1 copies the latches: one read and one write per byte moves all
            // four planes.
            gc_write(p, 0x05, 0x01);
            let h = u64::from(s.char_height);
            let pitch = s.planar_pitch();
            for y in 0..h {
                for x in 0..n as u64 {
                    let at = |cr: u16| {
                        s.planar_page(page) + (u64::from(cr) * h + y) * pitch + u64::from(l) + x
                    };
                    rd8(p, at(src));
                    wr8(p, at(dst), 0);
                }
            }
            gc_write(p, 0x05, 0x00);
        }
    }
}

fn clear_row(p: &mut dyn Platform, s: &Screen, page: u8, row: u16, l: u16, r: u16, attr: u8) {
    let n = usize::from(r - l + 1);
    match s.kind {
        Kind::Text => {
            let cell = [b' ', attr];
            let data: Vec<u8> = cell.iter().copied().cycle().take(n * 2).collect();
            p.write_mem(s.text_addr(page, row, l), &data);
        }
        Kind::Linear8 => {
            for y in 0..8u64 {
                let a = 0xA_0000 + (u64::from(row) * 8 + y) * 320 + u64::from(l) * 8;
                p.write_mem(a, &vec![attr; n * 8]);
            }
        }
        Kind::Cga4 | Kind::Cga2 => {
            let bpc = if s.kind == Kind::Cga4 { 2 } else { 1 };
            let fill = if bpc == 2 {
                (attr & 3) * 0x55
            } else if attr & 1 != 0 {
                0xFF
            } else {
                0
            };
            for y in 0..8u16 {
                let (a, _) = cga_addr(l * 8, row * 8 + y, bpc);
                p.write_mem(a, &vec![fill; n * usize::from(bpc)]);
            }
        }
        Kind::Planar => {
            let h = s.char_height;
            let pitch = s.planar_pitch();
            for x in 0..n as u64 {
                let a =
                    s.planar_page(page) + u64::from(row) * u64::from(h) * pitch + u64::from(l) + x;
                planar_fill(p, a, pitch, h, 0xFF, attr & 0x0F);
            }
        }
    }
}
