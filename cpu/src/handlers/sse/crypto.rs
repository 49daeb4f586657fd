//! AES-NI (AESENC, AESENCLAST, AESDEC, AESDECLAST, AESIMC, AESKEYGENASSIST), PCLMULQDQ
//! and the SHA extensions (SHA1RNDS4, SHA1NEXTE, SHA1MSG1/2, SHA256RNDS2, SHA256MSG1/2),
//! legacy SSE encodings. AES follows FIPS-197 with the state in the byte order the
//! instructions use (byte 4c+r is row r of column c); the S-box is derived from GF(2^8)
//! inversion and the affine map rather than typed in.

use super::ext::xmm_op;
use crate::cpuid::{ecx, leaf7};
use crate::fault::Exec;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic};
use Mnemonic as M;

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
const fn gmul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The AES S-box: multiplicative inverse (0 for 0) then the affine transformation.
const fn sbox_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // x^254 is the inverse of x.
        let mut inv = 1u8;
        let mut k = 0;
        while k < 254 {
            inv = gmul(inv, x as u8);
            k += 1;
        }
        if x == 0 {
            inv = 0;
        }
        t[x] = inv
            ^ inv.rotate_left(1)
            ^ inv.rotate_left(2)
            ^ inv.rotate_left(3)
            ^ inv.rotate_left(4)
            ^ 0x63;
        x += 1;
    }
    t
}

const fn inv_table(s: &[u8; 256]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        t[s[x] as usize] = x as u8;
        x += 1;
    }
    t
}

static SBOX: [u8; 256] = sbox_table();
static INV_SBOX: [u8; 256] = inv_table(&SBOX);

type State = [u8; 16];

fn sub_bytes(s: &mut State, table: &[u8; 256]) {
    for b in s.iter_mut() {
        *b = table[usize::from(*b)];
    }
}

/// Row r moves left by r columns (right when `inverse`).
fn shift_rows(s: &State, inverse: bool) -> State {
    let mut o = [0u8; 16];
    for c in 0..4 {
        for r in 0..4 {
            let from = if inverse {
                (c + 4 - r) % 4
            } else {
                (c + r) % 4
            };
            o[4 * c + r] = s[4 * from + r];
        }
    }
    o
}

/// MixColumns with coefficients (2 3 1 1), or InvMixColumns with (14 11 13 9).
fn mix_columns(s: &mut State, inverse: bool) {
    let k: [u8; 4] = if inverse {
        [14, 11, 13, 9]
    } else {
        [2, 3, 1, 1]
    };
    for c in 0..4 {
        let col = [s[4 * c], s[4 * c + 1], s[4 * c + 2], s[4 * c + 3]];
        for r in 0..4 {
            s[4 * c + r] = (0..4).fold(0, |acc, j| acc ^ gmul(k[(j + 4 - r) % 4], col[j]));
        }
    }
}

fn sub_word(w: u32) -> u32 {
    u32::from_le_bytes(w.to_le_bytes().map(|b| SBOX[usize::from(b)]))
}

/// The AES instructions on state `a` with round key (or source) `b`.
pub(crate) fn aes(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    let mut s: State = a.to_le_bytes();
    match m {
        M::Aesenc | M::Aesenclast => {
            s = shift_rows(&s, false);
            sub_bytes(&mut s, &SBOX);
            if m == M::Aesenc {
                mix_columns(&mut s, false);
            }
        }
        M::Aesdec | M::Aesdeclast => {
            s = shift_rows(&s, true);
            sub_bytes(&mut s, &INV_SBOX);
            if m == M::Aesdec {
                mix_columns(&mut s, true);
            }
        }
        M::Aesimc => {
            let mut t = b.to_le_bytes();
            mix_columns(&mut t, true);
            return Some(u128::from_le_bytes(t));
        }
        M::Aeskeygenassist => {
            let (x1, x3) = ((b >> 32) as u32, (b >> 96) as u32);
            let rcon = u32::from(imm);
            let (s1, s3) = (sub_word(x1), sub_word(x3));
            let words = [s1, s1.rotate_right(8) ^ rcon, s3, s3.rotate_right(8) ^ rcon];
            return Some(
                words
                    .iter()
                    .enumerate()
                    .fold(0, |r, (k, &w)| r | u128::from(w) << (32 * k)),
            );
        }
        _ => return None,
    }
    Some(u128::from_le_bytes(s) ^ b)
}

/// Carry-less product of two 64-bit values.
pub(crate) fn clmul(a: u64, b: u64) -> u128 {
    (0..64)
        .filter(|k| b >> k & 1 != 0)
        .fold(0u128, |r, k| r ^ u128::from(a) << k)
}

/// 32-bit lane `k` (0 = bits 31:0).
fn d(v: u128, k: u32) -> u32 {
    (v >> (32 * k)) as u32
}

/// Lanes from the most significant down: `[w3, w2, w1, w0]`.
fn from_hi(w: [u32; 4]) -> u128 {
    w.iter().fold(0u128, |r, &x| r << 32 | u128::from(x))
}

fn sha1rnds4(a: u128, b: u128, imm: u8) -> u128 {
    let (f, k): (fn(u32, u32, u32) -> u32, u32) = match imm & 3 {
        0 => (|b, c, d| (b & c) ^ (!b & d), 0x5a82_7999),
        1 => (|b, c, d| b ^ c ^ d, 0x6ed9_eba1),
        2 => (|b, c, d| (b & c) ^ (b & d) ^ (c & d), 0x8f1b_bcdc),
        _ => (|b, c, d| b ^ c ^ d, 0xca62_c1d6),
    };
    let (mut va, mut vb, mut vc, mut vd, mut ve) = (d(a, 3), d(a, 2), d(a, 1), d(a, 0), 0u32);
    for r in 0..4 {
        let w = d(b, 3 - r);
        let na = f(vb, vc, vd)
            .wrapping_add(va.rotate_left(5))
            .wrapping_add(w)
            .wrapping_add(ve)
            .wrapping_add(k);
        (ve, vd, vc, vb, va) = (vd, vc, vb.rotate_left(30), va, na);
    }
    from_hi([va, vb, vc, vd])
}

fn sha1(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    Some(match m {
        M::Sha1rnds4 => sha1rnds4(a, b, imm),
        M::Sha1nexte => {
            let t = d(a, 3).rotate_left(30);
            b & !(u128::from(u32::MAX) << 96) | u128::from(d(b, 3).wrapping_add(t)) << 96
        }
        M::Sha1msg1 => from_hi([
            d(a, 1) ^ d(a, 3),
            d(a, 0) ^ d(a, 2),
            d(b, 3) ^ d(a, 1),
            d(b, 2) ^ d(a, 0),
        ]),
        M::Sha1msg2 => {
            let w16 = (d(a, 3) ^ d(b, 2)).rotate_left(1);
            let w17 = (d(a, 2) ^ d(b, 1)).rotate_left(1);
            let w18 = (d(a, 1) ^ d(b, 0)).rotate_left(1);
            let w19 = (d(a, 0) ^ w16).rotate_left(1);
            from_hi([w16, w17, w18, w19])
        }
        _ => return None,
    })
}

fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ x >> 3
}
fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ x >> 10
}

fn sha256rnds2(a: u128, b: u128, x0: u128) -> u128 {
    let (mut va, mut vb, mut vc, mut vd) = (d(b, 3), d(b, 2), d(a, 3), d(a, 2));
    let (mut ve, mut vf, mut vg, mut vh) = (d(b, 1), d(b, 0), d(a, 1), d(a, 0));
    for k in 0..2 {
        let ch = (ve & vf) ^ (!ve & vg);
        let maj = (va & vb) ^ (va & vc) ^ (vb & vc);
        let s0 = va.rotate_right(2) ^ va.rotate_right(13) ^ va.rotate_right(22);
        let s1 = ve.rotate_right(6) ^ ve.rotate_right(11) ^ ve.rotate_right(25);
        let t = ch.wrapping_add(s1).wrapping_add(d(x0, k)).wrapping_add(vh);
        let na = t.wrapping_add(maj).wrapping_add(s0);
        let ne = t.wrapping_add(vd);
        (vh, vg, vf, ve, vd, vc, vb, va) = (vg, vf, ve, ne, vc, vb, va, na);
    }
    from_hi([va, vb, ve, vf])
}

fn sha256(m: Mnemonic, a: u128, b: u128, x0: u128) -> Option<u128> {
    Some(match m {
        M::Sha256rnds2 => sha256rnds2(a, b, x0),
        M::Sha256msg1 => from_hi([
            d(a, 3).wrapping_add(small_sigma0(d(b, 0))),
            d(a, 2).wrapping_add(small_sigma0(d(a, 3))),
            d(a, 1).wrapping_add(small_sigma0(d(a, 2))),
            d(a, 0).wrapping_add(small_sigma0(d(a, 1))),
        ]),
        M::Sha256msg2 => {
            let w16 = d(a, 0).wrapping_add(small_sigma1(d(b, 2)));
            let w17 = d(a, 1).wrapping_add(small_sigma1(d(b, 3)));
            let w18 = d(a, 2).wrapping_add(small_sigma1(w16));
            let w19 = d(a, 3).wrapping_add(small_sigma1(w17));
            from_hi([w19, w18, w17, w16])
        }
        _ => return None,
    })
}

/// Every instruction of this module: (mnemonic, destination, source, imm8, XMM0).
pub(crate) fn compute(m: Mnemonic, a: u128, b: u128, imm: u8, x0: u128) -> Option<u128> {
    match m {
        M::Pclmulqdq => {
            let x = (a >> (64 * u32::from(imm & 1))) as u64;
            let y = (b >> (64 * u32::from(imm >> 4 & 1))) as u64;
            Some(clmul(x, y))
        }
        M::Sha1rnds4 | M::Sha1nexte | M::Sha1msg1 | M::Sha1msg2 => sha1(m, a, b, imm),
        M::Sha256rnds2 | M::Sha256msg1 | M::Sha256msg2 => sha256(m, a, b, x0),
        _ => aes(m, a, b, imm),
    }
}

fn handler(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let has = match i.mnemonic() {
        M::Pclmulqdq => cpu.model.features_ecx & ecx::PCLMULQDQ != 0,
        M::Sha1rnds4
        | M::Sha1nexte
        | M::Sha1msg1
        | M::Sha1msg2
        | M::Sha256rnds2
        | M::Sha256msg1
        | M::Sha256msg2 => cpu.model.leaf7[0] & leaf7::EBX_SHA != 0,
        _ => cpu.model.features_ecx & ecx::AES != 0,
    };
    xmm_op(cpu, bus, i, has, true, compute)
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    t.add(
        &[
            C::Aesenc_xmm_xmmm128,
            C::Aesenclast_xmm_xmmm128,
            C::Aesdec_xmm_xmmm128,
            C::Aesdeclast_xmm_xmmm128,
            C::Aesimc_xmm_xmmm128,
            C::Aeskeygenassist_xmm_xmmm128_imm8,
            C::Pclmulqdq_xmm_xmmm128_imm8,
            C::Sha1rnds4_xmm_xmmm128_imm8,
            C::Sha1nexte_xmm_xmmm128,
            C::Sha1msg1_xmm_xmmm128,
            C::Sha1msg2_xmm_xmmm128,
            C::Sha256rnds2_xmm_xmmm128,
            C::Sha256msg1_xmm_xmmm128,
            C::Sha256msg2_xmm_xmmm128,
        ],
        handler,
        Meta::plain(Isa::PentiumPro),
    );
}
