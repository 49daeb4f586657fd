//! One service call: the CPU registers with the caller's EAX/EDX restored from the stub's
//! frame, the FLAGS image to return, and guest memory.

use crate::guest;
use crate::services::{frame, status};
use crate::{Platform, TrapResult};
use nestor_cpu::state::rflags;
use nestor_cpu::{CpuState, SegReg};

/// How a service ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Return to the caller with the registers and flags as the service left them.
    Return,
    /// Return, and tell the machine something.
    ReturnThen(TrapResult),
    /// Not done: wait for an interrupt, then call again with the same registers.
    Wait,
    /// A device is busy: call again at once.
    Retry,
    /// INT 19h found nothing to boot.
    NoBoot,
    /// The service moved the CPU elsewhere itself (boot, resume after reset): the frame
    /// is abandoned.
    Jumped(TrapResult),
}

pub struct Call<'a> {
    pub cpu: &'a mut CpuState,
    pub p: &'a mut dyn Platform,
    /// The caller's general registers (EAX and EDX from the frame); written back to the
    /// CPU when the call ends.
    pub r: Regs,
    /// Physical address of the frame.
    frame: u64,
    /// FLAGS to return to the caller.
    pub flags: u16,
    /// EAX as the stub left it (AH carries a byte for some stubs), before the frame's EAX
    /// was loaded.
    pub live_eax: u32,
}

/// The eight legacy general registers, in encoding order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs(pub [u64; 8]);

impl Regs {
    pub fn get32(&self, reg: usize) -> u32 {
        self.0[reg] as u32
    }
    pub fn get16(&self, reg: usize) -> u16 {
        self.0[reg] as u16
    }
    pub fn get8l(&self, reg: usize) -> u8 {
        self.0[reg] as u8
    }
    pub fn get8h(&self, reg: usize) -> u8 {
        (self.0[reg] >> 8) as u8
    }
    pub fn ax(&self) -> u16 {
        self.get16(r::AX)
    }
    pub fn ah(&self) -> u8 {
        self.get8h(r::AX)
    }
    pub fn al(&self) -> u8 {
        self.get8l(r::AX)
    }
    pub fn bx(&self) -> u16 {
        self.get16(r::BX)
    }
    pub fn bh(&self) -> u8 {
        self.get8h(r::BX)
    }
    pub fn bl(&self) -> u8 {
        self.get8l(r::BX)
    }
    pub fn cx(&self) -> u16 {
        self.get16(r::CX)
    }
    pub fn ch(&self) -> u8 {
        self.get8h(r::CX)
    }
    pub fn cl(&self) -> u8 {
        self.get8l(r::CX)
    }
    pub fn dx(&self) -> u16 {
        self.get16(r::DX)
    }
    pub fn dh(&self) -> u8 {
        self.get8h(r::DX)
    }
    pub fn dl(&self) -> u8 {
        self.get8l(r::DX)
    }
    pub fn si(&self) -> u16 {
        self.get16(r::SI)
    }
    pub fn di(&self) -> u16 {
        self.get16(r::DI)
    }
    pub fn bp(&self) -> u16 {
        self.get16(r::BP)
    }
}

/// Register numbers in [`CpuState::gpr`].
pub mod r {
    pub const AX: usize = 0;
    pub const CX: usize = 1;
    pub const DX: usize = 2;
    pub const BX: usize = 3;
    pub const SP: usize = 4;
    pub const BP: usize = 5;
    pub const SI: usize = 6;
    pub const DI: usize = 7;
}

impl<'a> Call<'a> {
    /// Physical address of the frame at SS:SP, if it can be read.
    fn locate(cpu: &CpuState, p: &mut dyn Platform) -> Option<(u64, [u8; frame::SIZE as usize])> {
        let ss = cpu.seg(SegReg::Ss);
        let sp = if ss.big() {
            cpu.gpr[r::SP] & 0xFFFF_FFFF
        } else {
            cpu.gpr[r::SP] & 0xFFFF
        };
        let frame = guest::translate(cpu, p, ss.base.wrapping_add(sp))?;
        let mut bytes = [0u8; frame::SIZE as usize];
        p.read_mem(frame, &mut bytes).then_some((frame, bytes))
    }

    /// Whether the stub's frame can be read.
    pub fn frame_readable(cpu: &CpuState, p: &mut dyn Platform) -> bool {
        Self::locate(cpu, p).is_some()
    }

    /// Loads the caller's EAX, EDX and FLAGS from the frame on the stack; `None` if the stack
    /// cannot be read.
    pub fn enter(cpu: &'a mut CpuState, p: &'a mut dyn Platform) -> Option<Self> {
        let (frame, bytes) = Self::locate(cpu, p)?;
        let word = |at: u64| {
            u32::from(u16::from_le_bytes([
                bytes[at as usize],
                bytes[at as usize + 1],
            ]))
        };
        let dword = |at: u64| word(at) | (word(at + 2) << 16);
        let (eax, edx, flags) = (dword(frame::EAX), dword(frame::EDX), word(frame::FLAGS));
        let live_eax = cpu.gpr[r::AX] as u32;
        let mut regs = Regs::default();
        regs.0.copy_from_slice(&cpu.gpr[..8]);
        let mut call = Self {
            cpu,
            p,
            r: regs,
            frame,
            flags: flags as u16,
            live_eax,
        };
        call.set32(r::AX, eax);
        call.set32(r::DX, edx);
        Some(call)
    }

    /// Ends the call: writes back what the stub pops and sets the status in the live AL.
    pub fn finish(mut self, outcome: Outcome) -> TrapResult {
        let (st, result) = match outcome {
            Outcome::Return => (status::DONE, TrapResult::Continue),
            Outcome::ReturnThen(t) => (status::DONE, t),
            Outcome::Wait => (status::WAIT_IRQ, TrapResult::Continue),
            Outcome::Retry => (status::RETRY, TrapResult::Continue),
            Outcome::NoBoot => (status::BOOT_FAILED, TrapResult::Continue),
            Outcome::Jumped(t) => {
                self.cpu.gpr[..8].copy_from_slice(&self.r.0);
                return t;
            }
        };
        if st == status::DONE {
            let eax = self.r.get32(r::AX);
            let edx = self.r.get32(r::DX);
            let mut out = Vec::with_capacity(10);
            out.extend_from_slice(&eax.to_le_bytes());
            out.extend_from_slice(&edx.to_le_bytes());
            self.p.write_mem(self.frame + frame::EAX, &out);
            self.p
                .write_mem(self.frame + frame::FLAGS, &self.flags.to_le_bytes());
        }
        self.set8l(r::AX, st);
        self.cpu.gpr[..8].copy_from_slice(&self.r.0);
        result
    }

    pub fn set32(&mut self, reg: usize, v: u32) {
        let g = &mut self.r.0[reg];
        *g = (*g & !0xFFFF_FFFF) | u64::from(v);
    }
    pub fn set16(&mut self, reg: usize, v: u16) {
        let g = &mut self.r.0[reg];
        *g = (*g & !0xFFFF) | u64::from(v);
    }
    pub fn set8l(&mut self, reg: usize, v: u8) {
        let g = &mut self.r.0[reg];
        *g = (*g & !0xFF) | u64::from(v);
    }
    pub fn set8h(&mut self, reg: usize, v: u8) {
        let g = &mut self.r.0[reg];
        *g = (*g & !0xFF00) | (u64::from(v) << 8);
    }
    pub fn set_ax(&mut self, v: u16) {
        self.set16(r::AX, v);
    }
    pub fn set_ah(&mut self, v: u8) {
        self.set8h(r::AX, v);
    }
    pub fn set_al(&mut self, v: u8) {
        self.set8l(r::AX, v);
    }
    pub fn set_bx(&mut self, v: u16) {
        self.set16(r::BX, v);
    }
    pub fn set_cx(&mut self, v: u16) {
        self.set16(r::CX, v);
    }
    pub fn set_dx(&mut self, v: u16) {
        self.set16(r::DX, v);
    }

    /// Selector of a segment register.
    pub fn sel(&self, s: SegReg) -> u16 {
        self.cpu.seg(s).selector
    }

    /// Physical address of `seg:off` as the caller sees it (through its page tables in
    /// virtual-8086 mode).
    pub fn addr(&mut self, s: SegReg, off: u16) -> u64 {
        let lin = self.cpu.seg(s).base.wrapping_add(u64::from(off));
        guest::translate(self.cpu, self.p, lin).unwrap_or(u64::MAX)
    }

    /// Physical address of a real-mode far pointer.
    pub fn far(&mut self, segment: u16, off: u16) -> u64 {
        let lin = guest::real(segment, off);
        guest::translate(self.cpu, self.p, lin).unwrap_or(u64::MAX)
    }

    /// Sets a real-mode segment register (selector and base; limit and attributes stay).
    pub fn set_seg(&mut self, s: SegReg, selector: u16) {
        let seg = &mut self.cpu.seg[s as usize];
        seg.selector = selector;
        seg.base = u64::from(selector) << 4;
    }

    pub fn set_cf(&mut self, on: bool) {
        self.set_flag(rflags::CF as u16, on);
    }
    pub fn set_zf(&mut self, on: bool) {
        self.set_flag(rflags::ZF as u16, on);
    }
    pub fn set_flag(&mut self, bit: u16, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Success for services that report with AH and CF.
    pub fn ok(&mut self) -> Outcome {
        self.set_ah(0);
        self.set_cf(false);
        Outcome::Return
    }
    /// Failure with status `code` in AH and CF set.
    pub fn fail(&mut self, code: u8) -> Outcome {
        self.set_ah(code);
        self.set_cf(true);
        Outcome::Return
    }

    pub fn rd8(&mut self, a: u64) -> u8 {
        guest::rd8(self.p, a)
    }
    pub fn rd16(&mut self, a: u64) -> u16 {
        guest::rd16(self.p, a)
    }
    pub fn rd32(&mut self, a: u64) -> u32 {
        guest::rd32(self.p, a)
    }
    pub fn wr8(&mut self, a: u64, v: u8) {
        guest::wr8(self.p, a, v);
    }
    pub fn wr16(&mut self, a: u64, v: u16) {
        guest::wr16(self.p, a, v);
    }
    pub fn wr32(&mut self, a: u64, v: u32) {
        guest::wr32(self.p, a, v);
    }
}
