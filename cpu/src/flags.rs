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

/// How far a value of `size` bytes shifts left to put its sign bit at bit 63 (sizes other
/// than 1, 2 and 4 count as 8).
#[inline]
fn top_shift(size: u8) -> u32 {
    match size {
        1 => 56,
        2 => 48,
        4 => 32,
        _ => 0,
    }
}

/// PF of every byte value.
static PARITY: [u8; 256] = parity_table();

const fn parity_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        if (v as u8).count_ones().is_multiple_of(2) {
            t[v] = PF as u8;
        }
        v += 1;
    }
    t
}

/// PF: set when the low byte of the result has an even number of ones.
#[inline]
#[must_use]
pub fn parity(v: u64) -> u64 {
    u64::from(PARITY[(v & 0xff) as usize])
}

/// ZF and SF of a result already shifted so that its sign bit is bit 63.
#[inline]
fn zs_top(top: u64) -> u64 {
    (u64::from(top == 0) * ZF) | ((top >> 63) * SF)
}

/// ZF, SF and PF of a result of `size` bytes.
#[inline]
#[must_use]
pub fn szp(res: u64, size: u8) -> u64 {
    zs_top(res << top_shift(size)) | parity(res)
}

impl LazyFlags {
    /// The arithmetic flags this pending operation produces, merged with `rflags` for the
    /// flags it leaves alone.
    ///
    /// Operands are shifted so that their sign bit is bit 63: carries and overflows then come
    /// out of 64-bit arithmetic for every operand size.
    #[must_use]
    pub fn resolve(&self, rflags: u64) -> u64 {
        if self.op == FlagOp::None {
            return rflags;
        }
        let sh = top_shift(self.size);
        let (d, s, r) = (self.dst << sh, self.src << sh, self.res << sh);
        let szp = zs_top(r) | parity(self.res);
        let af = (self.dst ^ self.src ^ self.res) & AF;
        let arith = match self.op {
            FlagOp::None => return rflags,
            FlagOp::Add | FlagOp::Adc => {
                let cin = u64::from(self.op == FlagOp::Adc && self.carry_in) << sh;
                let (t, c1) = d.overflowing_add(s);
                let (_, c2) = t.overflowing_add(cin);
                let of = ((d ^ r) & (s ^ r)) >> 63;
                szp | af | (u64::from(c1 | c2) * CF) | (of * OF)
            }
            FlagOp::Sub | FlagOp::Sbb => {
                let bin = u64::from(self.op == FlagOp::Sbb && self.carry_in) << sh;
                let (t, b1) = d.overflowing_sub(s);
                let (_, b2) = t.overflowing_sub(bin);
                let of = ((d ^ s) & (d ^ r)) >> 63;
                szp | af | (u64::from(b1 | b2) * CF) | (of * OF)
            }
            FlagOp::Logic => szp,
            FlagOp::Inc => {
                let of = u64::from(r == 1 << 63);
                szp | (rflags & CF) | ((self.dst ^ self.res) & AF) | (of * OF)
            }
            FlagOp::Dec => {
                let of = u64::from(r == (u64::MAX >> 1) >> sh << sh);
                szp | (rflags & CF) | ((self.dst ^ self.res) & AF) | (of * OF)
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

    /// Operands that reach every carry, overflow and sign boundary, then pseudo-random ones.
    fn operands() -> Vec<(u64, u64)> {
        let edges = [
            0u64,
            1,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            u64::MAX,
        ];
        let mut v: Vec<(u64, u64)> = edges
            .iter()
            .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
            .collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push((a, x));
        }
        v
    }

    /// Run one two-operand instruction on the host: RAX = a, RCX = b, CF = cf. Returns the
    /// result (RAX) and RFLAGS.
    #[cfg(target_arch = "x86_64")]
    macro_rules! host {
        ($ins:literal, $a:expr, $b:expr, $cf:expr) => {{
            let mut a: u64 = $a;
            let flags: u64;
            // SAFETY: touches only RAX, RCX, the flags and two stack slots it pops again.
            unsafe {
                core::arch::asm!(
                    "bt {cf}, 0",
                    $ins,
                    "pushfq",
                    "pop {f}",
                    cf = in(reg) u64::from($cf),
                    f = out(reg) flags,
                    inout("rax") a,
                    in("rcx") $b,
                );
            }
            (a, flags)
        }};
    }

    /// The lazy flags of every operation and size agree with the host CPU's on the flags the
    /// manual defines (AF after logic operations is undefined and not compared).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lazy_flags_match_the_host_cpu() {
        type Host = fn(u64, u64, bool) -> (u64, u64);
        let cases: Vec<(FlagOp, u8, Host)> = vec![
            (FlagOp::Add, 1, |a, b, c| host!("add al, cl", a, b, c)),
            (FlagOp::Add, 2, |a, b, c| host!("add ax, cx", a, b, c)),
            (FlagOp::Add, 4, |a, b, c| host!("add eax, ecx", a, b, c)),
            (FlagOp::Add, 8, |a, b, c| host!("add rax, rcx", a, b, c)),
            (FlagOp::Adc, 1, |a, b, c| host!("adc al, cl", a, b, c)),
            (FlagOp::Adc, 2, |a, b, c| host!("adc ax, cx", a, b, c)),
            (FlagOp::Adc, 4, |a, b, c| host!("adc eax, ecx", a, b, c)),
            (FlagOp::Adc, 8, |a, b, c| host!("adc rax, rcx", a, b, c)),
            (FlagOp::Sub, 1, |a, b, c| host!("sub al, cl", a, b, c)),
            (FlagOp::Sub, 2, |a, b, c| host!("sub ax, cx", a, b, c)),
            (FlagOp::Sub, 4, |a, b, c| host!("sub eax, ecx", a, b, c)),
            (FlagOp::Sub, 8, |a, b, c| host!("sub rax, rcx", a, b, c)),
            (FlagOp::Sbb, 1, |a, b, c| host!("sbb al, cl", a, b, c)),
            (FlagOp::Sbb, 2, |a, b, c| host!("sbb ax, cx", a, b, c)),
            (FlagOp::Sbb, 4, |a, b, c| host!("sbb eax, ecx", a, b, c)),
            (FlagOp::Sbb, 8, |a, b, c| host!("sbb rax, rcx", a, b, c)),
            (FlagOp::Logic, 1, |a, b, c| host!("xor al, cl", a, b, c)),
            (FlagOp::Logic, 2, |a, b, c| host!("xor ax, cx", a, b, c)),
            (FlagOp::Logic, 4, |a, b, c| host!("xor eax, ecx", a, b, c)),
            (FlagOp::Logic, 8, |a, b, c| host!("xor rax, rcx", a, b, c)),
            (FlagOp::Inc, 1, |a, b, c| host!("inc al", a, b, c)),
            (FlagOp::Inc, 2, |a, b, c| host!("inc ax", a, b, c)),
            (FlagOp::Inc, 4, |a, b, c| host!("inc eax", a, b, c)),
            (FlagOp::Inc, 8, |a, b, c| host!("inc rax", a, b, c)),
            (FlagOp::Dec, 1, |a, b, c| host!("dec al", a, b, c)),
            (FlagOp::Dec, 2, |a, b, c| host!("dec ax", a, b, c)),
            (FlagOp::Dec, 4, |a, b, c| host!("dec eax", a, b, c)),
            (FlagOp::Dec, 8, |a, b, c| host!("dec rax", a, b, c)),
        ];
        let mut compared = 0;
        for (op, size, run) in cases {
            let m = size_mask(size);
            for &(a, b) in &operands() {
                for cf in [false, true] {
                    let (res, host_flags) = run(a, b, cf);
                    let src = if matches!(op, FlagOp::Inc | FlagOp::Dec) {
                        1
                    } else {
                        b
                    };
                    let lazy = LazyFlags {
                        dst: a & m,
                        src: src & m,
                        res: res & m,
                        op,
                        size,
                        carry_in: cf,
                    };
                    let ours = lazy.resolve(FIXED1 | u64::from(cf)) & ARITH;
                    let defined = if op == FlagOp::Logic {
                        ARITH & !AF
                    } else {
                        ARITH
                    };
                    assert_eq!(
                        ours & defined,
                        host_flags & defined,
                        "{op:?} size {size}: {a:#x}, {b:#x}, CF={cf}"
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 150_000);
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn lazy_flags_match_the_host_cpu() {
        println!("skipped: the host is not x86-64, there is no CPU to compare the flags with");
    }

    #[test]
    fn parity_table_counts_bits() {
        for v in 0..=255u64 {
            let even = v.count_ones() % 2 == 0;
            assert_eq!(parity(v) == PF, even, "{v:#x}");
            assert_eq!(parity(v | 0x1200), parity(v), "only the low byte counts");
        }
    }
}
