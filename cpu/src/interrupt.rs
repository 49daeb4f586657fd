//! Exception and interrupt delivery, in one place: real mode through the IVT, protected mode
//! through the IDT (in `idt.rs`), IA-32e mode through its 16-byte IDT (in `idt64.rs`), and the
//! double-fault / triple-fault rules.

use crate::fault::{vector, Exec, Fault};
use crate::state::{rflags, SegReg, Segment};
use crate::{Bus, Cpu};

/// What is being delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An exception raised by the current instruction; returns to the faulting instruction
    /// (or, for traps, to `return_ip`).
    Exception,
    /// INT n / INT3 / INTO: subject to gate DPL checks.
    Software,
    /// INT1 (ICEBP): a software instruction that is not subject to the DPL check.
    Icebp,
    /// External interrupt or NMI.
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub vector: u8,
    pub kind: EventKind,
    pub error_code: Option<u32>,
    pub cr2: Option<u64>,
    /// Where execution resumes after IRET; `None` means the current RIP.
    pub return_ip: Option<u64>,
}

impl Event {
    /// RFLAGS as pushed for this event: a fault-class exception (other than #DB) pushes RF = 1
    /// so that IRET does not re-trigger an instruction breakpoint (SDM vol. 3 17.3.1.1).
    #[must_use]
    pub fn pushed_flags(&self, flags: u64) -> u64 {
        let fault = self.kind == EventKind::Exception && self.return_ip.is_none();
        if fault && self.vector != vector::DB {
            flags | rflags::RF
        } else {
            flags
        }
    }

    #[must_use]
    pub fn fault(f: Fault) -> Self {
        Self {
            vector: f.vector,
            kind: EventKind::Exception,
            error_code: f.error_code,
            cr2: f.cr2,
            return_ip: None,
        }
    }
    #[must_use]
    pub fn trap(f: Fault, return_ip: u64) -> Self {
        Self {
            return_ip: Some(return_ip),
            ..Self::fault(f)
        }
    }
    #[must_use]
    pub fn software(vector: u8, return_ip: u64) -> Self {
        Self {
            vector,
            kind: EventKind::Software,
            error_code: None,
            cr2: None,
            return_ip: Some(return_ip),
        }
    }
    #[must_use]
    pub fn external(vector: u8) -> Self {
        Self {
            vector,
            kind: EventKind::External,
            error_code: None,
            cr2: None,
            return_ip: None,
        }
    }
}

/// Does `second`, raised while delivering `first`, turn into a double fault?
fn double_fault(first: &Event, second: &Fault) -> bool {
    // Only exceptions are classed; INT n, external interrupts and NMI count as benign.
    if first.kind != EventKind::Exception {
        return false;
    }
    let first_contributory = matches!(first.vector, 0 | 10 | 11 | 12 | 13);
    let first_pf = first.vector == vector::PF;
    let second_pf = second.vector == vector::PF;
    (first_contributory && second.contributory())
        || (first_pf && (second_pf || second.contributory()))
}

impl Cpu {
    /// Deliver an event. A fault during delivery is handled by the double-fault rules (SDM
    /// vol. 3 table 6-5): contributory after contributory, or contributory/#PF after #PF, become
    /// #DF; anything else is delivered in its place. A fault delivering #DF shuts the CPU down.
    pub fn raise(&mut self, bus: &mut dyn Bus, ev: Event) {
        let mut ev = ev;
        // Each step either resolves, escalates towards #DF, or ends in shutdown; a chain of
        // benign faults is the longest path and cannot exceed a handful of steps.
        for _ in 0..8 {
            if let Some(addr) = ev.cr2 {
                self.s.cr2 = addr;
            }
            let Err(second) = self.deliver(bus, ev) else {
                return;
            };
            tracing::debug!(
                first = ev.vector,
                second = second.vector,
                "fault while delivering"
            );
            if ev.vector == vector::DF && ev.kind == EventKind::Exception {
                break;
            }
            if let Some(addr) = second.cr2 {
                // CR2 is loaded when a page fault is detected, even one that becomes #DF.
                self.s.cr2 = addr;
            }
            ev = if double_fault(&ev, &second) {
                Event::fault(Fault {
                    vector: vector::DF,
                    error_code: Some(0),
                    cr2: None,
                })
            } else {
                Event::fault(second)
            };
        }
        tracing::debug!("triple fault: shutdown");
        self.s.events.shutdown = true;
    }

    pub(crate) fn deliver(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        if self.s.long_mode() {
            self.deliver_long(bus, ev)
        } else if self.s.protected_mode() {
            self.deliver_protected(bus, ev)
        } else {
            self.deliver_real(bus, ev)
        }
    }

    /// Real mode: push FLAGS, CS, IP and jump through the 4-byte IVT entry.
    fn deliver_real(&mut self, bus: &mut dyn Bus, ev: Event) -> Exec {
        let entry = u64::from(ev.vector) * 4;
        if entry + 3 > u64::from(self.s.idtr.limit) {
            return Err(Fault::gp(u16::from(ev.vector) * 8 + 2));
        }
        let ip = self.read_sys(bus, self.s.idtr.base + entry, 2)?;
        let cs = self.read_sys(bus, self.s.idtr.base + entry + 2, 2)?;
        let flags = self.flags();
        let ret = ev.return_ip.unwrap_or(self.s.rip);
        let sp = self.sp();
        let pushed = self
            .push(bus, 2, flags)
            .and_then(|()| self.push(bus, 2, u64::from(self.s.seg(SegReg::Cs).selector)))
            .and_then(|()| self.push(bus, 2, ret));
        if let Err(f) = pushed {
            self.set_sp(sp);
            return Err(f);
        }
        self.set_flags(flags & !(rflags::IF | rflags::TF | rflags::AC | rflags::RF));
        self.s.seg[SegReg::Cs as usize] = Segment {
            attr: self.s.seg(SegReg::Cs).attr,
            ..Segment::real_mode(cs as u16)
        };
        self.s.rip = ip;
        Ok(())
    }
}
