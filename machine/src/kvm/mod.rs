//! The KVM engine: the same machine on /dev/kvm. Guest RAM is the interpreter's own mapping,
//! port I/O and MMIO exits go to the board (so Nestor's BIOS trap port works unchanged), and
//! interrupts come from Nestor's PIC/IOAPIC/LAPIC models through KVM_INTERRUPT: there is no
//! in-kernel irqchip, so device state stays in the plugins and snapshots stay engine-free.
//!
//! Time under KVM: hardware cannot count retired instructions, so the engine counts VM exits
//! and charges [`INSNS_PER_EXIT`] instructions for each. `retired()` is that estimate, which
//! drives the deterministic clock and instruction budgets exactly as under the interpreter:
//! device time advances only at exits (the only points where the guest can observe devices),
//! so a run that makes the same exits sees the same device times. A guest that runs a 10 ms
//! wall-clock slice without any exit is kicked out and charged [`INSNS_PER_KICK`] (the only
//! wall-clock-dependent part, and only for exit-less spinning). The guest's own TSC runs
//! on the host's clock under KVM. Also not modelled under KVM: the A20 gate (memory never
//! wraps at 1 MiB) and FCS/FDS of the x87 (KVM has no field for them).
//!
//! The debugger (gdb stub) works through KVM_SET_GUEST_DEBUG for breakpoints and steps, and
//! through page protection in the memory slots for watchpoints: see [`debug`].

mod convert;
pub mod debug;
mod inject;
mod kick;
mod plan;
mod switch;
mod vcpu;
mod vm;

pub use convert::*;
pub use plan::{create_engine, Accel, Amount, EngineKind, EnginePlan, PlanCursor, PlanStep};
pub use switch::{initial_engine, mask_model, model_for_engines};
pub use vcpu::KvmVcpu;
pub use vm::{open, slots, KvmVm, Slot};

/// Instructions a VM exit stands for in the deterministic clock and in budgets.
pub const INSNS_PER_EXIT: u64 = 1000;
/// Instructions charged when a KVM_RUN is kicked out after a wall-clock slice without exits
/// (at most the rest of the run's budget).
pub const INSNS_PER_KICK: u64 = 100_000;

/// Why KVM cannot be used, or failed.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("cannot open /dev/kvm: {0}")]
    Open(String),
    #[error("/dev/kvm speaks KVM API version {0}, not 12")]
    Api(i32),
    #[error("/dev/kvm lacks {0}, which the kvm engine needs")]
    Capability(&'static str),
    #[error("{0} failed: {1}")]
    Ioctl(&'static str, kvm_ioctls::Error),
    #[error("cannot allocate KVM memory: {0}")]
    Memory(std::io::Error),
    #[error("guest memory layout: {0}")]
    Layout(&'static str),
}

/// Whether the kvm engine can run here: /dev/kvm opens, speaks API 12 and has every
/// capability the engine uses. The error is one line, fit for the user.
pub fn probe() -> Result<(), KvmError> {
    open().map(drop)
}
