//! The PIT's IRQ 0 counts ticks in the BDA (INT 08h), INT 1Ah reads them, and INT 15h/86h
//! waits in virtual time.

mod harness;

use harness::{bios, disk_with_boot_code, run, Pc, Stop};
use iced_x86::code_asm::*;

#[test]
fn ticks_and_waits() {
    let mut a = CodeAssembler::new(16).unwrap();
    a.xor(ax, ax).unwrap();
    a.mov(ds, ax).unwrap();
    a.sti().unwrap();
    // Ticks before.
    a.mov(ah, 0u32).unwrap();
    a.int(0x1A).unwrap();
    a.mov(word_ptr(0x7E00u32), dx).unwrap();
    // Wait 0.5 s (0x7A120 microseconds).
    a.mov(ah, 0x86u32).unwrap();
    a.mov(cx, 0x0007u32).unwrap();
    a.mov(dx, 0xA120u32).unwrap();
    a.int(0x15).unwrap();
    a.setc(byte_ptr(0x7E04u32)).unwrap();
    a.mov(ah, 0u32).unwrap();
    a.int(0x1A).unwrap();
    a.mov(word_ptr(0x7E02u32), dx).unwrap();
    // RTC time is BCD and CF clear.
    a.mov(ah, 2u32).unwrap();
    a.int(0x1A).unwrap();
    a.setc(byte_ptr(0x7E05u32)).unwrap();
    a.mov(byte_ptr(0x7E06u32), 0x5Au32).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x7C00).unwrap();
    let mut pc = Pc::new(Some(disk_with_boot_code(&code)));
    let mut b = bios();
    let (stop, cpu) = run(&mut pc, &mut b, 50_000_000);
    assert_eq!(stop, Stop::Halted, "{}\n{cpu:x?}", pc.serial_text());
    assert_eq!(pc.ram[0x7E06], 0x5A, "the program ran to its end");
    let before = u16::from_le_bytes([pc.ram[0x7E00], pc.ram[0x7E01]]);
    let after = u16::from_le_bytes([pc.ram[0x7E02], pc.ram[0x7E03]]);
    assert_eq!(pc.ram[0x7E04], 0, "INT 15h/86h CF");
    // 0.5 s is 9.1 ticks of 54.9 ms.
    let ticks = after.wrapping_sub(before);
    assert!((9..=11).contains(&ticks), "ticks during the wait: {ticks}");
    assert_eq!(pc.ram[0x7E05], 0, "INT 1Ah/02h CF");
}
