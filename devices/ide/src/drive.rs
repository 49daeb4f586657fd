//! One drive on an IDE channel: its task-file registers, status, PIO data buffer and the
//! progress of the command it runs. ATA command semantics are in `ata.rs`, ATAPI in `atapi.rs`.

use nestor_disk::BlockBackend;
use serde::{Deserialize, Serialize};

/// The host resource behind a drive: an image, or none (empty CD tray, image not attached).
pub(crate) type Backend = Option<Box<dyn BlockBackend>>;

/// Status register bits.
pub mod status {
    pub const BSY: u8 = 0x80;
    pub const DRDY: u8 = 0x40;
    pub const DF: u8 = 0x20;
    /// Device seek complete (ATA) / service (ATAPI).
    pub const DSC: u8 = 0x10;
    pub const DRQ: u8 = 0x08;
    pub const ERR: u8 = 0x01;
    /// The idle status of a drive ready for commands.
    pub const READY: u8 = DRDY | DSC;
}

/// Error register bits.
pub mod error {
    pub const UNC: u8 = 0x40;
    pub const IDNF: u8 = 0x10;
    pub const ABRT: u8 = 0x04;
    /// What the diagnostic (power-on, reset, EXECUTE DEVICE DIAGNOSTIC) reports: no error.
    pub const DIAGNOSTIC_PASSED: u8 = 0x01;
}

/// What sits at a drive position.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DriveKind {
    #[default]
    Absent,
    /// An ATA hard disk.
    Disk,
    /// An ATAPI CD-ROM drive.
    Cdrom,
}

/// Where the data of the running command stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Idle,
    /// The host reads `buffer[pos..]` through the data port.
    PioIn,
    /// The host writes `buffer[pos..]` through the data port.
    PioOut,
    /// An ATA DMA read waits for the bus master.
    DmaIn,
    /// An ATA DMA write waits for the bus master.
    DmaOut,
    /// A PACKET command waits for its 12-byte command packet.
    Packet,
}

/// The command block registers. Each of the five LBA48 registers keeps its previous byte too
/// (read back with the HOB bit of device control, used as the high half in 48-bit commands).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFile {
    pub feature: u8,
    pub feature_prev: u8,
    pub count: u8,
    pub count_prev: u8,
    pub lba_low: u8,
    pub lba_low_prev: u8,
    pub lba_mid: u8,
    pub lba_mid_prev: u8,
    pub lba_high: u8,
    pub lba_high_prev: u8,
    /// Device/head register: bit 4 selects the slave, bit 6 LBA addressing.
    pub device: u8,
    pub error: u8,
    pub status: u8,
}

impl TaskFile {
    /// The 28-bit LBA of a command.
    #[must_use]
    pub fn lba28(&self) -> u64 {
        u64::from(self.device & 0x0f) << 24
            | u64::from(self.lba_high) << 16
            | u64::from(self.lba_mid) << 8
            | u64::from(self.lba_low)
    }

    /// The 48-bit LBA of an EXT command.
    #[must_use]
    pub fn lba48(&self) -> u64 {
        u64::from(self.lba_high_prev) << 40
            | u64::from(self.lba_mid_prev) << 32
            | u64::from(self.lba_low_prev) << 24
            | u64::from(self.lba_high) << 16
            | u64::from(self.lba_mid) << 8
            | u64::from(self.lba_low)
    }

    /// Sector count of a 28-bit command (0 means 256).
    #[must_use]
    pub fn count28(&self) -> u64 {
        match self.count {
            0 => 256,
            n => u64::from(n),
        }
    }

    /// Sector count of an EXT command (0 means 65536).
    #[must_use]
    pub fn count48(&self) -> u64 {
        match u16::from(self.count_prev) << 8 | u16::from(self.count) {
            0 => 65536,
            n => u64::from(n),
        }
    }

    /// Store an LBA back into the address registers (where an error happened).
    pub fn set_lba(&mut self, lba: u64, ext: bool) {
        self.lba_low = lba as u8;
        self.lba_mid = (lba >> 8) as u8;
        self.lba_high = (lba >> 16) as u8;
        if ext {
            self.lba_low_prev = (lba >> 24) as u8;
            self.lba_mid_prev = (lba >> 32) as u8;
            self.lba_high_prev = (lba >> 40) as u8;
        } else {
            self.device = (self.device & 0xf0) | ((lba >> 24) as u8 & 0x0f);
        }
    }
}

/// Guest-visible state of an ATAPI drive beyond the task file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AtapiState {
    /// Sense data of the last command (REQUEST SENSE reports it).
    pub sense_key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// A disc was inserted: the next command (but INQUIRY, REQUEST SENSE, GET CONFIGURATION,
    /// GET EVENT STATUS NOTIFICATION) fails with UNIT ATTENTION once.
    pub unit_attention: bool,
    /// A disc is in the drive (readable unless the tray is open).
    pub disc: bool,
    pub tray_open: bool,
    /// PREVENT MEDIUM REMOVAL is in force.
    pub locked: bool,
    /// Media event not yet reported by GET EVENT STATUS NOTIFICATION (0 = none).
    pub media_event: u8,
    /// Byte count limit the host put in the cylinder registers with PACKET.
    pub byte_limit: u16,
    /// The response of the current command when it does not come from the disc.
    pub response: Vec<u8>,
    /// Next byte of the response to send: an index into `response`, or a disc byte offset.
    pub next: u64,
    /// Bytes of the response still to send after the current DRQ block.
    pub left: u64,
    /// The response streams from the disc (READ) rather than from `response`.
    pub from_disc: bool,
}

/// Guest-visible state of one drive.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveState {
    pub kind: DriveKind,
    pub regs: TaskFile,
    /// The drive's INTRQ: pending until the host reads the status register or writes a
    /// command.
    pub intrq: bool,
    /// Interrupts raised so far (wrapping): a change tells the channel a new INTRQ edge came,
    /// even if the previous one was still pending.
    pub interrupts: u32,
    pub phase: Phase,
    /// Command running (for the data phases).
    pub command: u8,
    /// PIO data of the current DRQ block.
    pub buffer: Vec<u8>,
    pub pos: u32,
    /// Next sector to load (reads) or to write the buffer to (writes).
    pub next_lba: u64,
    /// Sectors of the command not yet in a DRQ block (for DMA: all sectors still to move).
    pub sectors_left: u64,
    /// Sectors per DRQ block of the running command.
    pub block_sectors: u32,
    /// Sectors the LBA48 command addressed with EXT (for error reporting).
    pub ext: bool,
    /// Sectors in the medium (512-byte for a disk, 2048-byte for a CD).
    pub capacity: u64,
    /// Logical CHS geometry: set at attach, changed by INITIALIZE DEVICE PARAMETERS.
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
    /// Sectors per block of READ/WRITE MULTIPLE (0: multiple mode off).
    pub multiple: u8,
    pub write_cache: bool,
    /// SET FEATURES transfer mode values in force: PIO (0x08 | n) and DMA (0x20 | n, 0x40 | n).
    pub pio_mode: u8,
    pub dma_mode: u8,
    /// STANDBY was requested (CHECK POWER MODE reports it).
    pub standby: bool,
    /// Serial number, unique per drive position.
    pub serial: String,
    pub atapi: AtapiState,
}

/// Largest READ/WRITE MULTIPLE block the drives offer.
pub const MAX_MULTIPLE: u8 = 16;

/// UDMA mode 5, selected at power-on as a BIOS would leave it.
const DEFAULT_DMA_MODE: u8 = 0x45;

impl DriveState {
    /// A drive of `kind`, after power-on, with `serial`.
    #[must_use]
    pub fn new(kind: DriveKind, serial: String) -> Self {
        let mut d = Self {
            kind,
            serial,
            write_cache: true,
            pio_mode: 0x0c,
            dma_mode: if kind == DriveKind::Disk {
                DEFAULT_DMA_MODE
            } else {
                0
            },
            ..Self::default()
        };
        d.reset_signature();
        d
    }

    #[must_use]
    pub fn present(&self) -> bool {
        self.kind != DriveKind::Absent
    }

    #[must_use]
    pub fn is_cdrom(&self) -> bool {
        self.kind == DriveKind::Cdrom
    }

    /// The idle status the drive shows after a reset: ATAPI devices leave DRDY clear.
    fn reset_status(&self) -> u8 {
        match self.kind {
            DriveKind::Disk => status::READY,
            _ => 0,
        }
    }

    /// Put the reset signature in the task file (ATA 00/00, ATAPI 14/EB in the cylinder
    /// registers), cancel any transfer and select device 0 addressing bits.
    pub fn reset_signature(&mut self) {
        self.regs.count = 1;
        self.regs.lba_low = 1;
        let (mid, high) = if self.is_cdrom() {
            (0x14, 0xeb)
        } else {
            (0, 0)
        };
        self.regs.lba_mid = mid;
        self.regs.lba_high = high;
        self.regs.device &= 0x10;
        self.regs.error = error::DIAGNOSTIC_PASSED;
        self.regs.status = self.reset_status();
        self.end_transfer();
    }

    /// Forget the data phase of the running command.
    pub fn end_transfer(&mut self) {
        self.phase = Phase::Idle;
        self.buffer.clear();
        self.pos = 0;
        self.sectors_left = 0;
        self.atapi.response.clear();
        self.atapi.left = 0;
    }

    pub fn raise_irq(&mut self) {
        self.intrq = true;
        self.interrupts = self.interrupts.wrapping_add(1);
    }

    /// Finish a command successfully and interrupt.
    pub fn complete(&mut self) {
        self.end_transfer();
        self.regs.status = status::READY;
        self.regs.error = 0;
        self.raise_irq();
    }

    /// Finish a command with an error in the error register and interrupt.
    pub fn fail(&mut self, err: u8) {
        self.end_transfer();
        self.regs.status = status::READY | status::ERR;
        self.regs.error = err;
        self.raise_irq();
    }

    /// Refuse a command: ERR with ABRT.
    pub fn abort(&mut self) {
        self.fail(error::ABRT);
    }

    /// Open a PIO data-in block of `data` and interrupt.
    pub fn send_block(&mut self, data: Vec<u8>) {
        self.buffer = data;
        self.pos = 0;
        self.phase = Phase::PioIn;
        self.regs.status = status::READY | status::DRQ;
        self.raise_irq();
    }

    /// Open a PIO data-out block of `len` bytes; `irq` interrupts (every block but the first).
    pub fn receive_block(&mut self, len: usize, irq: bool) {
        self.buffer = vec![0; len];
        self.pos = 0;
        self.phase = Phase::PioOut;
        self.regs.status = status::READY | status::DRQ;
        if irq {
            self.raise_irq();
        }
    }

    /// Host read of `size` bytes from the data port during a data-in phase. Returns the bytes
    /// and whether the block is now used up.
    pub fn read_data(&mut self, size: u8) -> (u32, bool) {
        if self.phase != Phase::PioIn {
            return (0, false);
        }
        let mut value = 0u32;
        for i in 0..u32::from(size.clamp(1, 4)) {
            let byte = self.buffer.get(self.pos as usize).copied().unwrap_or(0);
            value |= u32::from(byte) << (8 * i);
            self.pos = self.pos.saturating_add(1);
        }
        (value, self.pos as usize >= self.buffer.len())
    }

    /// Host write of `size` bytes to the data port during a data-out or packet phase.
    /// Returns whether the block is now full.
    pub fn write_data(&mut self, size: u8, value: u32) -> bool {
        if !matches!(self.phase, Phase::PioOut | Phase::Packet) {
            return false;
        }
        for i in 0..u32::from(size.clamp(1, 4)) {
            if let Some(slot) = self.buffer.get_mut(self.pos as usize) {
                *slot = (value >> (8 * i)) as u8;
            }
            self.pos = self.pos.saturating_add(1);
        }
        self.pos as usize >= self.buffer.len()
    }

    /// Guest-supplied CHS or LBA28 address of the command in the task file; `None` when the
    /// CHS address lies outside the logical geometry.
    #[must_use]
    pub fn address28(&self) -> Option<u64> {
        if self.regs.device & 0x40 != 0 {
            return Some(self.regs.lba28());
        }
        let cylinder = u64::from(self.regs.lba_high) << 8 | u64::from(self.regs.lba_mid);
        let head = u64::from(self.regs.device & 0x0f);
        let sector = u64::from(self.regs.lba_low);
        let (heads, spt) = (u64::from(self.heads), u64::from(self.sectors_per_track));
        if sector == 0 || sector > spt || head >= heads {
            return None;
        }
        Some((cylinder * heads + head) * spt + sector - 1)
    }

    /// Whether `count` sectors from `lba` lie on the medium.
    #[must_use]
    pub fn in_range(&self, lba: u64, count: u64) -> bool {
        lba.checked_add(count)
            .is_some_and(|end| end <= self.capacity)
    }
}

/// Logical CHS geometry for a disk of `sectors`: 16 heads, 63 sectors per track, as many
/// cylinders as fit (at least 1, at most 16383, the ATA limit for CHS).
#[must_use]
pub fn default_geometry(sectors: u64) -> (u16, u8, u8) {
    let cylinders = (sectors / (16 * 63)).clamp(1, 16383) as u16;
    (cylinders, 16, 63)
}
