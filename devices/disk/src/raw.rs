//! Raw image files: the image is the disk, byte for byte.

use crate::{check_range, open_error, BlockBackend, DiskError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A raw image file. Writes go straight to the file; [`BlockBackend::flush`] and dropping the
/// backend sync them to the disk, so every write reaches the image before the process exits.
#[derive(Debug)]
pub struct RawFile {
    file: File,
    path: PathBuf,
    len: u64,
    read_only: bool,
    /// Written since the last sync.
    dirty: bool,
}

impl RawFile {
    /// Open `path` read-write, or read-only when `read_only` (then the file is never written).
    pub fn open(path: &Path, read_only: bool) -> Result<Self, DiskError> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        let meta = file.metadata().map_err(|e| open_error(path, e))?;
        if meta.is_dir() {
            return Err(DiskError::Open {
                path: path.to_path_buf(),
                source: std::io::Error::other("is a directory"),
            });
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len: meta.len(),
            read_only,
            dirty: false,
        })
    }

    /// The file this backend reads.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BlockBackend for RawFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset)?;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.len)?;
        self.file.write_all_at(buf, offset)?;
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

impl Drop for RawFile {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("disk image {}: final sync failed: {e}", self.path.display());
        }
    }
}
