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
}

pub struct Machine {
    pub board: Board,
    pub vcpu: Box<dyn Vcpu>,
}

impl Machine {
    pub fn new(config: MachineConfig) -> Result<Self, MachineError> {
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
        Ok(Self {
            board,
            vcpu: Box::new(Interpreter::new(config.trace)),
        })
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
