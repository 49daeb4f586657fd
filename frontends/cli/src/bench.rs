//! `nestor bench`: run the built-in benchmark ROMs and report MIPS.

use clap::{Args, ValueEnum};
use nestor_machine::{Machine, MachineConfig, MachineExit};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Workload {
    /// Tight integer loop (register ALU, shifts, branches).
    Int,
    /// String and memory-heavy loop (REP MOVS/STOS/CMPS, memory operands).
    String,
    All,
}

/// The ROM images built into the binary.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BuiltinRom {
    Demo,
    BenchInt,
    BenchString,
}

impl BuiltinRom {
    pub fn image(self) -> &'static [u8] {
        match self {
            Self::Demo => nestor_roms::demo(),
            Self::BenchInt => nestor_roms::bench_int(),
            Self::BenchString => nestor_roms::bench_string(),
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(value_enum, default_value_t = Workload::All)]
    workload: Workload,
    /// Repetitions of each workload; the best run is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
}

fn measure(name: &str, rom: &[u8], expected_insns: u64, repeat: u32) -> anyhow::Result<()> {
    let mut best = f64::INFINITY;
    let mut retired = 0;
    for _ in 0..repeat.max(1) {
        let mut m = Machine::new(MachineConfig::new(rom.to_vec(), 16))?;
        let t = Instant::now();
        let exit = m.run(Some(expected_insns.saturating_mul(2)))?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            exit == MachineExit::PowerOff,
            "{name}: the benchmark did not finish ({exit:?})"
        );
        retired = m.vcpu.retired();
        best = best.min(secs);
    }
    println!(
        "{name:<8} {retired:>12} instructions  {best:>8.3} s  {:>8.1} MIPS",
        retired as f64 / best / 1e6
    );
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    if matches!(args.workload, Workload::Int | Workload::All) {
        measure(
            "int",
            nestor_roms::bench_int(),
            nestor_roms::BENCH_INT_INSNS,
            args.repeat,
        )?;
    }
    if matches!(args.workload, Workload::String | Workload::All) {
        measure(
            "string",
            nestor_roms::bench_string(),
            nestor_roms::BENCH_STRING_INSNS,
            args.repeat,
        )?;
    }
    Ok(0)
}
