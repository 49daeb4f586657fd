//! SSE4.2 string compares: PCMPESTRI/PCMPESTRM (explicit lengths in EAX/EDX, RAX/RDX with
//! REX.W) and PCMPISTRI/PCMPISTRM (implicit, NUL-terminated), following the SDM's model:
//! element compares, aggregation, polarity, then an index in ECX or a mask in XMM0, and
//! CF/ZF/SF/OF from the result and the string lengths. The memory operand needs no alignment.
//! (CRC32 is in `handlers::gpr_ext`; PCMPGTQ with the SSE4.1 lanes.)

use super::ext::{build, gate, lane, slane};
use super::{src128, xmm};
use crate::cpuid::ecx;
use crate::fault::Exec;
use crate::state::rflags::{ARITH, CF, OF, SF, ZF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Instruction, Mnemonic as M};

/// The outcome of a string compare: the aggregated bit vector and the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StrResult {
    pub res2: u32,
    pub flags: u64,
}

/// Length of an implicit string: elements before the first zero one.
fn implicit_len(v: u128, w: u32) -> u32 {
    let n = 16 / w;
    (0..n).find(|&k| lane(v, w, k) == 0).unwrap_or(n)
}

/// Length of an explicit string: |len| saturated to the element count.
fn explicit_len(len: i64, w: u32) -> u32 {
    len.unsigned_abs().min(u64::from(16 / w)) as u32
}

/// The compare for string 1 = `a` (length `la`) and string 2 = `b` (length `lb`) under
/// control byte `imm`.
pub(crate) fn compare(a: u128, b: u128, la: u32, lb: u32, imm: u8) -> StrResult {
    let w = if imm & 1 != 0 { 2 } else { 1 };
    let n = 16 / w;
    let signed = imm & 2 != 0;
    let el = |v: u128, k: u32| {
        if signed {
            slane(v, w, k)
        } else {
            lane(v, w, k) as i64
        }
    };
    let (va, vb) = (|i: u32| i < la, |j: u32| j < lb);
    let bit = |j: u32| -> bool {
        match imm >> 2 & 3 {
            // Equal any: b[j] is one of a's characters.
            0 => vb(j) && (0..la).any(|i| el(a, i) == el(b, j)),
            // Ranges: b[j] lies in one of a's [lo, hi] pairs.
            1 => {
                vb(j)
                    && (0..n).step_by(2).any(|i| {
                        va(i) && va(i + 1) && el(b, j) >= el(a, i) && el(b, j) <= el(a, i + 1)
                    })
            }
            // Equal each: both valid and equal, or both past their end.
            2 => match (va(j), vb(j)) {
                (true, true) => el(a, j) == el(b, j),
                (false, false) => true,
                _ => false,
            },
            // Equal ordered: a occurs in b starting at j (a's end matches anything).
            _ => (0..n - j).all(|k| match (va(k), vb(j + k)) {
                (false, _) => true,
                (true, false) => false,
                (true, true) => el(a, k) == el(b, j + k),
            }),
        }
    };
    let res1 = (0..n).fold(0u32, |r, j| r | u32::from(bit(j)) << j);
    let all = (1u32 << n) - 1;
    let valid2 = (1u32 << lb) - 1;
    let res2 = match imm >> 4 & 3 {
        1 => !res1 & all,
        3 => (res1 ^ valid2) & all,
        _ => res1,
    };
    let mut flags = 0;
    for (cond, f) in [
        (res2 != 0, CF),
        (lb < n, ZF),
        (la < n, SF),
        (res2 & 1 != 0, OF),
    ] {
        if cond {
            flags |= f;
        }
    }
    StrResult { res2, flags }
}

/// PCMPxSTRM's XMM0: the bit vector, or (imm8 bit 6) each bit expanded to an element mask.
pub(crate) fn mask_result(res2: u32, imm: u8) -> u128 {
    let w = if imm & 1 != 0 { 2 } else { 1 };
    if imm & 0x40 == 0 {
        return u128::from(res2);
    }
    build(w, 16 / w, |k| if res2 >> k & 1 != 0 { u64::MAX } else { 0 })
}

/// PCMPxSTRI's ECX: least (or, imm8 bit 6, most) significant set bit; the element count
/// when none is.
pub(crate) fn index_result(res2: u32, imm: u8) -> u32 {
    let n = if imm & 1 != 0 { 8 } else { 16 };
    if res2 == 0 {
        n
    } else if imm & 0x40 != 0 {
        31 - res2.leading_zeros()
    } else {
        res2.trailing_zeros()
    }
}

fn pcmpstr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, cpu.model.features_ecx & ecx::SSE42 != 0)?;
    let b = src128(cpu, bus, i, 1, false)?;
    let a = xmm(cpu, i, 0);
    let imm = i.immediate8();
    let w = if imm & 1 != 0 { 2 } else { 1 };
    let m = i.mnemonic();
    let explicit = matches!(
        m,
        M::Pcmpestri | M::Pcmpestri64 | M::Pcmpestrm | M::Pcmpestrm64
    );
    let (la, lb) = if explicit {
        let wide = matches!(m, M::Pcmpestri64 | M::Pcmpestrm64);
        let get = |r: usize| {
            if wide {
                cpu.s.gpr[r] as i64
            } else {
                i64::from(cpu.s.gpr[r] as i32)
            }
        };
        (explicit_len(get(0), w), explicit_len(get(2), w))
    } else {
        (implicit_len(a, w), implicit_len(b, w))
    };
    let r = compare(a, b, la, lb, imm);
    if matches!(m, M::Pcmpestrm | M::Pcmpestrm64 | M::Pcmpistrm) {
        cpu.s.xmm[0] = mask_result(r.res2, imm);
    } else {
        cpu.set_gpr(1, 4, u64::from(index_result(r.res2, imm)));
    }
    let f = cpu.flags() & !ARITH;
    cpu.set_flags(f | r.flags);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let codes = super::sse41::legacy_codes(|m| {
        matches!(
            m,
            M::Pcmpestri
                | M::Pcmpestri64
                | M::Pcmpestrm
                | M::Pcmpestrm64
                | M::Pcmpistri
                | M::Pcmpistrm
        )
    });
    t.add(&codes, pcmpstr, Meta::plain(Isa::PentiumPro));
}
