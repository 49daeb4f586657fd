//! Intel 82077AA floppy disk controller in PC/AT mode: ports 0x3F0-0x3F5 and 0x3F7, IRQ 6,
//! DMA channel 2, two drives (A: and B:).
//!
//! Registers: DOR (0x3F2: drive select, reset, DMA/IRQ gate, motors), TDR (0x3F3), MSR/DSR
//! (0x3F4), the command FIFO (0x3F5), DIR/CCR (0x3F7: disk change line, data rate). Port 0x3F6
//! belongs to the IDE controller. Commands complete at once, with no seek or rotation delays.
//!
//! # DMA contract (for the machine)
//! Devices cannot call each other, so the FDC does not drive DREQ itself. After every access
//! to the FDC's or the DMA controller's ports, the machine does:
//! ```text
//! while fdc.dma_pending() && fdc.dma_transfer(&mut dma, ctx) {}
//! ```
//! [`Fdc::dma_transfer`] moves the bytes through [`nestor_dma::Dma::transfer`] on channel 2
//! (the direction is the one the guest programmed in the DMA controller), stops at the DMA
//! controller's terminal count as the real TC line would, and raises IRQ 6 when the command
//! ends. A masked channel moves nothing: the transfer waits until the guest unmasks it.

mod commands;
#[cfg(test)]
mod tests;
mod transfer;

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use nestor_disk::{BlockBackend, DiskError};
use nestor_dma::Dma;
use serde::{Deserialize, Serialize};

pub use transfer::TransferState;

/// Version of [`FdcState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;
pub const BASE_PORT: u16 = 0x3f0;
pub const IRQ: u8 = 6;
pub const DMA_CHANNEL: u8 = 2;
/// Drives on the controller (A: and B:).
pub const DRIVES: u8 = 2;

/// Plugin descriptor (no options; media are inserted by the machine).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "fdc82077",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Fdc::new()))
}

/// Digital output register bits.
pub mod dor {
    pub const DRIVE_SELECT: u8 = 0x03;
    /// Low: the controller is held in reset.
    pub const NRESET: u8 = 0x04;
    /// DMA requests and the interrupt line reach the bus.
    pub const DMA_GATE: u8 = 0x08;
}

/// Main status register bits.
pub mod msr {
    /// Ready for a byte through the FIFO.
    pub const RQM: u8 = 0x80;
    /// The FIFO byte goes to the host.
    pub const DIO: u8 = 0x40;
    /// Execution phase of a non-DMA transfer.
    pub const NON_DMA: u8 = 0x20;
    /// A command is in progress.
    pub const BUSY: u8 = 0x10;
}

/// A floppy format, detected from the image size.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub tracks: u8,
    pub heads: u8,
    pub sectors: u8,
    /// CCR data rate code the medium is read at (0 = 500 kb/s, 1 = 300, 2 = 250, 3 = 1 Mb/s).
    pub rate: u8,
}

impl Geometry {
    /// The format of an image of `bytes` bytes: 360K, 720K, 1.2M, 1.44M or 2.88M.
    #[must_use]
    pub fn from_size(bytes: u64) -> Option<Self> {
        let (tracks, heads, sectors, rate) = match bytes {
            368_640 => (40, 2, 9, 2),
            737_280 => (80, 2, 9, 2),
            1_228_800 => (80, 2, 15, 0),
            1_474_560 => (80, 2, 18, 0),
            2_949_120 => (80, 2, 36, 3),
            _ => return None,
        };
        Some(Self {
            tracks,
            heads,
            sectors,
            rate,
        })
    }

    /// Whether the medium can be read at data rate `rate` (a 360K disk also reads at 300 kb/s,
    /// as in a 1.2M drive).
    #[must_use]
    pub fn readable_at(&self, rate: u8) -> bool {
        rate == self.rate || (self.tracks == 40 && rate == 1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FdcError {
    #[error("floppy image of {0} bytes is not a 360K, 720K, 1.2M, 1.44M or 2.88M disk")]
    UnknownSize(u64),
    #[error("there is no floppy drive {0}")]
    NoDrive(u8),
}

/// Guest-visible state of one drive.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveState {
    /// Cylinder under the heads (present cylinder number).
    pub track: u8,
    pub head: u8,
    /// The inserted disk's format; `None` when the drive is empty.
    pub media: Option<Geometry>,
    /// The disk change line: set when a disk is inserted or removed, cleared by a step with a
    /// disk in the drive.
    pub disk_changed: bool,
    pub write_protected: bool,
}

/// Where the controller is in its command cycle.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommandPhase {
    #[default]
    Command,
    Execution,
    Result,
}

/// Guest-visible state of the controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FdcState {
    pub dor: u8,
    pub tdr: u8,
    /// Data rate select (CCR/DSR bits 0-1).
    pub data_rate: u8,
    pub phase: CommandPhase,
    /// Bytes of the command being received.
    pub command: Vec<u8>,
    /// Result bytes and how many the host has read.
    pub result: Vec<u8>,
    pub result_pos: u8,
    /// The interrupt request (reaches IRQ 6 while the DOR gate is open).
    pub irq_pending: bool,
    /// Level last driven on IRQ 6.
    pub irq_level: bool,
    /// Drives whose reset status SENSE INTERRUPT STATUS has still to report (4 after reset).
    pub reset_polls: u8,
    /// ST0 of finished seeks and recalibrates, reported by SENSE INTERRUPT STATUS.
    pub seek_status: Vec<u8>,
    /// SPECIFY bytes: step rate / head unload, head load / non-DMA.
    pub specify1: u8,
    pub specify2: u8,
    /// CONFIGURE byte 2 (EIS, EFIFO, POLL, FIFOTHR) and the precompensation track.
    pub config: u8,
    pub pretrk: u8,
    pub locked: bool,
    /// PERPENDICULAR MODE settings (drive bits, GAP, WGATE).
    pub perpendicular: u8,
    pub drive0: DriveState,
    pub drive1: DriveState,
    pub transfer: TransferState,
}

/// CONFIGURE defaults: implied seek off, FIFO disabled, polling on, threshold 1.
const DEFAULT_CONFIG: u8 = 0x20;

impl Default for FdcState {
    fn default() -> Self {
        Self {
            dor: 0,
            tdr: 0,
            data_rate: 2,
            phase: CommandPhase::Command,
            command: Vec::new(),
            result: Vec::new(),
            result_pos: 0,
            irq_pending: false,
            irq_level: false,
            reset_polls: 0,
            seek_status: Vec::new(),
            specify1: 0,
            specify2: 0,
            config: DEFAULT_CONFIG,
            pretrk: 0,
            locked: false,
            perpendicular: 0,
            drive0: DriveState::default(),
            drive1: DriveState::default(),
            transfer: TransferState::default(),
        }
    }
}

impl FdcState {
    pub fn drive(&mut self, index: u8) -> Option<&mut DriveState> {
        match index {
            0 => Some(&mut self.drive0),
            1 => Some(&mut self.drive1),
            _ => None,
        }
    }

    #[must_use]
    pub fn drive_ref(&self, index: u8) -> Option<&DriveState> {
        match index {
            0 => Some(&self.drive0),
            1 => Some(&self.drive1),
            _ => None,
        }
    }

    fn in_reset(&self) -> bool {
        self.dor & dor::NRESET == 0
    }

    /// SPECIFY's ND bit: transfers go through the FIFO instead of DMA.
    fn non_dma(&self) -> bool {
        self.specify2 & 1 != 0
    }
}

/// The floppy controller with its drives' disk images.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_fdc::Fdc;
///
/// let mut fdc = Fdc::new();
/// let mut ctx = FakeContext::new();
/// fdc.io_write(0x3f2, 1, 0x0c, &mut ctx); // leave reset, DMA and IRQ on
/// assert!(ctx.irq(6));
/// fdc.io_write(0x3f5, 1, 0x10, &mut ctx); // VERSION
/// assert_eq!(fdc.io_read(0x3f4, 1, &mut ctx), 0xd0); // result ready
/// assert_eq!(fdc.io_read(0x3f5, 1, &mut ctx), 0x90); // 82077AA
/// ```
pub struct Fdc {
    state: FdcState,
    /// Images of drives A: and B:.
    disks: [Option<Box<dyn BlockBackend>>; 2],
}

impl Default for Fdc {
    fn default() -> Self {
        Self::new()
    }
}

impl Fdc {
    /// The controller after power-on: held in reset until the guest writes the DOR.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: FdcState::default(),
            disks: [None, None],
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &FdcState {
        &self.state
    }

    /// Put a disk in `drive` (0 = A:, 1 = B:); its size gives its format. The disk change line
    /// goes active, as when a real disk is inserted.
    pub fn insert_media(
        &mut self,
        drive: u8,
        media: Box<dyn BlockBackend>,
    ) -> Result<Geometry, FdcError> {
        let geometry =
            Geometry::from_size(media.len()).ok_or(FdcError::UnknownSize(media.len()))?;
        let read_only = media.read_only();
        let d = self.state.drive(drive).ok_or(FdcError::NoDrive(drive))?;
        d.media = Some(geometry);
        d.write_protected = read_only;
        d.disk_changed = true;
        if let Some(slot) = self.disks.get_mut(usize::from(drive)) {
            *slot = Some(media);
        }
        Ok(geometry)
    }

    /// Take the disk out of `drive`, returning its image.
    pub fn eject_media(&mut self, drive: u8) -> Option<Box<dyn BlockBackend>> {
        let d = self.state.drive(drive)?;
        d.media = None;
        d.disk_changed = true;
        self.disks.get_mut(usize::from(drive))?.take()
    }

    /// Give a drive its image again without touching guest-visible state (after a restore).
    pub fn reattach_backend(&mut self, drive: u8, media: Option<Box<dyn BlockBackend>>) {
        if let Some(slot) = self.disks.get_mut(usize::from(drive)) {
            *slot = media;
        }
    }

    /// The format of the disk in `drive`, for the BIOS's CMOS drive types.
    #[must_use]
    pub fn geometry(&self, drive: u8) -> Option<Geometry> {
        self.state.drive_ref(drive).and_then(|d| d.media)
    }

    /// Flush both images (the machine calls this before exiting).
    pub fn flush(&mut self) -> Result<(), DiskError> {
        for disk in self.disks.iter_mut().flatten() {
            disk.flush()?;
        }
        Ok(())
    }

    /// Whether a command waits for DMA on channel 2 (see the crate documentation).
    #[must_use]
    pub fn dma_pending(&self) -> bool {
        self.state.phase == CommandPhase::Execution
            && !self.state.non_dma()
            && self.state.dor & dor::DMA_GATE != 0
    }

    /// Move the waiting command's data through channel 2 of `dma`. Returns whether any byte
    /// moved or the command ended (call again while it returns true).
    pub fn dma_transfer(&mut self, dma: &mut Dma, ctx: &mut dyn DeviceContext) -> bool {
        if !self.dma_pending() {
            return false;
        }
        let progressed = self.run_dma(dma, ctx);
        self.update_irq(ctx);
        progressed
    }

    /// Raise the controller's interrupt request. A new interrupt supersedes the drive-polling
    /// statuses of a reset that the host did not collect.
    fn interrupt(&mut self) {
        self.state.irq_pending = true;
        self.state.reset_polls = 0;
    }

    /// Drive IRQ 6 from the request and the DOR gate.
    fn update_irq(&mut self, ctx: &mut dyn DeviceContext) {
        let level = self.state.irq_pending && self.state.dor & dor::DMA_GATE != 0;
        if level != self.state.irq_level {
            self.state.irq_level = level;
            ctx.set_irq(IRQ, level);
        }
    }

    /// Controller reset (DOR bit 2 low, or DSR bit 7): the command cycle restarts; CONFIGURE
    /// settings survive only if LOCKed.
    fn reset_controller(&mut self) {
        let s = &mut self.state;
        s.phase = CommandPhase::Command;
        s.command.clear();
        s.result.clear();
        s.result_pos = 0;
        s.irq_pending = false;
        s.seek_status.clear();
        s.transfer = TransferState::default();
        if !s.locked {
            s.config = DEFAULT_CONFIG;
            s.pretrk = 0;
        }
    }

    /// The end of a reset: four drive-polling statuses and an interrupt.
    fn leave_reset(&mut self) {
        self.interrupt();
        self.state.reset_polls = 4;
    }

    fn write_dor(&mut self, value: u8) {
        let was_reset = self.state.in_reset();
        self.state.dor = value;
        if self.state.in_reset() {
            self.reset_controller();
        } else if was_reset {
            self.leave_reset();
        }
    }

    fn msr(&self) -> u8 {
        let s = &self.state;
        if s.in_reset() {
            return 0;
        }
        match s.phase {
            CommandPhase::Command if s.command.is_empty() => msr::RQM,
            CommandPhase::Command => msr::RQM | msr::BUSY,
            CommandPhase::Result => msr::RQM | msr::DIO | msr::BUSY,
            CommandPhase::Execution if s.non_dma() => {
                let dio = if s.transfer.write { 0 } else { msr::DIO };
                msr::RQM | msr::NON_DMA | msr::BUSY | dio
            }
            CommandPhase::Execution => msr::BUSY,
        }
    }

    fn dir(&self) -> u8 {
        let selected = self.state.dor & dor::DRIVE_SELECT;
        let changed = self
            .state
            .drive_ref(selected)
            .is_some_and(|d| d.disk_changed);
        u8::from(changed) << 7
    }

    fn read_port(&mut self, port: u16) -> u8 {
        match port {
            0x3f2 => self.state.dor,
            0x3f3 => self.state.tdr,
            0x3f4 => self.msr(),
            0x3f5 => self.read_fifo(),
            0x3f7 => self.dir(),
            _ => 0xff,
        }
    }

    fn write_port(&mut self, port: u16, value: u8) {
        match port {
            0x3f2 => self.write_dor(value),
            0x3f3 => self.state.tdr = value & 3,
            0x3f4 => {
                self.state.data_rate = value & 3;
                if value & 0x80 != 0 {
                    self.reset_controller();
                    self.leave_reset();
                }
            }
            0x3f5 => self.write_fifo(value),
            0x3f7 => self.state.data_rate = value & 3,
            _ => {}
        }
    }
}

impl Snapshot for Fdc {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Fdc {
    fn name(&self) -> &str {
        "fdc"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(BASE_PORT, 6), PortRange::new(0x3f7, 1)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let value = nestor_device::read_bytewise(port, size, |p| self.read_port(p));
        self.update_irq(ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        nestor_device::write_bytewise(port, size, value, |p, b| self.write_port(p, b));
        self.update_irq(ctx);
    }

    /// Machine reset: the controller and drives power-cycle; disks stay in the drives.
    fn reset(&mut self) {
        let keep = |d: &DriveState| DriveState {
            media: d.media,
            write_protected: d.write_protected,
            disk_changed: d.disk_changed,
            ..DriveState::default()
        };
        let fresh = FdcState {
            drive0: keep(&self.state.drive0),
            drive1: keep(&self.state.drive1),
            irq_level: self.state.irq_level,
            ..FdcState::default()
        };
        self.state = fresh;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
}
