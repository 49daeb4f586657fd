//! Nestor's conformance test support.
//!
//! For now: reading the SingleStepTests 80286 suite (`../shared/testdata/sst80286/`,
//! relative to the project root), hardware-recorded single-instruction tests in the MOO
//! format. [`moo`] parses the files, the revocation list and the directory listing;
//! [`flags`] says which flags each instruction form leaves undefined. Running the tests on
//! the CPU is left to the runner that wires this to `nestor-cpu`.

pub mod differential;
pub mod flags;
pub mod moo;
pub mod regs;

pub use flags::{flags_mask, undefined_flags, Form};
pub use moo::{
    list_test_files, load_revocation_list, parse_revocation_list, CpuSnapshot, MooError,
    MooException, MooFile, MooMeta, MooTest,
};
pub use regs::{Reg16, Reg32, Regs16, Regs32};

use std::path::PathBuf;

/// The 80286 real-mode suite's directory, `<project root>/../shared/testdata/sst80286/v1_real_mode`.
#[must_use]
pub fn sst80286_real_mode_dir() -> PathBuf {
    sst80286_dir().join("v1_real_mode")
}

/// The 80286 suite's directory, `<project root>/../shared/testdata/sst80286`.
#[must_use]
pub fn sst80286_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/sst80286")
}
