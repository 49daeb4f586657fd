//! The execution phase of READ DATA, WRITE DATA and FORMAT TRACK: sector addressing, the data
//! buffer, and moving it by DMA (channel 2) or through the FIFO (non-DMA mode).

use crate::commands::{op, st0};
use crate::{CommandPhase, Fdc, DMA_CHANNEL};
use nestor_device::DeviceContext;
use nestor_dma::Dma;
use serde::{Deserialize, Serialize};

/// Bytes per sector (size code N = 2), the only size PC formats use.
const SECTOR: usize = 512;
const SIZE_CODE: u8 = 2;

/// ST1 and ST2 bits.
mod st {
    pub const MISSING_ADDRESS_MARK: u8 = 0x01;
    pub const NOT_WRITABLE: u8 = 0x02;
    pub const NO_DATA: u8 = 0x04;
    pub const END_OF_CYLINDER: u8 = 0x80;
    pub const BAD_CYLINDER: u8 = 0x02;
    pub const WRONG_CYLINDER: u8 = 0x10;
}

/// The data command in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferState {
    pub drive: u8,
    /// Physical head (from the HDS byte).
    pub head: u8,
    /// Sector ID being transferred: C, H, R, N as the command gave them.
    pub cylinder: u8,
    pub head_id: u8,
    pub sector: u8,
    pub size: u8,
    /// Last sector number of the track (EOT byte).
    pub eot: u8,
    pub multitrack: bool,
    /// Data flows to the disk (WRITE DATA, FORMAT TRACK).
    pub write: bool,
    pub format: bool,
    /// FORMAT TRACK: sectors still to format, and the filler byte.
    pub format_left: u8,
    pub filler: u8,
    /// One sector (or one 4-byte sector ID while formatting) and the next byte in it.
    pub buffer: Vec<u8>,
    pub pos: u32,
}

/// Why a sector cannot be reached: ST1 and ST2.
type Fault = (u8, u8);

impl Fdc {
    /// Begin READ DATA, WRITE DATA or FORMAT TRACK.
    pub(crate) fn start_transfer(&mut self, cmd: &[u8]) {
        let byte = |i: usize| cmd.get(i).copied().unwrap_or(0);
        let code = byte(0) & 0x1f;
        let hds = byte(1);
        let mut t = TransferState {
            drive: hds & 3,
            head: hds >> 2 & 1,
            multitrack: byte(0) & 0x80 != 0 && code != op::FORMAT_TRACK,
            write: code != op::READ_DATA,
            format: code == op::FORMAT_TRACK,
            ..TransferState::default()
        };
        if t.format {
            (t.size, t.format_left, t.filler) = (byte(2), byte(3), byte(5));
            t.cylinder = self.state.drive_ref(t.drive).map_or(0, |d| d.track);
            t.head_id = t.head;
        } else {
            (t.cylinder, t.head_id, t.sector) = (byte(2), byte(3), byte(4));
            (t.size, t.eot) = (byte(5), byte(6));
        }
        self.state.transfer = t;
        let Some(drive) = self.state.drive(hds & 3) else {
            let st = st0::ABNORMAL | st0::EQUIPMENT_CHECK;
            return self.finish_transfer(st, 0, 0);
        };
        drive.head = hds >> 2 & 1;
        let (write_protected, cylinder) = (drive.write_protected, self.state.transfer.cylinder);
        if self.state.config & 0x40 != 0 && !self.state.transfer.format {
            // Implied seek (CONFIGURE EIS): the controller steps to the command's cylinder.
            if let Some(d) = self.state.drive(hds & 3) {
                d.track = cylinder;
            }
        }
        let t = &self.state.transfer;
        if t.write
            && write_protected
            && self
                .state
                .drive_ref(t.drive)
                .is_some_and(|d| d.media.is_some())
        {
            return self.finish_transfer(st0::ABNORMAL, st::NOT_WRITABLE, 0);
        }
        let prepared = if self.state.transfer.format {
            self.check_format()
        } else {
            self.locate().and_then(|lba| self.load(lba))
        };
        match prepared {
            Ok(()) => self.state.phase = CommandPhase::Execution,
            Err((st1, st2)) => self.finish_transfer(st0::ABNORMAL, st1, st2),
        }
    }

    /// The logical sector of sector `sector` on the track under the current head, if the disk
    /// in the drive can be read there at the data rate selected.
    fn sector_lba(&self, sector: u8) -> Result<u64, Fault> {
        let t = &self.state.transfer;
        let d = self
            .state
            .drive_ref(t.drive)
            .ok_or((st::MISSING_ADDRESS_MARK, 0))?;
        let m = d.media.ok_or((st::MISSING_ADDRESS_MARK, 0))?;
        if !m.readable_at(self.state.data_rate) || d.track >= m.tracks || t.head >= m.heads {
            return Err((st::MISSING_ADDRESS_MARK, 0));
        }
        if !(1..=m.sectors).contains(&sector) {
            return Err((st::NO_DATA, 0));
        }
        let track = u64::from(d.track) * u64::from(m.heads) + u64::from(t.head);
        Ok(track * u64::from(m.sectors) + u64::from(sector) - 1)
    }

    /// The logical sector of the current ID, checked against the ID fields the controller
    /// would find (or not find) on the track.
    fn locate(&self) -> Result<u64, Fault> {
        let t = &self.state.transfer;
        let track = self.state.drive_ref(t.drive).map_or(0, |d| d.track);
        let lba = self.sector_lba(t.sector)?;
        if t.cylinder != track {
            let st2 = if t.cylinder == 0xff {
                st::BAD_CYLINDER
            } else {
                st::WRONG_CYLINDER
            };
            return Err((st::NO_DATA, st2));
        }
        if t.head_id != t.head || t.size != SIZE_CODE {
            return Err((st::NO_DATA, 0));
        }
        Ok(lba)
    }

    /// Fill the buffer for sector `lba`: its data for a read, zeroes to be written over.
    fn load(&mut self, lba: u64) -> Result<(), Fault> {
        let mut data = vec![0u8; SECTOR];
        let t = &self.state.transfer;
        if !t.write {
            let disk = self
                .disks
                .get_mut(usize::from(t.drive))
                .and_then(Option::as_mut);
            let read = disk.map(|d| d.read_at(lba * SECTOR as u64, &mut data));
            if !matches!(read, Some(Ok(()))) {
                return Err((st::NO_DATA, 0));
            }
        }
        let t = &mut self.state.transfer;
        t.buffer = data;
        t.pos = 0;
        Ok(())
    }

    /// Write the buffer to sector `lba`.
    fn store(&mut self, lba: u64) -> Result<(), Fault> {
        let t = &self.state.transfer;
        let disk = self
            .disks
            .get_mut(usize::from(t.drive))
            .and_then(Option::as_mut);
        match disk.map(|d| d.write_at(lba * SECTOR as u64, &t.buffer)) {
            Some(Ok(())) => Ok(()),
            _ => Err((st::NOT_WRITABLE, 0)),
        }
    }

    fn check_format(&mut self) -> Result<(), Fault> {
        let t = &self.state.transfer;
        let d = self
            .state
            .drive_ref(t.drive)
            .ok_or((st::MISSING_ADDRESS_MARK, 0))?;
        let m = d.media.ok_or((st::MISSING_ADDRESS_MARK, 0))?;
        let fits = t.size == SIZE_CODE && (1..=m.sectors).contains(&t.format_left);
        if !m.readable_at(self.state.data_rate) || d.track >= m.tracks || !fits {
            return Err((st::MISSING_ADDRESS_MARK, 0));
        }
        let t = &mut self.state.transfer;
        t.buffer = vec![0; 4];
        t.pos = 0;
        Ok(())
    }

    /// End the command with its seven result bytes and an interrupt. The ID reported is the
    /// sector after the last one transferred, as the datasheet's table gives it.
    pub(crate) fn finish_transfer(&mut self, st0_bits: u8, st1: u8, st2: u8) {
        let t = &self.state.transfer;
        let (mut c, mut h, mut r) = (t.cylinder, t.head_id, t.sector);
        if st0_bits & 0xc0 == 0 || st1 == st::END_OF_CYLINDER {
            if t.format {
                // FORMAT reports the last ID it wrote.
            } else if r < t.eot {
                r = r.wrapping_add(1);
            } else {
                if !t.multitrack || t.head == 1 {
                    c = c.wrapping_add(1);
                }
                h ^= u8::from(t.multitrack);
                r = 1;
            }
        }
        let st0 = st0_bits | t.head << 2 | t.drive;
        let result = vec![st0, st1, st2, c, h, r, t.size];
        self.state.transfer.buffer.clear();
        self.finish(result, true);
    }

    /// The buffer is complete (all of a sector, or a format ID); `tc` if the DMA count ran out.
    fn block_complete(&mut self, tc: bool) {
        if self.state.transfer.format {
            return self.format_block(tc);
        }
        if self.state.transfer.write {
            if let Err((st1, st2)) = self.locate().and_then(|lba| self.store(lba)) {
                return self.finish_transfer(st0::ABNORMAL, st1, st2);
            }
        }
        if tc {
            return self.finish_transfer(0, 0, 0);
        }
        let t = &mut self.state.transfer;
        if t.sector < t.eot {
            t.sector = t.sector.wrapping_add(1);
        } else if t.multitrack && t.head == 0 {
            t.head = 1;
            t.head_id ^= 1;
            t.sector = 1;
        } else {
            // The end of the track without TC: the controller stops with "end of cylinder".
            return self.finish_transfer(st0::ABNORMAL, st::END_OF_CYLINDER, 0);
        }
        if let Err((st1, st2)) = self.locate().and_then(|lba| self.load(lba)) {
            self.finish_transfer(st0::ABNORMAL, st1, st2);
        }
    }

    /// One 4-byte sector ID of FORMAT TRACK has arrived: write that sector with the filler.
    /// Only R picks the sector; the other ID bytes are reported back, not checked.
    fn format_block(&mut self, tc: bool) {
        let t = &mut self.state.transfer;
        let id = std::mem::take(&mut t.buffer);
        if let [c, h, r, n] = id[..] {
            (t.cylinder, t.head_id, t.sector, t.size) = (c, h, r, n);
        }
        let sector = t.sector;
        t.buffer = vec![t.filler; SECTOR];
        if let Err((st1, st2)) = self.sector_lba(sector).and_then(|lba| self.store(lba)) {
            return self.finish_transfer(st0::ABNORMAL, st1, st2);
        }
        let t = &mut self.state.transfer;
        t.format_left = t.format_left.saturating_sub(1);
        if tc || t.format_left == 0 {
            return self.finish_transfer(0, 0, 0);
        }
        t.buffer = vec![0; 4];
        t.pos = 0;
    }

    /// TC arrived in the middle of the buffer: a write completes its sector with zeroes.
    fn terminate_early(&mut self) {
        let t = &mut self.state.transfer;
        let pos = t.pos as usize;
        if t.write && !t.format {
            if let Some(rest) = t.buffer.get_mut(pos..) {
                rest.fill(0);
            }
            return self.block_complete(true);
        }
        self.finish_transfer(0, 0, 0);
    }

    /// Pull data through DMA channel 2 until it stalls or the command ends.
    pub(crate) fn run_dma(&mut self, dma: &mut Dma, ctx: &mut dyn DeviceContext) -> bool {
        let mut progressed = false;
        while self.state.phase == CommandPhase::Execution {
            let t = &mut self.state.transfer;
            let mut buffer = std::mem::take(&mut t.buffer);
            let pos = (t.pos as usize).min(buffer.len());
            let moved = dma.transfer(DMA_CHANNEL, &mut buffer[pos..], ctx);
            let full = pos + moved.bytes >= buffer.len();
            t.buffer = buffer;
            t.pos = (pos + moved.bytes) as u32;
            if full {
                self.block_complete(moved.terminal_count);
            } else if moved.terminal_count {
                self.terminate_early();
            } else {
                return progressed || moved.bytes > 0;
            }
            progressed = true;
        }
        progressed
    }

    /// Non-DMA mode: the host reads the next data byte from the FIFO.
    pub(crate) fn pio_read(&mut self) -> u8 {
        let t = &mut self.state.transfer;
        if t.write {
            return 0xff;
        }
        let byte = t.buffer.get(t.pos as usize).copied().unwrap_or(0);
        t.pos = t.pos.saturating_add(1);
        if t.pos as usize >= t.buffer.len() {
            self.block_complete(false);
        }
        byte
    }

    /// Non-DMA mode: the host writes the next data byte to the FIFO.
    pub(crate) fn pio_write(&mut self, value: u8) {
        let t = &mut self.state.transfer;
        if !t.write {
            return;
        }
        if let Some(slot) = t.buffer.get_mut(t.pos as usize) {
            *slot = value;
        }
        t.pos = t.pos.saturating_add(1);
        if t.pos as usize >= t.buffer.len() {
            self.block_complete(false);
        }
    }
}
