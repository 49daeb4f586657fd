//! Direct kernel boot, with no firmware running at all: a Linux bzImage through the 32-bit
//! boot protocol (Documentation/x86/boot.rst, protocol 2.06 or later) or a Multiboot v1
//! kernel (ELF32, or the a.out kludge), entered in flat 32-bit protected mode.

use crate::memory::{GuestMemory, FOUR_GIB};
use nestor_cpu::state::{attr, cr0, rflags};
use nestor_cpu::{CpuState, Segment};

/// A kernel to boot directly (`--kernel`, `--initrd`, `--append`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelSpec {
    pub kernel: Vec<u8>,
    /// Linux: initrds, concatenated. Multiboot: one module each.
    pub initrd: Vec<Module>,
    pub cmdline: String,
}

/// A file handed to the kernel (initrd or Multiboot module).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    /// Its name (a Multiboot module's string).
    pub name: String,
    pub data: Vec<u8>,
}

/// Which protocol booted the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    Linux,
    Multiboot,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("kernel image is only {0} bytes")]
    TooSmall(usize),
    #[error("not a kernel: no Linux setup header (\"HdrS\") and no Multiboot header")]
    NotAKernel,
    #[error("Linux boot protocol {0}.{1:02} is too old (2.06 or later is needed)")]
    OldProtocol(u8, u8),
    #[error("the kernel cannot be loaded high (LOADED_HIGH is clear): zImage is not supported")]
    NotLoadedHigh,
    #[error("kernel command line is {0} bytes; this kernel accepts at most {1}")]
    CmdlineTooLong(usize, usize),
    #[error("{what} ({len} bytes) does not fit in guest RAM")]
    NoRoom { what: &'static str, len: u64 },
    #[error("Multiboot header: {0}")]
    Multiboot(&'static str),
    #[error("ELF: {0}")]
    Elf(&'static str),
    #[error("cannot write {len} bytes at {addr:#x}: not guest RAM")]
    NotRam { addr: u64, len: u64 },
}

/// Where the loader puts its own structures, all in conventional memory.
const GDT_ADDR: u64 = 0x1000;
const STACK_TOP: u64 = 0x7000;
const BOOT_PARAMS: u64 = 0x7000;
const MB_INFO: u64 = 0x9000;
const CMDLINE_ADDR: u64 = 0x2_0000;
/// The command line area ends where the EBDA would start.
const CMDLINE_MAX: usize = 0x9_fc00 - 0x2_0000;
pub(crate) const KERNEL_ADDR: u64 = 0x10_0000;
const BOOT_CS: u16 = 0x10;
const BOOT_DS: u16 = 0x18;
const PAGE: u64 = 4096;

/// The E820 map, the same layout Nestor's BIOS reports.
pub fn e820_map(mem: &GuestMemory) -> Vec<(u64, u64, u32)> {
    const RAM: u32 = 1;
    const RESERVED: u32 = 2;
    let mut map = vec![
        (0, 0x9_fc00, RAM),
        (0x9_fc00, 0x400, RESERVED),
        (0xe_0000, 0x2_0000, RESERVED),
    ];
    if mem.low_ram() > KERNEL_ADDR {
        map.push((KERNEL_ADDR, mem.low_ram() - KERNEL_ADDR, RAM));
    }
    let high = mem.ram_bytes() - mem.low_ram();
    if high > 0 {
        map.push((FOUR_GIB, high, RAM));
    }
    map
}

/// Load `spec` into `mem` and point `cpu` at its entry.
pub fn load(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    cpu: &mut CpuState,
) -> Result<KernelKind, LoadError> {
    let kind = kind_of(&spec.kernel)?;
    match kind {
        KernelKind::Linux => load_linux(mem, spec, cpu)?,
        KernelKind::Multiboot => load_multiboot(mem, spec, cpu)?,
    }
    Ok(kind)
}

/// Which boot protocol the image speaks: a Linux setup header wins over a Multiboot header.
pub(crate) fn kind_of(k: &[u8]) -> Result<KernelKind, LoadError> {
    // The smallest kernel is a bare Multiboot header and some code.
    if k.len() < 16 {
        return Err(LoadError::TooSmall(k.len()));
    }
    if k.get(0x202..0x206) == Some(b"HdrS") {
        return Ok(KernelKind::Linux);
    }
    find_multiboot(k)
        .map(|_| KernelKind::Multiboot)
        .ok_or(LoadError::NotAKernel)
}

pub(crate) fn u8_at(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = b.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

pub(crate) fn write(mem: &mut GuestMemory, addr: u64, data: &[u8]) -> Result<(), LoadError> {
    if mem.write(addr, data) {
        Ok(())
    } else {
        Err(LoadError::NotRam {
            addr,
            len: data.len() as u64,
        })
    }
}

/// Clear `len` bytes of RAM in bounded pieces (a header's size is no reason to allocate).
fn zero(mem: &mut GuestMemory, addr: u64, len: u64) -> Result<(), LoadError> {
    const CHUNK: u64 = 64 << 10;
    let buf = [0u8; CHUNK as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        write(mem, addr + done, &buf[..n as usize])?;
        done += n;
    }
    Ok(())
}

/// The fields of a bzImage's setup header the loader needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    pub setup_sects: u8,
    /// Major << 8 | minor.
    pub version: u16,
    pub loadflags: u8,
    pub code32_start: u32,
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable: bool,
    pub xloadflags: u16,
    /// Longest command line, without its NUL.
    pub cmdline_size: u32,
    /// End of the header (0x202 plus the jump's displacement): what is copied to boot_params.
    pub header_end: usize,
}

impl SetupHeader {
    pub const LOADED_HIGH: u8 = 1 << 0;
    pub const CAN_USE_HEAP: u8 = 1 << 7;

    /// Bytes of real-mode setup code, boot sector included.
    #[must_use]
    pub fn setup_len(&self) -> usize {
        let sects = if self.setup_sects == 0 {
            4
        } else {
            self.setup_sects
        };
        (usize::from(sects) + 1) * 512
    }
}

/// Parse and validate a bzImage's setup header.
pub fn parse_setup_header(k: &[u8]) -> Result<SetupHeader, LoadError> {
    if k.len() < 0x270 {
        return Err(LoadError::TooSmall(k.len()));
    }
    if k.get(0x202..0x206) != Some(b"HdrS") {
        return Err(LoadError::NotAKernel);
    }
    let version = u16_at(k, 0x206);
    if version < 0x206 {
        return Err(LoadError::OldProtocol((version >> 8) as u8, version as u8));
    }
    let h = SetupHeader {
        setup_sects: u8_at(k, 0x1f1),
        version,
        loadflags: u8_at(k, 0x211),
        code32_start: u32_at(k, 0x214),
        initrd_addr_max: u32_at(k, 0x22c),
        kernel_alignment: u32_at(k, 0x230),
        relocatable: u8_at(k, 0x234) != 0,
        xloadflags: u16_at(k, 0x236),
        cmdline_size: u32_at(k, 0x238),
        header_end: (0x202 + usize::from(u8_at(k, 0x201))).min(0x290),
    };
    if h.loadflags & SetupHeader::LOADED_HIGH == 0 {
        return Err(LoadError::NotLoadedHigh);
    }
    if h.setup_len() >= k.len() {
        return Err(LoadError::TooSmall(k.len()));
    }
    Ok(h)
}

/// Place `len` bytes as high as possible below `limit`, page aligned, above `floor`.
fn place_high(
    mem: &GuestMemory,
    len: u64,
    limit: u64,
    floor: u64,
    what: &'static str,
) -> Result<u64, LoadError> {
    let top = limit.min(mem.low_ram());
    top.checked_sub(len)
        .map(|a| a & !(PAGE - 1))
        .filter(|&a| a >= floor)
        .ok_or(LoadError::NoRoom { what, len })
}

fn load_linux(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    cpu: &mut CpuState,
) -> Result<(), LoadError> {
    let k = &spec.kernel;
    let h = parse_setup_header(k)?;
    let max_cmdline = (h.cmdline_size as usize).min(CMDLINE_MAX - 1);
    if spec.cmdline.len() > max_cmdline {
        return Err(LoadError::CmdlineTooLong(spec.cmdline.len(), max_cmdline));
    }
    let pm = k.get(h.setup_len()..).unwrap_or_default();
    let pm_end = KERNEL_ADDR + pm.len() as u64;
    if pm_end > mem.low_ram() {
        return Err(LoadError::NoRoom {
            what: "kernel",
            len: pm.len() as u64,
        });
    }
    write(mem, KERNEL_ADDR, pm)?;

    let mut bp = vec![0u8; PAGE as usize];
    fill_boot_params(&mut bp, k, &h, mem);
    if let Some((at, len)) = load_initrd(mem, spec, &h, mem.low_ram())? {
        put(&mut bp, 0x218, &(at as u32).to_le_bytes());
        put(&mut bp, 0x21c, &(len as u32).to_le_bytes());
    }
    let mut cmdline = spec.cmdline.as_bytes().to_vec();
    cmdline.push(0);
    write(mem, CMDLINE_ADDR, &cmdline)?;

    write(mem, BOOT_PARAMS, &bp)?;
    enter_protected_mode(mem, cpu, h.code32_start)?;
    cpu.gpr[6] = BOOT_PARAMS; // ESI
    Ok(())
}

/// Place the initrds, concatenated, as high as the kernel allows; returns (address, length).
/// `top` is where usable RAM ends (the firmware may keep tables above it).
pub(crate) fn load_initrd(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    h: &SetupHeader,
    top: u64,
) -> Result<Option<(u64, u64)>, LoadError> {
    let k = &spec.kernel;
    let initrd: Vec<u8> = spec.initrd.iter().flat_map(|m| m.data.clone()).collect();
    if initrd.is_empty() {
        return Ok(None);
    }
    // Stay clear of the kernel's decompression area: init_size bytes from its preferred
    // address (protocol 2.10) or from where it was loaded.
    let pm_len = k.len().saturating_sub(h.setup_len()) as u64;
    let init_size = u64::from(u32_at(k, 0x260)).max(pm_len * 4);
    let pref = u32_at(k, 0x258) as u64 | (u64::from(u32_at(k, 0x25c)) << 32);
    let floor = pref.max(KERNEL_ADDR).saturating_add(init_size);
    let limit = (u64::from(h.initrd_addr_max) + 1).min(top);
    let at = place_high(mem, initrd.len() as u64, limit, floor, "initrd")?;
    write(mem, at, &initrd)?;
    Ok(Some((at, initrd.len() as u64)))
}

/// The zero page: setup header copy with the loader's fields, screen_info and the E820 map.
fn fill_boot_params(bp: &mut [u8], k: &[u8], h: &SetupHeader, mem: &GuestMemory) {
    if let Some(hdr) = k.get(0x1f1..h.header_end) {
        put(bp, 0x1f1, hdr);
    }
    // screen_info: VGA text mode 3, 80x25, cursor on the line below the top.
    put(bp, 0x06, &[3, 80]);
    put(bp, 0x0e, &[25, 1]);
    put(bp, 0x10, &16u16.to_le_bytes());
    let ext_k = (mem.low_ram().saturating_sub(KERNEL_ADDR) >> 10).min(0xffff) as u16;
    put(bp, 0x02, &ext_k.to_le_bytes());
    put(
        bp,
        0x1e0,
        &((mem.low_ram().saturating_sub(KERNEL_ADDR) >> 10) as u32).to_le_bytes(),
    );
    put(bp, 0x210, &[0xff]); // type_of_loader: undefined
    let loadflags = h.loadflags | SetupHeader::CAN_USE_HEAP;
    put(bp, 0x211, &[loadflags]);
    put(bp, 0x224, &(0xfe00u16 - 0x200).to_le_bytes()); // heap_end_ptr
    put(bp, 0x228, &(CMDLINE_ADDR as u32).to_le_bytes());
    let map = e820_map(mem);
    put(bp, 0x1e8, &[map.len() as u8]);
    for (i, (base, len, typ)) in map.iter().enumerate() {
        let at = 0x2d0 + i * 20;
        put(bp, at, &base.to_le_bytes());
        put(bp, at + 8, &len.to_le_bytes());
        put(bp, at + 16, &typ.to_le_bytes());
    }
}

/// A flat GDT (null, null, __BOOT_CS, __BOOT_DS) in RAM and the CPU in 32-bit protected mode
/// at `entry`, interrupts off, paging off.
fn enter_protected_mode(
    mem: &mut GuestMemory,
    cpu: &mut CpuState,
    entry: u32,
) -> Result<(), LoadError> {
    let gdt: [u64; 4] = [0, 0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    write(mem, GDT_ADDR, &bytes)?;
    cpu.gdtr.base = GDT_ADDR;
    cpu.gdtr.limit = (bytes.len() - 1) as u16;
    let flat = |selector, typ| Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | attr::DB | attr::G | attr::ACCESSED | typ,
    };
    for (i, seg) in cpu.seg.iter_mut().enumerate() {
        *seg = if i == 1 {
            flat(BOOT_CS, attr::CODE | attr::RW)
        } else {
            flat(BOOT_DS, attr::RW)
        };
    }
    cpu.cr0 = (cpu.cr0 & !(cr0::CD | cr0::NW | cr0::PG)) | cr0::PE;
    cpu.rflags &= !rflags::IF;
    cpu.rip = u64::from(entry);
    cpu.gpr = [0; 16];
    cpu.gpr[4] = STACK_TOP; // ESP
    Ok(())
}

const MB_MAGIC: u32 = 0x1bad_b002;
const MB_BOOT_MAGIC: u32 = 0x2bad_b002;
/// Flags a kernel may require: page-aligned modules, memory info, video mode (best effort).
const MB_KNOWN_REQUIRED: u32 = 0b111;
const MB_AOUT_KLUDGE: u32 = 1 << 16;

/// Offset of a valid Multiboot header in the first 8 KiB.
pub(crate) fn find_multiboot(k: &[u8]) -> Option<usize> {
    let end = k.len().min(8192).saturating_sub(12);
    (0..=end).step_by(4).find(|&at| {
        u32_at(k, at) == MB_MAGIC
            && MB_MAGIC
                .wrapping_add(u32_at(k, at + 4))
                .wrapping_add(u32_at(k, at + 8))
                == 0
    })
}

/// Copy the kernel's image into memory; returns (entry, end of the image in memory).
fn load_multiboot_image(mem: &mut GuestMemory, k: &[u8]) -> Result<(u32, u64), LoadError> {
    let at = find_multiboot(k).ok_or(LoadError::NotAKernel)?;
    let flags = u32_at(k, at + 4);
    if flags & 0xffff & !MB_KNOWN_REQUIRED != 0 {
        return Err(LoadError::Multiboot("requires a feature this loader lacks"));
    }
    if flags & MB_AOUT_KLUDGE == 0 {
        return load_elf32(mem, k);
    }
    let [header_addr, load_addr, load_end, bss_end, entry] =
        [12, 16, 20, 24, 28].map(|o| u64::from(u32_at(k, at + o)));
    let start = (at as u64)
        .checked_sub(header_addr.wrapping_sub(load_addr))
        .filter(|_| header_addr >= load_addr)
        .ok_or(LoadError::Multiboot("load_addr is past header_addr"))?;
    let file_len = if load_end == 0 {
        (k.len() as u64).saturating_sub(start)
    } else {
        load_end
            .checked_sub(load_addr)
            .ok_or(LoadError::Multiboot("load_end_addr is below load_addr"))?
    };
    let data = k
        .get(start as usize..)
        .and_then(|d| d.get(..file_len as usize))
        .ok_or(LoadError::Multiboot(
            "load range is past the end of the file",
        ))?;
    write(mem, load_addr, data)?;
    let mut end = load_addr + file_len;
    if bss_end > end {
        zero(mem, end, bss_end - end)?;
        end = bss_end;
    }
    Ok((entry as u32, end))
}

/// Load an ELF32 executable's PT_LOAD segments at their physical addresses.
fn load_elf32(mem: &mut GuestMemory, k: &[u8]) -> Result<(u32, u64), LoadError> {
    if k.get(..4) != Some(b"\x7fELF") {
        return Err(LoadError::Elf("no ELF magic and no a.out kludge"));
    }
    if u8_at(k, 4) != 1 || u8_at(k, 5) != 1 || u16_at(k, 18) != 3 {
        return Err(LoadError::Elf("not a little-endian 32-bit x86 executable"));
    }
    let entry = u32_at(k, 24);
    let phoff = u32_at(k, 28) as usize;
    let phentsize = usize::from(u16_at(k, 42));
    let phnum = usize::from(u16_at(k, 44));
    if phentsize < 32 {
        return Err(LoadError::Elf("program header entries are too small"));
    }
    let mut end = 0u64;
    for i in 0..phnum {
        let ph = phoff.saturating_add(i.saturating_mul(phentsize));
        let ph_bytes = k
            .get(ph..ph.saturating_add(32))
            .ok_or(LoadError::Elf("program header past the end of the file"))?;
        if u32_at(ph_bytes, 0) != 1 {
            continue; // not PT_LOAD
        }
        let [offset, paddr, filesz, memsz] = [4, 12, 16, 20].map(|o| u32_at(ph_bytes, o) as u64);
        let data = k
            .get(offset as usize..)
            .and_then(|d| d.get(..filesz as usize))
            .ok_or(LoadError::Elf("segment past the end of the file"))?;
        write(mem, paddr, data)?;
        if memsz > filesz {
            zero(mem, paddr + filesz, memsz - filesz)?;
        }
        end = end.max(paddr + memsz.max(filesz));
    }
    if end == 0 {
        return Err(LoadError::Elf("no loadable segment"));
    }
    Ok((entry, end))
}

pub(crate) fn load_multiboot(
    mem: &mut GuestMemory,
    spec: &KernelSpec,
    cpu: &mut CpuState,
) -> Result<(), LoadError> {
    let (entry, image_end) = load_multiboot_image(mem, &spec.kernel)?;
    // Strings and tables after the info block; modules after the kernel image.
    let mut info = vec![0u8; 0x1000];
    let mut strings = MB_INFO + 0x800;
    let mut push_str = |mem: &mut GuestMemory, s: &str| -> Result<u32, LoadError> {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        if strings + b.len() as u64 > CMDLINE_ADDR + CMDLINE_MAX as u64 {
            return Err(LoadError::CmdlineTooLong(b.len(), CMDLINE_MAX));
        }
        write(mem, strings, &b)?;
        let at = strings as u32;
        strings += b.len() as u64;
        Ok(at)
    };
    let mut flags = 0u32;
    // Memory: conventional below the EBDA, extended up to the first hole.
    flags |= 1;
    put(&mut info, 4, &(0x9_fc00u32 >> 10).to_le_bytes());
    let upper = (mem.low_ram().saturating_sub(KERNEL_ADDR) >> 10) as u32;
    put(&mut info, 8, &upper.to_le_bytes());
    flags |= 1 << 2;
    let cmdline = push_str(mem, &spec.cmdline)?;
    put(&mut info, 16, &cmdline.to_le_bytes());
    // Modules: table at 0x100 in the info page, data page aligned above the kernel.
    flags |= 1 << 3;
    let mut next = image_end.next_multiple_of(PAGE);
    for (i, m) in spec.initrd.iter().enumerate().take(32) {
        let len = m.data.len() as u64;
        if next + len > mem.low_ram() {
            return Err(LoadError::NoRoom {
                what: "Multiboot module",
                len,
            });
        }
        write(mem, next, &m.data)?;
        let name = push_str(mem, &m.name)?;
        let e = 0x100 + i * 16;
        put(&mut info, e, &(next as u32).to_le_bytes());
        put(&mut info, e + 4, &((next + len) as u32).to_le_bytes());
        put(&mut info, e + 8, &name.to_le_bytes());
        next = (next + len).next_multiple_of(PAGE);
    }
    put(
        &mut info,
        20,
        &(spec.initrd.len().min(32) as u32).to_le_bytes(),
    );
    put(&mut info, 24, &((MB_INFO + 0x100) as u32).to_le_bytes());
    // Memory map at 0x400: entries of (size = 20, base, length, type).
    flags |= 1 << 6;
    let map = e820_map(mem);
    for (i, (base, len, typ)) in map.iter().enumerate() {
        let e = 0x400 + i * 24;
        put(&mut info, e, &20u32.to_le_bytes());
        put(&mut info, e + 4, &base.to_le_bytes());
        put(&mut info, e + 12, &len.to_le_bytes());
        put(&mut info, e + 20, &typ.to_le_bytes());
    }
    put(&mut info, 44, &((map.len() * 24) as u32).to_le_bytes());
    put(&mut info, 48, &((MB_INFO + 0x400) as u32).to_le_bytes());
    flags |= 1 << 9;
    let name = push_str(mem, "Nestor")?;
    put(&mut info, 64, &name.to_le_bytes());
    put(&mut info, 0, &flags.to_le_bytes());
    write(mem, MB_INFO, &info[..0x800])?;
    enter_protected_mode(mem, cpu, entry)?;
    cpu.gpr[0] = u64::from(MB_BOOT_MAGIC); // EAX
    cpu.gpr[3] = MB_INFO; // EBX
    Ok(())
}
