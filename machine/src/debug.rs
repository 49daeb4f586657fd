//! The machine's side of the debugger: runs that end at debugger stops, and guest memory as
//! the debugger sees it (linear through the current paging, or physical) without side effects
//! on the guest: no accessed/dirty bits, no faults, no device reads.

use crate::machine::{Machine, MachineError, MachineExit};
use nestor_cpu::debug::{debug_walk, DebugSetup, DebugStop, DebugWalk};
use nestor_cpu::PAGE_SIZE;

/// How a slice of a debugged run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceExit {
    /// The machine stopped for good (power off, triple fault, `max_insns` reached...).
    Exit(MachineExit),
    /// A breakpoint, watchpoint, single step or other armed stop.
    Debug(DebugStop),
    /// The slice's instructions are spent; the guest can go on.
    SliceDone,
}

impl Machine {
    /// Run at most `insns` more instructions (never past `max_insns` in all), stopping early
    /// at a debugger stop.
    pub fn run_slice(
        &mut self,
        insns: u64,
        max_insns: Option<u64>,
    ) -> Result<SliceExit, MachineError> {
        let slice_end = self.spent().saturating_add(insns);
        let limit = max_insns.map_or(slice_end, |m| m.min(slice_end));
        let final_limit = max_insns.is_some_and(|m| m <= slice_end);
        self.debug_stop = None;
        let exit = self.run(Some(limit))?;
        if let Some(stop) = self.debug_stop.take() {
            return Ok(SliceExit::Debug(stop));
        }
        Ok(match exit {
            MachineExit::BudgetExhausted if !final_limit => SliceExit::SliceDone,
            other => SliceExit::Exit(other),
        })
    }

    /// Arm the debugger's breakpoints and watchpoints on the vCPU (at every resume).
    pub fn set_debug(&mut self, setup: &DebugSetup) -> Result<(), MachineError> {
        self.vcpu.set_debug(setup)?;
        Ok(())
    }

    /// Reset the CPU and the devices, as a guest reset request does.
    pub fn debug_reset(&mut self) {
        self.vcpu.reset();
        self.board.reset_devices();
    }

    /// The page walk for linear address `lin` under the vCPU's current paging.
    pub fn debug_walk(&mut self, lin: u64) -> DebugWalk {
        let s = self.vcpu.state();
        let lin = if s.long_mode() {
            lin
        } else {
            lin & 0xffff_ffff
        };
        debug_walk(&s, &mut self.board, lin)
    }

    /// Read guest memory at a linear address; returns how many bytes could be read (the
    /// read stops at the first page that is unmapped or not RAM/ROM).
    pub fn debug_read_linear(&mut self, lin: u64, buf: &mut [u8]) -> usize {
        let s = self.vcpu.state();
        let mut done = 0;
        while done < buf.len() {
            let mut a = lin.wrapping_add(done as u64);
            if !s.long_mode() {
                a &= 0xffff_ffff;
            }
            let n = chunk(a, buf.len() - done);
            let Some(pa) = debug_walk(&s, &mut self.board, a).paddr else {
                break;
            };
            if !self.debug_read_phys(pa, &mut buf[done..done + n]) {
                break;
            }
            done += n;
        }
        done
    }

    /// Write guest RAM at a linear address; returns how many bytes were written.
    pub fn debug_write_linear(&mut self, lin: u64, data: &[u8]) -> usize {
        let s = self.vcpu.state();
        let mut done = 0;
        while done < data.len() {
            let mut a = lin.wrapping_add(done as u64);
            if !s.long_mode() {
                a &= 0xffff_ffff;
            }
            let n = chunk(a, data.len() - done);
            let Some(pa) = debug_walk(&s, &mut self.board, a).paddr else {
                break;
            };
            if !self.debug_write_phys(pa, &data[done..done + n]) {
                break;
            }
            done += n;
        }
        done
    }

    /// Read guest RAM or ROM at a physical address (false if any byte is neither).
    pub fn debug_read_phys(&mut self, paddr: u64, buf: &mut [u8]) -> bool {
        nestor_cpu::debug::peek_phys(&mut self.board, paddr, buf)
    }

    /// Write guest RAM at a physical address (false, writing nothing, if any byte is not
    /// RAM); code decoded from it is dropped.
    pub fn debug_write_phys(&mut self, paddr: u64, data: &[u8]) -> bool {
        let paddr = paddr & nestor_cpu::Bus::a20_mask(&self.board);
        if !self.board.wires.mem.write(paddr, data) {
            return false;
        }
        self.vcpu.invalidate_code(paddr, data.len() as u64);
        true
    }
}

/// How many of `left` bytes at `a` lie in its page.
fn chunk(a: u64, left: usize) -> usize {
    let in_page = PAGE_SIZE - (a & (PAGE_SIZE - 1));
    left.min(in_page as usize)
}
