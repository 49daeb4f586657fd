//! Shared plumbing for the SSE3..SSE4.2 and crypto families: the CPUID gate, and one
//! handler shape `xmm1 = f(xmm1, xmm2/m128, imm8, XMM0)` that most of them fit.

use super::float::commit;
use super::{enter, set_xmm, src128, xmm};
use crate::fault::{Exec, Fault};
use crate::{Bus, Cpu};
use iced_x86::{Instruction, Mnemonic, OpKind};

/// Pure lane computation: (mnemonic, destination, source, imm8, XMM0) -> result, `None` for
/// a mnemonic the family does not compute.
pub(super) type Compute = fn(Mnemonic, u128, u128, u8, u128) -> Option<u128>;

/// #UD when the model lacks the feature, then the common SSE checks.
pub(super) fn gate(cpu: &Cpu, has: bool) -> Exec {
    if !has {
        return Err(Fault::UD);
    }
    enter(cpu)
}

/// Merge MXCSR flags as `float::commit` does (`fp` already reports PE of an unmasked
/// overflow or underflow from the unbounded-exponent result, as the host does).
pub(super) fn commit_fp(cpu: &mut Cpu, flags: u32) -> Exec {
    commit(cpu, flags)
}

/// The immediate byte when the instruction has one (0 otherwise).
pub(super) fn imm8(i: &Instruction) -> u8 {
    let has_imm = (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Immediate8);
    if has_imm {
        i.immediate8()
    } else {
        0
    }
}

/// `xmm1 = f(xmm1, xmm2/m128, imm8, XMM0)` after the gate; `aligned`: legacy 16-byte
/// alignment rule for the memory operand.
pub(super) fn xmm_op(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    i: &Instruction,
    has: bool,
    aligned: bool,
    f: Compute,
) -> Exec {
    gate(cpu, has)?;
    let b = src128(cpu, bus, i, 1, aligned)?;
    let a = xmm(cpu, i, 0);
    let r = f(i.mnemonic(), a, b, imm8(i), cpu.s.xmm[0]).ok_or(Fault::UD)?;
    set_xmm(cpu, i, 0, r);
    Ok(())
}

/// Lane `k` of width `w` bytes (zero-extended).
pub(super) fn lane(v: u128, w: u32, k: u32) -> u64 {
    let bits = w * 8;
    let x = v >> (k * bits);
    if bits == 64 {
        x as u64
    } else {
        x as u64 & ((1u64 << bits) - 1)
    }
}

/// Lane `k` of width `w` bytes, sign-extended.
pub(super) fn slane(v: u128, w: u32, k: u32) -> i64 {
    let sh = 64 - w * 8;
    ((lane(v, w, k) << sh) as i64) >> sh
}

/// Build a value from `n` lanes of width `w` bytes produced by `f`.
pub(super) fn build(w: u32, n: u32, f: impl Fn(u32) -> u64) -> u128 {
    let bits = w * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (0..n).fold(0u128, |r, k| r | u128::from(f(k) & mask) << (k * bits))
}

/// Does `code`'s first operand name an MMX register (the 64-bit forms of SSSE3)?
pub(super) fn is_mmx_form(code: iced_x86::Code) -> bool {
    use iced_x86::OpCodeOperandKind as K;
    code.op_code().op_count() > 0 && code.op_code().op_kind(0) == K::mm_reg
}
