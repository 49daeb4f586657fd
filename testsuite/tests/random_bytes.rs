//! Executes millions of random instruction bytes in every CPU mode and proves that the host
//! never panics: whatever the guest does, faults go to the guest (or shut it down).
//!
//! The slice CI runs is fixed-seed; `NESTOR_RANDOM_INSNS=N` runs a longer one.

use nestor_cpu::cpuid::NESTOR64;
use nestor_cpu::state::{attr, cr0, cr4, efer, SegReg, Segment};
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
    /// IA-32e mode with a 64-bit code segment (nestor64 model).
    Long64,
    /// IA-32e mode with a 32-bit code segment.
    Compat,
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
        Mode::Long64 | Mode::Compat => long_mode(rng, &mut cpu, &mut bus, mode),
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

/// IA-32e mode over random memory: PML4[0] (or PML5[0] -> PML4) -> a PDPT whose first four
/// entries are 1 GiB user pages identity-mapping 0..4 GiB, so random code runs; every other
/// entry of the tables is random garbage. A 64-bit IDT whose gates (random type, DPL and IST)
/// lead into random code keeps episodes going through faults. Random CR4 protection bits and
/// 64-bit registers, mostly pointing into RAM.
fn long_mode(rng: &mut Rng, cpu: &mut Cpu, bus: &mut FlatBus, mode: Mode) {
    cpu.model = NESTOR64;
    let la57 = rng.next() & 1 != 0;
    bus.load(0x1000, &(0x2000u64 | 7).to_le_bytes());
    bus.load(0x3000, &(0x1000u64 | 7).to_le_bytes());
    for k in 0..4u64 {
        bus.load(0x2000 + 8 * k, &(k << 30 | 0x87).to_le_bytes());
    }
    // GDT at 0x4000: 8 = 64-bit code, 0x10 = data (DPL 0), 0x18 TSS (16 bytes) at 0x6000.
    bus.load(0x4008, &0x00af_9a00_0000_ffffu64.to_le_bytes());
    bus.load(0x4010, &0x00cf_9200_0000_ffffu64.to_le_bytes());
    bus.load(0x4018, &0x0000_8b00_6000_0067u64.to_le_bytes());
    bus.load(0x4020, &[0; 8]);
    for v in 0..256u64 {
        let off = rng.next() & 0x3f_ffff;
        let typ_dpl_ist = rng.next();
        let lo = (off & 0xffff)
            | 8 << 16
            | (typ_dpl_ist & 7) << 32
            | (0x8e | (typ_dpl_ist >> 3 & 1) | (typ_dpl_ist >> 4 & 3) << 5) << 40
            | (off >> 16) << 48;
        bus.load(0x5000 + 16 * v, &lo.to_le_bytes());
        bus.load(0x5008 + 16 * v, &[0; 8]);
    }
    for k in 0..13u64 {
        bus.load(0x6004 + 8 * k, &(rng.next() & 0x3f_fff0).to_le_bytes());
    }
    for r in cpu.s.gpr.iter_mut() {
        let v = rng.next();
        *r = match v & 3 {
            0 => v,
            1 => v & 0xffff_ffff,
            _ => v & 0x3f_ffff,
        };
    }
    cpu.s.cr0 |= cr0::PE | cr0::PG;
    cpu.s.cr4 = cr4::PAE | (rng.next() & (cr4::SMEP | cr4::SMAP | cr4::FSGSBASE | cr4::PGE));
    if la57 {
        cpu.s.cr4 |= cr4::LA57;
    }
    cpu.s.cr3 = if la57 { 0x3000 } else { 0x1000 };
    cpu.s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
    cpu.s.gdtr.base = 0x4000;
    cpu.s.gdtr.limit = 0x27;
    cpu.s.idtr.base = 0x5000;
    cpu.s.idtr.limit = 0xfff;
    cpu.s.tr = Segment {
        base: 0x6000,
        limit: 0x67,
        selector: 0x18,
        attr: attr::P | 11,
    };
    cpu.s.msr.lstar = rng.next() & 0x3f_ffff;
    cpu.s.msr.star = rng.next();
    cpu.s.msr.sysenter_cs = rng.next() & 0xffff;
    let mut cs = flat(0x08, true);
    if let Mode::Long64 = mode {
        cs.attr = (cs.attr & !attr::DB) | attr::L;
    }
    cpu.s.seg[SegReg::Cs as usize] = cs;
    for s in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        cpu.s.seg[s as usize] = flat(0x10, false);
    }
    cpu.s.rip = rng.next() & 0x3f_ffff;
}

#[test]
fn random_bytes_never_panic_the_host() {
    let target: u64 = std::env::var("NESTOR_RANDOM_INSNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let modes = [
        Mode::Real,
        Mode::Protected32,
        Mode::Paged32,
        Mode::PagedPae,
        Mode::V86,
        Mode::Long64,
        Mode::Compat,
    ];
    let mut rng = Rng(0x6e65_7374_6f72_2121);
    let (mut executed, mut episodes, mut shutdowns, mut halts) = (0u64, 0u64, 0u64, 0u64);
    let mut per_mode = [0u64; 7];
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
                per_mode[(episodes % modes.len() as u64) as usize] += retired;
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
    for (m, n) in modes.iter().zip(per_mode) {
        println!("  {m:?}: {n} instructions");
    }
}
