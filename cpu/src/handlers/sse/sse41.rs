//! SSE4.1 integer and data-movement instructions: blends (immediate and XMM0-controlled),
//! signed/unsigned MIN/MAX, PCMPEQQ, PACKUSDW, PMULLD, PMULDQ, MPSADBW, PHMINPOSUW, PTEST,
//! PMOVSX/PMOVZX, PINSR*/PEXTR*, INSERTPS/EXTRACTPS and MOVNTDQA. PCMPGTQ (SSE4.2) shares
//! the lane code. The floating-point ones (ROUND*, DPPS/DPPD) are in `sse41fp`.

use super::ext::{build, gate, lane, slane, xmm_op};
use super::{read_m128, set_xmm, src_low, xmm};
use crate::cpuid::ecx;
use crate::fault::{Exec, Fault};
use crate::state::rflags::{ARITH, CF, ZF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, EncodingKind, Instruction, Mnemonic, OpKind};
use Mnemonic as M;

fn has_sse41(cpu: &Cpu) -> bool {
    cpu.model.features_ecx & ecx::SSE41 != 0
}

/// Pick lane `k` (width `w`) from `b` when `sel(k)`, else from `a`.
fn blend(a: u128, b: u128, w: u32, sel: impl Fn(u32) -> bool) -> u128 {
    build(w, 16 / w, |k| lane(if sel(k) { b } else { a }, w, k))
}

/// Per-lane binary operation on signed (`signed`) or unsigned lanes.
fn per(a: u128, b: u128, w: u32, signed: bool, f: impl Fn(i128, i128) -> i128) -> u128 {
    let get = |v: u128, k: u32| {
        if signed {
            i128::from(slane(v, w, k))
        } else {
            i128::from(lane(v, w, k))
        }
    };
    build(w, 16 / w, |k| f(get(a, k), get(b, k)) as u64)
}

/// MPSADBW: eight sums of absolute differences of 4-byte groups.
fn mpsadbw(a: u128, b: u128, imm: u8) -> u128 {
    let a_off = u32::from(imm >> 2 & 1) * 4;
    let b_off = u32::from(imm & 3) * 4;
    build(2, 8, |k| {
        (0..4)
            .map(|j| lane(a, 1, a_off + k + j).abs_diff(lane(b, 1, b_off + j)))
            .sum()
    })
}

/// PHMINPOSUW: the smallest unsigned word and its (lowest) index.
fn phminposuw(b: u128) -> u128 {
    let (idx, min) = (0..8)
        .map(|k| (k, lane(b, 2, k)))
        .min_by_key(|&(k, v)| (v, k))
        .unwrap_or((0, 0));
    u128::from(min) | u128::from(idx) << 16
}

/// Lanes of the SSE4.1 (and PCMPGTQ) two-operand forms; `x0` is XMM0 (BLENDV masks).
pub(crate) fn compute(m: Mnemonic, a: u128, b: u128, imm: u8, x0: u128) -> Option<u128> {
    let bit = |k: u32| imm >> k & 1 != 0;
    let top = |w: u32| move |k: u32| lane(x0, w, k) >> (w * 8 - 1) != 0;
    let ones = |c: bool| if c { -1 } else { 0 };
    Some(match m {
        M::Pblendw => blend(a, b, 2, bit),
        M::Blendps => blend(a, b, 4, bit),
        M::Blendpd => blend(a, b, 8, bit),
        M::Pblendvb => blend(a, b, 1, top(1)),
        M::Blendvps => blend(a, b, 4, top(4)),
        M::Blendvpd => blend(a, b, 8, top(8)),
        M::Pminsb => per(a, b, 1, true, i128::min),
        M::Pminsd => per(a, b, 4, true, i128::min),
        M::Pminuw => per(a, b, 2, false, i128::min),
        M::Pminud => per(a, b, 4, false, i128::min),
        M::Pmaxsb => per(a, b, 1, true, i128::max),
        M::Pmaxsd => per(a, b, 4, true, i128::max),
        M::Pmaxuw => per(a, b, 2, false, i128::max),
        M::Pmaxud => per(a, b, 4, false, i128::max),
        M::Pcmpeqq => per(a, b, 8, false, |x, y| ones(x == y)),
        M::Pcmpgtq => per(a, b, 8, true, |x, y| ones(x > y)),
        M::Pmulld => per(a, b, 4, true, |x, y| x * y),
        M::Pmuldq => {
            let p = |k: u32| (i128::from(slane(a, 4, k)) * i128::from(slane(b, 4, k))) as u64;
            build(8, 2, |k| p(2 * k))
        }
        M::Packusdw => {
            let v = |k: u32| {
                let (src, j) = if k < 4 { (a, k) } else { (b, k - 4) };
                slane(src, 4, j).clamp(0, 0xffff) as u64
            };
            build(2, 8, v)
        }
        M::Mpsadbw => mpsadbw(a, b, imm),
        M::Phminposuw => phminposuw(b),
        _ => return None,
    })
}

fn binop(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let has = if i.mnemonic() == M::Pcmpgtq {
        cpu.model.features_ecx & ecx::SSE42 != 0
    } else {
        has_sse41(cpu)
    };
    xmm_op(cpu, bus, i, has, true, compute)
}

/// PTEST: ZF = (dest AND src) == 0, CF = (NOT dest AND src) == 0; AF OF PF SF cleared.
fn ptest(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let b = super::src128(cpu, bus, i, 1, true)?;
    let a = xmm(cpu, i, 0);
    let mut f = cpu.flags() & !ARITH;
    if a & b == 0 {
        f |= ZF;
    }
    if !a & b == 0 {
        f |= CF;
    }
    cpu.set_flags(f);
    Ok(())
}

/// PMOVSX/PMOVZX: (source lane bytes, destination lane bytes, sign-extend).
fn pmov_shape(m: Mnemonic) -> Option<(u32, u32, bool)> {
    Some(match m {
        M::Pmovsxbw => (1, 2, true),
        M::Pmovsxbd => (1, 4, true),
        M::Pmovsxbq => (1, 8, true),
        M::Pmovsxwd => (2, 4, true),
        M::Pmovsxwq => (2, 8, true),
        M::Pmovsxdq => (4, 8, true),
        M::Pmovzxbw => (1, 2, false),
        M::Pmovzxbd => (1, 4, false),
        M::Pmovzxbq => (1, 8, false),
        M::Pmovzxwd => (2, 4, false),
        M::Pmovzxwq => (2, 8, false),
        M::Pmovzxdq => (4, 8, false),
        _ => return None,
    })
}

fn pmovx(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let (sw, dw, signed) = pmov_shape(i.mnemonic()).ok_or(Fault::UD)?;
    let n = 16 / dw;
    let src = u128::from(src_low(cpu, bus, i, 1, (n * sw) as u8)?);
    let r = build(dw, n, |k| {
        if signed {
            slane(src, sw, k) as u64
        } else {
            lane(src, sw, k)
        }
    });
    set_xmm(cpu, i, 0, r);
    Ok(())
}

/// Element width in bytes and index mask of PEXTR*/PINSR*/EXTRACTPS.
fn element(m: Mnemonic) -> (u8, u8) {
    match m {
        M::Pextrb | M::Pinsrb => (1, 15),
        M::Pextrw => (2, 7),
        M::Pextrq | M::Pinsrq => (8, 1),
        _ => (4, 3),
    }
}

/// PEXTRB/W/D/Q and EXTRACTPS to a register (zero-extended) or memory.
fn extract(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let (w, mask) = element(i.mnemonic());
    let v = lane(
        xmm(cpu, i, 1),
        u32::from(w),
        u32::from(i.immediate8() & mask),
    );
    if i.op0_kind() == OpKind::Register {
        cpu.set_reg(i.op0_register(), v);
        Ok(())
    } else {
        let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
        cpu.write_mem(bus, seg, off, w, v)
    }
}

/// PINSRB/D/Q from a register or memory; INSERTPS from an XMM dword or m32, with a zero mask.
fn insert(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let m = i.mnemonic();
    let imm = i.immediate8();
    let (w, mask) = element(m);
    let v = match i.op1_kind() {
        OpKind::Register if m == M::Insertps => lane(xmm(cpu, i, 1), 4, u32::from(imm >> 6)),
        OpKind::Register => cpu.reg(i.op1_register()),
        _ => {
            let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
            cpu.read_mem(bus, seg, off, w)?
        }
    };
    let (slot, zero) = if m == M::Insertps {
        (u32::from(imm >> 4 & 3), imm & 15)
    } else {
        (u32::from(imm & mask), 0)
    };
    let bits = u32::from(w) * 8;
    let lane_mask = u128::MAX >> (128 - bits);
    let v = u128::from(v) & lane_mask;
    let mut r = xmm(cpu, i, 0) & !(lane_mask << (slot * bits)) | v << (slot * bits);
    r = blend(r, 0, 4, |k| zero >> k & 1 != 0);
    set_xmm(cpu, i, 0, r);
    Ok(())
}

fn movntdqa(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse41(cpu))?;
    let v = read_m128(cpu, bus, i, true)?;
    set_xmm(cpu, i, 0, v);
    Ok(())
}

/// Legacy-encoded codes whose mnemonic satisfies `pred`.
pub(super) fn legacy_codes(pred: impl Fn(Mnemonic) -> bool) -> Vec<Code> {
    Code::values()
        .filter(|c| c.op_code().encoding() == EncodingKind::Legacy && pred(c.mnemonic()))
        .collect()
}

pub(crate) fn register(t: &mut TableBuilder) {
    let m = Meta::plain(Isa::PentiumPro);
    let binops = legacy_codes(|mn| compute(mn, 0, 0, 0, 0).is_some());
    t.add(&binops, binop, m);
    t.add(&legacy_codes(|mn| mn == M::Ptest), ptest, m);
    t.add(&legacy_codes(|mn| pmov_shape(mn).is_some()), pmovx, m);
    t.add(
        &legacy_codes(|mn| matches!(mn, M::Pextrb | M::Pextrd | M::Pextrq | M::Extractps)),
        extract,
        m,
    );
    // PEXTRW's SSE4.1 form (66 0F 3A 15) also stores to memory; 0F C5 is SSE2's.
    t.add(
        &[Code::Pextrw_r32m16_xmm_imm8, Code::Pextrw_r64m16_xmm_imm8],
        extract,
        m,
    );
    t.add(
        &legacy_codes(|mn| matches!(mn, M::Pinsrb | M::Pinsrd | M::Pinsrq | M::Insertps)),
        insert,
        m,
    );
    t.add(&[Code::Movntdqa_xmm_m128], movntdqa, m);
}
