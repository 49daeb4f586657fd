//! Debian's stock kernel with the busybox initramfs, booted on the interpreter to a shell that
//! runs a command and powers off through ACPI: from `--kernel` (twice, to show deterministic
//! time prints the same bytes), from the ISO through isolinux, from the hard-disk image through
//! syslinux, and from the ISO under Debian's SeaBIOS. The guests come from the cache that
//! `roms/fetch-guests.sh` fills; without it every test here says so and skips.
//!
//! memtest86+ (Debian's) runs its first tests from `--kernel`, checked on its screen.
//!
//! These are the slow tests (billions of instructions each); they run in parallel threads.

use nestor_bios::{BiosConfig, BootDevice};
use nestor_device::testing::BufferBackend;
use nestor_machine::{
    DriveSlot, DriveSpec, KernelSpec, Machine, MachineConfig, MachineExit, Module,
};
use std::path::PathBuf;
use std::time::Instant;

/// Far more than any path needs (the kernel path retires about 10G instructions).
const BUDGET: u64 = 30_000_000_000;
/// What the initramfs's /init prints, in order.
const MARKERS: [&str; 3] = [
    "nestor-guest: shell ready",
    "nestor-guest: Linux",
    "nestor-guest: done, powering off",
];

/// The cache roms/fetch-guests.sh fills: $NESTOR_GUESTS, else ~/.cache/nestor-guests.
fn cached(names: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = match std::env::var_os("NESTOR_GUESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/nestor-guests"),
    };
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        eprintln!(
            "skipped: {} is missing (run roms/fetch-guests.sh)",
            missing.display()
        );
        return None;
    }
    Some(paths)
}

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A 64-bit machine with 256 MiB, deterministic time, COM1 captured.
fn machine_config(
    bios: Option<BiosConfig>,
    rom: Option<Vec<u8>>,
) -> (MachineConfig, BufferBackend) {
    let mut config = match (bios, rom) {
        (Some(b), _) => MachineConfig::with_bios(b, 256),
        (None, Some(rom)) => MachineConfig::new(rom, 256),
        (None, None) => MachineConfig::with_bios(BiosConfig::default(), 256),
    };
    config.cpu_model = "nestor64".into();
    let serial = BufferBackend::output_only();
    config.serial[0] = Some(Box::new(serial.clone()));
    (config, serial)
}

fn drive(slot: DriveSlot, path: PathBuf) -> DriveSpec {
    DriveSpec {
        slot,
        path,
        snapshot: true,
        read_only: slot == DriveSlot::Cdrom,
    }
}

/// Run to the end and report what the guest printed on COM1 and left on the VGA text
/// screen; prints the figures the issue asks for.
fn boot(
    name: &str,
    config: MachineConfig,
    serial: &BufferBackend,
) -> (MachineExit, String, String) {
    let start = Instant::now();
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(BUDGET)).expect("run");
    let secs = start.elapsed().as_secs_f64();
    let insns = m.vcpu.retired();
    let text = serial.output_string();
    eprintln!(
        "{name}: {exit:?} after {insns} instructions in {secs:.1} s ({:.1} MIPS)",
        insns as f64 / secs / 1e6
    );
    (exit, text, vga_text(&mut m))
}

/// The three markers in order, then an ACPI power-off.
fn assert_reached_shell_and_powered_off(name: &str, exit: MachineExit, text: &str) {
    let mut from = 0;
    for marker in MARKERS {
        match text[from..].find(marker) {
            Some(at) => from += at + marker.len(),
            None => panic!("{name}: no {marker:?} in the serial output:\n{text}"),
        }
    }
    assert_eq!(
        exit,
        MachineExit::PowerOff,
        "{name}: serial output:\n{text}"
    );
}

fn kernel_spec(paths: &[PathBuf], cmdline: &str) -> KernelSpec {
    KernelSpec {
        kernel: read(&paths[0]),
        initrd: vec![Module {
            name: "initrd.gz".into(),
            data: read(&paths[1]),
        }],
        cmdline: cmdline.into(),
    }
}

#[test]
fn kernel_boots_to_the_shell_twice_with_identical_output() {
    let Some(paths) = cached(&["vmlinuz", "initrd.gz"]) else {
        return;
    };
    let run = |n: u32| {
        let bios = BiosConfig {
            boot_order: vec![BootDevice::Kernel],
            ..BiosConfig::default()
        };
        let (mut config, serial) = machine_config(Some(bios), None);
        config.kernel = Some(kernel_spec(&paths, "console=ttyS0"));
        boot(&format!("--kernel run {n}"), config, &serial)
    };
    let (first, second) = std::thread::scope(|s| {
        let other = s.spawn(|| run(2));
        (run(1), other.join().expect("second run"))
    });
    assert_reached_shell_and_powered_off("--kernel", first.0, &first.1);
    assert_eq!(
        (first.0, &first.1),
        (second.0, &second.1),
        "two deterministic runs printed different bytes"
    );
}

#[test]
fn iso_boots_through_isolinux_and_nestor_bios() {
    let Some(paths) = cached(&["nestor.iso"]) else {
        return;
    };
    let bios = BiosConfig {
        boot_order: vec![BootDevice::Cdrom],
        ..BiosConfig::default()
    };
    let (mut config, serial) = machine_config(Some(bios), None);
    config
        .drives
        .push(drive(DriveSlot::Cdrom, paths[0].clone()));
    let (exit, text, screen) = boot("ISO (Nestor BIOS)", config, &serial);
    assert!(text.contains("ISOLINUX"), "{text}");
    assert_reached_shell_and_powered_off("ISO", exit, &text);
    // The kernel's VGA console (console=tty0), read back from video memory: isolinux's
    // banner, then the kernel's own messages down to its last one.
    assert!(screen.contains("ISOLINUX 6.04"), "{screen}");
    assert!(screen.contains("reboot: Power down"), "{screen}");
}

#[test]
fn disk_image_boots_through_syslinux_and_nestor_bios() {
    let Some(paths) = cached(&["disk.img"]) else {
        return;
    };
    let (mut config, serial) = machine_config(Some(BiosConfig::default()), None);
    config.drives.push(drive(DriveSlot::Hda, paths[0].clone()));
    let (exit, text, _) = boot("disk (Nestor BIOS)", config, &serial);
    assert!(text.contains("SYSLINUX"), "{text}");
    assert_reached_shell_and_powered_off("disk", exit, &text);
}

#[test]
fn iso_boots_under_debian_seabios() {
    let Some(paths) = cached(&["seabios.bin", "vgabios-stdvga.bin", "nestor.iso"]) else {
        return;
    };
    let (mut config, serial) = machine_config(None, Some(read(&paths[0])));
    config
        .fw_cfg_files
        .push(("vgaroms/vgabios-stdvga.bin".into(), read(&paths[1])));
    config
        .drives
        .push(drive(DriveSlot::Cdrom, paths[2].clone()));
    let (exit, text, _) = boot("ISO (SeaBIOS)", config, &serial);
    assert_reached_shell_and_powered_off("SeaBIOS", exit, &text);
}

/// The VGA text screen, read back from video memory.
fn vga_text(m: &mut Machine) -> String {
    m.board
        .device_mut::<nestor_vga::Vga>()
        .and_then(|v| v.text_screen())
        .unwrap_or_default()
}

#[test]
fn memtest86_plus_passes_its_first_tests_on_screen() {
    let Some(paths) = cached(&["memtest86+.bin"]) else {
        return;
    };
    let bios = BiosConfig {
        boot_order: vec![BootDevice::Kernel],
        ..BiosConfig::default()
    };
    let (mut config, _serial) = machine_config(Some(bios), None);
    config.ram_mib = 32;
    config.kernel = Some(KernelSpec {
        kernel: read(&paths[0]),
        ..KernelSpec::default()
    });
    let mut m = Machine::new(config).expect("machine");
    // About 1.1G instructions reach test #3 of the first pass with 32 MiB.
    let exit = m.run(Some(1_200_000_000)).expect("run");
    let screen = vga_text(&mut m);
    eprintln!("{exit:?}\n{screen}");
    assert_eq!(exit, MachineExit::BudgetExhausted, "{screen}");
    assert!(screen.contains("Memtest86+"), "{screen}");
    assert!(screen.contains("Memory  :   32MB"), "{screen}");
    let test_number = screen
        .split("Test #")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no test number on screen:\n{screen}"));
    assert!(test_number >= 1, "test #0 has not finished:\n{screen}");
    assert!(screen.contains("Errors: 0"), "{screen}");
}
