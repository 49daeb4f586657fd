//! Conversions between registers and memory formats: IEEE single/double, 16/32/64-bit
//! integers, 18-digit packed BCD, and the built-in constants.

use super::arith::{exc, Res};
use super::f80::{
    exact_f80, from_ieee, ieee_special, round, round_bits, Class, Ext, Format, Rc, Rounded,
    EXTENDED, F80,
};

/// FLD m32/m64: exact; an SNaN loads quieted with #IA, a denormal source raises #D.
#[must_use]
pub fn load_ieee(bits: u64, fmt: Format) -> Res {
    let (v, den) = from_ieee(bits, fmt);
    let mut r = Res::ok(v);
    if v.class() == Class::SNan {
        r = Res {
            val: v.quieted(),
            exc: exc::IE,
            up: false,
        };
    }
    if den {
        r.exc |= exc::DE;
    }
    r
}

/// A store's outcome: bits to write (`None`: nothing is written), exceptions, C1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store<T> {
    pub val: Option<T>,
    pub exc: u16,
    pub up: bool,
}

impl<T> Store<T> {
    fn of(val: Option<T>, exc: u16) -> Self {
        Store {
            val,
            exc,
            up: false,
        }
    }
}

/// FST m32/m64: round to single or double. Unmasked overflow/underflow stores nothing.
#[must_use]
pub fn store_ieee(x: F80, fmt: Format, fcw: u16) -> Store<u64> {
    let p = fmt.prec;
    let width = if p == 24 { 32 } else { 64 };
    let sign_bit = u64::from(x.sign()) << (width - 1);
    let nan = |m: u64| sign_bit | ieee_special(false, fmt, true) | (m << 1 >> (65 - p));
    let masked_ie = fcw & exc::IE != 0;
    match x.class() {
        Class::Unsupported => {
            let ind = ieee_special(true, fmt, true) | 1 << (p - 2);
            return Store::of(masked_ie.then_some(ind), exc::IE);
        }
        Class::SNan => return Store::of(masked_ie.then_some(nan(x.quieted().mant)), exc::IE),
        Class::QNan => return Store::of(Some(nan(x.mant)), 0),
        Class::Infinity => return Store::of(Some(ieee_special(x.sign(), fmt, true)), 0),
        Class::Zero => return Store::of(Some(sign_bit), 0),
        _ => {}
    }
    let Some(e) = x.unpack() else {
        return Store::of(None, exc::IE);
    };
    let rc = Rc::from_fcw(fcw);
    let r = round(e, fmt, rc);
    if r.overflow {
        if fcw & exc::OE == 0 {
            return Store::of(None, exc::OE);
        }
        let (to_inf, _) = Rounded::overflowed(e.sign, fmt, rc);
        return Store {
            val: Some(ieee_special(e.sign, fmt, to_inf)),
            exc: exc::OE | exc::PE,
            up: to_inf,
        };
    }
    if r.tiny && fcw & exc::UE == 0 {
        return Store::of(None, exc::UE);
    }
    let mut flags = if r.inexact { exc::PE } else { 0 };
    if r.tiny && r.inexact {
        flags |= exc::UE;
    }
    Store {
        val: Some(r.to_ieee()),
        exc: flags,
        up: r.up,
    }
}

/// FILD: exact.
#[must_use]
pub fn load_int(v: i64) -> F80 {
    Ext::from_int(v).map_or(F80::ZERO, exact_f80)
}

/// The integer indefinite of a `bits`-wide integer (what a masked invalid FIST stores).
#[must_use]
pub fn int_indefinite(bits: u32) -> i64 {
    i64::MIN >> (64 - bits)
}

/// FIST/FISTP (`rc` from the control word) and FISTTP (`Rc::Zero`) into `bits` bits.
/// Out of range, NaN, infinity: #IA and the integer indefinite when masked.
#[must_use]
pub fn store_int(x: F80, bits: u32, rc: Rc, fcw: u16) -> Store<i64> {
    let invalid = Store::of(
        (fcw & exc::IE != 0).then_some(int_indefinite(bits)),
        exc::IE,
    );
    match x.class() {
        Class::Zero => return Store::of(Some(0), 0),
        Class::Normal | Class::Denormal => {}
        _ => return invalid,
    }
    let Some(e) = x.unpack() else { return invalid };
    if e.exp >= 64 {
        return invalid;
    }
    let (k, inexact, up) = round_bits(e.sig, (127 - e.exp).min(200) as u32, e.sign, rc);
    let limit = 1u128 << (bits - 1);
    if k > limit || (k == limit && !e.sign) {
        return invalid;
    }
    let v = if e.sign {
        (k as i64).wrapping_neg()
    } else {
        k as i64
    };
    Store {
        val: Some(v),
        exc: if inexact { exc::PE } else { 0 },
        up,
    }
}

/// Packed BCD indefinite (FBSTP of an invalid operand, masked).
pub const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];

/// FBLD: 18 digits and a sign byte; digits above 9 are taken at face value (undefined).
#[must_use]
pub fn load_bcd(b: &[u8; 10]) -> F80 {
    let v = b[..9].iter().rev().fold(0i64, |acc, &byte| {
        acc.wrapping_mul(100)
            .wrapping_add(i64::from(byte >> 4) * 10 + i64::from(byte & 15))
    });
    let neg = b[9] & 0x80 != 0;
    if v == 0 {
        return F80::zero(neg);
    }
    load_int(if neg { v.wrapping_neg() } else { v })
}

/// FBSTP: round to an integer by `rc`, then 18 digits; |value| ≥ 10^18 is invalid.
#[must_use]
pub fn store_bcd(x: F80, fcw: u16) -> Store<[u8; 10]> {
    let invalid = Store::of((fcw & exc::IE != 0).then_some(BCD_INDEFINITE), exc::IE);
    let s = store_int(x, 64, Rc::from_fcw(fcw), fcw | exc::IE);
    let v = match s.val {
        Some(v) if s.exc & exc::IE == 0 && v.unsigned_abs() < 1_000_000_000_000_000_000 => v,
        _ => return invalid,
    };
    let mut out = [0u8; 10];
    let mut m = v.unsigned_abs();
    for byte in out.iter_mut().take(9) {
        let lo = (m % 10) as u8;
        m /= 10;
        let hi = (m % 10) as u8;
        m /= 10;
        *byte = hi << 4 | lo;
    }
    out[9] = if x.sign() { 0x80 } else { 0 };
    Store {
        val: Some(out),
        exc: s.exc,
        up: s.up,
    }
}

/// The constants of FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Const {
    One,
    L2t,
    L2e,
    Pi,
    Lg2,
    Ln2,
    Zero,
}

/// A constant rounded by the rounding control, as the 387 and later do; the hardware gives
/// the correctly rounded value in every mode (checked on an Intel host for all four).
#[must_use]
pub fn constant(c: Const, rc: Rc) -> F80 {
    // (unbiased exponent, top 128 bits of the significand, more bits follow)
    let (exp, sig) = match c {
        Const::One => return F80::ONE,
        Const::Zero => return F80::ZERO,
        Const::L2t => (1, 0xd49a_784b_cd1b_8afe_492b_f6ff_4daf_db4c_u128),
        Const::L2e => (0, 0xb8aa_3b29_5c17_f0bb_be87_fed0_691d_3e88),
        Const::Pi => (1, 0xc90f_daa2_2168_c234_c4c6_628b_80dc_1cd1),
        Const::Lg2 => (-2, 0x9a20_9a84_fbcf_f798_8f89_59ac_0b7c_9178),
        Const::Ln2 => (-1, 0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af),
    };
    // All five are irrational: the truncated tail is never exactly zero.
    round(
        Ext {
            sign: false,
            exp,
            sig: sig | 1,
        },
        EXTENDED,
        rc,
    )
    .to_f80()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x87::f80::{DOUBLE, SINGLE};

    const FCW: u16 = 0x037f;

    #[test]
    fn ieee_round_trips() {
        for v in [1.0f64, -0.1, 3.5e300, 4.9e-324, -0.0, f64::INFINITY] {
            let x = load_ieee(v.to_bits(), DOUBLE).val;
            assert_eq!(store_ieee(x, DOUBLE, FCW).val, Some(v.to_bits()), "{v}");
        }
        let x = load_ieee(0.1f64.to_bits(), DOUBLE).val;
        let s = store_ieee(x, SINGLE, FCW);
        assert_eq!(s.val, Some(u64::from(0.1f32.to_bits())));
        assert_eq!(s.exc, exc::PE);
        // Overflow to single: masked gives infinity, unmasked stores nothing.
        let big = load_ieee(1e300f64.to_bits(), DOUBLE).val;
        assert_eq!(store_ieee(big, SINGLE, FCW).val, Some(0x7f80_0000));
        assert_eq!(store_ieee(big, SINGLE, FCW & !exc::OE).val, None);
        // SNaN: quieted with #IA; unsupported: the single indefinite.
        let snan = F80::new(false, 0x7fff, 0x8000_0100_0000_0000);
        assert_eq!(store_ieee(snan, SINGLE, FCW).val, Some(0x7fc0_0001));
        assert_eq!(
            store_ieee(F80::new(false, 1, 0), SINGLE, FCW).val,
            Some(0xffc0_0000)
        );
        assert_eq!(load_ieee(0x7f80_0001, SINGLE).exc, exc::IE);
    }

    #[test]
    fn integers() {
        let x = load_int(-123_456_789_012);
        assert_eq!(
            store_int(x, 64, Rc::Nearest, FCW).val,
            Some(-123_456_789_012)
        );
        let half = load_ieee(2.5f64.to_bits(), DOUBLE).val;
        assert_eq!(store_int(half, 16, Rc::Nearest, FCW).val, Some(2));
        assert_eq!(store_int(half, 16, Rc::Up, FCW).val, Some(3));
        assert_eq!(store_int(half.negated(), 16, Rc::Zero, FCW).val, Some(-2));
        let big = load_int(40_000);
        assert_eq!(store_int(big, 16, Rc::Nearest, FCW).val, Some(-32768));
        assert_eq!(store_int(big, 16, Rc::Nearest, FCW).exc, exc::IE);
        assert_eq!(store_int(load_int(-32768), 16, Rc::Nearest, FCW).exc, 0);
        assert_eq!(
            store_int(load_int(i64::MIN), 64, Rc::Nearest, FCW).val,
            Some(i64::MIN)
        );
        assert_eq!(int_indefinite(32), i64::from(i32::MIN));
    }

    #[test]
    fn bcd_round_trip() {
        let b = [0x89, 0x67, 0x45, 0x23, 0x01, 0x89, 0x67, 0x45, 0x23, 0x80];
        let x = load_bcd(&b);
        assert_eq!(
            store_int(x, 64, Rc::Nearest, FCW).val,
            Some(-234_567_890_123_456_789)
        );
        assert_eq!(store_bcd(x, FCW).val, Some(b));
        let too_big = load_int(1_000_000_000_000_000_000);
        assert_eq!(store_bcd(too_big, FCW).val, Some(BCD_INDEFINITE));
        assert_eq!(
            load_bcd(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]),
            F80::zero(true)
        );
    }

    #[test]
    fn constants_follow_rounding_control() {
        let pi = constant(Const::Pi, Rc::Nearest);
        assert_eq!(pi, F80::new(false, 0x4000, 0xc90f_daa2_2168_c235));
        assert_eq!(constant(Const::Pi, Rc::Down).mant, 0xc90f_daa2_2168_c234);
        assert_eq!(
            constant(Const::Lg2, Rc::Nearest).mant,
            0x9a20_9a84_fbcf_f799
        );
        assert_eq!(constant(Const::L2t, Rc::Up).mant, 0xd49a_784b_cd1b_8aff);
        assert_eq!(constant(Const::L2e, Rc::Zero).mant, 0xb8aa_3b29_5c17_f0bb);
    }
}
