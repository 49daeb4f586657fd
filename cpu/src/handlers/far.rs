//! Far control transfers: JMP and CALL ptr16:16/32 and m16:16/32 to code segments, through
//! call gates (with a stack switch and parameter copying for more privileged targets), to task
//! gates and TSSs (task switch); far RET, including returns to an outer privilege level.

use crate::descriptor::{sys, v86_segment, Descriptor};
use crate::fault::{Exec, Fault};
use crate::state::{SegReg, Segment};
use crate::table::{Isa, Meta, TableBuilder};
use crate::task::TaskSource;
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, MemorySize, OpKind};

/// Offset, selector and operand size (2 or 4) of a far JMP/CALL target.
fn far_target(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec<(u64, u16, u8)> {
    match i.op0_kind() {
        OpKind::FarBranch16 => Ok((u64::from(i.far_branch16()), i.far_branch_selector(), 2)),
        OpKind::FarBranch32 => Ok((u64::from(i.far_branch32()), i.far_branch_selector(), 4)),
        OpKind::Memory => {
            let size = match i.memory_size() {
                MemorySize::SegPtr64 => 8,
                MemorySize::SegPtr32 => 4,
                _ => 2,
            };
            let (off, sel) = cpu.read_far_pointer(bus, i, size)?;
            Ok((off, sel, size))
        }
        _ => Err(Fault::UD),
    }
}

/// Privilege rules for a direct transfer to a code segment (not through a gate): conforming
/// needs DPL <= CPL, non-conforming needs RPL <= CPL and DPL = CPL.
pub(crate) fn check_direct_code(d: &Descriptor, sel: u16, cpl: u8) -> Exec {
    let rpl = (sel & 3) as u8;
    let ok = if d.conforming() {
        d.dpl() <= cpl
    } else {
        rpl <= cpl && d.dpl() == cpl
    };
    if !ok {
        return Err(Fault::gp(sel & 0xfffc));
    }
    if !d.present() {
        return Err(Fault::np(sel & 0xfffc));
    }
    Ok(())
}

impl Cpu {
    /// Load CS in real or virtual-8086 mode. Real mode keeps the cached limit and attributes.
    pub(crate) fn load_cs_real(&mut self, sel: u16) {
        let v86 = self.s.v86_mode();
        let cs = &mut self.s.seg[SegReg::Cs as usize];
        *cs = if v86 {
            v86_segment(sel)
        } else {
            Segment {
                base: u64::from(sel) << 4,
                selector: sel,
                ..*cs
            }
        };
    }

    /// Load CS from a checked descriptor with RPL = `cpl` (which becomes the CPL).
    pub(crate) fn load_cs_protected(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        d: Descriptor,
        cpl: u8,
    ) -> Exec {
        self.mark_accessed(bus, sel, d)?;
        self.s.seg[SegReg::Cs as usize] =
            Descriptor(d.0 | 1 << 40).to_segment((sel & 0xfffc) | u16::from(cpl));
        Ok(())
    }

    /// Push `values` (first pushed first) of `size` bytes on the current stack and return the
    /// new SP without committing it: a fault leaves SP and all registers unchanged.
    pub(crate) fn push_values(&mut self, bus: &mut dyn Bus, size: u8, values: &[u64]) -> Exec<u64> {
        let mask = self.stack_mask();
        let mut sp = self.sp();
        for &v in values {
            sp = sp.wrapping_sub(u64::from(size)) & mask;
            self.write_mem(bus, SegReg::Ss, sp, size, v)?;
        }
        Ok(sp)
    }

    /// Read the call gate's target code segment: its selector and descriptor (#GP checks).
    pub(crate) fn gate_target(
        &mut self,
        bus: &mut dyn Bus,
        gate: &Descriptor,
    ) -> Exec<(u16, Descriptor)> {
        let sel = gate.gate_selector();
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(bus, sel, Fault::gp)?;
        if !d.is_code() {
            return Err(Fault::gp(sel & 0xfffc));
        }
        Ok((sel, d))
    }

    /// Checks shared by JMP/CALL through a gate or to a TSS: DPL >= CPL and DPL >= RPL, present.
    pub(crate) fn check_gate(&self, d: &Descriptor, sel: u16) -> Exec {
        if d.dpl() < self.s.cpl() || ((sel & 3) as u8) > d.dpl() {
            return Err(Fault::gp(sel & 0xfffc));
        }
        if !d.present() {
            return Err(Fault::np(sel & 0xfffc));
        }
        Ok(())
    }

    /// JMP/CALL to a task gate or TSS: find the TSS, check it is available, switch tasks.
    fn far_task_switch(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        d: Descriptor,
        source: TaskSource,
    ) -> Exec {
        self.check_gate(&d, sel)?;
        let (tss_sel, td) = if d.typ() == sys::TASK_GATE {
            let tss_sel = d.gate_selector();
            let td = self.gdt_tss(bus, tss_sel, Fault::gp)?;
            if td.typ() & 2 != 0 {
                return Err(Fault::gp(tss_sel & 0xfffc));
            }
            if !td.present() {
                return Err(Fault::np(tss_sel & 0xfffc));
            }
            (tss_sel, td)
        } else {
            if sel & 4 != 0 {
                return Err(Fault::gp(sel & 0xfffc));
            }
            (sel, d)
        };
        let ret = self.next_ip;
        let trap = self.task_switch(bus, tss_sel, td, source, ret, None)?;
        self.finish_task_switch(bus, trap);
        Ok(())
    }

    /// Read the descriptor a far JMP/CALL names (null selector: #GP(0)).
    pub(crate) fn far_descriptor(&mut self, bus: &mut dyn Bus, sel: u16) -> Exec<Descriptor> {
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        self.read_descriptor(bus, sel, Fault::gp)
    }

    fn jmp_far_protected(&mut self, bus: &mut dyn Bus, off: u64, sel: u16) -> Exec {
        let cpl = self.s.cpl();
        let d = self.far_descriptor(bus, sel)?;
        if d.is_segment() {
            if !d.is_code() {
                return Err(Fault::gp(sel & 0xfffc));
            }
            check_direct_code(&d, sel, cpl)?;
            if off > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            self.load_cs_protected(bus, sel, d, cpl)?;
            self.next_ip = off;
            return Ok(());
        }
        match d.typ() {
            sys::CALL_GATE16 | sys::CALL_GATE32 => {
                self.check_gate(&d, sel)?;
                let (tsel, td) = self.gate_target(bus, &d)?;
                check_direct_code(&td, tsel & 0xfffc, cpl)?;
                let off = d.gate_offset();
                if off > u64::from(td.limit()) {
                    return Err(Fault::gp(0));
                }
                self.load_cs_protected(bus, tsel, td, cpl)?;
                self.next_ip = off;
                Ok(())
            }
            sys::TASK_GATE | sys::TSS16_AVAIL | sys::TSS32_AVAIL => {
                self.far_task_switch(bus, sel, d, TaskSource::Jmp)
            }
            _ => Err(Fault::gp(sel & 0xfffc)),
        }
    }

    fn call_far_protected(&mut self, bus: &mut dyn Bus, off: u64, sel: u16, size: u8) -> Exec {
        let cpl = self.s.cpl();
        let d = self.far_descriptor(bus, sel)?;
        let old_cs = u64::from(self.s.seg(SegReg::Cs).selector);
        let ret = self.next_ip;
        if d.is_segment() {
            if !d.is_code() {
                return Err(Fault::gp(sel & 0xfffc));
            }
            check_direct_code(&d, sel, cpl)?;
            let sp = self.push_values(bus, size, &[old_cs, ret])?;
            if off > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            self.load_cs_protected(bus, sel, d, cpl)?;
            self.set_sp(sp);
            self.next_ip = off;
            return Ok(());
        }
        match d.typ() {
            sys::CALL_GATE16 | sys::CALL_GATE32 => self.call_gate(bus, sel, d),
            sys::TASK_GATE | sys::TSS16_AVAIL | sys::TSS32_AVAIL => {
                self.far_task_switch(bus, sel, d, TaskSource::Call)
            }
            _ => Err(Fault::gp(sel & 0xfffc)),
        }
    }

    /// CALL through a call gate: to the same level, or to a more privileged non-conforming
    /// segment on the stack the TSS gives for it, copying the gate's parameter count.
    fn call_gate(&mut self, bus: &mut dyn Bus, sel: u16, gate: Descriptor) -> Exec {
        let cpl = self.s.cpl();
        self.check_gate(&gate, sel)?;
        let (tsel, td) = self.gate_target(bus, &gate)?;
        if td.dpl() > cpl {
            return Err(Fault::gp(tsel & 0xfffc));
        }
        if !td.present() {
            return Err(Fault::np(tsel & 0xfffc));
        }
        let width: u8 = if gate.typ() == sys::CALL_GATE32 { 4 } else { 2 };
        let off = gate.gate_offset();
        let old_cs = u64::from(self.s.seg(SegReg::Cs).selector);
        let ret = self.next_ip;
        if td.conforming() || td.dpl() == cpl {
            let sp = self.push_values(bus, width, &[old_cs, ret])?;
            if off > u64::from(td.limit()) {
                return Err(Fault::gp(0));
            }
            self.load_cs_protected(bus, tsel, td, cpl)?;
            self.set_sp(sp);
            self.next_ip = off;
            return Ok(());
        }
        let new_cpl = td.dpl();
        let mut stack = self.inner_stack(bus, new_cpl)?;
        let params = u64::from(gate.gate_params());
        stack.room(self, (4 + params) * u64::from(width))?;
        if off > u64::from(td.limit()) {
            return Err(Fault::gp(0));
        }
        let old_ss = u64::from(self.s.seg(SegReg::Ss).selector);
        let old_sp = self.s.gpr[4];
        stack.push(self, bus, width, old_ss)?;
        stack.push(self, bus, width, old_sp)?;
        for k in (0..params).rev() {
            let v = self.peek(bus, k * u64::from(width), width)?;
            stack.push(self, bus, width, v)?;
        }
        stack.push(self, bus, width, old_cs)?;
        stack.push(self, bus, width, ret)?;
        self.load_cs_protected(bus, tsel, td, new_cpl)?;
        stack.commit(self);
        self.next_ip = off;
        Ok(())
    }

    /// Validate the CS selector popped by RETF/IRET in protected mode.
    pub(crate) fn check_return_cs(&mut self, bus: &mut dyn Bus, sel: u16) -> Exec<Descriptor> {
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(bus, sel, Fault::gp)?;
        let rpl = (sel & 3) as u8;
        let code = sel & 0xfffc;
        if !d.is_code() || rpl < self.s.cpl() {
            return Err(Fault::gp(code));
        }
        if (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
            return Err(Fault::gp(code));
        }
        if !d.present() {
            return Err(Fault::np(code));
        }
        Ok(d)
    }

    /// Validate the SS selector popped by a return to privilege level `rpl`.
    pub(crate) fn check_return_ss(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        rpl: u8,
    ) -> Exec<Descriptor> {
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.read_descriptor(bus, sel, Fault::gp)?;
        let code = sel & 0xfffc;
        if (sel & 3) as u8 != rpl || !d.writable_data() || d.dpl() != rpl {
            return Err(Fault::gp(code));
        }
        if !d.present() {
            return Err(Fault::ss(code));
        }
        Ok(d)
    }

    /// Commit a return to an outer level: CS, SS and the popped stack pointer (all of ESP for
    /// a 32-bit stack segment, only SP for a 16-bit one), then `release` bytes off the new
    /// stack; data segments the new CPL may not use become null.
    pub(crate) fn commit_outer_return(
        &mut self,
        bus: &mut dyn Bus,
        cs: (u16, Descriptor),
        ss: (u16, Descriptor),
        sp: u64,
        release: u64,
    ) -> Exec {
        let rpl = (cs.0 & 3) as u8;
        self.mark_accessed(bus, ss.0, ss.1)?;
        self.load_cs_protected(bus, cs.0, cs.1, rpl)?;
        self.s.seg[SegReg::Ss as usize] = Descriptor(ss.1 .0 | 1 << 40).to_segment(ss.0);
        self.set_sp(sp);
        let new_sp = self.sp().wrapping_add(release) & self.stack_mask();
        self.set_sp(new_sp);
        self.nullify_data_segs(rpl);
        Ok(())
    }

    fn retf_protected(&mut self, bus: &mut dyn Bus, size: u8, imm: u64) -> Exec {
        let w = u64::from(size);
        let ip = self.peek(bus, 0, size)?;
        let sel = self.peek(bus, w, size)? as u16;
        let d = self.check_return_cs(bus, sel)?;
        let rpl = (sel & 3) as u8;
        if rpl > self.s.cpl() {
            let sp = self.peek(bus, 2 * w + imm, size)?;
            let ss = self.peek(bus, 3 * w + imm, size)? as u16;
            let sd = self.check_return_ss(bus, ss, rpl)?;
            if ip > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            self.commit_outer_return(bus, (sel, d), (ss, sd), sp, imm)?;
        } else {
            if ip > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            let cpl = self.s.cpl();
            self.load_cs_protected(bus, sel, d, cpl)?;
            let sp = self.sp().wrapping_add(2 * w + imm) & self.stack_mask();
            self.set_sp(sp);
        }
        self.next_ip = ip;
        Ok(())
    }
}

fn jmp_far(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let (off, sel, _) = far_target(cpu, bus, i)?;
    if !cpu.s.protected_mode() || cpu.s.v86_mode() {
        if off > u64::from(cpu.s.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        cpu.load_cs_real(sel);
        cpu.next_ip = off;
        return Ok(());
    }
    if cpu.s.long_mode() {
        return cpu.jmp_far_long(bus, off, sel);
    }
    cpu.jmp_far_protected(bus, off, sel)
}

fn call_far(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let (off, sel, size) = far_target(cpu, bus, i)?;
    if !cpu.s.protected_mode() || cpu.s.v86_mode() {
        let old_cs = u64::from(cpu.s.seg(SegReg::Cs).selector);
        let sp = cpu.push_values(bus, size, &[old_cs, cpu.next_ip])?;
        if off > u64::from(cpu.s.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        cpu.set_sp(sp);
        cpu.load_cs_real(sel);
        cpu.next_ip = off;
        return Ok(());
    }
    if cpu.s.long_mode() {
        return cpu.call_far_long(bus, off, sel, size);
    }
    cpu.call_far_protected(bus, off, sel, size)
}

fn retf(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = match i.code() {
        Code::Retfd | Code::Retfd_imm16 => 4,
        Code::Retfq | Code::Retfq_imm16 => 8,
        _ => 2,
    };
    let imm = if i.op_count() > 0 {
        u64::from(i.immediate16())
    } else {
        0
    };
    if !cpu.s.protected_mode() || cpu.s.v86_mode() {
        let w = u64::from(size);
        let ip = cpu.peek(bus, 0, size)?;
        let sel = cpu.peek(bus, w, size)? as u16;
        if ip > u64::from(cpu.s.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        cpu.load_cs_real(sel);
        let sp = cpu.sp().wrapping_add(2 * w + imm) & cpu.stack_mask();
        cpu.set_sp(sp);
        cpu.next_ip = ip;
        return Ok(());
    }
    if cpu.s.long_mode() {
        return cpu.retf_long(bus, size, imm);
    }
    cpu.retf_protected(bus, size, imm)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(
        &[
            Code::Jmp_ptr1616,
            Code::Jmp_m1616,
            Code::Call_ptr1616,
            Code::Call_m1616,
        ],
        far_dispatch,
        Meta::branch(Isa::I8086),
    );
    t.add(
        &[
            Code::Jmp_ptr1632,
            Code::Jmp_m1632,
            Code::Call_ptr1632,
            Code::Call_m1632,
        ],
        far_dispatch,
        Meta::branch(Isa::I386),
    );
    t.add(
        &[Code::Retfw, Code::Retfw_imm16],
        retf,
        Meta::branch(Isa::I8086),
    );
    t.add(
        &[Code::Retfd, Code::Retfd_imm16],
        retf,
        Meta::branch(Isa::I386),
    );
    t.add(
        &[Code::Jmp_m1664, Code::Call_m1664],
        far_dispatch,
        Meta::branch(Isa::X64),
    );
    t.add(
        &[Code::Retfq, Code::Retfq_imm16],
        retf,
        Meta::branch(Isa::X64),
    );
}

fn far_dispatch(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    match i.code() {
        Code::Jmp_ptr1616
        | Code::Jmp_ptr1632
        | Code::Jmp_m1616
        | Code::Jmp_m1632
        | Code::Jmp_m1664 => jmp_far(cpu, bus, i),
        _ => call_far(cpu, bus, i),
    }
}
