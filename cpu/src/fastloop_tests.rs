//! The fast paths against the full ones they stand in for: the run loop against stepping
//! with full fetches and per-instruction polling, the operand table against the register
//! decoding it replaced, the inline segment check against the full one.

use crate::bus::{Bus, PageTarget};
use crate::operand::gpr_ref;
use crate::state::{attr, cr0, cr4, efer, rflags, CpuState, SegReg, Segment};
use crate::testbus::FlatBus;
use crate::{Cpu, RunExit};
use iced_x86::code_asm::*;
use iced_x86::Register;

/// Writing this port asserts INTR with the byte written as the vector.
const PORT_IRQ: u16 = 0x80;
/// Writing this port makes the bus ask the CPU to stop.
const PORT_STOP: u16 = 0xf4;

/// A flat bus whose ports raise an interrupt or a stop request, as devices do.
struct DeviceBus(FlatBus);

impl Bus for DeviceBus {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        self.0.page(page_addr)
    }
    fn map_generation(&self) -> u64 {
        self.0.map_generation()
    }
    fn a20_mask(&self) -> u64 {
        self.0.a20_mask()
    }
    fn mmio_read(&mut self, paddr: u64, data: &mut [u8]) {
        self.0.mmio_read(paddr, data);
    }
    fn mmio_write(&mut self, paddr: u64, data: &[u8]) {
        self.0.mmio_write(paddr, data);
    }
    fn sync_retired(&mut self, retired: u64) {
        self.0.sync_retired(retired);
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.0.io_in(port, size)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        match port {
            PORT_IRQ => self.0.pending_irq = Some(value as u8),
            PORT_STOP => self.0.stop = true,
            _ => {}
        }
        self.0.io_out(port, size, value);
    }
    fn interrupt_pending(&mut self) -> bool {
        self.0.interrupt_pending()
    }
    fn interrupt_ack(&mut self) -> u8 {
        self.0.interrupt_ack()
    }
    fn stop_requested(&self) -> bool {
        self.0.stop_requested()
    }
}

/// Real mode, CS = DS = SS = 0, code at 0x1000, stack at 0x8000, IVT entry 0x20 → 0:0x3000.
fn real_mode(code: &[u8]) -> (Cpu, DeviceBus) {
    let mut bus = FlatBus::new(1 << 20);
    bus.load(0x1000, code);
    bus.load(0x20 * 4, &[0x00, 0x30, 0x00, 0x00]);
    let mut cpu = Cpu::new();
    for s in SegReg::ALL {
        cpu.s.seg[s as usize] = Segment::real_mode(0);
    }
    cpu.s.gpr[4] = 0x8000;
    cpu.s.rip = 0x1000;
    (cpu, DeviceBus(bus))
}

fn asm16(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(16).unwrap();
    f(&mut a).unwrap();
    a.assemble(0x1000).unwrap()
}

/// The reference: one instruction at a time, every fetch a full one, every poll made.
fn step_reference(cpu: &mut Cpu, bus: &mut dyn Bus, budget: u64) -> RunExit {
    let end = cpu.retired + budget;
    loop {
        if cpu.s.events.shutdown {
            return RunExit::Shutdown;
        }
        if bus.stop_requested() {
            return RunExit::Stopped;
        }
        if cpu.retired >= end {
            return RunExit::Budget;
        }
        cpu.window = None;
        if !cpu.step(bus) {
            return RunExit::Halted;
        }
    }
}

/// Run the same machine both ways and demand the same exit, state and memory.
fn agree(make: impl Fn() -> (Cpu, DeviceBus), budget: u64) -> (Cpu, DeviceBus, RunExit) {
    let (mut fast, mut fast_bus) = make();
    let fast_exit = fast.run(&mut fast_bus, budget);
    let (mut slow, mut slow_bus) = make();
    let slow_exit = step_reference(&mut slow, &mut slow_bus, budget);
    assert_eq!(fast_exit, slow_exit, "exit");
    assert_eq!(fast.retired, slow.retired, "retired");
    assert_eq!(fast.state(), slow.state(), "state");
    assert!(fast_bus.0.ram() == slow_bus.0.ram(), "memory");
    assert_eq!(
        fast_bus.0.port_writes, slow_bus.0.port_writes,
        "port writes"
    );
    (fast, fast_bus, fast_exit)
}

#[test]
fn run_matches_stepping_on_an_integer_loop() {
    let code = asm16(|a| {
        let mut top = a.create_label();
        a.mov(cx, 500u32)?;
        a.set_label(&mut top)?;
        a.add(ax, cx)?;
        a.xor(bx, ax)?;
        a.rol(bx, 3u32)?;
        a.mov(word_ptr(0x2000), bx)?;
        a.add(dx, word_ptr(0x2000))?;
        a.dec(cx)?;
        a.jnz(top)?;
        a.hlt()
    });
    let (cpu, _, exit) = agree(|| real_mode(&code), 1_000_000);
    assert_eq!(exit, RunExit::Halted);
    assert_eq!(cpu.retired, 1 + 500 * 7 + 1);
}

#[test]
fn an_interrupt_raised_by_an_out_is_taken_at_the_next_boundary() {
    // sti; nop; mov al,20h; out 80h,al; inc bx; inc bx; ... ; the handler at 0x3000 halts.
    let code = asm16(|a| {
        a.sti()?;
        a.nop()?;
        a.mov(al, 0x20u32)?;
        a.out(0x80u32, al)?;
        for _ in 0..10 {
            a.inc(bx)?;
        }
        a.hlt()
    });
    let make = || {
        let (cpu, mut bus) = real_mode(&code);
        bus.0.load(0x3000, &[0xf4]);
        (cpu, bus)
    };
    let (cpu, _, exit) = agree(make, 1000);
    assert_eq!(exit, RunExit::Halted);
    assert_eq!(cpu.s.gpr[3] & 0xffff, 0, "no INC ran before the interrupt");
    assert_eq!(cpu.s.rip, 0x3001, "halted in the handler");
}

#[test]
fn a_stop_request_ends_the_run_after_the_out() {
    let code = asm16(|a| {
        a.mov(al, 1u32)?;
        a.out(0xf4u32, al)?;
        a.inc(bx)?;
        a.hlt()
    });
    let (cpu, _, exit) = agree(|| real_mode(&code), 1000);
    assert_eq!(exit, RunExit::Stopped);
    assert_eq!(cpu.retired, 2);
}

#[test]
fn code_rewritten_on_its_own_page_runs_as_rewritten() {
    // The loop patches the immediate of its own `add bx, imm16` each trip.
    let code = asm16(|a| {
        let mut top = a.create_label();
        a.mov(cx, 20u32)?;
        a.set_label(&mut top)?;
        a.add(bx, 0x1111u32)?;
        a.mov(word_ptr(0x1000 + 5), cx)?;
        a.loop_(top)
    });
    let (cpu, _, _) = agree(|| real_mode(&code), 1 + 20 * 3);
    // 0x1111 once, then 20, 19, ..., 2 (the patch lands before the next trip).
    let expected = 0x1111 + (2..=20).sum::<u64>();
    assert_eq!(cpu.s.gpr[3] & 0xffff, expected);
}

/// GDT at 0x500: 0x08 flat 32-bit code, 0x10 flat data, 0x18 16-bit code (base 0).
fn protected_mode(code: &[(u64, Vec<u8>)]) -> (Cpu, DeviceBus) {
    let mut bus = FlatBus::new(1 << 20);
    let gdt: [u64; 4] = [
        0,
        0x00cf_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x0000_9b00_0000_ffff,
    ];
    for (k, d) in gdt.iter().enumerate() {
        bus.load(0x500 + 8 * k as u64, &d.to_le_bytes());
    }
    for (at, bytes) in code {
        bus.load(*at, bytes);
    }
    let mut cpu = Cpu::new();
    cpu.s.cr0 |= cr0::PE;
    cpu.s.gdtr.base = 0x500;
    cpu.s.gdtr.limit = 31;
    let flat = |selector, kind| Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | attr::ACCESSED | attr::G | attr::DB | kind,
    };
    cpu.s.seg[SegReg::Cs as usize] = flat(0x08, attr::CODE | attr::RW);
    for s in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        cpu.s.seg[s as usize] = flat(0x10, attr::RW);
    }
    cpu.s.gpr[4] = 0x8000;
    cpu.s.rip = 0x1000;
    (cpu, DeviceBus(bus))
}

#[test]
fn the_same_bytes_decode_anew_after_a_switch_to_16_bit_code_on_the_page() {
    // 0x1000 (32-bit): run the shared bytes at 0x1100, then far-jump to 0x1080 as 16-bit
    // code, which runs the same bytes at 0x1100 again and halts.
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(esi, 0x1100u32).unwrap();
    a.call(esi).unwrap();
    let mut entry32 = a.assemble(0x1000).unwrap();
    // jmp far 0x18:0x1080
    entry32.extend_from_slice(&[0xea, 0x80, 0x10, 0x00, 0x00, 0x18, 0x00]);
    let mut b = CodeAssembler::new(16).unwrap();
    b.mov(si, 0x1100u32).unwrap();
    b.call(si).unwrap();
    b.hlt().unwrap();
    let entry16 = b.assemble(0x1080).unwrap();
    // 32-bit: mov ax, 0xC341 ; nop ; ret.  16-bit: mov eax, 0xC390C341 ; ret.
    let shared = vec![0x66, 0xb8, 0x41, 0xc3, 0x90, 0xc3, 0xc3];
    let make = || {
        protected_mode(&[
            (0x1000, entry32.clone()),
            (0x1080, entry16.clone()),
            (0x1100, shared.clone()),
        ])
    };
    let (cpu, _, exit) = agree(make, 100);
    assert_eq!(exit, RunExit::Halted);
    assert_eq!(cpu.s.seg[SegReg::Cs as usize].selector, 0x18);
    assert_eq!(cpu.s.gpr[0], 0xc390_c341, "the 16-bit decoding ran last");
}

/// 32-bit paging with linear 0x400000 mapped to physical 0x5000; the code at physical 0x1000.
fn paged(code: &[u8]) -> (Cpu, DeviceBus) {
    let (mut cpu, mut bus) = protected_mode(&[(0x1000, code.to_vec())]);
    let pd = 0x10_000u64;
    let pt = 0x11_000u64;
    bus.0.load(pd, &((pt | 3) as u32).to_le_bytes());
    bus.0
        .load(pd + 4, &((0x12_000u64 | 3) as u32).to_le_bytes());
    for k in 0..256u64 {
        bus.0
            .load(pt + 4 * k, &(((k << 12) | 3) as u32).to_le_bytes());
    }
    // The second table maps 0x400000 → 0x5000.
    bus.0.load(0x12_000, &(0x5003u32).to_le_bytes());
    bus.0.load(0x5000, &[0xb8, 0x11, 0x00, 0x00, 0x00, 0xc3]); // mov eax, 0x11 ; ret
    bus.0.load(0x6000, &[0xb8, 0x22, 0x00, 0x00, 0x00, 0xc3]); // mov eax, 0x22 ; ret
    cpu.s.cr3 = pd;
    cpu.s.cr0 |= cr0::PG;
    (cpu, bus)
}

#[test]
fn code_remapped_under_its_linear_address_runs_from_the_new_page() {
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(esi, 0x40_0000u32).unwrap();
    a.call(esi).unwrap();
    a.mov(ebx, eax).unwrap();
    // Point the PTE at 0x6000, INVLPG, call the same linear address again.
    a.mov(dword_ptr(0x12_000), 0x6003u32).unwrap();
    a.invlpg(byte_ptr(esi)).unwrap();
    a.call(esi).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x1000).unwrap();
    let (cpu, _, exit) = agree(|| paged(&code), 100);
    assert_eq!(exit, RunExit::Halted);
    assert_eq!(cpu.s.gpr[3], 0x11);
    assert_eq!(cpu.s.gpr[0], 0x22, "the second call ran the remapped page");
}

#[test]
fn register_table_agrees_with_register_decoding() {
    let mut s = CpuState::power_on();
    for (k, r) in s.gpr.iter_mut().enumerate() {
        *r = 0x8877_6655_4433_2211u64.rotate_left(8 * k as u32) ^ k as u64;
    }
    for (k, sr) in s.seg.iter_mut().enumerate() {
        sr.selector = 0x1000 + k as u16;
    }
    for r in Register::values() {
        let mut cpu = Cpu::new();
        cpu.s = s.clone();
        let expected = match gpr_ref(r) {
            Some(g) if g.high8 => (s.gpr[g.index] >> 8) & 0xff,
            Some(g) => s.gpr[g.index] & crate::flags::size_mask(g.size),
            None => SegReg::from_iced(r).map_or(0, |sr| u64::from(s.seg[sr as usize].selector)),
        };
        assert_eq!(cpu.reg(r), expected, "reading {r:?}");
        let v = 0xfedc_ba98_7654_3210u64;
        let mut want = s.gpr;
        if let Some(g) = gpr_ref(r) {
            let old = want[g.index];
            want[g.index] = match (g.size, g.high8) {
                (1, true) => (old & !0xff00) | ((v & 0xff) << 8),
                (1, false) => (old & !0xff) | (v & 0xff),
                (2, _) => (old & !0xffff) | (v & 0xffff),
                (4, _) => v & 0xffff_ffff,
                _ => v,
            };
        }
        cpu.set_reg(r, v);
        assert_eq!(cpu.s.gpr, want, "writing {r:?}");
    }
}

#[test]
fn inline_segment_check_agrees_with_the_full_check() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let attrs = [
        attr::P | attr::S | attr::RW,
        attr::P | attr::S | attr::RW | attr::DB,
        attr::P | attr::S,
        attr::P | attr::S | attr::CODE,
        attr::P | attr::S | attr::CODE | attr::RW,
        attr::P | attr::S | attr::DC | attr::RW,
        attr::P | attr::S | attr::DC | attr::RW | attr::DB,
        attr::S | attr::RW,
    ];
    let (mut hits, mut total) = (0, 0);
    for round in 0..40_000 {
        let mut s = CpuState::power_on();
        match round % 4 {
            0 => {}
            1 => s.cr0 |= cr0::PE,
            2 => {
                s.cr0 |= cr0::PE;
                s.rflags |= rflags::VM;
            }
            _ => {
                s.cr0 |= cr0::PE | cr0::PG;
                s.cr4 |= cr4::PAE;
                s.efer |= efer::LME | efer::LMA;
                s.seg[SegReg::Cs as usize].attr |= attr::L;
            }
        }
        let seg = SegReg::ALL[(next() % 6) as usize];
        let limits = [0xffff, 0xffff_ffff, next() as u32 & 0xf_ffff];
        s.seg[seg as usize] = Segment {
            base: next()
                & if round % 3 == 0 {
                    0xffff_ffff
                } else {
                    u64::MAX
                },
            limit: limits[(next() % 3) as usize],
            selector: 0x10,
            attr: attrs[(next() % attrs.len() as u64) as usize]
                | (s.seg[seg as usize].attr & attr::L),
        };
        let off = match next() % 4 {
            0 => next() & 0xffff,
            1 => next() & 0xffff_ffff,
            2 => u64::from(s.seg[seg as usize].limit).wrapping_sub(next() % 10),
            _ => next(),
        };
        let size = [1u8, 2, 4, 8, 6, 10, 16][(next() % 7) as usize];
        let write = next() % 2 == 0;
        let mut cpu = Cpu::new();
        cpu.s = s;
        let full = cpu.seg_linear_full(seg, off, size, write);
        total += 1;
        if let Some(lin) = cpu.seg_linear_fast(seg, off, size, write) {
            hits += 1;
            assert_eq!(
                full,
                Ok(lin),
                "{seg:?} {:?} off {off:#x} size {size}",
                cpu.s.seg[seg as usize]
            );
        }
    }
    assert!(
        hits > total / 4,
        "the inline check decided only {hits} of {total}"
    );
}

#[test]
fn a_new_cs_base_on_the_same_page_fetches_by_the_new_linear_address() {
    // 0000:1000 calls both subroutines (so both are decoded), then jumps to 0001:1010, which
    // is linear 0x1020: the `add`, not the `inc` a stale window would find at offset 0x10.
    let mut code = vec![0x90; 0x30];
    code[..11].copy_from_slice(&[
        0xe8, 0x0d, 0x00, // call 0x1010
        0xe8, 0x1a, 0x00, // call 0x1020
        0xea, 0x10, 0x10, 0x01, 0x00, // jmp far 0001:1010
    ]);
    code[0x10..0x12].copy_from_slice(&[0x43, 0xc3]); // inc bx ; ret
    code[0x20..0x24].copy_from_slice(&[0x83, 0xc3, 0x10, 0xc3]); // add bx, 10h ; ret
    let make = || {
        let (cpu, mut bus) = real_mode(&code);
        bus.0.load(0x10, &[0xf4]); // the RET after the jump pops 0: 0001:0000 halts
        (cpu, bus)
    };
    let (cpu, _, exit) = agree(make, 100);
    assert_eq!(exit, RunExit::Halted);
    assert_eq!(cpu.s.gpr[3] & 0xffff, 1 + 0x10 + 0x10);
}
