//! Parser for MOO ("Machine Opcode Operation") files, the binary format of the
//! SingleStepTests 80286 suite in `../shared/testdata/sst80286/` (format: `MOO_FORMAT.md`
//! there, version 1.1).
//!
//! A file is a sequence of chunks (`4-byte ASCII id`, `u32 length`, payload), all
//! little-endian. The parser advances by each chunk's length field, so chunks may grow
//! in later format revisions, and it skips chunk types it does not know (the suite carries
//! an undocumented per-test `GMET` chunk, for example). Bus-cycle records (`CYCL`) and the
//! 386's effective-address records (`EA32`) are skipped too: nothing here needs them.
//! Malformed input (a chunk running past its parent, a missing required chunk, a test
//! count that disagrees with the header) is an [`MooError`], never a panic.
//!
//! ```no_run
//! use nestor_testsuite::moo::{MooFile, Reg16};
//! let file = MooFile::from_path("../shared/testdata/sst80286/v1_real_mode/00.MOO.gz")?;
//! let test = &file.tests[0];
//! let ip = test.init.regs.get(Reg16::Ip);
//! let changed_flags = test.fina.regs.get(Reg16::Flags); // None: flags unchanged
//! # Ok::<(), nestor_testsuite::moo::MooError>(())
//! ```

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use crate::regs::{Reg16, Reg32, Regs16, Regs32};

/// What can go wrong reading a MOO file.
#[derive(Debug, thiserror::Error)]
pub enum MooError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    #[error("not a MOO file: it starts with {0:?}, not a \"MOO \" chunk")]
    NotMoo(String),
    #[error("truncated {what} at byte {offset}: {needed} bytes needed, {available} left")]
    Truncated {
        what: String,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("test {index}: no {chunk} chunk")]
    MissingChunk { index: u32, chunk: &'static str },
    #[error("the header announces {declared} tests, the file holds {found}")]
    TestCount { declared: u32, found: usize },
}

pub type Result<T> = std::result::Result<T, MooError>;

/// A parsed MOO file.
#[derive(Clone, Debug)]
pub struct MooFile {
    /// Format version from the `MOO ` header (major, minor).
    pub version: (u8, u8),
    /// CPU id from the header, e.g. "C286" (Harris 80C286), trailing spaces removed.
    pub cpu_name: String,
    /// Test count announced by the header (checked against `tests.len()`).
    pub declared_tests: u32,
    /// The `META` chunk, if present.
    pub meta: Option<MooMeta>,
    /// A top-level `RMSK`: undefined-bit masks that apply to every test of the file.
    pub reg_masks: Option<Regs16>,
    /// A top-level `RM32`: the same for 32-bit register files.
    pub reg_masks32: Option<Regs32>,
    /// The tests, in file order.
    pub tests: Vec<MooTest>,
}

/// The `META` chunk: data common to all tests of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MooMeta {
    /// Version of the test collection (not of the format).
    pub major_version: u8,
    pub minor_version: u8,
    /// CPU model enumeration.
    pub cpu_type: u8,
    /// The opcode under test, 0xFFFF_FFFF when the file mixes opcodes. For a group opcode
    /// such as `F6.6` this is the first byte only (0xF6); the reg field is in the file name.
    pub opcode: u32,
    /// Mnemonic, trailing spaces removed (e.g. "div").
    pub mnemonic: String,
    pub test_count: u32,
    pub file_seed: u64,
    /// CPU mode; 0 is real mode.
    pub cpu_mode: u8,
}

/// One test: an instruction, the state before it, what changed after it.
#[derive(Clone, Debug)]
pub struct MooTest {
    /// 0-based index from the `TEST` chunk.
    pub index: u32,
    /// Readable disassembly, e.g. "add [bx+0Eh],bl".
    pub name: String,
    /// The instruction bytes as the suite records them: prefixes, the instruction, and the
    /// HLT (F4) that ends the test.
    pub bytes: Vec<u8>,
    /// Initial state: every register, and the RAM bytes the test uses.
    pub init: CpuSnapshot,
    /// Final state: only the registers and RAM bytes that changed.
    pub fina: CpuSnapshot,
    /// Present if the instruction raised an exception or interrupt.
    pub exception: Option<MooException>,
    /// SHA-1 identifying the test (see [`MooTest::hash_hex`] and revocation lists).
    pub hash: [u8; 20],
}

impl MooTest {
    /// The hash as 40 lowercase hex digits, the form revocation lists use.
    #[must_use]
    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// True if `revoked` (see [`parse_revocation_list`]) names this test.
    #[must_use]
    pub fn is_revoked(&self, revoked: &HashSet<String>) -> bool {
        revoked.contains(&self.hash_hex())
    }
}

/// A CPU state (`INIT` or `FINA` chunk).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// 16-bit register file (`REGS`); empty mask if the chunk is absent.
    pub regs: Regs16,
    /// 32-bit register file (`RG32`, 386 tests); empty mask if absent.
    pub regs32: Regs32,
    /// `RMSK` in a final state: masks of register bits left undefined by this test.
    pub reg_masks: Option<Regs16>,
    /// `RM32` in a final state.
    pub reg_masks32: Option<Regs32>,
    /// RAM bytes (physical address, value), in file order.
    pub ram: Vec<(u32, u8)>,
    /// Prefetch queue contents (`QUEU`), empty if absent.
    pub queue: Vec<u8>,
}

/// The `EXCP` chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MooException {
    /// Exception or interrupt vector.
    pub number: u8,
    /// Physical address of the FLAGS word the CPU pushed: mask undefined flags there
    /// (bytes `flag_addr` and `flag_addr + 1`) before comparing final RAM.
    pub flag_addr: u32,
}

/// A little-endian reader over one chunk's payload; `base` is its offset in the file.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], base: usize, what: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            base,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(MooError::Truncated {
                what: self.what.to_string(),
                offset: self.base + self.pos,
                needed: n,
                available,
            });
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `u32` count followed by that many `size`-byte items: the items' bytes.
    fn counted(&mut self, size: usize) -> Result<&'a [u8]> {
        let count = self.u32()? as usize;
        let len = count.saturating_mul(size);
        self.take(len)
    }
}

/// One chunk: its id, payload and the payload's offset in the file.
struct Chunk<'a> {
    id: [u8; 4],
    payload: &'a [u8],
    offset: usize,
}

impl Chunk<'_> {
    fn reader(&self, what: &'static str) -> Reader<'_> {
        Reader::new(self.payload, self.offset, what)
    }
}

/// Splits `data` (starting at file offset `base`) into chunks.
fn chunks(data: &[u8], base: usize) -> Result<Vec<Chunk<'_>>> {
    let mut reader = Reader::new(data, base, "chunk header");
    let mut out = Vec::new();
    while reader.pos < data.len() {
        let id = reader.array::<4>()?;
        let len = reader.u32()? as usize;
        let offset = base + reader.pos;
        reader.what = "chunk payload";
        let payload = reader.take(len)?;
        reader.what = "chunk header";
        out.push(Chunk {
            id,
            payload,
            offset,
        });
    }
    Ok(out)
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1F, 0x8B])
}

impl MooFile {
    /// Reads and parses a file; gzip-compressed files (`.MOO.gz`) are recognised by their
    /// magic number and decompressed.
    pub fn from_path(path: impl AsRef<Path>) -> Result<MooFile> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| MooError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        MooFile::from_bytes(&data)
    }

    /// Parses a file's contents, gzip-compressed or not.
    pub fn from_bytes(data: &[u8]) -> Result<MooFile> {
        if is_gzip(data) {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut raw)
                .map_err(MooError::Gzip)?;
            MooFile::parse(&raw)
        } else {
            MooFile::parse(data)
        }
    }

    /// Parses uncompressed MOO data.
    pub fn parse(data: &[u8]) -> Result<MooFile> {
        let top = chunks(data, 0)?;
        let header = match top.first() {
            Some(chunk) if &chunk.id == b"MOO " => chunk,
            Some(chunk) => return Err(MooError::NotMoo(ascii(&chunk.id))),
            None => return Err(MooError::NotMoo(String::new())),
        };
        let mut r = header.reader("MOO header");
        let version = (r.u8()?, r.u8()?);
        r.take(2)?; // reserved
        let declared_tests = r.u32()?;
        let cpu_name = ascii(r.take(4)?);

        let mut file = MooFile {
            version,
            cpu_name,
            declared_tests,
            meta: None,
            reg_masks: None,
            reg_masks32: None,
            tests: Vec::with_capacity(declared_tests.min(100_000) as usize),
        };
        for chunk in &top[1..] {
            match &chunk.id {
                b"META" => file.meta = Some(parse_meta(chunk)?),
                b"RMSK" => file.reg_masks = Some(parse_regs16(chunk)?),
                b"RM32" => file.reg_masks32 = Some(parse_regs32(chunk)?),
                b"TEST" => file.tests.push(parse_test(chunk)?),
                _ => {} // unknown: skipped by its length
            }
        }
        if file.tests.len() != declared_tests as usize {
            return Err(MooError::TestCount {
                declared: declared_tests,
                found: file.tests.len(),
            });
        }
        Ok(file)
    }
}

fn parse_meta(chunk: &Chunk<'_>) -> Result<MooMeta> {
    let mut r = chunk.reader("META");
    Ok(MooMeta {
        major_version: r.u8()?,
        minor_version: r.u8()?,
        cpu_type: r.u8()?,
        opcode: r.u32()?,
        mnemonic: ascii(r.take(8)?),
        test_count: r.u32()?,
        file_seed: r.u64()?,
        cpu_mode: r.u8()?,
    })
}

/// `REGS` and `RMSK`: a `u16` mask, then a `u16` per set bit, lowest bit first.
fn parse_regs16(chunk: &Chunk<'_>) -> Result<Regs16> {
    let mut r = chunk.reader("REGS");
    let mask = r.u16()?;
    let mut regs = Regs16::default();
    for bit in 0..16 {
        if mask & (1 << bit) != 0 {
            let value = r.u16()?;
            // Bits beyond the documented 14 registers: value read (to stay in step), dropped.
            if let Some(reg) = Reg16::from_bit(bit) {
                regs.set(reg, value);
            }
        }
    }
    Ok(regs)
}

/// `RG32` and `RM32`: a `u32` mask, then a `u32` per set bit, lowest bit first.
fn parse_regs32(chunk: &Chunk<'_>) -> Result<Regs32> {
    let mut r = chunk.reader("RG32");
    let mask = r.u32()?;
    let mut regs = Regs32::default();
    for bit in 0..32 {
        if mask & (1 << bit) != 0 {
            let value = r.u32()?;
            if let Some(reg) = Reg32::from_bit(bit) {
                regs.set(reg, value);
            }
        }
    }
    Ok(regs)
}

fn parse_snapshot(chunk: &Chunk<'_>) -> Result<CpuSnapshot> {
    let mut snap = CpuSnapshot::default();
    for sub in chunks(chunk.payload, chunk.offset)? {
        match &sub.id {
            b"REGS" => snap.regs = parse_regs16(&sub)?,
            b"RG32" => snap.regs32 = parse_regs32(&sub)?,
            b"RMSK" => snap.reg_masks = Some(parse_regs16(&sub)?),
            b"RM32" => snap.reg_masks32 = Some(parse_regs32(&sub)?),
            b"RAM " => {
                let entries = sub.reader("RAM").counted(5)?;
                snap.ram = entries
                    .chunks_exact(5)
                    .map(|e| (u32::from_le_bytes([e[0], e[1], e[2], e[3]]), e[4]))
                    .collect();
            }
            b"QUEU" => snap.queue = sub.reader("QUEU").counted(1)?.to_vec(),
            _ => {}
        }
    }
    Ok(snap)
}

/// The pieces of a `TEST` chunk as they are found; [`parse_test`] checks they are all there.
#[derive(Default)]
struct TestParts {
    name: Option<String>,
    bytes: Option<Vec<u8>>,
    init: Option<CpuSnapshot>,
    fina: Option<CpuSnapshot>,
    exception: Option<MooException>,
    hash: Option<[u8; 20]>,
}

fn parse_test(chunk: &Chunk<'_>) -> Result<MooTest> {
    let mut r = chunk.reader("TEST");
    let index = r.u32()?;
    let mut parts = TestParts::default();
    for sub in chunks(&chunk.payload[r.pos..], chunk.offset + r.pos)? {
        match &sub.id {
            b"NAME" => {
                parts.name =
                    Some(String::from_utf8_lossy(sub.reader("NAME").counted(1)?).into_owned())
            }
            b"BYTS" => parts.bytes = Some(sub.reader("BYTS").counted(1)?.to_vec()),
            b"INIT" => parts.init = Some(parse_snapshot(&sub)?),
            b"FINA" => parts.fina = Some(parse_snapshot(&sub)?),
            b"EXCP" => {
                let mut e = sub.reader("EXCP");
                parts.exception = Some(MooException {
                    number: e.u8()?,
                    flag_addr: e.u32()?,
                });
            }
            b"HASH" => parts.hash = Some(sub.reader("HASH").array::<20>()?),
            _ => {} // CYCL, GMET, IDX, ...: not needed
        }
    }
    let missing = |chunk: &'static str| MooError::MissingChunk { index, chunk };
    Ok(MooTest {
        index,
        name: parts.name.ok_or_else(|| missing("NAME"))?,
        bytes: parts.bytes.ok_or_else(|| missing("BYTS"))?,
        init: parts.init.ok_or_else(|| missing("INIT"))?,
        fina: parts.fina.ok_or_else(|| missing("FINA"))?,
        exception: parts.exception,
        hash: parts.hash.ok_or_else(|| missing("HASH"))?,
    })
}

/// Parses a revocation list: one hex hash per line; blank lines and `#` comments ignored.
/// Hashes are returned in lowercase, the form of [`MooTest::hash_hex`].
#[must_use]
pub fn parse_revocation_list(text: &str) -> HashSet<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Reads and parses a `revocation_list.txt`.
pub fn load_revocation_list(path: impl AsRef<Path>) -> Result<HashSet<String>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| MooError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_revocation_list(&text))
}

/// The MOO files in `dir` (`*.MOO.gz` or `*.MOO`), as (form name, path), sorted by form
/// name. The form name is the file name without the extension: "00", "F6.6", "0F04".
pub fn list_test_files(dir: impl AsRef<Path>) -> Result<Vec<(String, PathBuf)>> {
    let dir = dir.as_ref();
    let io_err = |source| MooError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let form = file_name
            .strip_suffix(".MOO.gz")
            .or_else(|| file_name.strip_suffix(".MOO"));
        if let Some(form) = form {
            files.push((form.to_string(), path.clone()));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
#[path = "moo_tests.rs"]
mod tests;
