//! Keys typed on the i8042 model reach INT 16h through IRQ 1, INT 09h and the BDA buffer.

mod harness;

use harness::{bios, disk_with_boot_code, run, Pc, Stop};
use iced_x86::code_asm::*;

/// Reads keys with INT 16h/00h and echoes them with the teletype until Enter.
fn echo_program() -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    let mut again = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut again).unwrap();
    a.mov(ah, 0x00u32).unwrap();
    a.int(0x16).unwrap();
    a.cmp(al, 0x0Du32).unwrap();
    a.je(done).unwrap();
    a.mov(ah, 0x0Eu32).unwrap();
    a.mov(bx, 0x0007u32).unwrap();
    a.int(0x10).unwrap();
    a.jmp(again).unwrap();
    a.set_label(&mut done).unwrap();
    a.cli().unwrap();
    a.hlt().unwrap();
    a.assemble(0x7C00).unwrap()
}

#[test]
fn typed_text_comes_back_from_int16() {
    let mut pc = Pc::new(Some(disk_with_boot_code(&echo_program())));
    pc.type_at_boot = Some("Hello, BIOS! 42\n".into());
    let mut b = bios();
    let (stop, cpu) = run(&mut pc, &mut b, 50_000_000);
    let text = pc.serial_text();
    assert_eq!(stop, Stop::Halted, "{text}\n{cpu:x?}");
    assert!(
        text.ends_with("Booting from Hard Disk...\r\nHello, BIOS! 42"),
        "{text}"
    );
}
