//! Two-operand packed-integer, bitwise, unpack, pack, shift and shuffle instructions on
//! XMM registers (`xmm, xmm/m128[, imm8]` and the `xmm, imm8` shift forms). The arithmetic
//! is in `lanes`.

use super::{enter, lanes, src128, xmm_index};
use crate::fault::{Exec, Fault};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, EncodingKind, Instruction, OpCodeOperandKind, OpKind};

fn binop(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    enter(cpu)?;
    let d = xmm_index(i.op0_register());
    let b = match i.op_kind(1) {
        // Shift by immediate: the count is the source.
        OpKind::Immediate8 => u128::from(i.immediate8()),
        _ => src128(cpu, bus, i, 1, true)?,
    };
    let imm = if i.op_count() > 2 || i.op_kind(1) == OpKind::Immediate8 {
        i.immediate8()
    } else {
        0
    };
    let r = lanes::binop(i.mnemonic(), cpu.s.xmm[d], b, imm).ok_or(Fault::UD)?;
    cpu.s.xmm[d] = r;
    Ok(())
}

/// Legacy-encoded forms with an XMM destination whose mnemonic `lanes` computes.
pub(super) fn binop_codes() -> impl Iterator<Item = Code> {
    Code::values().filter(|c| {
        let oc = c.op_code();
        oc.encoding() == EncodingKind::Legacy
            && oc.op_count() >= 2
            && matches!(
                oc.op_kind(0),
                OpCodeOperandKind::xmm_reg | OpCodeOperandKind::xmm_rm
            )
            && lanes::BINOPS.contains(&c.mnemonic())
    })
}

pub(crate) fn register(t: &mut TableBuilder) {
    let codes: Vec<Code> = binop_codes().collect();
    t.add(&codes, binop, Meta::plain(Isa::PentiumPro));
}
