//! SSE/SSE2 conversions between integers, single and double precision: CVTSI2SS/SD,
//! CVT(T)SS2SI/CVT(T)SD2SI, CVTSS2SD/CVTSD2SS and the packed forms.

use super::float::commit;
use super::fp;
use super::{enter, set_xmm, src128, xmm};
use crate::fault::Exec;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, OpKind};
use rustc_apfloat::ieee::{Double, Single};

const D: u128 = u64::MAX as u128;
const S: u128 = 0xffff_ffff;

/// The low `size` bytes of source operand 1 (XMM register or memory, no alignment).
fn low(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction, size: u8) -> Exec<u128> {
    if i.op_kind(1) == OpKind::Register {
        return Ok(xmm(cpu, i, 1));
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    Ok(u128::from(cpu.read_mem(bus, seg, off, size)?))
}

/// Scalar conversions to and from general registers.
fn scalar_int(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Code as C;
    enter(cpu)?;
    let (mxcsr, mut flags) = (cpu.s.x87.mxcsr, 0);
    let c = i.code();
    if matches!(
        c,
        C::Cvtsi2ss_xmm_rm32 | C::Cvtsi2ss_xmm_rm64 | C::Cvtsi2sd_xmm_rm32 | C::Cvtsi2sd_xmm_rm64
    ) {
        let wide = matches!(c, C::Cvtsi2ss_xmm_rm64 | C::Cvtsi2sd_xmm_rm64);
        let v = cpu.read_op(bus, i, 1, if wide { 8 } else { 4 })?;
        let v = if wide {
            v as i64
        } else {
            i64::from(v as u32 as i32)
        };
        let old = xmm(cpu, i, 0);
        let r = if matches!(c, C::Cvtsi2sd_xmm_rm32 | C::Cvtsi2sd_xmm_rm64) {
            old & !D | fp::from_int::<Double>(v, mxcsr, &mut flags)
        } else {
            old & !S | fp::from_int::<Single>(v, mxcsr, &mut flags)
        };
        commit(cpu, flags)?;
        set_xmm(cpu, i, 0, r);
        return Ok(());
    }
    let dbl = matches!(
        c,
        C::Cvtsd2si_r32_xmmm64
            | C::Cvtsd2si_r64_xmmm64
            | C::Cvttsd2si_r32_xmmm64
            | C::Cvttsd2si_r64_xmmm64
    );
    let trunc = matches!(
        c,
        C::Cvttss2si_r32_xmmm32
            | C::Cvttss2si_r64_xmmm32
            | C::Cvttsd2si_r32_xmmm64
            | C::Cvttsd2si_r64_xmmm64
    );
    let width = usize::from(i.op0_register().size() as u8) * 8;
    let v = low(cpu, bus, i, if dbl { 8 } else { 4 })?;
    let r = if dbl {
        fp::to_int::<Double>(v & D, width, trunc, mxcsr, &mut flags)
    } else {
        fp::to_int::<Single>(v & S, width, trunc, mxcsr, &mut flags)
    };
    commit(cpu, flags)?;
    cpu.set_reg(i.op0_register(), r);
    Ok(())
}

/// The XMM-to-XMM conversions, scalar and packed.
fn vector(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Code as C;
    enter(cpu)?;
    let c = i.code();
    let b = match c {
        C::Cvtss2sd_xmm_xmmm32 => low(cpu, bus, i, 4)?,
        C::Cvtsd2ss_xmm_xmmm64 | C::Cvtdq2pd_xmm_xmmm64 | C::Cvtps2pd_xmm_xmmm64 => {
            low(cpu, bus, i, 8)?
        }
        _ => src128(cpu, bus, i, 1, true)?,
    };
    let (a, mxcsr, mut flags) = (xmm(cpu, i, 0), cpu.s.x87.mxcsr, 0);
    let r = convert(c, a, b, mxcsr, &mut flags);
    commit(cpu, flags)?;
    set_xmm(cpu, i, 0, r);
    Ok(())
}

/// Result of XMM-to-XMM conversion `c` with destination `a` and source `b`.
pub(super) fn convert(c: Code, a: u128, b: u128, mxcsr: u32, f: &mut u32) -> u128 {
    use Code as C;
    let lane = |v: u128, w: u32, k: u32| (v >> (w * k)) & (u128::MAX >> (128 - w));
    match c {
        C::Cvtss2sd_xmm_xmmm32 => a & !D | fp::widen(b & S, mxcsr, f),
        C::Cvtsd2ss_xmm_xmmm64 => a & !S | fp::narrow(b & D, mxcsr, f),
        C::Cvtps2pd_xmm_xmmm64 => {
            fp::widen(lane(b, 32, 0), mxcsr, f) | fp::widen(lane(b, 32, 1), mxcsr, f) << 64
        }
        C::Cvtpd2ps_xmm_xmmm128 => {
            fp::narrow(lane(b, 64, 0), mxcsr, f) | fp::narrow(lane(b, 64, 1), mxcsr, f) << 32
        }
        C::Cvtdq2pd_xmm_xmmm64 => (0..2).fold(0, |r, k| {
            r | fp::from_int::<Double>(i64::from(lane(b, 32, k) as u32 as i32), mxcsr, f)
                << (64 * k)
        }),
        C::Cvtdq2ps_xmm_xmmm128 => (0..4).fold(0, |r, k| {
            r | fp::from_int::<Single>(i64::from(lane(b, 32, k) as u32 as i32), mxcsr, f)
                << (32 * k)
        }),
        C::Cvtps2dq_xmm_xmmm128 | C::Cvttps2dq_xmm_xmmm128 => {
            let t = c == C::Cvttps2dq_xmm_xmmm128;
            (0..4).fold(0, |r, k| {
                r | u128::from(fp::to_int::<Single>(lane(b, 32, k), 32, t, mxcsr, f)) << (32 * k)
            })
        }
        _ => {
            let t = c == C::Cvttpd2dq_xmm_xmmm128;
            (0..2).fold(0, |r, k| {
                r | u128::from(fp::to_int::<Double>(lane(b, 64, k), 32, t, mxcsr, f)) << (32 * k)
            })
        }
    }
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    let m = Meta::plain(Isa::PentiumPro);
    t.add(
        &[
            C::Cvtsi2ss_xmm_rm32,
            C::Cvtsi2ss_xmm_rm64,
            C::Cvtsi2sd_xmm_rm32,
            C::Cvtsi2sd_xmm_rm64,
            C::Cvtss2si_r32_xmmm32,
            C::Cvtss2si_r64_xmmm32,
            C::Cvttss2si_r32_xmmm32,
            C::Cvttss2si_r64_xmmm32,
            C::Cvtsd2si_r32_xmmm64,
            C::Cvtsd2si_r64_xmmm64,
            C::Cvttsd2si_r32_xmmm64,
            C::Cvttsd2si_r64_xmmm64,
        ],
        scalar_int,
        m,
    );
    t.add(
        &[
            C::Cvtss2sd_xmm_xmmm32,
            C::Cvtsd2ss_xmm_xmmm64,
            C::Cvtps2pd_xmm_xmmm64,
            C::Cvtpd2ps_xmm_xmmm128,
            C::Cvtdq2pd_xmm_xmmm64,
            C::Cvtdq2ps_xmm_xmmm128,
            C::Cvtps2dq_xmm_xmmm128,
            C::Cvttps2dq_xmm_xmmm128,
            C::Cvtpd2dq_xmm_xmmm128,
            C::Cvttpd2dq_xmm_xmmm128,
        ],
        vector,
        m,
    );
}
