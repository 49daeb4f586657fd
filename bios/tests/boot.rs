//! End to end: reset → POST → INT 19h → a boot sector that prints through INT 10h and reads
//! more sectors through INT 13h (CHS and extended), on the test harness's small PC.

mod harness;

use harness::{bios, run, Pc, Stop};
use iced_x86::code_asm::*;

/// Where the boot sector keeps its strings (offset 0x100 in the sector).
const STRINGS: u16 = 0x7D00;

/// A boot sector: prints its greeting, reads LBA 1 with AH=02h to 0x8000 and (with `ext`)
/// LBA 2 with AH=42h to 0x9000, prints them (NUL-terminated strings), prints "done", halts.
fn boot_sector(ext: bool) -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut print = a.create_label();
    let mut next = a.create_label();
    let mut fail = a.create_label();
    let mut out = a.create_label();
    let mut done = a.create_label();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7C00u32).unwrap();
    a.mov(byte_ptr(0x7E00u32), dl).unwrap();
    a.mov(si, u32::from(STRINGS)).unwrap();
    a.call(print).unwrap();
    // CHS read: cylinder 0, head 0, sector 2 -> 0000:8000.
    a.mov(ax, 0x0201u32).unwrap();
    a.mov(cx, 0x0002u32).unwrap();
    a.mov(dh, 0u32).unwrap();
    a.mov(dl, byte_ptr(0x7E00u32)).unwrap();
    a.mov(bx, 0x8000u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.mov(si, 0x8000u32).unwrap();
    a.call(print).unwrap();
    if !ext {
        a.jmp(done).unwrap();
    }
    // Extended read of LBA 2 -> 0000:9000 through a packet at 0x7E10.
    a.mov(word_ptr(0x7E10u32), 0x0010u32).unwrap();
    a.mov(word_ptr(0x7E12u32), 1u32).unwrap();
    a.mov(word_ptr(0x7E14u32), 0x9000u32).unwrap();
    a.mov(word_ptr(0x7E16u32), 0u32).unwrap();
    a.mov(dword_ptr(0x7E18u32), 2u32).unwrap();
    a.mov(dword_ptr(0x7E1Cu32), 0u32).unwrap();
    a.mov(si, 0x7E10u32).unwrap();
    a.mov(ah, 0x42u32).unwrap();
    a.mov(dl, byte_ptr(0x7E00u32)).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.mov(si, 0x9000u32).unwrap();
    a.call(print).unwrap();
    a.set_label(&mut done).unwrap();
    a.mov(si, u32::from(STRINGS) + 0x20).unwrap();
    a.call(print).unwrap();
    a.set_label(&mut out).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.set_label(&mut fail).unwrap();
    a.mov(si, u32::from(STRINGS) + 0x30).unwrap();
    a.call(print).unwrap();
    a.jmp(out).unwrap();
    // print: DS:SI -> INT 10h/0Eh until NUL.
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
    assert!(code.len() < 0x100, "boot code overruns its strings");
    let mut sector = vec![0u8; 512];
    sector[..code.len()].copy_from_slice(&code);
    sector[0x100..0x100 + 19].copy_from_slice(b"boot sector alive\r\n");
    sector[0x120..0x126].copy_from_slice(b"done\r\n");
    sector[0x130..0x13E].copy_from_slice(b"disk error!\r\n\0");
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector
}

fn disk_image() -> Vec<u8> {
    let mut img = vec![0u8; 16 * 4 * 63 * 512];
    img[..512].copy_from_slice(&boot_sector(true));
    img[512..512 + 12].copy_from_slice(b"sector two\r\n");
    img[1024..1024 + 14].copy_from_slice(b"sector three\r\n");
    img
}

#[test]
fn boots_a_disk_and_reads_sectors() {
    let mut pc = Pc::new(Some(disk_image()));
    let mut bios = bios();
    let (stop, cpu) = run(&mut pc, &mut bios, 5_000_000);
    let text = pc.serial_text();
    assert_eq!(stop, Stop::Halted, "serial so far:\n{text}\ncpu: {cpu:x?}");
    assert!(
        text.starts_with("Nestor BIOS\r\nMemory: 4 MiB\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Drive 80h: NESTOR HARDDISK (1 MiB)\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Booting from Hard Disk...\r\nboot sector alive\r\nsector two\r\nsector three\r\ndone\r\n"),
        "{text}"
    );
    // The text went to the screen as well, through the VGA model.
    let screen = pc.vga.text_screen().expect("a text mode");
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines[0], "Nestor BIOS", "{screen}");
    assert!(
        lines.contains(&"sector three") && lines.contains(&"done"),
        "{screen}"
    );
    // The font is in plane 2: the rendered screen has ink where the banner is.
    let frame = pc.vga.render();
    assert_eq!((frame.width, frame.height), (720, 400));
    let ink = frame
        .rgb
        .chunks(3)
        .take(720 * 16)
        .filter(|p| p.iter().any(|c| *c > 0x80))
        .count();
    if std::env::var("SHOW_FONT").is_ok() {
        for y in 0..16 {
            let row: String = (0..200)
                .map(|x| {
                    if frame.rgb[(y * 720 + x) * 3] > 0x80 {
                        '#'
                    } else {
                        '.'
                    }
                })
                .collect();
            eprintln!("{row}");
        }
    }
    assert!(ink > 150, "banner pixels: {ink}");
}

#[test]
fn no_disk_means_no_boot() {
    let mut pc = Pc::new(None);
    let mut bios = bios();
    let (stop, _) = run(&mut pc, &mut bios, 5_000_000);
    assert_eq!(stop, Stop::BootFailed);
    let text = pc.serial_text();
    assert!(text.contains("No bootable device"), "{text}");
}

#[test]
fn boots_a_floppy_through_the_fdc_and_dma() {
    let mut img = vec![0u8; 1_474_560];
    img[..512].copy_from_slice(&boot_sector(false));
    img[512..512 + 12].copy_from_slice(b"sector two\r\n");
    let mut pc = Pc::new(None);
    pc.insert_floppy(img, 4);
    let mut bios = nestor_bios::Bios::new(nestor_bios::BiosConfig {
        boot_order: vec![nestor_bios::BootDevice::Floppy],
        ..nestor_bios::BiosConfig::default()
    });
    let (stop, cpu) = run(&mut pc, &mut bios, 5_000_000);
    let text = pc.serial_text();
    assert_eq!(stop, Stop::Halted, "{text}\n{cpu:x?}");
    assert!(
        text.ends_with("Booting from Floppy...\r\nboot sector alive\r\nsector two\r\ndone\r\n"),
        "{text}"
    );
}
