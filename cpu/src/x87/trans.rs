//! Transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1.
//!
//! Evaluated on `rustc_apfloat`'s binary128 (113-bit significand) with series on reduced
//! arguments, then rounded once to 64 bits by the rounding control; the internal error is a
//! few units of 2^-110, so results are the correctly rounded value except within ~2^-46 ulp
//! of a rounding boundary: well inside the hardware's documented "< 1 ulp".
//!
//! FSIN/FCOS/FSINCOS/FPTAN reduce by π/2 exactly (integer long division), with the 66-bit
//! π the x87 itself uses (SDM vol. 1 8.3.10): the results agree with the hardware near
//! multiples of π, where a more precise π would give a different answer.

use super::arith::{
    add_de, add_ext, div_ext, exc, finish, from_quad, mul_ext, screen1, screen2, to_quad, Res,
};
use super::f80::{Class, Ext, EXTENDED, F80};
use rustc_apfloat::ieee::Quad;
use rustc_apfloat::{Float, Status};

/// π/2 with the x87's 66-bit significand: `PI66_HALF * 2^-65`.
const PI66_HALF: u128 = 0x3_243f_6a88_85a3_08d3;
/// Constants in binary128, correctly rounded.
const PI_Q: u128 = 0x4000_921f_b544_42d1_8469_898c_c517_01b8;
const LN2_Q: u128 = 0x3ffe_62e4_2fef_a39e_f357_93c7_6730_07e6;
const LOG2E_Q: u128 = 0x3fff_7154_7652_b82f_e177_7d0f_fda0_d23a;

fn q(bits: u128) -> Quad {
    Quad::from_bits(bits)
}
fn qi(v: i64) -> Quad {
    Quad::from_i128(i128::from(v)).value
}
fn add(a: Quad, b: Quad) -> Quad {
    (a + b).value
}
fn sub(a: Quad, b: Quad) -> Quad {
    (a - b).value
}
fn mul(a: Quad, b: Quad) -> Quad {
    (a * b).value
}
fn div(a: Quad, b: Quad) -> Quad {
    (a / b).value
}
/// A binary128 result as an inexact `Ext` (transcendental values are never exact here).
fn ext(v: Quad) -> Option<Ext> {
    from_quad(Status::INEXACT.and(v), 0)
}
/// |v| < 2^-120 * |s|: a series term that no longer matters.
fn negligible(t: Quad, s: Quad) -> bool {
    t.is_zero() || s.ilogb().saturating_sub(t.ilogb()) > 120
}

/// Sine and cosine of |r| ≤ π/4 by their Taylor series.
fn sin_cos(r: Quad) -> (Quad, Quad) {
    let r2 = mul(r, r);
    let (mut s, mut ts) = (r, r);
    let (mut c, mut tc) = (qi(1), qi(1));
    for k in 1..40i64 {
        ts = -div(mul(ts, r2), qi((2 * k) * (2 * k + 1)));
        tc = -div(mul(tc, r2), qi((2 * k - 1) * (2 * k)));
        s = add(s, ts);
        c = add(c, tc);
        if negligible(ts, s) && negligible(tc, c) {
            break;
        }
    }
    (s, c)
}

/// Square root by Newton's iteration (internal use only; FSQRT is exact in `arith`).
fn qsqrt(a: Quad) -> Quad {
    if !a.is_finite_non_zero() {
        return a;
    }
    let mut x = qi(1).scalbn(a.ilogb() / 2);
    for _ in 0..12 {
        x = mul(
            add(x, div(a, x)),
            q(0x3ffe_0000_0000_0000_0000_0000_0000_0000),
        );
    }
    x
}

/// atan(t) for 0 ≤ t ≤ 1: four argument halvings, then the Taylor series.
fn atan(t: Quad) -> Quad {
    let one = qi(1);
    let mut t = t;
    for _ in 0..4 {
        t = div(t, add(one, qsqrt(add(one, mul(t, t)))));
    }
    let t2 = mul(t, t);
    let (mut s, mut p) = (t, t);
    for k in 1..60i64 {
        p = -mul(p, t2);
        let term = div(p, qi(2 * k + 1));
        s = add(s, term);
        if negligible(term, s) {
            break;
        }
    }
    s.scalbn(4)
}

/// 2·atanh(s) = ln((1+s)/(1-s)) by its series (|s| ≤ 0.18 here).
fn two_atanh(s: Quad) -> Quad {
    let s2 = mul(s, s);
    let (mut sum, mut p) = (s, s);
    for k in 1..80i64 {
        p = mul(p, s2);
        let term = div(p, qi(2 * k + 1));
        sum = add(sum, term);
        if negligible(term, sum) {
            break;
        }
    }
    sum.scalbn(1)
}

/// e^y - 1: halve until small, Taylor series, then double back with
/// expm1(2y) = expm1(y)·(expm1(y) + 2).
fn expm1(y: Quad) -> Quad {
    let halvings = (y.ilogb() + 6).clamp(0, 40);
    let y = y.scalbn(-halvings);
    let (mut s, mut t) = (y, y);
    for k in 2..40i64 {
        t = div(mul(t, y), qi(k));
        s = add(s, t);
        if negligible(t, s) {
            break;
        }
    }
    for _ in 0..halvings {
        s = mul(s, add(s, qi(2)));
    }
    s
}

/// Reduce |x| < 2^63 by π/2 (66-bit π): `|x| = k·π/2 + r` with |r| ≤ π/4. Exact.
fn reduce(x: &Ext) -> (u128, Ext) {
    let shift = x.exp + 2;
    if shift < 0 {
        return (0, Ext { sign: false, ..*x });
    }
    let mx = x.sig >> 64;
    let (mut k, mut r) = (mx / PI66_HALF, mx % PI66_HALF);
    for _ in 0..shift.min(64) {
        r <<= 1;
        k <<= 1;
        if r >= PI66_HALF {
            r -= PI66_HALF;
            k |= 1;
        }
    }
    let neg = 2 * r > PI66_HALF;
    if neg {
        k += 1;
        r = PI66_HALF - r;
    }
    // r ≠ 0: π/2's odd 66-bit significand is no multiple of a 64-bit one.
    let red = Ext::norm(neg, 127 - 65, r).unwrap_or(Ext {
        sign: false,
        exp: -200,
        sig: 1 << 127,
    });
    (k, red)
}

/// Which of FSIN, FCOS, FPTAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trig {
    Sin,
    Cos,
    Tan,
}

/// The result of a trigonometric instruction: `None` when |x| ≥ 2^63 (C2 set, ST0 kept).
pub fn trig(f: Trig, a: F80, fcw: u16) -> Option<Res> {
    let de = match screen1(a, fcw) {
        Ok(d) => d,
        Err(r) => return Some(r),
    };
    match a.class() {
        Class::Infinity => return Some(Res::invalid()),
        Class::Zero => return Some(Res::ok(if f == Trig::Cos { F80::ONE } else { a })),
        _ => {}
    }
    let x = a.unpack()?;
    if x.exp >= 63 {
        return None;
    }
    let v = if x.exp < -40 {
        tiny_trig(f, &x)
    } else {
        let (k, r) = reduce(&x);
        let (s, c) = sin_cos(to_quad(&r, 0));
        let v = match (f, k & 3) {
            (Trig::Sin, 0) | (Trig::Cos, 3) => s,
            (Trig::Sin, 1) | (Trig::Cos, 0) => c,
            (Trig::Sin, 2) | (Trig::Cos, 1) => -s,
            (Trig::Sin, _) | (Trig::Cos, _) => -c,
            (Trig::Tan, k) if k & 1 == 0 => div(s, c),
            (Trig::Tan, _) => -div(c, s),
        };
        let v = if x.sign && f != Trig::Cos { -v } else { v };
        ext(v)
    };
    let r = v.map_or(Res::ok(F80::ZERO), |v| finish(v, EXTENDED, fcw));
    Some(add_de(r, de, fcw))
}

/// Tiny arguments: sin x and tan x are x nudged towards and away from zero, cos x is just
/// below 1 (the next terms sit far below the 64-bit significand).
fn tiny_trig(f: Trig, x: &Ext) -> Option<Ext> {
    Some(match f {
        // A power of two has its predecessor in the binade below.
        Trig::Sin if x.sig == 1 << 127 => Ext {
            exp: x.exp - 1,
            sig: u128::MAX,
            ..*x
        },
        Trig::Sin => Ext {
            sig: x.sig - 1,
            ..*x
        },
        Trig::Tan => Ext {
            sig: x.sig | 1,
            ..*x
        },
        Trig::Cos => Ext {
            sign: false,
            exp: -1,
            sig: u128::MAX,
        },
    })
}

/// FPATAN: atan(ST1 / ST0) in the quadrant of (ST0, ST1).
#[must_use]
pub fn patan(y: F80, x: F80, fcw: u16) -> Res {
    let de = match screen2(y, x, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(pi) = ext(q(PI_Q)) else {
        return Res::invalid();
    };
    let frac = |n: i32| Ext {
        exp: pi.exp - n,
        ..pi
    };
    let three_q = mul_ext(&frac(2), &Ext::from_int(3).unwrap_or(pi));
    let (cy, cx) = (y.class(), x.class());
    let sign = y.sign();
    let special = match (cy, cx) {
        (Class::Zero, _) if x.sign() => Some(pi),
        (Class::Zero, _) => return add_de(Res::ok(y), de, fcw),
        (Class::Infinity, Class::Infinity) if x.sign() => Some(three_q),
        (Class::Infinity, Class::Infinity) => Some(frac(2)),
        (Class::Infinity, _) | (_, Class::Zero) => Some(frac(1)),
        (_, Class::Infinity) if x.sign() => Some(pi),
        (_, Class::Infinity) => return add_de(Res::ok(F80::zero(sign)), de, fcw),
        _ => None,
    };
    let v = match special {
        Some(v) => Some(v),
        None => match (y.unpack(), x.unpack()) {
            (Some(ey), Some(ex)) => atan2(ey, ex, pi),
            _ => None,
        },
    };
    let r = v.map_or(Res::invalid(), |v| finish(Ext { sign, ..v }, EXTENDED, fcw));
    add_de(r, de, fcw)
}

/// |atan2(y, x)| for finite non-zero operands.
fn atan2(y: Ext, x: Ext, pi: Ext) -> Option<Ext> {
    let (ay, ax) = (Ext { sign: false, ..y }, Ext { sign: false, ..x });
    let swap = (ay.exp, ay.sig) > (ax.exp, ax.sig);
    let t = if swap {
        div_ext(&ax, &ay)
    } else {
        div_ext(&ay, &ax)
    };
    let a = if t.exp < -60 {
        Ext {
            sig: t.sig - 1,
            ..t
        }
    } else {
        ext(atan(to_quad(&t, 0)))?
    };
    let half = Ext {
        exp: pi.exp - 1,
        ..pi
    };
    let a = if swap {
        add_ext(&half, &a.negated())?
    } else {
        a
    };
    if x.sign {
        add_ext(&pi, &a.negated())
    } else {
        Some(a)
    }
}

/// F2XM1: 2^x - 1 for -1 ≤ x ≤ 1.
#[must_use]
pub fn f2xm1(a: F80, fcw: u16) -> Res {
    let de = match screen1(a, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match a.class() {
        Class::Zero => return Res::ok(a),
        Class::Infinity if a.sign() => return Res::ok(F80::ONE.negated()),
        Class::Infinity => return Res::ok(a),
        _ => {}
    }
    let Some(x) = a.unpack() else {
        return Res::invalid();
    };
    let Some(ln2) = ext(q(LN2_Q)) else {
        return Res::invalid();
    };
    if x.exp >= 0 {
        // Outside the domain the hardware hands the operand back, inexact (measured on
        // Intel). ±1 give the exact 1 and -½, yet with PE, and C1 set for +1 (measured on
        // AMD: the hardware's approximation is rounded, not exact).
        let v = match (x.sig == 1 << 127 && x.exp == 0, x.sign) {
            (true, false) => F80::ONE,
            (true, true) => F80::new(true, 0x3ffe, 1 << 63),
            _ => {
                return add_de(
                    Res {
                        val: a,
                        exc: exc::PE,
                        up: false,
                    },
                    de,
                    fcw,
                )
            }
        };
        let r = Res {
            val: v,
            exc: exc::PE,
            up: !x.sign,
        };
        return add_de(r, de, fcw);
    }
    let v = if x.exp < -120 {
        // (x·ln2)²/2 lies below the sticky bit of x·ln2.
        Some(mul_ext(&x, &ln2))
    } else {
        ext(expm1(to_quad(&mul_ext(&x, &ln2), 0)))
    };
    add_de(
        v.map_or(Res::invalid(), |v| finish(v, EXTENDED, fcw)),
        de,
        fcw,
    )
}

/// FYL2X (`plus1` false): ST1·log2(ST0). FYL2XP1 (`plus1`): ST1·log2(ST0 + 1).
#[must_use]
pub fn yl2x(y: F80, x: F80, plus1: bool, fcw: u16) -> Res {
    let de = match screen2(y, x, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if plus1 && x.class() != Class::Infinity && x.sign() && at_most_minus_one(x) {
        return add_de(undefined_log2_1p(y, x), de, fcw);
    }
    let l = if plus1 { log2_1p(x) } else { log2(x) };
    let r = match l {
        Log::Invalid => Res::invalid(),
        Log::Zero(neg) => match y.class() {
            Class::Infinity => Res::invalid(),
            _ => Res::ok(F80::zero(neg ^ y.sign())),
        },
        Log::Inf(neg) => match y.class() {
            Class::Zero => Res::invalid(),
            _ => Res::ok(F80::inf(neg ^ y.sign())),
        },
        // log2(0) = -inf: a finite y is a division by zero, an infinite one is exact.
        Log::MinusInfFromZero => match y.class() {
            Class::Zero => Res::invalid(),
            Class::Infinity => Res::ok(F80::inf(!y.sign())),
            _ => Res {
                val: F80::inf(!y.sign()),
                exc: exc::ZE,
                up: false,
            },
        },
        Log::Finite(l) => match (y.class(), y.unpack()) {
            (Class::Infinity, _) => Res::ok(F80::inf(l.sign ^ y.sign())),
            (_, Some(ey)) => finish(mul_ext(&ey, &l), EXTENDED, fcw),
            _ => Res::ok(F80::zero(l.sign ^ y.sign())),
        },
    };
    add_de(r, de, fcw)
}

/// x ≤ -1 (x finite and negative).
fn at_most_minus_one(x: F80) -> bool {
    x.unpack().is_some_and(|e| e.exp >= 0)
}

/// FYL2XP1 with x ≤ -1, far outside its domain (SDM: result undefined). Measured on AMD:
/// no invalid operation or division by zero; a finite non-zero y gives x back, inexact; a
/// zero or infinite y gives that zero or infinity with the sign of x·y.
fn undefined_log2_1p(y: F80, x: F80) -> Res {
    let sign = x.sign() ^ y.sign();
    match y.class() {
        Class::Zero => Res::ok(F80::zero(sign)),
        Class::Infinity => Res::ok(F80::inf(sign)),
        _ => Res {
            val: x,
            exc: exc::PE,
            up: false,
        },
    }
}

enum Log {
    Invalid,
    Zero(bool),
    Inf(bool),
    MinusInfFromZero,
    Finite(Ext),
}

fn log2(x: F80) -> Log {
    match x.class() {
        Class::Zero => return Log::MinusInfFromZero,
        _ if x.sign() => return Log::Invalid,
        Class::Infinity => return Log::Inf(false),
        _ => {}
    }
    x.unpack().map_or(Log::Invalid, log2_ext)
}

/// log2 of a positive finite value.
fn log2_ext(e: Ext) -> Log {
    if e.exp == 0 && e.sig == 1 << 127 {
        return Log::Zero(false);
    }
    // m in [√½, √2): ln m = 2·atanh((m-1)/(m+1)).
    let big = e.sig > 0xb504_f333_f9de_6484_597d_89b3_754a_be9f;
    let (k, mexp) = if big { (e.exp + 1, -1) } else { (e.exp, 0) };
    let m = to_quad(
        &Ext {
            sign: false,
            exp: mexp,
            sig: e.sig,
        },
        0,
    );
    let one = qi(1);
    let lnm = two_atanh(div(sub(m, one), add(m, one)));
    let l = add(qi(i64::from(k)), mul(lnm, q(LOG2E_Q)));
    ext(l).map_or(Log::Zero(false), Log::Finite)
}

fn log2_1p(x: F80) -> Log {
    match x.class() {
        Class::Zero => return Log::Zero(x.sign()),
        Class::Infinity if !x.sign() => return Log::Inf(false),
        Class::Infinity => return Log::Invalid,
        _ => {}
    }
    let Some(e) = x.unpack() else {
        return Log::Invalid;
    };
    let one = Ext {
        sign: false,
        exp: 0,
        sig: 1 << 127,
    };
    let Some(den) = add_ext(&one, &e) else {
        return Log::MinusInfFromZero;
    };
    if den.sign {
        return Log::Invalid;
    }
    // ln(1+x) = 2·atanh(x / (2 + x)); outside |x| < 1 - √½ (undefined) log2(1 + x) will do.
    let two = Ext { exp: 1, ..one };
    let s = match add_ext(&two, &e) {
        Some(d2) => div_ext(&e, &d2),
        None => return Log::Invalid,
    };
    if s.exp >= -2 {
        return log2_ext(den);
    }
    let ln = if s.exp < -60 {
        Some(Ext {
            exp: s.exp + 1,
            sig: s.sig | 1,
            ..s
        })
    } else {
        ext(two_atanh(to_quad(&s, 0)))
    };
    match (ln, ext(q(LOG2E_Q))) {
        (Some(ln), Some(l2e)) => Log::Finite(mul_ext(&ln, &l2e)),
        _ => Log::Zero(false),
    }
}

#[cfg(test)]
mod tests {
    use super::{trig, Trig, F80};

    #[test]
    fn sine_of_a_tiny_power_of_two_rounded_down_steps_into_the_binade_below() {
        // Measured on the host: FSIN of 2^-896 with RC = down gives 3c7e:ffffffffffffffff.
        let x = F80::new(false, 0x3c7f, 1 << 63);
        let r = trig(Trig::Sin, x, 0x077f).map(|r| r.val);
        assert_eq!(r, Some(F80::new(false, 0x3c7e, u64::MAX)));
        let r = trig(Trig::Sin, x, 0x037f).map(|r| r.val);
        assert_eq!(r, Some(x));
    }
}
