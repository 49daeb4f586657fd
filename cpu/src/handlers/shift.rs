//! Shifts and rotates: SHL/SAL/SHR/SAR/ROL/ROR/RCL/RCR by 1, CL or imm8 (including the
//! D0-D3/C0-C1 /6 alias of SAL), and the double shifts SHLD/SHRD.
//!
//! The count is masked to 5 bits; a masked count of 0 changes nothing (not even flags).
//! Where the manuals leave flags undefined we follow modern Intel hardware:
//! - OF for counts other than 1 uses the 1-bit formula on the final step: SHL/SAL and RCL
//!   `MSB(result) ^ CF`, SHR `MSB` of the value before the last step, SAR 0, ROL
//!   `MSB(result) ^ LSB(result)`, ROR/RCR the XOR of the two top result bits; SHLD/SHRD
//!   likewise as a sign change of the last step.
//! - AF is cleared by every shift with a non-zero count (rotates leave it alone).
//! - SHL/SHR counts at or beyond the operand width shift bit by bit: the result is 0 and CF
//!   is the last bit shifted out (0 once the count exceeds the width).
//! - SHLD/SHRD on 16-bit operands with counts 17..31 shift through the 48-bit pattern
//!   dest:src:dest, as Intel P6 and later cores do.

use crate::fault::Exec;
use crate::flags::{size_mask, szp};
use crate::operand::op_size;
use crate::state::rflags::{ARITH, CF, OF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

/// Result and new arithmetic flags (`mask` says which flags the operation defines).
struct Shifted {
    res: u64,
    flags: u64,
    mask: u64,
}

fn bit(v: u64, n: u32) -> u64 {
    (v >> n) & 1
}

/// One shift or rotate of `d` (`w` bits wide) by `count` (1..=31), carry-in `cf`.
fn compute(m: Mnemonic, d: u64, count: u32, w: u32, cf: bool) -> Shifted {
    let mask = size_mask((w / 8) as u8);
    let top = w - 1;
    let cf = u64::from(cf);
    let of = |x: u64| if x & 1 != 0 { OF } else { 0 };
    let c = |x: u64| if x & 1 != 0 { CF } else { 0 };
    let shift = |res: u64, carry: u64, ofb: u64| Shifted {
        res,
        flags: szp(res, (w / 8) as u8) | c(carry) | of(ofb),
        mask: ARITH,
    };
    let rot = |res: u64, carry: u64, ofb: u64| Shifted {
        res,
        flags: c(carry) | of(ofb),
        mask: CF | OF,
    };
    match m {
        Mnemonic::Shl | Mnemonic::Sal => {
            let res = (d << count) & mask;
            let carry = if count <= w { bit(d, w - count) } else { 0 };
            shift(res, carry, bit(res, top) ^ carry)
        }
        Mnemonic::Shr => {
            let before = d >> (count - 1);
            shift(d >> count, before & 1, bit(before, top))
        }
        Mnemonic::Sar => {
            let sd = crate::handlers::data::sign_extend(d, (w / 8) as u8) as i64;
            let res = (sd >> count) as u64 & mask;
            shift(res, ((sd >> (count - 1)) & 1) as u64, 0)
        }
        Mnemonic::Rol => {
            let n = count % w;
            let res = ((d << n) | (d >> ((w - n) % w))) & mask;
            rot(res, res & 1, bit(res, top) ^ (res & 1))
        }
        Mnemonic::Ror => {
            let n = count % w;
            let res = ((d >> n) | (d << ((w - n) % w))) & mask;
            rot(res, bit(res, top), bit(res, top) ^ bit(res, top - 1))
        }
        // Rotates through carry work on w+1 bits: 128-bit arithmetic holds 65.
        Mnemonic::Rcl => {
            let n = count % (w + 1);
            let wide_mask = (u128::from(mask) << 1) | 1;
            let v = (u128::from(cf) << w) | u128::from(d);
            let r = ((v << n) | (v >> (w + 1 - n))) & wide_mask;
            let (res, carry) = (r as u64 & mask, (r >> w) as u64 & 1);
            rot(res, carry, bit(res, top) ^ carry)
        }
        _ => {
            let n = count % (w + 1);
            let wide_mask = (u128::from(mask) << 1) | 1;
            let v = (u128::from(cf) << w) | u128::from(d);
            let r = ((v >> n) | (v << (w + 1 - n))) & wide_mask;
            let (res, carry) = (r as u64 & mask, (r >> w) as u64 & 1);
            rot(res, carry, bit(res, top) ^ bit(res, top - 1))
        }
    }
}

/// The count mask: 6 bits for 64-bit operands, else 5.
fn count_mask(size: u8) -> u64 {
    if size == 8 {
        0x3f
    } else {
        0x1f
    }
}

/// A zero count changes nothing, except that a 32-bit register destination is still written
/// (zero-extended in 64-bit mode).
fn zero_count(cpu: &mut Cpu, i: &Instruction, size: u8) {
    if size == 4 && i.op0_kind() == OpKind::Register {
        let r = i.op0_register();
        cpu.set_reg(r, cpu.reg(r));
    }
}

fn shift_rotate(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let count = (cpu.read_op(bus, i, 1, 1)? & count_mask(size)) as u32;
    cpu.probe_op(bus, i, 0, size)?;
    let d = cpu.read_op(bus, i, 0, size)?;
    if count == 0 {
        zero_count(cpu, i, size);
        return Ok(());
    }
    let cf = cpu.flags() & CF != 0;
    let s = compute(i.mnemonic(), d, count, u32::from(size) * 8, cf);
    cpu.write_op(bus, i, 0, size, s.res)?;
    // Shifts clear AF (their mask covers it, their flags never hold it); rotates leave it.
    let f = cpu.flags();
    cpu.set_flags((f & !s.mask) | (s.flags & s.mask));
    Ok(())
}

/// SHLD/SHRD of `d` with fill bits from `s`, `w` bits wide, count 1..=31 (1..=63 for 64).
fn double_shift(left: bool, d: u64, s: u64, count: u32, w: u32) -> Shifted {
    let size = (w / 8) as u8;
    let mask = size_mask(size);
    let (d128, s128) = (u128::from(d), u128::from(s));
    let bit128 = |v: u128, n: u32| (v >> n) as u64 & 1;
    // 16-bit operands shift through dest:src:dest; wider ones through dest:src.
    let (v, vw) = if w == 16 {
        ((d128 << 32) | (s128 << 16) | d128, 48)
    } else {
        ((d128 << w) | s128, 2 * w)
    };
    let (res, carry) = if left {
        ((v >> (vw - w - count)) as u64 & mask, bit128(v, vw - count))
    } else {
        let lowv = if w == 16 { v } else { (s128 << w) | d128 };
        ((lowv >> count) as u64 & mask, bit128(lowv, count - 1))
    };
    let top = w - 1;
    let ofb = if left {
        bit(res, top) ^ carry
    } else {
        bit(res, top) ^ bit(res, top - 1)
    };
    let flags = szp(res, size) | if carry != 0 { CF } else { 0 } | if ofb != 0 { OF } else { 0 };
    Shifted {
        res,
        flags,
        mask: ARITH,
    }
}

fn shld_shrd(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let count = (cpu.read_op(bus, i, 2, 1)? & count_mask(size)) as u32;
    cpu.probe_op(bus, i, 0, size)?;
    let d = cpu.read_op(bus, i, 0, size)?;
    let s = cpu.read_op(bus, i, 1, size)?;
    if count == 0 {
        zero_count(cpu, i, size);
        return Ok(());
    }
    let r = double_shift(
        i.mnemonic() == Mnemonic::Shld,
        d,
        s,
        count,
        u32::from(size) * 8,
    );
    cpu.write_op(bus, i, 0, size, r.res)?;
    let f = cpu.flags();
    cpu.set_flags((f & !ARITH) | r.flags);
    Ok(())
}

#[rustfmt::skip]
const SHIFTS: &[Code] = &[
    Code::Rol_rm8_imm8, Code::Ror_rm8_imm8, Code::Rcl_rm8_imm8, Code::Rcr_rm8_imm8,
    Code::Shl_rm8_imm8, Code::Shr_rm8_imm8, Code::Sal_rm8_imm8, Code::Sar_rm8_imm8,
    Code::Rol_rm16_imm8, Code::Rol_rm32_imm8, Code::Ror_rm16_imm8, Code::Ror_rm32_imm8,
    Code::Rcl_rm16_imm8, Code::Rcl_rm32_imm8, Code::Rcr_rm16_imm8, Code::Rcr_rm32_imm8,
    Code::Shl_rm16_imm8, Code::Shl_rm32_imm8, Code::Shr_rm16_imm8, Code::Shr_rm32_imm8,
    Code::Sal_rm16_imm8, Code::Sal_rm32_imm8, Code::Sar_rm16_imm8, Code::Sar_rm32_imm8,
    Code::Rol_rm8_1, Code::Ror_rm8_1, Code::Rcl_rm8_1, Code::Rcr_rm8_1,
    Code::Shl_rm8_1, Code::Shr_rm8_1, Code::Sal_rm8_1, Code::Sar_rm8_1,
    Code::Rol_rm16_1, Code::Rol_rm32_1, Code::Ror_rm16_1, Code::Ror_rm32_1,
    Code::Rcl_rm16_1, Code::Rcl_rm32_1, Code::Rcr_rm16_1, Code::Rcr_rm32_1,
    Code::Shl_rm16_1, Code::Shl_rm32_1, Code::Shr_rm16_1, Code::Shr_rm32_1,
    Code::Sal_rm16_1, Code::Sal_rm32_1, Code::Sar_rm16_1, Code::Sar_rm32_1,
    Code::Rol_rm8_CL, Code::Ror_rm8_CL, Code::Rcl_rm8_CL, Code::Rcr_rm8_CL,
    Code::Shl_rm8_CL, Code::Shr_rm8_CL, Code::Sal_rm8_CL, Code::Sar_rm8_CL,
    Code::Rol_rm16_CL, Code::Rol_rm32_CL, Code::Ror_rm16_CL, Code::Ror_rm32_CL,
    Code::Rcl_rm16_CL, Code::Rcl_rm32_CL, Code::Rcr_rm16_CL, Code::Rcr_rm32_CL,
    Code::Shl_rm16_CL, Code::Shl_rm32_CL, Code::Shr_rm16_CL, Code::Shr_rm32_CL,
    Code::Sal_rm16_CL, Code::Sal_rm32_CL, Code::Sar_rm16_CL, Code::Sar_rm32_CL,
];

#[rustfmt::skip]
const DOUBLE: &[Code] = &[
    Code::Shld_rm16_r16_imm8, Code::Shld_rm32_r32_imm8, Code::Shld_rm16_r16_CL, Code::Shld_rm32_r32_CL,
    Code::Shrd_rm16_r16_imm8, Code::Shrd_rm32_r32_imm8, Code::Shrd_rm16_r16_CL, Code::Shrd_rm32_r32_CL,
];

#[rustfmt::skip]
const SHIFTS64: &[Code] = &[
    Code::Rol_rm64_imm8, Code::Ror_rm64_imm8, Code::Rcl_rm64_imm8, Code::Rcr_rm64_imm8,
    Code::Shl_rm64_imm8, Code::Shr_rm64_imm8, Code::Sal_rm64_imm8, Code::Sar_rm64_imm8,
    Code::Rol_rm64_1, Code::Ror_rm64_1, Code::Rcl_rm64_1, Code::Rcr_rm64_1,
    Code::Shl_rm64_1, Code::Shr_rm64_1, Code::Sal_rm64_1, Code::Sar_rm64_1,
    Code::Rol_rm64_CL, Code::Ror_rm64_CL, Code::Rcl_rm64_CL, Code::Rcr_rm64_CL,
    Code::Shl_rm64_CL, Code::Shr_rm64_CL, Code::Sal_rm64_CL, Code::Sar_rm64_CL,
];

#[rustfmt::skip]
const DOUBLE64: &[Code] = &[
    Code::Shld_rm64_r64_imm8, Code::Shld_rm64_r64_CL, Code::Shrd_rm64_r64_imm8, Code::Shrd_rm64_r64_CL,
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(SHIFTS, shift_rotate, Meta::plain(Isa::I8086));
    t.add(DOUBLE, shld_shrd, Meta::plain(Isa::I386));
    t.add(SHIFTS64, shift_rotate, Meta::plain(Isa::X64));
    t.add(DOUBLE64, shld_shrd, Meta::plain(Isa::X64));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: Mnemonic, d: u64, count: u32, w: u32, cf: bool) -> (u64, u64) {
        let s = compute(m, d, count, w, cf);
        (s.res, s.flags & s.mask)
    }

    #[test]
    fn shl_flags() {
        // 0x81 << 1 (8-bit): 0x02, CF=1, OF = MSB(0)^CF = 1
        assert_eq!(run(Mnemonic::Shl, 0x81, 1, 8, false), (0x02, CF | OF));
        // count == width: result 0, CF = bit 0 of the operand
        let (r, f) = run(Mnemonic::Shl, 0x01, 8, 8, false);
        assert_eq!((r, f & CF), (0, CF));
        // count > width: CF = 0
        let (r, f) = run(Mnemonic::Shl, 0xff, 9, 8, false);
        assert_eq!((r, f & CF), (0, 0));
    }

    #[test]
    fn shr_sar_flags() {
        // SHR 0x8000 by 1: OF = old MSB
        let (r, f) = run(Mnemonic::Shr, 0x8000, 1, 16, false);
        assert_eq!((r, f & (CF | OF)), (0x4000, OF));
        // SAR 0x80 by 7 (8-bit) -> 0xff, CF = bit 6 = 0, OF = 0
        let (r, f) = run(Mnemonic::Sar, 0x80, 7, 8, false);
        assert_eq!((r, f & (CF | OF)), (0xff, 0));
        // SAR by a count beyond the width fills with the sign, CF = sign
        let (r, f) = run(Mnemonic::Sar, 0x8000, 20, 16, false);
        assert_eq!((r, f & CF), (0xffff, CF));
    }

    #[test]
    fn rotates() {
        assert_eq!(run(Mnemonic::Rol, 0x81, 1, 8, false), (0x03, CF | OF));
        assert_eq!(run(Mnemonic::Ror, 0x01, 1, 8, false), (0x80, CF | OF));
        // RCL 8-bit by 9 is the identity, CF kept
        assert_eq!(run(Mnemonic::Rcl, 0x5a, 9, 8, true).0, 0x5a);
        // RCR 8-bit by 1 with CF=1: 0x01 -> 0x80, CF=1
        assert_eq!(run(Mnemonic::Rcr, 0x01, 1, 8, true).0, 0x80);
        assert_eq!(run(Mnemonic::Rcr, 0x01, 1, 8, true).1 & CF, CF);
        // ROL 8-bit by 8: value kept, CF = LSB
        assert_eq!(run(Mnemonic::Rol, 0x81, 8, 8, false), (0x81, CF));
        // RCL 32-bit by 31
        assert_eq!(
            run(Mnemonic::Rcl, 0x8000_0000, 31, 32, false).0,
            0x2000_0000
        );
    }

    #[test]
    fn double_shifts() {
        let s = double_shift(true, 0x1234, 0xabcd, 4, 16);
        assert_eq!(s.res, 0x234a);
        let s = double_shift(false, 0x1234, 0xabcd, 4, 16);
        assert_eq!(s.res, 0xd123);
        let s = double_shift(true, 0x8000_0001, 0xf000_0000, 1, 32);
        assert_eq!((s.res, s.flags & (CF | OF)), (0x0000_0003, CF | OF));
        // 16-bit count 20 goes through dest:src:dest
        let s = double_shift(true, 0x1234, 0xabcd, 20, 16);
        assert_eq!(s.res, 0xbcd1);
    }
}
