//! `--audio-wav` end to end: guest programs play through the PC speaker, the Sound Blaster's
//! DSP and its OPL3; the recorded file's pitch is measured here (no outside tools).

use iced_x86::code_asm::*;
use nestor_sound::analysis::{rms, zero_crossing_frequency};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Exit status when --max-insns runs out.
const BUDGET_EXHAUSTED: i32 = 6;
/// Instructions (4 ns each, idle time included) in half a second of virtual time.
const HALF_SECOND: &str = "125000000";

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-audio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A 64 KiB ROM whose reset vector jumps to `body`, assembled at F000:0000.
fn rom(name: &str, body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> String {
    rom_with_data(name, &[], body)
}

/// Where [`rom_with_data`] puts its data in the ROM segment (F000:8000).
const DATA: u16 = 0x8000;

/// A ROM as [`rom`] does, with `data` at F000:8000.
fn rom_with_data(
    name: &str,
    data: &[u8],
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> String {
    let mut a = CodeAssembler::new(16).expect("assembler");
    body(&mut a).expect("assemble");
    let code = a.assemble(0).expect("encode");
    let mut image = vec![0xffu8; 64 << 10];
    image[..code.len()].copy_from_slice(&code);
    image[usize::from(DATA)..usize::from(DATA) + data.len()].copy_from_slice(data);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    let path = tmp(name);
    std::fs::write(&path, image).expect("write rom");
    path.display().to_string()
}

/// Halt with interrupts on for ever: virtual time runs on in idle steps to the budget. The
/// interrupt controllers are initialized with every line masked, so the sound card's
/// interrupt never reaches the (empty) vector table.
fn idle(a: &mut CodeAssembler) -> Result<(), IcedError> {
    for (port, value) in [
        (0x20, 0x11),
        (0x21, 0x08),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xa0, 0x11),
        (0xa1, 0x70),
        (0xa1, 0x02),
        (0xa1, 0x01),
        (0x21, 0xff),
        (0xa1, 0xff),
    ] {
        outb(a, port, value)?;
    }
    a.sti()?;
    let mut wait = a.create_label();
    a.set_label(&mut wait)?;
    a.hlt()?;
    a.jmp(wait)
}

/// Run a ROM for half a second of virtual time and return the recorded WAV.
fn record(rom_path: &str, wav_name: &str) -> (Output, nestor_audio::Wav, Vec<u8>) {
    let wav = tmp(wav_name);
    let out = Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args([
            "run",
            "--bios",
            rom_path,
            "--deterministic",
            "--serial",
            "none",
        ])
        .args(["--max-insns", HALF_SECOND, "--audio-wav"])
        .arg(&wav)
        .output()
        .expect("run nestor");
    let bytes = std::fs::read(&wav).expect("wav written");
    let parsed = nestor_audio::read_wav(&bytes).expect("valid wav");
    (out, parsed, bytes)
}

fn pitch(wav: &nestor_audio::Wav, skip_ms: usize) -> f64 {
    let left = wav.channel(0);
    let skip = wav.sample_rate as usize * skip_ms / 1000;
    let tail = &left[skip.min(left.len())..];
    assert!(rms(tail) > 500.0, "the recording is silent");
    let f = zero_crossing_frequency(tail, wav.sample_rate).expect("a periodic signal");
    eprintln!("measured {f:.3} Hz, rms {:.0}", rms(tail));
    f
}

#[test]
fn pc_speaker_tone_is_recorded_at_its_pitch() {
    let divisor = 2712u16; // 1193182 / 2712 = 439.97 Hz
    let bios = rom("speaker.rom", |a| {
        a.mov(al, 0xb6)?; // counter 2, LSB then MSB, mode 3
        a.out(0x43, al)?;
        a.mov(ax, u32::from(divisor))?;
        a.out(0x42, al)?;
        a.mov(al, ah)?;
        a.out(0x42, al)?;
        a.in_(al, 0x61)?;
        a.or(al, 3)?; // gate and speaker on
        a.out(0x61, al)?;
        idle(a)
    });
    let (out, wav, bytes) = record(&bios, "speaker.wav");
    assert_eq!(
        out.status.code(),
        Some(BUDGET_EXHAUSTED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!((wav.sample_rate, wav.channels), (48_000, 2));
    let frames = wav.samples.len() / 2;
    assert!(
        (23_900..=24_000).contains(&frames),
        "{frames} frames in half a second"
    );
    let f = pitch(&wav, 20);
    assert!((f - 440.0).abs() / 440.0 < 0.01, "measured {f} Hz");
    // Deterministic time: the same run writes the same bytes.
    let (_, _, again) = record(&bios, "speaker2.wav");
    assert_eq!(bytes, again);
}

/// `out port, value` through DX (any port).
fn outb(a: &mut CodeAssembler, port: u16, value: u8) -> Result<(), IcedError> {
    a.mov(dx, u32::from(port))?;
    a.mov(al, u32::from(value))?;
    a.out(dx, al)
}

/// Reset the DSP and turn the mixer's master, voice and FM volumes up.
fn sb16_setup(a: &mut CodeAssembler) -> Result<(), IcedError> {
    outb(a, 0x226, 1)?;
    outb(a, 0x226, 0)?;
    for (index, value) in [(0x22, 0xff), (0x04, 0xff), (0x26, 0xff)] {
        outb(a, 0x224, index)?;
        outb(a, 0x225, value)?;
    }
    Ok(())
}

#[test]
fn sound_blaster_dma_playback_is_recorded_at_its_pitch() {
    // 40 periods of an 8-bit unsigned sine, 50 samples each: 441 Hz at 22050 Hz.
    let table: Vec<u8> = (0..2000)
        .map(|i| (128.0 + 100.0 * (2.0 * std::f64::consts::PI * f64::from(i) / 50.0).sin()) as u8)
        .collect();
    let len = table.len() as u32;
    let bios = rom_with_data("sb16.rom", &table, |a| {
        a.cld()?;
        a.mov(ax, 0xf000u32)?; // copy the table to 1000:0000 (physical 0x10000)
        a.mov(ds, ax)?;
        a.mov(ax, 0x1000u32)?;
        a.mov(es, ax)?;
        a.mov(si, u32::from(DATA))?;
        a.xor(di, di)?;
        a.mov(cx, len)?;
        a.rep().movsb()?;
        sb16_setup(a)?;
        // 8237: channel 4 cascades; channel 1 single, auto-init, read, at 0x10000.
        for (port, value) in [
            (0xd6, 0xc0),
            (0xd4, 0x00),
            (0x0a, 0x05),
            (0x0b, 0x59),
            (0x0c, 0x00),
            (0x02, 0x00),
            (0x02, 0x00),
            (0x83, 0x01),
            (0x03, (len - 1) as u8),
            (0x03, ((len - 1) >> 8) as u8),
            (0x0a, 0x01),
        ] {
            outb(a, port, value)?;
        }
        // DSP: 22050 Hz; 8-bit auto-init output, mono unsigned, one block = the buffer.
        for byte in [
            0x41,
            0x56,
            0x22,
            0xc6,
            0x00,
            (len - 1) as u8,
            ((len - 1) >> 8) as u8,
        ] {
            outb(a, 0x22c, byte)?;
        }
        idle(a)
    });
    let (out, wav, bytes) = record(&bios, "sb16.wav");
    assert_eq!(
        out.status.code(),
        Some(BUDGET_EXHAUSTED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = pitch(&wav, 10);
    assert!((f - 441.0).abs() / 441.0 < 0.01, "measured {f} Hz");
    let (_, _, again) = record(&bios, "sb16-2.wav");
    assert_eq!(bytes, again, "deterministic");
}

#[test]
fn opl3_note_is_recorded_at_its_pitch() {
    let bios = rom("opl.rom", |a| {
        sb16_setup(a)?;
        // Channel 0: operator 1 silent, operator 2 a sustained sine; F-number 0x244, block 4:
        // 0x244 * 49716 / 2^16 = 440.0 Hz.
        for (reg, value) in [
            (0x20, 0x21),
            (0x40, 0x3f),
            (0x23, 0x21),
            (0x43, 0x00),
            (0x63, 0xf0),
            (0x83, 0x0f),
            (0xa0, 0x44),
            (0xb0, 0x32),
        ] {
            outb(a, 0x388, reg)?;
            outb(a, 0x389, value)?;
        }
        idle(a)
    });
    let (out, wav, _) = record(&bios, "opl.wav");
    assert_eq!(
        out.status.code(),
        Some(BUDGET_EXHAUSTED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = pitch(&wav, 10);
    assert!((f - 440.0).abs() / 440.0 < 0.01, "measured {f} Hz");
}

/// A guest times stick A's X one-shot by counting reads of port 0x201, as a game's joystick
/// routine does, and reports the count's high byte through isa-debug-exit.
fn gameport_count(x: f32) -> i32 {
    let mut a = CodeAssembler::new(16).expect("assembler");
    let body = |a: &mut CodeAssembler| -> Result<(), IcedError> {
        let mut poll = a.create_label();
        let mut done = a.create_label();
        a.mov(dx, 0x201u32)?;
        a.out(dx, al)?; // fire the one-shots
        a.xor(cx, cx)?;
        a.set_label(&mut poll)?;
        a.in_(al, dx)?;
        a.test(al, 1)?;
        a.jz(done)?;
        a.inc(cx)?;
        a.cmp(cx, 0xffffu32)?;
        a.jne(poll)?;
        a.set_label(&mut done)?;
        a.mov(al, ch)?;
        a.out(0xf4, al)?;
        a.hlt()
    };
    body(&mut a).expect("assemble");
    let code = a.assemble(0).expect("encode");
    let mut image = vec![0xffu8; 64 << 10];
    image[..code.len()].copy_from_slice(&code);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    let config = nestor_machine::MachineConfig::new(image, 16);
    let mut machine = nestor_machine::Machine::new(config).expect("machine");
    let port = machine
        .board
        .device_mut::<nestor_gameport::Gameport>()
        .expect("the PC has a game port");
    port.input().set_stick(
        0,
        nestor_gameport::Stick {
            connected: true,
            x,
            ..Default::default()
        },
    );
    match machine.run(Some(10_000_000)).expect("run") {
        nestor_machine::MachineExit::DebugExit(code) => code >> 1,
        other => panic!("guest did not report: {other:?}"),
    }
}

#[test]
fn game_port_one_shots_are_timed_by_the_guest_reads() {
    // Six instructions (24 ns) a read: 24.2 us is ~1000 reads, 1124.2 us ~46800.
    let left = gameport_count(-1.0);
    let centre = gameport_count(0.0);
    let right = gameport_count(1.0);
    assert_eq!(left, 1000 >> 8, "{left}");
    assert!((90..=95).contains(&centre), "{centre}");
    assert!((180..=184).contains(&right), "{right}");
}

/// The built-in Tetris demo beeps through the PC speaker when a piece lands (PIT divisor
/// 4561, about 261.6 Hz, for three 100 Hz ticks): drop one with Space and measure the beep.
#[test]
fn tetris_demo_landing_beep_is_recorded() {
    let wav_path = tmp("tetris.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args([
            "run",
            "--demo",
            "tetris",
            "--deterministic",
            "--serial",
            "none",
        ])
        .args(["--max-insns", "25000000", "--keys-at", "3000000:Space"])
        .arg("--audio-wav")
        .arg(&wav_path)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run nestor");
    assert_eq!(
        out.status.code(),
        Some(BUDGET_EXHAUSTED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wav = nestor_audio::read_wav(&std::fs::read(&wav_path).expect("wav")).expect("valid");
    let left = wav.channel(0);
    assert_eq!(left.len(), 4_800, "100 ms of virtual time");
    let first = left.iter().position(|&s| s != 0).expect("a beep");
    let last = left.iter().rposition(|&s| s != 0).expect("a beep");
    let beep = &left[first..=last];
    let ms = beep.len() * 1000 / 48_000;
    assert!(
        (25..=31).contains(&ms),
        "the beep lasts three ticks: {ms} ms"
    );
    let f = zero_crossing_frequency(beep, 48_000).expect("a tone");
    let want = 1_193_182.0 / 4561.0;
    assert!((f - want).abs() / want < 0.01, "measured {f} Hz");
}

/// `nestor resume --audio-wav` records too. The demo's first piece falls on its own and
/// beeps when it lands, about 10 s of virtual time in; a run snapshotted early and resumed
/// from the file must record that beep, and (time being deterministic) exactly the samples
/// the uninterrupted run recorded after the snapshot point.
#[test]
fn resumed_demo_records_its_landing_beep() {
    let (snap, full_path, resumed_path) = (tmp("demo.elf"), tmp("full.wav"), tmp("resumed.wav"));
    let budget = "3000000000"; // 12 s of virtual time
    let nestor = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nestor"));
        c.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
        c
    };
    let out = nestor()
        .args([
            "run",
            "--demo",
            "tetris",
            "--deterministic",
            "--serial",
            "none",
        ])
        .args(["--max-insns", budget, "--snapshot-at", "3000000"])
        .arg(&snap)
        .arg("--audio-wav")
        .arg(&full_path)
        .output()
        .expect("run nestor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(BUDGET_EXHAUSTED), "{stderr}");
    let out = nestor()
        .arg("resume")
        .arg(&snap)
        .args(["--serial", "none", "--max-insns", budget, "--audio-wav"])
        .arg(&resumed_path)
        .output()
        .expect("resume nestor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(BUDGET_EXHAUSTED), "{stderr}");
    let read = |p: &PathBuf| nestor_audio::read_wav(&std::fs::read(p).expect("wav")).expect("wav");
    let (full, resumed) = (read(&full_path).channel(0), read(&resumed_path).channel(0));
    // The resumed recording starts at the snapshot (12 ms in: 576 frames), not at zero.
    let skipped = full.len() - resumed.len();
    assert!(
        (570..=700).contains(&skipped),
        "{skipped} frames before the snapshot"
    );
    assert!(
        resumed == full[skipped..],
        "the resumed run recorded other samples"
    );
    let first = resumed
        .iter()
        .position(|&s| s != 0)
        .expect("a beep after the resume");
    let last = resumed.iter().rposition(|&s| s != 0).expect("a beep");
    let f = zero_crossing_frequency(&resumed[first..=last], 48_000).expect("a tone");
    let want = 1_193_182.0 / 4561.0;
    assert!((f - want).abs() / want < 0.01, "measured {f} Hz");
    eprintln!(
        "landing beep at {:.2} s after the resume, {f:.2} Hz",
        first as f64 / 48_000.0
    );
}
