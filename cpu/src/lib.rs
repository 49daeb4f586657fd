//! Nestor's x86 CPU: architectural state ([`CpuState`]), the [`Bus`] boundary to the machine,
//! MMU with software TLB, decoded-instruction cache and the interpreter ([`Cpu`]).
//!
//! ```
//! use nestor_cpu::{Cpu, CpuState};
//! let cpu = Cpu::new();
//! assert_eq!(cpu.s.rip, 0xfff0); // reset vector F000:FFF0
//! ```

pub mod bus;
mod cpu;
pub mod cpuid;
pub mod debug;
pub mod descriptor;
mod fastloop;
pub mod fault;
pub mod flags;
mod handlers;
mod icache;
mod idt;
mod idt64;
pub mod interrupt;
mod mem;
pub mod msr;
pub mod operand;
pub mod paging;
pub mod phys;
mod stack;
pub mod state;
pub mod table;
mod task;
pub mod testbus;
mod tlb;
pub mod x87;

pub use bus::{Bus, PageTarget, PAGE_SIZE};
pub use cpu::{Cpu, RunExit};
pub use fault::{CpuError, Exec, Fault};
pub use state::{CpuState, SegReg, Segment, TableReg};
