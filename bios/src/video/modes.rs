//! The VGA modes the BIOS sets and what it keeps about each (BDA geometry, page size, CGA
//! mode byte); their register values are the VGA model's.

use nestor_vga::modes::{standard_mode, DacPalette, ModeRegisters, STANDARD_MODES};

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

/// What the BIOS keeps about a mode; the register values and palette come from the VGA
/// model's tables ([`nestor_vga::modes`]), the one copy of IBM's reference values.
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
}

impl VgaMode {
    /// The mode's register values. Every mode in [`MODES`] is a standard mode (a unit test
    /// checks it), so the fallback to mode 3's registers is never taken.
    #[must_use]
    pub fn regs(&self) -> &'static ModeRegisters {
        standard_mode(self.mode).map_or(&STANDARD_MODES[3].regs, |m| &m.regs)
    }

    /// The DAC palette the mode loads.
    #[must_use]
    pub fn palette(&self) -> DacPalette {
        standard_mode(self.mode).map_or(DacPalette::Ega, |m| m.palette)
    }
}

const fn text(mode: u8, cols: u16, msr: u8) -> VgaMode {
    VgaMode {
        mode,
        kind: Kind::Text,
        cols,
        rows: 25,
        width: if cols == 40 { 360 } else { 720 },
        char_height: 16,
        page_size: if cols == 40 { 0x800 } else { 0x1000 },
        cga_msr: msr,
    }
}

/// Every VGA mode the BIOS sets.
pub static MODES: [VgaMode; 13] = [
    text(0x00, 40, 0x2C),
    text(0x01, 40, 0x28),
    text(0x02, 80, 0x2D),
    text(0x03, 80, 0x29),
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
    },
    planar(0x0E, 200, 8),
    planar(0x10, 350, 14),
    planar(0x11, 480, 16),
    planar(0x12, 480, 16),
    VgaMode {
        mode: 0x13,
        kind: Kind::Linear8,
        cols: 40,
        rows: 25,
        width: 320,
        char_height: 8,
        page_size: 0,
        cga_msr: 0x29,
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
    }
}

const fn planar(mode: u8, height: u16, char_height: u8) -> VgaMode {
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
    }
}

/// The mode numbered `mode` (bit 7 ignored).
#[must_use]
pub fn find(mode: u8) -> Option<&'static VgaMode> {
    MODES.iter().find(|m| m.mode == mode & 0x7F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bios_mode_is_a_standard_mode() {
        for m in &MODES {
            let theirs = standard_mode(m.mode).unwrap_or_else(|| panic!("mode {:#x}", m.mode));
            assert_eq!(m.regs(), &theirs.regs, "mode {:#x}", m.mode);
            assert_eq!(m.kind == Kind::Text, theirs.text, "mode {:#x}", m.mode);
            assert_eq!(m.char_height, theirs.char_height, "mode {:#x}", m.mode);
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
        assert_eq!(find(0x13).map(VgaMode::palette), Some(DacPalette::Vga256));
    }
}
