//! The KVM engine on the whole machine: the demo ROM under KVM and under engine plans that
//! switch between the interpreter and KVM, compared with an interpreter-only run. Where
//! /dev/kvm is unusable each test says so and skips.

use nestor_device::testing::BufferBackend;
use nestor_machine::kvm::{Accel, EnginePlan};
use nestor_machine::{Machine, MachineConfig, MachineExit};

/// Why KVM tests cannot run here, printed by each skipping test.
fn kvm_unusable() -> Option<String> {
    nestor_machine::kvm::probe().err().map(|e| e.to_string())
}

macro_rules! require_kvm {
    () => {
        if let Some(why) = kvm_unusable() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn demo(accel: Accel, plan: Option<&str>) -> (MachineExit, String) {
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), 16);
    config.serial[0] = Some(Box::new(serial.clone()));
    config.accel = accel;
    config.engine_plan = plan.map(|p| p.parse::<EnginePlan>().expect("plan"));
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(50_000_000)).expect("run");
    eprintln!(
        "{plan:?}: ended on {} after {} VM exits, {} instructions",
        m.vcpu.name(),
        m.vcpu.exits(),
        m.vcpu.retired()
    );
    (exit, serial.output_string())
}

#[test]
fn demo_rom_runs_under_kvm() {
    require_kvm!();
    let (exit, out) = demo(Accel::Kvm, None);
    assert_eq!(out, nestor_roms::DEMO_EXPECTED_SERIAL);
    assert_eq!(exit, MachineExit::PowerOff);
}

#[test]
fn demo_rom_survives_engine_switches() {
    require_kvm!();
    let reference = demo(Accel::Interp, None);
    for plan in [
        "interp:2000i,kvm:20x,interp:3000i,kvm:30x,interp",
        "kvm:5x,interp:500i,kvm:10x,interp:500i,kvm",
    ] {
        assert_eq!(demo(Accel::Interp, Some(plan)), reference, "{plan}");
    }
}

/// set_state then state through a real vCPU: every field KVM holds comes back unchanged.
#[test]
fn registers_round_trip_through_kvm() {
    require_kvm!();
    use nestor_cpu::state::{attr, cr0, cr4};
    use nestor_machine::Vcpu;
    let mut mem = nestor_machine::memory::GuestMemory::new(16, vec![0xf4; 64 << 10]).unwrap();
    let mut v = nestor_machine::kvm::KvmVcpu::new(&mut mem, &nestor_cpu::cpuid::NESTOR64).unwrap();
    let mut s = v.state();
    for (i, g) in s.gpr.iter_mut().enumerate() {
        *g = 0x1000 + i as u64;
    }
    s.rip = 0x1234;
    s.rflags = 0x2c7;
    let flat = |code: bool| nestor_cpu::Segment {
        base: 0,
        limit: u32::MAX,
        selector: if code { 8 } else { 16 },
        attr: attr::P
            | attr::S
            | attr::RW
            | attr::ACCESSED
            | attr::DB
            | attr::G
            | if code { attr::CODE } else { 0 },
    };
    s.seg = [
        flat(false),
        flat(true),
        flat(false),
        flat(false),
        flat(false),
        flat(false),
    ];
    s.cr0 = cr0::PE | cr0::ET | cr0::NE | cr0::MP;
    s.cr4 = cr4::OSFXSR | cr4::OSXMMEXCPT;
    s.cr2 = 0xabcd_0000;
    s.gdtr = nestor_cpu::TableReg {
        base: 0x1000,
        limit: 0x3f,
    };
    s.idtr = nestor_cpu::TableReg {
        base: 0x2000,
        limit: 0x7ff,
    };
    s.x87.fcw = 0x027f;
    s.x87.mxcsr = 0x1f80 | 0x40;
    s.x87.st[7] = nestor_cpu::x87::F80 {
        mant: 0xc000_0000_0000_0000,
        se: 0x4000,
    };
    s.x87.ftw = 0x80;
    s.x87.fsw = 7 << 11;
    s.xmm[3] = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
    s.dr[0] = 0x5000;
    s.dr[7] = 0x401;
    s.msr.sysenter_cs = 0x10;
    s.msr.sysenter_eip = 0xc000_1000;
    s.msr.pat = 0x0007_0406_0007_0406;
    v.set_state(&s).unwrap();
    v.sync_with_kvm().unwrap();
    let back = v.state();
    let mut diffs = Vec::new();
    let mut cmp = |what: &str, a: String, b: String| {
        if a != b {
            diffs.push(format!("{what}: set {a} / got {b}"));
        }
    };
    cmp("gpr", format!("{:x?}", s.gpr), format!("{:x?}", back.gpr));
    cmp(
        "rip/rflags",
        format!("{:x} {:x}", s.rip, s.rflags),
        format!("{:x} {:x}", back.rip, back.rflags),
    );
    cmp(
        "segments",
        format!("{:x?}", s.seg),
        format!("{:x?}", back.seg),
    );
    cmp(
        "cr0/cr2/cr4",
        format!("{:x} {:x} {:x}", s.cr0, s.cr2, s.cr4),
        format!("{:x} {:x} {:x}", back.cr0, back.cr2, back.cr4),
    );
    cmp(
        "tables",
        format!("{:x?} {:x?}", s.gdtr, s.idtr),
        format!("{:x?} {:x?}", back.gdtr, back.idtr),
    );
    cmp(
        "x87",
        format!("{:x?}", (s.x87.fcw, s.x87.fsw, s.x87.ftw, s.x87.st)),
        format!(
            "{:x?}",
            (back.x87.fcw, back.x87.fsw, back.x87.ftw, back.x87.st)
        ),
    );
    cmp(
        "mxcsr",
        format!("{:x}", s.x87.mxcsr),
        format!("{:x}", back.x87.mxcsr),
    );
    cmp("xmm", format!("{:x?}", s.xmm), format!("{:x?}", back.xmm));
    cmp("dr", format!("{:x?}", s.dr), format!("{:x?}", back.dr));
    cmp(
        "msr",
        format!("{:x?}", (s.msr.sysenter_cs, s.msr.sysenter_eip, s.msr.pat)),
        format!(
            "{:x?}",
            (back.msr.sysenter_cs, back.msr.sysenter_eip, back.msr.pat)
        ),
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A 64 KiB ROM whose reset vector runs `body` (16-bit real mode at F000:0000), then writes
/// 0 to isa-debug-exit (port 0xF4) and halts.
fn tiny_rom(body: impl FnOnce(&mut iced_x86::code_asm::CodeAssembler)) -> Vec<u8> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    body(&mut a);
    a.mov(al, 0u32).unwrap();
    a.out(0xf4u32, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0xf_0000).unwrap();
    let mut rom = vec![0xf4u8; 64 << 10];
    rom[..code.len()].copy_from_slice(&code);
    // F000:FFF0: JMP F000:0000.
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0, 0, 0x00, 0xf0]);
    rom
}

/// `n` port writes to POST port 0x80: `n` VM exits and little else.
fn exit_rom(n: u16) -> Vec<u8> {
    use iced_x86::code_asm::*;
    tiny_rom(|a| {
        let mut l = a.create_label();
        a.mov(cx, u32::from(n)).unwrap();
        a.set_label(&mut l).unwrap();
        a.out(0x80u32, al).unwrap();
        a.loop_(l).unwrap();
    })
}

/// A loop of `n` iterations with no exits: how fast this KVM runs plain guest code.
fn calibration_rom(n: u32) -> Vec<u8> {
    use iced_x86::code_asm::*;
    tiny_rom(|a| {
        let mut l = a.create_label();
        a.mov(ecx, n).unwrap();
        a.set_label(&mut l).unwrap();
        a.dec(ecx).unwrap();
        a.jnz(l).unwrap();
    })
}

/// Wall seconds for Nestor's KVM engine to run `rom` to its debug exit.
fn nestor_kvm_seconds(rom: Vec<u8>) -> f64 {
    let mut config = MachineConfig::new(rom, 16);
    config.accel = Accel::Kvm;
    let mut m = Machine::new(config).expect("machine");
    let t = std::time::Instant::now();
    let exit = m.run(Some(u64::MAX / 2)).expect("run");
    assert_eq!(exit, MachineExit::DebugExit(1));
    t.elapsed().as_secs_f64()
}

/// Wall seconds for `qemu-system-x86_64 -accel kvm` to run `rom`, if QEMU is installed.
fn qemu_kvm_seconds(rom: &[u8], name: &str) -> Option<f64> {
    let path = std::env::temp_dir().join(format!("nestor-{name}-{}.rom", std::process::id()));
    std::fs::write(&path, rom).ok()?;
    let t = std::time::Instant::now();
    let status = std::process::Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-display", "none", "-m", "16", "-bios"])
        .arg(&path)
        .args([
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=1",
            "-serial",
            "null",
        ])
        .args(["-monitor", "none", "-nodefaults"])
        .stderr(std::process::Stdio::null())
        .status()
        .ok();
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    (status?.code() == Some(1)).then_some(secs)
}

/// VM exits per second and the calibration loop, Nestor's KVM engine and QEMU side by side.
/// A measurement, not a pass/fail on speed: it prints the figures.
#[test]
fn exit_rate_and_calibration_side_by_side_with_qemu() {
    require_kvm!();
    const EXITS: u16 = 60_000;
    const LOOP: u32 = 2_000_000;
    let empty = nestor_kvm_seconds(exit_rom(1));
    let exits = nestor_kvm_seconds(exit_rom(EXITS));
    let calib = nestor_kvm_seconds(calibration_rom(LOOP));
    let rate = f64::from(EXITS) / (exits - empty).max(1e-9);
    let mips = 2.0 * f64::from(LOOP) / (calib - empty).max(1e-9) / 1e6;
    eprintln!(
        "nestor kvm: {rate:.0} VM exits/s; calibration loop {mips:.2} MIPS (start-up {empty:.3} s)"
    );
    let q = (
        qemu_kvm_seconds(&exit_rom(1), "empty"),
        qemu_kvm_seconds(&exit_rom(EXITS), "exits"),
        qemu_kvm_seconds(&calibration_rom(LOOP), "calib"),
    );
    match q {
        (Some(e), Some(x), Some(c)) => eprintln!(
            "qemu -accel kvm: {:.0} VM exits/s; calibration loop {:.2} MIPS (start-up {e:.3} s)",
            f64::from(EXITS) / (x - e).max(1e-9),
            2.0 * f64::from(LOOP) / (c - e).max(1e-9) / 1e6
        ),
        _ => eprintln!("qemu -accel kvm: not measured (qemu-system-x86_64 missing or failed)"),
    }
}

/// Nestor's BIOS with no disk: serial output and exit.
fn bios_without_disk(plan: Option<&str>) -> (MachineExit, String) {
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::with_bios(nestor_bios::BiosConfig::default(), 32);
    config.serial[0] = Some(Box::new(serial.clone()));
    config.engine_plan = plan.map(|p| p.parse::<EnginePlan>().expect("plan"));
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(200_000_000)).expect("run");
    eprintln!(
        "{plan:?}: ended on {} after {} VM exits",
        m.vcpu.name(),
        m.vcpu.exits()
    );
    (exit, serial.output_string())
}

/// Nestor's BIOS boots (POST, tables, INT 19h finding nothing) while the engine switches
/// between the interpreter and KVM: the serial output is that of an interpreter-only run.
#[test]
fn bios_boot_switching_engines_prints_the_same() {
    require_kvm!();
    let reference = bios_without_disk(None);
    assert!(
        reference.1.contains("No bootable device"),
        "{}",
        reference.1
    );
    let plan = "interp:300000i,kvm:40x,interp:300000i,kvm:40x,interp:1000000i,kvm:40x,interp";
    assert_eq!(bios_without_disk(Some(plan)), reference);
}

/// Below this calibration figure a full Linux boot under KVM takes too long to be a test.
const FAST_KVM_MIPS: f64 = 500.0;

/// Debian's kernel and busybox initramfs boot to the shell under `--accel kvm` when this
/// host's KVM is fast (measured by the calibration loop); otherwise the test says why not.
#[test]
fn linux_boots_to_the_shell_under_kvm_when_kvm_is_fast() {
    require_kvm!();
    const LOOP: u32 = 2_000_000;
    let overhead = nestor_kvm_seconds(exit_rom(1));
    let secs = nestor_kvm_seconds(calibration_rom(LOOP)) - overhead;
    let mips = 2.0 * f64::from(LOOP) / secs.max(1e-9) / 1e6;
    if mips < FAST_KVM_MIPS {
        eprintln!(
            "SKIPPED: this host's KVM runs the calibration loop at {mips:.2} MIPS; a Linux boot \
             under KVM is a test from {FAST_KVM_MIPS} MIPS up"
        );
        return;
    }
    let dir = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
        .join(".cache/nestor-guests");
    let (Ok(kernel), Ok(initrd)) = (
        std::fs::read(dir.join("vmlinuz")),
        std::fs::read(dir.join("initrd.gz")),
    ) else {
        eprintln!(
            "SKIPPED: no vmlinuz/initrd.gz in {} (roms/fetch-guests.sh)",
            dir.display()
        );
        return;
    };
    let serial = BufferBackend::output_only();
    let mut bios = nestor_bios::BiosConfig::default();
    bios.boot_order.insert(0, nestor_bios::BootDevice::Kernel);
    let mut config = MachineConfig::with_bios(bios, 256);
    config.cpu_model = "nestor64".into();
    config.serial[0] = Some(Box::new(serial.clone()));
    config.accel = Accel::Kvm;
    config.clock = nestor_machine::ClockMode::Realtime;
    config.kernel = Some(nestor_machine::KernelSpec {
        kernel,
        initrd: vec![nestor_machine::Module {
            name: "initrd.gz".into(),
            data: initrd,
        }],
        cmdline: "console=ttyS0".into(),
    });
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(u64::MAX / 2)).expect("run");
    let text = serial.output_string();
    assert!(
        text.contains("nestor-guest: shell ready"),
        "{exit:?}\n{text}"
    );
}

/// A guest spinning without VM exits is kicked out of KVM_RUN, so budgets (and timers) still
/// end runs.
#[test]
fn exit_less_spin_is_kicked_out() {
    require_kvm!();
    let rom = tiny_rom(|a| {
        let mut spin = a.create_label();
        a.set_label(&mut spin).unwrap();
        a.jmp(spin).unwrap();
    });
    let mut config = MachineConfig::new(rom, 16);
    config.accel = Accel::Kvm;
    let mut m = Machine::new(config).expect("machine");
    assert_eq!(
        m.run(Some(5_000_000)).expect("run"),
        MachineExit::BudgetExhausted
    );
    assert!(m.vcpu.retired() >= 5_000_000);
}

/// Real-mode ROM: program the 8259 and the PIT (1 kHz), take 5 timer interrupts with HLT in
/// between, then exit with the count: interrupt injection, interrupt windows and HLT wake-up.
fn timer_rom() -> Vec<u8> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    let mut handler = a.create_label();
    let mut main = a.create_label();
    let mut wait = a.create_label();
    a.jmp(main).unwrap();
    a.set_label(&mut handler).unwrap();
    a.inc(word_ptr(0x500)).unwrap();
    a.mov(al, 0x20u32).unwrap();
    a.out(0x20u32, al).unwrap();
    a.iret().unwrap();
    a.set_label(&mut main).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7000u32).unwrap();
    a.mov(word_ptr(0x500), 0u32).unwrap();
    // IVT[8] = F000:handler; the handler's offset is patched in after assembly.
    a.mov(word_ptr(8 * 4), 0xbeefu32).unwrap();
    a.mov(word_ptr(8 * 4 + 2), 0xf000u32).unwrap();
    for (port, v) in [
        (0x20u32, 0x11u32),
        (0x21, 0x08),
        (0x21, 0x04),
        (0x21, 0x01),
        (0x21, 0xfe),
    ] {
        a.mov(al, v).unwrap();
        a.out(port, al).unwrap();
    }
    for (port, v) in [(0x43u32, 0x34u32), (0x40, 1193 & 0xff), (0x40, 1193 >> 8)] {
        a.mov(al, v).unwrap();
        a.out(port, al).unwrap();
    }
    a.sti().unwrap();
    a.set_label(&mut wait).unwrap();
    a.hlt().unwrap();
    a.cmp(word_ptr(0x500), 5).unwrap();
    a.jb(wait).unwrap();
    a.cli().unwrap();
    a.mov(al, byte_ptr(0x500)).unwrap();
    a.out(0xf4u32, al).unwrap();
    a.hlt().unwrap();
    rom_with_handler(&mut a, handler)
}

#[test]
fn timer_interrupts_reach_the_guest_under_kvm() {
    require_kvm!();
    for accel in [Accel::Interp, Accel::Kvm] {
        let mut config = MachineConfig::new(timer_rom(), 16);
        config.accel = accel;
        let mut m = Machine::new(config).expect("machine");
        let exit = m.run(Some(50_000_000)).expect("run");
        assert_eq!(exit, MachineExit::DebugExit(5 << 1 | 1), "{accel:?}");
    }
}

/// Real-mode ROM that halts with interrupts off; its NMI handler exits with status 0x4e.
fn nmi_rom() -> Vec<u8> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16).unwrap();
    let mut handler = a.create_label();
    let mut main = a.create_label();
    a.jmp(main).unwrap();
    a.set_label(&mut handler).unwrap();
    a.mov(al, 0x27u32).unwrap();
    a.out(0xf4u32, al).unwrap();
    a.hlt().unwrap();
    a.set_label(&mut main).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7000u32).unwrap();
    a.mov(word_ptr(2 * 4), 0xbeefu32).unwrap();
    a.mov(word_ptr(2 * 4 + 2), 0xf000u32).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    rom_with_handler(&mut a, handler)
}

/// An NMI wakes a CPU halted with interrupts off, on both engines.
#[test]
fn nmi_wakes_a_halted_cpu_under_kvm() {
    require_kvm!();
    for accel in [Accel::Interp, Accel::Kvm] {
        let mut config = MachineConfig::new(nmi_rom(), 16);
        config.accel = accel;
        let mut m = Machine::new(config).expect("machine");
        let first = m.run(Some(10_000_000)).expect("run");
        assert_eq!(first, MachineExit::HaltedForever, "{accel:?}");
        m.vcpu.inject_nmi();
        let exit = m.run(Some(20_000_000)).expect("run");
        assert_eq!(exit, MachineExit::DebugExit(0x27 << 1 | 1), "{accel:?}");
    }
}

/// Assembles real-mode code at F000:0000 into a 64 KiB ROM with a reset jump to it, and puts
/// `handler`'s offset where the code wrote the placeholder 0xBEEF (an IVT entry).
fn rom_with_handler(
    a: &mut iced_x86::code_asm::CodeAssembler,
    handler: iced_x86::code_asm::CodeLabel,
) -> Vec<u8> {
    let res = a
        .assemble_options(
            0xf_0000,
            iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
        )
        .unwrap();
    let at = (res.label_ip(&handler).unwrap() - 0xf_0000) as u16;
    let mut code = res.inner.code_buffer;
    let pos = code.windows(2).position(|w| w == [0xef, 0xbe]).unwrap();
    code[pos..pos + 2].copy_from_slice(&at.to_le_bytes());
    let mut rom = vec![0xf4u8; 64 << 10];
    rom[..code.len()].copy_from_slice(&code);
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0, 0, 0x00, 0xf0]);
    rom
}
