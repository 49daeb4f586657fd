//! Nestor's gdb stub (gdbstub 0.7). One fixed x86-64 register layout for the whole session,
//! whatever mode the guest is in; breakpoints and watchpoints kept in the emulator (guest
//! memory is never patched); memory by linear address through the guest's paging; and
//! `monitor` commands for system registers, page walks, descriptor tables and more.
//!
//! ```no_run
//! # fn demo(machine: &mut nestor_machine::Machine) -> Result<(), nestor_gdb::GdbError> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:1234")?;
//! let outcome = nestor_gdb::run_with_gdb(machine, &listener, true, None)?;
//! # Ok(()) }
//! ```

pub mod arch;
pub mod monitor;
mod server;
pub mod target;

pub use server::{run_with_gdb, GdbError, GdbOutcome};
