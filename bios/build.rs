//! Assembles the BIOS ROM (`src/rom/`) into `OUT_DIR/bios.rom`, and writes the offsets the
//! host side needs (stub addresses for the interrupt vector table, entry points, strings)
//! to `OUT_DIR/layout.rs`.

#[path = "src/rom/mod.rs"]
mod rom;

use std::error::Error;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/rom");
    println!("cargo:rerun-if-changed=src/services.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let rom = rom::build()?;
    fs::write(out_dir.join("bios.rom"), &rom.image)?;
    fs::write(out_dir.join("layout.rs"), rom.layout_rs)?;
    Ok(())
}
