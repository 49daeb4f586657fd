//! Reading and validating a snapshot file with `object`'s ELF reader: an ELF64 x86-64 core,
//! one PT_NOTE segment opened by Nestor's header note (format version, checksum), and
//! page-aligned PT_LOAD segments inside the file. Every problem is an [`Invalid`] value.

use super::notes::{self, HeaderProblem};
use super::writer::PAGE;
use super::Invalid;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

/// One note of the file.
#[derive(Clone, Copy, Debug)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub n_type: u32,
    pub desc: &'a [u8],
}

/// A PT_LOAD segment: guest physical address, file offset, length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub paddr: u64,
    pub offset: u64,
    pub len: u64,
}

pub struct Parsed<'a> {
    pub header: notes::Header,
    /// Every note after the header, in file order.
    pub notes: Vec<Note<'a>>,
    pub loads: Vec<Load>,
}

fn foreign(why: &str) -> Invalid {
    Invalid::Foreign(why.to_string())
}

/// Parse and check `data`, the whole file.
pub fn parse(data: &[u8]) -> Result<Parsed<'_>, Invalid> {
    const ELF_HEADER_LEN: usize = 64;
    if data.len() < ELF_HEADER_LEN {
        return Err(if data.starts_with(&elf::ELFMAG) {
            Invalid::Truncated("the ELF header is cut short".into())
        } else {
            foreign("not an ELF file")
        });
    }
    let header = elf::FileHeader64::<LE>::parse(data)
        .map_err(|e| foreign(&format!("not an ELF64 little-endian file: {e}")))?;
    if header.e_type.get(LE) != elf::ET_CORE || header.e_machine.get(LE) != elf::EM_X86_64 {
        return Err(foreign("an ELF file, but not an x86-64 core file"));
    }
    let phdrs = header
        .program_headers(LE, data)
        .map_err(|e| Invalid::Truncated(format!("program headers: {e}")))?;
    let mut note_segment = None;
    let mut loads = Vec::new();
    for ph in phdrs {
        let (offset, len) = (ph.p_offset(LE), ph.p_filesz(LE));
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > data.len() as u64) {
            return Err(Invalid::Truncated(format!(
                "a segment at {offset:#x}+{len:#x} ends past the file's {:#x} bytes",
                data.len()
            )));
        }
        match ph.p_type(LE) {
            elf::PT_NOTE if note_segment.is_none() => {
                note_segment = Some(&data[offset as usize..(offset + len) as usize]);
            }
            elf::PT_NOTE => return Err(Invalid::Corrupted("two note segments".into())),
            elf::PT_LOAD => {
                let aligned = |v: u64| v.is_multiple_of(PAGE);
                if !(aligned(offset) && aligned(ph.p_paddr(LE)) && aligned(len)) {
                    return Err(Invalid::Corrupted(
                        "a RAM segment is not page-aligned".into(),
                    ));
                }
                loads.push(Load {
                    paddr: ph.p_paddr(LE),
                    offset,
                    len,
                });
            }
            _ => {}
        }
    }
    let segment = note_segment.ok_or_else(|| foreign("an ELF core without notes"))?;
    let header = notes::open(segment).map_err(|p| match p {
        HeaderProblem::Missing => foreign("an ELF core, but without Nestor's header note"),
        HeaderProblem::Newer(found) => Invalid::Newer {
            found,
            supported: notes::FORMAT_VERSION,
        },
        HeaderProblem::Checksum => Invalid::Corrupted("the notes' checksum does not match".into()),
    })?;
    let notes = split_notes(&segment[notes::HEADER_NOTE_LEN..])?;
    if notes.len() as u64 != u64::from(header.note_count) {
        return Err(Invalid::Corrupted("the note count does not match".into()));
    }
    Ok(Parsed {
        header,
        notes,
        loads,
    })
}

/// The notes of a PT_NOTE body, through `object`'s note iterator.
fn split_notes(body: &[u8]) -> Result<Vec<Note<'_>>, Invalid> {
    let bad = |e: object::read::Error| Invalid::Corrupted(format!("notes: {e}"));
    let mut it =
        object::read::elf::NoteIterator::<elf::FileHeader64<LE>>::new(LE, 4, body).map_err(bad)?;
    let mut out = Vec::new();
    while let Some(n) = it.next().map_err(bad)? {
        out.push(Note {
            name: n.name(),
            n_type: n.n_type(LE),
            desc: n.desc(),
        });
    }
    Ok(out)
}
