//! The window's hotkeys: Ctrl+Alt plus a letter or digit, never passed to the guest.

use sdl2::keyboard::{Mod, Scancode};

/// What a hotkey does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hotkey {
    /// Grab the mouse (relative PS/2 motion) or release it.
    ToggleGrab,
    /// Stop or resume the guest.
    TogglePause,
    /// Reset the machine, as the reset button does.
    Reset,
    /// Press the ACPI power button.
    PowerButton,
    /// Save the picture as a PNG file.
    Screenshot,
    /// Switch between full screen and a window.
    ToggleFullscreen,
    /// Save the machine to the snapshot file.
    SaveSnapshot,
    /// Bring the machine back from the snapshot file.
    RestoreSnapshot,
}

/// Every hotkey with its key, the key's name and what it does, for the help line.
pub const HOTKEYS: [(Hotkey, Scancode, &str, &str); 8] = [
    (
        Hotkey::ToggleGrab,
        Scancode::G,
        "G",
        "grab / release the mouse",
    ),
    (Hotkey::TogglePause, Scancode::P, "P", "pause / resume"),
    (Hotkey::Reset, Scancode::R, "R", "reset"),
    (Hotkey::PowerButton, Scancode::O, "O", "ACPI power button"),
    (Hotkey::Screenshot, Scancode::S, "S", "screenshot (PNG)"),
    (Hotkey::ToggleFullscreen, Scancode::F, "F", "full screen"),
    (Hotkey::SaveSnapshot, Scancode::Num1, "1", "save a snapshot"),
    (
        Hotkey::RestoreSnapshot,
        Scancode::Num2,
        "2",
        "restore the snapshot",
    ),
];

/// The hotkey a key press makes with the modifiers held, if any: Ctrl and Alt (either
/// side), without Shift or the Windows key.
#[must_use]
pub fn hotkey(scancode: Scancode, mods: Mod) -> Option<Hotkey> {
    let ctrl = mods.intersects(Mod::LCTRLMOD | Mod::RCTRLMOD);
    let alt = mods.intersects(Mod::LALTMOD | Mod::RALTMOD);
    let other = mods.intersects(Mod::LSHIFTMOD | Mod::RSHIFTMOD | Mod::LGUIMOD | Mod::RGUIMOD);
    if !ctrl || !alt || other {
        return None;
    }
    HOTKEYS
        .iter()
        .find(|(_, key, _, _)| *key == scancode)
        .map(|(hotkey, _, _, _)| *hotkey)
}

/// "Ctrl+Alt+G grab / release the mouse, ..." for `--help` style listings.
#[must_use]
pub fn help_line() -> String {
    HOTKEYS
        .iter()
        .map(|(_, _, name, what)| format!("Ctrl+Alt+{name} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_alt_letters_are_hotkeys() {
        let ctrl_alt = Mod::LCTRLMOD | Mod::LALTMOD;
        assert_eq!(hotkey(Scancode::G, ctrl_alt), Some(Hotkey::ToggleGrab));
        assert_eq!(
            hotkey(Scancode::P, Mod::RCTRLMOD | Mod::RALTMOD),
            Some(Hotkey::TogglePause)
        );
        assert_eq!(hotkey(Scancode::S, ctrl_alt), Some(Hotkey::Screenshot));
        assert_eq!(
            hotkey(Scancode::F, ctrl_alt),
            Some(Hotkey::ToggleFullscreen)
        );
        assert_eq!(hotkey(Scancode::R, ctrl_alt), Some(Hotkey::Reset));
        assert_eq!(hotkey(Scancode::O, ctrl_alt), Some(Hotkey::PowerButton));
        assert_eq!(hotkey(Scancode::Num1, ctrl_alt), Some(Hotkey::SaveSnapshot));
        assert_eq!(
            hotkey(Scancode::Num2, Mod::RCTRLMOD | Mod::LALTMOD),
            Some(Hotkey::RestoreSnapshot)
        );
    }

    #[test]
    fn the_guest_keeps_everything_else() {
        assert_eq!(hotkey(Scancode::G, Mod::LCTRLMOD), None);
        assert_eq!(hotkey(Scancode::G, Mod::LALTMOD), None);
        assert_eq!(hotkey(Scancode::Delete, Mod::LCTRLMOD | Mod::LALTMOD), None);
        // Ctrl+Alt+F1..F12 switch the guest's Linux consoles, so they stay the guest's.
        assert_eq!(hotkey(Scancode::F1, Mod::LCTRLMOD | Mod::LALTMOD), None);
        assert_eq!(hotkey(Scancode::Num1, Mod::LCTRLMOD), None);
        let shifted = Mod::LCTRLMOD | Mod::LALTMOD | Mod::LSHIFTMOD;
        assert_eq!(hotkey(Scancode::G, shifted), None);
    }

    #[test]
    fn help_names_every_hotkey() {
        let help = help_line();
        for (_, _, name, _) in HOTKEYS {
            assert!(help.contains(&format!("Ctrl+Alt+{name}")), "{help}");
        }
    }
}
