//! Flags the 80286 leaves undefined, per instruction form, for masking before comparison.
//!
//! The 80286 files carry no undefined-flag data: no file of `v1_real_mode/` has an `RMSK`
//! chunk (top level or per test; checked over all 325 files). The suite's README
//! (`UPSTREAM-README.md`) gives two rules, which [`REAL_MODE_INIT_FLAGS_MASK`] and
//! [`crate::moo::MooException::flag_addr`] carry:
//!
//! - the initial FLAGS are the value handed to `LOADALL`; in real mode IOPL and NT cannot
//!   be set, so "mask off the top four flag bits" before loading them;
//! - when an exception pushes FLAGS (e.g. a divide error), `EXCP` gives the address of the
//!   pushed word so that its undefined flags can be masked in final RAM as well.
//!
//! The per-form table below is therefore the documented one: the "Flags Affected" entry of
//! each instruction in Intel's *80286 and 80287 Programmer's Reference Manual* (1987,
//! Appendix B), which the Intel SDM Vol. 2 repeats for these instructions. It agrees with
//! the `flags-mask` values of the SingleStepTests 8088 suite (`v2/metadata.json`), which
//! records the same set for the opcodes the two CPUs share.

use std::fmt;
use std::str::FromStr;

pub const CF: u16 = 0x0001;
pub const PF: u16 = 0x0004;
pub const AF: u16 = 0x0010;
pub const ZF: u16 = 0x0040;
pub const SF: u16 = 0x0080;
pub const TF: u16 = 0x0100;
pub const IF: u16 = 0x0200;
pub const DF: u16 = 0x0400;
pub const OF: u16 = 0x0800;

/// AND this into the initial FLAGS of a real-mode test before loading them: clears
/// IOPL (bits 12-13), NT (bit 14) and bit 15, which a real-mode 80286 cannot set.
pub const REAL_MODE_INIT_FLAGS_MASK: u16 = 0x0FFF;

/// An instruction form as the suite names its files: the opcode, and for group opcodes the
/// ModRM reg field ("F6.6" = opcode F6, reg 6). Two-byte opcodes are `0x0Fxx` ("0F04").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Form {
    pub opcode: u16,
    pub reg: Option<u8>,
}

/// A form name that is not `XX`, `XX.Y` or `0FXX[.Y]` (hex digits, Y in 0..=7).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an instruction form name: {0:?}")]
pub struct BadFormName(pub String);

impl FromStr for Form {
    type Err = BadFormName;

    fn from_str(name: &str) -> Result<Form, BadFormName> {
        let bad = || BadFormName(name.to_string());
        let (op, reg) = match name.split_once('.') {
            Some((op, reg)) => (op, Some(reg)),
            None => (name, None),
        };
        let opcode_ok = (op.len() == 2 || (op.len() == 4 && op[..2].eq_ignore_ascii_case("0F")))
            && op.bytes().all(|b| b.is_ascii_hexdigit());
        if !opcode_ok {
            return Err(bad());
        }
        let opcode = u16::from_str_radix(op, 16).map_err(|_| bad())?;
        let reg = match reg {
            None => None,
            Some(r) if r.len() == 1 => match r.parse::<u8>() {
                Ok(r) if r < 8 => Some(r),
                _ => return Err(bad()),
            },
            Some(_) => return Err(bad()),
        };
        Ok(Form { opcode, reg })
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.opcode > 0xFF {
            write!(f, "{:04X}", self.opcode)?;
        } else {
            write!(f, "{:02X}", self.opcode)?;
        }
        match self.reg {
            Some(reg) => write!(f, ".{reg}"),
            None => Ok(()),
        }
    }
}

/// The arithmetic flags `form` leaves undefined (a set of the flag constants above).
#[must_use]
pub fn undefined_flags(form: Form) -> u16 {
    let reg = form.reg.unwrap_or(0);
    match form.opcode {
        // OR, AND, XOR, TEST (register/memory and accumulator forms): AF.
        0x08..=0x0D | 0x20..=0x25 | 0x30..=0x35 | 0x84 | 0x85 | 0xA8 | 0xA9 => AF,
        // Group 1 immediate: OR (/1), AND (/4), XOR (/6): AF.
        0x80..=0x83 if matches!(reg, 1 | 4 | 6) => AF,
        // DAA, DAS: OF.
        0x27 | 0x2F => OF,
        // AAA, AAS: OF, SF, ZF, PF.
        0x37 | 0x3F => OF | SF | ZF | PF,
        // IMUL r, r/m, imm: SF, ZF, AF, PF.
        0x69 | 0x6B => SF | ZF | AF | PF,
        // Shift group by 1: SHL/SHR/SAL/SAR (/4-/7): AF. Rotates by 1: all defined.
        0xD0 | 0xD1 if reg >= 4 => AF,
        // Shift group by CL or imm8: rotates (/0-/3): OF (defined only for a count of 1);
        // shifts (/4-/7): OF, AF, and CF (for counts not below the operand width).
        0xC0 | 0xC1 | 0xD2 | 0xD3 if reg < 4 => OF,
        0xC0 | 0xC1 | 0xD2 | 0xD3 => OF | AF | CF,
        // AAM, AAD: OF, AF, CF.
        0xD4 | 0xD5 => OF | AF | CF,
        // Group 3: TEST (/0, /1): AF; MUL, IMUL (/4, /5): SF, ZF, AF, PF; DIV, IDIV (/6, /7): all six.
        0xF6 | 0xF7 => match reg {
            0 | 1 => AF,
            4 | 5 => SF | ZF | AF | PF,
            6 | 7 => OF | SF | ZF | AF | PF | CF,
            _ => 0,
        },
        _ => 0,
    }
}

/// AND mask for FLAGS after `form`: every bit set except the undefined flags. Apply it to
/// both the emulator's FLAGS and the test's final FLAGS (and, after an exception, to the
/// FLAGS word pushed at [`crate::moo::MooException::flag_addr`]) before comparing.
#[must_use]
pub fn flags_mask(form: Form) -> u16 {
    !undefined_flags(form)
}
