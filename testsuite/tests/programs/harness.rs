//! Harness for the test programs: a real-mode entry stub that enters protected mode, a flat
//! 32-bit environment, and GDT/IDT/TSS/page-table builders that fill guest RAM from Rust.
//!
//! Memory map (physical = linear until a test turns paging on):
//! 0x0500 GDTR/IDTR pseudo-descriptors, 0x1000 GDT, 0x2000 IDT, 0x3000 TSS0 (+ redirection
//! and I/O bitmaps), 0x6000.. more TSSs, 0x7c00 real-mode stub, 0x8000 16-bit code,
//! 0x10000 32-bit code, 0x20000 data, stacks below 0x9f000, page tables from 0x100000.

#![allow(dead_code)]

use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction};
use nestor_cpu::testbus::FlatBus;
use nestor_cpu::{Cpu, RunExit, SegReg, Segment};

pub const RAM: usize = 16 << 20;
pub const PSEUDO: u64 = 0x0500;
pub const GDT: u64 = 0x1000;
pub const GDT_ENTRIES: u64 = 64;
pub const IDT: u64 = 0x2000;
pub const TSS0: u64 = 0x3000;
/// TSS0's interrupt redirection bitmap (32 bytes) and I/O bitmap (8 KiB + terminator).
pub const TSS0_REDIR: u64 = 0x68;
pub const TSS0_IOMAP: u64 = 0x88;
pub const TSS0_LIMIT: u32 = (TSS0_IOMAP + 8192) as u32;
pub const STUB: u64 = 0x7c00;
pub const CODE16: u64 = 0x8000;
pub const CODE32: u64 = 0x10000;
pub const DATA: u64 = 0x20000;
pub const STACK0: u32 = 0x9f000;
pub const STACK3: u32 = 0x8f000;
pub const PORT: u16 = 0xe9;

/// Selectors of the standard GDT; tests add their own from `FREE` on.
pub mod sel {
    pub const CODE0: u16 = 0x08;
    pub const DATA0: u16 = 0x10;
    pub const CODE16: u16 = 0x18;
    pub const DATA16: u16 = 0x20;
    pub const CODE3: u16 = 0x2b;
    pub const DATA3: u16 = 0x33;
    pub const TSS0: u16 = 0x38;
    pub const FREE: u16 = 0x40;
}

/// System descriptor and gate types.
pub mod ty {
    pub const TSS16: u8 = 1;
    pub const LDT: u8 = 2;
    pub const CALL16: u8 = 4;
    pub const TASK: u8 = 5;
    pub const INT16: u8 = 6;
    pub const TSS32: u8 = 9;
    pub const CALL32: u8 = 12;
    pub const INT32: u8 = 14;
    pub const TRAP32: u8 = 15;
}

/// A segment descriptor: `access` is byte 5 (P, DPL, S, type), `flags` the G/D nibble.
#[must_use]
pub fn seg(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let (base, limit) = (u64::from(base), u64::from(limit));
    (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | u64::from(access) << 40
        | ((limit >> 16) & 0xf) << 48
        | u64::from(flags & 0xf) << 52
        | (base >> 24) << 56
}

/// Flat 4 GiB 32-bit code segment (execute/read) at `dpl`.
#[must_use]
pub fn code32(dpl: u8) -> u64 {
    seg(0, 0xfffff, 0x9a | dpl << 5, 0xc)
}

/// Flat 4 GiB 32-bit data segment (read/write) at `dpl`.
#[must_use]
pub fn data32(dpl: u8) -> u64 {
    seg(0, 0xfffff, 0x92 | dpl << 5, 0xc)
}

/// A system descriptor (TSS, LDT) of type `typ`.
#[must_use]
pub fn system(base: u32, limit: u32, typ: u8, dpl: u8) -> u64 {
    seg(base, limit, 0x80 | dpl << 5 | typ, 0)
}

/// A gate (call, interrupt, trap, task) of type `typ`.
#[must_use]
pub fn gate(typ: u8, dpl: u8, selector: u16, offset: u32, params: u8) -> u64 {
    let off = u64::from(offset);
    (off & 0xffff)
        | u64::from(selector) << 16
        | u64::from(params & 0x1f) << 32
        | u64::from(0x80 | dpl << 5 | typ) << 40
        | (off >> 16) << 48
}

/// The fields of a 32-bit TSS a test sets (the rest are zero).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tss32 {
    pub esp0: u32,
    pub ss0: u16,
    pub cr3: u32,
    pub eip: u32,
    pub eflags: u32,
    /// EAX..EDI.
    pub gpr: [u32; 8],
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [u16; 6],
    pub ldt: u16,
    pub trap: bool,
    pub iomap: u16,
}

impl Tss32 {
    /// A ring-0 task with flat segments, starting at `eip` with stack top `esp`.
    #[must_use]
    pub fn ring0(eip: u32, stack: u32) -> Self {
        let mut t = Self {
            eip,
            eflags: 2,
            iomap: 0x68,
            ..Self::default()
        };
        t.gpr[4] = stack;
        t.seg = [
            sel::DATA0,
            sel::CODE0,
            sel::DATA0,
            sel::DATA0,
            sel::DATA0,
            sel::DATA0,
        ];
        t
    }
}

/// A test program: 32-bit code assembled at `CODE32`, entered from the real-mode stub with
/// flat ring-0 segments, ESP = `STACK0`, TR = TSS0, interrupts off.
pub struct Prog {
    pub a: CodeAssembler,
    defaults: Vec<CodeLabel>,
    /// `mov reg, label` placeholders: (magic immediate, label), patched after assembly.
    fixups: Vec<(u32, CodeLabel)>,
    /// Labels as placed by `set` (a `CodeLabel` copy made before placing cannot be resolved).
    placed: Vec<CodeLabel>,
    /// The prologue jumps here, over the handlers a test emits first.
    main: CodeLabel,
    main_placed: bool,
}

/// Placeholder immediates for label addresses start here (never a real address here).
const MAGIC: u32 = 0xf00d_0000;

impl Prog {
    #[must_use]
    pub fn new() -> Self {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(ax, sel::DATA0 as u32).unwrap();
        for s in [ds, es, fs, gs, ss] {
            a.mov(s, ax).unwrap();
        }
        a.mov(esp, STACK0).unwrap();
        a.mov(ax, sel::TSS0 as u32).unwrap();
        a.ltr(ax).unwrap();
        let defaults = (0..32).map(|_| a.create_label()).collect();
        let main = a.create_label();
        a.jmp(main).unwrap();
        Self {
            a,
            defaults,
            fixups: Vec::new(),
            placed: Vec::new(),
            main,
            main_placed: false,
        }
    }

    /// Start of the test's main code (handlers go before it).
    pub fn main(&mut self) {
        let mut l = self.main;
        self.set(&mut l);
        self.main_placed = true;
    }

    pub fn label(&mut self) -> CodeLabel {
        self.a.create_label()
    }

    pub fn set(&mut self, l: &mut CodeLabel) {
        self.a.set_label(l).unwrap();
        self.placed.push(*l);
    }

    /// `mov reg, imm32` with the address of `l` (32-bit code cannot LEA a label).
    pub fn mov_label(&mut self, r: AsmRegister32, l: CodeLabel) {
        let magic = MAGIC + self.fixups.len() as u32;
        self.fixups.push((magic, l));
        self.a.mov(r, magic).unwrap();
    }

    /// Write `v` to the report port (clobbers EAX).
    pub fn report(&mut self, v: u32) {
        self.a.mov(eax, v).unwrap();
        self.a.out(PORT as u32, eax).unwrap();
    }

    /// Write a register to the report port (clobbers EAX).
    pub fn report_reg(&mut self, r: AsmRegister32) {
        if r != eax {
            self.a.mov(eax, r).unwrap();
        }
        self.a.out(PORT as u32, eax).unwrap();
    }

    /// Write a dword of memory to the report port (clobbers EAX).
    pub fn report_mem(&mut self, m: AsmMemoryOperand) {
        self.a.mov(eax, m).unwrap();
        self.a.out(PORT as u32, eax).unwrap();
    }

    /// Drop to ring 3 at `target` with ESP = `STACK3` and EFLAGS = `eflags` via IRETD
    /// (clobbers EAX).
    pub fn enter_ring3(&mut self, target: CodeLabel, eflags: u32) {
        let a = &mut self.a;
        a.push(u32::from(sel::DATA3)).unwrap();
        a.push(STACK3).unwrap();
        a.push(eflags).unwrap();
        a.push(u32::from(sel::CODE3)).unwrap();
        self.mov_label(eax, target);
        self.a.push(eax).unwrap();
        self.a.iretd().unwrap();
    }

    /// Assemble everything and load it with the standard tables into a fresh machine.
    #[must_use]
    pub fn build(mut self) -> Machine {
        assert!(
            self.main_placed,
            "Prog::main() marks where the test's code starts"
        );
        for v in 0..32u32 {
            let mut l = self.defaults[v as usize];
            self.a.set_label(&mut l).unwrap();
            // Labels are values: keep the copy that now knows its instruction.
            self.defaults[v as usize] = l;
            self.a.mov(eax, 0xdead_0000 | v).unwrap();
            self.a.out(PORT as u32, eax).unwrap();
            self.a.hlt().unwrap();
        }
        let mut res = self
            .a
            .assemble_options(CODE32, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
            .unwrap();
        for (magic, l) in &self.fixups {
            let placed = self
                .placed
                .iter()
                .find(|p| *p == l)
                .expect("label placed with Prog::set");
            let at = res.label_ip(placed).unwrap() as u32;
            let code = &mut res.inner.code_buffer;
            let pos = code
                .windows(4)
                .position(|w| w == magic.to_le_bytes())
                .unwrap();
            code[pos..pos + 4].copy_from_slice(&at.to_le_bytes());
        }
        let mut m = Machine::new();
        m.bus.load(CODE32, &res.inner.code_buffer);
        for (v, l) in self.defaults.iter().enumerate() {
            let at = res.label_ip(l).unwrap() as u32;
            m.set_idt(v as u8, gate(ty::INT32, 0, sel::CODE0, at, 0));
        }
        m.result = Some(res);
        m
    }
}

impl Default for Prog {
    fn default() -> Self {
        Self::new()
    }
}

/// Assemble 16-bit code at `at` (real-mode or virtual-8086 code) in two passes, so that the
/// code can use the addresses of its own labels as immediates (far jumps, IVT entries):
/// `f` gets the label addresses of the first pass (zeros then) and returns its labels.
/// Returns the code and the label addresses.
pub fn asm16(
    at: u64,
    f: impl Fn(&mut CodeAssembler, &[u32]) -> Vec<CodeLabel>,
) -> (Vec<u8>, Vec<u32>) {
    let mut addrs = Vec::new();
    let mut code = Vec::new();
    for _ in 0..2 {
        let mut a = CodeAssembler::new(16).unwrap();
        let padded: Vec<u32> = (0..64)
            .map(|k| addrs.get(k).copied().unwrap_or(0))
            .collect();
        let labels = f(&mut a, &padded);
        let res = a
            .assemble_options(at, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
            .unwrap();
        addrs = labels
            .iter()
            .map(|l| res.label_ip(l).unwrap() as u32)
            .collect();
        code = res.inner.code_buffer;
    }
    (code, addrs)
}

pub struct Machine {
    pub cpu: Cpu,
    pub bus: FlatBus,
    result: Option<CodeAssemblerResult>,
}

impl Machine {
    /// RAM with the real-mode stub, the standard GDT, an empty IDT and TSS0; the CPU at
    /// 0000:7C00 in real mode as a BIOS leaves it.
    #[must_use]
    pub fn new() -> Self {
        let mut m = Self {
            cpu: Cpu::new(),
            bus: FlatBus::new(RAM),
            result: None,
        };
        let (stub, _) = asm16(STUB, |a, _| {
            a.lgdt(ptr(PSEUDO as u32)).unwrap();
            a.lidt(ptr(PSEUDO as u32 + 8)).unwrap();
            a.mov(eax, cr0).unwrap();
            a.or(eax, 1).unwrap();
            a.mov(cr0, eax).unwrap();
            a.add_instruction(
                Instruction::with_far_branch(Code::Jmp_ptr1632, sel::CODE0, CODE32 as u32).unwrap(),
            )
            .unwrap();
            Vec::new()
        });
        m.bus.load(STUB, &stub);
        m.w16(PSEUDO, (GDT_ENTRIES * 8 - 1) as u16);
        m.w32(PSEUDO + 2, GDT as u32);
        m.w16(PSEUDO + 8, 0x7ff);
        m.w32(PSEUDO + 10, IDT as u32);
        m.set_gdt(sel::CODE0, code32(0));
        m.set_gdt(sel::DATA0, data32(0));
        m.set_gdt(sel::CODE16, seg(0, 0xffff, 0x9a, 0));
        m.set_gdt(sel::DATA16, seg(0, 0xffff, 0x92, 0));
        m.set_gdt(sel::CODE3, code32(3));
        m.set_gdt(sel::DATA3, data32(3));
        m.set_gdt(sel::TSS0, system(TSS0 as u32, TSS0_LIMIT, ty::TSS32, 0));
        let mut t = Tss32 {
            esp0: STACK0,
            ss0: sel::DATA0,
            iomap: TSS0_IOMAP as u16,
            ..Tss32::default()
        };
        t.seg = [0; 6];
        m.tss32(TSS0, &t);
        m.w8(TSS0 + TSS0_IOMAP + 8192, 0xff);
        m.cpu.s.seg[SegReg::Cs as usize] = Segment::real_mode(0);
        m.cpu.s.rip = STUB;
        m
    }

    /// Address of a label of the 32-bit program.
    #[must_use]
    pub fn addr(&self, l: CodeLabel) -> u32 {
        self.result.as_ref().unwrap().label_ip(&l).unwrap() as u32
    }

    pub fn w8(&mut self, at: u64, v: u8) {
        self.bus.load(at, &[v]);
    }
    pub fn w16(&mut self, at: u64, v: u16) {
        self.bus.load(at, &v.to_le_bytes());
    }
    pub fn w32(&mut self, at: u64, v: u32) {
        self.bus.load(at, &v.to_le_bytes());
    }
    pub fn w64(&mut self, at: u64, v: u64) {
        self.bus.load(at, &v.to_le_bytes());
    }
    #[must_use]
    pub fn r32(&self, at: u64) -> u32 {
        let r = &self.bus.ram()[at as usize..at as usize + 4];
        u32::from_le_bytes([r[0], r[1], r[2], r[3]])
    }
    #[must_use]
    pub fn r64(&self, at: u64) -> u64 {
        u64::from(self.r32(at)) | u64::from(self.r32(at + 4)) << 32
    }

    pub fn set_gdt(&mut self, selector: u16, d: u64) {
        self.w64(GDT + u64::from(selector & 0xfff8), d);
    }
    #[must_use]
    pub fn gdt(&self, selector: u16) -> u64 {
        self.r64(GDT + u64::from(selector & 0xfff8))
    }
    pub fn set_idt(&mut self, vector: u8, d: u64) {
        self.w64(IDT + u64::from(vector) * 8, d);
    }
    /// A 32-bit ring-0 interrupt gate (DPL `dpl`) to a label of the program.
    pub fn int_gate(&mut self, vector: u8, l: CodeLabel, dpl: u8) {
        let at = self.addr(l);
        self.set_idt(vector, gate(ty::INT32, dpl, sel::CODE0, at, 0));
    }

    pub fn tss32(&mut self, base: u64, t: &Tss32) {
        self.bus.load(base, &[0; 0x68]);
        self.w32(base + 4, t.esp0);
        self.w16(base + 8, t.ss0);
        self.w32(base + 0x1c, t.cr3);
        self.w32(base + 0x20, t.eip);
        self.w32(base + 0x24, t.eflags);
        for (n, v) in t.gpr.iter().enumerate() {
            self.w32(base + 0x28 + 4 * n as u64, *v);
        }
        for (n, v) in t.seg.iter().enumerate() {
            self.w16(base + 0x48 + 4 * n as u64, *v);
        }
        self.w16(base + 0x60, t.ldt);
        self.w16(base + 0x64, u16::from(t.trap));
        self.w16(base + 0x66, t.iomap);
    }

    pub fn run(&mut self, budget: u64) -> RunExit {
        self.cpu.run(&mut self.bus, budget)
    }

    /// Values written to the report port, in order.
    #[must_use]
    pub fn reports(&self) -> Vec<u32> {
        self.bus
            .port_writes
            .iter()
            .filter(|w| w.0 == PORT)
            .map(|w| w.2)
            .collect()
    }
}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}
