//! Where the picture goes in the window: as large as fits, centred, with the aspect ratio a
//! monitor would show it at.

/// The aspect ratio the guest's picture is meant to be seen at: 4:3 for the VGA's own modes
/// (320x200, 640x400 and 720x400 all filled a 4:3 CRT), square pixels for VBE modes.
#[must_use]
pub fn display_aspect(width: u32, height: u32, vbe: bool) -> (u32, u32) {
    if vbe && width > 0 && height > 0 {
        (width, height)
    } else {
        (4, 3)
    }
}

/// The largest rectangle of aspect `aspect` that fits in `window`, centred: (x, y, w, h).
#[must_use]
pub fn fit(window: (u32, u32), aspect: (u32, u32)) -> (i32, i32, u32, u32) {
    let (ww, wh) = (u64::from(window.0), u64::from(window.1));
    let (aw, ah) = (u64::from(aspect.0.max(1)), u64::from(aspect.1.max(1)));
    // Width-limited unless that makes the picture taller than the window.
    let (w, h) = if ww * ah <= wh * aw {
        (ww, ww * ah / aw)
    } else {
        (wh * aw / ah, wh)
    };
    let x = (ww - w) / 2;
    let y = (wh - h) / 2;
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    (
        narrow(x) as i32,
        narrow(y) as i32,
        narrow(w).max(1),
        narrow(h).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vga_modes_fill_a_4_3_screen() {
        assert_eq!(display_aspect(720, 400, false), (4, 3));
        assert_eq!(display_aspect(320, 200, false), (4, 3));
        assert_eq!(display_aspect(1280, 720, true), (1280, 720));
        assert_eq!(fit((800, 600), (4, 3)), (0, 0, 800, 600));
    }

    #[test]
    fn wide_and_tall_windows_get_bars() {
        // Pillar-box: 1600x600 shows 800x600 in the middle.
        assert_eq!(fit((1600, 600), (4, 3)), (400, 0, 800, 600));
        // Letter-box: 800x1000 shows 800x600 in the middle.
        assert_eq!(fit((800, 1000), (4, 3)), (0, 200, 800, 600));
        assert_eq!(fit((1920, 1080), (1280, 720)), (0, 0, 1920, 1080));
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        assert_eq!(fit((0, 0), (4, 3)).2, 1);
        let _ = fit((u32::MAX, 1), (0, 0));
        let _ = fit((1, u32::MAX), (u32::MAX, 1));
    }
}
