//! The standard VGA modes as register values (IBM VGA technical reference values, the ones
//! every VGA BIOS programs) plus what the BIOS keeps about each.

/// How a mode lays out video memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Character/attribute pairs at B8000.
    Text,
    /// CGA 320x200, 2 bits per pixel, interleaved banks at B8000.
    Cga4,
    /// CGA 640x200, 1 bit per pixel, interleaved banks at B8000.
    Cga2,
    /// EGA/VGA planar 16 colours at A0000.
    Planar,
    /// Mode 13h: one byte per pixel at A0000.
    Linear8,
}

/// Which DAC palette a mode loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dac {
    /// 64 EGA colours (rgbRGB).
    Ega,
    /// 200-line modes: CGA colours indexed by IRGB (bit 4 = intensity).
    Cga,
    /// The 256-colour default of mode 13h.
    Vga256,
}

pub struct VgaMode {
    pub mode: u8,
    pub kind: Kind,
    /// Text columns and rows (for graphics modes: character cells).
    pub cols: u16,
    pub rows: u8,
    /// Pixels across (text modes: the dot resolution).
    pub width: u16,
    pub char_height: u8,
    /// Bytes per display page in the BIOS's bookkeeping.
    pub page_size: u16,
    /// Value kept at 40:65 (CGA mode control).
    pub cga_msr: u8,
    pub dac: Dac,
    pub misc: u8,
    /// Sequencer registers 1..=4.
    pub seq: [u8; 4],
    pub crtc: [u8; 25],
    pub ac: [u8; 20],
    pub gc: [u8; 9],
}

const CRTC_TEXT40: [u8; 25] = [
    0x2D, 0x27, 0x28, 0x90, 0x2B, 0xA0, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x14, 0x1F, 0x96, 0xB9, 0xA3, 0xFF,
];
const CRTC_TEXT80: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF,
];
const CRTC_CGA4: [u8; 25] = [
    0x2D, 0x27, 0x28, 0x90, 0x2B, 0x80, 0xBF, 0x1F, 0x00, 0xC1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x14, 0x00, 0x96, 0xB9, 0xA2, 0xFF,
];
const CRTC_CGA2: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0xC1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x28, 0x00, 0x96, 0xB9, 0xC2, 0xFF,
];
const CRTC_0D: [u8; 25] = [
    0x2D, 0x27, 0x28, 0x90, 0x2B, 0x80, 0xBF, 0x1F, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x14, 0x00, 0x96, 0xB9, 0xE3, 0xFF,
];
const CRTC_0E: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x8E, 0x8F, 0x28, 0x00, 0x96, 0xB9, 0xE3, 0xFF,
];
const CRTC_10: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x83, 0x85, 0x5D, 0x28, 0x0F, 0x63, 0xBA, 0xE3, 0xFF,
];
const CRTC_480: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0x0B, 0x3E, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xEA, 0x8C, 0xDF, 0x28, 0x00, 0xE7, 0x04, 0xE3, 0xFF,
];
const CRTC_13: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x0E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF,
];

const AC_TEXT: [u8; 20] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
    0x0C, 0x00, 0x0F, 0x08,
];
const AC_CGA4: [u8; 20] = [
    0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x01, 0x00, 0x03, 0x00,
];
const AC_CGA2: [u8; 20] = [
    0x00, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
    0x01, 0x00, 0x01, 0x00,
];
const AC_EGA200: [u8; 20] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x01, 0x00, 0x0F, 0x00,
];
const AC_EGA: [u8; 20] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
    0x01, 0x00, 0x0F, 0x00,
];
/// Mode 11h: only bit 0 of a pixel picks black or white.
const AC_MONO_GFX: [u8; 20] = [
    0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F, 0x00, 0x3F,
    0x01, 0x00, 0x0F, 0x00,
];
const AC_13: [u8; 20] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
    0x41, 0x00, 0x0F, 0x00,
];

const GC_TEXT: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF];
const GC_CGA4: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0F, 0x00, 0xFF];
const GC_CGA2: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0D, 0x00, 0xFF];
const GC_PLANAR: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0F, 0xFF];
const GC_13: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF];

#[allow(clippy::too_many_arguments)]
const fn text(mode: u8, cols: u16, seq1: u8, crtc: [u8; 25], msr: u8) -> VgaMode {
    VgaMode {
        mode,
        kind: Kind::Text,
        cols,
        rows: 25,
        width: if cols == 40 { 360 } else { 720 },
        char_height: 16,
        page_size: if cols == 40 { 0x800 } else { 0x1000 },
        cga_msr: msr,
        dac: Dac::Ega,
        misc: 0x67,
        seq: [seq1, 0x03, 0x00, 0x02],
        crtc,
        ac: AC_TEXT,
        gc: GC_TEXT,
    }
}

/// Every VGA mode the BIOS sets.
pub static MODES: [VgaMode; 13] = [
    text(0x00, 40, 0x08, CRTC_TEXT40, 0x2C),
    text(0x01, 40, 0x08, CRTC_TEXT40, 0x28),
    text(0x02, 80, 0x00, CRTC_TEXT80, 0x2D),
    text(0x03, 80, 0x00, CRTC_TEXT80, 0x29),
    cga(0x04, Kind::Cga4, 0x2A),
    cga(0x05, Kind::Cga4, 0x2E),
    cga(0x06, Kind::Cga2, 0x1E),
    VgaMode {
        mode: 0x0D,
        kind: Kind::Planar,
        cols: 40,
        rows: 25,
        width: 320,
        char_height: 8,
        page_size: 0x2000,
        cga_msr: 0x29,
        dac: Dac::Cga,
        misc: 0x63,
        seq: [0x09, 0x0F, 0x00, 0x06],
        crtc: CRTC_0D,
        ac: AC_EGA200,
        gc: GC_PLANAR,
    },
    planar(0x0E, 200, 8, 0x63, CRTC_0E, AC_EGA200, Dac::Cga),
    planar(0x10, 350, 14, 0xA3, CRTC_10, AC_EGA, Dac::Ega),
    planar(0x11, 480, 16, 0xE3, CRTC_480, AC_MONO_GFX, Dac::Ega),
    planar(0x12, 480, 16, 0xE3, CRTC_480, AC_EGA, Dac::Ega),
    VgaMode {
        mode: 0x13,
        kind: Kind::Linear8,
        cols: 40,
        rows: 25,
        width: 320,
        char_height: 8,
        page_size: 0,
        cga_msr: 0x29,
        dac: Dac::Vga256,
        misc: 0x63,
        seq: [0x01, 0x0F, 0x00, 0x0E],
        crtc: CRTC_13,
        ac: AC_13,
        gc: GC_13,
    },
];

const fn cga(mode: u8, kind: Kind, msr: u8) -> VgaMode {
    let two = matches!(kind, Kind::Cga2);
    VgaMode {
        mode,
        kind,
        cols: if two { 80 } else { 40 },
        rows: 25,
        width: if two { 640 } else { 320 },
        char_height: 8,
        page_size: 0x4000,
        cga_msr: msr,
        dac: Dac::Cga,
        misc: 0x63,
        seq: if two {
            [0x01, 0x01, 0x00, 0x06]
        } else {
            [0x09, 0x03, 0x00, 0x02]
        },
        crtc: if two { CRTC_CGA2 } else { CRTC_CGA4 },
        ac: if two { AC_CGA2 } else { AC_CGA4 },
        gc: if two { GC_CGA2 } else { GC_CGA4 },
    }
}

const fn planar(
    mode: u8,
    height: u16,
    char_height: u8,
    misc: u8,
    crtc: [u8; 25],
    ac: [u8; 20],
    dac: Dac,
) -> VgaMode {
    VgaMode {
        mode,
        kind: Kind::Planar,
        cols: 80,
        rows: (height / char_height as u16) as u8,
        width: 640,
        char_height,
        page_size: match height {
            200 => 0x4000,
            350 => 0x8000,
            _ => 0xA000,
        },
        cga_msr: 0x29,
        dac,
        misc,
        seq: [0x01, 0x0F, 0x00, 0x06],
        crtc,
        ac,
        gc: GC_PLANAR,
    }
}

/// The mode numbered `mode` (bit 7 ignored).
#[must_use]
pub fn find(mode: u8) -> Option<&'static VgaMode> {
    MODES.iter().find(|m| m.mode == mode & 0x7F)
}

/// One DAC entry (6-bit components) of palette `dac`.
#[must_use]
pub fn dac_entry(dac: Dac, i: usize) -> [u8; 3] {
    let bit = |n: usize| u8::from(i & (1 << n) != 0);
    match dac {
        Dac::Ega => [
            42 * bit(2) + 21 * bit(5),
            42 * bit(1) + 21 * bit(4),
            42 * bit(0) + 21 * bit(3),
        ],
        Dac::Cga => {
            let intensity = 21 * bit(4);
            // Colour 6 is brown, not dark yellow, as on a CGA monitor.
            let green = if i & 0x17 == 0x06 {
                21
            } else {
                42 * bit(1) + intensity
            };
            [42 * bit(2) + intensity, green, 42 * bit(0) + intensity]
        }
        Dac::Vga256 => vga256(i),
    }
}

/// The mode 13h default palette: 16 CGA colours, 16 greys, then 9 rings of 24 hues (three
/// saturations at three intensities), and black.
fn vga256(i: usize) -> [u8; 3] {
    const GREYS: [u8; 16] = [0, 5, 8, 11, 14, 17, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63];
    const RINGS: [[u8; 5]; 9] = [
        [0, 16, 31, 47, 63],
        [31, 39, 47, 55, 63],
        [45, 49, 54, 58, 63],
        [0, 7, 14, 21, 28],
        [14, 17, 21, 24, 28],
        [20, 22, 24, 26, 28],
        [0, 4, 8, 12, 16],
        [8, 10, 12, 14, 16],
        [11, 12, 13, 15, 16],
    ];
    match i {
        0..=15 => dac_entry(Dac::Cga, (i & 7) | ((i & 8) << 1)),
        16..=31 => {
            let g = GREYS[i - 16];
            [g, g, g]
        }
        32..=247 => {
            let ring = RINGS[(i - 32) / 24];
            let step = (i - 32) % 24;
            // The hue walks blue → magenta → red → yellow → green → cyan → blue: one
            // component ramps while the others hold at the ring's low or high level.
            let (lo, hi) = (ring[0], ring[4]);
            let up = |k: usize| ring[k];
            let down = |k: usize| ring[4 - k];
            match step {
                0..=3 => [up(step), lo, hi],
                4..=7 => [hi, lo, down(step - 4)],
                8..=11 => [hi, up(step - 8), lo],
                12..=15 => [down(step - 12), hi, lo],
                16..=19 => [lo, hi, up(step - 16)],
                _ => [lo, down(step - 20), hi],
            }
        }
        _ => [0, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes_have_known_colours() {
        assert_eq!(dac_entry(Dac::Ega, 0x14), [42, 21, 0], "text brown");
        assert_eq!(dac_entry(Dac::Ega, 0x3F), [63, 63, 63]);
        assert_eq!(dac_entry(Dac::Cga, 0x16), [63, 63, 21], "yellow");
        assert_eq!(dac_entry(Dac::Cga, 0x06), [42, 21, 0], "brown");
        assert_eq!(vga256(32), [0, 0, 63], "blue starts the hue ring");
        assert_eq!(vga256(40), [63, 0, 0], "red");
        assert_eq!(vga256(48), [0, 63, 0], "green");
        assert_eq!(vga256(31), [63, 63, 63]);
        assert_eq!(vga256(14), [63, 63, 21]);
        assert_eq!(vga256(255), [0, 0, 0]);
    }

    /// The VGA model's own tables (from the same IBM reference) agree with ours.
    #[test]
    fn tables_match_the_vga_model() {
        use nestor_vga::modes::{standard_mode, DacPalette};
        for m in &MODES {
            let theirs = standard_mode(m.mode).unwrap_or_else(|| panic!("mode {:#x}", m.mode));
            let r = &theirs.regs;
            assert_eq!(m.misc, r.misc, "mode {:#x} misc", m.mode);
            assert_eq!(&m.seq[..], &r.seq[1..], "mode {:#x} sequencer", m.mode);
            assert_eq!(m.crtc, r.crtc, "mode {:#x} CRTC", m.mode);
            assert_eq!(m.gc, r.gc, "mode {:#x} GC", m.mode);
            assert_eq!(m.ac, r.attr, "mode {:#x} attribute controller", m.mode);
            let dac = match m.dac {
                Dac::Ega => DacPalette::Ega,
                Dac::Cga => DacPalette::Cga,
                Dac::Vga256 => DacPalette::Vga256,
            };
            assert_eq!(dac, theirs.palette, "mode {:#x} palette", m.mode);
            for (i, rgb) in dac.colors().iter().enumerate() {
                assert_eq!(
                    dac_entry(m.dac, i),
                    *rgb,
                    "mode {:#x} DAC entry {i}",
                    m.mode
                );
            }
        }
    }

    #[test]
    fn modes_are_consistent() {
        for m in &MODES {
            assert_eq!(find(m.mode).map(|f| f.mode), Some(m.mode));
            assert!(m.width > 0 && m.char_height > 0);
        }
        assert!(find(0x07).is_none());
        assert_eq!(find(0x83).map(|m| m.cols), Some(80));
    }
}
