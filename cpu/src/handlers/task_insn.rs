//! Protected-mode-only system instructions on selectors: LLDT/LTR/SLDT/STR, and the
//! descriptor queries LAR/LSL/VERR/VERW and ARPL (#UD in real and virtual-8086 mode).

use crate::descriptor::{sys, Descriptor};
use crate::fault::{Exec, Fault};
use crate::handlers::system::require_cpl0;
use crate::operand::{gpr_ref, op_size};
use crate::state::{rflags, Segment};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

fn require_protected(cpu: &Cpu) -> Exec {
    if !cpu.s.protected_mode() || cpu.s.v86_mode() {
        return Err(Fault::UD);
    }
    Ok(())
}

fn set_zf(cpu: &mut Cpu, zf: bool) {
    let f = cpu.flags();
    cpu.set_flags(if zf { f | rflags::ZF } else { f & !rflags::ZF });
}

fn lldt(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = cpu.read_op(bus, i, 0, 2)? as u16;
    let code = sel & 0xfffc;
    if code == 0 {
        // A null LDTR is legal; any LDT reference then faults.
        cpu.s.ldtr = Segment {
            selector: sel,
            ..Segment::default()
        };
        return Ok(());
    }
    if sel & 4 != 0 || u64::from(sel | 7) > u64::from(cpu.s.gdtr.limit) {
        return Err(Fault::gp(code));
    }
    let d = Descriptor(cpu.read_sys(
        bus,
        cpu.s.gdtr.base.wrapping_add(u64::from(sel & 0xfff8)),
        8,
    )?);
    if d.is_segment() || d.typ() != sys::LDT {
        return Err(Fault::gp(code));
    }
    if !d.present() {
        return Err(Fault::np(code));
    }
    let mut ldtr = d.to_segment(sel);
    if cpu.s.long_mode() {
        // IA-32e: a 16-byte descriptor with bits 63..32 of the base in its upper half.
        ldtr.base |= cpu.read_descriptor_high(bus, sel)? << 32;
        if !cpu.canonical_max(ldtr.base) {
            return Err(Fault::gp(code));
        }
    }
    cpu.s.ldtr = ldtr;
    Ok(())
}

fn ltr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = cpu.read_op(bus, i, 0, 2)? as u16;
    if sel & 0xfffc == 0 {
        return Err(Fault::gp(0));
    }
    let d = cpu.gdt_tss(bus, sel, Fault::gp)?;
    let long = cpu.s.long_mode();
    // IA-32e mode has only the 64-bit TSS (type 9/11); 16-bit TSSs are invalid there.
    if d.typ() & 2 != 0 || (long && d.typ() & 8 == 0) {
        return Err(Fault::gp(sel & 0xfffc));
    }
    if !d.present() {
        return Err(Fault::np(sel & 0xfffc));
    }
    let mut tr = Descriptor(d.0 | 2 << 40).to_segment(sel);
    if long {
        tr.base |= cpu.read_descriptor_high(bus, sel)? << 32;
        if !cpu.canonical_max(tr.base) {
            return Err(Fault::gp(sel & 0xfffc));
        }
    }
    cpu.set_tss_busy(bus, sel, true)?;
    cpu.s.tr = tr;
    Ok(())
}

/// SLDT/STR: a register destination is zero-extended, memory takes 16 bits.
fn store_selector(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    crate::handlers::system::check_umip(cpu)?;
    let v = if i.mnemonic() == Mnemonic::Sldt {
        cpu.s.ldtr.selector
    } else {
        cpu.s.tr.selector
    };
    let size = if i.op0_kind() == OpKind::Register {
        op_size(i, 0)
    } else {
        2
    };
    cpu.write_op(bus, i, 0, size, u64::from(v))
}

/// The descriptor a LAR/LSL/VERR/VERW selector names, or `None` when it names none.
fn query_descriptor(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16) -> Exec<Option<Descriptor>> {
    if sel & 0xfffc == 0 {
        return Ok(None);
    }
    match cpu.descriptor_addr(sel, Fault::gp) {
        Ok(at) => Ok(Some(Descriptor(cpu.read_sys(bus, at, 8)?))),
        Err(_) => Ok(None),
    }
}

/// May code at the current CPL see this descriptor through `sel`? (Conforming code always.)
fn visible(cpu: &Cpu, d: &Descriptor, sel: u16) -> bool {
    d.conforming() || (d.dpl() >= cpu.s.cpl() && d.dpl() >= (sel & 3) as u8)
}

fn lar_lsl(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    let sel = cpu.read_op(bus, i, 1, 2)? as u16;
    let lar = i.mnemonic() == Mnemonic::Lar;
    let Some(d) = query_descriptor(cpu, bus, sel)? else {
        set_zf(cpu, false);
        return Ok(());
    };
    // IA-32e mode knows only LDTs, 64-bit TSSs and 64-bit call gates among system types.
    let type_ok = d.is_segment()
        || match (lar, cpu.s.long_mode()) {
            (true, false) => matches!(d.typ(), 1 | 2 | 3 | 4 | 5 | 9 | 11 | 12),
            (false, false) => matches!(d.typ(), 1 | 2 | 3 | 9 | 11),
            (true, true) => matches!(d.typ(), 2 | 9 | 11 | 12),
            (false, true) => matches!(d.typ(), 2 | 9 | 11),
        };
    if !type_ok || !visible(cpu, &d, sel) {
        set_zf(cpu, false);
        return Ok(());
    }
    let size = op_size(i, 0);
    let v = if lar {
        let mask = if size == 2 { 0xff00 } else { 0x00f0_ff00 };
        (d.0 >> 32) & mask
    } else {
        u64::from(d.limit())
    };
    cpu.write_op(bus, i, 0, size, v)?;
    set_zf(cpu, true);
    Ok(())
}

fn verr_verw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    let sel = cpu.read_op(bus, i, 0, 2)? as u16;
    let ok = match query_descriptor(cpu, bus, sel)? {
        Some(d) if visible(cpu, &d, sel) => {
            if i.mnemonic() == Mnemonic::Verr {
                d.readable_or_data()
            } else {
                d.writable_data()
            }
        }
        _ => false,
    };
    set_zf(cpu, ok);
    Ok(())
}

fn arpl(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_protected(cpu)?;
    cpu.probe_op(bus, i, 0, 2)?;
    let dst = cpu.read_op(bus, i, 0, 2)? & 0xffff;
    let src = cpu.reg(i.op1_register()) & 3;
    if dst & 3 >= src {
        set_zf(cpu, false);
        return Ok(());
    }
    let v = (dst & !3) | src;
    match (i.op0_kind(), gpr_ref(i.op0_register())) {
        // Only the low word of a register destination changes, whatever its size.
        (OpKind::Register, Some(g)) => cpu.set_gpr(g.index, 2, v),
        _ => cpu.write_op(bus, i, 0, 2, v)?,
    }
    set_zf(cpu, true);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(
        &[Code::Lldt_rm16, Code::Lldt_r32m16],
        lldt,
        Meta::system(Isa::I286),
    );
    t.add(
        &[Code::Ltr_rm16, Code::Ltr_r32m16],
        ltr,
        Meta::system(Isa::I286),
    );
    t.add(
        &[
            Code::Sldt_rm16,
            Code::Sldt_r32m16,
            Code::Str_rm16,
            Code::Str_r32m16,
        ],
        store_selector,
        Meta::plain(Isa::I286),
    );
    t.add(
        &[
            Code::Lar_r16_rm16,
            Code::Lar_r32_r32m16,
            Code::Lsl_r16_rm16,
            Code::Lsl_r32_r32m16,
        ],
        lar_lsl,
        Meta::plain(Isa::I286),
    );
    t.add(
        &[
            Code::Verr_rm16,
            Code::Verr_r32m16,
            Code::Verw_rm16,
            Code::Verw_r32m16,
        ],
        verr_verw,
        Meta::plain(Isa::I286),
    );
    t.add(
        &[Code::Arpl_rm16_r16, Code::Arpl_r32m16_r32],
        arpl,
        Meta::plain(Isa::I286),
    );
    t.add(&[Code::Lldt_r64m16], lldt, Meta::system(Isa::X64));
    t.add(&[Code::Ltr_r64m16], ltr, Meta::system(Isa::X64));
    let x = Meta::plain(Isa::X64);
    t.add(&[Code::Sldt_r64m16, Code::Str_r64m16], store_selector, x);
    t.add(&[Code::Lar_r64_r64m16, Code::Lsl_r64_r64m16], lar_lsl, x);
    t.add(&[Code::Verr_r64m16, Code::Verw_r64m16], verr_verw, x);
}
