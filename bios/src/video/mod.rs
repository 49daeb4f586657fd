//! INT 10h: VGA modes, text output (copied to COM1 when asked), palettes, fonts, and VBE.

pub mod draw;
pub mod modes;
pub mod regs;
mod vbe;

use crate::bda;
use crate::call::{r, Call, Outcome};
use crate::guest::{rd16, rd8, read_vec, wr16, wr8};
use crate::io::{inb, outb};
use crate::services::layout;
use crate::{BiosState, Platform};
use draw::{cursor, Screen, Window};
use modes::Kind;
use nestor_cpu::SegReg;

/// COM1, where text output is mirrored.
const COM1: u16 = 0x3F8;

/// Sends one byte to COM1, waiting (a bounded number of polls) for room.
pub fn serial_out(p: &mut dyn Platform, b: u8) {
    for _ in 0..1000 {
        if inb(p, COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(p, COM1, b);
}

/// Prints a host-side message: teletype on page 0, and COM1 when mirroring.
pub fn print(st: &BiosState, p: &mut dyn Platform, text: &str) {
    for b in text.bytes() {
        teletype(st, p, b, 0, 0x07);
    }
}

/// Sets VGA mode `mode` (bit 7: keep video memory). False if the mode is unknown.
pub fn set_mode(st: &mut BiosState, p: &mut dyn Platform, mode: u8) -> bool {
    let Some(m) = modes::find(mode) else {
        return false;
    };
    let keep = mode & 0x80 != 0;
    if st.vbe_mode != 0 {
        vbe::disable(p);
        st.vbe_mode = 0;
    }
    regs::program(p, m);
    if m.kind == Kind::Text {
        let start = layout::F_SEG_IMAGE + usize::from(layout::F_FONT_8X16);
        let glyphs = crate::rom().get(start..start + 4096).unwrap_or(&[]);
        regs::load_font(p, glyphs, 16, 0, 256, 0);
    }
    if !keep {
        clear_memory(p, m.kind);
    }
    let rows = m.rows;
    wr8(p, bda::VIDEO_MODE, m.mode);
    wr16(p, bda::VIDEO_COLS, m.cols);
    wr16(p, bda::VIDEO_PAGE_SIZE, m.page_size);
    wr16(p, bda::VIDEO_PAGE_START, 0);
    p.write_mem(bda::CURSOR_POS, &[0; 16]);
    wr16(p, bda::CURSOR_SHAPE, 0x0607);
    wr8(p, bda::VIDEO_PAGE, 0);
    wr16(p, bda::CRTC_BASE, regs::CRTC_INDEX);
    wr8(p, bda::VIDEO_MSR, m.cga_msr);
    wr8(p, bda::VIDEO_PAL, if m.mode == 6 { 0x3F } else { 0x30 });
    wr8(p, bda::VIDEO_ROWS, rows - 1);
    wr8(p, bda::CHAR_HEIGHT, m.char_height);
    wr8(p, bda::VIDEO_CTL, 0x60 | (mode & 0x80));
    wr8(p, bda::VIDEO_SWITCHES, 0xF9);
    wr8(p, bda::VIDEO_MODESET_CTL, 0x51);
    wr8(p, bda::VIDEO_DCC, 0x08);
    // INT 43h: the font graphics modes draw characters with.
    let font43 = match m.char_height {
        14 => layout::F_FONT_8X14,
        16 => layout::F_FONT_8X16,
        _ => layout::F_FONT_8X8,
    };
    set_vector(p, 0x43, 0xF000, font43);
    set_vector(p, 0x1F, 0xF000, layout::F_FONT_8X8 + 0x400);
    true
}

pub fn set_vector(p: &mut dyn Platform, vector: u8, seg: u16, off: u16) {
    let at = bda::IVT + u64::from(vector) * 4;
    wr16(p, at, off);
    wr16(p, at + 2, seg);
}

fn clear_memory(p: &mut dyn Platform, kind: Kind) {
    match kind {
        Kind::Text => {
            let blank: Vec<u8> = [b' ', 0x07].iter().copied().cycle().take(0x8000).collect();
            p.write_mem(0xB_8000, &blank);
        }
        Kind::Cga4 | Kind::Cga2 => {
            p.write_mem(0xB_8000, &[0u8; 0x8000]);
        }
        Kind::Planar | Kind::Linear8 => {
            p.write_mem(0xA_0000, &vec![0u8; 0x1_0000]);
        }
    }
}

/// Moves the cursor of `page` (and the hardware cursor if the page is shown).
pub fn set_cursor(p: &mut dyn Platform, page: u8, row: u16, col: u16) {
    let page = page & 7;
    wr16(
        p,
        bda::CURSOR_POS + u64::from(page) * 2,
        (row << 8) | (col & 0xFF),
    );
    if page == rd8(p, bda::VIDEO_PAGE) {
        let cols = rd16(p, bda::VIDEO_COLS);
        let start = rd16(p, bda::VIDEO_PAGE_START) / 2;
        let pos = start.wrapping_add(row.wrapping_mul(cols)).wrapping_add(col);
        regs::crtc_write(p, 0x0E, (pos >> 8) as u8);
        regs::crtc_write(p, 0x0F, pos as u8);
    }
}

/// INT 10h/0Eh on `page` with graphics colour `color`.
pub fn teletype(st: &BiosState, p: &mut dyn Platform, ch: u8, page: u8, color: u8) {
    if st.vbe_mode != 0 {
        if st.serial_mirror && ch != 7 {
            serial_out(p, ch);
        }
        return;
    }
    let s = Screen::current(p);
    let (mut row, mut col) = cursor(p, page);
    match ch {
        7 => {}
        8 => col = col.saturating_sub(1),
        b'\r' => col = 0,
        b'\n' => row += 1,
        _ => {
            draw::put_char(p, &s, page, row, col, ch, None, color);
            col += 1;
        }
    }
    if st.serial_mirror && ch != 7 {
        serial_out(p, ch);
    }
    if col >= s.cols {
        col = 0;
        row += 1;
    }
    if row >= s.rows {
        let attr = if s.kind == Kind::Text {
            draw::read_char(p, page, s.rows - 1, 0).1
        } else {
            0
        };
        let all = Window {
            top: 0,
            left: 0,
            bottom: s.rows - 1,
            right: s.cols - 1,
        };
        draw::scroll(p, page, all, 1, true, attr);
        row = s.rows - 1;
    }
    set_cursor(p, page, row, col);
}

pub fn int10(st: &mut BiosState, c: &mut Call) -> Outcome {
    match c.r.ah() {
        0x00 => {
            set_mode(st, c.p, c.r.al());
            // AL: 20h for modes above 7, 30h for text modes 0-5 and 7, 3Fh for mode 6.
            let al = match c.r.al() & 0x7F {
                0..=5 | 7 => 0x30,
                6 => 0x3F,
                _ => 0x20,
            };
            c.set_al(al);
        }
        0x01 => set_cursor_shape(c.p, c.r.ch(), c.r.cl()),
        0x02 => set_cursor(c.p, c.r.bh(), u16::from(c.r.dh()), u16::from(c.r.dl())),
        0x03 => {
            let (row, col) = cursor(c.p, c.r.bh());
            let shape = rd16(c.p, bda::CURSOR_SHAPE);
            c.set_cx(shape);
            c.set_dx((row << 8) | col);
        }
        0x04 => c.set_ah(0),
        0x05 => select_page(c.p, c.r.al()),
        0x06 | 0x07 => {
            let w = Window {
                top: u16::from(c.r.ch()),
                left: u16::from(c.r.cl()),
                bottom: u16::from(c.r.dh()),
                right: u16::from(c.r.dl()),
            };
            let page = rd8(c.p, bda::VIDEO_PAGE);
            draw::scroll(c.p, page, w, u16::from(c.r.al()), c.r.ah() == 6, c.r.bh());
        }
        0x08 => {
            let (row, col) = cursor(c.p, c.r.bh());
            let (ch, attr) = draw::read_char(c.p, c.r.bh(), row, col);
            c.set_ax(u16::from(ch) | (u16::from(attr) << 8));
        }
        0x09 => draw::write_chars(c.p, c.r.bh(), c.r.al(), Some(c.r.bl()), c.r.bl(), c.r.cx()),
        0x0A => draw::write_chars(c.p, c.r.bh(), c.r.al(), None, c.r.bl(), c.r.cx()),
        0x0B => cga_palette(c.p, c.r.bh(), c.r.bl()),
        0x0C => {
            let s = Screen::current(c.p);
            draw::set_pixel(c.p, &s, c.r.bh(), c.r.cx(), c.r.dx(), c.r.al());
        }
        0x0D => {
            let s = Screen::current(c.p);
            let v = draw::get_pixel(c.p, &s, c.r.bh(), c.r.cx(), c.r.dx());
            c.set_al(v);
        }
        0x0E => {
            let page = rd8(c.p, bda::VIDEO_PAGE);
            teletype(st, c.p, c.r.al(), page, c.r.bl());
        }
        0x0F => {
            let mode = rd8(c.p, bda::VIDEO_MODE) | (rd8(c.p, bda::VIDEO_CTL) & 0x80);
            let cols = rd8(c.p, bda::VIDEO_COLS);
            c.set_ax(u16::from(mode) | (u16::from(cols) << 8));
            let page = rd8(c.p, bda::VIDEO_PAGE);
            c.set8h(r::BX, page);
        }
        0x10 => palette(c),
        0x11 => fonts(c),
        0x12 => alternate_select(c),
        0x13 => write_string(st, c),
        0x1A => {
            if c.r.al() == 0 {
                c.set_bx(0x0008);
            }
            c.set_al(0x1A);
        }
        0x1B => state_info(c),
        0x4F => return vbe::int10_4f(st, c),
        _ => {}
    }
    Outcome::Return
}

/// INT 10h/01h, with the CGA cursor emulation of the VGA BIOS: start/end lines given for
/// an 8-line cell are scaled to the real character height.
fn set_cursor_shape(p: &mut dyn Platform, start: u8, end: u8) {
    wr16(
        p,
        bda::CURSOR_SHAPE,
        u16::from(end) | (u16::from(start) << 8),
    );
    let h = rd8(p, bda::CHAR_HEIGHT);
    let (mut s, mut e) = (start & 0x3F, end & 0x1F);
    let emulate = rd8(p, bda::VIDEO_CTL) & 1 == 0;
    if emulate && h > 8 && s < 0x20 && e < 8 && s <= e {
        if e != s + 1 {
            s = ((s + 1) * h / 8).saturating_sub(1);
        } else {
            s = ((e + 1) * h / 8).saturating_sub(2);
        }
        e = ((e + 1) * h / 8).saturating_sub(1);
    }
    regs::crtc_write(p, 0x0A, s | (start & 0x20));
    regs::crtc_write(p, 0x0B, e);
}

fn select_page(p: &mut dyn Platform, page: u8) {
    let page = page & 7;
    let size = rd16(p, bda::VIDEO_PAGE_SIZE);
    let start = u16::from(page).wrapping_mul(size);
    wr8(p, bda::VIDEO_PAGE, page);
    wr16(p, bda::VIDEO_PAGE_START, start);
    let words = if Screen::current(p).kind == Kind::Text {
        start / 2
    } else {
        start
    };
    regs::crtc_write(p, 0x0C, (words >> 8) as u8);
    regs::crtc_write(p, 0x0D, words as u8);
    let (row, col) = cursor(p, page);
    set_cursor(p, page, row, col);
}

fn cga_palette(p: &mut dyn Platform, bh: u8, bl: u8) {
    if bh == 0 {
        // Background (graphics) / border: colour BL with its intensity bit.
        let v = (bl & 0x07) | ((bl & 0x10) >> 1) | ((bl & 0x08) << 1);
        regs::ac_write(p, 0x11, v);
        if Screen::current(p).kind != Kind::Text {
            regs::ac_write(p, 0x00, v);
        }
    } else if bh == 1 {
        let base = if bl & 1 != 0 { 0x13 } else { 0x12 };
        for i in 0..3u8 {
            regs::ac_write(p, i + 1, base + 2 * i);
        }
    }
}

fn palette(c: &mut Call) {
    match c.r.al() {
        0x00 => regs::ac_write(c.p, c.r.bl(), c.r.bh()),
        0x01 => regs::ac_write(c.p, 0x11, c.r.bh()),
        0x02 => {
            let a = c.addr(SegReg::Es, c.r.dx());
            let regs17 = read_vec(c.p, a, 17);
            for (i, v) in regs17.iter().enumerate() {
                regs::ac_write(c.p, i as u8, *v);
            }
        }
        0x03 => {
            let mode = regs::ac_read(c.p, 0x10);
            let v = if c.r.bl() & 1 != 0 {
                mode | 0x08
            } else {
                mode & !0x08
            };
            regs::ac_write(c.p, 0x10, v);
        }
        0x07 => {
            let v = regs::ac_read(c.p, c.r.bl());
            c.set8h(r::BX, v);
        }
        0x08 => {
            let v = regs::ac_read(c.p, 0x11);
            c.set8h(r::BX, v);
        }
        0x09 => {
            let a = c.addr(SegReg::Es, c.r.dx());
            let v: Vec<u8> = (0..17u8).map(|i| regs::ac_read(c.p, i)).collect();
            c.p.write_mem(a, &v);
        }
        0x10 => regs::dac_write(c.p, c.r.bl(), [c.r.dh(), c.r.ch(), c.r.cl()]),
        0x12 => {
            let a = c.addr(SegReg::Es, c.r.dx());
            let n = usize::from(c.r.cx().min(256));
            let data = read_vec(c.p, a, n * 3);
            for (i, rgb) in data.chunks_exact(3).enumerate() {
                let idx = (usize::from(c.r.bx()) + i) as u8;
                regs::dac_write(c.p, idx, [rgb[0], rgb[1], rgb[2]]);
            }
        }
        0x13 => {}
        0x15 => {
            let [red, g, b] = regs::dac_read(c.p, c.r.bl());
            c.set8h(r::DX, red);
            c.set16(r::CX, (u16::from(g) << 8) | u16::from(b));
        }
        0x17 => {
            let a = c.addr(SegReg::Es, c.r.dx());
            let n = usize::from(c.r.cx().min(256));
            let mut out = Vec::with_capacity(n * 3);
            for i in 0..n {
                out.extend_from_slice(&regs::dac_read(c.p, (usize::from(c.r.bx()) + i) as u8));
            }
            c.p.write_mem(a, &out);
        }
        0x18 => outb(c.p, regs::DAC_MASK, c.r.bl()),
        0x19 => {
            let v = inb(c.p, regs::DAC_MASK);
            c.set8l(r::BX, v);
        }
        0x1A => {
            let mode = regs::ac_read(c.p, 0x10);
            let sel = regs::ac_read(c.p, 0x14);
            c.set_bx(u16::from(mode >> 7) | (u16::from(sel & 0x0F) << 8));
        }
        0x1B => {
            for i in 0..c.r.cx() {
                let idx = c.r.bx().wrapping_add(i) as u8;
                let [red, g, b] = regs::dac_read(c.p, idx);
                let grey = ((u32::from(red) * 77 + u32::from(g) * 151 + u32::from(b) * 28 + 0x80)
                    >> 8) as u8;
                regs::dac_write(c.p, idx, [grey, grey, grey]);
            }
        }
        _ => {}
    }
}

/// ROM font for a character height, as (F000 offset, height).
fn rom_font(height: u8) -> (u16, u8) {
    match height {
        14 => (layout::F_FONT_8X14, 14),
        16 => (layout::F_FONT_8X16, 16),
        _ => (layout::F_FONT_8X8, 8),
    }
}

fn fonts(c: &mut Call) {
    let al = c.r.al();
    match al {
        0x00 | 0x10 => {
            let h = c.r.bh();
            let a = c.addr(SegReg::Es, c.r.bp());
            let data = read_vec(c.p, a, usize::from(c.r.cx()) * usize::from(h));
            regs::load_font(c.p, &data, h, c.r.dx(), c.r.cx(), c.r.bl());
            if al == 0x10 {
                recalc_rows(c.p, h);
            }
        }
        0x01 | 0x02 | 0x04 | 0x11 | 0x12 | 0x14 => {
            let h = match al & 0x0F {
                1 => 14,
                2 => 8,
                _ => 16,
            };
            let (off, h) = rom_font(h);
            let start = layout::F_SEG_IMAGE + usize::from(off);
            let glyphs = crate::rom()
                .get(start..start + 256 * usize::from(h))
                .unwrap_or(&[]);
            regs::load_font(c.p, glyphs, h, 0, 256, c.r.bl());
            if al & 0x10 != 0 {
                recalc_rows(c.p, h);
            }
        }
        0x03 => regs::seq_write(c.p, 0x03, c.r.bl()),
        0x20 => {
            let es = c.sel(SegReg::Es);
            set_vector(c.p, 0x1F, es, c.r.bp());
        }
        0x21..=0x24 => {
            let (seg, off) = match al {
                0x21 => (c.sel(SegReg::Es), c.r.bp()),
                0x22 => (0xF000, layout::F_FONT_8X14),
                0x23 => (0xF000, layout::F_FONT_8X8),
                _ => (0xF000, layout::F_FONT_8X16),
            };
            set_vector(c.p, 0x43, seg, off);
        }
        0x30 => font_info(c),
        _ => {}
    }
}

/// After loading a font of height `h` in a text mode: rows, cursor and CRTC follow it.
fn recalc_rows(p: &mut dyn Platform, h: u8) {
    let h = h.clamp(1, 32);
    let max_scan = regs::crtc_read(p, 0x09);
    regs::crtc_write(p, 0x09, (max_scan & 0xE0) | (h - 1));
    regs::crtc_write(p, 0x0A, h.saturating_sub(3));
    regs::crtc_write(p, 0x0B, h.saturating_sub(2));
    regs::crtc_write(p, 0x14, h - 1);
    let lines = 400u16;
    let rows = (lines / u16::from(h)).max(1);
    let cols = rd16(p, bda::VIDEO_COLS);
    wr8(p, bda::VIDEO_ROWS, (rows - 1) as u8);
    wr8(p, bda::CHAR_HEIGHT, h);
    wr16(
        p,
        bda::VIDEO_PAGE_SIZE,
        (rows * cols * 2).next_multiple_of(0x100),
    );
}

fn font_info(c: &mut Call) {
    let (seg, off) = match c.r.bh() {
        0 => (rd16(c.p, 0x1F * 4 + 2), rd16(c.p, 0x1F * 4)),
        1 => (rd16(c.p, 0x43 * 4 + 2), rd16(c.p, 0x43 * 4)),
        2 => (0xF000, layout::F_FONT_8X14),
        3 => (0xF000, layout::F_FONT_8X8),
        4 => (0xF000, layout::F_FONT_8X8 + 0x400),
        6 => (0xF000, layout::F_FONT_8X16),
        _ => (0xF000, crate::rom_layout::F_ZERO),
    };
    c.set_seg(SegReg::Es, seg);
    c.set16(r::BP, off);
    let h = rd8(c.p, bda::CHAR_HEIGHT);
    c.set_cx(u16::from(h));
    let rows = rd8(c.p, bda::VIDEO_ROWS);
    c.set8l(r::DX, rows);
}

fn alternate_select(c: &mut Call) {
    match c.r.bl() {
        0x10 => {
            let switches = rd8(c.p, bda::VIDEO_SWITCHES) & 0x0F;
            c.set_bx(0x0003);
            c.set_cx(u16::from(switches));
        }
        0x30..=0x36 => {
            if c.r.bl() == 0x34 {
                let v = rd8(c.p, bda::VIDEO_CTL);
                wr8(c.p, bda::VIDEO_CTL, (v & !1) | (c.r.al() & 1));
            }
            if c.r.bl() == 0x36 {
                let v = regs::seq_read(c.p, 0x01);
                let off = if c.r.al() & 1 != 0 { 0x20 } else { 0 };
                regs::seq_write(c.p, 0x01, (v & !0x20) | off);
            }
            c.set_al(0x12);
        }
        _ => {}
    }
}

fn write_string(st: &BiosState, c: &mut Call) {
    let flags = c.r.al();
    let page = c.r.bh();
    let mut attr = c.r.bl();
    let saved = cursor(c.p, page);
    set_cursor(c.p, page, u16::from(c.r.dh()), u16::from(c.r.dl()));
    let per = if flags & 2 != 0 { 2 } else { 1 };
    let a = c.addr(SegReg::Es, c.r.bp());
    let data = read_vec(c.p, a, usize::from(c.r.cx()) * per);
    for cell in data.chunks(per) {
        let ch = cell[0];
        if let Some(&at) = cell.get(1) {
            attr = at;
        }
        if matches!(ch, 7 | 8 | b'\r' | b'\n') {
            teletype(st, c.p, ch, page, attr);
            continue;
        }
        let s = Screen::current(c.p);
        let (row, col) = cursor(c.p, page);
        draw::put_char(c.p, &s, page, row, col, ch, Some(attr), attr);
        if st.serial_mirror {
            serial_out(c.p, ch);
        }
        // Advance like the teletype does, scrolling at the bottom.
        if col + 1 >= s.cols {
            set_cursor(c.p, page, row, s.cols - 1);
            teletype_newline(st, c.p, page);
        } else {
            set_cursor(c.p, page, row, col + 1);
        }
    }
    if flags & 1 == 0 {
        set_cursor(c.p, page, saved.0, saved.1);
    }
}

/// Moves to the start of the next line as the teletype would, without mirroring.
fn teletype_newline(st: &BiosState, p: &mut dyn Platform, page: u8) {
    let quiet = BiosState {
        serial_mirror: false,
        vbe_mode: st.vbe_mode,
        ..BiosState::default()
    };
    teletype(&quiet, p, b'\r', page, 0);
    teletype(&quiet, p, b'\n', page, 0);
}

/// INT 10h/1Bh: functionality and state information (64 bytes at ES:DI).
fn state_info(c: &mut Call) {
    let mut b = [0u8; 64];
    let bda_part = read_vec(c.p, bda::VIDEO_MODE, 0x1E);
    b[4..4 + 0x1E].copy_from_slice(&bda_part);
    b[0x22] = rd8(c.p, bda::VIDEO_ROWS) + 1;
    let h = rd16(c.p, bda::CHAR_HEIGHT);
    b[0x23..0x25].copy_from_slice(&h.to_le_bytes());
    b[0x25] = rd8(c.p, bda::VIDEO_DCC);
    let mode = rd8(c.p, bda::VIDEO_MODE);
    let colors: u16 = match modes::find(mode).map(|m| m.kind) {
        Some(Kind::Linear8) => 256,
        Some(Kind::Cga4) => 4,
        Some(Kind::Cga2) => 2,
        _ => 16,
    };
    b[0x27..0x29].copy_from_slice(&colors.to_le_bytes());
    b[0x29] = 8;
    b[0x2A] = 2;
    let a = c.addr(SegReg::Es, c.r.di());
    c.p.write_mem(a, &b);
    c.set_al(0x1B);
}
