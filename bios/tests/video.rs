//! INT 10h against the real VGA model: mode 13h with teletype and pixels, then VBE
//! controller and mode information and a VBE mode set with the linear framebuffer.

mod harness;

use harness::{bios, disk_with_boot_code, run, Pc, Stop};
use iced_x86::code_asm::*;

/// Results the boot code leaves at 0000:7E00.
const RESULTS: u32 = 0x7E00;
const CONTROLLER_INFO: u32 = 0x6000;
const MODE_INFO: u32 = 0x6400;

fn video_program() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.mov(es, ax).unwrap();
    a.mov(dword_ptr(CONTROLLER_INFO), u32::from_le_bytes(*b"VBE2"))
        .unwrap();
    a.mov(ax, 0x4F00u32).unwrap();
    a.mov(di, CONTROLLER_INFO).unwrap();
    a.int(0x10).unwrap();
    a.mov(word_ptr(RESULTS), ax).unwrap();
    a.mov(ax, 0x4F01u32).unwrap();
    a.mov(cx, 0x112u32).unwrap();
    a.mov(di, MODE_INFO).unwrap();
    a.int(0x10).unwrap();
    a.mov(word_ptr(RESULTS + 2), ax).unwrap();
    // Mode 13h, a white 'A' by teletype, a pixel written and read back.
    a.mov(ax, 0x0013u32).unwrap();
    a.int(0x10).unwrap();
    a.mov(ax, 0x0E41u32).unwrap();
    a.mov(bx, 0x000Fu32).unwrap();
    a.int(0x10).unwrap();
    a.mov(ax, 0x0C04u32).unwrap();
    a.mov(bh, 0u32).unwrap();
    a.mov(cx, 100u32).unwrap();
    a.mov(dx, 100u32).unwrap();
    a.int(0x10).unwrap();
    a.mov(ah, 0x0Du32).unwrap();
    a.int(0x10).unwrap();
    a.mov(byte_ptr(RESULTS + 4), al).unwrap();
    a.mov(ah, 0x0Fu32).unwrap();
    a.int(0x10).unwrap();
    a.mov(word_ptr(RESULTS + 10), ax).unwrap();
    a.mov(ax, 0x4F02u32).unwrap();
    a.mov(bx, 0x4112u32).unwrap();
    a.int(0x10).unwrap();
    a.mov(word_ptr(RESULTS + 6), ax).unwrap();
    a.mov(ax, 0x4F03u32).unwrap();
    a.int(0x10).unwrap();
    a.mov(word_ptr(RESULTS + 8), bx).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.assemble(0x7C00).unwrap()
}

fn word(pc: &Pc, at: u32) -> u16 {
    u16::from_le_bytes([pc.ram[at as usize], pc.ram[at as usize + 1]])
}

#[test]
fn vga_and_vbe_modes() {
    let mut pc = Pc::new(Some(disk_with_boot_code(&video_program())));
    let mut b = bios();
    let (stop, cpu) = run(&mut pc, &mut b, 20_000_000);
    assert_eq!(stop, Stop::Halted, "{}\n{cpu:x?}", pc.serial_text());
    assert_eq!(word(&pc, RESULTS), 0x004F, "4F00");
    let info = CONTROLLER_INFO as usize;
    assert_eq!(&pc.ram[info..info + 4], b"VESA");
    assert_eq!(word(&pc, CONTROLLER_INFO + 4), 0x0300);
    // The mode list: far pointer at +14, terminated by FFFF.
    let list = u32::from(word(&pc, CONTROLLER_INFO + 16)) * 16
        + u32::from(word(&pc, CONTROLLER_INFO + 14));
    let modes: Vec<u16> = (0..64)
        .map(|i| word(&pc, list + i * 2))
        .take_while(|m| *m != 0xFFFF)
        .collect();
    assert!(
        modes.contains(&0x101) && modes.contains(&0x112) && modes.contains(&0x144),
        "{modes:x?}"
    );
    assert_eq!(word(&pc, RESULTS + 2), 0x004F, "4F01");
    assert_eq!(word(&pc, MODE_INFO + 18), 640);
    assert_eq!(word(&pc, MODE_INFO + 20), 480);
    assert_eq!(pc.ram[MODE_INFO as usize + 25], 24);
    let lfb = u32::from_le_bytes(pc.ram[MODE_INFO as usize + 40..][..4].try_into().unwrap());
    assert_eq!(lfb, 0xE000_0000);
    assert_eq!(
        pc.ram[RESULTS as usize + 4],
        4,
        "pixel read back in mode 13h"
    );
    assert_eq!(
        word(&pc, RESULTS + 10),
        0x2813,
        "INT 10h/0Fh in mode 13h: 40 columns"
    );
    assert_eq!(word(&pc, RESULTS + 6), 0x004F, "4F02");
    assert_eq!(word(&pc, RESULTS + 8), 0x4112, "4F03");
    let vbe = &pc.vga.state().vbe;
    assert!(vbe.enabled() && vbe.lfb_enabled());
    assert_eq!((vbe.xres, vbe.yres, vbe.bpp), (640, 480, 24));
}

/// Mode 13h text: the teletype draws the glyph in the colour asked for.
#[test]
fn teletype_draws_in_mode_13h() {
    let mut a = CodeAssembler::new(16).unwrap();
    a.mov(ax, 0x0013u32).unwrap();
    a.int(0x10).unwrap();
    a.mov(ax, 0x0E48u32).unwrap();
    a.mov(bx, 0x000Eu32).unwrap();
    a.int(0x10).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x7C00).unwrap();
    let mut pc = Pc::new(Some(disk_with_boot_code(&code)));
    let mut b = bios();
    let (stop, _) = run(&mut pc, &mut b, 20_000_000);
    assert_eq!(stop, Stop::Halted);
    let frame = pc.vga.render();
    let (w, h) = (frame.width as usize, frame.height as usize);
    assert!(w >= 320 && h >= 200);
    // Yellow (DAC entry 14: 63,63,21) pixels in the first character cell only.
    let sx = w / 320;
    let sy = h / 200;
    let yellow = |x: usize, y: usize| {
        let at = (y * sy * w + x * sx) * 3;
        frame.rgb[at] > 0xF0 && frame.rgb[at + 2] < 0x80
    };
    let inside = (0..8)
        .flat_map(|y| (0..8).map(move |x| (x, y)))
        .filter(|&(x, y)| yellow(x, y))
        .count();
    let outside = (0..8)
        .flat_map(|y| (8..64).map(move |x| (x, y)))
        .filter(|&(x, y)| yellow(x, y))
        .count();
    assert!(inside >= 8, "ink of 'H': {inside}");
    assert_eq!(outside, 0);
}
