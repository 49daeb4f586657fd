use super::*;
use crate::engine::{Vcpu, VcpuExit};
use crate::kvm::KvmVcpu;
use crate::memory::GuestMemory;
use nestor_cpu::debug::{WatchKind, Watchpoint};
use nestor_cpu::testbus::FlatBus;

fn watch(start: u64, len: u64, kind: WatchKind) -> Watchpoint {
    Watchpoint { start, len, kind }
}

/// DR7 per the SDM (vol. 3, 18.2.4): G bit 2n+1; R/W and LEN 0 for instruction
/// breakpoints; GE and bit 10 set. Watchpoints take no debug register.
#[test]
fn dr7_arms_breakpoints_only() {
    let setup = DebugSetup {
        breakpoints: vec![0xffff_fff0, 0x7c00, 0x7c00],
        watchpoints: vec![
            watch(0x5000, 4, WatchKind::Write),
            watch(0x6002, 2, WatchKind::Access),
        ],
        ..DebugSetup::default()
    };
    let slots = slots_for(&setup).unwrap();
    assert_eq!(slots, [0xffff_fff0, 0x7c00], "duplicates share a register");
    let g = guest_debug(&slots, false);
    assert_eq!(g.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
    assert_eq!(g.arch.debugreg[..4], [0xffff_fff0, 0x7c00, 0, 0]);
    assert_eq!(g.arch.debugreg[7], 0x600 | 0b10 | 0b1000);
}

#[test]
fn single_step_alone_uses_no_debug_registers() {
    let g = guest_debug(&[], true);
    assert_eq!(g.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
    assert_eq!(g.arch.debugreg, [0; 8]);
    assert_eq!(guest_debug(&[], false).control, 0);
}

#[test]
fn more_than_four_breakpoints_are_refused_with_the_count() {
    let setup = DebugSetup {
        breakpoints: vec![1, 2, 3, 4, 5],
        watchpoints: vec![watch(0x5001, 2, WatchKind::Write)],
        ..DebugSetup::default()
    };
    let e = slots_for(&setup).unwrap_err();
    assert_eq!(e, KvmDebugError::TooManySlots(5));
    assert!(e.to_string().contains("4 hardware debug registers"));
    let many_watches = DebugSetup {
        breakpoints: vec![1, 2, 3, 4],
        watchpoints: vec![watch(0, 8, WatchKind::Write); 8],
        ..DebugSetup::default()
    };
    assert!(slots_for(&many_watches).is_ok());
}

#[test]
fn exceptions_are_refused_and_idle_setups_need_no_ioctl() {
    let mut d = KvmDebug::default();
    let exc = DebugSetup {
        break_exceptions: 1 << 14,
        ..DebugSetup::default()
    };
    assert_eq!(
        d.arm(&exc, 0, CpuMode::Real),
        Err(KvmDebugError::Exceptions)
    );
    assert_eq!(d.arm(&DebugSetup::default(), 0, CpuMode::Real), Ok(None));
    let step = DebugSetup {
        single_step: true,
        ..DebugSetup::default()
    };
    assert!(d.arm(&step, 0, CpuMode::Real).unwrap().is_some());
    // Once armed, an empty setup must disarm KVM.
    let off = d.arm(&DebugSetup::default(), 0, CpuMode::Real).unwrap();
    assert_eq!(off.map(|g| g.control), Some(0));
}

#[test]
fn dr6_decodes_to_the_stop() {
    let mut d = KvmDebug::default();
    let setup = DebugSetup {
        breakpoints: vec![0x1000, 0x2000],
        single_step: true,
        ..DebugSetup::default()
    };
    d.arm(&setup, 0, CpuMode::Real).unwrap();
    assert_eq!(
        d.decode(1, 0xffff_0ff1),
        DebugAction::Stop(DebugStop::Breakpoint(0x1000))
    );
    assert_eq!(
        d.decode(1, 0xffff_4ff2),
        DebugAction::Stop(DebugStop::Breakpoint(0x2000))
    );
    assert_eq!(d.decode(1, 0xffff_4ff0), DebugAction::Stop(DebugStop::Step));
    assert_eq!(d.decode(1, 0xffff_0ff0), DebugAction::Reinject);
    assert_eq!(d.decode(3, 0), DebugAction::Reinject);
    // B3 is not a slot in use (it can be set for an unarmed register).
    assert_eq!(d.decode(1, 0xffff_0ff8), DebugAction::Reinject);
    // Without our single step, BS is the guest stepping itself with TF.
    let no_step = DebugSetup {
        single_step: false,
        ..setup
    };
    d.arm(&no_step, 0, CpuMode::Real).unwrap();
    assert_eq!(d.decode(1, 0xffff_4ff0), DebugAction::Reinject);
}

#[test]
fn mode_switch_stops_come_from_steps() {
    let mut d = KvmDebug::default();
    let setup = DebugSetup {
        break_mode_switch: true,
        ..DebugSetup::default()
    };
    let g = d.arm(&setup, 0, CpuMode::Real).unwrap().unwrap();
    assert_ne!(g.control & KVM_GUESTDBG_SINGLESTEP, 0);
    assert_eq!(d.decode(1, DR6_BS), DebugAction::CheckMode);
    assert_eq!(d.after_step(CpuMode::Real), None);
    assert_eq!(
        d.after_step(CpuMode::Protected16),
        Some(DebugStop::ModeSwitch {
            from: CpuMode::Real,
            to: CpuMode::Protected16
        })
    );
}

/// A vCPU at the reset vector; the ROM at F000:0000 (linear 0xF0000) holds
/// nop; nop; mov [0x5000], ax; nop; hlt.
fn live_vcpu() -> Result<(KvmVcpu, GuestMemory), String> {
    let mut rom = vec![0xf4u8; 64 << 10];
    rom[..8].copy_from_slice(&[0x90, 0x90, 0xa3, 0x00, 0x50, 0x90, 0xf4, 0xf4]);
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0, 0, 0x00, 0xf0]);
    let mut mem = GuestMemory::new(16, rom).map_err(|e| e.to_string())?;
    let v = KvmVcpu::new(&mut mem, &nestor_cpu::cpuid::NESTOR64).map_err(|e| e.to_string())?;
    Ok((v, mem))
}

/// The live vCPU, or why these tests cannot run here (printed by the caller).
fn live_or_skip() -> Option<(KvmVcpu, GuestMemory)> {
    let (mut v, mem) = match live_vcpu() {
        Ok(v) => v,
        Err(why) => {
            eprintln!("SKIPPED: KVM unusable here: {why}");
            return None;
        }
    };
    let probe = DebugSetup {
        single_step: true,
        ..DebugSetup::default()
    };
    if let Err(e) = v.set_debug(&probe) {
        eprintln!("SKIPPED: this KVM refuses guest debugging: {e}");
        return None;
    }
    Some((v, mem))
}

fn run(v: &mut KvmVcpu) -> VcpuExit {
    v.run(&mut FlatBus::new(4096), 1_000_000).expect("run")
}

/// Against the host's KVM in real mode: a step, then a breakpoint that is not taken at the
/// resume PC but at the next instruction.
#[test]
fn kvm_steps_and_breaks_in_real_mode() {
    let Some((mut v, _mem)) = live_or_skip() else {
        return;
    };
    assert_eq!(run(&mut v), VcpuExit::Debug(DebugStop::Step));
    assert_eq!(v.state().rip, 0, "stepped the far jump to F000:0000");
    let bp = DebugSetup {
        breakpoints: vec![0xf_0000, 0xf_0001],
        ..DebugSetup::default()
    };
    v.set_debug(&bp).unwrap();
    assert_eq!(
        run(&mut v),
        VcpuExit::Debug(DebugStop::Breakpoint(0xf_0001)),
        "the breakpoint at the resume PC is passed once"
    );
    v.set_debug(&DebugSetup::default()).unwrap();
    assert_eq!(run(&mut v), VcpuExit::Halted);
}

/// 64-bit code at 0x10000 under identity-mapped 2 MiB pages:
/// nop; mov [0x5000], eax; nop; hlt.
fn enter_long_mode(v: &mut KvmVcpu, mem: &mut GuestMemory) {
    use nestor_cpu::state::{attr, cr0, cr4, efer};
    let code = [0x90, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, 0x90, 0xf4];
    assert!(mem.write(0x1_0000, &code));
    assert!(mem.write(0x1000, &0x2003u64.to_le_bytes()));
    assert!(mem.write(0x2000, &0x3003u64.to_le_bytes()));
    assert!(mem.write(0x3000, &0x83u64.to_le_bytes()));
    let mut s = v.state();
    let seg = |selector: u16, a: u16| nestor_cpu::Segment {
        base: 0,
        limit: u32::MAX,
        selector,
        attr: attr::P | attr::S | attr::RW | attr::ACCESSED | attr::G | a,
    };
    s.seg = [seg(0x10, attr::DB); 6];
    s.seg[nestor_cpu::SegReg::Cs as usize] = seg(0x08, attr::CODE | attr::L);
    s.cr0 = cr0::PE | cr0::ET | cr0::NE | cr0::PG;
    s.cr4 = cr4::PAE;
    s.cr3 = 0x1000;
    s.efer = efer::LME | efer::LMA;
    s.rip = 0x1_0000;
    s.rflags = 2;
    s.gpr[0] = 0x1234_5678;
    v.set_state(&s).unwrap();
}

/// Against the host's KVM in 64-bit mode: a write watchpoint stops after the writing
/// instruction, a breakpoint before its instruction, a step after one instruction.
#[test]
fn kvm_watches_breaks_and_steps_in_long_mode() {
    let Some((mut v, mut mem)) = live_or_skip() else {
        return;
    };
    enter_long_mode(&mut v, &mut mem);
    let setup = DebugSetup {
        breakpoints: vec![0x1_0009],
        watchpoints: vec![watch(0x5000, 4, WatchKind::Write)],
        ..DebugSetup::default()
    };
    v.set_debug(&setup).unwrap();
    let write = DebugStop::Watch {
        kind: WatchKind::Write,
        addr: 0x5000,
    };
    assert_eq!(run(&mut v), VcpuExit::Debug(write));
    assert_eq!(
        v.state().rip,
        0x1_0008,
        "stops after the writing instruction"
    );
    let mut written = [0u8; 4];
    assert!(mem.read(0x5000, &mut written));
    assert_eq!(written, 0x1234_5678u32.to_le_bytes(), "the write was done");
    v.set_debug(&setup).unwrap();
    assert_eq!(
        run(&mut v),
        VcpuExit::Debug(DebugStop::Breakpoint(0x1_0009))
    );
    assert_eq!(v.state().rip, 0x1_0009, "stops before the instruction");
    let step = DebugSetup {
        single_step: true,
        ..setup
    };
    v.set_debug(&step).unwrap();
    assert_eq!(run(&mut v), VcpuExit::Debug(DebugStop::Step));
    assert_eq!(
        v.state().rip,
        0x1_000a,
        "stepped the hlt's predecessor only"
    );
}

/// Against the host's KVM: a read watchpoint unmaps its page, stops after the reading
/// instruction with the value loaded, and its removal gives the page back (the guest then
/// runs on without exits there).
#[test]
fn kvm_read_watchpoints_unmap_pages_and_removal_restores_them() {
    let Some((mut v, mut mem)) = live_or_skip() else {
        return;
    };
    enter_long_mode(&mut v, &mut mem);
    // mov eax, [0x6000]; mov [0x5000], eax; hlt
    let code = [
        0x8b, 0x04, 0x25, 0x00, 0x60, 0x00, 0x00, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, 0xf4,
    ];
    assert!(mem.write(0x1_0000, &code));
    assert!(mem.write(0x6000, &0xcafe_babeu32.to_le_bytes()));
    let read = DebugSetup {
        watchpoints: vec![
            watch(0x6000, 4, WatchKind::Read),
            watch(0x5000, 4, WatchKind::Read),
        ],
        ..DebugSetup::default()
    };
    v.set_debug(&read).unwrap();
    let stop = DebugStop::Watch {
        kind: WatchKind::Read,
        addr: 0x6000,
    };
    assert_eq!(run(&mut v), VcpuExit::Debug(stop));
    let s = v.state();
    assert_eq!(s.rip, 0x1_0007, "stops after the reading instruction");
    assert_eq!(s.gpr[0], 0xcafe_babe, "with the value read from guest RAM");
    // The write to the read-watched page is served without a stop.
    v.set_debug(&read).unwrap();
    assert_eq!(run(&mut v), VcpuExit::Halted);
    let mut written = [0u8; 4];
    assert!(mem.read(0x5000, &mut written));
    assert_eq!(u32::from_le_bytes(written), 0xcafe_babe);
    // Without watchpoints the pages are plain RAM again: KVM writes them itself.
    v.set_debug(&DebugSetup::default()).unwrap();
    let mut s = v.state();
    s.rip = 0x1_0000;
    s.events.halted = false;
    assert!(mem.write(0x6000, &7u32.to_le_bytes()));
    v.set_state(&s).unwrap();
    let exits = v.exit_count();
    assert_eq!(run(&mut v), VcpuExit::Halted);
    assert_eq!(v.exit_count(), exits + 1, "only the hlt exits");
    assert!(mem.read(0x5000, &mut written));
    assert_eq!(u32::from_le_bytes(written), 7);
}

#[test]
fn resuming_on_a_breakpoint_steps_over_it_first() {
    let mut d = KvmDebug::default();
    let setup = DebugSetup {
        breakpoints: vec![0x1000, 0x2000],
        ..DebugSetup::default()
    };
    let first = d.arm(&setup, 0x1000, CpuMode::Real).unwrap().unwrap();
    assert_eq!(
        first.control,
        KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_SINGLESTEP
    );
    assert_eq!(first.arch.debugreg[0], 0x2000);
    assert_eq!(first.arch.debugreg[7], 0x602);
    assert_eq!(d.decode(1, DR6_BS), DebugAction::Continue);
    let full = d.take_pending().expect("the whole setup");
    assert_eq!(full.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
    assert_eq!(full.arch.debugreg[..2], [0x1000, 0x2000]);
    assert_eq!(d.take_pending(), None);
    assert_eq!(
        d.decode(1, 1),
        DebugAction::Stop(DebugStop::Breakpoint(0x1000))
    );
}

/// Against the host's KVM: code that jumps into a page unmapped for an access watchpoint
/// (KVM cannot fetch from it) runs on, the page now read-only, and its writes still stop.
#[test]
fn kvm_code_running_into_an_access_watched_page_runs_on() {
    let Some((mut v, mut mem)) = live_or_skip() else {
        return;
    };
    enter_long_mode(&mut v, &mut mem);
    // mov eax, 0x5000; jmp rax. At 0x5000: mov [0x5100], eax; hlt
    assert!(mem.write(0x1_0000, &[0xb8, 0x00, 0x50, 0x00, 0x00, 0xff, 0xe0]));
    assert!(mem.write(0x5000, &[0x89, 0x04, 0x25, 0x00, 0x51, 0x00, 0x00, 0xf4]));
    let access = DebugSetup {
        watchpoints: vec![watch(0x5100, 4, WatchKind::Access)],
        ..DebugSetup::default()
    };
    v.set_debug(&access).unwrap();
    let stop = DebugStop::Watch {
        kind: WatchKind::Write,
        addr: 0x5100,
    };
    assert_eq!(run(&mut v), VcpuExit::Debug(stop));
    assert_eq!(v.state().rip, 0x5007);
    let mut written = [0u8; 4];
    assert!(mem.read(0x5100, &mut written));
    assert_eq!(u32::from_le_bytes(written), 0x5000);
    // Resuming with the code in the watched page: armed read-only from the start.
    v.set_debug(&access).unwrap();
    assert_eq!(run(&mut v), VcpuExit::Halted);
}
