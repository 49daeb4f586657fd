//! SSE3, SSSE3, SSE4.1, SSE4.2, AES-NI, PCLMULQDQ and SHA through the interpreter: every
//! `xmm1, xmm2[, imm8][, <XMM0>]` form run on random operands and compared with the same
//! instruction on the host CPU (skipped, with a note, when the host lacks the feature);
//! known answers from the standards (FIPS-197 AES, SHA-1/SHA-256 of "abc") and from the
//! definitions (PCMPISTRI, PCLMULQDQ); the operand forms with GPRs and memory.

#![cfg(target_arch = "x86_64")]

use crate::handlers::isa_tests::{max_cpu, Rng};
use crate::handlers::longmode::tests::exec64;
use crate::handlers::segment::tests::exec_bytes;
use crate::state::rflags::ARITH;
use crate::Cpu;
use iced_x86::code_asm::*;
use iced_x86::Register as R;
use iced_x86::{Code, Encoder, EncodingKind, Instruction, Mnemonic, OpCodeOperandKind as K};
use Mnemonic as M;

/// Inputs and outputs of one run: XMM1 (destination), XMM2 (source), XMM0, RAX, RDX, RCX,
/// RFLAGS, MXCSR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub(super) struct St {
    pub(super) a: u128,
    pub(super) b: u128,
    pub(super) x0: u128,
    pub(super) rax: u64,
    pub(super) rdx: u64,
    pub(super) rcx: u64,
    pub(super) flags: u64,
    pub(super) mxcsr: u32,
    pub(super) scratch: u32,
}

macro_rules! host {
    ($ins:expr, $s:expr) => {{
        let mut s: St = $s;
        // SAFETY: reads and writes only `s`; the registers touched are declared clobbered
        // and MXCSR is put back to its default before leaving.
        unsafe {
            core::arch::asm!(
                "ldmxcsr [{p} + 80]",
                "movdqu xmm1, [{p}]",
                "movdqu xmm2, [{p} + 16]",
                "movdqu xmm0, [{p} + 32]",
                "mov rax, [{p} + 48]",
                "mov rdx, [{p} + 56]",
                "mov rcx, [{p} + 64]",
                $ins,
                "pushfq",
                "pop qword ptr [{p} + 72]",
                "stmxcsr [{p} + 80]",
                "mov dword ptr [{p} + 84], 0x1f80",
                "ldmxcsr [{p} + 84]",
                "movdqu [{p}], xmm1",
                "movdqu [{p} + 32], xmm0",
                "mov [{p} + 64], rcx",
                p = in(reg) &mut s as *mut St,
                out("xmm0") _,
                out("xmm1") _,
                out("xmm2") _,
                out("rax") _,
                out("rdx") _,
                out("rcx") _,
            );
        }
        s
    }};
}

/// The immediates every imm8 form is tried with.
const IMMS: [u8; 16] = [
    0x00, 0x01, 0x02, 0x03, 0x05, 0x0c, 0x10, 0x11, 0x1b, 0x3a, 0x44, 0x4e, 0x6d, 0x7e, 0xb1, 0xff,
];

macro_rules! with_imm {
    ($name:ident, $imm:expr, $s:expr) => {
        match $imm {
            0x00 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x00"), $s),
            0x01 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x01"), $s),
            0x02 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x02"), $s),
            0x03 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x03"), $s),
            0x05 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x05"), $s),
            0x0c => host!(concat!(stringify!($name), " xmm1, xmm2, 0x0c"), $s),
            0x10 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x10"), $s),
            0x11 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x11"), $s),
            0x1b => host!(concat!(stringify!($name), " xmm1, xmm2, 0x1b"), $s),
            0x3a => host!(concat!(stringify!($name), " xmm1, xmm2, 0x3a"), $s),
            0x44 => host!(concat!(stringify!($name), " xmm1, xmm2, 0x44"), $s),
            0x4e => host!(concat!(stringify!($name), " xmm1, xmm2, 0x4e"), $s),
            0x6d => host!(concat!(stringify!($name), " xmm1, xmm2, 0x6d"), $s),
            0x7e => host!(concat!(stringify!($name), " xmm1, xmm2, 0x7e"), $s),
            0xb1 => host!(concat!(stringify!($name), " xmm1, xmm2, 0xb1"), $s),
            _ => host!(concat!(stringify!($name), " xmm1, xmm2, 0xff"), $s),
        }
    };
}

macro_rules! forms {
    ($m:expr, $imm:expr, $s:expr;
     plain: [$($p:ident),* $(,)?];
     imm: [$($q:ident),* $(,)?];
     xmm0: [$($x:ident),* $(,)?]) => {
        match $m {
            $(M::$p => Some(host!(concat!(stringify!($p), " xmm1, xmm2"), $s)),)*
            $(M::$q => Some(with_imm!($q, $imm, $s)),)*
            $(M::$x => Some(host!(concat!(stringify!($x), " xmm1, xmm2, xmm0"), $s)),)*
            _ => None,
        }
    };
}

/// Run mnemonic `m` on the host.
fn native(m: Mnemonic, imm: u8, s: St) -> Option<St> {
    forms!(m, imm, s;
        plain: [
            Addsubps, Addsubpd, Haddps, Haddpd, Hsubps, Hsubpd, Movshdup, Movsldup, Movddup,
            Pshufb, Phaddw, Phaddd, Phaddsw, Phsubw, Phsubd, Phsubsw, Pmaddubsw, Pmulhrsw,
            Psignb, Psignw, Psignd, Pabsb, Pabsw, Pabsd,
            Pminsb, Pminsd, Pminuw, Pminud, Pmaxsb, Pmaxsd, Pmaxuw, Pmaxud, Pcmpeqq, Pcmpgtq,
            Pmulld, Pmuldq, Packusdw, Phminposuw, Ptest,
            Pmovsxbw, Pmovsxbd, Pmovsxbq, Pmovsxwd, Pmovsxwq, Pmovsxdq,
            Pmovzxbw, Pmovzxbd, Pmovzxbq, Pmovzxwd, Pmovzxwq, Pmovzxdq,
            Aesenc, Aesenclast, Aesdec, Aesdeclast, Aesimc,
            Sha1nexte, Sha1msg1, Sha1msg2, Sha256msg1, Sha256msg2,
        ];
        imm: [
            Palignr, Pblendw, Blendps, Blendpd, Mpsadbw, Roundps, Roundpd, Roundss, Roundsd,
            Dpps, Dppd, Insertps, Pcmpistri, Pcmpistrm, Pcmpestri, Pcmpestrm, Aeskeygenassist,
            Pclmulqdq, Sha1rnds4,
        ];
        xmm0: [Pblendvb, Blendvps, Blendvpd, Sha256rnds2]
    )
}

/// The legacy `xmm, xmm/m*` code of `m`.
fn code_of(m: Mnemonic) -> Code {
    Code::values()
        .find(|c| {
            let oc = c.op_code();
            c.mnemonic() == m
                && oc.encoding() == EncodingKind::Legacy
                && oc.op_count() >= 2
                && oc.op_kind(0) == K::xmm_reg
                && matches!(oc.op_kind(1), K::xmm_or_mem | K::xmm_reg)
        })
        .unwrap_or_else(|| panic!("no code for {m:?}"))
}

/// Run `m` in the interpreter on `s` (XMM1, XMM2 as operands).
pub(super) fn interp(
    cpu: &mut Cpu,
    bus: &mut crate::testbus::FlatBus,
    m: Mnemonic,
    imm: u8,
    s: St,
) -> St {
    let code = code_of(m);
    let oc = code.op_code();
    let ins = match (oc.op_count(), oc.op_kind(oc.op_count().saturating_sub(1))) {
        (3, K::imm8) => Instruction::with3(code, R::XMM1, R::XMM2, u32::from(imm)),
        (3, _) => Instruction::with3(code, R::XMM1, R::XMM2, R::XMM0),
        _ => Instruction::with2(code, R::XMM1, R::XMM2),
    }
    .unwrap();
    let mut enc = Encoder::new(64);
    enc.encode(&ins, cpu.s.rip).unwrap();
    let bytes = enc.take_buffer();
    (cpu.s.xmm[1], cpu.s.xmm[2], cpu.s.xmm[0]) = (s.a, s.b, s.x0);
    (cpu.s.gpr[0], cpu.s.gpr[2], cpu.s.gpr[1]) = (s.rax, s.rdx, s.rcx);
    cpu.s.x87.mxcsr = s.mxcsr;
    cpu.set_flags(s.flags);
    exec_bytes(cpu, bus, &bytes).unwrap_or_else(|e| panic!("{m:?}: {e:?}"));
    St {
        a: cpu.s.xmm[1],
        b: s.b,
        x0: cpu.s.xmm[0],
        rax: s.rax,
        rdx: s.rdx,
        rcx: cpu.s.gpr[1],
        flags: cpu.flags(),
        mxcsr: cpu.s.x87.mxcsr,
        scratch: 0,
    }
}

/// Interesting float lanes: zeros, infinities, NaNs (quiet and signalling), denormals,
/// halves (rounding ties), large and small values.
const F32S: [u32; 12] = [
    0,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0001,
    0x7f80_0001,
    0x0000_0003,
    0x3fc0_0000,
    0xc020_0000,
    0x4b00_0001,
    0x7f7f_ffff,
    0x3f00_0000,
];
const F64S: [u64; 12] = [
    0,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0001,
    0x7ff0_0000_0000_0001,
    0x0000_0000_0000_0003,
    0x3ff8_0000_0000_0000,
    0xc004_0000_0000_0000,
    0x4330_0000_0000_0001,
    0x7fef_ffff_ffff_ffff,
    0x3fe0_0000_0000_0000,
];

impl Rng {
    fn v128(&mut self) -> u128 {
        u128::from(self.operand()) << 64 | u128::from(self.operand())
    }
    /// Lanes drawn from the special values (sometimes with low fraction bits flipped) or
    /// random bits.
    fn floats(&mut self, double: bool) -> u128 {
        let (w, n) = if double { (64, 2) } else { (32, 4) };
        (0..n).fold(0u128, |v, k| {
            let r = self.next();
            let special = if double {
                F64S[(r >> 8) as usize % 12]
            } else {
                u64::from(F32S[(r >> 8) as usize % 12])
            };
            let lane = match r % 6 {
                0 | 1 => self.next() & (u64::MAX >> (64 - w)),
                2 => special ^ (r >> 20 & 0x3ff),
                _ => special,
            };
            v | u128::from(lane) << (w * k)
        })
    }
    /// Text-like bytes with NULs, for the string compares.
    fn text(&mut self) -> u128 {
        let alphabet = [0u8, b'a', b'b', b'c', b'z', 0x80, 0xff, b'A'];
        let mut b = [0u8; 16];
        for x in b.iter_mut() {
            let r = self.next();
            *x = if r.is_multiple_of(9) {
                r as u8
            } else {
                alphabet[(r >> 8) as usize % 8]
            };
            // Mostly longer strings: few NULs.
            if *x == 0 && !r.is_multiple_of(3) {
                *x = b'a';
            }
        }
        u128::from_le_bytes(b)
    }
}

fn is_float(m: Mnemonic) -> bool {
    let name = format!("{m:?}");
    name.starts_with("Addsub")
        || name.starts_with("Hadd")
        || name.starts_with("Hsub")
        || name.starts_with("Round")
        || name.starts_with("Dp")
}

fn sets_flags(m: Mnemonic) -> bool {
    matches!(
        m,
        M::Ptest | M::Pcmpistri | M::Pcmpistrm | M::Pcmpestri | M::Pcmpestrm
    )
}

/// (host features, mnemonics) per extension.
fn groups() -> Vec<(&'static str, bool, Vec<Mnemonic>)> {
    let sse41: Vec<Mnemonic> = vec![
        M::Pblendw,
        M::Blendps,
        M::Blendpd,
        M::Pblendvb,
        M::Blendvps,
        M::Blendvpd,
        M::Pminsb,
        M::Pminsd,
        M::Pminuw,
        M::Pminud,
        M::Pmaxsb,
        M::Pmaxsd,
        M::Pmaxuw,
        M::Pmaxud,
        M::Pcmpeqq,
        M::Pmulld,
        M::Pmuldq,
        M::Packusdw,
        M::Mpsadbw,
        M::Phminposuw,
        M::Ptest,
        M::Pmovsxbw,
        M::Pmovsxbd,
        M::Pmovsxbq,
        M::Pmovsxwd,
        M::Pmovsxwq,
        M::Pmovsxdq,
        M::Pmovzxbw,
        M::Pmovzxbd,
        M::Pmovzxbq,
        M::Pmovzxwd,
        M::Pmovzxwq,
        M::Pmovzxdq,
        M::Roundps,
        M::Roundpd,
        M::Roundss,
        M::Roundsd,
        M::Dpps,
        M::Dppd,
        M::Insertps,
    ];
    vec![
        (
            "sse3",
            is_x86_feature_detected!("sse3"),
            vec![
                M::Addsubps,
                M::Addsubpd,
                M::Haddps,
                M::Haddpd,
                M::Hsubps,
                M::Hsubpd,
                M::Movshdup,
                M::Movsldup,
                M::Movddup,
            ],
        ),
        (
            "ssse3",
            is_x86_feature_detected!("ssse3"),
            vec![
                M::Pshufb,
                M::Phaddw,
                M::Phaddd,
                M::Phaddsw,
                M::Phsubw,
                M::Phsubd,
                M::Phsubsw,
                M::Pmaddubsw,
                M::Pmulhrsw,
                M::Psignb,
                M::Psignw,
                M::Psignd,
                M::Pabsb,
                M::Pabsw,
                M::Pabsd,
                M::Palignr,
            ],
        ),
        ("sse4.1", is_x86_feature_detected!("sse4.1"), sse41),
        (
            "sse4.2",
            is_x86_feature_detected!("sse4.2"),
            vec![
                M::Pcmpgtq,
                M::Pcmpistri,
                M::Pcmpistrm,
                M::Pcmpestri,
                M::Pcmpestrm,
            ],
        ),
        (
            "aes",
            is_x86_feature_detected!("aes"),
            vec![
                M::Aesenc,
                M::Aesenclast,
                M::Aesdec,
                M::Aesdeclast,
                M::Aesimc,
                M::Aeskeygenassist,
            ],
        ),
        (
            "pclmulqdq",
            is_x86_feature_detected!("pclmulqdq"),
            vec![M::Pclmulqdq],
        ),
        (
            "sha",
            is_x86_feature_detected!("sha"),
            vec![
                M::Sha1rnds4,
                M::Sha1nexte,
                M::Sha1msg1,
                M::Sha1msg2,
                M::Sha256rnds2,
                M::Sha256msg1,
                M::Sha256msg2,
            ],
        ),
    ]
}

const MXCSRS: [u32; 6] = [0x1f80, 0x3f80, 0x5f80, 0x7f80, 0x1fc0, 0x9f80];

fn random_state(rng: &mut Rng, m: Mnemonic, n: usize) -> St {
    let string = format!("{m:?}").starts_with("Pcmp") && m != M::Pcmpgtq;
    let float = is_float(m);
    let double = format!("{m:?}").ends_with('d') && float;
    let pick = |rng: &mut Rng| {
        if string {
            rng.text()
        } else if float {
            rng.floats(double)
        } else {
            rng.v128()
        }
    };
    let (a, b) = (pick(rng), pick(rng));
    // Equal operands now and then (equal-each and ranges then say more).
    let b = if n.is_multiple_of(7) { a } else { b };
    St {
        a,
        b,
        x0: rng.v128(),
        rax: (rng.next() % 40).wrapping_sub(20),
        rdx: (rng.next() % 40).wrapping_sub(20),
        rcx: rng.next(),
        flags: 2,
        mxcsr: if float {
            MXCSRS[n % MXCSRS.len()]
        } else {
            0x1f80
        },
        scratch: 0,
    }
}

#[test]
fn sse3_to_sse42_and_crypto_match_the_host() {
    let (mut cpu, mut bus) = max_cpu();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut checked = 0;
    for (feature, present, mnemonics) in groups() {
        if !present {
            println!("skipped {feature}: the host CPU lacks it");
            continue;
        }
        for m in mnemonics {
            for n in 0..320 {
                let imm = IMMS[n % IMMS.len()];
                let s = random_state(&mut rng, m, n);
                let want = native(m, imm, s).unwrap_or_else(|| panic!("{m:?} has no host form"));
                let mut got = interp(&mut cpu, &mut bus, m, imm, s);
                let mut want = want;
                want.scratch = 0;
                if !sets_flags(m) {
                    (got.flags, want.flags) = (0, 0);
                }
                got.flags &= ARITH;
                want.flags &= ARITH;
                assert_eq!(got, want, "{m:?} imm={imm:#x} input {s:x?}");
                checked += 1;
            }
        }
    }
    println!("{checked} SSE3..SSE4.2/AES/PCLMUL/SHA results matched the host");
}

/// Run `m xmm1, xmm2[, imm]` with XMM0 = `x0` in the interpreter; the new XMM1.
pub(super) fn op(m: Mnemonic, a: u128, b: u128, imm: u8, x0: u128) -> u128 {
    let (mut cpu, mut bus) = max_cpu();
    let s = St {
        a,
        b,
        x0,
        mxcsr: 0x1f80,
        flags: 2,
        ..St::default()
    };
    interp(&mut cpu, &mut bus, m, imm, s).a
}

#[test]
fn gpr_and_memory_operand_forms() {
    let (mut cpu, mut bus) = max_cpu();
    let v: u128 = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100;
    cpu.s.xmm[1] = v;
    exec64(&mut cpu, &mut bus, |a| a.pextrb(eax, xmm1, 0x1d).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x0d);
    exec64(&mut cpu, &mut bus, |a| a.pextrq(rax, xmm1, 1).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x0f0e_0d0c_0b0a_0908);
    cpu.s.gpr[6] = 0x3000;
    exec64(&mut cpu, &mut bus, |a| {
        a.pextrw(word_ptr(rsi), xmm1, 3).unwrap()
    })
    .unwrap();
    exec64(&mut cpu, &mut bus, |a| {
        a.extractps(dword_ptr(rsi + 4), xmm1, 2).unwrap()
    })
    .unwrap();
    assert_eq!(&bus.ram()[0x3000..0x3008], &[6, 7, 0, 0, 8, 9, 10, 11]);
    cpu.s.gpr[0] = 0xffff_ffff_aabb_ccdd;
    exec64(&mut cpu, &mut bus, |a| a.pinsrd(xmm1, eax, 3).unwrap()).unwrap();
    exec64(&mut cpu, &mut bus, |a| {
        a.pinsrb(xmm1, byte_ptr(rsi + 4), 0).unwrap()
    })
    .unwrap();
    assert_eq!(cpu.s.xmm[1], 0xaabb_ccdd_0b0a_0908_0706_0504_0302_0108);
    // PMOVZXBW and ROUNDSD from memory (m64), no alignment needed.
    bus.load(0x3011, &[1, 2, 3, 4, 5, 6, 7, 0x80]);
    exec64(&mut cpu, &mut bus, |a| {
        a.pmovzxbw(xmm2, qword_ptr(rsi + 0x11)).unwrap()
    })
    .unwrap();
    assert_eq!(cpu.s.xmm[2], 0x0080_0007_0006_0005_0004_0003_0002_0001);
    bus.load(0x3020, &2.5f64.to_bits().to_le_bytes());
    cpu.s.xmm[3] = u128::MAX << 64;
    exec64(&mut cpu, &mut bus, |a| {
        a.roundsd(xmm3, qword_ptr(rsi + 0x20), 0).unwrap()
    })
    .unwrap();
    assert_eq!(cpu.s.xmm[3], u128::MAX << 64 | u128::from(2.0f64.to_bits()));
    // MOVNTDQA needs 16-byte alignment; LDDQU does not.
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a
            .movntdqa(xmm4, xmmword_ptr(rsi + 8))
            .unwrap()),
        Err(crate::Fault::gp(0))
    );
    exec64(&mut cpu, &mut bus, |a| {
        a.lddqu(xmm4, xmmword_ptr(rsi + 0x11)).unwrap()
    })
    .unwrap();
    assert_eq!(cpu.s.xmm[4] as u64, 0x8007_0605_0403_0201);
}

#[test]
fn ssse3_mmx_forms_use_the_low_64_bits() {
    let (mut cpu, mut bus) = max_cpu();
    cpu.s.x87.st[0].mant = 0x0706_0504_0302_0100;
    cpu.s.x87.st[1].mant = 0x8001_0203_0405_0607;
    exec64(&mut cpu, &mut bus, |a| a.pshufb(mm0, mm1).unwrap()).unwrap();
    assert_eq!(cpu.s.x87.st[0].mant, 0x0001_0203_0405_0607);
    exec64(&mut cpu, &mut bus, |a| a.palignr(mm0, mm1, 3).unwrap()).unwrap();
    assert_eq!(cpu.s.x87.st[0].mant, 0x0506_0780_0102_0304);
    assert_eq!(cpu.s.x87.ftw, 0xff, "MMX state entered");
}

/// `ins mm0, mm1` on the host with mm0 = `a`, mm1 = `b`; EMMS after.
macro_rules! host_mm {
    ($ins:expr, $a:expr, $b:expr) => {{
        let mut a: u64 = $a;
        let b: u64 = $b;
        // SAFETY: reads and writes only the two locals; the x87/MMX state is clobbered and
        // released with EMMS.
        unsafe {
            core::arch::asm!(
                "movq mm0, [{pa}]",
                "movq mm1, [{pb}]",
                $ins,
                "movq [{pa}], mm0",
                "emms",
                pa = in(reg) &mut a as *mut u64,
                pb = in(reg) &b as *const u64,
                clobber_abi("C"),
            );
        }
        a
    }};
}

macro_rules! mm_forms {
    ($m:expr, $a:expr, $b:expr; $($name:ident),*) => {
        match $m {
            $(M::$name => host_mm!(concat!(stringify!($name), " mm0, mm1"), $a, $b),)*
            _ => match $m {
                M::Palignr if $a & 1 == 0 => host_mm!("palignr mm0, mm1, 3", $a, $b),
                _ => host_mm!("palignr mm0, mm1, 13", $a, $b),
            },
        }
    };
}

#[test]
fn ssse3_mmx_forms_match_the_host() {
    if !is_x86_feature_detected!("ssse3") {
        println!("skipped: the host CPU lacks SSSE3");
        return;
    }
    let (mut cpu, mut bus) = max_cpu();
    let mut rng = Rng(0x7777_1234_4321_9999);
    let mut checked = 0;
    for &m in &[
        M::Pshufb,
        M::Phaddw,
        M::Phaddd,
        M::Phaddsw,
        M::Phsubw,
        M::Phsubd,
        M::Phsubsw,
        M::Pmaddubsw,
        M::Pmulhrsw,
        M::Psignb,
        M::Psignw,
        M::Psignd,
        M::Pabsb,
        M::Pabsw,
        M::Pabsd,
        M::Palignr,
    ] {
        let code = Code::values()
            .find(|c| c.mnemonic() == m && c.op_code().op_kind(0) == K::mm_reg)
            .unwrap_or_else(|| panic!("no MMX form of {m:?}"));
        for _ in 0..300 {
            let (a, b) = (rng.operand(), rng.operand());
            let imm: u32 = if a & 1 == 0 { 3 } else { 13 };
            let want = mm_forms!(m, a, b; Pshufb, Phaddw, Phaddd, Phaddsw, Phsubw, Phsubd,
                Phsubsw, Pmaddubsw, Pmulhrsw, Psignb, Psignw, Psignd, Pabsb, Pabsw, Pabsd);
            let ins = if m == M::Palignr {
                Instruction::with3(code, R::MM0, R::MM1, imm)
            } else {
                Instruction::with2(code, R::MM0, R::MM1)
            }
            .unwrap();
            let mut enc = Encoder::new(64);
            enc.encode(&ins, cpu.s.rip).unwrap();
            cpu.s.x87.st[0].mant = a;
            cpu.s.x87.st[1].mant = b;
            exec_bytes(&mut cpu, &mut bus, &enc.take_buffer()).unwrap();
            assert_eq!(cpu.s.x87.st[0].mant, want, "{m:?} a={a:#x} b={b:#x}");
            checked += 1;
        }
    }
    println!("{checked} SSSE3 MMX results matched the host");
}

/// Values observed on the host (see the commit): DPPS and HADDPS whose products or sums
/// underflow with UM clear raise #XM, record UE (and DE for denormal inputs) but not PE,
/// and leave the destination alone.
#[test]
fn unmasked_underflow_reports_no_precision_flag() {
    let (mut cpu, mut bus) = max_cpu();
    let a = 0x0000_0000_8000_0000_8000_0000_0000_00dfu128;
    let b = 0xbe9c_27f1_c609_28a0_7ff0_0000_0000_00dfu128;
    (cpu.s.xmm[1], cpu.s.xmm[2]) = (a, b);
    cpu.s.x87.mxcsr = 0x3700;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.dpps(xmm1, xmm2, 0xff).unwrap()),
        Err(crate::Fault::XM)
    );
    assert_eq!((cpu.s.x87.mxcsr, cpu.s.xmm[1]), (0x3712, a));
    // Masked, the same product gives UE|PE|DE and a result.
    cpu.s.x87.mxcsr = 0x1f80;
    exec64(&mut cpu, &mut bus, |a| a.dpps(xmm1, xmm2, 0xff).unwrap()).unwrap();
    assert_eq!(cpu.s.x87.mxcsr, 0x1fb2);
    // Overflow with OM clear: OE without PE.
    cpu.s.xmm[3] = 0x7f7f_ffff_7f7f_ffff;
    cpu.s.xmm[4] = 0x7f7f_ffff;
    cpu.s.x87.mxcsr = 0x1b80;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.haddps(xmm3, xmm4).unwrap()),
        Err(crate::Fault::XM)
    );
    assert_eq!(cpu.s.x87.mxcsr, 0x1b88);
}
