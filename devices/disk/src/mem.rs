//! A disk in host memory, for tests: clones share the bytes, so a test keeps one clone to look
//! at what the device wrote and how often it flushed.

use crate::{check_range, BlockBackend, DiskError, SECTOR_SIZE};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    data: Vec<u8>,
    flushes: usize,
}

/// Bytes in memory behind a [`BlockBackend`]; clones share them.
#[derive(Clone, Debug)]
pub struct MemDisk {
    inner: Arc<Mutex<Inner>>,
    read_only: bool,
    sector_size: u32,
}

impl MemDisk {
    /// A read-write disk holding `data`.
    #[must_use]
    pub fn new(data: Vec<u8>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner { data, flushes: 0 })),
            read_only: false,
            sector_size: SECTOR_SIZE,
        }
    }

    /// The same bytes, refusing writes through this handle.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// The same bytes with another logical block size (2048 for a CD image).
    #[must_use]
    pub fn with_sector_size(mut self, sector_size: u32) -> Self {
        self.sector_size = sector_size;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already; keep the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the disk's bytes now.
    #[must_use]
    pub fn contents(&self) -> Vec<u8> {
        self.lock().data.clone()
    }

    /// How many times [`BlockBackend::flush`] was called through any clone.
    #[must_use]
    pub fn flushes(&self) -> usize {
        self.lock().flushes
    }
}

impl BlockBackend for MemDisk {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let inner = self.lock();
        check_range(offset, buf.len(), inner.data.len() as u64)?;
        let start = offset as usize;
        buf.copy_from_slice(&inner.data[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        let mut inner = self.lock();
        check_range(offset, buf.len(), inner.data.len() as u64)?;
        let start = offset as usize;
        inner.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.lock().flushes += 1;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.lock().data.len() as u64
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn sector_size(&self) -> u32 {
        self.sector_size
    }
}
