//! Writing the ELF64 core: file header and program headers with `object`'s ELF writer, the
//! PT_NOTE segment, then guest RAM at a page-aligned offset with pages of zeros left as holes
//! (a sparse file). Written to a temporary file in the same directory, synced, renamed.

use crate::memory::GuestMemory;
use object::elf;
use object::write::elf::{FileHeader, ProgramHeader, Writer};
use object::Endianness;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const PAGE: u64 = 4096;

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// File length (holes included).
    pub file_len: u64,
    /// RAM bytes actually written (pages that are not all zero).
    pub ram_written: u64,
}

/// The headers and notes: everything before guest RAM, and the offset RAM starts at.
fn headers(notes: &[u8], mem: &GuestMemory) -> Result<(Vec<u8>, u64), String> {
    let regions = mem.ram_regions();
    let mut buf = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut buf);
    w.reserve_file_header();
    w.reserve_program_headers(1 + regions.len() as u32);
    let notes_off = w.reserve(notes.len(), 4);
    let ram_base = (w.reserved_len() as u64).div_ceil(PAGE) * PAGE;
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_NONE,
        abi_version: 0,
        e_type: elf::ET_CORE,
        e_machine: elf::EM_X86_64,
        e_entry: 0,
        e_flags: 0,
    })
    .map_err(|e| e.to_string())?;
    w.write_align_program_headers();
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_NOTE,
        p_flags: 0,
        p_offset: notes_off as u64,
        p_vaddr: 0,
        p_paddr: 0,
        p_filesz: notes.len() as u64,
        p_memsz: 0,
        p_align: 4,
    });
    for (paddr, offset, len) in regions {
        // Virtual = physical, so that gdb (which reads p_vaddr) shows physical memory.
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: elf::PF_R | elf::PF_W | elf::PF_X,
            p_offset: ram_base + offset,
            p_vaddr: paddr,
            p_paddr: paddr,
            p_filesz: len,
            p_memsz: len,
            p_align: PAGE,
        });
    }
    w.pad_until(notes_off);
    w.write(notes);
    Ok((buf, ram_base))
}

/// Zero runs shorter than this are written rather than skipped: fewer, larger writes.
const MIN_HOLE: usize = 16 * PAGE as usize;
/// The largest single write.
const MAX_WRITE: usize = 64 << 20;

/// Write RAM at `base`, leaving runs of zero pages as holes and coalescing the rest into
/// large writes.
fn write_ram(file: &File, base: u64, ram: &[u8]) -> std::io::Result<u64> {
    let mut written = 0u64;
    // The data run being gathered: its start and the end of its last non-zero page.
    let mut run: Option<(usize, usize)> = None;
    let mut flush = |from: usize, to: usize| -> std::io::Result<()> {
        file.write_all_at(&ram[from..to], base + from as u64)?;
        written += (to - from) as u64;
        Ok(())
    };
    for (i, page) in ram.chunks(PAGE as usize).enumerate() {
        let at = i * PAGE as usize;
        let end = at + page.len();
        let zero = page.iter().fold(0u8, |acc, &b| acc | b) == 0;
        run = match (zero, run) {
            (false, None) => Some((at, end)),
            (false, Some((from, _))) if end - from > MAX_WRITE => {
                flush(from, at)?;
                Some((at, end))
            }
            (false, Some((from, _))) => Some((from, end)),
            (true, Some((from, data_end))) if end - data_end >= MIN_HOLE => {
                flush(from, data_end)?;
                None
            }
            (true, run) => run,
        };
    }
    if let Some((from, data_end)) = run {
        flush(from, data_end)?;
    }
    Ok(written)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Write the snapshot to `path` atomically: a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, notes: &[u8], mem: &GuestMemory) -> std::io::Result<Written> {
    let (head, ram_base) = headers(notes, mem).map_err(std::io::Error::other)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&head)?;
        let ram_written = write_ram(&file, ram_base, mem.ram())?;
        let file_len = ram_base + mem.ram().len() as u64;
        file.set_len(file_len)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(Written {
            file_len,
            ram_written,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_runs_become_holes_and_short_gaps_are_written() {
        let page = PAGE as usize;
        let mut ram = vec![0u8; 64 * page];
        for p in [0, 1, 30, 32] {
            ram[p * page + 7] = p as u8 + 1;
        }
        let path = std::env::temp_dir().join(format!("nestor-ram-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let written = write_ram(&file, PAGE, &ram).unwrap();
        file.set_len(PAGE + ram.len() as u64).unwrap();
        // Pages 0-1, then 30-32 (the one-page gap at 31 is written, not skipped).
        assert_eq!(written, 5 * PAGE);
        assert_eq!(std::fs::read(&path).unwrap()[page..], ram[..]);
        std::fs::remove_file(&path).unwrap();
    }
}
