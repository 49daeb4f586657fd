//! A small PC for end-to-end tests of the BIOS without the machine crate: Nestor's CPU
//! interpreter, 4 MiB of RAM with the ROM at the top of the first megabyte and of 4 GiB, a
//! CMOS and COM1 (captured) modelled here, and the real device models for the rest: 8259 PICs,
//! 8254 PIT, 8237 DMA, 82077 floppy, i8042 keyboard controller, PIIX3 IDE (disk on the primary
//! master, CD-ROM on the secondary master) and VGA. The CPU runs in slices up to the next
//! device deadline; while it is halted, time skips to that deadline.

#![allow(dead_code)]

use nestor_bios::{rom, services::TRAP_PORT, Bios, BiosConfig, Platform, TrapResult};
use nestor_cpu::{Bus, Cpu, CpuState, PageTarget, RunExit};
use nestor_device::{Device, DeviceContext, DmaError, ExitRequest};
use nestor_disk::MemDisk;
use nestor_dma::Dma;
use nestor_fdc::Fdc;
use nestor_i8042::I8042;
use nestor_ide::{Channel, Ide, Position};
use nestor_pic::Pic;
use nestor_pit::Pit;
use nestor_vga::{Vga, VgaConfig};
use std::ptr::NonNull;

pub const RAM: usize = 4 << 20;
/// The legacy VGA window.
const VGA_WINDOW: std::ops::Range<u64> = 0xA_0000..0xC_0000;

/// What a device sees of the board: RAM for DMA and the IRQ lines (applied to the PICs after
/// the access).
struct Ctx<'a> {
    ram: &'a mut [u8],
    irqs: &'a mut Vec<(u8, bool)>,
    now: u64,
}

impl DeviceContext for Ctx<'_> {
    fn set_irq(&mut self, line: u8, level: bool) {
        self.irqs.push((line, level));
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
    fn dma_read(&mut self, paddr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let at = paddr as usize;
        let src = self.ram.get(at..at + buf.len()).ok_or(DmaError {
            paddr,
            len: buf.len(),
        })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn dma_write(&mut self, paddr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let at = paddr as usize;
        let dst = self.ram.get_mut(at..at + buf.len()).ok_or(DmaError {
            paddr,
            len: buf.len(),
        })?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn request_exit(&mut self, _why: ExitRequest) {}
    fn remap(&mut self) {}
}

pub struct Pc {
    pub ram: Vec<u8>,
    pub rom: Vec<u8>,
    pub cmos: [u8; 128],
    cmos_index: u8,
    pub serial: Vec<u8>,
    com1_scratch: u8,
    com1_lcr: u8,
    pub pic: Pic,
    pub pit: Pit,
    pub dma: Dma,
    pub fdc: Fdc,
    pub kbc: I8042,
    pub ide: Ide,
    pub vga: Vga,
    irqs: Vec<(u8, bool)>,
    trap: Option<u8>,
    pub retired: u64,
    /// Virtual time skipped while the CPU was halted.
    idle_ns: u64,
    /// Typed on the keyboard when INT 19h runs (after POST has set the keyboard up).
    pub type_at_boot: Option<String>,
}

impl Pc {
    /// A PC with a hard disk image on the primary master.
    pub fn new(disk: Option<Vec<u8>>) -> Self {
        Self::with_drives(disk, None)
    }

    /// A PC with a hard disk image on the primary master and an ISO on the secondary master.
    pub fn with_drives(disk: Option<Vec<u8>>, iso: Option<Vec<u8>>) -> Self {
        let mut ide = Ide::new();
        if let Some(d) = disk {
            ide.attach_disk(
                Channel::Primary,
                Position::Master,
                Box::new(MemDisk::new(d)),
            )
            .expect("disk image");
        }
        if let Some(iso) = iso {
            let disc = MemDisk::new(iso).with_sector_size(2048).read_only();
            ide.attach_cdrom(Channel::Secondary, Position::Master, Some(Box::new(disc)));
        }
        let mut cmos = [0u8; 128];
        // 3 MiB of extended memory.
        cmos[0x31] = 0x0C;
        Self {
            ram: vec![0; RAM],
            rom: rom().to_vec(),
            cmos,
            cmos_index: 0,
            serial: Vec::new(),
            com1_scratch: 0,
            com1_lcr: 0,
            pic: Pic::new(),
            pit: Pit::new(),
            dma: Dma::new(),
            fdc: Fdc::new(),
            kbc: I8042::new(),
            ide,
            vga: Vga::new(VgaConfig::default()),
            irqs: Vec::new(),
            trap: None,
            retired: 0,
            idle_ns: 0,
            type_at_boot: None,
        }
    }

    /// Puts a floppy image in drive A: and says so in the CMOS.
    pub fn insert_floppy(&mut self, image: Vec<u8>, cmos_type: u8) {
        self.fdc
            .insert_media(0, Box::new(MemDisk::new(image)))
            .expect("floppy image");
        self.cmos[0x10] = cmos_type << 4;
    }

    fn rom_offset(&self, paddr: u64) -> Option<usize> {
        let len = self.rom.len() as u64;
        if (0x10_0000 - len..0x10_0000).contains(&paddr) {
            return Some((paddr - (0x10_0000 - len)) as usize);
        }
        ((1u64 << 32) - len..1 << 32)
            .contains(&paddr)
            .then(|| (paddr - ((1u64 << 32) - len)) as usize)
    }

    /// Runs `f` on a device with a context, then applies its IRQ changes and DMA.
    fn with_device<R>(&mut self, f: impl FnOnce(&mut Self, &mut Ctx) -> R) -> R {
        let mut ram = std::mem::take(&mut self.ram);
        let mut irqs = std::mem::take(&mut self.irqs);
        let now = self.now();
        let r = {
            let mut ctx = Ctx {
                ram: &mut ram,
                irqs: &mut irqs,
                now,
            };
            let r = f(self, &mut ctx);
            while self.fdc.dma_pending() && self.fdc.dma_transfer(&mut self.dma, &mut ctx) {}
            r
        };
        self.ram = ram;
        for (line, level) in irqs.drain(..) {
            self.pic.set_irq(line, level);
        }
        self.irqs = irqs;
        r
    }

    fn port_in(&mut self, port: u16, size: u8) -> u32 {
        match port {
            0x71 => u32::from(self.cmos[usize::from(self.cmos_index & 0x7F)]),
            0x3FD => 0x60,
            0x3FF => u32::from(self.com1_scratch),
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => {
                self.with_device(|pc, ctx| pc.pic.io_read(port, size, ctx))
            }
            0x40..=0x43 | 0x61 => self.with_device(|pc, ctx| pc.pit.io_read(port, size, ctx)),
            0x00..=0x0F | 0x81..=0x8F | 0xC0..=0xDF => {
                self.with_device(|pc, ctx| pc.dma.io_read(port, size, ctx))
            }
            0x3F0..=0x3F5 | 0x3F7 => self.with_device(|pc, ctx| pc.fdc.io_read(port, size, ctx)),
            0x60 | 0x64 => self.with_device(|pc, ctx| pc.kbc.io_read(port, size, ctx)),
            0x1F0..=0x1F7 | 0x3F6 | 0x170..=0x177 | 0x376 => {
                self.with_device(|pc, ctx| pc.ide.io_read(port, size, ctx))
            }
            0x3B0..=0x3DF | 0x1CE | 0x1CF => {
                self.with_device(|pc, ctx| pc.vga.io_read(port, size, ctx))
            }
            _ => match size {
                1 => 0xFF,
                2 => 0xFFFF,
                _ => 0xFFFF_FFFF,
            },
        }
    }

    fn port_out(&mut self, port: u16, size: u8, v: u32) {
        match port {
            0x70 => self.cmos_index = v as u8,
            0x71 => self.cmos[usize::from(self.cmos_index & 0x7F)] = v as u8,
            0x3F8 if self.com1_lcr & 0x80 == 0 => self.serial.push(v as u8),
            0x3FB => self.com1_lcr = v as u8,
            0x3FF => self.com1_scratch = v as u8,
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => {
                self.with_device(|pc, ctx| pc.pic.io_write(port, size, v, ctx))
            }
            0x40..=0x43 | 0x61 => self.with_device(|pc, ctx| pc.pit.io_write(port, size, v, ctx)),
            0x00..=0x0F | 0x81..=0x8F | 0xC0..=0xDF => {
                self.with_device(|pc, ctx| pc.dma.io_write(port, size, v, ctx))
            }
            0x3F0..=0x3F5 | 0x3F7 => {
                self.with_device(|pc, ctx| pc.fdc.io_write(port, size, v, ctx))
            }
            0x1F0..=0x1F7 | 0x3F6 | 0x170..=0x177 | 0x376 => {
                self.with_device(|pc, ctx| pc.ide.io_write(port, size, v, ctx))
            }
            0x3B0..=0x3DF | 0x1CE | 0x1CF => {
                self.with_device(|pc, ctx| pc.vga.io_write(port, size, v, ctx))
            }
            p if p == TRAP_PORT => self.trap = Some(v as u8),
            _ => {}
        }
    }

    /// Virtual time: 4 ns per instruction plus the time skipped while halted.
    pub fn now(&self) -> u64 {
        self.retired * 4 + self.idle_ns
    }

    /// The earliest device deadline.
    fn next_deadline(&self) -> Option<u64> {
        [self.pit.next_deadline_ns(), self.kbc.next_deadline_ns()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers of every device whose deadline has come.
    fn fire_timers(&mut self) {
        let now = self.now();
        if self.pit.next_deadline_ns().is_some_and(|d| d <= now) {
            self.with_device(|pc, ctx| pc.pit.on_timer(ctx));
        }
        if self.kbc.next_deadline_ns().is_some_and(|d| d <= now) {
            self.with_device(|pc, ctx| pc.kbc.on_timer(ctx));
        }
    }

    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&self.serial).into_owned()
    }
}

impl Bus for Pc {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        if (page_addr as usize) < RAM && !(0xA_0000..0x10_0000).contains(&page_addr) {
            let ptr = NonNull::new(self.ram[page_addr as usize..].as_mut_ptr());
            return ptr.map_or(PageTarget::Mmio, |ptr| PageTarget::Host {
                ptr,
                writable: true,
            });
        }
        if let Some(off) = self.rom_offset(page_addr) {
            if let Some(ptr) = NonNull::new(self.rom[off..].as_mut_ptr()) {
                return PageTarget::Host {
                    ptr,
                    writable: false,
                };
            }
        }
        PageTarget::Mmio
    }
    fn map_generation(&self) -> u64 {
        0
    }
    fn a20_mask(&self) -> u64 {
        u64::MAX
    }
    fn mmio_read(&mut self, paddr: u64, data: &mut [u8]) {
        if VGA_WINDOW.contains(&paddr) {
            self.with_device(|pc, ctx| pc.vga.mmio_read(paddr, data, ctx));
        } else {
            data.fill(0xFF);
        }
    }
    fn mmio_write(&mut self, paddr: u64, data: &[u8]) {
        if VGA_WINDOW.contains(&paddr) {
            self.with_device(|pc, ctx| pc.vga.mmio_write(paddr, data, ctx));
        }
    }
    fn sync_retired(&mut self, retired: u64) {
        self.retired = retired;
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.port_in(port, size)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.port_out(port, size, value);
    }
    fn interrupt_pending(&mut self) -> bool {
        self.pic.has_interrupt()
    }
    fn interrupt_ack(&mut self) -> u8 {
        self.pic.acknowledge()
    }
    fn stop_requested(&self) -> bool {
        self.trap.is_some()
    }
}

impl Platform for Pc {
    fn read_mem(&mut self, paddr: u64, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = paddr + i as u64;
            if VGA_WINDOW.contains(&a) {
                let mut one = [0u8];
                self.mmio_read(a, &mut one);
                *b = one[0];
                continue;
            }
            *b = match (self.ram.get(a as usize), self.rom_offset(a)) {
                (_, Some(o)) => self.rom[o],
                (Some(v), None) => *v,
                (None, None) => return false,
            };
        }
        true
    }
    fn write_mem(&mut self, paddr: u64, data: &[u8]) -> bool {
        if VGA_WINDOW.contains(&paddr) {
            for (i, b) in data.iter().enumerate() {
                self.mmio_write(paddr + i as u64, &[*b]);
            }
            return true;
        }
        let at = paddr as usize;
        let rom = self.rom_offset(paddr).is_some();
        match self.ram.get_mut(at..at + data.len()) {
            Some(dst) if !rom => {
                dst.copy_from_slice(data);
                true
            }
            _ => false,
        }
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.port_in(port, size)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.port_out(port, size, value);
    }
    fn now_ns(&self) -> u64 {
        self.now()
    }
}

/// Why [`run`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    Halted,
    BootFailed,
    Budget,
    Shutdown,
}

/// Runs from reset until the CPU halts for good, boot fails, or `budget` instructions retire.
pub fn run(pc: &mut Pc, bios: &mut Bios, budget: u64) -> (Stop, CpuState) {
    let mut cpu = Cpu::new();
    let mut used = 0u64;
    loop {
        pc.fire_timers();
        if used >= budget {
            return (Stop::Budget, cpu.state());
        }
        let slice = pc
            .next_deadline()
            .map_or(u64::MAX, |d| d.saturating_sub(pc.now()).div_ceil(4).max(1));
        let before = cpu.retired;
        let exit = cpu.run(pc, slice.min(budget - used));
        used += cpu.retired - before;
        pc.retired = cpu.retired;
        match exit {
            RunExit::Stopped => {
                let service = pc.trap.take().unwrap_or(0);
                if service == nestor_bios::services::svc::BOOT {
                    if let Some(text) = pc.type_at_boot.take() {
                        pc.kbc.type_text(&text).expect("typable text");
                    }
                }
                let mut s = cpu.state();
                let r = bios.handle_trap(service, &mut s, pc);
                cpu.set_state(s);
                // The BIOS wrote memory behind the CPU's back (boot sectors).
                cpu.invalidate_code(0, RAM as u64);
                if r == TrapResult::BootFailed {
                    return (Stop::BootFailed, cpu.state());
                }
            }
            RunExit::Halted => {
                // Time passes while halted: skip to the next device event, if interrupts can
                // wake the CPU at all.
                let can_wake = cpu.state().rflags & (1 << 9) != 0;
                match pc.next_deadline() {
                    Some(deadline) if can_wake => pc.idle_ns += deadline.saturating_sub(pc.now()),
                    _ => return (Stop::Halted, cpu.state()),
                }
            }
            RunExit::Shutdown => return (Stop::Shutdown, cpu.state()),
            RunExit::Budget => {}
        }
    }
}

pub fn bios() -> Bios {
    Bios::new(BiosConfig::default())
}

/// A 1 MiB disk image whose boot sector is `code` (assembled for 0000:7C00).
pub fn disk_with_boot_code(code: &[u8]) -> Vec<u8> {
    assert!(code.len() <= 510, "boot code is {} bytes", code.len());
    let mut img = vec![0u8; 16 * 2 * 63 * 512];
    img[..code.len()].copy_from_slice(code);
    img[510] = 0x55;
    img[511] = 0xAA;
    img
}
