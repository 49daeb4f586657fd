//! The keyboard: IRQ 1 turns set-1 scan codes into keystrokes in the BDA buffer (with the
//! shift, ctrl, alt, caps and num lock states), INT 16h hands them out.

use crate::bda;
use crate::call::{Call, Outcome};
use crate::guest::{rd16, rd8, wr16, wr8};
use crate::io::eoi;
use crate::{BiosState, Platform, TrapResult};
use nestor_cpu::state::rflags;

/// Shift flags at 40:17.
mod f1 {
    pub const RSHIFT: u8 = 0x01;
    pub const LSHIFT: u8 = 0x02;
    pub const CTRL: u8 = 0x04;
    pub const ALT: u8 = 0x08;
    pub const SCROLL: u8 = 0x10;
    pub const NUM: u8 = 0x20;
    pub const CAPS: u8 = 0x40;
    pub const INSERT: u8 = 0x80;
}

/// Flags at 40:18 (keys held down) and 40:96 (keyboard mode).
mod f2 {
    pub const LCTRL: u8 = 0x01;
    pub const LALT: u8 = 0x02;
    pub const SCROLL_DOWN: u8 = 0x10;
    pub const NUM_DOWN: u8 = 0x20;
    pub const CAPS_DOWN: u8 = 0x40;
    pub const INSERT_DOWN: u8 = 0x80;
    pub const MODE_E1: u8 = 0x01;
    pub const MODE_E0: u8 = 0x02;
    pub const MODE_RCTRL: u8 = 0x04;
    pub const MODE_RALT: u8 = 0x08;
    pub const MODE_ENHANCED: u8 = 0x10;
}

/// Keystrokes (scan code << 8 | character) per set-1 make code: normal, shift, ctrl, alt.
/// Letters are filled in by [`keystroke`]; 0 means the combination produces nothing.
#[rustfmt::skip]
const KEYS: [[u16; 4]; 0x59] = [
    [0, 0, 0, 0],
    [0x011B, 0x011B, 0x011B, 0x0100],
    [0x0231, 0x0221, 0, 0x7800], [0x0332, 0x0340, 0x0300, 0x7900],
    [0x0433, 0x0423, 0, 0x7A00], [0x0534, 0x0524, 0, 0x7B00],
    [0x0635, 0x0625, 0, 0x7C00], [0x0736, 0x075E, 0x071E, 0x7D00],
    [0x0837, 0x0826, 0, 0x7E00], [0x0938, 0x092A, 0, 0x7F00],
    [0x0A39, 0x0A28, 0, 0x8000], [0x0B30, 0x0B29, 0, 0x8100],
    [0x0C2D, 0x0C5F, 0x0C1F, 0x8200], [0x0D3D, 0x0D2B, 0, 0x8300],
    [0x0E08, 0x0E08, 0x0E7F, 0x0E00], [0x0F09, 0x0F00, 0x9400, 0xA500],
    [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4],
    [0x1A5B, 0x1A7B, 0x1A1B, 0x1A00], [0x1B5D, 0x1B7D, 0x1B1D, 0x1B00],
    [0x1C0D, 0x1C0D, 0x1C0A, 0x1C00],
    [0; 4],
    [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4],
    [0x273B, 0x273A, 0, 0x2700], [0x2827, 0x2822, 0, 0x2800], [0x2960, 0x297E, 0, 0x2900],
    [0; 4],
    [0x2B5C, 0x2B7C, 0x2B1C, 0x2B00],
    [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4], [0; 4],
    [0x332C, 0x333C, 0, 0x3300], [0x342E, 0x343E, 0, 0x3400], [0x352F, 0x353F, 0, 0x3500],
    [0; 4],
    [0x372A, 0x372A, 0x9600, 0x3700],
    [0; 4],
    [0x3920, 0x3920, 0x3920, 0x3920],
    [0; 4],
    [0x3B00, 0x5400, 0x5E00, 0x6800], [0x3C00, 0x5500, 0x5F00, 0x6900],
    [0x3D00, 0x5600, 0x6000, 0x6A00], [0x3E00, 0x5700, 0x6100, 0x6B00],
    [0x3F00, 0x5800, 0x6200, 0x6C00], [0x4000, 0x5900, 0x6300, 0x6D00],
    [0x4100, 0x5A00, 0x6400, 0x6E00], [0x4200, 0x5B00, 0x6500, 0x6F00],
    [0x4300, 0x5C00, 0x6600, 0x7000], [0x4400, 0x5D00, 0x6700, 0x7100],
    [0; 4], [0; 4],
    [0x4700, 0x4737, 0x7700, 0], [0x4800, 0x4838, 0x8D00, 0],
    [0x4900, 0x4939, 0x8400, 0], [0x4A2D, 0x4A2D, 0x8E00, 0x4A00],
    [0x4B00, 0x4B34, 0x7300, 0], [0x4C00, 0x4C35, 0x8F00, 0],
    [0x4D00, 0x4D36, 0x7400, 0], [0x4E2B, 0x4E2B, 0x9000, 0x4E00],
    [0x4F00, 0x4F31, 0x7500, 0], [0x5000, 0x5032, 0x9100, 0],
    [0x5100, 0x5133, 0x7600, 0], [0x5200, 0x5230, 0x9200, 0],
    [0x5300, 0x532E, 0x9300, 0],
    [0; 4], [0; 4],
    [0x565C, 0x567C, 0, 0],
    [0x8500, 0x8700, 0x8900, 0x8B00], [0x8600, 0x8800, 0x8A00, 0x8C00],
];

/// Letters by make code.
fn letter(make: u8) -> Option<u8> {
    const ROWS: [(u8, &[u8]); 3] = [
        (0x10, b"qwertyuiop"),
        (0x1E, b"asdfghjkl"),
        (0x2C, b"zxcvbnm"),
    ];
    ROWS.iter().find_map(|(first, keys)| {
        make.checked_sub(*first)
            .and_then(|i| keys.get(usize::from(i)))
            .copied()
    })
}

/// The keystroke a make code produces with shift flags `flags`; `e0` for the extended
/// (grey) keys. 0: none.
#[must_use]
pub fn keystroke(make: u8, flags: u8, e0: bool) -> u16 {
    let shift = flags & (f1::LSHIFT | f1::RSHIFT) != 0;
    let scan = u16::from(make) << 8;
    let column = if flags & f1::ALT != 0 {
        3
    } else if flags & f1::CTRL != 0 {
        2
    } else {
        usize::from(shift)
    };
    if e0 {
        return match make {
            0x1C => [0xE00D, 0xE00D, 0xE00A, 0xA600][column],
            0x35 => [0xE02F, 0xE02F, 0x9500, 0xA400][column],
            0x47..=0x53 if !matches!(make, 0x4A | 0x4C | 0x4E) => match column {
                2 => (KEYS[usize::from(make)][2] & 0xFF00) | 0xE0,
                3 => (u16::from(make) + 0x50) << 8,
                _ => scan | 0xE0,
            },
            _ => 0,
        };
    }
    if let Some(l) = letter(make) {
        let upper = shift != (flags & f1::CAPS != 0);
        return match column {
            3 => scan,
            2 => scan | u16::from(l - 0x60),
            _ if upper => scan | u16::from(l.to_ascii_uppercase()),
            _ => scan | u16::from(l),
        };
    }
    let Some(row) = KEYS.get(usize::from(make)) else {
        return 0;
    };
    if (0x47..=0x53).contains(&make) && column < 2 {
        // Num lock swaps the digit and cursor meanings of the keypad, shift swaps back.
        let digits = (flags & f1::NUM != 0) != shift;
        return row[usize::from(digits)];
    }
    row[column]
}

/// Puts a keystroke in the BDA buffer; false when it is full.
pub fn enqueue(p: &mut dyn Platform, key: u16) -> bool {
    let (start, end) = (rd16(p, bda::KBD_START), rd16(p, bda::KBD_END));
    let tail = rd16(p, bda::KBD_TAIL);
    let mut next = tail.wrapping_add(2);
    if next >= end {
        next = start;
    }
    if next == rd16(p, bda::KBD_HEAD) {
        return false;
    }
    wr16(p, bda::BDA + u64::from(tail), key);
    wr16(p, bda::KBD_TAIL, next);
    true
}

fn peek(p: &mut dyn Platform) -> Option<u16> {
    let head = rd16(p, bda::KBD_HEAD);
    (head != rd16(p, bda::KBD_TAIL)).then(|| rd16(p, bda::BDA + u64::from(head)))
}

fn dequeue(p: &mut dyn Platform) -> Option<u16> {
    let key = peek(p)?;
    let (start, end) = (rd16(p, bda::KBD_START), rd16(p, bda::KBD_END));
    let mut next = rd16(p, bda::KBD_HEAD).wrapping_add(2);
    if next >= end {
        next = start;
    }
    wr16(p, bda::KBD_HEAD, next);
    Some(key)
}

/// What the non-enhanced functions report for an enhanced keystroke.
fn compatible(key: u16) -> u16 {
    let (scan, ch) = ((key >> 8) as u8, key as u8);
    if scan == 0xE0 {
        let s: u8 = if ch == 0x0D || ch == 0x0A { 0x1C } else { 0x35 };
        return (u16::from(s) << 8) | u16::from(ch);
    }
    if ch == 0xE0 && scan != 0 {
        return key & 0xFF00;
    }
    key
}

/// Processes one scan code from port 0x60. Returns Reset on Ctrl+Alt+Del.
pub fn process(p: &mut dyn Platform, code: u8) -> TrapResult {
    let mut mode = rd8(p, bda::KBD_MODE);
    match code {
        0xE0 => {
            wr8(p, bda::KBD_MODE, mode | f2::MODE_E0);
            return TrapResult::Continue;
        }
        0xE1 => {
            wr8(p, bda::KBD_MODE, mode | f2::MODE_E1);
            return TrapResult::Continue;
        }
        // Keyboard responses (ACK, resend, echo, overrun); 0xAA is also left shift's
        // release, so a self-test result goes through as that (harmlessly).
        0x00 | 0xEE | 0xFA | 0xFE | 0xFF => return TrapResult::Continue,
        _ => {}
    }
    let e0 = mode & f2::MODE_E0 != 0;
    if mode & f2::MODE_E1 != 0 {
        // Pause (E1 1D 45 E1 9D C5): swallowed, the sequence ends with 45/C5.
        if code & 0x7F == 0x45 {
            mode &= !f2::MODE_E1;
        }
        wr8(p, bda::KBD_MODE, mode & !f2::MODE_E0);
        return TrapResult::Continue;
    }
    mode &= !f2::MODE_E0;
    let release = code & 0x80 != 0;
    let make = code & 0x7F;
    let mut fl1 = rd8(p, bda::KBD_FLAGS1);
    let mut fl2 = rd8(p, bda::KBD_FLAGS2);
    let mut result = TrapResult::Continue;
    let set = |v: &mut u8, bit: u8, on: bool| if on { *v |= bit } else { *v &= !bit };
    match make {
        // E0 2A / E0 36 are the fake shifts around grey keys.
        0x2A | 0x36 if e0 => {}
        0x2A => set(&mut fl1, f1::LSHIFT, !release),
        0x36 => set(&mut fl1, f1::RSHIFT, !release),
        0x1D => {
            if e0 {
                set(&mut mode, f2::MODE_RCTRL, !release);
            } else {
                set(&mut fl2, f2::LCTRL, !release);
            }
            let any = fl2 & f2::LCTRL != 0 || mode & f2::MODE_RCTRL != 0;
            set(&mut fl1, f1::CTRL, any);
        }
        0x38 => {
            if e0 {
                set(&mut mode, f2::MODE_RALT, !release);
            } else {
                set(&mut fl2, f2::LALT, !release);
            }
            let any = fl2 & f2::LALT != 0 || mode & f2::MODE_RALT != 0;
            set(&mut fl1, f1::ALT, any);
            if release && !any {
                // Alt+keypad digits: the code typed goes in as a keystroke.
                let acc = rd8(p, bda::KBD_ALT_NUM);
                if acc != 0 {
                    enqueue(p, u16::from(acc));
                    wr8(p, bda::KBD_ALT_NUM, 0);
                }
            }
        }
        0x3A | 0x45 | 0x46 if !e0 => {
            let (held, toggle) = match make {
                0x3A => (f2::CAPS_DOWN, f1::CAPS),
                0x45 => (f2::NUM_DOWN, f1::NUM),
                _ => (f2::SCROLL_DOWN, f1::SCROLL),
            };
            if !release && fl2 & held == 0 {
                fl1 ^= toggle;
            }
            set(&mut fl2, held, !release);
            wr8(p, bda::KBD_LEDS, (fl1 >> 4) & 7);
        }
        _ if release => {
            if make == 0x52 {
                fl2 &= !f2::INSERT_DOWN;
            }
        }
        _ => {
            if make == 0x53 && fl1 & f1::CTRL != 0 && fl1 & f1::ALT != 0 {
                wr16(p, bda::RESET_FLAG, 0x1234);
                result = TrapResult::Reset;
            } else if make == 0x52 && fl2 & f2::INSERT_DOWN == 0 {
                fl1 ^= f1::INSERT;
                fl2 |= f2::INSERT_DOWN;
            }
            let alt_digit = fl1 & f1::ALT != 0 && !e0;
            let digit = match make {
                0x47..=0x49 => Some(make - 0x47 + 7),
                0x4B..=0x4D => Some(make - 0x4B + 4),
                0x4F..=0x51 => Some(make - 0x4F + 1),
                0x52 => Some(0),
                _ => None,
            };
            if let (true, Some(d)) = (alt_digit, digit) {
                let acc = rd8(p, bda::KBD_ALT_NUM);
                wr8(p, bda::KBD_ALT_NUM, acc.wrapping_mul(10).wrapping_add(d));
            } else {
                let key = keystroke(make, fl1, e0);
                if key != 0 {
                    enqueue(p, key);
                }
            }
        }
    }
    wr8(p, bda::KBD_FLAGS1, fl1);
    wr8(p, bda::KBD_FLAGS2, fl2);
    wr8(p, bda::KBD_MODE, mode);
    result
}

/// IRQ 1: the stub read port 0x60, offered the code to INT 15h/4Fh, and passes it in AH.
pub fn irq1(_st: &mut BiosState, c: &mut Call) -> Outcome {
    let code = (c.live_eax >> 8) as u8;
    let result = process(c.p, code);
    eoi(c.p, 1);
    Outcome::ReturnThen(result)
}

pub fn int16(c: &mut Call) -> Outcome {
    match c.r.ah() {
        0x00 | 0x10 => {
            let Some(key) = dequeue(c.p) else {
                return Outcome::Wait;
            };
            c.set_ax(if c.r.ah() == 0 { compatible(key) } else { key });
        }
        0x01 | 0x11 => match peek(c.p) {
            Some(key) => {
                c.set_ax(if c.r.ah() == 1 { compatible(key) } else { key });
                c.set_zf(false);
            }
            None => c.set_zf(true),
        },
        0x02 => {
            let v = rd8(c.p, bda::KBD_FLAGS1);
            c.set_al(v);
        }
        0x12 => {
            let fl1 = rd8(c.p, bda::KBD_FLAGS1);
            let fl2 = rd8(c.p, bda::KBD_FLAGS2);
            let mode = rd8(c.p, bda::KBD_MODE);
            // AH: LCtrl, LAlt, RCtrl, RAlt, scroll, num, caps, sysreq held.
            let ah = (fl2 & 0x03)
                | (mode & (f2::MODE_RCTRL | f2::MODE_RALT))
                | (fl2 & 0x70)
                | ((fl2 & 0x04) << 5);
            c.set_ax(u16::from(fl1) | (u16::from(ah) << 8));
        }
        0x03 => {}
        0x05 => {
            let ok = enqueue(c.p, c.r.cx());
            c.set_al(u8::from(!ok));
        }
        0x09 => c.set_al(0x30),
        0x0A => c.set_bx(0x41AB),
        _ => {}
    }
    c.set_flag(rflags::CF as u16, false);
    Outcome::Return
}

/// Sets up the BDA keyboard fields.
pub fn init_bda(p: &mut dyn Platform) {
    wr16(p, bda::KBD_START, bda::KBD_BUFFER);
    wr16(p, bda::KBD_END, bda::KBD_BUFFER_END);
    wr16(p, bda::KBD_HEAD, bda::KBD_BUFFER);
    wr16(p, bda::KBD_TAIL, bda::KBD_BUFFER);
    wr8(p, bda::KBD_FLAGS1, 0);
    wr8(p, bda::KBD_FLAGS2, 0);
    wr8(p, bda::KBD_MODE, f2::MODE_ENHANCED);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;

    #[test]
    fn keystrokes_follow_shift_caps_ctrl_alt() {
        assert_eq!(keystroke(0x1E, 0, false), 0x1E61, "a");
        assert_eq!(keystroke(0x1E, f1::LSHIFT, false), 0x1E41, "A");
        assert_eq!(keystroke(0x1E, f1::CAPS, false), 0x1E41, "caps A");
        assert_eq!(keystroke(0x1E, f1::CAPS | f1::RSHIFT, false), 0x1E61);
        assert_eq!(keystroke(0x1E, f1::CTRL, false), 0x1E01, "ctrl-a");
        assert_eq!(keystroke(0x1E, f1::ALT, false), 0x1E00, "alt-a");
        assert_eq!(keystroke(0x02, f1::LSHIFT, false), 0x0221, "!");
        assert_eq!(keystroke(0x1C, 0, false), 0x1C0D, "enter");
        assert_eq!(keystroke(0x1C, 0, true), 0xE00D, "keypad enter");
        assert_eq!(keystroke(0x48, 0, true), 0x48E0, "grey up");
        assert_eq!(keystroke(0x48, 0, false), 0x4800, "keypad up");
        assert_eq!(keystroke(0x48, f1::NUM, false), 0x4838, "keypad 8");
        assert_eq!(keystroke(0x3B, 0, false), 0x3B00, "F1");
        assert_eq!(keystroke(0x58, f1::ALT, false), 0x8C00, "alt-F12");
        assert_eq!(keystroke(0x7F, 0, false), 0);
    }

    fn with_buffer() -> FakePlatform {
        let mut p = FakePlatform::new(0x1000);
        init_bda(&mut p);
        p
    }

    #[test]
    fn scan_codes_fill_the_buffer() {
        let mut p = with_buffer();
        for code in [0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97] {
            assert_eq!(process(&mut p, code), TrapResult::Continue);
        }
        assert_eq!(dequeue(&mut p), Some(0x2348), "H");
        assert_eq!(dequeue(&mut p), Some(0x1769), "i");
        assert_eq!(dequeue(&mut p), None);
        // Caps lock toggles once per press, not per repeat.
        for code in [0x3A, 0x3A, 0xBA, 0x1E] {
            process(&mut p, code);
        }
        assert_eq!(dequeue(&mut p), Some(0x1E41));
        assert_eq!(rd8(&mut p, bda::KBD_LEDS), 4);
    }

    #[test]
    fn grey_keys_and_alt_numpad() {
        let mut p = with_buffer();
        for code in [0xE0, 0x48, 0xE0, 0xC8] {
            process(&mut p, code);
        }
        let key = dequeue(&mut p).unwrap();
        assert_eq!(key, 0x48E0);
        assert_eq!(compatible(key), 0x4800);
        for code in [0x38, 0x4F, 0xCF, 0x4D, 0xCD, 0xB8] {
            process(&mut p, code);
        }
        assert_eq!(dequeue(&mut p), Some(16), "alt + 1 6");
    }

    #[test]
    fn buffer_holds_fifteen_keys_and_ctrl_alt_del_resets() {
        let mut p = with_buffer();
        let stored = (0..20).filter(|i| enqueue(&mut p, *i)).count();
        assert_eq!(stored, 15);
        let mut p = with_buffer();
        for code in [0x1D, 0x38] {
            process(&mut p, code);
        }
        assert_eq!(process(&mut p, 0x53), TrapResult::Reset);
        assert_eq!(rd16(&mut p, bda::RESET_FLAG), 0x1234);
    }
}
