//! Which instruction forms the differential harness runs: every `Code` the interpreter's
//! dispatch table handles that a user program can execute deterministically, filtered by
//! what the host CPU supports. Everything else is listed with the reason.
//!
//! Included, though the manual defines them only in part:
//! - FPREM/FPREM1 are compared bit for bit. Complete (exponent difference < 64) everything
//!   is defined; partial (C2 = 1), SDM vol. 2 FPREM gives N as "an implementation-dependent
//!   number between 32 and 63" and C0/C3/C1 no meaning. The interpreter reduces to an
//!   exponent difference in 32..63 with C0/C3/C1 cleared, which is the host's (AMD) choice:
//!   measured, and pinned by `fprem_partial_remainders_match_the_host`.
//! - The x87 transcendentals and RCP/RSQRT estimates end their sequence and are compared
//!   within the documented accuracy; see [`super::approx`] for exactly what is masked.
//! - DPPS/DPPD and unmasked OE/UE (the generator unmasks them now and then) bit for bit.

use iced_x86::{Code, CpuidFeature, FlowControl, Mnemonic, OpCodeOperandKind as K};
use nestor_cpu::table;

/// The forms to generate, and the handled forms left out with the reason.
pub struct Catalog {
    pub bitness: u32,
    pub codes: Vec<Code>,
    pub excluded: Vec<(Code, String)>,
}

impl Catalog {
    #[must_use]
    pub fn new(bitness: u32) -> Self {
        let mut codes = Vec::new();
        let mut excluded = Vec::new();
        for code in Code::values() {
            let Some(meta) = table::entry(code).meta else {
                continue;
            };
            match exclusion(code, meta, bitness) {
                None => codes.push(code),
                Some(why) => excluded.push((code, why)),
            }
        }
        Self {
            bitness,
            codes,
            excluded,
        }
    }
}

/// Why `code` is not run, or `None` when it is.
fn exclusion(code: Code, meta: table::Meta, bitness: u32) -> Option<String> {
    let op = code.op_code();
    let valid = if bitness == 64 {
        op.mode64()
    } else {
        op.mode32()
    };
    if !valid || !op.is_instruction() {
        return Some(format!("not encodable in {bitness}-bit mode"));
    }
    if op.fwait() {
        return Some("decoded as WAIT plus the no-wait form, never as this form".into());
    }
    if meta.privileged {
        return Some("privileged".into());
    }
    let insn = iced_x86::Instruction::with(code);
    if insn.flow_control() != FlowControl::Next {
        return Some("control transfer".into());
    }
    if let Some(why) = mnemonic_exclusion(code.mnemonic()) {
        return Some(why.into());
    }
    if let Some(why) = code_exclusion(code) {
        return Some(why.into());
    }
    // `ends_block` alone is no reason: REP string forms and POPF end blocks too.
    for &k in op.op_kinds() {
        if !operand_supported(k) {
            return Some(format!("operand kind {k:?} not generated"));
        }
    }
    for &f in code.cpuid_features() {
        if !host_has(f) {
            return Some(format!("host CPU lacks {f:?}"));
        }
    }
    None
}

fn mnemonic_exclusion(m: Mnemonic) -> Option<&'static str> {
    use Mnemonic as M;
    Some(match m {
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => "port I/O",
        M::Cpuid | M::Rdtsc | M::Rdtscp | M::Rdrand | M::Rdseed | M::Rdpid | M::Rdpmc => {
            "non-deterministic or model-specific result"
        }
        M::Xgetbv | M::Rdpkru | M::Wrpkru => "host XCR0/PKRU differ from the model's",
        M::Rdfsbase | M::Rdgsbase | M::Wrfsbase | M::Wrgsbase | M::Swapgs => {
            "FS/GS base: the host's TLS"
        }
        M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => "loads a segment register",
        M::Lar | M::Lsl | M::Verr | M::Verw | M::Sldt | M::Str | M::Sgdt | M::Sidt | M::Smsw => {
            "reads descriptor tables (host GDT/UMIP)"
        }
        M::Enter | M::Leave => "sets RSP from a random register",
        M::Popa | M::Popad => "loads the reserved base register",
        M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => {
            "FXSAVE pointer fields are vendor-defined (AMD stores them only with ES set)"
        }
        M::Xsave
        | M::Xsave64
        | M::Xsaveopt
        | M::Xsaveopt64
        | M::Xsavec
        | M::Xsavec64
        | M::Xrstor
        | M::Xrstor64
        | M::Xsaves
        | M::Xrstors => "XSAVE layout depends on the host's XCR0",
        M::Fnsave | M::Fsave | M::Frstor | M::Fnstenv | M::Fstenv | M::Fldenv => {
            "x87 environment holds FIP/FDP/FOP (vendor-defined)"
        }
        M::Cli | M::Sti => "IOPL-sensitive",
        M::Monitor | M::Mwait | M::Monitorx | M::Mwaitx | M::Umonitor | M::Umwait | M::Tpause => {
            "waits on the host's monitor hardware"
        }
        M::Xbegin | M::Xend | M::Xabort | M::Xtest => "transactional memory",
        M::Ud0 | M::Ud1 | M::Ud2 => "raises #UD by design",
        M::Fstpnce => "D9 D8+i alias: FSTP on Intel, a no-op on AMD",
        _ => return None,
    })
}

fn code_exclusion(code: Code) -> Option<&'static str> {
    let name = format!("{code:?}");
    if name.starts_with("Reservednop_") && name.ends_with("_0F0D") || name.contains("_0F0D") {
        return Some("0F 0D with a register operand: #UD on AMD, a NOP on Intel");
    }
    if name.starts_with("Mov_Sreg")
        || name.starts_with("Pop") && name.contains("_FS")
        || name.starts_with("Pop") && name.contains("_GS")
        || name.starts_with("Pop") && name.contains("_DS")
        || name.starts_with("Pop") && name.contains("_ES")
        || name.starts_with("Pop") && name.contains("_SS")
    {
        return Some("loads a segment register");
    }
    None
}

fn operand_supported(k: K) -> bool {
    !matches!(
        k,
        K::farbr2_2
            | K::farbr4_2
            | K::mem_mpx
            | K::mem_mib
            | K::mem_vsib32x
            | K::mem_vsib64x
            | K::mem_vsib32y
            | K::mem_vsib64y
            | K::mem_vsib32z
            | K::mem_vsib64z
            | K::r32_or_mem_mpx
            | K::r64_or_mem_mpx
            | K::ymm_or_mem
            | K::zmm_or_mem
            | K::bnd_or_mem_mpx
            | K::k_or_mem
            | K::k_reg
            | K::kp1_reg
            | K::k_rm
            | K::k_vvvv
            | K::xmm_is5
            | K::ymm_reg
            | K::ymm_rm
            | K::ymm_vvvv
            | K::ymm_is4
            | K::ymm_is5
            | K::zmm_reg
            | K::zmm_rm
            | K::zmm_vvvv
            | K::zmmp3_vvvv
            | K::xmmp3_vvvv
            | K::cr_reg
            | K::dr_reg
            | K::tr_reg
            | K::bnd_reg
            | K::br16_1
            | K::br32_1
            | K::br64_1
            | K::br16_2
            | K::br32_4
            | K::br64_4
            | K::xbegin_2
            | K::xbegin_4
            | K::brdisp_2
            | K::brdisp_4
            | K::sibmem
            | K::tmm_reg
            | K::tmm_rm
            | K::tmm_vvvv
            | K::imm4_m2z
            | K::dx
    )
}

/// Does the host CPU run instructions that need `f`?
#[must_use]
pub fn host_has(f: CpuidFeature) -> bool {
    use CpuidFeature as F;
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! d {
            ($t:tt) => {
                std::arch::is_x86_feature_detected!($t)
            };
        }
        match f {
            F::INTEL8086 | F::INTEL186 | F::INTEL286 | F::INTEL386 | F::INTEL486 | F::X64 => true,
            F::FPU | F::FPU287 | F::FPU387 | F::CMOV | F::CX8 | F::MMX | F::SSE | F::SSE2 => true,
            F::FXSR | F::CLFSH | F::MULTIBYTENOP | F::PAUSE => true,
            F::SSE3 => d!("sse3"),
            F::SSSE3 => d!("ssse3"),
            F::SSE4_1 => d!("sse4.1"),
            F::SSE4_2 => d!("sse4.2"),
            F::SSE4A => d!("sse4a"),
            F::POPCNT => d!("popcnt"),
            F::LZCNT => d!("lzcnt"),
            F::BMI1 => d!("bmi1"),
            F::BMI2 => d!("bmi2"),
            F::ADX => d!("adx"),
            F::MOVBE => d!("movbe"),
            F::PCLMULQDQ => d!("pclmulqdq"),
            F::AES => d!("aes"),
            F::SHA => d!("sha"),
            F::CMPXCHG16B => d!("cmpxchg16b"),
            F::PREFETCHW => cpuid_bit(0x8000_0001, 2, 8),
            F::CLFLUSHOPT => cpuid_bit(7, 1, 23),
            F::CLWB => cpuid_bit(7, 1, 24),
            // ENDBR32/64 sit in hint-NOP space: they run as NOPs where CET is off.
            F::CET_IBT => true,
            F::AVX => d!("avx"),
            F::AVX2 => d!("avx2"),
            F::F16C => d!("f16c"),
            F::FMA => d!("fma"),
            F::TBM => d!("tbm"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = f;
        false
    }
}

/// CPUID `leaf` (subleaf 0): bit `bit` of EAX/EBX/ECX/EDX (`reg` 0..3).
#[cfg(target_arch = "x86_64")]
#[allow(unused_unsafe)]
fn cpuid_bit(leaf: u32, reg: u8, bit: u32) -> bool {
    // SAFETY: CPUID exists on every x86-64 CPU.
    let max = unsafe { std::arch::x86_64::__cpuid(leaf & 0x8000_0000) }.eax;
    if leaf > max {
        return false;
    }
    // SAFETY: as above.
    let r = unsafe { std::arch::x86_64::__cpuid_count(leaf, 0) };
    let v = [r.eax, r.ebx, r.ecx, r.edx][usize::from(reg & 3)];
    v >> bit & 1 != 0
}
