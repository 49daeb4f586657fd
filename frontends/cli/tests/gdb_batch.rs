//! Debian's gdb, in batch mode, debugging a guest through `nestor run --gdb`: a ROM that starts
//! in real mode at the reset vector, enters protected mode, then long mode with paging, writes
//! a watched variable and prints on COM1. The assertions are on gdb's own output. The engine
//! is a parameter (`--accel`), so the same session runs under KVM once that engine exists.

use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the pieces of the guest live (linear = physical; the ROM is at 0xF0000).
const ROM_BASE: u64 = 0xf_0000;
const GDT: u64 = 0xf_0000;
const GDTR: u64 = 0xf_0040;
const REAL16: u64 = 0xf_0100;
const PM32: u64 = 0xf_0200;
const LM64: u64 = 0xf_0400;
/// The watched variable.
const WATCHED: u64 = 0x5000;
/// The string's physical home, and the virtual address paging maps there.
const STRING_PHYS: u64 = 0x20_0000;
const STRING_VIRT: u64 = 0x4000_0000;

/// The guest ROM, the linear addresses of the two CR0 writes gdb breaks on, and of the
/// instructions after the watched write and the read through paging (where watchpoints stop,
/// as x86 data breakpoints trap).
struct Guest {
    image: Vec<u8>,
    set_pe: u64,
    set_pg: u64,
    after_write: u64,
    after_read: u64,
}

fn assemble(a: &mut CodeAssembler, at: u64, label: &CodeLabel) -> (Vec<u8>, u64) {
    let res = a
        .assemble_options(at, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .expect("encode");
    let ip = res.label_ip(label).expect("label");
    (res.inner.code_buffer, ip)
}

/// Real mode at F000:0100: load the GDT, set CR0.PE, far jump to 32-bit code.
fn real_mode_code() -> Result<(Vec<u8>, u64), IcedError> {
    let mut a = CodeAssembler::new(16)?;
    let mut set_pe = a.create_label();
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, 0x7000u32)?;
    // COM1: 8 data bits (the line control register resets to 5).
    a.mov(dx, 0x3fbu32)?;
    a.mov(al, 3u32)?;
    a.out(dx, al)?;
    a.mov(dx, 0x3f8u32)?;
    a.mov(al, b'R' as u32)?;
    a.out(dx, al)?;
    a.mov(ax, 0xf000u32)?;
    a.mov(ds, ax)?;
    a.lgdt(ptr((GDTR - ROM_BASE) as u32))?;
    a.mov(eax, cr0)?;
    a.or(eax, 1)?;
    a.set_label(&mut set_pe)?;
    a.mov(cr0, eax)?;
    a.add_instruction(Instruction::with_far_branch(
        Code::Jmp_ptr1632,
        0x08,
        PM32 as u32,
    )?)?;
    let (code, ip) = assemble(&mut a, REAL16 - ROM_BASE, &set_pe);
    Ok((code, ip + ROM_BASE))
}

/// 32-bit protected mode: the string, 4-level tables (identity 2 MiB, and 1 GiB -> the
/// string's page), PAE, EFER.LME, CR0.PG, far jump to 64-bit code.
fn protected_mode_code() -> Result<(Vec<u8>, u64), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut set_pg = a.create_label();
    a.mov(ax, 0x10u32)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    a.mov(esp, 0x7000u32)?;
    let text = b"nestor-virt\0";
    for (i, chunk) in text.chunks(4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let at = STRING_PHYS as u32 + 4 * i as u32;
        a.mov(dword_ptr(at), u32::from_le_bytes(word))?;
    }
    for (at, entry) in [
        (0x1_0000u32, 0x1_1003u32),
        (0x1_1000, 0x1_2003),
        (0x1_1008, 0x1_3003),
        (0x1_2000, 0x83),
        (0x1_3000, STRING_PHYS as u32 | 0x83),
    ] {
        a.mov(dword_ptr(at), entry)?;
    }
    a.mov(eax, 0x1_0000u32)?;
    a.mov(cr3, eax)?;
    a.mov(eax, cr4)?;
    a.or(eax, 0x20)?;
    a.mov(cr4, eax)?;
    a.mov(ecx, 0xc000_0080u32)?;
    a.rdmsr()?;
    a.or(eax, 0x100)?;
    a.wrmsr()?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8000_0000u32 as i32)?;
    a.set_label(&mut set_pg)?;
    a.mov(cr0, eax)?;
    a.jmp_far(0x18, LM64 as u32)?;
    Ok(assemble(&mut a, PM32, &set_pg))
}

/// 64-bit mode: write the watched variable, read the string through paging, print "OK",
/// exit through isa-debug-exit. Returns the code and the addresses after the write and read.
fn long_mode_code() -> Result<(Vec<u8>, u64, u64), IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut after_write = a.create_label();
    let mut after_read = a.create_label();
    a.mov(rbx, WATCHED)?;
    a.mov(dword_ptr(rbx), 0x1234u32)?;
    a.set_label(&mut after_write)?;
    a.mov(eax, dword_ptr(STRING_VIRT))?;
    a.set_label(&mut after_read)?;
    a.mov(dx, 0x3f8u32)?;
    for c in b"OK\n" {
        a.mov(al, u32::from(*c))?;
        a.out(dx, al)?;
    }
    a.mov(al, 0x10u32)?;
    a.out(0xf4, al)?;
    a.hlt()?;
    let res = a
        .assemble_options(LM64, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .expect("encode");
    let write = res.label_ip(&after_write).expect("label");
    let read = res.label_ip(&after_read).expect("label");
    Ok((res.inner.code_buffer, write, read))
}

fn guest() -> Guest {
    let mut image = vec![0u8; 64 << 10];
    let mut put = |at: u64, bytes: &[u8]| {
        let off = (at - ROM_BASE) as usize;
        image[off..off + bytes.len()].copy_from_slice(bytes);
    };
    // Null, 32-bit code (0x08), data (0x10), 64-bit code (0x18). Accessed bits preset, as
    // firmware does for a GDT in ROM: the CPU would write them (KVM on PVM hangs on that).
    let gdt: [u64; 4] = [
        0,
        0x00cf_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00af_9b00_0000_ffff,
    ];
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    put(GDT, &gdt_bytes);
    let mut gdtr = vec![31u8, 0];
    gdtr.extend_from_slice(&(GDT as u32).to_le_bytes());
    put(GDTR, &gdtr);
    let (real, set_pe) = real_mode_code().expect("real-mode code");
    let (prot, set_pg) = protected_mode_code().expect("protected-mode code");
    let (long, after_write, after_read) = long_mode_code().expect("long-mode code");
    put(REAL16, &real);
    put(PM32, &prot);
    put(LM64, &long);
    put(0xf_fff0, &[0xea, 0x00, 0x01, 0x00, 0xf0]);
    Guest {
        image,
        set_pe,
        set_pg,
        after_write,
        after_read,
    }
}

fn tmp(accel: Option<&str>, name: &str) -> PathBuf {
    let engine = accel.unwrap_or("default");
    let dir = std::env::temp_dir().join(format!("nestor-gdb-{}-{engine}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn gdb_path() -> Option<PathBuf> {
    ["/usr/bin/gdb", "/usr/local/bin/gdb"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// gdb's commands: the assertions below follow them in order.
fn script(g: &Guest, port: u16) -> String {
    format!(
        "set pagination off
set confirm off
target remote 127.0.0.1:{port}
info registers rip
monitor mode
break *{pe:#x}
continue
info registers rip
stepi
stepi
monitor mode
info registers rip
break *{pg:#x}
continue
stepi
stepi
monitor mode
info registers rip
info registers eflags
watch *(int*){watched:#x}
continue
x/s {virt:#x}
monitor translate {virt:#x}
monitor regs
info registers cr3
delete
continue
",
        pe = g.set_pe,
        pg = g.set_pg,
        watched = WATCHED,
        virt = STRING_VIRT,
    )
}

/// gdb's commands for the read watchpoint: stop in long mode, then on the guest's read of
/// the string through paging (linear 0x40000000, physical 0x200000).
fn read_watch_script(_: &Guest, port: u16) -> String {
    format!(
        "set pagination off
set confirm off
target remote 127.0.0.1:{port}
hbreak *{LM64:#x}
continue
rwatch *(int*){STRING_VIRT:#x}
continue
info registers rip
delete
continue
"
    )
}

/// Start nestor under `accel` (None: the default engine) waiting for gdb, run `script`,
/// return what gdb and nestor said and did. `tag` keeps the files of sessions apart.
fn session(
    gdb: &Path,
    accel: Option<&str>,
    tag: &str,
    script: fn(&Guest, u16) -> String,
) -> Session {
    let tmp = |name: &str| tmp(accel, &format!("{tag}-{name}"));
    let g = guest();
    let rom = tmp("guest.rom");
    std::fs::write(&rom, &g.image).expect("write rom");
    let serial = tmp("serial.txt");
    let port = free_port();
    let mut args = vec![
        "run".to_string(),
        "--bios".into(),
        rom.display().to_string(),
        "--cpu".into(),
        "nestor64".into(),
        "--deterministic".into(),
        "--max-insns".into(),
        "10000000".into(),
        "--serial".into(),
        format!("file:{}", serial.display()),
        "--gdb".into(),
        format!("tcp:127.0.0.1:{port}"),
        "-S".into(),
    ];
    if let Some(a) = accel {
        args.extend(["--accel".to_string(), a.to_string()]);
    }
    let mut nestor = Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nestor");
    let mut stderr = BufReader::new(nestor.stderr.take().expect("stderr"));
    let mut line = String::new();
    // Wait until nestor listens: it says so before accepting.
    while !line.contains("waiting for gdb") {
        line.clear();
        let n = stderr.read_line(&mut line).expect("nestor stderr");
        assert!(n > 0, "nestor ended before listening");
    }
    // The rest of nestor's messages, for the report (and to tell a missing feature).
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let script_path = tmp("session.gdb");
    std::fs::write(&script_path, script(&g, port)).expect("write script");
    // One file for gdb's stdout and stderr keeps monitor replies in order with the rest.
    let log_path = tmp("gdb.log");
    let log = std::fs::File::create(&log_path).expect("gdb log");
    let gdb_status = Command::new(gdb)
        .args(["-nx", "-batch", "-x"])
        .arg(&script_path)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .status()
        .expect("run gdb");
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(gdb_status.code().is_some(), "gdb crashed:\n{text}");
    // Once connected, nestor ends when gdb goes; if gdb never got in, it still waits.
    if !text.contains("0x00000000fffffff0 in ?? ()") {
        let _ = nestor.kill();
    }
    let status = nestor.wait().expect("nestor exit").code();
    Session {
        gdb: text,
        status,
        serial: std::fs::read_to_string(&serial).unwrap_or_default(),
        nestor_stderr: rest.join().unwrap_or_default(),
    }
}

struct Session {
    gdb: String,
    status: Option<i32>,
    serial: String,
    nestor_stderr: String,
}

/// `needle`s must appear in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut rest = haystack;
    for n in needles {
        match rest.find(n) {
            Some(i) => rest = &rest[i + n.len()..],
            None => panic!("'{n}' missing (in order) from gdb's output:\n{haystack}"),
        }
    }
}

fn check_session(accel: Option<&str>) {
    let Some(gdb) = gdb_path() else {
        eprintln!("SKIP: gdb is not installed (apt-get install gdb)");
        return;
    };
    let g = guest();
    let run = session(&gdb, accel, "full", script);
    if run.nestor_stderr.contains("does not support the debugger") {
        eprintln!("SKIP: engine {accel:?} has no debugger support yet");
        return;
    }
    let out = format!("{}\n--- nestor stderr ---\n{}", run.gdb, run.nestor_stderr);
    assert!(
        !out.contains("packet reply is too long"),
        "gdb lost the register layout:\n{out}"
    );
    let pe = format!("Breakpoint 1, {:#018x} in ?? ()", g.set_pe);
    let pg = format!("Breakpoint 2, {:#018x} in ?? ()", g.set_pg);
    assert_in_order(
        &out,
        &[
            // Reset vector: the linear PC CS.base + IP.
            "rip            0xfffffff0",
            "real mode, paging off, CPL 0",
            &pe,
            // One step later CR0.PE is set: 16-bit protected mode, the PC still linear.
            &format!("{:#018x} in ?? ()", g.set_pe + 3),
            "protected mode (32-bit code), paging off",
            &format!("rip            {PM32:#x}"),
            &pg,
            "long mode (64-bit code), paging 4-level",
            &format!("rip            {:#x}", LM64),
        ],
    );
    // Under KVM the watchpoint is a write-protected page, not a debug register: it fires
    // even where the host never loads the debugger's DR7 (nested PVM).
    assert_in_order(
        &out,
        &[
            "Hardware watchpoint 3: *(int*)0x5000",
            "Old value = 0",
            "New value = 4660",
            &format!("{:#018x} in ?? ()", g.after_write),
            "0x40000000:\t\"nestor-virt\"",
            "linear 0x40000000: paging 4-level, cr3=0x10000",
            // The guest's own walks set A; the debugger's walk of an address the guest
            // never touched leaves it clear.
            "PML4E[  0] @ 0x0000010000 = 0x0000000000011023 [P RW A]",
            "PDPTE[  1] @ 0x0000011008 = 0x0000000000013003 [P RW]",
            "PDE  [  0] @ 0x0000013000 = 0x0000000000200083 [P RW PS]",
            "-> physical 0x200000 (2 MiB page)",
            "long mode (64-bit code)",
            "cr0=0x00000000e0000011 [PE ET NW CD PG]",
            "efer=0x0000000000000500 [LME LMA]",
            "cr3            0x10000",
            "exited with code 041",
        ],
    );
    assert_eq!(run.status, Some((0x10 << 1) | 1), "{out}");
    assert_eq!(run.serial, "ROK\n", "{out}");
}

#[test]
fn gdb_debugs_real_protected_and_long_mode_interp() {
    check_session(None);
}

/// A read watchpoint through paging: under KVM its page is unmapped, so this is the path
/// where the access is completed by Nestor and the stop comes after the reading instruction.
fn check_read_watch(accel: Option<&str>) {
    let Some(gdb) = gdb_path() else {
        eprintln!("SKIP: gdb is not installed (apt-get install gdb)");
        return;
    };
    let g = guest();
    let run = session(&gdb, accel, "rwatch", read_watch_script);
    let out = format!("{}\n--- nestor stderr ---\n{}", run.gdb, run.nestor_stderr);
    assert_in_order(
        &out,
        &[
            &format!("Hardware assisted breakpoint 1 at {LM64:#x}"),
            &format!("Breakpoint 1, {LM64:#018x} in ?? ()"),
            "Hardware read watchpoint 2: *(int*)0x40000000",
            // "nest" as a little-endian int.
            &format!("Value = {}", u32::from_le_bytes(*b"nest")),
            &format!("rip            {:#x}", g.after_read),
            "exited with code 041",
        ],
    );
    assert_eq!(run.status, Some((0x10 << 1) | 1), "{out}");
    assert_eq!(run.serial, "ROK\n", "{out}");
}

#[test]
fn gdb_read_watchpoint_through_paging_interp() {
    check_read_watch(None);
}

#[test]
fn gdb_read_watchpoint_through_paging_kvm() {
    if let Some(why) = kvm_cannot_run_guest("rwatch") {
        eprintln!("SKIP: {why}");
        return;
    }
    check_read_watch(Some("kvm"));
}

/// Why this host's KVM cannot run the test guest on its own (no debugger involved), if
/// it cannot: then the gdb session under KVM would test the host, not the stub.
fn kvm_cannot_run_guest(tag: &str) -> Option<String> {
    if !Path::new("/dev/kvm").exists() {
        return Some("no /dev/kvm on this host".into());
    }
    let rom = tmp(Some("kvm-plain"), &format!("{tag}-guest.rom"));
    std::fs::write(&rom, guest().image).expect("write rom");
    let serial = tmp(Some("kvm-plain"), &format!("{tag}-serial.txt"));
    let out = Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(["run", "--bios"])
        .arg(&rom)
        .args([
            "--cpu",
            "nestor64",
            "--deterministic",
            "--max-insns",
            "10000000",
        ])
        .args(["--accel", "kvm", "--serial"])
        .arg(format!("file:{}", serial.display()))
        .output()
        .expect("run nestor");
    let printed = std::fs::read_to_string(&serial).unwrap_or_default();
    if out.status.code() == Some((0x10 << 1) | 1) && printed == "ROK\n" {
        return None;
    }
    Some(format!(
        "this host's KVM does not run the test guest even without gdb (exit status {:?}, \
         serial {printed:?}, nestor said {:?}); the session needs a KVM that does",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

#[test]
fn gdb_debugs_real_protected_and_long_mode_kvm() {
    if let Some(why) = kvm_cannot_run_guest("full") {
        eprintln!("SKIP: {why}");
        return;
    }
    check_session(Some("kvm"));
}
