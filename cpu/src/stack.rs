//! Stack pushes and pops, honouring SS's size (SP, ESP, or RSP in 64-bit mode) and its limit
//! checks.

use crate::fault::Exec;
use crate::state::SegReg;
use crate::{Bus, Cpu};

impl Cpu {
    /// Stack pointer width in bytes: 8 in 64-bit mode, 2 for a 16-bit stack segment, else 4.
    #[inline]
    #[must_use]
    pub fn stack_width(&self) -> u8 {
        if self.s.long64() {
            8
        } else if self.s.protected_mode() && self.s.seg(SegReg::Ss).big() && !self.s.v86_mode() {
            4
        } else {
            2
        }
    }

    #[inline]
    fn sp_mask(&self) -> u64 {
        crate::flags::size_mask(self.stack_width())
    }

    #[must_use]
    pub fn sp(&self) -> u64 {
        self.s.gpr[4] & self.sp_mask()
    }

    pub fn set_sp(&mut self, v: u64) {
        let w = self.stack_width();
        self.set_gpr(4, w, v);
    }

    /// Push `size` bytes; SP changes only if the write succeeds.
    pub fn push(&mut self, bus: &mut dyn Bus, size: u8, v: u64) -> Exec {
        let sp = self.sp().wrapping_sub(u64::from(size)) & self.sp_mask();
        self.write_mem(bus, SegReg::Ss, sp, size, v)?;
        self.set_sp(sp);
        Ok(())
    }

    /// Pop `size` bytes; SP changes only if the read succeeds.
    pub fn pop(&mut self, bus: &mut dyn Bus, size: u8) -> Exec<u64> {
        let sp = self.sp();
        let v = self.read_mem(bus, SegReg::Ss, sp, size)?;
        self.set_sp(sp.wrapping_add(u64::from(size)) & self.sp_mask());
        Ok(v)
    }

    /// Read the stack at `SP + depth` without moving SP.
    pub fn peek(&mut self, bus: &mut dyn Bus, depth: u64, size: u8) -> Exec<u64> {
        let at = self.sp().wrapping_add(depth) & self.sp_mask();
        self.read_mem(bus, SegReg::Ss, at, size)
    }
}
