//! The mouse probe: a 64 KiB real-mode ROM that turns on the PS/2 mouse through the i8042 as
//! a driver does and prints every 3-byte packet it receives on IRQ12.
//!
//! 1. COM1 set up, PIT channel 0 ticking (IRQ0 masked); the command byte written with both interrupts off and the keyboard
//!    disabled (its bytes would sit in front of the mouse's).
//! 2. 0xA8 enables the aux port, 0xD4 0xF4 tells the mouse to report; the ACK (0xFA) is
//!    polled for with the aux-full bit (status bit 5). "mouse ready" or "mouse error XX".
//! 3. The command byte gets the aux interrupt; IRQ12 (slave 8259 line 4, vector 0x74) reads
//!    each byte that has status bits 0 and 5 set, resynchronizes on bit 3 of a packet's first
//!    byte, and prints "packet HH HH HH" per packet.
//!
//! Lines go to port 0xE9 (debug console) and COM1, ended by "\n".

use super::common;
use super::{GenError, GenResult, Program};
use iced_x86::code_asm::*;

/// Bytes of the packet so far, and how many.
const PACKET: u32 = 0x500;
const COUNT: u32 = 0x504;
/// IVT entry of IRQ12 (vector 0x70 + 4).
const IRQ12_VECTOR: u32 = 0x74;
/// Command byte while setting up: system flag, keyboard and aux disabled, no interrupts.
const CCB_QUIET: u32 = 0x34;
/// Command byte while running: system flag, keyboard disabled, aux interrupt on.
const CCB_MOUSE: u32 = 0x16;

struct Routines {
    putc: CodeLabel,
    hex: CodeLabel,
    wait_input: CodeLabel,
    irq12: CodeLabel,
}

pub fn build() -> GenResult<Program> {
    let mut a = CodeAssembler::new(16)?;
    let mut r = Routines {
        putc: a.create_label(),
        hex: a.create_label(),
        wait_input: a.create_label(),
        irq12: a.create_label(),
    };
    let mut vector_patch = a.create_label();
    common::emit_real_mode_start(&mut a)?;
    a.mov(word_ptr(IRQ12_VECTOR * 4), 0)?;
    a.set_label(&mut vector_patch)?;
    a.mov(
        word_ptr(IRQ12_VECTOR * 4 + 2),
        u32::from(common::ROM_SEGMENT),
    )?;
    emit_pics(&mut a)?;
    emit_enable_mouse(&mut a, &r)?;
    emit_routines(&mut a, &mut r)?;
    let result = a.assemble_options(
        0,
        iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let mut code = result.inner.code_buffer.clone();
    // The word immediate that ends `mov word [0x1d0], 0` becomes the handler's offset.
    let end = result.label_ip(&vector_patch)? as usize;
    let target = result.label_ip(&r.irq12)? as u16;
    code[end - 2..end].copy_from_slice(&target.to_le_bytes());
    let mut image = common::link(&[], &[], &common::DataArea::default())?;
    if code.len() > common::CODE32_OFFSET as usize {
        return Err(GenError::Layout(format!(
            "mouse probe code is {} bytes",
            code.len()
        )));
    }
    image[..code.len()].copy_from_slice(&code);
    Ok(Program { image, insns: None })
}

/// Both 8259s: master at vector 8 with only the cascade open, slave at 0x70 with only IRQ12.
/// PIT channel 0 ticks at 100 Hz with IRQ0 masked: a machine whose only timer is idle would
/// be halted for good, as a PC with no timer running.
fn emit_pics(a: &mut CodeAssembler) -> GenResult<()> {
    for (port, value) in [
        (0x20, 0x11),
        (0x21, 0x08),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xA0, 0x11),
        (0xA1, 0x70),
        (0xA1, 0x02),
        (0xA1, 0x01),
        (0x21, 0xFB),
        (0xA1, 0xEF),
        (0x43, 0x34),
        (0x40, 0x9C), // 11932 = 0x2E9C: 100 Hz
        (0x40, 0x2E),
    ] {
        a.mov(al, value)?;
        a.out(port, al)?;
    }
    Ok(())
}

/// `out 0x64, command` once the controller's input buffer is empty.
fn controller_command(a: &mut CodeAssembler, r: &Routines, command: u32) -> GenResult<()> {
    a.call(r.wait_input)?;
    a.mov(al, command)?;
    a.out(0x64, al)?;
    Ok(())
}

/// `out 0x60, data` once the controller's input buffer is empty.
fn controller_data(a: &mut CodeAssembler, r: &Routines, data: u32) -> GenResult<()> {
    a.call(r.wait_input)?;
    a.mov(al, data)?;
    a.out(0x60, al)?;
    Ok(())
}

fn print(a: &mut CodeAssembler, r: &Routines, text: &str) -> GenResult<()> {
    for byte in text.bytes() {
        a.mov(al, u32::from(byte))?;
        a.call(r.putc)?;
    }
    Ok(())
}

/// Steps 1 and 2, then the idle loop with interrupts on.
fn emit_enable_mouse(a: &mut CodeAssembler, r: &Routines) -> GenResult<()> {
    let mut drain = a.create_label();
    let mut drained = a.create_label();
    let mut poll = a.create_label();
    let mut got_byte = a.create_label();
    let mut error = a.create_label();
    let mut idle = a.create_label();
    controller_command(a, r, 0x60)?;
    controller_data(a, r, CCB_QUIET)?;
    // Anything already in the output buffer is not ours.
    a.set_label(&mut drain)?;
    a.in_(al, 0x64)?;
    a.test(al, 1)?;
    a.jz(drained)?;
    a.in_(al, 0x60)?;
    a.jmp(drain)?;
    a.set_label(&mut drained)?;
    controller_command(a, r, 0xA8)?;
    controller_command(a, r, 0xD4)?;
    controller_data(a, r, 0xF4)?;
    a.mov(cx, 0xFFFFu32)?;
    a.set_label(&mut poll)?;
    a.in_(al, 0x64)?;
    a.and(al, 0x21)?;
    a.cmp(al, 0x21)?;
    a.je(got_byte)?;
    a.loop_(poll)?;
    a.mov(al, 0xFFu32)?; // no answer at all
    a.jmp(error)?;
    a.set_label(&mut got_byte)?;
    a.in_(al, 0x60)?;
    a.cmp(al, 0xFAu32)?;
    a.jne(error)?;
    print(a, r, "mouse ready\n")?;
    a.mov(byte_ptr(COUNT), 0)?;
    controller_command(a, r, 0x60)?;
    controller_data(a, r, CCB_MOUSE)?;
    a.sti()?;
    a.set_label(&mut idle)?;
    a.hlt()?;
    a.jmp(idle)?;
    a.set_label(&mut error)?;
    a.mov(bl, al)?;
    print(a, r, "mouse error ")?;
    a.mov(al, bl)?;
    a.call(r.hex)?;
    print(a, r, "\n")?;
    let mut stop = a.create_label();
    a.cli()?;
    a.set_label(&mut stop)?;
    a.hlt()?;
    a.jmp(stop)?;
    Ok(())
}

/// putc, hex, wait_input and the IRQ12 handler.
fn emit_routines(a: &mut CodeAssembler, r: &mut Routines) -> GenResult<()> {
    // putc: AL to port 0xE9 and COM1; DX is used.
    a.set_label(&mut r.putc)?;
    a.out(0xE9, al)?;
    a.mov(dx, 0x3F8u32)?;
    a.out(dx, al)?;
    a.ret()?;

    // hex: AL as two hex digits.
    let mut digit = a.create_label();
    let mut decimal = a.create_label();
    a.set_label(&mut r.hex)?;
    a.push(ax)?;
    a.shr(al, 4)?;
    a.call(digit)?;
    a.pop(ax)?;
    a.and(al, 0x0F)?;
    a.set_label(&mut digit)?;
    a.add(al, u32::from(b'0'))?;
    a.cmp(al, u32::from(b'9'))?;
    a.jbe(decimal)?;
    a.add(al, 7)?;
    a.set_label(&mut decimal)?;
    a.call(r.putc)?;
    a.ret()?;

    // wait_input: until the controller has taken the last byte (status bit 1 clear).
    a.set_label(&mut r.wait_input)?;
    a.in_(al, 0x64)?;
    a.test(al, 2)?;
    a.jnz(r.wait_input)?;
    a.ret()?;

    emit_irq12(a, r)
}

fn emit_irq12(a: &mut CodeAssembler, r: &mut Routines) -> GenResult<()> {
    let mut store = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut r.irq12)?;
    a.push(ax)?;
    a.push(bx)?;
    a.push(dx)?;
    a.in_(al, 0x64)?;
    a.and(al, 0x21)?;
    a.cmp(al, 0x21)?;
    a.jne(done)?;
    a.in_(al, 0x60)?;
    a.xor(bx, bx)?;
    a.mov(bl, byte_ptr(COUNT))?;
    a.test(bl, bl)?;
    a.jnz(store)?;
    // A packet's first byte always has bit 3 set: anything else is out of step.
    a.test(al, 0x08)?;
    a.jz(done)?;
    a.set_label(&mut store)?;
    a.mov(byte_ptr(bx + PACKET), al)?;
    a.inc(bl)?;
    a.mov(byte_ptr(COUNT), bl)?;
    a.cmp(bl, 3)?;
    a.jne(done)?;
    a.mov(byte_ptr(COUNT), 0)?;
    print(a, r, "packet")?;
    for i in 0..3 {
        print(a, r, " ")?;
        a.mov(al, byte_ptr(PACKET + i))?;
        a.call(r.hex)?;
    }
    print(a, r, "\n")?;
    a.set_label(&mut done)?;
    a.mov(al, 0x20)?;
    a.out(0xA0, al)?;
    a.out(0x20, al)?;
    a.pop(dx)?;
    a.pop(bx)?;
    a.pop(ax)?;
    a.iret()?;
    Ok(())
}
