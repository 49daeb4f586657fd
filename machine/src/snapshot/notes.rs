//! ELF notes: the generic note encoding, Nestor's own note types, the header note with the
//! format version and the checksum over every other note, and bincode for note bodies.

use serde::{de::DeserializeOwned, Serialize};

/// Owner name of Nestor's notes.
pub const NESTOR: &[u8] = b"NESTOR";
/// Owner names of the notes gdb and crash read.
pub const CORE: &[u8] = b"CORE";
pub const QEMU: &[u8] = b"QEMU";
/// NT_PRSTATUS (in "CORE" notes); QEMU's CPU-state note has type 0.
pub const NT_PRSTATUS: u32 = 1;
pub const NT_QEMU_CPUSTATE: u32 = 0;

/// Types of Nestor's notes.
pub mod kind {
    pub const HEADER: u32 = 1;
    pub const CPU: u32 = 2;
    pub const CONFIG: u32 = 3;
    pub const DEVICE: u32 = 4;
    pub const CLOCK: u32 = 5;
    pub const BOARD: u32 = 6;
    pub const BIOS: u32 = 7;
    pub const ROM: u32 = 8;
}

pub const MAGIC: [u8; 8] = *b"NESTORSN";
/// The snapshot format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Header note body: magic, format version, note count, CRC-32 of the notes after it, and
/// the guest RAM size, in fixed little-endian layout so that any future version can read it.
const HEADER_DESC_LEN: usize = 32;
/// The whole header note as it opens the PT_NOTE segment.
pub const HEADER_NOTE_LEN: usize = 12 + 8 + HEADER_DESC_LEN;
/// Bincode bodies are at most this large (a limit against lengths a damaged file claims).
const DECODE_LIMIT: usize = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    pub note_count: u32,
    pub notes_crc: u32,
    pub ram_bytes: u64,
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Append one note: Elf64_Nhdr, the NUL-terminated name and the body, each padded to 4 bytes.
pub fn push_note(out: &mut Vec<u8>, name: &[u8], n_type: u32, desc: &[u8]) {
    let namesz = name.len() + 1;
    out.extend_from_slice(&(namesz as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(name);
    out.resize(out.len() + align4(namesz) - name.len(), 0);
    out.extend_from_slice(desc);
    out.resize(out.len() + align4(desc.len()) - desc.len(), 0);
}

/// The PT_NOTE segment: the header note, then `body` (every other note) which it checksums.
#[must_use]
pub fn seal(body: &[u8], note_count: u32, ram_bytes: u64) -> Vec<u8> {
    let mut desc = Vec::with_capacity(HEADER_DESC_LEN);
    desc.extend_from_slice(&MAGIC);
    desc.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    desc.extend_from_slice(&note_count.to_le_bytes());
    desc.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    desc.extend_from_slice(&0u32.to_le_bytes());
    desc.extend_from_slice(&ram_bytes.to_le_bytes());
    let mut out = Vec::with_capacity(HEADER_NOTE_LEN + body.len());
    push_note(&mut out, NESTOR, kind::HEADER, &desc);
    debug_assert_eq!(out.len(), HEADER_NOTE_LEN);
    out.extend_from_slice(body);
    out
}

/// Why the header note is not what this build reads.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// No Nestor header: some other ELF core (a QEMU dump, a process core).
    Missing,
    Newer(u32),
    Checksum,
}

/// Read and check the header note that opens the PT_NOTE segment `notes`.
pub fn open(notes: &[u8]) -> Result<Header, HeaderProblem> {
    let Some(head) = notes.get(..HEADER_NOTE_LEN) else {
        return Err(HeaderProblem::Missing);
    };
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let name_ok = &head[12..18] == NESTOR && head[18..20] == [0, 0];
    let desc = &head[20..];
    let layout_ok = word(0) == NESTOR.len() as u32 + 1
        && word(4) == HEADER_DESC_LEN as u32
        && word(8) == kind::HEADER;
    if !(name_ok && layout_ok && desc[..8] == MAGIC) {
        return Err(HeaderProblem::Missing);
    }
    let field = |at: usize| word(20 + at);
    let format_version = field(8);
    if format_version == 0 {
        return Err(HeaderProblem::Missing);
    }
    if format_version > FORMAT_VERSION {
        return Err(HeaderProblem::Newer(format_version));
    }
    let notes_crc = field(16);
    if crc32fast::hash(&notes[HEADER_NOTE_LEN..]) != notes_crc {
        return Err(HeaderProblem::Checksum);
    }
    let mut ram = [0u8; 8];
    ram.copy_from_slice(&desc[24..32]);
    Ok(Header {
        format_version,
        note_count: field(12),
        notes_crc,
        ram_bytes: u64::from_le_bytes(ram),
    })
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_limit::<DECODE_LIMIT>()
}

/// Encode a note body.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())
}

/// Decode a note body, refusing trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_padded_to_four_bytes() {
        let mut out = Vec::new();
        push_note(&mut out, b"CORE", 1, &[1, 2, 3]);
        assert_eq!(out.len(), 12 + 8 + 4);
        assert_eq!(&out[..12], &[5, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&out[12..20], b"CORE\0\0\0\0");
    }

    #[test]
    fn header_checks_magic_version_and_checksum() {
        let mut body = Vec::new();
        push_note(&mut body, NESTOR, kind::ROM, &[9; 10]);
        let sealed = seal(&body, 1, 1 << 20);
        let h = open(&sealed).expect("valid");
        assert_eq!(
            (h.format_version, h.note_count, h.ram_bytes),
            (1, 1, 1 << 20)
        );
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(open(&bad), Err(HeaderProblem::Checksum));
        let mut newer = sealed.clone();
        newer[28] = 2;
        assert_eq!(open(&newer), Err(HeaderProblem::Newer(2)));
        assert_eq!(open(&sealed[..40]), Err(HeaderProblem::Missing));
        assert_eq!(open(&body), Err(HeaderProblem::Missing));
    }
}
