//! Instruction handlers, grouped by family. Each family registers its `Code`s in the
//! dispatch table with metadata.

use crate::table::TableBuilder;

pub(crate) mod alu;
pub(crate) mod bcd;
pub(crate) mod bits;
pub(crate) mod bmi;
pub(crate) mod control;
pub(crate) mod data;
pub(crate) mod far;
pub(crate) mod far64;
pub(crate) mod flagops;
pub(crate) mod gpr_ext;
pub(crate) mod intr;
pub(crate) mod io;
#[cfg(test)]
pub(crate) mod isa_tests;
pub(crate) mod longmode;
pub(crate) mod misc;
pub(crate) mod muldiv;
pub(crate) mod segment;
pub(crate) mod shift;
pub(crate) mod sse;
pub(crate) mod stack;
pub(crate) mod string;
pub(crate) mod system;
pub(crate) mod task_insn;
pub(crate) mod x87;
pub(crate) mod xsave;
#[cfg(test)]
mod xsave_tests;

pub(crate) fn register_all(t: &mut TableBuilder) {
    alu::register(t);
    bcd::register(t);
    bits::register(t);
    control::register(t);
    data::register(t);
    flagops::register(t);
    io::register(t);
    misc::register(t);
    muldiv::register(t);
    shift::register(t);
    stack::register(t);
    string::register(t);
    far::register(t);
    intr::register(t);
    segment::register(t);
    system::register(t);
    task_insn::register(t);
    longmode::register(t);
    x87::register(t);
    sse::register(t);
    bmi::register(t);
    gpr_ext::register(t);
    xsave::register(t);
}
