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

/// What kind of register a `Register` is, in bits 4..7 of its [`REG_INFO`] byte (bits 0..3
/// are the GPR number or the segment register number); 0 for any other register.
mod reg_kind {
    pub const LOW8: u8 = 1;
    pub const HIGH8: u8 = 2;
    pub const R16: u8 = 3;
    pub const R32: u8 = 4;
    pub const R64: u8 = 5;
    pub const SEG: u8 = 6;
}

/// Per iced `Register` (256 of them): kind << 4 | number, so that operand access is one
/// table load instead of a chain of range tests.
static REG_INFO: [u8; 256] = reg_info_table();

const fn reg_info_table() -> [u8; 256] {
    use reg_kind::*;
    let mut t = [0u8; 256];
    let mut k = 0;
    while k < 16 {
        // AL, CL, DL, BL, AH, CH, DH, BH, SPL, BPL, SIL, DIL, R8L..R15L.
        let (lo_index, lo_kind) = if k < 4 {
            (k, LOW8)
        } else if k < 8 {
            (k - 4, HIGH8)
        } else {
            (k - 4, LOW8)
        };
        t[Register::AL as usize + k as usize] = lo_kind << 4 | lo_index;
        t[Register::AX as usize + k as usize] = R16 << 4 | k;
        t[Register::EAX as usize + k as usize] = R32 << 4 | k;
        t[Register::RAX as usize + k as usize] = R64 << 4 | k;
        k += 1;
    }
    while k < 20 {
        t[Register::AL as usize + k as usize] = LOW8 << 4 | (k - 4);
        k += 1;
    }
    t[Register::ES as usize] = SEG << 4 | SegReg::Es as u8;
    t[Register::CS as usize] = SEG << 4 | SegReg::Cs as u8;
    t[Register::SS as usize] = SEG << 4 | SegReg::Ss as u8;
    t[Register::DS as usize] = SEG << 4 | SegReg::Ds as u8;
    t[Register::FS as usize] = SEG << 4 | SegReg::Fs as u8;
    t[Register::GS as usize] = SEG << 4 | SegReg::Gs as u8;
    t
}

/// Address-size mask of a base or index register (all ones for anything but a GPR).
#[inline]
fn addr_mask_of(r: Register) -> u64 {
    match REG_INFO[r as usize] >> 4 {
        reg_kind::R16 => 0xffff,
        reg_kind::R32 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

impl Cpu {
    /// Value of a general-purpose register (zero-extended), or a segment register's selector.
    /// Other registers read as 0.
    #[inline(always)]
    #[must_use]
    pub fn reg(&self, r: Register) -> u64 {
        let info = REG_INFO[r as usize];
        let n = usize::from(info & 15);
        let v = self.s.gpr[n];
        match info >> 4 {
            reg_kind::LOW8 => v & 0xff,
            reg_kind::HIGH8 => (v >> 8) & 0xff,
            reg_kind::R16 => v & 0xffff,
            reg_kind::R32 => v & 0xffff_ffff,
            reg_kind::R64 => v,
            reg_kind::SEG => self.s.seg.get(n).map_or(0, |sreg| u64::from(sreg.selector)),
            _ => 0,
        }
    }

    /// Write a general-purpose register; 8- and 16-bit writes merge, 32-bit writes zero-extend.
    #[inline(always)]
    pub fn set_reg(&mut self, r: Register, v: u64) {
        let info = REG_INFO[r as usize];
        let slot = &mut self.s.gpr[usize::from(info & 15)];
        let old = *slot;
        *slot = match info >> 4 {
            reg_kind::LOW8 => (old & !0xff) | (v & 0xff),
            reg_kind::HIGH8 => (old & !0xff00) | ((v & 0xff) << 8),
            reg_kind::R16 => (old & !0xffff) | (v & 0xffff),
            reg_kind::R32 => v & 0xffff_ffff,
            reg_kind::R64 => v,
            _ => return,
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
    #[inline(always)]
    #[must_use]
    pub fn effective_address(&self, i: &Instruction) -> u64 {
        let base = i.memory_base();
        let index = i.memory_index();
        let mut ea = i.memory_displacement64();
        let mut mask = match i.memory_displ_size() {
            2 => 0xffff,
            8 => u64::MAX,
            _ => 0xffff_ffff,
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
            mask = addr_mask_of(base);
        }
        if index != Register::None {
            ea = ea.wrapping_add(
                self.reg(index)
                    .wrapping_mul(u64::from(i.memory_index_scale())),
            );
            mask = addr_mask_of(index);
        }
        ea & mask
    }

    /// Segment of the memory operand (default or override).
    #[inline]
    #[must_use]
    pub fn mem_seg(&self, i: &Instruction) -> SegReg {
        SegReg::from_iced(i.memory_segment()).unwrap_or(SegReg::Ds)
    }

    /// Read operand `n` of `size` bytes. Immediates come sign-extended as iced gives them.
    #[inline(always)]
    pub fn read_op(&mut self, bus: &mut dyn Bus, i: &Instruction, n: u32, size: u8) -> Exec<u64> {
        match i.op_kind(n) {
            OpKind::Register => Ok(self.reg(i.op_register(n))),
            OpKind::Memory => self.read_mem_operand(bus, i, size),
            _ => Ok(i.immediate(n) & size_mask(size)),
        }
    }

    /// The memory half of [`Cpu::read_op`], kept out of line so that handlers stay small.
    #[inline(never)]
    fn read_mem_operand(&mut self, bus: &mut dyn Bus, i: &Instruction, size: u8) -> Exec<u64> {
        let ea = self.effective_address(i);
        let seg = self.mem_seg(i);
        self.read_mem(bus, seg, ea, size)
    }

    /// The memory half of [`Cpu::write_op`].
    #[inline(never)]
    fn write_mem_operand(&mut self, bus: &mut dyn Bus, i: &Instruction, size: u8, v: u64) -> Exec {
        let ea = self.effective_address(i);
        let seg = self.mem_seg(i);
        self.write_mem(bus, seg, ea, size, v)
    }

    /// The memory half of [`Cpu::probe_op`].
    #[inline(never)]
    fn probe_mem_operand(&mut self, bus: &mut dyn Bus, i: &Instruction, size: u8) -> Exec {
        let ea = self.effective_address(i);
        let seg = self.mem_seg(i);
        self.probe_write(bus, seg, ea, size)
    }

    /// Write operand `n` (a register or memory).
    #[inline(always)]
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
            _ => self.write_mem_operand(bus, i, size, v),
        }
    }

    /// For read-modify-write instructions: fault on an unwritable destination before reading.
    #[inline(always)]
    pub fn probe_op(&mut self, bus: &mut dyn Bus, i: &Instruction, n: u32, size: u8) -> Exec {
        if i.op_kind(n) == OpKind::Memory {
            return self.probe_mem_operand(bus, i, size);
        }
        Ok(())
    }
}

/// Operand size in bytes of operand `n` (register or memory).
#[inline(always)]
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
