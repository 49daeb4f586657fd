//! What every program shares: the ROM layout, the real-mode start-up, the switch to flat
//! 32-bit protected mode, COM1 output and power-off.
//!
//! # ROM layout (image offsets; the image is mapped at physical 0xF0000..=0xFFFFF)
//!
//! | offset  | what                                                   | assembled for        |
//! |---------|--------------------------------------------------------|----------------------|
//! | 0x0000  | 16-bit real-mode code, entered at F000:0000            | IP = offset          |
//! | 0x1000  | 32-bit protected-mode code, entered at 0x08:0x000F1000 | EIP = 0xF0000+offset |
//! | 0x8000  | data (NUL-terminated strings)                          | —                    |
//! | 0xFFF0  | reset vector: `jmp far F000:0000`                      | IP = 0xFFF0          |
//!
//! Everything else is 0xFF, as in an erased EPROM.
//!
//! # RAM used (physical; all below 1 MiB, so the A20 gate does not matter)
//!
//! | address  | what                                                    |
//! |----------|---------------------------------------------------------|
//! | 0x0800   | GDT: null, flat 32-bit code (0x08), flat 32-bit data (0x10) |
//! | 0x0820   | the 6-byte GDT pseudo-descriptor loaded by `lgdt`       |
//! | 0x7C00   | top of the stack (real mode SS:SP = 0000:7C00, then ESP) |
//! | 0x10000+ | program data (see each program)                         |
//!
//! # Counting instructions
//!
//! The benchmarks promise an exact instruction count. The pieces here are straight-line code
//! (or loops whose trip count is fixed), and their counts are constants below, checked
//! against the emitted instructions when the code is generated. One assumption is made for
//! COM1: every read of the line status register finds what the guest waits for ("holding
//! register empty" before each character, "transmitter empty" before power-off) on the first
//! read, as with an emulated UART that transmits instantly. A UART that makes the guest wait
//! (Bochs' models the baud rate) adds 3 instructions (`in`, `test`, `jz`) per extra poll.

use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction};

use super::{GenError, GenResult};

/// Size of every image.
pub const ROM_SIZE: usize = 0x1_0000;
/// Physical address of image offset 0 (the image ends at 0xFFFFF).
pub const ROM_BASE: u32 = 0xF_0000;
/// Real-mode code segment after the reset jump.
pub const ROM_SEGMENT: u16 = 0xF000;
/// Offset of the reset vector (physical 0xFFFF0, and 0xFFFFFFF0 through the high alias).
pub const RESET_OFFSET: usize = 0xFFF0;
/// Offset of the 16-bit code (the reset stub jumps to F000:CODE16_OFFSET).
pub const CODE16_OFFSET: u16 = 0x0000;
/// Offset of the 32-bit code.
pub const CODE32_OFFSET: u32 = 0x1000;
/// Linear address of the 32-bit code (flat segments, base 0).
pub const CODE32_LINEAR: u32 = ROM_BASE + CODE32_OFFSET;
/// Offset of the data area.
pub const DATA_OFFSET: u32 = 0x8000;
/// Filler byte for everything not used.
pub const FILL: u8 = 0xFF;

/// Physical address of the GDT built in RAM.
pub const GDT_ADDR: u32 = 0x0800;
/// Physical address of the pseudo-descriptor (limit, base) for `lgdt`.
pub const GDTR_ADDR: u32 = 0x0820;
/// Initial stack pointer (real mode and protected mode).
pub const STACK_TOP: u32 = 0x7C00;
/// Selector of the flat 32-bit code segment.
pub const SEL_CODE32: u16 = 0x08;
/// Selector of the flat 32-bit data segment.
pub const SEL_DATA32: u16 = 0x10;

/// 16550 UART, COM1.
pub const COM1: u16 = 0x3F8;
/// Bochs' APM shutdown port: the bytes "Shutdown" written one at a time power off.
pub const SHUTDOWN_PORT: u16 = 0x8900;
/// QEMU's isa-debug-exit port (exit status = value * 2 + 1).
pub const DEBUG_EXIT_PORT: u32 = 0xF4;
/// Written to isa-debug-exit when the power-off port did nothing.
pub const EXIT_NO_POWER_OFF: u32 = 0x01;
/// Written to isa-debug-exit when a program's self-check failed.
pub const EXIT_SELF_CHECK_FAILED: u32 = 0x02;

/// Instructions of the reset stub (the far jump).
pub const RESET_STUB_INSNS: u64 = 1;
/// Instructions of `putc` for one character (THRE set on the first poll), `ret` included.
pub const PUTC_INSNS: u64 = 9;
/// Instructions of `puts` per character printed, `putc` included.
pub const PUTS_PER_CHAR_INSNS: u64 = 5 + PUTC_INSNS;
/// Instructions of `puts` for the terminating NUL, `ret` included.
pub const PUTS_END_INSNS: u64 = 4;
/// Instructions from the start of the power-off sequence to its last `OUT`: wait for the
/// UART to finish sending (4, TEMT on the first poll), then `mov dx` and 8 × (`mov al`, `out`).
pub const POWER_OFF_INSNS: u64 = 4 + 1 + 2 * 8;

/// Instructions `puts` executes for a string of `len` bytes (the `call` not included).
pub const fn puts_insns(len: usize) -> u64 {
    len as u64 * PUTS_PER_CHAR_INSNS + PUTS_END_INSNS
}

/// Number of instructions added to `a` so far (a mark for measuring straight-line code).
pub fn mark(a: &CodeAssembler) -> u64 {
    a.instructions().len() as u64
}

/// Fails with a layout error unless a measured count is the expected one.
pub fn expect_count(what: &str, measured: u64, expected: u64) -> GenResult<()> {
    if measured == expected {
        Ok(())
    } else {
        Err(GenError::Layout(format!(
            "{what}: {measured} instructions emitted, the count assumes {expected}"
        )))
    }
}

/// The data area: NUL-terminated strings at known image offsets.
#[derive(Default)]
pub struct DataArea {
    bytes: Vec<u8>,
}

impl DataArea {
    /// Adds `s` with a terminating NUL; returns its image offset.
    pub fn add_str(&mut self, s: &str) -> u32 {
        let offset = DATA_OFFSET + self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        offset
    }
}

/// Linear (= physical) address of an image offset, for 32-bit code.
pub const fn linear(offset: u32) -> u32 {
    ROM_BASE + offset
}

/// Places the pieces in a 64 KiB image and adds the reset stub.
pub fn link(code16: &[u8], code32: &[u8], data: &DataArea) -> GenResult<Vec<u8>> {
    let pieces: [(&str, usize, &[u8], usize); 3] = [
        (
            "16-bit code",
            CODE16_OFFSET as usize,
            code16,
            CODE32_OFFSET as usize,
        ),
        (
            "32-bit code",
            CODE32_OFFSET as usize,
            code32,
            DATA_OFFSET as usize,
        ),
        ("data", DATA_OFFSET as usize, &data.bytes, RESET_OFFSET),
    ];
    let mut image = vec![FILL; ROM_SIZE];
    for (what, start, bytes, limit) in pieces {
        if start + bytes.len() > limit {
            return Err(GenError::Layout(format!(
                "{what} is {} bytes, overruns {limit:#x}",
                bytes.len()
            )));
        }
        image[start..start + bytes.len()].copy_from_slice(bytes);
    }
    let stub = reset_stub()?;
    image[RESET_OFFSET..RESET_OFFSET + stub.len()].copy_from_slice(&stub);
    Ok(image)
}

/// `jmp far F000:0000` at the reset vector: from here on CS base is 0xF0000.
fn reset_stub() -> GenResult<Vec<u8>> {
    let mut a = CodeAssembler::new(16)?;
    a.add_instruction(Instruction::with_far_branch(
        Code::Jmp_ptr1616,
        ROM_SEGMENT,
        u32::from(CODE16_OFFSET),
    )?)?;
    expect_count("reset stub", mark(&a), RESET_STUB_INSNS)?;
    Ok(a.assemble(RESET_OFFSET as u64)?)
}

/// Real-mode start-up: interrupts off, DF clear, DS = ES = SS = 0, SP = 0x7C00, then COM1
/// set to 115200 baud (divisor 1), 8N1, FIFOs on and cleared, interrupts off, DTR and RTS.
/// Straight-line code.
pub fn emit_real_mode_start(a: &mut CodeAssembler) -> GenResult<()> {
    a.cli()?;
    a.cld()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, STACK_TOP)?;
    let uart_init: [(u16, u32); 7] = [
        (COM1 + 1, 0x00), // IER: no interrupts
        (COM1 + 3, 0x80), // LCR: DLAB = 1
        (COM1, 0x01),     // DLL: divisor 1 = 115200 baud
        (COM1 + 1, 0x00), // DLM
        (COM1 + 3, 0x03), // LCR: 8 data bits, no parity, 1 stop bit, DLAB = 0
        (COM1 + 2, 0xC7), // FCR: FIFOs on, both cleared, RX trigger 14 bytes
        (COM1 + 4, 0x03), // MCR: DTR, RTS
    ];
    for (port, value) in uart_init {
        a.mov(dx, u32::from(port))?;
        a.mov(al, value)?;
        a.out(dx, al)?;
    }
    Ok(())
}

/// Builds the GDT in RAM, loads it, sets CR0.PE and jumps to the 32-bit code at
/// [`CODE32_LINEAR`]. Expects DS = 0. Straight-line code.
pub fn emit_enter_protected_mode(a: &mut CodeAssembler) -> GenResult<()> {
    // Descriptors as (low dword, high dword): base 0, limit 0xFFFFF pages (4 GiB), 32-bit.
    let gdt: [(u32, u32); 3] = [
        (0, 0),                     // null
        (0x0000_FFFF, 0x00CF_9A00), // 0x08: code, present, DPL 0, execute/read, G, D
        (0x0000_FFFF, 0x00CF_9200), // 0x10: data, present, DPL 0, read/write, G, B
    ];
    for (i, (lo, hi)) in gdt.into_iter().enumerate() {
        let at = GDT_ADDR + 8 * i as u32;
        a.mov(dword_ptr(at), lo)?;
        a.mov(dword_ptr(at + 4), hi)?;
    }
    a.mov(word_ptr(GDTR_ADDR), 8 * gdt.len() as u32 - 1)?;
    a.mov(dword_ptr(GDTR_ADDR + 2), GDT_ADDR)?;
    a.lgdt(ptr(GDTR_ADDR))?;
    a.mov(eax, cr0)?;
    a.or(al, 1)?;
    a.mov(cr0, eax)?;
    a.add_instruction(Instruction::with_far_branch(
        Code::Jmp_ptr1632,
        SEL_CODE32,
        CODE32_LINEAR,
    )?)?;
    Ok(())
}

/// First thing in 32-bit code: flat data segments and the stack. Straight-line code.
pub fn emit_pm_entry(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(eax, u32::from(SEL_DATA32))?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(fs, ax)?;
    a.mov(gs, ax)?;
    a.mov(ss, ax)?;
    a.mov(esp, STACK_TOP)?;
    Ok(())
}

/// Waits until COM1 has sent everything (LSR bit 6, TEMT: FIFO and shift register empty;
/// a UART that takes time to transmit, as Bochs' does, would otherwise lose the last
/// characters), then writes "Shutdown" to port 0x8900, one byte at a time: a clean
/// power-off under Nestor and Bochs. What follows runs only if nothing powered off:
/// isa-debug-exit (QEMU), then halt. [`POWER_OFF_INSNS`] instructions up to and including
/// the last `OUT`.
pub fn emit_power_off(a: &mut CodeAssembler) -> GenResult<()> {
    let start = mark(a);
    a.mov(dx, u32::from(COM1 + 5))?;
    let mut drain = a.create_label();
    a.set_label(&mut drain)?;
    a.in_(al, dx)?;
    a.test(al, 0x40)?;
    a.jz(drain)?;
    a.mov(dx, u32::from(SHUTDOWN_PORT))?;
    for byte in *b"Shutdown" {
        a.mov(al, u32::from(byte))?;
        a.out(dx, al)?;
    }
    expect_count("power-off sequence", mark(a) - start, POWER_OFF_INSNS)?;
    emit_exit(a, EXIT_NO_POWER_OFF)
}

/// Writes `value` to isa-debug-exit, then halts for good.
pub fn emit_exit(a: &mut CodeAssembler, value: u32) -> GenResult<()> {
    a.mov(al, value)?;
    a.out(DEBUG_EXIT_PORT, al)?;
    a.cli()?;
    let mut halt = a.create_label();
    a.set_label(&mut halt)?;
    a.hlt()?;
    a.jmp(halt)?;
    Ok(())
}

/// The COM1 output routines, usable from 16-bit and 32-bit code alike.
///
/// - `putc`: prints AL; clobbers AH and DX. Waits for THRE (LSR bit 5) first.
/// - `puts`: prints the NUL-terminated string at DS:SI / DS:ESI; clobbers AX, DX, (E)SI.
///
/// Create the labels with [`SerialRoutines::new`] before the code that calls them, and emit
/// the routines with [`SerialRoutines::emit`] somewhere no code falls into.
#[derive(Clone, Copy)]
pub struct SerialRoutines {
    pub putc: CodeLabel,
    pub puts: CodeLabel,
}

impl SerialRoutines {
    pub fn new(a: &mut CodeAssembler) -> Self {
        SerialRoutines {
            putc: a.create_label(),
            puts: a.create_label(),
        }
    }

    pub fn emit(mut self, a: &mut CodeAssembler) -> GenResult<()> {
        let start = mark(a);
        a.set_label(&mut self.putc)?;
        a.mov(ah, al)?;
        a.mov(dx, u32::from(COM1 + 5))?;
        let mut wait = a.create_label();
        a.set_label(&mut wait)?;
        a.in_(al, dx)?;
        a.test(al, 0x20)?;
        a.jz(wait)?;
        a.mov(al, ah)?;
        a.mov(dx, u32::from(COM1))?;
        a.out(dx, al)?;
        a.ret()?;
        expect_count("putc", mark(a) - start, PUTC_INSNS)?;

        let start = mark(a);
        a.set_label(&mut self.puts)?;
        let mut done = a.create_label();
        a.lodsb()?;
        a.test(al, al)?;
        a.jz(done)?;
        a.call(self.putc)?;
        a.jmp(self.puts)?;
        a.set_label(&mut done)?;
        a.ret()?;
        // Per character: lodsb, test, jz, call, jmp (+ putc); at the NUL: lodsb, test, jz, ret.
        expect_count(
            "puts",
            mark(a) - start,
            PUTS_PER_CHAR_INSNS - PUTC_INSNS + 1,
        )?;
        Ok(())
    }
}

/// Prints the string at image offset `msg` from 32-bit code: `mov esi, msg; call puts`.
/// Executes `2 + puts_insns(len)` instructions.
pub fn emit_print32(a: &mut CodeAssembler, serial: SerialRoutines, msg: u32) -> GenResult<()> {
    a.mov(esi, linear(msg))?;
    a.call(serial.puts)?;
    Ok(())
}
