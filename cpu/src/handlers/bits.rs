//! Bit instructions: BT/BTS/BTR/BTC (register and memory, register or immediate offset) and
//! BSF/BSR.
//!
//! With a register offset and a memory operand the offset is signed and addresses other
//! operand-sized units: the unit at `ea + (offset >> log2(bits)) * bytes`. Undefined flags:
//! BT* change only CF; BSF/BSR clear CF, OF, SF and AF and set PF from the destination
//! (the destination is left unchanged and ZF set when the source is 0).

use crate::fault::Exec;
use crate::flags::{parity, size_mask};
use crate::handlers::data::{mem_addr_size, sign_extend};
use crate::operand::op_size;
use crate::state::rflags::{ARITH, CF, ZF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

fn bt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let bits = u64::from(size) * 8;
    let raw = cpu.read_op(bus, i, 1, size)?;
    let writes = i.mnemonic() != Mnemonic::Bt;
    let (value, bit, at) = if i.op0_kind() == OpKind::Memory {
        let mut ea = cpu.effective_address(i);
        if i.op1_kind() == OpKind::Register {
            // Signed unit index: arithmetic shift of the sign-extended offset.
            let units = (sign_extend(raw, size) as i64) >> bits.trailing_zeros();
            let delta = (units as u64).wrapping_mul(u64::from(size));
            ea = ea.wrapping_add(delta) & size_mask(mem_addr_size(i));
        }
        let seg = cpu.mem_seg(i);
        if writes {
            cpu.probe_write(bus, seg, ea, size)?;
        }
        (
            cpu.read_mem(bus, seg, ea, size)?,
            raw & (bits - 1),
            Some((seg, ea)),
        )
    } else {
        (cpu.read_op(bus, i, 0, size)?, raw & (bits - 1), None)
    };
    let mask = 1u64 << bit;
    let new = match i.mnemonic() {
        Mnemonic::Bts => value | mask,
        Mnemonic::Btr => value & !mask,
        Mnemonic::Btc => value ^ mask,
        _ => value,
    };
    if writes {
        match at {
            Some((seg, ea)) => cpu.write_mem(bus, seg, ea, size, new)?,
            None => cpu.write_op(bus, i, 0, size, new)?,
        }
    }
    let f = cpu.flags();
    cpu.set_flags((f & !CF) | if value & mask != 0 { CF } else { 0 });
    Ok(())
}

pub(crate) fn bsf_bsr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let src = cpu.read_op(bus, i, 1, size)?;
    let f = cpu.flags();
    if src == 0 {
        let d = cpu.read_op(bus, i, 0, size)?;
        cpu.set_flags((f & !ARITH) | ZF | parity(d));
        return Ok(());
    }
    // TZCNT/LZCNT come here only on models without BMI1/LZCNT, where F3 0F BC/BD is
    // REP BSF/BSR and the REP prefix is ignored (Linux's __ffs relies on it).
    let idx = if matches!(i.mnemonic(), Mnemonic::Bsf | Mnemonic::Tzcnt) {
        src.trailing_zeros()
    } else {
        63 - src.leading_zeros()
    };
    let idx = u64::from(idx);
    cpu.write_op(bus, i, 0, size, idx)?;
    cpu.set_flags((f & !ARITH) | parity(idx));
    Ok(())
}

#[rustfmt::skip]
const BT: &[Code] = &[
    Code::Bt_rm16_r16, Code::Bt_rm32_r32, Code::Bt_rm16_imm8, Code::Bt_rm32_imm8,
    Code::Bts_rm16_r16, Code::Bts_rm32_r32, Code::Bts_rm16_imm8, Code::Bts_rm32_imm8,
    Code::Btr_rm16_r16, Code::Btr_rm32_r32, Code::Btr_rm16_imm8, Code::Btr_rm32_imm8,
    Code::Btc_rm16_r16, Code::Btc_rm32_r32, Code::Btc_rm16_imm8, Code::Btc_rm32_imm8,
];

#[rustfmt::skip]
const BT64: &[Code] = &[
    Code::Bt_rm64_r64, Code::Bt_rm64_imm8, Code::Bts_rm64_r64, Code::Bts_rm64_imm8,
    Code::Btr_rm64_r64, Code::Btr_rm64_imm8, Code::Btc_rm64_r64, Code::Btc_rm64_imm8,
];

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(BT, bt, Meta::plain(Isa::I386));
    t.add(BT64, bt, Meta::plain(Isa::X64));
    t.add(
        &[Code::Bsf_r64_rm64, Code::Bsr_r64_rm64],
        bsf_bsr,
        Meta::plain(Isa::X64),
    );
    t.add(
        &[
            Code::Bsf_r16_rm16,
            Code::Bsf_r32_rm32,
            Code::Bsr_r16_rm16,
            Code::Bsr_r32_rm32,
        ],
        bsf_bsr,
        Meta::plain(Isa::I386),
    );
    // F3 0F BC/BD (TZCNT/LZCNT) are registered by `bmi`, which falls back to `bsf_bsr` on
    // models without BMI1/LZCNT.
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::run_real_with;
    use crate::state::rflags;

    #[test]
    fn bt_memory_negative_offset() {
        // mov bx,0x2000 ; mov ax,-1 ; bts [bx],ax -> sets bit 15 of the word at 0x1ffe
        let (cpu, bus) = run_real_with(
            &[0xbb, 0x00, 0x20, 0xb8, 0xff, 0xff, 0x0f, 0xab, 0x07],
            3,
            |_, _| {},
        );
        assert_eq!(&bus.ram()[0x1ffe..0x2002], &[0x00, 0x80, 0x00, 0x00]);
        assert_eq!(cpu.flags() & rflags::CF, 0);
    }

    #[test]
    fn bt_memory_large_offset_and_imm() {
        // mov bx,0x2000 ; mov eax,35 ; bt dword [bx],eax -> bit 3 of the dword at 0x2004
        let code = [
            0xbb, 0x00, 0x20, 0x66, 0xb8, 0x23, 0x00, 0x00, 0x00, 0x66, 0x0f, 0xa3, 0x07,
        ];
        let (cpu, _) = run_real_with(&code, 3, |_, bus| bus.load(0x2004, &[0x08]));
        assert_ne!(cpu.flags() & rflags::CF, 0);
        // bt word [bx],19 with an immediate: offset taken modulo 16 (bit 3 of 0x2000)
        let (cpu, _) = run_real_with(&[0xbb, 0x00, 0x20, 0x0f, 0xba, 0x27, 0x13], 2, |_, bus| {
            bus.load(0x2000, &[0x08])
        });
        assert_ne!(cpu.flags() & rflags::CF, 0);
    }

    #[test]
    fn bsf_zero_keeps_destination() {
        // mov ax,0x1234 ; xor bx,bx ; bsf ax,bx
        let (cpu, _) = run_real_with(
            &[0xb8, 0x34, 0x12, 0x31, 0xdb, 0x0f, 0xbc, 0xc3],
            3,
            |_, _| {},
        );
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x1234);
        assert_ne!(cpu.flags() & rflags::ZF, 0);
        // mov bx,0x0110 ; bsr ax,bx -> 8
        let (cpu, _) = run_real_with(&[0xbb, 0x10, 0x01, 0x0f, 0xbd, 0xc3], 2, |_, _| {});
        assert_eq!(cpu.s.gpr[0] & 0xffff, 8);
    }

    #[test]
    fn rep_bsf_without_bmi1_is_bsf() {
        // F3 0F BC C1 = tzcnt eax, ecx (rep bsf) with ECX = 0x50: index 4, not a count.
        // F3 0F BD D1 = lzcnt edx, ecx (rep bsr): index 6.
        let mut bus = crate::testbus::FlatBus::new(1 << 20);
        bus.load(
            0x1000,
            &[0x66, 0xf3, 0x0f, 0xbc, 0xc1, 0x66, 0xf3, 0x0f, 0xbd, 0xd1],
        );
        let mut cpu = crate::Cpu::new();
        cpu.s.seg[crate::state::SegReg::Cs as usize] = crate::state::Segment::real_mode(0);
        cpu.s.rip = 0x1000;
        cpu.s.gpr[1] = 0x50;
        cpu.run(&mut bus, 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff_ffff, 4);
        assert_eq!(cpu.s.gpr[2] & 0xffff_ffff, 6);
    }
}
