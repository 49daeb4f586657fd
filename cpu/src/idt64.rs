//! IA-32e mode event delivery: 16-byte interrupt and trap gates to 64-bit code segments, the
//! stack from the 64-bit TSS (RSPn on a privilege change, or an IST stack), a 64-bit frame
//! that always holds SS:RSP, and RSP aligned to 16 bytes before the pushes.

use crate::descriptor::{null_ss, sys, Descriptor};
use crate::fault::{Exec, Fault};
use crate::idt::with_ext;
use crate::interrupt::{Event, EventKind};
use crate::state::{attr, rflags, SegReg};
use crate::{Bus, Cpu};

/// Field offsets of the 64-bit TSS.
pub(crate) mod tss64 {
    /// RSPn at `RSP0 + 8 * n`.
    pub const RSP0: u64 = 0x04;
    /// ISTn (n = 1..7) at `IST1 + 8 * (n - 1)`.
    pub const IST1: u64 = 0x24;
}

/// Is `d` a 64-bit code segment (L set, D clear)? L with D is reserved.
pub(crate) fn long_code(d: &Descriptor) -> bool {
    d.attr() & (attr::L | attr::DB) == attr::L
}

impl Cpu {
    /// Read the 8-byte stack pointer at `off` in the current (64-bit) TSS: #TS(TSS) when the
    /// TSS is too short to hold it.
    pub(crate) fn tss64_rsp(&mut self, bus: &mut dyn Bus, off: u64) -> Exec<u64> {
        let tr = self.s.tr;
        if off + 7 > u64::from(tr.limit) {
            return Err(Fault::ts(tr.selector & 0xfffc));
        }
        self.read_sys(bus, tr.base.wrapping_add(off), 8)
    }

    pub(crate) fn deliver_long(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        let ext = u16::from(ev.kind != EventKind::Software);
        self.deliver_gate64(bus, ev).map_err(|f| with_ext(f, ext))
    }

    /// Read and check the gate for `ev`: its low and high quadwords.
    fn idt_gate64(&mut self, bus: &mut dyn Bus, ev: &Event) -> Exec<(Descriptor, u64)> {
        let idt_err = u16::from(ev.vector) * 8 + 2;
        let at = u64::from(ev.vector) * 16;
        if at + 15 > u64::from(self.s.idtr.limit) {
            return Err(Fault::gp(idt_err));
        }
        let base = self.s.idtr.base.wrapping_add(at);
        let gate = Descriptor(self.read_sys(bus, base, 8)?);
        let high = self.read_sys(bus, base.wrapping_add(8), 8)?;
        if gate.is_segment() || !matches!(gate.typ(), sys::INT_GATE32 | sys::TRAP_GATE32) {
            return Err(Fault::gp(idt_err));
        }
        if ev.kind == EventKind::Software && gate.dpl() < self.s.cpl() {
            return Err(Fault::gp(idt_err));
        }
        if !gate.present() {
            return Err(Fault::np(idt_err));
        }
        Ok((gate, high))
    }

    fn deliver_gate64(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        let (gate, high) = self.idt_gate64(bus, &ev)?;
        let sel = gate.gate_selector();
        if sel & 0xfffc == 0 {
            return Err(Fault::gp(0));
        }
        let cd = self.read_descriptor(bus, sel, Fault::gp)?;
        let sel_err = sel & 0xfffc;
        let cpl = self.s.cpl();
        if !cd.is_code() || !long_code(&cd) || cd.dpl() > cpl {
            return Err(Fault::gp(sel_err));
        }
        if !cd.present() {
            return Err(Fault::np(sel_err));
        }
        let inner = !cd.conforming() && cd.dpl() < cpl;
        let new_cpl = if inner { cd.dpl() } else { cpl };
        let ist = (gate.0 >> 32) & 7;
        let old_rsp = self.s.gpr[4];
        let rsp = if ist != 0 {
            self.tss64_rsp(bus, tss64::IST1 + 8 * (ist - 1))?
        } else if inner {
            self.tss64_rsp(bus, tss64::RSP0 + 8 * u64::from(new_cpl))?
        } else {
            old_rsp
        } & !0xf;
        let offset = (gate.0 & 0xffff) | ((gate.0 >> 48) << 16) | (high << 32);
        let flags = self.flags();
        let frame = [
            u64::from(self.s.seg(SegReg::Ss).selector),
            old_rsp,
            ev.pushed_flags(flags),
            u64::from(self.s.seg(SegReg::Cs).selector),
            ev.return_ip.unwrap_or(self.s.rip),
            u64::from(ev.error_code.unwrap_or(0)),
        ];
        let frame = &frame[..if ev.error_code.is_some() { 6 } else { 5 }];
        let bytes = 8 * frame.len() as u64;
        let low = rsp.wrapping_sub(bytes);
        if !self.s.canonical(low) || !self.s.canonical(rsp.wrapping_sub(1)) {
            return Err(Fault::ss(0));
        }
        if !self.s.canonical(offset) {
            return Err(Fault::gp(0));
        }
        let user = new_cpl == 3;
        for (k, v) in frame.iter().enumerate() {
            let at = rsp.wrapping_sub(8 * (k as u64 + 1));
            self.write_linear(bus, at, &v.to_le_bytes(), user)?;
        }
        // Everything is on the new stack: commit.
        self.mark_accessed(bus, sel, cd)?;
        let cs_sel = sel_err | u16::from(new_cpl);
        self.s.seg[SegReg::Cs as usize] = Descriptor(cd.0 | 1 << 40).to_segment(cs_sel);
        if inner {
            self.s.seg[SegReg::Ss as usize] = null_ss(new_cpl);
        }
        self.s.gpr[4] = low;
        let mut f = flags & !(rflags::TF | rflags::NT | rflags::RF | rflags::VM);
        if gate.typ() == sys::INT_GATE32 {
            f &= !rflags::IF;
        }
        self.set_flags(f);
        self.s.rip = offset;
        Ok(())
    }
}
