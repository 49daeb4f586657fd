//! A whole PC: configuration, construction from the plugin list, and the run loop.

use crate::board::Board;
use crate::clock::{Clock, ClockMode};
use crate::engine::{EngineError, Vcpu, VcpuExit};
use crate::memory::{GuestMemory, MemoryError};
use crate::plugins;
use nestor_device::{CharBackend, ConfigError, ExitRequest};

/// Firmware images are raw ROMs of this size range, in whole 64 KiB units.
pub const ROM_MIN: usize = 64 << 10;
pub const ROM_MAX: usize = 1 << 20;

/// Everything a machine is built from.
pub struct MachineConfig {
    pub ram_mib: u64,
    pub rom: Vec<u8>,
    pub clock: ClockMode,
    /// Backends for COM1..COM4; `None` leaves the port unconnected.
    pub serial: [Option<Box<dyn CharBackend>>; 4],
    pub debugcon: Option<Box<dyn CharBackend>>,
    pub post_log: Option<Box<dyn CharBackend>>,
    pub trace: bool,
    /// RTC start time (seconds since the Unix epoch).
    pub start_time_unix: i64,
    /// The CPU model (`--cpu`), by name; see `nestor_cpu::cpuid::MODELS`.
    pub cpu_model: String,
    /// Run Nestor's own BIOS (its ROM replaces `rom`) with this configuration.
    pub bios: Option<nestor_bios::BiosConfig>,
    /// Disk images: hard disks on IDE (hda = primary master, hdb = primary slave), the CD-ROM
    /// (secondary master) and floppy A:.
    pub drives: Vec<DriveSpec>,
    /// Boot this kernel (`--kernel`). With Nestor's BIOS it is loaded when INT 19h reaches
    /// `BootDevice::Kernel` in the boot order; with no BIOS, directly: no firmware code runs.
    pub kernel: Option<crate::loader::KernelSpec>,
    /// Files offered to third-party firmware through fw_cfg, e.g. a VGA BIOS as
    /// `vgaroms/vgabios-stdvga.bin` for SeaBIOS.
    pub fw_cfg_files: Vec<(String, Vec<u8>)>,
    /// A kernel for third-party firmware to boot from fw_cfg (`--bios FILE --kernel`), the
    /// way QEMU hands `-kernel` to OVMF or to SeaBIOS's linuxboot option ROM.
    pub fw_cfg_kernel: Option<crate::loader::KernelSpec>,
    /// The engine (`--accel`); an engine plan's first step overrides it.
    pub accel: crate::kvm::Accel,
    /// Switch engines at run time (`--engine-plan`).
    pub engine_plan: Option<crate::kvm::EnginePlan>,
    /// Map RAM copy-on-write from a snapshot file instead of fresh zeroed memory.
    pub ram_file: Option<crate::snapshot::RamFile>,
}

/// Where a disk image goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveSlot {
    Hda,
    Hdb,
    Cdrom,
    Fda,
}

/// A disk image to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveSpec {
    pub slot: DriveSlot,
    pub path: std::path::PathBuf,
    /// Keep guest writes in memory; the image never changes.
    pub snapshot: bool,
    pub read_only: bool,
}

impl MachineConfig {
    /// A machine running `rom` with `ram_mib` of RAM, nothing connected, deterministic time.
    #[must_use]
    pub fn new(rom: Vec<u8>, ram_mib: u64) -> Self {
        Self {
            ram_mib,
            rom,
            clock: ClockMode::Deterministic,
            serial: [None, None, None, None],
            debugcon: None,
            post_log: None,
            trace: false,
            start_time_unix: DETERMINISTIC_EPOCH,
            cpu_model: nestor_cpu::cpuid::PENTIUM_PRO.name.to_string(),
            bios: None,
            drives: Vec::new(),
            kernel: None,
            fw_cfg_files: Vec::new(),
            fw_cfg_kernel: None,
            accel: crate::kvm::Accel::Interp,
            engine_plan: None,
            ram_file: None,
        }
    }

    /// A machine running Nestor's own BIOS.
    #[must_use]
    pub fn with_bios(bios: nestor_bios::BiosConfig, ram_mib: u64) -> Self {
        Self {
            bios: Some(bios),
            ..Self::new(nestor_bios::rom().to_vec(), ram_mib)
        }
    }
}

/// 2026-01-01T00:00:00Z: the RTC's start in deterministic mode.
pub const DETERMINISTIC_EPOCH: i64 = 1_767_225_600;

/// Why the machine stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineExit {
    /// The guest powered off (APM/Bochs shutdown port, later ACPI).
    PowerOff,
    /// isa-debug-exit: the status the guest asked for.
    DebugExit(i32),
    /// Triple fault: the CPU shut down.
    TripleFault,
    /// The instruction budget ran out.
    BudgetExhausted,
    /// HLT with interrupts disabled and no NMI source: the guest can never wake up.
    HaltedForever,
}

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("firmware image is {0} bytes; it must be 64 KiB to 1 MiB in whole 64 KiB units")]
    RomSize(usize),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("device configuration: {0}")]
    Device(#[from] ConfigError),
    #[error("device wiring: {0}")]
    Wiring(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("unknown CPU model '{0}' (known: {1})")]
    CpuModel(String, String),
    #[error(transparent)]
    Kernel(#[from] crate::loader::LoadError),
    #[error("{path}: {source}")]
    Disk {
        path: String,
        source: nestor_disk::DiskError,
    },
}

pub struct Machine {
    pub board: Board,
    pub vcpu: Box<dyn Vcpu>,
    /// Host side of Nestor's BIOS, when it is the firmware.
    pub bios: Option<nestor_bios::Bios>,
    /// Where the sound devices play: a frontend adds sinks (WAV file, host audio).
    pub audio: nestor_sound::Mixer,
    /// Why the last `run` ended early for the debugger (see `Machine::run_slice`).
    pub(crate) debug_stop: Option<nestor_cpu::debug::DebugStop>,
    /// What the machine was built from, as a snapshot records it.
    pub snapshot_config: crate::snapshot::SnapshotConfig,
    /// The kernel the BIOS boots when INT 19h chooses it.
    boot_kernel: Option<crate::loader::KernelSpec>,
    /// Engine plan being followed, and what a new engine is built with.
    pub(crate) plan: Option<crate::kvm::PlanCursor>,
    pub(crate) engine_model: nestor_cpu::cpuid::CpuModel,
    pub(crate) trace: bool,
}

impl Machine {
    pub fn new(config: MachineConfig) -> Result<Self, MachineError> {
        let model = nestor_cpu::cpuid::model_by_name(&config.cpu_model).ok_or_else(|| {
            let known: Vec<&str> = nestor_cpu::cpuid::MODELS.iter().map(|m| m.name).collect();
            MachineError::CpuModel(config.cpu_model.clone(), known.join(", "))
        })?;
        let len = config.rom.len();
        if !(ROM_MIN..=ROM_MAX).contains(&len) || !len.is_multiple_of(ROM_MIN) {
            return Err(MachineError::RomSize(len));
        }
        let snapshot_config = crate::snapshot::SnapshotConfig::of(&config);
        let mem = match &config.ram_file {
            Some(f) => GuestMemory::from_file(&f.file, f.offset, config.ram_mib, config.rom)?,
            None => GuestMemory::new(config.ram_mib, config.rom)?,
        };
        let mut board = Board::new(mem, Clock::new(config.clock));
        let audio = nestor_sound::Mixer::new();
        plugins::attach_pc_devices(
            &mut board,
            &audio,
            config.serial,
            config.debugcon,
            config.post_log,
            config.start_time_unix,
            config.ram_mib,
        )?;
        attach_drives(&mut board, &config.drives)?;
        add_fw_cfg_files(&mut board, &config.fw_cfg_files)?;
        if let Some(spec) = &config.fw_cfg_kernel {
            add_fw_cfg_kernel(&mut board, spec)?;
        }
        let bios = config.bios.map(nestor_bios::Bios::new);
        let first = crate::kvm::initial_engine(config.accel, config.engine_plan.as_ref())?;
        // A guest that may run on KVM sees only the features this host's KVM provides.
        let model = &crate::kvm::model_for_engines(model, first, config.engine_plan.as_ref())?;
        let vcpu = crate::kvm::create_engine(first, model, config.trace, &mut board.wires.mem)?;
        let mut machine = Self {
            snapshot_config,
            board,
            vcpu,
            bios,
            audio,
            debug_stop: None,
            boot_kernel: None,
            plan: config.engine_plan.map(crate::kvm::PlanCursor::new),
            engine_model: *model,
            trace: config.trace,
        };
        match (&machine.bios, config.kernel) {
            (Some(_), Some(spec)) => {
                crate::linuxboot::check(&spec)?;
                machine.boot_kernel = Some(spec);
            }
            (Some(_), None) => {}
            (None, Some(spec)) => {
                machine.load_kernel(&spec)?;
            }
            (None, None) => {}
        }
        Ok(machine)
    }

    /// Load a kernel into RAM and start the vCPU at its entry point (direct kernel boot).
    pub fn load_kernel(
        &mut self,
        spec: &crate::loader::KernelSpec,
    ) -> Result<crate::loader::KernelKind, MachineError> {
        let mut s = self.vcpu.state();
        let kind = crate::loader::load(&mut self.board.wires.mem, spec, &mut s)?;
        self.set_initial_state(&s)?;
        Ok(kind)
    }

    /// Replace the vCPU state before the first run (loaders start the CPU past the firmware).
    pub fn set_initial_state(&mut self, s: &nestor_cpu::CpuState) -> Result<(), MachineError> {
        self.vcpu.set_state(s)?;
        // Loaders write RAM behind the CPU; drop anything decoded from it.
        let mem = &self.board.wires.mem;
        self.vcpu.invalidate_code(0, mem.low_ram());
        self.vcpu
            .invalidate_code(crate::memory::FOUR_GIB, mem.ram_bytes() - mem.low_ram());
        Ok(())
    }

    /// Instructions spent so far against the budget: retired ones, plus (in deterministic
    /// mode) the idle time of HLT counted as the instructions it stands for, so that a guest
    /// halted for ever still reaches its budget.
    pub fn spent(&self) -> u64 {
        let retired = self.vcpu.retired();
        match self.board.clock.mode() {
            ClockMode::Deterministic => {
                retired + self.board.clock.skipped_ns() / crate::clock::NS_PER_INSN
            }
            ClockMode::Realtime => retired,
        }
    }

    /// Run until the guest stops the machine or `max_insns` instructions have been spent.
    pub fn run(&mut self, max_insns: Option<u64>) -> Result<MachineExit, MachineError> {
        self.run_until(max_insns, u64::MAX)
    }

    /// Run like [`Machine::run`], but also return `BudgetExhausted` once virtual time
    /// reaches `until_ns` (see [`Board::now_ns`]): a frontend's slice between event polls.
    pub fn run_until(
        &mut self,
        max_insns: Option<u64>,
        until_ns: u64,
    ) -> Result<MachineExit, MachineError> {
        let limit = max_insns.unwrap_or(u64::MAX);
        loop {
            let retired = self.vcpu.retired();
            let spent = self.spent();
            self.board.set_retired(retired);
            self.board.fire_timers();
            if let Some(why) = self.board.take_exit() {
                match self.handle_exit(why) {
                    Some(exit) => return Ok(exit),
                    None => continue,
                }
            }
            if spent >= limit || self.board.now_ns() >= until_ns {
                return Ok(MachineExit::BudgetExhausted);
            }
            let deadline = self.board.next_deadline();
            let until_deadline =
                deadline.map_or(u64::MAX, |d| self.board.clock.insns_until(retired, d));
            let plan_cap = self.follow_plan()?;
            let budget = until_deadline
                .min(limit - spent)
                .min(10_000_000)
                .min(plan_cap);
            let slice_end = self.board.clock.slice_end_ns(retired, budget);
            self.board
                .begin_slice(slice_end.min(deadline.unwrap_or(u64::MAX)));
            let exit = self.vcpu.run(&mut self.board, budget)?;
            if self.board.take_fpu_clear() {
                self.set_ignne();
            }
            self.invalidate_written();
            if let Some(service) = self.board.take_trap() {
                if let Some(exit) = self.firmware_trap(service) {
                    return Ok(exit);
                }
            }
            match exit {
                VcpuExit::Budget | VcpuExit::Stopped => {}
                VcpuExit::Debug(stop) => {
                    // Ends the run like a budget; `run_slice` tells the two apart.
                    self.debug_stop = Some(stop);
                    return Ok(MachineExit::BudgetExhausted);
                }
                VcpuExit::Shutdown => return Ok(MachineExit::TripleFault),
                VcpuExit::Halted => {
                    let retired = self.vcpu.retired();
                    let state = self.vcpu.state();
                    if state.x87.ferr {
                        // A waiting x87 instruction froze on a pending error: FERR# → IRQ 13.
                        self.board.set_fpu_error(true);
                    }
                    let can_wake = state.rflags & nestor_cpu::state::rflags::IF != 0;
                    if can_wake && nestor_cpu::Bus::interrupt_pending(&mut self.board) {
                        continue;
                    }
                    match self.board.next_deadline() {
                        Some(d) if can_wake => {
                            // Never idle past the budget.
                            let room =
                                (limit - self.spent()).saturating_mul(crate::clock::NS_PER_INSN);
                            let d = d
                                .min(self.board.clock.now_ns(retired).saturating_add(room))
                                .min(until_ns);
                            self.board.clock.idle_until(retired, d);
                        }
                        _ => return Ok(MachineExit::HaltedForever),
                    }
                }
            }
        }
    }

    /// Run the host side of a BIOS service on the CPU state. A ROM that is not Nestor's BIOS
    /// writing the trap port gets nothing, as on a PC where nothing decodes it.
    fn firmware_trap(&mut self, service: u8) -> Option<MachineExit> {
        let bios = self.bios.as_mut()?;
        let mut s = self.vcpu.state();
        let result = crate::firmware::run_trap(bios, &mut self.board, service, &mut s);
        if let Err(e) = self.vcpu.set_state(&s) {
            tracing::warn!("BIOS service {service:#x}: {e}");
        }
        // The service may have loaded code (a boot sector, a CD image).
        self.invalidate_written();
        match result {
            nestor_bios::TrapResult::Continue | nestor_bios::TrapResult::BootFailed => None,
            nestor_bios::TrapResult::PowerOff => Some(MachineExit::PowerOff),
            nestor_bios::TrapResult::Reset => self.handle_exit(ExitRequest::Reset),
            nestor_bios::TrapResult::BootKernel => self.boot_kernel_after_firmware(),
        }
    }

    /// INT 19h chose the kernel: load it over the booted machine and start it. A kernel that
    /// cannot be loaded leaves the BIOS's message on screen and the CPU halted, as a failed
    /// boot does.
    fn boot_kernel_after_firmware(&mut self) -> Option<MachineExit> {
        let Some(spec) = &self.boot_kernel else {
            tracing::warn!("INT 19h chose a kernel, but none was given");
            return Some(MachineExit::HaltedForever);
        };
        let mut s = self.vcpu.state();
        let mem = &mut self.board.wires.mem;
        let ram_top = self
            .bios
            .as_ref()
            .and_then(|b| b.state().acpi)
            .map_or(mem.low_ram(), |(start, _)| start.min(mem.low_ram()));
        match crate::linuxboot::load_after_firmware(mem, spec, &mut s, ram_top) {
            Ok(kind) => {
                tracing::info!("booting the {kind:?} kernel");
                if let Some(bios) = &mut self.bios {
                    bios.set_serial_mirror(false);
                }
            }
            Err(e) => {
                tracing::error!("cannot boot the kernel: {e}");
                return Some(MachineExit::HaltedForever);
            }
        }
        if let Err(e) = self.set_initial_state(&s) {
            tracing::error!("cannot start the kernel: {e}");
            return Some(MachineExit::HaltedForever);
        }
        None
    }

    /// Drop decoded code for memory that DMA or the firmware wrote behind the CPU.
    fn invalidate_written(&mut self) {
        for (paddr, len) in std::mem::take(&mut self.board.wires.written) {
            self.vcpu.invalidate_code(paddr, len);
        }
    }

    /// Port 0xF0: IGNNE# lets the frozen x87 instruction go on despite its pending error.
    fn set_ignne(&mut self) {
        let mut s = self.vcpu.state();
        s.x87.ignne = true;
        s.x87.ferr = false;
        if let Err(e) = self.vcpu.set_state(&s) {
            tracing::warn!("IGNNE#: {e}");
        }
    }

    /// Act on a device's request; `Some` ends the run.
    fn handle_exit(&mut self, why: ExitRequest) -> Option<MachineExit> {
        match why {
            ExitRequest::PowerOff => Some(MachineExit::PowerOff),
            ExitRequest::DebugExit(code) => Some(MachineExit::DebugExit(code)),
            ExitRequest::Reset => {
                tracing::info!("machine reset");
                self.vcpu.reset();
                self.board.reset_devices();
                None
            }
        }
    }
}

fn add_fw_cfg_files(board: &mut Board, files: &[(String, Vec<u8>)]) -> Result<(), MachineError> {
    if files.is_empty() {
        return Ok(());
    }
    let fw = board
        .device_mut::<nestor_fwcfg::FwCfg>()
        .ok_or_else(|| MachineError::Wiring("no fw_cfg device".into()))?;
    for (name, data) in files {
        fw.add_file(name, data.clone())
            .map_err(|e| MachineError::Wiring(format!("fw_cfg file {name}: {e}")))?;
    }
    Ok(())
}

fn add_fw_cfg_kernel(
    board: &mut Board,
    spec: &crate::loader::KernelSpec,
) -> Result<(), MachineError> {
    // Firmware keeps its own tables at the top of RAM; stay 1 MiB clear of them, as QEMU does
    // with its ACPI data allowance.
    let top = board.wires.mem.low_ram().saturating_sub(1 << 20);
    let boot = crate::linuxboot::fw_cfg_linux_boot(spec, top)?;
    board
        .device_mut::<nestor_fwcfg::FwCfg>()
        .ok_or_else(|| MachineError::Wiring("no fw_cfg device".into()))?
        .set_linux_boot(boot)
        .map_err(|e| MachineError::Wiring(format!("fw_cfg kernel: {e}")))
}

/// Open every image and hand it to the controller its slot belongs to.
fn attach_drives(board: &mut Board, drives: &[DriveSpec]) -> Result<(), MachineError> {
    use nestor_ide::{Channel, Position};
    for d in drives {
        let disk_err = |source| MachineError::Disk {
            path: d.path.display().to_string(),
            source,
        };
        let opts = match d.slot {
            DriveSlot::Cdrom => nestor_disk::OpenOptions::cdrom(),
            _ => nestor_disk::OpenOptions {
                read_only: d.read_only,
                snapshot: d.snapshot,
                ..Default::default()
            },
        };
        let backend = nestor_disk::open(&d.path, opts).map_err(disk_err)?;
        let wiring = |e: String| MachineError::Wiring(format!("{}: {e}", d.path.display()));
        match d.slot {
            DriveSlot::Fda => {
                let isa = board
                    .device_mut::<crate::isa_dma::IsaDma>()
                    .ok_or_else(|| wiring("no floppy controller".into()))?;
                isa.fdc
                    .insert_media(0, backend)
                    .map_err(|e| wiring(e.to_string()))?;
            }
            slot => {
                let ide = board
                    .device_mut::<nestor_ide::Ide>()
                    .ok_or_else(|| wiring("no IDE controller".into()))?;
                let result = match slot {
                    DriveSlot::Hda => ide.attach_disk(Channel::Primary, Position::Master, backend),
                    DriveSlot::Hdb => ide.attach_disk(Channel::Primary, Position::Slave, backend),
                    _ => {
                        ide.attach_cdrom(Channel::Secondary, Position::Master, Some(backend));
                        Ok(())
                    }
                };
                result.map_err(|e| wiring(e.to_string()))?;
            }
        }
    }
    Ok(())
}
