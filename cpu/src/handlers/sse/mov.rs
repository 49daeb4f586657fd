//! SSE/SSE2 data movement: full-register moves (aligned, unaligned, non-temporal), MOVD/MOVQ,
//! MOVSS/MOVSD, the half-register moves, MOVNTI, mask extraction, PINSRW/PEXTRW, and
//! LDMXCSR/STMXCSR.

use super::{enter, set_xmm, src128, src_low, write_m128, xmm};
use crate::fault::{Exec, Fault};
use crate::table::{Isa, Meta, TableBuilder};
use crate::x87::env::MXCSR_MASK;
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};
use Mnemonic as M;

const LO: u128 = u64::MAX as u128;

/// MOVAPS/MOVAPD/MOVDQA/MOVNT* (16-byte alignment or #GP(0)) and MOVUPS/MOVUPD/MOVDQU.
fn mov128(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let aligned = !matches!(i.mnemonic(), M::Movups | M::Movupd | M::Movdqu);
    let v = src128(cpu, bus, i, 1, aligned)?;
    if i.op_kind(0) == OpKind::Register {
        set_xmm(cpu, i, 0, v);
        Ok(())
    } else {
        write_m128(cpu, bus, i, v, aligned)
    }
}

/// Store the low `size` bytes of `v` to operand 0 (memory) or merge them into the XMM
/// register operand 0 (`zero_upper`: clear the rest instead).
fn store_low(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    i: &Instruction,
    v: u64,
    size: u8,
    zero_upper: bool,
) -> Exec {
    if i.op_kind(0) == OpKind::Register {
        let keep = if zero_upper {
            0
        } else {
            !((1u128 << (size * 8)) - 1)
        };
        let old = xmm(cpu, i, 0);
        set_xmm(cpu, i, 0, old & keep | u128::from(v));
        Ok(())
    } else {
        let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
        cpu.write_mem(bus, seg, off, size, v)
    }
}

/// MOVD/MOVQ between XMM and r/m32/r/m64, MOVQ xmm<->xmm/m64, MOVSS and MOVSD.
fn mov_low(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Code as C;
    enter(cpu)?;
    match i.code() {
        C::Movd_xmm_rm32 | C::Movq_xmm_rm64 => {
            let size = if i.code() == C::Movd_xmm_rm32 { 4 } else { 8 };
            let v = cpu.read_op(bus, i, 1, size)?;
            set_xmm(cpu, i, 0, u128::from(v));
            Ok(())
        }
        C::Movd_rm32_xmm => cpu.write_op(bus, i, 0, 4, xmm(cpu, i, 1) as u32 as u64),
        C::Movq_rm64_xmm => cpu.write_op(bus, i, 0, 8, xmm(cpu, i, 1) as u64),
        C::Movq_xmm_xmmm64 => {
            let v = src_low(cpu, bus, i, 1, 8)?;
            set_xmm(cpu, i, 0, u128::from(v));
            Ok(())
        }
        C::Movq_xmmm64_xmm => store_low(cpu, bus, i, xmm(cpu, i, 1) as u64, 8, true),
        C::Movss_xmm_xmmm32 | C::Movsd_xmm_xmmm64 => {
            let size = if i.code() == C::Movss_xmm_xmmm32 {
                4
            } else {
                8
            };
            // A memory source clears the rest of the register; a register source merges.
            let zero = i.op_kind(1) == OpKind::Memory;
            let v = src_low(cpu, bus, i, 1, size)?;
            store_low(cpu, bus, i, v, size, zero)
        }
        C::Movss_xmmm32_xmm | C::Movsd_xmmm64_xmm => {
            let size = if i.code() == C::Movss_xmmm32_xmm {
                4
            } else {
                8
            };
            let v = xmm(cpu, i, 1) as u64;
            store_low(cpu, bus, i, v & (u64::MAX >> (64 - size * 8)), size, false)
        }
        _ => Err(Fault::UD),
    }
}

/// MOVLPS/MOVLPD/MOVHPS/MOVHPD (m64 <-> half of xmm), MOVHLPS and MOVLHPS.
fn mov_half(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    let high = matches!(i.mnemonic(), M::Movhps | M::Movhpd);
    if i.op_kind(0) == OpKind::Memory {
        let v = xmm(cpu, i, 1);
        let half = if high { v >> 64 } else { v } as u64;
        return cpu.write_mem(bus, seg, off, 8, half);
    }
    let old = xmm(cpu, i, 0);
    let new = match i.mnemonic() {
        M::Movhlps => old & !LO | xmm(cpu, i, 1) >> 64,
        M::Movlhps => old & LO | xmm(cpu, i, 1) << 64,
        _ => {
            let v = u128::from(cpu.read_mem(bus, seg, off, 8)?);
            if high {
                old & LO | v << 64
            } else {
                old & !LO | v
            }
        }
    };
    set_xmm(cpu, i, 0, new);
    Ok(())
}

/// MOVNTI: a plain store of a general register (not gated by CR4.OSFXSR; #UD without SSE2).
fn movnti(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if cpu.model.features_edx & crate::cpuid::edx::SSE2 == 0 {
        return Err(Fault::UD);
    }
    let size = if i.code() == Code::Movnti_m64_r64 {
        8
    } else {
        4
    };
    let v = cpu.reg(i.op1_register());
    cpu.write_op(bus, i, 0, size, v)
}

/// PMOVMSKB, MOVMSKPS, MOVMSKPD: sign bits of the lanes into a zero-extended register.
fn movmsk(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let v = xmm(cpu, i, 1);
    let w = match i.mnemonic() {
        M::Pmovmskb => 8,
        M::Movmskps => 32,
        _ => 64,
    };
    let mut r = 0u64;
    for k in 0..128 / w {
        r |= ((v >> (k * w + w - 1)) as u64 & 1) << k;
    }
    cpu.set_reg(i.op0_register(), r);
    Ok(())
}

/// PINSRW xmm, r32/m16, imm8 and PEXTRW r32/r64, xmm, imm8 (word index imm8 & 7).
fn pinsrw_pextrw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let sh = u32::from(i.immediate8() & 7) * 16;
    if i.mnemonic() == M::Pextrw {
        let v = (xmm(cpu, i, 1) >> sh) as u64 & 0xffff;
        cpu.set_reg(i.op0_register(), v);
        return Ok(());
    }
    let w = cpu.read_op(bus, i, 1, 2)? & 0xffff;
    let old = xmm(cpu, i, 0);
    set_xmm(cpu, i, 0, old & !(0xffffu128 << sh) | u128::from(w) << sh);
    Ok(())
}

/// MASKMOVDQU: store the bytes of operand 1 whose mask byte (operand 2) has its top bit set
/// to DS:rDI (segment overridable); every selected byte is checked before any is written.
fn maskmov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let (v, mask) = (xmm(cpu, i, 1), xmm(cpu, i, 2));
    let rdi = cpu.s.gpr[7];
    let base = match i.op0_kind() {
        OpKind::MemorySegDI => rdi & 0xffff,
        OpKind::MemorySegEDI => rdi & 0xffff_ffff,
        _ => rdi,
    };
    let seg =
        crate::state::SegReg::from_iced(i.memory_segment()).unwrap_or(crate::state::SegReg::Ds);
    let picked: Vec<u32> = (0..16).filter(|k| mask >> (8 * k + 7) & 1 != 0).collect();
    for &k in &picked {
        cpu.probe_write(bus, seg, base.wrapping_add(u64::from(k)), 1)?;
    }
    for k in picked {
        let b = (v >> (8 * k)) as u64 & 0xff;
        cpu.write_mem(bus, seg, base.wrapping_add(u64::from(k)), 1, b)?;
    }
    Ok(())
}

/// LDMXCSR (#GP(0) on reserved bits) and STMXCSR.
fn mxcsr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    if i.mnemonic() == M::Stmxcsr {
        let v = cpu.s.x87.mxcsr;
        return cpu.write_op(bus, i, 0, 4, u64::from(v));
    }
    let v = cpu.read_op(bus, i, 0, 4)? as u32;
    if v & !MXCSR_MASK != 0 {
        return Err(Fault::gp(0));
    }
    cpu.s.x87.mxcsr = v;
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    let m = Meta::plain(Isa::PentiumPro);
    t.add(
        &[
            C::Movaps_xmm_xmmm128,
            C::Movaps_xmmm128_xmm,
            C::Movups_xmm_xmmm128,
            C::Movups_xmmm128_xmm,
            C::Movapd_xmm_xmmm128,
            C::Movapd_xmmm128_xmm,
            C::Movupd_xmm_xmmm128,
            C::Movupd_xmmm128_xmm,
            C::Movdqa_xmm_xmmm128,
            C::Movdqa_xmmm128_xmm,
            C::Movdqu_xmm_xmmm128,
            C::Movdqu_xmmm128_xmm,
            C::Movntps_m128_xmm,
            C::Movntpd_m128_xmm,
            C::Movntdq_m128_xmm,
        ],
        mov128,
        m,
    );
    t.add(
        &[
            C::Movd_xmm_rm32,
            C::Movq_xmm_rm64,
            C::Movd_rm32_xmm,
            C::Movq_rm64_xmm,
            C::Movq_xmm_xmmm64,
            C::Movq_xmmm64_xmm,
            C::Movss_xmm_xmmm32,
            C::Movss_xmmm32_xmm,
            C::Movsd_xmm_xmmm64,
            C::Movsd_xmmm64_xmm,
        ],
        mov_low,
        m,
    );
    t.add(
        &[
            C::Movlps_xmm_m64,
            C::Movlps_m64_xmm,
            C::Movlpd_xmm_m64,
            C::Movlpd_m64_xmm,
            C::Movhps_xmm_m64,
            C::Movhps_m64_xmm,
            C::Movhpd_xmm_m64,
            C::Movhpd_m64_xmm,
            C::Movhlps_xmm_xmm,
            C::Movlhps_xmm_xmm,
        ],
        mov_half,
        m,
    );
    register_misc(t);
}

/// MOVNTI, mask extraction, PINSRW/PEXTRW, MXCSR and MASKMOVDQU.
fn register_misc(t: &mut TableBuilder) {
    use Code as C;
    let m = Meta::plain(Isa::PentiumPro);
    t.add(&[C::Movnti_m32_r32, C::Movnti_m64_r64], movnti, m);
    t.add(
        &[
            C::Pmovmskb_r32_xmm,
            C::Pmovmskb_r64_xmm,
            C::Movmskps_r32_xmm,
            C::Movmskps_r64_xmm,
            C::Movmskpd_r32_xmm,
            C::Movmskpd_r64_xmm,
        ],
        movmsk,
        m,
    );
    t.add(
        &[
            C::Pinsrw_xmm_r32m16_imm8,
            C::Pinsrw_xmm_r64m16_imm8,
            C::Pextrw_r32_xmm_imm8,
            C::Pextrw_r64_xmm_imm8,
        ],
        pinsrw_pextrw,
        m,
    );
    t.add(&[C::Ldmxcsr_m32, C::Stmxcsr_m32], mxcsr, m);
    t.add(&[C::Maskmovdqu_rDI_xmm_xmm], maskmov, m);
}
