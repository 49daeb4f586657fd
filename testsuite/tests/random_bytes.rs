//! Executes millions of random instruction bytes in every CPU mode and proves that the host
//! never panics: whatever the guest does, faults go to the guest (or shut it down).
//!
//! The slice CI runs is fixed-seed; `NESTOR_RANDOM_INSNS=N` runs a longer one.

use nestor_cpu::state::{attr, cr0, cr4, SegReg, Segment};
use nestor_cpu::testbus::FlatBus;
use nestor_cpu::{Cpu, RunExit};
use std::panic::{catch_unwind, AssertUnwindSafe};

const RAM: usize = 4 << 20;
const EPISODE_BUDGET: u64 = 20_000;

/// xorshift64*: small, deterministic, good enough to make garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Real,
    Protected32,
    Paged32,
    PagedPae,
    V86,
}

fn flat(selector: u16, code: bool) -> Segment {
    let typ = if code {
        attr::CODE | attr::RW
    } else {
        attr::RW
    };
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | typ | attr::ACCESSED | attr::DB | attr::G,
    }
}

/// Random RAM, random registers, and the CPU dropped into `mode`.
fn episode(rng: &mut Rng, mode: Mode) -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(RAM);
    for chunk in bus.ram_mut().chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let mut cpu = Cpu::new();
    for r in cpu.s.gpr.iter_mut().take(8) {
        *r = rng.next() & 0xffff_ffff;
    }
    cpu.s.rip = rng.next() & 0xffff;
    cpu.s.idtr.base = 0;
    cpu.s.idtr.limit = 0x3ff;
    match mode {
        Mode::Real | Mode::V86 => {
            for s in SegReg::ALL {
                cpu.s.seg[s as usize] = Segment::real_mode((rng.next() & 0xffff) as u16);
            }
            if let Mode::V86 = mode {
                cpu.s.cr0 |= cr0::PE;
                cpu.s.rflags |= 1 << 17;
                cpu.s.idtr.limit = 0x7ff;
                cpu.s.gdtr.limit = 0xffff;
                cpu.s.gdtr.base = rng.next() & 0x3f_fff8;
            }
        }
        _ => {
            cpu.s.cr0 |= cr0::PE;
            cpu.s.gdtr.base = rng.next() & 0x3f_fff8;
            cpu.s.gdtr.limit = 0xffff;
            cpu.s.idtr.base = rng.next() & 0x3f_fff8;
            cpu.s.idtr.limit = 0x7ff;
            cpu.s.seg[SegReg::Cs as usize] = flat(0x08, true);
            for s in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
                cpu.s.seg[s as usize] = flat(0x10, false);
            }
            cpu.s.rip = rng.next() & 0x3f_ffff;
            if matches!(mode, Mode::Paged32 | Mode::PagedPae) {
                cpu.s.cr3 = rng.next() & 0x3f_f000;
                cpu.s.cr0 |= cr0::PG;
                cpu.s.cr4 |= cr4::PSE;
            }
            if let Mode::PagedPae = mode {
                cpu.s.cr4 |= cr4::PAE;
            }
        }
    }
    (cpu, bus)
}

#[test]
fn random_bytes_never_panic_the_host() {
    let target: u64 = std::env::var("NESTOR_RANDOM_INSNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let modes = [
        Mode::Real,
        Mode::Protected32,
        Mode::Paged32,
        Mode::PagedPae,
        Mode::V86,
    ];
    let mut rng = Rng(0x6e65_7374_6f72_2121);
    let (mut executed, mut episodes, mut shutdowns, mut halts) = (0u64, 0u64, 0u64, 0u64);
    while executed < target {
        let seed = rng.next();
        let mode = modes[(episodes % modes.len() as u64) as usize];
        let mut erng = Rng(seed | 1);
        let (mut cpu, mut bus) = episode(&mut erng, mode);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let exit = cpu.run(&mut bus, EPISODE_BUDGET);
            (exit, cpu.retired)
        }));
        match outcome {
            Ok((exit, retired)) => {
                executed += retired.max(1);
                shutdowns += u64::from(exit == RunExit::Shutdown);
                halts += u64::from(exit == RunExit::Halted);
            }
            Err(_) => panic!("host panic in episode {episodes} ({mode:?}, seed {seed:#x})"),
        }
        episodes += 1;
    }
    println!(
        "random bytes: {executed} instructions in {episodes} episodes ({shutdowns} triple faults, {halts} halts), no host panic"
    );
}
