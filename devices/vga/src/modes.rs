//! The standard VGA modes as register values (IBM's VGA BIOS parameter tables) and the default
//! DAC palettes, as data a BIOS can program: see [`standard_mode_registers`] and
//! [`ModeRegisters::port_writes`].

/// Register values of one standard mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeRegisters {
    /// Miscellaneous output (0x3C2).
    pub misc: u8,
    /// Sequencer registers 0-4.
    pub seq: [u8; 5],
    /// CRTC registers 0x00-0x18.
    pub crtc: [u8; 25],
    /// Graphics controller registers 0-8.
    pub gc: [u8; 9],
    /// Attribute controller registers 0x00-0x13 (palette, mode control, overscan, colour
    /// plane enable, horizontal pel panning); colour select (0x14) is 0.
    pub attr: [u8; 20],
}

/// Which DAC palette a mode expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DacPalette {
    /// The 64 EGA colours in DAC entries 0-63 (400/350/480-line modes): [`ega_palette`].
    Ega,
    /// The CGA colours, bit 4 as intensity, in entries 0-63 (200-line modes): [`cga_palette`].
    Cga,
    /// The VGA BIOS's 256-colour palette (mode 13h): [`vga_palette`].
    Vga256,
    /// Grey levels for the monochrome modes: [`mono_palette`].
    Mono,
}

impl DacPalette {
    /// The DAC entries to load from index 0 (6-bit components).
    #[must_use]
    pub fn colors(self) -> Vec<[u8; 3]> {
        match self {
            DacPalette::Ega => ega_palette().to_vec(),
            DacPalette::Cga => cga_palette().to_vec(),
            DacPalette::Vga256 => vga_palette().to_vec(),
            DacPalette::Mono => mono_palette().to_vec(),
        }
    }
}

/// A standard mode: its registers and what the BIOS records about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandardMode {
    pub number: u8,
    /// Text (true) or graphics.
    pub text: bool,
    /// Columns and rows for text modes, pixels for graphics modes.
    pub width: u16,
    pub height: u16,
    /// Character cell height in scan lines (the font loaded for text modes).
    pub char_height: u8,
    /// Colours on screen (2, 4, 16 or 256).
    pub colors: u16,
    /// Physical address of the CPU window (0xA0000, 0xB0000 or 0xB8000).
    pub window: u32,
    pub palette: DacPalette,
    pub regs: ModeRegisters,
}

const PAL_TEXT: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
];
const PAL_LOW16: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
];
const PAL_IDENTITY: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];
const PAL_CGA4: [u8; 16] = [
    0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
];
const PAL_CGA2: [u8; 16] = [
    0x00, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
];
const PAL_MONO_TEXT: [u8; 16] = [
    0x00, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x10, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18,
];
const PAL_MONO2: [u8; 16] = [
    0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f, 0x00, 0x3f,
];

const fn attr(pal: [u8; 16], mode: u8, plane_enable: u8, panning: u8) -> [u8; 20] {
    let mut a = [0u8; 20];
    let mut i = 0;
    while i < 16 {
        a[i] = pal[i];
        i += 1;
    }
    a[16] = mode;
    a[18] = plane_enable;
    a[19] = panning;
    a
}

const CRTC_40_TEXT: [u8; 25] = [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0xa0, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x14, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
const CRTC_80_TEXT: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
const CRTC_MONO_TEXT: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x0f, 0x96, 0xb9, 0xa3, 0xff,
];
const CRTC_CGA320: [u8; 25] = [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff,
];
const CRTC_CGA640: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96, 0xb9, 0xc2, 0xff,
];
const CRTC_EGA320: [u8; 25] = [
    0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x14, 0x00, 0x96, 0xb9, 0xe3, 0xff,
];
const CRTC_EGA640: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96, 0xb9, 0xe3, 0xff,
];
const CRTC_350: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x83, 0x85, 0x5d, 0x28, 0x0f, 0x63, 0xba, 0xe3, 0xff,
];
const CRTC_480: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff,
];
const CRTC_13H: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9c, 0x0e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff,
];

const GC_TEXT: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff];
const GC_MONO_TEXT: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x00, 0xff];
const GC_CGA4: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x00, 0xff];
const GC_CGA2: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0xff];
const GC_PLANAR: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff];
const GC_13H: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff];

const fn mode(
    number: u8,
    geometry: (bool, u16, u16, u8, u16),
    window: u32,
    palette: DacPalette,
    regs: ModeRegisters,
) -> StandardMode {
    let (text, width, height, char_height, colors) = geometry;
    StandardMode {
        number,
        text,
        width,
        height,
        char_height,
        colors,
        window,
        palette,
        regs,
    }
}

const fn text40(number: u8) -> StandardMode {
    mode(
        number,
        (true, 40, 25, 16, 16),
        0xb8000,
        DacPalette::Ega,
        ModeRegisters {
            misc: 0x67,
            seq: [0x03, 0x08, 0x03, 0x00, 0x02],
            crtc: CRTC_40_TEXT,
            gc: GC_TEXT,
            attr: attr(PAL_TEXT, 0x0c, 0x0f, 0x08),
        },
    )
}

const fn text80(number: u8) -> StandardMode {
    mode(
        number,
        (true, 80, 25, 16, 16),
        0xb8000,
        DacPalette::Ega,
        ModeRegisters {
            misc: 0x67,
            seq: [0x03, 0x00, 0x03, 0x00, 0x02],
            crtc: CRTC_80_TEXT,
            gc: GC_TEXT,
            attr: attr(PAL_TEXT, 0x0c, 0x0f, 0x08),
        },
    )
}

const fn cga320(number: u8) -> StandardMode {
    mode(
        number,
        (false, 320, 200, 8, 4),
        0xb8000,
        DacPalette::Cga,
        ModeRegisters {
            misc: 0x63,
            seq: [0x03, 0x09, 0x03, 0x00, 0x02],
            crtc: CRTC_CGA320,
            gc: GC_CGA4,
            attr: attr(PAL_CGA4, 0x01, 0x03, 0x00),
        },
    )
}

const fn planar(
    number: u8,
    size: (u16, u16, u8),
    misc: u8,
    clocking: u8,
    crtc: [u8; 25],
) -> StandardMode {
    let (width, height, char_height) = size;
    let (pal, dac) = if height >= 350 {
        (PAL_TEXT, DacPalette::Ega)
    } else {
        (PAL_LOW16, DacPalette::Cga)
    };
    mode(
        number,
        (false, width, height, char_height, 16),
        0xa0000,
        dac,
        ModeRegisters {
            misc,
            seq: [0x03, clocking, 0x0f, 0x00, 0x06],
            crtc,
            gc: GC_PLANAR,
            attr: attr(pal, 0x01, 0x0f, 0x00),
        },
    )
}

/// The standard modes 0x00-0x07 and 0x0D-0x13 as the IBM VGA BIOS sets them (400-line text
/// with 9x16 characters; 40-column text halves the dot clock).
pub const STANDARD_MODES: [StandardMode; 14] = [
    text40(0x00),
    text40(0x01),
    text80(0x02),
    text80(0x03),
    cga320(0x04),
    cga320(0x05),
    mode(
        0x06,
        (false, 640, 200, 8, 2),
        0xb8000,
        DacPalette::Cga,
        ModeRegisters {
            misc: 0x63,
            seq: [0x03, 0x01, 0x01, 0x00, 0x06],
            crtc: CRTC_CGA640,
            gc: GC_CGA2,
            attr: attr(PAL_CGA2, 0x01, 0x01, 0x00),
        },
    ),
    mode(
        0x07,
        (true, 80, 25, 16, 2),
        0xb0000,
        DacPalette::Mono,
        ModeRegisters {
            misc: 0xa6,
            seq: [0x03, 0x00, 0x03, 0x00, 0x02],
            crtc: CRTC_MONO_TEXT,
            gc: GC_MONO_TEXT,
            attr: attr(PAL_MONO_TEXT, 0x0e, 0x0f, 0x08),
        },
    ),
    planar(0x0d, (320, 200, 8), 0x63, 0x09, CRTC_EGA320),
    planar(0x0e, (640, 200, 8), 0x63, 0x01, CRTC_EGA640),
    mode(
        0x0f,
        (false, 640, 350, 14, 2),
        0xa0000,
        DacPalette::Mono,
        ModeRegisters {
            misc: 0xa2,
            seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
            crtc: CRTC_350,
            gc: GC_PLANAR,
            attr: attr(PAL_MONO_TEXT, 0x0b, 0x05, 0x00),
        },
    ),
    planar(0x10, (640, 350, 14), 0xa3, 0x01, CRTC_350),
    mode(
        0x11,
        (false, 640, 480, 16, 2),
        0xa0000,
        DacPalette::Ega,
        ModeRegisters {
            misc: 0xe3,
            seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
            crtc: CRTC_480,
            gc: GC_PLANAR,
            attr: attr(PAL_MONO2, 0x01, 0x0f, 0x00),
        },
    ),
    planar(0x12, (640, 480, 16), 0xe3, 0x01, CRTC_480),
];

/// Mode 13h (320x200, 256 colours, chain-4).
pub const MODE_13H: StandardMode = mode(
    0x13,
    (false, 320, 200, 8, 256),
    0xa0000,
    DacPalette::Vga256,
    ModeRegisters {
        misc: 0x63,
        seq: [0x03, 0x01, 0x0f, 0x00, 0x0e],
        crtc: CRTC_13H,
        gc: GC_13H,
        attr: attr(PAL_IDENTITY, 0x41, 0x0f, 0x00),
    },
);

/// A standard VGA mode by number (0x00-0x07, 0x0D-0x13); bit 7 (keep memory) is ignored.
#[must_use]
pub fn standard_mode(number: u8) -> Option<&'static StandardMode> {
    let number = number & 0x7f;
    if number == 0x13 {
        return Some(&MODE_13H);
    }
    STANDARD_MODES.iter().find(|m| m.number == number)
}

/// The register values of a standard mode (see [`standard_mode`]).
#[must_use]
pub fn standard_mode_registers(number: u8) -> Option<&'static ModeRegisters> {
    standard_mode(number).map(|m| &m.regs)
}

impl ModeRegisters {
    /// CRTC index port for this mode (0x3D4 colour, 0x3B4 monochrome).
    #[must_use]
    pub fn crtc_port(&self) -> u16 {
        if self.misc & 1 != 0 {
            0x3d4
        } else {
            0x3b4
        }
    }

    /// The port writes that program the mode, in a safe order: sequencer held in reset while
    /// the clock changes, CRTC protection cleared first, attribute controller last and then
    /// the palette address source bit set so the screen shows. The caller reads input
    /// status 1 (0x3DA) before these, so that 0x3C0 starts at its index state.
    #[must_use]
    pub fn port_writes(&self) -> Vec<(u16, u8)> {
        let mut out = vec![(0x3c4, 0x00), (0x3c5, 0x01), (0x3c2, self.misc)];
        for (i, &v) in self.seq.iter().enumerate().skip(1) {
            out.extend([(0x3c4, i as u8), (0x3c5, v)]);
        }
        out.extend([(0x3c4, 0x00), (0x3c5, self.seq[0])]);
        let crtc = self.crtc_port();
        out.extend([(crtc, 0x11), (crtc + 1, 0x00)]);
        for (i, &v) in self.crtc.iter().enumerate() {
            out.extend([(crtc, i as u8), (crtc + 1, v)]);
        }
        for (i, &v) in self.gc.iter().enumerate() {
            out.extend([(0x3ce, i as u8), (0x3cf, v)]);
        }
        for (i, &v) in self.attr.iter().enumerate() {
            out.extend([(0x3c0, i as u8), (0x3c0, v)]);
        }
        out.extend([(0x3c0, 0x14), (0x3c0, 0x00), (0x3c0, 0x20)]);
        out
    }
}

/// The 64 EGA colours as 6-bit DAC values: index bits are rgbRGB (secondary low bits 3-5,
/// primary high bits 0-2), each primary bit worth 0x2A and each secondary bit 0x15.
#[must_use]
pub fn ega_palette() -> [[u8; 3]; 64] {
    let mut p = [[0u8; 3]; 64];
    for (i, entry) in p.iter_mut().enumerate() {
        let i = i as u8;
        let level = |primary: u8, secondary: u8| {
            0x2a * ((i >> primary) & 1) + 0x15 * ((i >> secondary) & 1)
        };
        *entry = [level(2, 5), level(1, 4), level(0, 3)];
    }
    p
}

/// The 16 CGA colours as 6-bit DAC values (brown has its green halved).
fn cga_colors() -> [[u8; 3]; 16] {
    let ega = ega_palette();
    let mut out = [[0u8; 3]; 16];
    for (i, entry) in out.iter_mut().enumerate() {
        // Dark colours at EGA 0-7 (brown at 0x14), bright ones at 0x38-0x3F.
        let e = match i {
            6 => 0x14,
            0..=7 => i,
            _ => 0x30 + i,
        };
        *entry = ega[e];
    }
    out
}

/// The 64-entry DAC palette of the 200-line modes: bits 0-2 pick the colour, bit 4 is
/// intensity (bits 3 and 5 are ignored), as a CGA monitor reads the attribute palette.
#[must_use]
pub fn cga_palette() -> [[u8; 3]; 64] {
    let cga = cga_colors();
    let mut p = [[0u8; 3]; 64];
    for (i, entry) in p.iter_mut().enumerate() {
        *entry = cga[(i & 7) | ((i >> 1) & 8)];
    }
    p
}

/// The VGA BIOS's default 256-colour palette (6-bit values): the 16 CGA colours, 16 greys,
/// then 9 blocks of 24 hues (three intensities, each at high, moderate and low saturation),
/// then 8 blacks.
#[must_use]
pub fn vga_palette() -> [[u8; 3]; 256] {
    let mut p = [[0u8; 3]; 256];
    p[..16].copy_from_slice(&cga_colors());
    const GREYS: [u8; 16] = [0, 5, 8, 11, 14, 17, 20, 24, 28, 32, 36, 40, 45, 50, 56, 63];
    for (i, &g) in GREYS.iter().enumerate() {
        p[16 + i] = [g; 3];
    }
    // Per intensity (max value), the five levels of a hue ramp for each saturation.
    const LEVELS: [[[u8; 5]; 3]; 3] = [
        [
            [0x00, 0x10, 0x1f, 0x2f, 0x3f],
            [0x1f, 0x27, 0x2f, 0x37, 0x3f],
            [0x2d, 0x31, 0x36, 0x3a, 0x3f],
        ],
        [
            [0x00, 0x07, 0x0e, 0x15, 0x1c],
            [0x0e, 0x11, 0x15, 0x18, 0x1c],
            [0x14, 0x16, 0x18, 0x1a, 0x1c],
        ],
        [
            [0x00, 0x04, 0x08, 0x0c, 0x10],
            [0x08, 0x0a, 0x0c, 0x0e, 0x10],
            [0x0b, 0x0c, 0x0d, 0x0f, 0x10],
        ],
    ];
    let mut n = 32;
    for intensity in &LEVELS {
        for l in intensity {
            for entry in hue_ramp(l) {
                p[n] = entry;
                n += 1;
            }
        }
    }
    p
}

/// 24 hues from blue through magenta, red, yellow, green and cyan back towards blue.
fn hue_ramp(l: &[u8; 5]) -> [[u8; 3]; 24] {
    let (lo, hi) = (l[0], l[4]);
    let mut out = [[0u8; 3]; 24];
    for k in 0..4 {
        let up = l[k];
        let down = l[4 - k];
        out[k] = [up, lo, hi]; // blue → magenta: red rises
        out[4 + k] = [hi, lo, down]; // magenta → red: blue falls
        out[8 + k] = [hi, up, lo]; // red → yellow: green rises
        out[12 + k] = [down, hi, lo]; // yellow → green: red falls
        out[16 + k] = [lo, hi, up]; // green → cyan: blue rises
        out[20 + k] = [lo, down, hi]; // cyan → blue: green falls
    }
    out
}

/// Grey levels for the monochrome modes: off, normal, bright in the attribute palette's
/// 0x00/0x08/0x10/0x18 positions.
#[must_use]
pub fn mono_palette() -> [[u8; 3]; 64] {
    let mut p = [[0u8; 3]; 64];
    for (i, entry) in p.iter_mut().enumerate() {
        let level = match (i >> 3) & 3 {
            0 => 0,
            1 => 0x2a,
            2 => 0x2a,
            _ => 0x3f,
        };
        *entry = [level; 3];
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes_have_the_well_known_colours() {
        let ega = ega_palette();
        assert_eq!(ega[0x14], [0x2a, 0x15, 0x00], "brown");
        assert_eq!(ega[0x3f], [0x3f, 0x3f, 0x3f]);
        let vga = vga_palette();
        assert_eq!(vga[1], [0, 0, 0x2a]);
        assert_eq!(vga[14], [0x3f, 0x3f, 0x15]);
        assert_eq!(vga[31], [0x3f; 3]);
        assert_eq!(vga[32], [0, 0, 0x3f]);
        assert_eq!(vga[36], [0x3f, 0, 0x3f]);
        assert_eq!(vga[40], [0x3f, 0, 0]);
        assert_eq!(vga[44], [0x3f, 0x3f, 0]);
        assert_eq!(vga[48], [0, 0x3f, 0]);
        assert_eq!(vga[52], [0, 0x3f, 0x3f]);
        assert_eq!(vga[55], [0, 0x10, 0x3f]);
        assert_eq!(vga[56], [0x1f, 0x1f, 0x3f]);
        assert_eq!(vga[247], [0x0b, 0x0c, 0x10]);
        let cga = cga_palette();
        assert_eq!(cga[0x13], [0x15, 0x3f, 0x3f]);
        assert_eq!(cga[0x06], [0x2a, 0x15, 0x00]);
        assert_eq!(vga[248], [0; 3]);
    }

    #[test]
    fn modes_are_found_by_number() {
        assert_eq!(standard_mode(0x83).map(|m| m.number), Some(3));
        assert_eq!(standard_mode_registers(0x13).map(|r| r.seq[4]), Some(0x0e));
        assert!(standard_mode(0x08).is_none());
        assert_eq!(standard_mode(7).unwrap().regs.crtc_port(), 0x3b4);
        for m in STANDARD_MODES.iter().chain([&MODE_13H]) {
            let writes = m.regs.port_writes();
            assert_eq!(writes.last(), Some(&(0x3c0, 0x20)), "mode {:#x}", m.number);
        }
    }
}
