//! Programming the VGA through its ports: a mode's register set, the DAC, fonts in plane 2.

use super::modes::{Kind, VgaMode};
use crate::io::{inb, outb};
use crate::Platform;

pub const AC_INDEX: u16 = 0x3C0;
pub const AC_READ: u16 = 0x3C1;
pub const MISC_WRITE: u16 = 0x3C2;
pub const SEQ_INDEX: u16 = 0x3C4;
pub const DAC_MASK: u16 = 0x3C6;
pub const DAC_READ_INDEX: u16 = 0x3C7;
pub const DAC_WRITE_INDEX: u16 = 0x3C8;
pub const DAC_DATA: u16 = 0x3C9;
pub const GC_INDEX: u16 = 0x3CE;
pub const CRTC_INDEX: u16 = 0x3D4;
pub const STATUS1: u16 = 0x3DA;

pub fn seq_write(p: &mut dyn Platform, i: u8, v: u8) {
    outb(p, SEQ_INDEX, i);
    outb(p, SEQ_INDEX + 1, v);
}
pub fn seq_read(p: &mut dyn Platform, i: u8) -> u8 {
    outb(p, SEQ_INDEX, i);
    inb(p, SEQ_INDEX + 1)
}
pub fn gc_write(p: &mut dyn Platform, i: u8, v: u8) {
    outb(p, GC_INDEX, i);
    outb(p, GC_INDEX + 1, v);
}
pub fn crtc_write(p: &mut dyn Platform, i: u8, v: u8) {
    outb(p, CRTC_INDEX, i);
    outb(p, CRTC_INDEX + 1, v);
}
pub fn crtc_read(p: &mut dyn Platform, i: u8) -> u8 {
    outb(p, CRTC_INDEX, i);
    inb(p, CRTC_INDEX + 1)
}

/// Writes attribute controller register `i`, leaving the display enabled (PAS set).
pub fn ac_write(p: &mut dyn Platform, i: u8, v: u8) {
    inb(p, STATUS1);
    outb(p, AC_INDEX, i & 0x1F);
    outb(p, AC_INDEX, v);
    outb(p, AC_INDEX, 0x20);
}

pub fn ac_read(p: &mut dyn Platform, i: u8) -> u8 {
    inb(p, STATUS1);
    outb(p, AC_INDEX, i & 0x1F);
    let v = inb(p, AC_READ);
    inb(p, STATUS1);
    outb(p, AC_INDEX, 0x20);
    v
}

pub fn dac_write(p: &mut dyn Platform, index: u8, rgb: [u8; 3]) {
    outb(p, DAC_WRITE_INDEX, index);
    for c in rgb {
        outb(p, DAC_DATA, c & 0x3F);
    }
}

pub fn dac_read(p: &mut dyn Platform, index: u8) -> [u8; 3] {
    outb(p, DAC_READ_INDEX, index);
    [inb(p, DAC_DATA), inb(p, DAC_DATA), inb(p, DAC_DATA)]
}

/// Programs every register of `m` and loads its palette.
pub fn program(p: &mut dyn Platform, m: &VgaMode) {
    let r = m.regs();
    // Screen off and the sequencer in reset while the clocks change.
    seq_write(p, 0x00, 0x01);
    seq_write(p, 0x01, r.seq[1] | 0x20);
    outb(p, MISC_WRITE, r.misc);
    for (i, v) in r.seq.iter().enumerate().skip(2) {
        seq_write(p, i as u8, *v);
    }
    seq_write(p, 0x00, 0x03);
    // CRTC registers 0..=7 are write-protected until bit 7 of register 0x11 is cleared.
    crtc_write(p, 0x11, r.crtc[0x11] & 0x7F);
    for (i, v) in r.crtc.iter().enumerate() {
        crtc_write(p, i as u8, *v);
    }
    for (i, v) in r.gc.iter().enumerate() {
        gc_write(p, i as u8, *v);
    }
    inb(p, STATUS1);
    for (i, v) in r.attr.iter().enumerate() {
        outb(p, AC_INDEX, i as u8);
        outb(p, AC_INDEX, *v);
    }
    outb(p, AC_INDEX, 0x14);
    outb(p, AC_INDEX, 0x00);
    outb(p, AC_INDEX, 0x20);
    outb(p, DAC_MASK, 0xFF);
    let entries = if m.kind == Kind::Linear8 { 256 } else { 64 };
    let colors = m.palette().colors();
    for i in 0..256usize {
        let rgb = match colors.get(i) {
            Some(rgb) if i < entries => *rgb,
            _ => [0, 0, 0],
        };
        dac_write(p, i as u8, rgb);
    }
    seq_write(p, 0x01, r.seq[1]);
}

/// Runs `f` with plane 2 (the font plane) mapped flat at A0000, then restores text-mode
/// addressing (odd/even at B8000).
pub fn with_font_plane(p: &mut dyn Platform, f: impl FnOnce(&mut dyn Platform)) {
    seq_write(p, 0x02, 0x04);
    seq_write(p, 0x04, 0x07);
    gc_write(p, 0x04, 0x02);
    gc_write(p, 0x05, 0x00);
    gc_write(p, 0x06, 0x04);
    f(p);
    seq_write(p, 0x02, 0x03);
    seq_write(p, 0x04, 0x02);
    gc_write(p, 0x04, 0x00);
    gc_write(p, 0x05, 0x10);
    gc_write(p, 0x06, 0x0E);
}

/// Offset in plane 2 of character map `block` (0..=7).
#[must_use]
pub fn font_block_offset(block: u8) -> u64 {
    let b = u64::from(block & 7);
    ((b & 3) << 14) | ((b >> 2) << 13)
}

/// Loads `count` glyphs of `height` bytes from `glyphs`, starting at character `first`,
/// into character map `block`.
pub fn load_font(
    p: &mut dyn Platform,
    glyphs: &[u8],
    height: u8,
    first: u16,
    count: u16,
    block: u8,
) {
    let h = usize::from(height.clamp(1, 32));
    with_font_plane(p, |p| {
        let base = 0xA_0000 + font_block_offset(block);
        for i in 0..usize::from(count) {
            let ch = usize::from(first) + i;
            if ch > 0xFF {
                break;
            }
            let mut cell = [0u8; 32];
            if let Some(src) = glyphs.get(i * h..(i + 1) * h) {
                cell[..h].copy_from_slice(src);
            }
            p.write_mem(base + ch as u64 * 32, &cell);
        }
    });
}
