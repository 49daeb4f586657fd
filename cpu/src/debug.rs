//! Debugger support in the interpreter: breakpoints by linear address, watchpoints on linear
//! ranges, single step, and stops on exceptions or CPU-mode switches; plus a read-only page
//! walk for the debugger's view of memory. The interpreter checks all this only while
//! `Cpu::debug.active` is set, so that normal runs pay one branch per instruction.

use crate::bus::{Bus, PageTarget, PAGE_SIZE};
use crate::paging::{pte, AccessKind, PHYS_BITS};
use crate::state::{cr0, cr4, efer, rflags, CpuState, SegReg};

/// Which accesses a watchpoint catches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Read,
    Write,
    Access,
}

/// A watched range of linear addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    pub start: u64,
    pub len: u64,
    pub kind: WatchKind,
}

impl Watchpoint {
    fn catches(&self, lin: u64, len: u64, kind: AccessKind) -> bool {
        let wanted = match (self.kind, kind) {
            (_, AccessKind::Execute) => false,
            (WatchKind::Access, _) => true,
            (WatchKind::Read, AccessKind::Read) | (WatchKind::Write, AccessKind::Write) => true,
            _ => false,
        };
        let end = self.start.wrapping_add(self.len.max(1));
        wanted && lin < end && self.start < lin.wrapping_add(len.max(1))
    }
}

/// What the debugger wants the engine to watch for while the guest runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugSetup {
    /// Stop before executing the instruction at any of these linear addresses.
    pub breakpoints: Vec<u64>,
    pub watchpoints: Vec<Watchpoint>,
    /// Stop after one instruction (or one interrupt delivery).
    pub single_step: bool,
    /// Stop after delivering an exception whose vector's bit is set (vectors 0..31).
    pub break_exceptions: u32,
    /// Stop after an instruction that changes the CPU mode.
    pub break_mode_switch: bool,
}

impl DebugSetup {
    /// Does this setup need any checking at all?
    #[must_use]
    pub fn is_active(&self) -> bool {
        !self.breakpoints.is_empty()
            || !self.watchpoints.is_empty()
            || self.single_step
            || self.break_exceptions != 0
            || self.break_mode_switch
    }
}

/// The CPU mode, as a debugger names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    Real,
    Virtual8086,
    Protected16,
    Protected32,
    Compatibility16,
    Compatibility32,
    Long64,
}

impl CpuMode {
    #[must_use]
    pub fn of(s: &CpuState) -> Self {
        if !s.protected_mode() {
            Self::Real
        } else if s.rflags & rflags::VM != 0 {
            Self::Virtual8086
        } else {
            let big = s.seg(SegReg::Cs).big();
            match (s.long_mode(), s.long64(), big) {
                (true, true, _) => Self::Long64,
                (true, false, true) => Self::Compatibility32,
                (true, false, false) => Self::Compatibility16,
                (false, _, true) => Self::Protected32,
                (false, _, false) => Self::Protected16,
            }
        }
    }

    /// Are segments real-mode style here (base = selector × 16)?
    #[must_use]
    pub fn real_segments(self) -> bool {
        matches!(self, Self::Real | Self::Virtual8086)
    }
}

impl std::fmt::Display for CpuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Real => "real mode",
            Self::Virtual8086 => "virtual-8086 mode",
            Self::Protected16 => "protected mode (16-bit code)",
            Self::Protected32 => "protected mode (32-bit code)",
            Self::Compatibility16 => "long mode, compatibility (16-bit code)",
            Self::Compatibility32 => "long mode, compatibility (32-bit code)",
            Self::Long64 => "long mode (64-bit code)",
        })
    }
}

/// Why a debugged run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugStop {
    /// About to execute the instruction at this linear address.
    Breakpoint(u64),
    /// An instruction accessed a watched range (`addr` is the first byte it touched).
    Watch { kind: WatchKind, addr: u64 },
    /// One instruction (or interrupt delivery) done.
    Step,
    /// An exception with this vector was delivered.
    Exception(u8),
    /// The CPU mode changed.
    ModeSwitch { from: CpuMode, to: CpuMode },
}

/// The interpreter's debug registers of sorts: the setup plus what happened meanwhile.
#[derive(Clone, Debug, Default)]
pub struct DebugUnit {
    /// Checked by the step loop and memory paths before anything else here is looked at.
    pub active: bool,
    setup: DebugSetup,
    /// The first instruction after a resume runs even with a breakpoint on it.
    skip_breakpoint_at: Option<u64>,
    watch_hit: Option<(WatchKind, u64)>,
    exception: Option<u8>,
    last_mode: Option<CpuMode>,
    stop: Option<DebugStop>,
}

impl DebugUnit {
    /// Arm `setup` for a run resuming at linear PC `pc` in `mode`.
    pub fn arm(&mut self, setup: &DebugSetup, pc: u64, mode: CpuMode) {
        self.setup = setup.clone();
        self.active = setup.is_active();
        self.skip_breakpoint_at = Some(pc);
        self.watch_hit = None;
        self.exception = None;
        self.last_mode = Some(mode);
        self.stop = None;
    }

    #[must_use]
    pub fn setup(&self) -> &DebugSetup {
        &self.setup
    }

    /// The reason the last run stopped for the debugger, once.
    pub fn take_stop(&mut self) -> Option<DebugStop> {
        self.stop.take()
    }

    /// Record an explicit memory access (called only while active).
    pub fn note_access(&mut self, lin: u64, len: usize, kind: AccessKind) {
        if self.watch_hit.is_some() {
            return;
        }
        let hit = self
            .setup
            .watchpoints
            .iter()
            .find(|w| w.catches(lin, len as u64, kind));
        if let Some(w) = hit {
            let kind = if kind == AccessKind::Write {
                WatchKind::Write
            } else {
                WatchKind::Read
            };
            self.watch_hit = Some((kind, lin.max(w.start)));
        }
    }

    /// Record an exception being delivered (called only while active).
    pub fn note_exception(&mut self, vector: u8) {
        if vector < 32 && self.setup.break_exceptions & (1 << vector) != 0 {
            self.exception.get_or_insert(vector);
        }
    }

    /// Before an instruction: must the run stop at linear PC `pc`?
    pub fn stop_before(&mut self, pc: u64) -> bool {
        if self.skip_breakpoint_at.take() == Some(pc) {
            return false;
        }
        if self.setup.breakpoints.contains(&pc) {
            self.stop = Some(DebugStop::Breakpoint(pc));
            return true;
        }
        false
    }

    /// After an instruction that left the CPU in `mode`: must the run stop?
    pub fn stop_after(&mut self, mode: CpuMode) -> bool {
        self.skip_breakpoint_at = None;
        let from = self.last_mode.replace(mode);
        let stop = if let Some((kind, addr)) = self.watch_hit.take() {
            Some(DebugStop::Watch { kind, addr })
        } else if let Some(v) = self.exception.take() {
            Some(DebugStop::Exception(v))
        } else if self.setup.break_mode_switch && from.is_some_and(|f| f != mode) {
            from.map(|from| DebugStop::ModeSwitch { from, to: mode })
        } else if self.setup.single_step {
            Some(DebugStop::Step)
        } else {
            None
        };
        self.stop = stop;
        stop.is_some()
    }
}

impl crate::Cpu {
    /// Arm `setup` (an empty one turns debugging off); the run that follows executes the
    /// instruction at the current PC even if a breakpoint is set on it.
    pub fn arm_debug(&mut self, setup: &DebugSetup) {
        let pc = linear_pc(&self.s);
        self.debug.arm(setup, pc, CpuMode::of(&self.s));
    }
}

/// The linear address of the next instruction (what gdb sees as the PC in every mode).
#[must_use]
pub fn linear_pc(s: &CpuState) -> u64 {
    if s.long64() {
        s.rip
    } else {
        s.seg(SegReg::Cs).base.wrapping_add(s.rip) & 0xffff_ffff
    }
}

/// One entry read during a debugger page walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkLevel {
    /// "PML5E", "PML4E", "PDPTE", "PDE" or "PTE".
    pub name: &'static str,
    /// Index of the entry in its table.
    pub index: u64,
    /// Physical address of the entry.
    pub addr: u64,
    pub entry: u64,
}

/// A debugger page walk: every level read, and the physical address if the walk completed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugWalk {
    pub levels: Vec<WalkLevel>,
    /// `None`: a level was not present, or paging structures are not in RAM.
    pub paddr: Option<u64>,
    /// log2 of the page size that mapped the address.
    pub page_shift: u8,
}

/// Read physical memory for the debugger: RAM and ROM only (no device side effects).
pub fn peek_phys(bus: &mut dyn Bus, paddr: u64, buf: &mut [u8]) -> bool {
    let mut done = 0usize;
    while done < buf.len() {
        let a = paddr.wrapping_add(done as u64) & bus.a20_mask();
        let off = (a & (PAGE_SIZE - 1)) as usize;
        let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
        let PageTarget::Host { ptr, .. } = bus.page(a & !(PAGE_SIZE - 1)) else {
            return false;
        };
        // SAFETY: the bus guarantees 4096 valid bytes at `ptr`; off + n stays inside.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.as_ptr().add(off), buf[done..].as_mut_ptr(), n);
        }
        done += n;
    }
    true
}

fn peek_entry(bus: &mut dyn Bus, addr: u64, size: usize) -> Option<u64> {
    let mut b = [0u8; 8];
    peek_phys(bus, addr, &mut b[..size]).then(|| u64::from_le_bytes(b))
}

/// Translate `lin` the way the CPU would, without setting accessed/dirty bits or faulting.
/// Permissions are not checked: the debugger sees every present page.
pub fn debug_walk(s: &CpuState, bus: &mut dyn Bus, lin: u64) -> DebugWalk {
    if s.cr0 & cr0::PG == 0 {
        return DebugWalk {
            levels: Vec::new(),
            paddr: Some(lin & 0xffff_ffff),
            page_shift: 12,
        };
    }
    if s.efer & efer::LMA != 0 {
        let levels = if s.cr4 & cr4::LA57 != 0 { 5 } else { 4 };
        walk_tables(bus, s.cr3, lin, levels, 8)
    } else if s.cr4 & cr4::PAE != 0 {
        walk_pae(bus, s.cr3, lin & 0xffff_ffff)
    } else {
        let pse = s.cr4 & cr4::PSE != 0;
        walk_legacy(bus, s.cr3, lin & 0xffff_ffff, pse)
    }
}

const LEVEL_NAMES: [&str; 5] = ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"];

/// 4- or 5-level IA-32e tables: 9 index bits per level, 8-byte entries.
fn walk_tables(bus: &mut dyn Bus, cr3: u64, lin: u64, levels: u32, size: usize) -> DebugWalk {
    let addr_mask = ((1u64 << PHYS_BITS) - 1) & !0xfff;
    let mut walk = DebugWalk::default();
    let mut table = cr3 & addr_mask;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (lin >> shift) & 0x1ff;
        let addr = table | (index << 3);
        let Some(e) = peek_entry(bus, addr, size) else {
            return walk;
        };
        walk.levels.push(WalkLevel {
            name: LEVEL_NAMES[level as usize - 1],
            index,
            addr,
            entry: e,
        });
        if e & pte::P == 0 {
            return walk;
        }
        let large = (level == 2 || level == 3) && e & pte::PS != 0;
        if level == 1 || large {
            let size_mask = (1u64 << shift) - 1;
            walk.paddr = Some((e & addr_mask & !size_mask) | (lin & size_mask));
            walk.page_shift = shift as u8;
            return walk;
        }
        table = e & addr_mask;
    }
    walk
}

fn walk_pae(bus: &mut dyn Bus, cr3: u64, lin: u64) -> DebugWalk {
    let addr_mask = ((1u64 << PHYS_BITS) - 1) & !0xfff;
    let index = lin >> 30;
    let addr = (cr3 & 0xffff_ffe0) | (index << 3);
    let Some(pdpte) = peek_entry(bus, addr, 8) else {
        return DebugWalk::default();
    };
    let first = WalkLevel {
        name: "PDPTE",
        index,
        addr,
        entry: pdpte,
    };
    if pdpte & pte::P == 0 {
        return DebugWalk {
            levels: vec![first],
            ..DebugWalk::default()
        };
    }
    let mut rest = walk_tables(bus, pdpte & addr_mask, lin, 2, 8);
    rest.levels.insert(0, first);
    rest
}

fn walk_legacy(bus: &mut dyn Bus, cr3: u64, lin: u64, pse: bool) -> DebugWalk {
    let mut walk = DebugWalk::default();
    let index = lin >> 22;
    let pde_addr = (cr3 & 0xffff_f000) | (index << 2);
    let Some(pde) = peek_entry(bus, pde_addr, 4) else {
        return walk;
    };
    walk.levels.push(WalkLevel {
        name: "PDE",
        index,
        addr: pde_addr,
        entry: pde,
    });
    if pde & pte::P == 0 {
        return walk;
    }
    if pde & pte::PS != 0 && pse {
        let base = (pde & 0xffc0_0000) | ((pde >> 13) & 0xf) << 32;
        walk.paddr = Some(base | (lin & 0x3f_ffff));
        walk.page_shift = 22;
        return walk;
    }
    let index = (lin >> 12) & 0x3ff;
    let pte_addr = (pde & 0xffff_f000) | (index << 2);
    let Some(e) = peek_entry(bus, pte_addr, 4) else {
        return walk;
    };
    walk.levels.push(WalkLevel {
        name: "PTE",
        index,
        addr: pte_addr,
        entry: e,
    });
    if e & pte::P != 0 {
        walk.paddr = Some((e & 0xffff_f000) | (lin & 0xfff));
        walk.page_shift = 12;
    }
    walk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Segment;
    use crate::testbus::FlatBus;

    #[test]
    fn breakpoint_skipped_once_after_resume_then_hit() {
        let mut d = DebugUnit::default();
        let setup = DebugSetup {
            breakpoints: vec![0x1000],
            ..DebugSetup::default()
        };
        d.arm(&setup, 0x1000, CpuMode::Real);
        assert!(d.active);
        assert!(
            !d.stop_before(0x1000),
            "resuming at a breakpoint executes it"
        );
        assert!(!d.stop_after(CpuMode::Real));
        assert!(d.stop_before(0x1000));
        assert_eq!(d.take_stop(), Some(DebugStop::Breakpoint(0x1000)));
    }

    #[test]
    fn watchpoints_match_kind_and_overlap() {
        let w = Watchpoint {
            start: 0x5000,
            len: 4,
            kind: WatchKind::Write,
        };
        assert!(w.catches(0x5003, 1, AccessKind::Write));
        assert!(w.catches(0x4ffe, 4, AccessKind::Write));
        assert!(!w.catches(0x5004, 4, AccessKind::Write));
        assert!(!w.catches(0x5000, 4, AccessKind::Read));
        let a = Watchpoint {
            kind: WatchKind::Access,
            ..w
        };
        assert!(a.catches(0x5000, 1, AccessKind::Read));
        assert!(!a.catches(0x5000, 1, AccessKind::Execute));
    }

    #[test]
    fn mode_switch_and_step_stops() {
        let mut d = DebugUnit::default();
        let setup = DebugSetup {
            break_mode_switch: true,
            ..DebugSetup::default()
        };
        d.arm(&setup, 0, CpuMode::Real);
        assert!(!d.stop_after(CpuMode::Real));
        assert!(d.stop_after(CpuMode::Protected16));
        assert_eq!(
            d.take_stop(),
            Some(DebugStop::ModeSwitch {
                from: CpuMode::Real,
                to: CpuMode::Protected16
            })
        );
    }

    #[test]
    fn linear_pc_adds_cs_base_outside_64_bit_mode() {
        let mut s = CpuState::power_on();
        assert_eq!(linear_pc(&s), 0xffff_fff0);
        s.seg[SegReg::Cs as usize] = Segment::real_mode(0x1234);
        s.rip = 0x10;
        assert_eq!(linear_pc(&s), 0x12350);
    }

    /// A real-mode CPU at 0000:1000 running `code`; the #UD vector points at 0000:3000.
    fn real_mode_cpu(code: &[u8]) -> (crate::Cpu, FlatBus) {
        let mut bus = FlatBus::new(1 << 20);
        bus.load(0x1000, code);
        bus.load(6 * 4, &[0x00, 0x30, 0x00, 0x00]);
        let mut cpu = crate::Cpu::new();
        for seg in SegReg::ALL {
            cpu.s.seg[seg as usize] = Segment::real_mode(0);
        }
        cpu.s.rip = 0x1000;
        cpu.s.gpr[4] = 0x8000;
        (cpu, bus)
    }

    fn run_to_stop(cpu: &mut crate::Cpu, bus: &mut FlatBus, setup: &DebugSetup) -> DebugStop {
        cpu.arm_debug(setup);
        assert_eq!(cpu.run(bus, 100), crate::RunExit::Stopped);
        cpu.debug.take_stop().expect("a debug stop")
    }

    #[test]
    fn interpreter_stops_at_watchpoints_breakpoints_and_steps() {
        let program = [
            0xc6, 0x06, 0x00, 0x20, 0x01, // 1000: mov byte [0x2000], 1
            0x90, // 1005: nop
            0xa0, 0x00, 0x20, // 1006: mov al, [0x2000]
            0x90, // 1009: nop
        ];
        let (mut cpu, mut bus) = real_mode_cpu(&program);
        let watch = |kind| Watchpoint {
            start: 0x2000,
            len: 1,
            kind,
        };
        let writes = DebugSetup {
            breakpoints: vec![0x1006],
            watchpoints: vec![watch(WatchKind::Write)],
            ..DebugSetup::default()
        };
        let write = DebugStop::Watch {
            kind: WatchKind::Write,
            addr: 0x2000,
        };
        assert_eq!(run_to_stop(&mut cpu, &mut bus, &writes), write);
        assert_eq!(cpu.s.rip, 0x1005, "stops after the writing instruction");
        assert_eq!(
            run_to_stop(&mut cpu, &mut bus, &writes),
            DebugStop::Breakpoint(0x1006)
        );
        assert_eq!(cpu.s.rip, 0x1006, "stops before the instruction");
        let reads = DebugSetup {
            breakpoints: vec![0x1006],
            watchpoints: vec![watch(WatchKind::Read)],
            ..DebugSetup::default()
        };
        let read = DebugStop::Watch {
            kind: WatchKind::Read,
            addr: 0x2000,
        };
        assert_eq!(
            run_to_stop(&mut cpu, &mut bus, &reads),
            read,
            "resumes past the breakpoint"
        );
        assert_eq!(cpu.s.rip, 0x1009);
        let step = DebugSetup {
            single_step: true,
            ..DebugSetup::default()
        };
        assert_eq!(run_to_stop(&mut cpu, &mut bus, &step), DebugStop::Step);
        assert_eq!(cpu.s.rip, 0x100a);
    }

    #[test]
    fn interpreter_stops_after_exceptions_and_mode_switches() {
        let (mut cpu, mut bus) = real_mode_cpu(&[0x0f, 0x0b]); // ud2
        let ud = DebugSetup {
            break_exceptions: 1 << 6,
            ..DebugSetup::default()
        };
        assert_eq!(
            run_to_stop(&mut cpu, &mut bus, &ud),
            DebugStop::Exception(6)
        );
        assert_eq!(cpu.s.rip, 0x3000, "stops in the handler");
        // mov eax, cr0 ; or al, 1 ; mov cr0, eax
        let (mut cpu, mut bus) = real_mode_cpu(&[0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0]);
        let switch = DebugSetup {
            break_mode_switch: true,
            ..DebugSetup::default()
        };
        assert_eq!(
            run_to_stop(&mut cpu, &mut bus, &switch),
            DebugStop::ModeSwitch {
                from: CpuMode::Real,
                to: CpuMode::Protected16
            }
        );
        assert_eq!(cpu.s.rip, 0x1008);
    }

    /// 4-level walk through a 2 MiB page; entries keep their accessed bits clear.
    #[test]
    fn debug_walk_reads_without_setting_accessed_bits() {
        let mut bus = FlatBus::new(1 << 20);
        bus.load(0x1000, &0x2003u64.to_le_bytes());
        bus.load(0x2000 + 8, &0x3003u64.to_le_bytes());
        bus.load(0x3000, &(0x20_0000u64 | 0x83).to_le_bytes());
        let mut s = CpuState::power_on();
        s.cr0 |= cr0::PE | cr0::PG;
        s.cr4 |= cr4::PAE;
        s.efer |= efer::LME | efer::LMA;
        s.cr3 = 0x1000;
        let w = debug_walk(&s, &mut bus, 0x4000_1234);
        assert_eq!(w.paddr, Some(0x20_1234));
        assert_eq!(w.page_shift, 21);
        let names: Vec<_> = w.levels.iter().map(|l| l.name).collect();
        assert_eq!(names, ["PML4E", "PDPTE", "PDE"]);
        let mut e = [0u8; 8];
        assert!(peek_phys(&mut bus, 0x1000, &mut e));
        assert_eq!(u64::from_le_bytes(e) & pte::A, 0);
        let missing = debug_walk(&s, &mut bus, 0x8000_0000);
        assert_eq!(missing.paddr, None);
    }
}
