//! The PC board as the CPU sees it: it implements [`Bus`] over guest memory, the port and MMIO
//! maps of the device plugins, the interrupt controller and the system control port (A20,
//! fast reset).

use crate::clock::Clock;
use crate::memory::GuestMemory;
use nestor_cpu::{Bus, PageTarget};
use nestor_device::{
    read_bytewise, write_bytewise, Device, DeviceContext, DmaError, ExitRequest, MmioRange,
};
use nestor_pic::Pic;
use serde::{Deserialize, Serialize};

/// System control port A (0x92): bit 1 gates A20, bit 0 pulses a fast reset.
const PORT_SYSCTL_A: u16 = 0x92;
/// No device decodes the port: reads float high.
const NO_DEVICE: u16 = u16::MAX;
/// The port belongs to the interrupt controller (kept apart: the CPU acknowledges through it).
const PIC_SLOT: u16 = u16::MAX - 1;
/// The port belongs to the board itself (system control port A).
const BOARD_SLOT: u16 = u16::MAX - 2;

/// Guest-visible state of the board itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardState {
    pub a20: bool,
    pub sysctl_a: u8,
}

/// What a device may touch while it runs: everything on the board but the devices.
pub struct Wires {
    pub mem: GuestMemory,
    exit: Option<ExitRequest>,
    irq_changes: Vec<(u8, bool)>,
    remap: bool,
}

struct Ctx<'a> {
    wires: &'a mut Wires,
    now: u64,
}

impl DeviceContext for Ctx<'_> {
    fn set_irq(&mut self, line: u8, level: bool) {
        self.wires.irq_changes.push((line, level));
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
    pub pic: Pic,
    devices: Vec<Box<dyn Device>>,
    /// Per port: index into `devices`, PIC_SLOT or NO_DEVICE.
    port_map: Box<[u16]>,
    /// Device memory windows, sorted by base: (range, index into `devices`).
    mmio_map: Vec<(MmioRange, u16)>,
    pub state: BoardState,
    generation: u64,
    retired: u64,
}

impl Board {
    pub fn new(mem: GuestMemory, clock: Clock, pic: Pic) -> Self {
        let mut board = Self {
            wires: Wires {
                mem,
                exit: None,
                irq_changes: Vec::new(),
                remap: false,
            },
            clock,
            pic,
            devices: Vec::new(),
            port_map: vec![NO_DEVICE; 0x1_0000].into_boxed_slice(),
            mmio_map: Vec::new(),
            state: BoardState {
                a20: true,
                sysctl_a: 0x02,
            },
            generation: 0,
            retired: 0,
        };
        // The PIC's ports never clash: the map is empty.
        let _ = board.rebuild_maps();
        board
    }

    /// Plug a device in; its ports and windows must not overlap another device's.
    pub fn attach(&mut self, dev: Box<dyn Device>) -> Result<(), String> {
        self.devices.push(dev);
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
        port_map[usize::from(PORT_SYSCTL_A)] = BOARD_SLOT;
        let owners = std::iter::once((PIC_SLOT, self.pic.ports())).chain(
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
        port_map[usize::from(PORT_SYSCTL_A)] = NO_DEVICE;
        let mut mmio: Vec<(MmioRange, u16)> = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            for r in d.mmio_ranges().into_iter().filter(|r| r.len > 0) {
                let overlaps = mmio.iter().any(|(o, _)| {
                    r.base < o.base.saturating_add(o.len) && o.base < r.base.saturating_add(r.len)
                });
                if overlaps {
                    first_clash.get_or_insert(format!(
                        "{}: window {:#x}+{:#x} overlaps another",
                        d.name(),
                        r.base,
                        r.len
                    ));
                } else {
                    mmio.push((r, i as u16));
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

    pub fn take_exit(&mut self) -> Option<ExitRequest> {
        self.wires.exit.take()
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
        self.devices
            .iter()
            .filter_map(|d| d.next_deadline_ns())
            .min()
    }

    /// Run the timers of every device whose deadline has passed.
    pub fn fire_timers(&mut self) {
        let now = self.now_ns();
        for dev in &mut self.devices {
            if dev.next_deadline_ns().is_some_and(|d| d <= now) {
                dev.on_timer(&mut Ctx {
                    wires: &mut self.wires,
                    now,
                });
            }
        }
        self.settle();
    }

    /// Apply what devices did to the wires: IRQ levels, remap requests.
    fn settle(&mut self) {
        for (line, level) in self.wires.irq_changes.drain(..) {
            self.pic.set_irq(line, level);
        }
        if std::mem::take(&mut self.wires.remap) {
            if let Err(e) = self.rebuild_maps() {
                tracing::warn!("device remap: {e}");
            }
            // Windows moved: pages the CPU cached may now decode differently.
            self.generation += 1;
        }
    }

    pub fn reset_devices(&mut self) {
        for d in &mut self.devices {
            d.reset();
        }
        self.pic.reset();
        self.set_a20(true);
        self.state.sysctl_a = 0x02;
        self.wires.remap = true;
        self.settle();
    }

    pub fn set_a20(&mut self, on: bool) {
        if self.state.a20 != on {
            self.state.a20 = on;
            self.generation += 1;
        }
    }

    /// One access to one port by the decoding device (or the board itself).
    fn port_access(&mut self, port: u16, size: u8, write: Option<u32>) -> u32 {
        if port == PORT_SYSCTL_A {
            return match write {
                Some(v) => {
                    self.write_sysctl_a(v as u8);
                    0
                }
                None => u32::from(self.state.sysctl_a & !1 | u8::from(self.state.a20) << 1),
            };
        }
        let now = self.now_ns();
        let slot = self.port_map[usize::from(port)];
        let dev: &mut dyn Device = match slot {
            PIC_SLOT => &mut self.pic,
            _ => match self.devices.get_mut(usize::from(slot)) {
                Some(d) => d.as_mut(),
                None => return u32::MAX,
            },
        };
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now,
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

    fn write_sysctl_a(&mut self, v: u8) {
        self.state.sysctl_a = v & !1;
        self.set_a20(v & 2 != 0);
        if v & 1 != 0 {
            self.wires.exit.get_or_insert(ExitRequest::Reset);
        }
    }

    /// A wide access goes to one device when that device decodes every byte of it; otherwise
    /// the chipset splits it into byte cycles.
    fn io(&mut self, port: u16, size: u8, write: Option<u32>) -> u32 {
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

    /// The device whose window holds `addr`.
    fn mmio_owner(&self, addr: u64) -> Option<usize> {
        let i = self
            .mmio_map
            .partition_point(|(r, _)| r.base <= addr)
            .checked_sub(1)?;
        let (r, dev) = self.mmio_map[i];
        r.contains(addr).then_some(usize::from(dev))
    }

    fn mmio(&mut self, paddr: u64, read: Option<&mut [u8]>, write: Option<&[u8]>) {
        let now = self.now_ns();
        let Some(i) = self.mmio_owner(paddr) else {
            // Nothing decodes it: the bus floats high, writes vanish.
            if let Some(buf) = read {
                buf.fill(0xff);
            }
            return;
        };
        let mut ctx = Ctx {
            wires: &mut self.wires,
            now,
        };
        let dev = &mut self.devices[i];
        if let Some(buf) = read {
            dev.mmio_read(paddr, buf, &mut ctx);
        }
        if let Some(data) = write {
            dev.mmio_write(paddr, data, &mut ctx);
        }
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
    }
    fn mmio_write(&mut self, paddr: u64, data: &[u8]) {
        self.mmio(paddr, None, Some(data));
    }
    fn sync_retired(&mut self, retired: u64) {
        self.retired = retired;
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.io(port, size, None)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.io(port, size, Some(value));
    }
    fn interrupt_pending(&mut self) -> bool {
        self.pic.has_interrupt()
    }
    fn interrupt_ack(&mut self) -> u8 {
        self.pic.acknowledge()
    }
    fn stop_requested(&self) -> bool {
        self.wires.exit.is_some()
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
        Board::new(mem, Clock::new(ClockMode::Deterministic), Pic::new())
    }

    fn probe(port: u16, window: Option<MmioRange>) -> Box<Probe> {
        Box::new(Probe { port, window, last: Vec::new() })
    }

    #[test]
    fn clashing_ports_and_windows_are_refused() {
        let mut b = board();
        b.attach(probe(0x300, None)).expect("first");
        assert!(b.attach(probe(0x300, None)).is_err());
        assert!(b.attach(probe(0x20, None)).is_err(), "the PIC's port");
        assert!(b.attach(probe(0x92, None)).is_err(), "the board's port");
        b.attach(probe(0x301, Some(MmioRange::new(0xfec0_0000, 0x1000)))).expect("window");
        assert!(b.attach(probe(0x302, Some(MmioRange::new(0xfec0_0800, 0x10)))).is_err());
        assert_eq!(b.devices().len(), 2);
    }

    #[test]
    fn mmio_reaches_the_window_owner_and_follows_remaps() {
        let mut b = board();
        b.attach(probe(0x300, Some(MmioRange::new(0xfec0_0000, 0x1000)))).expect("attach");
        let mut buf = [0u8; 4];
        b.mmio_read(0xfec0_0010, &mut buf);
        assert_eq!(buf, [0x10; 4]);
        b.mmio_read(0xfed0_0000, &mut buf);
        assert_eq!(buf, [0xff; 4], "open bus");
        assert_eq!(b.page(0xfec0_0000), PageTarget::Mmio);
        let generation = b.map_generation();
        b.io_out(0x300, 1, 0x77);
        assert_ne!(b.map_generation(), generation, "a remap invalidates cached pages");
        b.mmio_read(0xd000_0004, &mut buf);
        assert_eq!(buf, [0x04; 4]);
        b.mmio_read(0xfec0_0010, &mut buf);
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
        assert_eq!(b.take_exit(), Some(ExitRequest::Reset), "bit 0 is a fast reset");
    }
}
