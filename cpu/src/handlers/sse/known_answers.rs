//! Known answers for the crypto and string instructions, each computed through the
//! interpreter: AES-128 (FIPS-197 appendix C.1, with AESKEYGENASSIST key expansion and the
//! AESIMC inverse cipher), SHA-1 and SHA-256 of "abc" (FIPS 180 examples) with the SHA
//! instructions, PCLMULQDQ products and PCMPISTRI string searches.

#![cfg(target_arch = "x86_64")]

use super::isa_tests::{interp, op, St};
use crate::handlers::isa_tests::max_cpu;
use iced_x86::Mnemonic as M;

fn be_block(bytes: &[u8]) -> u128 {
    u128::from_le_bytes(bytes.try_into().unwrap_or_default())
}

#[test]
fn aes128_fips197_appendix_c1() {
    let key = be_block(&(0u8..16).collect::<Vec<u8>>());
    let plain = be_block(&[
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);
    let cipher = be_block(&[
        0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5,
        0x5a,
    ]);
    // Key expansion with AESKEYGENASSIST (the dword it returns in bits 127:96).
    let mut keys = vec![key];
    for rcon in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36] {
        let k = *keys.last().unwrap_or(&0);
        let t = op(M::Aeskeygenassist, 0, k, rcon, 0) >> 96;
        let t = t * 0x0000_0001_0000_0001_0000_0001_0000_0001;
        let k = k ^ k << 32 ^ k << 64 ^ k << 96 ^ t;
        keys.push(k);
    }
    let mut state = plain ^ keys[0];
    for k in &keys[1..10] {
        state = op(M::Aesenc, state, *k, 0, 0);
    }
    state = op(M::Aesenclast, state, keys[10], 0, 0);
    assert_eq!(state, cipher);
    // The equivalent inverse cipher: AESIMC on the middle round keys.
    let mut state = cipher ^ keys[10];
    for k in keys[1..10].iter().rev() {
        state = op(M::Aesdec, state, op(M::Aesimc, 0, *k, 0, 0), 0, 0);
    }
    state = op(M::Aesdeclast, state, keys[0], 0, 0);
    assert_eq!(state, plain);
}

/// The one padded block of the message "abc", as big-endian words.
fn abc_block() -> [u32; 16] {
    let mut w = [0u32; 16];
    w[0] = 0x6162_6380;
    w[15] = 24;
    w
}

fn from_hi(w: [u32; 4]) -> u128 {
    w.iter().fold(0u128, |r, &x| r << 32 | u128::from(x))
}

fn lane_add(a: u128, b: u128) -> u128 {
    (0..4).fold(0u128, |r, k| {
        let s = ((a >> (32 * k)) as u32).wrapping_add((b >> (32 * k)) as u32);
        r | u128::from(s) << (32 * k)
    })
}

#[test]
fn sha1_of_abc_with_sha_instructions() {
    let w = abc_block();
    // Message words with w[4i] in the top lane.
    let mut msg: Vec<u128> = (0..4)
        .map(|i| from_hi([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]]))
        .collect();
    for i in 0..16 {
        let t = op(M::Sha1msg1, msg[i], msg[i + 1], 0, 0) ^ msg[i + 2];
        msg.push(op(M::Sha1msg2, t, msg[i + 3], 0, 0));
    }
    let h = [
        0x6745_2301u32,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let abcd0 = from_hi([h[0], h[1], h[2], h[3]]);
    let mut abcd = abcd0;
    let mut e = lane_add(u128::from(h[4]) << 96, msg[0]);
    let mut prev = abcd;
    abcd = op(M::Sha1rnds4, abcd, e, 0, 0);
    for (i, m) in msg.iter().enumerate().skip(1) {
        e = op(M::Sha1nexte, prev, *m, 0, 0);
        prev = abcd;
        abcd = op(M::Sha1rnds4, abcd, e, (i / 5) as u8, 0);
    }
    let e_final = (op(M::Sha1nexte, prev, 0, 0, 0) >> 96) as u32;
    let abcd = lane_add(abcd, abcd0);
    let digest = [
        (abcd >> 96) as u32,
        (abcd >> 64) as u32,
        (abcd >> 32) as u32,
        abcd as u32,
        e_final.wrapping_add(h[4]),
    ];
    assert_eq!(
        digest,
        [
            0xa999_3e36,
            0x4706_816a,
            0xba3e_2571,
            0x7850_c26c,
            0x9cd0_d89d
        ]
    );
}

const K256: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

#[test]
fn sha256_of_abc_with_sha_instructions() {
    let w = abc_block();
    // Message words with w[4i] in the low lane.
    let mut msg: Vec<u128> = (0..4)
        .map(|i| from_hi([w[4 * i + 3], w[4 * i + 2], w[4 * i + 1], w[4 * i]]))
        .collect();
    for i in 0..12 {
        let t = op(M::Sha256msg1, msg[i], msg[i + 1], 0, 0);
        let t = lane_add(t, op(M::Palignr, msg[i + 3], msg[i + 2], 4, 0));
        msg.push(op(M::Sha256msg2, t, msg[i + 3], 0, 0));
    }
    let h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let (abef0, cdgh0) = (
        from_hi([h[0], h[1], h[4], h[5]]),
        from_hi([h[2], h[3], h[6], h[7]]),
    );
    let (mut abef, mut cdgh) = (abef0, cdgh0);
    for (i, m) in msg.iter().enumerate() {
        let k = from_hi([
            K256[4 * i + 3],
            K256[4 * i + 2],
            K256[4 * i + 1],
            K256[4 * i],
        ]);
        let wk = lane_add(*m, k);
        for half in [wk, wk >> 64] {
            let next = op(M::Sha256rnds2, cdgh, abef, 0, half);
            (cdgh, abef) = (abef, next);
        }
    }
    let (abef, cdgh) = (lane_add(abef, abef0), lane_add(cdgh, cdgh0));
    let d = |v: u128, k: u32| (v >> (32 * k)) as u32;
    let digest = [
        d(abef, 3),
        d(abef, 2),
        d(cdgh, 3),
        d(cdgh, 2),
        d(abef, 1),
        d(abef, 0),
        d(cdgh, 1),
        d(cdgh, 0),
    ];
    assert_eq!(
        digest,
        [
            0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223, 0xb00361a3, 0x96177a9c, 0xb410ff61,
            0xf20015ad
        ]
    );
}

#[test]
fn pclmulqdq_known_products() {
    assert_eq!(op(M::Pclmulqdq, 3, 3, 0x00, 0), 5);
    assert_eq!(
        op(
            M::Pclmulqdq,
            u128::from(u64::MAX) << 64,
            u128::from(u64::MAX),
            0x01,
            0
        ),
        0x5555_5555_5555_5555_5555_5555_5555_5555
    );
    // imm8 bit 4 picks the source's high quadword: x^63 * x = x^64.
    assert_eq!(op(M::Pclmulqdq, 2, 1u128 << 127, 0x10, 0), 1 << 64);
}

/// PCMPISTRI on NUL-terminated strings: (control, needle, haystack, ECX, CF, ZF).
#[test]
fn pcmpistri_string_examples() {
    let s = |t: &[u8]| {
        let mut b = [0u8; 16];
        b[..t.len()].copy_from_slice(t);
        u128::from_le_bytes(b)
    };
    type Case = (u8, &'static [u8], &'static [u8], u64, bool, bool);
    let cases: [Case; 5] = [
        // Equal any, first match: the first vowel of "Hello World" is at 1.
        (0x00, b"aeiou", b"Hello World", 1, true, true),
        // Ranges, negative polarity: the first character outside 'a'..'z' is at 5 (space).
        (0x14, b"az", b"hello world", 5, true, true),
        // Equal ordered: "World" starts at 6.
        (0x0c, b"World", b"Hello World", 6, true, true),
        // Equal each, negative, masked: the first difference of two 16-byte strings.
        (
            0x38,
            b"abcdefghijklmnop",
            b"abcdefgXijklmnop",
            7,
            true,
            false,
        ),
        // No match: ECX is the element count.
        (0x00, b"xyz", b"Hello World", 16, false, true),
    ];
    for (imm, needle, hay, index, cf, zf) in cases {
        let (mut cpu, mut bus) = max_cpu();
        let st = St {
            a: s(needle),
            b: s(hay),
            mxcsr: 0x1f80,
            flags: 2,
            ..St::default()
        };
        let out = interp(&mut cpu, &mut bus, M::Pcmpistri, imm, st);
        assert_eq!(out.rcx, index, "imm {imm:#x}");
        assert_eq!(out.flags & 1 != 0, cf, "CF, imm {imm:#x}");
        assert_eq!(out.flags & 0x40 != 0, zf, "ZF, imm {imm:#x}");
    }
}
