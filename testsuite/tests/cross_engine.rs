//! Cross-engine harness: the same small programs run on the whole machine under the
//! interpreter and under KVM; final CpuState (the fields both engines define) and memory
//! must be identical. Where /dev/kvm is unusable each test prints that it was skipped, and
//! why. The programs are built on the harness of programs.rs (whose own programs are
//! `#[test]` functions over FlatBus): real mode, protected mode, rings, faults, paging,
//! x87/SSE, long mode, CPUID, and batches of random ALU instructions.
//!
//! This host's /dev/kvm is PVM (kvm_pvm, nested and paravirtual): it runs this code through
//! KVM's instruction emulator, which cannot run some programs. They are checked only where
//! KVM is not PVM, and here print "HOST LIMITATION" with the reason:
//! - faults, ring 3 (protected mode): the emulator has no protected-mode IRET;
//! - x87 + SSE (protected and long mode): the emulator has no x87 arithmetic (FLD1);
//! - paging (32-bit, 2-level): CR0.PG outside long mode raises #GP;
//! - long mode ring 3 + SYSCALL: entering ring 3 with IRETQ takes a #PF;
//! - CPUID: CPUID runs natively and shows the host, not the model set with KVM_SET_CPUID2.
//!
//! (INT n outside real mode cannot be emulated either, so the long-mode fault program has
//! no INT3.) Differences found and fixed: MXCSR did not cross KVM_SET_FPU (now through the
//! XSAVE image); the interpreter pushed RF = 0 for fault-class exceptions (SDM 17.3.1.1).

#[path = "programs/harness.rs"]
mod harness;
#[path = "programs/long_env.rs"]
mod long_env;

use harness::*;
use iced_x86::code_asm::*;
use nestor_cpu::CpuState;
use nestor_device::testing::BufferBackend;
use nestor_machine::kvm::Accel;
use nestor_machine::MachineExit;

/// Programs halt long before this; under KVM a slow host's kicks are charged against it.
const BUDGET: u64 = 50_000_000;
const RAM_MIB: u64 = (RAM >> 20) as u64;

/// How one engine left the machine.
struct Outcome {
    exit: MachineExit,
    state: CpuState,
    ram: Vec<u8>,
    out: Vec<u8>,
}

fn kvm_unusable() -> Option<String> {
    nestor_machine::kvm::probe().err().map(|e| e.to_string())
}

/// Run the program `prog` (RAM and initial CPU state from the harness) under `accel`.
fn run_on(prog: &Machine, accel: Accel) -> Result<Outcome, String> {
    let out = BufferBackend::output_only();
    // The ROM is never reached: programs start in RAM.
    let mut config = nestor_machine::MachineConfig::new(vec![0xf4; 64 << 10], RAM_MIB);
    config.cpu_model = "nestor64".into();
    config.debugcon = Some(Box::new(out.clone()));
    config.accel = accel;
    let mut m = nestor_machine::Machine::new(config).expect("machine");
    let ram = prog.bus.ram();
    assert!(m.board.wires.mem.write(0, &ram[..0xa_0000]));
    assert!(m.board.wires.mem.write(0x10_0000, &ram[0x10_0000..]));
    m.set_initial_state(&prog.cpu.state()).expect("state");
    let exit = m.run(Some(BUDGET)).map_err(|e| e.to_string())?;
    let mut ram = vec![0u8; RAM];
    assert!(m.board.wires.mem.read(0, &mut ram[..0xa_0000]));
    assert!(m.board.wires.mem.read(0x10_0000, &mut ram[0x10_0000..]));
    Ok(Outcome {
        exit,
        state: m.vcpu.state(),
        ram,
        out: out.output(),
    })
}

/// Every difference between two outcomes, one line each.
fn differences(a: &Outcome, b: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |what: &str, x: String, y: String| {
        if x != y {
            d.push(format!("{what}: interp {x} / kvm {y}"));
        }
    };
    cmp("exit", format!("{:?}", a.exit), format!("{:?}", b.exit));
    cmp(
        "output",
        format!("{:02x?}", a.out),
        format!("{:02x?}", b.out),
    );
    let (s, t) = (&a.state, &b.state);
    for i in 0..16 {
        cmp(
            &format!("gpr{i}"),
            format!("{:#x}", s.gpr[i]),
            format!("{:#x}", t.gpr[i]),
        );
    }
    cmp("rip", format!("{:#x}", s.rip), format!("{:#x}", t.rip));
    cmp(
        "rflags",
        format!("{:#x}", s.rflags),
        format!("{:#x}", t.rflags),
    );
    let segs = s
        .seg
        .iter()
        .zip(&t.seg)
        .chain([(&s.ldtr, &t.ldtr), (&s.tr, &t.tr)]);
    for (i, (x, y)) in segs.enumerate() {
        // A not-present (VMX: unusable) segment's hidden part means nothing.
        let key = |g: &nestor_cpu::Segment| {
            if g.present() {
                format!(
                    "{:04x} base {:#x} limit {:#x} attr {:#x}",
                    g.selector, g.base, g.limit, g.attr
                )
            } else {
                format!("{:04x} not present", g.selector)
            }
        };
        cmp(&format!("segment {i}"), key(x), key(y));
    }
    cmp("gdtr", format!("{:x?}", s.gdtr), format!("{:x?}", t.gdtr));
    cmp("idtr", format!("{:x?}", s.idtr), format!("{:x?}", t.idtr));
    for (n, (x, y)) in [
        (s.cr0, t.cr0),
        (s.cr2, t.cr2),
        (s.cr3, t.cr3),
        (s.cr4, t.cr4),
    ]
    .into_iter()
    .enumerate()
    {
        cmp(
            &format!("cr{}", [0, 2, 3, 4][n]),
            format!("{x:#x}"),
            format!("{y:#x}"),
        );
    }
    cmp("efer", format!("{:#x}", s.efer), format!("{:#x}", t.efer));
    let (x, y) = (&s.x87, &t.x87);
    cmp(
        "x87 control/status/tags/opcode",
        format!("{:x} {:x} {:x} {:x}", x.fcw, x.fsw, x.ftw, x.fop),
        format!("{:x} {:x} {:x} {:x}", y.fcw, y.fsw, y.ftw, y.fop),
    );
    cmp(
        "x87 fip/fdp",
        format!("{:x} {:x}", x.fip, x.fdp),
        format!("{:x} {:x}", y.fip, y.fdp),
    );
    cmp(
        "x87 registers",
        format!("{:x?}", x.st),
        format!("{:x?}", y.st),
    );
    cmp(
        "mxcsr",
        format!("{:#x}", x.mxcsr),
        format!("{:#x}", y.mxcsr),
    );
    cmp("xmm", format!("{:x?}", s.xmm), format!("{:x?}", t.xmm));
    let bytes: Vec<usize> = (0..RAM).filter(|&i| a.ram[i] != b.ram[i]).take(8).collect();
    for i in bytes {
        d.push(format!(
            "memory {i:#x}: interp {:02x} / kvm {:02x}",
            a.ram[i], b.ram[i]
        ));
    }
    d
}

/// Run `prog` under both engines and require the same outcome. Returns the interpreter's.
fn same_on_both(name: &str, prog: &Machine) -> Outcome {
    compare_engines(name, prog, None)
}

/// This host's /dev/kvm is PVM (kvm_pvm): 64-bit code runs on the CPU, everything else goes
/// through KVM's instruction emulator, and CPUID is not intercepted.
fn host_is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

/// Like [`same_on_both`], for a program that a PVM host cannot run for `pvm_reason`: there
/// the difference is printed as a known host limitation; on any other KVM it must match.
fn same_unless_pvm(name: &str, prog: &Machine, pvm_reason: &str) -> Outcome {
    compare_engines(name, prog, host_is_pvm().then_some(pvm_reason))
}

fn compare_engines(name: &str, prog: &Machine, known_limit: Option<&str>) -> Outcome {
    let interp = run_on(prog, Accel::Interp).expect("interpreter run");
    assert_ne!(
        interp.exit,
        MachineExit::BudgetExhausted,
        "{name}: the program must end"
    );
    if let Some(why) = kvm_unusable() {
        eprintln!("SKIPPED {name} under KVM: {why}");
        return interp;
    }
    let d = match run_on(prog, Accel::Kvm) {
        Ok(kvm) => differences(&interp, &kvm),
        Err(e) => vec![format!("KVM failed: {e}")],
    };
    match known_limit {
        _ if d.is_empty() => eprintln!(
            "{name}: identical under interp and kvm ({} report bytes)",
            interp.out.len()
        ),
        Some(reason) => eprintln!(
            "HOST LIMITATION {name}: this host's KVM {reason}; first difference: {}",
            d[0]
        ),
        None => panic!("{name}: the engines differ:\n{}", d.join("\n")),
    }
    interp
}

/// A handler reporting `0xF000 | vector` (and the error code if `code`), resuming at ESI.
fn resume_handler(p: &mut Prog, vector: u32, code: bool) -> CodeLabel {
    let mut l = p.label();
    p.set(&mut l);
    p.report(0xf000 | vector);
    if code {
        p.a.pop(eax).unwrap();
        p.a.out(PORT as u32, eax).unwrap();
    }
    p.a.mov(dword_ptr(esp), esi).unwrap();
    p.a.iretd().unwrap();
    l
}

#[test]
fn real_mode_program() {
    let mut m = Machine::new();
    let (code, _) = asm16(CODE16, |a, at| {
        let mut handler = a.create_label();
        // IVT entry 0x60 -> our handler.
        a.xor(ax, ax).unwrap();
        a.mov(ds, ax).unwrap();
        a.mov(es, ax).unwrap();
        a.mov(ss, ax).unwrap();
        a.mov(sp, 0x7000u32).unwrap();
        a.mov(word_ptr(0x60 * 4), at[0]).unwrap();
        a.mov(word_ptr(0x60 * 4 + 2), 0u32).unwrap();
        a.mov(ax, 0x1234u32).unwrap();
        a.mov(bx, 0x00ffu32).unwrap();
        a.mul(bx).unwrap();
        a.add(ax, dx).unwrap();
        a.int(0x60).unwrap();
        a.mov(si, 0x9000u32).unwrap();
        a.mov(di, 0x9100u32).unwrap();
        a.mov(cx, 8u32).unwrap();
        a.cld().unwrap();
        a.rep().movsw().unwrap();
        a.mov(eax, 0x5a5a_1234u32).unwrap();
        a.out(PORT as u32, al).unwrap();
        a.sub(ax, 3u32).unwrap();
        a.hlt().unwrap();
        a.set_label(&mut handler).unwrap();
        a.push(ax).unwrap();
        a.mov(al, 0x60u32).unwrap();
        a.out(PORT as u32, al).unwrap();
        a.pop(ax).unwrap();
        a.iret().unwrap();
        vec![handler]
    });
    m.bus.load(CODE16, &code);
    m.bus.load(0x9000, b"cross-engine....");
    m.cpu.s.rip = CODE16;
    same_on_both("real mode", &m);
}

/// Flat 32-bit code: arithmetic, a call, string moves, then CPUID for each of `leaves`.
fn protected_program(leaves: &[u32]) -> Machine {
    let mut p = Prog::new();
    let mut sub = p.label();
    p.set(&mut sub);
    p.a.lea(eax, dword_ptr(eax + ebx * 2 + 7)).unwrap();
    p.a.ret().unwrap();
    p.main();
    let a = &mut p.a;
    a.mov(eax, 0x1234_5678u32).unwrap();
    a.mov(ebx, 0x9abc_def0u32).unwrap();
    a.add(eax, ebx).unwrap();
    a.adc(ecx, eax).unwrap();
    a.call(sub).unwrap();
    a.mov(dword_ptr(DATA as u32), eax).unwrap();
    a.mov(esi, DATA as u32).unwrap();
    a.mov(edi, DATA as u32 + 0x100).unwrap();
    a.mov(ecx, 4u32).unwrap();
    a.rep().movsd().unwrap();
    // CPUID: KVM answers with Nestor's model, so every engine shows the same CPU.
    for (k, leaf) in leaves.iter().enumerate() {
        a.mov(eax, *leaf).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.cpuid().unwrap();
        let at = DATA as u32 + 0x200 + 16 * k as u32;
        a.mov(dword_ptr(at), eax).unwrap();
        a.mov(dword_ptr(at + 4), ebx).unwrap();
        a.mov(dword_ptr(at + 8), ecx).unwrap();
        a.mov(dword_ptr(at + 12), edx).unwrap();
    }
    a.mov(eax, dword_ptr(DATA as u32 + 0x100)).unwrap();
    a.cmp(eax, 3).unwrap();
    p.report(0x55);
    p.a.hlt().unwrap();
    p.build()
}

#[test]
fn protected_mode_program() {
    same_on_both("protected mode", &protected_program(&[]));
}

#[test]
fn cpuid_shows_nestors_model() {
    let leaves = [0u32, 1, 7, 0x8000_0000, 0x8000_0001, 0x8000_0008];
    same_unless_pvm(
        "cpuid",
        &protected_program(&leaves),
        "runs CPUID natively (the host's CPUID, not the model set with KVM_SET_CPUID2)",
    );
}

#[test]
fn faults_program() {
    let mut p = Prog::new();
    let de = resume_handler(&mut p, 0, false);
    let ud = resume_handler(&mut p, 6, false);
    let brk = resume_handler(&mut p, 3, false);
    let gp = resume_handler(&mut p, 13, true);
    p.main();
    let mut after = [p.label(), p.label(), p.label(), p.label()];
    p.mov_label(esi, after[0]);
    p.a.xor(ecx, ecx).unwrap();
    p.a.div(ecx).unwrap();
    p.set(&mut after[0]);
    p.mov_label(esi, after[1]);
    p.a.ud2().unwrap();
    p.set(&mut after[1]);
    p.mov_label(esi, after[2]);
    p.a.int3().unwrap();
    p.set(&mut after[2]);
    p.mov_label(esi, after[3]);
    p.a.mov(eax, 0x7fu32).unwrap();
    p.a.mov(ds, ax).unwrap();
    p.set(&mut after[3]);
    p.report(0x99);
    p.a.hlt().unwrap();
    let mut m = p.build();
    for (v, l) in [(0u8, de), (6, ud), (3, brk), (13, gp)] {
        m.int_gate(v, l, 0);
    }
    same_unless_pvm("faults", &m, "cannot emulate IRET in protected mode");
}

#[test]
fn ring3_program() {
    let mut p = Prog::new();
    let mut syscall = p.label();
    p.set(&mut syscall);
    p.report(0x80);
    p.a.mov(eax, dword_ptr(esp + 12)).unwrap();
    p.a.out(PORT as u32, eax).unwrap();
    p.a.hlt().unwrap();
    let gp = resume_handler(&mut p, 13, true);
    p.main();
    let mut user = p.label();
    let mut resume = p.label();
    p.enter_ring3(user, 0x2);
    p.set(&mut user);
    p.report(3);
    p.mov_label(esi, resume);
    p.a.cli().unwrap();
    p.set(&mut resume);
    p.a.mov(ebx, 0x33u32).unwrap();
    p.a.int(0x80).unwrap();
    let mut m = p.build();
    m.int_gate(0x80, syscall, 3);
    m.int_gate(13, gp, 0);
    same_unless_pvm("ring 3", &m, "cannot emulate IRET in protected mode");
}

#[test]
fn paging_program() {
    const PD: u32 = 0x20_0000;
    const PT0: u32 = 0x20_1000;
    const PT1: u32 = 0x20_2000;
    let mut p = Prog::new();
    let pf = resume_handler(&mut p, 14, true);
    p.main();
    let mut after = p.label();
    let a = &mut p.a;
    a.mov(eax, PD).unwrap();
    a.mov(cr3, eax).unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 0x8000_0000u32 as i32).unwrap();
    a.mov(cr0, eax).unwrap();
    a.mov(dword_ptr(0x40_0010), 0xfeed_f00du32).unwrap();
    a.mov(eax, dword_ptr(0x30_0010)).unwrap();
    a.out(PORT as u32, eax).unwrap();
    p.mov_label(esi, after);
    p.a.mov(eax, dword_ptr(0x80_0000)).unwrap();
    p.set(&mut after);
    p.a.mov(eax, cr2).unwrap();
    p.a.out(PORT as u32, eax).unwrap();
    p.a.invlpg(dword_ptr(0x40_0000)).unwrap();
    p.a.mov(ebx, dword_ptr(0x40_0010)).unwrap();
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(14, pf, 0);
    m.w32(u64::from(PD), PT0 | 3);
    m.w32(u64::from(PD) + 4, PT1 | 3);
    for n in 0..1024u32 {
        m.w32(u64::from(PT0 + 4 * n), n << 12 | 3);
    }
    m.w32(u64::from(PT1), 0x30_0000 | 3);
    same_unless_pvm("paging", &m, "refuses CR0.PG outside long mode (#GP)");
}

#[test]
fn x87_and_sse_program() {
    let mut p = Prog::new();
    p.main();
    let a = &mut p.a;
    a.mov(eax, cr0).unwrap();
    a.and(eax, !0x4i32).unwrap();
    a.or(eax, 0x22).unwrap();
    a.mov(cr0, eax).unwrap();
    a.mov(eax, cr4).unwrap();
    a.or(eax, 0x600).unwrap();
    a.mov(cr4, eax).unwrap();
    a.fninit().unwrap();
    a.fld1().unwrap();
    a.fldpi().unwrap();
    a.fmulp(st1, st0).unwrap();
    a.fsqrt().unwrap();
    a.fst(dword_ptr(DATA as u32)).unwrap();
    a.fild(dword_ptr(DATA as u32 + 0x40)).unwrap();
    a.faddp(st1, st0).unwrap();
    a.fldl2e().unwrap();
    a.movups(xmm0, xmmword_ptr(DATA as u32 + 0x80)).unwrap();
    a.movups(xmm1, xmmword_ptr(DATA as u32 + 0x90)).unwrap();
    a.addps(xmm0, xmm1).unwrap();
    a.mulpd(xmm1, xmm0).unwrap();
    a.sqrtpd(xmm2, xmm1).unwrap();
    a.pxor(xmm3, xmm3).unwrap();
    a.paddd(xmm3, xmm0).unwrap();
    a.cvtsi2sd(xmm4, eax).unwrap();
    a.movups(xmmword_ptr(DATA as u32 + 0xa0), xmm2).unwrap();
    p.report(0x87);
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.w32(DATA + 0x40, 1234);
    for k in 0..8 {
        m.w32(DATA + 0x80 + 4 * k, 0x3f80_0000 + 0x1_2345 * k as u32);
    }
    same_unless_pvm(
        "x87 + SSE (protected mode)",
        &m,
        "cannot emulate x87 arithmetic outside 64-bit mode",
    );
}

#[test]
fn long_mode_program() {
    use long_env::*;
    let mut k = Kernel::new();
    k.main();
    let a = &mut k.a;
    a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
    a.mov(rbx, 0x0fed_cba9_8765_4321u64).unwrap();
    a.add(rax, rbx).unwrap();
    a.mov(r9, rax).unwrap();
    a.shl(r9, 7).unwrap();
    a.push(r9).unwrap();
    a.pop(r10).unwrap();
    a.mov(qword_ptr(DATA), r10).unwrap();
    a.xor(r11d, r11d).unwrap();
    a.mov(rcx, 0xc000_0082u64).unwrap();
    a.mov(rax, 0xffff_8000_1234_0000u64).unwrap();
    a.mov(rdx, rax).unwrap();
    a.shr(rdx, 32).unwrap();
    a.wrmsr().unwrap();
    report64(a, 0x64);
    a.sub(r10, 1).unwrap();
    a.hlt().unwrap();
    let (m, _) = build(k, &[], Setup::default());
    let out = same_on_both("long mode", &m);
    assert_eq!(out.state.msr.lstar, 0xffff_8000_1234_0000);
}

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

/// One random ALU instruction whose flags are all architecturally defined.
fn random_alu(a: &mut CodeAssembler, rng: &mut Rng) {
    const REGS: [AsmRegister32; 7] = [eax, ebx, ecx, edx, esi, edi, ebp];
    let r = |rng: &mut Rng| REGS[rng.below(7) as usize];
    let (x, y) = (r(rng), r(rng));
    let imm = rng.next() as i32;
    let mem = dword_ptr(DATA as u32 + 4 * rng.below(64) as u32);
    match rng.below(18) {
        0 => a.add(x, y),
        1 => a.sub(x, imm),
        2 => a.adc(x, y),
        3 => a.sbb(x, mem),
        4 => a.and(x, imm),
        5 => a.or(mem, y),
        6 => a.xor(x, y),
        7 => a.cmp(x, imm),
        8 => a.test(x, y),
        9 => a.inc(x),
        10 => a.dec(mem),
        11 => a.neg(x),
        12 => a.not(x),
        13 => a.mov(mem, x),
        14 => a.lea(x, dword_ptr(y + x * 4 + imm)),
        15 => a.xchg(x, y),
        16 => a.rol(x, 1),
        _ => a.rcr(x, 1),
    }
    .unwrap();
}

#[test]
fn random_alu_batches() {
    for seed in 1..=8u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0001));
        let mut p = Prog::new();
        p.main();
        for r in [eax, ebx, ecx, edx, esi, edi, ebp] {
            p.a.mov(r, rng.next() as u32).unwrap();
        }
        for _ in 0..300 {
            random_alu(&mut p.a, &mut rng);
        }
        // AND/OR/XOR/TEST leave AF undefined: end on an instruction that defines every flag.
        p.a.add(eax, ebx).unwrap();
        p.a.hlt().unwrap();
        let mut m = p.build();
        for k in 0..64 {
            m.w32(DATA + 4 * k, rng.next() as u32);
        }
        same_on_both(&format!("random ALU batch {seed}"), &m);
    }
}

#[test]
fn long_mode_faults_program() {
    use long_env::*;
    let mut k = Kernel::new();
    for (vector, code, with_cr2) in [
        (0u8, false, false),
        (3, false, false),
        (6, false, false),
        (13, true, false),
        (14, true, true),
    ] {
        k.resume(vector, code, with_cr2);
    }
    k.main();
    let a = &mut k.a;
    let mut after: Vec<CodeLabel> = (0..5).map(|_| a.create_label()).collect();
    a.lea(rsi, ptr(after[0])).unwrap();
    a.xor(ecx, ecx).unwrap();
    a.div(rcx).unwrap();
    a.set_label(&mut after[0]).unwrap();
    a.lea(rsi, ptr(after[1])).unwrap();
    a.ud2().unwrap();
    a.set_label(&mut after[1]).unwrap();
    // INT3 would be #BP, but this host's KVM cannot emulate INT n outside real mode.
    a.lea(rsi, ptr(after[2])).unwrap();
    a.mov(eax, dword_ptr(DATA)).unwrap();
    a.set_label(&mut after[2]).unwrap();
    // A non-canonical address: #GP(0).
    a.lea(rsi, ptr(after[3])).unwrap();
    a.mov(rax, 0x8000_0000_0000_0000u64).unwrap();
    a.mov(rbx, qword_ptr(rax)).unwrap();
    a.set_label(&mut after[3]).unwrap();
    // PML4 entry 1 is not present: #PF with CR2.
    a.lea(rsi, ptr(after[4])).unwrap();
    a.mov(rax, 0x80_0000_0000u64).unwrap();
    a.mov(qword_ptr(rax), rbx).unwrap();
    a.set_label(&mut after[4]).unwrap();
    report64(a, 0x77);
    a.hlt().unwrap();
    let (m, _) = build(k, &[], Setup::default());
    same_on_both("long mode faults", &m);
}

#[test]
fn long_mode_x87_and_sse_program() {
    use long_env::*;
    let mut k = Kernel::new();
    k.main();
    let a = &mut k.a;
    a.mov(rax, cr0).unwrap();
    a.and(rax, !0x4i32).unwrap();
    a.or(rax, 0x22).unwrap();
    a.mov(cr0, rax).unwrap();
    a.mov(rax, cr4).unwrap();
    a.or(rax, 0x600).unwrap();
    a.mov(cr4, rax).unwrap();
    a.fninit().unwrap();
    a.fld1().unwrap();
    a.fldpi().unwrap();
    a.fmulp(st1, st0).unwrap();
    a.fsqrt().unwrap();
    a.fst(dword_ptr(DATA)).unwrap();
    a.fild(dword_ptr(DATA + 0x40)).unwrap();
    a.faddp(st1, st0).unwrap();
    a.fldl2e().unwrap();
    a.fxch(st0, st1).unwrap();
    a.movups(xmm0, xmmword_ptr(DATA + 0x80)).unwrap();
    a.movups(xmm1, xmmword_ptr(DATA + 0x90)).unwrap();
    a.addps(xmm0, xmm1).unwrap();
    a.mulpd(xmm1, xmm0).unwrap();
    a.sqrtpd(xmm2, xmm1).unwrap();
    a.pxor(xmm3, xmm3).unwrap();
    a.paddd(xmm3, xmm0).unwrap();
    a.cvtsi2sd(xmm4, rax).unwrap();
    a.movups(xmm12, xmm2).unwrap();
    a.movups(xmmword_ptr(DATA + 0xa0), xmm2).unwrap();
    report64(a, 0x87);
    a.hlt().unwrap();
    let (mut m, _) = build(k, &[], Setup::default());
    m.w32(DATA + 0x40, 1234);
    for n in 0..8 {
        m.w32(DATA + 0x80 + 4 * n, 0x3f80_0000 + 0x1_2345 * n as u32);
    }
    same_unless_pvm(
        "long mode x87 + SSE",
        &m,
        "emulates ring-0 code, and its emulator has no x87 arithmetic",
    );
}

#[test]
fn long_mode_user_and_syscall_program() {
    use long_env::*;
    let (user_code, _) = user(|a| {
        a.mov(rax, 0x1234u64).unwrap();
        a.mov(rbx, 0x5555_0000_0000u64).unwrap();
        a.add(rax, rbx).unwrap();
        a.mov(qword_ptr(USER_DATA), rax).unwrap();
        a.push(rax).unwrap();
        a.syscall().unwrap();
        Vec::new()
    });
    let mut k = Kernel::new();
    let mut entry = k.a.create_label();
    k.a.set_label(&mut entry).unwrap();
    report64(&mut k.a, 0x5c);
    out64(&mut k.a, rcx);
    out64(&mut k.a, r11);
    k.a.hlt().unwrap();
    k.main();
    let a = &mut k.a;
    a.mov(rax, u64::from(KCODE64) << 32 | u64::from(UCODE32 | 3) << 48)
        .unwrap();
    wrmsr_rax(a, 0xc000_0081);
    a.lea(rax, ptr(entry)).unwrap();
    wrmsr_rax(a, 0xc000_0082);
    a.mov(rax, 0x200u64).unwrap();
    wrmsr_rax(a, 0xc000_0084);
    a.push(i32::from(UDATA | 3)).unwrap();
    a.push(USTACK as i32).unwrap();
    a.push(0x2i32).unwrap();
    a.push(i32::from(UCODE64 | 3)).unwrap();
    a.push(USER64 as i32).unwrap();
    a.iretq().unwrap();
    let setup = Setup {
        user: Some(user_code),
        ..Setup::default()
    };
    let (m, _) = build(k, &[], setup);
    same_unless_pvm(
        "long mode ring 3 + SYSCALL",
        &m,
        "takes a #PF where IRETQ enters ring 3",
    );
}
