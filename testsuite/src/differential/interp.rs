//! The interpreter side: a CPU in IA-32e mode at CPL 3 with Linux's selectors (64-bit code
//! 0x33, 32-bit compatibility code 0x23, data 0x2b), page tables mapping the same linear
//! pages the native child maps, and an IDT whose gates lead to one HLT byte per vector, so a
//! fault shows up as RIP landing in that page and is read back from the interrupt frame.

use super::layout::{self, has_error_code, Context, CHILD_DIED, MEM_BYTES};
use nestor_cpu::cpuid::NESTOR64;
use nestor_cpu::state::{attr, cr0, cr4, efer, SegReg, Segment};
use nestor_cpu::testbus::FlatBus;
use nestor_cpu::x87::env;
use nestor_cpu::Cpu;

const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
const PT_LOW: u64 = 0x4000;
const PT_USER: u64 = 0x5000;
const GDT: u64 = 0x6000;
const IDT: u64 = 0x7000;
const TSS: u64 = 0x8000;
const KSTACK_TOP: u64 = 0xa000;
/// One HLT per vector: the gate for vector `v` points at `HANDLERS + v`.
const HANDLERS: u64 = 0xa000;
/// Physical home of the user pages: linear `DATA + x` lives at `USER_PHYS + x`.
const USER_PHYS: u64 = 0x20000;
const RAM: usize = 0x80000;

const KCODE: u16 = 0x10;
pub const UCODE32: u16 = 0x23;
pub const UDATA: u16 = 0x2b;
pub const UCODE64: u16 = 0x33;
const TSS_SEL: u16 = 0x40;

/// The result of one sequence in the interpreter.
pub struct Outcome {
    pub ctx: Context,
    pub mem: Vec<u8>,
}

pub struct Interp {
    cpu: Cpu,
    bus: FlatBus,
    bitness: u32,
}

fn put64(bus: &mut FlatBus, at: u64, v: u64) {
    bus.load(at, &v.to_le_bytes());
}

fn descriptor(access: u64, flags: u64) -> u64 {
    0xffff | access << 40 | 0xf << 48 | flags << 52
}

impl Interp {
    /// A CPU whose code segment is 64-bit (`bitness` 64) or 32-bit compatibility mode (32).
    #[must_use]
    pub fn new(bitness: u32) -> Self {
        let mut bus = FlatBus::new(RAM);
        put64(&mut bus, PML4, PDPT | 7);
        put64(&mut bus, PDPT, PD | 7);
        put64(&mut bus, PD, PT_LOW | 3);
        let user_pd = (layout::DATA >> 21) & 511;
        put64(&mut bus, PD + 8 * user_pd, PT_USER | 7);
        // Kernel pages: identity, supervisor.
        for n in 0..(RAM as u64 >> 12) {
            put64(&mut bus, PT_LOW + 8 * n, n << 12 | 3);
        }
        let user_pages = [
            (layout::DATA, layout::DATA_BYTES),
            (layout::STACK, layout::STACK_BYTES),
            (layout::CODE, layout::CODE_BYTES),
        ];
        for (lin, len) in user_pages {
            for p in (0..len as u64).step_by(4096) {
                let l = lin + p;
                let idx = (l >> 12) & 511;
                let phys = USER_PHYS + (l - layout::DATA);
                put64(&mut bus, PT_USER + 8 * idx, phys | 7);
            }
        }
        put64(&mut bus, GDT + u64::from(KCODE), descriptor(0x9b, 0xa));
        put64(&mut bus, GDT + 0x18, descriptor(0x93, 0xc));
        put64(
            &mut bus,
            GDT + u64::from(UCODE32 & !3),
            descriptor(0xfb, 0xc),
        );
        put64(&mut bus, GDT + u64::from(UDATA & !3), descriptor(0xf3, 0xc));
        put64(
            &mut bus,
            GDT + u64::from(UCODE64 & !3),
            descriptor(0xfb, 0xa),
        );
        for v in 0..256u64 {
            let target = HANDLERS + v;
            let lo = (target & 0xffff) | u64::from(KCODE) << 16 | 0x8e << 40 | (target >> 16) << 48;
            put64(&mut bus, IDT + 16 * v, lo);
            put64(&mut bus, IDT + 16 * v + 8, target >> 32);
        }
        bus.load(HANDLERS, &[0xf4; 256]);
        put64(&mut bus, TSS + 4, KSTACK_TOP);
        // "max": every extension the interpreter has handlers for (the generator filters by host).
        let model = nestor_cpu::cpuid::model_by_name("max")
            .copied()
            .unwrap_or(NESTOR64);
        let mut cpu = Cpu::with_model(model);
        cpu.s.cr0 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::AM | cr0::PG;
        cpu.s.cr4 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT;
        cpu.s.cr3 = PML4;
        cpu.s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
        cpu.s.gdtr.base = GDT;
        cpu.s.gdtr.limit = 0x4f;
        cpu.s.idtr.base = IDT;
        cpu.s.idtr.limit = 0xfff;
        cpu.s.tr = Segment {
            base: TSS,
            limit: 0x67,
            selector: TSS_SEL,
            attr: attr::P | 0xb,
        };
        Self { cpu, bus, bitness }
    }

    fn user_segments(&mut self) {
        let user = |selector: u16, kind: u16| Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector,
            attr: attr::P | attr::S | attr::ACCESSED | attr::G | 3 << attr::DPL_SHIFT | kind,
        };
        let s = &mut self.cpu.s;
        s.seg[SegReg::Cs as usize] = if self.bitness == 64 {
            user(UCODE64, attr::CODE | attr::RW | attr::L)
        } else {
            user(UCODE32, attr::CODE | attr::RW | attr::DB)
        };
        s.seg[SegReg::Ss as usize] = user(UDATA, attr::RW | attr::DB);
        // Linux runs 64-bit processes with null DS/ES/FS/GS; 32-bit code needs real ones.
        let data = if self.bitness == 64 {
            Segment::default()
        } else {
            user(UDATA, attr::RW | attr::DB)
        };
        for r in [SegReg::Ds, SegReg::Es, SegReg::Fs, SegReg::Gs] {
            s.seg[r as usize] = data;
        }
        if self.bitness == 32 {
            // FS/GS keep the host's null selectors; only DS/ES are reloaded for 32-bit code.
            s.seg[SegReg::Fs as usize] = Segment::default();
            s.seg[SegReg::Gs as usize] = Segment::default();
        }
    }

    /// Run `code` (placed at `SEQ`) from `init` over `mem` until RIP reaches `end`, a fault
    /// is delivered, or `max_steps` instructions (REP iterations count) have run.
    pub fn run(
        &mut self,
        init: &Context,
        mem: &[u8],
        code: &[u8],
        end: u64,
        max_steps: u64,
    ) -> Outcome {
        self.bus.load(USER_PHYS, &mem[..layout::DATA_BYTES]);
        self.bus.load(
            USER_PHYS + (layout::STACK - layout::DATA),
            &mem[layout::DATA_BYTES..MEM_BYTES],
        );
        let code_phys = USER_PHYS + (layout::SEQ - layout::DATA);
        let mut padded = vec![0xcc; layout::SEQ_MAX];
        padded[..code.len()].copy_from_slice(code);
        self.bus.load(code_phys, &padded);
        self.cpu.invalidate_code(code_phys, layout::SEQ_MAX as u64);
        let mut s = self.cpu.s.clone();
        s.gpr = init.gpr;
        s.rip = layout::SEQ;
        s.rflags = init.rflags | 2 | (1 << 9);
        s.lazy = Default::default();
        s.events = Default::default();
        let _ = env::fxrstor(&mut s.x87, &init.fx, true);
        for i in 0..16 {
            s.xmm[i] = init.xmm(i);
        }
        self.cpu.set_state(s);
        self.user_segments();
        let mut ctx = *init;
        ctx.vector = layout::NO_FAULT;
        let mut steps = 0;
        while self.cpu.s.rip != end {
            if steps >= max_steps {
                ctx.vector = CHILD_DIED;
                break;
            }
            self.cpu.step(&mut self.bus);
            steps += 1;
            let rip = self.cpu.s.rip;
            if (HANDLERS..HANDLERS + 256).contains(&rip) {
                self.read_frame(rip - HANDLERS, &mut ctx);
                break;
            }
        }
        let st = self.cpu.state();
        ctx.gpr = st.gpr;
        if ctx.vector == layout::NO_FAULT || ctx.vector == CHILD_DIED {
            ctx.rflags = st.rflags;
        } else {
            // RSP and RFLAGS at the fault come from the frame.
            ctx.gpr[4] = ctx.reserved[1];
        }
        let x87 = env::fxsave(&st.x87, true);
        ctx.fx[..x87.len()].copy_from_slice(&x87);
        for i in 0..16 {
            ctx.set_xmm(i, st.xmm[i]);
        }
        let ram = self.bus.ram();
        let mut out = Vec::with_capacity(MEM_BYTES);
        let data = USER_PHYS as usize;
        out.extend_from_slice(&ram[data..data + layout::DATA_BYTES]);
        let stack = (USER_PHYS + (layout::STACK - layout::DATA)) as usize;
        out.extend_from_slice(&ram[stack..stack + layout::STACK_BYTES]);
        Outcome { ctx, mem: out }
    }

    /// Read the interrupt frame on the kernel stack into `ctx` (saved RSP into `reserved[1]`).
    fn read_frame(&mut self, vector: u64, ctx: &mut Context) {
        let ram = self.bus.ram();
        let q = |at: u64| {
            let a = at as usize;
            let mut b = [0u8; 8];
            if let Some(src) = ram.get(a..a + 8) {
                b.copy_from_slice(src);
            }
            u64::from_le_bytes(b)
        };
        let mut sp = self.cpu.s.gpr[4];
        ctx.vector = vector;
        ctx.error_code = 0;
        if has_error_code(vector) {
            ctx.error_code = q(sp);
            sp += 8;
        }
        ctx.fault_rip = q(sp);
        ctx.rflags = q(sp + 16);
        ctx.reserved[1] = q(sp + 24);
        ctx.fault_addr = self.cpu.s.cr2;
    }
}
