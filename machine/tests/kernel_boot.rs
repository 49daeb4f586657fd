//! Direct kernel boot (`--kernel`): synthetic bzImages and Multiboot ELFs built here, and
//! Debian's kernel from the guest cache when it is there.

use iced_x86::code_asm::*;
use nestor_device::testing::BufferBackend;
use nestor_machine::{
    KernelKind, KernelSpec, LoadError, Machine, MachineConfig, MachineError, MachineExit, Module,
};
use std::path::PathBuf;

const SETUP_SECTS: usize = 4;
const ENTRY: u64 = 0x10_0000;
/// Instructions for the Debian kernel to decompress itself and print its banner.
const DEBIAN_BUDGET: u64 = 6_000_000_000;

/// Print the NUL-terminated string at [esi] on the debug console; clobbers eax, esi.
fn print_esi(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut next = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut next)?;
    a.mov(al, byte_ptr(esi))?;
    a.test(al, al)?;
    a.jz(done)?;
    a.out(0xe9, al)?;
    a.inc(esi)?;
    a.jmp(next)?;
    a.set_label(&mut done)?;
    a.zero_bytes()
}

/// Protected-mode code of the synthetic bzImage: prints the command line, then "E" plus the
/// E820 entry count and "I" if an initrd was given, then exits through isa-debug-exit.
fn linux_payload() -> Vec<u8> {
    let build = || -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(32)?;
        let mut no_initrd = a.create_label();
        a.mov(ebx, esi)?;
        a.mov(esi, dword_ptr(ebx + 0x228))?;
        print_esi(&mut a)?;
        a.mov(al, b'E' as u32)?;
        a.out(0xe9, al)?;
        a.mov(al, byte_ptr(ebx + 0x1e8))?;
        a.add(al, b'0' as u32)?;
        a.out(0xe9, al)?;
        a.cmp(dword_ptr(ebx + 0x21c), 0)?;
        a.je(no_initrd)?;
        // The initrd's first byte, at ramdisk_image.
        a.mov(esi, dword_ptr(ebx + 0x218))?;
        a.mov(al, byte_ptr(esi))?;
        a.out(0xe9, al)?;
        a.set_label(&mut no_initrd)?;
        a.mov(al, 0x10)?;
        a.out(0xf4, al)?;
        a.hlt()?;
        a.assemble(ENTRY)
    };
    build().expect("assemble")
}

/// A bzImage with the given protocol version and the payload above.
fn bzimage(version: u16) -> Vec<u8> {
    let mut k = vec![0u8; (SETUP_SECTS + 1) * 512];
    k[0x1f1] = SETUP_SECTS as u8;
    k[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    k[0x201] = 0x66; // the jump over the header: it ends at 0x268
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    k[0x211] = 1; // LOADED_HIGH
    k[0x214..0x218].copy_from_slice(&(ENTRY as u32).to_le_bytes());
    k[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes());
    k[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    k[0x234] = 1;
    k[0x238..0x23c].copy_from_slice(&255u32.to_le_bytes());
    k.extend(linux_payload());
    k
}

fn spec(kernel: Vec<u8>, cmdline: &str, initrd: Vec<Module>) -> KernelSpec {
    KernelSpec {
        kernel,
        initrd,
        cmdline: cmdline.to_string(),
    }
}

fn boot(spec: KernelSpec, ram_mib: u64) -> Result<(MachineExit, String), MachineError> {
    let debugcon = BufferBackend::output_only();
    let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), ram_mib);
    config.debugcon = Some(Box::new(debugcon.clone()));
    config.kernel = Some(spec);
    let mut m = Machine::new(config)?;
    let exit = m.run(Some(1_000_000))?;
    Ok((exit, debugcon.output_string()))
}

fn load_error(spec: KernelSpec, ram_mib: u64) -> LoadError {
    match boot(spec, ram_mib) {
        Err(MachineError::Kernel(e)) => e,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

#[test]
fn bzimage_boots_with_cmdline_e820_and_initrd() {
    let initrd = vec![Module {
        name: "initrd".into(),
        data: b"Zinitrd".to_vec(),
    }];
    let (exit, out) = boot(spec(bzimage(0x20f), "console=ttyS0", initrd), 64).unwrap();
    assert_eq!(exit, MachineExit::DebugExit(0x21), "{out}");
    // Four E820 entries: low RAM, EBDA, BIOS area, extended RAM; none above 4 GiB.
    assert_eq!(out, "console=ttyS0E4Z");
}

#[test]
fn bzimage_header_is_parsed() {
    let h = nestor_machine::loader::parse_setup_header(&bzimage(0x20f)).unwrap();
    assert_eq!(h.version, 0x20f);
    assert_eq!(h.code32_start, ENTRY as u32);
    assert_eq!(h.setup_len(), 5 * 512);
    assert_eq!(h.header_end, 0x268);
    assert_eq!(h.cmdline_size, 255);
    assert_eq!(h.kernel_alignment, 0x20_0000);
    assert!(h.relocatable);
    let mut k = bzimage(0x20f);
    k[0x1f1] = 0; // 0 means 4
    assert_eq!(
        nestor_machine::loader::parse_setup_header(&k)
            .unwrap()
            .setup_len(),
        5 * 512
    );
}

#[test]
fn malformed_bzimages_are_errors() {
    let ok = bzimage(0x20f);
    assert!(matches!(
        load_error(spec(ok[..8].to_vec(), "", vec![]), 16),
        LoadError::TooSmall(8)
    ));
    assert!(matches!(
        load_error(spec(ok[..0x300].to_vec(), "", vec![]), 16),
        LoadError::TooSmall(_)
    ));
    let mut no_magic = ok.clone();
    no_magic[0x202] = b'X';
    assert!(matches!(
        load_error(spec(no_magic, "", vec![]), 16),
        LoadError::NotAKernel
    ));
    assert!(matches!(
        load_error(spec(bzimage(0x205), "", vec![]), 16),
        LoadError::OldProtocol(2, 5)
    ));
    let mut low = ok.clone();
    low[0x211] = 0;
    assert!(matches!(
        load_error(spec(low, "", vec![]), 16),
        LoadError::NotLoadedHigh
    ));
    let long = "x".repeat(256);
    assert!(matches!(
        load_error(spec(ok.clone(), &long, vec![]), 16),
        LoadError::CmdlineTooLong(256, 255)
    ));
    let big = vec![Module {
        name: "big".into(),
        data: vec![0; 20 << 20],
    }];
    assert!(matches!(
        load_error(spec(ok, "", big), 16),
        LoadError::NoRoom { what: "initrd", .. }
    ));
}

/// Multiboot kernel code: checks EAX, prints the command line and the first module's bytes.
fn multiboot_code(base: u64) -> Vec<u8> {
    let build = || -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(32)?;
        let mut fail = a.create_label();
        let mut next = a.create_label();
        let mut done = a.create_label();
        a.cmp(eax, 0x2bad_b002)?;
        a.jne(fail)?;
        a.mov(esi, dword_ptr(ebx + 16))?;
        print_esi(&mut a)?;
        a.mov(al, b'/' as u32)?;
        a.out(0xe9, al)?;
        a.mov(al, byte_ptr(ebx + 20))?;
        a.add(al, b'0' as u32)?;
        a.out(0xe9, al)?;
        // Module 0's contents, mod_start..mod_end.
        a.mov(edi, dword_ptr(ebx + 24))?;
        a.mov(esi, dword_ptr(edi))?;
        a.mov(ecx, dword_ptr(edi + 4))?;
        a.set_label(&mut next)?;
        a.cmp(esi, ecx)?;
        a.jae(done)?;
        a.mov(al, byte_ptr(esi))?;
        a.out(0xe9, al)?;
        a.inc(esi)?;
        a.jmp(next)?;
        a.set_label(&mut done)?;
        a.mov(al, 0)?;
        a.out(0xf4, al)?;
        a.set_label(&mut fail)?;
        a.mov(al, 7)?;
        a.out(0xf4, al)?;
        a.hlt()?;
        a.assemble(base)
    };
    build().expect("assemble")
}

/// An ELF32 executable: one PT_LOAD of the whole file at 1 MiB (with some .bss), the
/// Multiboot header at 0x60 and the code at 0x80.
fn multiboot_elf() -> Vec<u8> {
    const CODE: usize = 0x80;
    let mut f = vec![0u8; CODE];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 1; // 32-bit
    f[5] = 1; // little-endian
    f[6] = 1;
    let le16 = |f: &mut Vec<u8>, at: usize, v: u16| f[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let le32 = |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_le_bytes());
    le16(&mut f, 16, 2); // ET_EXEC
    le16(&mut f, 18, 3); // EM_386
    le32(&mut f, 20, 1);
    le32(&mut f, 24, ENTRY as u32 + CODE as u32);
    le32(&mut f, 28, 52); // phoff
    le16(&mut f, 40, 52);
    le16(&mut f, 42, 32);
    le16(&mut f, 44, 1);
    let flags = 0b11u32;
    le32(&mut f, 0x60, 0x1bad_b002);
    le32(&mut f, 0x64, flags);
    le32(&mut f, 0x68, 0u32.wrapping_sub(0x1bad_b002 + flags));
    f.extend(multiboot_code(ENTRY + CODE as u64));
    let len = f.len() as u32;
    let ph = [
        1,
        0,
        ENTRY as u32,
        ENTRY as u32,
        len,
        len + 0x1000,
        5,
        0x1000,
    ];
    for (i, v) in ph.into_iter().enumerate() {
        le32(&mut f, 52 + i * 4, v);
    }
    f
}

#[test]
fn multiboot_elf_boots_with_cmdline_and_modules() {
    let modules = vec![
        Module {
            name: "one".into(),
            data: b"first".to_vec(),
        },
        Module {
            name: "two".into(),
            data: b"second".to_vec(),
        },
    ];
    let (exit, out) = boot(spec(multiboot_elf(), "hello mb", modules), 32).unwrap();
    assert_eq!(out, "hello mb/2first");
    assert_eq!(exit, MachineExit::DebugExit(1));
}

#[test]
fn multiboot_kind_and_bad_checksum() {
    let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), 32);
    config.kernel = None;
    let mut m = Machine::new(config).unwrap();
    let kind = m.load_kernel(&spec(multiboot_elf(), "", vec![])).unwrap();
    assert_eq!(kind, KernelKind::Multiboot);
    let mut bad = multiboot_elf();
    bad[0x68] ^= 1;
    assert!(matches!(
        load_error(spec(bad, "", vec![]), 32),
        LoadError::NotAKernel
    ));
    let mut truncated = multiboot_elf();
    truncated[28] = 0xf0; // program headers past the end
    assert!(matches!(
        load_error(spec(truncated, "", vec![]), 32),
        LoadError::Elf(_)
    ));
}

/// The cache roms/fetch-guests.sh fills: $NESTOR_GUESTS, else ~/.cache/nestor-guests.
fn cached(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("NESTOR_GUESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/nestor-guests"),
    };
    let path = dir.join(name);
    path.exists().then_some(path)
}

/// Debian's kernel on the 64-bit CPU model with its initrd, `--append`ed for COM1.
fn debian_machine() -> Option<(Machine, BufferBackend)> {
    let (Some(kernel), Some(initrd)) = (cached("vmlinuz"), cached("initrd.gz")) else {
        eprintln!("skipped: no vmlinuz/initrd.gz in ~/.cache/nestor-guests");
        return None;
    };
    let read = |p: &PathBuf| std::fs::read(p).expect("read cached guest");
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), 256);
    config.cpu_model = "nestor64".into();
    config.serial[0] = Some(Box::new(serial.clone()));
    config.kernel = Some(KernelSpec {
        kernel: read(&kernel),
        initrd: vec![Module {
            name: "initrd.gz".into(),
            data: read(&initrd),
        }],
        cmdline: "console=ttyS0 earlyprintk=serial,ttyS0,115200".into(),
    });
    Some((Machine::new(config).expect("machine"), serial))
}

/// The 32-bit entry works: within a few million instructions the decompressor has switched
/// to long mode and is unpacking the kernel. Skipped when the cache is missing.
#[test]
fn debian_kernel_reaches_long_mode() {
    let Some((mut m, _)) = debian_machine() else {
        return;
    };
    let exit = m.run(Some(5_000_000)).expect("run");
    assert_eq!(exit, MachineExit::BudgetExhausted);
    let s = m.vcpu.state();
    assert_ne!(s.efer & nestor_cpu::state::efer::LMA, 0, "rip {:#x}", s.rip);
}

/// The decompressed kernel prints its banner through earlyprintk. Decompressing takes
/// about DEBIAN_BUDGET instructions (minutes), hence `--ignored`.
#[test]
#[ignore = "minutes in release: run with --ignored"]
fn debian_kernel_prints_its_banner() {
    let Some((mut m, serial)) = debian_machine() else {
        return;
    };
    let exit = m.run(Some(DEBIAN_BUDGET)).expect("run");
    let text = serial.output_string();
    eprintln!("exit {exit:?}\n{text}");
    assert!(text.contains("Linux version"), "{text}");
}

/// A raw binary with the a.out kludge (flag 16): the header gives the load and entry
/// addresses.
#[test]
fn multiboot_aout_kludge_boots() {
    let flags = 0x1_0003u32;
    let entry = ENTRY as u32 + 0x20;
    let header = [
        0x1bad_b002,
        flags,
        0u32.wrapping_sub(0x1bad_b002 + flags),
        ENTRY as u32,
        ENTRY as u32,
        0,
        0,
        entry,
    ];
    let mut k: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    k.extend(multiboot_code(u64::from(entry)));
    let module = vec![Module {
        name: "m".into(),
        data: b"mod".to_vec(),
    }];
    let (exit, out) = boot(spec(k, "aout", module), 32).unwrap();
    assert_eq!(out, "aout/1mod");
    assert_eq!(exit, MachineExit::DebugExit(1));
}

/// Corrupted kernels are errors or boot attempts, never host panics.
#[test]
fn random_corruption_never_panics() {
    let mut mem = nestor_machine::memory::GuestMemory::new(16, vec![0; 64 << 10]).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..400 {
        let mut k = if i % 2 == 0 {
            bzimage(0x20f)
        } else {
            multiboot_elf()
        };
        for _ in 0..1 + next() % 8 {
            // Hit the headers most of the time.
            let span = if next() % 4 == 0 { k.len() } else { 0x270 };
            let at = (next() as usize) % span.min(k.len());
            k[at] = next() as u8;
        }
        if next() % 8 == 0 {
            k.truncate((next() as usize) % k.len());
        }
        let mut cpu = nestor_cpu::CpuState::default();
        let _ = nestor_machine::loader::load(&mut mem, &spec(k, "x", vec![]), &mut cpu);
    }
}
