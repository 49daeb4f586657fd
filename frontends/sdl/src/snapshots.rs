//! Ctrl+Alt+1 / Ctrl+Alt+2: save the machine to a snapshot file and bring it back.
//!
//! A hotkey only files a [`SnapshotRequest`]; the run loop serves it between two slices of
//! guest time ([`SnapshotSlot::serve`]), never inside one. A restore builds a new machine from
//! the file and swaps it in: the window, and the host resources the [`Rebuild`] carries over
//! (serial files, sound), stay.

use anyhow::Context;
use nestor_machine::snapshot::{self, ResumeOptions};
use nestor_machine::Machine;
use std::path::{Path, PathBuf};

/// The default snapshot file, in the working directory.
pub const DEFAULT_SNAPSHOT_FILE: &str = "nestor-snapshot.elf";

/// What a snapshot hotkey asks of the run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotRequest {
    Save,
    Restore,
}

/// Builds the machine a snapshot file describes, wired to the host as the running one is.
pub trait Rebuild {
    /// A machine resumed from `path`; `old` is still the running one (for its host resources).
    fn rebuild(&mut self, path: &Path, old: &mut Machine) -> anyhow::Result<Machine>;
}

/// A resume with no host ports: no serial, no debug console, no sound sinks.
pub struct PlainRebuild;

impl Rebuild for PlainRebuild {
    fn rebuild(&mut self, path: &Path, _old: &mut Machine) -> anyhow::Result<Machine> {
        Ok(snapshot::resume(path, ResumeOptions::default())?)
    }
}

/// Where the hotkeys save to and how a restore rebuilds the machine.
pub struct SnapshotSlot {
    pub path: PathBuf,
    pub rebuild: Box<dyn Rebuild>,
}

impl Default for SnapshotSlot {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_SNAPSHOT_FILE),
            rebuild: Box::new(PlainRebuild),
        }
    }
}

impl SnapshotSlot {
    /// Carry out `request` on the machine (between slices) and say what happened, for the
    /// title bar. A failed restore leaves the running machine as it was.
    pub fn serve(&mut self, request: SnapshotRequest, machine: &mut Machine) -> String {
        let path = self.path.display().to_string();
        let text = match request {
            SnapshotRequest::Save => match self.save(machine) {
                Ok(()) => format!("snapshot saved to {path}"),
                Err(e) => format!("snapshot not saved: {e:#}"),
            },
            SnapshotRequest::Restore => match self.restore(machine) {
                Ok(()) => format!("snapshot restored from {path}"),
                Err(e) => format!("snapshot not restored: {e:#}"),
            },
        };
        tracing::info!("{text}");
        text
    }

    fn save(&self, machine: &Machine) -> anyhow::Result<()> {
        snapshot::save(machine, &self.path)?;
        Ok(())
    }

    fn restore(&mut self, machine: &mut Machine) -> anyhow::Result<()> {
        anyhow::ensure!(self.path.exists(), "no snapshot yet (Ctrl+Alt+1 saves one)");
        let restored = self
            .rebuild
            .rebuild(&self.path, machine)
            .with_context(|| format!("cannot resume {}", self.path.display()))?;
        *machine = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_machine::{MachineConfig, MachineExit};

    fn tetris() -> Machine {
        let config = MachineConfig::new(nestor_roms::tetris().to_vec(), 4);
        Machine::new(config).expect("machine")
    }

    fn run_to(machine: &mut Machine, insns: u64) {
        let exit = machine.run(Some(insns)).expect("run");
        assert_eq!(exit, MachineExit::BudgetExhausted);
    }

    fn picture(machine: &mut Machine) -> Vec<u8> {
        let vga = machine.board.device_mut::<nestor_vga::Vga>().expect("vga");
        vga.render().rgb
    }

    fn temp_file(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("nestor-sdl-{}-{name}", std::process::id()))
    }

    #[test]
    fn save_then_restore_brings_back_the_saved_machine() {
        let path = temp_file("slot.elf");
        let mut slot = SnapshotSlot {
            path: path.clone(),
            ..SnapshotSlot::default()
        };
        let mut machine = tetris();
        run_to(&mut machine, 3_000_000);
        let text = slot.serve(SnapshotRequest::Save, &mut machine);
        assert!(text.starts_with("snapshot saved"), "{text}");
        let saved_picture = picture(&mut machine);
        let saved_retired = machine.vcpu.retired();
        let saved_rip = machine.vcpu.state().rip;

        // The game goes on: a key moves the piece and gravity pulls it down.
        if let Some(kbc) = machine.board.device_mut::<nestor_i8042::I8042>() {
            kbc.key_event(nestor_i8042::Key::ArrowLeft, true);
            kbc.key_event(nestor_i8042::Key::ArrowLeft, false);
        }
        run_to(&mut machine, 200_000_000);
        assert_ne!(picture(&mut machine), saved_picture, "the game never moved");

        let text = slot.serve(SnapshotRequest::Restore, &mut machine);
        assert!(text.starts_with("snapshot restored"), "{text}");
        assert_eq!(machine.vcpu.retired(), saved_retired);
        assert_eq!(machine.vcpu.state().rip, saved_rip);
        assert_eq!(picture(&mut machine), saved_picture);
        // The restored machine runs on as the saved one would have.
        run_to(&mut machine, 4_000_000);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn restore_without_a_file_keeps_the_running_machine() {
        let mut slot = SnapshotSlot {
            path: temp_file("missing.elf"),
            ..SnapshotSlot::default()
        };
        let mut machine = tetris();
        run_to(&mut machine, 1_000_000);
        let retired = machine.vcpu.retired();
        let text = slot.serve(SnapshotRequest::Restore, &mut machine);
        assert!(text.contains("no snapshot yet"), "{text}");
        assert_eq!(machine.vcpu.retired(), retired);
    }

    #[test]
    fn a_save_that_cannot_be_written_is_reported() {
        let mut slot = SnapshotSlot {
            path: PathBuf::from("/nonexistent-dir/for/sure/snap.elf"),
            ..SnapshotSlot::default()
        };
        let mut machine = tetris();
        run_to(&mut machine, 1_000_000);
        let text = slot.serve(SnapshotRequest::Save, &mut machine);
        assert!(text.starts_with("snapshot not saved"), "{text}");
    }
}
