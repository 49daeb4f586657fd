//! SSSE3: PSHUFB, PHADD/PHSUB(S)W/D, PMADDUBSW, PMULHRSW, PSIGNB/W/D, PABSB/W/D and
//! PALIGNR, on XMM registers and on MMX registers (64-bit forms). The lane code takes the
//! operand width in bytes so both forms share it.

use super::ext::{build, gate, imm8, is_mmx_form, lane, slane};
use super::{set_xmm, src128, xmm};
use crate::cpuid::ecx;
use crate::fault::{Exec, Fault};
use crate::handlers::x87::pending;
use crate::state::cr0;
use crate::table::{Isa, Meta, TableBuilder};
use crate::x87::F80;
use crate::{Bus, Cpu};
use iced_x86::{Code, EncodingKind, Instruction, Mnemonic, OpKind, Register};
use Mnemonic as M;

fn sat16(v: i64) -> u64 {
    v.clamp(-0x8000, 0x7fff) as u64
}

/// Horizontal pairs: the low half of the result from `a`'s pairs, the high half from `b`'s.
fn horizontal(a: u128, b: u128, w: u32, bytes: u32, f: impl Fn(i64, i64) -> u64) -> u128 {
    let n = bytes / w;
    build(w, n, |k| {
        let (src, p) = if k < n / 2 { (a, k) } else { (b, k - n / 2) };
        f(slane(src, w, 2 * p), slane(src, w, 2 * p + 1))
    })
}

/// The result of SSSE3 mnemonic `m` on `bytes`-wide operands (8: MMX, 16: XMM).
pub(crate) fn compute(m: Mnemonic, a: u128, b: u128, imm: u8, bytes: u32) -> Option<u128> {
    let per = |w: u32, f: &dyn Fn(i64, i64) -> u64| {
        build(w, bytes / w, |k| f(slane(a, w, k), slane(b, w, k)))
    };
    let sign = |x: i64, y: i64| match y.signum() {
        -1 => x.wrapping_neg() as u64,
        0 => 0,
        _ => x as u64,
    };
    Some(match m {
        M::Pshufb => build(1, bytes, |k| {
            let idx = lane(b, 1, k);
            if idx & 0x80 != 0 {
                0
            } else {
                lane(a, 1, (idx as u32) & (bytes - 1))
            }
        }),
        M::Phaddw => horizontal(a, b, 2, bytes, |x, y| x.wrapping_add(y) as u64),
        M::Phaddd => horizontal(a, b, 4, bytes, |x, y| x.wrapping_add(y) as u64),
        M::Phaddsw => horizontal(a, b, 2, bytes, |x, y| sat16(x + y)),
        M::Phsubw => horizontal(a, b, 2, bytes, |x, y| x.wrapping_sub(y) as u64),
        M::Phsubd => horizontal(a, b, 4, bytes, |x, y| x.wrapping_sub(y) as u64),
        M::Phsubsw => horizontal(a, b, 2, bytes, |x, y| sat16(x - y)),
        // Unsigned bytes of the destination times signed bytes of the source, pairs summed.
        M::Pmaddubsw => build(2, bytes / 2, |k| {
            let p = |j: u32| lane(a, 1, j) as i64 * slane(b, 1, j);
            sat16(p(2 * k) + p(2 * k + 1))
        }),
        M::Pmulhrsw => per(2, &|x, y| ((((x * y) >> 14) + 1) >> 1) as u64),
        M::Psignb => per(1, &sign),
        M::Psignw => per(2, &sign),
        M::Psignd => per(4, &sign),
        M::Pabsb => per(1, &|_, y| y.unsigned_abs()),
        M::Pabsw => per(2, &|_, y| y.unsigned_abs()),
        M::Pabsd => per(4, &|_, y| y.unsigned_abs()),
        // Destination above source, shifted right by imm8 bytes.
        M::Palignr => {
            let sh = u32::from(imm) * 8;
            if bytes == 16 {
                match sh {
                    0 => b,
                    1..=127 => b >> sh | a << (128 - sh),
                    128 => a,
                    129..=255 => a >> (sh - 128),
                    _ => 0,
                }
            } else {
                let cat = a << 64 | b;
                if sh >= 128 {
                    0
                } else {
                    u128::from((cat >> sh) as u64)
                }
            }
        }
        _ => return None,
    })
}

/// The MMX gate (as for MMX instructions): #UD with CR0.EM, #NM with CR0.TS, then a
/// pending x87 exception; `Ok(false)`: the CPU froze on FERR#.
fn mmx_enter(cpu: &mut Cpu) -> Exec<bool> {
    if cpu.s.cr0 & cr0::EM != 0 || cpu.model.features_ecx & ecx::SSSE3 == 0 {
        return Err(Fault::UD);
    }
    if cpu.s.cr0 & cr0::TS != 0 {
        return Err(Fault::NM);
    }
    pending(cpu)
}

fn mm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::MM0 as usize) & 7
}

fn mmx_form(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !mmx_enter(cpu)? {
        return Ok(());
    }
    let b = if i.op_kind(1) == OpKind::Register {
        cpu.s.x87.st[mm_index(i.op1_register())].mant
    } else {
        let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
        cpu.read_mem(bus, seg, off, 8)?
    };
    let d = mm_index(i.op0_register());
    let a = cpu.s.x87.st[d].mant;
    let r = compute(i.mnemonic(), a.into(), b.into(), imm8(i), 8).ok_or(Fault::UD)?;
    // Entering MMX state: TOP = 0, all tags valid; the written register's exponent all ones.
    cpu.s.x87.set_top(0);
    cpu.s.x87.ftw = 0xff;
    cpu.s.x87.st[d] = F80 {
        mant: r as u64,
        se: 0xffff,
    };
    Ok(())
}

fn xmm_form(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, cpu.model.features_ecx & ecx::SSSE3 != 0)?;
    let b = src128(cpu, bus, i, 1, true)?;
    let r = compute(i.mnemonic(), xmm(cpu, i, 0), b, imm8(i), 16).ok_or(Fault::UD)?;
    set_xmm(cpu, i, 0, r);
    Ok(())
}

const MNEMONICS: &[Mnemonic] = &[
    M::Pshufb,
    M::Phaddw,
    M::Phaddd,
    M::Phaddsw,
    M::Phsubw,
    M::Phsubd,
    M::Phsubsw,
    M::Pmaddubsw,
    M::Pmulhrsw,
    M::Psignb,
    M::Psignw,
    M::Psignd,
    M::Pabsb,
    M::Pabsw,
    M::Pabsd,
    M::Palignr,
];

pub(crate) fn register(t: &mut TableBuilder) {
    let codes = |mmx: bool| -> Vec<Code> {
        Code::values()
            .filter(|c| {
                c.op_code().encoding() == EncodingKind::Legacy
                    && MNEMONICS.contains(&c.mnemonic())
                    && is_mmx_form(*c) == mmx
            })
            .collect()
    };
    t.add(&codes(true), mmx_form, Meta::plain(Isa::PentiumPro));
    t.add(&codes(false), xmm_form, Meta::plain(Isa::PentiumPro));
}
