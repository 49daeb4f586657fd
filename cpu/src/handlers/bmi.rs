//! Bit-manipulation extensions on general-purpose registers: LZCNT/TZCNT (F3 0F BD/BC, which
//! stay BSR/BSF on models without LZCNT/BMI1), POPCNT, BMI1 (ANDN, BEXTR, BLSI, BLSMSK,
//! BLSR) and BMI2 (BZHI, MULX, PDEP, PEXT, RORX, SARX, SHLX, SHRX). Each one is #UD on a
//! model whose CPUID lacks its feature; the VEX forms are also #UD in real and virtual-8086
//! mode. Flags the manual leaves undefined are cleared.

use crate::cpuid::{ecx, ext, leaf7};
use crate::fault::{Exec, Fault};
use crate::flags::{sign_bit, size_mask};
use crate::operand::op_size;
use crate::state::rflags::{ARITH, CF, SF, ZF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic as M};

pub(super) fn require(ok: bool) -> Exec {
    if ok {
        Ok(())
    } else {
        Err(Fault::UD)
    }
}

fn has_bmi1(cpu: &Cpu) -> bool {
    cpu.model.leaf7[0] & leaf7::EBX_BMI1 != 0
}

fn has_bmi2(cpu: &Cpu) -> bool {
    cpu.model.leaf7[0] & leaf7::EBX_BMI2 != 0
}

/// VEX-encoded instructions exist only in protected mode (not real or virtual-8086 mode).
fn vex_mode(cpu: &Cpu) -> Exec {
    require(cpu.s.protected_mode() && !cpu.s.v86_mode())
}

/// Replace the six arithmetic flags with `set`.
fn put_flags(cpu: &mut Cpu, set: u64) {
    let f = cpu.flags();
    cpu.set_flags((f & !ARITH) | set);
}

fn flag(cond: bool, f: u64) -> u64 {
    if cond {
        f
    } else {
        0
    }
}

/// ZF and SF of `r` in `size` bytes.
fn zs(r: u64, size: u8) -> u64 {
    flag(r & size_mask(size) == 0, ZF) | flag(r & sign_bit(size) != 0, SF)
}

/// LZCNT/TZCNT: the count (operand width for a zero source), CF = source was 0, ZF = count
/// is 0. Without the feature the bytes mean REP BSR/BSF.
fn lzcnt_tzcnt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let tz = i.mnemonic() == M::Tzcnt;
    let have = if tz {
        has_bmi1(cpu)
    } else {
        cpu.model.ext_ecx & ext::ECX_ABM != 0
    };
    if !have {
        return super::bits::bsf_bsr(cpu, bus, i);
    }
    let size = op_size(i, 0);
    let bits = u32::from(size) * 8;
    let src = cpu.read_op(bus, i, 1, size)? & size_mask(size);
    let n = if tz {
        src.trailing_zeros().min(bits)
    } else {
        src.leading_zeros() - (64 - bits)
    };
    cpu.write_op(bus, i, 0, size, u64::from(n))?;
    put_flags(cpu, flag(src == 0, CF) | flag(n == 0, ZF));
    Ok(())
}

/// POPCNT: ZF when the source is 0, every other arithmetic flag cleared.
fn popcnt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.features_ecx & ecx::POPCNT != 0)?;
    let size = op_size(i, 0);
    let src = cpu.read_op(bus, i, 1, size)? & size_mask(size);
    cpu.write_op(bus, i, 0, size, u64::from(src.count_ones()))?;
    put_flags(cpu, flag(src == 0, ZF));
    Ok(())
}

/// ANDN, BEXTR, BLSI, BLSMSK, BLSR (BMI1) and BZHI (BMI2): result and flags.
fn bmi1_value(m: M, a: u64, b: u64, size: u8) -> (u64, u64) {
    let bits = u64::from(size) * 8;
    let mask = size_mask(size);
    match m {
        M::Andn => {
            let r = !a & b & mask;
            (r, zs(r, size))
        }
        M::Bextr => {
            let (start, len) = (b & 0xff, (b >> 8) & 0xff);
            let r = if start >= bits {
                0
            } else {
                let v = a >> start;
                if len >= 64 {
                    v
                } else {
                    v & ((1u64 << len) - 1)
                }
            } & mask;
            (r, flag(r == 0, ZF))
        }
        M::Blsi => {
            let r = a.wrapping_neg() & a & mask;
            (r, zs(r, size) | flag(a != 0, CF))
        }
        M::Blsmsk => {
            let r = (a.wrapping_sub(1) ^ a) & mask;
            (r, flag(r & sign_bit(size) != 0, SF) | flag(a == 0, CF))
        }
        M::Blsr => {
            let r = a.wrapping_sub(1) & a & mask;
            (r, zs(r, size) | flag(a == 0, CF))
        }
        // BZHI: zero the bits from index b[7:0] up; CF when the index is past the top.
        _ => {
            let n = b & 0xff;
            let r = if n >= bits { a } else { a & ((1u64 << n) - 1) } & mask;
            (r, zs(r, size) | flag(n > bits - 1, CF))
        }
    }
}

/// The flag-setting VEX forms. Operands: ANDN d, s1, s2/m; BEXTR/BZHI d, s/m, control;
/// BLS* d(vvvv), s/m.
fn bmi_flags_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let m = i.mnemonic();
    require(if m == M::Bzhi {
        has_bmi2(cpu)
    } else {
        has_bmi1(cpu)
    })?;
    vex_mode(cpu)?;
    let size = op_size(i, 0);
    let (a, b) = match m {
        M::Andn | M::Bextr | M::Bzhi => {
            (cpu.read_op(bus, i, 1, size)?, cpu.read_op(bus, i, 2, size)?)
        }
        _ => (cpu.read_op(bus, i, 1, size)?, 0),
    };
    let (r, f) = bmi1_value(m, a, b, size);
    cpu.write_op(bus, i, 0, size, r)?;
    put_flags(cpu, f);
    Ok(())
}

/// PDEP: scatter the low bits of `src` to the set bit positions of `mask`.
pub(crate) fn pdep(src: u64, mask: u64) -> u64 {
    let (mut r, mut m, mut k) = (0u64, mask, 0u32);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src >> k & 1 != 0 {
            r |= bit;
        }
        m &= m - 1;
        k += 1;
    }
    r
}

/// PEXT: gather the bits of `src` at the set positions of `mask` into the low bits.
pub(crate) fn pext(src: u64, mask: u64) -> u64 {
    let (mut r, mut m, mut k) = (0u64, mask, 0u32);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src & bit != 0 {
            r |= 1 << k;
        }
        m &= m - 1;
        k += 1;
    }
    r
}

/// The flagless BMI2 forms: PDEP/PEXT d, s, mask/m; RORX d, s/m, imm8; SARX/SHLX/SHRX
/// d, s/m, count.
fn bmi2_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(has_bmi2(cpu))?;
    vex_mode(cpu)?;
    let size = op_size(i, 0);
    let bits = u32::from(size) * 8;
    let mask = size_mask(size);
    let a = cpu.read_op(bus, i, 1, size)? & mask;
    let b = cpu.read_op(bus, i, 2, size)?;
    let count = (b as u32) & (bits - 1);
    let r = match i.mnemonic() {
        M::Pdep => pdep(a, b & mask),
        M::Pext => pext(a, b & mask),
        M::Rorx if size == 8 => a.rotate_right(count),
        M::Rorx => u64::from((a as u32).rotate_right(count)),
        M::Shlx => a << count,
        M::Shrx => a >> count,
        // SARX: arithmetic shift of the sign-extended source.
        _ => ((((a << (64 - bits)) as i64) >> (64 - bits)) >> count) as u64,
    };
    cpu.write_op(bus, i, 0, size, r & mask)
}

/// MULX hi, lo, src: unsigned EDX/RDX * src without flags; `hi` wins when both name one
/// register.
fn mulx(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(has_bmi2(cpu))?;
    vex_mode(cpu)?;
    let size = op_size(i, 0);
    let src = cpu.read_op(bus, i, 2, size)?;
    let p = u128::from(cpu.gpr(2, size)) * u128::from(src & size_mask(size));
    let shift = u32::from(size) * 8;
    cpu.write_op(bus, i, 1, size, p as u64 & size_mask(size))?;
    cpu.write_op(bus, i, 0, size, (p >> shift) as u64 & size_mask(size))
}

#[rustfmt::skip]
const BMI_FLAGS: &[Code] = &[
    Code::VEX_Andn_r32_r32_rm32, Code::VEX_Andn_r64_r64_rm64,
    Code::VEX_Bextr_r32_rm32_r32, Code::VEX_Bextr_r64_rm64_r64,
    Code::VEX_Blsi_r32_rm32, Code::VEX_Blsi_r64_rm64,
    Code::VEX_Blsmsk_r32_rm32, Code::VEX_Blsmsk_r64_rm64,
    Code::VEX_Blsr_r32_rm32, Code::VEX_Blsr_r64_rm64,
    Code::VEX_Bzhi_r32_rm32_r32, Code::VEX_Bzhi_r64_rm64_r64,
];

#[rustfmt::skip]
const BMI2: &[Code] = &[
    Code::VEX_Pdep_r32_r32_rm32, Code::VEX_Pdep_r64_r64_rm64,
    Code::VEX_Pext_r32_r32_rm32, Code::VEX_Pext_r64_r64_rm64,
    Code::VEX_Rorx_r32_rm32_imm8, Code::VEX_Rorx_r64_rm64_imm8,
    Code::VEX_Sarx_r32_rm32_r32, Code::VEX_Sarx_r64_rm64_r64,
    Code::VEX_Shlx_r32_rm32_r32, Code::VEX_Shlx_r64_rm64_r64,
    Code::VEX_Shrx_r32_rm32_r32, Code::VEX_Shrx_r64_rm64_r64,
];

pub(crate) fn register(t: &mut TableBuilder) {
    let m = Meta::plain(Isa::X64);
    t.add(
        &[
            Code::Tzcnt_r16_rm16,
            Code::Tzcnt_r32_rm32,
            Code::Lzcnt_r16_rm16,
            Code::Lzcnt_r32_rm32,
        ],
        lzcnt_tzcnt,
        Meta::plain(Isa::I386),
    );
    t.add(
        &[Code::Tzcnt_r64_rm64, Code::Lzcnt_r64_rm64],
        lzcnt_tzcnt,
        m,
    );
    t.add(
        &[
            Code::Popcnt_r16_rm16,
            Code::Popcnt_r32_rm32,
            Code::Popcnt_r64_rm64,
        ],
        popcnt,
        m,
    );
    t.add(BMI_FLAGS, bmi_flags_op, m);
    t.add(BMI2, bmi2_op, m);
    t.add(
        &[Code::VEX_Mulx_r32_r32_rm32, Code::VEX_Mulx_r64_r64_rm64],
        mulx,
        m,
    );
}
