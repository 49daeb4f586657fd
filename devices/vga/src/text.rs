//! Text modes: characters in plane 0, attributes in plane 1, fonts in plane 2; the drawn
//! picture and the screen as text.

use crate::render::{wanted, Blink, Frame, Lines};
use crate::Vga;

/// Plane 2 offsets of the eight font blocks a character map select value names.
const FONT_BLOCKS: [u32; 8] = [
    0x0000, 0x4000, 0x8000, 0xc000, 0x2000, 0x6000, 0xa000, 0xe000,
];

/// Code page 437 from 0x80 to 0xFF.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»\
░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀\
αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// Code page 437 from 0x01 to 0x1F (0x00 shows as a space).
const CP437_LOW: &str = "☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼";

/// The character a code page 437 byte shows as.
#[must_use]
pub fn cp437_to_char(b: u8) -> char {
    match b {
        0 => ' ',
        0x01..=0x1f => CP437_LOW.chars().nth(usize::from(b) - 1).unwrap_or(' '),
        0x7f => '⌂',
        0x20..=0x7e => char::from(b),
        _ => CP437_HIGH.chars().nth(usize::from(b) - 0x80).unwrap_or(' '),
    }
}

/// Geometry of the text screen.
struct TextLayout {
    cols: u32,
    rows: u32,
    char_height: u32,
    /// 8 or 9 dots per character.
    dots: u32,
}

impl Vga {
    fn text_layout(&self) -> TextLayout {
        let char_height = self.row_height();
        TextLayout {
            cols: self.columns(),
            rows: self.scanlines() / char_height,
            char_height,
            dots: if self.state.seq[1] & 1 != 0 { 8 } else { 9 },
        }
    }

    /// Whether the adapter shows a text mode (and not VBE).
    #[must_use]
    pub fn is_text_mode(&self) -> bool {
        !self.state.vbe.enabled() && self.state.attr[0x10] & 1 == 0
    }

    /// The character and attribute of a cell, with the address counter it was fetched at.
    pub(crate) fn cell(&self, row: u32, col: u32) -> (u8, u8, u32) {
        let counter = self
            .start_address()
            .wrapping_add(row.wrapping_mul(self.line_offset()))
            .wrapping_add(col);
        let addr = self.crtc_address(counter, 0);
        (
            self.plane_byte(addr, 0),
            self.plane_byte(addr, 1),
            counter & 0xffff,
        )
    }

    /// The text on screen, one line per row with trailing spaces removed, characters mapped
    /// from code page 437; `None` outside text modes.
    #[must_use]
    pub fn text_screen(&self) -> Option<String> {
        if !self.is_text_mode() {
            return None;
        }
        let layout = self.text_layout();
        let mut out = String::new();
        for row in 0..layout.rows {
            let line: String = (0..layout.cols)
                .map(|col| cp437_to_char(self.cell(row, col).0))
                .collect();
            out.push_str(line.trim_end_matches(' '));
            out.push('\n');
        }
        Some(out)
    }

    /// The text cursor as (column, row) when it is enabled and on screen.
    #[must_use]
    pub fn cursor_position(&self) -> Option<(u32, u32)> {
        let c = &self.state.crtc;
        if !self.is_text_mode() || c[0x0a] & 0x20 != 0 {
            return None;
        }
        let location = u32::from(c[0x0e]) << 8 | u32::from(c[0x0f]);
        let rel = location.wrapping_sub(self.start_address()) & 0xffff;
        let offset = self.line_offset().max(1);
        let (row, col) = (rel / offset, rel % offset);
        let layout = self.text_layout();
        (row < layout.rows && col < layout.cols).then_some((col, row))
    }

    /// Plane 2 offsets of the fonts for attribute bit 3 clear and set.
    pub(crate) fn font_bases(&self) -> [u32; 2] {
        let sel = self.state.seq[3];
        let map_a = (sel >> 3 & 4) | (sel >> 2 & 3);
        let map_b = (sel >> 2 & 4) | (sel & 3);
        [
            FONT_BLOCKS[usize::from(map_b)],
            FONT_BLOCKS[usize::from(map_a)],
        ]
    }

    /// Width and height of the text picture.
    pub(crate) fn text_size(&self) -> (u32, u32) {
        let layout = self.text_layout();
        (layout.cols * layout.dots, layout.rows * layout.char_height)
    }

    pub(crate) fn draw_text(&self, frame: &mut Frame, blink: Blink, lines: Lines) {
        let layout = self.text_layout();
        let colors = self.attr_colors();
        let mode = self.state.attr[0x10];
        let c = &self.state.crtc;
        let cursor = (blink.cursor && c[0x0a] & 0x20 == 0)
            .then(|| u32::from(c[0x0e]) << 8 | u32::from(c[0x0f]));
        let cursor_lines = u32::from(c[0x0a] & 0x1f)..=u32::from(c[0x0b] & 0x1f);
        let fonts = self.font_bases();
        for row in 0..layout.rows {
            if !wanted(lines, row * layout.char_height) {
                continue;
            }
            for col in 0..layout.cols {
                let (ch, at, counter) = self.cell(row, col);
                let mut fg = at & 0x0f;
                let mut bg = at >> 4;
                if mode & 0x08 != 0 {
                    bg &= 7;
                    if at & 0x80 != 0 && !blink.chars {
                        fg = bg;
                    }
                }
                let font = fonts[usize::from(at >> 3 & 1)] + u32::from(ch) * 32;
                let line_graphics = mode & 0x04 != 0 && (0xc0..=0xdf).contains(&ch);
                let has_cursor = cursor == Some(counter);
                for line in 0..layout.char_height {
                    let glyph = self.plane_byte(font + line, 2);
                    let solid = has_cursor && cursor_lines.contains(&line);
                    let y = row * layout.char_height + line;
                    for dot in 0..layout.dots {
                        let on = match dot {
                            0..=7 => glyph & (0x80 >> dot) != 0,
                            _ => line_graphics && glyph & 1 != 0,
                        };
                        let color = if on || solid { fg } else { bg };
                        frame.put(col * layout.dots + dot, y, colors[usize::from(color)]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_page_437_maps_the_common_characters() {
        assert_eq!(CP437_HIGH.chars().count(), 128);
        assert_eq!(CP437_LOW.chars().count(), 31);
        assert_eq!(cp437_to_char(b'A'), 'A');
        assert_eq!(cp437_to_char(0x01), '☺');
        assert_eq!(cp437_to_char(0x82), 'é');
        assert_eq!(cp437_to_char(0xb3), '│');
        assert_eq!(cp437_to_char(0xc4), '─');
        assert_eq!(cp437_to_char(0xdb), '█');
        assert_eq!(cp437_to_char(0xe1), 'ß');
        assert_eq!(cp437_to_char(0xfe), '■');
    }
}
