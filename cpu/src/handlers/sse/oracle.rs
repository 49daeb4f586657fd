//! Host comparison: every `lanes::binop` mnemonic run natively on this x86-64 CPU with
//! random operands (and a spread of immediates and shift counts), compared bit for bit.

#![cfg(target_arch = "x86_64")]

use super::lanes::{binop, BINOPS};
use iced_x86::Mnemonic;
use Mnemonic as M;

/// `ins xmm0, xmm1` (with an optional trailing immediate) on the host, xmm0 = a, xmm1 = b.
macro_rules! host {
    ($ins:expr, $a:expr, $b:expr) => {{
        let mut a: u128 = $a;
        let b: u128 = $b;
        // SAFETY: reads and writes only the two locals; clobbers are declared.
        unsafe {
            core::arch::asm!(
                "movdqu xmm0, [{pa}]",
                "movdqu xmm1, [{pb}]",
                $ins,
                "movdqu [{pa}], xmm0",
                pa = in(reg) &mut a as *mut u128,
                pb = in(reg) &b as *const u128,
                out("xmm0") _,
                out("xmm1") _,
                options(nostack),
            );
        }
        a
    }};
}

macro_rules! two {
    ($m:expr, $a:expr, $b:expr; $($name:ident),* $(,)?) => {
        match $m {
            $(M::$name => Some(host!(concat!(stringify!($name), " xmm0, xmm1"), $a, $b)),)*
            _ => None,
        }
    };
}

/// `name xmm0, xmm1, imm` (`$sep` = ", xmm1, ") or `name xmm0, imm` for each listed immediate.
macro_rules! imm_forms {
    ($m:expr, $imm:expr, $a:expr, $b:expr, $name:ident, $sep:literal; $($i:literal),*) => {
        if $m == M::$name {
            match $imm {
                $($i => return Some(host!(
                    concat!(stringify!($name), " xmm0", $sep, stringify!($i)), $a, $b)),)*
                _ => return None,
            }
        }
    };
}

const IMMS: [u8; 8] = [0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93];
const BYTE_SHIFTS: [u8; 7] = [0, 1, 3, 8, 15, 16, 255];

pub(super) fn native(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    two!(m, a, b;
        Paddb, Paddw, Paddd, Paddq, Psubb, Psubw, Psubd, Psubq, Paddsb, Paddsw, Psubsb,
        Psubsw, Paddusb, Paddusw, Psubusb, Psubusw, Pcmpeqb, Pcmpeqw, Pcmpeqd, Pcmpgtb,
        Pcmpgtw, Pcmpgtd, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd, Pavgb, Pavgw, Pminub,
        Pmaxub, Pminsw, Pmaxsw, Psadbw, Pand, Andps, Andpd, Pandn, Andnps, Andnpd, Por, Orps,
        Orpd, Pxor, Xorps, Xorpd, Punpcklbw, Punpcklwd, Punpckldq, Unpcklps, Punpcklqdq,
        Unpcklpd, Punpckhbw, Punpckhwd, Punpckhdq, Unpckhps, Punpckhqdq, Unpckhpd, Packsswb,
        Packssdw, Packuswb, Psllw, Pslld, Psllq, Psrlw, Psrld, Psrlq, Psraw, Psrad)
    .or_else(|| imm_native(m, a, b, imm))
}

fn imm_native(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    imm_forms!(m, imm, a, b, Pshufd, ", xmm1, "; 0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93);
    imm_forms!(m, imm, a, b, Pshuflw, ", xmm1, "; 0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93);
    imm_forms!(m, imm, a, b, Pshufhw, ", xmm1, "; 0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93);
    imm_forms!(m, imm, a, b, Shufps, ", xmm1, "; 0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93);
    imm_forms!(m, imm, a, b, Shufpd, ", xmm1, "; 0x00, 0x1b, 0x4e, 0xe4, 0x39, 0xb1, 0xff, 0x93);
    imm_forms!(m, imm, a, b, Pslldq, ", "; 0, 1, 3, 8, 15, 16, 255);
    imm_forms!(m, imm, a, b, Psrldq, ", "; 0, 1, 3, 8, 15, 16, 255);
    None
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Random 128 bits biased towards lane boundary values.
    fn operand(&mut self) -> u128 {
        let r = u128::from(self.next()) | u128::from(self.next()) << 64;
        match self.next() % 4 {
            0 => {
                r & 0x8080_7f7f_ffff_0000_8000_7fff_0101_fefe
                    | 0x0080_8000_7f00_ff00_0000_8000_8000_ff7f
            }
            1 => !r & u128::from(self.next()),
            _ => r,
        }
    }
}

#[test]
fn packed_integer_ops_match_the_host() {
    let mut rng = Rng(0x5eed_1234_abcd_0077);
    let mut checked = 0u32;
    for &m in BINOPS {
        for n in 0..400 {
            let a = rng.operand();
            let mut b = rng.operand();
            // Shift forms read a 64-bit count: mostly small ones, some huge.
            if matches!(
                m,
                M::Psllw
                    | M::Pslld
                    | M::Psllq
                    | M::Psrlw
                    | M::Psrld
                    | M::Psrlq
                    | M::Psraw
                    | M::Psrad
            ) && n % 4 != 0
            {
                b = b & !u128::from(u64::MAX) | u128::from(rng.next() % 70);
            }
            let imm = if m == M::Pslldq || m == M::Psrldq {
                BYTE_SHIFTS[n % BYTE_SHIFTS.len()]
            } else {
                IMMS[n % IMMS.len()]
            };
            let want = native(m, a, b, imm).unwrap_or_else(|| panic!("{m:?} has no host form"));
            let got = binop(m, a, b, imm).unwrap_or_else(|| panic!("{m:?} not computed"));
            assert_eq!(got, want, "{m:?} a={a:#034x} b={b:#034x} imm={imm:#x}");
            checked += 1;
        }
    }
    println!("{checked} packed-integer results matched the host");
}

/// `ins mm0, mm1` (with optional immediate) on the host, mm0 = a, mm1 = b; EMMS after.
macro_rules! host_mm {
    ($ins:expr, $a:expr, $b:expr) => {{
        let mut a: u64 = $a;
        let b: u64 = $b;
        // SAFETY: reads and writes only the two locals; MMX/x87 state is clobbered and
        // released with EMMS.
        unsafe {
            core::arch::asm!(
                "movq mm0, [{pa}]",
                "movq mm1, [{pb}]",
                $ins,
                "movq [{pa}], mm0",
                "emms",
                pa = in(reg) &mut a as *mut u64,
                pb = in(reg) &b as *const u64,
                clobber_abi("C"),
            );
        }
        a
    }};
}

macro_rules! two_mm {
    ($m:expr, $a:expr, $b:expr; $($name:ident),* $(,)?) => {
        match $m {
            $(M::$name => Some(host_mm!(concat!(stringify!($name), " mm0, mm1"), $a, $b)),)*
            _ => None,
        }
    };
}

fn native_mm(m: Mnemonic, a: u64, b: u64, imm: u8) -> Option<u64> {
    if m == M::Pshufw {
        return Some(match imm {
            0x1b => host_mm!("pshufw mm0, mm1, 0x1b", a, b),
            0x4e => host_mm!("pshufw mm0, mm1, 0x4e", a, b),
            0x39 => host_mm!("pshufw mm0, mm1, 0x39", a, b),
            _ => host_mm!("pshufw mm0, mm1, 0xd2", a, b),
        });
    }
    two_mm!(m, a, b;
        Paddb, Paddw, Paddd, Paddq, Psubb, Psubw, Psubd, Psubq, Paddsb, Paddsw, Psubsb,
        Psubsw, Paddusb, Paddusw, Psubusb, Psubusw, Pcmpeqb, Pcmpeqw, Pcmpeqd, Pcmpgtb,
        Pcmpgtw, Pcmpgtd, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd, Pavgb, Pavgw, Pminub,
        Pmaxub, Pminsw, Pmaxsw, Psadbw, Pand, Pandn, Por, Pxor, Punpcklbw, Punpcklwd,
        Punpckldq, Punpckhbw, Punpckhwd, Punpckhdq, Packsswb, Packssdw, Packuswb, Psllw,
        Pslld, Psllq, Psrlw, Psrld, Psrlq, Psraw, Psrad)
}

#[test]
fn mmx_ops_match_the_host() {
    use super::mmx::binop64;
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut checked = 0;
    let forms: Vec<Mnemonic> = BINOPS
        .iter()
        .copied()
        .chain([M::Pshufw])
        .filter(|&m| native_mm(m, 0, 0, 0x1b).is_some())
        .collect();
    assert!(forms.len() >= 56, "{} MMX forms", forms.len());
    for m in forms {
        for n in 0..400 {
            let a = rng.operand() as u64;
            let mut b = (rng.operand() >> 64) as u64;
            if n % 2 == 0 && format!("{m:?}").starts_with("Ps") && m != M::Psubb {
                b = rng.next() % 70;
            }
            let imm = [0x1b, 0x4e, 0x39, 0xd2][n % 4];
            let want = native_mm(m, a, b, imm).unwrap_or_default();
            assert_eq!(
                binop64(m, a, b, imm),
                Some(want),
                "{m:?} a={a:#x} b={b:#x} imm={imm:#x}"
            );
            checked += 1;
        }
    }
    println!("{checked} MMX results matched the host");
}
