//! ATA and ATAPI over PIO on the two legacy IDE channels: IDENTIFY at POST and a resumable
//! transfer engine. Every wait for the device ends in [`Progress::Busy`] instead of a spin:
//! the service returns RETRY, the stub traps again, and virtual time moves on meanwhile.

use super::{AtaDevice, Chs, Pending, Stage};
use crate::io::{inb, inw, outb, outw};
use crate::Platform;
use serde::{Deserialize, Serialize};

/// (command block base, control block base) of the primary and secondary channels.
pub const CHANNELS: [(u16, u16); 2] = [(0x1F0, 0x3F6), (0x170, 0x376)];

const REG_DATA: u16 = 0;
const REG_FEATURES: u16 = 1;
const REG_COUNT: u16 = 2;
const REG_LBA0: u16 = 3;
const REG_LBA1: u16 = 4;
const REG_LBA2: u16 = 5;
const REG_DEVICE: u16 = 6;
const REG_STATUS: u16 = 7;
const REG_COMMAND: u16 = 7;

const ST_ERR: u8 = 0x01;
const ST_DRQ: u8 = 0x08;
const ST_DF: u8 = 0x20;
const ST_BSY: u8 = 0x80;

const CMD_READ: u8 = 0x20;
const CMD_READ_EXT: u8 = 0x24;
const CMD_WRITE: u8 = 0x30;
const CMD_WRITE_EXT: u8 = 0x34;
const CMD_PACKET: u8 = 0xA0;
const CMD_IDENTIFY_PACKET: u8 = 0xA1;
const CMD_IDENTIFY: u8 = 0xEC;
/// Device control: interrupts off (nIEN); the BIOS polls.
const CTL_NIEN: u8 = 0x02;

/// BIOS status codes (INT 13h AH).
pub const E_BAD_COMMAND: u8 = 0x01;
pub const E_ADDRESS: u8 = 0x02;
pub const E_NOT_FOUND: u8 = 0x04;
pub const E_CONTROLLER: u8 = 0x20;
pub const E_TIMEOUT: u8 = 0x80;
pub const E_NOT_READY: u8 = 0xAA;
pub const E_MEDIA_CHANGED: u8 = 0x06;

/// How far a step got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Busy,
    Done,
    Failed(u8),
}

/// A channel and drive, as the transfer engine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub channel: u8,
    pub slave: bool,
    pub atapi: bool,
    pub lba48: bool,
    pub chs_only: Option<Chs>,
}

impl Target {
    fn base(&self) -> u16 {
        CHANNELS[usize::from(self.channel & 1)].0
    }
    fn ctrl(&self) -> u16 {
        CHANNELS[usize::from(self.channel & 1)].1
    }
    fn select(&self) -> u8 {
        0xA0 | (u8::from(self.slave) << 4)
    }
}

impl AtaDevice {
    pub fn target(&self) -> Target {
        Target {
            channel: self.channel,
            slave: self.slave,
            atapi: self.atapi,
            lba48: self.lba48,
            chs_only: (!self.lba && !self.atapi).then_some(self.phys),
        }
    }
}

/// Status without acknowledging an interrupt.
fn alt_status(p: &mut dyn Platform, t: &Target) -> u8 {
    inb(p, t.ctrl())
}

/// Runs a transfer until it finishes, fails, or has to wait.
pub fn run(p: &mut dyn Platform, job: &mut Pending) -> Progress {
    // A guard against a device that keeps asking for data it never takes.
    for _ in 0..0x2_0000 {
        let step = match job.stage {
            Stage::Issue => issue(p, job),
            Stage::Packet => send_packet(p, job),
            Stage::Data { left } => data(p, job, left),
            Stage::Flush => flush(p, job),
        };
        match step {
            None => continue,
            Some(progress) => return progress,
        }
    }
    Progress::Failed(E_TIMEOUT)
}

/// Starts the next command, if any sectors are left.
fn issue(p: &mut dyn Platform, job: &mut Pending) -> Option<Progress> {
    if job.remaining == 0 {
        return Some(Progress::Done);
    }
    let t = job.target;
    outb(p, t.base() + REG_DEVICE, t.select());
    let st = alt_status(p, &t);
    if st == 0xFF {
        return Some(Progress::Failed(E_TIMEOUT));
    }
    if st & (ST_BSY | ST_DRQ) != 0 {
        return Some(Progress::Busy);
    }
    outb(p, t.ctrl(), CTL_NIEN);
    if t.atapi {
        let n = job.remaining.min(32);
        outb(p, t.base() + REG_FEATURES, 0);
        outb(p, t.base() + REG_LBA1, (job.sector_size & 0xFF) as u8);
        outb(p, t.base() + REG_LBA2, (job.sector_size >> 8) as u8);
        outb(p, t.base() + REG_COMMAND, CMD_PACKET);
        job.chunk = n;
        job.stage = Stage::Packet;
        return None;
    }
    let lba = job.lba;
    let ext = t.lba48 && (lba + u64::from(job.remaining.min(256)) > 0x0FFF_FFFF);
    let n = job.remaining.min(if ext { 0x1_0000 } else { 256 });
    let b = t.base();
    if let Some(g) = t.chs_only {
        let Some(chs) = g.from_lba(lba) else {
            return Some(Progress::Failed(E_NOT_FOUND));
        };
        outb(p, b + REG_DEVICE, t.select() | (chs.1 as u8 & 0x0F));
        outb(p, b + REG_COUNT, n as u8);
        outb(p, b + REG_LBA0, chs.2 as u8);
        outb(p, b + REG_LBA1, chs.0 as u8);
        outb(p, b + REG_LBA2, (chs.0 >> 8) as u8);
    } else if ext {
        outb(p, b + REG_DEVICE, 0x40 | (u8::from(t.slave) << 4));
        outb(p, b + REG_COUNT, (n >> 8) as u8);
        outb(p, b + REG_LBA0, (lba >> 24) as u8);
        outb(p, b + REG_LBA1, (lba >> 32) as u8);
        outb(p, b + REG_LBA2, (lba >> 40) as u8);
        outb(p, b + REG_COUNT, n as u8);
        outb(p, b + REG_LBA0, lba as u8);
        outb(p, b + REG_LBA1, (lba >> 8) as u8);
        outb(p, b + REG_LBA2, (lba >> 16) as u8);
    } else {
        outb(
            p,
            b + REG_DEVICE,
            0xE0 | (u8::from(t.slave) << 4) | ((lba >> 24) as u8 & 0x0F),
        );
        outb(p, b + REG_COUNT, n as u8);
        outb(p, b + REG_LBA0, lba as u8);
        outb(p, b + REG_LBA1, (lba >> 8) as u8);
        outb(p, b + REG_LBA2, (lba >> 16) as u8);
    }
    let cmd = match (job.write, ext) {
        (false, false) => CMD_READ,
        (false, true) => CMD_READ_EXT,
        (true, false) => CMD_WRITE,
        (true, true) => CMD_WRITE_EXT,
    };
    outb(p, b + REG_COMMAND, cmd);
    job.chunk = n;
    job.stage = Stage::Data { left: n };
    None
}

/// ATAPI: the device asks for the command packet; send READ(10).
fn send_packet(p: &mut dyn Platform, job: &mut Pending) -> Option<Progress> {
    let t = job.target;
    let st = alt_status(p, &t);
    if st & ST_BSY != 0 {
        return Some(Progress::Busy);
    }
    if st & ST_ERR != 0 {
        return Some(retry_or_fail(p, job));
    }
    if st & ST_DRQ == 0 {
        return Some(Progress::Busy);
    }
    let lba = job.lba as u32;
    let n = job.chunk as u16;
    let mut cdb = [0u8; 12];
    cdb[0] = 0x28;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&n.to_be_bytes());
    for w in cdb.chunks_exact(2) {
        outw(p, t.base() + REG_DATA, u16::from_le_bytes([w[0], w[1]]));
    }
    job.stage = Stage::Data { left: job.chunk };
    None
}

/// A failed ATAPI command (typically UNIT ATTENTION after a media change) is tried again a
/// few times before the call fails.
fn retry_or_fail(p: &mut dyn Platform, job: &mut Pending) -> Progress {
    let t = job.target;
    inb(p, t.base() + REG_STATUS);
    if t.atapi && job.retries < 3 {
        job.retries += 1;
        job.stage = Stage::Issue;
        return Progress::Busy;
    }
    let err = inb(p, t.base() + REG_FEATURES);
    Progress::Failed(if t.atapi && err >> 4 == 6 {
        E_MEDIA_CHANGED
    } else if t.atapi && err >> 4 == 2 {
        E_NOT_READY
    } else {
        E_NOT_FOUND
    })
}

/// One data block, if the device has it ready.
fn data(p: &mut dyn Platform, job: &mut Pending, left: u32) -> Option<Progress> {
    let t = job.target;
    let st = alt_status(p, &t);
    if st & ST_BSY != 0 {
        return Some(Progress::Busy);
    }
    if st & (ST_ERR | ST_DF) != 0 {
        return Some(retry_or_fail(p, job));
    }
    if st & ST_DRQ == 0 {
        if t.atapi {
            // The command completed (status read acknowledges it): next chunk.
            inb(p, t.base() + REG_STATUS);
            job.stage = Stage::Issue;
            return if left == 0 {
                None
            } else {
                Some(Progress::Failed(E_NOT_FOUND))
            };
        }
        return Some(Progress::Busy);
    }
    // Reading the status register acknowledges the block.
    inb(p, t.base() + REG_STATUS);
    let bytes = if t.atapi {
        let n =
            u32::from(inb(p, t.base() + REG_LBA1)) | (u32::from(inb(p, t.base() + REG_LBA2)) << 8);
        if n == 0 {
            job.sector_size
        } else {
            n
        }
    } else {
        job.sector_size
    };
    let words = bytes.div_ceil(2) as usize;
    if job.write {
        let sector = job.take_out(p, words * 2);
        for w in sector.chunks_exact(2) {
            outw(p, t.base() + REG_DATA, u16::from_le_bytes([w[0], w[1]]));
        }
    } else {
        let mut buf = Vec::with_capacity(words * 2);
        for _ in 0..words {
            buf.extend_from_slice(&inw(p, t.base() + REG_DATA).to_le_bytes());
        }
        job.put_in(p, &buf);
    }
    let sectors = (bytes / job.sector_size).max(1);
    job.lba += u64::from(sectors);
    job.remaining = job.remaining.saturating_sub(sectors);
    job.done += sectors;
    let left = left.saturating_sub(sectors);
    job.stage = if left > 0 {
        Stage::Data { left }
    } else if job.write {
        Stage::Flush
    } else if t.atapi {
        Stage::Data { left: 0 }
    } else {
        Stage::Issue
    };
    None
}

/// After the last block of a write: wait until the device has taken it.
fn flush(p: &mut dyn Platform, job: &mut Pending) -> Option<Progress> {
    let t = job.target;
    let st = alt_status(p, &t);
    if st & ST_BSY != 0 {
        return Some(Progress::Busy);
    }
    inb(p, t.base() + REG_STATUS);
    if st & (ST_ERR | ST_DF) != 0 {
        return Some(Progress::Failed(E_CONTROLLER));
    }
    job.stage = Stage::Issue;
    None
}

/// What probing one drive position found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Busy,
    Absent,
    Found(AtaDevice),
}

/// Probe state for one drive position, kept across RETRY traps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeStage {
    #[default]
    Start,
    /// IDENTIFY (ATA) or IDENTIFY PACKET DEVICE sent.
    Identify { packet: bool },
}

/// Probes channel `channel`, drive `slave`: IDENTIFY (DEVICE or PACKET DEVICE).
pub fn probe(p: &mut dyn Platform, channel: u8, slave: bool, stage: &mut ProbeStage) -> Probe {
    let t = Target {
        channel,
        slave,
        atapi: false,
        lba48: false,
        chs_only: None,
    };
    let b = t.base();
    match *stage {
        ProbeStage::Start => {
            outb(p, b + REG_DEVICE, t.select());
            let st = alt_status(p, &t);
            if st == 0xFF {
                return Probe::Absent;
            }
            if st & ST_BSY != 0 {
                return Probe::Busy;
            }
            outb(p, t.ctrl(), CTL_NIEN);
            // Something must hold the values written to the task file.
            outb(p, b + REG_COUNT, 0x55);
            outb(p, b + REG_LBA0, 0xAA);
            if inb(p, b + REG_COUNT) != 0x55 || inb(p, b + REG_LBA0) != 0xAA {
                return Probe::Absent;
            }
            outb(p, b + REG_COMMAND, CMD_IDENTIFY);
            *stage = ProbeStage::Identify { packet: false };
            Probe::Busy
        }
        ProbeStage::Identify { packet } => {
            let st = alt_status(p, &t);
            if st == 0 || st == 0xFF {
                return Probe::Absent;
            }
            if st & ST_BSY != 0 {
                return Probe::Busy;
            }
            let st = inb(p, b + REG_STATUS);
            if st & ST_ERR != 0 || st & ST_DRQ == 0 {
                let sig = (inb(p, b + REG_LBA1), inb(p, b + REG_LBA2));
                if !packet && sig == (0x14, 0xEB) {
                    outb(p, b + REG_COMMAND, CMD_IDENTIFY_PACKET);
                    *stage = ProbeStage::Identify { packet: true };
                    return Probe::Busy;
                }
                return Probe::Absent;
            }
            let mut id = [0u16; 256];
            for w in &mut id {
                *w = inw(p, b + REG_DATA);
            }
            Probe::Found(parse_identify(channel, slave, packet, &id))
        }
    }
}

/// The fields of IDENTIFY (PACKET) DEVICE data the BIOS uses.
#[must_use]
pub fn parse_identify(channel: u8, slave: bool, packet: bool, id: &[u16; 256]) -> AtaDevice {
    let model: String = id[27..47]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .map(|b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                ' '
            }
        })
        .collect::<String>()
        .trim()
        .to_string();
    let phys = Chs {
        cylinders: u32::from(id[1]),
        heads: u32::from(id[3]),
        spt: u32::from(id[6]),
    };
    let lba = id[49] & (1 << 9) != 0;
    let lba48 = id[83] & (1 << 10) != 0;
    let lba28_sectors = u64::from(id[60]) | (u64::from(id[61]) << 16);
    let lba48_sectors = (0..4).fold(0u64, |acc, i| acc | (u64::from(id[100 + i]) << (16 * i)));
    let sectors = if packet {
        0
    } else if lba48 && lba48_sectors != 0 {
        lba48_sectors
    } else if lba {
        lba28_sectors
    } else {
        u64::from(phys.cylinders) * u64::from(phys.heads) * u64::from(phys.spt)
    };
    AtaDevice {
        channel,
        slave,
        atapi: packet,
        lba,
        lba48,
        sectors,
        sector_size: if packet { 2048 } else { 512 },
        phys,
        logical: super::geometry::translate(phys, sectors),
        model,
    }
}
