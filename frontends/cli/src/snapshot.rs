//! Snapshots from the command line: `run --snapshot-at N PATH` and `--snapshot-on-signal
//! PATH` save the machine and go on running; `nestor resume PATH` carries on from a file.

use anyhow::Context;
use clap::Args;
use nestor_headless::DisplayOutputs;
use nestor_headless::{exit_status, save_screenshot, save_vga_text, ChardevSpec};
use nestor_machine::snapshot::{self, FileStamp, KernelRecord, ResumeOptions};
use nestor_machine::{Machine, MachineExit};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Instructions between two looks at the SIGUSR1 flag (a few milliseconds of guest time).
const SIGNAL_SLICE: u64 = 1_000_000;

#[derive(Args, Clone, Debug, Default)]
pub struct SnapshotArgs {
    /// Save a snapshot to PATH once N instructions have been spent; the run goes on.
    /// May be given more than once.
    #[arg(long, num_args = 2, value_names = ["N", "PATH"], action = clap::ArgAction::Append)]
    snapshot_at: Vec<String>,
    /// Save a snapshot to PATH each time the process receives SIGUSR1; the run goes on.
    #[arg(long, value_name = "PATH")]
    snapshot_on_signal: Option<PathBuf>,
}

impl SnapshotArgs {
    /// Whether the run must be driven by [`run`].
    #[must_use]
    pub fn active(&self) -> bool {
        !self.snapshot_at.is_empty() || self.snapshot_on_signal.is_some()
    }

    /// (instruction count, file) pairs, earliest first.
    fn points(&self) -> anyhow::Result<Vec<(u64, PathBuf)>> {
        let mut points = Vec::new();
        for pair in self.snapshot_at.chunks(2) {
            let [n, path] = pair else {
                anyhow::bail!("--snapshot-at takes an instruction count and a file");
            };
            let n = n
                .parse()
                .with_context(|| format!("--snapshot-at: '{n}' is not an instruction count"))?;
            points.push((n, PathBuf::from(path)));
        }
        points.sort_by_key(|(n, _)| *n);
        Ok(points)
    }
}

#[derive(Args)]
pub struct ResumeArgs {
    /// The snapshot file (it holds the machine configuration).
    path: PathBuf,
    /// COM1: stdio, file:PATH or none.
    #[arg(long, default_value = "stdio", value_parser = crate::parse_chardev)]
    serial: ChardevSpec,
    /// Debug console on port 0xE9: stdio, file:PATH or none.
    #[arg(long, default_value = "none", value_parser = crate::parse_chardev)]
    debugcon: ChardevSpec,
    /// Stop once this many instructions have been spent since power-on (as `run` counts
    /// them, so `run --max-insns M` and a resume with the same M stop at the same point).
    #[arg(long, value_name = "N")]
    max_insns: Option<u64>,
    /// Resume even if a disk image or kernel file changed since the snapshot was taken.
    #[arg(long)]
    force: bool,
    /// Log every executed instruction (to stderr, through `tracing`).
    #[arg(long)]
    trace: bool,
    /// Save the VGA picture as PNG when the run ends.
    #[arg(long, value_name = "PATH.png")]
    screenshot: Option<PathBuf>,
    /// Save the VGA text screen as UTF-8 lines when the run ends.
    #[arg(long, value_name = "PATH")]
    vga_text: Option<PathBuf>,
    #[command(flatten)]
    snap: SnapshotArgs,
    /// The engine to resume under (the snapshot does not depend on the one it was taken with).
    #[command(flatten)]
    accel: crate::accel::AccelArgs,
    /// Sound and gamepad, as for `run`.
    #[command(flatten)]
    audio: crate::audio::AudioArgs,
    /// `sdl` carries on in a window (headless by default).
    #[arg(long, value_enum, value_name = "sdl|none", conflicts_with_all = ["screenshot", "vga_text"])]
    display: Option<crate::display::DisplayKind>,
    /// Start the window in full screen.
    #[arg(long)]
    full_screen: bool,
    /// The window's Ctrl+Alt+1 / Ctrl+Alt+2 snapshot file (default: the resumed file).
    #[arg(long, value_name = "PATH")]
    snapshot_file: Option<PathBuf>,
}

/// Remember the kernel's files, so that a resume before the BIOS booted it can read them.
pub fn record_kernel(
    machine: &mut Machine,
    kernel: Option<&Path>,
    initrd: Option<&str>,
    cmdline: &str,
) {
    let Some(kernel) = kernel else {
        return;
    };
    let stamp = |p: &Path| FileStamp {
        path: std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        ..FileStamp::default()
    };
    machine.snapshot_config.kernel = Some(KernelRecord {
        kernel: stamp(kernel),
        initrd: initrd
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| stamp(Path::new(s)))
            .collect(),
        cmdline: cmdline.to_string(),
    });
}

fn save(machine: &Machine, path: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = snapshot::save(machine, path)?;
    eprintln!(
        "nestor: snapshot {} saved after {} instructions ({} MiB file, {} MiB of RAM written, {:.2?})",
        path.display(),
        machine.spent(),
        report.file_len >> 20,
        report.ram_written >> 20,
        started.elapsed()
    );
    Ok(())
}

/// Run like `run_with_display`, stopping to save snapshots at the requested instruction
/// counts and whenever SIGUSR1 arrives (checked between slices of the run).
pub fn run(
    machine: &mut Machine,
    snap: &SnapshotArgs,
    max_insns: Option<u64>,
    display: &DisplayOutputs,
) -> anyhow::Result<MachineExit> {
    let mut points = snap.points()?;
    let signalled = Arc::new(AtomicBool::new(false));
    if snap.snapshot_on_signal.is_some() {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&signalled))
            .context("cannot install the SIGUSR1 handler")?;
        eprintln!(
            "nestor: SIGUSR1 to process {} saves a snapshot",
            std::process::id()
        );
    }
    let mut shot_at = display
        .screenshot_at
        .filter(|_| display.screenshot.is_some());
    let mut shot_taken = false;
    let limit = max_insns.unwrap_or(u64::MAX);
    let exit = loop {
        let spent = machine.spent();
        let mut stop = limit;
        if let Some((n, _)) = points.first() {
            stop = stop.min(*n);
        }
        if let Some(n) = shot_at {
            stop = stop.min(n);
        }
        if snap.snapshot_on_signal.is_some() {
            stop = stop.min(spent.saturating_add(SIGNAL_SLICE));
        }
        let exit = machine.run(Some(stop))?;
        if exit != MachineExit::BudgetExhausted {
            break exit;
        }
        let spent = machine.spent();
        while points.first().is_some_and(|(n, _)| *n <= spent) {
            let (_, path) = points.remove(0);
            save(machine, &path)?;
        }
        if let Some(path) = &snap.snapshot_on_signal {
            if signalled.swap(false, Ordering::SeqCst) {
                save(machine, path)?;
            }
        }
        if let (Some(n), Some(path)) = (shot_at, &display.screenshot) {
            if n <= spent {
                save_screenshot(machine, path)?;
                shot_at = None;
                shot_taken = true;
            }
        }
        if spent >= limit {
            break exit;
        }
    };
    if let (Some(path), false) = (&display.screenshot, shot_taken) {
        save_screenshot(machine, path)?;
    }
    if let Some(path) = &display.vga_text {
        save_vga_text(machine, path)?;
    }
    Ok(exit)
}

/// `nestor resume`: rebuild the machine from the file and run on.
pub fn resume(args: ResumeArgs) -> anyhow::Result<i32> {
    crate::init_tracing(args.trace);
    let ports = crate::host::HostPorts::open(&args.serial, &args.debugcon, None)?;
    let mut opts = ResumeOptions {
        trace: args.trace,
        force: args.force,
        ..ports.resume_options()
    };
    // Resolve --accel/--engine-plan as `run` does, then hand the choice to the rebuild.
    let mut engine = nestor_machine::MachineConfig::new(Vec::new(), 1);
    crate::accel::apply(&args.accel, &mut engine)?;
    let accel = engine.accel;
    opts.adjust = Some(Box::new(move |c: &mut nestor_machine::MachineConfig| {
        c.accel = engine.accel;
        c.engine_plan = engine.engine_plan;
    }));
    let started = std::time::Instant::now();
    let mut machine = snapshot::resume(&args.path, opts)?;
    tracing::info!(
        "resumed {} in {:.2?}",
        args.path.display(),
        started.elapsed()
    );
    let display = DisplayOutputs {
        screenshot: args.screenshot.clone(),
        screenshot_at: None,
        vga_text: args.vga_text.clone(),
    };
    let audio_session = crate::audio::attach(&mut machine, &args.audio)?;
    let in_window = args.display == Some(crate::display::DisplayKind::Sdl);
    let exit = if in_window && !args.snap.active() {
        let window = crate::display::Window {
            name: "Nestor".to_string(),
            full_screen: args.full_screen,
            snapshot_file: args.snapshot_file.clone().unwrap_or(args.path.clone()),
        };
        let host = crate::display::Host {
            ports,
            accel,
            audio: audio_session.clone(),
        };
        crate::display::window(&mut machine, window, args.max_insns, host)?
    } else {
        run(&mut machine, &args.snap, args.max_insns, &display)?
    };
    crate::audio::finish(&machine);
    drop(audio_session);
    drop(machine);
    let (code, message) = exit_status(exit);
    if let Some(m) = message {
        eprintln!("{m}");
    }
    Ok(code)
}
