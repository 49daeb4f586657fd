//! Tests for the later general-purpose extensions (BMI1/2, LZCNT/TZCNT, POPCNT, ADX, MOVBE,
//! CRC32, RDRAND/RDSEED), XSAVE and the "max" CPUID model. Results and defined flags are
//! compared against the host CPU (inline assembly) on random operands where it has the
//! feature; known-answer values otherwise.

use crate::cpuid::{ecx, ext, leaf7, xsave, MAX, NESTOR64};
use crate::fault::Fault;
use crate::handlers::longmode::tests::{exec64, long_cpu};
use crate::state::cr4;
use crate::state::rflags::{AF, ARITH, CF, OF, PF, SF, ZF};
use crate::table::entry;
use crate::testbus::FlatBus;
use crate::Cpu;
use iced_x86::code_asm::*;
use iced_x86::Code;

/// A 64-bit CPU of the "max" model with SSE and XSAVE enabled by the OS.
pub(crate) fn max_cpu() -> (Cpu, FlatBus) {
    let (mut cpu, bus) = long_cpu();
    cpu.model = MAX;
    cpu.s.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT | cr4::OSXSAVE;
    (cpu, bus)
}

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Random 64 bits, often with few or many bits set, or small.
    pub(crate) fn operand(&mut self) -> u64 {
        let r = self.next();
        match self.next() % 6 {
            0 => r & self.next() & self.next(),
            1 => r | self.next() | self.next(),
            2 => r % 80,
            3 => r >> (r % 64),
            4 => 0,
            _ => r,
        }
    }
}

/// Registers of a GPR test: RAX (destination), RCX, RDX, RSI, RFLAGS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Gprs {
    rax: u64,
    rcx: u64,
    rdx: u64,
    rsi: u64,
    flags: u64,
}

/// Run `$ins` on the host with the registers of `$g` (flags loaded with POPFQ).
macro_rules! host_gpr {
    ($ins:expr, $g:expr) => {{
        let g: &mut Gprs = $g;
        // SAFETY: reads and writes only `g`; the registers used are declared clobbered and
        // the flags pushed/popped are restored by the asm block's own push/pop pairs.
        unsafe {
            core::arch::asm!(
                "mov rax, [{p}]",
                "mov rcx, [{p} + 8]",
                "mov rdx, [{p} + 16]",
                "mov rsi, [{p} + 24]",
                "push qword ptr [{p} + 32]",
                "popfq",
                $ins,
                "pushfq",
                "pop qword ptr [{p} + 32]",
                "mov [{p}], rax",
                "mov [{p} + 8], rcx",
                "mov [{p} + 16], rdx",
                "mov [{p} + 24], rsi",
                p = in(reg) g as *mut Gprs,
                out("rax") _,
                out("rcx") _,
                out("rdx") _,
                out("rsi") _,
            );
        }
    }};
}

type HostFn = fn(&mut Gprs);
type AsmFn = fn(&mut CodeAssembler);

/// (name, host run, interpreter assembly, defined flags).
macro_rules! case {
    ($text:literal, $asm:expr, $flags:expr) => {
        (
            $text,
            (|g: &mut Gprs| host_gpr!($text, g)) as HostFn,
            (|a: &mut CodeAssembler| {
                #[allow(clippy::redundant_closure_call)]
                ($asm)(a).unwrap();
            }) as AsmFn,
            $flags,
        )
    };
}

fn interp(g: Gprs, asm: AsmFn) -> Gprs {
    let (mut cpu, mut bus) = max_cpu();
    for (r, v) in [(0, g.rax), (1, g.rcx), (2, g.rdx), (6, g.rsi)] {
        cpu.s.gpr[r] = v;
    }
    cpu.set_flags(g.flags);
    exec64(&mut cpu, &mut bus, asm).unwrap();
    Gprs {
        rax: cpu.s.gpr[0],
        rcx: cpu.s.gpr[1],
        rdx: cpu.s.gpr[2],
        rsi: cpu.s.gpr[6],
        flags: cpu.flags(),
    }
}

#[cfg(target_arch = "x86_64")]
fn host_has(features: &[&str]) -> bool {
    let has = |f: &str| match f {
        "bmi1" => is_x86_feature_detected!("bmi1"),
        "bmi2" => is_x86_feature_detected!("bmi2"),
        "lzcnt" => is_x86_feature_detected!("lzcnt"),
        "popcnt" => is_x86_feature_detected!("popcnt"),
        "adx" => is_x86_feature_detected!("adx"),
        "sse4.2" => is_x86_feature_detected!("sse4.2"),
        _ => false,
    };
    let missing: Vec<&&str> = features.iter().filter(|f| !has(f)).collect();
    if !missing.is_empty() {
        println!("skipped: the host CPU lacks {missing:?}");
    }
    missing.is_empty()
}

const ZSCO: u64 = ZF | SF | CF | OF;

#[cfg(target_arch = "x86_64")]
#[test]
fn gpr_extensions_match_the_host() {
    if !host_has(&["bmi1", "bmi2", "lzcnt", "popcnt", "adx", "sse4.2"]) {
        return;
    }
    let cases = [
        case!(
            "andn rax, rcx, rsi",
            |a: &mut CodeAssembler| a.andn(rax, rcx, rsi),
            ZSCO
        ),
        case!(
            "andn eax, ecx, esi",
            |a: &mut CodeAssembler| a.andn(eax, ecx, esi),
            ZSCO
        ),
        case!(
            "bextr rax, rcx, rsi",
            |a: &mut CodeAssembler| a.bextr(rax, rcx, rsi),
            ZF | CF | OF
        ),
        case!(
            "bextr eax, ecx, esi",
            |a: &mut CodeAssembler| a.bextr(eax, ecx, esi),
            ZF | CF | OF
        ),
        case!(
            "blsi rax, rcx",
            |a: &mut CodeAssembler| a.blsi(rax, rcx),
            ZSCO
        ),
        case!(
            "blsi eax, ecx",
            |a: &mut CodeAssembler| a.blsi(eax, ecx),
            ZSCO
        ),
        case!(
            "blsmsk rax, rcx",
            |a: &mut CodeAssembler| a.blsmsk(rax, rcx),
            ZSCO
        ),
        case!(
            "blsmsk eax, ecx",
            |a: &mut CodeAssembler| a.blsmsk(eax, ecx),
            ZSCO
        ),
        case!(
            "blsr rax, rcx",
            |a: &mut CodeAssembler| a.blsr(rax, rcx),
            ZSCO
        ),
        case!(
            "blsr eax, ecx",
            |a: &mut CodeAssembler| a.blsr(eax, ecx),
            ZSCO
        ),
        case!(
            "bzhi rax, rcx, rsi",
            |a: &mut CodeAssembler| a.bzhi(rax, rcx, rsi),
            ZSCO
        ),
        case!(
            "bzhi eax, ecx, esi",
            |a: &mut CodeAssembler| a.bzhi(eax, ecx, esi),
            ZSCO
        ),
        case!(
            "pdep rax, rcx, rsi",
            |a: &mut CodeAssembler| a.pdep(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "pdep eax, ecx, esi",
            |a: &mut CodeAssembler| a.pdep(eax, ecx, esi),
            ARITH
        ),
        case!(
            "pext rax, rcx, rsi",
            |a: &mut CodeAssembler| a.pext(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "pext eax, ecx, esi",
            |a: &mut CodeAssembler| a.pext(eax, ecx, esi),
            ARITH
        ),
        case!(
            "rorx rax, rcx, 13",
            |a: &mut CodeAssembler| a.rorx(rax, rcx, 13),
            ARITH
        ),
        case!(
            "rorx eax, ecx, 45",
            |a: &mut CodeAssembler| a.rorx(eax, ecx, 45),
            ARITH
        ),
        case!(
            "sarx rax, rcx, rsi",
            |a: &mut CodeAssembler| a.sarx(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "sarx eax, ecx, esi",
            |a: &mut CodeAssembler| a.sarx(eax, ecx, esi),
            ARITH
        ),
        case!(
            "shlx rax, rcx, rsi",
            |a: &mut CodeAssembler| a.shlx(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "shlx eax, ecx, esi",
            |a: &mut CodeAssembler| a.shlx(eax, ecx, esi),
            ARITH
        ),
        case!(
            "shrx rax, rcx, rsi",
            |a: &mut CodeAssembler| a.shrx(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "shrx eax, ecx, esi",
            |a: &mut CodeAssembler| a.shrx(eax, ecx, esi),
            ARITH
        ),
        case!(
            "mulx rax, rcx, rsi",
            |a: &mut CodeAssembler| a.mulx(rax, rcx, rsi),
            ARITH
        ),
        case!(
            "mulx eax, ecx, esi",
            |a: &mut CodeAssembler| a.mulx(eax, ecx, esi),
            ARITH
        ),
        case!(
            "mulx rax, rax, rsi",
            |a: &mut CodeAssembler| a.mulx(rax, rax, rsi),
            ARITH
        ),
        case!(
            "lzcnt rax, rcx",
            |a: &mut CodeAssembler| a.lzcnt(rax, rcx),
            ZF | CF
        ),
        case!(
            "lzcnt eax, ecx",
            |a: &mut CodeAssembler| a.lzcnt(eax, ecx),
            ZF | CF
        ),
        case!(
            "lzcnt ax, cx",
            |a: &mut CodeAssembler| a.lzcnt(ax, cx),
            ZF | CF
        ),
        case!(
            "tzcnt rax, rcx",
            |a: &mut CodeAssembler| a.tzcnt(rax, rcx),
            ZF | CF
        ),
        case!(
            "tzcnt eax, ecx",
            |a: &mut CodeAssembler| a.tzcnt(eax, ecx),
            ZF | CF
        ),
        case!(
            "tzcnt ax, cx",
            |a: &mut CodeAssembler| a.tzcnt(ax, cx),
            ZF | CF
        ),
        case!(
            "popcnt rax, rcx",
            |a: &mut CodeAssembler| a.popcnt(rax, rcx),
            ARITH
        ),
        case!(
            "popcnt eax, ecx",
            |a: &mut CodeAssembler| a.popcnt(eax, ecx),
            ARITH
        ),
        case!(
            "popcnt ax, cx",
            |a: &mut CodeAssembler| a.popcnt(ax, cx),
            ARITH
        ),
        case!(
            "adcx rax, rcx",
            |a: &mut CodeAssembler| a.adcx(rax, rcx),
            ARITH
        ),
        case!(
            "adcx eax, ecx",
            |a: &mut CodeAssembler| a.adcx(eax, ecx),
            ARITH
        ),
        case!(
            "adox rax, rcx",
            |a: &mut CodeAssembler| a.adox(rax, rcx),
            ARITH
        ),
        case!(
            "adox eax, ecx",
            |a: &mut CodeAssembler| a.adox(eax, ecx),
            ARITH
        ),
        case!(
            "crc32 eax, cl",
            |a: &mut CodeAssembler| a.crc32(eax, cl),
            ARITH
        ),
        case!(
            "crc32 eax, cx",
            |a: &mut CodeAssembler| a.crc32(eax, cx),
            ARITH
        ),
        case!(
            "crc32 eax, ecx",
            |a: &mut CodeAssembler| a.crc32(eax, ecx),
            ARITH
        ),
        case!(
            "crc32 rax, rcx",
            |a: &mut CodeAssembler| a.crc32(rax, rcx),
            ARITH
        ),
        case!(
            "crc32 rax, cl",
            |a: &mut CodeAssembler| a.crc32(rax, cl),
            ARITH
        ),
    ];
    let mut rng = Rng(0x0bad_cafe_1234_5678);
    let mut checked = 0;
    for (text, host, asm, defined) in cases {
        for _ in 0..300 {
            let g = Gprs {
                rax: rng.operand(),
                rcx: rng.operand(),
                rdx: rng.operand(),
                rsi: rng.operand(),
                flags: (rng.next() & ARITH) | 2,
            };
            let mut want = g;
            host(&mut want);
            let got = interp(g, asm);
            let mask = defined & ARITH;
            assert_eq!(
                (got.rax, got.rcx, got.rdx, got.rsi, got.flags & mask),
                (want.rax, want.rcx, want.rdx, want.rsi, want.flags & mask),
                "{text} with {g:x?}"
            );
            checked += 1;
        }
    }
    println!("{checked} GPR-extension results matched the host");
}

#[test]
fn crc32c_check_value() {
    // CRC-32C of "123456789" is E3069283h (initial and final inversion done by software).
    let (mut cpu, mut bus) = max_cpu();
    bus.load(0x3000, b"123456789");
    cpu.s.gpr[0] = 0xffff_ffff;
    cpu.s.gpr[6] = 0x3000;
    for k in 0..9 {
        exec64(&mut cpu, &mut bus, |a| {
            a.crc32(eax, byte_ptr(rsi + k)).unwrap()
        })
        .unwrap();
    }
    assert_eq!(cpu.s.gpr[0] ^ 0xffff_ffff, 0xe306_9283);
}

#[test]
fn movbe_swaps_bytes_both_ways() {
    let (mut cpu, mut bus) = max_cpu();
    bus.load(0x3000, &0x0102_0304_0506_0708u64.to_le_bytes());
    cpu.s.gpr[6] = 0x3000;
    cpu.s.gpr[0] = u64::MAX;
    exec64(&mut cpu, &mut bus, |a| {
        a.movbe(rax, qword_ptr(rsi)).unwrap()
    })
    .unwrap();
    assert_eq!(cpu.s.gpr[0], 0x0807_0605_0403_0201);
    exec64(&mut cpu, &mut bus, |a| a.movbe(ax, word_ptr(rsi)).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 0x0807_0605_0403_0807, "16-bit form merges");
    cpu.s.gpr[1] = 0xaabb_ccdd;
    exec64(&mut cpu, &mut bus, |a| {
        a.movbe(dword_ptr(rsi + 8), ecx).unwrap()
    })
    .unwrap();
    assert_eq!(&bus.ram()[0x3008..0x300c], &[0xaa, 0xbb, 0xcc, 0xdd]);
}

#[test]
fn lzcnt_tzcnt_need_the_feature_else_run_as_bsr_bsf() {
    let run = |cpu: &mut Cpu, bus: &mut FlatBus| {
        cpu.s.gpr[1] = 0x50;
        exec64(cpu, bus, |a| a.tzcnt(eax, ecx).unwrap()).unwrap();
        exec64(cpu, bus, |a| a.lzcnt(edx, ecx).unwrap()).unwrap();
        (cpu.s.gpr[0], cpu.s.gpr[2])
    };
    let (mut cpu, mut bus) = max_cpu();
    assert_eq!(run(&mut cpu, &mut bus), (4, 25), "counts with BMI1/LZCNT");
    let (mut cpu, mut bus) = long_cpu();
    assert_eq!(run(&mut cpu, &mut bus), (4, 6), "bit indexes on nestor64");
    // Zero source: the count is the operand width and CF is set.
    let (mut cpu, mut bus) = max_cpu();
    cpu.s.gpr[1] = 0;
    exec64(&mut cpu, &mut bus, |a| a.lzcnt(rax, rcx).unwrap()).unwrap();
    assert_eq!(cpu.s.gpr[0], 64);
    assert_ne!(cpu.flags() & CF, 0);
}

#[test]
fn features_the_model_lacks_are_undefined() {
    let (mut cpu, mut bus) = long_cpu();
    let ud = |cpu: &mut Cpu, bus: &mut FlatBus, f: AsmFn| exec64(cpu, bus, f);
    for f in [
        (|a: &mut CodeAssembler| a.andn(rax, rcx, rdx).unwrap()) as AsmFn,
        |a| a.pdep(rax, rcx, rdx).unwrap(),
        |a| a.popcnt(rax, rcx).unwrap(),
        |a| a.adcx(rax, rcx).unwrap(),
        |a| a.crc32(eax, cl).unwrap(),
        |a| a.rdrand(rax).unwrap(),
        |a| a.rdseed(rax).unwrap(),
        |a| a.xgetbv().unwrap(),
    ] {
        assert_eq!(ud(&mut cpu, &mut bus, f), Err(Fault::UD));
    }
}

#[test]
fn rdrand_is_deterministic_and_sets_cf() {
    let sample = || {
        let (mut cpu, mut bus) = max_cpu();
        cpu.set_flags(ZF | SF | OF | AF | PF);
        exec64(&mut cpu, &mut bus, |a| a.rdrand(rax).unwrap()).unwrap();
        let first = cpu.s.gpr[0];
        cpu.retired += 1;
        exec64(&mut cpu, &mut bus, |a| a.rdseed(ecx).unwrap()).unwrap();
        (first, cpu.s.gpr[1], cpu.flags() & ARITH)
    };
    let (a, b, flags) = sample();
    assert_eq!(sample(), (a, b, flags), "same state, same numbers");
    assert_eq!(flags, CF);
    assert!(b <= u64::from(u32::MAX) && a != b);
}

#[test]
fn xgetbv_xsetbv_rules() {
    let (mut cpu, mut bus) = max_cpu();
    assert_eq!(cpu.s.xcr0, 1, "x87 only after reset");
    cpu.s.gpr[0] = 3;
    cpu.s.gpr[1] = 0;
    cpu.s.gpr[2] = 0;
    exec64(&mut cpu, &mut bus, |a| a.xsetbv().unwrap()).unwrap();
    cpu.s.gpr[0] = 0;
    exec64(&mut cpu, &mut bus, |a| a.xgetbv().unwrap()).unwrap();
    assert_eq!((cpu.s.gpr[0], cpu.s.gpr[2]), (3, 0));
    // x87 cleared, AVX (unsupported), XCR1 and CPL 3 are #GP(0).
    for (low, index) in [(2, 0), (7, 0), (3, 1)] {
        cpu.s.gpr[0] = low;
        cpu.s.gpr[1] = index;
        assert_eq!(
            exec64(&mut cpu, &mut bus, |a| a.xsetbv().unwrap()),
            Err(Fault::gp(0))
        );
    }
    cpu.s.gpr[1] = 1;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xgetbv().unwrap()),
        Err(Fault::gp(0))
    );
    cpu.s.cr4 &= !cr4::OSXSAVE;
    cpu.s.gpr[1] = 0;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xgetbv().unwrap()),
        Err(Fault::UD)
    );
}

#[test]
fn cr4_osxsave_needs_the_feature_and_shows_in_cpuid() {
    let (mut cpu, mut bus) = max_cpu();
    cpu.s.cr4 &= !cr4::OSXSAVE;
    cpu.s.gpr[0] = cpu.s.cr4 | cr4::OSXSAVE;
    exec64(&mut cpu, &mut bus, |a| a.mov(cr4, rax).unwrap()).unwrap();
    assert_ne!(cpu.s.cr4 & cr4::OSXSAVE, 0);
    cpu.s.gpr[0] = 1;
    exec64(&mut cpu, &mut bus, |a| a.cpuid().unwrap()).unwrap();
    assert_ne!(cpu.s.gpr[1] as u32 & ecx::OSXSAVE, 0);
    let (mut cpu, mut bus) = long_cpu();
    cpu.s.gpr[0] = cpu.s.cr4 | cr4::OSXSAVE;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.mov(cr4, rax).unwrap()),
        Err(Fault::gp(0)),
        "nestor64 has no XSAVE"
    );
}

#[test]
fn max_model_advertises_only_handled_features() {
    let m = MAX;
    let checks: &[(u32, u32, &[Code])] = &[
        (
            m.features_ecx,
            ecx::SSE3,
            &[Code::Haddps_xmm_xmmm128, Code::Lddqu_xmm_m128],
        ),
        (
            m.features_ecx,
            ecx::PCLMULQDQ,
            &[Code::Pclmulqdq_xmm_xmmm128_imm8],
        ),
        (
            m.features_ecx,
            ecx::SSSE3,
            &[Code::Pshufb_xmm_xmmm128, Code::Palignr_mm_mmm64_imm8],
        ),
        (
            m.features_ecx,
            ecx::SSE41,
            &[Code::Ptest_xmm_xmmm128, Code::Roundsd_xmm_xmmm64_imm8],
        ),
        (
            m.features_ecx,
            ecx::SSE42,
            &[Code::Pcmpistri_xmm_xmmm128_imm8, Code::Crc32_r32_rm8],
        ),
        (m.features_ecx, ecx::MOVBE, &[Code::Movbe_r64_m64]),
        (m.features_ecx, ecx::POPCNT, &[Code::Popcnt_r64_rm64]),
        (
            m.features_ecx,
            ecx::AES,
            &[
                Code::Aesenc_xmm_xmmm128,
                Code::Aeskeygenassist_xmm_xmmm128_imm8,
            ],
        ),
        (
            m.features_ecx,
            ecx::XSAVE,
            &[Code::Xsave_mem, Code::Xrstor64_mem, Code::Xsetbv],
        ),
        (m.features_ecx, ecx::RDRAND, &[Code::Rdrand_r64]),
        (
            m.leaf7[0],
            leaf7::EBX_BMI1,
            &[Code::VEX_Andn_r64_r64_rm64, Code::Tzcnt_r64_rm64],
        ),
        (
            m.leaf7[0],
            leaf7::EBX_BMI2,
            &[Code::VEX_Pdep_r64_r64_rm64, Code::VEX_Mulx_r32_r32_rm32],
        ),
        (m.leaf7[0], leaf7::EBX_ADX, &[Code::Adox_r64_rm64]),
        (m.leaf7[0], leaf7::EBX_RDSEED, &[Code::Rdseed_r32]),
        (
            m.leaf7[0],
            leaf7::EBX_SHA,
            &[
                Code::Sha256rnds2_xmm_xmmm128,
                Code::Sha1rnds4_xmm_xmmm128_imm8,
            ],
        ),
        (m.ext_ecx, ext::ECX_ABM, &[Code::Lzcnt_r32_rm32]),
    ];
    for (word, bit, codes) in checks {
        assert_ne!(word & bit, 0, "max advertises {bit:#x}");
        for c in *codes {
            assert!(
                entry(*c).meta.is_some(),
                "{c:?} advertised without a handler"
            );
        }
    }
    // Every legacy-encoded form of these extensions has a handler.
    use iced_x86::{CpuidFeature as F, EncodingKind};
    let missing: Vec<String> = Code::values()
        .filter(|c| {
            let legacy = c.op_code().encoding() == EncodingKind::Legacy;
            let vex_gpr = c.op_code().encoding() == EncodingKind::VEX
                && c.cpuid_features()
                    .iter()
                    .all(|f| matches!(f, F::BMI1 | F::BMI2));
            (legacy || vex_gpr)
                && c.cpuid_features().iter().any(|f| {
                    matches!(
                        f,
                        F::SSE3
                            | F::SSSE3
                            | F::SSE4_1
                            | F::SSE4_2
                            | F::POPCNT
                            | F::LZCNT
                            | F::BMI1
                            | F::BMI2
                            | F::ADX
                            | F::MOVBE
                            | F::PCLMULQDQ
                            | F::AES
                            | F::SHA
                            | F::RDRAND
                            | F::RDSEED
                            | F::XSAVE
                            | F::XSAVEOPT
                            | F::XSAVEC
                    )
                })
                && entry(*c).meta.is_none()
        })
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(missing.is_empty(), "unhandled: {missing:?}");
    // The older models stay as they were.
    assert_eq!(
        NESTOR64.features_ecx & (ecx::SSE3 | ecx::XSAVE | ecx::POPCNT),
        0
    );
    assert_eq!(NESTOR64.leaf7[0] & leaf7::EBX_BMI1, 0);
}

#[test]
fn max_model_cpuid_leaves() {
    let m = crate::cpuid::model_by_name("max").unwrap();
    assert!(m.long_mode());
    assert_eq!(m.leaf(0, 0)[0], 0xd);
    let mut s = crate::CpuState::power_on();
    let d0 = m.leaf_in(0xd, 0, &s);
    assert_eq!(d0, [3, 576, 576, 0]);
    assert_eq!(m.leaf_in(0xd, 1, &s)[0], xsave::XSAVEOPT | xsave::XSAVEC);
    assert_eq!(m.leaf_in(0xd, 2, &s), [0; 4]);
    assert_eq!(m.leaf_in(1, 0, &s)[2] & ecx::OSXSAVE, 0);
    s.cr4 |= cr4::OSXSAVE;
    assert_ne!(m.leaf_in(1, 0, &s)[2] & ecx::OSXSAVE, 0);
    // nestor64 and the Pentium Pro report no XSAVE leaf.
    assert_eq!(NESTOR64.leaf_in(0xd, 0, &s), NESTOR64.leaf(7, 0));
}
