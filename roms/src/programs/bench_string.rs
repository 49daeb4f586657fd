//! `bench_string`: string instructions and memory traffic in flat 32-bit protected mode.
//!
//! Two 16 KiB buffers in RAM, A at 0x20000 and B at 0x30000.
//!
//! ```text
//! ; real mode (F000:0000): common start-up, COM1 init, GDT, CR0.PE, jmp 0x08:0xF1000
//! ; 32-bit:
//!         <flat segments, ESP>
//!         mov ebp, OUTER
//! outer:  mov eax, ebp                  ; fill A with the trip number
//!         mov edi, A
//!         mov ecx, 4096
//!         rep stosd                     ; 4096 iterations
//!         mov esi, A                    ; copy A to B
//!         mov edi, B
//!         mov ecx, 4096
//!         rep movsd                     ; 4096 iterations
//!         mov esi, A                    ; compare A with B
//!         mov edi, B
//!         mov ecx, 16384
//!         repe cmpsb                    ; 16384 iterations (the buffers are equal)
//!         jne fail
//!         mov esi, B                    ; read-modify-write every dword of B
//!         mov ecx, 4096
//! touch:  mov eax, [esi]
//!         xor eax, ebp
//!         mov [esi], eax
//!         add esi, 4
//!         dec ecx
//!         jnz touch                     ; 4096 * 6 instructions
//!         dec ebp
//!         jnz outer
//!         mov esi, "bench-string done\r\n"
//!         call puts
//!         <power off>
//! fail:   mov esi, "bench-string FAILED\r\n"
//!         call puts
//!         <isa-debug-exit 2, halt>
//! ```
//!
//! Counting convention: a REP-prefixed string instruction counts one instruction per
//! iteration it performs (as Bochs counts them), so `rep stosd` with ECX = 4096 counts 4096.
//! (None of the REP instructions here runs with ECX = 0.)
//!
//! Instructions executed, from the reset vector to the last `OUT`:
//!
//! ```text
//!   reset stub                       1
//! + real mode (straight line)       41   (7 start-up + 21 COM1 init + 13 GDT/CR0/far jump)
//! + 32-bit entry + mov ebp           8   (7 + 1)
//! + OUTER * per_outer, per_outer = 14 + 4096 + 4096 + 16384 + 4096 * 6 = 49_166
//!     (14 = the 12 other instructions of the trip and dec ebp / jnz outer)
//!     = 4068 * 49_166               = 200_007_288
//! + mov esi + call                   2
//! + puts("bench-string done\r\n")  270   (19 chars * 14 + 4)
//! + power off up to the last OUT    21
//! = 200_007_631
//! ```

use iced_x86::code_asm::*;

use super::common::{self, mark, SerialRoutines};
use super::{GenResult, Program};

/// Outer loop trips.
pub const OUTER: u32 = 4068;
/// Buffer A (physical = linear).
pub const BUF_A: u32 = 0x2_0000;
/// Buffer B.
pub const BUF_B: u32 = 0x3_0000;
/// Size of each buffer in bytes.
pub const BUF_BYTES: u32 = 16 * 1024;
/// Size of each buffer in dwords.
pub const BUF_DWORDS: u32 = BUF_BYTES / 4;
/// Instructions in one iteration of the touch loop.
pub const TOUCH_BODY_INSNS: u64 = 6;
/// Instructions of one outer trip that are neither REP iterations nor the touch loop.
pub const OUTER_OVERHEAD_INSNS: u64 = 14;
/// Printed before power-off.
pub const DONE: &str = "bench-string done\r\n";
/// Printed if the copy did not compare equal.
pub const FAILED: &str = "bench-string FAILED\r\n";

pub fn build() -> GenResult<Program> {
    let mut data = common::DataArea::default();
    let done = data.add_str(DONE);
    let failed = data.add_str(FAILED);

    let mut a16 = CodeAssembler::new(16)?;
    common::emit_real_mode_start(&mut a16)?;
    common::emit_enter_protected_mode(&mut a16)?;
    let real_insns = mark(&a16);
    let code16 = a16.assemble(u64::from(common::CODE16_OFFSET))?;

    let mut a = CodeAssembler::new(32)?;
    let serial = SerialRoutines::new(&mut a);
    let mut fail = a.create_label();
    common::emit_pm_entry(&mut a)?;
    a.mov(ebp, OUTER)?;
    let setup_insns = mark(&a);

    let mut outer = a.create_label();
    a.set_label(&mut outer)?;
    a.mov(eax, ebp)?;
    a.mov(edi, BUF_A)?;
    a.mov(ecx, BUF_DWORDS)?;
    a.rep().stosd()?;
    a.mov(esi, BUF_A)?;
    a.mov(edi, BUF_B)?;
    a.mov(ecx, BUF_DWORDS)?;
    a.rep().movsd()?;
    a.mov(esi, BUF_A)?;
    a.mov(edi, BUF_B)?;
    a.mov(ecx, BUF_BYTES)?;
    a.repe().cmpsb()?;
    a.jne(fail)?;
    a.mov(esi, BUF_B)?;
    a.mov(ecx, BUF_DWORDS)?;
    let touch_start = mark(&a);
    let mut touch = a.create_label();
    a.set_label(&mut touch)?;
    a.mov(eax, dword_ptr(esi))?;
    a.xor(eax, ebp)?;
    a.mov(dword_ptr(esi), eax)?;
    a.add(esi, 4)?;
    a.dec(ecx)?;
    a.jnz(touch)?;
    common::expect_count("touch loop", mark(&a) - touch_start, TOUCH_BODY_INSNS)?;
    a.dec(ebp)?;
    a.jnz(outer)?;
    // The trip's instructions: the overhead, the three REP instructions, the touch loop.
    let trip = mark(&a) - setup_insns;
    common::expect_count(
        "outer trip",
        trip,
        OUTER_OVERHEAD_INSNS + 3 + TOUCH_BODY_INSNS,
    )?;

    common::emit_print32(&mut a, serial, done)?;
    common::emit_power_off(&mut a)?;

    a.set_label(&mut fail)?;
    common::emit_print32(&mut a, serial, failed)?;
    common::emit_exit(&mut a, common::EXIT_SELF_CHECK_FAILED)?;
    serial.emit(&mut a)?;
    let code32 = a.assemble(u64::from(common::CODE32_LINEAR))?;

    let rep_iterations = u64::from(BUF_DWORDS) + u64::from(BUF_DWORDS) + u64::from(BUF_BYTES);
    let touch_insns = u64::from(BUF_DWORDS) * TOUCH_BODY_INSNS;
    let per_outer = OUTER_OVERHEAD_INSNS + rep_iterations + touch_insns;
    let insns = common::RESET_STUB_INSNS
        + real_insns
        + setup_insns
        + u64::from(OUTER) * per_outer
        + 2
        + common::puts_insns(DONE.len())
        + common::POWER_OFF_INSNS;
    let image = common::link(&code16, &code32, &data)?;
    Ok(Program {
        image,
        insns: Some(insns),
    })
}
