//! Guest-visible exceptions (values, never panics) and host-side CPU errors.

/// Exception vectors.
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    pub const MC: u8 = 18;
    pub const XM: u8 = 19;
}

/// An exception raised by an instruction; delivered to the guest by `interrupt.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub vector: u8,
    pub error_code: Option<u32>,
    /// Faulting linear address for #PF (goes to CR2 on delivery).
    pub cr2: Option<u64>,
}

impl Fault {
    const fn plain(vector: u8) -> Self {
        Self {
            vector,
            error_code: None,
            cr2: None,
        }
    }
    const fn with_code(vector: u8, code: u16) -> Self {
        Self {
            vector,
            error_code: Some(code as u32),
            cr2: None,
        }
    }
    pub const DE: Fault = Fault::plain(vector::DE);
    pub const DB: Fault = Fault::plain(vector::DB);
    pub const BP: Fault = Fault::plain(vector::BP);
    pub const OF: Fault = Fault::plain(vector::OF);
    pub const BR: Fault = Fault::plain(vector::BR);
    pub const UD: Fault = Fault::plain(vector::UD);
    pub const NM: Fault = Fault::plain(vector::NM);
    pub const MF: Fault = Fault::plain(vector::MF);
    pub const XM: Fault = Fault::plain(vector::XM);
    #[must_use]
    pub const fn gp(code: u16) -> Self {
        Self::with_code(vector::GP, code)
    }
    #[must_use]
    pub const fn ss(code: u16) -> Self {
        Self::with_code(vector::SS, code)
    }
    #[must_use]
    pub const fn np(code: u16) -> Self {
        Self::with_code(vector::NP, code)
    }
    #[must_use]
    pub const fn ts(code: u16) -> Self {
        Self::with_code(vector::TS, code)
    }
    #[must_use]
    pub const fn ac() -> Self {
        Self::with_code(vector::AC, 0)
    }
    #[must_use]
    pub const fn pf(addr: u64, code: u32) -> Self {
        Self {
            vector: vector::PF,
            error_code: Some(code),
            cr2: Some(addr),
        }
    }
    /// Faults whose delivery is classed "contributory" for the double-fault rules.
    #[must_use]
    pub fn contributory(&self) -> bool {
        matches!(self.vector, 0 | 10 | 11 | 12 | 13)
    }
}

/// Result of anything an instruction does.
pub type Exec<T = ()> = Result<T, Fault>;

/// Host-side failures of the CPU model (never caused by the guest alone).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpuError {
    #[error("CPU state is invalid: {0}")]
    BadState(String),
}
