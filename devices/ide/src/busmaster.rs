//! Bus-master IDE DMA (the PIIX3's BAR4 engine): walks the guest's PRD table and moves sectors
//! between the drive and guest memory. A transfer runs whole when both the drive has a DMA
//! command and the guest has started the engine, in whichever order they come.

use crate::channel::{bm, Backends, ChannelState};
use crate::drive::{error, Backend, DriveState};
use nestor_device::DeviceContext;
use nestor_disk::SECTOR_SIZE;

/// A PRD table lives in one 64 KiB region: at most this many entries.
const MAX_PRD_ENTRIES: u32 = 8192;
/// Largest region one PRD entry describes.
const MAX_PRD_BYTES: u64 = 0x1_0000;

/// How a DMA transfer ended.
enum Outcome {
    /// All data moved; `table_done` when the last entry used had end-of-table set and was used
    /// up (otherwise the engine stays active, as the PIIX3 does for a larger table).
    Done { table_done: bool },
    /// The medium failed: the drive reports the error.
    Disk,
    /// A PRD entry or buffer outside guest memory, or a table smaller than the transfer.
    Bus,
}

/// One PRD entry: buffer address, byte count (0 = 64 KiB), end of table.
fn read_prd(ctx: &mut dyn DeviceContext, at: u64) -> Option<(u64, u64, bool)> {
    let mut entry = [0u8; 8];
    ctx.dma_read(at, &mut entry).ok()?;
    let addr = u64::from(u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) & !1);
    let count = u64::from(u16::from_le_bytes([entry[4], entry[5]]) & !1);
    let len = if count == 0 { MAX_PRD_BYTES } else { count };
    Some((addr, len, entry[7] & 0x80 != 0))
}

/// Move up to `len` bytes between the disk at `disk_pos` and guest memory at `mem`.
fn move_bytes(
    to_memory: bool,
    disk: &mut dyn nestor_disk::BlockBackend,
    disk_pos: u64,
    mem: u64,
    buf: &mut [u8],
    ctx: &mut dyn DeviceContext,
) -> Result<(), Outcome> {
    if to_memory {
        disk.read_at(disk_pos, buf).map_err(|_| Outcome::Disk)?;
        ctx.dma_write(mem, buf).map_err(|_| Outcome::Bus)
    } else {
        ctx.dma_read(mem, buf).map_err(|_| Outcome::Bus)?;
        disk.write_at(disk_pos, buf).map_err(|_| Outcome::Disk)
    }
}

/// Run the drive's waiting DMA command through the PRD table at `prd`.
fn transfer(
    drive: &DriveState,
    disk: &mut Backend,
    prd: u32,
    ctx: &mut dyn DeviceContext,
) -> Outcome {
    let Some(disk) = disk.as_deref_mut() else {
        return Outcome::Disk;
    };
    let to_memory = drive.phase == crate::drive::Phase::DmaIn;
    let sector = u64::from(SECTOR_SIZE);
    let mut remaining = drive.sectors_left.saturating_mul(sector);
    let mut disk_pos = drive.next_lba.saturating_mul(sector);
    let mut buf = vec![0u8; remaining.min(MAX_PRD_BYTES) as usize];
    let mut at = u64::from(prd);
    for _ in 0..MAX_PRD_ENTRIES {
        let Some((addr, len, last)) = read_prd(ctx, at) else {
            return Outcome::Bus;
        };
        let n = len.min(remaining);
        let chunk = &mut buf[..n as usize];
        if let Err(outcome) = move_bytes(to_memory, disk, disk_pos, addr, chunk, ctx) {
            return outcome;
        }
        disk_pos += n;
        remaining -= n;
        if remaining == 0 {
            return Outcome::Done {
                table_done: last && n == len,
            };
        }
        if last {
            return Outcome::Bus;
        }
        at = u64::from((at as u32).wrapping_add(8));
    }
    Outcome::Bus
}

impl ChannelState {
    /// If the engine is started and a drive has a DMA command waiting, run it to the end.
    pub(crate) fn run_dma(&mut self, disks: &mut Backends, ctx: &mut dyn DeviceContext) {
        if self.bm_command & bm::START == 0 || self.bm_status & bm::ACTIVE == 0 {
            return;
        }
        let Some(index) = self.dma_drive() else {
            return;
        };
        let prd = self.bm_prd;
        let Some(disk) = disks.get_mut(index) else {
            return;
        };
        let outcome = transfer(self.drive(index), disk, prd, ctx);
        let drive = self.drive(index);
        match outcome {
            Outcome::Done { table_done } => {
                drive.complete();
                if table_done {
                    self.bm_status &= !bm::ACTIVE;
                }
            }
            Outcome::Disk => {
                drive.regs.set_lba(drive.next_lba, drive.ext);
                drive.fail(error::UNC);
                self.bm_status &= !bm::ACTIVE;
            }
            Outcome::Bus => {
                drive.abort();
                self.bm_status = (self.bm_status & !bm::ACTIVE) | bm::ERROR;
            }
        }
    }
}
