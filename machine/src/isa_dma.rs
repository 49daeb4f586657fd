//! The ISA DMA controllers, the floppy controller and the Sound Blaster 16, which talk to each
//! other over DREQ/DACK lines; device crates cannot see each other, so the machine pairs them
//! in one device that runs the floppy's pending DMA and catches the sound card up after every
//! access.

use nestor_device::{
    restore_state, save_state, Device, DeviceContext, MmioRange, PortRange, Snapshot, StateError,
};
use nestor_dma::Dma;
use nestor_fdc::Fdc;
use nestor_sb16::Sb16;

/// Version 2 added the Sound Blaster.
const STATE_VERSION: u32 = 2;

pub struct IsaDma {
    pub dma: Dma,
    pub fdc: Fdc,
    pub sb16: Sb16,
}

impl IsaDma {
    /// The controllers with a Sound Blaster whose sound goes nowhere.
    #[must_use]
    pub fn new() -> Self {
        Self::with_sound(nestor_sound::SoundChannel::detached())
    }

    /// The controllers with a Sound Blaster playing into `channel`.
    #[must_use]
    pub fn with_sound(channel: nestor_sound::SoundChannel) -> Self {
        Self {
            dma: Dma::new(),
            fdc: Fdc::new(),
            sb16: Sb16::new(channel),
        }
    }

    fn run_dma(&mut self, ctx: &mut dyn DeviceContext) {
        // Bounded: each transfer moves at least one unit or reports no progress.
        for _ in 0..64 {
            if !(self.fdc.dma_pending() && self.fdc.dma_transfer(&mut self.dma, ctx)) {
                break;
            }
        }
        self.sb16.service(&mut self.dma, ctx);
    }

    fn fdc_port(&self, port: u16) -> bool {
        self.fdc.ports().iter().any(|r| r.contains(port))
    }

    fn sb16_port(&self, port: u16) -> bool {
        self.sb16.ports().iter().any(|r| r.contains(port))
    }
}

impl Default for IsaDma {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot for IsaDma {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        let parts = (self.dma.save()?, self.fdc.save()?, self.sb16.save()?);
        save_state(STATE_VERSION, &parts)
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let (dma, fdc, sb16): (Vec<u8>, Vec<u8>, Vec<u8>) = restore_state(STATE_VERSION, bytes)?;
        self.dma.restore(&dma)?;
        self.fdc.restore(&fdc)?;
        self.sb16.restore(&sb16)
    }
}

impl Device for IsaDma {
    fn name(&self) -> &str {
        "isa-dma"
    }
    fn ports(&self) -> Vec<PortRange> {
        let mut p = self.dma.ports();
        p.extend(self.fdc.ports());
        p.extend(self.sb16.ports());
        p
    }
    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let v = if self.fdc_port(port) {
            self.fdc.io_read(port, size, ctx)
        } else if self.sb16_port(port) {
            let (sb16, dma) = (&mut self.sb16, &mut self.dma);
            nestor_device::read_bytewise(port, size, |p| sb16.read_port(p, Some(dma), ctx))
        } else {
            self.dma.io_read(port, size, ctx)
        };
        self.run_dma(ctx);
        v
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if self.fdc_port(port) {
            self.fdc.io_write(port, size, value, ctx);
        } else if self.sb16_port(port) {
            let (sb16, dma) = (&mut self.sb16, &mut self.dma);
            nestor_device::write_bytewise(port, size, value, |p, b| {
                sb16.write_port(p, b, Some(dma), ctx);
            });
        } else {
            self.dma.io_write(port, size, value, ctx);
        }
        self.run_dma(ctx);
    }
    fn reset(&mut self) {
        self.dma.reset();
        self.fdc.reset();
        self.sb16.reset();
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        let sb16 = self.sb16.deadline();
        [
            self.dma.next_deadline_ns(),
            self.fdc.next_deadline_ns(),
            sb16,
        ]
        .into_iter()
        .flatten()
        .min()
    }
    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        let now = ctx.now_ns();
        if self.dma.next_deadline_ns().is_some_and(|d| d <= now) {
            self.dma.on_timer(ctx);
        }
        if self.fdc.next_deadline_ns().is_some_and(|d| d <= now) {
            self.fdc.on_timer(ctx);
        }
        self.run_dma(ctx);
    }
    fn mmio_ranges(&self) -> Vec<MmioRange> {
        Vec::new()
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
