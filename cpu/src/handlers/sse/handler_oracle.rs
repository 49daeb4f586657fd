//! Host comparison through the whole interpreter path in 64-bit mode: each two-operand
//! packed-integer and floating-point form is encoded with REX registers (XMM9, XMM14) and
//! register or memory sources, run by the CPU, and checked against the host's result for
//! the same operands (and MXCSR).

#![cfg(target_arch = "x86_64")]

use super::fp_oracle::{self, Rng};
use super::{int, oracle};
use crate::handlers::longmode::tests::long_cpu;
use crate::state::cr4;
use iced_x86::{
    Code, Encoder, EncodingKind, Instruction, MemoryOperand, OpCodeOperandKind, Register,
};

const DATA: u64 = 0x3_0000;

/// Run `code` with XMM9 = a, XMM14 = b (or [DATA] = b for a memory form) under `mxcsr`.
fn run(code: Code, mem: bool, a: u128, b: u128, mxcsr: u32) -> (u128, u32) {
    let (mut cpu, mut bus) = long_cpu();
    let i = if mem {
        Instruction::with2(code, Register::XMM9, MemoryOperand::with_displ(DATA, 8))
    } else {
        Instruction::with2(code, Register::XMM9, Register::XMM14)
    };
    let mut enc = Encoder::new(64);
    let i = i.expect("operands");
    let len = enc
        .encode(&i, crate::handlers::longmode::tests::CODE)
        .expect("encodes");
    bus.load(crate::handlers::longmode::tests::CODE, &enc.take_buffer());
    bus.load(DATA, &b.to_le_bytes());
    cpu.s.cr4 |= cr4::OSFXSR;
    cpu.s.xmm[9] = a;
    cpu.s.xmm[14] = b;
    cpu.s.x87.mxcsr = mxcsr;
    cpu.run(&mut bus, 1);
    assert_eq!(
        cpu.s.rip,
        crate::handlers::longmode::tests::CODE + len as u64,
        "{code:?} faulted"
    );
    (cpu.s.xmm[9], cpu.s.x87.mxcsr)
}

fn two_operand_forms() -> Vec<Code> {
    Code::values()
        .filter(|c| {
            let oc = c.op_code();
            oc.encoding() == EncodingKind::Legacy
                && oc.op_count() == 2
                && oc.op_kind(0) == OpCodeOperandKind::xmm_reg
                && oc.op_kind(1) == OpCodeOperandKind::xmm_or_mem
        })
        .collect()
}

#[test]
fn interpreter_matches_the_host_on_rex_and_memory_forms() {
    let mut rng = Rng(0x600d_5eed_0000_0001);
    let ints: Vec<Code> = int::binop_codes().collect();
    let mut checked = 0;
    for code in two_operand_forms() {
        let m = code.mnemonic();
        let int_form = ints.contains(&code);
        let dbl = format!("{m:?}").ends_with('d');
        for n in 0..40 {
            let (a, b, mx) = (rng.operand(dbl), rng.operand(dbl), rng.mxcsr());
            let b = if n % 3 == 0 { b & 0x3f } else { b };
            let want = if int_form {
                oracle::native(m, a, b, 0).map(|r| (r, mx))
            } else {
                fp_oracle::native(m, a, b, mx)
            };
            let Some(want) = want else { break };
            // Scalar memory forms read only the low lane: the host saw all of b in xmm1.
            let mem = n % 2 == 1;
            assert_eq!(
                run(code, mem, a, b, mx),
                want,
                "{code:?} mem={mem} a={a:#x} b={b:#x} mx={mx:#x}"
            );
            checked += 1;
        }
    }
    assert!(checked > 3000, "only {checked} checks");
    println!("{checked} interpreter results matched the host");
}
