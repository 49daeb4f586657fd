//! Nestor's desktop frontend: the guest's VGA/VBE picture in an SDL2 window, the host
//! keyboard and mouse fed to the i8042, and hotkeys (see [`hotkeys::HOTKEYS`]).
//!
//! The frontend holds no emulation state. It runs the machine in slices of guest time
//! ([`Machine::run_until`]) and between slices polls SDL's events, turns keys and mouse
//! motion into `I8042::key_event`/`mouse_event` (the i8042's input queue), and redraws the
//! window only when the VGA's generation counter says the picture changed (or, in text
//! modes, when the cursor may have blinked): an idle guest costs a few frames per second, a
//! busy one gets up to 60.
//!
//! Snapshot hotkeys file a request that the loop serves between slices ([`snapshots`]).
//! An audio backend plugs in through [`AudioSink`]; none is built here.

pub mod hotkeys;
pub mod keymap;
pub mod layout;
pub mod snapshots;
pub mod status;
mod window;

use nestor_machine::{Machine, MachineExit};
pub use snapshots::{PlainRebuild, Rebuild, SnapshotRequest, SnapshotSlot};
use std::path::PathBuf;

/// Something that takes the machine's sound out after each slice (e.g. a cpal stream).
pub trait AudioSink {
    /// Called after every slice the guest ran.
    fn after_slice(&mut self, machine: &mut Machine);
    /// The guest was paused (`true`) or resumed.
    fn set_paused(&mut self, _paused: bool) {}
}

/// How to run the window.
pub struct SdlOptions {
    /// Start of the window title, e.g. "Nestor".
    pub name: String,
    /// Stop after this many retired instructions (`--max-insns`).
    pub max_insns: Option<u64>,
    /// Where Ctrl+Alt+S writes `nestor-N.png`.
    pub screenshot_dir: PathBuf,
    /// Start in full screen.
    pub fullscreen: bool,
    pub audio: Option<Box<dyn AudioSink>>,
    /// Where Ctrl+Alt+1 saves and Ctrl+Alt+2 restores from.
    pub snapshots: SnapshotSlot,
}

impl Default for SdlOptions {
    fn default() -> Self {
        Self {
            name: "Nestor".to_string(),
            max_insns: None,
            screenshot_dir: PathBuf::from("."),
            fullscreen: false,
            audio: None,
            snapshots: SnapshotSlot::default(),
        }
    }
}

/// Whether a window can be opened: an X11 or Wayland display is named in the environment.
#[must_use]
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Run `machine` in a window until the guest stops it, the budget runs out or the window is
/// closed (reported as `PowerOff`, as if the user switched the machine off).
pub fn run(machine: &mut Machine, options: SdlOptions) -> anyhow::Result<MachineExit> {
    anyhow::ensure!(
        display_available(),
        "--display sdl needs a display: neither DISPLAY nor WAYLAND_DISPLAY is set (use --display none)"
    );
    window::run(machine, options)
}
