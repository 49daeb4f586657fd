//! HLT, CPUID, RDTSC, RDMSR/WRMSR, BOUND and the UD0/UD1/UD2 invalid opcodes (WAIT is in
//! `x87.rs`).

use crate::fault::{Exec, Fault};
use crate::flags::size_mask;
use crate::handlers::data::{mem_addr_size, sign_extend};
use crate::operand::op_size;
use crate::paging::PHYS_BITS;
use crate::state::{cr4, Msrs};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction};

/// MSR numbers.
pub mod msr {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const MTRR_CAP: u32 = 0xfe;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const MTRR_PHYS_FIRST: u32 = 0x200;
    pub const MTRR_PHYS_LAST: u32 = 0x20f;
    pub const MTRR_FIX64K: u32 = 0x250;
    pub const MTRR_FIX16K_80000: u32 = 0x258;
    pub const MTRR_FIX16K_A0000: u32 = 0x259;
    pub const MTRR_FIX4K_FIRST: u32 = 0x268;
    pub const MTRR_FIX4K_LAST: u32 = 0x26f;
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
}

/// MTRRcap: 8 variable ranges, fixed ranges, write-combining.
const MTRR_CAP_VALUE: u64 = 8 | 1 << 8 | 1 << 10;
/// Physical address bits above MAXPHYADDR are reserved in address-holding MSRs.
const PHYS_MASK: u64 = (1 << PHYS_BITS) - 1;

fn hlt(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    if cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    cpu.s.events.halted = true;
    Ok(())
}

fn cpuid(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let (leaf, sub) = (cpu.gpr(0, 4) as u32, cpu.gpr(1, 4) as u32);
    let r = cpu.model.leaf_in(leaf, sub, &cpu.s);
    for (reg, v) in [(0, r[0]), (3, r[1]), (1, r[2]), (2, r[3])] {
        cpu.set_gpr(reg, 4, u64::from(v));
    }
    Ok(())
}

impl Cpu {
    /// The time-stamp counter: deterministic, derived from retired instructions.
    #[must_use]
    pub fn tsc(&self) -> u64 {
        self.s.msr.tsc.wrapping_add(self.retired)
    }
}

fn rdtsc(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    if cpu.s.cr4 & cr4::TSD != 0 && cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    let t = cpu.tsc_now(bus);
    cpu.set_gpr(0, 4, t);
    cpu.set_gpr(2, 4, t >> 32);
    Ok(())
}

/// A valid memory type for PAT and MTRRs (UC, WC, WT, WP, WB; UC- only in the PAT).
fn valid_type(t: u64, pat: bool) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6) || (pat && t == 7)
}

fn fixed_index(index: u32) -> Option<usize> {
    match index {
        msr::MTRR_FIX64K => Some(0),
        msr::MTRR_FIX16K_80000 => Some(1),
        msr::MTRR_FIX16K_A0000 => Some(2),
        msr::MTRR_FIX4K_FIRST..=msr::MTRR_FIX4K_LAST => {
            Some((index - msr::MTRR_FIX4K_FIRST) as usize + 3)
        }
        _ => None,
    }
}

fn read_msr(cpu: &Cpu, index: u32) -> Option<u64> {
    let m = &cpu.s.msr;
    Some(match index {
        msr::TSC => cpu.tsc(),
        msr::APIC_BASE => m.apic_base,
        msr::MTRR_CAP => MTRR_CAP_VALUE,
        msr::SYSENTER_CS => m.sysenter_cs,
        msr::SYSENTER_ESP => m.sysenter_esp,
        msr::SYSENTER_EIP => m.sysenter_eip,
        msr::MISC_ENABLE => m.misc_enable,
        msr::PAT => m.pat,
        msr::MTRR_DEF_TYPE => m.mtrr_def_type,
        msr::MTRR_PHYS_FIRST..=msr::MTRR_PHYS_LAST => {
            m.mtrr_var[(index - msr::MTRR_PHYS_FIRST) as usize]
        }
        _ => m.mtrr_fixed[fixed_index(index)?],
    })
}

/// Store an MSR; `None` when the index is unknown, read-only or `v` sets reserved bits.
fn write_msr(m: &mut Msrs, retired: u64, index: u32, v: u64) -> Option<()> {
    let ok = |c: bool| if c { Some(()) } else { None };
    match index {
        msr::TSC => m.tsc = v.wrapping_sub(retired),
        msr::APIC_BASE => {
            // Base and global enable are writable; the BSP flag is read-only.
            ok(v & !(PHYS_MASK & !0xfff | 1 << 11 | 1 << 8) == 0)?;
            m.apic_base = (v & !(1 << 8)) | (m.apic_base & (1 << 8));
        }
        msr::SYSENTER_CS => m.sysenter_cs = v & 0xffff_ffff,
        msr::SYSENTER_ESP => m.sysenter_esp = v,
        msr::SYSENTER_EIP => m.sysenter_eip = v,
        msr::MISC_ENABLE => m.misc_enable = v,
        msr::PAT => {
            ok((0..8).all(|k| valid_type((v >> (k * 8)) & 0xff, true)))?;
            m.pat = v;
        }
        msr::MTRR_DEF_TYPE => {
            ok(v & !0xcff == 0 && valid_type(v & 0xff, false))?;
            m.mtrr_def_type = v;
        }
        msr::MTRR_PHYS_FIRST..=msr::MTRR_PHYS_LAST => {
            let k = (index - msr::MTRR_PHYS_FIRST) as usize;
            // Even: PHYSBASE (address, type); odd: PHYSMASK (address mask, valid bit).
            let is_mask = k & 1 == 1;
            let reserved = if is_mask {
                !(PHYS_MASK & !0xfff | 1 << 11)
            } else {
                !(PHYS_MASK & !0xfff | 0xff)
            };
            ok(v & reserved == 0 && (is_mask || valid_type(v & 0xff, false)))?;
            m.mtrr_var[k] = v;
        }
        _ => {
            let k = fixed_index(index)?;
            ok((0..8).all(|b| valid_type((v >> (b * 8)) & 0xff, false)))?;
            m.mtrr_fixed[k] = v;
        }
    }
    Some(())
}

fn rdmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    if cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    let index = cpu.gpr(1, 4) as u32;
    let v = cpu
        .read_msr_ext(bus, index)
        .or_else(|| read_msr(cpu, index))
        .ok_or(Fault::gp(0))?;
    cpu.set_gpr(0, 4, v);
    cpu.set_gpr(2, 4, v >> 32);
    Ok(())
}

fn wrmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    if cpu.s.cpl() > 0 {
        return Err(Fault::gp(0));
    }
    let v = cpu.gpr(2, 4) << 32 | cpu.gpr(0, 4);
    let (retired, index) = (cpu.retired, cpu.gpr(1, 4) as u32);
    if let Some(r) = cpu.write_msr_ext(bus, index, v) {
        return r;
    }
    write_msr(&mut cpu.s.msr, retired, index, v).ok_or(Fault::gp(0))?;
    if index == msr::APIC_BASE {
        bus.apic_base_written(retired, cpu.s.msr.apic_base);
    }
    Ok(())
}

/// BOUND: #BR unless lower <= index <= upper (signed), the bounds read from memory.
fn bound(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let index = sign_extend(cpu.read_op(bus, i, 0, size)?, size) as i64;
    let seg = cpu.mem_seg(i);
    let ea = cpu.effective_address(i);
    let upper_at = ea.wrapping_add(u64::from(size)) & size_mask(mem_addr_size(i));
    let lower = sign_extend(cpu.read_mem(bus, seg, ea, size)?, size) as i64;
    let upper = sign_extend(cpu.read_mem(bus, seg, upper_at, size)?, size) as i64;
    if index < lower || index > upper {
        return Err(Fault::BR);
    }
    Ok(())
}

fn ud(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Exec {
    Err(Fault::UD)
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.add(&[Code::Hlt], hlt, Meta::system(Isa::I8086));
    t.add(&[Code::Cpuid], cpuid, Meta::plain(Isa::I486));
    t.add(&[Code::Rdtsc], rdtsc, Meta::plain(Isa::Pentium));
    t.add(
        &[Code::Rdmsr],
        rdmsr,
        Meta {
            privileged: true,
            ..Meta::plain(Isa::Pentium)
        },
    );
    t.add(&[Code::Wrmsr], wrmsr, Meta::system(Isa::Pentium));
    t.add(
        &[Code::Bound_r16_m1616, Code::Bound_r32_m3232],
        bound,
        Meta::plain(Isa::I186),
    );
    t.add(
        &[
            Code::Ud2,
            Code::Ud0,
            Code::Ud0_r16_rm16,
            Code::Ud0_r32_rm32,
            Code::Ud1_r16_rm16,
            Code::Ud1_r32_rm32,
            Code::Ud0_r64_rm64,
            Code::Ud1_r64_rm64,
        ],
        ud,
        Meta::branch(Isa::PentiumPro),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::alu::tests::{run_real, run_real_with};

    #[test]
    fn cpuid_leaf0_and_rdtsc() {
        // xor eax,eax ; cpuid
        let (cpu, _) = run_real(&[0x66, 0x31, 0xc0, 0x0f, 0xa2], 2);
        assert_eq!(cpu.s.gpr[3] as u32, u32::from_le_bytes(*b"Genu"));
        // rdtsc after 1 retired instruction
        let (cpu, _) = run_real(&[0x90, 0x0f, 0x31], 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff_ffff, 1);
    }

    #[test]
    fn msr_storage_and_unknown() {
        let mut m = Msrs::default();
        assert!(write_msr(&mut m, 0, msr::MTRR_PHYS_FIRST, 0x8000_0006).is_some());
        assert!(write_msr(&mut m, 0, msr::MTRR_PHYS_FIRST, 0x8000_0002).is_none());
        assert!(write_msr(&mut m, 0, msr::MTRR_CAP, 0).is_none());
        assert!(write_msr(&mut m, 0, 0x1234, 0).is_none());
        assert!(write_msr(&mut m, 100, msr::TSC, 1000).is_some());
        assert_eq!(m.tsc, 900);
    }

    #[test]
    fn bound_raises_br() {
        // IVT[5] = 0000:3000 ; mov sp,0x2000 ; mov bx,0x2100 ; mov ax,9 ; bound ax,[bx] (bounds 0..8)
        let code = [
            0xbc, 0x00, 0x20, 0xbb, 0x00, 0x21, 0xb8, 0x09, 0x00, 0x62, 0x07,
        ];
        let (cpu, _) = run_real_with(&code, 4, |_, bus| {
            bus.load(0x14, &[0x00, 0x30, 0x00, 0x00]);
            bus.load(0x2100, &[0, 0, 8, 0]);
        });
        assert_eq!(cpu.s.rip, 0x3000);
    }
}
