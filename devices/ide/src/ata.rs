//! ATA commands of the hard disk, and the ATA commands an ATAPI drive accepts.

use crate::drive::{error, status, Backend, DriveState, Phase, MAX_MULTIPLE};
use crate::identify;
use nestor_disk::SECTOR_SIZE;

const SECTOR: u64 = SECTOR_SIZE as u64;

/// How a data command moves its sectors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// One sector per DRQ block.
    Pio,
    /// READ/WRITE MULTIPLE: the SET MULTIPLE MODE block size.
    Multiple,
    Dma,
}

impl DriveState {
    /// Run an ATA command written to the command register.
    pub fn ata_command(&mut self, cmd: u8, disk: &mut Backend) {
        self.command = cmd;
        if self.is_cdrom() {
            return self.packet_device_command(cmd);
        }
        match cmd {
            0x20 | 0x21 => self.start_read(false, Transfer::Pio, disk),
            0x24 => self.start_read(true, Transfer::Pio, disk),
            0xc4 => self.start_read(false, Transfer::Multiple, disk),
            0x29 => self.start_read(true, Transfer::Multiple, disk),
            0xc8 | 0xc9 => self.start_read(false, Transfer::Dma, disk),
            0x25 => self.start_read(true, Transfer::Dma, disk),
            0x30 | 0x31 => self.start_write(false, Transfer::Pio, disk),
            0x34 => self.start_write(true, Transfer::Pio, disk),
            0xc5 => self.start_write(false, Transfer::Multiple, disk),
            0x39 => self.start_write(true, Transfer::Multiple, disk),
            0xca | 0xcb => self.start_write(false, Transfer::Dma, disk),
            0x35 => self.start_write(true, Transfer::Dma, disk),
            0x40 | 0x41 => self.verify(false),
            0x42 => self.verify(true),
            0xe7 | 0xea => self.flush(disk),
            0xec => {
                self.send_block(identify::ata(self));
            }
            0xc6 => self.set_multiple(),
            0xef => self.set_features(),
            0x91 => self.initialize_parameters(),
            // RECALIBRATE: there is no head to move.
            0x10..=0x1f => self.complete(),
            0x70..=0x7f => match self.address28() {
                Some(lba) if lba < self.capacity => self.complete(),
                _ => self.fail(error::IDNF),
            },
            _ => self.power_command(cmd),
        }
    }

    /// Power management commands, shared by both kinds; anything else is aborted.
    fn power_command(&mut self, cmd: u8) {
        match cmd {
            // STANDBY (IMMEDIATE), SLEEP.
            0xe0 | 0xe2 | 0x94 | 0x96 | 0xe6 | 0x99 => {
                self.standby = true;
                self.complete();
            }
            // IDLE (IMMEDIATE).
            0xe1 | 0xe3 | 0x95 | 0x97 => {
                self.standby = false;
                self.complete();
            }
            // CHECK POWER MODE: 0x00 standby, 0xFF active or idle.
            0xe5 | 0x98 => {
                self.regs.count = if self.standby { 0x00 } else { 0xff };
                self.complete();
            }
            _ => self.abort(),
        }
    }

    /// ATA commands sent to the CD-ROM drive.
    fn packet_device_command(&mut self, cmd: u8) {
        match cmd {
            0xa0 => self.start_packet(),
            0xa1 => self.send_block(identify::atapi(self)),
            0x08 => self.reset_signature(),
            0xef => self.set_features(),
            0xec => {
                // IDENTIFY DEVICE: refused, with the signature that says "use PACKET".
                self.abort();
                self.regs.count = 1;
                self.regs.lba_low = 1;
                self.regs.lba_mid = 0x14;
                self.regs.lba_high = 0xeb;
            }
            _ => self.power_command(cmd),
        }
    }

    /// The sectors a data command addresses, or `None` after failing it with IDNF.
    fn command_range(&mut self, ext: bool) -> Option<(u64, u64)> {
        self.ext = ext;
        let (lba, count) = if ext {
            (Some(self.regs.lba48()), self.regs.count48())
        } else {
            (self.address28(), self.regs.count28())
        };
        match lba {
            Some(lba) if self.in_range(lba, count) => Some((lba, count)),
            Some(lba) => {
                self.regs.set_lba(lba, ext);
                self.fail(error::IDNF);
                None
            }
            None => {
                self.fail(error::IDNF);
                None
            }
        }
    }

    /// Sectors per DRQ block for a transfer kind, or `None` (aborted) without multiple mode.
    fn block_for(&mut self, transfer: Transfer) -> Option<u32> {
        match transfer {
            Transfer::Multiple if self.multiple == 0 => {
                self.abort();
                None
            }
            Transfer::Multiple => Some(u32::from(self.multiple)),
            Transfer::Pio | Transfer::Dma => Some(1),
        }
    }

    fn start_read(&mut self, ext: bool, transfer: Transfer, disk: &mut Backend) {
        let Some(block) = self.block_for(transfer) else {
            return;
        };
        let Some((lba, count)) = self.command_range(ext) else {
            return;
        };
        self.standby = false;
        self.next_lba = lba;
        self.sectors_left = count;
        self.block_sectors = block;
        if transfer == Transfer::Dma {
            self.phase = Phase::DmaIn;
            self.regs.status = status::READY | status::DRQ;
        } else {
            self.load_read_block(disk);
        }
    }

    fn start_write(&mut self, ext: bool, transfer: Transfer, disk: &mut Backend) {
        let Some(block) = self.block_for(transfer) else {
            return;
        };
        if disk.as_ref().is_none_or(|d| d.read_only()) {
            return self.abort();
        }
        let Some((lba, count)) = self.command_range(ext) else {
            return;
        };
        self.standby = false;
        self.next_lba = lba;
        self.sectors_left = count;
        self.block_sectors = block;
        if transfer == Transfer::Dma {
            self.phase = Phase::DmaOut;
            self.regs.status = status::READY | status::DRQ;
        } else {
            let n = self.sectors_left.min(u64::from(block));
            self.sectors_left -= n;
            self.receive_block((n * SECTOR) as usize, false);
        }
    }

    /// Sectors in the next DRQ block (bounded even for a state from a damaged snapshot).
    fn block(&self) -> u64 {
        u64::from(self.block_sectors.clamp(1, u32::from(MAX_MULTIPLE)))
    }

    /// Read the next DRQ block from the disk and offer it to the host.
    fn load_read_block(&mut self, disk: &mut Backend) {
        let n = self.sectors_left.min(self.block());
        let mut data = vec![0u8; (n * SECTOR) as usize];
        let read = match disk {
            Some(d) => d.read_at(self.next_lba.saturating_mul(SECTOR), &mut data),
            None => return self.abort(),
        };
        if read.is_err() {
            self.regs.set_lba(self.next_lba, self.ext);
            return self.fail(error::UNC);
        }
        self.next_lba = self.next_lba.wrapping_add(n);
        self.sectors_left -= n;
        self.send_block(data);
    }

    /// The host has read the whole DRQ block.
    pub fn pio_in_done(&mut self, disk: &mut Backend) {
        if self.is_cdrom() {
            return self.atapi_block_done(disk);
        }
        if self.sectors_left > 0 {
            self.load_read_block(disk);
        } else {
            // The last block of a read ends without an interrupt.
            self.end_transfer();
            self.regs.status = status::READY;
        }
    }

    /// The host has written the whole DRQ block (or command packet).
    pub fn pio_out_done(&mut self, disk: &mut Backend) {
        if self.phase == Phase::Packet {
            return self.execute_packet(disk);
        }
        let data = std::mem::take(&mut self.buffer);
        let n = data.len() as u64 / SECTOR;
        let written = match disk {
            Some(d) => d.write_at(self.next_lba.saturating_mul(SECTOR), &data),
            None => return self.abort(),
        };
        if written.is_err() {
            self.regs.set_lba(self.next_lba, self.ext);
            return self.abort();
        }
        self.next_lba = self.next_lba.wrapping_add(n);
        if self.sectors_left > 0 {
            let next = self.sectors_left.min(self.block());
            self.sectors_left -= next;
            self.receive_block((next * SECTOR) as usize, true);
        } else {
            self.complete();
        }
    }

    fn verify(&mut self, ext: bool) {
        if self.command_range(ext).is_some() {
            self.complete();
        }
    }

    fn flush(&mut self, disk: &mut Backend) {
        match disk.as_mut().map(|d| d.flush()) {
            Some(Err(_)) => self.abort(),
            _ => self.complete(),
        }
    }

    fn set_multiple(&mut self) {
        let count = self.regs.count;
        if count == 0 || (count.is_power_of_two() && count <= MAX_MULTIPLE) {
            self.multiple = count;
            self.complete();
        } else {
            self.abort();
        }
    }

    fn set_features(&mut self) {
        let value = self.regs.count;
        let dma_ok = !self.is_cdrom();
        match self.regs.feature {
            0x03 => match value {
                0x00 | 0x01 => {
                    self.pio_mode = 0x08;
                    self.complete();
                }
                0x08..=0x0c => {
                    self.pio_mode = value;
                    self.complete();
                }
                0x20..=0x22 | 0x40..=0x45 if dma_ok => {
                    self.dma_mode = value;
                    self.complete();
                }
                _ => self.abort(),
            },
            0x02 if dma_ok => {
                self.write_cache = true;
                self.complete();
            }
            0x82 if dma_ok => {
                self.write_cache = false;
                self.complete();
            }
            // Read look-ahead on/off, reverting to defaults on/off: accepted, nothing to do.
            0x55 | 0xaa | 0x66 | 0xcc => self.complete(),
            _ => self.abort(),
        }
    }

    fn initialize_parameters(&mut self) {
        let heads = (self.regs.device & 0x0f) + 1;
        let spt = self.regs.count;
        if spt == 0 {
            return self.abort();
        }
        let per_cylinder = u64::from(heads) * u64::from(spt);
        self.heads = heads;
        self.sectors_per_track = spt;
        self.cylinders = (self.capacity / per_cylinder).min(65535) as u16;
        self.complete();
    }
}
