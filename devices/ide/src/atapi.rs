//! ATAPI: the PACKET protocol over PIO and the MMC commands of a CD-ROM drive.

use crate::drive::{status, Backend, DriveState, Phase};
use crate::mmc;
use nestor_disk::CD_SECTOR_SIZE;

const BLOCK: u64 = CD_SECTOR_SIZE as u64;

/// Sense keys and additional sense codes.
pub mod sense {
    pub const NO_SENSE: u8 = 0x00;
    pub const NOT_READY: u8 = 0x02;
    pub const MEDIUM_ERROR: u8 = 0x03;
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    pub const UNIT_ATTENTION: u8 = 0x06;
    pub const ASC_UNRECOVERED_READ: u8 = 0x11;
    pub const ASC_INVALID_OPCODE: u8 = 0x20;
    pub const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;
    pub const ASC_INVALID_FIELD: u8 = 0x24;
    pub const ASC_MEDIUM_CHANGED: u8 = 0x28;
    pub const ASC_SAVING_NOT_SUPPORTED: u8 = 0x39;
    pub const ASC_MEDIUM_NOT_PRESENT: u8 = 0x3a;
    pub const ASC_REMOVAL_PREVENTED: u8 = 0x53;
}

/// Interrupt reason (sector count register): CoD = command, IO = to the host.
const REASON_COMMAND_OUT: u8 = 0x01;
const REASON_DATA_IN: u8 = 0x02;
const REASON_STATUS: u8 = 0x03;

/// Media event codes of GET EVENT STATUS NOTIFICATION.
pub mod event {
    pub const NEW_MEDIA: u8 = 2;
    pub const MEDIA_REMOVAL: u8 = 3;
}

fn be16(b: &[u8], at: usize) -> u64 {
    u64::from(b.get(at).copied().unwrap_or(0)) << 8 | u64::from(b.get(at + 1).copied().unwrap_or(0))
}

fn be32(b: &[u8], at: usize) -> u64 {
    be16(b, at) << 16 | be16(b, at + 2)
}

impl DriveState {
    /// PACKET: wait for the 12-byte command packet.
    pub(crate) fn start_packet(&mut self) {
        // Bit 0 of the feature register asks for DMA, which this drive does not offer.
        if self.regs.feature & 1 != 0 {
            return self.abort();
        }
        self.atapi.byte_limit = u16::from(self.regs.lba_high) << 8 | u16::from(self.regs.lba_mid);
        self.buffer = vec![0; 12];
        self.pos = 0;
        self.phase = Phase::Packet;
        self.regs.count = REASON_COMMAND_OUT;
        self.regs.status = status::READY | status::DRQ;
    }

    /// Whether a disc can be read.
    fn disc_ready(&self, disk: &Backend) -> bool {
        self.atapi.disc && !self.atapi.tray_open && disk.is_some()
    }

    /// End the command with CHECK CONDITION and the given sense.
    pub(crate) fn check(&mut self, key: u8, asc: u8, ascq: u8) {
        self.atapi.sense_key = key;
        self.atapi.asc = asc;
        self.atapi.ascq = ascq;
        self.end_transfer();
        self.regs.status = status::READY | status::ERR;
        self.regs.error = key << 4;
        self.regs.count = REASON_STATUS;
        self.raise_irq();
    }

    fn not_ready(&mut self) {
        let ascq = if self.atapi.tray_open { 2 } else { 1 };
        self.check(sense::NOT_READY, sense::ASC_MEDIUM_NOT_PRESENT, ascq);
    }

    fn invalid_field(&mut self) {
        self.check(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_FIELD, 0);
    }

    /// End the command with GOOD status.
    fn good(&mut self) {
        self.atapi.sense_key = sense::NO_SENSE;
        self.atapi.asc = 0;
        self.atapi.ascq = 0;
        self.end_transfer();
        self.regs.status = status::READY;
        self.regs.error = 0;
        self.regs.count = REASON_STATUS;
        self.raise_irq();
    }

    /// Send `data`, cut to the allocation length the host gave.
    fn respond(&mut self, mut data: Vec<u8>, alloc: u64, disk: &mut Backend) {
        data.truncate(usize::try_from(alloc).unwrap_or(usize::MAX));
        self.atapi.left = data.len() as u64;
        self.atapi.response = data;
        self.atapi.next = 0;
        self.atapi.from_disc = false;
        self.next_chunk(disk);
    }

    /// Offer the host the next DRQ block of the response, within the byte count limit; the
    /// status phase once all is sent.
    fn next_chunk(&mut self, disk: &mut Backend) {
        if self.atapi.left == 0 {
            return self.good();
        }
        let mut limit = match self.atapi.byte_limit {
            0 => 0xfffe,
            n => u64::from(n & !1).max(2),
        };
        if self.atapi.from_disc && limit >= BLOCK {
            limit -= limit % BLOCK; // whole blocks, as drivers expect
        }
        let n = self.atapi.left.min(limit);
        let mut data = vec![0u8; n as usize];
        if self.atapi.from_disc {
            let read = match disk {
                Some(d) => d.read_at(self.atapi.next, &mut data),
                None => return self.not_ready(),
            };
            if read.is_err() {
                return self.check(sense::MEDIUM_ERROR, sense::ASC_UNRECOVERED_READ, 0);
            }
        } else {
            let start = usize::try_from(self.atapi.next).unwrap_or(usize::MAX);
            let end = start.saturating_add(n as usize);
            if let Some(part) = self.atapi.response.get(start..end) {
                data.copy_from_slice(part);
            }
        }
        self.atapi.next = self.atapi.next.wrapping_add(n);
        self.atapi.left -= n;
        self.regs.lba_mid = n as u8;
        self.regs.lba_high = (n >> 8) as u8;
        self.regs.count = REASON_DATA_IN;
        self.send_block(data);
    }

    /// The host has read a whole DRQ block of a packet command's response.
    pub(crate) fn atapi_block_done(&mut self, disk: &mut Backend) {
        self.next_chunk(disk);
    }

    /// Run the command packet the host has written.
    pub(crate) fn execute_packet(&mut self, disk: &mut Backend) {
        let cdb = std::mem::take(&mut self.buffer);
        self.phase = Phase::Idle;
        let op = cdb.first().copied().unwrap_or(0);
        let exempt = matches!(op, 0x03 | 0x12 | 0x46 | 0x4a);
        if self.atapi.unit_attention && !exempt {
            self.atapi.unit_attention = false;
            return self.check(sense::UNIT_ATTENTION, sense::ASC_MEDIUM_CHANGED, 0);
        }
        let needs_disc = matches!(op, 0x00 | 0x25 | 0x28 | 0x2b | 0x43 | 0x51 | 0xa8);
        if needs_disc && !self.disc_ready(disk) {
            return self.not_ready();
        }
        match op {
            0x00 | 0x2b | 0xbb => self.good(), // TEST UNIT READY, SEEK, SET CD SPEED
            0x03 => self.request_sense(&cdb, disk),
            0x12 => self.respond(mmc::inquiry(), be16(&cdb, 3), disk),
            0x1a | 0x5a => self.mode_sense(&cdb, disk),
            0x1b => self.start_stop(&cdb),
            0x1e => {
                self.atapi.locked = cdb.get(4).is_some_and(|b| b & 1 != 0);
                self.good();
            }
            0x25 => self.respond(mmc::read_capacity(self.capacity), 8, disk),
            0x28 => self.read(be32(&cdb, 2), be16(&cdb, 7), disk),
            0xa8 => self.read(be32(&cdb, 2), be32(&cdb, 6), disk),
            0x43 => self.read_toc(&cdb, disk),
            0x46 => {
                let media = self.disc_ready(disk);
                match mmc::configuration(&cdb, media) {
                    Some(data) => self.respond(data, be16(&cdb, 7), disk),
                    None => self.invalid_field(),
                }
            }
            0x4a => self.event_status(&cdb, disk),
            0x51 => self.respond(mmc::disc_information(), be16(&cdb, 7), disk),
            0xbd => {
                let data = mmc::mechanism_status(self.atapi.tray_open);
                self.respond(data, be16(&cdb, 8), disk);
            }
            _ => self.check(sense::ILLEGAL_REQUEST, sense::ASC_INVALID_OPCODE, 0),
        }
    }

    fn request_sense(&mut self, cdb: &[u8], disk: &mut Backend) {
        if self.atapi.unit_attention {
            self.atapi.unit_attention = false;
            self.atapi.sense_key = sense::UNIT_ATTENTION;
            self.atapi.asc = sense::ASC_MEDIUM_CHANGED;
            self.atapi.ascq = 0;
        }
        let a = &self.atapi;
        let data = mmc::sense_data(a.sense_key, a.asc, a.ascq);
        self.respond(data, u64::from(cdb.get(4).copied().unwrap_or(0)), disk);
    }

    fn read(&mut self, lba: u64, count: u64, disk: &mut Backend) {
        if !self.in_range(lba, count) {
            return self.check(sense::ILLEGAL_REQUEST, sense::ASC_LBA_OUT_OF_RANGE, 0);
        }
        if count == 0 {
            return self.good();
        }
        self.atapi.from_disc = true;
        self.atapi.next = lba * BLOCK;
        self.atapi.left = count * BLOCK;
        self.next_chunk(disk);
    }

    fn read_toc(&mut self, cdb: &[u8], disk: &mut Backend) {
        let msf = cdb.get(1).is_some_and(|b| b & 2 != 0);
        let mut format = cdb.get(2).copied().unwrap_or(0) & 0x0f;
        if format == 0 {
            // The older SFF-8020 place for the format: bits 7-6 of the control byte.
            format = cdb.get(9).copied().unwrap_or(0) >> 6;
        }
        let track = cdb.get(6).copied().unwrap_or(0);
        match mmc::toc(format, msf, track, self.capacity) {
            Some(data) => self.respond(data, be16(cdb, 7), disk),
            None => self.invalid_field(),
        }
    }

    fn mode_sense(&mut self, cdb: &[u8], disk: &mut Backend) {
        let ten = cdb.first() == Some(&0x5a);
        let page = cdb.get(2).copied().unwrap_or(0);
        let (control, code) = (page >> 6, page & 0x3f);
        if control == 3 {
            return self.check(sense::ILLEGAL_REQUEST, sense::ASC_SAVING_NOT_SUPPORTED, 0);
        }
        let media = self.disc_ready(disk);
        let Some(pages) = mmc::mode_pages(code, control == 1, self.atapi.locked) else {
            return self.invalid_field();
        };
        let (data, alloc) = if ten {
            (mmc::mode_header10(&pages, media), be16(cdb, 7))
        } else {
            let alloc = u64::from(cdb.get(4).copied().unwrap_or(0));
            (mmc::mode_header6(&pages, media), alloc)
        };
        self.respond(data, alloc, disk);
    }

    fn start_stop(&mut self, cdb: &[u8]) {
        let flags = cdb.get(4).copied().unwrap_or(0);
        let (load_eject, start) = (flags & 2 != 0, flags & 1 != 0);
        if load_eject && !start {
            if self.atapi.locked {
                return self.check(sense::ILLEGAL_REQUEST, sense::ASC_REMOVAL_PREVENTED, 2);
            }
            if !self.atapi.tray_open {
                self.atapi.tray_open = true;
                self.atapi.media_event = event::MEDIA_REMOVAL;
            }
        } else if load_eject && self.atapi.tray_open {
            // Closing the tray: the disc still in it is "new" to the host.
            self.atapi.tray_open = false;
            if self.atapi.disc {
                self.atapi.media_event = event::NEW_MEDIA;
                self.atapi.unit_attention = true;
            }
        }
        self.good();
    }

    fn event_status(&mut self, cdb: &[u8], disk: &mut Backend) {
        if cdb.get(1).is_none_or(|b| b & 1 == 0) {
            return self.invalid_field(); // only polled operation is offered
        }
        let wants_media = cdb.get(4).is_some_and(|b| b & 0x10 != 0);
        let event = if wants_media {
            std::mem::take(&mut self.atapi.media_event)
        } else {
            0
        };
        let present = self.atapi.disc && disk.is_some();
        let data = mmc::event_status(wants_media, event, present, self.atapi.tray_open);
        self.respond(data, be16(cdb, 7), disk);
    }
}
