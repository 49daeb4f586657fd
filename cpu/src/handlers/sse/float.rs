//! SSE/SSE2 floating-point instructions: arithmetic, MIN/MAX, SQRT, CMPcc, (U)COMIS and the
//! conversions. Lanes are computed by `fp`; flags are merged into MXCSR, and an unmasked
//! exception leaves the destination alone and raises #XM (#UD when CR4.OSXMMEXCPT is 0).

use super::fp::{self, mx, Fp, Op};
use super::{enter, set_xmm, src128, xmm};
use crate::fault::{Exec, Fault};
use crate::state::{cr4, rflags};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, EncodingKind, Instruction, Mnemonic, OpCodeOperandKind, OpKind};
use rustc_apfloat::ieee::{Double, Single};
use Mnemonic as M;

/// Apply `f` to each lane (only lane 0 when `scalar`, the rest kept from `a`).
fn lanes<F: Fp>(a: u128, b: u128, scalar: bool, mut f: impl FnMut(u128, u128) -> u128) -> u128 {
    let w = F::W;
    let mask = u128::MAX >> (128 - w);
    let n = if scalar { 1 } else { 128 / w };
    let mut r = if scalar { a } else { 0 };
    for k in 0..n {
        let sh = k * w;
        let v = f((a >> sh) & mask, (b >> sh) & mask) & mask;
        r = r & !(mask << sh) | v << sh;
    }
    r
}

/// Merge `flags` into MXCSR; fault if any of them is unmasked. An unmasked
/// pre-computation exception (IE, DE, ZE) stops every lane before computing, so only those
/// flags are recorded then.
pub(super) fn commit(cpu: &mut Cpu, flags: u32) -> Exec {
    let mxcsr = cpu.s.x87.mxcsr;
    let unmasked = !(mxcsr >> mx::MASK_SHIFT) & 0x3f;
    let pre = flags & (mx::IE | mx::DE | mx::ZE);
    let recorded = if pre & unmasked != 0 {
        pre
    } else {
        flags & 0x3f
    };
    commit_exactly(cpu, recorded)
}

/// Merge exactly `recorded` into MXCSR; fault if any of them is unmasked.
pub(super) fn commit_exactly(cpu: &mut Cpu, recorded: u32) -> Exec {
    let mxcsr = cpu.s.x87.mxcsr;
    let unmasked = !(mxcsr >> mx::MASK_SHIFT) & 0x3f;
    cpu.s.x87.mxcsr = mxcsr | (recorded & 0x3f);
    if recorded & unmasked != 0 {
        return Err(if cpu.s.cr4 & cr4::OSXMMEXCPT != 0 {
            Fault::XM
        } else {
            Fault::UD
        });
    }
    Ok(())
}

/// Source operand 1: the low `size` bytes (scalar) or all 128 bits (packed, aligned).
fn source(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction, size: u8) -> Exec<u128> {
    if size == 16 {
        return src128(cpu, bus, i, 1, true);
    }
    if i.op_kind(1) == OpKind::Register {
        return Ok(xmm(cpu, i, 1));
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    Ok(u128::from(cpu.read_mem(bus, seg, off, size)?))
}

/// (operation, double precision, scalar) for an arithmetic mnemonic.
fn classify(m: Mnemonic) -> Option<(Op, bool, bool)> {
    let op = match m {
        M::Addps | M::Addss | M::Addpd | M::Addsd => Op::Add,
        M::Subps | M::Subss | M::Subpd | M::Subsd => Op::Sub,
        M::Mulps | M::Mulss | M::Mulpd | M::Mulsd => Op::Mul,
        M::Divps | M::Divss | M::Divpd | M::Divsd => Op::Div,
        M::Minps | M::Minss | M::Minpd | M::Minsd => Op::Min,
        M::Maxps | M::Maxss | M::Maxpd | M::Maxsd => Op::Max,
        M::Sqrtps | M::Sqrtss | M::Sqrtpd | M::Sqrtsd => Op::Sqrt,
        M::Rcpps | M::Rcpss => Op::Rcp,
        M::Rsqrtps | M::Rsqrtss => Op::Rsqrt,
        _ => return None,
    };
    let (dbl, scalar) = shape(m);
    Some((op, dbl, scalar))
}

/// (double precision, scalar) from the PS/SS/PD/SD suffix.
fn shape(m: Mnemonic) -> (bool, bool) {
    match m {
        M::Addss
        | M::Subss
        | M::Mulss
        | M::Divss
        | M::Minss
        | M::Maxss
        | M::Sqrtss
        | M::Cmpss
        | M::Rcpss
        | M::Rsqrtss => (false, true),
        M::Addpd | M::Subpd | M::Mulpd | M::Divpd | M::Minpd | M::Maxpd | M::Sqrtpd | M::Cmppd => {
            (true, false)
        }
        M::Addsd | M::Subsd | M::Mulsd | M::Divsd | M::Minsd | M::Maxsd | M::Sqrtsd | M::Cmpsd => {
            (true, true)
        }
        _ => (false, false),
    }
}

fn size(dbl: bool, scalar: bool) -> u8 {
    match (scalar, dbl) {
        (false, _) => 16,
        (true, true) => 8,
        (true, false) => 4,
    }
}

/// Lanes of arithmetic or compare mnemonic `m` (predicate `imm` for CMPcc), flags into `f`.
pub(super) fn compute(m: Mnemonic, a: u128, b: u128, imm: u8, mxcsr: u32, f: &mut u32) -> u128 {
    let (dbl, scalar) = shape(m);
    match (classify(m), dbl) {
        (Some((op, ..)), true) => {
            lanes::<Double>(a, b, scalar, |x, y| fp::arith::<Double>(op, x, y, mxcsr, f))
        }
        (Some((op, ..)), false) => {
            lanes::<Single>(a, b, scalar, |x, y| fp::arith::<Single>(op, x, y, mxcsr, f))
        }
        (None, true) => lanes::<Double>(a, b, scalar, |x, y| {
            fp::compare::<Double>(imm, x, y, mxcsr, f)
        }),
        (None, false) => lanes::<Single>(a, b, scalar, |x, y| {
            fp::compare::<Single>(imm, x, y, mxcsr, f)
        }),
    }
}

fn arith(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let m = i.mnemonic();
    let (dbl, scalar) = shape(m);
    let b = source(cpu, bus, i, size(dbl, scalar))?;
    let (a, mxcsr, mut flags) = (xmm(cpu, i, 0), cpu.s.x87.mxcsr, 0);
    let imm = if i.op_count() > 2 { i.immediate8() } else { 0 };
    let r = compute(m, a, b, imm, mxcsr, &mut flags);
    commit(cpu, flags)?;
    set_xmm(cpu, i, 0, r);
    Ok(())
}

/// COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the comparison; OF, SF, AF cleared.
fn comi(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let m = i.mnemonic();
    let dbl = matches!(m, M::Comisd | M::Ucomisd);
    let quiet = matches!(m, M::Ucomiss | M::Ucomisd);
    let b = source(cpu, bus, i, if dbl { 8 } else { 4 })?;
    let (a, mxcsr, mut flags) = (xmm(cpu, i, 0), cpu.s.x87.mxcsr, 0);
    let zpc = if dbl {
        fp::comi::<Double>(
            a & u128::from(u64::MAX),
            b & u128::from(u64::MAX),
            quiet,
            mxcsr,
            &mut flags,
        )
    } else {
        fp::comi::<Single>(a & 0xffff_ffff, b & 0xffff_ffff, quiet, mxcsr, &mut flags)
    };
    commit(cpu, flags)?;
    let mut f = cpu.flags()
        & !(rflags::OF | rflags::SF | rflags::AF | rflags::ZF | rflags::PF | rflags::CF);
    for (bit, flag) in [(4, rflags::ZF), (2, rflags::PF), (1, rflags::CF)] {
        if zpc & bit != 0 {
            f |= flag;
        }
    }
    cpu.set_flags(f);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let m = Meta::plain(Isa::PentiumPro);
    let codes = |pred: &dyn Fn(Mnemonic) -> bool| -> Vec<Code> {
        Code::values()
            .filter(|c| {
                let oc = c.op_code();
                oc.encoding() == EncodingKind::Legacy
                    && oc.op_count() >= 2
                    && oc.op_kind(0) == OpCodeOperandKind::xmm_reg
                    && pred(c.mnemonic())
            })
            .collect()
    };
    t.add(&codes(&|m| classify(m).is_some()), arith, m);
    t.add(
        &codes(&|m| matches!(m, M::Cmpps | M::Cmpss | M::Cmppd | M::Cmpsd)),
        arith,
        m,
    );
    t.add(
        &codes(&|m| matches!(m, M::Comiss | M::Ucomiss | M::Comisd | M::Ucomisd)),
        comi,
        m,
    );
    super::convert::register(t);
}
