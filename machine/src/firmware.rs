//! Nestor's BIOS on the board: the host-side half of each firmware trap runs here, on the CPU
//! state, reaching devices only through port I/O and memory, exactly as ROM code would.

use crate::board::Board;
use nestor_bios::{Bios, Platform, TrapResult};
use nestor_cpu::{phys, Bus, CpuState, PAGE_SIZE};

/// The board as the BIOS services see it.
struct BoardPlatform<'a> {
    board: &'a mut Board,
}

/// Split `[paddr, paddr+len)` into pieces that do not cross a page.
fn pages(paddr: u64, len: usize) -> impl Iterator<Item = (u64, std::ops::Range<usize>)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = paddr.wrapping_add(done as u64);
        let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
        let piece = (at, done..done + n);
        done += n;
        Some(piece)
    })
}

impl Platform for BoardPlatform<'_> {
    /// Memory as the CPU sees it: RAM, ROM, and device windows such as VGA's.
    fn read_mem(&mut self, paddr: u64, buf: &mut [u8]) -> bool {
        for (at, range) in pages(paddr, buf.len()) {
            phys::read(self.board, at, &mut buf[range]);
        }
        true
    }
    fn write_mem(&mut self, paddr: u64, data: &[u8]) -> bool {
        self.board.wires.written.push((paddr, data.len() as u64));
        for (at, range) in pages(paddr, data.len()) {
            phys::write(self.board, at, &data[range]);
        }
        true
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
