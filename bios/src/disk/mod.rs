//! INT 13h: ATA hard disks (80h..), ATAPI CD-ROMs (El Torito, E0h..) and floppies (00h..).

pub mod ata;
pub mod eltorito;
pub mod floppy;
pub mod geometry;

use crate::bda;
use crate::call::{Call, Outcome};
use crate::guest::{rd16, rd8, wr8};
use crate::io::{eoi, inb};
use crate::{BiosState, Platform};
use ata::{Progress, Target, E_ADDRESS, E_BAD_COMMAND, E_NOT_FOUND};
pub use eltorito::CdBoot;
pub use geometry::Chs;
use nestor_cpu::SegReg;
use serde::{Deserialize, Serialize};

/// First drive number of the CD-ROMs (no emulation).
pub const CD_FIRST_DRIVE: u8 = 0xE0;

/// A drive on an IDE channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaDevice {
    pub channel: u8,
    pub slave: bool,
    pub atapi: bool,
    pub lba: bool,
    pub lba48: bool,
    /// Sectors (0 for CD-ROMs: the medium decides).
    pub sectors: u64,
    pub sector_size: u32,
    /// Geometry from IDENTIFY.
    pub phys: Chs,
    /// Geometry INT 13h reports.
    pub logical: Chs,
    pub model: String,
}

/// The drives POST found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drives {
    /// INT 13h drives 80h, 81h, ...
    pub hard: Vec<AtaDevice>,
    /// INT 13h drives E0h, E1h, ...
    pub cd: Vec<AtaDevice>,
    /// CMOS types of floppy drives 0 and 1 (0 = none).
    pub floppy: [u8; 2],
}

/// Identifies one transfer across RETRY traps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub drive: u8,
    pub lba: u64,
    pub count: u32,
    pub write: bool,
    pub addr: u64,
}

/// Where the engine of a transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Issue,
    Packet,
    Data { left: u32 },
    Flush,
}

/// Where transferred data comes from or goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dest {
    /// Guest memory at this physical address.
    Guest(u64),
    /// A host-side buffer (boot records, partial sectors).
    Buffer(Vec<u8>),
}

/// A transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub key: Key,
    pub target: Target,
    pub write: bool,
    pub lba: u64,
    pub remaining: u32,
    pub done: u32,
    pub chunk: u32,
    pub sector_size: u32,
    pub stage: Stage,
    pub retries: u8,
    pub dest: Dest,
    /// Bytes moved so far.
    pub moved: u64,
}

impl Pending {
    pub fn new(key: Key, target: Target, sector_size: u32, dest: Dest) -> Self {
        Self {
            key,
            target,
            write: key.write,
            lba: key.lba,
            remaining: key.count,
            done: 0,
            chunk: 0,
            sector_size,
            stage: Stage::Issue,
            retries: 0,
            dest,
            moved: 0,
        }
    }

    /// The next `n` bytes to write to the device.
    pub fn take_out(&mut self, p: &mut dyn Platform, n: usize) -> Vec<u8> {
        let at = self.moved;
        self.moved += n as u64;
        match &self.dest {
            Dest::Guest(a) => crate::guest::read_vec(p, a + at, n),
            Dest::Buffer(b) => {
                let mut v = vec![0u8; n];
                let start = usize::try_from(at).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(n).min(b.len());
                v[..end - start].copy_from_slice(&b[start..end]);
                v
            }
        }
    }

    /// Data read from the device; anything past what was asked for is dropped.
    pub fn put_in(&mut self, p: &mut dyn Platform, data: &[u8]) {
        let limit = u64::from(self.key.count) * u64::from(self.sector_size);
        let room = limit.saturating_sub(self.moved) as usize;
        let data = &data[..data.len().min(room)];
        match &mut self.dest {
            Dest::Guest(a) => {
                p.write_mem(*a + self.moved, data);
            }
            Dest::Buffer(b) => b.extend_from_slice(data),
        }
        self.moved += data.len() as u64;
    }
}

/// Runs (or continues) the transfer `key` on `dev`. `Busy` leaves it pending in `st`.
pub fn transfer(
    st: &mut BiosState,
    p: &mut dyn Platform,
    key: Key,
    dev: &AtaDevice,
    dest: Dest,
) -> (Progress, Option<Pending>) {
    let mut job = match st.pending.take() {
        Some(j) if j.key == key => j,
        _ => Pending::new(key, dev.target(), dev.sector_size, dest),
    };
    let progress = ata::run(p, &mut job);
    if progress == Progress::Busy {
        st.pending = Some(job);
        return (progress, None);
    }
    (progress, Some(job))
}

/// Which device a drive number names.
enum Unit {
    Floppy(u8),
    Hard(usize),
    Cd(usize),
    None,
}

fn unit(st: &BiosState, dl: u8) -> Unit {
    if let Some(cd) = &st.cd_boot {
        if cd.emulated() && dl == cd.drive {
            return Unit::None;
        }
    }
    match dl {
        0x00..=0x01 if st.disks.floppy[usize::from(dl)] != 0 => Unit::Floppy(dl),
        0x80..=0xDF if usize::from(dl - 0x80) < st.disks.hard.len() => {
            Unit::Hard(usize::from(dl - 0x80))
        }
        0xE0..=0xFF if usize::from(dl - CD_FIRST_DRIVE) < st.disks.cd.len() => {
            Unit::Cd(usize::from(dl - CD_FIRST_DRIVE))
        }
        _ => Unit::None,
    }
}

/// Records a hard-disk status and reports it (CF set when non-zero).
fn hd_status(c: &mut Call, status: u8) -> Outcome {
    wr8(c.p, bda::HD_STATUS, status);
    if status == 0 {
        c.ok()
    } else {
        c.fail(status)
    }
}

pub fn int13(st: &mut BiosState, c: &mut Call) -> Outcome {
    if c.r.ah() == 0x4B {
        return eltorito::int13_4b(st, c);
    }
    if let Some(cd) = st.cd_boot.clone() {
        if cd.emulated() && c.r.dl() == cd.drive {
            return eltorito::emulated(st, c, &cd);
        }
    }
    match unit(st, c.r.dl()) {
        Unit::Floppy(d) => floppy::int13(st, c, d),
        Unit::Hard(i) => {
            let dev = st.disks.hard[i].clone();
            hard(st, c, &dev)
        }
        Unit::Cd(i) => {
            let dev = st.disks.cd[i].clone();
            cdrom(st, c, &dev)
        }
        Unit::None => {
            if c.r.ah() == 0x08 && c.r.dl() >= 0x80 {
                c.set_dx(0);
                c.set_cx(0);
            }
            if c.r.ah() == 0x15 {
                c.set_ah(0);
                c.set_cf(true);
                return Outcome::Return;
            }
            hd_status(c, E_BAD_COMMAND)
        }
    }
}

/// AL sectors at CH/CL/DH into ES:BX as (lba, count, buffer); `None` if outside `g`.
fn chs_request(c: &mut Call, g: &Chs) -> Option<(u64, u32, u64)> {
    let count = u32::from(c.r.al());
    let sector = u32::from(c.r.cl() & 0x3F);
    let cyl = u32::from(c.r.ch()) | (u32::from(c.r.cl() & 0xC0) << 2);
    let head = u32::from(c.r.dh());
    let lba = g.to_lba(cyl, head, sector)?;
    let buf = c.addr(SegReg::Es, c.r.bx());
    Some((lba, count, buf))
}

/// The disk address packet at DS:SI: (lba, count, buffer address).
fn dap(c: &mut Call) -> (u64, u32, u64) {
    let at = c.addr(SegReg::Ds, c.r.si());
    let size = c.rd8(at);
    let count = u32::from(c.rd16(at + 2));
    let (off, seg) = (c.rd16(at + 4), c.rd16(at + 6));
    let lba = u64::from(c.rd32(at + 8)) | (u64::from(c.rd32(at + 12)) << 32);
    let buf = if size >= 0x18 && off == 0xFFFF && seg == 0xFFFF {
        u64::from(c.rd32(at + 16)) | (u64::from(c.rd32(at + 20)) << 32)
    } else {
        c.far(seg, off)
    };
    (lba, count, buf)
}

fn set_dap_count(c: &mut Call, done: u32) {
    let at = c.addr(SegReg::Ds, c.r.si());
    c.wr16(at + 2, done as u16);
}

fn hard(st: &mut BiosState, c: &mut Call, dev: &AtaDevice) -> Outcome {
    let ah = c.r.ah();
    match ah {
        0x00 | 0x09 | 0x0C | 0x0D | 0x10 | 0x11 | 0x14 | 0x47 | 0x4E => hd_status(c, 0),
        0x01 => {
            let last = rd8(c.p, bda::HD_STATUS);
            c.set_ah(last);
            c.set_cf(last != 0);
            Outcome::Return
        }
        0x02..=0x04 => {
            let Some((lba, count, buf)) = chs_request(c, &dev.logical) else {
                return hd_status(c, E_NOT_FOUND);
            };
            if count == 0 || count > 128 {
                return hd_status(c, E_BAD_COMMAND);
            }
            if ah == 0x04 {
                return hd_status(c, 0);
            }
            rw(st, c, dev, lba, count, buf, ah == 0x03, false)
        }
        0x08 => {
            let g = dev.logical;
            let max_cyl = g.cylinders.saturating_sub(1).min(1023);
            c.set_ax(0);
            c.set_cx(
                ((max_cyl as u16 & 0xFF) << 8)
                    | (g.spt as u16 & 0x3F)
                    | ((max_cyl as u16 >> 2) & 0xC0),
            );
            c.set_dx(((g.heads.saturating_sub(1) as u16) << 8) | st.disks.hard.len() as u16);
            hd_status(c, 0)
        }
        0x15 => {
            let n = dev.logical.sectors().min(0xFFFF_FFFF) as u32;
            c.set_cx((n >> 16) as u16);
            c.set_dx(n as u16);
            c.set_ah(3);
            c.set_cf(false);
            Outcome::Return
        }
        0x41 => edd_check(c, 0x0005),
        0x42..=0x44 => {
            let (lba, count, buf) = dap(c);
            if lba.saturating_add(u64::from(count)) > dev.sectors {
                set_dap_count(c, 0);
                return hd_status(c, E_ADDRESS);
            }
            if ah == 0x44 || count == 0 {
                return hd_status(c, 0);
            }
            rw(st, c, dev, lba, count, buf, ah == 0x43, true)
        }
        0x48 => {
            drive_params(c, dev);
            hd_status(c, 0)
        }
        _ => hd_status(c, E_BAD_COMMAND),
    }
}

/// Reads or writes `count` sectors for INT 13h and reports as CHS (AL) or EDD (packet).
#[allow(clippy::too_many_arguments)]
fn rw(
    st: &mut BiosState,
    c: &mut Call,
    dev: &AtaDevice,
    lba: u64,
    count: u32,
    buf: u64,
    write: bool,
    ext: bool,
) -> Outcome {
    let key = Key {
        drive: c.r.dl(),
        lba,
        count,
        write,
        addr: buf,
    };
    let (progress, job) = transfer(st, c.p, key, dev, Dest::Guest(buf));
    let done = job.map_or(0, |j| j.done);
    let status = match progress {
        Progress::Busy => return Outcome::Retry,
        Progress::Done => 0,
        Progress::Failed(e) => e,
    };
    if ext {
        set_dap_count(c, done);
    } else {
        c.set_al(done as u8);
    }
    if dev.atapi {
        c.set_ah(status);
        c.set_cf(status != 0);
        return Outcome::Return;
    }
    hd_status(c, status)
}

/// INT 13h/41h: EDD 3.0 with the given support bits.
fn edd_check(c: &mut Call, support: u16) -> Outcome {
    if c.r.bx() != 0x55AA {
        return c.fail(E_BAD_COMMAND);
    }
    c.set_bx(0xAA55);
    c.set_cx(support);
    c.set_ah(0x30);
    c.set_cf(false);
    Outcome::Return
}

/// INT 13h/48h: the drive parameter buffer at DS:SI, as much of it as the caller sized.
fn drive_params(c: &mut Call, dev: &AtaDevice) {
    let at = c.addr(SegReg::Ds, c.r.si());
    let size = c.rd16(at);
    if size < 0x1A {
        return;
    }
    let mut b = [0u8; 0x42];
    let (flags, sectors, g) = if dev.atapi {
        // Removable, change line, lockable; geometry not valid.
        (0x0074u16, u64::MAX, Chs::default())
    } else {
        (0x0002, dev.sectors, dev.phys)
    };
    let len: u16 = if size >= 0x42 {
        0x42
    } else if size >= 0x1E {
        0x1E
    } else {
        0x1A
    };
    b[0..2].copy_from_slice(&len.to_le_bytes());
    b[2..4].copy_from_slice(&flags.to_le_bytes());
    b[4..8].copy_from_slice(&g.cylinders.to_le_bytes());
    b[8..12].copy_from_slice(&g.heads.to_le_bytes());
    b[12..16].copy_from_slice(&g.spt.to_le_bytes());
    b[16..24].copy_from_slice(&sectors.to_le_bytes());
    b[24..26].copy_from_slice(&(dev.sector_size as u16).to_le_bytes());
    // No device parameter table extension.
    b[26..30].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    // EDD 3.0 device path: ISA bus, ATA or ATAPI interface, I/O base, master/slave.
    b[30..32].copy_from_slice(&0xBEDDu16.to_le_bytes());
    b[32] = 0x24;
    b[36..40].copy_from_slice(b"ISA ");
    b[40..48].copy_from_slice(if dev.atapi { b"ATAPI   " } else { b"ATA     " });
    let base = ata::CHANNELS[usize::from(dev.channel & 1)].0;
    b[48..50].copy_from_slice(&base.to_le_bytes());
    b[56] = u8::from(dev.slave);
    let sum = b[30..0x41].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    b[0x41] = 0u8.wrapping_sub(sum);
    c.p.write_mem(at, &b[..usize::from(len)]);
}

fn cdrom(st: &mut BiosState, c: &mut Call, dev: &AtaDevice) -> Outcome {
    let ah = c.r.ah();
    match ah {
        0x00 | 0x0D | 0x10 | 0x47 | 0x4E => c.ok(),
        0x01 => {
            c.set_ah(0);
            c.set_cf(false);
            Outcome::Return
        }
        0x15 => {
            c.set_ah(2);
            c.set_cf(false);
            Outcome::Return
        }
        0x41 => edd_check(c, 0x0007),
        0x42 | 0x44 => {
            let (lba, count, buf) = dap(c);
            if ah == 0x44 || count == 0 {
                return c.ok();
            }
            rw(st, c, dev, lba, count, buf, false, true)
        }
        0x43 => c.fail(0x03),
        0x45 | 0x46 | 0x49 => c.ok(),
        0x48 => {
            drive_params(c, dev);
            c.ok()
        }
        _ => c.fail(E_BAD_COMMAND),
    }
}

/// IRQ 14/15: the BIOS polls with interrupts off, but acknowledge anything that comes.
pub fn irq_ide(c: &mut Call, irq: u8) -> Outcome {
    let base = ata::CHANNELS[usize::from(irq == 15)].0;
    inb(c.p, base + 7);
    eoi(c.p, irq);
    Outcome::Return
}

/// Fixed disk parameter tables for drives 80h and 81h in the EBDA (INT 41h, 46h).
pub fn write_fdpt(p: &mut dyn Platform, drives: &Drives) {
    for (i, off) in [bda::EBDA_FDPT0, bda::EBDA_FDPT1].into_iter().enumerate() {
        let at = bda::EBDA + u64::from(off);
        let mut t = [0u8; 16];
        if let Some(d) = drives.hard.get(i) {
            let g = d.logical;
            t[0..2].copy_from_slice(&(g.cylinders.min(0xFFFF) as u16).to_le_bytes());
            t[2] = g.heads.min(255) as u8;
            t[5..7].copy_from_slice(&0xFFFFu16.to_le_bytes());
            t[8] = if g.heads > 8 { 0x08 } else { 0 };
            t[12..14].copy_from_slice(&(g.cylinders.min(0xFFFF) as u16).to_le_bytes());
            t[14] = g.spt.min(255) as u8;
        }
        p.write_mem(at, &t);
        crate::video::set_vector(p, if i == 0 { 0x41 } else { 0x46 }, bda::EBDA_SEGMENT, off);
    }
}

/// The signature word of a boot sector at physical `at`.
pub fn has_boot_signature(p: &mut dyn Platform, at: u64) -> bool {
    rd16(p, at + 510) == 0xAA55
}
