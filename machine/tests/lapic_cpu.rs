//! The local APIC registers the CPU reaches without MMIO, on the whole board: CR8 as the
//! task priority (SDM 10.8.6) and the TSC-deadline timer (SDM 10.5.4.1), driven by 64-bit
//! guest code started directly in long mode, with the deterministic clock.

use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;
use nestor_cpu::state::{attr, cr0, cr4, efer};
use nestor_cpu::{CpuState, SegReg, Segment};
use nestor_machine::{Machine, MachineConfig, MachineExit};

const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const IDT: u64 = 0x3000;
const GDT: u64 = 0x4000;
const STACK: u64 = 0x9000;
const CODE: u64 = 0x10000;
/// Results the guest stores, 8 bytes each.
const OUT: u64 = 0x20000;
/// Interrupts taken by the fixed-vector handler.
const COUNT: u64 = 0x21000;
/// RIP the first interrupt returned to, and the TSC at handler entry.
const IRQ_RIP: u64 = 0x21008;
const IRQ_TSC: u64 = 0x21010;
/// #GP taken: error code.
const GP_CODE: u64 = 0x21018;

/// The APIC window's base, held in R15 by the guest code (above the reach of a disp32).
const APIC: u64 = 0xfee0_0000;
const TPR: i32 = 0x80;
const EOI: i32 = 0xb0;
const SVR: i32 = 0xf0;
const ICR_LOW: i32 = 0x300;
const LVT_TIMER: i32 = 0x320;
const TSC_DEADLINE: u32 = 0x6e0;
/// LVT timer mode bits 18:17 = 10b.
const TSC_DEADLINE_MODE: u32 = 2 << 17;
/// ICR destination shorthand "self".
const SELF_IPI: u32 = 1 << 18;

const VECTOR: u8 = 0x45;
const TIMER_VECTOR: u8 = 0x50;

/// A long-mode CPU at CPL 0: 0..4 GiB identity-mapped with 1 GiB pages, RIP = `CODE`.
fn long_mode_state() -> CpuState {
    let mut s = CpuState::power_on();
    s.cr0 = cr0::PE | cr0::PG | cr0::ET | cr0::WP;
    s.cr4 = cr4::PAE;
    s.cr3 = PML4;
    s.efer = efer::LME | efer::LMA;
    let flat = |selector, kind| Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P | attr::S | attr::ACCESSED | attr::G | kind,
    };
    s.seg[SegReg::Cs as usize] = flat(8, attr::CODE | attr::RW | attr::L);
    for r in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        s.seg[r as usize] = flat(0x10, attr::RW | attr::DB);
    }
    s.gdtr.base = GDT;
    s.gdtr.limit = 0x17;
    s.idtr.base = IDT;
    s.idtr.limit = 0xfff;
    s.gpr[4] = STACK;
    s.rip = CODE;
    s
}

/// A 64-bit interrupt gate to selector 8.
fn gate(handler: u64) -> [u8; 16] {
    let lo = (handler & 0xffff) | 8 << 16 | 0x8e << 40 | ((handler >> 16) & 0xffff) << 48;
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&lo.to_le_bytes());
    g[8..].copy_from_slice(&(handler >> 32).to_le_bytes());
    g
}

/// Handlers appended after the test's code: the fixed vectors count, note where they
/// returned to and the TSC, and EOI; #GP records its error code and resumes at RSI.
fn handlers(a: &mut CodeAssembler) -> (CodeLabel, CodeLabel) {
    let mut fixed = a.create_label();
    let mut gp = a.create_label();
    let mut not_first = a.create_label();
    a.set_label(&mut fixed).unwrap();
    a.push(rax).unwrap();
    a.push(rdx).unwrap();
    a.cmp(dword_ptr(COUNT), 0).unwrap();
    a.jne(not_first).unwrap();
    a.mov(rax, qword_ptr(rsp + 16)).unwrap();
    a.mov(qword_ptr(IRQ_RIP), rax).unwrap();
    a.rdtsc().unwrap();
    a.shl(rdx, 32).unwrap();
    a.or(rax, rdx).unwrap();
    a.mov(qword_ptr(IRQ_TSC), rax).unwrap();
    a.set_label(&mut not_first).unwrap();
    a.inc(dword_ptr(COUNT)).unwrap();
    a.mov(dword_ptr(r15 + EOI), 0).unwrap();
    a.pop(rdx).unwrap();
    a.pop(rax).unwrap();
    a.iretq().unwrap();
    a.set_label(&mut gp).unwrap();
    a.pop(rax).unwrap();
    a.mov(qword_ptr(GP_CODE), rax).unwrap();
    a.mov(qword_ptr(rsp), rsi).unwrap();
    a.iretq().unwrap();
    (fixed, gp)
}

/// Store RAX as result `n`.
fn out(a: &mut CodeAssembler, n: u64) {
    a.mov(qword_ptr(OUT + 8 * n), rax).unwrap();
}

/// RAX = the 64-bit TSC (clobbers RDX).
fn read_tsc(a: &mut CodeAssembler) {
    a.rdtsc().unwrap();
    a.shl(rdx, 32).unwrap();
    a.or(rax, rdx).unwrap();
}

/// RAX = MSR `index` (clobbers RCX, RDX).
fn rdmsr64(a: &mut CodeAssembler, index: u32) {
    a.mov(ecx, index).unwrap();
    a.rdmsr().unwrap();
    a.shl(rdx, 32).unwrap();
    a.or(rax, rdx).unwrap();
}

/// MSR `index` = RAX (clobbers RCX, RDX).
fn wrmsr64(a: &mut CodeAssembler, index: u32) {
    a.mov(ecx, index).unwrap();
    a.mov(rdx, rax).unwrap();
    a.shr(rdx, 32).unwrap();
    a.wrmsr().unwrap();
}

/// Build the board with the guest code `f` (it ends with CLI; HLT), run it to that halt,
/// and return the machine and the addresses of the labels `f` returns.
fn run(f: impl FnOnce(&mut CodeAssembler) -> Vec<CodeLabel>) -> (Machine, Vec<u64>) {
    let (mut m, addrs) = build(f);
    finish(&mut m);
    (m, addrs)
}

/// Run to the final CLI; HLT.
fn finish(m: &mut Machine) {
    let exit = m.run(Some(50_000_000)).expect("run");
    assert_eq!(
        exit,
        MachineExit::HaltedForever,
        "{:#x}",
        m.vcpu.state().rip
    );
}

/// The board with the guest code `f` loaded and the CPU at its start, in long mode.
fn build(f: impl FnOnce(&mut CodeAssembler) -> Vec<CodeLabel>) -> (Machine, Vec<u64>) {
    let mut config = MachineConfig::new(vec![0xf4; 64 << 10], 16);
    config.cpu_model = "nestor64".into();
    let mut m = Machine::new(config).expect("machine");
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(r15, APIC).unwrap();
    a.mov(dword_ptr(r15 + SVR), 0x1ff).unwrap();
    let labels = f(&mut a);
    let (fixed, gp) = handlers(&mut a);
    let res = a
        .assemble_options(CODE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .unwrap();
    let ip = |l: &CodeLabel| res.label_ip(l).unwrap();
    let mem = &mut m.board.wires.mem;
    assert!(mem.write(CODE, &res.inner.code_buffer));
    assert!(mem.write(PML4, &(PDPT | 3).to_le_bytes()));
    for k in 0..4u64 {
        assert!(mem.write(PDPT + 8 * k, &(k << 30 | 0x83).to_le_bytes()));
    }
    let gdt: [u64; 3] = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff];
    for (k, d) in gdt.iter().enumerate() {
        assert!(mem.write(GDT + 8 * k as u64, &d.to_le_bytes()));
    }
    for (v, h) in [(13u64, ip(&gp)), (u64::from(VECTOR), ip(&fixed))] {
        assert!(mem.write(IDT + 16 * v, &gate(h)));
    }
    assert!(mem.write(IDT + 16 * u64::from(TIMER_VECTOR), &gate(ip(&fixed))));
    let addrs = labels.iter().map(ip).collect();
    m.set_initial_state(&long_mode_state()).expect("state");
    (m, addrs)
}

fn read_u64(m: &Machine, at: u64) -> u64 {
    let mut b = [0u8; 8];
    assert!(m.board.wires.mem.read(at, &mut b));
    u64::from_le_bytes(b)
}

fn results(m: &Machine, n: u64) -> Vec<u64> {
    (0..n).map(|k| read_u64(m, OUT + 8 * k)).collect()
}

#[test]
fn cr8_holds_a_lower_class_interrupt_until_it_is_lowered() {
    let (m, labels) = run(|a| {
        let mut after_lower = a.create_label();
        let mut recover = a.create_label();
        a.mov(eax, 5).unwrap();
        a.mov(cr8, rax).unwrap();
        // CR8 = 5 is TPR 0x50 in the APIC.
        a.mov(eax, dword_ptr(r15 + TPR)).unwrap();
        out(a, 0);
        a.sti().unwrap();
        // A self-IPI of class 4 waits while the priority is 5, and still at 4.
        a.mov(dword_ptr(r15 + ICR_LOW), SELF_IPI | u32::from(VECTOR))
            .unwrap();
        a.nop().unwrap();
        a.mov(eax, dword_ptr(COUNT)).unwrap();
        out(a, 1);
        a.mov(eax, 4).unwrap();
        a.mov(cr8, rax).unwrap();
        a.nop().unwrap();
        a.mov(eax, dword_ptr(COUNT)).unwrap();
        out(a, 2);
        // At 3 it is taken right after the MOV to CR8.
        a.mov(eax, 3).unwrap();
        a.mov(cr8, rax).unwrap();
        a.set_label(&mut after_lower).unwrap();
        a.mov(eax, dword_ptr(COUNT)).unwrap();
        out(a, 3);
        // A TPR written through MMIO is what CR8 reads.
        a.mov(dword_ptr(r15 + TPR), 0x7f).unwrap();
        a.mov(rax, cr8).unwrap();
        out(a, 4);
        // Reserved bits 63:4: #GP(0), CR8 unchanged.
        a.lea(rsi, ptr(recover)).unwrap();
        a.mov(qword_ptr(GP_CODE), -1).unwrap();
        a.mov(eax, 0x10).unwrap();
        a.mov(cr8, rax).unwrap();
        a.set_label(&mut recover).unwrap();
        a.mov(rax, qword_ptr(GP_CODE)).unwrap();
        out(a, 5);
        a.mov(rax, cr8).unwrap();
        out(a, 6);
        a.cli().unwrap();
        a.hlt().unwrap();
        vec![after_lower]
    });
    assert_eq!(results(&m, 7), [0x50, 0, 0, 1, 7, 0, 7]);
    assert_eq!(
        read_u64(&m, IRQ_RIP),
        labels[0],
        "taken right after MOV CR8"
    );
}

/// Arm the TSC deadline `DELAY` ticks ahead and wait for it with `wait` (HLT or a spin on
/// the count); results: deadline, MSR read back, MSR after firing, count after a disarmed
/// deadline has passed, MSR after a write outside TSC-deadline mode.
fn deadline_program(spin: bool) -> impl FnOnce(&mut CodeAssembler) -> Vec<CodeLabel> {
    move |a| {
        let mut wait = a.create_label();
        let mut spin_past = a.create_label();
        a.mov(
            dword_ptr(r15 + LVT_TIMER),
            TSC_DEADLINE_MODE | u32::from(TIMER_VECTOR),
        )
        .unwrap();
        read_tsc(a);
        a.add(rax, DELAY as i32).unwrap();
        out(a, 0);
        wrmsr64(a, TSC_DEADLINE);
        rdmsr64(a, TSC_DEADLINE);
        out(a, 1);
        a.sti().unwrap();
        a.set_label(&mut wait).unwrap();
        if spin {
            a.pause().unwrap();
            a.cmp(dword_ptr(COUNT), 0).unwrap();
            a.je(wait).unwrap();
        } else {
            a.hlt().unwrap();
        }
        rdmsr64(a, TSC_DEADLINE);
        out(a, 2);
        // Arm, disarm with 0, and spin well past the old deadline: nothing fires.
        read_tsc(a);
        a.add(rax, 100).unwrap();
        wrmsr64(a, TSC_DEADLINE);
        a.xor(eax, eax).unwrap();
        wrmsr64(a, TSC_DEADLINE);
        a.mov(ebx, 1000).unwrap();
        a.set_label(&mut spin_past).unwrap();
        a.dec(ebx).unwrap();
        a.jnz(spin_past).unwrap();
        a.mov(eax, dword_ptr(COUNT)).unwrap();
        out(a, 3);
        // One-shot mode: the MSR ignores writes and reads 0.
        a.mov(dword_ptr(r15 + LVT_TIMER), u32::from(TIMER_VECTOR))
            .unwrap();
        a.mov(eax, 12345).unwrap();
        wrmsr64(a, TSC_DEADLINE);
        rdmsr64(a, TSC_DEADLINE);
        out(a, 4);
        a.cli().unwrap();
        a.hlt().unwrap();
        Vec::new()
    }
}

/// Ticks between arming and the deadline: 4 ms of virtual time at 250 MHz.
const DELAY: u64 = 1_000_000;

fn check_deadline(spin: bool) -> u64 {
    let (m, _) = run(deadline_program(spin));
    check_deadline_results(&m, spin)
}

fn check_deadline_results(m: &Machine, spin: bool) -> u64 {
    let r = results(m, 5);
    let deadline = r[0];
    assert_eq!(r[1], deadline, "the MSR reads the armed deadline");
    assert_eq!(r[2], 0, "the MSR reads 0 once the deadline fired");
    assert_eq!(r[3], 1, "a disarmed deadline does not fire");
    assert_eq!(r[4], 0, "writes outside TSC-deadline mode are ignored");
    let fired = read_u64(m, IRQ_TSC);
    // The handler's RDTSC is a few instructions after delivery.
    assert!(
        fired >= deadline && fired - deadline < 20,
        "deadline {deadline} handler TSC {fired} (spin {spin})"
    );
    fired
}

#[test]
fn tsc_deadline_wakes_hlt_at_the_deadline() {
    let first = check_deadline(false);
    assert_eq!(check_deadline(false), first, "deterministic");
}

#[test]
fn tsc_deadline_interrupts_a_running_cpu_at_the_deadline() {
    check_deadline(true);
}

#[test]
fn an_armed_tsc_deadline_survives_a_snapshot_taken_while_halted() {
    let whole = check_deadline(false);
    let (mut m, _) = build(deadline_program(false));
    // Half way to the deadline the CPU sleeps in HLT with the timer armed.
    assert_eq!(
        m.run(Some(DELAY / 2)).expect("run"),
        MachineExit::BudgetExhausted
    );
    assert!(m.vcpu.state().events.halted, "halted before the deadline");
    let path = std::env::temp_dir().join(format!("nestor-lapic-cpu-{}.elf", std::process::id()));
    nestor_machine::snapshot::save(&m, &path).expect("save");
    let mut resumed = nestor_machine::snapshot::resume(&path, Default::default()).expect("resume");
    std::fs::remove_file(&path).expect("cleanup");
    finish(&mut resumed);
    assert_eq!(check_deadline_results(&resumed, false), whole);
}
