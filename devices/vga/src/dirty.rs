//! Incremental redraws: a dirty bitmap over VRAM in 4 KiB pages, kept by every CPU write,
//! and [`Vga::render_update`], which redraws only the lines whose source bytes lie in a
//! written page. Register, DAC and mode changes redraw the whole picture.
//!
//! This is host-side bookkeeping, not guest state: it is not saved in snapshots, and
//! everything is dirty after construction, reset or restore.

use crate::render::{Blink, Frame, Picture};
use crate::Vga;

const PAGE_SHIFT: u32 = 12;

/// One bit per 4 KiB page of VRAM (as stored: planar byte `p` of address `a` at `4 * a + p`)
/// and plane (the byte offset's low two bits), so that text written to planes 0-1 does not
/// look like a font change in plane 2 of the same page.
pub(crate) struct DirtyPages {
    planes: [Vec<u64>; 4],
}

impl DirtyPages {
    pub(crate) fn new(vram_bytes: usize) -> Self {
        let words = vram_bytes.div_ceil(1 << PAGE_SHIFT).div_ceil(64);
        Self {
            planes: std::array::from_fn(|_| vec![0; words]),
        }
    }

    /// Mark the pages of VRAM bytes `offset..offset + len`.
    pub(crate) fn mark(&mut self, offset: usize, len: usize) {
        if len < 4 {
            for o in offset..offset.saturating_add(len) {
                self.set(o >> PAGE_SHIFT, o & 3);
            }
            return;
        }
        let first = offset >> PAGE_SHIFT;
        let last = offset.saturating_add(len - 1) >> PAGE_SHIFT;
        for page in first..=last {
            for plane in 0..4 {
                self.set(page, plane);
            }
        }
    }

    fn set(&mut self, page: usize, plane: usize) {
        if let Some(word) = self.planes[plane].get_mut(page / 64) {
            *word |= 1 << (page % 64);
        }
    }

    /// Whether the page of `offset` was written in `plane`.
    fn is_plane_dirty(&self, offset: usize, plane: usize) -> bool {
        let page = offset >> PAGE_SHIFT;
        self.planes[plane & 3]
            .get(page / 64)
            .is_some_and(|word| word & (1 << (page % 64)) != 0)
    }

    /// Whether the page of `offset` was written in any plane.
    fn is_dirty(&self, offset: usize) -> bool {
        (0..4).any(|plane| self.is_plane_dirty(offset, plane))
    }

    /// Whether any page of the bytes `start..end` is dirty.
    fn any_in(&self, start: usize, end: usize) -> bool {
        if end <= start {
            return false;
        }
        let (first, last) = (start >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT);
        (first..=last).any(|page| self.is_dirty(page << PAGE_SHIFT))
    }

    fn any(&self) -> bool {
        self.planes.iter().flatten().any(|&w| w != 0)
    }

    fn clear(&mut self) {
        for plane in &mut self.planes {
            plane.fill(0);
        }
    }
}

/// Everything besides VRAM that the picture depends on. The map mask, write mode, bit mask
/// and other data path registers are left out: they change what writes do, not the picture.
#[derive(Clone, PartialEq, Eq)]
struct DisplayKey {
    picture: Picture,
    seq: [u8; 2],
    gc_mode: u8,
    /// CRTC registers without the cursor's (0x0A, 0x0B, 0x0E, 0x0F).
    crtc: [u8; 32],
    attr: [u8; 32],
    palette_source: bool,
    pel_mask: u8,
    palette: Vec<u8>,
    vbe: [u16; 7],
}

/// The text cursor as drawn: its address counter while shown, and its scan lines.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CursorKey {
    location: Option<u32>,
    lines: (u8, u8),
}

/// What the last incremental render drew from.
struct Drawn {
    key: DisplayKey,
    blink: Blink,
    cursor: CursorKey,
}

/// The dirty bitmap and what the last [`Vga::render_update`] drew.
pub(crate) struct Tracker {
    pub(crate) pages: DirtyPages,
    /// Everything must be drawn afresh (construction, reset, restore).
    full: bool,
    drawn: Option<Drawn>,
}

impl Tracker {
    pub(crate) fn new(vram_bytes: usize) -> Self {
        Self {
            pages: DirtyPages::new(vram_bytes),
            full: true,
            drawn: None,
        }
    }

    pub(crate) fn invalidate(&mut self) {
        self.full = true;
    }
}

/// The frame lines a [`Vga::render_update`] redrew: `y..y + height`, all of the frame when
/// `full` (the size may have changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    pub y: u32,
    pub height: u32,
    pub full: bool,
}

impl Vga {
    /// Bring `frame` up to date with the picture at virtual time `now_ns` (as
    /// [`Vga::render_at`] draws it), redrawing only the lines whose VRAM was written since the
    /// last call, or everything after a register, DAC or mode change. Returns the lines that
    /// changed, `None` when none did. Use one `frame` per adapter: it is compared against
    /// what the last call drew.
    pub fn render_update(&mut self, frame: &mut Frame, now_ns: u64) -> Option<Damage> {
        let blink = Blink::at(now_ns);
        let key = self.display_key();
        let cursor = self.cursor_key(blink);
        let (width, height) = self.picture_size();
        let drawn = self.dirty.drawn.take();
        let stale = match &drawn {
            Some(d) if !self.dirty.full && d.key == key => Some(d),
            _ => None,
        };
        let damage = match stale {
            Some(d) if (frame.width, frame.height) == (width, height) => {
                self.redraw_changed(frame, d, blink, cursor)
            }
            _ => {
                *frame = Frame::new(width, height);
                self.draw_lines(frame, blink, None);
                Some(Damage {
                    y: 0,
                    height,
                    full: true,
                })
            }
        };
        self.dirty.pages.clear();
        self.dirty.full = false;
        self.dirty.drawn = Some(Drawn { key, blink, cursor });
        damage
    }

    fn redraw_changed(
        &self,
        frame: &mut Frame,
        drawn: &Drawn,
        blink: Blink,
        cursor: CursorKey,
    ) -> Option<Damage> {
        let text = self.picture() == Picture::Text;
        if !self.dirty.pages.any() && (!text || (drawn.blink == blink && drawn.cursor == cursor)) {
            return None;
        }
        let mask = match self.picture() {
            Picture::Text => self.changed_text_lines(drawn, blink, cursor),
            Picture::Vbe => self.changed_vbe_lines(),
            _ => self.changed_graphics_lines(),
        };
        let first = mask.iter().position(|&m| m)?;
        let last = mask.iter().rposition(|&m| m)?;
        self.draw_lines(frame, blink, Some(&mask));
        Some(Damage {
            y: first as u32,
            height: (last - first + 1) as u32,
            full: false,
        })
    }

    fn display_key(&self) -> DisplayKey {
        let s = &self.state;
        let mut crtc = s.crtc;
        for i in [0x0a, 0x0b, 0x0e, 0x0f] {
            crtc[i] = 0;
        }
        let v = &s.vbe;
        DisplayKey {
            picture: self.picture(),
            seq: [s.seq[1], s.seq[3]],
            gc_mode: s.gc[5] & 0x60,
            crtc,
            attr: s.attr,
            palette_source: s.attr_index & 0x20 != 0,
            pel_mask: s.pel_mask,
            palette: s.palette.clone(),
            vbe: [
                v.xres,
                v.yres,
                v.bpp,
                v.enable,
                v.virt_width,
                v.x_offset,
                v.y_offset,
            ],
        }
    }

    fn cursor_key(&self, blink: Blink) -> CursorKey {
        let c = &self.state.crtc;
        CursorKey {
            location: (blink.cursor && c[0x0a] & 0x20 == 0)
                .then(|| u32::from(c[0x0e]) << 8 | u32::from(c[0x0f])),
            lines: (c[0x0a] & 0x1f, c[0x0b] & 0x1f),
        }
    }

    /// Graphics lines whose cells (all four planes at each address counter step) were written.
    fn changed_graphics_lines(&self) -> Vec<bool> {
        let columns = self.columns();
        self.graphics_lines()
            .iter()
            .map(|line| {
                (0..columns).any(|k| {
                    let addr = self.crtc_address(line.counter.wrapping_add(k), line.scan);
                    self.dirty.pages.is_dirty(addr as usize * 4)
                })
            })
            .collect()
    }

    /// VBE lines whose displayed bytes were written.
    fn changed_vbe_lines(&self) -> Vec<bool> {
        let v = &self.state.vbe;
        let (width, height) = self.picture_size();
        let (width, x_offset) = (width as usize, usize::from(v.x_offset));
        let stride = v.line_bytes();
        let bpp = v.bytes_per_pixel();
        (0..height as usize)
            .map(|y| {
                let line = (usize::from(v.y_offset) + y).saturating_mul(stride);
                let (start, end) = if v.bpp == 4 {
                    let first = line.saturating_add(x_offset / 8);
                    let last = line.saturating_add((x_offset + width).saturating_sub(1) / 8);
                    (
                        first.saturating_mul(4),
                        last.saturating_add(1).saturating_mul(4),
                    )
                } else {
                    let start = line.saturating_add(x_offset * bpp);
                    (start, start.saturating_add(width * bpp))
                };
                width > 0 && self.dirty.pages.any_in(start, end)
            })
            .collect()
    }

    /// Text lines of the rows whose cells or glyphs were written, where the cursor moved or
    /// blinked, and with blinking characters when they blinked.
    fn changed_text_lines(&self, drawn: &Drawn, blink: Blink, cursor: CursorKey) -> Vec<bool> {
        let (_, height) = self.text_size();
        let char_height = self.row_height();
        let rows = height / char_height.max(1);
        let cols = self.columns();
        let fonts = self.font_bases();
        let cursor_moved = drawn.cursor != cursor;
        let cursor_at = [drawn.cursor.location, cursor.location];
        let chars_blinked = drawn.blink.chars != blink.chars && self.state.attr[0x10] & 0x08 != 0;
        let mut mask = vec![false; height as usize];
        for row in 0..rows {
            let changed = (0..cols).any(|col| {
                let (ch, at, counter) = self.cell(row, col);
                let addr = self.crtc_address(counter, 0) as usize;
                let glyph = fonts[usize::from(at >> 3 & 1)] as usize + usize::from(ch) * 32;
                self.dirty.pages.is_plane_dirty(addr * 4, 0)
                    || self.dirty.pages.is_plane_dirty(addr * 4, 1)
                    || self.dirty.pages.is_plane_dirty(glyph * 4, 2)
                    || (cursor_moved && cursor_at.contains(&Some(counter)))
                    || (chars_blinked && at & 0x80 != 0)
            });
            if changed {
                let lines = (row * char_height) as usize..((row + 1) * char_height) as usize;
                if let Some(m) = mask.get_mut(lines) {
                    m.fill(true);
                }
            }
        }
        mask
    }
}
