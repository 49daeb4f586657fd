//! Guest code shared by the board-level tests: the 16-bit start into flat protected mode and
//! 32-bit interrupt gates.

use iced_x86::code_asm::*;

/// Where [`idt_gate`] writes the IDT (the tests load IDTR with it).
pub const IDT: u32 = 0x1000;

/// 16-bit start: flat GDT in RAM, protected mode, far jump to the 32-bit part at 0xF1000.
pub fn real_mode_part() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(16)?;
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    let gdt: [(u32, u32); 6] = [
        (0x800, 0),
        (0x804, 0),
        (0x808, 0x0000_ffff),
        (0x80c, 0x00cf_9a00),
        (0x810, 0x0000_ffff),
        (0x814, 0x00cf_9200),
    ];
    for (at, v) in gdt {
        a.mov(dword_ptr(at), v)?;
    }
    a.mov(word_ptr(0x820), 0x17u32)?;
    a.mov(dword_ptr(0x822), 0x800u32)?;
    a.lgdt(ptr(0x820))?;
    a.mov(eax, cr0)?;
    a.or(al, 1)?;
    a.mov(cr0, eax)?;
    // jmp far 0008:000F1000 with a 32-bit offset (66 EA), which jmp_far cannot express in
    // 16-bit code.
    a.db(&[0x66, 0xea, 0x00, 0x10, 0x0f, 0x00, 0x08, 0x00])?;
    a.assemble(0)
}

/// Code that writes a 32-bit interrupt gate for `vector` (selector 8) into the IDT.
pub fn idt_gate(a: &mut CodeAssembler, vector: u32, handler: u32) -> Result<(), IcedError> {
    let at = IDT + vector * 8;
    a.mov(dword_ptr(at), (0x08 << 16) | (handler & 0xffff))?;
    a.mov(dword_ptr(at + 4), (handler & 0xffff_0000) | 0x8e00)
}
