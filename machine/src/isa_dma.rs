//! The ISA DMA controllers and the floppy controller, which talk to each other over DREQ/DACK
//! lines; device crates cannot see each other, so the machine pairs them in one device that
//! runs the floppy's pending DMA after every access.

use nestor_device::{
    restore_state, save_state, Device, DeviceContext, MmioRange, PortRange, Snapshot, StateError,
};
use nestor_dma::Dma;
use nestor_fdc::Fdc;

const STATE_VERSION: u32 = 1;

pub struct IsaDma {
    pub dma: Dma,
    pub fdc: Fdc,
}

impl IsaDma {
    #[must_use]
    pub fn new() -> Self {
        Self {
            dma: Dma::new(),
            fdc: Fdc::new(),
        }
    }

    fn run_dma(&mut self, ctx: &mut dyn DeviceContext) {
        // Bounded: each transfer moves at least one unit or reports no progress.
        for _ in 0..64 {
            if !(self.fdc.dma_pending() && self.fdc.dma_transfer(&mut self.dma, ctx)) {
                break;
            }
        }
    }

    fn fdc_port(&self, port: u16) -> bool {
        self.fdc.ports().iter().any(|r| r.contains(port))
    }
}

impl Default for IsaDma {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot for IsaDma {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &(self.dma.save()?, self.fdc.save()?))
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let (dma, fdc): (Vec<u8>, Vec<u8>) = restore_state(STATE_VERSION, bytes)?;
        self.dma.restore(&dma)?;
        self.fdc.restore(&fdc)
    }
}

impl Device for IsaDma {
    fn name(&self) -> &str {
        "isa-dma"
    }
    fn ports(&self) -> Vec<PortRange> {
        let mut p = self.dma.ports();
        p.extend(self.fdc.ports());
        p
    }
    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let v = if self.fdc_port(port) {
            self.fdc.io_read(port, size, ctx)
        } else {
            self.dma.io_read(port, size, ctx)
        };
        self.run_dma(ctx);
        v
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        if self.fdc_port(port) {
            self.fdc.io_write(port, size, value, ctx);
        } else {
            self.dma.io_write(port, size, value, ctx);
        }
        self.run_dma(ctx);
    }
    fn reset(&mut self) {
        self.dma.reset();
        self.fdc.reset();
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        [self.dma.next_deadline_ns(), self.fdc.next_deadline_ns()]
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
