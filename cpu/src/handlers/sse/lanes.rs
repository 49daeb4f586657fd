//! Pure lane arithmetic for the packed-integer and shuffle instructions on 128-bit values
//! (lane 0 in the low bits). Also used by the host comparison in `oracle`.

use iced_x86::Mnemonic;
use Mnemonic as M;

/// Apply `f` to each `w`-byte lane pair of `a` and `b` (lanes zero-extended to u64).
fn map(w: u32, a: u128, b: u128, f: impl Fn(u64, u64) -> u64) -> u128 {
    let bits = w * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut r = 0u128;
    for k in 0..16 / w {
        let sh = k * bits;
        let x = (a >> sh) as u64 & mask;
        let y = (b >> sh) as u64 & mask;
        r |= u128::from(f(x, y) & mask) << sh;
    }
    r
}

/// Lane `k` of width `w` bytes.
fn lane(v: u128, w: u32, k: u32) -> u64 {
    let bits = w * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (v >> (k * bits)) as u64 & mask
}

/// Sign-extend the low `w` bytes of `v`.
fn sx(v: u64, w: u32) -> i64 {
    let sh = 64 - w * 8;
    ((v << sh) as i64) >> sh
}

fn sat_s(v: i64, w: u32) -> u64 {
    let max = (1i64 << (w * 8 - 1)) - 1;
    v.clamp(-max - 1, max) as u64
}

fn sat_u(v: i64, w: u32) -> u64 {
    v.clamp(0, (1i64 << (w * 8)) - 1) as u64
}

/// Interleave the low (`high` = false) or high halves of the `w`-byte lanes of `a` and `b`.
fn unpack(w: u32, a: u128, b: u128, high: bool) -> u128 {
    let n = 16 / w;
    let base = if high { n / 2 } else { 0 };
    let bits = w * 8;
    let mut r = 0u128;
    for k in 0..n / 2 {
        r |= u128::from(lane(a, w, base + k)) << (2 * k * bits);
        r |= u128::from(lane(b, w, base + k)) << ((2 * k + 1) * bits);
    }
    r
}

/// Narrow the `w`-byte lanes of `a` then `b` to `w/2` bytes with `sat`.
fn pack(w: u32, a: u128, b: u128, sat: fn(i64, u32) -> u64) -> u128 {
    let n = 16 / w;
    let h = w / 2;
    let mut r = 0u128;
    for (k, v) in (0..n)
        .map(|k| lane(a, w, k))
        .chain((0..n).map(|k| lane(b, w, k)))
        .enumerate()
    {
        let mask = (1u64 << (h * 8)) - 1;
        r |= u128::from(sat(sx(v, w), h) & mask) << (k as u32 * h * 8);
    }
    r
}

/// Shift each `w`-byte lane of `a` by `count` (the whole 64-bit count: >= width clears, or
/// fills with the sign for arithmetic shifts).
fn shift(w: u32, a: u128, count: u64, kind: u8) -> u128 {
    let bits = u64::from(w * 8);
    map(w, a, 0, |x, _| match kind {
        0 if count < bits => x << count,
        1 if count < bits => x >> count,
        2 => (sx(x, w) >> count.min(bits - 1)) as u64,
        _ => 0,
    })
}

/// Dword shuffle: lane k of the result is lane `imm[2k+1:2k]` of `src`.
fn shuf32(src: u128, imm: u8) -> u128 {
    let mut r = 0u128;
    for k in 0..4 {
        let s = u32::from(imm >> (2 * k)) & 3;
        r |= u128::from(lane(src, 4, s)) << (32 * k);
    }
    r
}

/// Shuffle the four words of the 64-bit half `half` of `src`, keeping the other half.
fn shuf16(src: u128, imm: u8, half: u32) -> u128 {
    let mut r = src & !(u128::from(u64::MAX) << (64 * half));
    for k in 0..4 {
        let s = u32::from(imm >> (2 * k)) & 3;
        r |= u128::from(lane(src, 2, 4 * half + s)) << (16 * (4 * half + k));
    }
    r
}

fn sad(a: u128, b: u128) -> u128 {
    let mut r = 0u128;
    for half in 0..2 {
        let s: u64 = (0..8)
            .map(|k| lane(a, 1, half * 8 + k).abs_diff(lane(b, 1, half * 8 + k)))
            .sum();
        r |= u128::from(s) << (64 * half);
    }
    r
}

fn madd(a: u128, b: u128) -> u128 {
    let mut r = 0u128;
    for k in 0..4 {
        let p = |j: u32| (sx(lane(a, 2, j), 2) * sx(lane(b, 2, j), 2)) as i32;
        let s = p(2 * k).wrapping_add(p(2 * k + 1));
        r |= u128::from(s as u32) << (32 * k);
    }
    r
}

fn arith(m: Mnemonic, a: u128, b: u128) -> Option<u128> {
    let add_s = |w| move |x, y| sat_s(sx(x, w) + sx(y, w), w);
    let sub_s = |w| move |x, y| sat_s(sx(x, w) - sx(y, w), w);
    let add_u = |w| move |x: u64, y: u64| sat_u(x as i64 + y as i64, w);
    let sub_u = |w| move |x: u64, y: u64| sat_u(x as i64 - y as i64, w);
    let eq = |x, y| if x == y { u64::MAX } else { 0 };
    let gt = |w| move |x, y| if sx(x, w) > sx(y, w) { u64::MAX } else { 0 };
    Some(match m {
        M::Paddb => map(1, a, b, u64::wrapping_add),
        M::Paddw => map(2, a, b, u64::wrapping_add),
        M::Paddd => map(4, a, b, u64::wrapping_add),
        M::Paddq => map(8, a, b, u64::wrapping_add),
        M::Psubb => map(1, a, b, u64::wrapping_sub),
        M::Psubw => map(2, a, b, u64::wrapping_sub),
        M::Psubd => map(4, a, b, u64::wrapping_sub),
        M::Psubq => map(8, a, b, u64::wrapping_sub),
        M::Paddsb => map(1, a, b, add_s(1)),
        M::Paddsw => map(2, a, b, add_s(2)),
        M::Psubsb => map(1, a, b, sub_s(1)),
        M::Psubsw => map(2, a, b, sub_s(2)),
        M::Paddusb => map(1, a, b, add_u(1)),
        M::Paddusw => map(2, a, b, add_u(2)),
        M::Psubusb => map(1, a, b, sub_u(1)),
        M::Psubusw => map(2, a, b, sub_u(2)),
        M::Pcmpeqb => map(1, a, b, eq),
        M::Pcmpeqw => map(2, a, b, eq),
        M::Pcmpeqd => map(4, a, b, eq),
        M::Pcmpgtb => map(1, a, b, gt(1)),
        M::Pcmpgtw => map(2, a, b, gt(2)),
        M::Pcmpgtd => map(4, a, b, gt(4)),
        M::Pmullw => map(2, a, b, u64::wrapping_mul),
        M::Pmulhw => map(2, a, b, |x, y| ((sx(x, 2) * sx(y, 2)) >> 16) as u64),
        M::Pmulhuw => map(2, a, b, |x, y| (x * y) >> 16),
        M::Pmuludq => map(8, a, b, |x, y| (x & 0xffff_ffff) * (y & 0xffff_ffff)),
        M::Pmaddwd => madd(a, b),
        M::Pavgb => map(1, a, b, |x, y| (x + y + 1) >> 1),
        M::Pavgw => map(2, a, b, |x, y| (x + y + 1) >> 1),
        M::Pminub => map(1, a, b, u64::min),
        M::Pmaxub => map(1, a, b, u64::max),
        M::Pminsw => map(2, a, b, |x, y| if sx(x, 2) < sx(y, 2) { x } else { y }),
        M::Pmaxsw => map(2, a, b, |x, y| if sx(x, 2) > sx(y, 2) { x } else { y }),
        M::Psadbw => sad(a, b),
        _ => return None,
    })
}

fn movement(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    let count = b as u64;
    Some(match m {
        M::Pand | M::Andps | M::Andpd => a & b,
        M::Pandn | M::Andnps | M::Andnpd => !a & b,
        M::Por | M::Orps | M::Orpd => a | b,
        M::Pxor | M::Xorps | M::Xorpd => a ^ b,
        M::Punpcklbw => unpack(1, a, b, false),
        M::Punpcklwd => unpack(2, a, b, false),
        M::Punpckldq | M::Unpcklps => unpack(4, a, b, false),
        M::Punpcklqdq | M::Unpcklpd => unpack(8, a, b, false),
        M::Punpckhbw => unpack(1, a, b, true),
        M::Punpckhwd => unpack(2, a, b, true),
        M::Punpckhdq | M::Unpckhps => unpack(4, a, b, true),
        M::Punpckhqdq | M::Unpckhpd => unpack(8, a, b, true),
        M::Packsswb => pack(2, a, b, sat_s),
        M::Packssdw => pack(4, a, b, sat_s),
        M::Packuswb => pack(2, a, b, sat_u),
        M::Psllw => shift(2, a, count, 0),
        M::Pslld => shift(4, a, count, 0),
        M::Psllq => shift(8, a, count, 0),
        M::Psrlw => shift(2, a, count, 1),
        M::Psrld => shift(4, a, count, 1),
        M::Psrlq => shift(8, a, count, 1),
        M::Psraw => shift(2, a, count, 2),
        M::Psrad => shift(4, a, count, 2),
        M::Pslldq => a.checked_shl(u32::from(imm) * 8).unwrap_or(0),
        M::Psrldq => a.checked_shr(u32::from(imm) * 8).unwrap_or(0),
        M::Pshufd => shuf32(b, imm),
        M::Pshuflw => shuf16(b, imm, 0),
        M::Pshufhw => shuf16(b, imm, 1),
        M::Shufps => shuf32(a, imm) & u128::from(u64::MAX) | shuf32(b, imm) >> 64 << 64,
        M::Shufpd => {
            let pick = |v: u128, bit: u8| lane(v, 8, u32::from(imm >> bit) & 1);
            u128::from(pick(a, 0)) | u128::from(pick(b, 1)) << 64
        }
        _ => return None,
    })
}

/// Result of the two-operand packed-integer, bitwise, unpack, pack, shift and shuffle
/// instruction `m` with destination `a`, source `b` (the shift count for shift forms) and
/// immediate `imm`; `None` when `m` is not one of them.
#[must_use]
pub(crate) fn binop(m: Mnemonic, a: u128, b: u128, imm: u8) -> Option<u128> {
    arith(m, a, b).or_else(|| movement(m, a, b, imm))
}

/// The mnemonics `binop` computes (SSE and SSE2 only).
pub(crate) const BINOPS: &[Mnemonic] = &[
    M::Paddb,
    M::Paddw,
    M::Paddd,
    M::Paddq,
    M::Psubb,
    M::Psubw,
    M::Psubd,
    M::Psubq,
    M::Paddsb,
    M::Paddsw,
    M::Psubsb,
    M::Psubsw,
    M::Paddusb,
    M::Paddusw,
    M::Psubusb,
    M::Psubusw,
    M::Pcmpeqb,
    M::Pcmpeqw,
    M::Pcmpeqd,
    M::Pcmpgtb,
    M::Pcmpgtw,
    M::Pcmpgtd,
    M::Pmullw,
    M::Pmulhw,
    M::Pmulhuw,
    M::Pmuludq,
    M::Pmaddwd,
    M::Pavgb,
    M::Pavgw,
    M::Pminub,
    M::Pmaxub,
    M::Pminsw,
    M::Pmaxsw,
    M::Psadbw,
    M::Pand,
    M::Andps,
    M::Andpd,
    M::Pandn,
    M::Andnps,
    M::Andnpd,
    M::Por,
    M::Orps,
    M::Orpd,
    M::Pxor,
    M::Xorps,
    M::Xorpd,
    M::Punpcklbw,
    M::Punpcklwd,
    M::Punpckldq,
    M::Unpcklps,
    M::Punpcklqdq,
    M::Unpcklpd,
    M::Punpckhbw,
    M::Punpckhwd,
    M::Punpckhdq,
    M::Unpckhps,
    M::Punpckhqdq,
    M::Unpckhpd,
    M::Packsswb,
    M::Packssdw,
    M::Packuswb,
    M::Psllw,
    M::Pslld,
    M::Psllq,
    M::Psrlw,
    M::Psrld,
    M::Psrlq,
    M::Psraw,
    M::Psrad,
    M::Pslldq,
    M::Psrldq,
    M::Pshufd,
    M::Pshuflw,
    M::Pshufhw,
    M::Shufps,
    M::Shufpd,
];
