//! `bench_int`: a tight integer loop in flat 32-bit protected mode.
//!
//! ```text
//! ; real mode (F000:0000): common start-up, COM1 init, GDT, CR0.PE, jmp 0x08:0xF1000
//! ; 32-bit:
//!         <flat segments, ESP>
//!         mov eax, 0x12345678          ; state
//!         mov ebx, 0x9E3779B9
//!         mov edx, 0x7F4A7C15
//!         mov esi, 1
//!         mov ebp, OUTER
//! outer:  mov ecx, INNER
//! inner:  add eax, ebx                  ; ten instructions per inner iteration
//!         xor ebx, eax
//!         rol eax, 7
//!         mov edi, eax
//!         shr edi, 3
//!         add edx, edi
//!         xor edx, ecx
//!         sub esi, edx
//!         dec ecx
//!         jnz inner
//!         dec ebp
//!         jnz outer
//!         mov esi, "bench-int done\r\n"
//!         call puts
//!         <power off>
//! ```
//!
//! Instructions executed, from the reset vector to the last `OUT`:
//!
//! ```text
//!   reset stub                       1
//! + real mode (straight line)       41   (7 start-up + 21 COM1 init + 13 GDT/CR0/far jump)
//! + 32-bit entry + state set-up     12   (7 + 5)
//! + OUTER * (3 + INNER * 10)             (mov ecx / dec ebp / jnz, and the inner body)
//!     = 200 * (3 + 100_000 * 10)    = 200_000_600
//! + mov esi + call                   2
//! + puts("bench-int done\r\n")     228   (16 chars * 14 + 4)
//! + power off up to the last OUT    21   (drain COM1: 4, mov dx, 8 * (mov al, out))
//! = 200_000_905
//! ```

use iced_x86::code_asm::*;

use super::common::{self, mark, SerialRoutines};
use super::{GenResult, Program};

/// Outer loop trips.
pub const OUTER: u32 = 200;
/// Inner loop trips per outer trip.
pub const INNER: u32 = 100_000;
/// Instructions in one inner iteration (from `inner:` to `jnz inner`).
pub const INNER_BODY_INSNS: u64 = 10;
/// Per outer iteration besides the inner loop: `mov ecx`, `dec ebp`, `jnz outer`.
pub const OUTER_OVERHEAD_INSNS: u64 = 3;
/// Printed before power-off.
pub const DONE: &str = "bench-int done\r\n";

pub fn build() -> GenResult<Program> {
    let mut data = common::DataArea::default();
    let done = data.add_str(DONE);

    let mut a16 = CodeAssembler::new(16)?;
    common::emit_real_mode_start(&mut a16)?;
    common::emit_enter_protected_mode(&mut a16)?;
    let real_insns = mark(&a16);
    let code16 = a16.assemble(u64::from(common::CODE16_OFFSET))?;

    let mut a = CodeAssembler::new(32)?;
    let serial = SerialRoutines::new(&mut a);
    common::emit_pm_entry(&mut a)?;
    a.mov(eax, 0x1234_5678u32)?;
    a.mov(ebx, 0x9E37_79B9u32)?;
    a.mov(edx, 0x7F4A_7C15u32)?;
    a.mov(esi, 1u32)?;
    a.mov(ebp, OUTER)?;
    let setup_insns = mark(&a);

    let mut outer = a.create_label();
    let mut inner = a.create_label();
    a.set_label(&mut outer)?;
    a.mov(ecx, INNER)?;
    let body_start = mark(&a);
    a.set_label(&mut inner)?;
    a.add(eax, ebx)?;
    a.xor(ebx, eax)?;
    a.rol(eax, 7)?;
    a.mov(edi, eax)?;
    a.shr(edi, 3)?;
    a.add(edx, edi)?;
    a.xor(edx, ecx)?;
    a.sub(esi, edx)?;
    a.dec(ecx)?;
    a.jnz(inner)?;
    common::expect_count("inner loop body", mark(&a) - body_start, INNER_BODY_INSNS)?;
    a.dec(ebp)?;
    a.jnz(outer)?;
    common::expect_count(
        "outer loop",
        mark(&a) - setup_insns,
        OUTER_OVERHEAD_INSNS + INNER_BODY_INSNS,
    )?;

    common::emit_print32(&mut a, serial, done)?;
    common::emit_power_off(&mut a)?;
    serial.emit(&mut a)?;
    let code32 = a.assemble(u64::from(common::CODE32_LINEAR))?;

    let loops = u64::from(OUTER) * (OUTER_OVERHEAD_INSNS + u64::from(INNER) * INNER_BODY_INSNS);
    let insns = common::RESET_STUB_INSNS
        + real_insns
        + setup_insns
        + loops
        + 2
        + common::puts_insns(DONE.len())
        + common::POWER_OFF_INSNS;
    let image = common::link(&code16, &code32, &data)?;
    Ok(Program {
        image,
        insns: Some(insns),
    })
}
