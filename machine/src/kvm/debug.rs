//! The debugger under KVM: breakpoints go into the four hardware debug registers through
//! KVM_SET_GUEST_DEBUG (KVM_GUESTDBG_USE_HW_BP), single step through
//! KVM_GUESTDBG_SINGLESTEP, and a KVM_EXIT_DEBUG is decoded from DR6 back into a
//! [`DebugStop`]. Watchpoints do not use debug registers (some hosts never load the
//! debugger's DR7): they protect guest pages in KVM's memory slots, see [`watch`].
//! Mode-switch stops single-step the guest and compare modes after each instruction. KVM
//! cannot stop on arbitrary guest exceptions (x86 guest debug intercepts only #DB and #BP),
//! so `break exception` is refused under KVM.

pub mod watch;

use kvm_bindings::{
    kvm_guest_debug, kvm_guest_debug_arch, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
};
use nestor_cpu::debug::{CpuMode, DebugSetup, DebugStop};

/// Hardware breakpoint slots (DR0..DR3).
pub const HW_SLOTS: usize = 4;
/// DR6.BS: the #DB came from a single step.
const DR6_BS: u64 = 1 << 14;
/// DR7.GE plus reserved bit 10 (reads as 1), as KVM and the SDM expect.
const DR7_BASE: u64 = 0x600;

/// Why a setup cannot be armed under KVM.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvmDebugError {
    #[error(
        "under KVM the debugger has {HW_SLOTS} hardware debug registers for breakpoints; this \
         setup needs {0}: delete some breakpoints, or use --accel interp"
    )]
    TooManySlots(usize),
    #[error(
        "KVM cannot stop on guest exceptions (its x86 guest debug intercepts only #DB and \
         #BP): 'monitor break exception' needs --accel interp"
    )]
    Exceptions,
}

/// The debug registers for `setup`'s breakpoints: one linear address each (DR0..DR3).
pub fn slots_for(setup: &DebugSetup) -> Result<Vec<u64>, KvmDebugError> {
    let mut slots: Vec<u64> = Vec::new();
    for &b in &setup.breakpoints {
        if !slots.contains(&b) {
            slots.push(b);
        }
    }
    if slots.len() > HW_SLOTS {
        return Err(KvmDebugError::TooManySlots(slots.len()));
    }
    Ok(slots)
}

/// KVM_SET_GUEST_DEBUG's argument for `slots`, single-stepping if `step`.
#[must_use]
pub fn guest_debug(slots: &[u64], step: bool) -> kvm_guest_debug {
    let mut arch = kvm_guest_debug_arch::default();
    let mut control = 0;
    if !slots.is_empty() {
        control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
        let mut dr7 = DR7_BASE;
        // Instruction breakpoints: G bit only, R/W and LEN 0.
        for (n, &addr) in slots.iter().take(HW_SLOTS).enumerate() {
            arch.debugreg[n] = addr;
            dr7 |= 0b10 << (2 * n);
        }
        arch.debugreg[7] = dr7;
    }
    if step {
        control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
    }
    kvm_guest_debug {
        control,
        pad: 0,
        arch,
    }
}

/// What a KVM_EXIT_DEBUG means to the run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugAction {
    Stop(DebugStop),
    /// A single step taken only to watch for mode switches: compare modes, maybe go on.
    CheckMode,
    /// A step the debugger did not ask for (stepping over a breakpoint): run on.
    Continue,
    /// Not ours (the guest's own #DB or #BP): give it back to the guest.
    Reinject,
}

/// The debugger's arming of one vCPU.
#[derive(Clone, Debug, Default)]
pub struct KvmDebug {
    setup: DebugSetup,
    /// What the debug registers hold now (while stepping over a breakpoint, all but it).
    slots: Vec<u64>,
    /// The whole setup's registers, and KVM's argument for them, to install after the
    /// first instruction when a resume starts on a breakpoint.
    pending: Option<(Vec<u64>, kvm_guest_debug)>,
    /// KVM_SET_GUEST_DEBUG was ever called (an inactive setup then needs a disarm).
    pub armed: bool,
    /// The mode after the last instruction, for mode-switch stops.
    pub last_mode: Option<CpuMode>,
    /// The argument of the last KVM_SET_GUEST_DEBUG.
    current: kvm_guest_debug,
}

impl KvmDebug {
    /// Take `setup` for a run resuming at linear `pc` in `mode`; `None` when KVM needs no
    /// call at all. A breakpoint at `pc` is left out, with a single step, until the first
    /// instruction has run (RF would do, but not every KVM keeps it).
    pub fn arm(
        &mut self,
        setup: &DebugSetup,
        pc: u64,
        mode: CpuMode,
    ) -> Result<Option<kvm_guest_debug>, KvmDebugError> {
        if setup.break_exceptions != 0 {
            return Err(KvmDebugError::Exceptions);
        }
        let slots = slots_for(setup)?;
        self.setup = setup.clone();
        self.last_mode = Some(mode);
        self.pending = None;
        if !setup.is_active() && !self.armed {
            self.slots.clear();
            return Ok(None);
        }
        let step = setup.single_step || setup.break_mode_switch;
        let full = guest_debug(&slots, step);
        let first: Vec<u64> = slots.iter().copied().filter(|&a| a != pc).collect();
        if first.len() == slots.len() {
            self.slots = slots;
            self.current = full;
        } else {
            self.current = guest_debug(&first, true);
            self.slots = first;
            self.pending = Some((slots, full));
        }
        self.armed = true;
        Ok(Some(self.current))
    }

    /// After a debug exit: the whole setup's argument, if the first instruction was run
    /// without the breakpoint on it (the caller installs it before the next run).
    pub fn take_pending(&mut self) -> Option<kvm_guest_debug> {
        let (slots, arg) = self.pending.take()?;
        self.slots = slots;
        self.current = arg;
        Some(arg)
    }

    /// The argument of the last KVM_SET_GUEST_DEBUG (to re-issue it with an inject bit).
    #[must_use]
    pub fn current(&self) -> kvm_guest_debug {
        self.current
    }

    /// Decode a KVM_EXIT_DEBUG: `exception` is the vector, `dr6` says which slot or a step.
    #[must_use]
    pub fn decode(&self, exception: u32, dr6: u64) -> DebugAction {
        if exception != 1 {
            return DebugAction::Reinject;
        }
        // The lowest breakpoint register that fired (B0..B3).
        if let Some(&a) = (0..self.slots.len())
            .find(|&n| dr6 & (1 << n) != 0)
            .and_then(|n| self.slots.get(n))
        {
            return DebugAction::Stop(DebugStop::Breakpoint(a));
        }
        // A step we did not arm is the guest's own (RFLAGS.TF).
        if dr6 & DR6_BS == 0 || self.current.control & KVM_GUESTDBG_SINGLESTEP == 0 {
            return DebugAction::Reinject;
        }
        if self.setup.break_mode_switch {
            DebugAction::CheckMode
        } else if self.setup.single_step {
            DebugAction::Stop(DebugStop::Step)
        } else {
            // The step over a breakpoint at the resume PC: the run goes on.
            DebugAction::Continue
        }
    }

    /// After a step taken for mode-switch stops, in `mode`: the stop, if any.
    pub fn after_step(&mut self, mode: CpuMode) -> Option<DebugStop> {
        let from = self.last_mode.replace(mode);
        match from {
            Some(from) if from != mode => Some(DebugStop::ModeSwitch { from, to: mode }),
            _ if self.setup.single_step => Some(DebugStop::Step),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
