//! The arithmetic core: operand classification, NaN propagation, the special-value rules of
//! each operation, and finite arithmetic. Sums, products and quotients are computed by
//! `rustc_apfloat` in binary128 (113-bit significand) on operands scaled near 1, rounded
//! toward zero with the inexact flag folded into a sticky bit (round-to-odd); 113 ≥ 64 + 2
//! makes the final rounding to 24, 53 or 64 bits exact, as if from the infinitely precise
//! result. The final rounding (precision control, rounding control, x87 tininess, biased
//! unmasked overflow/underflow results) is `f80::round`.

use super::f80::{round, round_bits, Class, Ext, Format, Rc, Rounded, EXTENDED, F80};
use rustc_apfloat::ieee::Quad;
use rustc_apfloat::{Float, Round, Status, StatusAnd};

/// Exception flags as in FSW/FCW bits 0..5.
pub mod exc {
    pub const IE: u16 = 1 << 0;
    pub const DE: u16 = 1 << 1;
    pub const ZE: u16 = 1 << 2;
    pub const OE: u16 = 1 << 3;
    pub const UE: u16 = 1 << 4;
    pub const PE: u16 = 1 << 5;
    /// Exceptions detected before the operation: unmasked, they leave the destination alone.
    pub const PRE: u16 = IE | DE | ZE;
    pub const ALL: u16 = 0x3f;
}

/// Unmasked overflow/underflow results on the stack carry their exponent moved by this.
pub const BIAS_ADJUST: i32 = 24576;

/// The result of an operation: a value for the destination plus the exceptions it raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Res {
    pub val: F80,
    pub exc: u16,
    /// C1: the significand was rounded up.
    pub up: bool,
}

impl Res {
    #[must_use]
    pub fn ok(val: F80) -> Res {
        Res {
            val,
            exc: 0,
            up: false,
        }
    }
    #[must_use]
    pub fn invalid() -> Res {
        Res {
            val: F80::INDEFINITE,
            exc: exc::IE,
            up: false,
        }
    }
    /// An exception that stops the operation (unmasked pre-computation exception).
    #[must_use]
    pub fn stop(e: u16) -> Res {
        Res {
            val: F80::INDEFINITE,
            exc: e,
            up: false,
        }
    }
    /// Should the destination be left unchanged under control word `fcw`?
    #[must_use]
    pub fn aborts(&self, fcw: u16) -> bool {
        self.exc & exc::PRE & !fcw != 0
    }
}

/// Round a finite non-zero result for a register destination: masked overflow/underflow
/// give the IEEE default results, unmasked ones the exponent-biased value (SDM 8.5.4/8.5.5).
#[must_use]
pub fn finish(x: Ext, fmt: Format, fcw: u16) -> Res {
    let rc = Rc::from_fcw(fcw);
    let r = round(x, fmt, rc);
    let pe = |r: &Rounded| if r.inexact { exc::PE } else { 0 };
    if r.overflow {
        if fcw & exc::OE != 0 {
            let (to_inf, big) = Rounded::overflowed(x.sign, fmt, rc);
            let val = if to_inf {
                F80::inf(x.sign)
            } else {
                big.to_f80()
            };
            return Res {
                val,
                exc: exc::OE | exc::PE,
                up: to_inf,
            };
        }
        let b = Rounded::rebias(x, fmt, rc, -BIAS_ADJUST);
        if b.overflow {
            // Massive overflow (FSCALE): even biased it does not fit; ∞, inexact, rounded up.
            return Res {
                val: F80::inf(x.sign),
                exc: exc::OE | exc::PE,
                up: true,
            };
        }
        return Res {
            val: b.to_f80(),
            exc: exc::OE | pe(&b),
            up: b.up,
        };
    }
    if r.tiny {
        if fcw & exc::UE != 0 {
            let e = if r.inexact { exc::UE | exc::PE } else { 0 };
            return Res {
                val: r.to_f80(),
                exc: e,
                up: r.up,
            };
        }
        let b = Rounded::rebias(x, fmt, rc, BIAS_ADJUST);
        if b.overflow {
            // Massive underflow: a signed zero, inexact.
            return Res {
                val: F80::zero(x.sign),
                exc: exc::UE | exc::PE,
                up: false,
            };
        }
        return Res {
            val: b.to_f80(),
            exc: exc::UE | pe(&b),
            up: b.up,
        };
    }
    Res {
        val: r.to_f80(),
        exc: pe(&r),
        up: r.up,
    }
}

/// The NaN result of an operation with NaN operands (SDM table 4-7, x87 column): a QNaN
/// beats an SNaN, otherwise the larger significand wins; the result is always quiet.
#[must_use]
pub fn pick_nan(a: F80, b: F80) -> Res {
    let (ca, cb) = (a.class(), b.class());
    let e = if ca == Class::SNan || cb == Class::SNan {
        exc::IE
    } else {
        0
    };
    let v = match (a.is_nan(), b.is_nan()) {
        (true, false) => a,
        (false, true) => b,
        _ if ca == Class::QNan && cb == Class::SNan => a,
        _ if ca == Class::SNan && cb == Class::QNan => b,
        _ if b.mant > a.mant => b,
        // Equal significands: the positive one (measured on Intel hardware).
        _ if b.mant == a.mant && a.sign() => b,
        _ => a,
    };
    Res {
        val: v.quieted(),
        exc: e,
        up: false,
    }
}

/// Common operand screening of a two-operand operation: unsupported encodings and NaNs
/// decide the result; denormals raise #D (stopping the operation when unmasked).
pub fn screen2(a: F80, b: F80, fcw: u16) -> Result<u16, Res> {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        return Err(Res::invalid());
    }
    if a.is_nan() || b.is_nan() {
        return Err(pick_nan(a, b));
    }
    screen_denormal(ca == Class::Denormal || cb == Class::Denormal, fcw)
}

/// One-operand screening: unsupported → invalid, SNaN → quiet + invalid, QNaN passes.
pub fn screen1(a: F80, fcw: u16) -> Result<u16, Res> {
    match a.class() {
        Class::Unsupported => Err(Res::invalid()),
        Class::SNan | Class::QNan => Err(pick_nan(a, a)),
        c => screen_denormal(c == Class::Denormal, fcw),
    }
}

fn screen_denormal(den: bool, _fcw: u16) -> Result<u16, Res> {
    Ok(if den { exc::DE } else { 0 })
}

/// Fold a denormal operand's #D into a result: an invalid operation or a division by zero
/// takes precedence (no #D then, as the hardware reports); an unmasked #D stops the
/// operation before it writes anything.
#[must_use]
pub fn add_de(r: Res, de: u16, fcw: u16) -> Res {
    if de == 0 || r.exc & (exc::IE | exc::ZE) != 0 {
        r
    } else if fcw & exc::DE == 0 {
        Res::stop(exc::DE)
    } else {
        Res {
            exc: r.exc | exc::DE,
            ..r
        }
    }
}

/// A value `x * 2^-scale` in binary128; the significand beyond 113 bits folds into a sticky.
pub(crate) fn to_quad(x: &Ext, scale: i32) -> Quad {
    let sig = x.sig >> 15 | u128::from(x.sig & 0x7fff != 0);
    let biased = (x.exp - scale + 16383).clamp(1, 32766) as u128;
    Quad::from_bits(u128::from(x.sign) << 127 | biased << 112 | (sig & ((1 << 112) - 1)))
}

/// Back from a toward-zero binary128 result to `Ext` scaled by `2^scale`, marking an inexact
/// result odd (the sticky bit). `None` for an exact zero.
pub(crate) fn from_quad(r: StatusAnd<Quad>, scale: i32) -> Option<Ext> {
    let bits = r.value.to_bits();
    let sign = bits >> 127 != 0;
    let e = ((bits >> 112) & 0x7fff) as i32;
    let frac = bits & ((1 << 112) - 1);
    let sig = if e == 0 { frac } else { frac | 1 << 112 };
    let inexact = r.status.contains(Status::INEXACT);
    let x = Ext::norm(sign, e.max(1) - 16383 + 15 + scale, sig);
    match x {
        Some(mut x) => {
            x.sig |= u128::from(inexact);
            Some(x)
        }
        // Cancellation is exact; an inexact zero cannot happen at these scales.
        None => None,
    }
}

/// Exact-to-113-bits sum, round-to-odd. `None` when the sum is exactly zero.
#[must_use]
pub fn add_ext(a: &Ext, b: &Ext) -> Option<Ext> {
    let scale = a.exp.max(b.exp);
    // A far smaller operand only matters as a sticky of its sign below the larger's bits.
    let shrink = |x: &Ext| {
        if scale - x.exp > 150 {
            Ext {
                exp: scale - 150,
                sig: 1 << 127,
                ..*x
            }
        } else {
            *x
        }
    };
    let (qa, qb) = (to_quad(&shrink(a), scale), to_quad(&shrink(b), scale));
    from_quad(qa.add_r(qb, Round::TowardZero), scale)
}

#[must_use]
pub fn mul_ext(a: &Ext, b: &Ext) -> Ext {
    let (qa, qb) = (to_quad(a, a.exp), to_quad(b, b.exp));
    let scale = a.exp.saturating_add(b.exp);
    from_quad(qa.mul_r(qb, Round::TowardZero), scale).unwrap_or(*a)
}

#[must_use]
pub fn div_ext(a: &Ext, b: &Ext) -> Ext {
    let (qa, qb) = (to_quad(a, a.exp), to_quad(b, b.exp));
    let scale = a.exp.saturating_sub(b.exp);
    from_quad(qa.div_r(qb, Round::TowardZero), scale).unwrap_or(*a)
}

/// The four basic operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// `a op b` for a register destination rounded to `fmt` (precision control applied).
#[must_use]
pub fn binary(op: Op, a: F80, b: F80, fmt: Format, fcw: u16) -> Res {
    let de = match screen2(a, b, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    add_de(binary_values(op, a, b, fmt, fcw), de, fcw)
}

fn binary_values(op: Op, a: F80, b: F80, fmt: Format, fcw: u16) -> Res {
    let (ca, cb) = (a.class(), b.class());
    let sx = a.sign() ^ b.sign();
    let (ia, ib) = (ca == Class::Infinity, cb == Class::Infinity);
    let (za, zb) = (ca == Class::Zero, cb == Class::Zero);
    match op {
        Op::Add | Op::Sub => {
            let b = if op == Op::Sub { b.negated() } else { b };
            if ia && ib && a.sign() != b.sign() {
                return Res::invalid();
            }
            if ia || ib {
                return Res::ok(if ia { a } else { b });
            }
            match (a.unpack(), b.unpack()) {
                (None, None) => {
                    let neg = if a.sign() == b.sign() {
                        a.sign()
                    } else {
                        Rc::from_fcw(fcw) == Rc::Down
                    };
                    Res::ok(F80::zero(neg))
                }
                (Some(x), None) | (None, Some(x)) => finish(x, fmt, fcw),
                (Some(x), Some(y)) => match add_ext(&x, &y) {
                    Some(s) => finish(s, fmt, fcw),
                    None => Res::ok(F80::zero(Rc::from_fcw(fcw) == Rc::Down)),
                },
            }
        }
        Op::Mul => {
            if (ia && zb) || (za && ib) {
                return Res::invalid();
            }
            if ia || ib {
                return Res::ok(F80::inf(sx));
            }
            match (a.unpack(), b.unpack()) {
                (Some(x), Some(y)) => finish(mul_ext(&x, &y), fmt, fcw),
                _ => Res::ok(F80::zero(sx)),
            }
        }
        Op::Div => {
            if (ia && ib) || (za && zb) {
                return Res::invalid();
            }
            if ia {
                return Res::ok(F80::inf(sx));
            }
            if ib || za {
                return Res::ok(F80::zero(sx));
            }
            if zb {
                return Res {
                    val: F80::inf(sx),
                    exc: exc::ZE,
                    up: false,
                };
            }
            match (a.unpack(), b.unpack()) {
                (Some(x), Some(y)) => finish(div_ext(&x, &y), fmt, fcw),
                _ => Res::invalid(),
            }
        }
    }
}

/// Square root digit by digit on integers: `sqrt(m * 2^(2k))` for `m` of `bits` (even) bits.
fn isqrt(m: u128, bits: u32, extra_pairs: u32) -> (u128, bool) {
    let (mut rem, mut root) = (0u128, 0u128);
    for i in 0..bits / 2 + extra_pairs {
        let pair = if i < bits / 2 {
            (m >> (bits - 2 - 2 * i)) & 3
        } else {
            0
        };
        rem = rem << 2 | pair;
        let trial = root << 2 | 1;
        if rem >= trial {
            rem -= trial;
            root = root << 1 | 1;
        } else {
            root <<= 1;
        }
    }
    (root, rem != 0)
}

/// Correctly rounded square root (FSQRT).
#[must_use]
pub fn sqrt(a: F80, fmt: Format, fcw: u16) -> Res {
    let de = match screen1(a, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match a.class() {
        Class::Zero => return Res::ok(a),
        Class::Infinity if !a.sign() => return Res::ok(a),
        _ if a.sign() => return Res::invalid(),
        _ => {}
    }
    let Some(x) = a.unpack() else {
        return Res::invalid();
    };
    // x = m * 2^t with a 64-bit integer m; make t even.
    let m = x.sig >> 64;
    let t = x.exp - 63;
    let (m, t) = if t & 1 != 0 { (m << 1, t - 1) } else { (m, t) };
    let (root, sticky) = isqrt(m, 66, 35);
    add_de(
        finish(finish_sqrt(root, t / 2 - 35, sticky), fmt, fcw),
        de,
        fcw,
    )
}

fn finish_sqrt(root: u128, exp2: i32, sticky: bool) -> Ext {
    let mut e = Ext::norm(false, exp2 + 127, root).unwrap_or(Ext {
        sign: false,
        exp: 0,
        sig: 1 << 127,
    });
    e.sig |= u128::from(sticky);
    e
}

/// Ordering of a comparison, as FCOM reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Lt,
    Eq,
    Unordered,
}

/// Compare `a` with `b`. `quiet` (FUCOM) raises #IA only for SNaNs and unsupported operands.
#[must_use]
pub fn compare(a: F80, b: F80, quiet: bool, fcw: u16) -> (Cmp, u16) {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        return (Cmp::Unordered, exc::IE);
    }
    if a.is_nan() || b.is_nan() {
        let sn = ca == Class::SNan || cb == Class::SNan;
        return (Cmp::Unordered, if sn || !quiet { exc::IE } else { 0 });
    }
    let de = match screen_denormal(ca == Class::Denormal || cb == Class::Denormal, fcw) {
        Ok(d) => d,
        Err(r) => return (Cmp::Unordered, r.exc),
    };
    (order(a, b), de)
}

/// Order of two non-NaN values (zeros equal whatever their signs).
#[must_use]
pub fn order(a: F80, b: F80) -> Cmp {
    let key = |x: F80| -> (i8, i64, u128) {
        match x.class() {
            Class::Zero => (0, 0, 0),
            Class::Infinity => (if x.sign() { -2 } else { 2 }, 0, 0),
            _ => {
                let e = x.unpack().map_or((0, 0), |e| (e.exp, e.sig));
                (if x.sign() { -1 } else { 1 }, i64::from(e.0), e.1)
            }
        }
    };
    let (ka, kb) = (key(a), key(b));
    let ord = ka.0.cmp(&kb.0).then_with(|| {
        let mag = (ka.1, ka.2).cmp(&(kb.1, kb.2));
        if ka.0 < 0 {
            mag.reverse()
        } else {
            mag
        }
    });
    match ord {
        std::cmp::Ordering::Greater => Cmp::Gt,
        std::cmp::Ordering::Less => Cmp::Lt,
        std::cmp::Ordering::Equal => Cmp::Eq,
    }
}

/// Round a finite non-zero value to an integer (as an `Ext`), by `rc`; `None` for zero.
#[must_use]
pub fn round_int(x: &Ext, rc: Rc) -> (Option<Ext>, bool, bool) {
    if x.exp >= 127 {
        return (Some(*x), false, false);
    }
    let drop = (127 - x.exp).min(300) as u32;
    let (k, inexact, up) = round_bits(x.sig, drop, x.sign, rc);
    (Ext::norm(x.sign, 127, k), inexact, up)
}

/// FRNDINT.
#[must_use]
pub fn rndint(a: F80, fcw: u16) -> Res {
    let de = match screen1(a, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let Some(x) = a.unpack() else {
        return Res::ok(a);
    };
    let (r, inexact, up) = round_int(&x, Rc::from_fcw(fcw));
    let val = r.map_or(F80::zero(a.sign()), |r| finish(r, EXTENDED, fcw).val);
    let r = Res {
        val,
        exc: if inexact { exc::PE } else { 0 },
        up,
    };
    add_de(r, de, fcw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x87::f80::DOUBLE;

    const FCW: u16 = 0x037f;

    fn f(v: f64) -> F80 {
        crate::x87::f80::from_ieee(v.to_bits(), DOUBLE).0
    }

    #[test]
    fn one_third_in_every_precision() {
        let third = binary(Op::Div, f(1.0), f(3.0), EXTENDED, FCW);
        assert_eq!(third.val, F80::new(false, 0x3ffd, 0xaaaa_aaaa_aaaa_aaab));
        assert_eq!(third.exc, exc::PE);
        assert!(third.up);
        let down = binary(Op::Div, f(1.0), f(3.0), EXTENDED, FCW | 0x0400);
        assert_eq!(down.val.mant, 0xaaaa_aaaa_aaaa_aaaa);
        assert!(!down.up);
        let pc53 = binary(Op::Div, f(1.0), f(3.0), Format::extended_pc(0x027f), FCW);
        assert_eq!(pc53.val, f(1.0 / 3.0));
        let pc24 = binary(Op::Div, f(1.0), f(3.0), SINGLE_PC, FCW);
        assert_eq!(pc24.val, f(f64::from(1.0f32 / 3.0)));
    }

    const SINGLE_PC: Format = Format {
        prec: 24,
        ..EXTENDED
    };

    #[test]
    fn specials_and_nans() {
        let inf = F80::INFINITY;
        assert_eq!(binary(Op::Sub, inf, inf, EXTENDED, FCW), Res::invalid());
        assert_eq!(
            binary(Op::Mul, inf, F80::ZERO, EXTENDED, FCW),
            Res::invalid()
        );
        let z = binary(Op::Div, f(1.0), F80::ZERO.negated(), EXTENDED, FCW);
        assert_eq!((z.val, z.exc), (F80::inf(true), exc::ZE));
        // x - x is +0, or -0 when rounding down.
        assert_eq!(
            binary(Op::Sub, f(2.0), f(2.0), EXTENDED, FCW).val,
            F80::ZERO
        );
        assert_eq!(
            binary(Op::Sub, f(2.0), f(2.0), EXTENDED, FCW | 0x400).val,
            F80::zero(true)
        );
        let q = F80::new(false, 0x7fff, 0xc000_0000_0000_0001);
        let s = F80::new(true, 0x7fff, 0x8000_0000_0000_0005);
        // QNaN beats SNaN; two SNaNs: larger significand, quieted; invalid for an SNaN.
        assert_eq!(binary(Op::Add, s, q, EXTENDED, FCW).val, q);
        assert_eq!(binary(Op::Add, s, q, EXTENDED, FCW).exc, exc::IE);
        let s2 = F80::new(false, 0x7fff, 0x8000_0000_0000_0009);
        assert_eq!(binary(Op::Mul, s, s2, EXTENDED, FCW).val, s2.quieted());
        let (qp, qn) = (q, q.with_sign(true));
        assert_eq!(binary(Op::Add, qn, qp, EXTENDED, FCW).val, qp);
        assert_eq!(binary(Op::Add, qp, qn, EXTENDED, FCW).val, qp);
        assert_eq!(binary(Op::Add, f(1.0), q, EXTENDED, FCW), Res::ok(q));
        assert_eq!(
            binary(Op::Add, F80::new(false, 3, 5), f(1.0), EXTENDED, FCW),
            Res::invalid()
        );
    }

    #[test]
    fn denormals_overflow_underflow() {
        let tiny = F80::new(false, 0, 1);
        let r = binary(Op::Add, tiny, tiny, EXTENDED, FCW);
        assert_eq!((r.val, r.exc), (F80::new(false, 0, 2), exc::DE));
        // Unmasked #D stops the operation.
        assert!(binary(Op::Add, tiny, tiny, EXTENDED, FCW & !exc::DE).aborts(FCW & !exc::DE));
        let big = F80::new(false, 0x7ffe, u64::MAX);
        let r = binary(Op::Mul, big, f(2.0), EXTENDED, FCW);
        assert_eq!((r.val, r.exc), (F80::INFINITY, exc::OE | exc::PE));
        let r = binary(Op::Mul, big, f(2.0), EXTENDED, FCW | 0xc00);
        assert_eq!(r.val, big);
        // Unmasked overflow: exponent biased down by 24576.
        let r = binary(Op::Mul, big, f(2.0), EXTENDED, FCW & !exc::OE);
        assert_eq!(r.val, F80::new(false, 0x7fff - 24576, u64::MAX));
        assert_eq!(r.exc, exc::OE);
        // Masked underflow: tiny and inexact → denormal with UE|PE.
        let small = F80::new(false, 1, 0x8000_0000_0000_0001);
        let r = binary(Op::Div, small, f(2.0), EXTENDED, FCW);
        assert_eq!(r.exc, exc::UE | exc::PE);
        assert_eq!(r.val, F80::new(false, 0, 0x4000_0000_0000_0000));
        // Exact tiny result: no flag when masked.
        let r = binary(Op::Div, F80::new(false, 1, 1 << 63), f(2.0), EXTENDED, FCW);
        assert_eq!((r.val, r.exc), (F80::new(false, 0, 1 << 62), 0));
    }

    #[test]
    fn sqrt_is_correctly_rounded() {
        let r = sqrt(f(2.0), EXTENDED, FCW);
        assert_eq!(r.val, F80::new(false, 0x3fff, 0xb504_f333_f9de_6484));
        assert_eq!(
            sqrt(f(2.0), Format::extended_pc(0x027f), FCW).val,
            f(2f64.sqrt())
        );
        assert_eq!(sqrt(f(16.0), EXTENDED, FCW), Res::ok(f(4.0)));
        assert_eq!(sqrt(f(-1.0), EXTENDED, FCW), Res::invalid());
        assert_eq!(
            sqrt(F80::zero(true), EXTENDED, FCW),
            Res::ok(F80::zero(true))
        );
        let _ = DOUBLE;
    }

    #[test]
    fn compare_and_round() {
        assert_eq!(compare(f(1.0), f(2.0), false, FCW), (Cmp::Lt, 0));
        assert_eq!(compare(f(-0.0), f(0.0), false, FCW), (Cmp::Eq, 0));
        assert_eq!(compare(f(-3.0), f(-2.0), false, FCW), (Cmp::Lt, 0));
        assert_eq!(
            compare(F80::INDEFINITE, f(0.0), true, FCW),
            (Cmp::Unordered, 0)
        );
        assert_eq!(
            compare(F80::INDEFINITE, f(0.0), false, FCW),
            (Cmp::Unordered, exc::IE)
        );
        assert_eq!(rndint(f(2.5), FCW).val, f(2.0));
        assert_eq!(rndint(f(-2.5), FCW | 0x400).val, f(-3.0));
        assert_eq!(rndint(f(0.25), FCW | 0x800).val, f(1.0));
        assert_eq!(rndint(f(-0.25), FCW).val, f(-0.0));
    }
}
