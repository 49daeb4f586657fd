//! Lazy arithmetic flags: the last flag-setting operation is recorded (operation, size,
//! operands, result) and the six arithmetic flags are computed only when something reads them.

use crate::state::rflags::*;
use serde::{Deserialize, Serialize};

/// The operation whose flags are pending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum FlagOp {
    /// RFLAGS holds everything; nothing pending.
    #[default]
    None,
    Add,
    /// Add with carry; the carry-in is in `carry_in`.
    Adc,
    Sub,
    Sbb,
    /// AND/OR/XOR/TEST: CF = OF = 0, AF cleared (undefined by the manual).
    Logic,
    /// INC/DEC leave CF as it was in RFLAGS.
    Inc,
    Dec,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct LazyFlags {
    /// First operand (destination before the operation).
    pub dst: u64,
    /// Second operand.
    pub src: u64,
    pub res: u64,
    pub op: FlagOp,
    /// Operand size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    pub carry_in: bool,
}

#[inline]
#[must_use]
pub fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

#[inline]
#[must_use]
pub fn sign_bit(size: u8) -> u64 {
    match size {
        1 => 0x80,
        2 => 0x8000,
        4 => 0x8000_0000,
        _ => 1 << 63,
    }
}

/// PF: set when the low byte of the result has an even number of ones.
#[inline]
#[must_use]
pub fn parity(v: u64) -> u64 {
    if (v as u8).count_ones().is_multiple_of(2) {
        PF
    } else {
        0
    }
}

/// ZF, SF and PF of a result of `size` bytes.
#[inline]
#[must_use]
pub fn szp(res: u64, size: u8) -> u64 {
    let r = res & size_mask(size);
    let mut f = parity(r);
    if r == 0 {
        f |= ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= SF;
    }
    f
}

impl LazyFlags {
    /// The arithmetic flags this pending operation produces, merged with `rflags` for the
    /// flags it leaves alone.
    #[must_use]
    pub fn resolve(&self, rflags: u64) -> u64 {
        let m = size_mask(self.size);
        let sb = sign_bit(self.size);
        let (d, s, r) = (self.dst & m, self.src & m, self.res & m);
        let arith = match self.op {
            FlagOp::None => return rflags,
            FlagOp::Add | FlagOp::Adc => {
                let cin = u128::from(self.op == FlagOp::Adc && self.carry_in);
                let wide = u128::from(d) + u128::from(s) + cin;
                let mut f = szp(r, self.size) | ((d ^ s ^ r) & 0x10);
                if wide > u128::from(m) {
                    f |= CF;
                }
                if (d ^ r) & (s ^ r) & sb != 0 {
                    f |= OF;
                }
                f
            }
            FlagOp::Sub | FlagOp::Sbb => {
                let bin = u128::from(self.op == FlagOp::Sbb && self.carry_in);
                let mut f = szp(r, self.size) | ((d ^ s ^ r) & 0x10);
                if u128::from(d) < u128::from(s) + bin {
                    f |= CF;
                }
                if (d ^ s) & (d ^ r) & sb != 0 {
                    f |= OF;
                }
                f
            }
            FlagOp::Logic => szp(r, self.size),
            FlagOp::Inc => {
                let mut f = szp(r, self.size) | (rflags & CF) | ((d ^ r) & 0x10);
                if r == sb {
                    f |= OF;
                }
                f
            }
            FlagOp::Dec => {
                let mut f = szp(r, self.size) | (rflags & CF) | ((d ^ r) & 0x10);
                if r == sb - 1 {
                    f |= OF;
                }
                f
            }
        };
        (rflags & !ARITH) | arith
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy(op: FlagOp, size: u8, dst: u64, src: u64, res: u64, carry_in: bool) -> u64 {
        LazyFlags {
            dst,
            src,
            res,
            op,
            size,
            carry_in,
        }
        .resolve(FIXED1)
            & ARITH
    }

    #[test]
    fn add_sub_flags() {
        assert_eq!(lazy(FlagOp::Add, 1, 0xff, 1, 0, false), CF | ZF | PF | AF);
        assert_eq!(lazy(FlagOp::Add, 1, 0x7f, 1, 0x80, false), OF | SF | AF);
        assert_eq!(lazy(FlagOp::Sub, 2, 0, 1, 0xffff, false), CF | SF | PF | AF);
        assert_eq!(lazy(FlagOp::Sub, 1, 0x80, 1, 0x7f, false), OF | AF);
        assert_eq!(lazy(FlagOp::Adc, 1, 0xff, 0, 0, true), CF | ZF | PF | AF);
        assert_eq!(lazy(FlagOp::Sbb, 1, 0, 0, 0xff, true), CF | SF | PF | AF);
        assert_eq!(lazy(FlagOp::Sbb, 4, 5, 5, 0, false), ZF | PF);
    }

    #[test]
    fn inc_dec_keep_carry() {
        let l = LazyFlags {
            dst: 0x7f,
            src: 1,
            res: 0x80,
            op: FlagOp::Inc,
            size: 1,
            carry_in: false,
        };
        assert_eq!(l.resolve(FIXED1 | CF) & ARITH, CF | OF | SF | AF);
        let l = LazyFlags {
            dst: 0x80,
            src: 1,
            res: 0x7f,
            op: FlagOp::Dec,
            size: 1,
            carry_in: false,
        };
        assert_eq!(l.resolve(FIXED1) & ARITH, OF | AF);
    }
}
