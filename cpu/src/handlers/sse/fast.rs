//! The common case of SSE arithmetic on the host's own IEEE single and double types: round to
//! nearest, operands zero or normal, a result that is zero or comfortably normal. The host
//! then rounds exactly as x86 does and the only flag possible is PE, found exactly by an
//! error-free transformation. Everything else (NaN, infinity, denormals, directed rounding,
//! overflow, underflow, division by zero) goes to the bit-exact `rustc_apfloat` path.
//! The slow path costs about 60 ns a lane; this one a few.

use super::fp::Op;

/// Is `x` zero or normal (not a denormal, infinity or NaN)?
fn plain32(x: f32) -> bool {
    x == 0.0 || x.is_normal()
}

fn plain64(x: f64) -> bool {
    x == 0.0 || x.is_normal()
}

/// Error of the rounded sum `s` of `x` and `y` (Knuth's TwoSum): exact without overflow.
fn sum_error32(x: f32, y: f32, s: f32) -> f32 {
    let yv = s - x;
    let xv = s - yv;
    (x - xv) + (y - yv)
}

fn sum_error64(x: f64, y: f64, s: f64) -> f64 {
    let yv = s - x;
    let xv = s - yv;
    (x - xv) + (y - yv)
}

/// A result the slow path would give the same bits and flags to: an exact zero, or a
/// normal number above the smallest one (tininess can only arise at or below it).
fn deliverable32(r: f32, inexact: bool) -> bool {
    (r == 0.0 && !inexact) || (r.is_normal() && r.abs() > f32::MIN_POSITIVE)
}

/// One lane of ADD/SUB/MUL/DIV on singles, with round to nearest: (bits, inexact), or None
/// for the slow path.
pub(super) fn single(op: Op, a: u32, b: u32) -> Option<(u32, bool)> {
    let (x, y) = (f32::from_bits(a), f32::from_bits(b));
    if !plain32(x) || !plain32(y) {
        return None;
    }
    let (xd, yd) = (f64::from(x), f64::from(y));
    let (r, inexact) = match op {
        Op::Add => {
            let s = x + y;
            (s, sum_error32(x, y, s) != 0.0)
        }
        Op::Sub => {
            let s = x - y;
            (s, sum_error32(x, -y, s) != 0.0)
        }
        // A product of two singles and a single quotient times the divisor are exact in f64.
        Op::Mul => {
            let p = x * y;
            (p, f64::from(p) != xd * yd)
        }
        Op::Div if y != 0.0 => {
            let q = x / y;
            (q, f64::from(q) * yd != xd)
        }
        _ => return None,
    };
    deliverable32(r, inexact).then_some((r.to_bits(), inexact))
}

/// Below this magnitude a double's product or remainder error term could underflow.
const SMALL64: f64 = 1.0e-270;
/// Above this magnitude a fused error term or the sum could overflow.
const LARGE64: f64 = 1.0e300;

fn in_range64(v: f64) -> bool {
    v == 0.0 || (SMALL64..LARGE64).contains(&v.abs())
}

/// One lane of ADD/SUB/MUL/DIV on doubles, with round to nearest: (bits, inexact), or None.
pub(super) fn double(op: Op, a: u64, b: u64) -> Option<(u64, bool)> {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    if !plain64(x) || !plain64(y) || !in_range64(x) || !in_range64(y) {
        return None;
    }
    let (r, inexact) = match op {
        Op::Add => {
            let s = x + y;
            (s, sum_error64(x, y, s) != 0.0)
        }
        Op::Sub => {
            let s = x - y;
            (s, sum_error64(x, -y, s) != 0.0)
        }
        // With every magnitude in range the fused error terms are exact.
        Op::Mul => {
            let p = x * y;
            (p, x.mul_add(y, -p) != 0.0)
        }
        Op::Div if y != 0.0 => {
            let q = x / y;
            (q, q.mul_add(y, -x) != 0.0)
        }
        _ => return None,
    };
    // A zero product or quotient of non-zero operands underflowed (and so did its error).
    let exact_zero = r == 0.0
        && match op {
            Op::Add | Op::Sub => true,
            Op::Mul => x == 0.0 || y == 0.0,
            _ => x == 0.0,
        };
    (exact_zero || (r != 0.0 && in_range64(r))).then_some((r.to_bits(), inexact))
}

#[cfg(test)]
mod tests {
    use super::super::fp::{exact_arith, Op};
    use crate::handlers::isa_tests::Rng;
    use rustc_apfloat::ieee::{Double, Single};

    /// Operand bits biased towards close magnitudes, cancellation and exact cases.
    fn operands(rng: &mut Rng, w: u32) -> (u128, u128) {
        let mask = u128::MAX >> (128 - w);
        let a = u128::from(rng.next()) & mask;
        let b = match rng.next() % 4 {
            0 => a ^ u128::from(rng.next() & 0xff),
            1 => a ^ (1 << (w - 1)) ^ (u128::from(rng.next()) & 0xffff),
            // Small positive magnitudes: products and quotients that underflow.
            2 => u128::from(rng.next()) & (mask >> 2),
            _ => u128::from(rng.next()) & mask,
        };
        (a, b)
    }

    /// The fast path agrees with the apfloat path (itself checked against the host in
    /// `fp_oracle`) on every lane it accepts, and accepts most ordinary operands.
    #[test]
    fn fast_lanes_match_the_exact_path() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut taken = 0;
        for i in 0..400_000 {
            let op = [Op::Add, Op::Sub, Op::Mul, Op::Div][i % 4];
            let single = i % 8 < 4;
            let (a, b) = operands(&mut rng, if single { 32 } else { 64 });
            let fast = if single {
                super::single(op, a as u32, b as u32).map(|(r, p)| (u128::from(r), p))
            } else {
                super::double(op, a as u64, b as u64).map(|(r, p)| (u128::from(r), p))
            };
            let Some((r, inexact)) = fast else { continue };
            taken += 1;
            let mut f = 0;
            let slow = if single {
                exact_arith::<Single>(op, a, b, 0x1f80, &mut f)
            } else {
                exact_arith::<Double>(op, a, b, 0x1f80, &mut f)
            };
            assert_eq!(
                (r, inexact as u32 * 0x20),
                (slow, f),
                "{op:?} {a:#x} {b:#x}"
            );
        }
        assert!(taken > 200_000, "fast path taken only {taken} times");
    }

    #[test]
    fn edge_cases_go_to_the_exact_path() {
        let min = f32::MIN_POSITIVE.to_bits();
        // A product that rounds to the smallest normal, a denormal operand, a division by
        // zero, overflow.
        assert!(super::single(Op::Mul, min, 0x3f80_0000).is_none());
        assert!(super::single(Op::Add, 1, 0x3f80_0000).is_none());
        assert!(super::single(Op::Div, 0x3f80_0000, 0).is_none());
        assert!(super::single(Op::Mul, 0x7f00_0000, 0x7f00_0000).is_none());
        assert!(super::double(Op::Mul, 0x0010_0000_0000_0000, 0x3ff0_0000_0000_0000).is_none());
        // 2^-646 · 2^-697 underflows to zero, and so does its fused error term.
        assert!(super::double(Op::Mul, 0x1794_09c1_aee4_cb21, 0x146d_3423_c57c_4515).is_none());
        // x - x is +0 exactly; 1/3 is inexact.
        assert_eq!(
            super::single(Op::Sub, 0x4000_0000, 0x4000_0000),
            Some((0, false))
        );
        assert_eq!(
            super::double(Op::Div, 0x3ff0_0000_0000_0000, 0x4008_0000_0000_0000),
            Some((0x3fd5_5555_5555_5555, true))
        );
    }
}
