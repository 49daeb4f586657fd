//! SSE3: ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD (IEEE arithmetic through `fp`, flags into MXCSR),
//! MOVSHDUP, MOVSLDUP, MOVDDUP and LDDQU. (FISTTP is with the x87 handlers; MONITOR/MWAIT
//! with the system ones.)

use super::ext::{build, commit_fp, gate, lane};
use super::fp::{self, Fp, Op};
use super::{set_xmm, src128, src_low, xmm};
use crate::cpuid::ecx;
use crate::fault::{Exec, Fault};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic as M};
use rustc_apfloat::ieee::{Double, Single};

fn has_sse3(cpu: &Cpu) -> bool {
    cpu.model.features_ecx & ecx::SSE3 != 0
}

/// Lane `k` of `F`'s width.
fn fl<F: Fp>(v: u128, k: u32) -> u128 {
    u128::from(lane(v, F::W / 8, k))
}

/// The horizontal and alternating forms on format `F`: (operation, x, y) per result lane.
fn hlanes<F: Fp>(m: M, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    let n = 128 / F::W;
    let mut r = 0u128;
    for k in 0..n {
        let (op, x, y) = match m {
            M::Addsubps | M::Addsubpd => {
                let op = if k % 2 == 0 { Op::Sub } else { Op::Add };
                (op, fl::<F>(a, k), fl::<F>(b, k))
            }
            _ => {
                let op = if matches!(m, M::Haddps | M::Haddpd) {
                    Op::Add
                } else {
                    Op::Sub
                };
                let (src, p) = if k < n / 2 { (a, k) } else { (b, k - n / 2) };
                (op, fl::<F>(src, 2 * p), fl::<F>(src, 2 * p + 1))
            }
        };
        r |= fp::arith::<F>(op, x, y, mxcsr, flags) << (k * F::W);
    }
    r
}

/// Lanes of an SSE3 arithmetic mnemonic, exception flags into `flags`.
pub(crate) fn arith_lanes(m: M, a: u128, b: u128, mxcsr: u32, flags: &mut u32) -> u128 {
    match m {
        M::Addsubpd | M::Haddpd | M::Hsubpd => hlanes::<Double>(m, a, b, mxcsr, flags),
        _ => hlanes::<Single>(m, a, b, mxcsr, flags),
    }
}

fn arith(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse3(cpu))?;
    let b = src128(cpu, bus, i, 1, true)?;
    let (a, mut flags) = (xmm(cpu, i, 0), 0);
    let r = arith_lanes(i.mnemonic(), a, b, cpu.s.x87.mxcsr, &mut flags);
    commit_fp(cpu, flags)?;
    set_xmm(cpu, i, 0, r);
    Ok(())
}

/// MOVSHDUP/MOVSLDUP (odd/even dwords duplicated), MOVDDUP (low qword, m64 source) and
/// LDDQU (unaligned load).
fn moves(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    gate(cpu, has_sse3(cpu))?;
    let m = i.mnemonic();
    let r = match m {
        M::Movddup => {
            let v = src_low(cpu, bus, i, 1, 8)?;
            u128::from(v) << 64 | u128::from(v)
        }
        M::Lddqu => src128(cpu, bus, i, 1, false)?,
        M::Movshdup | M::Movsldup => {
            let v = src128(cpu, bus, i, 1, true)?;
            let odd = u32::from(m == M::Movshdup);
            build(4, 4, |k| lane(v, 4, (k & !1) | odd))
        }
        _ => return Err(Fault::UD),
    };
    set_xmm(cpu, i, 0, r);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let m = Meta::plain(Isa::PentiumPro);
    t.add(
        &[
            Code::Addsubps_xmm_xmmm128,
            Code::Addsubpd_xmm_xmmm128,
            Code::Haddps_xmm_xmmm128,
            Code::Haddpd_xmm_xmmm128,
            Code::Hsubps_xmm_xmmm128,
            Code::Hsubpd_xmm_xmmm128,
        ],
        arith,
        m,
    );
    t.add(
        &[
            Code::Movshdup_xmm_xmmm128,
            Code::Movsldup_xmm_xmmm128,
            Code::Movddup_xmm_xmmm64,
            Code::Lddqu_xmm_m128,
        ],
        moves,
        m,
    );
}
