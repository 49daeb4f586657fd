//! The keys of a 104/105-key PC keyboard and their scan codes in sets 1, 2 and 3, the 8042's
//! set 2 → set 1 translation table, USB HID usages and the US layout used by `type_text`.
//!
//! Codes come from IBM's keyboard technical references as summarised in Microsoft's "Keyboard
//! Scan Code Specification". A set 1/2 code above 0xFF carries an 0xE0 prefix in its high byte.

use serde::{Deserialize, Serialize};

/// A key of a PC keyboard, by position (US names).
///
/// Saved in snapshots as its variant index: add new keys at the end only.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Key {
    Escape,
    F1,
    F2,
    F3,
    F4,
    F5,
    F6,
    F7,
    F8,
    F9,
    F10,
    F11,
    F12,
    PrintScreen,
    ScrollLock,
    Pause,
    Backquote,
    Digit1,
    Digit2,
    Digit3,
    Digit4,
    Digit5,
    Digit6,
    Digit7,
    Digit8,
    Digit9,
    Digit0,
    Minus,
    Equal,
    Backspace,
    Tab,
    Q,
    W,
    E,
    R,
    T,
    Y,
    U,
    I,
    O,
    P,
    BracketLeft,
    BracketRight,
    Backslash,
    CapsLock,
    A,
    S,
    D,
    F,
    G,
    H,
    J,
    K,
    L,
    Semicolon,
    Quote,
    Enter,
    ShiftLeft,
    Z,
    X,
    C,
    V,
    B,
    N,
    M,
    Comma,
    Period,
    Slash,
    ShiftRight,
    ControlLeft,
    MetaLeft,
    AltLeft,
    Space,
    AltRight,
    MetaRight,
    ContextMenu,
    ControlRight,
    Insert,
    Home,
    PageUp,
    Delete,
    End,
    PageDown,
    ArrowUp,
    ArrowLeft,
    ArrowDown,
    ArrowRight,
    NumLock,
    NumpadDivide,
    NumpadMultiply,
    NumpadSubtract,
    Numpad7,
    Numpad8,
    Numpad9,
    NumpadAdd,
    Numpad4,
    Numpad5,
    Numpad6,
    Numpad1,
    Numpad2,
    Numpad3,
    Numpad0,
    NumpadDecimal,
    NumpadEnter,
    /// The 102nd key of ISO keyboards, between left Shift and Z.
    IntlBackslash,
}

/// Codes of one key: set 1 and set 2 make codes (0xE0 prefix in the high byte), set 3 make
/// code, and its USB HID usage on the keyboard page.
struct Codes {
    key: Key,
    set1: u16,
    set2: u16,
    set3: u8,
    hid: u8,
}

const fn k(key: Key, set1: u16, set2: u16, set3: u8, hid: u8) -> Codes {
    Codes {
        key,
        set1,
        set2,
        set3,
        hid,
    }
}

/// One row per key, in the order of [`Key`]. Print Screen and Pause send multi-byte sequences
/// in sets 1 and 2 that [`make_codes`] spells out.
const TABLE: [Codes; 105] = [
    k(Key::Escape, 0x01, 0x76, 0x08, 0x29),
    k(Key::F1, 0x3b, 0x05, 0x07, 0x3a),
    k(Key::F2, 0x3c, 0x06, 0x0f, 0x3b),
    k(Key::F3, 0x3d, 0x04, 0x17, 0x3c),
    k(Key::F4, 0x3e, 0x0c, 0x1f, 0x3d),
    k(Key::F5, 0x3f, 0x03, 0x27, 0x3e),
    k(Key::F6, 0x40, 0x0b, 0x2f, 0x3f),
    k(Key::F7, 0x41, 0x83, 0x37, 0x40),
    k(Key::F8, 0x42, 0x0a, 0x3f, 0x41),
    k(Key::F9, 0x43, 0x01, 0x47, 0x42),
    k(Key::F10, 0x44, 0x09, 0x4f, 0x43),
    k(Key::F11, 0x57, 0x78, 0x56, 0x44),
    k(Key::F12, 0x58, 0x07, 0x5e, 0x45),
    k(Key::PrintScreen, 0, 0, 0x57, 0x46),
    k(Key::ScrollLock, 0x46, 0x7e, 0x5f, 0x47),
    k(Key::Pause, 0, 0, 0x62, 0x48),
    k(Key::Backquote, 0x29, 0x0e, 0x0e, 0x35),
    k(Key::Digit1, 0x02, 0x16, 0x16, 0x1e),
    k(Key::Digit2, 0x03, 0x1e, 0x1e, 0x1f),
    k(Key::Digit3, 0x04, 0x26, 0x26, 0x20),
    k(Key::Digit4, 0x05, 0x25, 0x25, 0x21),
    k(Key::Digit5, 0x06, 0x2e, 0x2e, 0x22),
    k(Key::Digit6, 0x07, 0x36, 0x36, 0x23),
    k(Key::Digit7, 0x08, 0x3d, 0x3d, 0x24),
    k(Key::Digit8, 0x09, 0x3e, 0x3e, 0x25),
    k(Key::Digit9, 0x0a, 0x46, 0x46, 0x26),
    k(Key::Digit0, 0x0b, 0x45, 0x45, 0x27),
    k(Key::Minus, 0x0c, 0x4e, 0x4e, 0x2d),
    k(Key::Equal, 0x0d, 0x55, 0x55, 0x2e),
    k(Key::Backspace, 0x0e, 0x66, 0x66, 0x2a),
    k(Key::Tab, 0x0f, 0x0d, 0x0d, 0x2b),
    k(Key::Q, 0x10, 0x15, 0x15, 0x14),
    k(Key::W, 0x11, 0x1d, 0x1d, 0x1a),
    k(Key::E, 0x12, 0x24, 0x24, 0x08),
    k(Key::R, 0x13, 0x2d, 0x2d, 0x15),
    k(Key::T, 0x14, 0x2c, 0x2c, 0x17),
    k(Key::Y, 0x15, 0x35, 0x35, 0x1c),
    k(Key::U, 0x16, 0x3c, 0x3c, 0x18),
    k(Key::I, 0x17, 0x43, 0x43, 0x0c),
    k(Key::O, 0x18, 0x44, 0x44, 0x12),
    k(Key::P, 0x19, 0x4d, 0x4d, 0x13),
    k(Key::BracketLeft, 0x1a, 0x54, 0x54, 0x2f),
    k(Key::BracketRight, 0x1b, 0x5b, 0x5b, 0x30),
    k(Key::Backslash, 0x2b, 0x5d, 0x5c, 0x31),
    k(Key::CapsLock, 0x3a, 0x58, 0x14, 0x39),
    k(Key::A, 0x1e, 0x1c, 0x1c, 0x04),
    k(Key::S, 0x1f, 0x1b, 0x1b, 0x16),
    k(Key::D, 0x20, 0x23, 0x23, 0x07),
    k(Key::F, 0x21, 0x2b, 0x2b, 0x09),
    k(Key::G, 0x22, 0x34, 0x34, 0x0a),
    k(Key::H, 0x23, 0x33, 0x33, 0x0b),
    k(Key::J, 0x24, 0x3b, 0x3b, 0x0d),
    k(Key::K, 0x25, 0x42, 0x42, 0x0e),
    k(Key::L, 0x26, 0x4b, 0x4b, 0x0f),
    k(Key::Semicolon, 0x27, 0x4c, 0x4c, 0x33),
    k(Key::Quote, 0x28, 0x52, 0x52, 0x34),
    k(Key::Enter, 0x1c, 0x5a, 0x5a, 0x28),
    k(Key::ShiftLeft, 0x2a, 0x12, 0x12, 0xe1),
    k(Key::Z, 0x2c, 0x1a, 0x1a, 0x1d),
    k(Key::X, 0x2d, 0x22, 0x22, 0x1b),
    k(Key::C, 0x2e, 0x21, 0x21, 0x06),
    k(Key::V, 0x2f, 0x2a, 0x2a, 0x19),
    k(Key::B, 0x30, 0x32, 0x32, 0x05),
    k(Key::N, 0x31, 0x31, 0x31, 0x11),
    k(Key::M, 0x32, 0x3a, 0x3a, 0x10),
    k(Key::Comma, 0x33, 0x41, 0x41, 0x36),
    k(Key::Period, 0x34, 0x49, 0x49, 0x37),
    k(Key::Slash, 0x35, 0x4a, 0x4a, 0x38),
    k(Key::ShiftRight, 0x36, 0x59, 0x59, 0xe5),
    k(Key::ControlLeft, 0x1d, 0x14, 0x11, 0xe0),
    k(Key::MetaLeft, 0xe05b, 0xe01f, 0x8b, 0xe3),
    k(Key::AltLeft, 0x38, 0x11, 0x19, 0xe2),
    k(Key::Space, 0x39, 0x29, 0x29, 0x2c),
    k(Key::AltRight, 0xe038, 0xe011, 0x39, 0xe6),
    k(Key::MetaRight, 0xe05c, 0xe027, 0x8c, 0xe7),
    k(Key::ContextMenu, 0xe05d, 0xe02f, 0x8d, 0x65),
    k(Key::ControlRight, 0xe01d, 0xe014, 0x58, 0xe4),
    k(Key::Insert, 0xe052, 0xe070, 0x67, 0x49),
    k(Key::Home, 0xe047, 0xe06c, 0x6e, 0x4a),
    k(Key::PageUp, 0xe049, 0xe07d, 0x6f, 0x4b),
    k(Key::Delete, 0xe053, 0xe071, 0x64, 0x4c),
    k(Key::End, 0xe04f, 0xe069, 0x65, 0x4d),
    k(Key::PageDown, 0xe051, 0xe07a, 0x6d, 0x4e),
    k(Key::ArrowUp, 0xe048, 0xe075, 0x63, 0x52),
    k(Key::ArrowLeft, 0xe04b, 0xe06b, 0x61, 0x50),
    k(Key::ArrowDown, 0xe050, 0xe072, 0x60, 0x51),
    k(Key::ArrowRight, 0xe04d, 0xe074, 0x6a, 0x4f),
    k(Key::NumLock, 0x45, 0x77, 0x76, 0x53),
    k(Key::NumpadDivide, 0xe035, 0xe04a, 0x77, 0x54),
    k(Key::NumpadMultiply, 0x37, 0x7c, 0x7e, 0x55),
    k(Key::NumpadSubtract, 0x4a, 0x7b, 0x84, 0x56),
    k(Key::Numpad7, 0x47, 0x6c, 0x6c, 0x5f),
    k(Key::Numpad8, 0x48, 0x75, 0x75, 0x60),
    k(Key::Numpad9, 0x49, 0x7d, 0x7d, 0x61),
    k(Key::NumpadAdd, 0x4e, 0x79, 0x7c, 0x57),
    k(Key::Numpad4, 0x4b, 0x6b, 0x6b, 0x5c),
    k(Key::Numpad5, 0x4c, 0x73, 0x73, 0x5d),
    k(Key::Numpad6, 0x4d, 0x74, 0x74, 0x5e),
    k(Key::Numpad1, 0x4f, 0x69, 0x69, 0x59),
    k(Key::Numpad2, 0x50, 0x72, 0x72, 0x5a),
    k(Key::Numpad3, 0x51, 0x7a, 0x7a, 0x5b),
    k(Key::Numpad0, 0x52, 0x70, 0x70, 0x62),
    k(Key::NumpadDecimal, 0x53, 0x71, 0x71, 0x63),
    k(Key::NumpadEnter, 0xe01c, 0xe05a, 0x79, 0x58),
    k(Key::IntlBackslash, 0x56, 0x61, 0x13, 0x64),
];

/// The 8042's translation of keyboard bytes 0x00-0x7F (set 2) to set 1; bytes 0x80-0xFF pass
/// unchanged except 0x83 (F7) and 0x84 (Alt+SysRq). Unused set 2 positions have fixed values
/// too, which is why the scan set query reads back 0x43/0x41/0x3F through translation.
const XLAT: [u8; 128] = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
];

/// The 8042's set 2 → set 1 translation of one byte (the 0xF0 break prefix is handled by the
/// caller, which sets bit 7 of the following byte).
#[must_use]
pub fn translate(byte: u8) -> u8 {
    match byte {
        0x83 => 0x41,
        0x84 => 0x54,
        b if b < 0x80 => XLAT[usize::from(b)],
        b => b,
    }
}

fn codes(key: Key) -> &'static Codes {
    // TABLE is in the order of Key (checked by a test), so the index is the discriminant.
    &TABLE[key as usize]
}

fn push_code(out: &mut Vec<u8>, code: u16) {
    if code > 0xff {
        out.push((code >> 8) as u8);
    }
    out.push(code as u8);
}

/// The bytes a key sends when pressed, in scan code set `set` (1, 2 or 3; others read as 2).
#[must_use]
pub fn make_codes(key: Key, set: u8) -> Vec<u8> {
    let c = codes(key);
    let mut out = Vec::with_capacity(8);
    match (set, key) {
        (3, _) => out.push(c.set3),
        (1, Key::PrintScreen) => out.extend_from_slice(&[0xe0, 0x2a, 0xe0, 0x37]),
        (1, Key::Pause) => out.extend_from_slice(&[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]),
        (1, _) => push_code(&mut out, c.set1),
        (_, Key::PrintScreen) => out.extend_from_slice(&[0xe0, 0x12, 0xe0, 0x7c]),
        (_, Key::Pause) => {
            out.extend_from_slice(&[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
        }
        _ => push_code(&mut out, c.set2),
    }
    out
}

/// The bytes a key sends when released (Pause sends none in sets 1 and 2).
#[must_use]
pub fn break_codes(key: Key, set: u8) -> Vec<u8> {
    let c = codes(key);
    let mut out = Vec::with_capacity(6);
    match (set, key) {
        (3, _) => out.extend_from_slice(&[0xf0, c.set3]),
        (_, Key::Pause) => {}
        (1, Key::PrintScreen) => out.extend_from_slice(&[0xe0, 0xb7, 0xe0, 0xaa]),
        (1, _) => push_code(&mut out, c.set1 | 0x80),
        (_, Key::PrintScreen) => {
            out.extend_from_slice(&[0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12]);
        }
        _ => {
            if c.set2 > 0xff {
                out.push(0xe0);
            }
            out.extend_from_slice(&[0xf0, c.set2 as u8]);
        }
    }
    out
}

impl Key {
    /// The key for a USB HID usage on the keyboard page (0x07), as SDL scancodes give them.
    /// The ISO "non-US #" key (0x32) is the key right of the quote, reported like backslash.
    #[must_use]
    pub fn from_hid_usage(usage: u16) -> Option<Key> {
        if usage == 0x32 {
            return Some(Key::Backslash);
        }
        TABLE
            .iter()
            .find(|c| u16::from(c.hid) == usage)
            .map(|c| c.key)
    }

    /// The key's USB HID usage on the keyboard page.
    #[must_use]
    pub fn hid_usage(self) -> u16 {
        u16::from(codes(self).hid)
    }

    /// Whether holding the key repeats it (Pause does not).
    #[must_use]
    pub fn repeats(self) -> bool {
        self != Key::Pause
    }
}

/// The key and whether Shift is needed to type `c` on a US keyboard.
#[must_use]
pub fn us_layout(c: char) -> Option<(Key, bool)> {
    const LETTERS: [Key; 26] = [
        Key::A,
        Key::B,
        Key::C,
        Key::D,
        Key::E,
        Key::F,
        Key::G,
        Key::H,
        Key::I,
        Key::J,
        Key::K,
        Key::L,
        Key::M,
        Key::N,
        Key::O,
        Key::P,
        Key::Q,
        Key::R,
        Key::S,
        Key::T,
        Key::U,
        Key::V,
        Key::W,
        Key::X,
        Key::Y,
        Key::Z,
    ];
    const DIGITS: [Key; 10] = [
        Key::Digit0,
        Key::Digit1,
        Key::Digit2,
        Key::Digit3,
        Key::Digit4,
        Key::Digit5,
        Key::Digit6,
        Key::Digit7,
        Key::Digit8,
        Key::Digit9,
    ];
    // Shifted symbols of the digit row, from 0 to 9.
    const DIGIT_SYMBOLS: &str = ")!@#$%^&*(";
    if c.is_ascii_lowercase() {
        return Some((LETTERS[usize::from(c as u8 - b'a')], false));
    }
    if c.is_ascii_uppercase() {
        return Some((LETTERS[usize::from(c as u8 - b'A')], true));
    }
    if c.is_ascii_digit() {
        return Some((DIGITS[usize::from(c as u8 - b'0')], false));
    }
    if let Some(i) = DIGIT_SYMBOLS.find(c) {
        return Some((DIGITS[i], true));
    }
    let plain = |key| Some((key, false));
    let shifted = |key| Some((key, true));
    match c {
        ' ' => plain(Key::Space),
        '\n' | '\r' => plain(Key::Enter),
        '\t' => plain(Key::Tab),
        '\x08' => plain(Key::Backspace),
        '\x1b' => plain(Key::Escape),
        '`' => plain(Key::Backquote),
        '~' => shifted(Key::Backquote),
        '-' => plain(Key::Minus),
        '_' => shifted(Key::Minus),
        '=' => plain(Key::Equal),
        '+' => shifted(Key::Equal),
        '[' => plain(Key::BracketLeft),
        '{' => shifted(Key::BracketLeft),
        ']' => plain(Key::BracketRight),
        '}' => shifted(Key::BracketRight),
        '\\' => plain(Key::Backslash),
        '|' => shifted(Key::Backslash),
        ';' => plain(Key::Semicolon),
        ':' => shifted(Key::Semicolon),
        '\'' => plain(Key::Quote),
        '"' => shifted(Key::Quote),
        ',' => plain(Key::Comma),
        '<' => shifted(Key::Comma),
        '.' => plain(Key::Period),
        '>' => shifted(Key::Period),
        '/' => plain(Key::Slash),
        '?' => shifted(Key::Slash),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order_and_codes_are_unique() {
        for (i, c) in TABLE.iter().enumerate() {
            assert_eq!(c.key as usize, i, "{:?} out of place", c.key);
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &TABLE {
            assert!(seen.insert(c.set3), "set 3 code {:#x} twice", c.set3);
        }
        let mut hids = std::collections::BTreeSet::new();
        for c in &TABLE {
            assert!(hids.insert(c.hid), "HID usage {:#x} twice", c.hid);
            assert_eq!(Key::from_hid_usage(u16::from(c.hid)), Some(c.key));
        }
    }

    /// What the 8042 makes of a set 2 sequence when translating.
    fn translated(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut brk = false;
        for &b in bytes {
            if b == 0xf0 {
                brk = true;
                continue;
            }
            out.push(translate(b) | if std::mem::take(&mut brk) { 0x80 } else { 0 });
        }
        out
    }

    #[test]
    fn translating_set_2_gives_set_1_for_every_key() {
        for c in &TABLE {
            for f in [make_codes, break_codes] {
                assert_eq!(translated(&f(c.key, 2)), f(c.key, 1), "{:?}", c.key);
            }
        }
    }

    #[test]
    fn layout_covers_printable_ascii() {
        for b in 0x20u8..0x7f {
            assert!(us_layout(char::from(b)).is_some(), "{:?}", char::from(b));
        }
        assert_eq!(us_layout('R'), Some((Key::R, true)));
        assert_eq!(us_layout('('), Some((Key::Digit9, true)));
        assert_eq!(us_layout('é'), None);
    }
}
