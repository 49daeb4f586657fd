//! SSE/SSE2 floating point on IEEE single and double bit patterns, through `rustc_apfloat`:
//! MXCSR rounding, DAZ and FTZ, the x86 NaN rules (first NaN operand wins, quietened;
//! invalid operations give the negative "QNaN indefinite"), and exception flags accumulated
//! into an MXCSR-format mask. Also used lane by lane by the handlers in `float`.

use super::fast;
use rustc_apfloat::ieee::{Double, Quad, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

/// MXCSR bits.
pub(crate) mod mx {
    pub const IE: u32 = 1 << 0;
    pub const DE: u32 = 1 << 1;
    pub const ZE: u32 = 1 << 2;
    pub const OE: u32 = 1 << 3;
    pub const UE: u32 = 1 << 4;
    pub const PE: u32 = 1 << 5;
    pub const DAZ: u32 = 1 << 6;
    pub const MASK_SHIFT: u32 = 7;
    pub const RC_SHIFT: u32 = 13;
    pub const FTZ: u32 = 1 << 15;
}

/// An SSE floating-point format.
pub(crate) trait Fp: Float + FloatConvert<Quad> + Copy {
    /// Width in bits and fraction bits.
    const W: u32;
    const FRAC: u32;
    /// The default NaN: sign set, quiet bit set.
    const INDEFINITE: u128;
    /// Round a binary128 value to this format.
    fn from_quad(q: Quad, rm: Round) -> StatusAnd<Self>;
    /// ADD/SUB/MUL/DIV rounded to nearest on the host's own type, when that is exact:
    /// (bits, inexact), or None (see `fast`).
    fn native(op: Op, a: u128, b: u128) -> Option<(u128, bool)>;
}

impl Fp for Single {
    const W: u32 = 32;
    const FRAC: u32 = 23;
    const INDEFINITE: u128 = 0xffc0_0000;
    fn from_quad(q: Quad, rm: Round) -> StatusAnd<Self> {
        q.convert_r(rm, &mut false)
    }
    fn native(op: Op, a: u128, b: u128) -> Option<(u128, bool)> {
        fast::single(op, a as u32, b as u32).map(|(r, p)| (u128::from(r), p))
    }
}

impl Fp for Double {
    const W: u32 = 64;
    const FRAC: u32 = 52;
    const INDEFINITE: u128 = 0xfff8_0000_0000_0000;
    fn from_quad(q: Quad, rm: Round) -> StatusAnd<Self> {
        q.convert_r(rm, &mut false)
    }
    fn native(op: Op, a: u128, b: u128) -> Option<(u128, bool)> {
        fast::double(op, a as u64, b as u64).map(|(r, p)| (u128::from(r), p))
    }
}

/// Field helpers on a `W`-bit pattern held in a u128.
pub(crate) fn sign<F: Fp>(v: u128) -> u128 {
    v & 1 << (F::W - 1)
}
fn exp_all<F: Fp>() -> u128 {
    ((1u128 << (F::W - 1)) - 1) & !((1u128 << F::FRAC) - 1)
}
fn frac<F: Fp>(v: u128) -> u128 {
    v & ((1u128 << F::FRAC) - 1)
}
pub(crate) fn is_nan<F: Fp>(v: u128) -> bool {
    v & exp_all::<F>() == exp_all::<F>() && frac::<F>(v) != 0
}
pub(crate) fn is_snan<F: Fp>(v: u128) -> bool {
    is_nan::<F>(v) && v & 1 << (F::FRAC - 1) == 0
}
fn quiet<F: Fp>(v: u128) -> u128 {
    v | 1 << (F::FRAC - 1)
}
pub(crate) fn is_denormal<F: Fp>(v: u128) -> bool {
    v & exp_all::<F>() == 0 && frac::<F>(v) != 0
}

/// MXCSR.RC as an apfloat rounding direction.
pub(crate) fn rounding(mxcsr: u32) -> Round {
    match (mxcsr >> mx::RC_SHIFT) & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// An operand after DAZ (denormals read as signed zeros, no DE), with DE noted otherwise.
pub(crate) fn operand<F: Fp>(v: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    if is_denormal::<F>(v) {
        if mxcsr & mx::DAZ != 0 {
            return sign::<F>(v);
        }
        *flags |= mx::DE;
    }
    v
}

/// NaN operands: IE for a signalling one; the result is the first NaN, quietened.
fn nan_result<F: Fp>(a: u128, b: Option<u128>, flags: &mut u32) -> Option<u128> {
    let b_nan = b.filter(|&b| is_nan::<F>(b));
    if !is_nan::<F>(a) && b_nan.is_none() {
        return None;
    }
    if is_snan::<F>(a) || b_nan.is_some_and(is_snan::<F>) {
        *flags |= mx::IE;
    }
    Some(quiet::<F>(if is_nan::<F>(a) {
        a
    } else {
        b_nan.unwrap_or(a)
    }))
}

/// Turn an apfloat result into bits and flags: invalid gives the indefinite NaN; a tiny
/// result flushes to zero under FTZ (with underflow masked).
pub(crate) fn finish<F: Fp>(r: StatusAnd<F>, mxcsr: u32, flags: &mut u32) -> u128 {
    let s = r.status;
    if s.contains(Status::INVALID_OP) {
        *flags |= mx::IE;
        return F::INDEFINITE;
    }
    let bits = r.value.to_bits();
    if s.contains(Status::DIV_BY_ZERO) {
        *flags |= mx::ZE;
    }
    if s.contains(Status::OVERFLOW) {
        *flags |= mx::OE;
    }
    let tiny =
        s.contains(Status::UNDERFLOW) || is_denormal::<F>(bits) && !s.contains(Status::INEXACT);
    if tiny && mxcsr & mx::FTZ != 0 && mxcsr & (mx::UE << mx::MASK_SHIFT) != 0 {
        *flags |= mx::UE | mx::PE;
        return sign::<F>(bits);
    }
    // With underflow unmasked, a tiny result is reported even when exact.
    let um_masked = mxcsr & (mx::UE << mx::MASK_SHIFT) != 0;
    if s.contains(Status::UNDERFLOW) || !um_masked && is_denormal::<F>(bits) {
        *flags |= mx::UE;
    }
    if s.contains(Status::INEXACT) {
        *flags |= mx::PE;
    }
    bits
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sqrt,
    /// RCPPS/RCPSS and RSQRTPS/RSQRTSS (single precision only).
    Rcp,
    Rsqrt,
}

/// One lane of `op` (`b` alone for SQRT).
pub(crate) fn arith<F: Fp>(op: Op, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    if matches!(op, Op::Rcp | Op::Rsqrt) {
        return approx(op == Op::Rsqrt, b);
    }
    if op == Op::Sqrt {
        return sqrt::<F>(b, mxcsr, flags);
    }
    if matches!(op, Op::Min | Op::Max) {
        return min_max::<F>(op == Op::Max, a, b, mxcsr, flags);
    }
    if mxcsr & (3 << mx::RC_SHIFT) == 0 {
        if let Some((r, inexact)) = F::native(op, a, b) {
            if inexact {
                *flags |= mx::PE;
            }
            return r;
        }
    }
    exact_arith::<F>(op, a, b, mxcsr, flags)
}

/// ADD/SUB/MUL/DIV through binary128-capable soft float: every MXCSR mode, flag and
/// special operand.
pub(crate) fn exact_arith<F: Fp>(op: Op, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let mut f = 0;
    let (a, b) = (
        operand::<F>(a, mxcsr, &mut f),
        operand::<F>(b, mxcsr, &mut f),
    );
    if let Some(n) = nan_result::<F>(a, Some(b), flags) {
        return n;
    }
    // Division of a denormal by zero reports only ZE (as the host does).
    if !(op == Op::Div && b & !sign::<F>(b) == 0) {
        *flags |= f;
    }
    let (x, y, rm) = (F::from_bits(a), F::from_bits(b), rounding(mxcsr));
    let mut r = match op {
        Op::Add => x.add_r(y, rm),
        Op::Sub => x.sub_r(y, rm),
        Op::Mul => x.mul_r(y, rm),
        _ => x.div_r(y, rm),
    };
    if r.value.is_finite() && r.value.abs() == F::largest() && r.status.contains(Status::INEXACT) {
        // apfloat does not flag overflow when rounding towards zero yields the largest
        // finite number; IEEE (and x86) do when the exact result reaches 2^(emax+1).
        let (qx, qy): (Quad, Quad) = (widen_q(x), widen_q(y));
        let q = quad_op(op, qx, qy, Round::TowardZero);
        if q.value.ilogb() > F::MAX_EXP {
            r.status |= Status::OVERFLOW;
        }
    }
    if rounded_to_min_normal(&r) {
        let q = quad_op(op, widen_q(x), widen_q(y), rm).value;
        mark_tiny_after_rounding(&mut r, q, rm);
    }
    if undelivered::<F>(r.status, r.value.to_bits(), mxcsr) {
        r.status.set(Status::INEXACT, unbounded_inexact(op, x, y));
    }
    finish(r, mxcsr, flags)
}

fn quad_op(op: Op, qx: Quad, qy: Quad, rm: Round) -> StatusAnd<Quad> {
    match op {
        Op::Add => qx.add_r(qy, rm),
        Op::Sub => qx.sub_r(qy, rm),
        Op::Mul => qx.mul_r(qy, rm),
        _ => qx.div_r(qy, rm),
    }
}

/// Did an inexact result round to ±the smallest normal? Only then can apfloat's tininess
/// (judged on the bounded result) differ from x86's.
fn rounded_to_min_normal<F: Fp>(r: &StatusAnd<F>) -> bool {
    r.status.contains(Status::INEXACT)
        && !r.status.contains(Status::UNDERFLOW)
        && r.value.abs() == F::smallest_normalized()
}

/// x86 detects tininess after rounding to the destination precision with an unbounded
/// exponent (SDM vol. 1 4.9.1.5): `q` (the binary128 result, itself rounded by `rm`,
/// which is innocuous at 113 bits) is tiny if that rounding stays below 2^MIN_EXP.
fn mark_tiny_after_rounding<F: Fp>(r: &mut StatusAnd<F>, q: Quad, rm: Round) {
    if !q.is_finite_non_zero() {
        return;
    }
    let e = q.ilogb();
    let unit: Quad = widen_q(F::from_quad(q.scalbn(-e), rm).value);
    let e = if unit.abs().ilogb() >= 1 { e + 1 } else { e };
    if e < F::MIN_EXP {
        r.status |= Status::UNDERFLOW;
    }
}

/// Does an unmasked overflow or underflow exception stop this result? Then PE reports
/// whether the result with an unbounded exponent is inexact (measured on the host: an
/// exact product 2^-130·(1+2^-23) raises UE alone, an exact overflow OE alone).
fn undelivered<F: Fp>(status: Status, bits: u128, mxcsr: u32) -> bool {
    let unmasked = |e: u32| mxcsr & (e << mx::MASK_SHIFT) == 0;
    let tiny = status.contains(Status::UNDERFLOW) || is_denormal::<F>(bits);
    unmasked(mx::OE) && status.contains(Status::OVERFLOW) || unmasked(mx::UE) && tiny
}

/// Is `op` on `x` and `y`, rounded to `F`'s precision with an unbounded exponent, inexact?
fn unbounded_inexact<F: Fp>(op: Op, x: F, y: F) -> bool {
    let (qx, qy): (Quad, Quad) = (widen_q(x), widen_q(y));
    let rm = Round::NearestTiesToEven;
    let q = quad_op(op, qx, qy, rm);
    q.status.contains(Status::INEXACT) || !fits::<F>(q.value)
}

/// Does `q`'s significand fit `F`'s precision (whatever its exponent)?
fn fits<F: Fp>(q: Quad) -> bool {
    if !q.is_finite_non_zero() {
        return true;
    }
    let unit = q.scalbn(-q.ilogb());
    !F::from_quad(unit, Round::NearestTiesToEven)
        .status
        .contains(Status::INEXACT)
}

fn widen_q<F: Fp>(x: F) -> Quad {
    x.convert_r(Round::TowardZero, &mut false).value
}

/// MIN/MAX: the second operand when either is a NaN (IE, even for a quiet one) or both are
/// zeros; otherwise the smaller (larger).
fn min_max<F: Fp>(max: bool, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let mut f = 0;
    let (a, b) = (
        operand::<F>(a, mxcsr, &mut f),
        operand::<F>(b, mxcsr, &mut f),
    );
    if is_nan::<F>(a) || is_nan::<F>(b) {
        *flags |= mx::IE;
        return b;
    }
    *flags |= f;
    let (x, y) = (F::from_bits(a), F::from_bits(b));
    let pick_a = if max { x > y } else { x < y };
    if pick_a {
        a
    } else {
        b
    }
}

/// Correctly rounded square root: the integer root of the significand (with a sticky bit)
/// is exact in binary128 and rounds once to the target format.
fn sqrt<F: Fp>(v: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let mut f = 0;
    let v = operand::<F>(v, mxcsr, &mut f);
    if let Some(n) = nan_result::<F>(v, None, flags) {
        return n;
    }
    let x = F::from_bits(v);
    if x.is_zero() || (x.is_infinite() && !x.is_negative()) {
        return v;
    }
    if x.is_negative() {
        *flags |= mx::IE;
        return F::INDEFINITE;
    }
    // DE only for a valid operation (no NaN, not negative).
    *flags |= f;
    // x = m * 2^e with m an integer; make e even and m large (about 2*(FRAC+8) bits).
    let e = x.ilogb() - F::FRAC as i32;
    let m = x.scalbn(-e);
    let mut lost = false;
    let m = m.to_u128_r(128, Round::TowardZero, &mut lost).value;
    let shift = 2 * (F::FRAC + 8) - (128 - m.leading_zeros());
    let shift = shift + ((e - shift as i32) & 1) as u32;
    let m = m << shift;
    let e = e - shift as i32;
    let root = isqrt(m);
    let sticky = u128::from(root * root != m);
    let q = Quad::from_u128_r(root << 1 | sticky, Round::TowardZero)
        .value
        .scalbn(e / 2 - 1);
    finish(F::from_quad(q, rounding(mxcsr)), mxcsr, flags)
}

fn isqrt(m: u128) -> u128 {
    let mut r = 0u128;
    let mut bit = 1u128 << 126;
    let mut n = m;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if n >= r + bit {
            n -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    r
}

/// CMPccPS/SS/PD/SD predicate 0..7 (EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD): all ones or 0.
pub(crate) fn compare<F: Fp>(pred: u8, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let mut f = 0;
    let (a, b) = (
        operand::<F>(a, mxcsr, &mut f),
        operand::<F>(b, mxcsr, &mut f),
    );
    let unord = is_nan::<F>(a) || is_nan::<F>(b);
    let signals = matches!(pred & 7, 1 | 2 | 5 | 6);
    if is_snan::<F>(a) || is_snan::<F>(b) || unord && signals {
        *flags |= mx::IE;
    }
    // DE only when both operands are numbers.
    if !is_nan::<F>(a) && !is_nan::<F>(b) {
        *flags |= f;
    }
    let (x, y) = (F::from_bits(a), F::from_bits(b));
    let t = match pred & 7 {
        0 => !unord && x == y,
        1 => !unord && x < y,
        2 => !unord && x <= y,
        3 => unord,
        4 => unord || x != y,
        5 => unord || x >= y,
        6 => unord || x > y,
        _ => !unord,
    };
    if t {
        (1u128 << F::W) - 1
    } else {
        0
    }
}

/// COMIS/UCOMIS: ZF, PF, CF as 0bZPC (unordered 111, less 001, equal 100, greater 000).
pub(crate) fn comi<F: Fp>(a: u128, b: u128, quiet: bool, mxcsr: u32, flags: &mut u32) -> u8 {
    let mut f = 0;
    let (a, b) = (
        operand::<F>(a, mxcsr, &mut f),
        operand::<F>(b, mxcsr, &mut f),
    );
    if is_nan::<F>(a) || is_nan::<F>(b) {
        if !quiet || is_snan::<F>(a) || is_snan::<F>(b) {
            *flags |= mx::IE;
        }
        return 0b111;
    }
    // DE only when both operands are numbers.
    if !is_nan::<F>(a) && !is_nan::<F>(b) {
        *flags |= f;
    }
    let (x, y) = (F::from_bits(a), F::from_bits(b));
    if x < y {
        0b001
    } else if x == y {
        0b100
    } else {
        0
    }
}

/// Float to signed integer of `width` bits (rounded per MXCSR, or truncated); NaN and
/// out-of-range give the integer indefinite (only the sign bit set) with IE.
pub(crate) fn to_int<F: Fp>(
    v: u128,
    width: usize,
    trunc: bool,
    mxcsr: u32,
    flags: &mut u32,
) -> u64 {
    let v = operand::<F>(v, mxcsr, &mut 0);
    let indefinite = 1u64 << (width - 1);
    if is_nan::<F>(v) {
        *flags |= mx::IE;
        return indefinite;
    }
    let rm = if trunc {
        Round::TowardZero
    } else {
        rounding(mxcsr)
    };
    let mut exact = false;
    let r = F::from_bits(v).to_i128_r(width, rm, &mut exact);
    if r.status.contains(Status::INVALID_OP) {
        *flags |= mx::IE;
        return indefinite;
    }
    if r.status.contains(Status::INEXACT) {
        *flags |= mx::PE;
    }
    r.value as u64 & (u64::MAX >> (64 - width))
}

/// Signed integer to float, rounded per MXCSR.
pub(crate) fn from_int<F: Fp>(v: i64, mxcsr: u32, flags: &mut u32) -> u128 {
    finish(F::from_i128_r(i128::from(v), rounding(mxcsr)), mxcsr, flags)
}

/// Single to double (exact; a signalling NaN is quietened with IE).
pub(crate) fn widen(v: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let v = operand::<Single>(v, mxcsr, flags);
    if is_nan::<Single>(v) {
        if is_snan::<Single>(v) {
            *flags |= mx::IE;
        }
        return sign::<Single>(v) << 32
            | exp_all::<Double>()
            | frac::<Single>(quiet::<Single>(v)) << 29;
    }
    let mut lost = false;
    let q: Quad = Single::from_bits(v)
        .convert_r(Round::TowardZero, &mut lost)
        .value;
    let d: StatusAnd<Double> = q.convert_r(Round::TowardZero, &mut lost);
    d.value.to_bits()
}

/// Double to single, rounded per MXCSR (NaN payloads keep their upper bits).
pub(crate) fn narrow(v: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let v = operand::<Double>(v, mxcsr, flags);
    if is_nan::<Double>(v) {
        if is_snan::<Double>(v) {
            *flags |= mx::IE;
        }
        return sign::<Double>(v) >> 32
            | exp_all::<Single>()
            | frac::<Double>(quiet::<Double>(v)) >> 29;
    }
    let mut lost = false;
    let q: Quad = Double::from_bits(v)
        .convert_r(Round::TowardZero, &mut lost)
        .value;
    let mut r: StatusAnd<Single> = q.convert_r(rounding(mxcsr), &mut lost);
    // As in `arith`: overflow rounded down to the largest finite value is still overflow.
    if r.value.is_finite() && q.is_finite() && q.ilogb() > Single::MAX_EXP {
        r.status |= Status::OVERFLOW | Status::INEXACT;
    }
    if rounded_to_min_normal(&r) {
        mark_tiny_after_rounding(&mut r, q, rounding(mxcsr));
    }
    if undelivered::<Single>(r.status, r.value.to_bits(), mxcsr) {
        r.status.set(Status::INEXACT, !fits::<Single>(q));
    }
    finish::<Single>(r, mxcsr, flags)
}

/// RCP/RSQRT on a single: Intel only bounds the error (1.5 * 2^-12 relative); this gives
/// the correctly rounded value instead (so low bits differ from silicon). Denormal inputs
/// count as zeros, results below the normal range flush to zero, MXCSR is neither read nor
/// changed.
fn approx(rsqrt: bool, v: u128) -> u128 {
    const S: u128 = 0x8000_0000;
    let v = if is_denormal::<Single>(v) { v & S } else { v };
    if is_nan::<Single>(v) {
        return quiet::<Single>(v);
    }
    let x = Single::from_bits(v);
    if x.is_zero() {
        return v & S | 0x7f80_0000;
    }
    if rsqrt && x.is_negative() {
        return Single::INDEFINITE;
    }
    if x.is_infinite() {
        return v & S;
    }
    let base = if rsqrt {
        sqrt::<Single>(v, 0x1f80, &mut 0)
    } else {
        v
    };
    let r = Single::from_bits(0x3f80_0000)
        .div_r(Single::from_bits(base), Round::NearestTiesToEven)
        .value
        .to_bits();
    if is_denormal::<Single>(r) {
        r & S
    } else {
        r
    }
}

#[cfg(test)]
mod unmasked_tests {
    use super::{arith, mx, Op};
    use rustc_apfloat::ieee::Single;

    /// Flags of MULSS `a`·`b` under `mxcsr` (known answers measured on the host CPU).
    fn mul_flags(a: u128, b: u128, mxcsr: u32) -> u32 {
        let mut f = 0;
        arith::<Single>(Op::Mul, a, b, mxcsr, &mut f);
        f
    }

    #[test]
    fn unmasked_overflow_and_underflow_report_pe_of_the_unbounded_result() {
        // 2^-130·(1+2^-23): exact with an unbounded exponent, inexact as a denormal.
        assert_eq!(mul_flags(0x0d80_0001, 0x3080_0000, 0x1780), mx::UE);
        assert_eq!(mul_flags(0x0d80_0001, 0x3080_0001, 0x1780), mx::UE | mx::PE);
        // Masked, the denormal's rounding is what counts.
        assert_eq!(mul_flags(0x0d80_0001, 0x3080_0000, 0x1f80), mx::UE | mx::PE);
        // 2^160: exact unbounded.
        assert_eq!(mul_flags(0x7000_0000, 0x5000_0000, 0x1b80), mx::OE);
        assert_eq!(mul_flags(0x7000_0001, 0x5000_0001, 0x1b80), mx::OE | mx::PE);
    }
}

#[cfg(test)]
mod tininess_tests {
    use super::{arith, mx, narrow, Op};
    use rustc_apfloat::ieee::Double;

    const MIN_NORMAL: u128 = 0x0010_0000_0000_0000;

    fn mul(a: u128, b: u128, mxcsr: u32) -> (u128, u32) {
        let mut f = 0;
        (arith::<Double>(Op::Mul, a, b, mxcsr, &mut f), f)
    }

    #[test]
    fn a_product_rounded_up_to_the_smallest_normal_is_still_tiny() {
        // (2^-512·(2-2^-52))² = 2^-1022·(1-2^-51+2^-104): RC=up gives 2^-1022, but rounded
        // to 53 bits with an unbounded exponent it stays below 2^-1022 (host: UE|PE).
        let x = 0x1fff_ffff_ffff_ffff;
        assert_eq!(mul(x, x, 0x5f80), (MIN_NORMAL, mx::UE | mx::PE));
        // Under FTZ that tiny result flushes to zero.
        assert_eq!(mul(x, x, 0xdf80), (0, mx::UE | mx::PE));
    }

    #[test]
    fn a_product_whose_unbounded_rounding_is_the_smallest_normal_is_not_tiny() {
        // (1+2^-52)·2^-1022·(1-2^-52) = 2^-1022·(1-2^-104) rounds to 2^-1022 either way.
        let (a, b) = (0x3ff0_0000_0000_0001, 0x000f_ffff_ffff_ffff);
        assert_eq!(mul(a, b, 0x1f80), (MIN_NORMAL, mx::DE | mx::PE));
    }

    #[test]
    fn cvtsd2ss_rounding_up_to_the_smallest_single_normal_is_tiny() {
        // 2^-126 - 2^-149 + 2^-160 rounds up to 2^-126 on the denormal grid, but only to
        // 2^-126 - 2^-150 with 24 bits and an unbounded exponent.
        let mut f = 0;
        assert_eq!(narrow(0x380f_ffff_c008_0000, 0x5f80, &mut f), 0x0080_0000);
        assert_eq!(f, mx::UE | mx::PE);
    }
}
