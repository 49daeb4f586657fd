//! A whole PC: configuration, construction from the plugin list, and the run loop.

use crate::board::Board;
use crate::clock::{Clock, ClockMode};
use crate::engine::{EngineError, Interpreter, Vcpu, VcpuExit};
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
    /// Boot this kernel directly (`--kernel`): no firmware code runs.
    pub kernel: Option<crate::loader::KernelSpec>,
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
        let mem = GuestMemory::new(config.ram_mib, config.rom)?;
        let mut board = Board::new(mem, Clock::new(config.clock));
        plugins::attach_pc_devices(
            &mut board,
            config.serial,
            config.debugcon,
            config.post_log,
            config.start_time_unix,
            config.ram_mib,
        )?;
        attach_drives(&mut board, &config.drives)?;
        let bios = config.bios.map(nestor_bios::Bios::new);
        let mut machine = Self {
            board,
            vcpu: Box::new(Interpreter::new(model, config.trace)),
            bios,
        };
        if let Some(spec) = &config.kernel {
            machine.load_kernel(spec)?;
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
    fn spent(&self) -> u64 {
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
            if spent >= limit {
                return Ok(MachineExit::BudgetExhausted);
            }
            let until_deadline = self
                .board
                .next_deadline()
                .map_or(u64::MAX, |d| self.board.clock.insns_until(retired, d));
            let budget = until_deadline.min(limit - spent).min(10_000_000);
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
                            let d = d.min(self.board.clock.now_ns(retired).saturating_add(room));
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
        }
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
