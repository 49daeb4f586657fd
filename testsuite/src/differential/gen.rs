//! Random instruction sequences: for each chosen `Code` the operands are filled in from its
//! operand kinds (random registers, immediates, and memory at small displacements from the
//! reserved base register, which points at the data page), encoded with iced's encoder.
//! Instructions whose addresses come from other registers (string ops, XLAT, MASKMOVQ,
//! BT with a register bit offset) get a short setup that points them at the data page.
//! Flags left undefined are tracked: an instruction that would read one is preceded by a
//! PUSH imm / POPF fence, so an undefined flag never leaks into a compared result.

use super::catalog::Catalog;
use super::layout;
use super::Rng;
use iced_x86::{
    Code, Encoder, Instruction, InstructionInfoFactory, MemoryOperand, Mnemonic,
    OpCodeOperandKind as K, OpKind, Register as R, RflagsBits,
};

/// One instruction of a sequence.
#[derive(Clone, Copy, Debug)]
pub struct GenInsn {
    pub ip: u64,
    pub len: usize,
    pub insn: Instruction,
    /// Flags (iced `RflagsBits`, x87 C0-C3 included) undefined before it runs.
    pub taint: u32,
}

/// A sequence placed at `layout::SEQ`, ending in a jump to the trampoline's exit at `end`.
#[derive(Clone)]
pub struct Sequence {
    pub code: Vec<u8>,
    pub insns: Vec<GenInsn>,
    pub end: u64,
    pub final_taint: u32,
}

impl Sequence {
    /// Undefined flags at `rip`: before the instruction there, or at the end.
    #[must_use]
    pub fn taint_at(&self, rip: u64) -> u32 {
        self.insns
            .iter()
            .find(|g| g.ip == rip)
            .map_or(self.final_taint, |g| g.taint)
    }
}

pub struct Generator<'a> {
    cat: &'a Catalog,
    pub rng: Rng,
    bits: u32,
    base: R,
    info: InstructionInfoFactory,
}

const X87_CC: u32 = RflagsBits::C0 | RflagsBits::C1 | RflagsBits::C2 | RflagsBits::C3;
const GPR64: [R; 14] = [
    R::RAX,
    R::RCX,
    R::RDX,
    R::RBX,
    R::RBP,
    R::RSI,
    R::RDI,
    R::R8,
    R::R9,
    R::R10,
    R::R11,
    R::R12,
    R::R13,
    R::R14,
];
const GPR32_COMPAT: [R; 6] = [R::EAX, R::ECX, R::EDX, R::EBX, R::ESI, R::EDI];

impl<'a> Generator<'a> {
    #[must_use]
    pub fn new(cat: &'a Catalog, seed: u64) -> Self {
        let bits = cat.bitness;
        Self {
            cat,
            rng: Rng::new(seed),
            bits,
            base: if bits == 64 { R::R15 } else { R::EBP },
            info: InstructionInfoFactory::new(),
        }
    }

    /// The register the generator reserves as the data-page pointer.
    #[must_use]
    pub fn base_register(&self) -> R {
        self.base
    }

    /// About `n` chosen instructions (plus their setups and fences), then `jmp exit`.
    pub fn sequence(&mut self, n: usize, exit: u64) -> Sequence {
        let mut seq = Sequence {
            code: Vec::new(),
            insns: Vec::new(),
            end: layout::SEQ,
            final_taint: 0,
        };
        let mut taint = 0;
        'outer: for _ in 0..n {
            for _attempt in 0..8 {
                let code = self.cat.codes[self.rng.below(self.cat.codes.len() as u64) as usize];
                if let Some(group) = self.build(code) {
                    for insn in group {
                        self.emit(&mut seq, insn, &mut taint);
                    }
                    // Compared within its documented accuracy: nothing may consume it.
                    if super::approx::kind(code).is_some() {
                        break 'outer;
                    }
                    break;
                }
            }
            if seq.code.len() > layout::SEQ_MAX - 512 {
                break;
            }
        }
        seq.end = layout::SEQ + seq.code.len() as u64;
        seq.final_taint = taint;
        seq.code.extend(self.exit_jump(exit, seq.end));
        seq
    }

    /// The jump back to the trampoline: near in 64-bit code, far (to 64-bit code) in 32-bit.
    fn exit_jump(&self, exit: u64, at: u64) -> Vec<u8> {
        let jmp = if self.bits == 64 {
            Instruction::with_branch(Code::Jmp_rel32_64, exit)
        } else {
            Instruction::with_far_branch(Code::Jmp_ptr1632, super::native::USER_CS64, exit as u32)
        };
        jmp.ok()
            .and_then(|j| self.encode(&j, at))
            .unwrap_or_default()
    }

    /// The first `k` instructions of `seq`, then `jmp exit`.
    #[must_use]
    pub fn prefix(&self, seq: &Sequence, k: usize, exit: u64) -> Sequence {
        let k = k.min(seq.insns.len());
        let end = seq.insns.get(k).map_or(seq.end, |g| g.ip);
        let final_taint = seq.insns.get(k).map_or(seq.final_taint, |g| g.taint);
        let mut code = seq.code[..(end - layout::SEQ) as usize].to_vec();
        code.extend(self.exit_jump(exit, end));
        Sequence {
            code,
            insns: seq.insns[..k].to_vec(),
            end,
            final_taint,
        }
    }

    fn encode(&self, insn: &Instruction, ip: u64) -> Option<Vec<u8>> {
        let mut e = Encoder::new(self.bits);
        e.encode(insn, ip).ok()?;
        Some(e.take_buffer())
    }

    /// Append `insn`, preceded by a fence when it reads a flag that is undefined now.
    fn emit(&mut self, seq: &mut Sequence, insn: Instruction, taint: &mut u32) {
        let reads = insn.rflags_read();
        if reads & *taint & !X87_CC != 0 {
            for f in self.flags_fence() {
                self.push(seq, f, taint);
            }
        }
        if reads & *taint & X87_CC != 0 {
            self.push(seq, Instruction::with(Code::Fxam), taint);
        }
        self.push(seq, insn, taint);
    }

    fn push(&mut self, seq: &mut Sequence, insn: Instruction, taint: &mut u32) {
        let ip = layout::SEQ + seq.code.len() as u64;
        let Some(bytes) = self.encode(&insn, ip) else {
            return;
        };
        let mut insn = insn;
        insn.set_ip(ip);
        insn.set_len(bytes.len());
        seq.insns.push(GenInsn {
            ip,
            len: bytes.len(),
            insn,
            taint: *taint,
        });
        seq.code.extend_from_slice(&bytes);
        *taint = next_taint(&insn, *taint);
    }

    /// PUSH imm32 / POPF: every arithmetic flag (and DF) defined again.
    fn flags_fence(&mut self) -> Vec<Instruction> {
        let v = self.rng.next_u64() as u32 & 0x8d5 & !(1 << 10) | self.maybe(1 << 10, 4) as u32;
        self.push_popf(Code::Popfq, v)
    }

    fn push_popf(&mut self, popf: Code, value: u32) -> Vec<Instruction> {
        let (push, pop) = match popf {
            Code::Popfw => (Code::Push_imm16, Code::Popfw),
            Code::Popfd => (Code::Pushd_imm32, Code::Popfd),
            _ if self.bits == 32 => (Code::Pushd_imm32, Code::Popfd),
            _ => (Code::Pushq_imm32, Code::Popfq),
        };
        let mut p = Instruction::with(push);
        if push == Code::Push_imm16 {
            p.set_op0_kind(OpKind::Immediate16);
            p.set_immediate16(value as u16);
        } else {
            p.set_op0_kind(if push == Code::Pushq_imm32 {
                OpKind::Immediate32to64
            } else {
                OpKind::Immediate32
            });
            p.set_immediate32(value);
        }
        vec![p, Instruction::with(pop)]
    }

    fn maybe(&mut self, v: u64, one_in: u64) -> u64 {
        if self.rng.below(one_in) == 0 {
            v
        } else {
            0
        }
    }

    /// `code` with random operands, preceded by whatever setup it needs; `None` when the
    /// encoder rejects the combination.
    fn build(&mut self, code: Code) -> Option<Vec<Instruction>> {
        let mut insn = Instruction::with(code);
        // Instruction info (implicit stack and string operands) depends on the code size.
        insn.set_code_size(if self.bits == 64 {
            iced_x86::CodeSize::Code64
        } else {
            iced_x86::CodeSize::Code32
        });
        let op = code.op_code();
        let kinds = op.op_kinds();
        for (i, &k) in kinds.iter().enumerate() {
            let second_imm8 = i > 0 && k == K::imm8 && matches!(kinds[i - 1], K::imm8 | K::imm16);
            self.operand(&mut insn, i as u32, k, second_imm8)?;
        }
        self.string_prefix(&mut insn);
        if matches!(
            insn.mnemonic(),
            Mnemonic::Sha1msg1
                | Mnemonic::Sha1msg2
                | Mnemonic::Sha256msg1
                | Mnemonic::Sha256msg2
                | Mnemonic::Sha1nexte
                | Mnemonic::Sha1rnds4
                | Mnemonic::Sha256rnds2
        ) {
            // Intel documents #GP for a misaligned m128; this AMD host does not check.
            insn.set_memory_displacement64(insn.memory_displacement64() & !15);
        }
        if code == Code::Movsxd_r16_rm16 && insn.op1_kind() == OpKind::Memory {
            // AMD reads a dword here (an #AC on a 2-aligned word), Intel a word: 4-aligned,
            // both read the same bytes without a fault.
            insn.set_memory_displacement64(insn.memory_displacement64() & !3);
        }
        let bytes = self.encode(&insn, layout::SEQ)?;
        // The bytes must decode back to the same form (iced names some hint space anew).
        let back = iced_x86::Decoder::with_ip(self.bits, &bytes, layout::SEQ, 0).decode();
        if back.code() != insn.code() {
            return None;
        }
        let mut group = self.setup(&insn);
        group.push(insn);
        Some(group)
    }

    fn operand(&mut self, insn: &mut Instruction, i: u32, k: K, second_imm8: bool) -> Option<()> {
        let reg = |insn: &mut Instruction, r: R| {
            insn.set_op_kind(i, OpKind::Register);
            insn.set_op_register(i, r);
        };
        match k {
            K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::mm_or_mem
            | K::xmm_or_mem
                if self.rng.below(2) == 0 =>
            {
                self.memory(insn, i);
            }
            K::mem => self.memory(insn, i),
            K::mem_offs => {
                insn.set_op_kind(i, OpKind::Memory);
                insn.set_memory_base(R::None);
                insn.set_memory_index(R::None);
                let d = layout::DATA + self.displacement(8);
                insn.set_memory_displacement64(d);
                insn.set_memory_displ_size(if self.bits == 64 { 8 } else { 4 });
            }
            K::al => reg(insn, R::AL),
            K::cl => reg(insn, R::CL),
            K::ax => reg(insn, R::AX),
            K::eax => reg(insn, R::EAX),
            K::rax => reg(insn, R::RAX),
            K::st0 => reg(insn, R::ST0),
            K::es => reg(insn, R::ES),
            K::cs => reg(insn, R::CS),
            K::ss => reg(insn, R::SS),
            K::ds => reg(insn, R::DS),
            K::fs => reg(insn, R::FS),
            K::gs => reg(insn, R::GS),
            K::imm8_const_1 => {
                insn.set_op_kind(i, OpKind::Immediate8);
                insn.set_immediate8(1);
            }
            K::imm8 if second_imm8 => {
                insn.set_op_kind(i, OpKind::Immediate8_2nd);
                insn.set_immediate8_2nd(self.rng.next_u64() as u8);
            }
            K::imm8
                if matches!(insn.mnemonic(), Mnemonic::Shld | Mnemonic::Shrd)
                    && insn.op1_register().size() == 2 =>
            {
                // A 16-bit double shift by more than 16 is undefined.
                insn.set_op_kind(i, OpKind::Immediate8);
                insn.set_immediate8(self.rng.below(17) as u8 | (self.rng.below(8) as u8) << 5);
            }
            K::imm8 | K::imm8sex16 | K::imm8sex32 | K::imm8sex64 => {
                insn.set_op_kind(
                    i,
                    match k {
                        K::imm8sex16 => OpKind::Immediate8to16,
                        K::imm8sex32 => OpKind::Immediate8to32,
                        K::imm8sex64 => OpKind::Immediate8to64,
                        _ => OpKind::Immediate8,
                    },
                );
                insn.set_immediate8(self.value() as u8);
            }
            K::imm16 => {
                insn.set_op_kind(i, OpKind::Immediate16);
                insn.set_immediate16(self.value() as u16);
            }
            K::imm32 | K::imm32sex64 => {
                insn.set_op_kind(
                    i,
                    if k == K::imm32 {
                        OpKind::Immediate32
                    } else {
                        OpKind::Immediate32to64
                    },
                );
                insn.set_immediate32(self.value() as u32);
            }
            K::imm64 => {
                insn.set_op_kind(i, OpKind::Immediate64);
                insn.set_immediate64(self.value());
            }
            K::seg_rSI => {
                insn.set_op_kind(i, self.pick(OpKind::MemorySegRSI, OpKind::MemorySegESI))
            }
            K::es_rDI => insn.set_op_kind(i, self.pick(OpKind::MemoryESRDI, OpKind::MemoryESEDI)),
            K::seg_rDI => {
                insn.set_op_kind(i, self.pick(OpKind::MemorySegRDI, OpKind::MemorySegEDI))
            }
            K::seg_rBX_al => {
                insn.set_op_kind(i, OpKind::Memory);
                insn.set_memory_base(if self.bits == 64 { R::RBX } else { R::EBX });
                insn.set_memory_index(R::AL);
                insn.set_memory_index_scale(1);
            }
            _ => {
                let r = self.register_for(k)?;
                reg(insn, r);
            }
        }
        Some(())
    }

    fn pick(&self, k64: OpKind, k32: OpKind) -> OpKind {
        if self.bits == 64 {
            k64
        } else {
            k32
        }
    }

    /// A random register of the class `k` names (never RSP or the reserved base).
    fn register_for(&mut self, k: K) -> Option<R> {
        let n = self.rng.next_u64();
        let gpr64 = |n: u64| GPR64[(n % GPR64.len() as u64) as usize];
        let compat = |n: u64| GPR32_COMPAT[(n % GPR32_COMPAT.len() as u64) as usize];
        Some(match k {
            K::r8_or_mem | K::r8_reg | K::r8_opcode => {
                if n & 3 == 0 || self.bits == 32 {
                    [R::AH, R::CH, R::DH, R::BH, R::AL, R::CL, R::DL, R::BL][(n >> 2) as usize % 8]
                } else {
                    byte_of(gpr64(n >> 2))
                }
            }
            K::r16_or_mem | K::r16_reg | K::r16_reg_mem | K::r16_rm | K::r16_opcode => {
                word_of(if self.bits == 64 { gpr64(n) } else { compat(n) })
            }
            K::r32_or_mem
            | K::r32_reg
            | K::r32_reg_mem
            | K::r32_rm
            | K::r32_opcode
            | K::r32_vvvv => {
                if self.bits == 64 {
                    dword_of(gpr64(n))
                } else {
                    compat(n)
                }
            }
            K::r64_or_mem
            | K::r64_reg
            | K::r64_reg_mem
            | K::r64_rm
            | K::r64_opcode
            | K::r64_vvvv => gpr64(n),
            K::seg_reg => [R::ES, R::CS, R::SS, R::DS, R::FS, R::GS][(n % 6) as usize],
            K::mm_or_mem | K::mm_reg | K::mm_rm => reg_add(R::MM0, n % 8),
            K::xmm_or_mem | K::xmm_reg | K::xmm_rm | K::xmm_vvvv | K::xmm_is4 => {
                reg_add(R::XMM0, n % if self.bits == 64 { 16 } else { 8 })
            }
            K::sti_opcode => reg_add(R::ST0, n % 8),
            _ => return None,
        })
    }

    fn memory(&mut self, insn: &mut Instruction, i: u32) {
        let size = insn.memory_size().size() as u64;
        insn.set_op_kind(i, OpKind::Memory);
        insn.set_memory_base(self.base);
        insn.set_memory_index(R::None);
        insn.set_memory_index_scale(1);
        let d = self.displacement(size);
        insn.set_memory_displacement64(d);
        // iced wants 8 for a 32-bit displacement under 64-bit addressing (4 fails to encode).
        let wide = if self.bits == 64 { 8 } else { 4 };
        insn.set_memory_displ_size(if d < 0x80 { 1 } else { wide });
    }

    /// A displacement into the data page, usually aligned to the access size.
    fn displacement(&mut self, size: u64) -> u64 {
        let d = self.rng.below(0x1000 - 64);
        match self.rng.below(8) {
            0 => d,
            1 => d & !7,
            _ => d & !(size.clamp(1, 16).next_power_of_two() - 1),
        }
    }

    /// A random operand value, biased towards edge cases.
    pub fn value(&mut self) -> u64 {
        let r = self.rng.next_u64();
        match self.rng.below(10) {
            0 => 0,
            1 => u64::MAX,
            2 => r % 17,
            3 => (1u64 << (r % 64)).wrapping_sub(r >> 62 & 1),
            4 => r as i32 as i64 as u64,
            5 => r as u32 as u64,
            6 => (r as i8 as i64) as u64,
            7 => 0x8000_0000_0000_0000 ^ (r & 0xff),
            _ => r,
        }
    }

    fn string_prefix(&mut self, insn: &mut Instruction) {
        use Mnemonic as M;
        let m = insn.mnemonic();
        let string = matches!(
            m,
            M::Movsb
                | M::Movsw
                | M::Movsd
                | M::Movsq
                | M::Stosb
                | M::Stosw
                | M::Stosd
                | M::Stosq
                | M::Lodsb
                | M::Lodsw
                | M::Lodsd
                | M::Lodsq
        );
        let compare = matches!(
            m,
            M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq | M::Scasb | M::Scasw | M::Scasd | M::Scasq
        ) && insn.op0_kind() != OpKind::Register;
        match self.rng.below(3) {
            0 if string || compare => insn.set_has_rep_prefix(true),
            1 if compare => insn.set_has_repne_prefix(true),
            _ => {}
        }
    }

    /// Instructions that make `insn` safe and meaningful: address registers pointed at the
    /// data page, small REP counts, bounded bit offsets, usually no #DE, sane control words.
    fn setup(&mut self, insn: &Instruction) -> Vec<Instruction> {
        let mut out = Vec::new();
        let used: Vec<R> = self
            .info
            .info(insn)
            .used_memory()
            .iter()
            .map(|m| m.base())
            .collect();
        for b in used {
            let stack = b != R::None && b.full_register() == R::RSP;
            if b == R::None || b == self.base || stack || b == R::RIP || b == R::EIP {
                continue;
            }
            let full = if self.bits == 64 {
                b.full_register()
            } else {
                b.full_register32()
            };
            let off = 0x100 + (self.rng.below(0xe00) & !7);
            let m = MemoryOperand::with_base_displ(self.base, off as i64);
            let lea = if self.bits == 64 {
                Code::Lea_r64_m
            } else {
                Code::Lea_r32_m
            };
            out.extend(Instruction::with2(lea, full, m).ok());
        }
        if insn.has_rep_prefix() || insn.has_repne_prefix() {
            let n = self.rng.below(10) as u32;
            out.extend(Instruction::with2(Code::Mov_r32_imm32, R::ECX, n).ok());
        }
        let m = insn.mnemonic();
        if matches!(m, Mnemonic::Div | Mnemonic::Idiv) && self.rng.below(4) != 0 {
            let byte = insn.op0_kind() == OpKind::Register && insn.op0_register().size() == 1
                || insn.op0_kind() == OpKind::Memory && insn.memory_size().size() == 1;
            out.extend(if byte {
                Instruction::with2(Code::Xor_r8_rm8, R::AH, R::AH).ok()
            } else {
                Instruction::with2(Code::Xor_r32_rm32, R::EDX, R::EDX).ok()
            });
        }
        let bit_test = matches!(
            m,
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
        );
        if bit_test && insn.op0_kind() == OpKind::Memory && insn.op1_kind() == OpKind::Register {
            let r = insn.op1_register();
            let code = if r.size() == 2 {
                Code::And_rm16_imm16
            } else {
                Code::And_rm32_imm32
            };
            let r = if r.size() == 8 { dword_of(r) } else { r };
            out.extend(Instruction::with2(code, r, 0x7fffu32).ok());
        }
        // SHLD/SHRD of a 16-bit operand by more than 16 leave the result undefined.
        if matches!(m, Mnemonic::Shld | Mnemonic::Shrd)
            && insn.op2_kind() == OpKind::Register
            && insn.memory_size().size() != 4
            && insn.memory_size().size() != 8
            && insn.op1_register().size() == 2
        {
            out.extend(Instruction::with2(Code::And_rm8_imm8, R::CL, 0x0fu32).ok());
        }
        // PUSH Sreg writes 2 or all 8 bytes depending on the vendor: make both agree.
        if m == Mnemonic::Push
            && insn.op0_kind() == OpKind::Register
            && insn.op0_register().is_segment_register()
            && insn.stack_pointer_increment() != -2
        {
            let sp = if self.bits == 64 { R::RSP } else { R::ESP };
            let width = -insn.stack_pointer_increment();
            let slot = MemoryOperand::with_base_displ(sp, -i64::from(width));
            let code = if width == 8 {
                Code::Mov_rm64_imm32
            } else {
                Code::Mov_rm32_imm32
            };
            out.extend(Instruction::with2(code, slot, 0u32).ok());
        }
        if matches!(m, Mnemonic::Popf | Mnemonic::Popfd | Mnemonic::Popfq) {
            // Never TF; AC (alignment checks at CPL 3) now and then.
            // Never TF or NT (an IRET back to a thread with NT set faults in the kernel).
            let v =
                (self.rng.next_u64() as u32 & !0x4100 & !(1 << 18)) | self.maybe(1 << 18, 8) as u32;
            let mut p = self.push_popf(insn.code(), v);
            p.pop();
            out.extend(p);
        }
        if matches!(m, Mnemonic::Ldmxcsr) && insn.op0_kind() == OpKind::Memory {
            let v = 0x1f80 ^ (self.rng.next_u64() as u32 & 0xffbf) & self.maybe(0xffff, 2) as u32;
            out.extend(self.store_dword(insn, v));
        }
        if let Some(values) = super::operands::x87_operands(m, &mut self.rng) {
            for v in values {
                out.extend(self.load_f80(v));
            }
        }
        if matches!(m, Mnemonic::Fldcw) && insn.op0_kind() == OpKind::Memory {
            let v = 0x037f ^ (self.rng.next_u64() as u32 & 0x0f00) ^ self.maybe(0x3d, 4) as u32;
            out.extend(self.store_word(insn, v));
        }
        out
    }

    /// MOV stores of `v` to a data-page slot, then `FLD m80` of it.
    fn load_f80(&mut self, v: [u8; 10]) -> Vec<Instruction> {
        let at = 0xe00 + 16 * self.rng.below(32) as i64;
        let m = |d: i64| MemoryOperand::with_base_displ(self.base, at + d);
        let dw = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        // FFREE ST7 first, usually, so that the push does not overflow the stack.
        let free = self.rng.below(8) != 0;
        [
            Instruction::with1(Code::Ffree_sti, R::ST7)
                .ok()
                .filter(|_| free),
            Instruction::with2(Code::Mov_rm32_imm32, m(0), dw(0)).ok(),
            Instruction::with2(Code::Mov_rm32_imm32, m(4), dw(4)).ok(),
            Instruction::with2(
                Code::Mov_rm16_imm16,
                m(8),
                u32::from(v[8]) | u32::from(v[9]) << 8,
            )
            .ok(),
            Instruction::with1(Code::Fld_m80fp, m(0)).ok(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn store_dword(&self, insn: &Instruction, v: u32) -> Option<Instruction> {
        let m = MemoryOperand::with_base_displ(self.base, insn.memory_displacement64() as i64);
        Instruction::with2(Code::Mov_rm32_imm32, m, v).ok()
    }

    fn store_word(&self, insn: &Instruction, v: u32) -> Option<Instruction> {
        let m = MemoryOperand::with_base_displ(self.base, insn.memory_displacement64() as i64);
        Instruction::with2(Code::Mov_rm16_imm16, m, v).ok()
    }
}

/// Undefined flags after `insn` ran with `taint` undefined before it.
fn next_taint(insn: &Instruction, taint: u32) -> u32 {
    use Mnemonic as M;
    let undefined =
        insn.rflags_undefined() | vendor_defined(insn.mnemonic()) | rotate_overflow(insn);
    let defined = insn.rflags_written() | insn.rflags_cleared() | insn.rflags_set();
    // A shift or rotate by a count that masks to zero changes no flag at all; nor does a
    // REP-prefixed compare that runs zero times.
    let shift = matches!(
        insn.mnemonic(),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shld | M::Shrd
    ) || insn.has_rep_prefix()
        || insn.has_repne_prefix();
    if shift {
        taint | undefined
    } else {
        (taint & !(defined & !undefined)) | undefined
    }
}

/// OF after a rotate by an immediate: the SDM leaves it undefined whenever the count masked
/// to 5 (6) bits is not 1, even when RCL/RCR's modulo 9 or 17 (ROL/ROR's operand size)
/// leaves nothing to rotate, where the decoder reports no flag written (an AMD host
/// changes OF for RCL r/m16 by 17).
fn rotate_overflow(insn: &Instruction) -> u32 {
    use Mnemonic as M;
    if !matches!(insn.mnemonic(), M::Rol | M::Ror | M::Rcl | M::Rcr)
        || insn.op1_kind() != OpKind::Immediate8
    {
        return 0;
    }
    let mask = if insn.op0_register().size() == 8 || insn.memory_size().size() == 8 {
        0x3f
    } else {
        0x1f
    };
    if insn.immediate8() & mask > 1 {
        RflagsBits::OF
    } else {
        0
    }
}

/// x87 condition codes the vendors set differently: Intel documents C1 = 0 after FCOMI and
/// FCMOVcc, this AMD host leaves it alone; FNOP leaves all four undefined.
fn vendor_defined(m: Mnemonic) -> u32 {
    use Mnemonic as M;
    match m {
        M::Fnop => X87_CC,
        M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => RflagsBits::C1,
        M::Fcmovb
        | M::Fcmove
        | M::Fcmovbe
        | M::Fcmovu
        | M::Fcmovnb
        | M::Fcmovne
        | M::Fcmovnbe
        | M::Fcmovnu => RflagsBits::C1,
        _ => 0,
    }
}

fn reg_add(r: R, n: u64) -> R {
    R::values().nth(r as usize + n as usize).unwrap_or(r)
}

fn byte_of(r: R) -> R {
    match r.full_register() {
        R::RAX => R::AL,
        R::RCX => R::CL,
        R::RDX => R::DL,
        R::RBX => R::BL,
        R::RBP => R::BPL,
        R::RSI => R::SIL,
        R::RDI => R::DIL,
        f => reg_add(R::R8L, f.number().saturating_sub(8) as u64),
    }
}

fn word_of(r: R) -> R {
    reg_add(R::AX, r.number() as u64)
}

fn dword_of(r: R) -> R {
    reg_add(R::EAX, r.number() as u64)
}
