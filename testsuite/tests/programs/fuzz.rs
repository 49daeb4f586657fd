//! Random descriptor tables and random system instructions (far transfers, IRET, INT, segment
//! and table loads, control registers) in protected mode: whatever the tables hold, the host
//! never panics and every fault goes to the guest. `NESTOR_SYSTEM_FUZZ=N` runs N episodes.

use super::*;
use nestor_cpu::state::{attr, Segment};
use nestor_cpu::testbus::FlatBus;
use nestor_cpu::Cpu;
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A descriptor that is often plausible: present, small types, flat-ish bases and limits.
fn random_descriptor(rng: &mut Rng) -> u64 {
    let mut d = rng.next();
    if rng.below(4) != 0 {
        d |= 1 << 47; // present
    }
    if rng.below(3) == 0 {
        // A gate to a low selector with a low offset.
        d = (d & !0xffff_0000) | (rng.below(0x80) << 16);
        d &= !(0xffff << 48);
    } else {
        d &= !(0xff << 56); // base below 16 MiB
    }
    d
}

/// Bytes of one random system instruction.
fn random_instruction(rng: &mut Rng) -> Vec<u8> {
    let sel = (rng.below(0x90) as u16).to_le_bytes();
    let off = (rng.below(0x2_0000) as u32).to_le_bytes();
    let modrm = 0xc0 | (rng.below(6) as u8) << 3 | rng.below(8) as u8;
    match rng.below(14) {
        0 => vec![0xea, off[0], off[1], off[2], off[3], sel[0], sel[1]],
        1 => vec![0x9a, off[0], off[1], off[2], off[3], sel[0], sel[1]],
        2 => vec![0xcb],
        3 => vec![0xca, 8, 0],
        4 => vec![0xcf],
        5 => vec![0x66, 0xcf],
        6 => vec![0xcd, rng.below(256) as u8],
        7 => vec![0x8e, modrm],
        8 => vec![0x0f, 0x00, 0xd0 | rng.below(0x10) as u8], // LLDT/LTR r16
        9 => vec![0x0f, 0x02 + rng.below(2) as u8, modrm],   // LAR/LSL
        10 => vec![
            0x0f,
            0x22,
            0xc0 | (rng.below(5) as u8) << 3 | rng.below(8) as u8,
        ],
        11 => vec![0x0f, 0x23, modrm],
        12 => vec![0x1f + 8 * rng.below(3) as u8], // POP ES/SS/DS
        _ => vec![
            0xb8 + rng.below(8) as u8,
            sel[0],
            sel[1],
            rng.below(4) as u8,
            0,
        ], // MOV r32, imm
    }
}

fn episode(rng: &mut Rng) -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(4 << 20);
    for n in 1..0x20u64 {
        let d = random_descriptor(rng);
        bus.load(GDT + 8 * n, &d.to_le_bytes());
    }
    bus.load(GDT + 8, &code32(0).to_le_bytes());
    bus.load(GDT + 16, &data32(0).to_le_bytes());
    for v in 0..256u64 {
        // Mostly working gates into the random code, so that faults keep it running.
        let d = if rng.below(4) == 0 {
            random_descriptor(rng)
        } else {
            let typ = [ty::INT32, ty::TRAP32, ty::INT16, ty::TASK][rng.below(4) as usize];
            gate(
                typ,
                rng.below(4) as u8,
                0x08,
                (CODE32 + rng.below(0x800)) as u32,
                0,
            )
        };
        bus.load(IDT + 8 * v, &d.to_le_bytes());
    }
    for k in 0..0x40u64 {
        bus.load(TSS0 + 8 * k, &rng.next().to_le_bytes());
    }
    bus.load(TSS0 + 4, &0x9_0000u32.to_le_bytes());
    bus.load(TSS0 + 8, &0x10u32.to_le_bytes());
    let mut code = Vec::new();
    while code.len() < 0x800 {
        code.extend(random_instruction(rng));
    }
    bus.load(CODE32, &code);
    let mut cpu = Cpu::new();
    cpu.s.cr0 |= cr0::PE;
    cpu.s.gdtr.base = GDT;
    cpu.s.gdtr.limit = 0xff;
    cpu.s.idtr.base = IDT;
    cpu.s.idtr.limit = 0x7ff;
    let flat = |selector, typ| Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | typ | attr::ACCESSED | attr::DB | attr::G,
    };
    for s in [SegReg::Es, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
        cpu.s.seg[s as usize] = flat(0x10, attr::RW);
    }
    cpu.s.seg[SegReg::Cs as usize] = flat(0x08, attr::CODE | attr::RW);
    cpu.s.tr = Segment {
        base: TSS0,
        limit: 0x1ff,
        selector: 0x18,
        attr: attr::P | 11,
    };
    cpu.s.rip = CODE32;
    cpu.s.gpr[4] = 0x9_0000;
    for r in [0, 1, 2, 3, 5, 6, 7] {
        cpu.s.gpr[r] = rng.below(0x100);
    }
    (cpu, bus)
}

#[test]
fn random_system_instructions_never_panic_the_host() {
    let episodes: u64 = std::env::var("NESTOR_SYSTEM_FUZZ")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut rng = Rng(0x7379_7374_656d_2121);
    let mut retired = 0;
    for n in 0..episodes {
        let (mut cpu, mut bus) = episode(&mut rng);
        let ok = catch_unwind(AssertUnwindSafe(|| cpu.run(&mut bus, 400))).is_ok();
        assert!(ok, "host panic in episode {n}");
        retired += cpu.retired;
    }
    println!("system fuzz: {episodes} episodes, {retired} instructions");
}
