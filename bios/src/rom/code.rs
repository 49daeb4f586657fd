//! The code in the ROM: one trap stub per service, the POST sequence, default interrupt
//! handlers, and the 32-bit entries (BIOS32 directory and PCI BIOS).

use super::services::{layout, status, svc, StubKind, STUBS, TRAP_PORT};
use super::{RomError, RomResult};
use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction};

/// Assembled code with the F000 offsets of its stubs and named labels.
pub struct Block {
    pub bytes: Vec<u8>,
    pub stubs: Vec<(u8, u16)>,
    pub named: Vec<(String, u16)>,
}

fn ip16(result: &CodeAssemblerResult, label: &CodeLabel) -> RomResult<u16> {
    let ip = result.label_ip(label)?;
    u16::try_from(ip).map_err(|_| RomError::Layout(format!("label at {ip:#x} beyond 64 KiB")))
}

/// `mov dx, TRAP_PORT; mov al, service; out dx, al`.
fn emit_trap(a: &mut CodeAssembler, service: u8) -> RomResult<()> {
    a.mov(dx, u32::from(TRAP_PORT))?;
    a.mov(al, u32::from(service))?;
    a.out(dx, al)?;
    Ok(())
}

/// The trap followed by the status loop of [`status`]; falls through on DONE, jumps to
/// `failed` on BOOT_FAILED when given.
fn emit_trap_loop(a: &mut CodeAssembler, service: u8, failed: Option<CodeLabel>) -> RomResult<()> {
    let mut again = a.create_label();
    let mut not_wait = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut again)?;
    emit_trap(a, service)?;
    a.cmp(al, u32::from(status::DONE))?;
    a.je(done)?;
    a.cmp(al, u32::from(status::WAIT_IRQ))?;
    a.jne(not_wait)?;
    // STI's one-instruction shadow covers HLT: an interrupt cannot slip in between.
    a.sti()?;
    a.hlt()?;
    a.cli()?;
    a.jmp(again)?;
    a.set_label(&mut not_wait)?;
    a.cmp(al, u32::from(status::RETRY))?;
    a.je(again)?;
    if let Some(failed) = failed {
        a.cmp(al, u32::from(status::BOOT_FAILED))?;
        a.je(failed)?;
    }
    a.set_label(&mut done)?;
    a.nop()?;
    Ok(())
}

fn emit_epilogue(a: &mut CodeAssembler) -> RomResult<()> {
    a.pop(eax)?;
    a.pop(edx)?;
    a.iret()?;
    Ok(())
}

/// One 16-bit stub of `kind` for `service`.
fn emit_stub(a: &mut CodeAssembler, service: u8, kind: StubKind) -> RomResult<()> {
    a.push(edx)?;
    a.push(eax)?;
    match kind {
        StubKind::Soft => emit_trap_loop(a, service, None)?,
        StubKind::Irq => emit_trap(a, service)?,
        StubKind::Timer => {
            emit_trap(a, service)?;
            a.int(0x1C)?;
        }
        StubKind::Keyboard => {
            let mut consumed = a.create_label();
            let mut out = a.create_label();
            a.in_(al, 0x60)?;
            a.mov(ah, 0x4Fu32)?;
            a.stc()?;
            a.int(0x15)?;
            a.jnc(consumed)?;
            a.mov(ah, al)?;
            emit_trap(a, service)?;
            a.jmp(out)?;
            // The INT 15h/4Fh hook ate the key: only the EOI is left to do.
            a.set_label(&mut consumed)?;
            a.mov(al, 0x20u32)?;
            a.out(0x20, al)?;
            a.set_label(&mut out)?;
            a.nop()?;
        }
        StubKind::Boot => {
            let mut failed = a.create_label();
            let mut out = a.create_label();
            emit_trap_loop(a, service, Some(failed))?;
            a.jmp(out)?;
            a.set_label(&mut failed)?;
            a.int(0x18)?;
            a.set_label(&mut out)?;
            a.nop()?;
        }
        StubKind::BootFailed => {
            let mut forever = a.create_label();
            emit_trap(a, service)?;
            a.set_label(&mut forever)?;
            a.cli()?;
            a.hlt()?;
            a.jmp(forever)?;
            return Ok(());
        }
        StubKind::Pm32 => {
            return Err(RomError::Layout(format!(
                "service {service:#x}: 32-bit stubs belong in the data block"
            )))
        }
    }
    emit_epilogue(a)
}

/// POST: a clean real-mode start, the POST service, the option ROM loop, then INT 19h.
fn emit_post(a: &mut CodeAssembler, post_stub: CodeLabel, optrom_stub: CodeLabel) -> RomResult<()> {
    let mut next_rom = a.create_label();
    let mut call_rom = a.create_label();
    let mut boot = a.create_label();
    let mut forever = a.create_label();
    a.cli()?;
    a.cld()?;
    a.xor(ax, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, u32::from(layout::POST_STACK))?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    // EBX = 0: a fresh POST (the host side marks EBX while it resumes after RETRY).
    a.xor(ebx, ebx)?;
    // PUSHF; PUSH CS; CALL near = what INT pushes: the stubs end in IRET.
    a.pushf()?;
    a.push(cs)?;
    a.call(post_stub)?;
    a.set_label(&mut next_rom)?;
    a.pushf()?;
    a.push(cs)?;
    a.call(optrom_stub)?;
    a.test(bx, bx)?;
    a.jz(boot)?;
    // A far call to BX:0003 that returns to the JMP below.
    a.push(cs)?;
    a.call(call_rom)?;
    a.jmp(next_rom)?;
    a.set_label(&mut call_rom)?;
    a.push(bx)?;
    a.push(3i32)?;
    a.retf()?;
    a.set_label(&mut boot)?;
    a.sti()?;
    a.int(0x19)?;
    a.set_label(&mut forever)?;
    a.cli()?;
    a.hlt()?;
    a.jmp(forever)?;
    Ok(())
}

/// Default hardware interrupt handlers: acknowledge at the PIC(s) and return.
fn emit_default_irqs(
    a: &mut CodeAssembler,
    master: &mut CodeLabel,
    slave: &mut CodeLabel,
) -> RomResult<()> {
    a.set_label(master)?;
    a.push(ax)?;
    a.mov(al, 0x20u32)?;
    a.out(0x20, al)?;
    a.pop(ax)?;
    a.iret()?;
    a.set_label(slave)?;
    a.push(ax)?;
    a.mov(al, 0x20u32)?;
    a.out(0xA0, al)?;
    a.out(0x20, al)?;
    a.pop(ax)?;
    a.iret()?;
    Ok(())
}

/// The main 16-bit block, assembled for CS = F000 at [`layout::F_CODE`].
pub fn main_block() -> RomResult<Block> {
    let mut a = CodeAssembler::new(16)?;
    let mut labels = Vec::new();
    for s in STUBS.iter().filter(|s| s.kind != StubKind::Pm32) {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        emit_stub(&mut a, s.service, s.kind)?;
        labels.push((s.service, l));
    }
    let find = |n: u8| labels.iter().find(|(s, _)| *s == n).map(|(_, l)| *l);
    let (Some(post_stub), Some(optrom_stub)) = (find(svc::POST), find(svc::OPTION_ROM)) else {
        return Err(RomError::Layout("POST stubs missing".into()));
    };
    let mut post = a.create_label();
    a.set_label(&mut post)?;
    emit_post(&mut a, post_stub, optrom_stub)?;
    let mut master = a.create_label();
    let mut slave = a.create_label();
    emit_default_irqs(&mut a, &mut master, &mut slave)?;

    let r = a.assemble_options(
        u64::from(layout::F_CODE),
        BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let mut stubs = Vec::new();
    for (s, l) in &labels {
        stubs.push((*s, ip16(&r, l)?));
    }
    let named = vec![
        ("F_POST_CODE".to_string(), ip16(&r, &post)?),
        ("F_IRQ_MASTER_DEFAULT".to_string(), ip16(&r, &master)?),
        ("F_IRQ_SLAVE_DEFAULT".to_string(), ip16(&r, &slave)?),
    ];
    Ok(Block {
        bytes: r.inner.code_buffer,
        stubs,
        named,
    })
}

/// Static data: the BIOS32 service directory, the 32-bit entries, the VBE strings.
pub fn data_block() -> RomResult<Block> {
    const BIOS32_AT: u16 = layout::F_DATA;
    const CODE32_AT: u16 = layout::F_DATA + 0x20;
    const STRINGS_AT: u16 = layout::F_DATA + 0x100;
    let (code32, bios32_entry, pci32_entry) = code32_block(CODE32_AT)?;
    let mut bytes = vec![0u8; usize::from(STRINGS_AT - BIOS32_AT)];
    // "_32_", entry point (physical), revision 0, length in paragraphs, checksum.
    let entry = 0xF_0000 + u32::from(bios32_entry);
    let mut dir = [0u8; 16];
    dir[..4].copy_from_slice(b"_32_");
    dir[4..8].copy_from_slice(&entry.to_le_bytes());
    dir[9] = 1;
    dir[10] = 0u8.wrapping_sub(dir.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
    bytes[..16].copy_from_slice(&dir);
    let at = usize::from(CODE32_AT - BIOS32_AT);
    if at + code32.len() > bytes.len() {
        return Err(RomError::Layout("32-bit code overruns the strings".into()));
    }
    bytes[at..at + code32.len()].copy_from_slice(&code32);
    let mut named = vec![
        ("F_BIOS32".to_string(), BIOS32_AT),
        // Sixteen zero bytes: an empty font patch table (INT 10h/1130h BH=5 and 7).
        ("F_ZERO".to_string(), BIOS32_AT + 0x10),
        ("F_PCI32_ENTRY".to_string(), pci32_entry),
    ];
    for (name, s) in [
        ("F_VBE_OEM", "Nestor VBE"),
        ("F_VBE_VENDOR", "Nestor"),
        ("F_VBE_PRODUCT", "Nestor VGA"),
        ("F_VBE_REVISION", "1.0"),
    ] {
        named.push((
            name.to_string(),
            BIOS32_AT + u16::try_from(bytes.len()).unwrap_or(u16::MAX),
        ));
        bytes.extend_from_slice(s.as_bytes());
        bytes.push(0);
    }
    Ok(Block {
        bytes,
        stubs: vec![(svc::PCI32, pci32_entry)],
        named,
    })
}

/// The 32-bit code: position independent (callers use a flat or an F0000-based segment).
/// Returns the bytes and the F000 offsets of the BIOS32 and PCI BIOS entries.
fn code32_block(at: u16) -> RomResult<(Vec<u8>, u16, u16)> {
    let mut a = CodeAssembler::new(32)?;
    let mut bios32 = a.create_label();
    let mut not_found = a.create_label();
    let mut pci = a.create_label();
    // BIOS32 service directory: EAX = service id; only "$PCI" is known.
    a.set_label(&mut bios32)?;
    a.cmp(eax, 0x4943_5024u32)?;
    a.jne(not_found)?;
    a.mov(ebx, 0xF_0000u32)?;
    a.mov(ecx, 0x1_0000u32)?;
    a.mov(edx, 0u32)?;
    // EDX = offset of the PCI entry from EBX, patched below once it is known.
    let patch_index = a.instructions().len() - 1;
    a.mov(al, 0u32)?;
    a.retf()?;
    a.set_label(&mut not_found)?;
    a.mov(al, 0x80u32)?;
    a.retf()?;
    // PCI BIOS: the host side returns in the live registers and flags.
    a.set_label(&mut pci)?;
    a.push(edx)?;
    a.push(eax)?;
    emit_trap(&mut a, svc::PCI32)?;
    a.pop(eax)?;
    a.pop(edx)?;
    a.retf()?;
    let base = 0xF_0000 + u64::from(at);
    let r = a.assemble_options(base, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let pci_ip = r.label_ip(&pci)?;
    let bios32_ip = r.label_ip(&bios32)?;
    // Reassemble with the real offset (a `mov edx, imm32` is 5 bytes either way).
    let mut instrs = a.instructions().to_vec();
    instrs[patch_index] = Instruction::with2(Code::Mov_r32_imm32, iced_x86::Register::EDX, {
        (pci_ip - 0xF_0000) as u32
    })?;
    let block = iced_x86::InstructionBlock::new(&instrs, base);
    let enc = iced_x86::BlockEncoder::encode(32, block, BlockEncoderOptions::NONE)?;
    if enc.code_buffer.len() != r.inner.code_buffer.len() {
        return Err(RomError::Layout(
            "32-bit block changed size when patched".into(),
        ));
    }
    Ok((
        enc.code_buffer,
        (bios32_ip - 0xF_0000) as u16,
        (pci_ip - 0xF_0000) as u16,
    ))
}

/// `jmp near target`, assembled at F000:`at`.
pub fn near_jump(at: u16, target: u16) -> RomResult<Vec<u8>> {
    let mut a = CodeAssembler::new(16)?;
    a.add_instruction(Instruction::with_branch(
        Code::Jmp_rel16,
        u64::from(target),
    )?)?;
    let bytes = a.assemble(u64::from(at))?;
    if bytes.len() != 3 {
        return Err(RomError::Layout(format!("jump at {at:#x} is not 3 bytes")));
    }
    Ok(bytes)
}

/// `jmp far F000:E05B` at the reset vector.
pub fn reset_vector() -> RomResult<Vec<u8>> {
    let mut a = CodeAssembler::new(16)?;
    a.add_instruction(Instruction::with_far_branch(
        Code::Jmp_ptr1616,
        0xF000,
        u32::from(layout::F_POST),
    )?)?;
    Ok(a.assemble(u64::from(layout::F_RESET))?)
}
