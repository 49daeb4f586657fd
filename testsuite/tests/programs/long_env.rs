//! The long-mode test environment: a 64-bit "kernel" assembled at `CODE64` (with a 16-byte
//! IDT, a 64-bit TSS with IST stacks, and SYSCALL/SYSRET-compatible GDT entries), user code
//! at `USER64`, compatibility-mode code at `COMPAT`, IA-32e page tables, and the 32-bit entry
//! code (a harness `Prog`) that enters long mode from protected mode.

use super::*;
use iced_x86::BlockEncoderOptions;
use nestor_cpu::cpuid::NESTOR64;
use nestor_cpu::state::efer;

pub const KCODE64: u16 = 0x40;
pub const KDATA: u16 = 0x48;
/// SYSRET/SYSEXIT base: 32-bit user code, user data, 64-bit user code, user data again.
pub const UCODE32: u16 = 0x50;
pub const UDATA: u16 = 0x58;
pub const UCODE64: u16 = 0x60;
pub const UDATA2: u16 = 0x68;
pub const TSS64_SEL: u16 = 0x70;

pub const CODE64: u64 = 0x40000;
pub const COMPAT: u64 = 0x48000;
pub const IDT64: u64 = 0x50000;
pub const USER64: u64 = 0x60000;
pub const USTACK: u64 = 0x70000;
pub const USER_DATA: u64 = 0x6f800;
pub const PERCPU: u64 = 0x30000;
pub const TSS64: u64 = 0x6000;
pub const IST1_TOP: u64 = 0x9a000;
pub const IST2_TOP: u64 = 0x98000;
pub const KSTACK: u64 = 0x9e000;
pub const NX_PAGE: u64 = 0x1f_0000;

pub const PML4: u64 = 0x10_0000;
pub const PDPT: u64 = 0x10_1000;
pub const PD: u64 = 0x10_2000;
pub const PT0: u64 = 0x10_3000;
pub const PML5: u64 = 0x10_4000;

/// Report the low 32 bits of a 64-bit register (clobbers RAX).
pub fn out64(a: &mut CodeAssembler, r: AsmRegister64) {
    if r != rax {
        a.mov(rax, r).unwrap();
    }
    a.out(PORT as u32, eax).unwrap();
}

pub fn report64(a: &mut CodeAssembler, v: u32) {
    a.mov(eax, v).unwrap();
    a.out(PORT as u32, eax).unwrap();
}

/// A 16-byte IA-32e interrupt gate (type 14) to `KCODE64:off`.
pub fn gate64(dpl: u8, off: u64, ist: u8) -> (u64, u64) {
    let lo = (off & 0xffff)
        | u64::from(KCODE64) << 16
        | u64::from(ist & 7) << 32
        | u64::from(0x8e | dpl << 5) << 40
        | ((off >> 16) & 0xffff) << 48;
    (lo, off >> 32)
}

/// The 64-bit kernel being assembled, with the IDT entries it wants.
pub struct Kernel {
    pub a: CodeAssembler,
    gates: Vec<(u8, CodeLabel, u8, u8)>,
    main: CodeLabel,
}

impl Kernel {
    /// Entry: LTR the 64-bit TSS, RSP = STACK0, then the test's `main`; vectors 0..31 report
    /// `0xdead0000 | vector` and halt unless the test installs its own handler.
    pub fn new() -> Self {
        let mut a = CodeAssembler::new(64).unwrap();
        let main = a.create_label();
        a.mov(ax, u32::from(TSS64_SEL)).unwrap();
        a.ltr(ax).unwrap();
        a.mov(rsp, u64::from(STACK0)).unwrap();
        a.jmp(main).unwrap();
        let mut k = Self {
            a,
            gates: Vec::new(),
            main,
        };
        for v in 0..32u8 {
            let mut l = k.a.create_label();
            k.a.set_label(&mut l).unwrap();
            report64(&mut k.a, 0xdead_0000 | u32::from(v));
            k.a.hlt().unwrap();
            k.gates.push((v, l, 0, 0));
        }
        k
    }

    pub fn gate(&mut self, vector: u8, l: CodeLabel, ist: u8, dpl: u8) {
        self.gates.retain(|g| g.0 != vector);
        self.gates.push((vector, l, ist, dpl));
    }

    /// A handler reporting `0xf000 | vector`, the error code (if `code`), CR2 (if `cr2`) and
    /// the low half of the faulting RIP, then resuming at RSI.
    pub fn resume(&mut self, vector: u8, code: bool, with_cr2: bool) {
        let a = &mut self.a;
        let mut l = a.create_label();
        a.set_label(&mut l).unwrap();
        report64(a, 0xf000 | u32::from(vector));
        if code {
            a.pop(rax).unwrap();
            a.out(PORT as u32, eax).unwrap();
        }
        if with_cr2 {
            a.mov(rax, cr2).unwrap();
            a.out(PORT as u32, eax).unwrap();
        }
        a.mov(rax, qword_ptr(rsp)).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.mov(qword_ptr(rsp), rsi).unwrap();
        a.iretq().unwrap();
        self.gate(vector, l, 0, 0);
    }

    pub fn main(&mut self) {
        let mut m = self.main;
        self.a.set_label(&mut m).unwrap();
        self.main = m;
    }
}

/// Options of the long-mode machine.
#[derive(Default)]
pub struct Setup {
    pub la57: bool,
    /// 32-bit code at `COMPAT`.
    pub compat: Option<Vec<u8>>,
    /// 64-bit code at `USER64`.
    pub user: Option<Vec<u8>>,
}

/// Assemble `f`'s code for `bitness` at `at`; returns it and the addresses of its labels.
pub fn asm_at(
    bitness: u32,
    at: u64,
    f: impl FnOnce(&mut CodeAssembler) -> Vec<CodeLabel>,
) -> (Vec<u8>, Vec<u64>) {
    let mut a = CodeAssembler::new(bitness).unwrap();
    let labels = f(&mut a);
    let res = a
        .assemble_options(at, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .unwrap();
    let addrs = labels.iter().map(|l| res.label_ip(l).unwrap()).collect();
    (res.inner.code_buffer, addrs)
}

/// Build the machine: the harness's real-mode stub enters protected mode, the 32-bit entry
/// code turns on PAE (and LA57), loads CR3, sets EFER.LME/NXE/SCE, turns on paging (now in
/// compatibility mode: it reports 0x32), loads the 64-bit IDT and jumps to `KCODE64:CODE64`.
/// Returns the machine and the addresses of the kernel's `labels`.
pub fn build(mut k: Kernel, labels: &[CodeLabel], setup: Setup) -> (Machine, Vec<u64>) {
    let mut p = Prog::new();
    p.main();
    let a = &mut p.a;
    a.mov(eax, cr4).unwrap();
    a.or(eax, if setup.la57 { 0x1020 } else { 0x20 }).unwrap();
    a.mov(cr4, eax).unwrap();
    a.mov(eax, if setup.la57 { PML5 } else { PML4 } as u32)
        .unwrap();
    a.mov(cr3, eax).unwrap();
    a.mov(ecx, 0xc000_0080u32).unwrap();
    a.rdmsr().unwrap();
    a.or(eax, (efer::LME | efer::NXE | efer::SCE) as i32)
        .unwrap();
    a.wrmsr().unwrap();
    a.mov(eax, cr0).unwrap();
    a.or(eax, 0x8001_0000u32 as i32).unwrap();
    a.mov(cr0, eax).unwrap();
    p.report(0x32);
    p.a.lidt(ptr(PSEUDO as u32 + 24)).unwrap();
    p.a.jmp_far(KCODE64, CODE64 as u32).unwrap();
    let mut m = p.build();
    m.cpu.model = NESTOR64;

    let res =
        k.a.assemble_options(CODE64, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
            .unwrap();
    m.bus.load(CODE64, &res.inner.code_buffer);
    for &(v, l, ist, dpl) in &k.gates {
        let (lo, hi) = gate64(dpl, res.label_ip(&l).unwrap(), ist);
        m.w64(IDT64 + 16 * u64::from(v), lo);
        m.w64(IDT64 + 16 * u64::from(v) + 8, hi);
    }
    let addrs = labels.iter().map(|l| res.label_ip(l).unwrap()).collect();
    if let Some(c) = &setup.compat {
        m.bus.load(COMPAT, c);
    }
    if let Some(u) = &setup.user {
        m.bus.load(USER64, u);
    }
    m.w16(PSEUDO + 24, 0xfff);
    m.w32(PSEUDO + 26, IDT64 as u32);
    m.set_gdt(KCODE64, seg(0, 0xfffff, 0x9a, 0xa));
    m.set_gdt(KDATA, data32(0));
    m.set_gdt(UCODE32, code32(3));
    m.set_gdt(UDATA, data32(3));
    m.set_gdt(UCODE64, seg(0, 0xfffff, 0xfa, 0xa));
    m.set_gdt(UDATA2, data32(3));
    m.set_gdt(TSS64_SEL, system(TSS64 as u32, 0x67, ty::TSS32, 0));
    m.set_gdt(TSS64_SEL + 8, 0);
    m.bus.load(TSS64, &[0; 0x68]);
    m.w64(TSS64 + 4, u64::from(STACK0));
    m.w64(TSS64 + 0x24, IST1_TOP);
    m.w64(TSS64 + 0x2c, IST2_TOP);
    m.w16(TSS64 + 0x66, 0x68);
    m.w64(PERCPU, KSTACK);
    page_tables(&mut m);
    (m, addrs)
}

/// PML5[0,1] -> PML4; PML4[0] -> PDPT; PDPT[0] -> PD, PDPT[1] = 1 GiB page at physical 0;
/// PD[0] -> PT0 (4 KiB pages for the first 2 MiB), PD[1..8] = 2 MiB pages. All identity,
/// supervisor, except the user code and stack pages; `NX_PAGE` is not executable.
pub fn page_tables(m: &mut Machine) {
    m.w64(PML5, PML4 | 7);
    m.w64(PML5 + 8, PML4 | 7);
    m.w64(PML4, PDPT | 7);
    m.w64(PDPT, PD | 7);
    m.w64(PDPT + 8, 0x83);
    m.w64(PD, PT0 | 7);
    for k in 1..8u64 {
        m.w64(PD + 8 * k, k << 21 | 0x83);
    }
    for n in 0..512u64 {
        let addr = n << 12;
        let user = addr == USER64 || addr == USER_DATA & !0xfff;
        m.w64(PT0 + 8 * n, addr | 3 | if user { 4 } else { 0 });
    }
    m.w64(PT0 + 8 * (NX_PAGE >> 12), NX_PAGE | 3 | 1 << 63);
    m.w8(NX_PAGE, 0xc3);
}

/// User code at `USER64`: `entries` return the addresses of its labels.
pub fn user(f: impl FnOnce(&mut CodeAssembler) -> Vec<CodeLabel>) -> (Vec<u8>, Vec<u64>) {
    asm_at(64, USER64, f)
}

/// WRMSR `index` with the 64-bit value in RAX (clobbers RCX, RDX).
pub fn wrmsr_rax(a: &mut CodeAssembler, index: u32) {
    a.mov(ecx, index).unwrap();
    a.mov(rdx, rax).unwrap();
    a.shr(rdx, 32).unwrap();
    a.wrmsr().unwrap();
}
