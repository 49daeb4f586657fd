//! One trait for every execution engine, so that the machine loop never asks which one runs
//! and switching engines is `set_state(old.state())`.

use nestor_cpu::debug::{DebugSetup, DebugStop};
use nestor_cpu::{Bus, Cpu, CpuState, RunExit};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// The instruction budget is used up.
    Budget,
    /// HLT: nothing to do until an interrupt.
    Halted,
    /// Triple fault.
    Shutdown,
    /// The bus asked to stop (exit or reset request).
    Stopped,
    /// A breakpoint, watchpoint, single step or other stop armed with [`Vcpu::set_debug`].
    Debug(DebugStop),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine failure: {0}")]
    Failed(String),
}

pub trait Vcpu {
    fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Result<VcpuExit, EngineError>;
    fn state(&self) -> CpuState;
    fn set_state(&mut self, s: &CpuState) -> Result<(), EngineError>;
    /// Instructions retired since power-on (drives deterministic time).
    fn retired(&self) -> u64;
    fn reset(&mut self);
    /// Raise NMI at the next instruction boundary.
    fn inject_nmi(&mut self);
    /// Code in guest memory changed behind the CPU (DMA, loaders).
    fn invalidate_code(&mut self, paddr: u64, len: u64);
    /// Continue counting from `retired` (an engine switch keeps device time going).
    fn set_retired(&mut self, retired: u64);
    /// VM exits so far (0 for engines that have none); `x` steps of an engine plan count them.
    fn exits(&self) -> u64 {
        0
    }
    /// The engine's name as `--accel` spells it.
    fn name(&self) -> &'static str;
    /// Arm the debugger's breakpoints, watchpoints and single step for the runs that follow
    /// (an empty setup disarms). Called at every resume: the first instruction executes even
    /// with a breakpoint on it. Stops come back as [`VcpuExit::Debug`].
    fn set_debug(&mut self, setup: &DebugSetup) -> Result<(), EngineError> {
        let _ = setup;
        Err(EngineError::Failed(
            "this engine does not support the debugger".into(),
        ))
    }
}

/// The interpreter engine: the reference semantics.
#[derive(Default)]
pub struct Interpreter {
    pub cpu: Cpu,
}

impl Interpreter {
    #[must_use]
    pub fn new(model: &nestor_cpu::cpuid::CpuModel, trace: bool) -> Self {
        let mut cpu = Cpu::with_model(*model);
        cpu.trace = trace;
        Self { cpu }
    }
}

impl Vcpu for Interpreter {
    fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Result<VcpuExit, EngineError> {
        Ok(match self.cpu.run(bus, budget) {
            RunExit::Budget => VcpuExit::Budget,
            RunExit::Halted => VcpuExit::Halted,
            RunExit::Shutdown => VcpuExit::Shutdown,
            RunExit::Stopped => match self.cpu.debug.take_stop() {
                Some(stop) => VcpuExit::Debug(stop),
                None => VcpuExit::Stopped,
            },
        })
    }
    fn state(&self) -> CpuState {
        self.cpu.state()
    }
    fn set_state(&mut self, s: &CpuState) -> Result<(), EngineError> {
        self.cpu.set_state(s.clone());
        Ok(())
    }
    fn retired(&self) -> u64 {
        self.cpu.retired
    }
    fn reset(&mut self) {
        self.cpu.reset();
    }
    fn inject_nmi(&mut self) {
        self.cpu.s.events.nmi_pending = true;
    }
    fn invalidate_code(&mut self, paddr: u64, len: u64) {
        self.cpu.invalidate_code(paddr, len);
    }
    fn set_retired(&mut self, retired: u64) {
        self.cpu.retired = retired;
    }
    fn name(&self) -> &'static str {
        "interp"
    }
    fn set_debug(&mut self, setup: &DebugSetup) -> Result<(), EngineError> {
        self.cpu.arm_debug(setup);
        Ok(())
    }
}
