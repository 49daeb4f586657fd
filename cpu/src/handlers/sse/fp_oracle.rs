//! Host comparison for SSE floating point: arithmetic, compares and conversions run natively
//! under random MXCSR rounding/DAZ/FTZ settings (all exceptions masked, so the host never
//! traps) on operands biased towards special values; results and MXCSR flags compared.

#![cfg(target_arch = "x86_64")]

use super::convert::convert;
use super::float::compute;
use iced_x86::{Code, Mnemonic};
use Mnemonic as M;

/// `ins` with xmm0 = a, xmm1 = b under `mxcsr`; returns (xmm0, MXCSR after).
macro_rules! host {
    ($ins:expr, $a:expr, $b:expr, $mxcsr:expr) => {{
        let mut a: u128 = $a;
        let b: u128 = $b;
        let mut m: u32 = $mxcsr;
        let mut saved = 0u32;
        // SAFETY: touches only these locals; MXCSR is restored before the block ends.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{ps}]",
                "ldmxcsr [{pm}]",
                "movdqu xmm0, [{pa}]",
                "movdqu xmm1, [{pb}]",
                $ins,
                "movdqu [{pa}], xmm0",
                "stmxcsr [{pm}]",
                "ldmxcsr [{ps}]",
                pa = in(reg) &mut a as *mut u128,
                pb = in(reg) &b as *const u128,
                pm = in(reg) &mut m as *mut u32,
                ps = in(reg) &mut saved as *mut u32,
                out("xmm0") _,
                out("xmm1") _,
                options(nostack),
            );
        }
        (a, m)
    }};
}

macro_rules! ops {
    ($m:expr, $a:expr, $b:expr, $mx:expr; $($name:ident),* $(,)?) => {
        match $m {
            $(M::$name => Some(host!(concat!(stringify!($name), " xmm0, xmm1"), $a, $b, $mx)),)*
            _ => None,
        }
    };
}

const ARITH: &[Mnemonic] = &[
    M::Addps,
    M::Addss,
    M::Addpd,
    M::Addsd,
    M::Subps,
    M::Subss,
    M::Subpd,
    M::Subsd,
    M::Mulps,
    M::Mulss,
    M::Mulpd,
    M::Mulsd,
    M::Divps,
    M::Divss,
    M::Divpd,
    M::Divsd,
    M::Minps,
    M::Minss,
    M::Minpd,
    M::Minsd,
    M::Maxps,
    M::Maxss,
    M::Maxpd,
    M::Maxsd,
    M::Sqrtps,
    M::Sqrtss,
    M::Sqrtpd,
    M::Sqrtsd,
];

pub(super) fn native(m: Mnemonic, a: u128, b: u128, mx: u32) -> Option<(u128, u32)> {
    ops!(m, a, b, mx;
        Addps, Addss, Addpd, Addsd, Subps, Subss, Subpd, Subsd, Mulps, Mulss, Mulpd, Mulsd,
        Divps, Divss, Divpd, Divsd, Minps, Minss, Minpd, Minsd, Maxps, Maxss, Maxpd, Maxsd,
        Sqrtps, Sqrtss, Sqrtpd, Sqrtsd, Cvtss2sd, Cvtsd2ss, Cvtps2pd, Cvtpd2ps, Cvtdq2pd,
        Cvtdq2ps, Cvtps2dq, Cvttps2dq, Cvtpd2dq, Cvttpd2dq)
}

fn native_cmp(m: Mnemonic, p: u8, a: u128, b: u128, mx: u32) -> (u128, u32) {
    macro_rules! preds {
        ($name:ident) => {
            match p {
                0 => host!(concat!(stringify!($name), " xmm0, xmm1, 0"), a, b, mx),
                1 => host!(concat!(stringify!($name), " xmm0, xmm1, 1"), a, b, mx),
                2 => host!(concat!(stringify!($name), " xmm0, xmm1, 2"), a, b, mx),
                3 => host!(concat!(stringify!($name), " xmm0, xmm1, 3"), a, b, mx),
                4 => host!(concat!(stringify!($name), " xmm0, xmm1, 4"), a, b, mx),
                5 => host!(concat!(stringify!($name), " xmm0, xmm1, 5"), a, b, mx),
                6 => host!(concat!(stringify!($name), " xmm0, xmm1, 6"), a, b, mx),
                _ => host!(concat!(stringify!($name), " xmm0, xmm1, 7"), a, b, mx),
            }
        };
    }
    match m {
        M::Cmpps => preds!(cmpps),
        M::Cmpss => preds!(cmpss),
        M::Cmppd => preds!(cmppd),
        _ => preds!(cmpsd),
    }
}

pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn single(&mut self) -> u128 {
        let r = self.next() as u32;
        let s = r & 0x8000_0000;
        u128::from(match self.next() % 12 {
            0 => s,
            1 => s | 0x7f80_0000,
            2 => s | (r & 0x007f_ffff),
            3 => s | 0x7fc0_0000 | (r & 0xff),
            4 => s | 0x7f80_0001 | (r & 0x003f_ff00),
            5 => s | 0x3f80_0000,
            6 => s | 0x0080_0000 | (r & 0x7),
            7 => s | 0x7f7f_ffff,
            8 => s | (r & 0x01ff_ffff),
            9 => r & 0x8fff_ffff | 0x3000_0000,
            _ => r,
        })
    }
    fn double(&mut self) -> u128 {
        let r = self.next();
        let s = r & 1 << 63;
        u128::from(match self.next() % 12 {
            0 => s,
            1 => s | 0x7ff0_0000_0000_0000,
            2 => s | (r & 0x000f_ffff_ffff_ffff),
            3 => s | 0x7ff8_0000_0000_0000 | (r & 0xff),
            4 => s | 0x7ff0_0000_0000_0001 | (r & 0x0007_ffff_0000_0000),
            5 => s | 0x3ff0_0000_0000_0000,
            6 => s | 0x0010_0000_0000_0000 | (r & 0x7),
            7 => s | 0x7fef_ffff_ffff_ffff,
            8 => s | (r & 0x003f_ffff_ffff_ffff),
            9 => r & 0x8fff_ffff_ffff_ffff | 0x3000_0000_0000_0000,
            10 => s | 0x4000_0000_0000_0000 | (r & 0x000f_ffff_ffff_ffff),
            _ => r,
        })
    }
    pub(super) fn operand(&mut self, dbl: bool) -> u128 {
        if dbl {
            self.double() | self.double() << 64
        } else {
            (0..4).fold(0, |v, k| v | self.single() << (32 * k))
        }
    }
    /// All exceptions masked; random rounding, DAZ, FTZ and sticky flags.
    pub(super) fn mxcsr(&mut self) -> u32 {
        let r = self.next() as u32;
        0x1f80 | (r & 0x6000) | (r & 0x8040) | ((r >> 16) & 0x3f)
    }
}

fn is_double(m: Mnemonic) -> bool {
    let s = format!("{m:?}");
    s.ends_with('d')
}

#[test]
fn float_arith_and_compares_match_the_host() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let mut n = 0u32;
    for &m in ARITH
        .iter()
        .chain(&[M::Cmpps, M::Cmpss, M::Cmppd, M::Cmpsd])
    {
        let dbl = is_double(m);
        for k in 0..3000 {
            let (a, b, mx) = (rng.operand(dbl), rng.operand(dbl), rng.mxcsr());
            let p = (k % 8) as u8;
            let (want, want_mx) = if ARITH.contains(&m) {
                native(m, a, b, mx).unwrap_or_else(|| panic!("{m:?}: no host form"))
            } else {
                native_cmp(m, p, a, b, mx)
            };
            let mut flags = 0;
            let got = compute(m, a, b, p, mx, &mut flags);
            assert_eq!(
                (got, mx | flags),
                (want, want_mx),
                "{m:?} p={p} a={a:#034x} b={b:#034x} mxcsr={mx:#x}"
            );
            n += 1;
        }
    }
    println!("{n} floating-point results matched the host");
}

#[test]
fn conversions_match_the_host() {
    use Code as C;
    let forms = [
        (M::Cvtss2sd, C::Cvtss2sd_xmm_xmmm32, false),
        (M::Cvtsd2ss, C::Cvtsd2ss_xmm_xmmm64, true),
        (M::Cvtps2pd, C::Cvtps2pd_xmm_xmmm64, false),
        (M::Cvtpd2ps, C::Cvtpd2ps_xmm_xmmm128, true),
        (M::Cvtdq2pd, C::Cvtdq2pd_xmm_xmmm64, false),
        (M::Cvtdq2ps, C::Cvtdq2ps_xmm_xmmm128, false),
        (M::Cvtps2dq, C::Cvtps2dq_xmm_xmmm128, false),
        (M::Cvttps2dq, C::Cvttps2dq_xmm_xmmm128, false),
        (M::Cvtpd2dq, C::Cvtpd2dq_xmm_xmmm128, true),
        (M::Cvttpd2dq, C::Cvttpd2dq_xmm_xmmm128, true),
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for (m, c, dbl) in forms {
        for k in 0..3000 {
            let (a, mx) = (rng.operand(dbl), rng.mxcsr());
            // Integer sources: random dwords, sometimes float patterns.
            let b = if k % 3 == 0 && matches!(m, M::Cvtdq2pd | M::Cvtdq2ps) {
                u128::from(rng.next()) | u128::from(rng.next()) << 64
            } else {
                rng.operand(dbl)
            };
            let (want, want_mx) = native(m, a, b, mx).unwrap_or_else(|| panic!("{m:?}"));
            let mut flags = 0;
            let got = convert(c, a, b, mx, &mut flags);
            assert_eq!(
                (got, mx | flags),
                (want, want_mx),
                "{m:?} a={a:#034x} b={b:#034x} mxcsr={mx:#x}"
            );
        }
    }
}

/// `ins` with xmm1 = b and rax = r under `mxcsr`; returns (rax, xmm0, MXCSR, RFLAGS).
macro_rules! host_gpr {
    ($ins:expr, $a:expr, $b:expr, $r:expr, $mxcsr:expr) => {{
        let mut a: u128 = $a;
        let b: u128 = $b;
        let mut r: u64 = $r;
        let mut m: u32 = $mxcsr;
        let mut saved = 0u32;
        let fl: u64;
        // SAFETY: touches only these locals; MXCSR is restored before the block ends.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{ps}]",
                "ldmxcsr [{pm}]",
                "movdqu xmm0, [{pa}]",
                "movdqu xmm1, [{pb}]",
                $ins,
                "pushfq",
                "pop {fl}",
                "movdqu [{pa}], xmm0",
                "stmxcsr [{pm}]",
                "ldmxcsr [{ps}]",
                pa = in(reg) &mut a as *mut u128,
                pb = in(reg) &b as *const u128,
                pm = in(reg) &mut m as *mut u32,
                ps = in(reg) &mut saved as *mut u32,
                fl = out(reg) fl,
                inout("rax") r,
                out("xmm0") _,
                out("xmm1") _,
            );
        }
        (r, a, m, fl)
    }};
}

/// ZF, PF, CF as (U)COMIS leaves them, from `fp::comi`'s 0bZPC.
fn comi_flags(zpc: u8) -> u64 {
    u64::from(zpc & 4) << 4 | u64::from(zpc & 2) << 1 | u64::from(zpc & 1)
}

#[test]
fn scalar_integer_conversions_and_comis_match_the_host() {
    use super::fp::{comi, from_int, to_int};
    use rustc_apfloat::ieee::{Double, Single};
    let mut rng = Rng(0x7777_1234_0000_beef);
    for k in 0..4000u32 {
        let mx = rng.mxcsr();
        let (s, d, s2, d2) = (rng.single(), rng.double(), rng.single(), rng.double());
        let v = rng.next();
        let iv = match k % 4 {
            0 => v,
            1 => (v as i32) as i64 as u64,
            2 => (v >> 40) as i64 as u64,
            _ => (v as i64).wrapping_neg() as u64,
        };
        let mut f = [0u32; 8];
        let ours = [
            to_int::<Single>(s, 32, false, mx, &mut f[0]),
            to_int::<Single>(s, 64, true, mx, &mut f[1]),
            to_int::<Double>(d, 64, false, mx, &mut f[2]),
            to_int::<Double>(d, 32, true, mx, &mut f[3]),
            from_int::<Single>(iv as i64, mx, &mut f[4]) as u64,
            from_int::<Double>(iv as i64, mx, &mut f[5]) as u64,
            comi_flags(comi::<Single>(s, s2, false, mx, &mut f[6])),
            comi_flags(comi::<Double>(d, d2, true, mx, &mut f[7])),
        ];
        let host = [
            host_gpr!("cvtss2si eax, xmm1", 0, s, 0, mx),
            host_gpr!("cvttss2si rax, xmm1", 0, s, 0, mx),
            host_gpr!("cvtsd2si rax, xmm1", 0, d, 0, mx),
            host_gpr!("cvttsd2si eax, xmm1", 0, d, 0, mx),
            host_gpr!("cvtsi2ss xmm0, rax", 0, 0, iv, mx),
            host_gpr!("cvtsi2sd xmm0, rax", 0, 0, iv, mx),
            host_gpr!("comiss xmm0, xmm1", s, s2, 0, mx),
            host_gpr!("ucomisd xmm0, xmm1", d, d2, 0, mx),
        ];
        for (n, (&got, &(r, x, m, fl))) in ours.iter().zip(&host).enumerate() {
            let want = match n {
                0..=3 => r,
                4 | 5 => x as u64,
                // OF, SF, AF cleared; ZF, PF, CF from the comparison.
                _ => fl & 0x8d5,
            };
            assert_eq!(
                (got, mx | f[n]),
                (want, m),
                "form {n}: s={s:#x} d={d:#x} s2={s2:#x} d2={d2:#x} i={iv:#x} mxcsr={mx:#x}"
            );
        }
    }
}

/// RCPPS/RSQRTPS: the host's table-based values are approximations, so finite nonzero
/// results are checked against Intel's bound (|relative error| <= 1.5 * 2^-12) and
/// everything else (zeros, infinities, NaNs, flushes) bit for bit; MXCSR never changes.
#[test]
fn reciprocal_approximations_within_intel_bounds() {
    let mut rng = Rng(0xabcd_ef01_2345_6789);
    for m in [M::Rcpps, M::Rsqrtps] {
        for _ in 0..3000 {
            let (b, mx) = (rng.operand(false), rng.mxcsr());
            let (want, want_mx) = if m == M::Rcpps {
                host!("rcpps xmm0, xmm1", 0, b, mx)
            } else {
                host!("rsqrtps xmm0, xmm1", 0, b, mx)
            };
            let mut flags = 0;
            let got = compute(m, 0, b, 0, mx, &mut flags);
            assert_eq!((flags, want_mx), (0, mx));
            for k in 0..4 {
                let g = (got >> (32 * k)) as u32;
                let w = (want >> (32 * k)) as u32;
                let (gf, wf) = (f32::from_bits(g), f32::from_bits(w));
                if wf.is_finite() && wf != 0.0 && gf.is_finite() && gf != 0.0 {
                    let err = ((f64::from(gf) - f64::from(wf)) / f64::from(wf)).abs();
                    assert!(
                        err <= 3.0 * 2f64.powi(-12),
                        "{m:?} {b:#x} lane {k}: {g:#x} vs {w:#x}"
                    );
                } else {
                    assert_eq!(g, w, "{m:?} b={b:#x} lane {k}");
                }
            }
        }
    }
}
