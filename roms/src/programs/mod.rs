//! Sources of the guest programs. This module is compiled into the build script only
//! (`build.rs` includes it with `#[path]`); the library exposes the assembled images.
//!
//! Every program is a complete 64 KiB firmware image: there is no BIOS underneath. The
//! shared layout, start-up code, serial output and power-off live in [`common`]; each program
//! module holds the part that makes it what it is.

pub mod bench_int;
pub mod bench_long;
pub mod bench_string;
pub mod common;
pub mod demo;
pub mod mouse_probe;
#[path = "../tetris.rs"]
pub mod tetris;
#[path = "../tetris_draw.rs"]
pub mod tetris_draw;
// The build script uses only part of the layout; the library (and its tests, which include
// this module again) export it too.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../tetris_layout.rs"]
pub mod tetris_layout;

use std::fmt;

use iced_x86::IcedError;

/// An assembled program.
pub struct Program {
    /// The 64 KiB ROM image.
    pub image: Vec<u8>,
    /// The number of instructions executed from the reset vector up to and including the
    /// last `OUT` (the final byte written to the power-off port), when that number is fixed
    /// by the program's structure; `None` for programs that do not promise one.
    pub insns: Option<u64>,
}

/// Why a program could not be assembled.
#[derive(Debug)]
pub enum GenError {
    /// iced-x86 rejected an instruction or could not encode the block.
    Asm(IcedError),
    /// A piece does not fit where the layout puts it, or a measured count is not what the
    /// program's arithmetic expects.
    Layout(String),
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::Asm(e) => write!(f, "assembler: {e}"),
            GenError::Layout(s) => write!(f, "layout: {s}"),
        }
    }
}

impl std::error::Error for GenError {}

impl From<IcedError> for GenError {
    fn from(e: IcedError) -> Self {
        GenError::Asm(e)
    }
}

pub type GenResult<T> = Result<T, GenError>;

/// A program's generator.
pub type Build = fn() -> GenResult<Program>;

/// Every program, by the file name its image gets in `OUT_DIR` (`<name>.rom`).
pub const ALL: &[(&str, Build)] = &[
    ("demo", demo::build),
    ("bench_int", bench_int::build),
    ("bench_string", bench_string::build),
    ("tetris", tetris::build),
    ("bench_int64", bench_long::build_int),
    ("bench_sse64", bench_long::build_sse),
    ("mouse_probe", mouse_probe::build),
];
