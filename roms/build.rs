//! Assembles the guest programs of `src/programs/` into 64 KiB ROM images in `OUT_DIR`.
//!
//! Each program module returns its image and the number of instructions it executes from
//! reset to its last `OUT`, as measured on the emitted code; that number is written next to
//! the image (`<name>.insns`) so that a unit test can check the constants in `src/lib.rs`.

#[path = "src/programs/mod.rs"]
mod programs;

use std::error::Error;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/programs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    for (name, build) in programs::ALL {
        let program = build().map_err(|e| format!("assembling {name}: {e}"))?;
        fs::write(out_dir.join(format!("{name}.rom")), &program.image)?;
        let insns = program
            .insns
            .map_or_else(|| "None".to_string(), |n| format!("Some({n})"));
        fs::write(out_dir.join(format!("{name}.insns")), insns)?;
    }
    Ok(())
}
