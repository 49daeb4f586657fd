//! CPU models as data: what CPUID reports. Only features whose instructions and state the
//! CPU implements are advertised; a feature bit is added here when its handlers land.

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
}

/// A processor model as CPUID describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    pub vendor: [u8; 12],
    /// Highest basic leaf.
    pub max_leaf: u32,
    /// Leaf 1 EAX: stepping, model, family, type.
    pub signature: u32,
    pub features_edx: u32,
    pub features_ecx: u32,
    /// Leaf 2: cache and TLB descriptors (EAX, EBX, ECX, EDX).
    pub cache_descriptors: [u32; 4],
}

/// Pentium Pro (family 6, model 1, stepping 1: the signature EDX holds after reset) without its FPU (no x87 handlers yet).
pub const PENTIUM_PRO: CpuModel = CpuModel {
    vendor: *b"GenuineIntel",
    max_leaf: 2,
    signature: 0x0000_0611,
    features_edx: edx::VME
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
};

impl CpuModel {
    /// EAX, EBX, ECX, EDX for leaf `eax` (sub-leaf `_ecx`). Leaves above the maximum answer
    /// like the highest basic leaf, as Intel processors do.
    #[must_use]
    pub fn leaf(&self, eax: u32, _ecx: u32) -> [u32; 4] {
        let leaf = if eax > self.max_leaf {
            self.max_leaf
        } else {
            eax
        };
        let v = |k: usize| {
            u32::from_le_bytes([
                self.vendor[k],
                self.vendor[k + 1],
                self.vendor[k + 2],
                self.vendor[k + 3],
            ])
        };
        match leaf {
            0 => [self.max_leaf, v(0), v(8), v(4)],
            1 => [self.signature, 0, self.features_ecx, self.features_edx],
            2 => self.cache_descriptors,
            _ => [0; 4],
        }
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
        assert_eq!(l1[3] & edx::FPU, 0);
        assert_ne!(l1[3] & edx::CX8, 0);
        // Beyond the maximum leaf: the highest basic leaf's data.
        assert_eq!(PENTIUM_PRO.leaf(0x8000_0000, 0), PENTIUM_PRO.leaf(2, 0));
    }
}
