//! Running a machine with no window: character devices bound to stdout or files, and the
//! way the guest stopped turned into a process exit status (what CI looks at), and the
//! display saved as files (PNG screenshot, text screen).

mod chardev;
mod screenshot;

pub use chardev::{open_chardev, ChardevSpec};
pub use screenshot::{
    capture, run_with_display, save_screenshot, save_vga_text, write_png, DisplayOutputs,
};

use nestor_machine::MachineExit;

/// Process exit statuses. isa-debug-exit statuses are always odd ((v << 1) | 1), so every
/// status of Nestor's own is even and never collides with one.
pub mod status {
    /// The guest powered the machine off.
    pub const POWER_OFF: i32 = 0;
    /// A host-side error: missing file, bad ROM, bad option.
    pub const HOST_ERROR: i32 = 2;
    pub const TRIPLE_FAULT: i32 = 4;
    pub const BUDGET_EXHAUSTED: i32 = 6;
    pub const HALTED_FOREVER: i32 = 8;
}

/// The process exit status for a machine exit, and the one-line message to print (if any).
#[must_use]
pub fn exit_status(exit: MachineExit) -> (i32, Option<&'static str>) {
    match exit {
        MachineExit::PowerOff => (status::POWER_OFF, None),
        MachineExit::DebugExit(code) => (code, None),
        MachineExit::TripleFault => (
            status::TRIPLE_FAULT,
            Some("nestor: triple fault: the guest CPU shut down"),
        ),
        MachineExit::BudgetExhausted => (
            status::BUDGET_EXHAUSTED,
            Some("nestor: instruction budget exhausted (--max-insns)"),
        ),
        MachineExit::HaltedForever => (
            status::HALTED_FOREVER,
            Some("nestor: the guest halted with interrupts disabled and can never wake up"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_distinct_and_even() {
        let all = [
            MachineExit::PowerOff,
            MachineExit::TripleFault,
            MachineExit::BudgetExhausted,
            MachineExit::HaltedForever,
        ];
        let mut codes: Vec<i32> = all.iter().map(|e| exit_status(*e).0).collect();
        codes.push(status::HOST_ERROR);
        assert!(codes.iter().all(|c| c % 2 == 0));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 5);
        assert_eq!(exit_status(MachineExit::DebugExit(7)).0, 7);
    }
}
