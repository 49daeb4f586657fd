//! The model-specific registers that come with long mode and a modern core: EFER, the
//! SYSCALL MSRs, FS/GS bases, TSC_AUX, TSC_DEADLINE, DEBUGCTL, SPEC_CTRL/PRED_CMD and the
//! identification MSRs an OS probes. Each exists only in a model with the matching CPUID
//! bit; the Pentium Pro set (MTRRs, PAT, APIC_BASE, SYSENTER...) stays in `handlers::misc`.
//! The TSC (every model) is here too: it and TSC_DEADLINE go through the bus to the
//! machine's clock and local APIC.

use crate::cpuid::{ecx, ext, leaf7};
use crate::fault::{Exec, Fault};
use crate::state::{cr0, efer, SegReg};
use crate::{Bus, Cpu};

/// MSR numbers.
pub mod index {
    pub const TSC: u32 = 0x10;
    pub const PLATFORM_ID: u32 = 0x17;
    pub const FEATURE_CONTROL: u32 = 0x3a;
    pub const SPEC_CTRL: u32 = 0x48;
    pub const PRED_CMD: u32 = 0x49;
    pub const BIOS_SIGN_ID: u32 = 0x8b;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const DEBUGCTL: u32 = 0x1d9;
    pub const TSC_DEADLINE: u32 = 0x6e0;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const FMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
}

/// IA32_FEATURE_CONTROL as firmware leaves it: locked, VMX off.
const FEATURE_CONTROL_LOCKED: u64 = 1;
/// DEBUGCTL bits that may be set: LBR, BTF, FREEZE_LBRS_ON_PMI, FREEZE_PERFMON_ON_PMI,
/// FREEZE_WHILE_SMM. BTS and TR would need a debug store, which this CPU does not have.
const DEBUGCTL_VALID: u64 = 1 << 0 | 1 << 1 | 1 << 11 | 1 << 12 | 1 << 14;
/// SPEC_CTRL: IBRS, STIBP, SSBD.
const SPEC_CTRL_VALID: u64 = 0x7;

impl Cpu {
    /// Is `v` canonical for the widest linear address this model supports? (MSR and base
    /// loads are checked against it whatever the current paging depth.)
    pub(crate) fn canonical_max(&self, v: u64) -> bool {
        let unused = 64 - u32::from(self.model.lin_bits.clamp(48, 64));
        (((v << unused) as i64) >> unused) as u64 == v
    }

    fn has_long_msrs(&self) -> bool {
        self.model.long_mode()
    }

    fn has_tsc_deadline(&self) -> bool {
        self.model.features_ecx & ecx::TSC_DEADLINE != 0
    }

    fn has_spec_ctrl(&self) -> bool {
        self.model.leaf7[2] & leaf7::EDX_SPEC_CTRL != 0
    }

    fn has_tsc_aux(&self) -> bool {
        self.model.ext_edx & ext::EDX_RDTSCP != 0 || self.model.leaf7[1] & leaf7::ECX_RDPID != 0
    }

    /// The time-stamp counter now: the guest's offset (`msr.tsc`) plus the ticks of the
    /// machine's clock, or one tick per retired instruction on a bus without a clock.
    pub fn tsc_now(&self, bus: &mut dyn Bus) -> u64 {
        let ticks = bus.tsc_ticks(self.retired).unwrap_or(self.retired);
        self.s.msr.tsc.wrapping_add(ticks)
    }

    /// RDMSR of one of these MSRs; `None` when `msr` is not one of them in this model.
    pub(crate) fn read_msr_ext(&self, bus: &mut dyn Bus, msr: u32) -> Option<u64> {
        let m = &self.s.msr;
        let long = self.has_long_msrs();
        Some(match msr {
            index::TSC => self.tsc_now(bus),
            index::PLATFORM_ID | index::BIOS_SIGN_ID => 0,
            index::DEBUGCTL => m.debugctl,
            index::FEATURE_CONTROL if long => FEATURE_CONTROL_LOCKED,
            // The local APIC's view wins: it reads 0 once the deadline has fired.
            index::TSC_DEADLINE if self.has_tsc_deadline() => {
                bus.tsc_deadline(self.retired).unwrap_or(m.tsc_deadline)
            }
            index::EFER if long => self.s.efer,
            index::STAR if long => m.star,
            index::LSTAR if long => m.lstar,
            index::CSTAR if long => m.cstar,
            index::FMASK if long => m.sfmask,
            index::FS_BASE if long => self.s.seg(SegReg::Fs).base,
            index::GS_BASE if long => self.s.seg(SegReg::Gs).base,
            index::KERNEL_GS_BASE if long => m.kernel_gs_base,
            index::SPEC_CTRL if self.has_spec_ctrl() => m.spec_ctrl,
            index::TSC_AUX if self.has_tsc_aux() => m.tsc_aux,
            _ => return None,
        })
    }

    /// WRMSR of one of these MSRs: `None` when `msr` is not one of them in this model, else
    /// the outcome (#GP(0) for reserved bits or non-canonical addresses).
    pub(crate) fn write_msr_ext(&mut self, bus: &mut dyn Bus, msr: u32, v: u64) -> Option<Exec> {
        if self.write_time_msr(bus, msr, v) {
            return Some(Ok(()));
        }
        let long = self.has_long_msrs();
        let canonical = self.canonical_max(v);
        let check = |ok: bool| if ok { Ok(()) } else { Err(Fault::gp(0)) };
        let m = &mut self.s.msr;
        let r = match msr {
            // Writing the microcode signature asks the next CPUID to refresh it: nothing to do.
            index::BIOS_SIGN_ID => Ok(()),
            index::DEBUGCTL => check(v & !DEBUGCTL_VALID == 0).map(|()| m.debugctl = v),
            index::EFER if long => return Some(self.write_efer(v)),
            index::STAR if long => {
                m.star = v;
                Ok(())
            }
            index::LSTAR if long => check(canonical).map(|()| m.lstar = v),
            index::CSTAR if long => check(canonical).map(|()| m.cstar = v),
            index::FMASK if long => check(v >> 32 == 0).map(|()| m.sfmask = v),
            index::KERNEL_GS_BASE if long => check(canonical).map(|()| m.kernel_gs_base = v),
            // A 64-bit capable CPU keeps full SYSENTER addresses, checked like the others.
            index::SYSENTER_ESP if long => check(canonical).map(|()| m.sysenter_esp = v),
            index::SYSENTER_EIP if long => check(canonical).map(|()| m.sysenter_eip = v),
            index::FS_BASE | index::GS_BASE if long => {
                let seg = if msr == index::FS_BASE {
                    SegReg::Fs
                } else {
                    SegReg::Gs
                };
                check(canonical).map(|()| self.s.seg[seg as usize].base = v)
            }
            index::SPEC_CTRL if self.has_spec_ctrl() => {
                check(v & !SPEC_CTRL_VALID == 0).map(|()| self.s.msr.spec_ctrl = v)
            }
            // IBPB: a barrier against branch predictions this CPU does not make.
            index::PRED_CMD if self.has_spec_ctrl() => check(v & !1 == 0),
            index::TSC_AUX if self.has_tsc_aux() => {
                check(v >> 32 == 0).map(|()| self.s.msr.tsc_aux = v)
            }
            _ => return None,
        };
        Some(r)
    }

    /// WRMSR of the TSC or IA32_TSC_DEADLINE (which take any value); false for other MSRs.
    fn write_time_msr(&mut self, bus: &mut dyn Bus, msr: u32, v: u64) -> bool {
        let retired = self.retired;
        let deadline_msr = self.has_tsc_deadline();
        let m = &mut self.s.msr;
        match msr {
            index::TSC => {
                let ticks = bus.tsc_ticks(retired).unwrap_or(retired);
                m.tsc = v.wrapping_sub(ticks);
                bus.tsc_written(m.tsc);
            }
            index::TSC_DEADLINE if deadline_msr => {
                m.tsc_deadline = v;
                // Outside TSC-deadline mode the APIC ignores the write (SDM 10.5.4.1).
                if bus.set_tsc_deadline(retired, v, m.tsc) {
                    m.tsc_deadline = bus.tsc_deadline(retired).unwrap_or(v);
                }
            }
            _ => return false,
        }
        true
    }

    /// EFER: SCE, LME and NXE as the model has them; LMA is read-only; LME cannot change
    /// while paging is on.
    fn write_efer(&mut self, v: u64) -> Exec {
        let m = &self.model;
        let mut writable = 0;
        if m.ext_edx & ext::EDX_SYSCALL != 0 {
            writable |= efer::SCE;
        }
        if m.ext_edx & ext::EDX_LM != 0 {
            writable |= efer::LME;
        }
        if m.ext_edx & ext::EDX_NX != 0 {
            writable |= efer::NXE;
        }
        let old = self.s.efer;
        if v & !(writable | efer::LMA) != 0
            || ((v ^ old) & efer::LME != 0 && self.s.cr0 & cr0::PG != 0)
        {
            return Err(Fault::gp(0));
        }
        let new = (v & writable) | (old & efer::LMA);
        if (new ^ old) & efer::NXE != 0 {
            self.tlb.flush_all();
        }
        self.s.efer = new;
        Ok(())
    }
}
