//! `--display sdl|none`, `--demo` and headless scripted keys (`--keys-at`): where the
//! picture goes and where the keyboard comes from.

use crate::audio::AudioSession;
use crate::demo::Demo;
use crate::host::HostPorts;
use clap::{Args, ValueEnum};
use nestor_headless::{run_with_display, save_screenshot, save_vga_text, DisplayOutputs};
use nestor_i8042::{Key, I8042};
use nestor_machine::kvm::Accel;
use nestor_machine::{Machine, MachineExit};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DesktopArgs {
    /// Where the picture goes: `sdl` (a window; the default when DISPLAY or WAYLAND_DISPLAY
    /// is set and no headless output is asked for) or `none`.
    #[arg(long, value_enum, value_name = "sdl|none")]
    pub display: Option<DisplayKind>,
    /// Run a built-in demo as the whole guest.
    #[arg(long, value_enum, value_name = "NAME")]
    pub demo: Option<Demo>,
    /// Headless scripted keys: press and release KEY once N instructions have been spent,
    /// e.g. `--keys-at 3000000:Left,4000000:Up` (names as in the i8042's `Key`: A, Digit1,
    /// Enter, Space, ArrowLeft or Left, ...).
    #[arg(long, value_name = "N:KEY,...", value_delimiter = ',', value_parser = parse_key_at)]
    pub keys_at: Vec<ScriptedKey>,
    /// Start the window in full screen.
    #[arg(long)]
    pub full_screen: bool,
    /// The window's snapshot file: Ctrl+Alt+1 saves the machine to it, Ctrl+Alt+2 restores it.
    #[arg(long, value_name = "PATH", default_value = nestor_sdl::snapshots::DEFAULT_SNAPSHOT_FILE)]
    pub snapshot_file: PathBuf,
}

/// What a window's restored machine is wired to: the run's ports, engine and sound.
pub struct Host {
    pub ports: HostPorts,
    pub accel: Accel,
    pub audio: AudioSession,
}

impl nestor_sdl::Rebuild for Host {
    fn rebuild(&mut self, path: &Path, old: &mut Machine) -> anyhow::Result<Machine> {
        let mut opts = self.ports.resume_options();
        let accel = self.accel;
        opts.adjust = Some(Box::new(move |c: &mut nestor_machine::MachineConfig| {
            c.accel = accel;
        }));
        // What the old machine played so far is heard (and recorded) before the switch.
        crate::audio::finish(old);
        let mut machine = nestor_machine::snapshot::resume(path, opts)?;
        self.audio.connect(&mut machine);
        Ok(machine)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DisplayKind {
    /// An SDL2 window.
    Sdl,
    /// No window (serial, screenshots and exit status only).
    None,
}

/// A key pressed and released at an instruction count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptedKey {
    pub at: u64,
    pub key: Key,
}

/// `N:KEY`.
pub fn parse_key_at(s: &str) -> Result<ScriptedKey, String> {
    let (at, name) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not N:KEY"))?;
    let at = at
        .trim()
        .parse()
        .map_err(|e| format!("'{at}' is not an instruction count: {e}"))?;
    let key = key_by_name(name.trim()).ok_or_else(|| format!("unknown key '{name}'"))?;
    Ok(ScriptedKey { at, key })
}

/// A key by its `Key` variant name (any case), or Left/Right/Up/Down for the arrows.
#[must_use]
pub fn key_by_name(name: &str) -> Option<Key> {
    let wanted = name.to_ascii_lowercase();
    let arrow = format!("arrow{wanted}");
    (0..=0xffu16).filter_map(Key::from_hid_usage).find(|k| {
        let n = format!("{k:?}").to_ascii_lowercase();
        n == wanted || n == arrow
    })
}

/// Which display a run gets: `--display`, else a window when one can be opened and the run
/// asks for no headless output.
#[must_use]
pub fn choose(
    args: &DesktopArgs,
    outputs: &DisplayOutputs,
    display_available: bool,
) -> DisplayKind {
    let headless_outputs =
        outputs.screenshot.is_some() || outputs.vga_text.is_some() || !args.keys_at.is_empty();
    match args.display {
        Some(kind) => kind,
        None if display_available && !headless_outputs => DisplayKind::Sdl,
        None => DisplayKind::None,
    }
}

/// Run the machine on the chosen display.
pub fn run(
    machine: &mut Machine,
    args: &DesktopArgs,
    max_insns: Option<u64>,
    outputs: &DisplayOutputs,
    host: Host,
) -> anyhow::Result<MachineExit> {
    match choose(args, outputs, nestor_sdl::display_available()) {
        DisplayKind::Sdl => {
            let name = match args.demo {
                Some(demo) => format!("Nestor: {}", format!("{demo:?}").to_lowercase()),
                None => "Nestor".to_string(),
            };
            let options = Window {
                name,
                full_screen: args.full_screen,
                snapshot_file: args.snapshot_file.clone(),
            };
            window(machine, options, max_insns, host)
        }
        DisplayKind::None => run_scripted(machine, &args.keys_at, max_insns, outputs),
    }
}

/// How the window looks and where its snapshot hotkeys keep the machine.
pub struct Window {
    pub name: String,
    pub full_screen: bool,
    pub snapshot_file: PathBuf,
}

/// Run the machine in an SDL window.
pub fn window(
    machine: &mut Machine,
    window: Window,
    max_insns: Option<u64>,
    host: Host,
) -> anyhow::Result<MachineExit> {
    let options = nestor_sdl::SdlOptions {
        name: window.name,
        max_insns,
        fullscreen: window.full_screen,
        snapshots: nestor_sdl::SnapshotSlot {
            path: window.snapshot_file,
            rebuild: Box::new(host),
        },
        ..Default::default()
    };
    nestor_sdl::run(machine, options)
}

/// Headless: deliver the scripted keys at their instruction counts, then run on.
fn run_scripted(
    machine: &mut Machine,
    keys: &[ScriptedKey],
    max_insns: Option<u64>,
    outputs: &DisplayOutputs,
) -> anyhow::Result<MachineExit> {
    let mut keys = keys.to_vec();
    keys.sort_by_key(|k| k.at);
    for k in keys {
        if max_insns.is_some_and(|max| k.at >= max) {
            break;
        }
        match machine.run(Some(k.at))? {
            MachineExit::BudgetExhausted => {}
            exit => {
                // The guest stopped first: the end-of-run files are still written.
                if let Some(path) = &outputs.screenshot {
                    save_screenshot(machine, path)?;
                }
                if let Some(path) = &outputs.vga_text {
                    save_vga_text(machine, path)?;
                }
                return Ok(exit);
            }
        }
        let kbc = machine
            .board
            .device_mut::<I8042>()
            .ok_or_else(|| anyhow::anyhow!("--keys-at: the machine has no keyboard"))?;
        kbc.key_event(k.key, true);
        kbc.key_event(k.key, false);
    }
    run_with_display(machine, max_insns, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        desktop: DesktopArgs,
    }

    #[test]
    fn keys_parse_by_name_and_count() {
        assert_eq!(
            parse_key_at("3000000:Left"),
            Ok(ScriptedKey {
                at: 3_000_000,
                key: Key::ArrowLeft
            })
        );
        assert_eq!(parse_key_at("5:space").map(|k| k.key), Ok(Key::Space));
        assert_eq!(parse_key_at("5:Digit1").map(|k| k.key), Ok(Key::Digit1));
        assert!(parse_key_at("5:NoSuchKey").is_err());
        assert!(parse_key_at("Left").is_err());
        assert!(parse_key_at("x:Left").is_err());
        let cli = Cli::try_parse_from(["t", "--keys-at", "1:Up,2:Down"]).expect("parse");
        assert_eq!(cli.desktop.keys_at.len(), 2);
    }

    #[test]
    fn the_window_snapshot_file_defaults_to_the_working_directory() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).expect("parse").desktop;
        assert_eq!(
            parse(&["t"]).snapshot_file,
            PathBuf::from("nestor-snapshot.elf")
        );
        assert_eq!(
            parse(&["t", "--snapshot-file", "/tmp/game.elf"]).snapshot_file,
            PathBuf::from("/tmp/game.elf")
        );
    }

    #[test]
    fn a_window_only_when_a_display_exists_and_nothing_headless_is_asked() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["t"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).expect("parse").desktop
        };
        let none = DisplayOutputs::default();
        assert_eq!(choose(&args(&[]), &none, true), DisplayKind::Sdl);
        assert_eq!(choose(&args(&[]), &none, false), DisplayKind::None);
        let shot = DisplayOutputs {
            screenshot: Some("x.png".into()),
            ..Default::default()
        };
        assert_eq!(choose(&args(&[]), &shot, true), DisplayKind::None);
        assert_eq!(
            choose(&args(&["--keys-at", "1:A"]), &none, true),
            DisplayKind::None
        );
        assert_eq!(
            choose(&args(&["--display", "none"]), &none, true),
            DisplayKind::None
        );
        // Asked for explicitly, a window is tried even without a display (and then fails
        // with a clear message in nestor_sdl::run).
        assert_eq!(
            choose(&args(&["--display", "sdl"]), &none, false),
            DisplayKind::Sdl
        );
    }
}
