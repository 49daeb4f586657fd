//! Nestor's BIOS on the board: the host-side half of each firmware trap runs here, on the CPU
//! state, reaching devices only through port I/O and memory, exactly as ROM code would.

use crate::board::Board;
use nestor_bios::{Bios, Platform, TrapResult};
use nestor_cpu::{Bus, CpuState};

/// The board as the BIOS services see it.
struct BoardPlatform<'a> {
    board: &'a mut Board,
}

impl Platform for BoardPlatform<'_> {
    fn read_mem(&mut self, paddr: u64, buf: &mut [u8]) -> bool {
        self.board.wires.mem.read(paddr, buf)
    }
    fn write_mem(&mut self, paddr: u64, data: &[u8]) -> bool {
        self.board.wires.mem.write(paddr, data)
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.board.io_in(port, size)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.board.io_out(port, size, value);
    }
    fn now_ns(&self) -> u64 {
        self.board.now_ns()
    }
}

/// Run firmware service `service` on `cpu`.
pub(crate) fn run_trap(
    bios: &mut Bios,
    board: &mut Board,
    service: u8,
    cpu: &mut CpuState,
) -> TrapResult {
    bios.handle_trap(service, cpu, &mut BoardPlatform { board })
}
