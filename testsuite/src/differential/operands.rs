//! Operands in the ranges where the x87 transcendental and remainder instructions are
//! interesting: tiny arguments, arguments near multiples of π/2, the edge of the trig range
//! (2^63), F2XM1 in [-1, +1], FYL2XP1 near 0, logarithms near 1, and FPREM/FPREM1
//! exponent differences around 64 (complete against incomplete reduction).

use super::Rng;
use iced_x86::Mnemonic as M;

/// An extended value from sign, biased exponent and significand.
fn f80(sign: bool, exp: u16, mant: u64) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&mant.to_le_bytes());
    b[8..].copy_from_slice(&(exp & 0x7fff | u16::from(sign) << 15).to_le_bytes());
    b
}

/// `v` widened to extended, its 11 extra significand bits random (a value within 2^-53
/// relative of `v`), or exactly `v` one time in four.
fn near(rng: &mut Rng, v: f64) -> [u8; 10] {
    let bits = v.to_bits();
    let sign = bits >> 63 != 0;
    let e = (bits >> 52 & 0x7ff) as i32;
    if e == 0 {
        return f80(sign, 0, 0);
    }
    let mut mant = 1 << 63 | (bits & 0xf_ffff_ffff_ffff) << 11;
    if rng.below(4) != 0 {
        mant ^= rng.next_u64() & 0x7ff;
        if rng.below(2) == 0 {
            mant = mant.wrapping_sub(1 << 11) | 1 << 63;
        }
    }
    f80(sign, (e - 1023 + 16383) as u16, mant)
}

/// A normal value with a random significand and a biased exponent in `lo..hi`.
fn normal(rng: &mut Rng, lo: u16, hi: u16) -> [u8; 10] {
    let e = lo + rng.below(u64::from(hi - lo)) as u16;
    f80(rng.below(2) == 0, e, 1 << 63 | rng.next_u64())
}

const BIAS: u16 = 16383;

fn trig_arg(rng: &mut Rng) -> [u8; 10] {
    let sign = rng.below(2) == 0;
    match rng.below(8) {
        0 => normal(rng, 1, BIAS - 20),
        1 => normal(rng, BIAS - 20, BIAS + 4),
        // Near k·π/2.
        2 | 3 => {
            let k = 1.0 + rng.below(64) as f64;
            let v = k * std::f64::consts::FRAC_PI_2;
            near(rng, if sign { -v } else { v })
        }
        // Near large multiples, and at the 2^63 limit.
        4 => {
            let k = (1u64 << rng.below(40)) as f64 + rng.below(1000) as f64;
            near(rng, k * std::f64::consts::PI)
        }
        5 => f80(sign, BIAS + 63, (1 << 63) | (rng.below(2) * rng.next_u64())),
        6 => f80(sign, BIAS + 62, u64::MAX - rng.below(4)),
        _ => normal(rng, BIAS + 4, BIAS + 70),
    }
}

fn unit_interval(rng: &mut Rng) -> [u8; 10] {
    let sign = rng.below(2) == 0;
    match rng.below(6) {
        0 => f80(sign, BIAS, 1 << 63),
        1 => normal(rng, 1, BIAS - 64),
        2 => f80(
            sign,
            BIAS - 1 - rng.below(3) as u16,
            u64::MAX - rng.below(8),
        ),
        _ => normal(rng, BIAS - 64, BIAS),
    }
}

/// FYL2XP1's argument: |x| < 1 - √2/2 (about 0.29), small, or just past the limit.
fn near_zero(rng: &mut Rng) -> [u8; 10] {
    match rng.below(8) {
        0 => near(rng, 1.0 - std::f64::consts::FRAC_1_SQRT_2),
        1 => normal(rng, 1, BIAS - 64),
        _ => normal(rng, BIAS - 64, BIAS - 2),
    }
}

fn log_arg(rng: &mut Rng) -> [u8; 10] {
    match rng.below(5) {
        // Near 1, where log2 loses magnitude.
        0 => f80(false, BIAS - rng.below(2) as u16, {
            let d = rng.next_u64() >> (1 + rng.below(60));
            if rng.below(2) == 0 {
                (1 << 63) + d
            } else {
                u64::MAX - d
            }
        }),
        1 => f80(false, BIAS + rng.below(64) as u16, 1 << 63),
        _ => {
            let v = normal(rng, 1, 0x7ffe);
            let mut v = v;
            v[9] &= 0x7f;
            v
        }
    }
}

fn factor(rng: &mut Rng) -> [u8; 10] {
    match rng.below(4) {
        0 => f80(rng.below(2) == 0, BIAS, 1 << 63),
        _ => normal(rng, BIAS - 100, BIAS + 100),
    }
}

/// Values to push (in push order: the last becomes ST0) before mnemonic `m`, three times in
/// four; `None` for other instructions or when the current stack is used as it is.
pub fn x87_operands(m: M, rng: &mut Rng) -> Option<Vec<[u8; 10]>> {
    if rng.below(4) == 0 {
        return None;
    }
    Some(match m {
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan => vec![trig_arg(rng)],
        M::F2xm1 => vec![unit_interval(rng)],
        M::Fyl2xp1 => vec![factor(rng), near_zero(rng)],
        M::Fyl2x => vec![factor(rng), log_arg(rng)],
        M::Fpatan => {
            let y = if rng.below(2) == 0 {
                trig_arg(rng)
            } else {
                factor(rng)
            };
            vec![y, factor(rng)]
        }
        M::Fprem | M::Fprem1 => {
            let y = normal(rng, BIAS - 200, BIAS + 200);
            let ey = u16::from_le_bytes([y[8], y[9]]) & 0x7fff;
            let d = match rng.below(4) {
                0 => 60 + rng.below(10) as u16,
                1 => rng.below(64) as u16,
                _ => rng.below(400) as u16,
            };
            let mut x = normal(rng, 1, 2);
            let ex = (ey + d).min(0x7ffe);
            x[8..].copy_from_slice(&(ex | u16::from(rng.below(2) == 0) << 15).to_le_bytes());
            vec![y, x]
        }
        _ => return None,
    })
}
