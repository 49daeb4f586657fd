//! SSE4.1 floating point: ROUNDPS/PD/SS/SD (rounding to an integral value in the mode imm8
//! or MXCSR names, with imm8 bit 3 suppressing the precision exception) and the dot products
//! DPPS/DPPD, computed with the IEEE operations of `fp` in Intel's order.

use super::ext::gate;
use super::float::{commit, commit_exactly};
use super::fp::{self, mx, Fp, Op};
use super::{set_xmm, src128, src_low, xmm};
use crate::cpuid::ecx;
use crate::fault::Exec;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Single};
use rustc_apfloat::Status;

fn has_sse41(cpu: &Cpu) -> bool {
    cpu.model.features_ecx & ecx::SSE41 != 0
}

/// One lane of ROUND*: a signalling NaN raises IE and comes back quiet; DAZ zeroes a
/// denormal source; inexact results raise PE unless imm8 bit 3 is set. No DE.
fn round_lane<F: Fp>(v: u128, imm: u8, mxcsr: u32, flags: &mut u32) -> u128 {
    if fp::is_nan::<F>(v) {
        if fp::is_snan::<F>(v) {
            *flags |= mx::IE;
        }
        return v | 1 << (F::FRAC - 1);
    }
    let v = if fp::is_denormal::<F>(v) && mxcsr & mx::DAZ != 0 {
        fp::sign::<F>(v)
    } else {
        v
    };
    let rm = if imm & 4 != 0 {
        fp::rounding(mxcsr)
    } else {
        fp::rounding(u32::from(imm & 3) << mx::RC_SHIFT)
    };
    let r = F::from_bits(v).round_to_integral(rm);
    if r.status.contains(Status::INEXACT) && imm & 8 == 0 {
        *flags |= mx::PE;
    }
    r.value.to_bits()
}

/// Lanes of ROUND* on `b` (scalar forms keep `a`'s upper lanes).
pub(crate) fn round(m: M, a: u128, b: u128, imm: u8, mxcsr: u32, flags: &mut u32) -> u128 {
    let (w, scalar) = match m {
        M::Roundps => (32, false),
        M::Roundss => (32, true),
        M::Roundpd => (64, false),
        _ => (64, true),
    };
    let mask = u128::MAX >> (128 - w);
    let n = if scalar { 1 } else { 128 / w };
    let mut r = if scalar { a } else { 0 };
    for k in 0..n {
        let x = (b >> (k * w)) & mask;
        let y = if w == 32 {
            round_lane::<Single>(x, imm, mxcsr, flags)
        } else {
            round_lane::<Double>(x, imm, mxcsr, flags)
        };
        r = r & !(mask << (k * w)) | (y & mask) << (k * w);
    }
    r
}

/// DPPS/DPPD: products of the lanes imm8[7:4] selects (others +0.0), summed pairwise
/// ((0+1)+(2+3) for singles), the sum written to the lanes imm8[3:0] selects (others +0.0).
/// The multiplies and the additions are two steps, each with MXCSR's rules of its own: an
/// unmasked IE/DE/ZE of a step records only those flags of that step, and an unmasked
/// exception of the multiplies stops before the additions (measured on the host: PE of a
/// product stays recorded when the sum of ∞ and -∞ raises an unmasked IE). `flags` gets
/// the flags to record, exactly.
fn dot<F: Fp>(a: u128, b: u128, imm: u8, mxcsr: u32, flags: &mut u32) -> u128 {
    let w = F::W;
    let n = 128 / w;
    let mask = u128::MAX >> (128 - w);
    let unmasked = !(mxcsr >> mx::MASK_SHIFT) & 0x3f;
    let step = |f: u32| {
        let pre = f & (mx::IE | mx::DE | mx::ZE);
        if pre & unmasked != 0 {
            pre
        } else {
            f
        }
    };
    let l = |v: u128, k: u32| (v >> (k * w)) & mask;
    let mut products = 0;
    let prods: Vec<u128> = (0..n)
        .map(|k| {
            if imm >> (4 + k) & 1 != 0 {
                fp::arith::<F>(Op::Mul, l(a, k), l(b, k), mxcsr, &mut products)
            } else {
                0
            }
        })
        .collect();
    *flags |= step(products);
    if products & unmasked != 0 {
        return 0;
    }
    let mut sums = 0;
    let mut add = |x: u128, y: u128| fp::arith::<F>(Op::Add, x, y, mxcsr, &mut sums);
    let sum = if n == 4 {
        let lo = add(prods[0], prods[1]);
        let hi = add(prods[2], prods[3]);
        add(lo, hi)
    } else {
        add(prods[0], prods[1])
    };
    *flags |= step(sums);
    (0..n).fold(0u128, |r, k| {
        if imm >> k & 1 != 0 {
            r | (sum & mask) << (k * w)
        } else {
            r
        }
    })
}

/// Lanes of DPPS (`single`) or DPPD.
pub(crate) fn dp(single: bool, a: u128, b: u128, imm: u8, mxcsr: u32, flags: &mut u32) -> u128 {
    if single {
        dot::<Single>(a, b, imm, mxcsr, flags)
    } else {
        dot::<Double>(a, b, imm, mxcsr, flags)
    }
}

fn handler(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let m = i.mnemonic();
    let b = match m {
        M::Roundss => u128::from(src_low(cpu, bus, i, 1, 4)?),
        M::Roundsd => u128::from(src_low(cpu, bus, i, 1, 8)?),
        _ => src128(cpu, bus, i, 1, true)?,
    };
    let (a, imm, mxcsr, mut flags) = (xmm(cpu, i, 0), i.immediate8(), cpu.s.x87.mxcsr, 0);
    let r = match m {
        M::Dpps | M::Dppd => {
            let r = dp(m == M::Dpps, a, b, imm, mxcsr, &mut flags);
            commit_exactly(cpu, flags)?;
            r
        }
        _ => {
            let r = round(m, a, b, imm, mxcsr, &mut flags);
            commit(cpu, flags)?;
            r
        }
    };
    set_xmm(cpu, i, 0, r);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(
        &[
            Code::Roundps_xmm_xmmm128_imm8,
            Code::Roundpd_xmm_xmmm128_imm8,
            Code::Roundss_xmm_xmmm32_imm8,
            Code::Roundsd_xmm_xmmm64_imm8,
            Code::Dpps_xmm_xmmm128_imm8,
            Code::Dppd_xmm_xmmm128_imm8,
        ],
        handler,
        Meta::plain(Isa::PentiumPro),
    );
}
