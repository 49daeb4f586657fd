//! The x87 FPU: register stack and control/status/tag words ([`X87State`], kept in
//! `CpuState::x87`), the 80-bit arithmetic core (`arith`, on `rustc_apfloat`), conversions
//! to and from memory formats (`conv`), transcendental functions (`trans`) and the
//! FSAVE/FSTENV/FXSAVE images (`env`). The instruction handlers are in `handlers/x87.rs`.
//!
//! FERR#/IRQ13 contract with the machine (CR0.NE = 0, "MS-DOS compatibility"): when a
//! waiting x87 instruction finds an unmasked exception pending, the CPU sets
//! [`X87State::ferr`] (the FERR# pin), leaves RIP at that instruction and halts, as the
//! processor freezes waiting for an interrupt. The machine turns a set `ferr` into IRQ 13
//! (INT 75h on a PC). A write to port F0h clears the IRQ 13 request and sets
//! [`X87State::ignne`] (IGNNE#): the waiting instruction then runs despite the pending
//! exception. FNCLEX/FNINIT (and any load of a status word without unmasked exceptions)
//! clear both `ferr` and `ignne`.

pub mod arith;
pub mod conv;
pub mod env;
pub mod f80;
pub mod ops;
pub mod trans;

#[cfg(all(test, target_arch = "x86_64"))]
mod oracle;

pub use f80::F80;
use serde::{Deserialize, Serialize};

/// Status word bits.
pub mod fsw {
    pub const SF: u16 = 1 << 6;
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP: u16 = 7 << TOP_SHIFT;
    pub const C3: u16 = 1 << 14;
    pub const B: u16 = 1 << 15;
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// Control word fields.
pub mod fcw {
    /// Bit 6 reads as 1 on the 387 and later.
    pub const RESERVED1: u16 = 1 << 6;
    pub const PC_SHIFT: u16 = 8;
    pub const RC_SHIFT: u16 = 10;
    /// Infinity control (8087/287 only): kept, ignored.
    pub const X: u16 = 1 << 12;
    /// Value after FNINIT: all exceptions masked, 64-bit precision, round to nearest.
    pub const INIT: u16 = 0x037f;
}

/// Tag values of the full (FSAVE/FSTENV) tag word.
pub mod tag {
    pub const VALID: u16 = 0;
    pub const ZERO: u16 = 1;
    pub const SPECIAL: u16 = 2;
    pub const EMPTY: u16 = 3;
}

/// x87 state, laid out in the spirit of the FXSAVE legacy region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct X87State {
    pub fcw: u16,
    /// Status word, TOP included.
    pub fsw: u16,
    /// Abridged tag word (FXSAVE format): bit `i` set = physical register `i` not empty.
    /// The full tag word is derived from the register contents.
    pub ftw: u8,
    /// Last non-control instruction's opcode: low 3 bits of the first byte, then ModRM.
    pub fop: u16,
    /// Last non-control instruction pointer (offset) and its CS selector.
    pub fip: u64,
    pub fcs: u16,
    /// Last memory operand's offset and segment selector.
    pub fdp: u64,
    pub fds: u16,
    /// MXCSR lives in the FXSAVE legacy region too; the SSE unit owns its meaning.
    pub mxcsr: u32,
    /// Physical registers R0..R7 (ST(i) is R((TOP + i) mod 8)).
    pub st: [F80; 8],
    /// FERR# output: an unmasked exception met a waiting instruction with CR0.NE = 0.
    pub ferr: bool,
    /// IGNNE# input (set by the machine on a port F0h write).
    pub ignne: bool,
}

impl Default for X87State {
    fn default() -> Self {
        Self::power_on()
    }
}

impl X87State {
    /// State after RESET (SDM vol. 3 table 9-1): FCW 0040h, FSW 0, tags 5555h (all valid
    /// +0.0), pointers zero.
    #[must_use]
    pub fn power_on() -> Self {
        Self {
            fcw: 0x0040,
            fsw: 0,
            ftw: 0xff,
            fop: 0,
            fip: 0,
            fcs: 0,
            fdp: 0,
            fds: 0,
            mxcsr: 0x1f80,
            st: [F80::ZERO; 8],
            ferr: false,
            ignne: false,
        }
    }

    /// FNINIT: control word 037Fh, status 0, all registers empty, pointers cleared.
    pub fn init(&mut self) {
        self.fcw = fcw::INIT;
        self.fsw = 0;
        self.ftw = 0;
        self.fop = 0;
        self.fip = 0;
        self.fcs = 0;
        self.fdp = 0;
        self.fds = 0;
        self.ferr = false;
        self.ignne = false;
    }

    #[must_use]
    pub fn top(&self) -> usize {
        usize::from((self.fsw & fsw::TOP) >> fsw::TOP_SHIFT)
    }
    pub fn set_top(&mut self, top: usize) {
        self.fsw = (self.fsw & !fsw::TOP) | ((top as u16 & 7) << fsw::TOP_SHIFT);
    }
    /// Physical register number of ST(i).
    #[must_use]
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }
    #[must_use]
    pub fn st(&self, i: usize) -> F80 {
        self.st[self.phys(i)]
    }
    #[must_use]
    pub fn is_empty(&self, i: usize) -> bool {
        self.ftw & (1 << self.phys(i)) == 0
    }
    /// Write ST(i) and mark it valid.
    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.st[p] = v;
        self.ftw |= 1 << p;
    }
    pub fn set_empty(&mut self, i: usize) {
        let p = self.phys(i);
        self.ftw &= !(1 << p);
    }
    /// Decrement TOP and store into the new ST(0).
    pub fn push(&mut self, v: F80) {
        self.set_top(self.top().wrapping_sub(1));
        self.set_st(0, v);
    }
    /// Mark ST(0) empty and increment TOP.
    pub fn pop(&mut self) {
        self.set_empty(0);
        self.set_top(self.top() + 1);
    }

    /// Set condition codes C3..C0 from a 4-bit value (C3 C2 C1 C0).
    pub fn set_cc(&mut self, c3: bool, c2: bool, c1: bool, c0: bool) {
        self.fsw &= !fsw::CC;
        self.fsw |=
            u16::from(c0) << 8 | u16::from(c1) << 9 | u16::from(c2) << 10 | u16::from(c3) << 14;
    }
    pub fn set_c1(&mut self, c1: bool) {
        self.fsw = (self.fsw & !fsw::C1) | u16::from(c1) << 9;
    }

    /// Record exception flags; an unmasked one sets the error summary (ES) and busy (B).
    pub fn raise(&mut self, e: u16) {
        self.fsw |= e & arith::exc::ALL;
        self.update_summary();
    }

    /// ES and B follow the unmasked exception flags (after FLDCW, FLDENV, FRSTOR...).
    pub fn update_summary(&mut self) {
        if self.fsw & !self.fcw & arith::exc::ALL != 0 {
            self.fsw |= fsw::ES | fsw::B;
        } else {
            self.fsw &= !(fsw::ES | fsw::B);
            self.ferr = false;
            self.ignne = false;
        }
    }

    /// Stack fault: invalid operation with SF; C1 tells overflow (1) from underflow (0).
    pub fn stack_fault(&mut self, overflow: bool) {
        self.set_c1(overflow);
        self.fsw |= fsw::SF;
        self.raise(arith::exc::IE);
    }

    /// Is the invalid-operation exception masked?
    #[must_use]
    pub fn im(&self) -> bool {
        self.fcw & arith::exc::IE != 0
    }

    /// The full tag word, each register classified from its contents.
    #[must_use]
    pub fn full_tags(&self) -> u16 {
        let mut t = 0u16;
        for p in 0..8 {
            let v = if self.ftw & (1 << p) == 0 {
                tag::EMPTY
            } else {
                match self.st[p].class() {
                    f80::Class::Zero => tag::ZERO,
                    f80::Class::Normal => tag::VALID,
                    _ => tag::SPECIAL,
                }
            };
            t |= v << (2 * p);
        }
        t
    }

    /// Load a full tag word: only "empty" matters, the rest follows from the contents.
    pub fn set_full_tags(&mut self, t: u16) {
        self.ftw = (0..8)
            .filter(|p| (t >> (2 * p)) & 3 != tag::EMPTY)
            .fold(0, |a, p| a | 1 << p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn host_oracle_skipped() {
        println!("x87 host comparison skipped: the host is not x86-64");
    }

    #[test]
    fn stack_and_tags() {
        let mut s = X87State::power_on();
        s.init();
        assert_eq!(s.full_tags(), 0xffff);
        s.push(F80::ONE);
        assert_eq!(s.top(), 7);
        assert_eq!(s.full_tags(), 0x3fff);
        s.push(F80::ZERO);
        assert_eq!(s.full_tags(), 0x1fff);
        assert_eq!(s.st(1), F80::ONE);
        s.push(F80::INDEFINITE);
        assert_eq!(s.full_tags() >> 10, 0b00_01_10);
        s.pop();
        assert_eq!(s.top(), 6);
        s.set_full_tags(0xf3ff);
        assert_eq!(s.ftw, 0b0010_0000);
    }

    #[test]
    fn summary_follows_masks() {
        let mut s = X87State::power_on();
        s.init();
        s.raise(arith::exc::PE);
        assert_eq!(s.fsw & fsw::ES, 0);
        s.fcw &= !arith::exc::PE;
        s.update_summary();
        assert_eq!(s.fsw & (fsw::ES | fsw::B), fsw::ES | fsw::B);
    }
}
