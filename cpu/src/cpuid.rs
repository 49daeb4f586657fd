//! CPU models as data: what CPUID reports. Only features whose instructions and state the
//! CPU implements are advertised; a feature bit is added here when its handlers land (a unit
//! test in `handlers::longmode` checks each advertised bit against the dispatch table).

/// IA32_APIC_BASE bit 11: the local APIC is hardware-enabled.
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;

/// CPUID.1:EDX feature bits.
pub mod edx {
    pub const FPU: u32 = 1 << 0;
    pub const VME: u32 = 1 << 1;
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const MCE: u32 = 1 << 7;
    pub const CX8: u32 = 1 << 8;
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    pub const MTRR: u32 = 1 << 12;
    pub const PGE: u32 = 1 << 13;
    pub const MCA: u32 = 1 << 14;
    pub const CMOV: u32 = 1 << 15;
    pub const PAT: u32 = 1 << 16;
    pub const PSE36: u32 = 1 << 17;
    pub const CLFSH: u32 = 1 << 19;
    pub const MMX: u32 = 1 << 23;
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
}

/// CPUID.1:ECX feature bits.
pub mod ecx {
    pub const SSE3: u32 = 1 << 0;
    pub const PCLMULQDQ: u32 = 1 << 1;
    pub const MONITOR: u32 = 1 << 3;
    pub const SSSE3: u32 = 1 << 9;
    pub const CX16: u32 = 1 << 13;
    pub const PCID: u32 = 1 << 17;
    pub const SSE41: u32 = 1 << 19;
    pub const SSE42: u32 = 1 << 20;
    pub const MOVBE: u32 = 1 << 22;
    pub const POPCNT: u32 = 1 << 23;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const AES: u32 = 1 << 25;
    pub const XSAVE: u32 = 1 << 26;
    /// Mirrors CR4.OSXSAVE (filled in when CPUID executes).
    pub const OSXSAVE: u32 = 1 << 27;
    pub const RDRAND: u32 = 1 << 30;
}

/// CPUID.(EAX=7,ECX=0) feature bits: EBX, ECX and EDX.
pub mod leaf7 {
    pub const EBX_FSGSBASE: u32 = 1 << 0;
    pub const EBX_BMI1: u32 = 1 << 3;
    pub const EBX_SMEP: u32 = 1 << 7;
    pub const EBX_BMI2: u32 = 1 << 8;
    pub const EBX_INVPCID: u32 = 1 << 10;
    pub const EBX_RDSEED: u32 = 1 << 18;
    pub const EBX_ADX: u32 = 1 << 19;
    pub const EBX_SMAP: u32 = 1 << 20;
    pub const EBX_CLFLUSHOPT: u32 = 1 << 23;
    pub const EBX_CLWB: u32 = 1 << 24;
    pub const EBX_SHA: u32 = 1 << 29;
    pub const ECX_UMIP: u32 = 1 << 2;
    pub const ECX_LA57: u32 = 1 << 16;
    pub const ECX_RDPID: u32 = 1 << 22;
    /// IA32_SPEC_CTRL.IBRS and IA32_PRED_CMD.IBPB exist.
    pub const EDX_SPEC_CTRL: u32 = 1 << 26;
}

/// CPUID.80000001h feature bits: EDX and ECX.
pub mod ext {
    pub const EDX_SYSCALL: u32 = 1 << 11;
    pub const EDX_NX: u32 = 1 << 20;
    pub const EDX_PAGE1GB: u32 = 1 << 26;
    pub const EDX_RDTSCP: u32 = 1 << 27;
    pub const EDX_LM: u32 = 1 << 29;
    /// LAHF/SAHF in 64-bit mode.
    pub const ECX_LAHF_LM: u32 = 1 << 0;
    /// LZCNT (AMD's "advanced bit manipulation").
    pub const ECX_ABM: u32 = 1 << 5;
    pub const ECX_PREFETCHW: u32 = 1 << 8;
}

/// A processor model as CPUID describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The name `--cpu` selects it by.
    pub name: &'static str,
    pub vendor: [u8; 12],
    /// Highest basic leaf.
    pub max_leaf: u32,
    /// Leaf 1 EAX: stepping, model, family, type.
    pub signature: u32,
    /// Leaf 1 EBX: CLFLUSH line size (in 8-byte units), logical processor count, APIC ID.
    pub leaf1_ebx: u32,
    pub features_edx: u32,
    pub features_ecx: u32,
    /// Leaf 2: cache and TLB descriptors (EAX, EBX, ECX, EDX).
    pub cache_descriptors: [u32; 4],
    /// Leaf 5: MONITOR/MWAIT line sizes and extensions.
    pub monitor: [u32; 4],
    /// Leaf 7 sub-leaf 0: EBX, ECX, EDX.
    pub leaf7: [u32; 3],
    /// Highest extended leaf (0 when there are none).
    pub max_ext_leaf: u32,
    /// Leaf 80000001h: EDX and ECX.
    pub ext_edx: u32,
    pub ext_ecx: u32,
    /// Leaves 80000002h..80000004h.
    pub brand: [u8; 48],
    /// Physical and linear address widths (leaf 80000008h).
    pub phys_bits: u8,
    pub lin_bits: u8,
    /// XCR0 bits XSETBV accepts (leaf 0Dh); 0 without XSAVE.
    pub xcr0_supported: u64,
    /// Leaf 0Dh sub-leaf 1 EAX: XSAVEOPT, XSAVEC, ...
    pub xsave_ext: u32,
}

/// XSAVE state components (XCR0 bits) and the leaf 0Dh sub-leaf 1 bits.
pub mod xsave {
    pub const X87: u64 = 1 << 0;
    pub const SSE: u64 = 1 << 1;
    pub const XSAVEOPT: u32 = 1 << 0;
    pub const XSAVEC: u32 = 1 << 1;
    /// The legacy region (512 bytes) plus the XSAVE header (64 bytes).
    pub const AREA_BYTES: u32 = 576;
}

/// Pentium Pro (family 6, model 1, stepping 1: the signature EDX holds after reset).
pub const PENTIUM_PRO: CpuModel = CpuModel {
    name: "pentium-pro",
    vendor: *b"GenuineIntel",
    max_leaf: 2,
    signature: 0x0000_0611,
    leaf1_ebx: 0,
    features_edx: edx::FPU
        | edx::VME
        | edx::DE
        | edx::PSE
        | edx::TSC
        | edx::MSR
        | edx::PAE
        | edx::CX8
        | edx::MTRR
        | edx::PGE
        | edx::CMOV,
    features_ecx: 0,
    // 4K ITLB, 4M ITLB, 4K DTLB; 8K L1 I, 8K L1 D, 4M DTLB, 256K L2.
    cache_descriptors: [0x0302_0101, 0, 0, 0x0604_0a42],
    monitor: [0; 4],
    leaf7: [0; 3],
    max_ext_leaf: 0,
    ext_edx: 0,
    ext_ecx: 0,
    brand: [0; 48],
    phys_bits: 36,
    lin_bits: 32,
    xcr0_supported: 0,
    xsave_ext: 0,
};

const fn brand(s: &[u8]) -> [u8; 48] {
    let mut b = [0u8; 48];
    let mut k = 0;
    while k < s.len() && k < 47 {
        b[k] = s[k];
        k += 1;
    }
    b
}

/// Nestor's x86-64 model: long mode with everything the interpreter implements for it
/// (4- and 5-level paging, 1 GiB pages, NX, SMEP/SMAP, PCID/INVPCID, UMIP, FSGSBASE,
/// SYSCALL/SYSENTER, RDTSCP/RDPID, CMPXCHG16B, MONITOR/MWAIT), x87, MMX, SSE and SSE2.
pub const NESTOR64: CpuModel = CpuModel {
    name: "nestor64",
    vendor: *b"GenuineIntel",
    max_leaf: 7,
    // Family 6, model 3Ah, stepping 9.
    signature: 0x0003_06a9,
    // 64-byte CLFLUSH lines, one logical processor, APIC ID 0.
    leaf1_ebx: 8 << 8 | 1 << 16,
    // APIC: the machine's local APIC at 0xFEE00000 (TPR also through CR8).
    features_edx: edx::FPU
        | edx::APIC
        | edx::FXSR
        | edx::VME
        | edx::DE
        | edx::PSE
        | edx::TSC
        | edx::MSR
        | edx::PAE
        | edx::CX8
        | edx::SEP
        | edx::MTRR
        | edx::PGE
        | edx::CMOV
        | edx::PAT
        | edx::PSE36
        | edx::CLFSH
        | edx::MMX
        | edx::SSE
        | edx::SSE2,
    // TSC_DEADLINE: IA32_TSC_DEADLINE reaches the machine's local APIC through the bus.
    features_ecx: ecx::MONITOR | ecx::CX16 | ecx::PCID | ecx::TSC_DEADLINE,
    // No descriptors: one iteration, all bytes null.
    cache_descriptors: [1, 0, 0, 0],
    // 64-byte monitor lines; enumeration of extensions and interrupts as break events; no
    // C-state sub-states (so an OS idles with HLT).
    monitor: [64, 64, 3, 0],
    leaf7: [
        leaf7::EBX_FSGSBASE
            | leaf7::EBX_SMEP
            | leaf7::EBX_INVPCID
            | leaf7::EBX_SMAP
            | leaf7::EBX_CLFLUSHOPT
            | leaf7::EBX_CLWB,
        leaf7::ECX_UMIP | leaf7::ECX_LA57 | leaf7::ECX_RDPID,
        leaf7::EDX_SPEC_CTRL,
    ],
    max_ext_leaf: 0x8000_0008,
    ext_edx: ext::EDX_SYSCALL | ext::EDX_NX | ext::EDX_PAGE1GB | ext::EDX_RDTSCP | ext::EDX_LM,
    ext_ecx: ext::ECX_LAHF_LM | ext::ECX_PREFETCHW,
    brand: brand(b"Nestor64 virtual CPU"),
    phys_bits: 36,
    lin_bits: 57,
    xcr0_supported: 0,
    xsave_ext: 0,
};

/// Everything the interpreter has handlers for: nestor64 plus SSE3 through SSE4.2, POPCNT,
/// LZCNT, BMI1/BMI2, ADX, MOVBE, PCLMULQDQ, AES-NI, SHA, RDRAND/RDSEED and XSAVE (x87+SSE).
pub const MAX: CpuModel = CpuModel {
    name: "max",
    max_leaf: 0xd,
    // Family 6, model 5Eh, stepping 3.
    signature: 0x0005_06e3,
    features_ecx: NESTOR64.features_ecx
        | ecx::SSE3
        | ecx::PCLMULQDQ
        | ecx::SSSE3
        | ecx::SSE41
        | ecx::SSE42
        | ecx::MOVBE
        | ecx::POPCNT
        | ecx::AES
        | ecx::XSAVE
        | ecx::RDRAND,
    leaf7: [
        NESTOR64.leaf7[0]
            | leaf7::EBX_BMI1
            | leaf7::EBX_BMI2
            | leaf7::EBX_RDSEED
            | leaf7::EBX_ADX
            | leaf7::EBX_SHA,
        NESTOR64.leaf7[1],
        NESTOR64.leaf7[2],
    ],
    ext_ecx: NESTOR64.ext_ecx | ext::ECX_ABM,
    brand: brand(b"Nestor64 virtual CPU (max)"),
    xcr0_supported: xsave::X87 | xsave::SSE,
    xsave_ext: xsave::XSAVEOPT | xsave::XSAVEC,
    ..NESTOR64
};

/// Every model `--cpu` can name.
pub const MODELS: [&CpuModel; 3] = [&PENTIUM_PRO, &NESTOR64, &MAX];

/// The model called `name`.
#[must_use]
pub fn model_by_name(name: &str) -> Option<&'static CpuModel> {
    MODELS.iter().copied().find(|m| m.name == name)
}

impl CpuModel {
    /// EAX, EBX, ECX, EDX for leaf `eax` (sub-leaf `ecx`). Leaves above the maximum basic or
    /// extended leaf answer like the highest basic leaf, as Intel processors do.
    #[must_use]
    pub fn leaf(&self, eax: u32, ecx: u32) -> [u32; 4] {
        let leaf = self.effective_leaf(eax);
        let v = |k: usize| {
            u32::from_le_bytes([
                self.vendor[k],
                self.vendor[k + 1],
                self.vendor[k + 2],
                self.vendor[k + 3],
            ])
        };
        let b = |k: usize| {
            let at = (k * 4).min(44);
            u32::from_le_bytes([
                self.brand[at],
                self.brand[at + 1],
                self.brand[at + 2],
                self.brand[at + 3],
            ])
        };
        match leaf {
            0 => [self.max_leaf, v(0), v(8), v(4)],
            1 => [
                self.signature,
                self.leaf1_ebx,
                self.features_ecx,
                self.features_edx,
            ],
            2 => self.cache_descriptors,
            5 => self.monitor,
            7 if ecx == 0 => [0, self.leaf7[0], self.leaf7[1], self.leaf7[2]],
            0xd => self.xsave_leaf(ecx, self.xcr0_supported),
            0x8000_0000 => [self.max_ext_leaf, 0, 0, 0],
            0x8000_0001 => [0, 0, self.ext_ecx, self.ext_edx],
            0x8000_0002..=0x8000_0004 => {
                let k = ((leaf - 0x8000_0002) * 4) as usize;
                [b(k), b(k + 1), b(k + 2), b(k + 3)]
            }
            0x8000_0008 => [
                u32::from(self.phys_bits) | u32::from(self.lin_bits) << 8,
                0,
                0,
                0,
            ],
            _ => [0; 4],
        }
    }

    /// The leaf that answers `eax`: out-of-range leaves answer like the highest basic leaf.
    fn effective_leaf(&self, eax: u32) -> u32 {
        let beyond = if eax >= 0x8000_0000 {
            eax > self.max_ext_leaf
        } else {
            eax > self.max_leaf
        };
        if beyond {
            self.max_leaf
        } else {
            eax
        }
    }

    /// CPUID as executed on a CPU in state `s`: leaf 1 reflects CR4.OSXSAVE and the APIC's
    /// global enable, and leaf 0Dh
    /// sizes the area for the features XCR0 enables.
    #[must_use]
    pub fn leaf_in(&self, eax: u32, ecx: u32, s: &crate::CpuState) -> [u32; 4] {
        let mut r = self.leaf(eax, ecx);
        let leaf = self.effective_leaf(eax);
        if leaf == 1 && s.cr4 & crate::state::cr4::OSXSAVE != 0 {
            r[2] |= ecx::OSXSAVE;
        }
        // A hardware-disabled local APIC (IA32_APIC_BASE[11] = 0) hides its flag (SDM 10.4.3).
        if leaf == 1 && s.msr.apic_base & APIC_GLOBAL_ENABLE == 0 {
            r[3] &= !edx::APIC;
        }
        if leaf == 0xd {
            r = self.xsave_leaf(ecx, s.xcr0);
        }
        r
    }

    /// Leaf 0Dh: only the x87 and SSE components, which live in the 576-byte legacy area
    /// and header; `enabled` is XCR0.
    fn xsave_leaf(&self, sub: u32, enabled: u64) -> [u32; 4] {
        if self.features_ecx & ecx::XSAVE == 0 {
            return [0; 4];
        }
        let size = xsave::AREA_BYTES;
        match sub {
            0 => [self.xcr0_supported as u32, size, size, 0],
            1 => [self.xsave_ext, if enabled != 0 { size } else { 0 }, 0, 0],
            _ => [0; 4],
        }
    }

    /// Does the model have long mode (and with it EFER, SYSCALL and the 64-bit MSRs)?
    #[must_use]
    pub fn long_mode(&self) -> bool {
        self.ext_edx & ext::EDX_LM != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_and_features() {
        let l0 = PENTIUM_PRO.leaf(0, 0);
        let mut s = Vec::new();
        for r in [l0[1], l0[3], l0[2]] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"GenuineIntel");
        let l1 = PENTIUM_PRO.leaf(1, 0);
        assert_eq!((l1[0] >> 8) & 0xf, 6);
        assert_ne!(l1[3] & edx::FPU, 0);
        assert_ne!(l1[3] & edx::CX8, 0);
        // Beyond the maximum leaf: the highest basic leaf's data.
        assert_eq!(PENTIUM_PRO.leaf(0x8000_0000, 0), PENTIUM_PRO.leaf(2, 0));
    }

    #[test]
    fn nestor64_extended_leaves() {
        let m = model_by_name("nestor64").unwrap();
        assert_eq!(m.leaf(0x8000_0000, 0)[0], 0x8000_0008);
        assert_ne!(m.leaf(0x8000_0001, 0)[3] & ext::EDX_LM, 0);
        assert_eq!(m.leaf(0x8000_0008, 0)[0], 36 | 57 << 8);
        let mut brand = Vec::new();
        for l in 0x8000_0002..=0x8000_0004 {
            for r in m.leaf(l, 0) {
                brand.extend_from_slice(&r.to_le_bytes());
            }
        }
        assert!(brand.starts_with(b"Nestor64 virtual CPU\0"));
        assert_eq!(m.leaf(7, 1), [0; 4]);
        // Above the extended range: the highest basic leaf, as Intel does.
        assert_eq!(m.leaf(0x8000_0009, 0), m.leaf(7, 0));
        assert!(model_by_name("pentium-pro").is_some_and(|m| !m.long_mode()));
    }
}
