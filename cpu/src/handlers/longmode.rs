//! Fast system calls and the system instructions of long mode and modern cores: SYSCALL/SYSRET
//! (64-bit mode, as on Intel), SYSENTER/SYSEXIT (any protected mode), SWAPGS,
//! RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE, RDTSCP, RDPID, MONITOR/MWAIT, STAC/CLAC, INVPCID,
//! CLFLUSH/CLFLUSHOPT/CLWB, PREFETCH*, LFENCE/MFENCE/SFENCE. Each raises #UD when the CPU
//! model lacks its CPUID bit.
//!
//! There are no caches or speculation to model: the fences and prefetches do nothing, the
//! cache flushes only check their operand as a byte load would. MWAIT waits like HLT when
//! interrupts are enabled (an interrupt is a break event) and otherwise returns at once, which
//! the architecture allows as a spurious wake-up.

use crate::cpuid::{ecx, edx, ext, leaf7};
use crate::fault::{Exec, Fault};
use crate::flags::size_mask;
use crate::state::{attr, cr4, efer, rflags, SegReg, Segment};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction};

/// The flat 4 GiB code and data segments SYSCALL/SYSRET and SYSENTER/SYSEXIT load.
fn flat(selector: u16, dpl: u8, kind: u16) -> Segment {
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attr: attr::P
            | attr::S
            | attr::ACCESSED
            | attr::G
            | kind
            | u16::from(dpl) << attr::DPL_SHIFT,
    }
}

fn code64(selector: u16, dpl: u8) -> Segment {
    flat(selector, dpl, attr::CODE | attr::RW | attr::L)
}

fn code32(selector: u16, dpl: u8) -> Segment {
    flat(selector, dpl, attr::CODE | attr::RW | attr::DB)
}

fn data32(selector: u16, dpl: u8) -> Segment {
    flat(selector, dpl, attr::RW | attr::DB)
}

fn require(ok: bool) -> Exec {
    if ok {
        Ok(())
    } else {
        Err(Fault::UD)
    }
}

fn syscall(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require(cpu.s.long64() && cpu.s.efer & efer::SCE != 0)?;
    let sel = ((cpu.s.msr.star >> 32) & 0xfffc) as u16;
    let f = cpu.flags();
    cpu.s.gpr[1] = cpu.next_ip;
    cpu.s.gpr[11] = f & !rflags::RF;
    cpu.s.seg[SegReg::Cs as usize] = code64(sel, 0);
    cpu.s.seg[SegReg::Ss as usize] = data32(sel.wrapping_add(8), 0);
    cpu.set_flags(f & !cpu.s.msr.sfmask & !rflags::RF);
    cpu.next_ip = cpu.s.msr.lstar;
    Ok(())
}

fn sysret(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.s.long64() && cpu.s.efer & efer::SCE != 0)?;
    if cpu.s.cpl() != 0 {
        return Err(Fault::gp(0));
    }
    let base = (cpu.s.msr.star >> 48) as u16;
    let rcx = cpu.s.gpr[1];
    if i.code() == Code::Sysretq {
        // Intel checks RCX before leaving ring 0, so the #GP is taken in the kernel.
        if !cpu.s.canonical(rcx) {
            return Err(Fault::gp(0));
        }
        cpu.s.seg[SegReg::Cs as usize] = code64(base.wrapping_add(16) | 3, 3);
        cpu.next_ip = rcx;
    } else {
        cpu.s.seg[SegReg::Cs as usize] = code32(base | 3, 3);
        cpu.next_ip = rcx & 0xffff_ffff;
    }
    cpu.s.seg[SegReg::Ss as usize] = data32(base.wrapping_add(8) | 3, 3);
    cpu.set_flags(cpu.s.gpr[11] & 0x003c_7fd7);
    Ok(())
}

fn has_sep(cpu: &Cpu) -> bool {
    cpu.model.features_edx & edx::SEP != 0
}

fn sysenter(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require(has_sep(cpu))?;
    let sel = (cpu.s.msr.sysenter_cs & 0xfffc) as u16;
    if !cpu.s.protected_mode() || sel == 0 {
        return Err(Fault::gp(0));
    }
    let f = cpu.flags();
    cpu.set_flags(f & !(rflags::VM | rflags::IF | rflags::RF));
    let (eip, esp) = (cpu.s.msr.sysenter_eip, cpu.s.msr.sysenter_esp);
    cpu.s.seg[SegReg::Ss as usize] = data32(sel.wrapping_add(8), 0);
    if cpu.s.long_mode() {
        cpu.s.seg[SegReg::Cs as usize] = code64(sel, 0);
        cpu.s.gpr[4] = esp;
        cpu.next_ip = eip;
    } else {
        cpu.s.seg[SegReg::Cs as usize] = code32(sel, 0);
        cpu.set_gpr(4, 4, esp);
        cpu.next_ip = eip & 0xffff_ffff;
    }
    Ok(())
}

fn sysexit(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(has_sep(cpu))?;
    let sel = (cpu.s.msr.sysenter_cs & 0xfffc) as u16;
    if !cpu.s.protected_mode() || cpu.s.cpl() != 0 || sel == 0 {
        return Err(Fault::gp(0));
    }
    let (rcx, rdx) = (cpu.s.gpr[1], cpu.s.gpr[2]);
    if i.code() == Code::Sysexitq {
        if !cpu.s.canonical(rcx) || !cpu.s.canonical(rdx) {
            return Err(Fault::gp(0));
        }
        cpu.s.seg[SegReg::Cs as usize] = code64(sel.wrapping_add(32) | 3, 3);
        cpu.s.seg[SegReg::Ss as usize] = data32(sel.wrapping_add(40) | 3, 3);
        cpu.s.gpr[4] = rcx;
        cpu.next_ip = rdx;
    } else {
        cpu.s.seg[SegReg::Cs as usize] = code32(sel.wrapping_add(16) | 3, 3);
        cpu.s.seg[SegReg::Ss as usize] = data32(sel.wrapping_add(24) | 3, 3);
        cpu.set_gpr(4, 4, rcx);
        cpu.next_ip = rdx & 0xffff_ffff;
    }
    Ok(())
}

fn swapgs(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require(cpu.s.long64())?;
    if cpu.s.cpl() != 0 {
        return Err(Fault::gp(0));
    }
    let gs = &mut cpu.s.seg[SegReg::Gs as usize].base;
    std::mem::swap(gs, &mut cpu.s.msr.kernel_gs_base);
    Ok(())
}

/// RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (64-bit mode with CR4.FSGSBASE; a 32-bit operand
/// reads the low half or writes a zero-extended base).
fn fsgsbase(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.s.long64() && cpu.s.cr4 & cr4::FSGSBASE != 0)?;
    let seg = match i.code() {
        Code::Rdfsbase_r32 | Code::Rdfsbase_r64 | Code::Wrfsbase_r32 | Code::Wrfsbase_r64 => {
            SegReg::Fs
        }
        _ => SegReg::Gs,
    };
    let r = i.op0_register();
    match i.mnemonic() {
        iced_x86::Mnemonic::Rdfsbase | iced_x86::Mnemonic::Rdgsbase => {
            cpu.set_reg(r, cpu.s.seg(seg).base);
        }
        _ => {
            let v = cpu.reg(r);
            if !cpu.canonical_max(v) {
                return Err(Fault::gp(0));
            }
            cpu.s.seg[seg as usize].base = v;
        }
    }
    Ok(())
}

fn rdtscp(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require(cpu.model.ext_edx & ext::EDX_RDTSCP != 0)?;
    if cpu.s.cr4 & cr4::TSD != 0 && cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    let t = cpu.tsc_now(bus);
    cpu.set_gpr(0, 4, t);
    cpu.set_gpr(2, 4, t >> 32);
    cpu.set_gpr(1, 4, cpu.s.msr.tsc_aux);
    Ok(())
}

fn rdpid(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.leaf7[1] & leaf7::ECX_RDPID != 0)?;
    cpu.set_reg(i.op0_register(), cpu.s.msr.tsc_aux);
    Ok(())
}

/// Check that `seg:off` could be read as a byte, without reading it (no device access).
fn check_byte(cpu: &mut Cpu, bus: &mut dyn Bus, seg: SegReg, off: u64) -> Exec {
    cpu.probe_read(bus, seg, off, 1)
}

fn monitor(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.features_ecx & ecx::MONITOR != 0 && cpu.s.cpl() == 0)?;
    if cpu.gpr(1, 4) != 0 {
        return Err(Fault::gp(0));
    }
    // The address is DS:rAX (segment override allowed) at the address size of the form.
    let asize = match i.code() {
        Code::Monitorw => 2,
        Code::Monitord => 4,
        _ => 8,
    };
    let seg = SegReg::from_iced(i.segment_prefix()).unwrap_or(SegReg::Ds);
    let off = cpu.gpr(0, asize);
    check_byte(cpu, bus, seg, off)
}

fn mwait(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require(cpu.model.features_ecx & ecx::MONITOR != 0 && cpu.s.cpl() == 0)?;
    // ECX bit 0: interrupts break the wait even when masked; no other extension exists.
    if cpu.gpr(1, 4) & !1 != 0 {
        return Err(Fault::gp(0));
    }
    if cpu.s.rflags & rflags::IF != 0 {
        cpu.s.events.halted = true;
    }
    Ok(())
}

/// STAC/CLAC: set or clear EFLAGS.AC (CPL 0 only).
fn stac_clac(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.leaf7[0] & leaf7::EBX_SMAP != 0 && cpu.s.cpl() == 0)?;
    let f = cpu.flags();
    cpu.set_flags(if i.code() == Code::Stac {
        f | rflags::AC
    } else {
        f & !rflags::AC
    });
    Ok(())
}

fn invpcid(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require(cpu.model.leaf7[0] & leaf7::EBX_INVPCID != 0)?;
    if cpu.s.cpl() != 0 || !cpu.s.protected_mode() {
        return Err(Fault::gp(0));
    }
    let kind = cpu.reg(i.op0_register());
    let seg = cpu.mem_seg(i);
    let ea = cpu.effective_address(i);
    let desc = cpu.read_mem(bus, seg, ea, 8)?;
    let addr = cpu.read_mem(bus, seg, ea.wrapping_add(8) & addr_mask_of(i), 8)?;
    let pcid = desc & 0xfff;
    let pcide = cpu.s.cr4 & cr4::PCIDE != 0;
    if kind > 3 || desc >> 12 != 0 || (kind <= 1 && !pcide && pcid != 0) {
        return Err(Fault::gp(0));
    }
    let current = if pcide { cpu.s.cr3 & 0xfff } else { 0 };
    // The TLB holds only the current PCID's entries (and global ones): other PCIDs have
    // nothing cached.
    match kind {
        0 => {
            if !cpu.s.canonical(addr) {
                return Err(Fault::gp(0));
            }
            if pcid == current {
                cpu.tlb.flush_page(addr);
            }
        }
        1 if pcid == current => cpu.tlb.flush_non_global(),
        2 => cpu.tlb.flush_all(),
        3 => cpu.tlb.flush_non_global(),
        _ => {}
    }
    Ok(())
}

fn addr_mask_of(i: &Instruction) -> u64 {
    size_mask(crate::handlers::data::mem_addr_size(i))
}

/// CLFLUSH, CLFLUSHOPT, CLWB: no caches to write back; the operand is checked as a byte load.
fn cache_line(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let m = &cpu.model;
    let present = match i.code() {
        Code::Clflush_m8 => m.features_edx & edx::CLFSH != 0,
        Code::Clflushopt_m8 => m.leaf7[0] & leaf7::EBX_CLFLUSHOPT != 0,
        _ => m.leaf7[0] & leaf7::EBX_CLWB != 0,
    };
    require(present)?;
    let seg = cpu.mem_seg(i);
    let ea = cpu.effective_address(i);
    check_byte(cpu, bus, seg, ea)
}

/// Fences and prefetch hints: with one in-order CPU and no caches there is nothing to do.
fn hint(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Exec {
    Ok(())
}

#[rustfmt::skip]
const FENCES: &[Code] = &[
    Code::Lfence, Code::Lfence_E9, Code::Lfence_EA, Code::Lfence_EB, Code::Lfence_EC, Code::Lfence_ED,
    Code::Lfence_EE, Code::Lfence_EF, Code::Mfence, Code::Mfence_F1, Code::Mfence_F2, Code::Mfence_F3,
    Code::Mfence_F4, Code::Mfence_F5, Code::Mfence_F6, Code::Mfence_F7, Code::Sfence, Code::Sfence_F9,
    Code::Sfence_FA, Code::Sfence_FB, Code::Sfence_FC, Code::Sfence_FD, Code::Sfence_FE, Code::Sfence_FF,
];

#[rustfmt::skip]
const PREFETCHES: &[Code] = &[
    Code::Prefetchnta_m8, Code::Prefetcht0_m8, Code::Prefetcht1_m8, Code::Prefetcht2_m8,
    Code::Prefetch_m8, Code::Prefetchw_m8, Code::Prefetchreserved3_m8, Code::Prefetchreserved4_m8,
    Code::Prefetchreserved5_m8, Code::Prefetchreserved6_m8, Code::Prefetchreserved7_m8,
];

pub(crate) fn register(t: &mut TableBuilder) {
    let x = Meta::system(Isa::X64);
    t.add(&[Code::Syscall], syscall, Meta::branch(Isa::X64));
    t.add(&[Code::Sysretd, Code::Sysretq], sysret, x);
    t.add(&[Code::Sysenter], sysenter, Meta::branch(Isa::PentiumPro));
    t.add(
        &[Code::Sysexitd, Code::Sysexitq],
        sysexit,
        Meta::system(Isa::PentiumPro),
    );
    t.add(&[Code::Swapgs], swapgs, x);
    t.add(
        &[
            Code::Rdfsbase_r32,
            Code::Rdfsbase_r64,
            Code::Rdgsbase_r32,
            Code::Rdgsbase_r64,
            Code::Wrfsbase_r32,
            Code::Wrfsbase_r64,
            Code::Wrgsbase_r32,
            Code::Wrgsbase_r64,
        ],
        fsgsbase,
        Meta::plain(Isa::X64),
    );
    t.add(&[Code::Rdtscp], rdtscp, Meta::plain(Isa::X64));
    t.add(
        &[Code::Rdpid_r32, Code::Rdpid_r64],
        rdpid,
        Meta::plain(Isa::X64),
    );
    t.add(
        &[Code::Monitorw, Code::Monitord, Code::Monitorq],
        monitor,
        Meta::plain(Isa::X64),
    );
    t.add(&[Code::Mwait], mwait, Meta::branch(Isa::X64));
    t.add(&[Code::Stac, Code::Clac], stac_clac, Meta::plain(Isa::X64));
    t.add(
        &[Code::Invpcid_r32_m128, Code::Invpcid_r64_m128],
        invpcid,
        Meta::system(Isa::X64),
    );
    t.add(
        &[Code::Clflush_m8, Code::Clflushopt_m8, Code::Clwb_m8],
        cache_line,
        Meta::plain(Isa::X64),
    );
    t.add(FENCES, hint, Meta::plain(Isa::X64));
    t.add(PREFETCHES, hint, Meta::plain(Isa::X64));
}

#[cfg(test)]
#[path = "longmode_tests.rs"]
pub(crate) mod tests;
