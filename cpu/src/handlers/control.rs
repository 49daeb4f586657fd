//! Near control transfers: JMP, Jcc, CALL, RET (with imm16), LOOP/LOOPE/LOOPNE, JCXZ/JECXZ.
//! Targets are masked to the operand size and checked against the CS limit (#GP(0)).

use crate::fault::{Exec, Fault};
use crate::flags::size_mask;
use crate::operand::op_size;
use crate::state::{rflags, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, ConditionCode, Instruction, OpKind};

/// Does condition `cc` hold for the flags `f`?
#[must_use]
pub(crate) fn condition(f: u64, cc: ConditionCode) -> bool {
    let bit = |m: u64| f & m != 0;
    match cc {
        ConditionCode::None => true,
        ConditionCode::o => bit(rflags::OF),
        ConditionCode::no => !bit(rflags::OF),
        ConditionCode::b => bit(rflags::CF),
        ConditionCode::ae => !bit(rflags::CF),
        ConditionCode::e => bit(rflags::ZF),
        ConditionCode::ne => !bit(rflags::ZF),
        ConditionCode::be => bit(rflags::CF) || bit(rflags::ZF),
        ConditionCode::a => !bit(rflags::CF) && !bit(rflags::ZF),
        ConditionCode::s => bit(rflags::SF),
        ConditionCode::ns => !bit(rflags::SF),
        ConditionCode::p => bit(rflags::PF),
        ConditionCode::np => !bit(rflags::PF),
        ConditionCode::l => bit(rflags::SF) != bit(rflags::OF),
        ConditionCode::ge => bit(rflags::SF) == bit(rflags::OF),
        ConditionCode::le => bit(rflags::ZF) || bit(rflags::SF) != bit(rflags::OF),
        ConditionCode::g => !bit(rflags::ZF) && bit(rflags::SF) == bit(rflags::OF),
    }
}

impl Cpu {
    /// Check a near branch target (already masked to the operand size) against the CS limit,
    /// or in 64-bit mode for being canonical.
    pub(crate) fn check_near_target(&self, target: u64) -> Exec {
        let ok = if self.s.long64() {
            self.s.canonical(target)
        } else {
            target <= u64::from(self.s.seg(SegReg::Cs).limit)
        };
        if !ok {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    /// Jump to `target` with an operand of `size` bytes (the IP is truncated to it).
    pub(crate) fn near_jump(&mut self, target: u64, size: u8) -> Exec {
        let t = target & size_mask(size);
        self.check_near_target(t)?;
        self.next_ip = t;
        Ok(())
    }
}

/// Operand size of a relative branch (2 or 4) from its operand kind.
fn branch_size(i: &Instruction) -> u8 {
    match i.op0_kind() {
        OpKind::NearBranch16 => 2,
        OpKind::NearBranch32 => 4,
        _ => 8,
    }
}

/// Target of a relative branch. The decoded instruction may be shared by several CS:IP
/// aliases of one physical page, so the displacement is re-applied to the current next IP.
fn rel_target(cpu: &Cpu, i: &Instruction) -> u64 {
    let disp = i.near_branch_target().wrapping_sub(i.next_ip());
    cpu.next_ip.wrapping_add(disp)
}

fn jmp_rel(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let t = rel_target(cpu, i);
    cpu.near_jump(t, branch_size(i))
}

fn jcc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if condition(cpu.flags(), i.condition_code()) {
        let t = rel_target(cpu, i);
        cpu.near_jump(t, branch_size(i))?;
    }
    Ok(())
}

fn jmp_rm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let t = cpu.read_op(bus, i, 0, size)?;
    cpu.near_jump(t, size)
}

fn call_rel(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = branch_size(i);
    let t = rel_target(cpu, i) & size_mask(size);
    cpu.check_near_target(t)?;
    cpu.push(bus, size, cpu.next_ip)?;
    cpu.next_ip = t;
    Ok(())
}

fn call_rm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let t = cpu.read_op(bus, i, 0, size)?;
    cpu.check_near_target(t)?;
    cpu.push(bus, size, cpu.next_ip)?;
    cpu.next_ip = t;
    Ok(())
}

fn ret(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size: u8 = match i.code() {
        Code::Retnw | Code::Retnw_imm16 => 2,
        Code::Retnq | Code::Retnq_imm16 => 8,
        _ => 4,
    };
    let t = cpu.peek(bus, 0, size)?;
    cpu.check_near_target(t)?;
    let release = if i.op_count() > 0 {
        u64::from(i.immediate16())
    } else {
        0
    };
    let sp = cpu.sp().wrapping_add(u64::from(size)).wrapping_add(release);
    cpu.set_sp(sp);
    cpu.next_ip = t;
    Ok(())
}

/// Counter register size (2 = CX, 4 = ECX, 8 = RCX) of LOOPcc / JCXZ forms.
fn counter_size(code: Code) -> u8 {
    use Code::*;
    match code {
        Loop_rel8_16_CX | Loop_rel8_32_CX | Loope_rel8_16_CX | Loope_rel8_32_CX
        | Loopne_rel8_16_CX | Loopne_rel8_32_CX | Jcxz_rel8_16 | Jcxz_rel8_32 => 2,
        Loop_rel8_16_RCX | Loop_rel8_64_RCX | Loope_rel8_16_RCX | Loope_rel8_64_RCX
        | Loopne_rel8_16_RCX | Loopne_rel8_64_RCX | Jrcxz_rel8_16 | Jrcxz_rel8_64 => 8,
        _ => 4,
    }
}

fn loop_cc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let csize = counter_size(i.code());
    let count = cpu.gpr(1, csize).wrapping_sub(1) & size_mask(csize);
    let zf = cpu.flags() & rflags::ZF != 0;
    let cond = match i.mnemonic() {
        iced_x86::Mnemonic::Loope => zf,
        iced_x86::Mnemonic::Loopne => !zf,
        _ => true,
    };
    if count != 0 && cond {
        let t = rel_target(cpu, i);
        cpu.near_jump(t, branch_size(i))?;
    }
    cpu.set_gpr(1, csize, count);
    Ok(())
}

fn jcxz(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if cpu.gpr(1, counter_size(i.code())) == 0 {
        let t = rel_target(cpu, i);
        cpu.near_jump(t, branch_size(i))?;
    }
    Ok(())
}

#[rustfmt::skip]
const JCC: &[Code] = &[
    Code::Jo_rel8_16, Code::Jo_rel8_32, Code::Jno_rel8_16, Code::Jno_rel8_32, Code::Jb_rel8_16, Code::Jb_rel8_32,
    Code::Jae_rel8_16, Code::Jae_rel8_32, Code::Je_rel8_16, Code::Je_rel8_32, Code::Jne_rel8_16, Code::Jne_rel8_32,
    Code::Jbe_rel8_16, Code::Jbe_rel8_32, Code::Ja_rel8_16, Code::Ja_rel8_32, Code::Js_rel8_16, Code::Js_rel8_32,
    Code::Jns_rel8_16, Code::Jns_rel8_32, Code::Jp_rel8_16, Code::Jp_rel8_32, Code::Jnp_rel8_16, Code::Jnp_rel8_32,
    Code::Jl_rel8_16, Code::Jl_rel8_32, Code::Jge_rel8_16, Code::Jge_rel8_32, Code::Jle_rel8_16, Code::Jle_rel8_32,
    Code::Jg_rel8_16, Code::Jg_rel8_32,
    Code::Jo_rel16, Code::Jo_rel32_32, Code::Jno_rel16, Code::Jno_rel32_32, Code::Jb_rel16, Code::Jb_rel32_32,
    Code::Jae_rel16, Code::Jae_rel32_32, Code::Je_rel16, Code::Je_rel32_32, Code::Jne_rel16, Code::Jne_rel32_32,
    Code::Jbe_rel16, Code::Jbe_rel32_32, Code::Ja_rel16, Code::Ja_rel32_32, Code::Js_rel16, Code::Js_rel32_32,
    Code::Jns_rel16, Code::Jns_rel32_32, Code::Jp_rel16, Code::Jp_rel32_32, Code::Jnp_rel16, Code::Jnp_rel32_32,
    Code::Jl_rel16, Code::Jl_rel32_32, Code::Jge_rel16, Code::Jge_rel32_32, Code::Jle_rel16, Code::Jle_rel32_32,
    Code::Jg_rel16, Code::Jg_rel32_32,
    Code::Jo_rel8_64, Code::Jno_rel8_64, Code::Jb_rel8_64, Code::Jae_rel8_64, Code::Je_rel8_64, Code::Jne_rel8_64,
    Code::Jbe_rel8_64, Code::Ja_rel8_64, Code::Js_rel8_64, Code::Jns_rel8_64, Code::Jp_rel8_64, Code::Jnp_rel8_64,
    Code::Jl_rel8_64, Code::Jge_rel8_64, Code::Jle_rel8_64, Code::Jg_rel8_64,
    Code::Jo_rel32_64, Code::Jno_rel32_64, Code::Jb_rel32_64, Code::Jae_rel32_64, Code::Je_rel32_64,
    Code::Jne_rel32_64, Code::Jbe_rel32_64, Code::Ja_rel32_64, Code::Js_rel32_64, Code::Jns_rel32_64,
    Code::Jp_rel32_64, Code::Jnp_rel32_64, Code::Jl_rel32_64, Code::Jge_rel32_64, Code::Jle_rel32_64,
    Code::Jg_rel32_64,
];

#[rustfmt::skip]
const LOOPS: &[Code] = &[
    Code::Loop_rel8_16_CX, Code::Loop_rel8_32_CX, Code::Loop_rel8_16_ECX, Code::Loop_rel8_32_ECX,
    Code::Loope_rel8_16_CX, Code::Loope_rel8_32_CX, Code::Loope_rel8_16_ECX, Code::Loope_rel8_32_ECX,
    Code::Loopne_rel8_16_CX, Code::Loopne_rel8_32_CX, Code::Loopne_rel8_16_ECX, Code::Loopne_rel8_32_ECX,
    Code::Loop_rel8_16_RCX, Code::Loop_rel8_64_RCX, Code::Loop_rel8_64_ECX,
    Code::Loope_rel8_16_RCX, Code::Loope_rel8_64_RCX, Code::Loope_rel8_64_ECX,
    Code::Loopne_rel8_16_RCX, Code::Loopne_rel8_64_RCX, Code::Loopne_rel8_64_ECX,
];

pub(crate) fn register(t: &mut TableBuilder) {
    let b = Meta::branch(Isa::I8086);
    t.add(
        &[
            Code::Jmp_rel8_16,
            Code::Jmp_rel8_32,
            Code::Jmp_rel16,
            Code::Jmp_rel32_32,
            Code::Jmp_rel8_64,
            Code::Jmp_rel32_64,
        ],
        jmp_rel,
        b,
    );
    t.add(JCC, jcc, b);
    t.add(&[Code::Jmp_rm16, Code::Jmp_rm32, Code::Jmp_rm64], jmp_rm, b);
    t.add(
        &[Code::Call_rel16, Code::Call_rel32_32, Code::Call_rel32_64],
        call_rel,
        b,
    );
    t.add(
        &[Code::Call_rm16, Code::Call_rm32, Code::Call_rm64],
        call_rm,
        b,
    );
    t.add(
        &[
            Code::Retnw,
            Code::Retnd,
            Code::Retnq,
            Code::Retnw_imm16,
            Code::Retnd_imm16,
            Code::Retnq_imm16,
        ],
        ret,
        b,
    );
    t.add(LOOPS, loop_cc, b);
    t.add(
        &[
            Code::Jcxz_rel8_16,
            Code::Jcxz_rel8_32,
            Code::Jecxz_rel8_16,
            Code::Jecxz_rel8_32,
            Code::Jecxz_rel8_64,
            Code::Jrcxz_rel8_16,
            Code::Jrcxz_rel8_64,
        ],
        jcxz,
        b,
    );
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::run_real;

    #[test]
    fn call_and_ret_imm() {
        // mov sp,0x2000 ; call +1 ; (hlt) ; ret 4   -> returns to the hlt with SP = 0x2004
        let (cpu, bus) = run_real(
            &[0xbc, 0x00, 0x20, 0xe8, 0x01, 0x00, 0xf4, 0xc2, 0x04, 0x00],
            3,
        );
        assert_eq!(cpu.s.rip, 0x1006);
        assert_eq!(cpu.s.gpr[4] & 0xffff, 0x2004);
        assert_eq!(&bus.ram()[0x1ffe..0x2000], &[0x06, 0x10]);
    }

    #[test]
    fn loop_counts_down_cx_only() {
        // mov ecx,0x10002 (66 b9) ; loop $ (e2 fe) x2 -> CX 0, ECX high word kept
        let (cpu, _) = run_real(&[0x66, 0xb9, 0x02, 0x00, 0x01, 0x00, 0xe2, 0xfe], 3);
        assert_eq!(cpu.s.gpr[1], 0x10000);
        assert_eq!(cpu.s.rip, 0x1008);
    }

    #[test]
    fn jmp_wraps_ip_at_64k() {
        // At 0000:FFFE: jmp short +0x10 -> IP wraps to 0x0010.
        let mut bus = crate::testbus::FlatBus::new(1 << 20);
        bus.load(0xfffe, &[0xeb, 0x10]);
        let mut cpu = crate::Cpu::new();
        cpu.s.seg[1] = crate::Segment::real_mode(0);
        cpu.s.rip = 0xfffe;
        cpu.step(&mut bus);
        assert_eq!(cpu.s.rip, 0x0010);
    }
}
