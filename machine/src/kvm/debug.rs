//! The debugger under KVM: breakpoints and watchpoints go into the four hardware debug
//! registers through KVM_SET_GUEST_DEBUG (KVM_GUESTDBG_USE_HW_BP), single step through
//! KVM_GUESTDBG_SINGLESTEP, and a KVM_EXIT_DEBUG is decoded from DR6 back into a
//! [`DebugStop`]. Mode-switch stops single-step the guest and compare modes after each
//! instruction. KVM cannot stop on arbitrary guest exceptions (x86 guest debug intercepts
//! only #DB and #BP), so `break exception` is refused under KVM.

use kvm_bindings::{
    kvm_guest_debug, kvm_guest_debug_arch, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
};
use nestor_cpu::debug::{CpuMode, DebugSetup, DebugStop, WatchKind, Watchpoint};

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
        "under KVM the debugger has {HW_SLOTS} hardware debug registers; this setup needs {0} \
         (each breakpoint takes one, a watchpoint one per aligned 1/2/4/8-byte piece): \
         delete some breakpoints or watchpoints, or use --accel interp"
    )]
    TooManySlots(usize),
    #[error(
        "KVM cannot stop on guest exceptions (its x86 guest debug intercepts only #DB and \
         #BP): 'monitor break exception' needs --accel interp"
    )]
    Exceptions,
}

/// What one debug register watches, to decode DR6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// An instruction breakpoint at this linear address.
    Exec(u64),
    /// One aligned piece of this watchpoint.
    Watch {
        piece: u64,
        len: u64,
        of: Watchpoint,
    },
}

impl Slot {
    /// DR7's R/W and LEN fields for this slot (4 bits, R/W low).
    fn dr7_bits(self) -> u64 {
        match self {
            Self::Exec(_) => 0,
            Self::Watch { len, of, .. } => {
                // x86 has no read-only data breakpoint: reads are caught as accesses.
                let rw = if of.kind == WatchKind::Write {
                    0b01
                } else {
                    0b11
                };
                let len_code = match len {
                    1 => 0b00,
                    2 => 0b01,
                    8 => 0b10,
                    _ => 0b11,
                };
                rw | len_code << 2
            }
        }
    }

    fn address(self) -> u64 {
        match self {
            Self::Exec(a) => a,
            Self::Watch { piece, .. } => piece,
        }
    }
}

/// Cover `[start, start + len)` with naturally aligned pieces of 1, 2, 4 or 8 bytes.
fn aligned_pieces(start: u64, len: u64) -> Vec<(u64, u64)> {
    let mut pieces = Vec::new();
    let mut at = start;
    let end = start.saturating_add(len.max(1));
    while at < end {
        let size = [8u64, 4, 2, 1]
            .into_iter()
            .find(|&s| at.is_multiple_of(s) && at.saturating_add(s) <= end)
            .unwrap_or(1);
        pieces.push((at, size));
        at = at.saturating_add(size);
        // A huge range would need thousands of pieces: more than enough to refuse it.
        if pieces.len() > HW_SLOTS {
            break;
        }
    }
    pieces
}

/// The debug registers for `setup`'s breakpoints and watchpoints.
pub fn slots_for(setup: &DebugSetup) -> Result<Vec<Slot>, KvmDebugError> {
    let mut slots: Vec<Slot> = Vec::new();
    for &b in &setup.breakpoints {
        if !slots.contains(&Slot::Exec(b)) {
            slots.push(Slot::Exec(b));
        }
    }
    for w in &setup.watchpoints {
        for (piece, len) in aligned_pieces(w.start, w.len) {
            slots.push(Slot::Watch { piece, len, of: *w });
        }
    }
    if slots.len() > HW_SLOTS {
        let needed = setup.breakpoints.len()
            + setup
                .watchpoints
                .iter()
                .map(|w| aligned_pieces(w.start, w.len).len())
                .sum::<usize>();
        return Err(KvmDebugError::TooManySlots(needed));
    }
    Ok(slots)
}

/// KVM_SET_GUEST_DEBUG's argument for `slots`, single-stepping if `step`.
#[must_use]
pub fn guest_debug(slots: &[Slot], step: bool) -> kvm_guest_debug {
    let mut arch = kvm_guest_debug_arch::default();
    let mut control = 0;
    if !slots.is_empty() {
        control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
        let mut dr7 = DR7_BASE;
        for (n, slot) in slots.iter().take(HW_SLOTS).enumerate() {
            arch.debugreg[n] = slot.address();
            dr7 |= 0b10 << (2 * n) | slot.dr7_bits() << (16 + 4 * n);
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
    slots: Vec<Slot>,
    /// The whole setup's registers, and KVM's argument for them, to install after the
    /// first instruction when a resume starts on a breakpoint.
    pending: Option<(Vec<Slot>, kvm_guest_debug)>,
    /// KVM_SET_GUEST_DEBUG was ever called (an inactive setup then needs a disarm).
    pub armed: bool,
    /// The mode after the last instruction, for mode-switch stops.
    pub last_mode: Option<CpuMode>,
    /// The argument of the last KVM_SET_GUEST_DEBUG.
    current: kvm_guest_debug,
    /// DR7 as the last KVM_EXIT_DEBUG reported it.
    last_exit_dr7: Option<u64>,
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
        let first: Vec<Slot> = slots
            .iter()
            .copied()
            .filter(|s| *s != Slot::Exec(pc))
            .collect();
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

    /// Does this KVM run the guest without the debugger's DR7 (its debug exits report DR7
    /// as 0 although registers are armed)? Then data breakpoints cannot fire; seen on
    /// nested PVM hosts, where instruction breakpoints and steps still work.
    #[must_use]
    pub fn dr7_ignored(&self) -> bool {
        self.last_exit_dr7 == Some(0) && self.current.arch.debugreg[7] != 0
    }

    /// Note a KVM_EXIT_DEBUG's DR7 (warning once when the hardware did not get ours).
    pub fn note_exit_dr7(&mut self, dr7: u64) {
        let was_ignored = self.dr7_ignored();
        self.last_exit_dr7 = Some(dr7);
        if self.dr7_ignored() && !was_ignored {
            tracing::warn!(
                "kvm: this KVM does not load the debugger's DR7 into the guest (debug exits \
                 report DR7=0): watchpoints will not fire; use --accel interp for them"
            );
        }
    }

    /// Decode a KVM_EXIT_DEBUG: `exception` is the vector, `dr6` says which slot or a step.
    #[must_use]
    pub fn decode(&self, exception: u32, dr6: u64) -> DebugAction {
        if exception != 1 {
            return DebugAction::Reinject;
        }
        let hit = |n: usize| dr6 & (1 << n) != 0;
        let mut exec = None;
        for (n, slot) in self.slots.iter().enumerate() {
            match *slot {
                Slot::Watch { piece, of, .. } if hit(n) => {
                    let kind = if of.kind == WatchKind::Write {
                        WatchKind::Write
                    } else {
                        WatchKind::Read
                    };
                    let addr = piece.max(of.start);
                    return DebugAction::Stop(DebugStop::Watch { kind, addr });
                }
                Slot::Exec(a) if hit(n) => exec = Some(a),
                _ => {}
            }
        }
        if let Some(a) = exec {
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
