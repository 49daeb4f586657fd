//! Snapshot tests: resumed runs print exactly what uninterrupted runs print; readelf and gdb
//! read the file; damaged files are refused and never crash the loader.

use super::*;
use crate::{MachineConfig, MachineExit};
use nestor_device::testing::BufferBackend;
use std::path::PathBuf;
use std::process::Command;

/// Where the string-writing ROM puts its message, and the message.
pub const HELLO_AT: u64 = 0x7000;
pub const HELLO: &str = "nestor snapshot says hello";

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A 64 KiB real-mode ROM: copies [`HELLO`] to RAM at [`HELLO_AT`], then halts for ever.
pub fn hello_rom() -> Vec<u8> {
    let mut rom = vec![0xf4; 64 << 10];
    let len = HELLO.len() as u16;
    #[rustfmt::skip]
    let code = [
        0xfa,                   // cli
        0x31, 0xc0,             // xor ax, ax
        0x8e, 0xc0,             // mov es, ax
        0xb8, 0x00, 0xf0,       // mov ax, 0xf000
        0x8e, 0xd8,             // mov ds, ax
        0xbe, 0x00, 0x01,       // mov si, 0x100 (the message)
        0xbf, HELLO_AT as u8, (HELLO_AT >> 8) as u8, // mov di, HELLO_AT
        0xb9, len as u8, (len >> 8) as u8,           // mov cx, len
        0xfc,                   // cld
        0xf3, 0xa4,             // rep movsb
        0xf4,                   // hlt
        0xeb, 0xfd,             // jmp back to hlt
    ];
    rom[..code.len()].copy_from_slice(&code);
    rom[0x100..0x100 + HELLO.len()].copy_from_slice(HELLO.as_bytes());
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]); // jmp f000:0000
    rom
}

fn bios_config(ram_mib: u64) -> MachineConfig {
    let bios = nestor_bios::BiosConfig {
        boot_order: Vec::new(),
        ..nestor_bios::BiosConfig::default()
    };
    MachineConfig::with_bios(bios, ram_mib)
}

fn with_serial(mut config: MachineConfig) -> (Machine, BufferBackend) {
    let serial = BufferBackend::output_only();
    config.serial[0] = Some(Box::new(serial.clone()));
    (Machine::new(config).expect("machine"), serial)
}

fn resume_with_serial(path: &Path) -> (Machine, BufferBackend) {
    let serial = BufferBackend::output_only();
    let mut opts = ResumeOptions::default();
    opts.serial[0] = Some(Box::new(serial.clone()));
    (resume(path, opts).expect("resume"), serial)
}

/// Run `config` to `end` without a break and with a snapshot at `at`: the resumed machine
/// prints the same bytes after `at`, ends the same way, in the same CPU state; the original
/// goes on after the snapshot as if nothing happened.
fn check_round_trip(make: impl Fn() -> MachineConfig, at: u64, end: u64, name: &str) {
    let (mut whole, whole_serial) = with_serial(make());
    let whole_exit = whole.run(Some(end)).expect("run");
    let (mut first, first_serial) = with_serial(make());
    assert_eq!(
        first.run(Some(at)).expect("run"),
        MachineExit::BudgetExhausted
    );
    let path = tmp(name);
    save(&first, &path).expect("save");
    let before = first_serial.output().len();
    let (mut resumed, resumed_serial) = resume_with_serial(&path);
    assert_eq!(
        resumed.vcpu.state(),
        first.vcpu.state(),
        "state after resume"
    );
    assert_eq!(resumed.spent(), first.spent(), "time after resume");
    assert_eq!(resumed.run(Some(end)).expect("run"), whole_exit);
    assert_eq!(
        first.run(Some(end)).expect("run"),
        whole_exit,
        "the original goes on"
    );
    let whole_out = whole_serial.output();
    assert!(
        before > 0 && before < whole_out.len(),
        "snapshot mid-output"
    );
    assert_eq!(resumed_serial.output(), whole_out[before..]);
    assert_eq!(first_serial.output(), whole_out);
    assert_eq!(resumed.vcpu.state(), whole.vcpu.state());
    assert_eq!(resumed.vcpu.retired(), whole.vcpu.retired());
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn resumed_demo_prints_what_an_uninterrupted_run_prints() {
    let make = || MachineConfig::new(nestor_roms::demo().to_vec(), 2);
    let (mut m, _) = with_serial(make());
    assert_eq!(m.run(Some(50_000_000)).expect("run"), MachineExit::PowerOff);
    let total = m.vcpu.retired();
    for (i, at) in [total / 4, total / 2, total * 9 / 10]
        .into_iter()
        .enumerate()
    {
        check_round_trip(make, at, 50_000_000, &format!("demo{i}.elf"));
    }
}

#[test]
fn resumed_bios_prints_what_an_uninterrupted_run_prints() {
    // Nestor's BIOS with nothing to boot: POST, drive probes, timer interrupts, messages.
    let make = || MachineConfig::with_bios(nestor_bios::BiosConfig::default(), 16);
    let (mut m, serial) = with_serial(make());
    assert_eq!(
        m.run(Some(50_000_000)).expect("run"),
        MachineExit::HaltedForever
    );
    assert!(serial.output_string().contains("No bootable device"));
    let total = m.spent();
    for (i, at) in [total / 3, total * 2 / 3].into_iter().enumerate() {
        check_round_trip(make, at, 50_000_000, &format!("bios{i}.elf"));
    }
}

fn run_tool(cmd: &mut Command) -> Option<String> {
    match cmd.output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(e) => {
            eprintln!("SKIP: cannot run {cmd:?}: {e}");
            None
        }
    }
}

fn hello_snapshot(name: &str) -> (PathBuf, CpuState) {
    let (mut m, _) = with_serial(MachineConfig::new(hello_rom(), 1));
    assert_eq!(
        m.run(Some(10_000)).expect("run"),
        MachineExit::HaltedForever
    );
    let path = tmp(name);
    save(&m, &path).expect("save");
    (path, m.vcpu.state())
}

use nestor_cpu::CpuState;

#[test]
fn readelf_lists_segments_and_notes() {
    let (path, _) = hello_snapshot("readelf.elf");
    let Some(out) = run_tool(Command::new("readelf").arg("-a").arg("-W").arg(&path)) else {
        return;
    };
    assert!(out.contains("CORE (Core file)"), "{out}");
    assert!(out.contains("Advanced Micro Devices X86-64"), "{out}");
    assert_eq!(
        out.matches("  LOAD ").count(),
        1,
        "1 MiB of RAM is one region: {out}"
    );
    assert!(out.contains("  NOTE "), "{out}");
    assert!(out.contains("NT_PRSTATUS"), "{out}");
    assert!(out.contains("QEMU"), "{out}");
    assert!(out.matches("NESTOR").count() >= 20, "{out}");
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn gdb_opens_the_snapshot_as_a_core() {
    let (path, state) = hello_snapshot("gdb.elf");
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx", "-ex", &format!("x/s {HELLO_AT:#x}")])
        .args(["-ex", "info registers rip", "-c"])
        .arg(&path);
    let Some(out) = run_tool(&mut cmd) else {
        return;
    };
    assert!(out.contains(&format!("\"{HELLO}\"")), "{out}");
    assert!(
        out.contains(&format!("{:#x}", state.rip)),
        "rip from NT_PRSTATUS: {out}"
    );
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn resumed_ram_is_copy_on_write() {
    let (path, _) = hello_snapshot("cow.elf");
    let before = std::fs::read(&path).expect("read");
    let (mut m, _) = resume_with_serial(&path);
    let mut buf = vec![0u8; HELLO.len()];
    assert!(m.board.wires.mem.read(HELLO_AT, &mut buf));
    assert_eq!(buf, HELLO.as_bytes());
    assert!(m.board.wires.mem.write(HELLO_AT, b"changed"));
    drop(m);
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file is untouched"
    );
    std::fs::remove_file(&path).expect("cleanup");
}

#[test]
fn foreign_newer_and_changed_files_are_refused() {
    let (path, _) = hello_snapshot("refuse.elf");
    let data = std::fs::read(&path).expect("read");
    let problem = |bytes: &[u8]| check(bytes).err().expect("refused");
    assert!(matches!(problem(b"hello"), Invalid::Foreign(_)));
    assert!(matches!(problem(&data[..40]), Invalid::Truncated(_)));
    assert!(matches!(
        problem(&data[..data.len() - 4096]),
        Invalid::Truncated(_)
    ));
    let mut newer = data.clone();
    let header_desc = find(&data, &notes::MAGIC);
    newer[header_desc + 8] = 9;
    assert_eq!(
        problem(&newer),
        Invalid::Newer {
            found: 9,
            supported: 1
        }
    );
    let mut corrupt = data.clone();
    corrupt[header_desc + 200] ^= 0x40;
    assert!(matches!(problem(&corrupt), Invalid::Corrupted(_)));
    // A QEMU-style core: same layout, no Nestor header.
    let mut qemu_like = data.clone();
    qemu_like[header_desc..header_desc + 8].copy_from_slice(b"NOTNESTR");
    assert!(matches!(problem(&qemu_like), Invalid::Foreign(_)));
    let err = resume(&path.with_extension("missing"), ResumeOptions::default()).err();
    assert!(matches!(err, Some(SnapshotError::Io { .. })));
    std::fs::remove_file(&path).expect("cleanup");
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}

#[test]
fn a_changed_disk_image_is_refused_unless_forced() {
    let disk = tmp("disk.img");
    std::fs::write(&disk, vec![0u8; 64 << 10]).expect("disk");
    let mut config = MachineConfig::new(hello_rom(), 1);
    config.drives.push(crate::DriveSpec {
        slot: crate::DriveSlot::Hda,
        path: disk.clone(),
        snapshot: false,
        read_only: false,
    });
    let (mut m, _) = with_serial(config);
    m.run(Some(10_000)).expect("run");
    let path = tmp("disk.elf");
    save(&m, &path).expect("save");
    drop(m);
    resume(&path, ResumeOptions::default()).expect("unchanged disk");
    std::fs::write(&disk, vec![1u8; 128 << 10]).expect("grow the disk");
    let err = resume(&path, ResumeOptions::default())
        .err()
        .expect("refused");
    assert!(matches!(err, SnapshotError::FilesChanged(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    let forced = ResumeOptions {
        force: true,
        ..ResumeOptions::default()
    };
    resume(&path, forced).expect("forced");
    std::fs::remove_file(&path).expect("cleanup");
}

/// xorshift64*: a deterministic stream for the mutation test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Recompute the header's checksum so that a mutation reaches the note decoders.
fn reseal(data: &mut [u8], notes_at: usize, notes_len: usize) {
    let body = notes_at + notes::HEADER_NOTE_LEN..notes_at + notes_len;
    let crc = crc32fast::hash(&data[body]);
    let at = notes_at + 20 + 16;
    data[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn mutated_snapshots_never_crash_the_loader() {
    let make = || bios_config(1);
    let (mut m, _) = with_serial(make());
    m.run(Some(200_000)).expect("run");
    let path = tmp("fuzz-base.elf");
    save(&m, &path).expect("save");
    let data = std::fs::read(&path).expect("read");
    check(&data).map(|_| ()).expect("valid base");
    // The first program header is the PT_NOTE one: its p_offset and p_filesz.
    let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let (notes_at, notes_len) = (word(64 + 8) as usize, word(64 + 32) as usize);
    let prefix = (notes_at + notes_len).min(data.len());
    let target = tmp("fuzz.elf");
    std::fs::write(&target, &data).expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .expect("open");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..1000 {
        let mut bytes = data[..prefix].to_vec();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let at = match rng.below(3) {
                0 => rng.below(64 + 3 * 56), // ELF and program headers
                _ => rng.below(prefix),
            };
            bytes[at] ^= 1 << rng.below(8);
        }
        if round % 2 == 0 {
            reseal(&mut bytes, notes_at, notes_len);
        }
        let len = if round % 10 == 9 {
            rng.below(data.len())
        } else {
            data.len()
        };
        std::os::unix::fs::FileExt::write_all_at(&file, &bytes, 0).expect("write");
        file.set_len(len as u64).expect("truncate");
        match resume(&target, ResumeOptions::default()) {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
        }
        // Restore the tail a truncation cut off.
        if len < data.len() {
            std::os::unix::fs::FileExt::write_all_at(&file, &data[prefix..], prefix as u64)
                .expect("write");
        }
    }
    eprintln!("mutations: {refused} refused, {accepted} accepted (RAM or padding bytes)");
    assert!(
        refused > 300 && accepted > 0,
        "{refused} refused, {accepted} accepted"
    );
    std::fs::remove_file(&path).expect("cleanup");
    std::fs::remove_file(&target).expect("cleanup");
}

/// Where the golden snapshot lives, and what it was taken of: the demo ROM with 1 MiB of RAM,
/// after [`GOLDEN_AT`] instructions.
const GOLDEN: &str = "../testsuite/golden/demo-1mib.elf.gz";
const GOLDEN_AT: u64 = 6_000;

/// Write the golden snapshot again (only when the format changes on purpose):
/// `cargo test -p nestor-machine --lib write_golden_snapshot -- --ignored`.
#[test]
#[ignore = "rewrites testsuite/golden; run by hand when the format changes on purpose"]
fn write_golden_snapshot() {
    use std::io::Write;
    let (mut m, serial) = with_serial(MachineConfig::new(nestor_roms::demo().to_vec(), 1));
    assert_eq!(
        m.run(Some(GOLDEN_AT)).expect("run"),
        MachineExit::BudgetExhausted
    );
    let path = tmp("golden.elf");
    save(&m, &path).expect("save");
    let raw = std::fs::read(&path).expect("read");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).expect("compress");
    std::fs::write(&out, gz.finish().expect("compress")).expect("write");
    let printed = serial.output_string();
    let rest = &nestor_roms::DEMO_EXPECTED_SERIAL[printed.len()..];
    eprintln!("golden written; printed before: {printed:?}; after: {rest:?}");
}

/// Save time, resume time and file size for 128 MiB, 512 MiB and 2 GiB guests whose RAM is
/// half filled with data (every other page), the rest left zero as a fresh guest's is:
/// `cargo test --release -p nestor-machine --lib snapshot_benchmark -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: writes up to 2 GiB; run by hand"]
fn snapshot_benchmark() {
    use std::time::Instant;
    for ram_mib in [128u64, 512, 2048] {
        let (mut m, _) = with_serial(MachineConfig::new(hello_rom(), ram_mib));
        m.run(Some(10_000)).expect("run");
        let page = vec![0xa5u8; 4096];
        for paddr in (0x10_0000..ram_mib << 20).step_by(8192) {
            assert!(m.board.wires.mem.write(paddr, &page));
        }
        let path = tmp(&format!("bench-{ram_mib}.elf"));
        let t = Instant::now();
        let report = save(&m, &path).expect("save");
        let save_time = t.elapsed();
        drop(m);
        let t = Instant::now();
        let (resumed, _) = resume_with_serial(&path);
        let resume_time = t.elapsed();
        let mut b = [0u8];
        assert!(resumed.board.wires.mem.read((ram_mib << 20) - 8192, &mut b) && b[0] == 0xa5);
        let on_disk = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap());
        eprintln!(
            "{ram_mib:>5} MiB guest: save {save_time:>8.2?}, resume {resume_time:>8.2?}, \
             file {} MiB ({} MiB on disk, {} MiB of RAM written)",
            report.file_len >> 20,
            (on_disk * 512) >> 20,
            report.ram_written >> 20
        );
        drop(resumed);
        std::fs::remove_file(&path).expect("cleanup");
    }
}

/// A guest that turned on 5-level paging cannot move to an engine whose CPU model lacks it;
/// the refusal names the feature.
#[test]
fn cr4_features_the_engine_lacks_are_named() {
    use nestor_cpu::cpuid::{leaf7, NESTOR64};
    use nestor_cpu::state::cr4;
    let mut kvm_like = NESTOR64;
    kvm_like.leaf7[1] &= !leaf7::ECX_LA57;
    let guest_cr4 = cr4::PAE | cr4::PGE | cr4::LA57;
    assert!(state::cr4_features_missing(guest_cr4, &NESTOR64).is_empty());
    assert_eq!(
        state::cr4_features_missing(guest_cr4, &kvm_like),
        vec!["5-level paging (CR4.LA57)"]
    );
    assert!(state::cr4_features_missing(cr4::PAE, &kvm_like).is_empty());
    let e = SnapshotError::CpuFeatures {
        features: "5-level paging (CR4.LA57)".into(),
        engine: "kvm".into(),
    };
    assert!(e.to_string().contains("--engine-plan ...,kvm"), "{e}");
}
