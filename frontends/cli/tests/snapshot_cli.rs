//! Snapshots through the `nestor` binary: `--snapshot-at`, `--snapshot-on-signal` and
//! `nestor resume` in a new process print exactly what an uninterrupted run prints.

use std::path::PathBuf;
use std::process::{Command, Output};

fn nestor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(args)
        .output()
        .expect("run nestor")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-snapcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn serial_to(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

#[test]
fn resume_in_a_new_process_prints_the_rest_of_the_output() {
    let (full, before, after, snap) = (
        tmp("full.txt"),
        tmp("before.txt"),
        tmp("after.txt"),
        tmp("demo.elf"),
    );
    let whole = nestor(&[
        "run",
        "--deterministic",
        "-m",
        "1",
        "--serial",
        &serial_to(&full),
    ]);
    assert_eq!(whole.status.code(), Some(0));
    let snap_s = snap.display().to_string();
    let args = [
        "run",
        "--deterministic",
        "-m",
        "1",
        "--snapshot-at",
        "6000",
        &snap_s,
    ];
    let first = nestor(&[&args[..], &["--serial", &serial_to(&before)]].concat());
    assert_eq!(
        first.status.code(),
        Some(0),
        "the run goes on after the snapshot"
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("saved after 6000 instructions"), "{stderr}");
    let resumed = nestor(&["resume", &snap_s, "--serial", &serial_to(&after)]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let full = std::fs::read(&full).expect("full");
    let after = std::fs::read(&after).expect("after");
    assert_eq!(std::fs::read(&before).expect("before"), full);
    assert!(!after.is_empty() && after.len() < full.len());
    assert!(
        full.ends_with(&after),
        "resumed output is the tail of the whole run"
    );
}

#[test]
fn resume_refuses_a_foreign_file_with_a_clear_message() {
    let bogus = tmp("bogus.elf");
    std::fs::write(&bogus, b"this is not a snapshot").expect("write");
    let out = nestor(&["resume", &bogus.display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a Nestor snapshot"), "{stderr}");
}

/// A ROM that writes "R" to COM1, then spins for ever.
fn spinning_rom() -> PathBuf {
    let mut image = vec![0xf4u8; 64 << 10];
    #[rustfmt::skip]
    let code = [
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xb0, b'R',       // mov al, 'R'
        0xee,             // out dx, al
        0xeb, 0xfe,       // jmp $
    ];
    image[..code.len()].copy_from_slice(&code);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    let path = tmp("spin.rom");
    std::fs::write(&path, image).expect("rom");
    path
}

/// Kills the child process when the test ends, passed or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigusr1_saves_a_snapshot_and_the_run_goes_on() {
    use std::io::BufRead;
    let (rom, snap) = (spinning_rom(), tmp("signal.elf"));
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_nestor"))
            .args([
                "run",
                "--deterministic",
                "-m",
                "1",
                "--serial",
                "none",
                "--bios",
            ])
            .arg(&rom)
            .arg("--snapshot-on-signal")
            .arg(&snap)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let pid = child.0.id().to_string();
    let mut stderr = std::io::BufReader::new(child.0.stderr.take().expect("stderr")).lines();
    // Blocking reads: the first line says the handler is in place, the next one that the
    // snapshot is written.
    let ready = stderr.next().expect("a line").expect("text");
    assert!(ready.contains("SIGUSR1"), "{ready}");
    let status = Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let saved = stderr.next().expect("a line").expect("text");
    assert!(saved.contains("saved after"), "{saved}");
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the run goes on"
    );
    drop(child);
    let resumed = nestor(&["resume", &snap.display().to_string(), "--max-insns", "1"]);
    assert_eq!(
        resumed.status.code(),
        Some(6),
        "resumed, then out of budget at once"
    );
}

/// Run the demo with a snapshot at `at` under `accel`, resume it under `resume_accel`: the
/// resumed run prints the rest of what the first one printed. `None` if KVM is unusable here.
fn cross_engine(accel: &str, at: &str, resume_accel: &str, name: &str) -> Option<usize> {
    let (full, after, snap) = (
        tmp(&format!("{name}-full.txt")),
        tmp(&format!("{name}-after.txt")),
        tmp(&format!("{name}.elf")),
    );
    let snap_s = snap.display().to_string();
    let first = nestor(&[
        "run",
        "--accel",
        accel,
        "--deterministic",
        "-m",
        "1",
        "--snapshot-at",
        at,
        &snap_s,
        "--serial",
        &serial_to(&full),
    ]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    if stderr.contains("--accel kvm:") {
        eprintln!("SKIP: KVM is not usable here: {stderr}");
        return None;
    }
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    let resumed = nestor(&[
        "resume",
        &snap_s,
        "--accel",
        resume_accel,
        "--serial",
        &serial_to(&after),
    ]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    if stderr.contains("--accel kvm:") {
        eprintln!("SKIP: KVM is not usable here: {stderr}");
        return None;
    }
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    let full = std::fs::read(&full).expect("full");
    let after = std::fs::read(&after).expect("after");
    assert!(
        full.ends_with(&after),
        "{accel} -> {resume_accel}: the rest of the output"
    );
    Some(full.len() - after.len())
}

#[test]
fn snapshots_move_between_the_interpreter_and_kvm() {
    // Under the interpreter 6000 instructions is after the demo's first three lines.
    if let Some(before) = cross_engine("interp", "6000", "kvm", "to-kvm") {
        assert_eq!(before, 123);
    }
    // KVM only estimates the count (from VM exits), so take the snapshot early: whatever was
    // printed by then, the rest must follow exactly.
    cross_engine("kvm", "1000", "interp", "from-kvm");
}

/// Debian's Linux in `--deterministic` mode, snapshotted mid-boot (by default after 5e9
/// instructions, with kernel messages both before and after) and resumed in a new process,
/// prints exactly the bytes that a run which never stopped prints after that point, reaches
/// the busybox shell and powers off. `NESTOR_LINUX_SNAPSHOT_AT` moves the snapshot point.
/// About 12 billion instructions: some 5 minutes in release, so a debug build skips it.
#[test]
fn linux_resumed_in_a_new_process_prints_what_an_uninterrupted_run_prints() {
    if cfg!(debug_assertions) {
        eprintln!("SKIP: two Linux boots need a release build (cargo test --release)");
        return;
    }
    let Some((kernel, initrd)) = linux_guest() else {
        return;
    };
    let at = std::env::var("NESTOR_LINUX_SNAPSHOT_AT").unwrap_or_else(|_| "5000000000".into());
    let (whole, before, after, snap) = (
        tmp("linux-whole.txt"),
        tmp("linux-before.txt"),
        tmp("linux-after.txt"),
        tmp("linux.elf"),
    );
    let snap_s = snap.display().to_string();
    let budget = "40000000000";
    let linux = linux_args(&kernel, &initrd);
    let linux: Vec<&str> = linux.iter().map(String::as_str).collect();
    let uninterrupted = nestor(
        &[
            &linux[..],
            &["--max-insns", budget, "--serial", &serial_to(&whole)],
        ]
        .concat(),
    );
    assert_eq!(uninterrupted.status.code(), Some(0), "{uninterrupted:?}");
    // The run that takes the snapshot ends there; the resumed one goes on in a new process.
    let first = nestor(
        &[
            &linux[..],
            &["--max-insns", &at, "--snapshot-at", &at, &snap_s],
            &["--serial", &serial_to(&before)],
        ]
        .concat(),
    );
    assert_eq!(first.status.code(), Some(6), "{first:?}");
    let resumed = nestor(&[
        "resume",
        &snap_s,
        "--max-insns",
        budget,
        "--serial",
        &serial_to(&after),
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let whole = std::fs::read(&whole).expect("whole");
    let (before, after) = (
        std::fs::read(&before).expect("before"),
        std::fs::read(&after).expect("after"),
    );
    let text = String::from_utf8_lossy(&whole);
    assert!(text.contains("nestor-guest: shell ready"), "{text}");
    assert!(
        !before.is_empty() && !after.is_empty(),
        "output on both sides"
    );
    let joined = [before.as_slice(), after.as_slice()].concat();
    if joined != whole {
        let same = joined
            .iter()
            .zip(&whole)
            .take_while(|(a, b)| a == b)
            .count();
        let show = |b: &[u8]| {
            String::from_utf8_lossy(&b[same.min(b.len())..(same + 300).min(b.len())]).into_owned()
        };
        panic!(
            "the output differs from the uninterrupted run at byte {same} (snapshot output ends at {}):\n--- uninterrupted\n{}\n--- snapshot + resume\n{}",
            before.len(),
            show(&whole),
            show(&joined)
        );
    }
    eprintln!(
        "snapshot at {at}: {} bytes before, {} after, identical to the uninterrupted run",
        before.len(),
        after.len()
    );
}

/// The guest cache's kernel and initrd, or `None` (with the reason printed) when missing.
fn linux_guest() -> Option<(String, String)> {
    let Some(home) = std::env::var_os("HOME") else {
        eprintln!("SKIP: no HOME, so no guest cache");
        return None;
    };
    let cache = PathBuf::from(home).join(".cache/nestor-guests");
    let (kernel, initrd) = (cache.join("vmlinuz"), cache.join("initrd.gz"));
    if !kernel.exists() || !initrd.exists() {
        eprintln!(
            "SKIP: {} lacks vmlinuz/initrd.gz (roms/fetch-guests.sh)",
            cache.display()
        );
        return None;
    }
    Some((kernel.display().to_string(), initrd.display().to_string()))
}

/// `nestor run` arguments that boot Debian's Linux to its shell in deterministic time.
fn linux_args(kernel: &str, initrd: &str) -> Vec<String> {
    [
        "run",
        "--cpu",
        "nestor64",
        "-m",
        "256",
        "--kernel",
        kernel,
        "--initrd",
        initrd,
        "--append",
        "console=ttyS0 earlyprintk=serial,ttyS0,115200",
        "--deterministic",
    ]
    .map(String::from)
    .to_vec()
}

/// `nestor` with `NESTOR_LOG=info` (engine switches are logged), or `None` with the reason
/// printed when this host's KVM is unusable.
fn nestor_logged(args: &[&str]) -> Option<Output> {
    let out = Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(args)
        .env("NESTOR_LOG", "info")
        .output()
        .expect("run nestor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("--accel kvm:") || stderr.contains("has KVM steps, but") {
        eprintln!("SKIP: KVM is not usable here: {stderr}");
        return None;
    }
    Some(out)
}

/// Debian's Linux on the interpreter to late in its boot, then on KVM for a stretch of VM exits,
/// snapshotted while KVM runs it; resumed in a new process under the interpreter it reaches the
/// busybox shell and powers off. `NESTOR_LINUX_KVM_AT` moves the switch (instructions).
#[test]
#[ignore = "boots Debian's Linux on the interpreter (about 3 minutes in release) and needs KVM"]
fn linux_snapshot_taken_under_kvm_resumes_under_the_interpreter_to_the_shell() {
    let Some((kernel, initrd)) = linux_guest() else {
        return;
    };
    let switch: u64 = std::env::var("NESTOR_LINUX_KVM_AT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_500_000_000);
    // KVM charges 1,000 instructions per VM exit: the snapshot falls after ~2,000 exits of
    // the 5,000 the plan gives KVM.
    let at = (switch + 2_000_000).to_string();
    let plan = format!("interp:{switch}i,kvm:5000x,interp");
    let (before, after, snap) = (
        tmp("kvm-before.txt"),
        tmp("kvm-after.txt"),
        tmp("kvm-linux.elf"),
    );
    let snap_s = snap.display().to_string();
    let linux = linux_args(&kernel, &initrd);
    let linux: Vec<&str> = linux.iter().map(String::as_str).collect();
    let extra = [
        "--engine-plan",
        &plan,
        "--max-insns",
        &at,
        "--snapshot-at",
        &at,
        &snap_s,
        "--serial",
        &serial_to(&before),
    ];
    let Some(first) = nestor_logged(&[&linux[..], &extra[..]].concat()) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(6), "{stderr}");
    let saved = stderr.find("saved after").expect("a snapshot");
    let to_kvm = stderr
        .find("engine switch: interp -> kvm")
        .expect("KVM ran");
    assert!(to_kvm < saved, "the switch to KVM came first: {stderr}");
    assert!(
        !stderr[..saved].contains("kvm -> interp"),
        "KVM was the engine when the snapshot was taken: {stderr}"
    );
    let resumed = nestor(&[
        "resume",
        &snap_s,
        "--accel",
        "interp",
        "--max-insns",
        "40000000000",
        "--serial",
        &serial_to(&after),
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    let after = std::fs::read(&after).expect("after");
    let text = String::from_utf8_lossy(&after);
    assert!(text.contains("nestor-guest: shell ready"), "{text}");
    assert!(text.contains("reboot: Power down"), "{text}");
}

/// The reverse of the test above: Debian's Linux booted on the interpreter with the CPU model
/// KVM offers (an engine plan that ends on KVM but never gets there), snapshotted under the
/// interpreter just before the shell and resumed in a new process under KVM, reaches the shell
/// and powers off within 4e9 instructions' worth of VM exits. On a host whose /dev/kvm is
/// nested PVM this fails: the guest's page-table walks crawl and its TSC jumps to the host's
/// (see the session report), so the test is run by hand on a host with a real KVM.
#[test]
#[ignore = "boots Debian's Linux on the interpreter (about 3 minutes in release), then needs a fast KVM"]
fn linux_snapshot_taken_on_the_interpreter_resumes_under_kvm_to_the_shell() {
    let Some((kernel, initrd)) = linux_guest() else {
        return;
    };
    // After "Checking user space page tables", before "Run /init" (for this guest cache).
    let at = std::env::var("NESTOR_LINUX_KVM_AT").unwrap_or_else(|_| "6050000000".into());
    let (after, snap) = (tmp("to-kvm-after.txt"), tmp("to-kvm-linux.elf"));
    let snap_s = snap.display().to_string();
    let linux = linux_args(&kernel, &initrd);
    let linux: Vec<&str> = linux.iter().map(String::as_str).collect();
    let extra = [
        "--engine-plan",
        "interp:1000000000000i,kvm",
        "--max-insns",
        &at,
        "--snapshot-at",
        &at,
        &snap_s,
        "--serial",
        "none",
    ];
    let Some(first) = nestor_logged(&[&linux[..], &extra[..]].concat()) else {
        return;
    };
    assert_eq!(first.status.code(), Some(6), "{first:?}");
    let budget: u64 = at.parse::<u64>().expect("a count") + 4_000_000_000;
    let Some(resumed) = nestor_logged(&[
        "resume",
        &snap_s,
        "--accel",
        "kvm",
        "--max-insns",
        &budget.to_string(),
        "--serial",
        &serial_to(&after),
    ]) else {
        return;
    };
    let after = std::fs::read(&after).expect("after");
    let text = String::from_utf8_lossy(&after);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}\n{text}");
    assert!(text.contains("nestor-guest: shell ready"), "{text}");
}
