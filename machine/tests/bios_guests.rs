//! Nestor's BIOS with real guests from the cache `roms/fetch-guests.sh` fills
//! (~/.cache/nestor-guests). Skipped when the cache is missing.

use nestor_bios::{BiosConfig, BootDevice};
use nestor_device::testing::BufferBackend;
use nestor_machine::{DriveSlot, DriveSpec, Machine, MachineConfig};
use std::path::PathBuf;

/// The cache roms/fetch-guests.sh fills: $NESTOR_GUESTS, else ~/.cache/nestor-guests.
fn cached(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("NESTOR_GUESTS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/nestor-guests"),
    };
    let path = dir.join(name);
    path.exists().then_some(path)
}

/// The Debian ISO's El Torito image (isolinux) loads and prints its banner.
#[test]
fn isolinux_starts_from_the_iso() {
    let Some(iso) = cached("nestor.iso") else {
        eprintln!("skipped: no ~/.cache/nestor-guests/nestor.iso");
        return;
    };
    let serial = BufferBackend::output_only();
    let bios = BiosConfig {
        boot_order: vec![BootDevice::Cdrom],
        ..BiosConfig::default()
    };
    let mut config = MachineConfig::with_bios(bios, 256);
    config.serial[0] = Some(Box::new(serial.clone()));
    config.drives.push(DriveSpec {
        slot: DriveSlot::Cdrom,
        path: iso,
        snapshot: true,
        read_only: true,
    });
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(300_000_000)).expect("run");
    let text = serial.output_string();
    eprintln!("exit {exit:?}\n{text}");
    assert!(text.contains("Booting from CD-ROM..."), "{text}");
    assert!(text.contains("ISOLINUX"), "{text}");
}

/// The hard-disk image's boot loader (syslinux/extlinux) loads through INT 13h.
#[test]
fn disk_image_boot_loader_starts() {
    let Some(disk) = cached("disk.img") else {
        eprintln!("skipped: no ~/.cache/nestor-guests/disk.img");
        return;
    };
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::with_bios(BiosConfig::default(), 256);
    config.serial[0] = Some(Box::new(serial.clone()));
    config.drives.push(DriveSpec {
        slot: DriveSlot::Hda,
        path: disk,
        snapshot: true,
        read_only: false,
    });
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(300_000_000)).expect("run");
    let text = serial.output_string();
    eprintln!("exit {exit:?}\n{text}");
    assert!(text.contains("Booting from Hard Disk..."), "{text}");
    assert!(
        text.contains("SYSLINUX") || text.contains("EXTLINUX"),
        "{text}"
    );
}
