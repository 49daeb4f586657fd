//! SSE handler tests through the CPU: gating, alignment, moves, masks, MXCSR, FXSAVE, CPUID.

use super::lanes::binop;
use crate::cpuid::{edx, NESTOR64};
use crate::fault::Fault;
use crate::handlers::alu::tests::run_real_with;
use crate::state::{cr0, cr4};
use crate::table::entry;
use crate::testbus::FlatBus;
use crate::Cpu;
use iced_x86::{Code, Mnemonic as M};

/// Run `code` (16-bit real mode at 0:1000h) for `n` instructions with SSE enabled and
/// `setup` applied.
fn run(code: &[u8], n: u64, setup: impl FnOnce(&mut Cpu, &mut FlatBus)) -> (Cpu, FlatBus) {
    run_real_with(code, n, |cpu, bus| {
        cpu.model = NESTOR64;
        cpu.s.cr4 |= cr4::OSFXSR;
        setup(cpu, bus);
    })
}

fn exec(cpu: &mut Cpu, bus: &mut FlatBus, code: &[u8]) -> crate::Exec {
    crate::handlers::alu::tests::exec16(cpu, bus, code)
}

const V: u128 = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100;

#[test]
fn gating_ud_and_nm() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    // pxor xmm0, xmm1
    let pxor = [0x66, 0x0f, 0xef, 0xc1];
    assert!(exec(&mut cpu, &mut bus, &pxor).is_ok());
    cpu.s.cr0 |= cr0::TS;
    assert_eq!(exec(&mut cpu, &mut bus, &pxor), Err(Fault::NM));
    cpu.s.cr4 &= !cr4::OSFXSR;
    assert_eq!(exec(&mut cpu, &mut bus, &pxor), Err(Fault::UD));
    cpu.s.cr0 &= !cr0::TS;
    cpu.s.cr4 |= cr4::OSFXSR;
    cpu.s.cr0 |= cr0::EM;
    assert_eq!(exec(&mut cpu, &mut bus, &pxor), Err(Fault::UD));
}

#[test]
fn aligned_moves_fault_on_misalignment() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    bus.load(0x2000, &V.to_le_bytes());
    bus.load(0x2011, &V.to_le_bytes());
    // movdqa xmm1, [0x2000]; movdqu xmm2, [0x2011]; movaps xmm3, [0x2011]
    assert!(exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0x6f, 0x0e, 0x00, 0x20]).is_ok());
    assert_eq!(cpu.s.xmm[1], V);
    assert!(exec(&mut cpu, &mut bus, &[0xf3, 0x0f, 0x6f, 0x16, 0x11, 0x20]).is_ok());
    assert_eq!(cpu.s.xmm[2], V);
    assert_eq!(
        exec(&mut cpu, &mut bus, &[0x0f, 0x28, 0x1e, 0x11, 0x20]),
        Err(Fault::gp(0))
    );
    // movntdq [0x3000], xmm1 then movups [0x3021], xmm1
    assert!(exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0xe7, 0x0e, 0x00, 0x30]).is_ok());
    assert!(exec(&mut cpu, &mut bus, &[0x0f, 0x11, 0x0e, 0x21, 0x30]).is_ok());
    assert_eq!(bus.ram()[0x3000..0x3010], V.to_le_bytes());
    assert_eq!(bus.ram()[0x3021..0x3031], V.to_le_bytes());
}

#[test]
fn scalar_and_half_moves() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    bus.load(0x2000, &V.to_le_bytes());
    let full = u128::MAX;
    cpu.s.xmm[1] = full;
    // movss xmm1, [0x2000]: zero-extends from memory
    exec(&mut cpu, &mut bus, &[0xf3, 0x0f, 0x10, 0x0e, 0x00, 0x20]).unwrap();
    assert_eq!(cpu.s.xmm[1], 0x0302_0100);
    // movsd xmm2, xmm1 merges the low quadword
    cpu.s.xmm[2] = full;
    exec(&mut cpu, &mut bus, &[0xf2, 0x0f, 0x10, 0xd1]).unwrap();
    assert_eq!(cpu.s.xmm[2], full << 64 | 0x0302_0100);
    // movq xmm3, xmm2 (F3 0F 7E) zeroes the upper half
    exec(&mut cpu, &mut bus, &[0xf3, 0x0f, 0x7e, 0xda]).unwrap();
    assert_eq!(cpu.s.xmm[3], 0x0302_0100);
    // movhps xmm3, [0x2000]; movhlps xmm4, xmm3; movlhps xmm4, xmm4
    exec(&mut cpu, &mut bus, &[0x0f, 0x16, 0x1e, 0x00, 0x20]).unwrap();
    assert_eq!(cpu.s.xmm[3], (V << 64) | 0x0302_0100);
    exec(&mut cpu, &mut bus, &[0x0f, 0x12, 0xe3]).unwrap();
    assert_eq!(cpu.s.xmm[4] as u64, V as u64);
    exec(&mut cpu, &mut bus, &[0x0f, 0x16, 0xe4]).unwrap();
    assert_eq!(cpu.s.xmm[4], V << 64 | V & u128::from(u64::MAX));
    // movd eax, xmm4 (66 0F 7E E0); movd xmm5, eax (66 0F 6E E8)
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0x7e, 0xe0]).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x0302_0100);
    cpu.s.xmm[5] = full;
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0x6e, 0xe8]).unwrap();
    assert_eq!(cpu.s.xmm[5], 0x0302_0100);
    // movlps [0x3000], xmm3 stores only eight bytes
    exec(&mut cpu, &mut bus, &[0x0f, 0x13, 0x1e, 0x00, 0x30]).unwrap();
    assert_eq!(bus.ram()[0x3000..0x3008], 0x0302_0100u64.to_le_bytes());
    assert_eq!(bus.ram()[0x3008], 0);
}

#[test]
fn masks_words_and_mxcsr() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    cpu.s.xmm[1] = 0x8000_0000_0000_0000_0000_0080_0000_8080;
    // pmovmskb eax, xmm1
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0xd7, 0xc1]).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x8013);
    // movmskps eax, xmm1; movmskpd eax, xmm1
    exec(&mut cpu, &mut bus, &[0x0f, 0x50, 0xc1]).unwrap();
    assert_eq!(cpu.s.gpr[0], 0b1000);
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0x50, 0xc1]).unwrap();
    assert_eq!(cpu.s.gpr[0], 0b10);
    // pinsrw xmm1, eax, 7 then pextrw ebx, xmm1, 7
    cpu.s.gpr[0] = 0xdead_beef;
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0xc4, 0xc8, 0x07]).unwrap();
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0xc5, 0xd9, 0x07]).unwrap();
    assert_eq!(cpu.s.gpr[3], 0xbeef);
    assert_eq!(cpu.s.xmm[1] >> 112, 0xbeef);
    // ldmxcsr [0x2000] with a reserved bit, then a valid value; stmxcsr [0x2004]
    bus.load(0x2000, &0x1_0000u32.to_le_bytes());
    let ld = [0x0f, 0xae, 0x16, 0x00, 0x20];
    assert_eq!(exec(&mut cpu, &mut bus, &ld), Err(Fault::gp(0)));
    bus.load(0x2000, &0x7f80u32.to_le_bytes());
    exec(&mut cpu, &mut bus, &ld).unwrap();
    exec(&mut cpu, &mut bus, &[0x0f, 0xae, 0x1e, 0x04, 0x20]).unwrap();
    assert_eq!(bus.ram()[0x2004..0x2008], 0x7f80u32.to_le_bytes());
}

#[test]
fn fxsave_round_trips_xmm_registers() {
    // fxsave [0x2000]; fxrstor [0x2000]
    let (cpu, bus) = run(&[0x0f, 0xae, 0x06, 0x00, 0x20], 1, |cpu, _| {
        for (k, r) in cpu.s.xmm.iter_mut().enumerate() {
            *r = V.rotate_left(8 * k as u32);
        }
        cpu.s.x87.mxcsr = 0x1f80 | 0x6000;
    });
    assert_eq!(bus.ram()[0x2018..0x201c], 0x7f80u32.to_le_bytes());
    for k in 0..8 {
        let at = 0x2000 + 160 + 16 * k;
        assert_eq!(bus.ram()[at..at + 16], cpu.s.xmm[k].to_le_bytes());
    }
    // XMM8..15 are not saved outside 64-bit mode.
    assert!(bus.ram()[0x2000 + 288..0x2000 + 416]
        .iter()
        .all(|&b| b == 0));
    let image = bus.ram()[0x2000..0x2200].to_vec();
    let (cpu2, _) = run(&[0x0f, 0xae, 0x0e, 0x00, 0x20], 1, |_, bus| {
        bus.load(0x2000, &image)
    });
    assert_eq!(cpu2.s.xmm[..8], cpu.s.xmm[..8]);
    assert_eq!(cpu2.s.x87.mxcsr, 0x7f80);
}

#[test]
fn lane_vectors() {
    let words = |w: [u16; 8]| w.iter().rev().fold(0u128, |a, &x| a << 16 | u128::from(x));
    let a = words([0x7fff, 0x8000, 1, 0xffff, 100, 0, 0x1234, 0x8001]);
    let b = words([1, 0xffff, 2, 1, 0xff9c, 0, 0x4321, 0x8001]);
    assert_eq!(
        binop(M::Paddsw, a, b, 0),
        Some(words([0x7fff, 0x8000, 3, 0, 0, 0, 0x5555, 0x8000]))
    );
    assert_eq!(
        binop(M::Psraw, a, 100, 0),
        Some(words([0, 0xffff, 0, 0xffff, 0, 0, 0, 0xffff]))
    );
    assert_eq!(binop(M::Psrlw, a, 16, 0), Some(0));
    assert_eq!(
        binop(M::Pshufd, 0, V, 0x1b),
        Some(0x0302_0100_0706_0504_0b0a_0908_0f0e_0d0c)
    );
    assert_eq!(binop(M::Psrldq, V, 0, 15), Some(0x0f));
    assert_eq!(binop(M::Pslldq, V, 0, 16), Some(0));
    // pmaddwd: (-32768 * -32768) * 2 wraps to 8000_0000h
    let m = words([0x8000, 0x8000, 0, 0, 0, 0, 0, 0]);
    assert_eq!(binop(M::Pmaddwd, m, m, 0), Some(0x8000_0000));
    assert_eq!(binop(M::Psadbw, 0xff, 0x01, 0), Some(0xfe));
}

#[test]
fn advertised_sse_has_handlers_and_cr4_bits() {
    let all = edx::MMX | edx::SSE | edx::SSE2 | edx::FXSR;
    assert_eq!(NESTOR64.features_edx & all, all);
    for c in [
        Code::Emms,
        Code::Paddb_mm_mmm64,
        Code::Pshufw_mm_mmm64_imm8,
        Code::Cvtpi2ps_xmm_mmm64,
        Code::Addps_xmm_xmmm128,
        Code::Sqrtsd_xmm_xmmm64,
        Code::Cmpsd_xmm_xmmm64_imm8,
        Code::Ucomiss_xmm_xmmm32,
        Code::Cvttsd2si_r64_xmmm64,
        Code::Cvtpd2ps_xmm_xmmm128,
        Code::Rsqrtps_xmm_xmmm128,
        Code::Maskmovdqu_rDI_xmm_xmm,
        Code::Movaps_xmm_xmmm128,
        Code::Movdqa_xmm_xmmm128,
        Code::Paddq_xmm_xmmm128,
        Code::Pshufd_xmm_xmmm128_imm8,
        Code::Psllw_xmm_imm8,
        Code::Pslldq_xmm_imm8,
        Code::Ldmxcsr_m32,
        Code::Movnti_m64_r64,
        Code::Packuswb_xmm_xmmm128,
    ] {
        assert!(entry(c).meta.is_some(), "{c:?} unhandled");
    }
    let cpu = Cpu::with_model(NESTOR64);
    assert_ne!(cpu.cr4_supported() & cr4::OSFXSR, 0);
    assert_ne!(cpu.cr4_supported() & cr4::OSXMMEXCPT, 0);
    assert_eq!(Cpu::new().cr4_supported() & cr4::OSFXSR, 0);
}

#[test]
fn unmasked_exceptions_fault_without_writing() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    cpu.s.xmm[0] = 0x3f80_0000; // 1.0
    cpu.s.xmm[1] = 0;
    // divss xmm0, xmm1 with ZE masked: +inf, ZE set
    let divss = [0xf3, 0x0f, 0x5e, 0xc1];
    exec(&mut cpu, &mut bus, &divss).unwrap();
    assert_eq!(cpu.s.xmm[0], 0x7f80_0000);
    assert_eq!(cpu.s.x87.mxcsr, 0x1f84);
    // Unmask ZE: #XM with CR4.OSXMMEXCPT, #UD without; the destination is kept.
    cpu.s.xmm[0] = 0x3f80_0000;
    cpu.s.x87.mxcsr = 0x1f80 & !(1 << 9);
    assert_eq!(exec(&mut cpu, &mut bus, &divss), Err(Fault::UD));
    cpu.s.cr4 |= cr4::OSXMMEXCPT;
    assert_eq!(exec(&mut cpu, &mut bus, &divss), Err(Fault::XM));
    assert_eq!(cpu.s.xmm[0], 0x3f80_0000);
    assert_eq!(cpu.s.x87.mxcsr & 0x3f, 0x04);
    // comiss xmm0, xmm1 (1.0 vs 0.0): greater, so ZF = PF = CF = 0
    cpu.set_flags(0x8d5);
    exec(&mut cpu, &mut bus, &[0x0f, 0x2f, 0xc1]).unwrap();
    assert_eq!(cpu.flags() & 0x8d5, 0);
    // cvttss2si eax, xmm0 with xmm0 = 1e10 (overflow): integer indefinite, IE
    cpu.s.xmm[0] = 0x5015_02f9;
    cpu.s.x87.mxcsr = 0x1f80;
    exec(&mut cpu, &mut bus, &[0xf3, 0x0f, 0x2c, 0xc0]).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x8000_0000);
    assert_eq!(cpu.s.x87.mxcsr, 0x1f81);
}

#[test]
fn maskmovdqu_stores_selected_bytes() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    cpu.s.xmm[1] = V;
    cpu.s.xmm[2] = 0x80 | 0xff << 120;
    cpu.s.gpr[7] = 0x2000;
    bus.load(0x2000, &[0xaa; 16]);
    // maskmovdqu xmm1, xmm2 (66 0F F7 CA)
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0xf7, 0xca]).unwrap();
    assert_eq!(bus.ram()[0x2000], 0x00);
    assert_eq!(bus.ram()[0x2001..0x200f], [0xaa; 14]);
    assert_eq!(bus.ram()[0x200f], 0x0f);
}

#[test]
fn sixty_four_bit_forms_reach_xmm8_to_15() {
    use crate::handlers::longmode::tests::run64;
    use iced_x86::code_asm::*;
    let (cpu, bus) = run64(
        6,
        |a| {
            a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
            a.movq(xmm9, rax).unwrap();
            a.movdqa(xmm15, xmm9).unwrap();
            a.paddq(xmm15, xmm9).unwrap();
            a.movq(r10, xmm15).unwrap();
            a.fxsave64(ptr(0x3000)).unwrap();
        },
        |cpu, _| cpu.s.cr4 |= cr4::OSFXSR,
    );
    assert_eq!(cpu.s.xmm[9], 0x1122_3344_5566_7788);
    assert_eq!(cpu.s.gpr[10], 0x2244_6688_aacc_ef10);
    // In 64-bit mode FXSAVE stores all sixteen registers.
    let at = 0x3000 + 160 + 16 * 15;
    assert_eq!(bus.ram()[at..at + 16], cpu.s.xmm[15].to_le_bytes());
}

#[test]
fn mmx_aliases_x87_registers() {
    let (mut cpu, mut bus) = run(&[], 0, |cpu, _| {
        cpu.s.x87.init();
        cpu.s.x87.set_top(5);
    });
    cpu.s.gpr[0] = 0x1234_5678;
    // movd mm2, eax (0F 6E D0); paddd mm2, mm2 (0F FE D2)
    exec(&mut cpu, &mut bus, &[0x0f, 0x6e, 0xd0]).unwrap();
    exec(&mut cpu, &mut bus, &[0x0f, 0xfe, 0xd2]).unwrap();
    let r2 = cpu.s.x87.st[2];
    assert_eq!((r2.mant, r2.se), (0x2468_acf0, 0xffff));
    assert_eq!((cpu.s.x87.top(), cpu.s.x87.ftw), (0, 0xff));
    // movq2dq xmm3, mm2 (F3 0F D6 DA)
    exec(&mut cpu, &mut bus, &[0xf3, 0x0f, 0xd6, 0xda]).unwrap();
    assert_eq!(cpu.s.xmm[3], 0x2468_acf0);
    // emms
    exec(&mut cpu, &mut bus, &[0x0f, 0x77]).unwrap();
    assert_eq!(cpu.s.x87.ftw, 0);
    // CR0.EM: #UD; CR0.TS: #NM (MMX ignores CR4.OSFXSR).
    cpu.s.cr4 &= !cr4::OSFXSR;
    exec(&mut cpu, &mut bus, &[0x0f, 0xfe, 0xd2]).unwrap();
    cpu.s.cr0 |= cr0::TS;
    assert_eq!(
        exec(&mut cpu, &mut bus, &[0x0f, 0xfe, 0xd2]),
        Err(Fault::NM)
    );
    cpu.s.cr0 |= cr0::EM;
    assert_eq!(
        exec(&mut cpu, &mut bus, &[0x0f, 0xfe, 0xd2]),
        Err(Fault::UD)
    );
}

#[test]
fn mmx_float_conversions() {
    let (mut cpu, mut bus) = run(&[], 0, |_, _| {});
    cpu.s.x87.st[1].mant = 0xffff_fffd_0000_0007; // (-3, 7)
    cpu.s.xmm[2] = u128::MAX;
    // cvtpi2ps xmm2, mm1 (0F 2A D1): upper half kept
    exec(&mut cpu, &mut bus, &[0x0f, 0x2a, 0xd1]).unwrap();
    assert_eq!(cpu.s.xmm[2], u128::MAX << 64 | 0xc040_0000_40e0_0000);
    // cvtps2pi mm3, xmm2 (0F 2D DA) back to (-3, 7)
    exec(&mut cpu, &mut bus, &[0x0f, 0x2d, 0xda]).unwrap();
    assert_eq!(cpu.s.x87.st[3].mant, 0xffff_fffd_0000_0007);
    // cvttpd2pi mm4, xmm5 (66 0F 2C E5) with (2.5, -1e300): (2, indefinite), IE
    cpu.s.xmm[5] = 0x4004_0000_0000_0000 | 0xfe37_e43c_8800_759c_u128 << 64;
    exec(&mut cpu, &mut bus, &[0x66, 0x0f, 0x2c, 0xe5]).unwrap();
    assert_eq!(cpu.s.x87.st[4].mant, 0x8000_0000_0000_0002);
    assert_eq!(cpu.s.x87.mxcsr & 0x3f, 0x21);
}

#[test]
fn every_mmx_sse_sse2_code_has_a_handler() {
    use iced_x86::{CpuidFeature as F, EncodingKind};
    let missing: Vec<String> = Code::values()
        .filter(|c| {
            c.op_code().encoding() == EncodingKind::Legacy
                && c.cpuid_features()
                    .iter()
                    .any(|f| matches!(f, F::MMX | F::SSE | F::SSE2))
                && entry(*c).meta.is_none()
        })
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(missing.is_empty(), "unhandled: {missing:?}");
}

#[test]
fn unmasked_pre_computation_exception_stops_all_lanes() {
    const ONES: u128 = 0x3f80_0000_3f80_0000_3f80_0000_3f80_0000;
    let (mut cpu, mut bus) = run(&[], 0, |cpu, _| cpu.s.cr4 |= cr4::OSXMMEXCPT);
    // divps xmm0, xmm1: lane 0 is 1/0 (ZE), lane 1 is 1/3 (PE), lanes 2-3 are 1/1. ZE unmasked: only ZE is
    // recorded and nothing is written.
    cpu.s.xmm[0] = ONES;
    cpu.s.xmm[1] = ONES & !u128::from(u64::MAX) | 0x4040_0000_0000_0000;
    cpu.s.x87.mxcsr = 0x1f80 & !(1 << 9);
    assert_eq!(
        exec(&mut cpu, &mut bus, &[0x0f, 0x5e, 0xc1]),
        Err(Fault::XM)
    );
    assert_eq!(cpu.s.x87.mxcsr & 0x3f, 0x04);
    assert_eq!(cpu.s.xmm[0], ONES);
    // PE unmasked instead: ZE (masked) and PE both recorded, #XM, nothing written.
    cpu.s.x87.mxcsr = 0x1f80 & !(1 << 12);
    assert_eq!(
        exec(&mut cpu, &mut bus, &[0x0f, 0x5e, 0xc1]),
        Err(Fault::XM)
    );
    assert_eq!(cpu.s.x87.mxcsr & 0x3f, 0x24);
    assert_eq!(cpu.s.xmm[0], ONES);
}
