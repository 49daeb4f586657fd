//! The PC board as the CPU sees it: it implements [`Bus`] over guest memory, the port and MMIO
//! maps of the device plugins, PCI configuration, the interrupt wiring and the system control
//! port (A20, fast reset).

mod cpu_apic;

pub use cpu_apic::TSC_HZ;

use crate::clock::Clock;
use crate::irq::{Interrupts, LineMasks};
use crate::memory::GuestMemory;
use nestor_cpu::{Bus, PageTarget};
use nestor_device::{
    read_bytewise, write_bytewise, Device, DeviceContext, DmaError, ExitRequest, MmioRange,
};
use serde::{Deserialize, Serialize};

/// System control port A (0x92): bit 1 gates A20, bit 0 pulses a fast reset.
const PORT_SYSCTL_A: u16 = 0x92;
/// Firmware trap: a write stops the CPU after the OUT so that the firmware's host-side
/// service (named by the byte written) can run on the CPU state.
pub const PORT_FIRMWARE_TRAP: u16 = 0x404;
/// Writing port 0xF0 clears the x87 error interrupt (IRQ 13) and asserts IGNNE#.
const PORT_FPU_CLEAR: u16 = 0xf0;
/// No device decodes the port: reads float high.
const NO_DEVICE: u16 = u16::MAX;
/// The port belongs to the interrupt controller (kept apart: the CPU acknowledges through it).
const PIC_SLOT: u16 = u16::MAX - 1;
/// The port belongs to the board itself (system control port A, firmware trap).
const BOARD_SLOT: u16 = u16::MAX - 2;
/// MMIO windows of the interrupt controllers the board keeps apart.
const IOAPIC_SLOT: u16 = u16::MAX - 3;
const LAPIC_SLOT: u16 = u16::MAX - 4;
/// Device indices are interrupt source numbers, one bit each in a line's mask.
const MAX_DEVICES: usize = 60;

/// Guest-visible state of the board itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardState {
    /// The A20 gate as the memory sees it: port 0x92 bit 1 OR the keyboard controller's line.
    pub a20: bool,
    pub sysctl_a: u8,
    #[serde(default)]
    pub kbc_a20: bool,
    #[serde(default)]
    pub pci: crate::pci::PciHostState,
}

/// What a device may touch while it runs: everything on the board but the devices.
pub struct Wires {
    pub mem: GuestMemory,
    exit: Option<ExitRequest>,
    /// (source device, line, level) as devices drove them since the last settle.
    irq_changes: Vec<(u16, u8, bool)>,
    remap: bool,
    /// Guest memory written behind the CPU (DMA, firmware): decoded code there is stale.
    pub written: Vec<(u64, u64)>,
}

struct Ctx<'a> {
    wires: &'a mut Wires,
    now: u64,
    source: u16,
}

impl DeviceContext for Ctx<'_> {
    fn set_irq(&mut self, line: u8, level: bool) {
        self.wires.irq_changes.push((self.source, line, level));
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn dma_read(&mut self, paddr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        if self.wires.mem.read(paddr, buf) {
            Ok(())
        } else {
            Err(DmaError {
                paddr,
                len: buf.len(),
            })
        }
    }
    fn dma_write(&mut self, paddr: u64, buf: &[u8]) -> Result<(), DmaError> {
        if self.wires.mem.write(paddr, buf) {
            self.wires.written.push((paddr, buf.len() as u64));
            Ok(())
        } else {
            Err(DmaError {
                paddr,
                len: buf.len(),
            })
        }
    }
    fn request_exit(&mut self, why: ExitRequest) {
        // The first request wins: a reset after a power-off changes nothing.
        self.wires.exit.get_or_insert(why);
    }
    fn remap(&mut self) {
        self.wires.remap = true;
    }
}

pub struct Board {
    pub wires: Wires,
    pub clock: Clock,
    pub irq: Interrupts,
    devices: Vec<Box<dyn Device>>,
    /// Sources the HPET's legacy route disconnects, and the HPET itself.
    pit_index: Option<u16>,
    rtc_index: Option<u16>,
    hpet_index: Option<u16>,
    /// Interrupt inputs must be recomputed (a config write or HPET access may reroute them).
    irq_dirty: bool,
    /// Per port: index into `devices`, or one of the *_SLOT values.
    port_map: Box<[u16]>,
    /// Device memory windows, sorted by base: (range, index into `devices` or *_SLOT).
    mmio_map: Vec<(MmioRange, u16)>,
    pub state: BoardState,
    generation: u64,
    retired: u64,
    /// Virtual time the CPU's current slice was planned to run to (see [`Board::begin_slice`]).
    slice_end_ns: u64,
    /// A device deadline now falls before `slice_end_ns`: the CPU must stop so that the
    /// timer fires on time, not at the planned end of the slice.
    deadline_early: bool,
    /// Service number of a firmware trap waiting to be handled.
    trap: Option<u8>,
    /// The guest wrote port 0xF0: the machine must assert IGNNE# on the CPU.
    fpu_clear: bool,
}

impl Board {
    pub fn new(mem: GuestMemory, clock: Clock) -> Self {
        let mut board = Self {
            wires: Wires {
                mem,
                exit: None,
                irq_changes: Vec::new(),
                remap: false,
                written: Vec::new(),
            },
            clock,
            irq: Interrupts::new(),
            devices: Vec::new(),
            pit_index: None,
            rtc_index: None,
            hpet_index: None,
            irq_dirty: false,
            port_map: vec![NO_DEVICE; 0x1_0000].into_boxed_slice(),
            mmio_map: Vec::new(),
            state: BoardState {
                a20: true,
                sysctl_a: 0x02,
                ..BoardState::default()
            },
            generation: 0,
            retired: 0,
            // No slice planned yet: nothing stops early.
            slice_end_ns: 0,
            deadline_early: false,
            trap: None,
            fpu_clear: false,
        };
        // Nothing else is attached yet: the interrupt controllers cannot clash.
        let _ = board.rebuild_maps();
        board
    }

    /// Plug a device in; its ports and windows must not overlap another device's.
    pub fn attach(&mut self, dev: Box<dyn Device>) -> Result<(), String> {
        if self.devices.len() >= MAX_DEVICES {
            return Err(format!("{}: more than {MAX_DEVICES} devices", dev.name()));
        }
        let index = Some(self.devices.len() as u16);
        let role = match dev.name() {
            "pit" => Some(&mut self.pit_index),
            "rtc" => Some(&mut self.rtc_index),
            "hpet" => Some(&mut self.hpet_index),
            _ => None,
        };
        if let Some(slot) = role {
            *slot = index;
        }
        self.devices.push(dev);
        self.refresh_kbc_a20();
        let result = self.rebuild_maps();
        if result.is_err() {
            self.devices.pop();
            let _ = self.rebuild_maps();
        }
        result
    }

    /// Build the port and MMIO maps from what every device decodes now. On a clash the
    /// earlier device keeps the resource and the error names the later one.
    fn rebuild_maps(&mut self) -> Result<(), String> {
        let mut first_clash = None;
        let mut port_map = vec![NO_DEVICE; 0x1_0000].into_boxed_slice();
        for p in [PORT_SYSCTL_A, PORT_FIRMWARE_TRAP, PORT_FPU_CLEAR] {
            port_map[usize::from(p)] = BOARD_SLOT;
        }
        let owners = std::iter::once((PIC_SLOT, self.irq.pic.ports())).chain(
            self.devices
                .iter()
                .enumerate()
                .map(|(i, d)| (i as u16, d.ports())),
        );
        for (index, ranges) in owners {
            for r in ranges {
                for p in r.first..r.first.saturating_add(r.count) {
                    let slot = &mut port_map[usize::from(p)];
                    if *slot == NO_DEVICE {
                        *slot = index;
                    } else if first_clash.is_none() {
                        first_clash = Some(format!("port {p:#x} is decoded twice"));
                    }
                }
            }
        }
        let mut mmio: Vec<(MmioRange, u16)> = Vec::new();
        let apics = [
            (IOAPIC_SLOT, self.irq.ioapic.mmio_ranges(), "ioapic"),
            (LAPIC_SLOT, self.irq.lapic.mmio_ranges(), "lapic"),
        ];
        let windows = apics.into_iter().chain(
            self.devices
                .iter()
                .enumerate()
                .map(|(i, d)| (i as u16, d.mmio_ranges(), d.name())),
        );
        for (i, ranges, name) in windows {
            for r in ranges.into_iter().filter(|r| r.len > 0) {
                let overlaps = mmio.iter().any(|(o, _)| {
                    r.base < o.base.saturating_add(o.len) && o.base < r.base.saturating_add(r.len)
                });
                if overlaps {
                    first_clash.get_or_insert(format!(
                        "{name}: window {:#x}+{:#x} overlaps another",
                        r.base, r.len
                    ));
                } else {
                    mmio.push((r, i));
                }
            }
        }
        mmio.sort_by_key(|(r, _)| r.base);
        self.port_map = port_map;
        self.mmio_map = mmio;
        first_clash.map_or(Ok(()), Err)
    }

    #[must_use]
    pub fn devices(&self) -> &[Box<dyn Device>] {
        &self.devices
    }

    pub fn devices_mut(&mut self) -> &mut [Box<dyn Device>] {
        &mut self.devices
    }

    /// The attached device of concrete type `T`, for its inherent API.
    pub fn device_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.devices
            .iter_mut()
            .find_map(|d| d.as_any_mut().and_then(|a| a.downcast_mut::<T>()))
    }

    pub fn take_exit(&mut self) -> Option<ExitRequest> {
        self.wires.exit.take()
    }

    /// The firmware service the guest trapped into, if any.
    pub fn take_trap(&mut self) -> Option<u8> {
        self.trap.take()
    }

    /// Whether the guest cleared the x87 error through port 0xF0 since the last call.
    pub fn take_fpu_clear(&mut self) -> bool {
        std::mem::take(&mut self.fpu_clear)
    }

    /// The CPU's FERR# output, wired to IRQ 13 as on a PC.
    pub fn set_fpu_error(&mut self, asserted: bool) {
        self.wires.irq_changes.push((BOARD_SLOT, 13, asserted));
        self.settle();
    }

    /// Set the retired-instruction count that drives device time.
    pub fn set_retired(&mut self, retired: u64) {
        self.retired = retired;
    }

    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns(self.retired)
    }

    /// The earliest time a device wants to run its timer.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        let lapic = self.irq.lapic.next_deadline_ns();
        self.devices
            .iter()
            .filter_map(|d| d.next_deadline_ns())
            .chain(lapic)
            .min()
    }

    /// The CPU is about to run until virtual time `end_ns` at most. A device access that
    /// moves a deadline before it stops the CPU after that instruction, so timers fire at the
    /// same instruction however the run was sliced.
    pub fn begin_slice(&mut self, end_ns: u64) {
        self.slice_end_ns = end_ns;
        self.deadline_early = false;
    }

    /// After a device access: did it move a deadline into the running slice?
    fn note_deadline(&mut self) {
        if !self.deadline_early && self.next_deadline().is_some_and(|d| d < self.slice_end_ns) {
            self.deadline_early = true;
        }
    }

    /// Run the timers of every device whose deadline has passed.
    pub fn fire_timers(&mut self) {
        let now = self.now_ns();
        for (i, dev) in self.devices.iter_mut().enumerate() {
            if dev.next_deadline_ns().is_some_and(|d| d <= now) {
                dev.on_timer(&mut Ctx {
                    wires: &mut self.wires,
                    now,
                    source: i as u16,
                });
            }
        }
        self.run_lapic_timer_if_due(now);
        self.settle();
    }

    /// Apply what devices did to the wires: IRQ levels, interrupt routing, remap requests.
    fn settle(&mut self) {
        if !self.wires.irq_changes.is_empty() || self.irq_dirty {
            self.irq_dirty = false;
            let masks = LineMasks {
                hpet_legacy: self.hpet_legacy(),
                pit_source: self.pit_index,
                rtc_source: self.rtc_index,
            };
            let routes = crate::pci::pirq_routes(&mut self.devices);
            // In order, one at a time: a low-then-high pulse is an edge the 8259 must see.
            let changes = std::mem::take(&mut self.wires.irq_changes);
            for &(source, line, level) in &changes {
                self.irq.set_line(source, line, level);
                self.irq.apply(masks, routes);
            }
            self.irq.apply(masks, routes);
            self.wires.irq_changes = changes;
            self.wires.irq_changes.clear();
        }
        if std::mem::take(&mut self.wires.remap) {
            // The keyboard controller's A20 line changes through a remap request.
            self.refresh_kbc_a20();
            if let Err(e) = self.rebuild_maps() {
                tracing::warn!("device remap: {e}");
            }
            self.apply_pam();
            // Windows moved: pages the CPU cached may now decode differently.
            self.generation += 1;
        }
    }

    /// Route 0xC0000-0xFFFFF as the host bridge's PAM registers say.
    fn apply_pam(&mut self) {
        let Some(pam) = crate::pci::pam(&mut self.devices) else {
            return;
        };
        for r in nestor_pci_host::pam_regions(&pam) {
            let mode = crate::shadow::ShadowMode {
                read_ram: r.read_ram,
                write_ram: r.write_ram,
            };
            self.wires.mem.shadow.set(r.base, r.len, mode);
        }
    }

    fn hpet_legacy(&mut self) -> bool {
        let Some(i) = self.hpet_index else {
            return false;
        };
        self.devices
            .get_mut(usize::from(i))
            .and_then(|d| d.as_any_mut())
            .and_then(|a| a.downcast_mut::<nestor_hpet::Hpet>())
            .is_some_and(|h| h.legacy_replacement())
    }

    /// Device states were replaced (snapshot resume): rebuild the port and MMIO maps from the
    /// restored BARs and windows, and recompute interrupt routing.
    pub fn after_restore(&mut self) {
        self.wires.remap = true;
        self.irq_dirty = true;
        self.generation += 1;
        self.settle();
    }

    pub fn reset_devices(&mut self) {
        for d in &mut self.devices {
            d.reset();
        }
        self.irq.reset();
        self.state.sysctl_a = 0x02;
        self.refresh_kbc_a20();
        self.state.pci = Default::default();
        self.wires.remap = true;
        // Devices lower their lines from on_timer after a reset (they have no context here).
        self.irq_dirty = true;
        self.settle();
    }

    fn refresh_kbc_a20(&mut self) {
        self.state.kbc_a20 = self
            .device_mut::<nestor_i8042::I8042>()
            .is_some_and(|k| k.a20());
        self.update_a20();
    }

    fn update_a20(&mut self) {
        let on = self.state.sysctl_a & 2 != 0 || self.state.kbc_a20;
        if self.state.a20 != on {
            self.state.a20 = on;
            self.generation += 1;
        }
    }

    /// One access to one port by the decoding device (or the board itself).
    fn port_access(&mut self, port: u16, size: u8, write: Option<u32>) -> u32 {
        let now = self.now_ns();
        let slot = self.port_map[usize::from(port)];
        let dev: &mut dyn Device = match slot {
            BOARD_SLOT => return self.board_port(port, write),
            PIC_SLOT => &mut self.irq.pic,
            _ => match self.devices.get_mut(usize::from(slot)) {
                Some(d) => d.as_mut(),
                None => return u32::MAX,
            },
        };
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now,
            source: slot,
        };
        let v = match write {
            Some(v) => {
                dev.io_write(port, size, v, &mut ctx);
                0
            }
            None => dev.io_read(port, size, &mut ctx),
        };
        self.settle();
        v
    }

    /// The board's own ports: system control port A and the firmware trap.
    fn board_port(&mut self, port: u16, write: Option<u32>) -> u32 {
        match (port, write) {
            (PORT_FIRMWARE_TRAP, Some(v)) => self.trap = Some(v as u8),
            (PORT_FPU_CLEAR, Some(_)) => {
                self.fpu_clear = true;
                self.set_fpu_error(false);
            }
            (PORT_SYSCTL_A, Some(v)) => self.write_sysctl_a(v as u8),
            (PORT_SYSCTL_A, None) => {
                return u32::from(self.state.sysctl_a & !1 | u8::from(self.state.a20) << 1)
            }
            _ => return u32::MAX,
        }
        0
    }

    fn write_sysctl_a(&mut self, v: u8) {
        self.state.sysctl_a = v & !1;
        self.update_a20();
        if v & 1 != 0 {
            self.wires.exit.get_or_insert(ExitRequest::Reset);
        }
    }

    /// A wide access goes to one device when that device decodes every byte of it; otherwise
    /// the chipset splits it into byte cycles. PCI configuration cycles go to the host bridge
    /// logic first.
    fn io(&mut self, port: u16, size: u8, write: Option<u32>) -> u32 {
        if crate::pci::claims(port, size) {
            let now = self.now_ns();
            let mut ctx = Ctx {
                wires: &mut self.wires,
                now,
                source: BOARD_SLOT,
            };
            let v = self
                .state
                .pci
                .io(&mut self.devices, port, size, write, &mut ctx);
            // A config write may have moved a BAR or a PIRQ route.
            self.irq_dirty |= write.is_some();
            self.settle();
            return v;
        }
        let last = port.wrapping_add(u16::from(size) - 1);
        let owner = self.port_map[usize::from(port)];
        let single = size == 1
            || (owner == self.port_map[usize::from(last)] && owner != NO_DEVICE && last > port);
        if single {
            return self.port_access(port, size, write) & nestor_cpu::flags::size_mask(size) as u32;
        }
        match write {
            Some(v) => {
                write_bytewise(port, size, v, |p, b| {
                    self.port_access(p, 1, Some(u32::from(b)));
                });
                0
            }
            None => read_bytewise(port, size, |p| self.port_access(p, 1, None) as u8),
        }
    }

    /// The owner of the window holding `addr`.
    fn mmio_owner(&self, addr: u64) -> Option<u16> {
        let i = self
            .mmio_map
            .partition_point(|(r, _)| r.base <= addr)
            .checked_sub(1)?;
        let (r, owner) = self.mmio_map[i];
        r.contains(addr).then_some(owner)
    }

    fn mmio(&mut self, paddr: u64, read: Option<&mut [u8]>, write: Option<&[u8]>) {
        let now = self.now_ns();
        let Some(owner) = self.mmio_owner(paddr) else {
            // Shadow RAM that PAM opened for writes only; elsewhere nothing decodes it: the
            // bus floats high, writes vanish.
            let mem = &mut self.wires.mem;
            if let Some(buf) = read {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = mem.shadow_read(paddr + i as u64).unwrap_or(0xff);
                }
            }
            if let Some(data) = write {
                let to_ram = mem.shadow.mode(paddr).is_some_and(|m| m.write_ram);
                for (i, &v) in data.iter().enumerate() {
                    mem.shadow_write(paddr + i as u64, v);
                }
                if to_ram {
                    // Code may run from shadow RAM later: drop what was decoded there.
                    self.wires.written.push((paddr, data.len() as u64));
                }
            }
            return;
        };
        let dev: &mut dyn Device = match owner {
            IOAPIC_SLOT => &mut self.irq.ioapic,
            LAPIC_SLOT => &mut self.irq.lapic,
            i => match self.devices.get_mut(usize::from(i)) {
                Some(d) => d.as_mut(),
                None => return,
            },
        };
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now,
            source: owner,
        };
        if let Some(buf) = read {
            dev.mmio_read(paddr, buf, &mut ctx);
        }
        if let Some(data) = write {
            dev.mmio_write(paddr, data, &mut ctx);
        }
        // Interrupt controllers and the HPET change routing or deliver on register access.
        self.irq_dirty |=
            matches!(owner, IOAPIC_SLOT | LAPIC_SLOT) || Some(owner) == self.hpet_index;
        self.settle();
    }
}

impl Bus for Board {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        if self.mmio_owner(page_addr).is_some() {
            return PageTarget::Mmio;
        }
        self.wires.mem.page(page_addr)
    }
    fn map_generation(&self) -> u64 {
        self.generation
    }
    fn a20_mask(&self) -> u64 {
        if self.state.a20 {
            u64::MAX
        } else {
            !(1u64 << 20)
        }
    }
    fn mmio_read(&mut self, paddr: u64, data: &mut [u8]) {
        self.mmio(paddr, Some(data), None);
        self.note_deadline();
    }
    fn mmio_write(&mut self, paddr: u64, data: &[u8]) {
        self.mmio(paddr, None, Some(data));
        self.note_deadline();
    }
    fn sync_retired(&mut self, retired: u64) {
        self.retired = retired;
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        let v = self.io(port, size, None);
        self.note_deadline();
        v
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.io(port, size, Some(value));
        self.note_deadline();
    }
    fn interrupt_pending(&mut self) -> bool {
        self.irq.pending()
    }
    fn interrupt_ack(&mut self) -> u8 {
        let v = self.irq.acknowledge();
        self.irq.pump();
        v
    }
    fn stop_requested(&self) -> bool {
        self.wires.exit.is_some()
            || self.trap.is_some()
            || self.fpu_clear
            || !self.wires.written.is_empty()
            || self.deadline_early
    }
    fn tsc_ticks(&mut self, retired: u64) -> Option<u64> {
        Some(self.tsc_ticks_at(retired))
    }
    fn tsc_written(&mut self, offset: u64) {
        self.set_tsc_offset(offset);
        // A TSC deadline armed before now falls at another virtual time.
        self.note_deadline();
    }
    fn apic_tpr(&mut self) -> Option<u8> {
        Some(self.irq.lapic.tpr())
    }
    fn set_apic_tpr(&mut self, tpr: u8) {
        self.write_tpr(tpr);
    }
    fn apic_base_written(&mut self, retired: u64, value: u64) {
        self.write_apic_base(retired, value);
    }
    fn tsc_deadline(&mut self, retired: u64) -> Option<u64> {
        Some(self.read_tsc_deadline(retired))
    }
    fn set_tsc_deadline(&mut self, retired: u64, deadline: u64, offset: u64) -> bool {
        self.write_tsc_deadline(retired, deadline, offset);
        self.note_deadline();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockMode;
    use nestor_device::{PortRange, Snapshot, StateError};

    /// A device with one port and one MMIO window, remembering the last write.
    struct Probe {
        port: u16,
        window: Option<MmioRange>,
        last: Vec<u8>,
    }

    impl Snapshot for Probe {
        fn save(&self) -> Result<Vec<u8>, StateError> {
            Ok(self.last.clone())
        }
        fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
            self.last = bytes.to_vec();
            Ok(())
        }
    }

    impl Device for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn ports(&self) -> Vec<PortRange> {
            vec![PortRange::new(self.port, 1)]
        }
        fn io_read(&mut self, port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
            u32::from(port as u8)
        }
        fn io_write(&mut self, _port: u16, _size: u8, value: u32, ctx: &mut dyn DeviceContext) {
            self.last = vec![value as u8];
            // Writing 0x77 moves the window, as a BAR write would.
            if value == 0x77 {
                self.window = Some(MmioRange::new(0xd000_0000, 0x1000));
                ctx.remap();
            }
        }
        fn reset(&mut self) {}
        fn next_deadline_ns(&self) -> Option<u64> {
            None
        }
        fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
        fn mmio_ranges(&self) -> Vec<MmioRange> {
            self.window.into_iter().collect()
        }
        fn mmio_read(&mut self, addr: u64, data: &mut [u8], _ctx: &mut dyn DeviceContext) {
            data.fill(addr as u8);
        }
        fn mmio_write(&mut self, _addr: u64, data: &[u8], _ctx: &mut dyn DeviceContext) {
            self.last = data.to_vec();
        }
    }

    fn board() -> Board {
        let mem = GuestMemory::new(16, vec![0; 64 << 10]).expect("memory");
        Board::new(mem, Clock::new(ClockMode::Deterministic))
    }

    fn probe(port: u16, window: Option<MmioRange>) -> Box<Probe> {
        Box::new(Probe {
            port,
            window,
            last: Vec::new(),
        })
    }

    #[test]
    fn clashing_ports_and_windows_are_refused() {
        let mut b = board();
        b.attach(probe(0x300, None)).expect("first");
        assert!(b.attach(probe(0x300, None)).is_err());
        assert!(b.attach(probe(0x20, None)).is_err(), "the PIC's port");
        assert!(b.attach(probe(0x92, None)).is_err(), "the board's port");
        b.attach(probe(0x301, Some(MmioRange::new(0xfe00_0000, 0x1000))))
            .expect("window");
        assert!(b
            .attach(probe(0x302, Some(MmioRange::new(0xfe00_0800, 0x10))))
            .is_err());
        assert_eq!(b.devices().len(), 2);
    }

    #[test]
    fn mmio_reaches_the_window_owner_and_follows_remaps() {
        let mut b = board();
        b.attach(probe(0x300, Some(MmioRange::new(0xfe00_0000, 0x1000))))
            .expect("attach");
        let mut buf = [0u8; 4];
        b.mmio_read(0xfe00_0010, &mut buf);
        assert_eq!(buf, [0x10; 4]);
        b.mmio_read(0xfe10_0000, &mut buf);
        assert_eq!(buf, [0xff; 4], "open bus");
        assert_eq!(b.page(0xfe00_0000), PageTarget::Mmio);
        let generation = b.map_generation();
        b.io_out(0x300, 1, 0x77);
        assert_ne!(
            b.map_generation(),
            generation,
            "a remap invalidates cached pages"
        );
        b.mmio_read(0xd000_0004, &mut buf);
        assert_eq!(buf, [0x04; 4]);
        b.mmio_read(0xfe00_0010, &mut buf);
        assert_eq!(buf, [0xff; 4], "the old window is gone");
    }

    #[test]
    fn wide_port_access_splits_across_devices() {
        let mut b = board();
        b.attach(probe(0x310, None)).expect("attach");
        b.attach(probe(0x311, None)).expect("attach");
        assert_eq!(b.io_in(0x310, 2), 0x1110);
        assert_eq!(b.io_in(0x312, 2), 0xffff, "nobody decodes 0x312");
    }

    #[test]
    fn port_92_gates_a20() {
        let mut b = board();
        assert_eq!(b.a20_mask(), u64::MAX);
        b.io_out(0x92, 1, 0);
        assert_eq!(b.a20_mask(), !(1 << 20));
        assert_eq!(b.io_in(0x92, 1) & 2, 0);
        b.io_out(0x92, 1, 3);
        assert_eq!(b.a20_mask(), u64::MAX);
        assert_eq!(
            b.take_exit(),
            Some(ExitRequest::Reset),
            "bit 0 is a fast reset"
        );
    }
}
