//! `nestor`: the command-line front end. Flags follow QEMU's where one exists.

mod accel;
mod audio;
mod bench;
mod demo;
mod display;
mod gdb;
mod host;
mod snapshot;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use nestor_headless::{exit_status, status, ChardevSpec, DisplayOutputs};
use nestor_machine::{ClockMode, DriveSlot, DriveSpec, Machine, MachineConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "nestor", version, about = "A full-system x86 PC emulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a machine headless (serial console on stdout by default).
    Run(Box<RunArgs>),
    /// Resume a machine from a snapshot file (`run --snapshot-at`, `--snapshot-on-signal`).
    Resume(Box<snapshot::ResumeArgs>),
    /// Measure the interpreter's speed on the built-in benchmark ROMs.
    Bench(bench::BenchArgs),
    /// Write a built-in ROM image to a file (to run it under another emulator).
    Rom {
        #[arg(value_enum)]
        name: bench::BuiltinRom,
        /// Output file.
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ClockArg {
    /// Time follows the host clock (interactive use).
    Realtime,
    /// Time is derived from retired instructions: identical runs print identical bytes.
    Deterministic,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    accel: accel::AccelArgs,
    /// Firmware: `nestor` for Nestor's own BIOS, a raw ROM image (64 KiB to 1 MiB), or
    /// `none` to start a --kernel directly with no firmware. Without it the built-in demo
    /// guest runs, or Nestor's BIOS when --kernel is given.
    #[arg(long, value_name = "FILE|nestor|none")]
    bios: Option<PathBuf>,
    /// VGA BIOS for third-party firmware (--bios FILE), offered to it through fw_cfg as
    /// `vgaroms/NAME`, as QEMU does for SeaBIOS. Default: vgabios-stdvga.bin beside the
    /// firmware file, when there is one.
    #[arg(long, value_name = "FILE")]
    vga_rom: Option<PathBuf>,
    /// Boot order for Nestor's BIOS, as QEMU's: c = hard disk, d = CD-ROM, a = floppy
    /// (e.g. `dc`). A --kernel always boots first.
    #[arg(long, value_name = "ORDER", value_parser = parse_boot_order)]
    boot: Option<Vec<nestor_bios::BootDevice>>,
    /// Hard disk image (raw or qcow2) on the primary IDE master.
    #[arg(long, value_name = "FILE")]
    hda: Option<PathBuf>,
    /// Hard disk image on the primary IDE slave.
    #[arg(long, value_name = "FILE")]
    hdb: Option<PathBuf>,
    /// CD-ROM image (ISO) on the secondary IDE master.
    #[arg(long, value_name = "FILE")]
    cdrom: Option<PathBuf>,
    /// Floppy image for drive A:.
    #[arg(long, value_name = "FILE")]
    fda: Option<PathBuf>,
    /// CPU model: pentium-pro (32-bit), nestor64 (x86-64 with SSE2) or max (every extension).
    #[arg(long, value_name = "MODEL", default_value = "pentium-pro")]
    cpu: String,
    /// Keep the guest's disk writes in memory: images are never changed.
    #[arg(long)]
    snapshot: bool,
    /// Guest RAM in MiB.
    #[arg(short = 'm', long = "memory", value_name = "MiB", default_value_t = 32)]
    memory: u64,
    /// COM1: stdio, file:PATH or none.
    #[arg(long, default_value = "stdio", value_parser = parse_chardev)]
    serial: ChardevSpec,
    /// Debug console on port 0xE9: stdio, file:PATH or none.
    #[arg(long, default_value = "none", value_parser = parse_chardev)]
    debugcon: ChardevSpec,
    /// Write each byte sent to POST port 0x80 as two hex digits on its own line.
    #[arg(long, value_name = "PATH")]
    post_log: Option<PathBuf>,
    /// Stop after this many instructions (exit status 6).
    #[arg(long, value_name = "N")]
    max_insns: Option<u64>,
    /// Log every executed instruction (to stderr, through `tracing`).
    #[arg(long)]
    trace: bool,
    /// Time source.
    #[arg(long, value_enum, default_value_t = ClockArg::Realtime)]
    clock: ClockArg,
    /// Time from retired instructions (same as `--clock deterministic`): two runs of the same
    /// guest print the same bytes.
    #[arg(long)]
    deterministic: bool,
    /// Boot this kernel (a Linux bzImage or a Multiboot ELF) after Nestor's BIOS has set up
    /// the machine and its ACPI tables, as QEMU does; with --bios none, directly.
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Initial ramdisk for --kernel; for a Multiboot kernel, a comma-separated list of modules.
    #[arg(long, value_name = "FILE[,FILE...]", requires = "kernel")]
    initrd: Option<String>,
    /// Kernel command line for --kernel.
    #[arg(long, value_name = "STRING", default_value = "", requires = "kernel")]
    append: String,
    /// Save the VGA picture as PNG when the run ends, whatever the reason.
    #[arg(long, value_name = "PATH.png")]
    screenshot: Option<PathBuf>,
    /// Take the screenshot once N instructions have been spent instead (the run goes on).
    #[arg(long, value_name = "N", requires = "screenshot")]
    screenshot_at: Option<u64>,
    /// Save the VGA text screen as UTF-8 lines when the run ends.
    #[arg(long, value_name = "PATH")]
    vga_text: Option<PathBuf>,
    #[command(flatten)]
    gdb: gdb::GdbArgs,
    #[command(flatten)]
    desktop: display::DesktopArgs,
    #[command(flatten)]
    snap: snapshot::SnapshotArgs,
    #[command(flatten)]
    audio: audio::AudioArgs,
}

fn parse_chardev(s: &str) -> Result<ChardevSpec, String> {
    s.parse()
}

fn parse_boot_order(s: &str) -> Result<Vec<nestor_bios::BootDevice>, String> {
    use nestor_bios::BootDevice;
    let order = s.strip_prefix("order=").unwrap_or(s);
    let mut devices = Vec::new();
    for c in order.chars() {
        let d = match c {
            'c' => BootDevice::HardDisk,
            'd' => BootDevice::Cdrom,
            'a' => BootDevice::Floppy,
            _ => return Err(format!("unknown boot device '{c}' (use c, d or a)")),
        };
        if !devices.contains(&d) {
            devices.push(d);
        }
    }
    if devices.is_empty() {
        return Err("empty boot order".into());
    }
    Ok(devices)
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run(*args),
        Command::Resume(args) => snapshot::resume(*args),
        Command::Bench(args) => bench::run(args),
        Command::Rom { name, out } => std::fs::write(&out, name.image())
            .with_context(|| format!("cannot write {}", out.display()))
            .map(|()| 0),
    };
    std::process::exit(code.unwrap_or_else(|e| {
        eprintln!("nestor: {e:#}");
        status::HOST_ERROR
    }));
}

fn init_tracing(trace: bool) {
    let filter = if trace {
        "nestor::trace=trace,info"
    } else {
        "warn"
    };
    let env = std::env::var("NESTOR_LOG").unwrap_or_else(|_| filter.to_string());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(env))
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn run(args: RunArgs) -> anyhow::Result<i32> {
    init_tracing(args.trace);
    let mut bios_config = nestor_bios::BiosConfig::default();
    if let Some(order) = &args.boot {
        bios_config.boot_order = order.clone();
    }
    if args.kernel.is_some() {
        bios_config
            .boot_order
            .insert(0, nestor_bios::BootDevice::Kernel);
    }
    let mut config = match &args.bios {
        Some(path) if path.as_os_str() == "nestor" => {
            MachineConfig::with_bios(bios_config, args.memory)
        }
        None if args.kernel.is_some() => MachineConfig::with_bios(bios_config, args.memory),
        Some(path) if path.as_os_str() == "none" => {
            anyhow::ensure!(args.kernel.is_some(), "--bios none needs --kernel");
            MachineConfig::new(nestor_roms::demo().to_vec(), args.memory)
        }
        Some(path) => {
            let rom = std::fs::read(path)
                .with_context(|| format!("cannot read firmware {}", path.display()))?;
            MachineConfig::new(rom, args.memory)
        }
        None => MachineConfig::new(nestor_roms::demo().to_vec(), args.memory),
    };
    config.cpu_model = args.cpu.clone();
    if let Some((name, rom)) = vga_rom(&args)? {
        config.fw_cfg_files.push((format!("vgaroms/{name}"), rom));
    }
    let drives = [
        (DriveSlot::Hda, &args.hda),
        (DriveSlot::Hdb, &args.hdb),
        (DriveSlot::Cdrom, &args.cdrom),
        (DriveSlot::Fda, &args.fda),
    ];
    for (slot, path) in drives {
        if let Some(path) = path {
            let (snapshot, read_only) = (args.snapshot, false);
            config.drives.push(DriveSpec {
                slot,
                path: path.clone(),
                snapshot,
                read_only,
            });
        }
    }
    config.clock = match (args.clock, args.deterministic) {
        (ClockArg::Deterministic, _) | (_, true) => ClockMode::Deterministic,
        (ClockArg::Realtime, false) => ClockMode::Realtime,
    };
    if config.clock == ClockMode::Realtime {
        config.start_time_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
    }
    let ports = host::HostPorts::open(&args.serial, &args.debugcon, args.post_log.as_deref())?;
    ports.wire(&mut config);
    config.trace = args.trace;
    let third_party = config.bios.is_none() && args.bios.as_ref().is_some_and(|p| p != "none");
    if third_party {
        // Third-party firmware reads the kernel from fw_cfg, as under QEMU.
        config.fw_cfg_kernel = kernel_spec(&args)?;
    } else {
        config.kernel = kernel_spec(&args)?;
    }
    let other_guest = args.bios.is_some() || args.kernel.is_some();
    demo::apply(args.desktop.demo, other_guest, &mut config)?;
    accel::apply(&args.accel, &mut config)?;
    let accel_choice = config.accel;
    let mut machine = Machine::new(config)?;
    snapshot::record_kernel(
        &mut machine,
        args.kernel.as_deref(),
        args.initrd.as_deref(),
        &args.append,
    );
    let display = DisplayOutputs {
        screenshot: args.screenshot.clone(),
        screenshot_at: args.screenshot_at,
        vga_text: args.vga_text.clone(),
    };
    let audio_session = audio::attach(&mut machine, &args.audio)?;
    let exit = match args.gdb.address()? {
        Some(addr) => gdb::run(&mut machine, &addr, &args.gdb, args.max_insns)?,
        None if args.snap.active() => {
            snapshot::run(&mut machine, &args.snap, args.max_insns, &display)?
        }
        None => {
            let host = display::Host {
                ports,
                accel: accel_choice,
                audio: audio_session.clone(),
            };
            display::run(&mut machine, &args.desktop, args.max_insns, &display, host)?
        }
    };
    audio::finish(&machine);
    drop(audio_session);
    // Dropping the machine flushes every file backend before the process exits.
    drop(machine);
    let (code, message) = exit_status(exit);
    if let Some(m) = message {
        eprintln!("{m}");
    }
    Ok(code)
}

/// The VGA BIOS to hand third-party firmware: `--vga-rom`, or the stdvga BIOS found beside
/// the firmware file (Debian's seabios package ships both in one folder).
fn vga_rom(args: &RunArgs) -> anyhow::Result<Option<(String, Vec<u8>)>> {
    let firmware = args
        .bios
        .as_ref()
        .filter(|p| p.as_os_str() != "nestor" && p.as_os_str() != "none");
    let path = match (&args.vga_rom, firmware) {
        (Some(p), _) => p.clone(),
        (None, Some(fw)) => {
            let beside = fw.with_file_name("vgabios-stdvga.bin");
            if !beside.is_file() {
                return Ok(None);
            }
            beside
        }
        (None, None) => return Ok(None),
    };
    let rom = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map_or("vgabios.bin".into(), |n| n.to_string_lossy().into_owned());
    Ok(Some((name, rom)))
}

/// Read `--kernel` and `--initrd` files.
fn kernel_spec(args: &RunArgs) -> anyhow::Result<Option<nestor_machine::KernelSpec>> {
    let Some(path) = &args.kernel else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let mut initrd = Vec::new();
    for name in args.initrd.iter().flat_map(|s| s.split(',')) {
        initrd.push(nestor_machine::Module {
            name: name.to_string(),
            data: read(std::path::Path::new(name))?,
        });
    }
    Ok(Some(nestor_machine::KernelSpec {
        kernel: read(path)?,
        initrd,
        cmdline: args.append.clone(),
    }))
}
