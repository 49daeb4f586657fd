//! Copy-on-write in memory over another backend: QEMU's `-snapshot`. The guest sees its writes;
//! the image underneath is only ever read, and the writes vanish with the process.

use crate::{check_range, BlockBackend, DiskError};
use std::collections::BTreeMap;

/// Granularity of the overlay: a write copies the whole chunk it touches from the base once.
const CHUNK: u64 = 4096;

/// Copy-on-write overlay; see the crate example.
pub struct Overlay {
    base: Box<dyn BlockBackend>,
    /// Chunk index → the chunk's bytes as the guest wrote them.
    chunks: BTreeMap<u64, Box<[u8]>>,
    read_only: bool,
}

impl Overlay {
    /// An overlay over `base`, which is never written.
    #[must_use]
    pub fn new(base: Box<dyn BlockBackend>) -> Self {
        Self {
            base,
            chunks: BTreeMap::new(),
            read_only: false,
        }
    }

    /// Refuse guest writes altogether (an overlay over a read-only drive).
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Bytes held in memory for the guest's writes.
    #[must_use]
    pub fn overlay_bytes(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK
    }

    /// Split `offset..offset+len` into (chunk index, offset in chunk, length) pieces.
    fn pieces(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
        let end = offset + len as u64;
        let mut pos = offset;
        std::iter::from_fn(move || {
            if pos >= end {
                return None;
            }
            let index = pos / CHUNK;
            let within = (pos % CHUNK) as usize;
            let take = (CHUNK - pos % CHUNK).min(end - pos) as usize;
            pos += take as u64;
            Some((index, within, take))
        })
    }

    /// The chunk's bytes, copied from the base on first write.
    fn chunk_mut(&mut self, index: u64) -> Result<&mut [u8], DiskError> {
        if !self.chunks.contains_key(&index) {
            let mut bytes = vec![0u8; CHUNK as usize].into_boxed_slice();
            let start = index * CHUNK;
            let valid = (self.base.len() - start).min(CHUNK) as usize;
            self.base.read_at(start, &mut bytes[..valid])?;
            self.chunks.insert(index, bytes);
        }
        Ok(self
            .chunks
            .get_mut(&index)
            .map_or(&mut [][..], |c| &mut c[..]))
    }
}

impl BlockBackend for Overlay {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.base.len())?;
        let mut done = 0;
        for (index, within, take) in Self::pieces(offset, buf.len()) {
            let out = &mut buf[done..done + take];
            match self.chunks.get(&index) {
                Some(chunk) => out.copy_from_slice(&chunk[within..within + take]),
                None => self.base.read_at(index * CHUNK + within as u64, out)?,
            }
            done += take;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.base.len())?;
        let mut done = 0;
        for (index, within, take) in Self::pieces(offset, buf.len()) {
            let chunk = self.chunk_mut(index)?;
            chunk[within..within + take].copy_from_slice(&buf[done..done + take]);
            done += take;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        // Nothing is meant to last: the writes live and die in memory.
        Ok(())
    }

    fn len(&self) -> u64 {
        self.base.len()
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn sector_size(&self) -> u32 {
        self.base.sector_size()
    }
}
