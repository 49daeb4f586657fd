//! x87 instructions: arithmetic, comparisons, loads and stores, constants, stack control,
//! transcendentals (this file), and the control/environment instructions, FXSAVE/FXRSTOR
//! and WAIT (`x87/control.rs`). The numeric work is in `crate::x87`.

mod codes;
mod control;
mod mem;

pub(crate) use codes::register;

use crate::fault::{Exec, Fault};
use crate::state::{cr0, rflags};
use crate::x87::arith::{self, exc, Cmp, Op, Res};
use crate::x87::conv::{self, Const};
use crate::x87::f80::{Class, Format, Rc, DOUBLE, SINGLE};
use crate::x87::trans::{self, Trig};
use crate::x87::{fsw, ops, X87State, F80};
use crate::{Bus, Cpu};
use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind, Register};

/// #NM, then (for waiting instructions) the pending-exception check. `Ok(false)`: the
/// instruction waits for the FERR# interrupt and must not run now.
pub(crate) fn enter(cpu: &mut Cpu, waiting: bool) -> Exec<bool> {
    if cpu.s.cr0 & (cr0::EM | cr0::TS) != 0 {
        return Err(Fault::NM);
    }
    if waiting {
        return pending(cpu);
    }
    Ok(true)
}

/// An unmasked exception is pending: #MF with CR0.NE, else FERR# and a frozen processor
/// until the interrupt (unless the machine asserts IGNNE#). See `crate::x87` for the contract.
pub(crate) fn pending(cpu: &mut Cpu) -> Exec<bool> {
    if cpu.s.x87.fsw & fsw::ES == 0 {
        return Ok(true);
    }
    if cpu.s.cr0 & cr0::NE != 0 {
        return Err(Fault::MF);
    }
    if cpu.s.x87.ignne {
        return Ok(true);
    }
    cpu.s.x87.ferr = true;
    cpu.s.events.halted = true;
    cpu.next_ip = cpu.s.rip;
    Ok(false)
}

/// ST(i) index of a register operand.
fn sti(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::ST0 as usize) & 7
}

/// Record the instruction (and memory operand) pointers a non-control instruction leaves.
fn note(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) {
    let fop = mem::opcode_bits(cpu, bus, i);
    let cs = cpu.s.seg(crate::SegReg::Cs).selector;
    let x = &mut cpu.s.x87;
    x.fop = fop;
    x.fip = cpu.s.rip;
    x.fcs = cs;
    if i.op_count() > 0 && i.op_kind(0) == OpKind::Memory {
        let seg = cpu.mem_seg(i);
        cpu.s.x87.fdp = cpu.effective_address(i);
        cpu.s.x87.fds = cpu.s.seg(seg).selector;
    }
}

/// Common start of a non-control waiting instruction.
fn start(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec<bool> {
    if !enter(cpu, true)? {
        return Ok(false);
    }
    note(cpu, bus, i);
    Ok(true)
}

impl X87State {
    /// Commit a result to ST(dst): an unmasked invalid/denormal/zero-divide leaves the
    /// destination and the stack unchanged; otherwise store, set C1, pop `pops` times.
    fn commit(&mut self, dst: usize, r: Res, pops: usize) {
        self.set_c1(false);
        if r.aborts(self.fcw) {
            self.raise(r.exc);
            return;
        }
        self.set_st(dst, r.val);
        self.set_c1(r.up);
        self.raise(r.exc);
        for _ in 0..pops {
            self.pop();
        }
    }

    /// Stack underflow: with #IA masked the destination gets the indefinite.
    fn underflow(&mut self, dst: Option<usize>, pops: usize) {
        self.stack_fault(false);
        if self.im() {
            if let Some(d) = dst {
                self.set_st(d, F80::INDEFINITE);
            }
            for _ in 0..pops {
                self.pop();
            }
        }
    }

    /// Push a value computed as `r` (FLD forms): stack overflow, then the value's own
    /// exceptions.
    fn push_res(&mut self, r: Res) {
        self.set_c1(false);
        if !self.is_empty(7) {
            self.stack_fault(true);
            if self.im() {
                self.push(F80::INDEFINITE);
            }
            return;
        }
        // Measured: an unmasked #D does not stop a load (the value is pushed normalized).
        if r.exc & (exc::IE | exc::ZE) & !self.fcw != 0 {
            self.raise(r.exc);
            return;
        }
        self.push(r.val);
        self.set_c1(r.up);
        self.raise(r.exc);
    }

    fn rc(&self) -> Rc {
        Rc::from_fcw(self.fcw)
    }
}

/// A memory operand of an arithmetic or compare instruction, converted to 80 bits. The
/// denormal flag of a single/double source is returned, since the conversion normalizes it.
fn mem_operand(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec<(F80, bool)> {
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    Ok(match i.memory_size() {
        MemorySize::Float32 => {
            let (v, den) = crate::x87::f80::from_ieee(cpu.read_mem(bus, seg, off, 4)?, SINGLE);
            (v, den)
        }
        MemorySize::Float64 => crate::x87::f80::from_ieee(cpu.read_mem(bus, seg, off, 8)?, DOUBLE),
        MemorySize::Int16 => {
            let v = cpu.read_mem(bus, seg, off, 2)? as u16 as i16;
            (conv::load_int(i64::from(v)), false)
        }
        _ => {
            let v = cpu.read_mem(bus, seg, off, 4)? as u32 as i32;
            (conv::load_int(i64::from(v)), false)
        }
    })
}

/// Add the memory source's #D (which the conversion to 80 bits hides from the core).
fn with_denormal(den: bool, fcw: u16, f: impl FnOnce() -> Res) -> Res {
    let r = f();
    if den {
        arith::add_de(r, exc::DE, fcw)
    } else {
        r
    }
}

/// FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in all forms, their P variants and FIxxx.
fn arith(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Mnemonic as M;
    let (op, reversed) = match i.mnemonic() {
        M::Fadd | M::Faddp | M::Fiadd => (Op::Add, false),
        M::Fsub | M::Fsubp | M::Fisub => (Op::Sub, false),
        M::Fsubr | M::Fsubrp | M::Fisubr => (Op::Sub, true),
        M::Fmul | M::Fmulp | M::Fimul => (Op::Mul, false),
        M::Fdiv | M::Fdivp | M::Fidiv => (Op::Div, false),
        _ => (Op::Div, true),
    };
    let pops = usize::from(matches!(
        i.mnemonic(),
        M::Faddp | M::Fsubp | M::Fsubrp | M::Fmulp | M::Fdivp | M::Fdivrp
    ));
    let mem = i.op_kind(0) == OpKind::Memory;
    if !enter(cpu, true)? {
        return Ok(());
    }
    let (b, den) = if mem {
        mem_operand(cpu, bus, i)?
    } else {
        (F80::ZERO, false)
    };
    note(cpu, bus, i);
    let (dst, srci) = if mem {
        (0, None)
    } else {
        (sti(i.op_register(0)), Some(sti(i.op_register(1))))
    };
    let x = &mut cpu.s.x87;
    if x.is_empty(dst) || srci.is_some_and(|s| x.is_empty(s)) {
        x.underflow(Some(dst), pops);
        return Ok(());
    }
    let a = x.st(dst);
    let b = srci.map_or(b, |s| x.st(s));
    let (l, r) = if reversed { (b, a) } else { (a, b) };
    let fcw = x.fcw;
    // NaN operands take precedence over the denormal memory source.
    let den = den && !a.is_nan() && !b.is_nan();
    let res = with_denormal(den, fcw, || {
        arith::binary(op, l, r, Format::extended_pc(fcw), fcw)
    });
    x.commit(dst, res, pops);
    Ok(())
}

/// Which comparison: FCOM family (signalling), FUCOM family (quiet), with EFLAGS (FCOMI).
fn compare(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Mnemonic as M;
    let m = i.mnemonic();
    let quiet = matches!(
        m,
        M::Fucom | M::Fucomp | M::Fucompp | M::Fucomi | M::Fucomip
    );
    let eflags = matches!(m, M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip);
    let pops = match m {
        M::Fcompp | M::Fucompp => 2,
        M::Fcomp | M::Fucomp | M::Fcomip | M::Fucomip | M::Ficomp => 1,
        _ => 0,
    };
    let mem = i.op_count() > 0 && i.op_kind(0) == OpKind::Memory;
    if !enter(cpu, true)? {
        return Ok(());
    }
    let (mv, den) = if mem {
        mem_operand(cpu, bus, i)?
    } else {
        (F80::ZERO, false)
    };
    note(cpu, bus, i);
    let other = if mem {
        None
    } else if i.op_count() == 2 {
        Some(sti(i.op_register(1)))
    } else {
        Some(1)
    };
    let x = &mut cpu.s.x87;
    let (cmp, e) = if x.is_empty(0) || other.is_some_and(|o| x.is_empty(o)) {
        x.stack_fault(false);
        (Cmp::Unordered, exc::IE)
    } else {
        let b = other.map_or(mv, |o| x.st(o));
        let (c, e) = arith::compare(x.st(0), b, quiet, x.fcw);
        let nan = x.st(0).is_nan() || b.is_nan();
        let e = if den && !nan && e & exc::IE == 0 {
            e | exc::DE
        } else {
            e
        };
        (c, e)
    };
    set_compare(cpu, cmp, e, eflags, pops);
    Ok(())
}

/// Report a comparison in C3/C2/C0 or ZF/PF/CF, unless an unmasked exception stops it.
fn set_compare(cpu: &mut Cpu, cmp: Cmp, e: u16, eflags: bool, pops: usize) {
    let x = &mut cpu.s.x87;
    x.set_c1(false);
    x.raise(e);
    // Measured on Intel hardware: an unmasked exception still sets the condition codes
    // (unordered for #IA) but suppresses the pops.
    let pops = if e & exc::PRE & !x.fcw != 0 { 0 } else { pops };
    let (c3, c2, c0) = match cmp {
        Cmp::Gt => (false, false, false),
        Cmp::Lt => (false, false, true),
        Cmp::Eq => (true, false, false),
        Cmp::Unordered => (true, true, true),
    };
    for _ in 0..pops {
        x.pop();
    }
    if eflags {
        let f = cpu.flags()
            & !(rflags::ZF | rflags::PF | rflags::CF | rflags::OF | rflags::SF | rflags::AF);
        let f = f
            | if c3 { rflags::ZF } else { 0 }
            | if c2 { rflags::PF } else { 0 }
            | if c0 { rflags::CF } else { 0 };
        cpu.set_flags(f);
    } else {
        let c1 = x.fsw & fsw::C1 != 0;
        x.set_cc(c3, c2, c1, c0);
    }
}

/// FTST (compare with +0.0) and FXAM (classify).
fn tst_xam(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !start(cpu, bus, i)? {
        return Ok(());
    }
    if i.mnemonic() == Mnemonic::Ftst {
        let x = &mut cpu.s.x87;
        if x.is_empty(0) {
            x.stack_fault(false);
            set_compare(cpu, Cmp::Unordered, exc::IE, false, 0);
        } else {
            let (c, e) = arith::compare(x.st(0), F80::ZERO, false, x.fcw);
            set_compare(cpu, c, e, false, 0);
        }
        return Ok(());
    }
    let x = &mut cpu.s.x87;
    let v = x.st(0);
    // C3 C2 C0: unsupported 000, NaN 001, normal 010, infinity 011, zero 100, empty 101,
    // denormal 110; C1 is the sign.
    let (c3, c2, c0) = if x.is_empty(0) {
        (true, false, true)
    } else {
        match v.class() {
            Class::Unsupported => (false, false, false),
            Class::QNan | Class::SNan => (false, false, true),
            Class::Normal => (false, true, false),
            Class::Infinity => (false, true, true),
            Class::Zero => (true, false, false),
            Class::Denormal => (true, true, false),
        }
    };
    x.set_cc(c3, c2, v.sign(), c0);
    Ok(())
}

/// FLD m32/m64/m80, FLD ST(i), FILD, FBLD and the constants.
fn load(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let mem = i.op_count() > 0 && i.op_kind(0) == OpKind::Memory;
    if !enter(cpu, true)? {
        return Ok(());
    }
    let r = if mem {
        let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
        match i.memory_size() {
            MemorySize::Float32 => Some(conv::load_ieee(cpu.read_mem(bus, seg, off, 4)?, SINGLE)),
            MemorySize::Float64 => Some(conv::load_ieee(cpu.read_mem(bus, seg, off, 8)?, DOUBLE)),
            MemorySize::Float80 | MemorySize::Bcd => {
                let mut b = [0u8; 10];
                mem::read_bytes(cpu, bus, seg, off, &mut b)?;
                Some(Res::ok(if i.memory_size() == MemorySize::Bcd {
                    conv::load_bcd(&b)
                } else {
                    F80::from_bytes(&b)
                }))
            }
            size => {
                let n = size.size() as u8;
                let v = cpu.read_mem(bus, seg, off, n)?;
                let v = match n {
                    2 => i64::from(v as u16 as i16),
                    4 => i64::from(v as u32 as i32),
                    _ => v as i64,
                };
                Some(Res::ok(conv::load_int(v)))
            }
        }
    } else {
        None
    };
    note(cpu, bus, i);
    let x = &mut cpu.s.x87;
    let r = match r {
        Some(r) => r,
        None if i.mnemonic() == Mnemonic::Fld => {
            let s = sti(i.op_register(0));
            if x.is_empty(s) {
                x.underflow(None, 0);
                // Measured (differential harness): the indefinite is pushed even onto a full ST7.
                if x.im() {
                    x.push(F80::INDEFINITE);
                }
                return Ok(());
            }
            Res::ok(x.st(s))
        }
        None => Res::ok(conv::constant(constant_of(i.mnemonic()), x.rc())),
    };
    x.push_res(r);
    Ok(())
}

fn constant_of(m: Mnemonic) -> Const {
    match m {
        Mnemonic::Fld1 => Const::One,
        Mnemonic::Fldl2t => Const::L2t,
        Mnemonic::Fldl2e => Const::L2e,
        Mnemonic::Fldpi => Const::Pi,
        Mnemonic::Fldlg2 => Const::Lg2,
        Mnemonic::Fldln2 => Const::Ln2,
        _ => Const::Zero,
    }
}

/// FST/FSTP to ST(i) and to memory (m32, m64, m80), FIST/FISTP/FISTTP, FBSTP.
fn store(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Mnemonic as M;
    let pops = usize::from(matches!(
        i.mnemonic(),
        M::Fstp | M::Fistp | M::Fisttp | M::Fbstp | M::Fstpnce
    ));
    if i.op_kind(0) == OpKind::Register {
        if !start(cpu, bus, i)? {
            return Ok(());
        }
        let d = sti(i.op_register(0));
        let x = &mut cpu.s.x87;
        if x.is_empty(0) {
            x.underflow(Some(d), pops);
        } else {
            let v = x.st(0);
            x.set_c1(false);
            x.set_st(d, v);
            for _ in 0..pops {
                x.pop();
            }
        }
        return Ok(());
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    let size = i.memory_size();
    if !enter(cpu, true)? {
        return Ok(());
    }
    mem::probe_bytes(cpu, bus, seg, off, size.size())?;
    note(cpu, bus, i);
    let x = &cpu.s.x87;
    let empty = x.is_empty(0);
    let (v, fcw) = (x.st(0), x.fcw);
    let (bytes, e, up) = if empty {
        (x.im().then(|| store_indefinite(size)), exc::IE, false)
    } else {
        store_value(i, size, v, fcw)
    };
    if let Some(b) = &bytes {
        mem::write_bytes(cpu, bus, seg, off, &b[..size.size()])?;
    }
    let x = &mut cpu.s.x87;
    if empty {
        x.stack_fault(false);
    } else {
        x.set_c1(up);
        x.raise(e);
    }
    if bytes.is_some() {
        for _ in 0..pops {
            x.pop();
        }
    }
    Ok(())
}

/// The bytes a masked stack-underflow store writes: the indefinite of the format.
fn store_indefinite(size: MemorySize) -> [u8; 10] {
    let mut b = [0u8; 10];
    match size {
        MemorySize::Float32 => b[..4].copy_from_slice(&0xffc0_0000u32.to_le_bytes()),
        MemorySize::Float64 => b[..8].copy_from_slice(&0xfff8_0000_0000_0000u64.to_le_bytes()),
        MemorySize::Float80 => b = F80::INDEFINITE.to_bytes(),
        MemorySize::Bcd => b = conv::BCD_INDEFINITE,
        s => {
            let v = conv::int_indefinite(s.size() as u32 * 8);
            b[..8].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

/// Convert ST0 for a memory store: (bytes or nothing, exceptions, C1).
fn store_value(
    i: &Instruction,
    size: MemorySize,
    v: F80,
    fcw: u16,
) -> (Option<[u8; 10]>, u16, bool) {
    let rc = if i.mnemonic() == Mnemonic::Fisttp {
        Rc::Zero
    } else {
        Rc::from_fcw(fcw)
    };
    let bytes = |x: u64| {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&x.to_le_bytes());
        b
    };
    match size {
        MemorySize::Float80 => (Some(v.to_bytes()), 0, false),
        MemorySize::Bcd => {
            let s = conv::store_bcd(v, fcw);
            (s.val, s.exc, s.up)
        }
        MemorySize::Float32 | MemorySize::Float64 => {
            let fmt = if size == MemorySize::Float32 {
                SINGLE
            } else {
                DOUBLE
            };
            let s = conv::store_ieee(v, fmt, fcw);
            (s.val.map(bytes), s.exc, s.up)
        }
        s => {
            let st = conv::store_int(v, s.size() as u32 * 8, rc, fcw);
            (st.val.map(|v| bytes(v as u64)), st.exc, st.up)
        }
    }
}

/// FXCH, FCHS, FABS, FFREE(P), FINCSTP, FDECSTP, FNOP and the 287 no-ops, FCMOVcc.
fn stack_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Mnemonic as M;
    if !start(cpu, bus, i)? {
        return Ok(());
    }
    let cond = fcmov_condition(cpu, i.mnemonic());
    let x = &mut cpu.s.x87;
    x.set_c1(false);
    match i.mnemonic() {
        M::Fxch => {
            let s = if i.op_count() == 2 {
                sti(i.op_register(1))
            } else {
                1
            };
            if x.is_empty(0) || x.is_empty(s) {
                x.stack_fault(false);
                if !x.im() {
                    return Ok(());
                }
                for r in [0, s] {
                    if x.is_empty(r) {
                        x.set_st(r, F80::INDEFINITE);
                    }
                }
            }
            let (a, b) = (x.st(0), x.st(s));
            x.set_st(0, b);
            x.set_st(s, a);
        }
        M::Fchs | M::Fabs if x.is_empty(0) => x.underflow(Some(0), 0),
        M::Fchs => x.set_st(0, x.st(0).negated()),
        M::Fabs => x.set_st(0, x.st(0).abs()),
        M::Ffree | M::Ffreep => {
            x.set_empty(sti(i.op_register(0)));
            if i.mnemonic() == M::Ffreep {
                x.pop();
            }
        }
        M::Fincstp => x.set_top(x.top() + 1),
        M::Fdecstp => x.set_top(x.top().wrapping_sub(1)),
        _ => {
            let Some(c) = cond else { return Ok(()) };
            let s = sti(i.op_register(1));
            if x.is_empty(0) || x.is_empty(s) {
                x.underflow(Some(0), 0);
            } else if c {
                x.set_st(0, x.st(s));
            }
        }
    }
    Ok(())
}

/// The condition of an FCMOVcc (`None` for other instructions).
fn fcmov_condition(cpu: &Cpu, m: Mnemonic) -> Option<bool> {
    use Mnemonic as M;
    let f = cpu.flags();
    let (cf, zf, pf) = (
        f & rflags::CF != 0,
        f & rflags::ZF != 0,
        f & rflags::PF != 0,
    );
    Some(match m {
        M::Fcmovb => cf,
        M::Fcmove => zf,
        M::Fcmovbe => cf || zf,
        M::Fcmovu => pf,
        M::Fcmovnb => !cf,
        M::Fcmovne => !zf,
        M::Fcmovnbe => !(cf || zf),
        M::Fcmovnu => !pf,
        _ => return None,
    })
}

/// One-operand operations on ST0: FSQRT, FRNDINT, F2XM1, FSIN, FCOS, and the two-operand
/// ones that pop: FSCALE, FPREM, FPREM1, FPATAN, FYL2X, FYL2XP1.
fn unary(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    use Mnemonic as M;
    if !start(cpu, bus, i)? {
        return Ok(());
    }
    let m = i.mnemonic();
    let two = matches!(
        m,
        M::Fscale | M::Fprem | M::Fprem1 | M::Fpatan | M::Fyl2x | M::Fyl2xp1
    );
    let x = &mut cpu.s.x87;
    if x.is_empty(0) || (two && x.is_empty(1)) {
        let (dst, pops) = if matches!(m, M::Fpatan | M::Fyl2x | M::Fyl2xp1) {
            (1, 1)
        } else {
            (0, 0)
        };
        x.underflow(Some(dst), pops);
        if matches!(m, M::Fsin | M::Fcos | M::Fprem | M::Fprem1) {
            // Measured (differential harness): a stack fault clears C2, keeps C0 and C3.
            x.fsw &= !fsw::C2;
        }
        return Ok(());
    }
    let (a, b, fcw) = (x.st(0), x.st(1), x.fcw);
    match m {
        M::Fsqrt => x.commit(0, arith::sqrt(a, Format::extended_pc(fcw), fcw), 0),
        M::Frndint => x.commit(0, arith::rndint(a, fcw), 0),
        M::F2xm1 => x.commit(0, trans::f2xm1(a, fcw), 0),
        M::Fscale => x.commit(0, ops::scale(a, b, fcw), 0),
        M::Fpatan => x.commit(1, trans::patan(b, a, fcw), 1),
        M::Fyl2x => x.commit(1, trans::yl2x(b, a, false, fcw), 1),
        M::Fyl2xp1 => x.commit(1, trans::yl2x(b, a, true, fcw), 1),
        M::Fprem | M::Fprem1 => {
            let p = ops::prem(a, b, m == M::Fprem1, fcw);
            x.commit(0, p.res, 0);
            if p.res.exc & exc::IE != 0 || a.is_nan() || b.is_nan() {
                // Measured (differential harness): no quotient; C2 and C1 cleared, C0 and
                // C3 kept.
                x.fsw &= !(fsw::C2 | fsw::C1);
            } else if !p.res.aborts(fcw) {
                let q = p.q;
                x.set_cc(q & 2 != 0, p.incomplete, q & 1 != 0, q & 4 != 0);
            }
        }
        _ => {
            let f = if m == M::Fsin { Trig::Sin } else { Trig::Cos };
            match trans::trig(f, a, fcw) {
                Some(r) => {
                    x.commit(0, r, 0);
                    x.fsw &= !fsw::C2;
                }
                None => x.fsw = (x.fsw & !fsw::C1) | fsw::C2,
            }
        }
    }
    Ok(())
}

/// Instructions that replace ST0 and push a second result: FPTAN, FSINCOS, FXTRACT.
fn two_results(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !start(cpu, bus, i)? {
        return Ok(());
    }
    let x = &mut cpu.s.x87;
    if i.mnemonic() != Mnemonic::Fxtract && (x.is_empty(0) || !x.is_empty(7)) {
        // Measured (differential harness): a stack fault of FPTAN/FSINCOS clears C2.
        x.fsw &= !fsw::C2;
    }
    if x.is_empty(0) {
        x.underflow(Some(0), 0);
        // Measured (differential harness): the indefinite is pushed even onto a full ST7.
        if x.im() {
            x.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    if !x.is_empty(7) {
        // The push would overflow: nothing happens but the stack fault (SDM: #IS).
        x.stack_fault(true);
        if x.im() {
            x.set_st(0, F80::INDEFINITE);
            x.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    let (a, fcw) = (x.st(0), x.fcw);
    let (first, second) = match i.mnemonic() {
        Mnemonic::Fxtract => ops::xtract(a, fcw),
        m => {
            let f = if m == Mnemonic::Fptan {
                Trig::Tan
            } else {
                Trig::Sin
            };
            let Some(r) = trans::trig(f, a, fcw) else {
                x.fsw = (x.fsw & !fsw::C1) | fsw::C2;
                return Ok(());
            };
            x.fsw &= !fsw::C2;
            if r.exc & exc::IE != 0 || a.is_nan() {
                (r, r.val)
            } else if f == Trig::Tan {
                (r, F80::ONE)
            } else {
                // FSINCOS: sine replaces ST0, cosine is pushed on top.
                let c = trans::trig(Trig::Cos, a, fcw).unwrap_or(r);
                let first = Res {
                    exc: r.exc | c.exc,
                    ..r
                };
                (first, c.val)
            }
        }
    };
    x.set_c1(false);
    if first.aborts(fcw) {
        x.raise(first.exc);
        return Ok(());
    }
    x.set_st(0, first.val);
    x.push(second);
    x.set_c1(first.up);
    x.raise(first.exc);
    Ok(())
}

#[cfg(test)]
mod tests;
