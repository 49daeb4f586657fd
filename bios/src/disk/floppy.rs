//! Floppy disks through the 82077 controller (0x3F0-0x3F7) and DMA channel 2. Each step that
//! waits for IRQ 6 ends the trap with WAIT: the stub halts with interrupts on, INT 0Eh sets
//! bit 7 of 40:3E, and the service picks the job up where it stopped.

use super::geometry::Chs;
use crate::bda;
use crate::call::{r, Call, Outcome};
use crate::guest::{rd8, wr8};
use crate::io::{eoi, inb, outb};
use crate::services::layout;
use crate::BiosState;
use crate::Platform;
use nestor_cpu::SegReg;
use serde::{Deserialize, Serialize};

const DOR: u16 = 0x3F2;
const MSR: u16 = 0x3F4;
const FIFO: u16 = 0x3F5;
const DIR_CCR: u16 = 0x3F7;
const DOR_NRESET: u8 = 0x04;
const DOR_DMA: u8 = 0x08;
const MSR_RQM: u8 = 0x80;
const MSR_DIO: u8 = 0x40;
/// 40:3E: bit 7 = an interrupt came; bits 0-1 = drive calibrated.
const IRQ_SEEN: u8 = 0x80;
/// Timer ticks the motor keeps running after an operation (about two seconds).
const MOTOR_TICKS: u8 = 37;

/// Status codes (AH).
const E_BAD_COMMAND: u8 = 0x01;
const E_ADDRESS_MARK: u8 = 0x02;
const E_WRITE_PROTECTED: u8 = 0x03;
const E_NOT_FOUND: u8 = 0x04;
const E_DMA_BOUNDARY: u8 = 0x09;
const E_CRC: u8 = 0x10;
const E_CONTROLLER: u8 = 0x20;
const E_SEEK: u8 = 0x40;
const E_TIMEOUT: u8 = 0x80;

/// The geometry of the media a CMOS drive type takes, and its data rate (CCR).
#[must_use]
pub fn media(cmos_type: u8) -> Option<(Chs, u8)> {
    let (cylinders, spt, rate) = match cmos_type {
        1 => (40, 9, 0x02),
        2 => (80, 15, 0x00),
        3 => (80, 9, 0x02),
        4 => (80, 18, 0x00),
        5 => (80, 36, 0x03),
        _ => return None,
    };
    Some((
        Chs {
            cylinders,
            heads: 2,
            spt,
        },
        rate,
    ))
}

/// One transfer request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub drive: u8,
    pub cylinder: u8,
    pub head: u8,
    pub sector: u8,
    pub count: u8,
    pub addr: u32,
    pub write: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    Start,
    ResetWait,
    Recalibrate,
    RecalibrateWait,
    Seek,
    SeekWait,
    Transfer,
    TransferWait,
}

/// A floppy operation in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    req: Request,
    stage: Stage,
}

/// How far a transfer got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    WaitIrq,
    Done(u8),
    Failed(u8),
}

fn irq_seen(p: &mut dyn Platform) -> bool {
    rd8(p, bda::FD_RECAL) & IRQ_SEEN != 0
}

fn clear_irq(p: &mut dyn Platform) {
    let v = rd8(p, bda::FD_RECAL);
    wr8(p, bda::FD_RECAL, v & !IRQ_SEEN);
}

/// Writes command bytes when the controller asks for them.
fn command(p: &mut dyn Platform, bytes: &[u8]) -> bool {
    for &b in bytes {
        if !(0..1000).any(|_| inb(p, MSR) & (MSR_RQM | MSR_DIO) == MSR_RQM) {
            return false;
        }
        outb(p, FIFO, b);
    }
    true
}

/// Reads `n` result bytes.
fn results(p: &mut dyn Platform, n: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if !(0..1000).any(|_| inb(p, MSR) & (MSR_RQM | MSR_DIO) == MSR_RQM | MSR_DIO) {
            return None;
        }
        out.push(inb(p, FIFO));
    }
    Some(out)
}

/// SENSE INTERRUPT STATUS: (ST0, present cylinder).
fn sense_interrupt(p: &mut dyn Platform) -> Option<(u8, u8)> {
    if !command(p, &[0x08]) {
        return None;
    }
    results(p, 2).map(|r| (r[0], r[1]))
}

/// DMA channel 2 for `len` bytes at `addr`, device → memory (read) or memory → device.
fn program_dma(p: &mut dyn Platform, addr: u32, len: u32, write: bool) {
    outb(p, 0x0A, 0x06);
    outb(p, 0x0C, 0x00);
    outb(p, 0x0B, if write { 0x4A } else { 0x46 });
    outb(p, 0x04, addr as u8);
    outb(p, 0x04, (addr >> 8) as u8);
    outb(p, 0x81, (addr >> 16) as u8);
    outb(p, 0x0C, 0x00);
    let count = len - 1;
    outb(p, 0x05, count as u8);
    outb(p, 0x05, (count >> 8) as u8);
    outb(p, 0x0A, 0x02);
}

/// BIOS status for a result phase that ended abnormally.
fn error_code(st1: u8, st2: u8) -> u8 {
    if st1 & 0x02 != 0 {
        E_WRITE_PROTECTED
    } else if st1 & 0x04 != 0 || st2 & 0x10 != 0 {
        E_NOT_FOUND
    } else if st1 & 0x01 != 0 {
        E_ADDRESS_MARK
    } else if st1 & 0x20 != 0 {
        E_CRC
    } else {
        E_CONTROLLER
    }
}

/// One step; `None` means go on with the next.
fn step(st: &mut BiosState, p: &mut dyn Platform, job: &mut Job) -> Option<Progress> {
    let req = job.req;
    let drive = req.drive & 1;
    let (_, rate) = media(st.disks.floppy[usize::from(drive)])?;
    match job.stage {
        Stage::Start => {
            let motors = 0x10 << drive;
            let on = (rd8(p, bda::FD_MOTOR) & 0xF0) | (1 << drive);
            wr8(p, bda::FD_MOTOR, on);
            wr8(p, bda::FD_MOTOR_TICKS, 0xFF);
            if st.fdc_ready {
                outb(p, DOR, DOR_NRESET | DOR_DMA | motors | drive);
                job.stage = Stage::Recalibrate;
                return None;
            }
            clear_irq(p);
            outb(p, DOR, DOR_DMA | motors | drive);
            outb(p, DOR, DOR_NRESET | DOR_DMA | motors | drive);
            job.stage = Stage::ResetWait;
            Some(Progress::WaitIrq)
        }
        Stage::ResetWait => {
            if !irq_seen(p) {
                return Some(Progress::WaitIrq);
            }
            // One SENSE INTERRUPT per drive after a reset, then SPECIFY and the data rate.
            for _ in 0..4 {
                sense_interrupt(p);
            }
            if !command(p, &[0x03, 0xAF, 0x02]) {
                return Some(Progress::Failed(E_TIMEOUT));
            }
            outb(p, DIR_CCR, rate);
            let v = rd8(p, bda::FD_RECAL);
            wr8(p, bda::FD_RECAL, v & !0x03);
            st.fdc_ready = true;
            job.stage = Stage::Recalibrate;
            None
        }
        Stage::Recalibrate => {
            if rd8(p, bda::FD_RECAL) & (1 << drive) != 0 {
                job.stage = Stage::Seek;
                return None;
            }
            clear_irq(p);
            if !command(p, &[0x07, drive]) {
                return Some(Progress::Failed(E_TIMEOUT));
            }
            job.stage = Stage::RecalibrateWait;
            Some(Progress::WaitIrq)
        }
        Stage::RecalibrateWait => {
            if !irq_seen(p) {
                return Some(Progress::WaitIrq);
            }
            match sense_interrupt(p) {
                Some((st0, 0)) if st0 & 0xC0 == 0 => {}
                _ => return Some(Progress::Failed(E_SEEK)),
            }
            let v = rd8(p, bda::FD_RECAL);
            wr8(p, bda::FD_RECAL, v | (1 << drive));
            job.stage = Stage::Seek;
            None
        }
        Stage::Seek => {
            clear_irq(p);
            if !command(p, &[0x0F, (req.head << 2) | drive, req.cylinder]) {
                return Some(Progress::Failed(E_TIMEOUT));
            }
            job.stage = Stage::SeekWait;
            Some(Progress::WaitIrq)
        }
        Stage::SeekWait => {
            if !irq_seen(p) {
                return Some(Progress::WaitIrq);
            }
            match sense_interrupt(p) {
                Some((st0, cyl)) if st0 & 0xC0 == 0 && cyl == req.cylinder => {}
                _ => return Some(Progress::Failed(E_SEEK)),
            }
            job.stage = Stage::Transfer;
            None
        }
        Stage::Transfer => {
            let (g, _) = media(st.disks.floppy[usize::from(drive)])?;
            let len = u32::from(req.count) * 512;
            if req.addr >= 0x100_0000 || (req.addr & 0xFFFF) + len > 0x1_0000 {
                return Some(Progress::Failed(E_DMA_BOUNDARY));
            }
            program_dma(p, req.addr, len, req.write);
            clear_irq(p);
            // MT + MFM (+ skip deleted data on reads), 512-byte sectors, EOT = last sector.
            let op = if req.write { 0xC5 } else { 0xE6 };
            let cmd = [
                op,
                (req.head << 2) | drive,
                req.cylinder,
                req.head,
                req.sector,
                2,
                g.spt as u8,
                0x1B,
                0xFF,
            ];
            if !command(p, &cmd) {
                return Some(Progress::Failed(E_TIMEOUT));
            }
            job.stage = Stage::TransferWait;
            Some(Progress::WaitIrq)
        }
        Stage::TransferWait => {
            if !irq_seen(p) {
                return Some(Progress::WaitIrq);
            }
            let Some(res) = results(p, 7) else {
                return Some(Progress::Failed(E_TIMEOUT));
            };
            wr8(p, bda::FD_MOTOR_TICKS, MOTOR_TICKS);
            p.write_mem(bda::FD_RESULT, &res);
            if res[0] & 0xC0 != 0 {
                return Some(Progress::Failed(error_code(res[1], res[2])));
            }
            Some(Progress::Done(req.count))
        }
    }
}

/// Runs (or continues) floppy transfer `req`.
pub fn transfer(st: &mut BiosState, p: &mut dyn Platform, req: Request) -> Progress {
    let mut job = match st.floppy.take() {
        Some(j) if j.req == req => j,
        _ => Job {
            req,
            stage: Stage::Start,
        },
    };
    for _ in 0..16 {
        match step(st, p, &mut job) {
            None => continue,
            Some(Progress::WaitIrq) => {
                st.floppy = Some(job);
                return Progress::WaitIrq;
            }
            Some(done) => {
                let code = match done {
                    Progress::Failed(e) => e,
                    _ => 0,
                };
                wr8(p, bda::FD_STATUS, code);
                if code != 0 {
                    // Start from a reset next time.
                    st.fdc_ready = false;
                }
                return done;
            }
        }
    }
    Progress::Failed(E_TIMEOUT)
}

/// IRQ 6: note the interrupt for the driver (bit 7 of 40:3E) and acknowledge.
pub fn irq6(c: &mut Call) -> Outcome {
    let v = rd8(c.p, bda::FD_RECAL);
    wr8(c.p, bda::FD_RECAL, v | IRQ_SEEN);
    eoi(c.p, 6);
    Outcome::Return
}

fn status(c: &mut Call, code: u8) -> Outcome {
    wr8(c.p, bda::FD_STATUS, code);
    if code == 0 {
        c.ok()
    } else {
        c.fail(code)
    }
}

/// INT 13h for floppy drive `drive`.
pub fn int13(st: &mut BiosState, c: &mut Call, drive: u8) -> Outcome {
    let Some((g, _)) = media(st.disks.floppy[usize::from(drive & 1)]) else {
        return status(c, E_TIMEOUT);
    };
    match c.r.ah() {
        0x00 => {
            st.fdc_ready = false;
            st.floppy = None;
            status(c, 0)
        }
        0x01 => {
            let last = rd8(c.p, bda::FD_STATUS);
            c.set_ah(last);
            c.set_cf(last != 0);
            Outcome::Return
        }
        0x02..=0x04 => {
            let count = c.r.al();
            let sector = c.r.cl() & 0x3F;
            let cylinder = c.r.ch();
            let head = c.r.dh();
            if count == 0
                || g.to_lba(u32::from(cylinder), u32::from(head), u32::from(sector))
                    .is_none()
            {
                return status(c, E_NOT_FOUND);
            }
            if c.r.ah() == 0x04 {
                return status(c, 0);
            }
            let addr = c.addr(SegReg::Es, c.r.bx()) as u32;
            let req = Request {
                drive,
                cylinder,
                head,
                sector,
                count,
                addr,
                write: c.r.ah() == 0x03,
            };
            match transfer(st, c.p, req) {
                Progress::WaitIrq => Outcome::Wait,
                Progress::Done(n) => {
                    c.set_al(n);
                    status(c, 0)
                }
                Progress::Failed(e) => {
                    c.set_al(0);
                    status(c, e)
                }
            }
        }
        0x08 => {
            let max_cyl = g.cylinders - 1;
            c.set_ax(0);
            c.set_bx(u16::from(st.disks.floppy[usize::from(drive & 1)]));
            c.set_cx(((max_cyl as u16) << 8) | g.spt as u16);
            let drives = st.disks.floppy.iter().filter(|t| **t != 0).count() as u16;
            c.set_dx(((g.heads as u16 - 1) << 8) | drives);
            c.set_seg(SegReg::Es, 0xF000);
            c.set16(r::DI, layout::F_DISKETTE_TABLE);
            status(c, 0)
        }
        0x15 => {
            c.set_ah(0x02);
            c.set_cf(false);
            Outcome::Return
        }
        0x16 => {
            let changed = inb(c.p, DIR_CCR) & 0x80 != 0;
            status(c, if changed { 0x06 } else { 0 })
        }
        0x17 | 0x18 => status(c, 0),
        _ => status(c, E_BAD_COMMAND),
    }
}
