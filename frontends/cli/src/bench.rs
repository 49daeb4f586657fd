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
    /// Integer loop in 64-bit long mode (x86-64 CPU model).
    Int64,
    /// SSE/SSE2 loop in 64-bit long mode (x86-64 CPU model).
    Sse64,
    All,
}

/// The ROM images built into the binary.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BuiltinRom {
    Demo,
    BenchInt,
    BenchString,
    BenchInt64,
    BenchSse64,
}

impl BuiltinRom {
    pub fn image(self) -> &'static [u8] {
        match self {
            Self::Demo => nestor_roms::demo(),
            Self::BenchInt => nestor_roms::bench_int(),
            Self::BenchString => nestor_roms::bench_string(),
            Self::BenchInt64 => nestor_roms::bench_int64(),
            Self::BenchSse64 => nestor_roms::bench_sse64(),
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

/// One benchmark ROM and the CPU model it needs.
struct Bench {
    name: &'static str,
    rom: &'static [u8],
    insns: u64,
    cpu: &'static str,
}

fn measure(bench: &Bench, repeat: u32) -> anyhow::Result<()> {
    let Bench {
        name,
        rom,
        insns: expected_insns,
        cpu,
    } = *bench;
    let mut best = f64::INFINITY;
    let mut retired = 0;
    for _ in 0..repeat.max(1) {
        let mut config = MachineConfig::new(rom.to_vec(), 16);
        config.cpu_model = cpu.to_string();
        let mut m = Machine::new(config)?;
        let t = Instant::now();
        let exit = m.run(Some(expected_insns.saturating_mul(2)))?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            exit == MachineExit::PowerOff,
            "{name}: the benchmark did not finish ({exit:?})"
        );
        retired = m.vcpu.retired();
        anyhow::ensure!(
            retired == expected_insns,
            "{name}: retired {retired} instructions, the ROM promises {expected_insns}"
        );
        best = best.min(secs);
    }
    println!(
        "{name:<8} {retired:>12} instructions  {best:>8.3} s  {:>8.1} MIPS",
        retired as f64 / best / 1e6
    );
    Ok(())
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let benches = [
        (
            Workload::Int,
            Bench {
                name: "int",
                rom: nestor_roms::bench_int(),
                insns: nestor_roms::BENCH_INT_INSNS,
                cpu: "pentium-pro",
            },
        ),
        (
            Workload::String,
            Bench {
                name: "string",
                rom: nestor_roms::bench_string(),
                insns: nestor_roms::BENCH_STRING_INSNS,
                cpu: "pentium-pro",
            },
        ),
        (
            Workload::Int64,
            Bench {
                name: "int64",
                rom: nestor_roms::bench_int64(),
                insns: nestor_roms::BENCH_INT64_INSNS,
                cpu: "nestor64",
            },
        ),
        (
            Workload::Sse64,
            Bench {
                name: "sse64",
                rom: nestor_roms::bench_sse64(),
                insns: nestor_roms::BENCH_SSE64_INSNS,
                cpu: "nestor64",
            },
        ),
    ];
    for (workload, bench) in &benches {
        let wanted = matches!(args.workload, Workload::All)
            || std::mem::discriminant(&args.workload) == std::mem::discriminant(workload);
        if wanted {
            measure(bench, args.repeat)?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_mode_machine(rom: &[u8]) -> Machine {
        let mut config = MachineConfig::new(rom.to_vec(), 16);
        config.cpu_model = "nestor64".to_string();
        Machine::new(config).expect("machine")
    }

    #[test]
    fn long_mode_benchmarks_loop_in_64_bit_mode() {
        for (name, rom) in [
            ("int64", nestor_roms::bench_int64()),
            ("sse64", nestor_roms::bench_sse64()),
        ] {
            let mut m = long_mode_machine(rom);
            let exit = m.run(Some(1_000_000)).expect("run");
            assert_eq!(exit, MachineExit::BudgetExhausted, "{name}");
            let s = m.vcpu.state();
            assert!(s.long64(), "{name}: not in 64-bit mode");
            assert!(
                (0xF_4000..0xF_8000).contains(&s.rip),
                "{name}: RIP {:#x} is not in the 64-bit code",
                s.rip
            );
        }
    }

    #[test]
    fn int64_benchmark_retires_the_promised_count_and_powers_off() {
        let mut m = long_mode_machine(nestor_roms::bench_int64());
        let exit = m
            .run(Some(nestor_roms::BENCH_INT64_INSNS * 2))
            .expect("run");
        assert_eq!(exit, MachineExit::PowerOff);
        assert_eq!(m.vcpu.retired(), nestor_roms::BENCH_INT64_INSNS);
    }
}
