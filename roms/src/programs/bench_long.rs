//! `bench_int64` and `bench_sse64`: loops in 64-bit long mode.
//!
//! ```text
//! ; real mode: common start-up, COM1 init, GDT, CR0.PE, jmp 0x08:0xF1000
//! ; 32-bit (0xF1000):
//!         <flat segments, ESP>
//!         mov dword [0x20000], 0x21003    ; PML4[0] -> PDPT
//!         mov dword [0x21000], 0x22003    ; PDPT[0] -> PD
//!         mov dword [0x22000], 0x83       ; PD[0]: 2 MiB page at 0, writable
//!         mov dword [0x818], 0x0000FFFF   ; GDT 0x18: 64-bit code (L = 1)
//!         mov dword [0x81C], 0x00AF9A00
//!         mov word [0x820], 31            ; GDTR limit: four descriptors
//!         lgdt [0x820]
//!         mov eax, 0x620 / mov cr4, eax   ; PAE, OSFXSR, OSXMMEXCPT
//!         mov eax, 0x20000 / mov cr3, eax
//!         mov ecx, 0xC0000080 / rdmsr / or eax, 0x100 / wrmsr   ; EFER.LME
//!         mov eax, cr0 / bts eax, 31 / mov cr0, eax             ; paging on: IA-32e mode
//!         jmp 0x18:0xF4000
//! ; 64-bit (0xF4000):
//!         <register set-up>
//!         mov ebp, OUTER
//! outer:  mov ecx, INNER
//! inner:  <eight instructions>, dec ecx, jnz inner
//!         dec ebp
//!         jnz outer
//!         mov esi, "bench-...64 done\r\n"
//!         call puts
//!         <power off>
//! ```
//!
//! The page tables use RAM at 0x20000..0x23000, which a freshly powered machine has zeroed.

use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction};

use super::common::{self, mark, SerialRoutines};
use super::{GenError, GenResult, Program};

/// Outer loop trips.
pub const OUTER: u32 = 200;
/// Inner loop trips per outer trip.
pub const INNER: u32 = 100_000;
/// Instructions in one inner iteration (from `inner:` to `jnz inner`).
pub const INNER_BODY_INSNS: u64 = 10;
/// Per outer iteration besides the inner loop: `mov ecx`, `dec ebp`, `jnz outer`.
pub const OUTER_OVERHEAD_INSNS: u64 = 3;
/// Printed before power-off.
pub const DONE_INT: &str = "bench-int64 done\r\n";
pub const DONE_SSE: &str = "bench-sse64 done\r\n";

/// Image offset of the 64-bit code (inside the area the common layout gives 32-bit code).
pub const CODE64_OFFSET: u32 = 0x4000;
/// Selector of the 64-bit code segment added to the common GDT.
pub const SEL_CODE64: u16 = 0x18;
/// Page tables: PML4, PDPT, PD.
const PML4: u32 = 0x2_0000;
const PDPT: u32 = 0x2_1000;
const PD: u32 = 0x2_2000;
/// CR4: PAE, OSFXSR, OSXMMEXCPT.
const CR4_BITS: u32 = 0x620;
const MSR_EFER: u32 = 0xC000_0080;
const EFER_LME: u32 = 0x100;

/// Instructions of the 32-bit code from its entry to the far jump into 64-bit mode,
/// included: 7 (segments, ESP) + 6 page-table stores + 2 descriptor stores + GDTR limit +
/// lgdt + 2 (CR4) + 2 (CR3) + 4 (EFER) + 3 (CR0) + far jump.
pub const LONG_ENTRY_INSNS: u64 = 7 + 6 + 2 + 1 + 1 + 2 + 2 + 4 + 3 + 1;

/// Emits the switch from flat 32-bit protected mode to 64-bit mode at [`CODE64_OFFSET`].
fn emit_enter_long_mode(a: &mut CodeAssembler) -> GenResult<()> {
    common::emit_pm_entry(a)?;
    for (at, entry) in [(PML4, PDPT | 3), (PDPT, PD | 3), (PD, 0x83)] {
        a.mov(dword_ptr(at), entry)?;
        a.mov(dword_ptr(at + 4), 0u32)?;
    }
    let desc = common::GDT_ADDR + 8 * 3;
    a.mov(dword_ptr(desc), 0x0000_FFFFu32)?;
    a.mov(dword_ptr(desc + 4), 0x00AF_9A00u32)?;
    a.mov(word_ptr(common::GDTR_ADDR), 8 * 4 - 1)?;
    a.lgdt(ptr(common::GDTR_ADDR))?;
    a.mov(eax, CR4_BITS)?;
    a.mov(cr4, eax)?;
    a.mov(eax, PML4)?;
    a.mov(cr3, eax)?;
    a.mov(ecx, MSR_EFER)?;
    a.rdmsr()?;
    a.or(eax, EFER_LME)?;
    a.wrmsr()?;
    a.mov(eax, cr0)?;
    a.bts(eax, 31)?;
    a.mov(cr0, eax)?;
    a.add_instruction(Instruction::with_far_branch(
        Code::Jmp_ptr1632,
        SEL_CODE64,
        common::linear(CODE64_OFFSET),
    )?)?;
    Ok(())
}

/// The integer loop body: 64-bit registers, REX-extended ones included.
fn int_body(a: &mut CodeAssembler) -> GenResult<()> {
    a.add(rax, rbx)?;
    a.xor(rbx, rax)?;
    a.rol(rax, 7)?;
    a.mov(rdi, rax)?;
    a.shr(rdi, 3)?;
    a.add(r8, rdi)?;
    a.xor(r8, rcx)?;
    a.sub(r9, r8)?;
    Ok(())
}

fn int_setup(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(rax, 0x1234_5678_9ABC_DEF0u64)?;
    a.mov(rbx, 0x9E37_79B9_7F4A_7C15u64)?;
    a.mov(r8, 0x7F4A_7C15_9E37_79B9u64)?;
    a.mov(r9, 1u64)?;
    Ok(())
}

/// The SSE loop body: packed integer and single-precision arithmetic, shuffles, moves.
fn sse_body(a: &mut CodeAssembler) -> GenResult<()> {
    a.paddd(xmm0, xmm1)?;
    a.pxor(xmm1, xmm0)?;
    a.movdqa(xmm2, xmm0)?;
    a.psrlq(xmm2, 3)?;
    a.paddq(xmm3, xmm2)?;
    a.pshufd(xmm1, xmm1, 0x93)?;
    a.addps(xmm4, xmm5)?;
    a.mulps(xmm6, xmm7)?;
    Ok(())
}

/// Seeds the XMM registers from GPRs (no memory constants needed).
fn sse_setup(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(rax, 0x1234_5678_9ABC_DEF0u64)?;
    a.movq(xmm0, rax)?;
    a.mov(rax, 0x9E37_79B9_7F4A_7C15u64)?;
    a.movq(xmm1, rax)?;
    a.pshufd(xmm1, xmm1, 0x44)?;
    // 1.0f in every lane of XMM5 and XMM7 (the multiplier keeps XMM6 finite), 0.5 in XMM6.
    a.mov(eax, 0x3F80_0000u32)?;
    a.movd(xmm5, eax)?;
    a.pshufd(xmm5, xmm5, 0)?;
    a.movdqa(xmm7, xmm5)?;
    a.mov(eax, 0x3F00_0000u32)?;
    a.movd(xmm6, eax)?;
    a.pshufd(xmm6, xmm6, 0)?;
    Ok(())
}

type Emit = fn(&mut CodeAssembler) -> GenResult<()>;

fn build_with(setup: Emit, body: Emit, done_text: &str) -> GenResult<Program> {
    let mut data = common::DataArea::default();
    let done = data.add_str(done_text);

    let mut a16 = CodeAssembler::new(16)?;
    common::emit_real_mode_start(&mut a16)?;
    common::emit_enter_protected_mode(&mut a16)?;
    let real_insns = mark(&a16);
    let code16 = a16.assemble(u64::from(common::CODE16_OFFSET))?;

    let mut a32 = CodeAssembler::new(32)?;
    emit_enter_long_mode(&mut a32)?;
    common::expect_count("long-mode entry", mark(&a32), LONG_ENTRY_INSNS)?;
    let code32 = a32.assemble(u64::from(common::CODE32_LINEAR))?;

    let mut a = CodeAssembler::new(64)?;
    let serial = SerialRoutines::new(&mut a);
    setup(&mut a)?;
    a.mov(ebp, OUTER)?;
    let setup_insns = mark(&a);
    let mut outer = a.create_label();
    let mut inner = a.create_label();
    a.set_label(&mut outer)?;
    a.mov(ecx, INNER)?;
    let body_start = mark(&a);
    a.set_label(&mut inner)?;
    body(&mut a)?;
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
    let code64 = a.assemble(u64::from(common::linear(CODE64_OFFSET)))?;

    if code32.len() > (CODE64_OFFSET - common::CODE32_OFFSET) as usize {
        return Err(GenError::Layout(format!(
            "32-bit code is {} bytes, overruns the 64-bit code",
            code32.len()
        )));
    }
    let mut image = common::link(&code16, &code32, &data)?;
    let start = CODE64_OFFSET as usize;
    let end = start + code64.len();
    if end > common::DATA_OFFSET as usize {
        return Err(GenError::Layout(format!(
            "64-bit code is {} bytes, overruns the data",
            code64.len()
        )));
    }
    image[start..end].copy_from_slice(&code64);

    let loops = u64::from(OUTER) * (OUTER_OVERHEAD_INSNS + u64::from(INNER) * INNER_BODY_INSNS);
    let insns = common::RESET_STUB_INSNS
        + real_insns
        + LONG_ENTRY_INSNS
        + setup_insns
        + loops
        + 2
        + common::puts_insns(done_text.len())
        + common::POWER_OFF_INSNS;
    Ok(Program {
        image,
        insns: Some(insns),
    })
}

pub fn build_int() -> GenResult<Program> {
    build_with(int_setup, int_body, DONE_INT)
}

pub fn build_sse() -> GenResult<Program> {
    build_with(sse_setup, sse_body, DONE_SSE)
}
