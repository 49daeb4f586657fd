//! The PC board as the CPU sees it: it implements [`Bus`] over guest memory, the port map of
//! the device plugins, the interrupt controller and the system control port (A20, fast reset).

use crate::clock::Clock;
use crate::memory::GuestMemory;
use nestor_cpu::{Bus, PageTarget};
use nestor_device::{read_bytewise, write_bytewise, Device, DeviceContext, DmaError, ExitRequest};
use nestor_pic::Pic;
use serde::{Deserialize, Serialize};

/// System control port A (0x92): bit 1 gates A20, bit 0 pulses a fast reset.
const PORT_SYSCTL_A: u16 = 0x92;
/// No device decodes the port: reads float high.
const NO_DEVICE: u16 = u16::MAX;
/// The port belongs to the interrupt controller (kept apart: the CPU acknowledges through it).
const PIC_SLOT: u16 = u16::MAX - 1;

/// Guest-visible state of the board itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardState {
    pub a20: bool,
    pub sysctl_a: u8,
}

pub struct Board {
    pub mem: GuestMemory,
    pub clock: Clock,
    pub pic: Pic,
    devices: Vec<Box<dyn Device>>,
    /// Per port: index into `devices`, or NO_DEVICE.
    port_map: Box<[u16]>,
    pub state: BoardState,
    generation: u64,
    retired: u64,
    exit: Option<ExitRequest>,
    irq_changes: Vec<(u8, bool)>,
}

/// What a device may touch while it runs: everything but the device list itself.
struct Ctx<'a> {
    mem: &'a mut GuestMemory,
    now: u64,
    exit: &'a mut Option<ExitRequest>,
    irq_changes: &'a mut Vec<(u8, bool)>,
}

impl DeviceContext for Ctx<'_> {
    fn set_irq(&mut self, line: u8, level: bool) {
        self.irq_changes.push((line, level));
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn dma_read(&mut self, paddr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        if self.mem.read(paddr, buf) {
            Ok(())
        } else {
            Err(DmaError {
                paddr,
                len: buf.len(),
            })
        }
    }
    fn dma_write(&mut self, paddr: u64, buf: &[u8]) -> Result<(), DmaError> {
        if self.mem.write(paddr, buf) {
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
        self.exit.get_or_insert(why);
    }
}

impl Board {
    pub fn new(mem: GuestMemory, clock: Clock, pic: Pic) -> Self {
        let mut port_map = vec![NO_DEVICE; 0x1_0000].into_boxed_slice();
        for r in pic.ports() {
            for p in r.first..r.first.saturating_add(r.count) {
                port_map[usize::from(p)] = PIC_SLOT;
            }
        }
        Self {
            mem,
            clock,
            pic,
            devices: Vec::new(),
            port_map,
            state: BoardState {
                a20: true,
                sysctl_a: 0x02,
            },
            generation: 0,
            retired: 0,
            exit: None,
            irq_changes: Vec::new(),
        }
    }

    /// Plug a device in; its ports must not overlap another device's.
    pub fn attach(&mut self, dev: Box<dyn Device>) -> Result<(), String> {
        let index = self.devices.len() as u16;
        for r in dev.ports() {
            for p in r.first..r.first.saturating_add(r.count) {
                let slot = &mut self.port_map[usize::from(p)];
                if *slot != NO_DEVICE || p == PORT_SYSCTL_A {
                    return Err(format!("{}: port {p:#x} is already taken", dev.name()));
                }
                *slot = index;
            }
        }
        self.devices.push(dev);
        Ok(())
    }

    #[must_use]
    pub fn devices(&self) -> &[Box<dyn Device>] {
        &self.devices
    }

    pub fn devices_mut(&mut self) -> &mut [Box<dyn Device>] {
        &mut self.devices
    }

    pub fn take_exit(&mut self) -> Option<ExitRequest> {
        self.exit.take()
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
        for i in 0..self.devices.len() {
            if self.devices[i].next_deadline_ns().is_some_and(|d| d <= now) {
                let mut ctx = Ctx {
                    mem: &mut self.mem,
                    now,
                    exit: &mut self.exit,
                    irq_changes: &mut self.irq_changes,
                };
                self.devices[i].on_timer(&mut ctx);
            }
        }
        self.apply_irqs();
    }

    fn apply_irqs(&mut self) {
        for (line, level) in self.irq_changes.drain(..) {
            self.pic.set_irq(line, level);
        }
    }

    pub fn reset_devices(&mut self) {
        for d in &mut self.devices {
            d.reset();
        }
        self.pic.reset();
        self.set_a20(true);
        self.state.sysctl_a = 0x02;
    }

    pub fn set_a20(&mut self, on: bool) {
        if self.state.a20 != on {
            self.state.a20 = on;
            self.generation += 1;
        }
    }

    fn device_io(&mut self, index: u16, port: u16, size: u8, write: Option<u32>) -> u32 {
        let now = self.now_ns();
        let Some(dev) = self.devices.get_mut(usize::from(index)) else {
            return u32::MAX;
        };
        let mut ctx = Ctx {
            mem: &mut self.mem,
            now,
            exit: &mut self.exit,
            irq_changes: &mut self.irq_changes,
        };
        let v = match write {
            Some(v) => {
                dev.io_write(port, size, v, &mut ctx);
                0
            }
            None => dev.io_read(port, size, &mut ctx),
        };
        self.apply_irqs();
        v
    }

    fn port_read_byte(&mut self, port: u16) -> u8 {
        self.port_access(port, 1, None) as u8
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
        if self.port_map[usize::from(port)] == PIC_SLOT {
            let now = self.now_ns();
            let mut ctx = Ctx {
                mem: &mut self.mem,
                now,
                exit: &mut self.exit,
                irq_changes: &mut self.irq_changes,
            };
            return match write {
                Some(v) => {
                    self.pic.io_write(port, size, v, &mut ctx);
                    0
                }
                None => self.pic.io_read(port, size, &mut ctx),
            };
        }
        match self.port_map[usize::from(port)] {
            NO_DEVICE | PIC_SLOT => u32::MAX,
            index => self.device_io(index, port, size, write),
        }
    }

    fn write_sysctl_a(&mut self, v: u8) {
        self.state.sysctl_a = v & !1;
        self.set_a20(v & 2 != 0);
        if v & 1 != 0 {
            self.exit.get_or_insert(ExitRequest::Reset);
        }
    }

    /// A wide access goes to one device when that device decodes every byte of it; otherwise
    /// the chipset splits it into byte cycles.
    fn io(&mut self, port: u16, size: u8, write: Option<u32>) -> u32 {
        let owner = |b: &Self, p: u16| b.port_map[usize::from(p)];
        let last = port.wrapping_add(u16::from(size) - 1);
        let single = size == 1
            || (owner(self, port) == owner(self, last)
                && owner(self, port) != NO_DEVICE
                && last > port);
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
            None => read_bytewise(port, size, |p| self.port_read_byte(p)),
        }
    }
}

impl Bus for Board {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        self.mem.page(page_addr)
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
    fn mmio_read(&mut self, _paddr: u64, data: &mut [u8]) {
        // Nothing decodes it: the bus floats high.
        data.fill(0xff);
    }
    fn mmio_write(&mut self, _paddr: u64, _data: &[u8]) {}
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
        self.exit.is_some()
    }
}
