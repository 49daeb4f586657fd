//! Reading and writing the operands of a decoded instruction: registers, memory (effective
//! address + segment), immediates.

use crate::fault::Exec;
use crate::flags::size_mask;
use crate::state::SegReg;
use crate::{Bus, Cpu};
use iced_x86::{Instruction, OpKind, Register};

/// Where a general-purpose register operand lives in `CpuState::gpr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GprRef {
    pub index: usize,
    pub size: u8,
    /// AH, CH, DH, BH: bits 8..15 of the register.
    pub high8: bool,
}

#[must_use]
pub fn gpr_ref(r: Register) -> Option<GprRef> {
    let n = r as u32;
    let (al, ax, eax, rax) = (
        Register::AL as u32,
        Register::AX as u32,
        Register::EAX as u32,
        Register::RAX as u32,
    );
    Some(if (al..al + 20).contains(&n) {
        let k = n - al;
        match k {
            0..=3 => GprRef {
                index: k as usize,
                size: 1,
                high8: false,
            },
            4..=7 => GprRef {
                index: (k - 4) as usize,
                size: 1,
                high8: true,
            },
            _ => GprRef {
                index: (k - 4) as usize,
                size: 1,
                high8: false,
            },
        }
    } else if (ax..ax + 16).contains(&n) {
        GprRef {
            index: (n - ax) as usize,
            size: 2,
            high8: false,
        }
    } else if (eax..eax + 16).contains(&n) {
        GprRef {
            index: (n - eax) as usize,
            size: 4,
            high8: false,
        }
    } else if (rax..rax + 16).contains(&n) {
        GprRef {
            index: (n - rax) as usize,
            size: 8,
            high8: false,
        }
    } else {
        return None;
    })
}

impl Cpu {
    /// Value of a general-purpose register (zero-extended). Other registers read as 0.
    #[inline]
    #[must_use]
    pub fn reg(&self, r: Register) -> u64 {
        if let Some(g) = gpr_ref(r) {
            let v = self.s.gpr[g.index];
            return if g.high8 {
                (v >> 8) & 0xff
            } else {
                v & size_mask(g.size)
            };
        }
        match SegReg::from_iced(r) {
            Some(s) => u64::from(self.s.seg[s as usize].selector),
            None => 0,
        }
    }

    /// Write a general-purpose register; 8- and 16-bit writes merge, 32-bit writes zero-extend.
    #[inline]
    pub fn set_reg(&mut self, r: Register, v: u64) {
        let Some(g) = gpr_ref(r) else { return };
        let old = self.s.gpr[g.index];
        self.s.gpr[g.index] = match (g.size, g.high8) {
            (1, true) => (old & !0xff00) | ((v & 0xff) << 8),
            (1, false) => (old & !0xff) | (v & 0xff),
            (2, _) => (old & !0xffff) | (v & 0xffff),
            (4, _) => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// Read register number `index` (encoding order) with `size` bytes.
    #[inline]
    #[must_use]
    pub fn gpr(&self, index: usize, size: u8) -> u64 {
        self.s.gpr[index & 15] & size_mask(size)
    }

    #[inline]
    pub fn set_gpr(&mut self, index: usize, size: u8, v: u64) {
        let old = self.s.gpr[index & 15];
        self.s.gpr[index & 15] = match size {
            1 => (old & !0xff) | (v & 0xff),
            2 => (old & !0xffff) | (v & 0xffff),
            4 => v & 0xffff_ffff,
            _ => v,
        };
    }

    /// Effective address (offset within the segment) of the memory operand.
    #[must_use]
    pub fn effective_address(&self, i: &Instruction) -> u64 {
        let base = i.memory_base();
        let index = i.memory_index();
        let mut ea = i.memory_displacement64();
        let mut addr_size = match i.memory_displ_size() {
            2 => 2,
            8 => 8,
            _ => 4,
        };
        if base != Register::None {
            if base == Register::RIP || base == Register::EIP {
                // iced folded the decode-time next IP into the displacement; the decoded
                // instruction may be shared by another linear alias of its page, so rebase
                // on the current one.
                let ea = ea.wrapping_sub(i.next_ip()).wrapping_add(self.next_ip);
                return if base == Register::EIP {
                    ea & 0xffff_ffff
                } else {
                    ea
                };
            }
            ea = ea.wrapping_add(self.reg(base));
            addr_size = base.size() as u8;
        }
        if index != Register::None {
            ea = ea.wrapping_add(
                self.reg(index)
                    .wrapping_mul(u64::from(i.memory_index_scale())),
            );
            addr_size = index.size() as u8;
        }
        ea & size_mask(addr_size)
    }

    /// Segment of the memory operand (default or override).
    #[must_use]
    pub fn mem_seg(&self, i: &Instruction) -> SegReg {
        SegReg::from_iced(i.memory_segment()).unwrap_or(SegReg::Ds)
    }

    /// Read operand `n` of `size` bytes. Immediates come sign-extended as iced gives them.
    pub fn read_op(&mut self, bus: &mut dyn Bus, i: &Instruction, n: u32, size: u8) -> Exec<u64> {
        match i.op_kind(n) {
            OpKind::Register => Ok(self.reg(i.op_register(n))),
            OpKind::Memory => {
                let ea = self.effective_address(i);
                let seg = self.mem_seg(i);
                self.read_mem(bus, seg, ea, size)
            }
            _ => Ok(i.immediate(n) & size_mask(size)),
        }
    }

    /// Write operand `n` (a register or memory).
    pub fn write_op(
        &mut self,
        bus: &mut dyn Bus,
        i: &Instruction,
        n: u32,
        size: u8,
        v: u64,
    ) -> Exec {
        match i.op_kind(n) {
            OpKind::Register => {
                self.set_reg(i.op_register(n), v);
                Ok(())
            }
            _ => {
                let ea = self.effective_address(i);
                let seg = self.mem_seg(i);
                self.write_mem(bus, seg, ea, size, v)
            }
        }
    }

    /// For read-modify-write instructions: fault on an unwritable destination before reading.
    pub fn probe_op(&mut self, bus: &mut dyn Bus, i: &Instruction, n: u32, size: u8) -> Exec {
        if i.op_kind(n) == OpKind::Memory {
            let ea = self.effective_address(i);
            let seg = self.mem_seg(i);
            self.probe_write(bus, seg, ea, size)?;
        }
        Ok(())
    }
}

/// Operand size in bytes of operand `n` (register or memory).
#[inline]
#[must_use]
pub fn op_size(i: &Instruction, n: u32) -> u8 {
    match i.op_kind(n) {
        OpKind::Register => i.op_register(n).size() as u8,
        OpKind::Memory => i.memory_size().size() as u8,
        OpKind::Immediate8 => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        OpKind::Immediate32 | OpKind::Immediate8to32 => 4,
        _ => 8,
    }
}
