//! End to end: El Torito no-emulation boot from an ATAPI CD-ROM (the real IDE model), then
//! INT 13h 4B01h and extended reads of 2048-byte sectors from the boot image.

mod harness;

use harness::{bios, run, Pc, Stop};
use iced_x86::code_asm::*;
use nestor_bios::{BiosConfig, BootDevice};

const CATALOG: u32 = 19;
const IMAGE: u32 = 20;
const DATA: u32 = 21;
/// Strings of the boot image, at offset 0x100 of the image (loaded at 0000:7C00).
const STRINGS: u32 = 0x7D00;

fn boot_image() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut print = a.create_label();
    let mut next = a.create_label();
    let mut fail = a.create_label();
    let mut out = a.create_label();
    a.cli().unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(ss, ax).unwrap();
    a.mov(sp, 0x7C00u32).unwrap();
    a.sti().unwrap();
    a.mov(byte_ptr(0x7E00u32), dl).unwrap();
    a.mov(si, STRINGS).unwrap();
    a.call(print).unwrap();
    // INT 13h/4B01h: the specification packet names this drive.
    a.mov(ax, 0x4B01u32).unwrap();
    a.mov(si, 0x7E20u32).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.mov(al, byte_ptr(0x7E22u32)).unwrap();
    a.cmp(al, byte_ptr(0x7E00u32)).unwrap();
    a.jne(fail).unwrap();
    // Extended read of one 2048-byte sector to 0000:8000.
    a.mov(word_ptr(0x7E10u32), 0x0010u32).unwrap();
    a.mov(word_ptr(0x7E12u32), 1u32).unwrap();
    a.mov(word_ptr(0x7E14u32), 0x8000u32).unwrap();
    a.mov(word_ptr(0x7E16u32), 0u32).unwrap();
    a.mov(dword_ptr(0x7E18u32), DATA).unwrap();
    a.mov(dword_ptr(0x7E1Cu32), 0u32).unwrap();
    a.mov(si, 0x7E10u32).unwrap();
    a.mov(ah, 0x42u32).unwrap();
    a.mov(dl, byte_ptr(0x7E00u32)).unwrap();
    a.int(0x13).unwrap();
    a.jc(fail).unwrap();
    a.mov(si, 0x8000u32).unwrap();
    a.call(print).unwrap();
    a.mov(si, STRINGS + 0x20).unwrap();
    a.call(print).unwrap();
    a.set_label(&mut out).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.set_label(&mut fail).unwrap();
    a.mov(si, STRINGS + 0x30).unwrap();
    a.call(print).unwrap();
    a.jmp(out).unwrap();
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
    let code = a.assemble(0).unwrap();
    assert!(code.len() < 0x100);
    let mut img = vec![0u8; 2048];
    img[..code.len()].copy_from_slice(&code);
    img[0x100..0x100 + 19].copy_from_slice(b"CD image running\r\n\0");
    img[0x120..0x126].copy_from_slice(b"done\r\n");
    img[0x130..0x13E].copy_from_slice(b"cd boot fail\r\n");
    img
}

/// A minimal ISO 9660 image: boot record at 17, catalog at 19, image at 20, data at 21.
fn iso() -> Vec<u8> {
    let mut iso = vec![0u8; 32 * 2048];
    let sector = |n: u32| n as usize * 2048;
    let pvd = sector(16);
    iso[pvd] = 1;
    iso[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
    let br = sector(17);
    iso[br + 1..br + 6].copy_from_slice(b"CD001");
    iso[br + 6] = 1;
    iso[br + 7..br + 30].copy_from_slice(b"EL TORITO SPECIFICATION");
    iso[br + 0x47..br + 0x4B].copy_from_slice(&CATALOG.to_le_bytes());
    let cat = sector(CATALOG);
    iso[cat] = 1;
    iso[cat + 30] = 0x55;
    iso[cat + 31] = 0xAA;
    let sum = iso[cat..cat + 32].chunks_exact(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    iso[cat + 28..cat + 30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    iso[cat + 32] = 0x88;
    iso[cat + 38..cat + 40].copy_from_slice(&4u16.to_le_bytes());
    iso[cat + 40..cat + 44].copy_from_slice(&IMAGE.to_le_bytes());
    let img = boot_image();
    iso[sector(IMAGE)..sector(IMAGE) + 2048].copy_from_slice(&img);
    iso[sector(DATA)..sector(DATA) + 16].copy_from_slice(b"sector 21 read\r\n");
    iso
}

#[test]
fn boots_el_torito_no_emulation() {
    let mut pc = Pc::with_drives(None, Some(iso()));
    let mut bios = nestor_bios::Bios::new(BiosConfig {
        boot_order: vec![BootDevice::HardDisk, BootDevice::Cdrom],
        ..BiosConfig::default()
    });
    let (stop, cpu) = run(&mut pc, &mut bios, 10_000_000);
    let text = pc.serial_text();
    assert_eq!(stop, Stop::Halted, "{text}\n{cpu:x?}");
    assert!(
        text.contains("Drive E0h: NESTOR CD-ROM (CD-ROM)\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Boot failed: no hard disk\r\nBooting from CD-ROM...\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("CD image running\r\nsector 21 read\r\ndone\r\n"),
        "{text}"
    );
    let _ = bios;
}

#[test]
fn a_cd_without_boot_record_fails_over() {
    let mut image = iso();
    image[17 * 2048 + 1] = b'X';
    let mut pc = Pc::with_drives(None, Some(image));
    let mut b = bios();
    let (stop, _) = run(&mut pc, &mut b, 10_000_000);
    assert_eq!(stop, Stop::BootFailed);
    let text = pc.serial_text();
    assert!(
        text.contains("Boot failed: no El Torito boot record on the CD"),
        "{text}"
    );
}
