//! The dispatch table: one entry per iced-x86 `Code` with its handler and metadata, filled
//! from the declarative lists of each instruction family and expanded into a dense array.

use crate::fault::{Exec, Fault};
use crate::Bus;
use crate::Cpu;
use iced_x86::{Code, Instruction};
use std::sync::OnceLock;

pub type Handler = fn(&mut Cpu, &mut dyn Bus, &Instruction) -> Exec;

/// The instruction-set extension an instruction belongs to (used for CPUID and coverage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    I8086,
    I186,
    I286,
    I386,
    I486,
    Pentium,
    PentiumPro,
    /// 64-bit forms and the long-mode system extensions (SYSCALL, SWAPGS, FSGSBASE, ...).
    X64,
}

#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub isa: Isa,
    /// Changes control flow or CPU mode: a translated block ends here.
    pub ends_block: bool,
    /// Only CPL 0 may execute it.
    pub privileged: bool,
}

impl Meta {
    pub const fn plain(isa: Isa) -> Self {
        Self {
            isa,
            ends_block: false,
            privileged: false,
        }
    }
    pub const fn branch(isa: Isa) -> Self {
        Self {
            isa,
            ends_block: true,
            privileged: false,
        }
    }
    pub const fn system(isa: Isa) -> Self {
        Self {
            isa,
            ends_block: true,
            privileged: true,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Entry {
    pub handler: Handler,
    pub meta: Option<Meta>,
}

fn unhandled(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Exec {
    Err(Fault::UD)
}

/// Filled by each family's `register` function.
pub struct TableBuilder {
    entries: Vec<Entry>,
}

impl TableBuilder {
    pub fn add(&mut self, codes: &[Code], handler: Handler, meta: Meta) {
        for &c in codes {
            self.entries[c as usize] = Entry {
                handler,
                meta: Some(meta),
            };
        }
    }
}

/// The process-wide dispatch table.
pub fn table() -> &'static [Entry] {
    static TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut b = TableBuilder {
            entries: vec![
                Entry {
                    handler: unhandled,
                    meta: None
                };
                iced_x86::Code::values().count()
            ],
        };
        crate::handlers::register_all(&mut b);
        b.entries
    })
}

#[must_use]
pub fn entry(code: Code) -> &'static Entry {
    &table()[code as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::CpuidFeature as F;

    /// Is `code` a general-purpose instruction a Pentium Pro runs in 16/32-bit modes?
    fn pentium_pro_integer(code: Code) -> bool {
        let op = code.op_code();
        if !(op.mode16() || op.mode32()) || !op.is_instruction() {
            return false;
        }
        let allowed = [
            F::INTEL8086,
            F::INTEL8086_ONLY,
            F::INTEL186,
            F::INTEL286,
            F::INTEL386,
            F::INTEL486,
            F::CPUID,
            F::TSC,
            F::MSR,
            F::CX8,
            F::CMOV,
            F::MULTIBYTENOP,
        ];
        code.cpuid_features().iter().all(|f| allowed.contains(f))
    }

    /// Forms that are documented to fault or to exist only on other CPUs.
    fn excluded(code: Code) -> bool {
        let name = format!("{code:?}");
        // Real hardware of this class raises #UD for POP CS (8086-only) and MOV CS; the
        // 8086-only and 286/386-only system forms (LOADALL, IBTS/XBTS, UMOV) are not Pentium Pro.
        name.contains("Loadall")
            || name.starts_with("Popw_CS")
            || name.starts_with("Xbts")
            || name.starts_with("Ibts")
            || name.starts_with("Umov")
    }

    #[test]
    fn every_pentium_pro_integer_code_has_a_handler() {
        let set: Vec<Code> = Code::values()
            .filter(|&c| c != Code::INVALID && pentium_pro_integer(c) && !excluded(c))
            .collect();
        // The set must be the real one: ~650 forms, including system instructions.
        assert!(set.len() > 600, "only {} codes in the set", set.len());
        assert!(set.contains(&Code::Lgdt_m1632) && set.contains(&Code::Cmpxchg8b_m64));
        let missing: Vec<String> = set
            .into_iter()
            .filter(|&c| entry(c).meta.is_none())
            .map(|c| format!("{c:?}"))
            .collect();
        println!("{} unhandled Pentium Pro integer codes:", missing.len());
        for m in &missing {
            println!("  {m}");
        }
        assert!(missing.is_empty(), "unhandled: {missing:?}");
    }

    #[test]
    fn table_covers_every_code_slot() {
        assert_eq!(table().len(), Code::values().count());
        assert!(entry(Code::INVALID).meta.is_none());
        assert!(entry(Code::Add_rm8_r8).meta.is_some());
    }
}
