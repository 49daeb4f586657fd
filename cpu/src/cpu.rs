//! The interpreter: fetch through the decoded-instruction cache, dispatch to the handler,
//! retire or deliver the fault.

use crate::bus::{Bus, PAGE_SIZE};
use crate::cpuid::{CpuModel, PENTIUM_PRO};
use crate::fastloop::CodeWindow;
use crate::fault::{Exec, Fault};
use crate::icache::{DecodeCache, Decoded};
use crate::interrupt::Event;
use crate::paging::AccessKind;
use crate::state::{rflags, CpuState, SegReg};
use crate::tlb::Tlb;
use iced_x86::{Decoder, DecoderError, DecoderOptions};

/// Why [`Cpu::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// The instruction budget is used up.
    Budget,
    /// HLT with nothing to wake it: the machine advances time to its next event.
    Halted,
    /// Triple fault: the CPU is in shutdown until reset.
    Shutdown,
    /// The bus asked to stop (a device requested exit or reset).
    Stopped,
}

pub struct Cpu {
    pub s: CpuState,
    /// The processor model: what CPUID reports and which optional features exist.
    pub model: CpuModel,
    pub(crate) tlb: Tlb,
    pub(crate) icache: DecodeCache,
    map_generation: u64,
    /// IP of the next instruction; branch handlers overwrite it.
    pub next_ip: u64,
    /// Instructions retired since power-on (REP iterations count one each; so does every
    /// exception or interrupt delivered, which keeps time moving in a fault loop).
    pub retired: u64,
    /// Log every executed instruction through `tracing` (target "nestor::trace").
    pub trace: bool,
    /// Breakpoints, watchpoints and single step for the debugger (checked only when active).
    pub debug: crate::debug::DebugUnit,
    /// The code page under RIP, while it holds (see [`CodeWindow`]).
    pub(crate) window: Option<CodeWindow>,
    /// The INTR line as last polled; `None` once a bus call may have changed it.
    pub(crate) irq_line: Option<bool>,
}

impl Default for Cpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpu {
    #[must_use]
    pub fn new() -> Self {
        Self::with_model(PENTIUM_PRO)
    }

    /// A CPU of `model` at power-on.
    #[must_use]
    pub fn with_model(model: CpuModel) -> Self {
        let mut s = CpuState::power_on();
        s.gpr[2] = u64::from(model.signature);
        Self {
            s,
            model,
            tlb: Tlb::default(),
            icache: DecodeCache::default(),
            map_generation: u64::MAX,
            next_ip: 0,
            retired: 0,
            trace: false,
            debug: crate::debug::DebugUnit::default(),
            window: None,
            irq_line: None,
        }
    }

    /// Replace the whole architectural state (engine switch, snapshot restore, tests).
    pub fn set_state(&mut self, s: CpuState) {
        self.s = s;
        self.flush_tlb();
    }

    /// The architectural state with lazy flags folded into RFLAGS.
    #[must_use]
    pub fn state(&self) -> CpuState {
        let mut s = self.s.clone();
        s.rflags = self.flags();
        s.lazy = Default::default();
        s
    }

    pub fn reset(&mut self) {
        self.s = CpuState::power_on();
        // EDX holds the processor signature after reset.
        self.s.gpr[2] = u64::from(self.model.signature);
        self.flush_tlb();
        self.icache.flush_all();
    }

    pub fn flush_tlb(&mut self) {
        self.tlb.flush_all();
    }

    /// Memory that holds code was changed behind the CPU's back (DMA, debugger).
    pub fn invalidate_code(&mut self, paddr: u64, len: u64) {
        let mut page = paddr & !(PAGE_SIZE - 1);
        while page < paddr.saturating_add(len) {
            self.icache.invalidate(page);
            page += PAGE_SIZE;
        }
    }

    /// Current RFLAGS with any pending lazy flags resolved.
    #[inline]
    #[must_use]
    pub fn flags(&self) -> u64 {
        self.s.lazy.resolve(self.s.rflags)
    }

    /// Overwrite RFLAGS wholesale (drops pending lazy flags).
    #[inline]
    pub fn set_flags(&mut self, f: u64) {
        self.s.lazy.op = crate::flags::FlagOp::None;
        self.s.rflags = f | rflags::FIXED1;
    }

    /// Run until the budget is used, the CPU halts or shuts down, or the bus asks to stop.
    pub fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> RunExit {
        let end = self.retired.saturating_add(budget);
        if self.debug.active || self.trace {
            return self.run_checked(bus, end);
        }
        self.run_fast(bus, end)
    }

    /// The run loop that polls everything before each instruction (debugger, tracing).
    fn run_checked(&mut self, bus: &mut dyn Bus, end: u64) -> RunExit {
        loop {
            if self.s.events.shutdown {
                return RunExit::Shutdown;
            }
            if bus.stop_requested() {
                return RunExit::Stopped;
            }
            if self.retired >= end {
                return RunExit::Budget;
            }
            // A debugger stop ends the run as `Stopped`; `debug.take_stop()` says why.
            if self.debug.active && self.debug.stop_before(crate::debug::linear_pc(&self.s)) {
                return RunExit::Stopped;
            }
            if !self.step(bus) {
                return RunExit::Halted;
            }
            if self.debug.active && self.debug.stop_after(crate::debug::CpuMode::of(&self.s)) {
                return RunExit::Stopped;
            }
        }
    }

    /// Execute one instruction, or take one interrupt. Returns false when halted.
    pub fn step(&mut self, bus: &mut dyn Bus) -> bool {
        self.sync_map_generation(bus);
        self.irq_line = None;
        self.step_polled(bus)
    }

    pub(crate) fn sync_map_generation(&mut self, bus: &dyn Bus) {
        if bus.map_generation() != self.map_generation {
            self.map_generation = bus.map_generation();
            self.tlb.flush_all();
        }
    }

    /// [`Cpu::step`] once the memory map is current and `irq_line` is valid or `None`.
    pub(crate) fn step_polled(&mut self, bus: &mut dyn Bus) -> bool {
        let shadow = std::mem::take(&mut self.s.events.interrupt_shadow);
        if !shadow && self.take_interrupt(bus) {
            return true;
        }
        if self.s.events.halted || self.s.events.shutdown {
            return false;
        }
        let trap = self.s.rflags & rflags::TF != 0;
        match self.execute_one(bus, trap) {
            Ok((suppress_trap, branched)) => {
                self.s.rip = self.next_ip;
                self.retired += 1;
                if trap && !suppress_trap {
                    // DEBUGCTL.BTF turns TF into single-step on taken branches; the trap
                    // clears it.
                    let btf = self.s.msr.debugctl & DEBUGCTL_BTF != 0;
                    if !btf || branched {
                        self.s.msr.debugctl &= !DEBUGCTL_BTF;
                        self.s.dr[6] |= 1 << 14;
                        self.raise(bus, Event::trap(Fault::DB, self.s.rip));
                    }
                }
            }
            Err(f) => self.retire_fault(bus, f),
        }
        true
    }

    /// An instruction (or its fetch) faulted: deliver the exception.
    #[cold]
    #[inline(never)]
    pub(crate) fn retire_fault(&mut self, bus: &mut dyn Bus, f: Fault) {
        // Delivering an exception takes time too: a guest looping on faults must not stop
        // the clock or escape the instruction budget.
        self.retired += 1;
        if self.debug.active {
            self.debug.note_exception(f.vector);
        }
        self.raise(bus, Event::fault(f));
    }

    /// Deliver NMI or a maskable interrupt if one is pending and allowed.
    #[inline]
    fn take_interrupt(&mut self, bus: &mut dyn Bus) -> bool {
        if self.s.events.nmi_pending {
            self.s.events.nmi_pending = false;
            self.s.events.halted = false;
            self.raise(bus, Event::external(crate::fault::vector::NMI));
            return true;
        }
        // IF is never held lazily: read it straight from RFLAGS.
        if self.s.rflags & rflags::IF != 0 && self.interrupt_line(bus) {
            self.irq_line = None;
            let vector = bus.interrupt_ack();
            self.s.events.halted = false;
            self.retired += 1;
            self.raise(bus, Event::external(vector));
            return true;
        }
        false
    }

    /// The INTR line, polled once per change of the bus (see [`WatchedBus`]).
    #[inline]
    fn interrupt_line(&mut self, bus: &mut dyn Bus) -> bool {
        match self.irq_line {
            Some(line) => line,
            None => {
                let line = bus.interrupt_pending();
                self.irq_line = Some(line);
                line
            }
        }
    }

    /// Execute the instruction at CS:IP. Returns whether a single-step trap must not follow
    /// it (software interrupts; MOV SS/POP SS, whose trap waits one instruction) and, when
    /// `tf`, whether it was a taken branch (for DEBUGCTL.BTF).
    #[inline]
    fn execute_one(&mut self, bus: &mut dyn Bus, tf: bool) -> Exec<(bool, bool)> {
        let d = match self.window_insn() {
            // SAFETY: a pointer from the window is valid until the next fetch.
            Some(p) => unsafe { *p },
            None => self.fetch(bus)?,
        };
        let suppress_trap = tf && self.suppresses_single_step(&d.insn);
        // RF lasts one instruction; IRET and task switches load it again.
        self.s.rflags &= !rflags::RF;
        let mask = match d.insn.code_size() {
            iced_x86::CodeSize::Code16 => 0xffff,
            iced_x86::CodeSize::Code32 => 0xffff_ffff,
            _ => u64::MAX,
        };
        self.next_ip = self.s.rip.wrapping_add(d.insn.len() as u64) & mask;
        let fallthrough = self.next_ip;
        if self.trace {
            self.trace_insn(&d.insn);
        }
        (d.handler)(self, bus, &d.insn)?;
        let branched = tf && {
            use iced_x86::FlowControl as F;
            match d.insn.flow_control() {
                F::Next | F::Exception => false,
                F::ConditionalBranch => self.next_ip != fallthrough,
                _ => true,
            }
        };
        Ok((suppress_trap, branched))
    }

    fn suppresses_single_step(&self, insn: &iced_x86::Instruction) -> bool {
        use iced_x86::{Mnemonic as M, OpKind, Register};
        match insn.mnemonic() {
            M::Int | M::Int3 | M::Int1 => true,
            M::Into => self.flags() & rflags::OF != 0,
            M::Mov | M::Pop => {
                insn.op0_kind() == OpKind::Register && insn.op0_register() == Register::SS
            }
            _ => false,
        }
    }

    fn trace_insn(&self, insn: &iced_x86::Instruction) {
        use iced_x86::Formatter;
        let mut text = String::new();
        iced_x86::IntelFormatter::new().format(insn, &mut text);
        let cs = self.s.seg(SegReg::Cs).selector;
        tracing::trace!(target: "nestor::trace", "{:04x}:{:08x} {}", cs, self.s.rip, text);
    }

    /// Port input as an instruction performs it (device time synced to this instruction).
    pub fn port_in(&mut self, bus: &mut dyn Bus, port: u16, size: u8) -> u32 {
        bus.sync_retired(self.retired);
        bus.io_in(port, size)
    }

    /// Port output as an instruction performs it.
    pub fn port_out(&mut self, bus: &mut dyn Bus, port: u16, size: u8, value: u32) {
        bus.sync_retired(self.retired);
        bus.io_out(port, size, value);
    }

    /// Fetch and decode the instruction at CS:IP (from the cache when possible).
    pub(crate) fn fetch(&mut self, bus: &mut dyn Bus) -> Exec<Decoded> {
        // No handler runs now: code pages dropped since the last fetch can go.
        self.icache.release_dropped();
        let bitness = self.s.code_bitness();
        let ip = self.s.rip;
        let cs = *self.s.seg(SegReg::Cs);
        // 64-bit mode ignores the CS base and limit but wants a canonical RIP.
        let lin = if bitness == 64 {
            if !self.s.canonical(ip) {
                return Err(Fault::gp(0));
            }
            ip
        } else {
            if ip > u64::from(cs.limit) {
                return Err(Fault::gp(0));
            }
            cs.base.wrapping_add(ip) & 0xffff_ffff
        };
        let user = self.user_access();
        let off = lin & (PAGE_SIZE - 1);
        let ppage = self.fetch_page(bus, lin, user)?;
        if let Some(pp) = ppage {
            if let Some(d) = self.icache.get(pp, off as u16, bitness) {
                let d = *d;
                self.check_code_limit(bitness, ip, d.insn.len(), cs.limit)?;
                self.open_window(pp, ip, lin, bitness, cs.limit);
                return Ok(d);
            }
        }
        let in_page = (PAGE_SIZE - off).min(15) as usize;
        let mut bytes = [0u8; 15];
        self.read_linear(bus, lin, &mut bytes[..in_page], AccessKind::Execute, user)?;
        let mut insn = decode(bitness, &bytes[..in_page], ip);
        let mut crosses = false;
        if insn.is_none() && in_page < 15 {
            // The instruction continues on the next page, which may fault.
            crosses = true;
            let rest = lin.wrapping_add(in_page as u64) & self.lin_mask();
            if bitness == 64 && !self.s.canonical(rest) {
                return Err(Fault::gp(0));
            }
            self.read_linear(bus, rest, &mut bytes[in_page..], AccessKind::Execute, user)?;
            insn = decode(bitness, &bytes, ip);
        }
        let insn = insn.unwrap_or_default();
        self.check_code_limit(bitness, ip, insn.len().max(1), cs.limit)?;
        let d = Decoded {
            insn,
            handler: crate::table::entry(insn.code()).handler,
        };
        if let (Some(pp), false) = (ppage, crosses) {
            if self.icache.insert(pp, off as u16, bitness, d) {
                self.tlb.write_protect_phys(pp);
            }
            self.open_window(pp, ip, lin, bitness, cs.limit);
        }
        Ok(d)
    }

    /// Physical page of the code at `lin` (checking execute permission), or `None` when the
    /// code is not in host memory and must not be cached.
    #[inline]
    fn fetch_page(&mut self, bus: &mut dyn Bus, lin: u64, user: bool) -> Exec<Option<u64>> {
        let need = if user {
            crate::tlb::perm::EXEC_USER
        } else {
            crate::tlb::perm::EXEC_SUP
        };
        if let Some(e) = self.tlb.lookup(lin, need) {
            return Ok(e.host.map(|_| e.ppage));
        }
        let mut first = [0u8; 1];
        self.read_linear(bus, lin, &mut first, AccessKind::Execute, user)?;
        Ok(self
            .tlb
            .lookup(lin, need)
            .and_then(|e| e.host.map(|_| e.ppage)))
    }

    fn check_code_limit(&self, bitness: u32, ip: u64, len: usize, limit: u32) -> Exec {
        if bitness != 64 && ip + len as u64 - 1 > u64::from(limit) {
            return Err(Fault::gp(0));
        }
        Ok(())
    }
}

/// IA32_DEBUGCTL.BTF: single-step on branches.
pub(crate) const DEBUGCTL_BTF: u64 = 1 << 1;

/// Decode one instruction; `None` when the bytes run out before it ends.
fn decode(bitness: u32, bytes: &[u8], ip: u64) -> Option<iced_x86::Instruction> {
    let mut dec = Decoder::with_ip(bitness, bytes, ip, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() && dec.last_error() == DecoderError::NoMoreBytes {
        return None;
    }
    Some(insn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{cr0, Segment};
    use crate::testbus::FlatBus;

    /// Real mode at 0000:1000 with `code`, the #DB vector at 0000:2000, INT 20h at 0000:3000.
    fn setup(code: &[u8]) -> (Cpu, FlatBus) {
        let mut bus = FlatBus::new(1 << 20);
        bus.load(0x1000, code);
        bus.load(4, &[0x00, 0x20, 0x00, 0x00]);
        bus.load(0x20 * 4, &[0x00, 0x30, 0x00, 0x00]);
        let mut cpu = Cpu::new();
        cpu.s.seg[SegReg::Cs as usize] = Segment::real_mode(0);
        cpu.s.seg[SegReg::Ss as usize] = Segment::real_mode(0);
        cpu.s.gpr[4] = 0x8000;
        cpu.s.rip = 0x1000;
        cpu.s.rflags |= rflags::TF;
        (cpu, bus)
    }

    #[test]
    fn no_single_step_trap_after_int_n() {
        let (mut cpu, mut bus) = setup(&[0xcd, 0x20]);
        cpu.step(&mut bus);
        assert_eq!(cpu.s.rip, 0x3000, "went to the INT 20h handler, not to #DB");
    }

    #[test]
    fn mov_ss_delays_the_single_step_trap_by_one_instruction() {
        // mov ss, ax ; nop ; nop
        let (mut cpu, mut bus) = setup(&[0x8e, 0xd0, 0x90, 0x90]);
        cpu.step(&mut bus);
        assert_eq!(cpu.s.rip, 0x1002, "no trap right after MOV SS");
        cpu.step(&mut bus);
        assert_eq!(
            cpu.s.rip, 0x2000,
            "the trap comes after the next instruction"
        );
        assert_eq!(
            cpu.flags() & rflags::TF,
            0,
            "the #DB handler runs with TF clear"
        );
    }

    #[test]
    fn rf_is_cleared_after_an_instruction() {
        let (mut cpu, mut bus) = setup(&[0x90]);
        cpu.s.rflags = (cpu.s.rflags & !rflags::TF) | rflags::RF;
        cpu.step(&mut bus);
        assert_eq!(cpu.flags() & rflags::RF, 0);
    }

    #[test]
    fn cpl_stays_zero_between_setting_pe_and_the_far_jump() {
        let mut s = CpuState::power_on();
        s.seg[SegReg::Cs as usize].selector = 0x1003;
        s.seg[SegReg::Ss as usize] = Segment::real_mode(0x2003);
        s.cr0 |= cr0::PE;
        assert_eq!(s.cpl(), 0);
    }

    #[test]
    fn writing_to_cached_code_invalidates_it() {
        // 1000: mov al,11h ; 1002: mov byte [1001h],22h ; 1007: jmp 1000h
        let (mut cpu, mut bus) = setup(&[0xb0, 0x11, 0xc6, 0x06, 0x01, 0x10, 0x22, 0xeb, 0xf7]);
        cpu.s.rflags &= !rflags::TF;
        cpu.s.seg[SegReg::Ds as usize] = Segment::real_mode(0);
        cpu.run(&mut bus, 3);
        assert_eq!(cpu.s.gpr[0] & 0xff, 0x11);
        assert_eq!(cpu.s.rip, 0x1000);
        cpu.run(&mut bus, 1);
        assert_eq!(
            cpu.s.gpr[0] & 0xff,
            0x22,
            "the modified instruction was decoded again"
        );
    }
}
