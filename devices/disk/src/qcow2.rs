//! qcow2 images through the imago crate (its synchronous build: plain calls, no runtime).

use crate::{check_range, open_error, BlockBackend, DiskError};
use imago::file::File as ImagoFile;
use imago::qcow2::Qcow2;
use imago::{
    FormatAccess, FormatCreateBuilder, FormatDriverBuilder, PermissiveImplicitOpenGate, Storage,
    StorageCreateOptions,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A qcow2 image (with its backing chain, opened as the image header names it). Writes
/// allocate clusters in the image; [`BlockBackend::flush`] writes imago's cached metadata and
/// syncs the file, and dropping the backend flushes too.
pub struct Qcow2File {
    access: FormatAccess<ImagoFile>,
    path: PathBuf,
    len: u64,
    read_only: bool,
}

fn malformed(path: &Path, reason: impl Into<String>) -> DiskError {
    DiskError::Malformed {
        path: path.to_path_buf(),
        format: "qcow2",
        reason: reason.into(),
    }
}

/// Run an imago call, turning a panic inside it (a bug on some damaged image) into an error:
/// a bad image file must never bring the emulator down.
fn guarded<T>(path: &Path, f: impl FnOnce() -> std::io::Result<T>) -> Result<T, DiskError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(DiskError::Io),
        Err(_) => Err(malformed(path, "the qcow2 driver failed on this image")),
    }
}

impl Qcow2File {
    /// Open a qcow2 image; `read_only` opens it (and any backing file) without write access.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, DiskError> {
        // Tell a missing or unreadable file apart from a damaged one.
        std::fs::File::open(path).map_err(|e| open_error(path, e))?;
        let opened = catch_unwind(AssertUnwindSafe(|| {
            Qcow2::<ImagoFile>::builder_path(path)
                .write(!read_only)
                .open(PermissiveImplicitOpenGate::default())
        }));
        let qcow2 = match opened {
            Ok(Ok(q)) => q,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(open_error(path, e))
            }
            Ok(Err(e)) => return Err(malformed(path, e.to_string())),
            Err(_) => return Err(malformed(path, "the qcow2 driver failed on this image")),
        };
        let access = FormatAccess::new(qcow2);
        let len = access.size();
        Ok(Self {
            access,
            path: path.to_path_buf(),
            len,
            read_only,
        })
    }

    /// Create (or overwrite) an empty qcow2 image of `size` bytes at `path`.
    pub fn create(path: &Path, size: u64) -> Result<(), DiskError> {
        guarded(path, || {
            let opts = StorageCreateOptions::new()
                .filename(path)
                .size(0)
                .overwrite(true);
            let file = ImagoFile::create_open(opts)?;
            Qcow2::<ImagoFile>::create_builder(file).size(size).create()
        })
        .map_err(|e| match e {
            DiskError::Io(source) => DiskError::Open {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })
    }

    /// The image file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BlockBackend for Qcow2File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.len)?;
        guarded(&self.path, || self.access.read(&mut *buf, offset))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        check_range(offset, buf.len(), self.len)?;
        guarded(&self.path, || self.access.write(buf, offset))
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        if self.read_only {
            return Ok(());
        }
        guarded(&self.path, || {
            self.access.flush()?;
            self.access.sync()
        })
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_only(&self) -> bool {
        self.read_only
    }
}

impl Drop for Qcow2File {
    fn drop(&mut self) {
        // imago flushes its metadata when the access is dropped; sync it to the disk as well.
        if let Err(e) = self.flush() {
            tracing::error!(
                "qcow2 image {}: final flush failed: {e}",
                self.path.display()
            );
        }
    }
}
