//! Random initial states: registers biased towards edge cases, x87 registers drawn from
//! every class (normal, denormal, zero, infinity, NaN, unsupported encodings), MXCSR and
//! the x87 control word with random rounding and precision, XMM lanes as floats or bits.

use super::gen::Generator;
use super::layout::{self, off, Context, MEM_BYTES};

/// Initial context and data/stack bytes for one sequence.
pub fn random_state(g: &mut Generator, bits: u32) -> (Context, Vec<u8>) {
    let mut c = Context::default();
    for r in c.gpr.iter_mut() {
        *r = g.value();
        if bits == 32 {
            *r &= 0xffff_ffff;
        }
    }
    c.gpr[4] = layout::STACK_START;
    let base = g.base_register().number();
    c.gpr[base] = layout::DATA;
    let df = if g.rng.below(4) == 0 { 1 << 10 } else { 0 };
    c.rflags = 2 | (g.rng.next_u64() & 0x8d5) | df;
    let mut fcw = 0x037f_u16 ^ (g.rng.next_u64() as u16 & 0x0f00);
    if g.rng.below(8) == 0 {
        fcw &= !(g.rng.next_u64() as u16 & 0x3d);
    }
    put16(&mut c.fx, off::X87_FCW, fcw);
    put16(&mut c.fx, off::X87_FSW, (g.rng.below(8) as u16) << 11);
    c.fx[off::X87_FTW] = g.rng.next_u64() as u8;
    for i in 0..8 {
        let v = f80(g);
        c.fx[off::ST + 16 * i..off::ST + 16 * i + 10].copy_from_slice(&v);
    }
    let mut mxcsr = 0x1f80 ^ (g.rng.next_u64() as u32 & 0x6000);
    mxcsr |= (g.rng.next_u64() as u32 & 0x3f) & g.rng.below(2).wrapping_neg() as u32;
    if g.rng.below(4) == 0 {
        mxcsr |= 0x8000;
    }
    if g.rng.below(4) == 0 {
        mxcsr |= 0x40;
    }
    if g.rng.below(8) == 0 {
        mxcsr &= !(g.rng.next_u64() as u32 & 0x1f80);
    }
    c.fx[off::MXCSR..off::MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
    c.fx[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    for i in 0..16 {
        let v = xmm(g);
        c.set_xmm(i, v);
    }
    let mut mem = vec![0u8; MEM_BYTES];
    for chunk in mem.chunks_mut(8) {
        let v = match g.rng.below(4) {
            0 => f64_bits(g),
            1 => u64::from(f32_bits(g)) | u64::from(f32_bits(g)) << 32,
            _ => g.value(),
        };
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    (c, mem)
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// An 80-bit extended value of a random class.
fn f80(g: &mut Generator) -> [u8; 10] {
    let r = g.rng.next_u64();
    let sign = (g.rng.below(2) as u16) << 15;
    let (mant, exp): (u64, u16) = match g.rng.below(12) {
        0 => (0, 0),
        1 => (1 << 63, 0x7fff),
        2 => ((1 << 63) | (r >> 2) | (1 << 62), 0x7fff),
        3 => ((1 << 63) | (r >> 2 & !(1 << 62)) | 1, 0x7fff),
        4 => (r >> 1, 0),
        5 => (r >> 1, 1 + (r % 0x7ffe) as u16),
        6 => ((1 << 63) | r, (r % 0x7ffe) as u16 + 1),
        7 => (
            (1 << 63) | (r & 0xffff_ff00_0000_0000),
            0x3fff + (r % 64) as u16 - 32,
        ),
        _ => ((1 << 63) | r, 0x3fff + (r % 128) as u16 - 64),
    };
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&mant.to_le_bytes());
    b[8..].copy_from_slice(&(exp | sign).to_le_bytes());
    b
}

fn f32_bits(g: &mut Generator) -> u32 {
    let r = g.rng.next_u64() as u32;
    let sign = r & 0x8000_0000;
    sign | match g.rng.below(10) {
        0 => 0,
        1 => 0x7f80_0000,
        2 => 0x7fc0_0000 | (r & 0x3f_ffff),
        3 => 0x7f80_0000 | (r & 0x3f_ffff) | 1,
        4 => r & 0x7f_ffff,
        5 => (r % 0x7f80_0000) & 0x7fff_ffff,
        6 => (127 + (r >> 24) % 32) << 23 | (r & 0x7f_0000),
        _ => ((127 - 20 + (r >> 23) % 40) << 23) | (r & 0x7f_ffff),
    }
}

fn f64_bits(g: &mut Generator) -> u64 {
    let r = g.rng.next_u64();
    let sign = r & (1 << 63);
    sign | match g.rng.below(10) {
        0 => 0,
        1 => 0x7ff0_0000_0000_0000,
        2 => 0x7ff8_0000_0000_0000 | (r & 0x7_ffff_ffff_ffff),
        3 => 0x7ff0_0000_0000_0000 | (r & 0x7_ffff_ffff_ffff) | 1,
        4 => r & 0xf_ffff_ffff_ffff,
        5 => r & 0x7fef_ffff_ffff_ffff,
        6 => ((1023 + (r >> 52) % 40) << 52) | (r & 0xffff_0000_0000_0000 >> 12),
        _ => ((1023 - 30 + (r >> 53) % 60) << 52) | (r & 0xf_ffff_ffff_ffff),
    }
}

fn xmm(g: &mut Generator) -> u128 {
    match g.rng.below(4) {
        0 => {
            let mut v = 0u128;
            for i in 0..4 {
                v |= u128::from(f32_bits(g)) << (32 * i);
            }
            v
        }
        1 => u128::from(f64_bits(g)) | u128::from(f64_bits(g)) << 64,
        2 => u128::from(g.value()) | u128::from(g.value()) << 64,
        _ => u128::from(g.rng.next_u64()) | u128::from(g.rng.next_u64()) << 64,
    }
}
