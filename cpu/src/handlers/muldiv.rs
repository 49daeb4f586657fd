//! MUL, IMUL (one-, two- and three-operand forms), DIV and IDIV (#DE on a zero divisor or a
//! quotient that does not fit).
//!
//! Undefined flags follow modern Intel hardware: after a multiply SF, ZF and PF describe the
//! low half of the product (the part written to AL/AX/EAX or the destination) and AF is
//! cleared; DIV and IDIV leave every flag unchanged.

use crate::fault::{Exec, Fault};
use crate::flags::{size_mask, szp};
use crate::handlers::data::sign_extend;
use crate::operand::op_size;
use crate::state::rflags::{ARITH, CF, OF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic};

/// Set the flags of a multiply: CF = OF = `overflow`, SZP from `low`, AF = 0.
fn mul_flags(cpu: &mut Cpu, low: u64, size: u8, overflow: bool) {
    let f = cpu.flags();
    let of = if overflow { CF | OF } else { 0 };
    cpu.set_flags((f & !ARITH) | szp(low, size) | of);
}

/// Write a double-width product or dividend pair: AX for bytes, DX:AX / EDX:EAX otherwise.
fn write_pair(cpu: &mut Cpu, size: u8, lo: u64, hi: u64) {
    if size == 1 {
        cpu.set_gpr(0, 2, (hi & 0xff) << 8 | (lo & 0xff));
    } else {
        cpu.set_gpr(0, size, lo);
        cpu.set_gpr(2, size, hi);
    }
}

/// One-operand MUL / IMUL: accumulator times r/m into AX, DX:AX or EDX:EAX.
fn mul1(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let w = u32::from(size) * 8;
    let m = size_mask(size);
    let src = cpu.read_op(bus, i, 0, size)?;
    let acc = cpu.gpr(0, size);
    // 128-bit products hold every operand size, 64-bit ones included.
    let (lo, hi, overflow) = if i.mnemonic() == Mnemonic::Mul {
        let p = u128::from(acc) * u128::from(src);
        let hi = (p >> w) as u64 & m;
        (p as u64 & m, hi, hi != 0)
    } else {
        let p = signed_product(acc, src, size);
        let lo = p as u64 & m;
        (lo, (p >> w) as u64 & m, signed(lo, size) != p)
    };
    write_pair(cpu, size, lo, hi);
    mul_flags(cpu, lo, size, overflow);
    Ok(())
}

/// `v` (of `size` bytes) as a signed 128-bit value.
fn signed(v: u64, size: u8) -> i128 {
    i128::from(sign_extend(v, size) as i64)
}

/// The exact signed product of two `size`-byte values.
fn signed_product(a: u64, b: u64, size: u8) -> i128 {
    signed(a, size) * signed(b, size)
}

/// Two- and three-operand IMUL: the product truncated to the destination size.
fn imul_n(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let (a, b) = if i.op_count() == 3 {
        (cpu.read_op(bus, i, 1, size)?, cpu.read_op(bus, i, 2, size)?)
    } else {
        (cpu.read_op(bus, i, 0, size)?, cpu.read_op(bus, i, 1, size)?)
    };
    let p = signed_product(a, b, size);
    let lo = p as u64 & size_mask(size);
    cpu.write_op(bus, i, 0, size, lo)?;
    mul_flags(cpu, lo, size, signed(lo, size) != p);
    Ok(())
}

/// The double-width dividend: AX for bytes, DX:AX, EDX:EAX or RDX:RAX otherwise.
fn dividend(cpu: &Cpu, size: u8) -> u128 {
    if size == 1 {
        u128::from(cpu.gpr(0, 2))
    } else {
        u128::from(cpu.gpr(2, size)) << (u32::from(size) * 8) | u128::from(cpu.gpr(0, size))
    }
}

fn div(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let m = size_mask(size);
    let src = cpu.read_op(bus, i, 0, size)?;
    if src == 0 {
        return Err(Fault::DE);
    }
    let n = dividend(cpu, size);
    let (q, r) = if i.mnemonic() == Mnemonic::Div {
        let q = n / u128::from(src);
        if q > u128::from(m) {
            return Err(Fault::DE);
        }
        (q as u64, (n % u128::from(src)) as u64)
    } else {
        // Sign-extend the 2*size-byte dividend to 128 bits.
        let unused = 128 - u32::from(size) * 16;
        let n = ((n << unused) as i128) >> unused;
        let d = signed(src, size);
        // i128::MIN / -1 overflows i128 itself: that quotient never fits anyway.
        let (Some(q), Some(r)) = (n.checked_div(d), n.checked_rem(d)) else {
            return Err(Fault::DE);
        };
        let half = 1i128 << (u32::from(size) * 8 - 1);
        if q < -half || q >= half {
            return Err(Fault::DE);
        }
        (q as u64 & m, r as u64 & m)
    };
    write_pair(cpu, size, q, r);
    Ok(())
}

#[rustfmt::skip]
const MUL1: &[Code] = &[
    Code::Mul_rm8, Code::Mul_rm16, Code::Mul_rm32, Code::Imul_rm8, Code::Imul_rm16, Code::Imul_rm32,
];

#[rustfmt::skip]
const IMUL_N: &[Code] = &[
    Code::Imul_r16_rm16, Code::Imul_r32_rm32, Code::Imul_r16_rm16_imm16, Code::Imul_r32_rm32_imm32,
    Code::Imul_r16_rm16_imm8, Code::Imul_r32_rm32_imm8,
];

#[rustfmt::skip]
const DIV: &[Code] = &[
    Code::Div_rm8, Code::Div_rm16, Code::Div_rm32, Code::Idiv_rm8, Code::Idiv_rm16, Code::Idiv_rm32,
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(MUL1, mul1, Meta::plain(Isa::I8086));
    t.add(IMUL_N, imul_n, Meta::plain(Isa::I186));
    t.add(DIV, div, Meta::plain(Isa::I8086));
    let x = Meta::plain(Isa::X64);
    t.add(&[Code::Mul_rm64, Code::Imul_rm64], mul1, x);
    t.add(
        &[
            Code::Imul_r64_rm64,
            Code::Imul_r64_rm64_imm32,
            Code::Imul_r64_rm64_imm8,
        ],
        imul_n,
        x,
    );
    t.add(&[Code::Div_rm64, Code::Idiv_rm64], div, x);
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::run_real;
    use crate::state::rflags;

    #[test]
    fn div_overflow_raises_de() {
        // IVT[0] = 0000:3000 ; mov sp,0x2000 ; mov ax,0x1000 ; mov bl,2 ; div bl (quotient 0x800)
        let (cpu, _) = crate::handlers::alu::tests::run_real_with(
            &[0xbc, 0x00, 0x20, 0xb8, 0x00, 0x10, 0xb3, 0x02, 0xf6, 0xf3],
            4,
            |_, bus| bus.load(0, &[0x00, 0x30, 0x00, 0x00]),
        );
        assert_eq!(cpu.s.rip, 0x3000);
        // The pushed IP is the faulting DIV itself.
        assert_eq!(cpu.s.gpr[4] & 0xffff, 0x1ffa);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x1000);
    }

    #[test]
    fn idiv_accepts_most_negative_quotient() {
        // mov ax,0xff00 (-256) ; mov bl,2 ; idiv bl -> AL = 0x80, AH = 0
        let (cpu, _) = run_real(&[0xb8, 0x00, 0xff, 0xb3, 0x02, 0xf6, 0xfb], 3);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x0080);
        assert_eq!(cpu.s.rip, 0x1007);
    }

    #[test]
    fn mul_and_imul_flags() {
        // mov ax,0xffff ; mov bx,2 ; mul bx -> DX:AX = 1:FFFE, CF=OF=1
        let (cpu, _) = run_real(&[0xb8, 0xff, 0xff, 0xbb, 0x02, 0x00, 0xf7, 0xe3], 3);
        assert_eq!(cpu.s.gpr[2] & 0xffff, 1);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0xfffe);
        assert_ne!(cpu.flags() & rflags::CF, 0);
        // imul ax,bx,-1 with bx = 2 -> 0xfffe, no overflow
        let (cpu, _) = run_real(&[0xbb, 0x02, 0x00, 0x6b, 0xc3, 0xff], 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0xfffe);
        assert_eq!(cpu.flags() & (rflags::CF | rflags::OF), 0);
    }
}
