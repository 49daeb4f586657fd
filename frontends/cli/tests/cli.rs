//! The `nestor` binary end to end: exit statuses, serial/debugcon/POST output, host errors.

use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::{Command, Output};

fn nestor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(args)
        .output()
        .expect("run nestor")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A 64 KiB ROM whose reset vector jumps to `body`, assembled at F000:0000.
fn rom(name: &str, body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> String {
    let mut a = CodeAssembler::new(16).expect("assembler");
    body(&mut a).expect("assemble");
    let code = a.assemble(0).expect("encode");
    let mut image = vec![0xffu8; 64 << 10];
    image[..code.len()].copy_from_slice(&code);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    let path = tmp(name);
    std::fs::write(&path, image).expect("write rom");
    path.display().to_string()
}

#[test]
fn default_guest_prints_banner_and_exits_zero() {
    let out_file = tmp("serial.txt");
    let serial = format!("file:{}", out_file.display());
    let out = nestor(&["run", "--clock", "deterministic", "--serial", &serial]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(out_file).expect("serial file");
    assert!(text.starts_with("Nestor demo ROM: alive\r\n"), "{text}");
    assert!(text.ends_with("bye\r\n"), "{text}");
}

#[test]
fn isa_debug_exit_sets_the_status() {
    let bios = rom("exit.rom", |a| {
        a.mov(al, 0x21)?;
        a.out(0xf4, al)?;
        a.hlt()
    });
    let out = nestor(&["run", "--bios", &bios, "--serial", "none"]);
    assert_eq!(out.status.code(), Some((0x21 << 1) | 1));
}

#[test]
fn post_codes_and_debug_console_are_logged() {
    let bios = rom("post.rom", |a| {
        for v in [0x12u32, 0xab] {
            a.mov(al, v)?;
            a.out(0x80, al)?;
        }
        for c in b"hi\n" {
            a.mov(al, u32::from(*c))?;
            a.out(0xe9, al)?;
        }
        a.mov(al, 0)?;
        a.out(0xf4, al)
    });
    let (post, con) = (tmp("post.log"), tmp("con.txt"));
    let con_arg = format!("file:{}", con.display());
    let out = nestor(&[
        "run",
        "--bios",
        &bios,
        "--post-log",
        &post.display().to_string(),
        "--debugcon",
        &con_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(post).expect("post log"), "12\nAB\n");
    assert_eq!(std::fs::read_to_string(con).expect("debugcon"), "hi\n");
}

#[test]
fn triple_fault_budget_and_dead_halt_have_their_own_statuses() {
    // An empty IDT: INT3 faults, the #GP faults, the #DF faults: shutdown.
    let triple = rom("triple.rom", |a| {
        // RAM at 0:0500 is zero: IDTR limit 0.
        a.xor(ax, ax)?;
        a.mov(ds, ax)?;
        a.lidt(ptr(0x500))?;
        a.int3()
    });
    let out = nestor(&["run", "--bios", &triple, "--serial", "none"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("triple fault"));

    let spin = rom("spin.rom", |a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.jmp(top)
    });
    let out = nestor(&["run", "--bios", &spin, "--max-insns", "1000"]);
    assert_eq!(out.status.code(), Some(6));

    let dead = rom("dead.rom", |a| {
        a.cli()?;
        a.hlt()
    });
    let out = nestor(&["run", "--bios", &dead]);
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn host_errors_exit_2_with_a_message() {
    let out = nestor(&["run", "--bios", "/nonexistent/bios.bin"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read firmware"));

    let small = tmp("small.rom");
    std::fs::write(&small, [0u8; 1000]).expect("write");
    let out = nestor(&["run", "--bios", &small.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 KiB"));

    let out = nestor(&["run", "--serial", "tcp:1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn trace_logs_executed_instructions() {
    let out = nestor(&["run", "--trace", "--max-insns", "5", "--serial", "none"]);
    assert_eq!(out.status.code(), Some(6));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("f000:0000fff0 jmp far"), "{log}");
    assert!(log.contains("f000:00000000 cli"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "no colour codes when stderr is not a terminal"
    );
}

#[test]
fn deterministic_runs_print_identical_bytes() {
    let run = |name: &str| {
        let out_file = tmp(name);
        let serial = format!("file:{}", out_file.display());
        let out = nestor(&[
            "run",
            "--deterministic",
            "--bios",
            "nestor",
            "--serial",
            &serial,
        ]);
        assert_eq!(
            out.status.code(),
            Some(8),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(out_file).expect("serial file")
    };
    let first = run("det1.txt");
    assert!(String::from_utf8_lossy(&first).contains("Nestor BIOS"));
    assert_eq!(first, run("det2.txt"));
}
