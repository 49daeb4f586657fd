//! Data movement: MOV (register, memory, immediate, moffs), MOVZX/MOVSX, XCHG, LEA,
//! CBW/CWDE/CWD/CDQ, XLAT, BSWAP, CMOVcc, SETcc and the NOP family.

use crate::fault::Exec;
use crate::flags::{sign_bit, size_mask};
use crate::handlers::control::condition;
use crate::operand::op_size;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Register};

/// Address size in bytes of the memory operand (from its base, index or displacement).
#[must_use]
pub(crate) fn mem_addr_size(i: &Instruction) -> u8 {
    if i.memory_base() != Register::None {
        i.memory_base().size() as u8
    } else if i.memory_index() != Register::None {
        i.memory_index().size() as u8
    } else {
        match i.memory_displ_size() {
            2 => 2,
            8 => 8,
            _ => 4,
        }
    }
}

fn mov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let v = cpu.read_op(bus, i, 1, size)?;
    cpu.write_op(bus, i, 0, size, v)
}

fn movzx(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let v = cpu.read_op(bus, i, 1, op_size(i, 1))?;
    cpu.write_op(bus, i, 0, op_size(i, 0), v)
}

fn movsx(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let src = op_size(i, 1);
    let v = cpu.read_op(bus, i, 1, src)?;
    cpu.write_op(bus, i, 0, op_size(i, 0), sign_extend(v, src))
}

/// Sign-extend the low `size` bytes of `v` to 64 bits.
#[must_use]
pub(crate) fn sign_extend(v: u64, size: u8) -> u64 {
    let m = size_mask(size);
    if v & sign_bit(size) != 0 {
        v | !m
    } else {
        v & m
    }
}

fn xchg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    cpu.probe_op(bus, i, 0, size)?;
    let a = cpu.read_op(bus, i, 0, size)?;
    let b = cpu.read_op(bus, i, 1, size)?;
    // Memory (if any) is operand 0: store it first, while the registers that address it
    // still hold their old values (XCHG BH,[BX] must not move its own operand).
    cpu.write_op(bus, i, 0, size, b)?;
    cpu.write_op(bus, i, 1, size, a)
}

fn lea(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let ea = cpu.effective_address(i);
    cpu.set_reg(i.op0_register(), ea);
    Ok(())
}

/// CBW, CWDE, CDQE: sign-extend the low half of the accumulator into the whole.
fn cbw(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size: u8 = match i.code() {
        Code::Cbw => 2,
        Code::Cwde => 4,
        _ => 8,
    };
    let half = size / 2;
    let v = sign_extend(cpu.gpr(0, half), half);
    cpu.set_gpr(0, size, v);
    Ok(())
}

/// CWD, CDQ, CQO: sign of the accumulator into DX/EDX/RDX.
fn cwd(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size: u8 = match i.code() {
        Code::Cwd => 2,
        Code::Cdq => 4,
        _ => 8,
    };
    let fill = if cpu.gpr(0, size) & sign_bit(size) != 0 {
        u64::MAX
    } else {
        0
    };
    cpu.set_gpr(2, size, fill);
    Ok(())
}

/// XLAT: AL = [seg:(E)BX + AL], the sum wrapping at the address size.
fn xlat(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let asize = i.memory_base().size() as u8;
    let ea = cpu.reg(i.memory_base()).wrapping_add(cpu.gpr(0, 1)) & size_mask(asize);
    let v = cpu.read_mem(bus, cpu.mem_seg(i), ea, 1)?;
    cpu.set_gpr(0, 1, v);
    Ok(())
}

fn bswap(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let r = i.op0_register();
    match r.size() {
        // Undefined by the manuals; Intel and AMD hardware clear the 16-bit register.
        2 => cpu.set_reg(r, 0),
        4 => cpu.set_reg(r, u64::from((cpu.reg(r) as u32).swap_bytes())),
        _ => cpu.set_reg(r, cpu.reg(r).swap_bytes()),
    }
    Ok(())
}

fn cmov(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    // The source is read (and may fault) whether or not the condition holds.
    let v = cpu.read_op(bus, i, 1, size)?;
    if condition(cpu.flags(), i.condition_code()) {
        cpu.write_op(bus, i, 0, size, v)?;
    } else if size == 4 {
        // A 32-bit destination is written (zero-extended) even when the move does not happen.
        let r = i.op0_register();
        cpu.set_reg(r, cpu.reg(r));
    }
    Ok(())
}

fn setcc(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let v = u64::from(condition(cpu.flags(), i.condition_code()));
    cpu.write_op(bus, i, 0, 1, v)
}

fn nop(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Exec {
    Ok(())
}

#[rustfmt::skip]
const MOV: &[Code] = &[
    Code::Mov_rm8_r8, Code::Mov_rm16_r16, Code::Mov_rm32_r32, Code::Mov_r8_rm8, Code::Mov_r16_rm16, Code::Mov_r32_rm32,
    Code::Mov_AL_moffs8, Code::Mov_AX_moffs16, Code::Mov_EAX_moffs32, Code::Mov_moffs8_AL, Code::Mov_moffs16_AX,
    Code::Mov_moffs32_EAX, Code::Mov_r8_imm8, Code::Mov_r16_imm16, Code::Mov_r32_imm32, Code::Mov_rm8_imm8,
    Code::Mov_rm16_imm16, Code::Mov_rm32_imm32,
    Code::Mov_rm64_r64, Code::Mov_r64_rm64, Code::Mov_RAX_moffs64, Code::Mov_moffs64_RAX, Code::Mov_r64_imm64,
    Code::Mov_rm64_imm32,
];

#[rustfmt::skip]
const CMOV: &[Code] = &[
    Code::Cmovo_r16_rm16, Code::Cmovo_r32_rm32, Code::Cmovno_r16_rm16, Code::Cmovno_r32_rm32,
    Code::Cmovb_r16_rm16, Code::Cmovb_r32_rm32, Code::Cmovae_r16_rm16, Code::Cmovae_r32_rm32,
    Code::Cmove_r16_rm16, Code::Cmove_r32_rm32, Code::Cmovne_r16_rm16, Code::Cmovne_r32_rm32,
    Code::Cmovbe_r16_rm16, Code::Cmovbe_r32_rm32, Code::Cmova_r16_rm16, Code::Cmova_r32_rm32,
    Code::Cmovs_r16_rm16, Code::Cmovs_r32_rm32, Code::Cmovns_r16_rm16, Code::Cmovns_r32_rm32,
    Code::Cmovp_r16_rm16, Code::Cmovp_r32_rm32, Code::Cmovnp_r16_rm16, Code::Cmovnp_r32_rm32,
    Code::Cmovl_r16_rm16, Code::Cmovl_r32_rm32, Code::Cmovge_r16_rm16, Code::Cmovge_r32_rm32,
    Code::Cmovle_r16_rm16, Code::Cmovle_r32_rm32, Code::Cmovg_r16_rm16, Code::Cmovg_r32_rm32,
    Code::Cmovo_r64_rm64, Code::Cmovno_r64_rm64, Code::Cmovb_r64_rm64, Code::Cmovae_r64_rm64,
    Code::Cmove_r64_rm64, Code::Cmovne_r64_rm64, Code::Cmovbe_r64_rm64, Code::Cmova_r64_rm64,
    Code::Cmovs_r64_rm64, Code::Cmovns_r64_rm64, Code::Cmovp_r64_rm64, Code::Cmovnp_r64_rm64,
    Code::Cmovl_r64_rm64, Code::Cmovge_r64_rm64, Code::Cmovle_r64_rm64, Code::Cmovg_r64_rm64,
];

#[rustfmt::skip]
const SETCC: &[Code] = &[
    Code::Seto_rm8, Code::Setno_rm8, Code::Setb_rm8, Code::Setae_rm8, Code::Sete_rm8, Code::Setne_rm8,
    Code::Setbe_rm8, Code::Seta_rm8, Code::Sets_rm8, Code::Setns_rm8, Code::Setp_rm8, Code::Setnp_rm8,
    Code::Setl_rm8, Code::Setge_rm8, Code::Setle_rm8, Code::Setg_rm8,
];

/// 0F 0D and 0F 18-1F with a ModRM byte: hint space that executes as NOP (never touches memory).
#[rustfmt::skip]
const NOP_RM: &[Code] = &[
    Code::Nop_rm16, Code::Nop_rm32,
    Code::Reservednop_rm16_r16_0F0D, Code::Reservednop_rm32_r32_0F0D,
    Code::Reservednop_rm16_r16_0F18, Code::Reservednop_rm32_r32_0F18,
    Code::Reservednop_rm16_r16_0F19, Code::Reservednop_rm32_r32_0F19,
    Code::Reservednop_rm16_r16_0F1A, Code::Reservednop_rm32_r32_0F1A,
    Code::Reservednop_rm16_r16_0F1B, Code::Reservednop_rm32_r32_0F1B,
    Code::Reservednop_rm16_r16_0F1C, Code::Reservednop_rm32_r32_0F1C,
    Code::Reservednop_rm16_r16_0F1D, Code::Reservednop_rm32_r32_0F1D,
    Code::Reservednop_rm16_r16_0F1E, Code::Reservednop_rm32_r32_0F1E,
    Code::Reservednop_rm16_r16_0F1F, Code::Reservednop_rm32_r32_0F1F,
    Code::Nop_rm64, Code::Reservednop_rm64_r64_0F0D, Code::Reservednop_rm64_r64_0F18,
    Code::Reservednop_rm64_r64_0F19, Code::Reservednop_rm64_r64_0F1A, Code::Reservednop_rm64_r64_0F1B,
    Code::Reservednop_rm64_r64_0F1C, Code::Reservednop_rm64_r64_0F1D, Code::Reservednop_rm64_r64_0F1E,
    Code::Reservednop_rm64_r64_0F1F,
    // iced names 0F 18 /6 and /7 with memory PREFETCHIT1/0: hint NOPs where not implemented.
    Code::Prefetchit0_m8, Code::Prefetchit1_m8,
    // CET's ENDBR32/64 sit in the 0F 1E hint space: NOPs on a CPU without CET (no model
    // advertises it), and user code compiled with -fcf-protection starts every function with one.
    Code::Endbr32, Code::Endbr64,
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(MOV, mov, Meta::plain(Isa::I8086));
    t.add(
        &[
            Code::Movzx_r16_rm8,
            Code::Movzx_r32_rm8,
            Code::Movzx_r16_rm16,
            Code::Movzx_r32_rm16,
        ],
        movzx,
        Meta::plain(Isa::I386),
    );
    t.add(
        &[
            Code::Movsx_r16_rm8,
            Code::Movsx_r32_rm8,
            Code::Movsx_r16_rm16,
            Code::Movsx_r32_rm16,
        ],
        movsx,
        Meta::plain(Isa::I386),
    );
    t.add(
        &[
            Code::Xchg_rm8_r8,
            Code::Xchg_rm16_r16,
            Code::Xchg_rm32_r32,
            Code::Xchg_r16_AX,
            Code::Xchg_r32_EAX,
        ],
        xchg,
        Meta::plain(Isa::I8086),
    );
    t.add(
        &[Code::Lea_r16_m, Code::Lea_r32_m],
        lea,
        Meta::plain(Isa::I8086),
    );
    t.add(&[Code::Cbw, Code::Cwde], cbw, Meta::plain(Isa::I8086));
    t.add(&[Code::Cwd, Code::Cdq], cwd, Meta::plain(Isa::I8086));
    t.add(&[Code::Xlat_m8], xlat, Meta::plain(Isa::I8086));
    t.add(
        &[Code::Bswap_r16, Code::Bswap_r32],
        bswap,
        Meta::plain(Isa::I486),
    );
    t.add(CMOV, cmov, Meta::plain(Isa::PentiumPro));
    t.add(SETCC, setcc, Meta::plain(Isa::I386));
    t.add(
        &[Code::Nopw, Code::Nopd, Code::Pause],
        nop,
        Meta::plain(Isa::I8086),
    );
    t.add(NOP_RM, nop, Meta::plain(Isa::PentiumPro));
    register64(t);
}

/// The 64-bit forms, and MOVSXD.
fn register64(t: &mut TableBuilder) {
    let p = Meta::plain(Isa::X64);
    t.add(&[Code::Movzx_r64_rm8, Code::Movzx_r64_rm16], movzx, p);
    t.add(
        &[
            Code::Movsx_r64_rm8,
            Code::Movsx_r64_rm16,
            Code::Movsxd_r16_rm16,
            Code::Movsxd_r32_rm32,
            Code::Movsxd_r64_rm32,
        ],
        movsx,
        p,
    );
    t.add(&[Code::Xchg_rm64_r64, Code::Xchg_r64_RAX], xchg, p);
    t.add(&[Code::Lea_r64_m], lea, p);
    t.add(&[Code::Cdqe], cbw, p);
    t.add(&[Code::Cqo], cwd, p);
    t.add(&[Code::Bswap_r64], bswap, p);
    t.add(&[Code::Nopq], nop, p);
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::{run_real, run_real_with};

    #[test]
    fn xlat_wraps_at_16_bits() {
        // mov bx,0xfffe ; mov al,3 ; xlat  -> reads DS:0001, not 0x10001
        let (cpu, _) = run_real_with(&[0xbb, 0xfe, 0xff, 0xb0, 0x03, 0xd7], 3, |_, bus| {
            bus.load(1, &[0x5a]);
            bus.load(0x10001, &[0x77]);
        });
        assert_eq!(cpu.s.gpr[0] & 0xff, 0x5a);
    }

    #[test]
    fn movsx_and_cwd() {
        // mov al,0x80 ; cbw ; cwd
        let (cpu, _) = run_real(&[0xb0, 0x80, 0x98, 0x99], 3);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0xff80);
        assert_eq!(cpu.s.gpr[2] & 0xffff, 0xffff);
    }

    #[test]
    fn cmov_setcc_bswap() {
        // mov eax,0x11223344 ; bswap eax
        let (cpu, _) = run_real(&[0x66, 0xb8, 0x44, 0x33, 0x22, 0x11, 0x66, 0x0f, 0xc8], 2);
        assert_eq!(cpu.s.gpr[0], 0x4433_2211);
        // stc ; mov bx,5 ; cmovb ax,bx ; cmovae cx,bx ; setb dl
        let code = [
            0xf9, 0xbb, 0x05, 0x00, 0x0f, 0x42, 0xc3, 0x0f, 0x43, 0xcb, 0x0f, 0x92, 0xc2,
        ];
        let (cpu, _) = run_real_with(&code, 5, |cpu, _| cpu.s.gpr[1] = 7);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 5);
        assert_eq!(cpu.s.gpr[1] & 0xffff, 7);
        assert_eq!(cpu.s.gpr[2] & 0xff, 1);
    }

    #[test]
    fn xchg_with_self_addressing_register() {
        // mov bx,0x2000 ; xchg bh,[bx] : the store goes to 0x2000, not to the new BX
        let (cpu, bus) = run_real_with(&[0xbb, 0x00, 0x20, 0x86, 0x3f], 2, |_, bus| {
            bus.load(0x2000, &[0x30])
        });
        assert_eq!(bus.ram()[0x2000], 0x20);
        assert_eq!(cpu.s.gpr[3] & 0xffff, 0x3000);
    }

    #[test]
    fn lea_truncates_to_operand_size() {
        // mov bx,0xfff0 ; lea ax,[bx+0x20]
        let (cpu, _) = run_real(&[0xbb, 0xf0, 0xff, 0x8d, 0x47, 0x20], 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x0010);
    }

    #[test]
    fn endbr64_is_a_nop_without_cet() {
        // F3 0F 1E FA = endbr64, then 90 = nop
        let mut bus = crate::testbus::FlatBus::new(1 << 20);
        bus.load(0x1000, &[0xf3, 0x0f, 0x1e, 0xfa, 0x90]);
        let mut cpu = crate::Cpu::new();
        cpu.s.seg[crate::state::SegReg::Cs as usize] = crate::state::Segment::real_mode(0);
        cpu.s.rip = 0x1000;
        cpu.run(&mut bus, 1);
        assert_eq!(cpu.s.rip, 0x1004, "executed as a 4-byte NOP, not #UD");
    }
}
