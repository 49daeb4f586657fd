//! SDL scancodes to the keys of the guest's PS/2 keyboard. SDL numbers its scancodes by
//! USB HID usage (keyboard page), which is what `Key::from_hid_usage` takes.

use nestor_i8042::Key;
use sdl2::keyboard::Scancode;

/// The guest key at the position of a host key, if the PC keyboard has one.
#[must_use]
pub fn guest_key(scancode: Scancode) -> Option<Key> {
    let usage = u16::try_from(scancode as i32).ok()?;
    Key::from_hid_usage(usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_i8042::make_codes;
    use std::collections::BTreeSet;

    #[test]
    fn letters_arrows_and_modifiers_map_to_their_keys() {
        let cases = [
            (Scancode::A, Key::A),
            (Scancode::Z, Key::Z),
            (Scancode::Num1, Key::Digit1),
            (Scancode::Return, Key::Enter),
            (Scancode::Space, Key::Space),
            (Scancode::Left, Key::ArrowLeft),
            (Scancode::Up, Key::ArrowUp),
            (Scancode::LCtrl, Key::ControlLeft),
            (Scancode::RAlt, Key::AltRight),
            (Scancode::F12, Key::F12),
            (Scancode::KpEnter, Key::NumpadEnter),
        ];
        for (scancode, key) in cases {
            assert_eq!(guest_key(scancode), Some(key), "{scancode:?}");
        }
    }

    /// Checked against IBM's set 1 codes, not against our own table: "A" is 0x1E, the left
    /// arrow is the extended E0 4B, Enter 0x1C.
    #[test]
    fn sdl_keys_reach_the_guest_as_ibm_set_1_codes() {
        let set1 = |s| make_codes(guest_key(s).expect("mapped"), 1);
        assert_eq!(set1(Scancode::A), [0x1e]);
        assert_eq!(set1(Scancode::Return), [0x1c]);
        assert_eq!(set1(Scancode::Left), [0xe0, 0x4b]);
        assert_eq!(set1(Scancode::RCtrl), [0xe0, 0x1d]);
    }

    #[test]
    fn every_pc_key_has_an_sdl_scancode() {
        // Every key of the PC keyboard, found by its HID usage (only valid usages reach
        // `Scancode::from_i32`, which must not see numbers SDL does not define).
        let keys: BTreeSet<Key> = (0..=0xe7u16).filter_map(Key::from_hid_usage).collect();
        assert!(keys.len() >= 104, "only {} keys", keys.len());
        for key in keys {
            let scancode = Scancode::from_i32(i32::from(key.hid_usage())).expect("scancode");
            assert_eq!(guest_key(scancode), Some(key), "{scancode:?}");
        }
    }
}
