//! Software interrupts (INT n, INT3, INTO, INT1/ICEBP) and IRET in real, virtual-8086 and
//! protected mode: returns to the same or an outer level, into virtual-8086 mode, and to the
//! previous task through the TSS back-link (NT). CR4.VME's interrupt redirection bitmap and
//! VIF/VIP handling of IRET in virtual-8086 mode are here too.

use crate::descriptor::v86_segment;
use crate::fault::{Exec, Fault};
use crate::interrupt::{Event, EventKind};
use crate::paging::AccessKind;
use crate::state::{cr4, rflags, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::task::{tss32, VALID_FLAGS};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction};

fn software_int(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let (vector, kind) = match i.code() {
        Code::Int_imm8 => (i.immediate8(), EventKind::Software),
        Code::Int3 => (3, EventKind::Software),
        Code::Into => {
            if cpu.flags() & rflags::OF == 0 {
                return Ok(());
            }
            (4, EventKind::Software)
        }
        _ => (1, EventKind::Icebp),
    };
    if cpu.s.v86_mode() && i.code() == Code::Int_imm8 {
        // Only INT n is IOPL-sensitive in virtual-8086 mode; VME may redirect it first.
        if cpu.s.cr4 & cr4::VME != 0 && !cpu.int_redirection_bit(bus, vector)? {
            return cpu.v86_redirect(bus, vector);
        }
        if cpu.s.iopl() < 3 {
            return Err(Fault::gp(0));
        }
    }
    let ev = Event {
        vector,
        kind,
        error_code: None,
        cr2: None,
        return_ip: Some(cpu.next_ip),
    };
    cpu.deliver(bus, ev)?;
    cpu.next_ip = cpu.s.rip;
    Ok(())
}

impl Cpu {
    /// The bit for `vector` in the TSS's interrupt redirection bitmap (set: not redirected).
    fn int_redirection_bit(&mut self, bus: &mut dyn Bus, vector: u8) -> Exec<bool> {
        let tr = self.s.tr;
        if u64::from(tr.limit) < tss32::IOMAP_BASE + 1 {
            return Err(Fault::gp(0));
        }
        let iomap = self.read_sys(bus, tr.base.wrapping_add(tss32::IOMAP_BASE), 2)?;
        let at = iomap.wrapping_sub(32).wrapping_add(u64::from(vector / 8)) & 0xffff;
        if at > u64::from(tr.limit) {
            return Err(Fault::gp(0));
        }
        let byte = self.read_sys(bus, tr.base.wrapping_add(at), 1)?;
        Ok(byte & (1 << (vector % 8)) != 0)
    }

    /// VME: run INT n through the virtual-8086 program's own vector table at linear 0.
    fn v86_redirect(&mut self, bus: &mut dyn Bus, vector: u8) -> Exec {
        let mut b = [0u8; 4];
        self.read_linear(bus, u64::from(vector) * 4, &mut b, AccessKind::Read, true)?;
        let ip = u64::from(u16::from_le_bytes([b[0], b[1]]));
        let cs = u16::from_le_bytes([b[2], b[3]]);
        let flags = self.flags();
        let virtual_if = self.s.iopl() < 3;
        let mut image = flags & 0xffff;
        if virtual_if {
            // The handler sees VIF as IF and IOPL 3.
            image = (image & !rflags::IF)
                | if flags & rflags::VIF != 0 {
                    rflags::IF
                } else {
                    0
                };
            image |= rflags::IOPL;
        }
        let old_cs = u64::from(self.s.seg(SegReg::Cs).selector);
        let sp = self.push_values(bus, 2, &[image, old_cs, self.next_ip])?;
        self.set_sp(sp);
        let clear = rflags::TF | if virtual_if { rflags::VIF } else { rflags::IF };
        self.set_flags(flags & !clear);
        self.load_cs_real(cs);
        self.next_ip = ip;
        Ok(())
    }

    fn iret_real(&mut self, bus: &mut dyn Bus, size: u8) -> Exec {
        let w = u64::from(size);
        let ip = self.peek(bus, 0, size)?;
        let cs = self.peek(bus, w, size)? as u16;
        let fl = self.peek(bus, 2 * w, size)?;
        if ip > u64::from(self.s.seg(SegReg::Cs).limit) {
            return Err(Fault::gp(0));
        }
        let old = self.flags();
        let new = if size == 4 {
            (fl & 0x0025_7fd5) | (old & (rflags::VM | rflags::VIF | rflags::VIP))
        } else {
            (old & !0xffff) | (fl & 0x7fd5)
        };
        self.finish_iret_frame(cs, ip, new, 3 * w);
        Ok(())
    }

    fn finish_iret_frame(&mut self, cs: u16, ip: u64, flags: u64, pop: u64) {
        self.load_cs_real(cs);
        let sp = self.sp().wrapping_add(pop) & self.stack_mask();
        self.set_sp(sp);
        self.set_flags(flags);
        self.next_ip = ip;
    }

    fn iret_v86(&mut self, bus: &mut dyn Bus, size: u8) -> Exec {
        let w = u64::from(size);
        let old = self.flags();
        if self.s.iopl() == 3 {
            let ip = self.peek(bus, 0, size)?;
            let cs = self.peek(bus, w, size)? as u16;
            let fl = self.peek(bus, 2 * w, size)?;
            if ip > 0xffff {
                return Err(Fault::gp(0));
            }
            let keep = rflags::VM | rflags::IOPL | rflags::VIF | rflags::VIP;
            let new = if size == 4 {
                (fl & 0x0025_7fd5 & !keep) | (old & keep)
            } else {
                (old & !0xffff) | (old & rflags::IOPL) | (fl & 0x7fd5 & !rflags::IOPL)
            };
            self.finish_iret_frame(cs, ip, new, 3 * w);
            return Ok(());
        }
        if self.s.cr4 & cr4::VME == 0 || size != 2 {
            return Err(Fault::gp(0));
        }
        // VME: IF in the image goes to VIF; setting it with an interrupt pending, or setting
        // TF, goes to the monitor.
        let ip = self.peek(bus, 0, 2)?;
        let cs = self.peek(bus, 2, 2)? as u16;
        let fl = self.peek(bus, 4, 2)?;
        if (fl & rflags::IF != 0 && old & rflags::VIP != 0) || fl & rflags::TF != 0 {
            return Err(Fault::gp(0));
        }
        let keep = rflags::IF | rflags::IOPL;
        let mut new = (old & !0xffff) | (old & keep) | (fl & 0x7fd5 & !keep);
        new = (new & !rflags::VIF) | if fl & rflags::IF != 0 { rflags::VIF } else { 0 };
        self.finish_iret_frame(cs, ip, new, 6);
        Ok(())
    }

    /// IRET from CPL 0 with VM set in the popped EFLAGS: load the whole V86 frame.
    fn iret_to_v86(&mut self, bus: &mut dyn Bus, ip: u64, cs: u16, fl: u64) -> Exec {
        let mut v = [0u64; 6];
        for (k, slot) in v.iter_mut().enumerate() {
            *slot = self.peek(bus, 12 + 4 * k as u64, 4)?;
        }
        let [esp, ss, es, ds, fs, gs] = v;
        if ip > 0xffff {
            return Err(Fault::gp(0));
        }
        self.set_flags(fl & VALID_FLAGS);
        for (s, sel) in [
            (SegReg::Ss, ss),
            (SegReg::Es, es),
            (SegReg::Ds, ds),
            (SegReg::Fs, fs),
            (SegReg::Gs, gs),
            (SegReg::Cs, u64::from(cs)),
        ] {
            self.s.seg[s as usize] = v86_segment(sel as u16);
        }
        self.set_gpr(4, 4, esp);
        self.next_ip = ip;
        Ok(())
    }

    /// The EFLAGS an IRET in protected mode loads: which bits change depends on the CPL the
    /// IRET ran at and on IOPL.
    pub(crate) fn iret_flags(&self, fl: u64, size: u8) -> u64 {
        let old = self.flags();
        let cpl = self.s.cpl();
        let mut change = 0x4fd5; // CF PF AF ZF SF TF DF OF NT
        if size >= 4 {
            change |= rflags::RF | rflags::AC | rflags::ID;
            if cpl == 0 {
                change |= rflags::VIF | rflags::VIP;
            }
        }
        if cpl <= self.s.iopl() {
            change |= rflags::IF;
        }
        if cpl == 0 {
            change |= rflags::IOPL;
        }
        (old & !change) | (fl & change)
    }

    fn iret_protected(&mut self, bus: &mut dyn Bus, size: u8) -> Exec {
        let w = u64::from(size);
        let ip = self.peek(bus, 0, size)?;
        let sel = self.peek(bus, w, size)? as u16;
        let fl = self.peek(bus, 2 * w, size)?;
        if size == 4 && fl & rflags::VM != 0 && self.s.cpl() == 0 {
            return self.iret_to_v86(bus, ip, sel, fl);
        }
        let d = self.check_return_cs(bus, sel)?;
        let rpl = (sel & 3) as u8;
        let flags = self.iret_flags(fl, size);
        if rpl > self.s.cpl() {
            let sp = self.peek(bus, 3 * w, size)?;
            let ss = self.peek(bus, 4 * w, size)? as u16;
            let sd = self.check_return_ss(bus, ss, rpl)?;
            if ip > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            self.commit_outer_return(bus, (sel, d), (ss, sd), sp, 0)?;
        } else {
            if ip > u64::from(d.limit()) {
                return Err(Fault::gp(0));
            }
            let cpl = self.s.cpl();
            self.load_cs_protected(bus, sel, d, cpl)?;
            let sp = self.sp().wrapping_add(3 * w) & self.stack_mask();
            self.set_sp(sp);
        }
        self.set_flags(flags);
        self.next_ip = ip;
        Ok(())
    }
}

fn iret(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = match i.code() {
        Code::Iretd => 4,
        Code::Iretq => 8,
        _ => 2,
    };
    if !cpu.s.protected_mode() {
        return cpu.iret_real(bus, size);
    }
    if cpu.s.long_mode() {
        return cpu.iret_long(bus, size);
    }
    if cpu.s.v86_mode() {
        return cpu.iret_v86(bus, size);
    }
    if cpu.flags() & rflags::NT != 0 {
        let ret = cpu.next_ip;
        let trap = cpu.task_return(bus, ret)?;
        cpu.finish_task_switch(bus, trap);
        return Ok(());
    }
    cpu.iret_protected(bus, size)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(
        &[Code::Int_imm8, Code::Int3, Code::Into],
        software_int,
        Meta::branch(Isa::I8086),
    );
    t.add(&[Code::Int1], software_int, Meta::branch(Isa::I386));
    t.add(&[Code::Iretw], iret, Meta::branch(Isa::I8086));
    t.add(&[Code::Iretd], iret, Meta::branch(Isa::I386));
    t.add(&[Code::Iretq], iret, Meta::branch(Isa::X64));
}

#[cfg(test)]
mod tests {
    use crate::handlers::segment::tests::{exec, real_mode};
    use crate::state::{rflags, SegReg};

    #[test]
    fn real_mode_into_int1_and_iret() {
        let (mut cpu, mut bus) = real_mode();
        bus.load(4 * 4, &[0x00, 0x30, 0x00, 0x01]); // INT 4 -> 0100:3000
        bus.load(4, &[0x00, 0x20, 0x00, 0x00]); // INT 1 -> 0000:2000
        exec(&mut cpu, &mut bus, |a| a.into().unwrap()).unwrap();
        assert_eq!(cpu.s.rip, 0x1001);
        cpu.set_flags(rflags::OF | rflags::IF | rflags::TF);
        exec(&mut cpu, &mut bus, |a| a.into().unwrap()).unwrap();
        assert_eq!((cpu.s.seg(SegReg::Cs).selector, cpu.s.rip), (0x100, 0x3000));
        assert_eq!(cpu.flags() & (rflags::IF | rflags::TF), 0);
        assert_eq!(cpu.s.gpr[4], 0x8000 - 6);
        exec(&mut cpu, &mut bus, |a| a.iret().unwrap()).unwrap();
        assert_eq!((cpu.s.seg(SegReg::Cs).selector, cpu.s.rip), (0, 0x1002));
        assert_ne!(cpu.flags() & rflags::IF, 0);
        exec(&mut cpu, &mut bus, |a| a.int1().unwrap()).unwrap();
        assert_eq!(cpu.s.rip, 0x2000);
    }
}
