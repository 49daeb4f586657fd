//! Segment register loads and stores: MOV Sreg, PUSH/POP Sreg, LDS/LES/LSS/LFS/LGS.

use crate::fault::{Exec, Fault};
use crate::operand::op_size;
use crate::state::SegReg;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};

/// The segment register an operand names (`#UD` for anything else).
pub(crate) fn sreg(r: Register) -> Exec<SegReg> {
    SegReg::from_iced(r).ok_or(Fault::UD)
}

/// Mask of the address size of the instruction's memory operand (offsets wrap at it).
#[must_use]
pub(crate) fn addr_mask(i: &Instruction) -> u64 {
    let size = if i.memory_base() != Register::None {
        i.memory_base().size()
    } else if i.memory_index() != Register::None {
        i.memory_index().size()
    } else {
        match i.memory_displ_size() {
            2 => 2,
            8 => 8,
            _ => 4,
        }
    };
    match size {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

impl Cpu {
    /// Mask of SP/ESP/RSP for the current stack.
    #[must_use]
    pub(crate) fn stack_mask(&self) -> u64 {
        crate::flags::size_mask(self.stack_width())
    }

    /// Read a far pointer (offset of `size` bytes, then a selector) from the memory operand.
    pub(crate) fn read_far_pointer(
        &mut self,
        bus: &mut dyn Bus,
        i: &Instruction,
        size: u8,
    ) -> Exec<(u64, u16)> {
        if i.op_kind(i.op_count() - 1) != OpKind::Memory {
            return Err(Fault::UD);
        }
        let ea = self.effective_address(i);
        let seg = self.mem_seg(i);
        let off = self.read_mem(bus, seg, ea, size)?;
        let sel_at = ea.wrapping_add(u64::from(size)) & addr_mask(i);
        let sel = self.read_mem(bus, seg, sel_at, 2)? as u16;
        Ok((off, sel))
    }
}

fn mov_sreg_rm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let s = sreg(i.op0_register())?;
    if s == SegReg::Cs {
        return Err(Fault::UD);
    }
    let sel = cpu.read_op(bus, i, 1, 2)? as u16;
    cpu.load_seg(bus, s, sel)?;
    if s == SegReg::Ss {
        // The next instruction (normally one that sets ESP) runs before any interrupt.
        cpu.s.events.interrupt_shadow = true;
    }
    Ok(())
}

fn mov_rm_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let s = sreg(i.op1_register())?;
    let v = u64::from(cpu.s.seg(s).selector);
    // A 32-bit register destination is zero-extended (P6 and later); memory takes 16 bits.
    let size = if i.op0_kind() == OpKind::Register {
        op_size(i, 0)
    } else {
        2
    };
    cpu.write_op(bus, i, 0, size, v)
}

/// Operand size of a PUSH/POP from iced's stack pointer increment.
fn stack_op_size(i: &Instruction) -> u8 {
    match i.stack_pointer_increment().unsigned_abs() {
        4 => 4,
        8 => 8,
        _ => 2,
    }
}

fn push_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let s = sreg(i.op0_register())?;
    let size = stack_op_size(i);
    let v = u64::from(cpu.s.seg(s).selector);
    let sp = cpu.sp().wrapping_sub(u64::from(size)) & cpu.stack_mask();
    // A 32-bit push of a segment register checks 4 bytes but writes only the low word.
    cpu.seg_linear(SegReg::Ss, sp, size, true)?;
    cpu.write_mem(bus, SegReg::Ss, sp, 2, v)?;
    cpu.set_sp(sp);
    Ok(())
}

fn pop_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let s = sreg(i.op0_register())?;
    if s == SegReg::Cs {
        return Err(Fault::UD);
    }
    let size = stack_op_size(i);
    let sel = cpu.peek(bus, 0, size)? as u16;
    // The increment uses the stack size in force before SS is reloaded.
    let width = cpu.stack_width();
    let sp = cpu.sp().wrapping_add(u64::from(size)) & cpu.stack_mask();
    cpu.load_seg(bus, s, sel)?;
    cpu.set_gpr(4, width, sp);
    if s == SegReg::Ss {
        cpu.s.events.interrupt_shadow = true;
    }
    Ok(())
}

fn load_far_pointer(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let s = match i.mnemonic() {
        Mnemonic::Lds => SegReg::Ds,
        Mnemonic::Les => SegReg::Es,
        Mnemonic::Lss => SegReg::Ss,
        Mnemonic::Lfs => SegReg::Fs,
        _ => SegReg::Gs,
    };
    let size = op_size(i, 0);
    let (off, sel) = cpu.read_far_pointer(bus, i, size)?;
    cpu.load_seg(bus, s, sel)?;
    cpu.set_reg(i.op0_register(), off);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    t.add(
        &[C::Mov_Sreg_rm16, C::Mov_Sreg_r32m16],
        mov_sreg_rm,
        Meta::plain(Isa::I8086),
    );
    t.add(
        &[C::Mov_rm16_Sreg, C::Mov_r32m16_Sreg],
        mov_rm_sreg,
        Meta::plain(Isa::I8086),
    );
    let push86 = [C::Pushw_ES, C::Pushw_CS, C::Pushw_SS, C::Pushw_DS];
    t.add(&push86, push_sreg, Meta::plain(Isa::I8086));
    let push386 = [
        C::Pushd_ES,
        C::Pushd_CS,
        C::Pushd_SS,
        C::Pushd_DS,
        C::Pushw_FS,
        C::Pushd_FS,
        C::Pushw_GS,
        C::Pushd_GS,
    ];
    t.add(&push386, push_sreg, Meta::plain(Isa::I386));
    t.add(
        &[C::Popw_ES, C::Popw_SS, C::Popw_DS],
        pop_sreg,
        Meta::plain(Isa::I8086),
    );
    let pop386 = [
        C::Popd_ES,
        C::Popd_SS,
        C::Popd_DS,
        C::Popw_FS,
        C::Popd_FS,
        C::Popw_GS,
        C::Popd_GS,
    ];
    t.add(&pop386, pop_sreg, Meta::plain(Isa::I386));
    let lxs86 = [C::Les_r16_m1616, C::Lds_r16_m1616];
    t.add(&lxs86, load_far_pointer, Meta::plain(Isa::I8086));
    let lxs386 = [
        C::Les_r32_m1632,
        C::Lds_r32_m1632,
        C::Lss_r16_m1616,
        C::Lss_r32_m1632,
        C::Lfs_r16_m1616,
        C::Lfs_r32_m1632,
        C::Lgs_r16_m1616,
        C::Lgs_r32_m1632,
    ];
    t.add(&lxs386, load_far_pointer, Meta::plain(Isa::I386));
    let x = Meta::plain(Isa::X64);
    t.add(&[C::Mov_Sreg_r64m16], mov_sreg_rm, x);
    t.add(&[C::Mov_r64m16_Sreg], mov_rm_sreg, x);
    t.add(&[C::Pushq_FS, C::Pushq_GS], push_sreg, x);
    t.add(&[C::Popq_FS, C::Popq_GS], pop_sreg, x);
    let lxs64 = [C::Lss_r64_m1664, C::Lfs_r64_m1664, C::Lgs_r64_m1664];
    t.add(&lxs64, load_far_pointer, x);
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::state::SegReg;
    use crate::testbus::FlatBus;
    use crate::{Cpu, Exec, Fault, Segment};
    use iced_x86::code_asm::*;
    use iced_x86::{Decoder, DecoderOptions};

    /// Execute the one instruction `bytes` at CS:IP by calling its handler directly.
    pub(crate) fn exec_bytes(cpu: &mut Cpu, bus: &mut FlatBus, bytes: &[u8]) -> Exec {
        let bitness = cpu.s.code_bitness();
        let ip = cpu.s.rip;
        bus.load(cpu.s.seg(SegReg::Cs).base + ip, bytes);
        let insn = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE).decode();
        cpu.next_ip = ip + insn.len() as u64;
        (crate::table::entry(insn.code()).handler)(cpu, bus, &insn)?;
        cpu.s.rip = cpu.next_ip;
        Ok(())
    }

    /// Assemble one instruction for the current code size and execute it.
    pub(crate) fn exec(
        cpu: &mut Cpu,
        bus: &mut FlatBus,
        f: impl FnOnce(&mut CodeAssembler),
    ) -> Exec {
        let mut a = CodeAssembler::new(cpu.s.code_bitness()).unwrap();
        f(&mut a);
        let bytes = a.assemble(cpu.s.rip).unwrap();
        exec_bytes(cpu, bus, &bytes)
    }

    pub(crate) fn real_mode() -> (Cpu, FlatBus) {
        let mut cpu = Cpu::new();
        cpu.s.seg[SegReg::Cs as usize] = Segment::real_mode(0);
        cpu.s.rip = 0x1000;
        cpu.s.gpr[4] = 0x8000;
        (cpu, FlatBus::new(1 << 20))
    }

    #[test]
    fn real_mode_mov_sreg_sets_base_and_inhibits_interrupts_after_ss() {
        let (mut cpu, mut bus) = real_mode();
        cpu.s.gpr[0] = 0x1234;
        exec(&mut cpu, &mut bus, |a| a.mov(ds, ax).unwrap()).unwrap();
        assert_eq!(cpu.s.seg(SegReg::Ds).base, 0x12340);
        assert!(!cpu.s.events.interrupt_shadow);
        exec(&mut cpu, &mut bus, |a| a.mov(ss, ax).unwrap()).unwrap();
        assert!(cpu.s.events.interrupt_shadow);
        // MOV CS is invalid.
        assert_eq!(
            exec_bytes(&mut cpu, &mut bus, &[0x8e, 0xc8]),
            Err(Fault::UD)
        );
    }

    #[test]
    fn far_pointer_loads_and_segment_pushes() {
        let (mut cpu, mut bus) = real_mode();
        bus.load(0x100, &[0x78, 0x56, 0x34, 0x12, 0x00, 0x20]);
        exec(&mut cpu, &mut bus, |a| a.lds(si, ptr(0x100)).unwrap()).unwrap();
        assert_eq!(
            (cpu.s.gpr[6] & 0xffff, cpu.s.seg(SegReg::Ds).selector),
            (0x5678, 0x1234)
        );
        cpu.s.seg[SegReg::Ds as usize] = Segment::real_mode(0);
        exec(&mut cpu, &mut bus, |a| a.lss(esp, ptr(0x100)).unwrap()).unwrap();
        assert_eq!(
            (cpu.s.gpr[4], cpu.s.seg(SegReg::Ss).selector),
            (0x1234_5678, 0x2000)
        );
        cpu.s.gpr[4] = 0x100;
        bus.load(0x2_00fc, &[0xaa; 4]);
        // A 32-bit push of a segment register writes only the low word.
        exec_bytes(&mut cpu, &mut bus, &[0x66, 0x06]).unwrap();
        assert_eq!(cpu.s.gpr[4], 0xfc);
        assert_eq!(&bus.ram()[0x2_00fc..0x2_0100], &[0, 0, 0xaa, 0xaa]);
        exec_bytes(&mut cpu, &mut bus, &[0x0f, 0xa1]).unwrap(); // pop fs
        assert_eq!((cpu.s.gpr[4], cpu.s.seg(SegReg::Fs).selector), (0xfe, 0));
    }
}
