//! Instructions whose results the architecture defines only to a stated accuracy. The
//! generator ends a sequence after one of them, and before the exact comparison the
//! interpreter's result is reconciled with the host's where, and only where, the manual
//! leaves room:
//!
//! - x87 transcendentals (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1): SDM vol. 1
//!   8.3.10 gives an error below 1 ulp, so each stack register may differ from the host's by
//!   at most 1 unit in the 64-bit significand, with the same sign and class; C1 ("set if
//!   result was rounded up") reports the rounding of the implementation's internal
//!   approximation, so it is masked unless a stack fault defines it. F2XM1 outside [-1, +1] and FYL2XP1 outside
//!   ±(1 - √2/2) are "undefined" (SDM vol. 2 F2XM1/FYL2XP1): value, C1, the exception
//!   flags, ES and B are taken from the host there (a stack fault stays exact). Everything else (specials, NaN, C2 with the operand
//!   unchanged out of range, IE/ZE/DE/SF, TOP, tags) is compared exactly.
//! - RCPPS/RCPSS/RSQRTPS/RSQRTSS: SDM vol. 2 gives |relative error| ≤ 1.5·2^-12. A lane that
//!   differs from the host's is accepted when the interpreter's value meets that bound
//!   against the exact 1/x or 1/√x of the source (read from the state before the
//!   instruction). Zero, infinity, NaN, denormal sources, negative RSQRT sources and results
//!   that would be tiny must match exactly; MXCSR is never touched.

use super::gen::Sequence;
use super::layout::{off, Context, DATA_BYTES};
use iced_x86::{Code, Instruction, Mnemonic as M, OpKind};

/// How the last instruction of a sequence is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approx {
    /// x87 transcendental: within 1 ulp.
    Trans,
    /// RCP/RSQRT estimate: within 1.5·2^-12 relative.
    Estimate,
}

/// The approximation class of `code`, if any.
#[must_use]
pub fn kind(code: Code) -> Option<Approx> {
    match code.mnemonic() {
        M::Fsin
        | M::Fcos
        | M::Fsincos
        | M::Fptan
        | M::Fpatan
        | M::F2xm1
        | M::Fyl2x
        | M::Fyl2xp1 => Some(Approx::Trans),
        M::Rcpps | M::Rcpss | M::Rsqrtps | M::Rsqrtss => Some(Approx::Estimate),
        _ => None,
    }
}

/// The interpreter's result `got`, with the fields the manual leaves open taken from the
/// host (`native`) where the interpreter's value is within the documented accuracy. `pre`
/// is the interpreter's state (and memory) before the last instruction.
#[must_use]
pub fn reconcile(
    seq: &Sequence,
    pre: &Context,
    pre_mem: &[u8],
    native: &Context,
    got: &Context,
) -> Context {
    let Some(last) = seq.insns.last() else {
        return *got;
    };
    if native.fault().is_some() || got.fault().is_some() {
        return *got;
    }
    let mut out = *got;
    match kind(last.insn.code()) {
        Some(Approx::Trans) => trans(&last.insn, pre, native, &mut out),
        Some(Approx::Estimate) => estimate(&last.insn, pre, pre_mem, native, &mut out),
        None => {}
    }
    out
}

const FSW_C1: u16 = 1 << 9;
/// C1 and the exception flags with ES and B: what an undefined F2XM1/FYL2XP1 result may
/// set (the stack fault flag and TOP stay compared).
const FSW_UNDEFINED: u16 = FSW_C1 | 0x3f | 0x80 | 0x8000;

fn word(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn set_word(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// ST(i) as (sign and exponent, significand).
fn st(c: &Context, i: usize) -> (u16, u64) {
    let at = off::ST + 16 * i;
    let mut m = [0u8; 8];
    m.copy_from_slice(&c.fx[at..at + 8]);
    (word(&c.fx, at + 8), u64::from_le_bytes(m))
}

/// Position of a finite extended value on the number line of its sign (consecutive
/// representable values are consecutive integers); `None` for NaN, infinity, unnormals.
fn ordinal(se: u16, m: u64) -> Option<i128> {
    let e = se & 0x7fff;
    if e == 0x7fff || (e != 0 && m >> 63 == 0) || (e == 0 && m >> 63 != 0) {
        return None;
    }
    Some(if e == 0 {
        i128::from(m)
    } else {
        i128::from(e - 1) * (1 << 63) + i128::from(m)
    })
}

/// Within one unit in the last place: same sign, both finite and non-special.
fn within_one_ulp(a: (u16, u64), b: (u16, u64)) -> bool {
    if a.0 >> 15 != b.0 >> 15 {
        return false;
    }
    match (ordinal(a.0, a.1), ordinal(b.0, b.1)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1 && x != 0 && y != 0,
        _ => false,
    }
}

/// |x| as an f64 approximation of an extended value (enough for range checks).
fn magnitude(v: (u16, u64)) -> f64 {
    let e = i32::from(v.0 & 0x7fff);
    if e == 0x7fff {
        return f64::INFINITY;
    }
    (v.1 as f64) * 2f64.powi((e.max(1) - 16383 - 63).max(-1074))
}

/// Would `insn` find an operand register empty, or its push target full, in `pre`?
fn stack_fault(insn: &Instruction, pre: &Context) -> bool {
    let top = usize::from(word(&pre.fx, off::X87_FSW) >> 11 & 7);
    let valid = |i: usize| pre.fx[off::X87_FTW] >> ((top + i) & 7) & 1 != 0;
    let (operands, pushes) = match insn.mnemonic() {
        M::Fpatan | M::Fyl2x | M::Fyl2xp1 => (2, false),
        M::Fptan | M::Fsincos => (1, true),
        _ => (1, false),
    };
    (0..operands).any(|i| !valid(i)) || pushes && valid(7)
}

fn trans(insn: &Instruction, pre: &Context, native: &Context, out: &mut Context) {
    let fsw_n = word(&native.fx, off::X87_FSW);
    let fsw_g = word(&out.fx, off::X87_FSW);
    let x = st(pre, 0);
    let finite = x.0 & 0x7fff != 0x7fff && (x.0 & 0x7fff == 0 || x.1 >> 63 != 0);
    let undefined_input = finite
        && match insn.mnemonic() {
            M::F2xm1 => magnitude(x) > 1.0,
            M::Fyl2xp1 => magnitude(x) > 1.0 - std::f64::consts::FRAC_1_SQRT_2,
            _ => false,
        };
    // A stack fault stores the indefinite and defines C1 (underflow/overflow): exact.
    if stack_fault(insn, pre) {
        return;
    }
    for i in 0..8 {
        let (n, g) = (st(native, i), st(out, i));
        if n != g && (undefined_input || within_one_ulp(n, g)) {
            let at = off::ST + 16 * i;
            out.fx[at..at + 10].copy_from_slice(&native.fx[at..at + 10]);
        }
    }
    // C1 tells which way the implementation rounded its own internal approximation, even
    // when both results have the same bits (measured: ~1 in 20 such results differ).
    let open = if undefined_input {
        FSW_UNDEFINED
    } else {
        FSW_C1
    };
    set_word(&mut out.fx, off::X87_FSW, fsw_g & !open | fsw_n & open);
}

/// The source operand of an SSE estimate, from the state before it ran.
fn source(insn: &Instruction, pre: &Context, pre_mem: &[u8]) -> u128 {
    if insn.op1_kind() == OpKind::Register {
        let n = insn.op1_register().number();
        return pre.xmm(n);
    }
    let at = insn.memory_displacement64() as usize;
    let size = if matches!(insn.mnemonic(), M::Rcpss | M::Rsqrtss) {
        4
    } else {
        16
    };
    let mut b = [0u8; 16];
    if at + size <= DATA_BYTES && pre_mem.len() >= at + size {
        b[..size].copy_from_slice(&pre_mem[at..at + size]);
    }
    u128::from_le_bytes(b)
}

fn estimate(
    insn: &Instruction,
    pre: &Context,
    pre_mem: &[u8],
    native: &Context,
    out: &mut Context,
) {
    let rsqrt = matches!(insn.mnemonic(), M::Rsqrtps | M::Rsqrtss);
    let scalar = matches!(insn.mnemonic(), M::Rcpss | M::Rsqrtss);
    let dst = insn.op0_register().number();
    let src = source(insn, pre, pre_mem);
    let (mut g, n) = (out.xmm(dst), native.xmm(dst));
    for lane in 0..if scalar { 1 } else { 4 } {
        let sh = 32 * lane;
        let (x, gl, nl) = ((src >> sh) as u32, (g >> sh) as u32, (n >> sh) as u32);
        if gl != nl && estimate_ok(x, gl, rsqrt) && estimate_ok(x, nl, rsqrt) {
            g = g & !(0xffff_ffffu128 << sh) | u128::from(nl) << sh;
        }
    }
    out.set_xmm(dst, g);
}

/// Is `r` an estimate of 1/x (1/√x when `rsqrt`) within 1.5·2^-12 of the exact value, or
/// a zero of the right sign where that bound reaches below the normal range ("tiny results
/// are flushed to zero", SDM RCPSS)? Non-normal sources are never "within tolerance": their
/// results (∞, 0, NaN) must match exactly.
fn estimate_ok(x: u32, r: u32, rsqrt: bool) -> bool {
    const TOLERANCE: f64 = 1.5 / 4096.0;
    let xf = f32::from_bits(x);
    if !xf.is_normal() || (rsqrt && xf < 0.0) {
        return false;
    }
    let exact = if rsqrt {
        1.0 / f64::from(xf).sqrt()
    } else {
        1.0 / f64::from(xf)
    };
    let rf = f32::from_bits(r);
    if rf == 0.0 {
        let flushable = exact.abs() < f64::from(f32::MIN_POSITIVE) * (1.0 + TOLERANCE);
        return flushable && rf.is_sign_negative() == (exact < 0.0);
    }
    rf.is_normal() && ((f64::from(rf) - exact) / exact).abs() <= TOLERANCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ulp_spans_the_denormal_boundary_and_nothing_more() {
        assert!(within_one_ulp((1, 1 << 63), (0, u64::MAX >> 1)));
        assert!(!within_one_ulp((1, 1 << 63), (0, (u64::MAX >> 1) - 1)));
        assert!(!within_one_ulp(
            (0x3fff, 1 << 63),
            (0x8000 | 0x3fff, 1 << 63)
        ));
        assert!(within_one_ulp((0x3fff, 1 << 63), (0x3ffe, u64::MAX)));
        assert!(!within_one_ulp((0x7fff, 1 << 63), (0x7fff, 1 << 63)));
    }

    #[test]
    fn estimates_are_checked_against_the_exact_reciprocal() {
        let two = 2.0f32.to_bits();
        assert!(estimate_ok(two, 0.5f32.to_bits(), false));
        assert!(estimate_ok(
            two,
            (0.5f32 * (1.0 + 2f32.powi(-12))).to_bits(),
            false
        ));
        assert!(!estimate_ok(
            two,
            (0.5f32 * (1.0 + 2f32.powi(-10))).to_bits(),
            false
        ));
        assert!(!estimate_ok(0, f32::INFINITY.to_bits(), false));
        assert!(!estimate_ok((-4.0f32).to_bits(), 0xffc0_0000, true));
        // 1/2^126 is the smallest normal: an estimate just below it flushes to zero.
        assert!(estimate_ok(0x7e80_0000, 0, false));
        assert!(!estimate_ok(0x7e80_0000, 0x8000_0000, false));
        assert!(!estimate_ok(0x7d80_0000, 0, false));
    }
}
