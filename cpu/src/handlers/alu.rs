//! ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST, INC, DEC, NEG, NOT, and the atomic
//! read-modify-write family CMPXCHG, CMPXCHG8B, CMPXCHG16B, XADD.

use crate::fault::{Exec, Fault};
use crate::flags::{size_mask, FlagOp};
use crate::operand::op_size;
use crate::state::rflags;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic};

impl Cpu {
    /// Record a flag-producing result for lazy evaluation.
    #[inline]
    pub fn set_lazy(&mut self, op: FlagOp, size: u8, dst: u64, src: u64, res: u64) {
        if matches!(op, FlagOp::Inc | FlagOp::Dec) {
            // INC/DEC keep CF: fold the previous operation's flags in first.
            self.s.rflags = self.flags();
        }
        let l = &mut self.s.lazy;
        l.op = op;
        l.size = size;
        l.dst = dst;
        l.src = src;
        l.res = res;
    }
}

/// Binary ALU operations on `op0 = op0 ∘ op1`.
fn binary(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let m = size_mask(size);
    let writes = !matches!(i.mnemonic(), Mnemonic::Cmp | Mnemonic::Test);
    if writes {
        cpu.probe_op(bus, i, 0, size)?;
    }
    let a = cpu.read_op(bus, i, 0, size)?;
    let b = cpu.read_op(bus, i, 1, size)? & m;
    // Only ADC and SBB need the incoming carry: resolving lazy flags is not free.
    let carry =
        matches!(i.mnemonic(), Mnemonic::Adc | Mnemonic::Sbb) && cpu.flags() & rflags::CF != 0;
    let (op, r) = match i.mnemonic() {
        Mnemonic::Add => (FlagOp::Add, a.wrapping_add(b)),
        Mnemonic::Adc => (
            FlagOp::Adc,
            a.wrapping_add(b).wrapping_add(u64::from(carry)),
        ),
        Mnemonic::Sub | Mnemonic::Cmp => (FlagOp::Sub, a.wrapping_sub(b)),
        Mnemonic::Sbb => (
            FlagOp::Sbb,
            a.wrapping_sub(b).wrapping_sub(u64::from(carry)),
        ),
        Mnemonic::And | Mnemonic::Test => (FlagOp::Logic, a & b),
        Mnemonic::Or => (FlagOp::Logic, a | b),
        _ => (FlagOp::Logic, a ^ b),
    };
    let r = r & m;
    if writes {
        cpu.write_op(bus, i, 0, size, r)?;
    }
    cpu.set_lazy(op, size, a, b, r);
    cpu.s.lazy.carry_in = carry;
    Ok(())
}

/// INC, DEC, NEG, NOT on `op0`.
fn unary(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let m = size_mask(size);
    cpu.probe_op(bus, i, 0, size)?;
    let a = cpu.read_op(bus, i, 0, size)?;
    match i.mnemonic() {
        Mnemonic::Inc => {
            let r = a.wrapping_add(1) & m;
            cpu.write_op(bus, i, 0, size, r)?;
            cpu.set_lazy(FlagOp::Inc, size, a, 1, r);
        }
        Mnemonic::Dec => {
            let r = a.wrapping_sub(1) & m;
            cpu.write_op(bus, i, 0, size, r)?;
            cpu.set_lazy(FlagOp::Dec, size, a, 1, r);
        }
        Mnemonic::Neg => {
            let r = 0u64.wrapping_sub(a) & m;
            cpu.write_op(bus, i, 0, size, r)?;
            cpu.set_lazy(FlagOp::Sub, size, 0, a, r);
        }
        _ => cpu.write_op(bus, i, 0, size, !a & m)?,
    }
    Ok(())
}

const BINARY: &[Code] = &[
    Code::Add_rm8_r8,
    Code::Add_rm16_r16,
    Code::Add_rm32_r32,
    Code::Add_r8_rm8,
    Code::Add_r16_rm16,
    Code::Add_r32_rm32,
    Code::Add_AL_imm8,
    Code::Add_AX_imm16,
    Code::Add_EAX_imm32,
    Code::Add_rm8_imm8,
    Code::Add_rm16_imm16,
    Code::Add_rm32_imm32,
    Code::Add_rm8_imm8_82,
    Code::Add_rm16_imm8,
    Code::Add_rm32_imm8,
    Code::Or_rm8_r8,
    Code::Or_rm16_r16,
    Code::Or_rm32_r32,
    Code::Or_r8_rm8,
    Code::Or_r16_rm16,
    Code::Or_r32_rm32,
    Code::Or_AL_imm8,
    Code::Or_AX_imm16,
    Code::Or_EAX_imm32,
    Code::Or_rm8_imm8,
    Code::Or_rm16_imm16,
    Code::Or_rm32_imm32,
    Code::Or_rm8_imm8_82,
    Code::Or_rm16_imm8,
    Code::Or_rm32_imm8,
    Code::Adc_rm8_r8,
    Code::Adc_rm16_r16,
    Code::Adc_rm32_r32,
    Code::Adc_r8_rm8,
    Code::Adc_r16_rm16,
    Code::Adc_r32_rm32,
    Code::Adc_AL_imm8,
    Code::Adc_AX_imm16,
    Code::Adc_EAX_imm32,
    Code::Adc_rm8_imm8,
    Code::Adc_rm16_imm16,
    Code::Adc_rm32_imm32,
    Code::Adc_rm8_imm8_82,
    Code::Adc_rm16_imm8,
    Code::Adc_rm32_imm8,
    Code::Sbb_rm8_r8,
    Code::Sbb_rm16_r16,
    Code::Sbb_rm32_r32,
    Code::Sbb_r8_rm8,
    Code::Sbb_r16_rm16,
    Code::Sbb_r32_rm32,
    Code::Sbb_AL_imm8,
    Code::Sbb_AX_imm16,
    Code::Sbb_EAX_imm32,
    Code::Sbb_rm8_imm8,
    Code::Sbb_rm16_imm16,
    Code::Sbb_rm32_imm32,
    Code::Sbb_rm8_imm8_82,
    Code::Sbb_rm16_imm8,
    Code::Sbb_rm32_imm8,
    Code::And_rm8_r8,
    Code::And_rm16_r16,
    Code::And_rm32_r32,
    Code::And_r8_rm8,
    Code::And_r16_rm16,
    Code::And_r32_rm32,
    Code::And_AL_imm8,
    Code::And_AX_imm16,
    Code::And_EAX_imm32,
    Code::And_rm8_imm8,
    Code::And_rm16_imm16,
    Code::And_rm32_imm32,
    Code::And_rm8_imm8_82,
    Code::And_rm16_imm8,
    Code::And_rm32_imm8,
    Code::Sub_rm8_r8,
    Code::Sub_rm16_r16,
    Code::Sub_rm32_r32,
    Code::Sub_r8_rm8,
    Code::Sub_r16_rm16,
    Code::Sub_r32_rm32,
    Code::Sub_AL_imm8,
    Code::Sub_AX_imm16,
    Code::Sub_EAX_imm32,
    Code::Sub_rm8_imm8,
    Code::Sub_rm16_imm16,
    Code::Sub_rm32_imm32,
    Code::Sub_rm8_imm8_82,
    Code::Sub_rm16_imm8,
    Code::Sub_rm32_imm8,
    Code::Xor_rm8_r8,
    Code::Xor_rm16_r16,
    Code::Xor_rm32_r32,
    Code::Xor_r8_rm8,
    Code::Xor_r16_rm16,
    Code::Xor_r32_rm32,
    Code::Xor_AL_imm8,
    Code::Xor_AX_imm16,
    Code::Xor_EAX_imm32,
    Code::Xor_rm8_imm8,
    Code::Xor_rm16_imm16,
    Code::Xor_rm32_imm32,
    Code::Xor_rm8_imm8_82,
    Code::Xor_rm16_imm8,
    Code::Xor_rm32_imm8,
    Code::Cmp_rm8_r8,
    Code::Cmp_rm16_r16,
    Code::Cmp_rm32_r32,
    Code::Cmp_r8_rm8,
    Code::Cmp_r16_rm16,
    Code::Cmp_r32_rm32,
    Code::Cmp_AL_imm8,
    Code::Cmp_AX_imm16,
    Code::Cmp_EAX_imm32,
    Code::Cmp_rm8_imm8,
    Code::Cmp_rm16_imm16,
    Code::Cmp_rm32_imm32,
    Code::Cmp_rm8_imm8_82,
    Code::Cmp_rm16_imm8,
    Code::Cmp_rm32_imm8,
    Code::Test_rm8_r8,
    Code::Test_rm16_r16,
    Code::Test_rm32_r32,
    Code::Test_AL_imm8,
    Code::Test_AX_imm16,
    Code::Test_EAX_imm32,
    Code::Test_rm8_imm8,
    Code::Test_rm8_imm8_F6r1,
    Code::Test_rm16_imm16,
    Code::Test_rm16_imm16_F7r1,
    Code::Test_rm32_imm32,
    Code::Test_rm32_imm32_F7r1,
];

/// The 64-bit forms of the binary operations (imm32 and imm8 sign-extended).
#[rustfmt::skip]
const BINARY64: &[Code] = &[
    Code::Add_rm64_r64, Code::Add_r64_rm64, Code::Add_RAX_imm32, Code::Add_rm64_imm32, Code::Add_rm64_imm8,
    Code::Or_rm64_r64, Code::Or_r64_rm64, Code::Or_RAX_imm32, Code::Or_rm64_imm32, Code::Or_rm64_imm8,
    Code::Adc_rm64_r64, Code::Adc_r64_rm64, Code::Adc_RAX_imm32, Code::Adc_rm64_imm32, Code::Adc_rm64_imm8,
    Code::Sbb_rm64_r64, Code::Sbb_r64_rm64, Code::Sbb_RAX_imm32, Code::Sbb_rm64_imm32, Code::Sbb_rm64_imm8,
    Code::And_rm64_r64, Code::And_r64_rm64, Code::And_RAX_imm32, Code::And_rm64_imm32, Code::And_rm64_imm8,
    Code::Sub_rm64_r64, Code::Sub_r64_rm64, Code::Sub_RAX_imm32, Code::Sub_rm64_imm32, Code::Sub_rm64_imm8,
    Code::Xor_rm64_r64, Code::Xor_r64_rm64, Code::Xor_RAX_imm32, Code::Xor_rm64_imm32, Code::Xor_rm64_imm8,
    Code::Cmp_rm64_r64, Code::Cmp_r64_rm64, Code::Cmp_RAX_imm32, Code::Cmp_rm64_imm32, Code::Cmp_rm64_imm8,
    Code::Test_rm64_r64, Code::Test_RAX_imm32, Code::Test_rm64_imm32, Code::Test_rm64_imm32_F7r1,
];

/// CMPXCHG: compare the accumulator with the destination; equal: store the source, else
/// load the accumulator. The destination is written either way (as the locked bus cycle does).
fn cmpxchg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let m = size_mask(size);
    cpu.probe_op(bus, i, 0, size)?;
    let dst = cpu.read_op(bus, i, 0, size)?;
    let src = cpu.read_op(bus, i, 1, size)?;
    let acc = cpu.gpr(0, size);
    if acc == dst {
        cpu.write_op(bus, i, 0, size, src)?;
    } else {
        // Memory gets its write cycle; a register is not touched (not even zero-extended).
        if i.op0_kind() == iced_x86::OpKind::Memory {
            cpu.write_op(bus, i, 0, size, dst)?;
        }
        cpu.set_gpr(0, size, dst);
    }
    cpu.set_lazy(FlagOp::Sub, size, acc, dst, acc.wrapping_sub(dst) & m);
    Ok(())
}

/// CMPXCHG8B m64: EDX:EAX against memory; equal: store ECX:EBX and set ZF, else load
/// EDX:EAX and clear ZF. Only ZF changes.
fn cmpxchg8b(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let seg = cpu.mem_seg(i);
    let ea = cpu.effective_address(i);
    cpu.probe_write(bus, seg, ea, 8)?;
    let old = cpu.read_mem(bus, seg, ea, 8)?;
    let expected = cpu.gpr(2, 4) << 32 | cpu.gpr(0, 4);
    let f = cpu.flags();
    if old == expected {
        let new = cpu.gpr(1, 4) << 32 | cpu.gpr(3, 4);
        cpu.write_mem(bus, seg, ea, 8, new)?;
        cpu.set_flags(f | rflags::ZF);
    } else {
        cpu.write_mem(bus, seg, ea, 8, old)?;
        cpu.set_gpr(0, 4, old);
        cpu.set_gpr(2, 4, old >> 32);
        cpu.set_flags(f & !rflags::ZF);
    }
    Ok(())
}

/// CMPXCHG16B m128: RDX:RAX against a 16-byte-aligned m128 (#GP(0) otherwise); equal: store
/// RCX:RBX and set ZF, else load RDX:RAX and clear ZF. Only ZF changes.
fn cmpxchg16b(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if cpu.model.features_ecx & crate::cpuid::ecx::CX16 == 0 {
        return Err(Fault::UD);
    }
    let seg = cpu.mem_seg(i);
    let ea = cpu.effective_address(i);
    let lin = cpu.seg_linear(seg, ea, 16, true)?;
    if lin & 15 != 0 {
        return Err(Fault::gp(0));
    }
    cpu.probe_write(bus, seg, ea, 16)?;
    let hi_at = ea.wrapping_add(8);
    let old = (
        cpu.read_mem(bus, seg, ea, 8)?,
        cpu.read_mem(bus, seg, hi_at, 8)?,
    );
    let f = cpu.flags();
    if old == (cpu.gpr(0, 8), cpu.gpr(2, 8)) {
        cpu.write_mem(bus, seg, ea, 8, cpu.gpr(3, 8))?;
        cpu.write_mem(bus, seg, hi_at, 8, cpu.gpr(1, 8))?;
        cpu.set_flags(f | rflags::ZF);
    } else {
        // The locked cycle writes the old value back.
        cpu.write_mem(bus, seg, ea, 8, old.0)?;
        cpu.write_mem(bus, seg, hi_at, 8, old.1)?;
        cpu.set_gpr(0, 8, old.0);
        cpu.set_gpr(2, 8, old.1);
        cpu.set_flags(f & !rflags::ZF);
    }
    Ok(())
}

/// XADD: the source gets the old destination, the destination the sum.
fn xadd(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    cpu.probe_op(bus, i, 0, size)?;
    let d = cpu.read_op(bus, i, 0, size)?;
    let s = cpu.read_op(bus, i, 1, size)?;
    let r = d.wrapping_add(s) & size_mask(size);
    if i.op0_kind() == iced_x86::OpKind::Memory {
        // Store before the register changes: the register may take part in the address.
        cpu.write_op(bus, i, 0, size, r)?;
        cpu.write_op(bus, i, 1, size, d)?;
    } else {
        // Register form: SRC <- DEST, then DEST <- sum (XADD AX,AX leaves the sum).
        cpu.write_op(bus, i, 1, size, d)?;
        cpu.write_op(bus, i, 0, size, r)?;
    }
    cpu.set_lazy(FlagOp::Add, size, d, s, r);
    Ok(())
}

const UNARY: &[Code] = &[
    Code::Inc_rm8,
    Code::Inc_rm16,
    Code::Inc_rm32,
    Code::Inc_r16,
    Code::Inc_r32,
    Code::Dec_rm8,
    Code::Dec_rm16,
    Code::Dec_rm32,
    Code::Dec_r16,
    Code::Dec_r32,
    Code::Neg_rm8,
    Code::Neg_rm16,
    Code::Neg_rm32,
    Code::Not_rm8,
    Code::Not_rm16,
    Code::Not_rm32,
    Code::Inc_rm64,
    Code::Dec_rm64,
    Code::Neg_rm64,
    Code::Not_rm64,
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(BINARY, binary, Meta::plain(Isa::I8086));
    t.add(BINARY64, binary, Meta::plain(Isa::X64));
    t.add(UNARY, unary, Meta::plain(Isa::I8086));
    t.add(
        &[
            Code::Cmpxchg_rm8_r8,
            Code::Cmpxchg_rm16_r16,
            Code::Cmpxchg_rm32_r32,
        ],
        cmpxchg,
        Meta::plain(Isa::I486),
    );
    t.add(&[Code::Cmpxchg8b_m64], cmpxchg8b, Meta::plain(Isa::Pentium));
    t.add(
        &[Code::Xadd_rm8_r8, Code::Xadd_rm16_r16, Code::Xadd_rm32_r32],
        xadd,
        Meta::plain(Isa::I486),
    );
    t.add(&[Code::Cmpxchg_rm64_r64], cmpxchg, Meta::plain(Isa::X64));
    t.add(&[Code::Xadd_rm64_r64], xadd, Meta::plain(Isa::X64));
    t.add(&[Code::Cmpxchg16b_m128], cmpxchg16b, Meta::plain(Isa::X64));
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::state::{rflags, SegReg, Segment};
    use crate::testbus::FlatBus;
    use crate::Cpu;

    /// Run real-mode code placed at 0000:1000 for `n` instructions.
    pub(crate) fn run_real(code: &[u8], n: u64) -> (Cpu, FlatBus) {
        run_real_with(code, n, |_, _| {})
    }

    /// Like [`run_real`], with `setup` preparing the CPU and memory first.
    pub(crate) fn run_real_with(
        code: &[u8],
        n: u64,
        setup: impl FnOnce(&mut Cpu, &mut FlatBus),
    ) -> (Cpu, FlatBus) {
        let mut bus = FlatBus::new(1 << 20);
        bus.load(0x1000, code);
        let mut cpu = Cpu::new();
        cpu.s.seg[SegReg::Cs as usize] = Segment::real_mode(0);
        cpu.s.rip = 0x1000;
        setup(&mut cpu, &mut bus);
        cpu.run(&mut bus, n);
        (cpu, bus)
    }

    /// Decode `code` as 16-bit code and run its handler once, returning what it returned
    /// (for checking faults without going through delivery).
    pub(crate) fn exec16(cpu: &mut Cpu, bus: &mut FlatBus, code: &[u8]) -> crate::Exec {
        let insn = iced_x86::Decoder::with_ip(16, code, 0, iced_x86::DecoderOptions::NONE).decode();
        cpu.next_ip = insn.next_ip();
        (crate::table::entry(insn.code()).handler)(cpu, bus, &insn)
    }

    #[test]
    fn add_sets_carry_and_zero() {
        // mov al,0xff is not needed: add al,imm8 on AL=0 then add al,0xff ; add al,1
        let (cpu, _) = run_real(&[0x04, 0xff, 0x04, 0x01], 2);
        assert_eq!(cpu.s.gpr[0] & 0xff, 0);
        let f = cpu.flags();
        assert_ne!(f & rflags::CF, 0);
        assert_ne!(f & rflags::ZF, 0);
        assert_eq!(cpu.s.rip, 0x1004);
    }

    #[test]
    fn cmpxchg8b_both_outcomes() {
        // xor edx,edx ; mov bx,0x2000 ; mov ecx,0x11223344 ; cmpxchg8b [bx] with EDX:EAX = 0
        let code = [
            0x66, 0x31, 0xd2, 0xbb, 0x00, 0x20, 0x66, 0xb9, 0x44, 0x33, 0x22, 0x11, 0x0f, 0xc7,
            0x0f,
        ];
        let (cpu, bus) = run_real(&code, 4);
        // EBX = 0x2000 (the pointer), ECX = 0x11223344
        assert_eq!(
            &bus.ram()[0x2000..0x2008],
            &[0x00, 0x20, 0, 0, 0x44, 0x33, 0x22, 0x11]
        );
        assert_ne!(cpu.flags() & rflags::ZF, 0);
        // Mismatch: memory loaded into EDX:EAX, ZF clear.
        let (cpu, _) = run_real_with(&code, 4, |_, bus| {
            bus.load(0x2000, &[1, 2, 3, 4, 5, 6, 7, 8])
        });
        assert_eq!(cpu.s.gpr[0], 0x0403_0201);
        assert_eq!(cpu.s.gpr[2], 0x0807_0605);
        assert_eq!(cpu.flags() & rflags::ZF, 0);
    }

    #[test]
    fn xadd_and_cmpxchg() {
        // mov ax,5 ; mov bx,7 ; xadd ax,bx -> ax 12, bx 5
        let (cpu, _) = run_real(&[0xb8, 0x05, 0x00, 0xbb, 0x07, 0x00, 0x0f, 0xc1, 0xd8], 3);
        assert_eq!((cpu.s.gpr[0] & 0xffff, cpu.s.gpr[3] & 0xffff), (12, 5));
        // mov al,1 ; mov cl,1 ; mov dl,9 ; cmpxchg cl,dl -> cl = 9, ZF
        let (cpu, _) = run_real(&[0xb0, 0x01, 0xb1, 0x01, 0xb2, 0x09, 0x0f, 0xb0, 0xd1], 4);
        assert_eq!(cpu.s.gpr[1] & 0xff, 9);
        assert_ne!(cpu.flags() & rflags::ZF, 0);
    }

    #[test]
    fn lock_rules_come_from_the_decoder() {
        // lock add ax,bx (register destination) and lock mov: #UD through IVT[6] = 0000:3000
        for code in [&[0xf0, 0x01, 0xd8][..], &[0xf0, 0x89, 0x07]] {
            let (cpu, _) = run_real_with(code, 1, |cpu, bus| {
                bus.load(0x18, &[0x00, 0x30, 0x00, 0x00]);
                cpu.s.gpr[4] = 0x2000;
            });
            assert_eq!(cpu.s.rip, 0x3000);
        }
        // lock add [bx],ax is fine.
        let (cpu, _) = run_real(&[0xf0, 0x01, 0x07], 1);
        assert_eq!(cpu.s.rip, 0x1003);
    }
}
