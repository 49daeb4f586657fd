//! Nestor's BIOS on the whole machine: POST, INT 19h from a raw disk image, a hand-made boot
//! sector that prints through INT 10h (mirrored to COM1) and reads its second sector through
//! INT 13h, then leaves through isa-debug-exit.

use iced_x86::code_asm::*;
use nestor_device::testing::BufferBackend;
use nestor_machine::{DriveSlot, DriveSpec, Machine, MachineConfig, MachineExit};

/// Prints the NUL-terminated string at 0x7D00, reads LBA 1 (CHS 0/0/2) to 0x8000 and prints
/// it, then writes 0x21 to the isa-debug-exit port.
fn boot_sector() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut print = a.create_label();
    let mut next = a.create_label();
    let mut fail = a.create_label();
    let mut exit = a.create_label();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7C00u32).unwrap();
    a.sti().unwrap();
    a.mov(si, 0x7D00u32).unwrap();
    a.call(print).unwrap();
    a.mov(ax, 0x0201u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(dh, 0u32).unwrap();
    a.mov(bx, 0x8000u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.mov(si, 0x8000u32).unwrap();
    a.call(print).unwrap();
    a.mov(al, 0x21u32).unwrap();
    a.set_label(&mut exit).unwrap();
    a.out(0xF4, al).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.set_label(&mut fail).unwrap();
    a.mov(al, 0x13u32).unwrap();
    a.jmp(exit).unwrap();
    a.set_label(&mut print).unwrap();
    a.lodsb().unwrap();
    a.test(al, al).unwrap();
    a.jz(next).unwrap();
    a.mov(ah, 0x0Eu32).unwrap();
    a.mov(bx, 0x0007u32).unwrap();
    a.int(0x10).unwrap();
    a.jmp(print).unwrap();
    a.set_label(&mut next).unwrap();
    a.ret().unwrap();
    let code = a.assemble(0x7C00).unwrap();
    assert!(code.len() < 0x100);
    let mut img = vec![0u8; 2 << 20];
    img[..code.len()].copy_from_slice(&code);
    img[0x100..0x100 + 19].copy_from_slice(b"boot sector alive\r\n");
    img[510] = 0x55;
    img[511] = 0xAA;
    img[512..512 + 12].copy_from_slice(b"sector two\r\n");
    img
}

/// Finds `sig` at a 16-byte boundary in `[start, end)` of guest memory.
fn find_signature(m: &mut Machine, sig: &[u8], start: u64, end: u64) -> Option<u64> {
    (start..end).step_by(16).find(|&at| {
        let mut buf = vec![0u8; sig.len()];
        m.board.wires.mem.read(at, &mut buf) && buf == sig
    })
}

fn run_disk(name: &str, image: &[u8]) -> (MachineExit, String) {
    let (exit, text, _) = run_disk_machine(name, image);
    (exit, text)
}

fn run_disk_machine(name: &str, image: &[u8]) -> (MachineExit, String, Machine) {
    let file = format!("nestor-bios-{name}-{}.img", std::process::id());
    let path = std::env::temp_dir().join(file);
    std::fs::write(&path, image).expect("temp image");
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::with_bios(nestor_bios::BiosConfig::default(), 32);
    config.serial[0] = Some(Box::new(serial.clone()));
    config.drives.push(DriveSpec {
        slot: DriveSlot::Hda,
        path: path.clone(),
        snapshot: true,
        read_only: false,
    });
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(200_000_000)).expect("run");
    let _ = std::fs::remove_file(&path);
    (exit, serial.output_string(), m)
}

#[test]
fn bios_publishes_acpi_and_mp_tables() {
    let (_, text, mut m) = run_disk_machine("tables", &boot_sector());
    let rsdp = find_signature(&mut m, b"RSD PTR ", 0x9_FC00, 0xA_0000)
        .or_else(|| find_signature(&mut m, b"RSD PTR ", 0xE_0000, 0x10_0000));
    let Some(rsdp) = rsdp else {
        let mp = find_signature(&mut m, b"_MP_", 0x9_FC00, 0xA_0000);
        let st = m
            .bios
            .as_ref()
            .map(|b| (b.state().acpi, b.state().low_ram_end));
        panic!("no RSDP (MP {mp:?}, tables {st:x?})\n{text}");
    };
    let mut r = [0u8; 36];
    assert!(m.board.wires.mem.read(rsdp, &mut r));
    assert_eq!(r[..20].iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    let rsdt = u64::from(u32::from_le_bytes([r[16], r[17], r[18], r[19]]));
    let mut sig = [0u8; 4];
    assert!(m.board.wires.mem.read(rsdt, &mut sig));
    assert_eq!(&sig, b"RSDT");
    assert!(
        find_signature(&mut m, b"_MP_", 0x9_FC00, 0xA_0000).is_some()
            || find_signature(&mut m, b"_MP_", 0xF_0000, 0x10_0000).is_some()
    );
}

#[test]
fn bios_boots_a_disk_and_reads_a_sector() {
    let (exit, text) = run_disk("boot", &boot_sector());
    assert!(
        text.starts_with("Nestor BIOS\r\nMemory: 32 MiB\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Booting from Hard Disk...\r\nboot sector alive\r\nsector two\r\n"),
        "{text}"
    );
    assert_eq!(exit, MachineExit::DebugExit(0x21 * 2 + 1), "{text}");
}

#[test]
fn bios_reports_an_unbootable_disk() {
    let (exit, text) = run_disk("blank", &vec![0u8; 1 << 20]);
    assert!(text.contains("Boot failed: not a bootable disk"), "{text}");
    assert!(text.contains("No bootable device"), "{text}");
    assert_eq!(exit, MachineExit::HaltedForever, "{text}");
}
