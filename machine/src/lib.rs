//! Nestor's PC: the board (memory map, port map, interrupt wiring), the virtual clock, the
//! execution engines behind one trait, and the run loop.

pub mod board;
pub mod clock;
pub mod debug;
pub mod engine;
mod firmware;
pub mod irq;
pub mod isa_dma;
pub mod kvm;
pub mod linuxboot;
pub mod loader;
mod machine;
pub mod memory;
pub mod pci;
pub mod plugins;
pub mod shadow;
pub mod snapshot;

pub use clock::ClockMode;
pub use engine::{Interpreter, Vcpu, VcpuExit};
pub use loader::{KernelKind, KernelSpec, LoadError, Module};
pub use machine::{
    DriveSlot, DriveSpec, Machine, MachineConfig, MachineError, MachineExit, DETERMINISTIC_EPOCH,
    ROM_MAX, ROM_MIN,
};
