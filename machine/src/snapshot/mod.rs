//! Suspend and resume: the whole machine as an ELF64 core file that gdb and crash open.
//!
//! Layout (as QEMU's `dump-guest-memory`): one PT_NOTE segment, then one page-aligned PT_LOAD
//! per guest RAM region (p_paddr = p_vaddr = guest physical address), RAM stored contiguously
//! so that a resume maps it copy-on-write in one piece. The notes: Nestor's header (magic,
//! format version, CRC-32 of every later note), per vCPU an NT_PRSTATUS "CORE" note and a
//! "QEMU" CPU-state note, then Nestor's: the full CpuState, the configuration, the clock, the
//! board, the BIOS's host side, the firmware image and one note per device keyed by its
//! stable name with its state version.
//!
//! In deterministic mode a resumed run prints exactly what a run that never stopped prints
//! after the snapshot point: stopping the run loop is invisible to the guest (a device access
//! that moves a timer deadline into the running slice ends the slice there, see
//! `Board::begin_slice`). Known limits: a realtime snapshot's clock carries on from the saved
//! time; writes kept in memory by `--snapshot` drives are not saved.

mod config;
mod notes;
mod qemu;
mod reader;
mod state;
mod writer;

pub use config::{DriveRecord, FileStamp, KernelRecord, SlotRecord, SnapshotConfig};
pub use notes::FORMAT_VERSION;

use crate::machine::{Machine, MachineConfig, MachineError};
use nestor_device::CharBackend;
use std::path::Path;

/// Why a file is not a snapshot this build can resume.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("not a Nestor snapshot: {0}")]
    Foreign(String),
    #[error("the snapshot is truncated: {0}")]
    Truncated(String),
    #[error("the snapshot is corrupted: {0}")]
    Corrupted(String),
    #[error("written by a newer Nestor (snapshot format {found}; this build reads formats up to {supported})")]
    Newer { found: u32, supported: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: Invalid },
    /// Reported without a path; [`resume`] adds it.
    #[error(transparent)]
    Unplaced(#[from] Invalid),
    #[error(
        "host files changed since the snapshot was taken (resume with --force to ignore): {0}"
    )]
    FilesChanged(String),
    #[error("cannot capture the machine state: {0}")]
    Capture(String),
    #[error("device {0}: {1}")]
    Device(String, String),
    #[error(
        "the guest uses {features}, which the {engine} engine's CPU model lacks on this host: \
         resume under another engine, or snapshot a guest booted with a plan that includes \
         {engine} (--engine-plan ...,{engine}), whose CPU model offers only what {engine} does"
    )]
    CpuFeatures { features: String, engine: String },
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// Guest RAM to map copy-on-write from a file (see [`MachineConfig::ram_file`]).
pub struct RamFile {
    pub file: std::fs::File,
    /// Where RAM starts in the file (page-aligned).
    pub offset: u64,
}

/// What a save did, for reports and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveReport {
    pub file_len: u64,
    /// RAM bytes written (pages of zeros are holes in the file).
    pub ram_written: u64,
}

/// A change the caller makes to the rebuilt configuration before the machine is built.
pub type AdjustConfig = Box<dyn FnOnce(&mut MachineConfig)>;

/// Host-side things a resume takes from the caller rather than the file.
#[derive(Default)]
pub struct ResumeOptions {
    pub serial: [Option<Box<dyn CharBackend>>; 4],
    pub debugcon: Option<Box<dyn CharBackend>>,
    pub post_log: Option<Box<dyn CharBackend>>,
    pub trace: bool,
    /// Resume even if a disk image or kernel file changed since the snapshot.
    pub force: bool,
    /// Host-side choices applied to the rebuilt configuration (the engine, for instance).
    pub adjust: Option<AdjustConfig>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |error| SnapshotError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// Save `machine` to `path` (atomically). Call between runs, never inside one.
pub fn save(machine: &Machine, path: &Path) -> Result<SaveReport, SnapshotError> {
    let mut config = machine.snapshot_config.clone();
    config.stamp_files().map_err(io_error(path))?;
    let (body, count) = state::capture(machine, &config)?;
    let mem = &machine.board.wires.mem;
    let segment = notes::seal(&body, count, mem.ram_bytes());
    let w = writer::write_atomic(path, &segment, mem).map_err(io_error(path))?;
    Ok(SaveReport {
        file_len: w.file_len,
        ram_written: w.ram_written,
    })
}

/// Where RAM starts in the file, after checking the PT_LOAD segments are exactly the regions
/// of a machine with `ram_bytes` of RAM, stored contiguously inside the file.
fn ram_base(loads: &[reader::Load], ram_bytes: u64, file_len: u64) -> Result<u64, Invalid> {
    let regions = crate::memory::ram_regions(ram_bytes);
    let base = loads.first().map_or(0, |l| l.offset);
    let layout_ok = loads.len() == regions.len()
        && loads.iter().zip(&regions).all(|(l, &(paddr, off, len))| {
            l.paddr == paddr && l.len == len && Some(l.offset) == base.checked_add(off)
        });
    if !layout_ok {
        return Err(Invalid::Corrupted(
            "the RAM segments do not match the configured RAM size".into(),
        ));
    }
    if base.checked_add(ram_bytes).is_none_or(|end| end > file_len) {
        return Err(Invalid::Truncated(
            "guest RAM ends past the end of the file".into(),
        ));
    }
    Ok(base)
}

/// Everything [`resume`] checks before it builds anything, from the file's bytes.
fn check(data: &[u8]) -> Result<(state::Decoded, u64), Invalid> {
    let parsed = reader::parse(data)?;
    let decoded = state::decode(&parsed.notes)?;
    let ram_bytes = decoded.config.ram_mib.checked_shl(20).unwrap_or(u64::MAX);
    if !(1..=64 << 10).contains(&decoded.config.ram_mib) || parsed.header.ram_bytes != ram_bytes {
        return Err(Invalid::Corrupted("the RAM size notes disagree".into()));
    }
    let base = ram_base(&parsed.loads, ram_bytes, data.len() as u64)?;
    Ok((decoded, base))
}

/// The configuration recorded in a snapshot file (validated like a resume would).
pub fn read_config(path: &Path) -> Result<SnapshotConfig, SnapshotError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    // SAFETY: read-only mapping of a file we do not write; only read through slices.
    let data = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))?;
    let (decoded, _) = check(&data).map_err(|problem| SnapshotError::Invalid {
        path: path.display().to_string(),
        problem,
    })?;
    Ok(decoded.config)
}

/// Build the machine a snapshot describes, in the state it was saved in. Guest RAM is mapped
/// copy-on-write from the file, so the time this takes does not grow with the RAM size.
pub fn resume(path: &Path, opts: ResumeOptions) -> Result<Machine, SnapshotError> {
    let place = |e: SnapshotError| match e {
        SnapshotError::Unplaced(problem) => SnapshotError::Invalid {
            path: path.display().to_string(),
            problem,
        },
        other => other,
    };
    resume_file(path, opts).map_err(place)
}

fn resume_file(path: &Path, opts: ResumeOptions) -> Result<Machine, SnapshotError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    // SAFETY: read-only mapping of a file we do not write; only read through slices.
    let data = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))?;
    let (decoded, base) = check(&data)?;
    let config = &decoded.config;
    let changed = config.changed_files();
    if !changed.is_empty() && !opts.force {
        return Err(SnapshotError::FilesChanged(changed.join("; ")));
    }
    let mut mc = config.machine_config(decoded.rom.clone());
    mc.serial = opts.serial;
    mc.debugcon = opts.debugcon;
    mc.post_log = opts.post_log;
    mc.trace = opts.trace;
    if config.bios.is_some() {
        // The BIOS may not have reached the kernel yet; without a BIOS it is already in RAM.
        mc.kernel = config.kernel_spec().map_err(io_error(path))?;
    }
    if let Some(adjust) = opts.adjust {
        adjust(&mut mc);
    }
    // RAM must be the file's before the engine is built: KVM maps it into the guest.
    mc.ram_file = Some(RamFile { file, offset: base });
    let mut machine = Machine::new(mc)?;
    machine.snapshot_config = config.clone();
    state::apply(&mut machine, decoded)?;
    Ok(machine)
}

#[cfg(test)]
mod tests;
