//! The 80-bit register format, the unpacked form arithmetic works on, and the one rounding
//! routine every result goes through (precision control, rounding control, denormals,
//! overflow, tininess after rounding with unbounded exponent as the x87 detects it).

use serde::{Deserialize, Serialize};

/// An x87 register: 64-bit significand with explicit integer bit, then sign and a 15-bit
/// exponent biased by 16383 (the bytes of the 80-bit memory format, little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(C)]
pub struct F80 {
    pub mant: u64,
    /// Sign (bit 15) and biased exponent.
    pub se: u16,
}

pub const BIAS: i32 = 16383;
pub const EXP_MAX: u16 = 0x7fff;
const INT_BIT: u64 = 1 << 63;
const QUIET_BIT: u64 = 1 << 62;

/// What a register holds, as the hardware classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Zero,
    /// Exponent 0 with a non-zero significand (pseudo-denormals included).
    Denormal,
    Normal,
    Infinity,
    QNan,
    SNan,
    /// Unnormals, pseudo-NaNs and pseudo-infinities: the 387 and later reject them.
    Unsupported,
}

impl F80 {
    pub const ZERO: F80 = F80 { mant: 0, se: 0 };
    pub const ONE: F80 = F80 {
        mant: INT_BIT,
        se: BIAS as u16,
    };
    /// The QNaN floating-point indefinite: what masked invalid operations return.
    pub const INDEFINITE: F80 = F80 {
        mant: INT_BIT | QUIET_BIT,
        se: 0xffff,
    };
    pub const INFINITY: F80 = F80 {
        mant: INT_BIT,
        se: EXP_MAX,
    };

    #[must_use]
    pub const fn new(sign: bool, exp: u16, mant: u64) -> Self {
        F80 {
            mant,
            se: (sign as u16) << 15 | (exp & EXP_MAX),
        }
    }
    #[must_use]
    pub fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }
    #[must_use]
    pub fn exp(self) -> u16 {
        self.se & EXP_MAX
    }
    #[must_use]
    pub fn with_sign(self, sign: bool) -> Self {
        F80::new(sign, self.exp(), self.mant)
    }
    #[must_use]
    pub fn abs(self) -> Self {
        self.with_sign(false)
    }
    #[must_use]
    pub fn negated(self) -> Self {
        self.with_sign(!self.sign())
    }
    #[must_use]
    pub fn zero(sign: bool) -> Self {
        F80::ZERO.with_sign(sign)
    }
    #[must_use]
    pub fn inf(sign: bool) -> Self {
        F80::INFINITY.with_sign(sign)
    }

    #[must_use]
    pub fn class(self) -> Class {
        let int = self.mant & INT_BIT != 0;
        match (self.exp(), int) {
            (0, _) if self.mant == 0 => Class::Zero,
            (0, _) => Class::Denormal,
            (EXP_MAX, true) if self.mant << 1 == 0 => Class::Infinity,
            (EXP_MAX, true) if self.mant & QUIET_BIT != 0 => Class::QNan,
            (EXP_MAX, true) => Class::SNan,
            (_, true) => Class::Normal,
            (_, false) => Class::Unsupported,
        }
    }
    #[must_use]
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNan | Class::SNan)
    }
    /// Quiet a NaN (sets the quiet bit).
    #[must_use]
    pub fn quieted(self) -> Self {
        F80 {
            mant: self.mant | QUIET_BIT,
            se: self.se,
        }
    }

    #[must_use]
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.mant.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    #[must_use]
    pub fn from_bytes(b: &[u8; 10]) -> Self {
        let mut m = [0u8; 8];
        m.copy_from_slice(&b[..8]);
        F80 {
            mant: u64::from_le_bytes(m),
            se: u16::from_le_bytes([b[8], b[9]]),
        }
    }

    /// The finite non-zero value unpacked (denormals normalized); `None` for anything else.
    #[must_use]
    pub fn unpack(self) -> Option<Ext> {
        match self.class() {
            Class::Normal | Class::Denormal => {
                // A denormal's exponent field 0 means the same scale as field 1.
                let e = i32::from(self.exp().max(1)) - BIAS;
                let lz = self.mant.leading_zeros();
                Some(Ext {
                    sign: self.sign(),
                    exp: e - lz as i32,
                    sig: u128::from(self.mant << lz) << 64,
                })
            }
            _ => None,
        }
    }
}

/// A finite non-zero value: `(-1)^sign * sig / 2^127 * 2^exp`, `sig` normalized (bit 127
/// set). The exponent is unbounded; bit 0 may be a sticky bit standing for lost low bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ext {
    pub sign: bool,
    pub exp: i32,
    pub sig: u128,
}

impl Ext {
    /// Normalize an arbitrary non-zero significand (value `sig / 2^127 * 2^exp`).
    #[must_use]
    pub fn norm(sign: bool, exp: i32, sig: u128) -> Option<Ext> {
        if sig == 0 {
            return None;
        }
        let lz = sig.leading_zeros();
        Some(Ext {
            sign,
            exp: exp.saturating_sub(lz as i32),
            sig: sig << lz,
        })
    }
    /// An exact integer.
    #[must_use]
    pub fn from_int(v: i64) -> Option<Ext> {
        Ext::norm(v < 0, 127, u128::from(v.unsigned_abs()))
    }
    #[must_use]
    pub fn negated(self) -> Ext {
        Ext {
            sign: !self.sign,
            ..self
        }
    }
}

/// Rounding control (FCW.RC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    Nearest,
    Down,
    Up,
    Zero,
}

impl Rc {
    #[must_use]
    pub fn from_fcw(fcw: u16) -> Rc {
        match (fcw >> 10) & 3 {
            0 => Rc::Nearest,
            1 => Rc::Down,
            2 => Rc::Up,
            _ => Rc::Zero,
        }
    }
}

/// A binary format to round into: significand bits (integer bit included) and the normal
/// exponent range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub prec: u32,
    pub emin: i32,
    pub emax: i32,
}

pub const EXTENDED: Format = Format {
    prec: 64,
    emin: 1 - BIAS,
    emax: BIAS,
};
pub const DOUBLE: Format = Format {
    prec: 53,
    emin: -1022,
    emax: 1023,
};
pub const SINGLE: Format = Format {
    prec: 24,
    emin: -126,
    emax: 127,
};

impl Format {
    /// The extended exponent range with the significand cut by precision control.
    #[must_use]
    pub fn extended_pc(fcw: u16) -> Format {
        let prec = match (fcw >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        };
        Format { prec, ..EXTENDED }
    }
    fn bias(self) -> i32 {
        self.emax
    }
}

/// A value rounded to a format: `keep * 2^(exp - prec + 1)` with `keep < 2^prec`; `keep` has
/// its top bit set unless the value is denormal (then `exp == emin`) or zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounded {
    pub sign: bool,
    pub exp: i32,
    pub keep: u64,
    pub fmt: Format,
    pub inexact: bool,
    /// The magnitude was rounded up (C1, the "round-up bit").
    pub up: bool,
    /// Tiny: the result rounded with unbounded exponent is below the smallest normal.
    pub tiny: bool,
    /// Too large for the format after rounding.
    pub overflow: bool,
}

/// Drop the low `drop` bits of `sig`, rounding by `rc` (`sign` for the directed modes).
/// Returns (kept value, inexact, incremented).
pub fn round_bits(sig: u128, drop: u32, sign: bool, rc: Rc) -> (u128, bool, bool) {
    if drop == 0 {
        return (sig, false, false);
    }
    let (kept, rest, half) = if drop >= 128 {
        (0, sig, if drop == 128 { 1u128 << 127 } else { 0 })
    } else {
        (
            sig >> drop,
            sig & ((1u128 << drop) - 1),
            1u128 << (drop - 1),
        )
    };
    // Beyond 128 dropped bits the rest lies below half an ulp: only a sticky remains.
    let below_half = drop > 128;
    let inexact = rest != 0;
    let inc = inexact
        && match rc {
            Rc::Nearest => !below_half && (rest > half || (rest == half && kept & 1 == 1)),
            Rc::Up => !sign,
            Rc::Down => sign,
            Rc::Zero => false,
        };
    (kept + u128::from(inc), inexact, inc)
}

/// Round a finite non-zero value to `fmt` (precision and exponent range).
#[must_use]
pub fn round(x: Ext, fmt: Format, rc: Rc) -> Rounded {
    let drop = 128 - fmt.prec;
    // First with unbounded exponent: that decides tininess and overflow.
    let (mut k, inexact, up) = round_bits(x.sig, drop, x.sign, rc);
    let mut exp = x.exp;
    if k >> fmt.prec != 0 {
        k >>= 1;
        exp = exp.saturating_add(1);
    }
    let tiny = exp < fmt.emin;
    let mut r = Rounded {
        sign: x.sign,
        exp,
        keep: k as u64,
        fmt,
        inexact,
        up,
        tiny,
        overflow: exp > fmt.emax,
    };
    if tiny {
        // Denormalize: the exponent stays at emin and low bits fall off.
        let extra = (fmt.emin.saturating_sub(x.exp)).min(200) as u32;
        let (k, inexact, up) = round_bits(x.sig, drop + extra, x.sign, rc);
        r.inexact = inexact;
        r.up = up;
        r.exp = fmt.emin;
        r.keep = k as u64;
    }
    r
}

impl Rounded {
    /// The same rounding with the exponent moved by `adj` (x87 bias adjustment of unmasked
    /// overflow and underflow results).
    #[must_use]
    pub fn rebias(x: Ext, fmt: Format, rc: Rc, adj: i32) -> Rounded {
        let wide = Format {
            emin: i32::MIN / 2,
            emax: i32::MAX / 2,
            ..fmt
        };
        let mut r = round(x, wide, rc);
        r.exp = r.exp.saturating_add(adj);
        r.fmt = fmt;
        r.tiny = false;
        r.overflow = r.exp > fmt.emax || r.exp < fmt.emin;
        r
    }

    /// The masked overflow result: infinity or the largest finite number, by rounding mode.
    #[must_use]
    pub fn overflowed(sign: bool, fmt: Format, rc: Rc) -> (bool, Rounded) {
        let to_inf = match rc {
            Rc::Nearest => true,
            Rc::Up => !sign,
            Rc::Down => sign,
            Rc::Zero => false,
        };
        let r = Rounded {
            sign,
            exp: fmt.emax,
            keep: if fmt.prec == 64 {
                u64::MAX
            } else {
                (1u64 << fmt.prec) - 1
            },
            fmt,
            inexact: true,
            up: to_inf,
            tiny: false,
            overflow: true,
        };
        (to_inf, r)
    }

    /// As an 80-bit register (the significand left-aligned; reduced precision leaves zeros).
    #[must_use]
    pub fn to_f80(self) -> F80 {
        let mant = self.keep << (64 - self.fmt.prec);
        let exp = if mant & INT_BIT == 0 {
            0
        } else {
            self.exp + BIAS
        };
        F80::new(self.sign, exp.clamp(0, 0x7ffe) as u16, mant)
    }

    /// As the bits of an IEEE single or double (sign, biased exponent, fraction).
    #[must_use]
    pub fn to_ieee(self) -> u64 {
        let p = self.fmt.prec;
        let frac = self.keep & ((1u64 << (p - 1)) - 1);
        let exp = if self.keep >> (p - 1) == 0 {
            0
        } else {
            (self.exp + self.fmt.bias()) as u64
        };
        let width = if p == 24 { 32 } else { 64 };
        u64::from(self.sign) << (width - 1) | exp << (p - 1) | frac
    }
}

/// Largest finite or infinity in IEEE bits for a format (masked overflow on stores).
#[must_use]
pub fn ieee_special(sign: bool, fmt: Format, inf: bool) -> u64 {
    let p = fmt.prec;
    let width = if p == 24 { 32 } else { 64 };
    let all_exp = (2 * fmt.bias() + 1) as u64;
    let body = if inf {
        all_exp << (p - 1)
    } else {
        ((all_exp - 1) << (p - 1)) | ((1u64 << (p - 1)) - 1)
    };
    u64::from(sign) << (width - 1) | body
}

/// Load an IEEE single (`p = 24`) or double (`p = 53`) into the 80-bit format, exactly.
/// Returns the value and whether the source was a denormal.
#[must_use]
pub fn from_ieee(bits: u64, fmt: Format) -> (F80, bool) {
    let p = fmt.prec;
    let width = if p == 24 { 32 } else { 64 };
    let sign = (bits >> (width - 1)) & 1 != 0;
    let exp_bits = width - p;
    let e = ((bits >> (p - 1)) & ((1 << exp_bits) - 1)) as i32;
    let frac = bits & ((1u64 << (p - 1)) - 1);
    let all = (1i32 << exp_bits) - 1;
    if e == all {
        // Infinity or NaN: the fraction moves to the top, the integer bit is set.
        return (F80::new(sign, EXP_MAX, INT_BIT | frac << (64 - p)), false);
    }
    if e == 0 {
        if frac == 0 {
            return (F80::zero(sign), false);
        }
        let x = Ext::norm(sign, fmt.emin + 127 - (p as i32 - 1), u128::from(frac));
        return (x.map_or(F80::zero(sign), exact_f80), true);
    }
    let mant = INT_BIT | frac << (64 - p);
    (F80::new(sign, (e - fmt.bias() + BIAS) as u16, mant), false)
}

/// An `Ext` known to fit the extended format exactly (≤ 64 bits, exponent in range).
#[must_use]
pub fn exact_f80(x: Ext) -> F80 {
    round(x, EXTENDED, Rc::Nearest).to_f80()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(F80::ONE.class(), Class::Normal);
        assert_eq!(F80::INDEFINITE.class(), Class::QNan);
        assert_eq!(F80::new(false, EXP_MAX, INT_BIT | 1).class(), Class::SNan);
        assert_eq!(F80::new(false, 5, 1).class(), Class::Unsupported);
        assert_eq!(F80::new(false, EXP_MAX, 0).class(), Class::Unsupported);
        assert_eq!(F80::new(false, 0, INT_BIT).class(), Class::Denormal);
        assert_eq!(F80::INFINITY.class(), Class::Infinity);
    }

    #[test]
    fn pseudo_denormal_has_the_scale_of_exponent_one() {
        let pd = F80::new(false, 0, INT_BIT).unpack().unwrap();
        let min_normal = F80::new(false, 1, INT_BIT).unpack().unwrap();
        assert_eq!(pd, min_normal);
    }

    #[test]
    fn ieee_loads_and_rounding() {
        // 1.5f and the smallest single denormal.
        assert_eq!(
            from_ieee(0x3fc0_0000, SINGLE).0,
            F80::new(false, 0x3fff, 0xc000_0000_0000_0000)
        );
        let (d, den) = from_ieee(1, SINGLE);
        assert!(den);
        assert_eq!(d, F80::new(false, (BIAS - 149) as u16, INT_BIT));
        // Round 1 + 2^-30 to single: inexact, down under nearest, up under Up.
        let x = Ext::norm(false, 127, (1u128 << 30) + 1).unwrap();
        let x = Ext { exp: 0, ..x };
        let r = round(x, SINGLE, Rc::Nearest);
        assert!(r.inexact && !r.up);
        assert_eq!(r.to_ieee(), 0x3f80_0000);
        assert_eq!(round(x, SINGLE, Rc::Up).to_ieee(), 0x3f80_0001);
        // 2^-149 * 1.5 rounds to 2^-148 (ties to even) and is tiny.
        let t = Ext::norm(false, -149 + 127 - 1, 3).unwrap();
        let r = round(t, SINGLE, Rc::Nearest);
        assert!(r.tiny && r.inexact);
        assert_eq!(r.to_ieee(), 2);
    }
}
