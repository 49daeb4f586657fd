//! Stopping the run loop is invisible to the guest: a machine stopped at any instruction count
//! and run on prints the same bytes and ends in the same state as one that never stopped
//! (deterministic clock). This is what lets a snapshot resume exactly where an uninterrupted
//! run would be. The guest here arms one-shot timers (PIT mode 0 through the 8259, the local
//! APIC's timer through MMIO) in the middle of a slice and waits for them spinning, halted and
//! inside a long REP STOSB, then prints what its interrupt handlers saw.

mod common;

use common::{idt_gate, real_mode_part, IDT};
use iced_x86::code_asm::*;
use nestor_device::testing::BufferBackend;
use nestor_machine::{Machine, MachineConfig, MachineExit};

/// Set by the interrupt handlers; the handlers also save ECX and EDI here + 4 and + 8.
const FIRED: u32 = 0x2000;
const SAVED_ECX: u32 = 0x2004;
const SAVED_EDI: u32 = 0x2008;
/// Linear address of the 32-bit part and of its two interrupt handlers.
const BASE: u64 = 0xf1000;
const PIC_HANDLER: u64 = 0xf1e00;
const APIC_HANDLER: u64 = 0xf1f00;
const LAPIC: u32 = 0xfee0_0000;
/// Iterations of the REP STOSB the timers interrupt.
const REP_COUNT: u32 = 200_000;
/// Rounds per (timer, wait) pair.
const ROUNDS: u32 = 6;

fn out_bytes(a: &mut CodeAssembler, writes: &[(u32, u32)]) -> Result<(), IcedError> {
    for &(port, v) in writes {
        a.mov(al, v)?;
        a.out(port, al)?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Timer {
    /// PIT channel 0 in mode 0, IRQ 0 through the 8259.
    Pit,
    /// The local APIC's timer, one-shot, programmed and read through MMIO.
    Apic,
}

#[derive(Clone, Copy)]
enum Wait {
    Spin,
    Halt,
    RepStos,
}

/// Arm `timer` with a count that depends on EBX (the round), so the firing points move.
fn arm(a: &mut CodeAssembler, timer: Timer) -> Result<(), IcedError> {
    a.imul_3(eax, ebx, 53)?;
    a.and(eax, 0x1ff)?;
    match timer {
        Timer::Pit => {
            a.add(eax, 40)?;
            a.mov(edx, eax)?;
            out_bytes(a, &[(0x43, 0x30)])?;
            a.mov(eax, edx)?;
            a.out(0x40, al)?;
            a.mov(al, ah)?;
            a.out(0x40, al)?;
        }
        Timer::Apic => {
            a.shl(eax, 5)?;
            a.add(eax, 3000)?;
            a.mov(dword_ptr(LAPIC + 0x3e0), 0xbu32)?;
            a.mov(dword_ptr(LAPIC + 0x320), 0x30u32)?;
            a.mov(dword_ptr(LAPIC + 0x380), eax)?;
        }
    }
    Ok(())
}

/// One round: arm, wait as `wait` says with interrupts on, then print what the handler saw and
/// the timer's count now.
fn round(
    a: &mut CodeAssembler,
    timer: Timer,
    wait: Wait,
    print: CodeLabel,
) -> Result<(), IcedError> {
    a.mov(dword_ptr(FIRED), 0u32)?;
    a.xor(ecx, ecx)?;
    a.mov(edi, 0x10000)?;
    arm(a, timer)?;
    a.sti()?;
    let mut again = a.create_label();
    let mut done = a.create_label();
    match wait {
        Wait::Spin => {
            a.set_label(&mut again)?;
            a.inc(ecx)?;
            a.cmp(dword_ptr(FIRED), 0)?;
            a.je(again)?;
        }
        Wait::Halt => {
            a.set_label(&mut again)?;
            a.hlt()?;
            a.cmp(dword_ptr(FIRED), 0)?;
            a.je(again)?;
        }
        Wait::RepStos => {
            a.mov(ecx, REP_COUNT)?;
            a.cld()?;
            a.rep().stosb()?;
            a.set_label(&mut again)?;
            a.cmp(dword_ptr(FIRED), 0)?;
            a.jne(done)?;
            a.inc(ecx)?;
            a.jmp(again)?;
        }
    }
    a.set_label(&mut done)?;
    a.cli()?;
    a.mov(eax, ecx)?;
    a.call(print)?;
    a.mov(eax, dword_ptr(SAVED_ECX))?;
    a.call(print)?;
    a.mov(eax, dword_ptr(SAVED_EDI))?;
    a.call(print)?;
    match timer {
        Timer::Pit => {
            // Latch and read channel 0: it keeps counting down after the terminal count.
            out_bytes(a, &[(0x43, 0x00)])?;
            a.in_(al, 0x40)?;
            a.mov(dl, al)?;
            a.in_(al, 0x40)?;
            a.mov(ah, al)?;
            a.mov(al, dl)?;
            a.movzx(eax, ax)?;
        }
        Timer::Apic => a.mov(eax, dword_ptr(LAPIC + 0x390))?,
    }
    a.call(print)?;
    a.mov(al, b'\n' as u32)?;
    a.out(0xe9, al)
}

/// The 32-bit part: IDT, 8259, rounds under the PIT, then under the local APIC, power-off.
fn protected_part() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut print = a.create_label();
    a.mov(ax, 0x10)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    a.mov(esp, 0x7000)?;
    idt_gate(&mut a, 0x20, PIC_HANDLER as u32)?;
    idt_gate(&mut a, 0x30, APIC_HANDLER as u32)?;
    a.mov(word_ptr(0x830), 256 * 8 - 1)?;
    a.mov(dword_ptr(0x832), IDT)?;
    a.lidt(ptr(0x830))?;
    // 8259: master at vector 0x20 with only IRQ 0 open; the slave masked.
    out_bytes(
        &mut a,
        &[
            (0x20, 0x11),
            (0x21, 0x20),
            (0x21, 0x04),
            (0x21, 0x01),
            (0x21, 0xfe),
            (0xa0, 0x11),
            (0xa1, 0x28),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0xa1, 0xff),
        ],
    )?;
    for timer in [Timer::Pit, Timer::Apic] {
        if let Timer::Apic = timer {
            // Close the 8259, enable the local APIC.
            out_bytes(&mut a, &[(0x21, 0xff)])?;
            a.mov(dword_ptr(LAPIC + 0xf0), 0x1ffu32)?;
        }
        a.xor(ebx, ebx)?;
        let mut next = a.create_label();
        a.set_label(&mut next)?;
        for wait in [Wait::Spin, Wait::Halt, Wait::RepStos] {
            round(&mut a, timer, wait, print)?;
        }
        a.inc(ebx)?;
        a.cmp(ebx, ROUNDS)?;
        a.jb(next)?;
    }
    a.mov(dx, 0x8900)?;
    for c in b"Shutdown" {
        a.mov(al, u32::from(*c))?;
        a.out(dx, al)?;
    }
    a.hlt()?;
    // print: EAX as 8 hex digits and a space on the debug console; clobbers EAX, ECX, EDX.
    a.set_label(&mut print)?;
    a.mov(edx, eax)?;
    a.mov(ecx, 8)?;
    let mut digit = a.create_label();
    let mut letter = a.create_label();
    a.set_label(&mut digit)?;
    a.rol(edx, 4)?;
    a.mov(eax, edx)?;
    a.and(eax, 0xf)?;
    a.add(eax, b'0' as u32)?;
    a.cmp(eax, b'9' as u32)?;
    a.jbe(letter)?;
    a.add(eax, 7)?;
    a.set_label(&mut letter)?;
    a.out(0xe9, al)?;
    a.dec(ecx)?;
    a.jnz(digit)?;
    a.mov(al, b' ' as u32)?;
    a.out(0xe9, al)?;
    a.ret()?;
    let mut code = a.assemble(BASE)?;
    assert!(
        code.len() <= (PIC_HANDLER - BASE) as usize,
        "main part too long"
    );
    code.resize((PIC_HANDLER - BASE) as usize, 0x90);
    code.extend(handler(PIC_HANDLER, Timer::Pit)?);
    code.resize((APIC_HANDLER - BASE) as usize, 0x90);
    code.extend(handler(APIC_HANDLER, Timer::Apic)?);
    Ok(code)
}

/// Note that the timer fired and where the interrupted code was (ECX, EDI), then EOI.
fn handler(at: u64, timer: Timer) -> Result<Vec<u8>, IcedError> {
    let mut h = CodeAssembler::new(32)?;
    h.push(eax)?;
    h.mov(dword_ptr(FIRED), 1u32)?;
    h.mov(dword_ptr(SAVED_ECX), ecx)?;
    h.mov(dword_ptr(SAVED_EDI), edi)?;
    match timer {
        Timer::Pit => out_bytes(&mut h, &[(0x20, 0x20)])?,
        Timer::Apic => h.mov(dword_ptr(LAPIC + 0xb0), 0u32)?,
    }
    h.pop(eax)?;
    h.iretd()?;
    h.assemble(at)
}

fn rom() -> Vec<u8> {
    let mut image = vec![0xffu8; 64 << 10];
    let real = real_mode_part().expect("16-bit part");
    image[..real.len()].copy_from_slice(&real);
    let prot = protected_part().expect("32-bit part");
    image[0x1000..0x1000 + prot.len()].copy_from_slice(&prot);
    image[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0x00, 0x00, 0xf0]);
    image
}

/// What a run ends with: its exit, the debug console's bytes, the CPU state, the retired
/// count and virtual time.
#[derive(Debug, PartialEq)]
struct Outcome {
    exit: MachineExit,
    text: String,
    state: nestor_cpu::CpuState,
    retired: u64,
    now_ns: u64,
}

/// Where the stops of a stepped run landed.
#[derive(Default)]
struct Landings {
    halted: u32,
    inside_rep: u32,
}

const BUDGET: u64 = 40_000_000;

/// Run the timer guest to its end, stopping the run loop at every multiple of `step`
/// instructions (`None`: never).
fn run_timer_guest(rom: &[u8], step: Option<u64>, landings: &mut Landings) -> Outcome {
    let debugcon = BufferBackend::output_only();
    let mut config = MachineConfig::new(rom.to_vec(), 16);
    config.debugcon = Some(Box::new(debugcon.clone()));
    let mut m = Machine::new(config).expect("machine");
    let exit = loop {
        let limit = step.map_or(BUDGET, |s| (m.spent() / s + 1) * s).min(BUDGET);
        let exit = m.run(Some(limit)).expect("run");
        if exit != MachineExit::BudgetExhausted || limit == BUDGET {
            break exit;
        }
        let s = m.vcpu.state();
        if s.events.halted {
            landings.halted += 1;
        }
        let at = (s.rip as usize).wrapping_sub(0xf0000);
        let rep_stosb = rom.get(at..at + 2) == Some(&[0xf3, 0xaa][..]);
        let left = s.gpr[1] as u32;
        if rep_stosb && left > 0 && left < REP_COUNT {
            landings.inside_rep += 1;
        }
    };
    Outcome {
        exit,
        text: debugcon.output_string(),
        state: m.vcpu.state(),
        retired: m.vcpu.retired(),
        now_ns: m.board.now_ns(),
    }
}

#[test]
fn stopping_the_run_loop_anywhere_changes_nothing() {
    let rom = rom();
    let whole = run_timer_guest(&rom, None, &mut Landings::default());
    assert_eq!(whole.exit, MachineExit::PowerOff, "{}", whole.text);
    assert_eq!(
        whole.text.lines().count(),
        6 * ROUNDS as usize,
        "{}",
        whole.text
    );
    let mut landings = Landings::default();
    // Odd steps, so the stops fall on every kind of instruction and inside idle time.
    for step in [1_009, 7_919, 104_729] {
        let stepped = run_timer_guest(&rom, Some(step), &mut landings);
        assert_eq!(stepped.text, whole.text, "stops every {step} instructions");
        assert_eq!(stepped, whole, "stops every {step} instructions");
    }
    assert!(landings.halted > 0, "some stop fell inside HLT");
    assert!(landings.inside_rep > 0, "some stop fell inside REP STOSB");
    eprintln!(
        "{} instructions, {} ns; stops inside HLT {}, inside REP STOSB {}",
        whole.retired, whole.now_ns, landings.halted, landings.inside_rep
    );
}

/// The guest cache roms/fetch-guests.sh fills: $NESTOR_GUESTS, else ~/.cache/nestor-guests.
fn cached(name: &str) -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("NESTOR_GUESTS") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache/nestor-guests"),
    };
    let path = dir.join(name);
    path.exists().then_some(path)
}

/// Debian's kernel booted by Nestor's BIOS (whose ACPI tables let it power off) with its
/// initrd, COM1 captured: what `nestor run --kernel` builds.
fn debian_linux(
    kernel: &std::path::Path,
    initrd: &std::path::Path,
) -> Option<(Machine, BufferBackend)> {
    let read = |p: &std::path::Path| std::fs::read(p).ok();
    let serial = BufferBackend::output_only();
    let mut bios = nestor_bios::BiosConfig::default();
    bios.boot_order.insert(0, nestor_bios::BootDevice::Kernel);
    let mut config = MachineConfig::with_bios(bios, 256);
    config.cpu_model = "nestor64".into();
    config.serial[0] = Some(Box::new(serial.clone()));
    config.kernel = Some(nestor_machine::KernelSpec {
        kernel: read(kernel)?,
        initrd: vec![nestor_machine::Module {
            name: "initrd.gz".into(),
            data: read(initrd)?,
        }],
        cmdline: "console=ttyS0 earlyprintk=serial,ttyS0,115200".into(),
    });
    Some((Machine::new(config).expect("machine"), serial))
}

/// Debian's Linux to the shell and power-off, once never stopped and once stopped every
/// `NESTOR_LINUX_STEP` instructions (default 333,333,331): the same serial bytes, final state,
/// retired count and virtual time.
#[test]
#[ignore = "boots Debian's Linux twice on the interpreter (minutes in release)"]
fn linux_is_the_same_however_the_run_loop_is_sliced() {
    let (Some(kernel), Some(initrd)) = (cached("vmlinuz"), cached("initrd.gz")) else {
        eprintln!("SKIP: no vmlinuz/initrd.gz in the guest cache (roms/fetch-guests.sh)");
        return;
    };
    let step: u64 = std::env::var("NESTOR_LINUX_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(333_333_331);
    let run = |step: Option<u64>| {
        let (mut m, serial) = debian_linux(&kernel, &initrd).expect("read the guest");
        let budget = 20_000_000_000;
        let mut stops = 0u32;
        let exit = loop {
            let limit = step.map_or(budget, |s| (m.spent() / s + 1) * s).min(budget);
            let exit = m.run(Some(limit)).expect("run");
            if exit != MachineExit::BudgetExhausted || limit == budget {
                break exit;
            }
            stops += 1;
        };
        let outcome = Outcome {
            exit,
            text: serial.output_string(),
            state: m.vcpu.state(),
            retired: m.vcpu.retired(),
            now_ns: m.board.now_ns(),
        };
        (outcome, stops)
    };
    let (whole, _) = run(None);
    assert_eq!(whole.exit, MachineExit::PowerOff, "{}", whole.text);
    assert!(
        whole.text.contains("nestor-guest: shell ready"),
        "{}",
        whole.text
    );
    let (stepped, stops) = run(Some(step));
    assert!(stops > 0);
    if stepped.text != whole.text {
        let same = whole
            .text
            .bytes()
            .zip(stepped.text.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let line = whole.text.as_bytes()[..same]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        panic!("serial output differs from line {line} on (byte {same})");
    }
    assert_eq!(stepped, whole);
    eprintln!(
        "{} instructions, {} ns of virtual time; {stops} stops every {step} instructions changed nothing",
        whole.retired, whole.now_ns
    );
}
