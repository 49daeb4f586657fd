//! The PIIX3 IDE controller (PCI function 8086:7010, 00:01.1 by default): two legacy channels
//! with up to two drives each, and the bus-master DMA engine behind BAR4.
//!
//! Primary channel: ports 0x1F0-0x1F7 and 0x3F6 (device control / alternate status), IRQ 14.
//! Secondary channel: 0x170-0x177 and 0x376, IRQ 15. The legacy ports are fixed (programming
//! interface 0x80: legacy mode only); BAR4 holds the 16 bus-master registers, 8 per channel.
//! A drive is an ATA disk (PIO, multiple, DMA, LBA28/LBA48, CHS) or an ATAPI CD-ROM (PACKET
//! over PIO, the MMC commands BIOSes and Linux issue, media change). Commands complete at once:
//! no BSY period, no timers.
//!
//! Disk images are host resources: they are attached with [`Ide::attach_disk`] and
//! [`Ide::attach_cdrom`], live beside the state struct, and stay attached across
//! [`Snapshot::restore`], which replaces only the guest-visible state.

mod ata;
mod atapi;
mod busmaster;
mod channel;
mod drive;
mod identify;
mod mmc;
#[cfg(test)]
mod tests;

pub use atapi::sense;
pub use channel::{bm, control, ChannelState};
pub use drive::{error, status, AtapiState, DriveKind, DriveState, Phase, TaskFile};
pub use identify::{CDROM_MODEL, DISK_MODEL};

use drive::default_geometry;
use nestor_device::pci::{Bar, PciConfig, PciFunction, PciId, PciSlot};
use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use nestor_disk::{BlockBackend, DiskError, CD_SECTOR_SIZE, SECTOR_SIZE};
use serde::{Deserialize, Serialize};

/// Version of [`IdeState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x7010;
/// Where the PIIX3 puts its IDE function.
pub const DEFAULT_SLOT: PciSlot = PciSlot::new(0, 1, 1);
/// The BAR holding the bus-master registers.
pub const BUS_MASTER_BAR: u8 = 4;

/// Legacy resources of the two channels: command block base, control block port, IRQ.
pub const PRIMARY: (u16, u16, u8) = (0x1f0, 0x3f6, 14);
pub const SECONDARY: (u16, u16, u8) = (0x170, 0x376, 15);

/// Plugin descriptor. Options: `slot`, `function` (default 00:01.1). Drives are attached by
/// the machine through the inherent API.
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "piix3-ide",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(Ide::from_config(config)?))
}

/// An IDE channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Primary,
    Secondary,
}

/// A drive position on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Master,
    Slave,
}

/// Mistakes of the machine attaching drives (host errors, not guest input).
#[derive(Debug, thiserror::Error)]
pub enum IdeError {
    #[error("disk image is smaller than one sector")]
    TooSmall,
    #[error("the drive at {0:?} {1:?} is not a CD-ROM drive")]
    NotCdrom(Channel, Position),
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// Guest-visible state of the controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct IdeState {
    pub pci: PciConfig,
    pub primary: ChannelState,
    pub secondary: ChannelState,
}

/// The PIIX3 IDE function with its drives.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_disk::MemDisk;
/// use nestor_ide::{Channel, Ide, Position};
///
/// let mut image = vec![0u8; 64 * 512];
/// image[510..512].copy_from_slice(&[0x55, 0xaa]);
/// let mut ide = Ide::new();
/// ide.attach_disk(Channel::Primary, Position::Master, Box::new(MemDisk::new(image)))
///     .unwrap();
/// let mut ctx = FakeContext::new();
/// ide.io_write(0x1f6, 1, 0xe0, &mut ctx); // master, LBA mode
/// for port in 0x1f3..=0x1f5 {
///     ide.io_write(port, 1, 0, &mut ctx); // LBA 0
/// }
/// ide.io_write(0x1f2, 1, 1, &mut ctx); // one sector
/// ide.io_write(0x1f7, 1, 0x20, &mut ctx); // READ SECTORS
/// assert!(ctx.irq(14));
/// assert_eq!(ide.io_read(0x1f7, 1, &mut ctx), 0x58); // DRDY DSC DRQ; IRQ acknowledged
/// let words: Vec<u32> = (0..256).map(|_| ide.io_read(0x1f0, 2, &mut ctx)).collect();
/// assert_eq!(words[255], 0xaa55);
/// assert_eq!(ide.io_read(0x1f7, 1, &mut ctx), 0x50);
/// ```
pub struct Ide {
    state: IdeState,
    slot: PciSlot,
    /// Images of the primary channel's master and slave.
    primary_disks: [Option<Box<dyn BlockBackend>>; 2],
    secondary_disks: [Option<Box<dyn BlockBackend>>; 2],
}

impl Default for Ide {
    fn default() -> Self {
        Self::new()
    }
}

/// The configuration space after reset: identity, BAR4, decoding off.
fn power_on_config() -> PciConfig {
    let mut pci = PciConfig::new(&PciId::new(VENDOR_ID, DEVICE_ID, 0x01_01_80));
    // A BAR of a fixed, valid size cannot fail to be declared.
    let _ = pci.add_bar(BUS_MASTER_BAR, Bar::io(16));
    pci.set_word(0x06, 0x0280); // DEVSEL medium, fast back-to-back
                                // IDETIM (primary, secondary) and SIDETIM: timings firmware programs, stored only. The
                                // legacy ports always decode, so IDETIM's decode-enable bits start set (Linux's ata_piix
                                // ignores a channel whose bit is clear).
    pci.set_write_mask(0x40, &[0xff; 5]);
    pci.set_word(0x40, 0x8000);
    pci.set_word(0x42, 0x8000);
    pci
}

fn empty_channel(serial_base: u32) -> ChannelState {
    ChannelState {
        master: DriveState::new(DriveKind::Absent, serial(serial_base)),
        slave: DriveState::new(DriveKind::Absent, serial(serial_base + 1)),
        ..ChannelState::default()
    }
}

fn serial(n: u32) -> String {
    format!("NESTOR{n:04}")
}

impl Ide {
    /// The controller at 00:01.1 with no drives.
    #[must_use]
    pub fn new() -> Self {
        Self::at(DEFAULT_SLOT)
    }

    #[must_use]
    pub fn at(slot: PciSlot) -> Self {
        Self {
            state: IdeState {
                pci: power_on_config(),
                primary: empty_channel(1),
                secondary: empty_channel(3),
            },
            slot,
            primary_disks: [None, None],
            secondary_disks: [None, None],
        }
    }

    /// Build from plugin options (`slot`, `function`).
    pub fn from_config(config: &DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&PciSlot::OPTIONS)?;
        Ok(Self::at(PciSlot::from_config(config, DEFAULT_SLOT)?))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &IdeState {
        &self.state
    }

    fn parts(&mut self, channel: Channel) -> (&mut ChannelState, &mut channel::Backends) {
        match channel {
            Channel::Primary => (&mut self.state.primary, &mut self.primary_disks),
            Channel::Secondary => (&mut self.state.secondary, &mut self.secondary_disks),
        }
    }

    fn slot_of(
        &mut self,
        channel: Channel,
        position: Position,
    ) -> (&mut DriveState, &mut Option<Box<dyn BlockBackend>>) {
        let (ch, disks) = self.parts(channel);
        let [master_disk, slave_disk] = disks;
        match position {
            Position::Master => (&mut ch.master, master_disk),
            Position::Slave => (&mut ch.slave, slave_disk),
        }
    }

    /// Put an ATA hard disk at a position, replacing whatever was there.
    pub fn attach_disk(
        &mut self,
        channel: Channel,
        position: Position,
        disk: Box<dyn BlockBackend>,
    ) -> Result<(), IdeError> {
        let sectors = disk.len() / u64::from(SECTOR_SIZE);
        if sectors == 0 {
            return Err(IdeError::TooSmall);
        }
        let (drive, slot) = self.slot_of(channel, position);
        let mut fresh = DriveState::new(DriveKind::Disk, drive.serial.clone());
        fresh.capacity = sectors;
        (fresh.cylinders, fresh.heads, fresh.sectors_per_track) = default_geometry(sectors);
        fresh.regs.device = drive.regs.device;
        *drive = fresh;
        *slot = Some(disk);
        Ok(())
    }

    /// Put an ATAPI CD-ROM drive at a position, with a disc (an ISO image) or empty.
    pub fn attach_cdrom(
        &mut self,
        channel: Channel,
        position: Position,
        disc: Option<Box<dyn BlockBackend>>,
    ) {
        let (drive, slot) = self.slot_of(channel, position);
        let mut fresh = DriveState::new(DriveKind::Cdrom, drive.serial.clone());
        fresh.regs.device = drive.regs.device;
        fresh.capacity = disc
            .as_ref()
            .map_or(0, |d| d.len() / u64::from(CD_SECTOR_SIZE));
        fresh.atapi.disc = disc.is_some();
        *drive = fresh;
        *slot = disc;
    }

    /// Insert a disc into a CD-ROM drive (closing its tray): the guest sees a media change.
    pub fn insert_media(
        &mut self,
        channel: Channel,
        position: Position,
        disc: Box<dyn BlockBackend>,
    ) -> Result<(), IdeError> {
        let (drive, slot) = self.slot_of(channel, position);
        if !drive.is_cdrom() {
            return Err(IdeError::NotCdrom(channel, position));
        }
        drive.capacity = disc.len() / u64::from(CD_SECTOR_SIZE);
        drive.atapi.disc = true;
        drive.atapi.tray_open = false;
        drive.atapi.unit_attention = true;
        drive.atapi.media_event = atapi::event::NEW_MEDIA;
        *slot = Some(disc);
        Ok(())
    }

    /// Take the disc out of a CD-ROM drive (the host's eject), returning its image.
    pub fn eject_media(
        &mut self,
        channel: Channel,
        position: Position,
    ) -> Result<Option<Box<dyn BlockBackend>>, IdeError> {
        let (drive, slot) = self.slot_of(channel, position);
        if !drive.is_cdrom() {
            return Err(IdeError::NotCdrom(channel, position));
        }
        drive.capacity = 0;
        drive.atapi.disc = false;
        drive.atapi.media_event = atapi::event::MEDIA_REMOVAL;
        Ok(slot.take())
    }

    /// Whether the guest opened a CD-ROM drive's tray (START STOP UNIT eject).
    #[must_use]
    pub fn tray_open(&self, channel: Channel, position: Position) -> bool {
        let ch = match channel {
            Channel::Primary => &self.state.primary,
            Channel::Secondary => &self.state.secondary,
        };
        let d = match position {
            Position::Master => &ch.master,
            Position::Slave => &ch.slave,
        };
        d.is_cdrom() && d.atapi.tray_open
    }

    /// Give a drive its image again without touching guest-visible state (after a restore
    /// into a controller whose images were not attached yet).
    pub fn reattach_backend(
        &mut self,
        channel: Channel,
        position: Position,
        backend: Option<Box<dyn BlockBackend>>,
    ) {
        *self.slot_of(channel, position).1 = backend;
    }

    /// Program BAR4 and enable I/O decoding and bus mastering, as firmware would; `None`
    /// turns the bus-master block off. (The machine calls `ctx.remap()`'s equivalent after.)
    pub fn set_bus_master_base(&mut self, base: Option<u16>) {
        let bar = 0x10 + 4 * u16::from(BUS_MASTER_BAR);
        let pci = &mut self.state.pci;
        let command = pci.command();
        let io_and_master = 0x0005;
        match base {
            Some(port) => {
                pci.write(bar, 4, u32::from(port));
                pci.write(0x04, 2, u32::from(command | io_and_master));
            }
            None => {
                pci.write(bar, 4, 0);
            }
        }
    }

    /// Where the bus-master registers decode now.
    #[must_use]
    pub fn bus_master_base(&self) -> Option<u16> {
        self.state
            .pci
            .bar_address(BUS_MASTER_BAR)
            .and_then(|a| u16::try_from(a).ok())
    }

    /// Flush every attached image (the machine calls this before exiting).
    pub fn flush(&mut self) -> Result<(), DiskError> {
        let all = self
            .primary_disks
            .iter_mut()
            .chain(&mut self.secondary_disks);
        for disk in all.flatten() {
            disk.flush()?;
        }
        Ok(())
    }

    fn intrqs(&self) -> [[u32; 2]; 2] {
        [
            self.state.primary.interrupt_counts(),
            self.state.secondary.interrupt_counts(),
        ]
    }

    /// Run a waiting DMA command if the engine is started and the guest enabled mastering.
    fn try_dma(&mut self, channel: Channel, ctx: &mut dyn DeviceContext) {
        if self.state.pci.bus_master() {
            let (ch, disks) = self.parts(channel);
            ch.run_dma(disks, ctx);
        }
    }

    fn settle(&mut self, before: [[u32; 2]; 2], ctx: &mut dyn DeviceContext) {
        self.state.primary.settle(before[0], PRIMARY.2, ctx);
        self.state.secondary.settle(before[1], SECONDARY.2, ctx);
    }

    /// Which register a port reaches.
    fn decode(&self, port: u16) -> Option<(Channel, Target)> {
        let legacy = [(Channel::Primary, PRIMARY), (Channel::Secondary, SECONDARY)];
        for (channel, (base, ctrl, _)) in legacy {
            if (base..base + 8).contains(&port) {
                return Some((channel, Target::Command(port - base)));
            }
            if port == ctrl {
                return Some((channel, Target::Control));
            }
        }
        let bm = self.bus_master_base()?;
        let offset = port.checked_sub(bm).filter(|&o| o < 16)?;
        let channel = if offset < 8 {
            Channel::Primary
        } else {
            Channel::Secondary
        };
        Some((channel, Target::BusMaster(offset % 8)))
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        let Some((channel, target)) = self.decode(port) else {
            return 0xff;
        };
        let (ch, disks) = self.parts(channel);
        match target {
            Target::Command(offset) => ch.read(offset, 1, disks) as u8,
            Target::Control => ch.alt_status(),
            Target::BusMaster(offset) => ch.bm_read(offset),
        }
    }

    fn write_byte(&mut self, port: u16, value: u8, ctx: &mut dyn DeviceContext) {
        let Some((channel, target)) = self.decode(port) else {
            return;
        };
        let (ch, disks) = self.parts(channel);
        match target {
            Target::Command(offset) => ch.write(offset, 1, u32::from(value), disks),
            Target::Control => ch.write_device_control(value),
            Target::BusMaster(offset) => ch.bm_write(offset, value),
        }
        if matches!(target, Target::Command(7) | Target::BusMaster(0)) {
            self.try_dma(channel, ctx);
        }
    }
}

/// A register of a channel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Offset 0-7 in the command block (0 is the data port).
    Command(u16),
    /// Device control (write) / alternate status (read).
    Control,
    /// Offset 0-7 in the channel's bus-master registers.
    BusMaster(u16),
}

impl PciFunction for Ide {
    fn pci_slot(&self) -> PciSlot {
        self.slot
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.state.pci.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        self.state.pci.write_and_remap(offset, size, value, ctx);
    }
}

impl Snapshot for Ide {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: IdeState = restore_state(STATE_VERSION, bytes)?;
        state.pci.validate()?;
        self.state = state;
        Ok(())
    }
}

impl Device for Ide {
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        "ide"
    }

    fn ports(&self) -> Vec<PortRange> {
        let mut ports = vec![
            PortRange::new(PRIMARY.0, 8),
            PortRange::new(PRIMARY.1, 1),
            PortRange::new(SECONDARY.0, 8),
            PortRange::new(SECONDARY.1, 1),
        ];
        ports.extend(self.state.pci.io_bars().into_iter().map(|(_, r)| r));
        ports
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let before = self.intrqs();
        let value = match self.decode(port) {
            // The data port moves 16 or 32 bits at once.
            Some((channel, Target::Command(0))) => {
                let (ch, disks) = self.parts(channel);
                ch.read(0, size, disks)
            }
            _ => {
                let mut value = 0;
                for i in 0..size.clamp(1, 4) {
                    let byte = self.read_byte(port.wrapping_add(u16::from(i)));
                    value |= u32::from(byte) << (8 * i);
                }
                value
            }
        };
        self.settle(before, ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let before = self.intrqs();
        match self.decode(port) {
            Some((channel, Target::Command(0))) => {
                let (ch, disks) = self.parts(channel);
                ch.write(0, size, value, disks);
            }
            _ => {
                for i in 0..size.clamp(1, 4) {
                    let byte = (value >> (8 * u32::from(i))) as u8;
                    self.write_byte(port.wrapping_add(u16::from(i)), byte, ctx);
                }
            }
        }
        self.settle(before, ctx);
    }

    /// Machine reset: drives power-cycle (images and discs stay), the function's config space
    /// returns to its defaults. The IRQ levels are kept so the next access lowers them.
    fn reset(&mut self) {
        let pci = power_on_config();
        for ch in [&mut self.state.primary, &mut self.state.secondary] {
            let fresh_drive = |d: &DriveState| {
                let mut f = DriveState::new(d.kind, d.serial.clone());
                f.capacity = d.capacity;
                (f.cylinders, f.heads, f.sectors_per_track) = default_geometry(d.capacity);
                f.atapi.disc = d.atapi.disc;
                f.atapi.tray_open = d.atapi.tray_open;
                f
            };
            *ch = ChannelState {
                master: fresh_drive(&ch.master),
                slave: fresh_drive(&ch.slave),
                irq_level: ch.irq_level,
                ..ChannelState::default()
            };
        }
        self.state.pci = pci;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }

    fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}

    fn pci(&mut self) -> Option<&mut dyn PciFunction> {
        Some(self)
    }
}
