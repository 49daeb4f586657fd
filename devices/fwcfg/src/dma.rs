//! The DMA interface: each transfer is described by an `FWCfgDmaAccess` in guest memory,
//! `{ be32 control; be32 length; be64 address; }`, and reports back through its control word.

use crate::{key, FwCfg};
use nestor_device::DeviceContext;

/// `FWCfgDmaAccess.control` bits; the selector goes in bits 31:16 with [`control::SELECT`].
pub mod control {
    pub const ERROR: u32 = 0x01;
    pub const READ: u32 = 0x02;
    pub const SKIP: u32 = 0x04;
    pub const SELECT: u32 = 0x08;
    pub const WRITE: u32 = 0x10;
}

const DESCRIPTOR_LEN: usize = 16;
/// Zeros written per DMA call when a read runs past the end of an item.
const ZERO_CHUNK: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Skip,
}

impl FwCfg {
    /// Run the transfer described at guest physical `descriptor`. Every guest address is
    /// checked by the context; a failure sets the error bit and stops the transfer.
    pub(crate) fn dma_transfer(&mut self, descriptor: u64, ctx: &mut dyn DeviceContext) {
        let mut raw = [0u8; DESCRIPTOR_LEN];
        if ctx.dma_read(descriptor, &mut raw).is_err() {
            // Report where the control word would be, in case only part of it is out of RAM.
            let _ = ctx.dma_write(descriptor, &control::ERROR.to_be_bytes());
            return;
        }
        let ctl = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let length = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let mut address = [0u8; 8];
        address.copy_from_slice(&raw[8..]);
        if ctl & control::SELECT != 0 {
            self.select((ctl >> 16) as u16);
        }
        let op = if ctl & control::READ != 0 {
            Some(Op::Read)
        } else if ctl & control::WRITE != 0 {
            Some(Op::Write)
        } else if ctl & control::SKIP != 0 {
            Some(Op::Skip)
        } else {
            None
        };
        let ok = op.is_none_or(|op| self.dma_run(op, length, u64::from_be_bytes(address), ctx));
        let status = if ok { 0 } else { control::ERROR };
        let _ = ctx.dma_write(descriptor, &status.to_be_bytes());
    }

    /// Move `length` bytes between the selected item and guest memory at `address`.
    fn dma_run(
        &mut self,
        op: Op,
        mut length: u32,
        mut address: u64,
        ctx: &mut dyn DeviceContext,
    ) -> bool {
        while length > 0 {
            let offset = self.state.offset as usize;
            let available = self
                .item(self.state.selector)
                .map_or(0, |d| d.len().saturating_sub(offset));
            if available == 0 {
                // Past the end: reads give zeros, writes fail, skips do nothing.
                return match op {
                    Op::Read => zero_fill(ctx, address, length),
                    Op::Write => false,
                    Op::Skip => true,
                };
            }
            let n = length.min(u32::try_from(available).unwrap_or(u32::MAX));
            let ok = match op {
                Op::Read => self.dma_read_item(offset, n, address, ctx),
                Op::Write => n == length && self.dma_write_item(offset, n, address, ctx),
                Op::Skip => true,
            };
            if !ok {
                return false;
            }
            self.state.offset = self.state.offset.saturating_add(n);
            address = address.wrapping_add(u64::from(n));
            length -= n;
        }
        true
    }

    fn dma_read_item(
        &self,
        offset: usize,
        n: u32,
        address: u64,
        ctx: &mut dyn DeviceContext,
    ) -> bool {
        let data = self
            .item(self.state.selector)
            .and_then(|d| d.get(offset..offset.checked_add(n as usize)?));
        data.is_some_and(|d| ctx.dma_write(address, d).is_ok())
    }

    /// A write lands only in a writable file, and only if it fits entirely.
    fn dma_write_item(
        &mut self,
        offset: usize,
        n: u32,
        address: u64,
        ctx: &mut dyn DeviceContext,
    ) -> bool {
        let k = self.state.selector & !key::WRITE_CHANNEL;
        let Some(index) = k
            .checked_sub(key::FILE_FIRST)
            .filter(|_| k & key::ARCH_LOCAL == 0)
        else {
            return false;
        };
        let Some(file) = self.files.get(usize::from(index)).filter(|f| f.writable) else {
            return false;
        };
        let target = self
            .state
            .writable_files
            .get_mut(&file.name)
            .and_then(|d| d.get_mut(offset..offset.checked_add(n as usize)?));
        target.is_some_and(|t| ctx.dma_read(address, t).is_ok())
    }
}

fn zero_fill(ctx: &mut dyn DeviceContext, mut address: u64, mut length: u32) -> bool {
    let zeros = [0u8; ZERO_CHUNK];
    while length > 0 {
        let n = length.min(ZERO_CHUNK as u32);
        if ctx.dma_write(address, &zeros[..n as usize]).is_err() {
            return false;
        }
        address = address.wrapping_add(u64::from(n));
        length -= n;
    }
    true
}
