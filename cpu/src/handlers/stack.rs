//! Stack instructions: PUSH/POP (register, memory, immediate), PUSHA/POPA, PUSHF/POPF with the
//! IOPL and virtual-8086 rules, ENTER (with nesting levels) and LEAVE.

use crate::fault::{Exec, Fault};
use crate::flags::size_mask;
use crate::operand::op_size;
use crate::state::{cr4, rflags, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, OpKind};

fn push_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = match i.code() {
        Code::Push_imm16 | Code::Pushw_imm8 => 2,
        Code::Pushd_imm32 | Code::Pushd_imm8 => 4,
        _ => op_size(i, 0),
    };
    // PUSH SP pushes the value SP had before the push (80286 and later).
    let v = cpu.read_op(bus, i, 0, size)?;
    cpu.push(bus, size, v)
}

fn pop_reg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let r = i.op0_register();
    let v = cpu.pop(bus, r.size() as u8)?;
    // POP SP: the popped value replaces the incremented SP.
    cpu.set_reg(r, v);
    Ok(())
}

/// POP r/m: the memory address is computed after SP has been incremented.
fn pop_rm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if i.op0_kind() == OpKind::Register {
        return pop_reg(cpu, bus, i);
    }
    let size = op_size(i, 0);
    let old = cpu.s.gpr[4];
    let v = cpu.pop(bus, size)?;
    let r = cpu.write_op(bus, i, 0, size, v);
    if r.is_err() {
        cpu.s.gpr[4] = old;
    }
    r
}

const PUSHA_ORDER: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

fn pusha(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size: u8 = if i.code() == Code::Pushaw { 2 } else { 4 };
    let mask = size_mask(cpu.stack_width());
    let sp = cpu.sp();
    let vals = PUSHA_ORDER.map(|r| cpu.gpr(r, size));
    for (k, v) in vals.iter().enumerate() {
        let at = sp.wrapping_sub(u64::from(size) * (k as u64 + 1)) & mask;
        cpu.write_mem(bus, SegReg::Ss, at, size, *v)?;
    }
    cpu.set_sp(sp.wrapping_sub(u64::from(size) * 8));
    Ok(())
}

fn popa(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size: u8 = if i.code() == Code::Popaw { 2 } else { 4 };
    let mut vals = [0u64; 8];
    for (k, v) in vals.iter_mut().enumerate() {
        *v = cpu.peek(bus, u64::from(size) * k as u64, size)?;
    }
    // Stack order is DI, SI, BP, (SP skipped), BX, DX, CX, AX.
    for (k, v) in vals.iter().enumerate() {
        let reg = 7 - k;
        if reg != 4 {
            cpu.set_gpr(reg, size, *v);
        }
    }
    let sp = cpu.sp().wrapping_add(u64::from(size) * 8);
    cpu.set_sp(sp);
    Ok(())
}

/// Operand size of PUSHF/POPF/ENTER/LEAVE from the form.
fn form_size(code: Code) -> u8 {
    match code {
        Code::Pushfw | Code::Popfw | Code::Enterw_imm16_imm8 | Code::Leavew => 2,
        Code::Pushfq | Code::Popfq | Code::Enterq_imm16_imm8 | Code::Leaveq => 8,
        _ => 4,
    }
}

fn pushf(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = form_size(i.code());
    let mut f = cpu.flags();
    if cpu.s.v86_mode() && cpu.s.iopl() < 3 {
        if size == 4 || cpu.s.cr4 & cr4::VME == 0 {
            return Err(Fault::gp(0));
        }
        // VME: the image shows VIF in the IF position and IOPL as 3.
        f = (f & !rflags::IF) | rflags::IOPL;
        if cpu.s.rflags & rflags::VIF != 0 {
            f |= rflags::IF;
        }
    }
    // VM and RF never appear in the pushed image.
    cpu.push(bus, size, f & !(rflags::VM | rflags::RF))
}

/// Flags POPF may ever change (Pentium Pro: AC and ID exist).
const POPF_WRITABLE: u64 = rflags::ARITH
    | rflags::TF
    | rflags::IF
    | rflags::DF
    | rflags::IOPL
    | rflags::NT
    | rflags::AC
    | rflags::ID;

fn popf(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = form_size(i.code());
    let old = cpu.flags();
    let v86 = cpu.s.v86_mode();
    if v86 && cpu.s.iopl() < 3 {
        return popf_vme(cpu, bus, size, old);
    }
    let new = cpu.peek(bus, 0, size)?;
    let mut writable = POPF_WRITABLE & size_mask(size);
    let cpl = cpu.s.cpl();
    if cpu.s.protected_mode() && cpl > 0 {
        // Only CPL 0 may change IOPL (in V86 mode CPL is 3).
        writable &= !rflags::IOPL;
        if cpl > cpu.s.iopl() {
            writable &= !rflags::IF;
        }
    }
    // POPFD/POPFQ clear RF; VM, VIP and VIF are never loaded by POPF.
    let mut f = (old & !writable) | (new & writable);
    if size >= 4 {
        f &= !rflags::RF;
    }
    cpu.pop(bus, size)?;
    cpu.set_flags(f);
    Ok(())
}

/// POPF in virtual-8086 mode with IOPL < 3: #GP unless CR4.VME, which redirects IF to VIF.
fn popf_vme(cpu: &mut Cpu, bus: &mut dyn Bus, size: u8, old: u64) -> Exec {
    if size == 4 || cpu.s.cr4 & cr4::VME == 0 {
        return Err(Fault::gp(0));
    }
    let new = cpu.peek(bus, 0, 2)?;
    if new & rflags::TF != 0 || (new & rflags::IF != 0 && old & rflags::VIP != 0) {
        return Err(Fault::gp(0));
    }
    let writable = POPF_WRITABLE & 0xffff & !(rflags::IOPL | rflags::IF);
    let mut f = (old & !writable) | (new & writable);
    f = (f & !rflags::VIF)
        | if new & rflags::IF != 0 {
            rflags::VIF
        } else {
            0
        };
    cpu.pop(bus, 2)?;
    cpu.set_flags(f);
    Ok(())
}

fn enter(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = form_size(i.code());
    let alloc = u64::from(i.immediate16());
    let level = u64::from(i.immediate8_2nd() & 31);
    let sw = cpu.stack_width();
    let mask = size_mask(sw);
    let sz = u64::from(size);
    let mut sp = cpu.sp();
    let mut bp = cpu.gpr(5, sw);
    let put = |cpu: &mut Cpu, bus: &mut dyn Bus, sp: &mut u64, v: u64| -> Exec {
        *sp = sp.wrapping_sub(sz) & mask;
        cpu.write_mem(bus, SegReg::Ss, *sp, size, v)
    };
    let old_bp = cpu.gpr(5, size);
    put(cpu, bus, &mut sp, old_bp)?;
    let frame = sp;
    if level > 0 {
        for _ in 1..level {
            bp = bp.wrapping_sub(sz) & mask;
            let v = cpu.read_mem(bus, SegReg::Ss, bp, size)?;
            put(cpu, bus, &mut sp, v)?;
        }
        put(cpu, bus, &mut sp, frame)?;
    }
    let new_sp = sp.wrapping_sub(alloc) & mask;
    // The final stack pointer must lie within the stack segment.
    cpu.seg_linear(SegReg::Ss, new_sp, 1, true)?;
    // BP or EBP by the stack size, as the manual's pseudo-code has it.
    cpu.set_gpr(5, sw, frame);
    cpu.set_sp(new_sp);
    Ok(())
}

fn leave(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = form_size(i.code());
    let sw = cpu.stack_width();
    let bp = cpu.gpr(5, sw);
    let v = cpu.read_mem(bus, SegReg::Ss, bp, size)?;
    cpu.set_sp(bp.wrapping_add(u64::from(size)));
    cpu.set_gpr(5, size, v);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let p = Meta::plain(Isa::I8086);
    t.add(
        &[
            Code::Push_r16,
            Code::Push_r32,
            Code::Push_rm16,
            Code::Push_rm32,
        ],
        push_op,
        p,
    );
    t.add(
        &[
            Code::Push_imm16,
            Code::Pushd_imm32,
            Code::Pushw_imm8,
            Code::Pushd_imm8,
        ],
        push_op,
        Meta::plain(Isa::I186),
    );
    t.add(&[Code::Pop_r16, Code::Pop_r32], pop_reg, p);
    t.add(&[Code::Pop_rm16, Code::Pop_rm32], pop_rm, p);
    t.add(&[Code::Pushaw, Code::Pushad], pusha, Meta::plain(Isa::I186));
    t.add(&[Code::Popaw, Code::Popad], popa, Meta::plain(Isa::I186));
    t.add(&[Code::Pushfw, Code::Pushfd], pushf, p);
    t.add(&[Code::Popfw, Code::Popfd], popf, Meta::branch(Isa::I8086));
    t.add(
        &[Code::Enterw_imm16_imm8, Code::Enterd_imm16_imm8],
        enter,
        Meta::plain(Isa::I186),
    );
    t.add(&[Code::Leavew, Code::Leaved], leave, Meta::plain(Isa::I186));
    let x = Meta::plain(Isa::X64);
    t.add(
        &[
            Code::Push_r64,
            Code::Push_rm64,
            Code::Pushq_imm32,
            Code::Pushq_imm8,
        ],
        push_op,
        x,
    );
    t.add(&[Code::Pop_r64], pop_reg, x);
    t.add(&[Code::Pop_rm64], pop_rm, x);
    t.add(&[Code::Pushfq], pushf, x);
    t.add(&[Code::Popfq], popf, Meta::branch(Isa::X64));
    t.add(&[Code::Enterq_imm16_imm8], enter, x);
    t.add(&[Code::Leaveq], leave, x);
}

#[cfg(test)]
mod tests {
    use crate::fault::Fault;
    use crate::handlers::alu::tests::{exec16, run_real};
    use crate::state::{cr4, rflags};

    #[test]
    fn push_sp_pushes_old_value() {
        // mov sp,0x2000 ; push sp
        let (cpu, bus) = run_real(&[0xbc, 0x00, 0x20, 0x54], 2);
        assert_eq!(cpu.s.gpr[4] & 0xffff, 0x1ffe);
        assert_eq!(&bus.ram()[0x1ffe..0x2000], &[0x00, 0x20]);
    }

    #[test]
    fn enter_with_nesting() {
        // mov sp,0x2000 ; mov bp,0x3000 ; enter 8,2
        let (cpu, bus) = run_real(
            &[0xbc, 0x00, 0x20, 0xbd, 0x00, 0x30, 0xc8, 0x08, 0x00, 0x02],
            3,
        );
        // pushes old BP (0x3000) at 1ffe, [bp-2] (0) at 1ffc, frame 1ffe at 1ffa
        assert_eq!(
            &bus.ram()[0x1ffa..0x2000],
            &[0xfe, 0x1f, 0x00, 0x00, 0x00, 0x30]
        );
        assert_eq!(cpu.s.gpr[5] & 0xffff, 0x1ffe);
        assert_eq!(cpu.s.gpr[4] & 0xffff, 0x1ffa - 8);
    }

    /// A CPU in virtual-8086 mode with IOPL 0 and a stack at 0000:2000.
    fn v86() -> (crate::Cpu, crate::testbus::FlatBus) {
        let mut cpu = crate::Cpu::new();
        cpu.s.cr0 |= crate::state::cr0::PE;
        cpu.set_flags(rflags::VM);
        cpu.s.gpr[4] = 0x2000;
        (cpu, crate::testbus::FlatBus::new(1 << 20))
    }

    #[test]
    fn popf_pushf_in_v86() {
        let (mut cpu, mut bus) = v86();
        // IOPL < 3 without VME: PUSHF and POPF fault.
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x9c]), Err(Fault::gp(0)));
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x9d]), Err(Fault::gp(0)));
        // With VME, POPF moves the popped IF into VIF and leaves IF and IOPL alone.
        cpu.s.cr4 |= cr4::VME;
        bus.load(0x2000, &[0x00, 0x32]); // IF | IOPL 3
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x9d]), Ok(()));
        let f = cpu.flags();
        assert_eq!(f & (rflags::IF | rflags::IOPL), 0);
        assert_ne!(f & rflags::VIF, 0);
        // PUSHF then shows VIF as IF, and IOPL 3.
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x9c]), Ok(()));
        assert_eq!(&bus.ram()[0x2000..0x2002], &[0x02, 0x32]);
        // POPFD is never virtualised.
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x66, 0x9d]), Err(Fault::gp(0)));
        // IOPL 3: POPF changes IF but not IOPL.
        let (mut cpu, mut bus) = v86();
        cpu.set_flags(rflags::VM | rflags::IOPL);
        bus.load(0x2000, &[0x00, 0x02]);
        assert_eq!(exec16(&mut cpu, &mut bus, &[0x9d]), Ok(()));
        assert_eq!(
            cpu.flags() & (rflags::IF | rflags::IOPL | rflags::VM),
            rflags::IF | rflags::IOPL | rflags::VM
        );
    }

    #[test]
    fn popf_real_mode_sets_iopl() {
        // mov sp,0x2000 ; push 0x3ed7 ; popf
        let (cpu, _) = run_real(&[0xbc, 0x00, 0x20, 0x68, 0xd7, 0x3e, 0x9d], 3);
        assert_eq!(cpu.flags() & 0xffff, 0x3ed7 | 2);
    }
}
