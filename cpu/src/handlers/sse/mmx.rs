//! MMX (and the SSE/SSE2 instructions on MMX registers): MM0..MM7 alias the significands of
//! the physical x87 registers R0..R7. Every MMX instruction but EMMS sets TOP to 0 and tags
//! all registers valid; a write also sets the register's sign and exponent to all ones.
//! Gating: #UD with CR0.EM, #NM with CR0.TS, then a pending x87 exception (#MF or FERR#).
//! Lane arithmetic is `lanes::binop` on zero-extended operands.

use super::float::commit;
use super::fp;
use super::lanes;
use super::{enter as sse_enter, set_xmm, src128, src_low, xmm};
use crate::cpuid::edx;
use crate::fault::{Exec, Fault};
use crate::handlers::x87::pending;
use crate::state::cr0;
use crate::table::{Isa, Meta, TableBuilder};
use crate::x87::F80;
use crate::{Bus, Cpu};
use iced_x86::{Code, EncodingKind, Instruction, Mnemonic, OpCodeOperandKind, OpKind, Register};
use rustc_apfloat::ieee::{Double, Single};
use Mnemonic as M;

/// The MMX checks (#UD on a model without MMX, such as the Pentium Pro); `Ok(false)`: the
/// CPU froze on FERR#.
fn enter(cpu: &mut Cpu) -> Exec<bool> {
    if cpu.s.cr0 & cr0::EM != 0 || cpu.model.features_edx & edx::MMX == 0 {
        return Err(Fault::UD);
    }
    if cpu.s.cr0 & cr0::TS != 0 {
        return Err(Fault::NM);
    }
    pending(cpu)
}

/// Enter MMX state (once the instruction can no longer fault): TOP = 0, all tags valid.
fn transition(cpu: &mut Cpu) {
    cpu.s.x87.set_top(0);
    cpu.s.x87.ftw = 0xff;
}

fn mm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::MM0 as usize) & 7
}

fn mm(cpu: &Cpu, i: &Instruction, n: u32) -> u64 {
    cpu.s.x87.st[mm_index(i.op_register(n))].mant
}

fn set_mm(cpu: &mut Cpu, i: &Instruction, n: u32, v: u64) {
    transition(cpu);
    cpu.s.x87.st[mm_index(i.op_register(n))] = F80 {
        mant: v,
        se: 0xffff,
    };
}

/// Operand `n` as 64 bits: an MMX register or an m64.
fn src64(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction, n: u32) -> Exec<u64> {
    if i.op_kind(n) == OpKind::Register {
        Ok(mm(cpu, i, n))
    } else {
        let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
        // PUNPCKL* mm, m32 read four bytes (alignment checks and page ends see only those).
        let size = if i.memory_size().size() == 4 { 4 } else { 8 };
        cpu.read_mem(bus, seg, off, size)
    }
}

/// A packed operation on 64-bit operands, mapped onto the 128-bit lane code.
#[must_use]
pub(crate) fn binop64(m: Mnemonic, a: u64, b: u64, imm: u8) -> Option<u64> {
    let (a, b) = (u128::from(a), u128::from(b));
    let r = match m {
        M::Punpckhbw => lanes::binop(M::Punpcklbw, a >> 32, b >> 32, 0),
        M::Punpckhwd => lanes::binop(M::Punpcklwd, a >> 32, b >> 32, 0),
        M::Punpckhdq => lanes::binop(M::Punpckldq, a >> 32, b >> 32, 0),
        // Both sources' lanes in one 128-bit value: results come out in order.
        M::Packsswb | M::Packssdw | M::Packuswb => lanes::binop(m, a | b << 64, 0, 0),
        M::Pshufw => lanes::binop(M::Pshuflw, 0, b, imm),
        _ => lanes::binop(m, a, b, imm),
    };
    r.map(|v| v as u64)
}

fn binop(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !enter(cpu)? {
        return Ok(());
    }
    let b = match i.op_kind(1) {
        OpKind::Immediate8 => u64::from(i.immediate8()),
        _ => src64(cpu, bus, i, 1)?,
    };
    let imm = if i.op_count() > 2 || i.op_kind(1) == OpKind::Immediate8 {
        i.immediate8()
    } else {
        0
    };
    let r = binop64(i.mnemonic(), mm(cpu, i, 0), b, imm).ok_or(Fault::UD)?;
    set_mm(cpu, i, 0, r);
    Ok(())
}

/// MOVD/MOVQ with MMX registers, MOVNTQ, PINSRW/PEXTRW/PMOVMSKB on MMX registers.
fn moves(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Code as C;
    if !enter(cpu)? {
        return Ok(());
    }
    match i.code() {
        C::Movd_mm_rm32 | C::Movq_mm_rm64 => {
            let size = if i.code() == C::Movd_mm_rm32 { 4 } else { 8 };
            let v = cpu.read_op(bus, i, 1, size)?;
            set_mm(cpu, i, 0, v);
        }
        C::Movd_rm32_mm => cpu.write_op(bus, i, 0, 4, mm(cpu, i, 1) & 0xffff_ffff)?,
        C::Movq_rm64_mm => cpu.write_op(bus, i, 0, 8, mm(cpu, i, 1))?,
        C::Pextrw_r32_mm_imm8 | C::Pextrw_r64_mm_imm8 => {
            let sh = u32::from(i.immediate8() & 3) * 16;
            cpu.set_reg(i.op0_register(), (mm(cpu, i, 1) >> sh) & 0xffff);
        }
        C::Movq_mm_mmm64 => {
            let v = src64(cpu, bus, i, 1)?;
            set_mm(cpu, i, 0, v);
        }
        C::Movq_mmm64_mm | C::Movntq_m64_mm => {
            let v = mm(cpu, i, 1);
            if i.op_kind(0) == OpKind::Register {
                set_mm(cpu, i, 0, v);
            } else {
                let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
                cpu.write_mem(bus, seg, off, 8, v)?;
            }
        }
        C::Pinsrw_mm_r32m16_imm8 | C::Pinsrw_mm_r64m16_imm8 => {
            let w = cpu.read_op(bus, i, 1, 2)? & 0xffff;
            let sh = u32::from(i.immediate8() & 3) * 16;
            let v = mm(cpu, i, 0) & !(0xffff << sh) | w << sh;
            set_mm(cpu, i, 0, v);
        }
        C::Pmovmskb_r32_mm | C::Pmovmskb_r64_mm => {
            let v = mm(cpu, i, 1);
            let r = (0..8).fold(0, |r, k| r | ((v >> (8 * k + 7)) & 1) << k);
            cpu.set_reg(i.op0_register(), r);
        }
        _ => return Err(Fault::UD),
    }
    transition(cpu);
    Ok(())
}

/// MOVQ2DQ xmm, mm and MOVDQ2Q mm, xmm: SSE checks, then the MMX transition.
fn cross(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    sse_enter(cpu)?;
    if !enter(cpu)? {
        return Ok(());
    }
    if i.code() == Code::Movq2dq_xmm_mm {
        let v = mm(cpu, i, 1);
        set_xmm(cpu, i, 0, u128::from(v));
        transition(cpu);
    } else {
        let v = xmm(cpu, i, 1) as u64;
        set_mm(cpu, i, 0, v);
    }
    Ok(())
}

/// CVTPI2PS/CVTPI2PD (two dwords to floats), CVT(T)PS2PI/CVT(T)PD2PI (two floats to
/// dwords in an MMX register): SSE checks and MXCSR rules; an MMX register operand also
/// brings the x87 checks and the MMX transition.
fn convert(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Code as C;
    sse_enter(cpu)?;
    let mm_reg =
        i.op0_register().is_mm() || i.op_kind(1) == OpKind::Register && i.op1_register().is_mm();
    if mm_reg && !enter(cpu)? {
        return Ok(());
    }
    let (mxcsr, mut flags) = (cpu.s.x87.mxcsr, 0);
    let f = &mut flags;
    let c = i.code();
    let int = |v: u64, k: u32| i64::from((v >> (32 * k)) as u32 as i32);
    if matches!(c, C::Cvtpi2ps_xmm_mmm64 | C::Cvtpi2pd_xmm_mmm64) {
        let b = src64(cpu, bus, i, 1)?;
        let old = xmm(cpu, i, 0);
        let r = if c == C::Cvtpi2ps_xmm_mmm64 {
            let lo = fp::from_int::<Single>(int(b, 0), mxcsr, f)
                | fp::from_int::<Single>(int(b, 1), mxcsr, f) << 32;
            old & !u128::from(u64::MAX) | lo
        } else {
            fp::from_int::<Double>(int(b, 0), mxcsr, f)
                | fp::from_int::<Double>(int(b, 1), mxcsr, f) << 64
        };
        // Measured: the MMX transition happens even when the conversion raises #XM.
        if mm_reg {
            transition(cpu);
        }
        commit(cpu, flags)?;
        set_xmm(cpu, i, 0, r);
        return Ok(());
    }
    let trunc = matches!(c, C::Cvttps2pi_mm_xmmm64 | C::Cvttpd2pi_mm_xmmm128);
    let r = if matches!(c, C::Cvtps2pi_mm_xmmm64 | C::Cvttps2pi_mm_xmmm64) {
        let b = u128::from(src_low(cpu, bus, i, 1, 8)?);
        (0..2).fold(0, |r, k| {
            r | fp::to_int::<Single>((b >> (32 * k)) & 0xffff_ffff, 32, trunc, mxcsr, f) << (32 * k)
        })
    } else {
        let b = src128(cpu, bus, i, 1, true)?;
        (0..2).fold(0, |r, k| {
            r | fp::to_int::<Double>((b >> (64 * k)) & u128::from(u64::MAX), 32, trunc, mxcsr, f)
                << (32 * k)
        })
    };
    transition(cpu);
    commit(cpu, flags)?;
    set_mm(cpu, i, 0, r);
    Ok(())
}

/// EMMS: all x87 registers empty; like every MMX instruction it sets TOP to 0 (measured).
fn emms(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    if enter(cpu)? {
        cpu.s.x87.set_top(0);
        cpu.s.x87.ftw = 0;
    }
    Ok(())
}

/// MASKMOVQ: store the bytes of operand 1 selected by the top bits of operand 2 at DS:rDI.
fn maskmovq(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !enter(cpu)? {
        return Ok(());
    }
    let (v, mask) = (mm(cpu, i, 1), mm(cpu, i, 2));
    let rdi = cpu.s.gpr[7];
    let base = match i.op0_kind() {
        OpKind::MemorySegDI => rdi & 0xffff,
        OpKind::MemorySegEDI => rdi & 0xffff_ffff,
        _ => rdi,
    };
    let seg =
        crate::state::SegReg::from_iced(i.memory_segment()).unwrap_or(crate::state::SegReg::Ds);
    let picked: Vec<u64> = (0..8).filter(|k| mask >> (8 * k + 7) & 1 != 0).collect();
    for &k in &picked {
        cpu.probe_write(bus, seg, base.wrapping_add(k), 1)?;
    }
    for k in picked {
        cpu.write_mem(bus, seg, base.wrapping_add(k), 1, (v >> (8 * k)) & 0xff)?;
    }
    transition(cpu);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    let m = Meta::plain(Isa::Pentium);
    let ops: Vec<Code> = Code::values()
        .filter(|c| {
            let oc = c.op_code();
            oc.encoding() == EncodingKind::Legacy
                && oc.op_count() >= 2
                && matches!(
                    oc.op_kind(0),
                    OpCodeOperandKind::mm_reg | OpCodeOperandKind::mm_rm
                )
                && (lanes::BINOPS.contains(&c.mnemonic()) || c.mnemonic() == M::Pshufw)
        })
        .collect();
    t.add(&ops, binop, m);
    t.add(
        &[
            C::Movd_mm_rm32,
            C::Movq_mm_rm64,
            C::Movd_rm32_mm,
            C::Movq_rm64_mm,
            C::Movq_mm_mmm64,
            C::Movq_mmm64_mm,
            C::Movntq_m64_mm,
            C::Pinsrw_mm_r32m16_imm8,
            C::Pinsrw_mm_r64m16_imm8,
            C::Pextrw_r32_mm_imm8,
            C::Pextrw_r64_mm_imm8,
            C::Pmovmskb_r32_mm,
            C::Pmovmskb_r64_mm,
        ],
        moves,
        m,
    );
    t.add(&[C::Movq2dq_xmm_mm, C::Movdq2q_mm_xmm], cross, m);
    t.add(&[C::Emms], emms, m);
    t.add(
        &[
            C::Cvtpi2ps_xmm_mmm64,
            C::Cvtpi2pd_xmm_mmm64,
            C::Cvtps2pi_mm_xmmm64,
            C::Cvttps2pi_mm_xmmm64,
            C::Cvtpd2pi_mm_xmmm128,
            C::Cvttpd2pi_mm_xmmm128,
        ],
        convert,
        m,
    );
    t.add(&[C::Maskmovq_rDI_mm_mm], maskmovq, m);
}
