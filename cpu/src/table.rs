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
