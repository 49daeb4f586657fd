//! The KVM vCPU behind the engine trait: the run loop (exits served by the bus) and on-demand
//! register access (a group is fetched from KVM only when read, stored only when changed).

use super::convert::*;
use super::debug::watch::{pieces_for, protected_slots, PageWatch, Served, SlotMemory};
use super::debug::{DebugAction, KvmDebug};
use super::inject::{offer, Delivery};
use super::vm::KvmVm;
use super::{KvmError, INSNS_PER_EXIT, INSNS_PER_KICK};
use crate::engine::{EngineError, Vcpu, VcpuExit};
use crate::memory::GuestMemory;
use kvm_bindings::{
    kvm_msr_entry, kvm_xcr, kvm_xcrs, CpuId, Msrs, KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};
use nestor_cpu::cpuid::CpuModel;
use nestor_cpu::debug::{debug_walk, linear_pc, CpuMode, DebugSetup, DebugStop, Watchpoint};
use nestor_cpu::{Bus, CpuState};
use std::cell::RefCell;

/// MXCSR's dword in the FXSAVE/XSAVE legacy region (byte 24).
const MXCSR_WORD: usize = 6;
/// XSTATE_BV's low dword in the XSAVE header (byte 512).
const XSTATE_BV_WORD: usize = 128;

/// Register groups, one bit each: the unit of fetching and storing.
mod group {
    pub const REGS: u8 = 1 << 0;
    pub const SREGS: u8 = 1 << 1;
    pub const FPU: u8 = 1 << 2;
    pub const MSRS: u8 = 1 << 3;
    pub const EVENTS: u8 = 1 << 4;
    pub const DEBUG: u8 = 1 << 5;
    pub const XCRS: u8 = 1 << 6;
    pub const ALL: u8 = 0x7f;
}

/// What we know of the vCPU's registers.
struct Cache {
    state: CpuState,
    /// Groups whose `state` fields match KVM's (or will, once stored).
    valid: u8,
}

pub struct KvmVcpu {
    /// Owns the VM and its memory slots for as long as the vCPU lives.
    vm: KvmVm,
    fd: VcpuFd,
    model: CpuModel,
    /// The MSRs of CpuState this KVM accepts.
    msrs: Vec<u32>,
    has_xcrs: bool,
    /// KVM_GET/SET_FPU do not carry MXCSR; it goes through a 4 KiB XSAVE image instead.
    mxcsr_via_xsave: bool,
    cache: RefCell<Cache>,
    /// Groups changed by `set_state` and not yet stored into KVM.
    dirty: u8,
    /// HLT ran and no interrupt has woken the CPU yet (KVM keeps this only with its irqchip).
    halted: bool,
    shutdown: bool,
    nmi_request: bool,
    exits: u64,
    /// Instructions charged for runs cut short by a kick (the guest spun without exits).
    spun: u64,
    retired_base: u64,
    kicker: super::kick::Kicker,
    debug: KvmDebug,
    /// Watchpoints, armed as protected pages in the VM's memory slots.
    watch: PageWatch,
    /// IA32_APIC_BASE as the board's local APIC last heard it.
    apic_base: u64,
}

/// Tell the board's local APIC what the guest did to CR8 and IA32_APIC_BASE inside KVM
/// (neither exits while KVM keeps no APIC of its own); returns the APIC base now known.
fn sync_apic(bus: &mut dyn Bus, retired: u64, cr8: u64, apic_base: u64, known: u64) -> u64 {
    let tpr = (cr8 as u8 & 0xf) << 4;
    if bus.apic_tpr().is_some_and(|t| t >> 4 != tpr >> 4) {
        bus.set_apic_tpr(tpr);
    }
    if apic_base != known {
        bus.apic_base_written(retired, apic_base);
    }
    apic_base
}

fn ioctl_err(what: &'static str) -> impl Fn(kvm_ioctls::Error) -> EngineError {
    move |e| EngineError::Failed(format!("{what}: {e}"))
}

impl KvmVcpu {
    /// A VM over `mem` with one vCPU showing `model` through CPUID, at power-on state.
    pub fn new(mem: &mut GuestMemory, model: &CpuModel) -> Result<Self, KvmError> {
        let vm = KvmVm::new(mem)?;
        let fd = vm
            .fd
            .create_vcpu(0)
            .map_err(|e| KvmError::Ioctl("KVM_CREATE_VCPU", e))?;
        fd.set_cpuid2(&cpuid_of(model)?)
            .map_err(|e| KvmError::Ioctl("KVM_SET_CPUID2", e))?;
        let msrs = supported_msrs(&fd);
        let has_xcrs = vm.kvm.check_extension(kvm_ioctls::Cap::Xcrs);
        let mxcsr_via_xsave = vm.kvm.check_extension(kvm_ioctls::Cap::Xsave)
            && vm.fd.check_extension_int(kvm_ioctls::Cap::Xsave2) <= 4096;
        let mut state = CpuState::power_on();
        state.gpr[2] = u64::from(model.signature);
        let apic_base = state.msr.apic_base;
        let mut v = Self {
            vm,
            fd,
            model: *model,
            msrs,
            has_xcrs,
            mxcsr_via_xsave,
            cache: RefCell::new(Cache { state, valid: 0 }),
            dirty: group::ALL,
            halted: false,
            shutdown: false,
            nmi_request: false,
            exits: 0,
            spun: 0,
            retired_base: 0,
            kicker: super::kick::Kicker::new(),
            debug: KvmDebug::default(),
            watch: PageWatch::default(),
            apic_base,
        };
        v.cache.get_mut().valid = group::ALL;
        Ok(v)
    }

    /// VM exits since this engine started.
    #[must_use]
    pub fn exit_count(&self) -> u64 {
        self.exits
    }

    /// Store every changed register into KVM and forget the cache, so that the next
    /// `state()` reads KVM's own copy (tests use this to round-trip through KVM).
    pub fn sync_with_kvm(&mut self) -> Result<(), EngineError> {
        self.flush()?;
        self.cache.get_mut().valid = 0;
        Ok(())
    }

    /// Fill the groups of the cache that are not valid from KVM.
    fn fetch(&self, want: u8) -> Result<(), EngineError> {
        let mut c = self.cache.borrow_mut();
        let missing = want & !c.valid;
        let s = &mut c.state;
        if missing & group::REGS != 0 {
            regs_to_state(&self.fd.get_regs().map_err(ioctl_err("KVM_GET_REGS"))?, s);
        }
        if missing & group::SREGS != 0 {
            sregs_to_state(&self.fd.get_sregs().map_err(ioctl_err("KVM_GET_SREGS"))?, s);
        }
        if missing & group::FPU != 0 {
            fpu_to_state(&self.fd.get_fpu().map_err(ioctl_err("KVM_GET_FPU"))?, s);
            if self.mxcsr_via_xsave {
                let x = self.fd.get_xsave().map_err(ioctl_err("KVM_GET_XSAVE"))?;
                s.x87.mxcsr = x.region[MXCSR_WORD];
            }
        }
        if missing & group::MSRS != 0 {
            let values = self.get_msrs()?;
            msrs_to_state(&values, s);
            // Nestor's TSC MSR field is relative to retired instructions (RDTSC adds them).
            s.msr.tsc = s.msr.tsc.wrapping_sub(self.retired());
        }
        if missing & group::EVENTS != 0 {
            let e = self.fd.get_vcpu_events();
            events_to_state(&e.map_err(ioctl_err("KVM_GET_VCPU_EVENTS"))?, s);
        }
        if missing & group::DEBUG != 0 {
            let d = self.fd.get_debug_regs();
            debugregs_to_state(&d.map_err(ioctl_err("KVM_GET_DEBUGREGS"))?, s);
        }
        if missing & group::XCRS != 0 && self.has_xcrs {
            let x = self.fd.get_xcrs().map_err(ioctl_err("KVM_GET_XCRS"))?;
            if let Some(xcr0) = x.xcrs.iter().take(x.nr_xcrs as usize).find(|r| r.xcr == 0) {
                s.xcr0 = xcr0.value;
            }
        }
        c.valid |= missing;
        Ok(())
    }

    fn get_msrs(&self) -> Result<Vec<(u32, u64)>, EngineError> {
        let entries: Vec<kvm_msr_entry> = self
            .msrs
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut list = Msrs::from_entries(&entries)
            .map_err(|e| EngineError::Failed(format!("MSR list: {e:?}")))?;
        let n = self
            .fd
            .get_msrs(&mut list)
            .map_err(ioctl_err("KVM_GET_MSRS"))?;
        Ok(list
            .as_slice()
            .iter()
            .take(n)
            .map(|e| (e.index, e.data))
            .collect())
    }

    /// Store the groups `set_state` changed, before the vCPU runs again.
    fn flush(&mut self) -> Result<(), EngineError> {
        if self.dirty == 0 {
            return Ok(());
        }
        let retired = self.retired();
        let c = self.cache.get_mut();
        let s = &c.state;
        let d = self.dirty;
        if d & group::SREGS != 0 {
            let sregs = sregs_from_state(s);
            self.fd.set_sregs(&sregs).map_err(|e| {
                EngineError::Failed(format!(
                    "KVM_SET_SREGS (cr0 {:#x} cr4 {:#x} efer {:#x}): {e}",
                    sregs.cr0, sregs.cr4, sregs.efer
                ))
            })?;
        }
        if d & group::REGS != 0 {
            let regs = regs_from_state(s);
            self.fd.set_regs(&regs).map_err(ioctl_err("KVM_SET_REGS"))?;
        }
        if d & group::FPU != 0 {
            let fpu = fpu_from_state(s);
            if self.mxcsr_via_xsave {
                let mut x = self.fd.get_xsave().map_err(ioctl_err("KVM_GET_XSAVE"))?;
                let image = fxsave_image(&fpu, s.x87.mxcsr, x.region[MXCSR_WORD + 1]);
                x.region[..128].copy_from_slice(&image);
                // The kernel takes the x87/SSE image only when XSTATE_BV marks it present.
                x.region[XSTATE_BV_WORD] |= 3;
                // SAFETY: KVM reads at most 4096 bytes here (checked with KVM_CAP_XSAVE2 at
                // creation), exactly the size of `kvm_xsave`.
                unsafe { self.fd.set_xsave(&x) }.map_err(ioctl_err("KVM_SET_XSAVE"))?;
            } else {
                self.fd.set_fpu(&fpu).map_err(ioctl_err("KVM_SET_FPU"))?;
            }
        }
        if d & group::XCRS != 0 && self.has_xcrs && self.model.xcr0_supported != 0 {
            let mut x = kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            x.xcrs[0] = kvm_xcr {
                xcr: 0,
                reserved: 0,
                value: s.xcr0,
            };
            self.fd.set_xcrs(&x).map_err(ioctl_err("KVM_SET_XCRS"))?;
        }
        if d & group::MSRS != 0 {
            let mut values = msrs_from_state(s, &self.msrs);
            for v in &mut values {
                if v.0 == msr_index::TSC {
                    v.1 = v.1.wrapping_add(retired);
                }
            }
            set_msrs(&self.fd, &values)?;
        }
        if d & group::EVENTS != 0 {
            let e = events_from_state(s);
            self.fd
                .set_vcpu_events(&e)
                .map_err(ioctl_err("KVM_SET_VCPU_EVENTS"))?;
        }
        if d & group::DEBUG != 0 {
            let dr = debugregs_from_state(s);
            self.fd
                .set_debug_regs(&dr)
                .map_err(ioctl_err("KVM_SET_DEBUGREGS"))?;
        }
        self.dirty = 0;
        Ok(())
    }

    /// An engine failure naming where the guest was.
    fn failure(&self, why: &str) -> EngineError {
        let at = match (self.fd.get_regs(), self.fd.get_sregs()) {
            (Ok(r), Ok(s)) => format!("{:04x}:{:#x} (cr0 {:#x})", s.cs.selector, r.rip, s.cr0),
            _ => "an unknown address".into(),
        };
        EngineError::Failed(format!("{why} at {at}"))
    }

    /// Act on a KVM_EXIT_DEBUG. `Some` ends `run`.
    fn on_debug_exit(&mut self, action: DebugAction) -> Result<Option<VcpuExit>, EngineError> {
        if let Some(full) = self.debug.take_pending() {
            self.fd
                .set_guest_debug(&full)
                .map_err(ioctl_err("KVM_SET_GUEST_DEBUG"))?;
        }
        match action {
            DebugAction::Continue => Ok(None),
            DebugAction::Stop(stop) => Ok(Some(VcpuExit::Debug(stop))),
            DebugAction::CheckMode => {
                self.fetch(group::REGS | group::SREGS)?;
                let mode = CpuMode::of(&self.cache.get_mut().state);
                Ok(self.debug.after_step(mode).map(VcpuExit::Debug))
            }
            DebugAction::Reinject => {
                // KVM queues the guest's own #DB/#BP again through this control bit.
                let mut arg = self.debug.current();
                arg.control |= kvm_bindings::KVM_GUESTDBG_INJECT_DB;
                self.fd
                    .set_guest_debug(&arg)
                    .map_err(ioctl_err("KVM_SET_GUEST_DEBUG (inject #DB)"))?;
                arg.control &= !kvm_bindings::KVM_GUESTDBG_INJECT_DB;
                self.fd
                    .set_guest_debug(&arg)
                    .map_err(ioctl_err("KVM_SET_GUEST_DEBUG"))?;
                Ok(None)
            }
        }
    }

    /// Before KVM_RUN: store changed registers, queue NMI and interrupt. `Some` when the
    /// vCPU stays halted (nothing woke it).
    fn prepare_entry(&mut self, bus: &mut dyn Bus) -> Result<Option<VcpuExit>, EngineError> {
        self.flush()?;
        if std::mem::take(&mut self.nmi_request) {
            self.fd.nmi().map_err(ioctl_err("KVM_NMI"))?;
            self.halted = false;
        }
        let delivery = offer(&mut self.fd, bus)
            .map_err(|e| EngineError::Failed(format!("KVM_INTERRUPT: {e}")))?;
        if matches!(delivery, Delivery::Queued(_)) {
            self.halted = false;
        }
        Ok(self.halted.then_some(VcpuExit::Halted))
    }

    fn step(&mut self, bus: &mut dyn Bus) -> Result<Option<VcpuExit>, EngineError> {
        if let Some(halted) = self.prepare_entry(bus)? {
            return Ok(Some(halted));
        }
        // From here on only KVM knows the registers.
        self.cache.get_mut().valid = 0;
        // Without KVM's irqchip the board's APIC holds the task priority, and KVM loads CR8
        // from kvm_run on every entry.
        if let Some(tpr) = bus.apic_tpr() {
            self.fd.get_kvm_run().cr8 = u64::from(tpr >> 4);
        }
        let run: *const kvm_bindings::kvm_run = self.fd.get_kvm_run();
        self.kicker.arm();
        let result = self.fd.run();
        self.kicker.disarm();
        let exit = match result {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR => {
                // A kick is a VM exit too (KVM_EXIT_INTR): plan steps counted in exits end.
                self.exits += 1;
                // SAFETY: as below; KVM fills kvm_run on this return too.
                let (cr8, apic_base) = unsafe { ((*run).cr8, (*run).apic_base) };
                let retired = self.retired();
                self.apic_base = sync_apic(bus, retired, cr8, apic_base, self.apic_base);
                return Ok(Some(VcpuExit::Budget));
            }
            Err(e) => return Err(EngineError::Failed(format!("KVM_RUN: {e}"))),
        };
        self.exits += 1;
        // Field by field: `exit` still borrows the vCPU fd.
        let retired = self
            .retired_base
            .wrapping_add(self.exits * INSNS_PER_EXIT)
            .wrapping_add(self.spun);
        // SAFETY: `run` points into the vCPU's kvm_run mapping, alive as `self.fd`; KVM
        // fills cr8 and apic_base on every exit.
        let (cr8, apic_base) = unsafe { ((*run).cr8, (*run).apic_base) };
        self.apic_base = sync_apic(bus, retired, cr8, apic_base, self.apic_base);
        let done = match exit {
            KvmExit::IoIn(port, data) => {
                bus.sync_retired(retired);
                // SAFETY: the kernel said this exit is port I/O, so `io` is the live union
                // member; `run` points into the vCPU's kvm_run mapping, alive as `self.fd`.
                let size = unsafe { (*run).__bindgen_anon_1.io.size };
                port_in(bus, port, size, data);
                None
            }
            KvmExit::IoOut(port, data) => {
                bus.sync_retired(retired);
                // SAFETY: as above.
                let size = unsafe { (*run).__bindgen_anon_1.io.size };
                port_out(bus, port, size, data);
                None
            }
            // Watched pages first: they are RAM, only protected from KVM.
            KvmExit::MmioRead(addr, data) => {
                match self.watch.serve_read(self.vm.base_slots(), addr, data) {
                    Served::NotOurs => {
                        bus.sync_retired(retired);
                        bus.mmio_read(addr, data);
                        None
                    }
                    Served::Quiet => None,
                    Served::Hit(stop) => Some(VcpuExit::Debug(stop)),
                }
            }
            KvmExit::MmioWrite(addr, data) => {
                match self.watch.serve_write(self.vm.base_slots(), addr, data) {
                    Served::NotOurs => {
                        bus.sync_retired(retired);
                        bus.mmio_write(addr, data);
                        None
                    }
                    Served::Quiet => None,
                    Served::Hit(stop) => Some(VcpuExit::Debug(stop)),
                }
            }
            KvmExit::Hlt => {
                self.halted = true;
                Some(VcpuExit::Halted)
            }
            KvmExit::Shutdown | KvmExit::SystemEvent(..) => {
                self.shutdown = true;
                Some(VcpuExit::Shutdown)
            }
            // CR8 lowered: the new priority is already with the board's APIC.
            KvmExit::IrqWindowOpen | KvmExit::Intr | KvmExit::SetTpr => None,
            KvmExit::Debug(d) => {
                let action = self.debug.decode(d.exception, d.dr6);
                return self.on_debug_exit(action);
            }
            KvmExit::InternalError => {
                // SAFETY: the kernel said this exit is an internal error: `internal` is live.
                let e = unsafe { (*run).__bindgen_anon_1.internal };
                if !self.let_code_run()? {
                    return Err(self.failure(&internal_error(&e)));
                }
                None
            }
            other => {
                let why = format!("KVM exit {other:?}");
                return Err(self.failure(&why));
            }
        };
        if let Some(VcpuExit::Debug(DebugStop::Watch { .. })) = done {
            self.finish_instruction(bus)?;
        }
        if done.is_none() && bus.stop_requested() {
            return Ok(Some(VcpuExit::Stopped));
        }
        Ok(done)
    }

    /// Let KVM complete the instruction behind the last MMIO exit without running on
    /// (KVM_RUN with immediate_exit), so that a watchpoint stop shows the state after it.
    fn finish_instruction(&mut self, bus: &mut dyn Bus) -> Result<(), EngineError> {
        let retired = self.retired();
        self.fd.set_kvm_immediate_exit(1);
        let result = loop {
            let exit = match self.fd.run() {
                Err(e) if e.errno() == libc::EINTR => break Ok(()),
                Err(e) => break Err(format!("KVM_RUN (completing an access): {e}")),
                Ok(exit) => exit,
            };
            // Further pieces of the same access (one per page, at most 8 bytes each).
            match exit {
                KvmExit::MmioRead(addr, data) => {
                    if self.watch.serve_read(self.vm.base_slots(), addr, data) == Served::NotOurs {
                        bus.sync_retired(retired);
                        bus.mmio_read(addr, data);
                    }
                }
                KvmExit::MmioWrite(addr, data) => {
                    if self.watch.serve_write(self.vm.base_slots(), addr, data) == Served::NotOurs {
                        bus.sync_retired(retired);
                        bus.mmio_write(addr, data);
                    }
                }
                other => break Err(format!("KVM exit {other:?} while completing an access")),
            }
        };
        self.fd.set_kvm_immediate_exit(0);
        result.map_err(|why| self.failure(&why))
    }

    /// Protect the pages `watchpoints` translate to now, through the current paging, and
    /// give the VM back every other page (all of them when there is no watchpoint).
    fn arm_watchpoints(&mut self, watchpoints: &[Watchpoint]) -> Result<(), EngineError> {
        let s = &self.cache.get_mut().state;
        let mut mem = SlotMemory(self.vm.base_slots());
        let long = s.long_mode();
        let translate = |lin: u64| {
            let lin = if long { lin } else { lin & 0xffff_ffff };
            debug_walk(s, &mut mem, lin).paddr
        };
        let refused = |e: super::debug::watch::WatchError| EngineError::Failed(e.to_string());
        let mut watch = PageWatch::new(pieces_for(watchpoints, translate).map_err(refused)?);
        let code = debug_walk(s, &mut SlotMemory(self.vm.base_slots()), linear_pc(s)).paddr;
        watch.let_code_run(code);
        self.watch = watch;
        self.protect_watched_pages()
    }

    /// Make the VM's slots match the watched pages' guards.
    fn protect_watched_pages(&mut self) -> Result<(), EngineError> {
        let want = protected_slots(self.vm.base_slots(), &self.watch.guards);
        self.vm
            .set_slots(&want)
            .map_err(|e| EngineError::Failed(e.to_string()))
    }

    /// After KVM failed to emulate an instruction: if the guest ran into a page unmapped for
    /// a read watchpoint, map it read-only and say so (true: run again).
    fn let_code_run(&mut self) -> Result<bool, EngineError> {
        if self.watch.guards.is_empty() {
            return Ok(false);
        }
        self.fetch(group::REGS | group::SREGS)?;
        let s = &self.cache.get_mut().state;
        let code = debug_walk(s, &mut SlotMemory(self.vm.base_slots()), linear_pc(s)).paddr;
        if !self.watch.let_code_run(code) {
            return Ok(false);
        }
        self.protect_watched_pages()?;
        Ok(true)
    }
}

/// A KVM_EXIT_INTERNAL_ERROR in words, with its data (instruction bytes for emulation).
fn internal_error(e: &kvm_bindings::kvm_run__bindgen_ty_1__bindgen_ty_13) -> String {
    let n = (e.ndata as usize).min(e.data.len());
    format!(
        "KVM internal error {} ({}), data {:x?}",
        e.suberror,
        internal_error_name(e.suberror),
        &e.data[..n]
    )
}

/// The names of `KVM_INTERNAL_ERROR_*` suberrors.
fn internal_error_name(suberror: u32) -> &'static str {
    match suberror {
        1 => "the instruction emulator cannot emulate this instruction",
        2 => "exception while delivering an exception",
        3 => "cannot deliver an event",
        4 => "unexpected exit reason",
        _ => "unknown",
    }
}

/// Serve a port read; string I/O (`rep ins`) hands several items of `size` bytes.
fn port_in(bus: &mut dyn Bus, port: u16, size: u8, data: &mut [u8]) {
    let size = size.clamp(1, 4);
    for item in data.chunks_mut(usize::from(size)) {
        let v = bus.io_in(port, size).to_le_bytes();
        let n = item.len();
        item.copy_from_slice(&v[..n]);
    }
}

fn port_out(bus: &mut dyn Bus, port: u16, size: u8, data: &[u8]) {
    let size = size.clamp(1, 4);
    for item in data.chunks(usize::from(size)) {
        let mut v = [0u8; 4];
        v[..item.len()].copy_from_slice(item);
        bus.io_out(port, size, u32::from_le_bytes(v));
    }
}

/// Set MSRs one run at a time: KVM stops at the first it refuses, which we skip.
fn set_msrs(fd: &VcpuFd, values: &[(u32, u64)]) -> Result<(), EngineError> {
    let mut rest = values;
    while !rest.is_empty() {
        let entries: Vec<kvm_msr_entry> = rest
            .iter()
            .map(|&(index, data)| kvm_msr_entry {
                index,
                reserved: 0,
                data,
            })
            .collect();
        let list = Msrs::from_entries(&entries)
            .map_err(|e| EngineError::Failed(format!("MSR list: {e:?}")))?;
        let n = fd.set_msrs(&list).map_err(ioctl_err("KVM_SET_MSRS"))?;
        if n < rest.len() {
            tracing::debug!("KVM refused MSR {:#x} = {:#x}", rest[n].0, rest[n].1);
        }
        rest = rest.get(n + 1..).unwrap_or(&[]);
    }
    Ok(())
}

/// The MSRs of CpuState that this KVM lets us read.
fn supported_msrs(fd: &VcpuFd) -> Vec<u32> {
    msr_indices()
        .into_iter()
        .filter(|&index| {
            let entry = kvm_msr_entry {
                index,
                ..Default::default()
            };
            Msrs::from_entries(&[entry])
                .ok()
                .and_then(|mut l| fd.get_msrs(&mut l).ok())
                == Some(1)
        })
        .collect()
}

/// CPUID as Nestor's model answers it, so that the guest sees the same CPU on every engine.
fn cpuid_of(model: &CpuModel) -> Result<CpuId, KvmError> {
    let mut entries = Vec::new();
    let mut leaf = |function: u32, index: u32, flags: u32| {
        let [eax, ebx, ecx, edx] = model.leaf(function, index);
        entries.push(kvm_bindings::kvm_cpuid_entry2 {
            function,
            index,
            flags,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        });
    };
    for f in 0..=model.max_leaf {
        match f {
            4 | 7 | 0xb => leaf(f, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
            0xd => {
                for i in 0..2 {
                    leaf(f, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
                }
            }
            _ => leaf(f, 0, 0),
        }
    }
    if model.max_ext_leaf >= 0x8000_0000 {
        for f in 0x8000_0000..=model.max_ext_leaf {
            leaf(f, 0, 0);
        }
    }
    CpuId::from_entries(&entries).map_err(|_| KvmError::Layout("too many CPUID leaves"))
}

/// Does group `g` differ between two states?
fn differs(g: u8, a: &CpuState, b: &CpuState) -> bool {
    match g {
        group::REGS => a.gpr != b.gpr || a.rip != b.rip || a.rflags != b.rflags,
        group::SREGS => {
            a.seg != b.seg
                || (a.ldtr, a.tr, a.gdtr, a.idtr) != (b.ldtr, b.tr, b.gdtr, b.idtr)
                || [a.cr0, a.cr2, a.cr3, a.cr4, a.cr8, a.efer, a.msr.apic_base]
                    != [b.cr0, b.cr2, b.cr3, b.cr4, b.cr8, b.efer, b.msr.apic_base]
        }
        group::FPU => a.x87 != b.x87 || a.xmm != b.xmm,
        group::MSRS => a.msr != b.msr,
        group::EVENTS => {
            (a.events.interrupt_shadow, a.events.nmi_pending)
                != (b.events.interrupt_shadow, b.events.nmi_pending)
        }
        group::DEBUG => a.dr != b.dr,
        group::XCRS => a.xcr0 != b.xcr0,
        _ => true,
    }
}

impl Vcpu for KvmVcpu {
    fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Result<VcpuExit, EngineError> {
        if self.shutdown {
            return Ok(VcpuExit::Shutdown);
        }
        let limit = self.exits + budget.div_ceil(INSNS_PER_EXIT).max(1);
        while self.exits < limit {
            if bus.stop_requested() {
                return Ok(VcpuExit::Stopped);
            }
            match self.step(bus)? {
                None => {}
                // Kicked: the guest ran a whole slice without an exit. Charge it time, so
                // that a guest spinning until a timer fires sees that timer fire.
                Some(VcpuExit::Budget) => {
                    let left = limit.saturating_sub(self.exits) * INSNS_PER_EXIT;
                    self.spun += left.min(INSNS_PER_KICK);
                    return Ok(VcpuExit::Budget);
                }
                Some(exit) => return Ok(exit),
            }
        }
        Ok(VcpuExit::Budget)
    }

    fn state(&self) -> CpuState {
        if let Err(e) = self.fetch(group::ALL) {
            tracing::warn!("kvm: reading registers: {e}");
        }
        let mut s = self.cache.borrow().state.clone();
        s.events.halted = self.halted;
        s.events.shutdown = self.shutdown;
        s.events.nmi_pending |= self.nmi_request;
        s
    }

    fn set_state(&mut self, s: &CpuState) -> Result<(), EngineError> {
        let mut s = s.clone();
        s.rflags = s.lazy.resolve(s.rflags);
        s.lazy = Default::default();
        let c = self.cache.get_mut();
        for k in 0..7 {
            let g = 1u8 << k;
            if c.valid & g == 0 || differs(g, &c.state, &s) {
                self.dirty |= g;
            }
        }
        c.state = s;
        c.valid = group::ALL;
        self.apic_base = c.state.msr.apic_base;
        self.halted = c.state.events.halted;
        self.shutdown = c.state.events.shutdown;
        Ok(())
    }

    fn retired(&self) -> u64 {
        self.retired_base
            .wrapping_add(self.exits * INSNS_PER_EXIT)
            .wrapping_add(self.spun)
    }

    fn set_retired(&mut self, retired: u64) {
        self.retired_base = retired
            .wrapping_sub(self.exits * INSNS_PER_EXIT)
            .wrapping_sub(self.spun);
    }

    fn exits(&self) -> u64 {
        self.exits
    }

    fn reset(&mut self) {
        let mut s = CpuState::power_on();
        s.gpr[2] = u64::from(self.model.signature);
        self.cache.get_mut().valid = 0;
        self.halted = false;
        self.shutdown = false;
        self.nmi_request = false;
        if let Err(e) = self.set_state(&s) {
            tracing::warn!("kvm reset: {e}");
        }
    }

    fn inject_nmi(&mut self) {
        self.nmi_request = true;
    }

    /// KVM fetches code from guest memory itself: nothing is cached here.
    fn invalidate_code(&mut self, _paddr: u64, _len: u64) {}

    fn name(&self) -> &'static str {
        "kvm"
    }

    fn set_debug(&mut self, setup: &DebugSetup) -> Result<(), EngineError> {
        self.fetch(group::REGS | group::SREGS)?;
        self.arm_watchpoints(&setup.watchpoints)?;
        let s = &self.cache.get_mut().state;
        let (pc, mode) = (linear_pc(s), CpuMode::of(s));
        let arg = self
            .debug
            .arm(setup, pc, mode)
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        if let Some(arg) = arg {
            self.fd
                .set_guest_debug(&arg)
                .map_err(ioctl_err("KVM_SET_GUEST_DEBUG"))?;
        }
        Ok(())
    }
}
