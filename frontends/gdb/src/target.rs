//! The machine as a gdbstub `Target`: registers, memory by linear address, breakpoints and
//! watchpoints kept in the emulator (guest memory is never patched), resume and single step.

use crate::arch::{NestorX86, X86Regs};
use gdbstub::common::Signal;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use nestor_cpu::debug::{DebugSetup, DebugStop, WatchKind, Watchpoint};
use nestor_machine::Machine;

/// A fatal error inside the target (the session ends).
#[derive(Debug, thiserror::Error)]
pub enum TargetFailure {
    #[error("machine: {0}")]
    Machine(#[from] nestor_machine::MachineError),
}

/// The debugged machine plus everything gdb armed on it.
pub struct NestorTarget<'m> {
    pub machine: &'m mut Machine,
    pub sw_breakpoints: Vec<u64>,
    pub hw_breakpoints: Vec<u64>,
    pub watchpoints: Vec<Watchpoint>,
    /// Set by `monitor break exception N` (bit N).
    pub break_exceptions: u32,
    /// Set by `monitor break mode-switch`.
    pub break_mode_switch: bool,
    /// Why the guest last stopped, for `monitor` output.
    pub last_stop: Option<DebugStop>,
}

impl<'m> NestorTarget<'m> {
    pub fn new(machine: &'m mut Machine) -> Self {
        Self {
            machine,
            sw_breakpoints: Vec::new(),
            hw_breakpoints: Vec::new(),
            watchpoints: Vec::new(),
            break_exceptions: 0,
            break_mode_switch: false,
            last_stop: None,
        }
    }

    /// The setup the engine gets for the next run.
    #[must_use]
    pub fn setup(&self, single_step: bool) -> DebugSetup {
        let mut breakpoints = self.sw_breakpoints.clone();
        breakpoints.extend_from_slice(&self.hw_breakpoints);
        DebugSetup {
            breakpoints,
            watchpoints: self.watchpoints.clone(),
            single_step,
            break_exceptions: self.break_exceptions,
            break_mode_switch: self.break_mode_switch,
        }
    }

    /// Arm the engine for the run gdb asked for (the server loop then runs it in slices).
    fn arm(&mut self, single_step: bool) -> Result<(), TargetFailure> {
        let setup = self.setup(single_step);
        self.machine.set_debug(&setup)?;
        Ok(())
    }
}

impl Target for NestorTarget<'_> {
    type Arch = NestorX86;
    type Error = TargetFailure;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for NestorTarget<'_> {
    fn read_registers(&mut self, regs: &mut X86Regs) -> TargetResult<(), Self> {
        *regs = X86Regs::from_state(&self.machine.vcpu.state());
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86Regs) -> TargetResult<(), Self> {
        let mut s = self.machine.vcpu.state();
        regs.apply_to(&mut s);
        self.machine
            .vcpu
            .set_state(&s)
            .map_err(|e| TargetError::Fatal(nestor_machine::MachineError::from(e).into()))
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        match self.machine.debug_read_linear(start, data) {
            0 if !data.is_empty() => Err(TargetError::Errno(14)),
            n => Ok(n),
        }
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        if self.machine.debug_write_linear(start, data) == data.len() {
            Ok(())
        } else {
            Err(TargetError::Errno(14))
        }
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for NestorTarget<'_> {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.arm(false)
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for NestorTarget<'_> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.arm(true)
    }
}

impl Breakpoints for NestorTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

fn add_unique(list: &mut Vec<u64>, addr: u64) -> bool {
    if !list.contains(&addr) {
        list.push(addr);
    }
    true
}

fn remove(list: &mut Vec<u64>, addr: u64) -> bool {
    let before = list.len();
    list.retain(|&a| a != addr);
    list.len() != before
}

impl NestorTarget<'_> {
    /// Can the engine arm everything set now (KVM has 4 debug registers for breakpoints and
    /// protects at most 64 pages for watchpoints)? If not, say why.
    pub fn engine_takes_setup(&mut self) -> bool {
        match self.machine.set_debug(&self.setup(false)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("gdb: {e}");
                false
            }
        }
    }

    /// Add `addr` to one of the breakpoint lists, unless the engine cannot arm it.
    fn add_breakpoint(&mut self, addr: u64, hw: bool) -> bool {
        let new = !self.breakpoint_list(hw).contains(&addr);
        add_unique(self.breakpoint_list(hw), addr);
        if new && !self.engine_takes_setup() {
            remove(self.breakpoint_list(hw), addr);
            return false;
        }
        true
    }

    fn breakpoint_list(&mut self, hw: bool) -> &mut Vec<u64> {
        if hw {
            &mut self.hw_breakpoints
        } else {
            &mut self.sw_breakpoints
        }
    }
}

impl SwBreakpoint for NestorTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr, false))
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.sw_breakpoints, addr))
    }
}

impl HwBreakpoint for NestorTarget<'_> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr, true))
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.hw_breakpoints, addr))
    }
}

fn watch_kind(kind: GdbWatchKind) -> WatchKind {
    match kind {
        GdbWatchKind::Write => WatchKind::Write,
        GdbWatchKind::Read => WatchKind::Read,
        GdbWatchKind::ReadWrite => WatchKind::Access,
    }
}

impl HwWatchpoint for NestorTarget<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        self.watchpoints.push(Watchpoint {
            start: addr,
            len,
            kind: watch_kind(kind),
        });
        if !self.engine_takes_setup() {
            self.watchpoints.pop();
            return Ok(false);
        }
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        let w = Watchpoint {
            start: addr,
            len,
            kind: watch_kind(kind),
        };
        match self.watchpoints.iter().position(|x| *x == w) {
            Some(i) => {
                self.watchpoints.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl MonitorCmd for NestorTarget<'_> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let text = String::from_utf8_lossy(cmd);
        let reply = crate::monitor::run(self, &text);
        out.write_raw(reply.as_bytes());
        Ok(())
    }
}
