//! Far transfers in IA-32e mode: JMP and CALL to 64-bit or compatibility-mode code segments
//! and through 16-byte 64-bit call gates (CALL to a more privileged level takes RSPn from the
//! 64-bit TSS and a null SS), far RET, and IRET/IRETQ with the long-mode stack rules (64-bit
//! mode always pops SS:RSP). Task gates and TSSs are not valid targets in IA-32e mode.

use crate::descriptor::{null_ss, sys, Descriptor};
use crate::fault::{Exec, Fault};
use crate::handlers::far::check_direct_code;
use crate::idt64::{long_code, tss64};
use crate::state::{attr, rflags, SegReg, Segment};
use crate::{Bus, Cpu};

/// A code segment a far transfer may load in IA-32e mode (L together with D is reserved).
fn check_code_kind(d: &Descriptor, sel: u16) -> Exec {
    if !d.is_code() || d.attr() & (attr::L | attr::DB) == attr::L | attr::DB {
        return Err(Fault::gp(sel & 0xfffc));
    }
    Ok(())
}

impl Cpu {
    /// A far target offset: canonical for 64-bit code, within the limit otherwise.
    fn check_far_offset(&self, d: &Descriptor, off: u64) -> Exec {
        let ok = if long_code(d) {
            self.s.canonical(off)
        } else {
            off <= u64::from(d.limit())
        };
        if !ok {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    /// A 64-bit call gate named by `sel`: its target selector, descriptor and 64-bit offset.
    fn call_gate64(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        gate: Descriptor,
    ) -> Exec<(u16, Descriptor, u64)> {
        self.check_gate(&gate, sel)?;
        let high = self.read_descriptor_high(bus, sel)?;
        let (tsel, td) = self.gate_target(bus, &gate)?;
        if !long_code(&td) {
            return Err(Fault::gp(tsel & 0xfffc));
        }
        let off = (gate.0 & 0xffff) | ((gate.0 >> 48) << 16) | (high << 32);
        Ok((tsel, td, off))
    }

    /// Push quadwords (first pushed first) below `rsp` in the 64-bit linear space; returns
    /// the new RSP. #SS(0) when the frame is not canonical.
    fn push_frame64(
        &mut self,
        bus: &mut dyn Bus,
        rsp: u64,
        values: &[u64],
        user: bool,
    ) -> Exec<u64> {
        let low = rsp.wrapping_sub(8 * values.len() as u64);
        if !self.s.canonical(low) || !self.s.canonical(rsp.wrapping_sub(1)) {
            return Err(Fault::ss(0));
        }
        for (k, v) in values.iter().enumerate() {
            let at = rsp.wrapping_sub(8 * (k as u64 + 1));
            self.write_linear(bus, at, &v.to_le_bytes(), user)?;
        }
        Ok(low)
    }

    pub(crate) fn jmp_far_long(&mut self, bus: &mut dyn Bus, off: u64, sel: u16) -> Exec {
        let cpl = self.s.cpl();
        let d = self.far_descriptor(bus, sel)?;
        let (sel, d, off) = if d.is_segment() {
            check_code_kind(&d, sel)?;
            (sel, d, off)
        } else if d.typ() == sys::CALL_GATE32 {
            self.call_gate64(bus, sel, d)?
        } else {
            return Err(Fault::gp(sel & 0xfffc));
        };
        check_direct_code(&d, sel, cpl)?;
        self.check_far_offset(&d, off)?;
        self.load_cs_protected(bus, sel, d, cpl)?;
        self.next_ip = off;
        Ok(())
    }

    pub(crate) fn call_far_long(
        &mut self,
        bus: &mut dyn Bus,
        off: u64,
        sel: u16,
        size: u8,
    ) -> Exec {
        let cpl = self.s.cpl();
        let d = self.far_descriptor(bus, sel)?;
        let old_cs = u64::from(self.s.seg(SegReg::Cs).selector);
        let ret = self.next_ip;
        if d.is_segment() {
            check_code_kind(&d, sel)?;
            check_direct_code(&d, sel, cpl)?;
            let width = self.stack_width();
            let sp = self.push_values(bus, size, &[old_cs, ret])?;
            self.check_far_offset(&d, off)?;
            self.load_cs_protected(bus, sel, d, cpl)?;
            self.set_gpr(4, width, sp);
            self.next_ip = off;
            return Ok(());
        }
        if d.typ() != sys::CALL_GATE32 {
            return Err(Fault::gp(sel & 0xfffc));
        }
        let (tsel, td, off) = self.call_gate64(bus, sel, d)?;
        if td.dpl() > cpl {
            return Err(Fault::gp(tsel & 0xfffc));
        }
        if !td.present() {
            return Err(Fault::np(tsel & 0xfffc));
        }
        self.check_far_offset(&td, off)?;
        if td.conforming() || td.dpl() == cpl {
            // Same level: CS and RIP go on the current stack as quadwords.
            let rsp = self.s.gpr[4];
            let low = self.push_frame64(bus, rsp, &[old_cs, ret], cpl == 3)?;
            self.load_cs_protected(bus, tsel, td, cpl)?;
            self.s.gpr[4] = low;
        } else {
            // More privileged: the TSS's RSPn, a null SS, and the old SS:RSP in the frame (no
            // parameters are copied through a 64-bit gate).
            let new_cpl = td.dpl();
            let rsp = self.tss64_rsp(bus, tss64::RSP0 + 8 * u64::from(new_cpl))?;
            let old_ss = u64::from(self.s.seg(SegReg::Ss).selector);
            let frame = [old_ss, self.s.gpr[4], old_cs, ret];
            let low = self.push_frame64(bus, rsp, &frame, false)?;
            self.load_cs_protected(bus, tsel, td, new_cpl)?;
            self.s.seg[SegReg::Ss as usize] = null_ss(new_cpl);
            self.s.gpr[4] = low;
        }
        self.next_ip = off;
        Ok(())
    }

    /// The SS a return to privilege `rpl` in code `cs` loads: a null selector is allowed only
    /// for 64-bit code below CPL 3.
    fn return_ss_long(
        &mut self,
        bus: &mut dyn Bus,
        ss: u16,
        rpl: u8,
        cs: &Descriptor,
    ) -> Exec<Segment> {
        if ss & 0xfffc == 0 {
            if long_code(cs) && rpl != 3 && (ss & 3) as u8 == rpl {
                return Ok(null_ss(rpl));
            }
            return Err(Fault::gp(0));
        }
        let d = self.check_return_ss(bus, ss, rpl)?;
        self.mark_accessed(bus, ss, d)?;
        Ok(Descriptor(d.0 | 1 << 40).to_segment(ss))
    }

    /// After a return to an outer level: data segments the new CPL may not use become
    /// unusable. Null selectors are left alone, keeping the FS/GS bases 64-bit code set.
    fn nullify_data_segs_long(&mut self, cpl: u8) {
        for s in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let c = self.s.seg[s as usize];
            let conforming_code =
                c.attr & (attr::S | attr::CODE | attr::DC) == attr::S | attr::CODE | attr::DC;
            if c.attr & attr::S != 0 && !conforming_code && c.dpl() < cpl {
                self.s.seg[s as usize] = Segment {
                    base: c.base,
                    ..Segment::default()
                };
            }
        }
    }

    pub(crate) fn retf_long(&mut self, bus: &mut dyn Bus, size: u8, imm: u64) -> Exec {
        let w = u64::from(size);
        let ip = self.peek(bus, 0, size)?;
        let sel = self.peek(bus, w, size)? as u16;
        let d = self.check_return_cs(bus, sel)?;
        check_code_kind(&d, sel)?;
        let rpl = (sel & 3) as u8;
        let cpl = self.s.cpl();
        self.check_far_offset(&d, ip)?;
        if rpl > cpl {
            let sp = self.peek(bus, 2 * w + imm, size)?;
            let ss = self.peek(bus, 3 * w + imm, size)? as u16;
            let ss_seg = self.return_ss_long(bus, ss, rpl, &d)?;
            self.load_cs_protected(bus, sel, d, rpl)?;
            self.s.seg[SegReg::Ss as usize] = ss_seg;
            self.set_sp(sp);
            let sp = self.sp().wrapping_add(imm) & self.stack_mask();
            self.set_sp(sp);
            self.nullify_data_segs_long(rpl);
        } else {
            let width = self.stack_width();
            let sp = self.sp().wrapping_add(2 * w + imm) & self.stack_mask();
            self.load_cs_protected(bus, sel, d, cpl)?;
            self.set_gpr(4, width, sp);
        }
        self.next_ip = ip;
        Ok(())
    }

    /// IRET in IA-32e mode. NT is an error (no task switches); 64-bit mode pops SS:RSP even
    /// at the same privilege level, compatibility mode only on a return to an outer level.
    pub(crate) fn iret_long(&mut self, bus: &mut dyn Bus, size: u8) -> Exec {
        if self.flags() & rflags::NT != 0 {
            return Err(Fault::gp(0));
        }
        let w = u64::from(size);
        let ip = self.peek(bus, 0, size)?;
        let sel = self.peek(bus, w, size)? as u16;
        let fl = self.peek(bus, 2 * w, size)?;
        let d = self.check_return_cs(bus, sel)?;
        check_code_kind(&d, sel)?;
        let rpl = (sel & 3) as u8;
        let cpl = self.s.cpl();
        let flags = self.iret_flags(fl, size);
        self.check_far_offset(&d, ip)?;
        if self.s.long64() || rpl > cpl {
            let sp = self.peek(bus, 3 * w, size)?;
            let ss = self.peek(bus, 4 * w, size)? as u16;
            let ss_seg = self.return_ss_long(bus, ss, rpl, &d)?;
            self.load_cs_protected(bus, sel, d, rpl)?;
            self.s.seg[SegReg::Ss as usize] = ss_seg;
            // RSP for 64-bit code; ESP or SP as the new SS says otherwise.
            self.set_sp(sp);
            if rpl > cpl {
                self.nullify_data_segs_long(rpl);
            }
        } else {
            let width = self.stack_width();
            let sp = self.sp().wrapping_add(3 * w) & self.stack_mask();
            self.load_cs_protected(bus, sel, d, cpl)?;
            self.set_gpr(4, width, sp);
        }
        self.set_flags(flags);
        self.next_ip = ip;
        Ok(())
    }
}
