//! Disk images on the host, as Nestor's storage controllers (IDE, floppy, later virtio-blk)
//! see them: byte-addressed block devices behind the [`BlockBackend`] trait.
//!
//! These are host resources, not device models: a controller keeps its guest-visible state in
//! its own state struct and holds a `Box<dyn BlockBackend>` beside it, re-attached on restore.
//!
//! Backends: [`RawFile`] (a plain image file, read-only or read-write), [`Qcow2File`] (qcow2
//! through the imago crate), [`Overlay`] (copy-on-write in memory over any other backend: the
//! `snapshot` mode, where the image on disk is never written) and [`MemDisk`] (RAM, for tests).
//! [`open`] picks the format from the file's first bytes.
//!
//! ```
//! use nestor_disk::{BlockBackend, MemDisk, Overlay};
//!
//! let base = MemDisk::new(vec![0xaa; 4096]);
//! let mut disk = Overlay::new(Box::new(base.clone()));
//! disk.write_at(512, &[1, 2, 3]).unwrap();
//! let mut buf = [0; 4];
//! disk.read_at(511, &mut buf).unwrap();
//! assert_eq!(buf, [0xaa, 1, 2, 3]);
//! assert_eq!(base.contents()[512], 0xaa, "the base image is untouched");
//! ```

mod mem;
mod overlay;
mod qcow2;
mod raw;
#[cfg(test)]
mod tests;

pub use mem::MemDisk;
pub use overlay::Overlay;
pub use qcow2::Qcow2File;
pub use raw::RawFile;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes in a hard-disk or floppy sector.
pub const SECTOR_SIZE: u32 = 512;
/// Bytes in a CD-ROM (ISO 9660) logical block, as ATAPI addresses it.
pub const CD_SECTOR_SIZE: u32 = 2048;
/// The first four bytes of every qcow2 image.
pub const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

/// A disk image as a controller uses it: random-access bytes of a fixed length.
///
/// Reads and writes must lie inside `0..len()`; a request that does not is an
/// [`DiskError::OutOfRange`] error and moves no data. Controllers check guest-supplied
/// addresses before calling, but a backend never trusts them either.
pub trait BlockBackend: Send {
    /// Fill `buf` from the image at byte `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Write `buf` to the image at byte `offset` (an error on a read-only image).
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError>;
    /// Make every write so far durable (fsync for files). The guest's FLUSH CACHE.
    fn flush(&mut self) -> Result<(), DiskError>;
    /// Size of the image in bytes.
    fn len(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool;
    /// Whether the image holds no byte at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Size of the image's logical block: 512, or 2048 for a CD-ROM image.
    fn sector_size(&self) -> u32 {
        SECTOR_SIZE
    }
    /// Whole sectors in the image.
    fn sectors(&self) -> u64 {
        self.len() / u64::from(self.sector_size().max(1))
    }
}

impl<B: BlockBackend + ?Sized> BlockBackend for Box<B> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        (**self).write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        (**self).flush()
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
}

/// Why a disk image could not be opened or accessed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk image {path}: no such file")]
    NotFound { path: PathBuf },
    #[error("disk image {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("disk image {path} is not a valid {format} image: {reason}")]
    Malformed {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("access to bytes {offset:#x}+{len:#x} is outside the image ({size:#x} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("the image is read-only")]
    ReadOnly,
    #[error("disk I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Check that `len` bytes at `offset` lie inside an image of `size` bytes.
pub fn check_range(offset: u64, len: usize, size: u64) -> Result<(), DiskError> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DiskError::OutOfRange { offset, len, size }),
    }
}

/// The container format of an image file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Decide from the first bytes: qcow2 magic, else raw.
    #[default]
    Auto,
    Raw,
    Qcow2,
}

/// How [`open`] opens an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    pub format: Format,
    /// Refuse guest writes (the file is opened read-only).
    pub read_only: bool,
    /// Keep guest writes in a memory overlay; the file is opened read-only and never changes.
    pub snapshot: bool,
    /// Logical block size reported by [`BlockBackend::sector_size`]: 512, or 2048 for ISOs.
    pub sector_size: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            format: Format::Auto,
            read_only: false,
            snapshot: false,
            sector_size: SECTOR_SIZE,
        }
    }
}

impl OpenOptions {
    /// Options for a CD-ROM image: raw ISO 9660, 2048-byte blocks, read-only.
    #[must_use]
    pub fn cdrom() -> Self {
        Self {
            read_only: true,
            sector_size: CD_SECTOR_SIZE,
            ..Self::default()
        }
    }
}

/// Open a disk image by path, detecting its format unless `opts.format` names one.
pub fn open(path: &Path, opts: OpenOptions) -> Result<Box<dyn BlockBackend>, DiskError> {
    let format = match opts.format {
        Format::Auto => detect_format(path)?,
        f => f,
    };
    // A snapshot never writes the image: open it read-only underneath the overlay.
    let file_read_only = opts.read_only || opts.snapshot;
    let base: Box<dyn BlockBackend> = match format {
        Format::Qcow2 => Box::new(Qcow2File::open(path, file_read_only)?),
        Format::Raw | Format::Auto => Box::new(RawFile::open(path, file_read_only)?),
    };
    let base: Box<dyn BlockBackend> = if opts.sector_size == SECTOR_SIZE {
        base
    } else {
        Box::new(WithSectorSize {
            inner: base,
            sector_size: opts.sector_size,
        })
    };
    if opts.snapshot {
        let mut overlay = Overlay::new(base);
        overlay.set_read_only(opts.read_only);
        Ok(Box::new(overlay))
    } else {
        Ok(base)
    }
}

/// Read the first bytes of a file: qcow2 if they are the qcow2 magic, raw otherwise.
pub fn detect_format(path: &Path) -> Result<Format, DiskError> {
    let mut file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    // A file shorter than the magic is raw (tiny, but valid).
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(open_error(path, e)),
        }
    }
    Ok(if got == magic.len() && magic == QCOW2_MAGIC {
        Format::Qcow2
    } else {
        Format::Raw
    })
}

fn open_error(path: &Path, source: std::io::Error) -> DiskError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DiskError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        DiskError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Any backend with another logical block size (an ISO opened for a CD-ROM drive).
struct WithSectorSize {
    inner: Box<dyn BlockBackend>,
    sector_size: u32,
}

impl BlockBackend for WithSectorSize {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.inner.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.inner.flush()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
}
