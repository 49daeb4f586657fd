//! The ROM fonts (8x16, 8x14, 8x8, code page 437 order), built from Nestor's own glyph
//! designs in `font.txt` plus block, shade and box-drawing characters drawn by code.
//!
//! Each design is 7 columns by 12 rows: rows 0..=8 from cap height to the baseline, rows
//! 9..=11 the descenders. It is placed at rows 2..=13 of the 16-row cell and rows 1..=12 of
//! the 14-row cell; the 8-row cell folds pairs of rows together (see [`ROWS_8X8`]).

/// Rows of a design.
const DESIGN_ROWS: usize = 12;
/// Columns of a design.
const DESIGN_COLS: usize = 7;
/// For each row of the 8x8 cell, the design rows OR-ed into it: the cap height becomes 7
/// rows, the descenders 1.
const ROWS_8X8: [&[usize]; 8] = [&[0], &[1, 2], &[3], &[4], &[5, 6], &[7], &[8], &[9, 10]];

static DESIGNS: &str = include_str!("font.txt");

pub struct Fonts {
    pub f8x16: Vec<u8>,
    pub f8x14: Vec<u8>,
    pub f8x8: Vec<u8>,
}

/// A glyph as design rows (bit 7 = leftmost column).
type Design = [u8; DESIGN_ROWS];

/// Parses `font.txt`: a line `: XX` (hex character code) followed by up to 12 rows of up
/// to 7 cells, `#` for ink and `.` for paper; short rows and missing rows are paper. Lines
/// starting with `;` are comments.
fn parse(text: &str) -> Result<Vec<(u8, Design)>, String> {
    let mut glyphs: Vec<(u8, Design, usize)> = Vec::new();
    for (n, line) in text.lines().map(str::trim_end).enumerate() {
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix(": ") {
            let code = u8::from_str_radix(head.trim(), 16)
                .map_err(|_| format!("font.txt:{}: bad character code", n + 1))?;
            glyphs.push((code, [0; DESIGN_ROWS], 0));
            continue;
        }
        let Some((code, design, rows)) = glyphs.last_mut() else {
            return Err(format!("font.txt:{}: row before any `: XX`", n + 1));
        };
        if *rows == DESIGN_ROWS {
            return Err(format!(
                "font.txt:{}: glyph {code:02X} has too many rows",
                n + 1
            ));
        }
        if line.len() > DESIGN_COLS || line.chars().any(|c| c != '#' && c != '.') {
            return Err(format!("font.txt:{}: a row is up to 7 of `#`/`.`", n + 1));
        }
        for (i, c) in line.chars().enumerate() {
            if c == '#' {
                design[*rows] |= 0x80 >> i;
            }
        }
        *rows += 1;
    }
    Ok(glyphs.into_iter().map(|(c, d, _)| (c, d)).collect())
}

/// Line weight of one arm of a box-drawing character: 0 none, 1 single, 2 double.
#[derive(Clone, Copy)]
struct Arms {
    up: u8,
    down: u8,
    left: u8,
    right: u8,
}

/// Arms of 0xB3..=0xDA, in code order.
const BOX: [(u8, u8, u8, u8); 40] = [
    (1, 1, 0, 0),
    (1, 1, 1, 0),
    (1, 1, 2, 0),
    (2, 2, 1, 0),
    (0, 2, 1, 0),
    (0, 1, 2, 0),
    (2, 2, 2, 0),
    (2, 2, 0, 0),
    (0, 2, 2, 0),
    (2, 0, 2, 0),
    (2, 0, 1, 0),
    (1, 0, 2, 0),
    (0, 1, 1, 0),
    (1, 0, 0, 1),
    (1, 0, 1, 1),
    (0, 1, 1, 1),
    (1, 1, 0, 1),
    (0, 0, 1, 1),
    (1, 1, 1, 1),
    (1, 1, 0, 2),
    (2, 2, 0, 1),
    (2, 0, 0, 2),
    (0, 2, 0, 2),
    (2, 0, 2, 2),
    (0, 2, 2, 2),
    (2, 2, 0, 2),
    (0, 0, 2, 2),
    (2, 2, 2, 2),
    (1, 0, 2, 2),
    (2, 0, 1, 1),
    (0, 1, 2, 2),
    (0, 2, 1, 1),
    (2, 0, 0, 1),
    (1, 0, 0, 2),
    (0, 1, 0, 2),
    (0, 2, 0, 1),
    (2, 2, 1, 1),
    (1, 1, 2, 2),
    (1, 0, 1, 0),
    (0, 1, 0, 1),
];

/// Draws a box-drawing character in a cell of `h` rows: single lines through column 3 and
/// row `h/2`, double lines one pixel either side of them.
fn draw_box(arms: Arms, h: usize) -> Vec<u8> {
    let mut cell = vec![0u8; h];
    let mid = h / 2;
    let col = |c: usize| 0x80u8 >> c;
    let vert = |cell: &mut [u8], weight: u8, rows: std::ops::Range<usize>| {
        let mask = match weight {
            1 => col(3),
            2 => col(2) | col(4),
            _ => 0,
        };
        for r in rows {
            cell[r] |= mask;
        }
    };
    let horiz = |cell: &mut [u8], weight: u8, mask: u8| match weight {
        1 => cell[mid] |= mask,
        2 => {
            cell[mid - 1] |= mask;
            cell[mid + 1] |= mask;
        }
        _ => {}
    };
    // Arms meet at the centre: the vertical ones reach it, the horizontal ones cover it.
    let reach = if arms.left == 2 || arms.right == 2 {
        1
    } else {
        0
    };
    vert(&mut cell, arms.up, 0..mid + 1 + reach);
    vert(&mut cell, arms.down, mid - reach..h);
    horiz(&mut cell, arms.left, 0xF8);
    horiz(&mut cell, arms.right, 0x1F);
    cell
}

/// Blocks and shades: 0xB0..=0xB2 and 0xDB..=0xDF, 0xFE.
fn draw_block(code: u8, h: usize) -> Option<Vec<u8>> {
    let rows = |f: &dyn Fn(usize) -> u8| (0..h).map(f).collect::<Vec<u8>>();
    Some(match code {
        0xB0 => rows(&|r| if r % 2 == 0 { 0x88 } else { 0x22 }),
        0xB1 => rows(&|r| if r % 2 == 0 { 0xAA } else { 0x55 }),
        0xB2 => rows(&|r| if r % 2 == 0 { 0x77 } else { 0xDD }),
        0xDB => rows(&|_| 0xFF),
        0xDC => rows(&|r| if r >= h / 2 { 0xFF } else { 0 }),
        0xDD => rows(&|_| 0xF0),
        0xDE => rows(&|_| 0x0F),
        0xDF => rows(&|r| if r < h / 2 { 0xFF } else { 0 }),
        0xFE => rows(&|r| {
            if (h / 4..h - h / 4).contains(&r) {
                0x7C
            } else {
                0
            }
        }),
        _ => return None,
    })
}

/// Accented letters of code page 437: (code, base letter, accent).
const ACCENTED: &[(u8, u8, Accent)] = &[
    (0x81, b'u', Accent::Umlaut),
    (0x82, b'e', Accent::Acute),
    (0x83, b'a', Accent::Circumflex),
    (0x84, b'a', Accent::Umlaut),
    (0x85, b'a', Accent::Grave),
    (0x86, b'a', Accent::Ring),
    (0x88, b'e', Accent::Circumflex),
    (0x89, b'e', Accent::Umlaut),
    (0x8A, b'e', Accent::Grave),
    (0x8B, b'i', Accent::Umlaut),
    (0x8C, b'i', Accent::Circumflex),
    (0x8D, b'i', Accent::Grave),
    (0x93, b'o', Accent::Circumflex),
    (0x94, b'o', Accent::Umlaut),
    (0x95, b'o', Accent::Grave),
    (0x96, b'u', Accent::Circumflex),
    (0x97, b'u', Accent::Grave),
    (0x98, b'y', Accent::Umlaut),
    (0xA0, b'a', Accent::Acute),
    (0xA1, b'i', Accent::Acute),
    (0xA2, b'o', Accent::Acute),
    (0xA3, b'u', Accent::Acute),
    (0xA4, b'n', Accent::Tilde),
];

#[derive(Clone, Copy)]
enum Accent {
    Acute,
    Grave,
    Circumflex,
    Umlaut,
    Ring,
    Tilde,
}

impl Accent {
    /// Two rows drawn above the x-height (design rows 0 and 1).
    fn rows(self) -> [u8; 2] {
        match self {
            Accent::Acute => [0x08, 0x10],
            Accent::Grave => [0x20, 0x10],
            Accent::Circumflex => [0x10, 0x28],
            Accent::Umlaut => [0x00, 0x28],
            Accent::Ring => [0x10, 0x28],
            Accent::Tilde => [0x14, 0x28],
        }
    }
}

impl Fonts {
    pub fn build() -> Result<Self, String> {
        let mut designs: Vec<Option<Design>> = vec![None; 256];
        for (code, d) in parse(DESIGNS)? {
            designs[usize::from(code)] = Some(d);
        }
        for &(code, base, accent) in ACCENTED {
            if let Some(mut d) = designs[usize::from(base)] {
                // Lower-case letters leave rows 0..=2 empty, except i's dot: drop it.
                d[0] = 0;
                d[1] = 0;
                let [a, b] = accent.rows();
                d[0] |= a;
                d[1] |= b;
                designs[usize::from(code)] = Some(d);
            }
        }
        let mut fonts = Fonts {
            f8x16: vec![0; 256 * 16],
            f8x14: vec![0; 256 * 14],
            f8x8: vec![0; 256 * 8],
        };
        for (code, design) in designs.iter().enumerate() {
            let code8 = code as u8;
            let drawn = |h: usize| -> Option<Vec<u8>> {
                if (0xB3..=0xDA).contains(&code8) {
                    let (up, down, left, right) = BOX[code - 0xB3];
                    Some(draw_box(
                        Arms {
                            up,
                            down,
                            left,
                            right,
                        },
                        h,
                    ))
                } else {
                    draw_block(code8, h)
                }
            };
            for (h, font, top) in [(16, &mut fonts.f8x16, 2), (14, &mut fonts.f8x14, 1)] {
                let cell = &mut font[code * h..(code + 1) * h];
                if let Some(rows) = drawn(h) {
                    cell.copy_from_slice(&rows);
                } else if let Some(d) = design {
                    cell[top..top + DESIGN_ROWS].copy_from_slice(d);
                }
            }
            let cell = &mut fonts.f8x8[code * 8..(code + 1) * 8];
            if let Some(rows) = drawn(8) {
                cell.copy_from_slice(&rows);
            } else if let Some(d) = design {
                for (out, src) in cell.iter_mut().zip(ROWS_8X8) {
                    *out = src.iter().fold(0, |acc, &r| acc | d[r]);
                }
            }
        }
        Ok(fonts)
    }
}
