//! Protected-mode event delivery through the IDT: interrupt, trap and task gates, privilege
//! changes onto the inner stack from the TSS, and the exits from virtual-8086 mode.

use crate::descriptor::{sys, Descriptor};
use crate::fault::{vector, Exec, Fault};
use crate::interrupt::{Event, EventKind};
use crate::state::{attr, rflags, SegReg, Segment};
use crate::task::{tss16, tss32};
use crate::{Bus, Cpu};

/// Set the EXT bit (bit 0) of a selector error code: the fault arose while delivering an
/// event external to the program (hardware interrupt or exception).
#[must_use]
pub(crate) fn with_ext(f: Fault, ext: u16) -> Fault {
    match (f.vector, f.error_code) {
        (vector::TS | vector::NP | vector::SS | vector::GP, Some(c)) => Fault {
            error_code: Some(c | u32::from(ext)),
            ..f
        },
        _ => f,
    }
}

/// A stack being built on the way into a handler: pushes go through an explicit SS cache so
/// that nothing of the old context is touched until every push has succeeded.
pub(crate) struct NewStack {
    pub ss: Segment,
    pub sp: u64,
    pub user: bool,
    /// Error code of the #SS raised when the stack has no room.
    pub ss_code: u16,
}

impl NewStack {
    fn mask(&self) -> u64 {
        if self.ss.big() {
            0xffff_ffff
        } else {
            0xffff
        }
    }

    /// Fault now if `bytes` more bytes cannot be pushed (the SDM checks room before pushing).
    pub(crate) fn room(&self, cpu: &Cpu, bytes: u64) -> Exec {
        let sp = self.sp.wrapping_sub(bytes) & self.mask();
        let mut off = sp;
        let mut left = bytes;
        // Check in pieces so that a 16-bit stack wrapping at 64 KiB is judged like the pushes.
        while left > 0 {
            let n = left.min(4) as u8;
            cpu.check_segment(&self.ss, true, off, n, true, true)
                .map_err(|_| Fault::ss(self.ss_code))?;
            off = off.wrapping_add(u64::from(n)) & self.mask();
            left -= u64::from(n);
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus, size: u8, v: u64) -> Exec {
        let sp = self.sp.wrapping_sub(u64::from(size)) & self.mask();
        let lin = cpu
            .check_segment(&self.ss, true, sp, size, true, true)
            .map_err(|_| Fault::ss(self.ss_code))?;
        cpu.write_linear(bus, lin, &v.to_le_bytes()[..usize::from(size)], self.user)?;
        self.sp = sp;
        Ok(())
    }

    /// Make this the current stack: SS and SP (ESP for a 32-bit stack segment).
    pub(crate) fn commit(&self, cpu: &mut Cpu) {
        cpu.s.seg[SegReg::Ss as usize] = self.ss;
        let size = if self.ss.big() { 4 } else { 2 };
        cpu.set_gpr(4, size, self.sp);
    }
}

impl Cpu {
    /// Inner-privilege stack for `dpl` from the current TSS; #TS(TSS selector) when the TSS is
    /// too short to hold it.
    pub(crate) fn tss_stack(&mut self, bus: &mut dyn Bus, dpl: u8) -> Exec<(u16, u64)> {
        let tr = self.s.tr;
        let is32 = tr.attr & attr::TYPE_MASK & 8 != 0;
        let (off, ssoff, size) = if is32 {
            (
                tss32::ESP0 + u64::from(dpl) * 8,
                tss32::SS0 + u64::from(dpl) * 8,
                4,
            )
        } else {
            (
                tss16::SP0 + u64::from(dpl) * 4,
                tss16::SS0 + u64::from(dpl) * 4,
                2,
            )
        };
        if ssoff + 1 > u64::from(tr.limit) {
            return Err(Fault::ts(tr.selector & 0xfffc));
        }
        let sp = self.read_sys(bus, tr.base + off, size)?;
        let ss = self.read_sys(bus, tr.base + ssoff, 2)? as u16;
        Ok((ss, sp))
    }

    /// Validate a stack segment selector loaded by a privilege change to `dpl` (faults are
    /// #TS, or #SS when not present).
    pub(crate) fn check_inner_ss(
        &mut self,
        bus: &mut dyn Bus,
        ss: u16,
        dpl: u8,
    ) -> Exec<Descriptor> {
        if ss & 0xfffc == 0 {
            return Err(Fault::ts(0));
        }
        let d = self.read_descriptor(bus, ss, Fault::ts)?;
        if (ss & 3) as u8 != dpl || d.dpl() != dpl || !d.writable_data() {
            return Err(Fault::ts(ss & 0xfffc));
        }
        if !d.present() {
            return Err(Fault::ss(ss & 0xfffc));
        }
        Ok(d)
    }

    /// The inner stack for a transfer to privilege level `cpl`, from the TSS and checked.
    pub(crate) fn inner_stack(&mut self, bus: &mut dyn Bus, cpl: u8) -> Exec<NewStack> {
        let (ss, sp) = self.tss_stack(bus, cpl)?;
        let sd = self.check_inner_ss(bus, ss, cpl)?;
        self.mark_accessed(bus, ss, sd)?;
        let seg = Descriptor(sd.0 | 1 << 40).to_segment(ss);
        let sp = if seg.big() {
            sp & 0xffff_ffff
        } else {
            sp & 0xffff
        };
        Ok(NewStack {
            ss: seg,
            sp,
            user: cpl == 3,
            ss_code: ss & 0xfffc,
        })
    }

    pub(crate) fn deliver_protected(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        // EXT is clear only for INT n, INT3 and INTO (SDM vol. 3 §6.13); INT1 counts as external.
        let ext = u16::from(ev.kind != EventKind::Software);
        self.deliver_gate(bus, ev).map_err(|f| with_ext(f, ext))
    }

    fn deliver_gate(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        let idt_err = u16::from(ev.vector) * 8 + 2;
        if u64::from(ev.vector) * 8 + 7 > u64::from(self.s.idtr.limit) {
            return Err(Fault::gp(idt_err));
        }
        let gate =
            Descriptor(self.read_sys(bus, self.s.idtr.base + u64::from(ev.vector) * 8, 8)?);
        let typ = gate.typ();
        if gate.is_segment()
            || !matches!(
                typ,
                sys::TASK_GATE
                    | sys::INT_GATE16
                    | sys::TRAP_GATE16
                    | sys::INT_GATE32
                    | sys::TRAP_GATE32
            )
        {
            return Err(Fault::gp(idt_err));
        }
        if ev.kind == EventKind::Software && gate.dpl() < self.s.cpl() {
            return Err(Fault::gp(idt_err));
        }
        if !gate.present() {
            return Err(Fault::np(idt_err));
        }
        if typ == sys::TASK_GATE {
            return self.task_gate_event(bus, gate, ev);
        }
        let sel = gate.gate_selector();
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        let cd = self.read_descriptor(bus, sel, Fault::gp)?;
        let sel_err = sel & 0xfffc;
        if !cd.is_code() || cd.dpl() > self.s.cpl() {
            return Err(Fault::gp(sel_err));
        }
        if !cd.present() {
            return Err(Fault::np(sel_err));
        }
        let v86 = self.s.v86_mode();
        let inner = !cd.conforming() && cd.dpl() < self.s.cpl();
        if v86 && (!inner || cd.dpl() != 0) {
            return Err(Fault::gp(sel_err));
        }
        let new_cpl = if inner { cd.dpl() } else { self.s.cpl() };
        let width: u8 = if typ & 8 != 0 { 4 } else { 2 };
        let mut stack = if inner {
            self.inner_stack(bus, new_cpl)?
        } else {
            NewStack {
                ss: *self.s.seg(SegReg::Ss),
                sp: self.sp(),
                user: new_cpl == 3,
                ss_code: 0,
            }
        };
        let words = 3
            + u64::from(ev.error_code.is_some())
            + if inner { 2 } else { 0 }
            + if v86 { 4 } else { 0 };
        stack.room(self, words * u64::from(width))?;
        let offset = gate.gate_offset();
        if offset > u64::from(cd.limit()) {
            return Err(Fault::gp(0));
        }
        self.push_frame(bus, &mut stack, width, inner, ev)?;
        // Everything is on the new stack: commit.
        self.mark_accessed(bus, sel, cd)?;
        let flags = self.flags();
        if v86 {
            for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                self.s.seg[s as usize] = Segment::default();
            }
        }
        let cs_sel = (sel & 0xfffc) | u16::from(new_cpl);
        self.s.seg[SegReg::Cs as usize] = Descriptor(cd.0 | 1 << 40).to_segment(cs_sel);
        stack.commit(self);
        let mut f = flags & !(rflags::TF | rflags::NT | rflags::RF | rflags::VM);
        if typ == sys::INT_GATE16 || typ == sys::INT_GATE32 {
            f &= !rflags::IF;
        }
        self.set_flags(f);
        self.s.rip = offset;
        Ok(())
    }

    /// Push the interrupt frame (old stack and V86 segments when changing stacks, flags, CS,
    /// return IP, error code) onto the handler's stack.
    fn push_frame(
        &mut self,
        bus: &mut dyn Bus,
        stack: &mut NewStack,
        width: u8,
        inner: bool,
        ev: Event,
    ) -> Exec {
        let flags = self.flags();
        let ret = ev.return_ip.unwrap_or(self.s.rip);
        let old_cs = u64::from(self.s.seg(SegReg::Cs).selector);
        if inner {
            if self.s.v86_mode() {
                for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                    let v = u64::from(self.s.seg(s).selector);
                    stack.push(self, bus, width, v)?;
                }
            }
            // The whole ESP is saved, whatever the size of the outer stack.
            let (ss, sp) = (u64::from(self.s.seg(SegReg::Ss).selector), self.s.gpr[4]);
            stack.push(self, bus, width, ss)?;
            stack.push(self, bus, width, sp)?;
        }
        stack.push(self, bus, width, ev.pushed_flags(flags))?;
        stack.push(self, bus, width, old_cs)?;
        stack.push(self, bus, width, ret)?;
        if let Some(code) = ev.error_code {
            stack.push(self, bus, width, u64::from(code))?;
        }
        Ok(())
    }

    /// Check an access of `size` bytes at `off` within a segment cache: presence and type
    /// when `types` (protected mode), limit always. SS faults are #SS(0), others #GP(0).
    pub(crate) fn check_segment(
        &self,
        sd: &Segment,
        is_ss: bool,
        off: u64,
        size: u8,
        write: bool,
        types: bool,
    ) -> Exec<u64> {
        let fault = || if is_ss { Fault::ss(0) } else { Fault::gp(0) };
        if types {
            let code = sd.attr & attr::CODE != 0;
            let rw = sd.attr & attr::RW != 0;
            // Data is always readable and writable if RW; code is never writable, and
            // readable only if RW.
            let allowed = if write { !code && rw } else { !code || rw };
            if !sd.present() || !allowed {
                return Err(fault());
            }
        }
        let last = off.wrapping_add(u64::from(size) - 1);
        let expand_down = sd.attr & (attr::CODE | attr::DC | attr::S) == attr::DC | attr::S;
        let ok = if expand_down {
            let upper = if sd.big() { 0xffff_ffff } else { 0xffff };
            off > u64::from(sd.limit) && last <= upper && last >= off
        } else {
            last <= u64::from(sd.limit) && last >= off
        };
        if !ok {
            return Err(fault());
        }
        // Segmented (legacy and compatibility mode) linear addresses are 32 bits wide.
        Ok(sd.base.wrapping_add(off) & 0xffff_ffff)
    }
}
