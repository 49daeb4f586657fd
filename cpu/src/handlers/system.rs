//! System registers: LGDT/LIDT/SGDT/SIDT, LMSW/SMSW/CLTS, MOV to and from CR0-CR4, CR8 and
//! DR0-DR7, INVLPG, INVD/WBINVD. Privileged forms #GP(0) at CPL > 0 (and in virtual-8086
//! mode, where the CPL is 3). Turning paging on with EFER.LME set enters IA-32e mode.

use crate::fault::{Exec, Fault};
use crate::handlers::segment::addr_mask;
use crate::operand::op_size;
use crate::paging::PHYS_BITS;
use crate::phys;
use crate::state::{cr0, cr4, efer, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, OpKind, Register};

/// CR0 bits a Pentium Pro implements; writes to the others are ignored.
const CR0_VALID: u64 = cr0::PE
    | cr0::MP
    | cr0::EM
    | cr0::TS
    | cr0::ET
    | cr0::NE
    | cr0::WP
    | cr0::AM
    | cr0::NW
    | cr0::CD
    | cr0::PG;

/// CR4 bits of the Pentium Pro model; setting any other bit is #GP(0).
pub(crate) const CR4_SUPPORTED: u64 =
    cr4::VME | cr4::PVI | cr4::TSD | cr4::DE | cr4::PSE | cr4::PAE | cr4::MCE | cr4::PGE | cr4::PCE;

/// DR7.GD: any debug register access raises #DB.
const DR7_GD: u64 = 1 << 13;
/// DR6.BD: the #DB came from DR7.GD.
const DR6_BD: u64 = 1 << 13;

/// CR3 bit 63 with CR4.PCIDE: keep the TLB entries of the PCID being loaded.
const CR3_NOFLUSH: u64 = 1 << 63;

/// #GP(0) for SGDT/SIDT/SLDT/STR/SMSW at CPL > 0 when CR4.UMIP is set.
pub(crate) fn check_umip(cpu: &Cpu) -> Exec {
    if cpu.s.cr4 & cr4::UMIP != 0 && cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    Ok(())
}

/// #GP(0) unless at CPL 0 (real mode counts as CPL 0, virtual-8086 mode as CPL 3).
pub(crate) fn require_cpl0(cpu: &Cpu) -> Exec {
    if cpu.s.cpl() != 0 {
        return Err(Fault::gp(0));
    }
    Ok(())
}

impl Cpu {
    /// With PAE paging, loading CR3 (or enabling paging) loads the four PDPTEs: any present
    /// entry with reserved bits set makes the load fail with #GP(0).
    fn check_pdptes(&mut self, bus: &mut dyn Bus, cr3: u64) -> Exec {
        let reserved = !((1u64 << PHYS_BITS) - 1) | 0x1e6;
        for k in 0..4 {
            let e = phys::read_entry(bus, (cr3 & 0xffff_ffe0) + 8 * k, 8);
            if e & 1 != 0 && e & reserved != 0 {
                return Err(Fault::gp(0));
            }
        }
        Ok(())
    }

    pub(crate) fn write_cr0(&mut self, bus: &mut dyn Bus, v: u64) -> Exec {
        // Bits 63..32 are reserved (only a 64-bit-mode MOV can even try to set them).
        if v >> 32 != 0
            || (v & cr0::PG != 0 && v & cr0::PE == 0)
            || (v & cr0::NW != 0 && v & cr0::CD == 0)
        {
            return Err(Fault::gp(0));
        }
        let new = (v & CR0_VALID) | cr0::ET;
        let old = self.s.cr0;
        let paging_on = new & cr0::PG != 0 && old & cr0::PG == 0;
        let paging_off = new & cr0::PG == 0 && old & cr0::PG != 0;
        let enter_long = paging_on && self.s.efer & efer::LME != 0;
        if enter_long && (self.s.cr4 & cr4::PAE == 0 || self.s.seg(SegReg::Cs).long()) {
            return Err(Fault::gp(0));
        }
        if paging_on && !enter_long && self.s.cr4 & cr4::PAE != 0 {
            self.check_pdptes(bus, self.s.cr3)?;
        }
        // Paging can only be turned off from compatibility mode, and not with PCIDs on.
        if paging_off && self.s.long_mode() && (self.s.long64() || self.s.cr4 & cr4::PCIDE != 0) {
            return Err(Fault::gp(0));
        }
        self.s.cr0 = new;
        if enter_long {
            self.s.efer |= efer::LMA;
        } else if paging_off {
            self.s.efer &= !efer::LMA;
        }
        if (old ^ new) & (cr0::PG | cr0::WP | cr0::PE) != 0 {
            self.tlb.flush_all();
        }
        Ok(())
    }

    fn write_cr3(&mut self, bus: &mut dyn Bus, v: u64) -> Exec {
        if !self.s.long_mode() {
            let v = v & 0xffff_ffff;
            if self.s.cr0 & cr0::PG != 0 && self.s.cr4 & cr4::PAE != 0 {
                self.check_pdptes(bus, v)?;
            }
            self.s.cr3 = v;
            self.tlb.flush_non_global();
            return Ok(());
        }
        let pcide = self.s.cr4 & cr4::PCIDE != 0;
        let keep = pcide && v & CR3_NOFLUSH != 0;
        let v = if pcide { v & !CR3_NOFLUSH } else { v };
        if v >> PHYS_BITS != 0 {
            return Err(Fault::gp(0));
        }
        let same_pcid = (v ^ self.s.cr3) & 0xfff == 0;
        self.s.cr3 = v;
        // The TLB holds the current PCID's entries (and global ones) only: switching PCIDs
        // drops the old context's entries, which is always allowed.
        if !(keep && same_pcid) {
            self.tlb.flush_non_global();
        }
        Ok(())
    }

    /// CR4 bits this model implements: the Pentium Pro set plus its optional features.
    pub(crate) fn cr4_supported(&self) -> u64 {
        use crate::cpuid::{ecx, edx, leaf7};
        let m = &self.model;
        let has = |word: u32, bit: u32, flag: u64| if word & bit != 0 { flag } else { 0 };
        CR4_SUPPORTED
            | has(m.leaf7[0], leaf7::EBX_FSGSBASE, cr4::FSGSBASE)
            | has(m.leaf7[0], leaf7::EBX_SMEP, cr4::SMEP)
            | has(m.leaf7[0], leaf7::EBX_SMAP, cr4::SMAP)
            | has(m.leaf7[1], leaf7::ECX_UMIP, cr4::UMIP)
            | has(m.leaf7[1], leaf7::ECX_LA57, cr4::LA57)
            | has(m.features_ecx, ecx::PCID, cr4::PCIDE)
            | has(m.features_edx, edx::FXSR, cr4::OSFXSR)
            | has(m.features_edx, edx::SSE, cr4::OSXMMEXCPT)
            | has(m.features_ecx, ecx::XSAVE, cr4::OSXSAVE)
    }

    fn write_cr4(&mut self, bus: &mut dyn Bus, v: u64) -> Exec {
        if v & !self.cr4_supported() != 0 {
            return Err(Fault::gp(0));
        }
        let old = self.s.cr4;
        let long = self.s.long_mode();
        // IA-32e mode needs PAE and fixes the paging depth; PCIDs need IA-32e mode and PCID 0.
        if long && (v & cr4::PAE == 0 || (old ^ v) & cr4::LA57 != 0) {
            return Err(Fault::gp(0));
        }
        if v & cr4::PCIDE != 0 && old & cr4::PCIDE == 0 && (!long || self.s.cr3 & 0xfff != 0) {
            return Err(Fault::gp(0));
        }
        if !long && self.s.cr0 & cr0::PG != 0 && v & cr4::PAE != 0 && old & cr4::PAE == 0 {
            self.check_pdptes(bus, self.s.cr3)?;
        }
        self.s.cr4 = v;
        let flush = cr4::PGE | cr4::PAE | cr4::PSE | cr4::SMEP | cr4::SMAP | cr4::PCIDE;
        if (old ^ v) & flush != 0 {
            self.tlb.flush_all();
        }
        Ok(())
    }

    /// The linear address INVLPG and friends name: segment base plus offset, without checks.
    pub(crate) fn linear_unchecked(&self, seg: SegReg, off: u64) -> u64 {
        if self.s.long64() {
            match seg {
                SegReg::Fs | SegReg::Gs => self.s.seg(seg).base.wrapping_add(off),
                _ => off,
            }
        } else {
            self.s.seg(seg).base.wrapping_add(off) & 0xffff_ffff
        }
    }
}

fn cr_index(r: Register) -> Exec<u8> {
    let n = (r as u32).wrapping_sub(Register::CR0 as u32);
    match n {
        0 | 2 | 3 | 4 | 8 => Ok(n as u8),
        _ => Err(Fault::UD),
    }
}

fn mov_from_cr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let n = cr_index(i.op1_register())?;
    require_cpl0(cpu)?;
    let v = match n {
        0 => cpu.s.cr0,
        2 => cpu.s.cr2,
        3 => cpu.s.cr3,
        // CR8 is the local APIC's TPR[7:4] (SDM 10.8.6.1), which MMIO writes also change.
        8 => bus.apic_tpr().map_or(cpu.s.cr8, |tpr| u64::from(tpr >> 4)),
        _ => cpu.s.cr4,
    };
    // A 32-bit destination (outside 64-bit mode) takes the low half.
    cpu.set_reg(i.op0_register(), v);
    Ok(())
}

fn mov_to_cr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let n = cr_index(i.op0_register())?;
    require_cpl0(cpu)?;
    let v = cpu.reg(i.op1_register());
    match n {
        0 => cpu.write_cr0(bus, v),
        2 => {
            cpu.s.cr2 = v;
            Ok(())
        }
        3 => cpu.write_cr3(bus, v),
        // CR8 (TPR): bits 3..0 are the task priority class, the rest reserved.
        8 if v > 0xf => Err(Fault::gp(0)),
        8 => {
            cpu.s.cr8 = v;
            bus.set_apic_tpr((v as u8) << 4);
            // A lower priority may unmask a pending interrupt before the next instruction.
            cpu.irq_line = None;
            Ok(())
        }
        _ => cpu.write_cr4(bus, v),
    }
}

/// The debug register an operand names, after the CR4.DE rules for DR4/DR5 (#UD when DE is
/// set, else aliases of DR6/DR7), and the DR7.GD trap.
fn dr_index(cpu: &mut Cpu, r: Register) -> Exec<usize> {
    let n = (r as u32).wrapping_sub(Register::DR0 as u32);
    if n > 7 {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let n = match n {
        4 | 5 if cpu.s.cr4 & cr4::DE != 0 => return Err(Fault::UD),
        4 | 5 => n + 2,
        _ => n,
    };
    if cpu.s.dr[7] & DR7_GD != 0 {
        // The #DB handler must be able to use the debug registers: GD clears itself.
        cpu.s.dr[6] |= DR6_BD;
        cpu.s.dr[7] &= !DR7_GD;
        return Err(Fault::DB);
    }
    Ok(n as usize)
}

fn mov_from_dr(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let n = dr_index(cpu, i.op1_register())?;
    let v = cpu.s.dr[n];
    cpu.set_reg(i.op0_register(), v);
    Ok(())
}

fn mov_to_dr(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let n = dr_index(cpu, i.op0_register())?;
    // 64-bit mode: breakpoint addresses are 64 bits; DR6/DR7 bits 63..32 are reserved.
    let v = cpu.reg(i.op1_register());
    if n >= 6 && v >> 32 != 0 {
        return Err(Fault::gp(0));
    }
    cpu.s.dr[n] = match n {
        // Reserved bits of DR6 read as 1 (bit 12 as 0), of DR7 as 0 (bit 10 as 1).
        6 => (v & 0xe00f) | 0xffff_0ff0,
        7 => (v & 0xffff_23ff) | 0x400,
        _ => v,
    };
    Ok(())
}

/// LGDT/LIDT: 6 bytes at the operand (10 in 64-bit mode); a 16-bit operand size keeps 24
/// bits of the base.
fn load_table_reg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if i.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let ea = cpu.effective_address(i);
    let seg = cpu.mem_seg(i);
    let wide = matches!(i.code(), Code::Lgdt_m1664 | Code::Lidt_m1664);
    let limit = cpu.read_mem(bus, seg, ea, 2)? as u16;
    let mut base = cpu.read_mem(
        bus,
        seg,
        ea.wrapping_add(2) & addr_mask(i),
        if wide { 8 } else { 4 },
    )?;
    if matches!(i.code(), Code::Lgdt_m1632_16 | Code::Lidt_m1632_16) {
        base &= 0x00ff_ffff;
    }
    let t = if matches!(
        i.code(),
        Code::Lgdt_m1632_16 | Code::Lgdt_m1632 | Code::Lgdt_m1664
    ) {
        &mut cpu.s.gdtr
    } else {
        &mut cpu.s.idtr
    };
    t.base = base;
    t.limit = limit;
    Ok(())
}

/// SGDT/SIDT: limit then base; a 16-bit operand size stores 24 bits of base and a zero byte,
/// 64-bit mode all 8 bytes of it.
fn store_table_reg(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if i.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    check_umip(cpu)?;
    let t = if matches!(
        i.code(),
        Code::Sgdt_m1632_16 | Code::Sgdt_m1632 | Code::Sgdt_m1664
    ) {
        cpu.s.gdtr
    } else {
        cpu.s.idtr
    };
    let wide = matches!(i.code(), Code::Sgdt_m1664 | Code::Sidt_m1664);
    let size = if wide { 8 } else { 4 };
    let mut base = if wide { t.base } else { t.base & 0xffff_ffff };
    if matches!(i.code(), Code::Sgdt_m1632_16 | Code::Sidt_m1632_16) {
        base &= 0x00ff_ffff;
    }
    let ea = cpu.effective_address(i);
    let seg = cpu.mem_seg(i);
    let at = ea.wrapping_add(2) & addr_mask(i);
    cpu.probe_write(bus, seg, ea, 2)?;
    cpu.probe_write(bus, seg, at, size)?;
    cpu.write_mem(bus, seg, ea, 2, u64::from(t.limit))?;
    cpu.write_mem(bus, seg, at, size, base)
}

fn lmsw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    require_cpl0(cpu)?;
    let v = cpu.read_op(bus, i, 0, 2)? & 0xf;
    // LMSW sets PE but never clears it.
    let new = (cpu.s.cr0 & !0xf) | v | (cpu.s.cr0 & cr0::PE);
    cpu.write_cr0(bus, new)
}

fn smsw(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    check_umip(cpu)?;
    // A register destination gets all of CR0's low dword (r32) or word; memory gets a word.
    let size = if i.op0_kind() == OpKind::Register {
        op_size(i, 0)
    } else {
        2
    };
    cpu.write_op(bus, i, 0, size, cpu.s.cr0)
}

fn clts(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require_cpl0(cpu)?;
    cpu.s.cr0 &= !cr0::TS;
    Ok(())
}

fn invlpg(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if i.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let ea = cpu.effective_address(i);
    let seg = cpu.mem_seg(i);
    // A non-canonical address names no translation: nothing to do, and no fault.
    let lin = cpu.linear_unchecked(seg, ea);
    cpu.tlb.flush_page(lin);
    Ok(())
}

/// INVD/WBINVD: there are no caches to model; only the privilege check remains.
fn cache_op(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    require_cpl0(cpu)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(
        &[
            Code::Lgdt_m1632_16,
            Code::Lgdt_m1632,
            Code::Lidt_m1632_16,
            Code::Lidt_m1632,
            Code::Lgdt_m1664,
            Code::Lidt_m1664,
        ],
        load_table_reg,
        Meta::system(Isa::I286),
    );
    t.add(
        &[
            Code::Sgdt_m1632_16,
            Code::Sgdt_m1632,
            Code::Sidt_m1632_16,
            Code::Sidt_m1632,
            Code::Sgdt_m1664,
            Code::Sidt_m1664,
        ],
        store_table_reg,
        Meta::plain(Isa::I286),
    );
    t.add(
        &[Code::Lmsw_rm16, Code::Lmsw_r32m16, Code::Lmsw_r64m16],
        lmsw,
        Meta::system(Isa::I286),
    );
    t.add(
        &[Code::Smsw_rm16, Code::Smsw_r32m16, Code::Smsw_r64m16],
        smsw,
        Meta::plain(Isa::I286),
    );
    t.add(&[Code::Clts], clts, Meta::system(Isa::I286));
    t.add(&[Code::Mov_r32_cr], mov_from_cr, Meta::system(Isa::I386));
    t.add(&[Code::Mov_cr_r32], mov_to_cr, Meta::system(Isa::I386));
    t.add(&[Code::Mov_r32_dr], mov_from_dr, Meta::system(Isa::I386));
    t.add(&[Code::Mov_dr_r32], mov_to_dr, Meta::system(Isa::I386));
    t.add(&[Code::Mov_r64_cr], mov_from_cr, Meta::system(Isa::X64));
    t.add(&[Code::Mov_cr_r64], mov_to_cr, Meta::system(Isa::X64));
    t.add(&[Code::Mov_r64_dr], mov_from_dr, Meta::system(Isa::X64));
    t.add(&[Code::Mov_dr_r64], mov_to_dr, Meta::system(Isa::X64));
    t.add(&[Code::Invlpg_m], invlpg, Meta::system(Isa::I486));
    t.add(
        &[Code::Invd, Code::Wbinvd],
        cache_op,
        Meta::system(Isa::I486),
    );
}

#[cfg(test)]
mod tests {
    use crate::handlers::segment::tests::{exec, real_mode};
    use crate::state::{cr0, cr4};
    use crate::Fault;
    use iced_x86::code_asm::*;

    #[test]
    fn lgdt_with_16bit_operand_keeps_24_bits_and_sgdt_stores_a_zero_byte() {
        let (mut cpu, mut bus) = real_mode();
        bus.load(0x100, &[0xff, 0x03, 0xdd, 0xcc, 0xbb, 0xaa]);
        exec(&mut cpu, &mut bus, |a| a.lgdt(ptr(0x100)).unwrap()).unwrap();
        assert_eq!((cpu.s.gdtr.base, cpu.s.gdtr.limit), (0xbb_ccdd, 0x3ff));
        exec(&mut cpu, &mut bus, |a| a.sgdt(ptr(0x200)).unwrap()).unwrap();
        assert_eq!(&bus.ram()[0x200..0x206], &[0xff, 0x03, 0xdd, 0xcc, 0xbb, 0]);
    }

    /// LOCK MOV CR0 is AMD's CR8 alias (CPUID 80000001h:ECX[4]), which no model offers: the
    /// decoder leaves it invalid, so it raises #UD as on Intel.
    #[test]
    fn lock_mov_cr0_is_not_an_alias_of_cr8() {
        let (mut cpu, mut bus) = real_mode();
        for bytes in [[0xf0, 0x0f, 0x22, 0xc0], [0xf0, 0x0f, 0x20, 0xc0]] {
            let r = exec(&mut cpu, &mut bus, |a| a.db(&bytes).unwrap());
            assert_eq!(r, Err(Fault::UD), "{bytes:02x?}");
        }
        assert_eq!(cpu.s.cr8, 0);
    }

    #[test]
    fn control_register_checks() {
        let (mut cpu, mut bus) = real_mode();
        cpu.s.gpr[0] = 1 << 9; // OSFXSR: not a Pentium Pro bit
        assert_eq!(
            exec(&mut cpu, &mut bus, |a| a.mov(cr4, eax).unwrap()),
            Err(Fault::gp(0))
        );
        cpu.s.gpr[0] = cr4::PSE | cr4::DE;
        exec(&mut cpu, &mut bus, |a| a.mov(cr4, eax).unwrap()).unwrap();
        assert_eq!(cpu.s.cr4, cr4::PSE | cr4::DE);
        cpu.s.gpr[0] = cr0::PG;
        assert_eq!(
            exec(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()),
            Err(Fault::gp(0))
        );
        cpu.s.gpr[0] = cr0::NW;
        assert_eq!(
            exec(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()),
            Err(Fault::gp(0))
        );
        // ET is hardwired; reserved bits are ignored.
        cpu.s.gpr[0] = 0x100;
        exec(&mut cpu, &mut bus, |a| a.mov(cr0, eax).unwrap()).unwrap();
        assert_eq!(cpu.s.cr0, cr0::ET);
    }

    #[test]
    fn dr4_and_dr5_alias_dr6_and_dr7_unless_cr4_de() {
        let (mut cpu, mut bus) = real_mode();
        cpu.s.gpr[0] = 0x1;
        exec(&mut cpu, &mut bus, |a| a.mov(dr5, eax).unwrap()).unwrap();
        assert_eq!(cpu.s.dr[7], 0x401);
        exec(&mut cpu, &mut bus, |a| a.mov(ebx, dr4).unwrap()).unwrap();
        assert_eq!(cpu.s.gpr[3], 0xffff_0ff0);
        cpu.s.cr4 = cr4::DE;
        assert_eq!(
            exec(&mut cpu, &mut bus, |a| a.mov(ebx, dr4).unwrap()),
            Err(Fault::UD)
        );
    }
}
