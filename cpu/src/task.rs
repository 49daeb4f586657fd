//! Hardware task switching through the TSS (JMP/CALL/INT/IRET and task gates), following
//! SDM vol. 3 §7.3: the outgoing state is saved, busy bits and NT/back-link updated, then the
//! incoming state is loaded and its segments checked in the order of table 7-1. Faults after
//! the commit point are raised in the context of the new task.

use crate::descriptor::{sys, v86_segment, Descriptor};
use crate::fault::{vector, Exec, Fault};
use crate::interrupt::Event;
use crate::state::{attr, cr0, rflags, SegReg, Segment};
use crate::{Bus, Cpu};

/// Field offsets of a 32-bit TSS.
pub(crate) mod tss32 {
    pub const LINK: u64 = 0x00;
    /// ESPn at `ESP0 + 8 * n`, SSn at `SS0 + 8 * n`.
    pub const ESP0: u64 = 0x04;
    pub const SS0: u64 = 0x08;
    pub const CR3: u64 = 0x1c;
    pub const EIP: u64 = 0x20;
    pub const EFLAGS: u64 = 0x24;
    /// EAX..EDI in encoding order, 4 bytes apart.
    pub const EAX: u64 = 0x28;
    /// ES, CS, SS, DS, FS, GS selectors, 4 bytes apart.
    pub const ES: u64 = 0x48;
    pub const LDT: u64 = 0x60;
    /// Bit 0: debug trap on entry to the task.
    pub const TRAP: u64 = 0x64;
    /// Offset of the I/O permission bitmap from the TSS base; the 32-byte interrupt
    /// redirection bitmap (CR4.VME) lies just below it.
    pub const IOMAP_BASE: u64 = 0x66;
    /// Smallest limit of a valid 32-bit TSS.
    pub const MIN_LIMIT: u32 = 0x67;
}

/// Field offsets of a 16-bit (80286) TSS.
pub(crate) mod tss16 {
    pub const LINK: u64 = 0x00;
    /// SPn at `SP0 + 4 * n`, SSn at `SS0 + 4 * n`.
    pub const SP0: u64 = 0x02;
    pub const SS0: u64 = 0x04;
    pub const IP: u64 = 0x0e;
    pub const FLAGS: u64 = 0x10;
    /// AX..DI in encoding order, 2 bytes apart.
    pub const AX: u64 = 0x12;
    /// ES, CS, SS, DS selectors, 2 bytes apart.
    pub const ES: u64 = 0x22;
    pub const LDT: u64 = 0x2a;
    /// Smallest limit of a valid 16-bit TSS.
    pub const MIN_LIMIT: u32 = 0x2b;
}

/// EFLAGS bits that exist on a Pentium Pro class CPU (the others read as 0, bit 1 as 1).
pub(crate) const VALID_FLAGS: u64 = 0x003f_7fd5;

/// What started a task switch: it decides busy bits, NT and the back-link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskSource {
    Jmp,
    Call,
    Iret,
    /// An interrupt or exception through a task gate in the IDT.
    Gate,
}

/// The incoming task's state, read completely before anything is changed.
struct TssImage {
    cr3: u64,
    eip: u64,
    eflags: u64,
    gpr: [u64; 8],
    /// ES, CS, SS, DS, FS, GS (FS/GS are kept as they are for a 16-bit TSS).
    seg: [u16; 6],
    ldt: u16,
    trap: bool,
}

/// A TSS descriptor's type says whether it is a 32-bit TSS.
fn is_tss32(typ: u8) -> bool {
    typ & 8 != 0
}

impl Cpu {
    /// An event delivered through a task gate in the IDT (nested switch; the error code of an
    /// exception goes on the new task's stack).
    pub(crate) fn task_gate_event(
        &mut self,
        bus: &mut dyn Bus,
        gate: Descriptor,
        ev: Event,
    ) -> Exec {
        let sel = gate.gate_selector();
        let d = self.gdt_tss(bus, sel, Fault::gp)?;
        if d.typ() & 2 != 0 {
            return Err(Fault::gp(sel & 0xfffc));
        }
        if !d.present() {
            return Err(Fault::np(sel & 0xfffc));
        }
        let ret = ev.return_ip.unwrap_or(self.s.rip);
        let trap = self.task_switch(bus, sel, d, TaskSource::Gate, ret, ev.error_code)?;
        if trap {
            self.raise(bus, Event::trap(Fault::DB, self.s.rip));
        }
        Ok(())
    }

    /// Read the TSS descriptor `sel` names: it must be in the GDT and be a TSS, else `bad`.
    pub(crate) fn gdt_tss(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        bad: fn(u16) -> Fault,
    ) -> Exec<Descriptor> {
        let code = sel & 0xfffc;
        if sel & 4 != 0 || u64::from(sel | 7) > u64::from(self.s.gdtr.limit) || code == 0 {
            return Err(bad(code));
        }
        let d = Descriptor(self.read_sys(
            bus,
            self.s.gdtr.base.wrapping_add(u64::from(sel & 0xfff8)),
            8,
        )?);
        if !d.is_tss() {
            return Err(bad(code));
        }
        Ok(d)
    }

    /// Switch to the task whose TSS descriptor `d` (selector `sel`) has passed the caller's
    /// privilege, presence and busy checks. `return_ip` is saved as the outgoing task's EIP.
    /// Returns whether the new task's T bit asks for a debug trap. On success `s.rip` is the
    /// new task's EIP.
    pub(crate) fn task_switch(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        d: Descriptor,
        source: TaskSource,
        return_ip: u64,
        error_code: Option<u32>,
    ) -> Exec<bool> {
        let new32 = is_tss32(d.typ());
        let min = if new32 {
            tss32::MIN_LIMIT
        } else {
            tss16::MIN_LIMIT
        };
        if d.limit() < min {
            return Err(Fault::ts(sel & 0xfffc));
        }
        let old = self.s.tr;
        let old32 = is_tss32((old.attr & attr::TYPE_MASK) as u8);
        let old_min = if old32 {
            tss32::MIN_LIMIT
        } else {
            tss16::MIN_LIMIT
        };
        if old.limit < old_min {
            return Err(Fault::ts(old.selector & 0xfffc));
        }
        let img = self.read_tss(bus, d.base(), new32)?;
        // Save the outgoing task; memory may be written before a fault, registers are not.
        let mut flags = self.flags();
        if source == TaskSource::Iret {
            flags &= !rflags::NT;
        }
        self.save_task(bus, old.base, old32, flags, return_ip)?;
        if matches!(source, TaskSource::Call | TaskSource::Gate) {
            // The back-link is the first word of either TSS format.
            const _: () = assert!(tss32::LINK == tss16::LINK);
            self.write_sys(
                bus,
                d.base().wrapping_add(tss32::LINK),
                2,
                u64::from(old.selector),
            )?;
        }
        // (A TR never loaded since reset has no descriptor to update.)
        if matches!(source, TaskSource::Jmp | TaskSource::Iret) && old.selector & 0xfffc != 0 {
            self.set_tss_busy(bus, old.selector, false)?;
        }
        if source != TaskSource::Iret {
            self.set_tss_busy(bus, sel, true)?;
        }
        // Commit point: from here on, faults belong to the new task.
        self.enter_task(sel, d, &img, source, new32);
        let nsegs = if new32 { 6 } else { 4 };
        self.load_task_segments(bus, &img, nsegs)?;
        if img.eip > u64::from(self.s.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        if let Some(code) = error_code {
            // The error code goes on the new task's stack, sized by its TSS type.
            self.push(bus, if new32 { 4 } else { 2 }, u64::from(code))?;
        }
        if img.trap {
            // DR6.BT: the debug trap comes from the T bit of the new TSS.
            self.s.dr[6] |= 1 << 15;
        }
        Ok(img.trap)
    }

    /// Load TR, CR3, EFLAGS, EIP, the GPRs and the raw selectors of the new task; the hidden
    /// parts of the segment registers stay invalid until `load_task_segments` checks them.
    fn enter_task(
        &mut self,
        sel: u16,
        d: Descriptor,
        img: &TssImage,
        source: TaskSource,
        new32: bool,
    ) {
        self.s.tr = Descriptor(d.0 | 2 << 40).to_segment(sel);
        self.s.cr0 |= cr0::TS;
        if new32 && self.s.cr0 & cr0::PG != 0 {
            self.s.cr3 = img.cr3;
            self.tlb.flush_non_global();
        }
        let mut eflags = (img.eflags & VALID_FLAGS) | rflags::FIXED1;
        if matches!(source, TaskSource::Call | TaskSource::Gate) {
            eflags |= rflags::NT;
        }
        self.set_flags(eflags);
        self.s.rip = img.eip;
        let size = if new32 { 4 } else { 2 };
        for (n, v) in img.gpr.iter().enumerate() {
            self.set_gpr(n, size, *v);
        }
        // A 16-bit TSS has no FS/GS: they keep what they held.
        let nsegs = if new32 { 6 } else { 4 };
        for (s, &v) in SegReg::ALL.iter().zip(img.seg.iter()).take(nsegs) {
            self.s.seg[*s as usize] = Segment {
                selector: v,
                ..Segment::default()
            };
        }
        self.s.ldtr = Segment {
            selector: img.ldt,
            ..Segment::default()
        };
    }

    fn read_tss(&mut self, bus: &mut dyn Bus, base: u64, is32: bool) -> Exec<TssImage> {
        let mut img = TssImage {
            cr3: 0,
            eip: 0,
            eflags: 0,
            gpr: [0; 8],
            seg: [0; 6],
            ldt: 0,
            trap: false,
        };
        let at = |off: u64| base.wrapping_add(off);
        if is32 {
            img.cr3 = self.read_sys(bus, at(tss32::CR3), 4)?;
            img.eip = self.read_sys(bus, at(tss32::EIP), 4)?;
            img.eflags = self.read_sys(bus, at(tss32::EFLAGS), 4)?;
            for n in 0..8u64 {
                img.gpr[n as usize] = self.read_sys(bus, at(tss32::EAX + 4 * n), 4)?;
            }
            for n in 0..6u64 {
                img.seg[n as usize] = self.read_sys(bus, at(tss32::ES + 4 * n), 2)? as u16;
            }
            img.ldt = self.read_sys(bus, at(tss32::LDT), 2)? as u16;
            img.trap = self.read_sys(bus, at(tss32::TRAP), 2)? & 1 != 0;
        } else {
            img.eip = self.read_sys(bus, at(tss16::IP), 2)?;
            img.eflags = self.read_sys(bus, at(tss16::FLAGS), 2)?;
            for n in 0..8u64 {
                img.gpr[n as usize] = self.read_sys(bus, at(tss16::AX + 2 * n), 2)?;
            }
            for n in 0..4u64 {
                img.seg[n as usize] = self.read_sys(bus, at(tss16::ES + 2 * n), 2)? as u16;
            }
            img.ldt = self.read_sys(bus, at(tss16::LDT), 2)? as u16;
        }
        Ok(img)
    }

    /// Write the dynamic fields of the outgoing task into its TSS.
    fn save_task(
        &mut self,
        bus: &mut dyn Bus,
        base: u64,
        is32: bool,
        flags: u64,
        eip: u64,
    ) -> Exec {
        let at = |off: u64| base.wrapping_add(off);
        if is32 {
            self.write_sys(bus, at(tss32::EIP), 4, eip)?;
            self.write_sys(bus, at(tss32::EFLAGS), 4, flags)?;
            for n in 0..8u64 {
                let v = self.s.gpr[n as usize];
                self.write_sys(bus, at(tss32::EAX + 4 * n), 4, v)?;
            }
            for n in 0..6u64 {
                let v = self.s.seg[n as usize].selector;
                self.write_sys(bus, at(tss32::ES + 4 * n), 2, u64::from(v))?;
            }
        } else {
            self.write_sys(bus, at(tss16::IP), 2, eip)?;
            self.write_sys(bus, at(tss16::FLAGS), 2, flags)?;
            for n in 0..8u64 {
                let v = self.s.gpr[n as usize];
                self.write_sys(bus, at(tss16::AX + 2 * n), 2, v)?;
            }
            for n in 0..4u64 {
                let v = self.s.seg[n as usize].selector;
                self.write_sys(bus, at(tss16::ES + 2 * n), 2, u64::from(v))?;
            }
        }
        Ok(())
    }

    /// Load LDTR and the segment registers of the new task, checking them in the order of
    /// SDM table 7-1 (LDT, CS type and DPL, SS, CS presence, then the data segments).
    fn load_task_segments(&mut self, bus: &mut dyn Bus, img: &TssImage, nsegs: usize) -> Exec {
        self.load_task_ldt(bus, img.ldt)?;
        if img.eflags & rflags::VM != 0 {
            for (s, &v) in SegReg::ALL.iter().zip(img.seg.iter()) {
                self.s.seg[*s as usize] = v86_segment(v);
            }
            return Ok(());
        }
        let cs = img.seg[SegReg::Cs as usize];
        let ss = img.seg[SegReg::Ss as usize];
        let cpl = (cs & 3) as u8;
        if cs & 0xfffc == 0 {
            return Err(Fault::ts(0));
        }
        let cd = self.read_descriptor(bus, cs, Fault::ts)?;
        let dpl_ok = if cd.conforming() {
            cd.dpl() <= cpl
        } else {
            cd.dpl() == cpl
        };
        if !cd.is_code() || !dpl_ok {
            return Err(Fault::ts(cs & 0xfffc));
        }
        if ss & 0xfffc == 0 {
            return Err(Fault::ts(0));
        }
        let sd = self.read_descriptor(bus, ss, Fault::ts)?;
        if !sd.writable_data() {
            return Err(Fault::ts(ss & 0xfffc));
        }
        if !sd.present() {
            return Err(Fault::ss(ss & 0xfffc));
        }
        if sd.dpl() != cpl || (ss & 3) as u8 != cpl {
            return Err(Fault::ts(ss & 0xfffc));
        }
        if !cd.present() {
            return Err(Fault::np(cs & 0xfffc));
        }
        self.mark_accessed(bus, cs, cd)?;
        self.mark_accessed(bus, ss, sd)?;
        self.s.seg[SegReg::Cs as usize] = Descriptor(cd.0 | 1 << 40).to_segment(cs);
        self.s.seg[SegReg::Ss as usize] = Descriptor(sd.0 | 1 << 40).to_segment(ss);
        for s in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            // A 16-bit TSS has no FS/GS: they keep what they held.
            if (s as usize) < nsegs {
                self.load_task_data_seg(bus, s, img.seg[s as usize], cpl)?;
            }
        }
        Ok(())
    }

    fn load_task_ldt(&mut self, bus: &mut dyn Bus, ldt: u16) -> Exec {
        let code = ldt & 0xfffc;
        if code == 0 {
            return Ok(());
        }
        if ldt & 4 != 0 || u64::from(ldt | 7) > u64::from(self.s.gdtr.limit) {
            return Err(Fault::ts(code));
        }
        let d = Descriptor(self.read_sys(
            bus,
            self.s.gdtr.base.wrapping_add(u64::from(ldt & 0xfff8)),
            8,
        )?);
        if d.is_segment() || d.typ() != sys::LDT || !d.present() {
            return Err(Fault::ts(code));
        }
        self.s.ldtr = d.to_segment(ldt);
        Ok(())
    }

    /// A data segment of the new task: valid and readable (#TS), present (#NP), then DPL (#TS).
    fn load_task_data_seg(&mut self, bus: &mut dyn Bus, s: SegReg, sel: u16, cpl: u8) -> Exec {
        let code = sel & 0xfffc;
        if code == 0 {
            return Ok(());
        }
        let d = self.read_descriptor(bus, sel, Fault::ts)?;
        if !d.readable_or_data() {
            return Err(Fault::ts(code));
        }
        if !d.present() {
            return Err(Fault::np(code));
        }
        if !d.conforming() && (d.dpl() < cpl || d.dpl() < (sel & 3) as u8) {
            return Err(Fault::ts(code));
        }
        self.mark_accessed(bus, sel, d)?;
        self.s.seg[s as usize] = Descriptor(d.0 | 1 << 40).to_segment(sel);
        Ok(())
    }

    /// IRET with NT set: return to the task named by the current TSS's back-link.
    pub(crate) fn task_return(&mut self, bus: &mut dyn Bus, return_ip: u64) -> Exec<bool> {
        let link = self.read_sys(bus, self.s.tr.base.wrapping_add(tss32::LINK), 2)? as u16;
        let d = self.gdt_tss(bus, link, Fault::ts)?;
        if d.typ() & 2 == 0 {
            return Err(Fault::ts(link & 0xfffc));
        }
        if !d.present() {
            return Err(Fault::np(link & 0xfffc));
        }
        self.task_switch(bus, link, d, TaskSource::Iret, return_ip, None)
    }

    /// After a task switch made by an instruction: continue at the new task's EIP, first
    /// delivering the T-bit debug trap if the new TSS asks for one.
    pub(crate) fn finish_task_switch(&mut self, bus: &mut dyn Bus, trap: bool) {
        if trap {
            self.raise(
                bus,
                Event::trap(
                    Fault {
                        vector: vector::DB,
                        error_code: None,
                        cr2: None,
                    },
                    self.s.rip,
                ),
            );
        }
        self.next_ip = self.s.rip;
    }
}
