//! FPREM, FPREM1, FSCALE and FXTRACT: exact operations on significands and exponents.

use super::arith::{add_de, exc, finish, pick_nan, screen1, screen2, Res};
use super::f80::{exact_f80, round_bits, Class, Ext, Rc, EXTENDED, F80};

/// A partial remainder: the value, the low three quotient bits (Q2 Q1 Q0) and whether the
/// reduction is incomplete (C2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prem {
    pub res: Res,
    pub q: u8,
    pub incomplete: bool,
}

impl Prem {
    fn done(res: Res) -> Prem {
        Prem {
            res,
            q: 0,
            incomplete: false,
        }
    }
}

/// FPREM (`nearest` false: quotient truncated) and FPREM1 (IEEE remainder, quotient
/// rounded to nearest even) of ST0 by ST1. When the exponents differ by 64 or more the
/// hardware reduces ST0 only partially, by a multiple of ST1·2^(32·n), leaving an exponent
/// difference between 32 and 63 for the next round (measured on Intel hardware).
#[must_use]
pub fn prem(a: F80, b: F80, nearest: bool, fcw: u16) -> Prem {
    let de = match screen2(a, b, fcw) {
        Ok(d) => d,
        Err(r) => return Prem::done(r),
    };
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Infinity || cb == Class::Zero {
        return Prem::done(Res::invalid());
    }
    let with_de = |r: Res| add_de(r, de, fcw);
    // ST0 as the remainder: a denormal one is still tiny (UE unmasked: rebiased, measured).
    let unchanged = || a.unpack().map_or(Res::ok(a), |x| finish(x, EXTENDED, fcw));
    let (Some(x), Some(y)) = (a.unpack(), b.unpack()) else {
        // ST0 zero, or ST1 infinite: ST0 is the remainder.
        return Prem::done(with_de(unchanged()));
    };
    let d = x.exp - y.exp;
    let (mx, my) = (x.sig >> 64, y.sig >> 64);
    if d < 0 {
        // |x| < |y|: quotient 0, except FPREM1 rounding x/y ∈ (½, 1) up to 1.
        if nearest && d == -1 && mx > my {
            let r = Ext::norm(!x.sign, y.exp - 64 + 127, 2 * my - mx);
            let v = r.map_or(F80::zero(x.sign), |r| finish(r, EXTENDED, fcw).val);
            return Prem {
                res: with_de(Res::ok(v)),
                q: 1,
                incomplete: false,
            };
        }
        return Prem::done(with_de(unchanged()));
    }
    let partial = d >= 64;
    let skip = if partial { 32 * ((d - 32) / 32) } else { 0 };
    let (mut q, mut r) = (u64::from(mx >= my), if mx >= my { mx - my } else { mx });
    for _ in 0..d - skip {
        r <<= 1;
        q <<= 1;
        if r >= my {
            r -= my;
            q |= 1;
        }
    }
    let mut sign = x.sign;
    if nearest && !partial && (2 * r > my || (2 * r == my && q & 1 == 1)) {
        q = q.wrapping_add(1);
        r = my - r;
        sign = !sign;
    }
    let v = match Ext::norm(sign, y.exp + skip - 63 + 127, r) {
        Some(r) => finish(r, EXTENDED, fcw),
        None => Res::ok(F80::zero(x.sign)),
    };
    Prem {
        res: with_de(v),
        q: if partial { 0 } else { (q & 7) as u8 },
        incomplete: partial,
    }
}

/// FSCALE: ST0 · 2^trunc(ST1).
#[must_use]
pub fn scale(a: F80, b: F80, fcw: u16) -> Res {
    let de = match screen2(a, b, fcw) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (ca, cb) = (a.class(), b.class());
    let r = match cb {
        Class::Infinity if b.sign() => match ca {
            Class::Infinity => Res::invalid(),
            _ => Res::ok(F80::zero(a.sign())),
        },
        Class::Infinity => match ca {
            Class::Zero => Res::invalid(),
            _ => Res::ok(F80::inf(a.sign())),
        },
        _ => match a.unpack() {
            None => Res::ok(a),
            Some(x) => {
                let n = b.unpack().map_or(0, |e| trunc_i32(&e));
                finish(
                    Ext {
                        exp: x.exp.saturating_add(n),
                        ..x
                    },
                    EXTENDED,
                    fcw,
                )
            }
        },
    };
    add_de(r, de, fcw)
}

/// Truncate toward zero to an integer clamped to ±2^20 (far beyond any exponent range).
fn trunc_i32(e: &Ext) -> i32 {
    if e.exp >= 20 {
        return if e.sign { -(1 << 20) } else { 1 << 20 };
    }
    let (k, _, _) = round_bits(e.sig, (127 - e.exp).min(200) as u32, e.sign, Rc::Zero);
    let k = k as i32;
    if e.sign {
        -k
    } else {
        k
    }
}

/// FXTRACT: (exponent, significand) of ST0; the significand is pushed above the exponent.
/// Returns `(new ST1, new ST0)`.
#[must_use]
pub fn xtract(a: F80, fcw: u16) -> (Res, F80) {
    let de = match screen1(a, fcw) {
        Ok(d) => d,
        Err(r) => {
            let n = if a.is_nan() {
                pick_nan(a, a).val
            } else {
                r.val
            };
            return (r, n);
        }
    };
    match a.class() {
        Class::Zero => (
            Res {
                val: F80::inf(true),
                exc: exc::ZE,
                up: false,
            },
            a,
        ),
        Class::Infinity => (Res::ok(F80::INFINITY), a),
        _ => match a.unpack() {
            Some(x) => {
                let e = Ext::from_int(i64::from(x.exp)).map_or(F80::ZERO, exact_f80);
                let sig = exact_f80(Ext { exp: 0, ..x });
                (
                    Res {
                        val: e,
                        exc: de,
                        up: false,
                    },
                    sig,
                )
            }
            None => (Res::invalid(), F80::INDEFINITE),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x87::f80::{from_ieee, DOUBLE};

    const FCW: u16 = 0x037f;

    fn f(v: f64) -> F80 {
        from_ieee(v.to_bits(), DOUBLE).0
    }

    #[test]
    fn remainders() {
        let p = prem(f(7.0), f(2.0), false, FCW);
        assert_eq!((p.res.val, p.q, p.incomplete), (f(1.0), 3, false));
        let p = prem(f(7.0), f(2.0), true, FCW);
        assert_eq!((p.res.val, p.q), (f(-1.0), 4));
        let p = prem(f(-5.5), f(2.0), false, FCW);
        assert_eq!((p.res.val, p.q), (f(-1.5), 2));
        let p = prem(f(0.75), f(1.0), true, FCW);
        assert_eq!((p.res.val, p.q), (f(-0.25), 1));
        // Exponent difference 199 (measured on hardware: reduced by 2^160 in one step).
        let big = F80::new(false, 0x3fff + 200, 0xd555_5555_5555_5555);
        let p = prem(big, f(3.0), false, FCW);
        assert!(p.incomplete);
        assert_eq!(p.res.val, F80::new(false, 0x40a0, 0xaaaa_aa80_0000_0000));
        assert_eq!(prem(f(1.0), F80::ZERO, false, FCW).res, Res::invalid());
    }

    #[test]
    fn scale_and_extract() {
        assert_eq!(scale(f(3.0), f(4.9), FCW).val, f(48.0));
        assert_eq!(scale(f(3.0), f(-1.5), FCW).val, f(1.5));
        assert_eq!(scale(F80::ZERO, F80::INFINITY, FCW), Res::invalid());
        let (e, s) = xtract(f(-12.0), FCW);
        assert_eq!((e.val, s), (f(3.0), f(-1.5)));
        let (e, _) = xtract(F80::ZERO, FCW);
        assert_eq!((e.val, e.exc), (F80::inf(true), exc::ZE));
    }
}
