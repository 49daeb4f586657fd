//! Segment descriptors: reading them from the GDT/LDT, decoding them, and loading data and
//! stack segment registers with every protection check.

use crate::fault::{Exec, Fault};
use crate::state::{attr, SegReg, Segment};
use crate::{Bus, Cpu};

/// System descriptor types (the 4-bit type field with S = 0).
pub mod sys {
    pub const TSS16_AVAIL: u8 = 1;
    pub const LDT: u8 = 2;
    pub const TSS16_BUSY: u8 = 3;
    pub const CALL_GATE16: u8 = 4;
    pub const TASK_GATE: u8 = 5;
    pub const INT_GATE16: u8 = 6;
    pub const TRAP_GATE16: u8 = 7;
    pub const TSS32_AVAIL: u8 = 9;
    pub const TSS32_BUSY: u8 = 11;
    pub const CALL_GATE32: u8 = 12;
    pub const INT_GATE32: u8 = 14;
    pub const TRAP_GATE32: u8 = 15;
}

/// An 8-byte descriptor as it sits in a descriptor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor(pub u64);

impl Descriptor {
    #[must_use]
    pub fn base(&self) -> u64 {
        let d = self.0;
        ((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24)
    }
    /// Limit in bytes (scaled by 4 KiB when G is set).
    #[must_use]
    pub fn limit(&self) -> u32 {
        let d = self.0;
        let raw = ((d & 0xffff) | (((d >> 48) & 0xf) << 16)) as u32;
        if self.attr() & attr::G != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }
    /// Attribute bits in `Segment::attr` packing.
    #[must_use]
    pub fn attr(&self) -> u16 {
        let d = self.0;
        (((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 12)) as u16
    }
    #[must_use]
    pub fn dpl(&self) -> u8 {
        ((self.0 >> 45) & 3) as u8
    }
    #[must_use]
    pub fn present(&self) -> bool {
        self.0 & (1 << 47) != 0
    }
    /// Code or data (S bit set).
    #[must_use]
    pub fn is_segment(&self) -> bool {
        self.0 & (1 << 44) != 0
    }
    #[must_use]
    pub fn typ(&self) -> u8 {
        ((self.0 >> 40) & 0xf) as u8
    }
    /// A TSS descriptor (16- or 32-bit, available or busy).
    #[must_use]
    pub fn is_tss(&self) -> bool {
        !self.is_segment()
            && matches!(
                self.typ(),
                sys::TSS16_AVAIL | sys::TSS16_BUSY | sys::TSS32_AVAIL | sys::TSS32_BUSY
            )
    }
    #[must_use]
    pub fn is_code(&self) -> bool {
        self.is_segment() && self.typ() & 8 != 0
    }
    #[must_use]
    pub fn readable_or_data(&self) -> bool {
        self.is_segment() && (self.typ() & 8 == 0 || self.typ() & 2 != 0)
    }
    #[must_use]
    pub fn conforming(&self) -> bool {
        self.is_code() && self.typ() & 4 != 0
    }
    #[must_use]
    pub fn writable_data(&self) -> bool {
        self.is_segment() && self.typ() & 8 == 0 && self.typ() & 2 != 0
    }
    /// Gate target selector.
    #[must_use]
    pub fn gate_selector(&self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// Gate target offset (16-bit gates use only the low word).
    #[must_use]
    pub fn gate_offset(&self) -> u64 {
        let low = self.0 & 0xffff;
        if self.typ() & 8 != 0 {
            low | (((self.0 >> 48) & 0xffff) << 16)
        } else {
            low
        }
    }
    /// Call gate parameter count.
    #[must_use]
    pub fn gate_params(&self) -> u8 {
        ((self.0 >> 32) & 0x1f) as u8
    }
    /// The hidden-cache form of this descriptor loaded with `selector`.
    #[must_use]
    pub fn to_segment(&self, selector: u16) -> Segment {
        Segment {
            base: self.base(),
            limit: self.limit(),
            selector,
            attr: self.attr(),
        }
    }
}

impl Cpu {
    /// Linear address of the descriptor `sel` names, checked against the GDT/LDT limit;
    /// `err` builds the fault (with the selector's index as error code).
    pub fn descriptor_addr(&self, sel: u16, err: fn(u16) -> Fault) -> Exec<u64> {
        let index = u64::from(sel & 0xfff8);
        let (base, limit) = if sel & 4 != 0 {
            if !self.s.ldtr.present() || self.s.ldtr.selector & 0xfffc == 0 {
                return Err(err(sel & 0xfffc));
            }
            (self.s.ldtr.base, u64::from(self.s.ldtr.limit))
        } else {
            (self.s.gdtr.base, u64::from(self.s.gdtr.limit))
        };
        if index + 7 > limit {
            return Err(err(sel & 0xfffc));
        }
        Ok(base.wrapping_add(index))
    }

    pub fn read_descriptor(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        err: fn(u16) -> Fault,
    ) -> Exec<Descriptor> {
        let at = self.descriptor_addr(sel, err)?;
        Ok(Descriptor(self.read_sys(bus, at, 8)?))
    }

    /// The upper half of a 16-byte IA-32e system descriptor (LDT, TSS, call gate) whose
    /// lower half `sel` names: #GP(sel) when the table is too short or the upper half's type
    /// field is not zero. Returns bits 63..32 of the base or offset.
    pub(crate) fn read_descriptor_high(&mut self, bus: &mut dyn Bus, sel: u16) -> Exec<u64> {
        let code = sel & 0xfffc;
        let (base, limit) = if sel & 4 != 0 {
            (self.s.ldtr.base, u64::from(self.s.ldtr.limit))
        } else {
            (self.s.gdtr.base, u64::from(self.s.gdtr.limit))
        };
        let index = u64::from(sel & 0xfff8);
        if index + 15 > limit {
            return Err(Fault::gp(code));
        }
        let high = self.read_sys(bus, base.wrapping_add(index + 8), 8)?;
        if (high >> 40) & 0x1f != 0 {
            return Err(Fault::gp(code));
        }
        Ok(high & 0xffff_ffff)
    }

    /// Set the accessed bit of a code/data descriptor, as loading a segment does.
    pub fn mark_accessed(&mut self, bus: &mut dyn Bus, sel: u16, d: Descriptor) -> Exec {
        if d.is_segment() && d.0 & (1 << 40) == 0 {
            let at = self.descriptor_addr(sel, Fault::gp)?;
            self.write_sys(bus, at + 5, 1, ((d.0 >> 40) | 1) & 0xff)?;
        }
        Ok(())
    }

    /// Set or clear the busy bit of the TSS descriptor `sel` names in the GDT.
    pub(crate) fn set_tss_busy(&mut self, bus: &mut dyn Bus, sel: u16, busy: bool) -> Exec {
        let at = self
            .s
            .gdtr
            .base
            .wrapping_add(u64::from(sel & 0xfff8))
            .wrapping_add(5);
        let b = self.read_sys(bus, at, 1)?;
        let v = if busy { b | 2 } else { b & !2 };
        self.write_sys(bus, at, 1, v)
    }

    /// MOV/POP/LDS-style load of a data or stack segment register (not CS).
    pub fn load_seg(&mut self, bus: &mut dyn Bus, seg: SegReg, sel: u16) -> Exec {
        if !self.s.protected_mode() || self.s.v86_mode() {
            let keep = self.s.seg[seg as usize];
            self.s.seg[seg as usize] = if self.s.v86_mode() {
                v86_segment(sel)
            } else {
                // Real mode keeps the cached limit and attributes ("big real mode").
                Segment {
                    base: u64::from(sel) << 4,
                    selector: sel,
                    ..keep
                }
            };
            return Ok(());
        }
        let cpl = self.s.cpl();
        self.load_seg_checked(bus, seg, sel, cpl, Fault::gp)
    }

    /// Protected-mode load of DS/ES/FS/GS/SS for privilege level `cpl`. `bad` builds the fault
    /// for an invalid selector or descriptor (#GP for instructions, #TS in a task switch);
    /// absent segments give #NP, or #SS for SS.
    pub(crate) fn load_seg_checked(
        &mut self,
        bus: &mut dyn Bus,
        seg: SegReg,
        sel: u16,
        cpl: u8,
        bad: fn(u16) -> Fault,
    ) -> Exec {
        let rpl = (sel & 3) as u8;
        let code = sel & 0xfffc;
        if code == 0 {
            if seg == SegReg::Ss {
                // 64-bit mode runs at CPL 0-2 with a null SS (its RPL must be the CPL).
                if self.s.long64() && cpl < 3 && rpl == cpl {
                    self.s.seg[seg as usize] = null_ss(rpl);
                    return Ok(());
                }
                return Err(bad(0));
            }
            // A null selector loads fine; the invalid cache makes any access #GP(0).
            self.s.seg[seg as usize] = Segment {
                selector: sel,
                ..Segment::default()
            };
            return Ok(());
        }
        let d = self.read_descriptor(bus, sel, bad)?;
        if seg == SegReg::Ss {
            if rpl != cpl || !d.writable_data() || d.dpl() != cpl {
                return Err(bad(code));
            }
            if !d.present() {
                return Err(Fault::ss(code));
            }
        } else {
            if !d.readable_or_data() {
                return Err(bad(code));
            }
            if !d.conforming() && (rpl > d.dpl() || cpl > d.dpl()) {
                return Err(bad(code));
            }
            if !d.present() {
                return Err(Fault::np(code));
            }
        }
        self.mark_accessed(bus, sel, d)?;
        self.s.seg[seg as usize] = Descriptor(d.0 | (1 << 40)).to_segment(sel);
        Ok(())
    }

    /// After a return to an outer level: DS/ES/FS/GS that the new CPL may not use become null
    /// (data and non-conforming code segments with DPL < CPL).
    pub(crate) fn nullify_data_segs(&mut self, cpl: u8) {
        for s in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let c = self.s.seg[s as usize];
            let conforming_code =
                c.attr & (attr::S | attr::CODE | attr::DC) == attr::S | attr::CODE | attr::DC;
            let data_or_nonconforming = c.attr & attr::S != 0 && !conforming_code;
            if c.selector & 0xfffc == 0 || (data_or_nonconforming && c.dpl() < cpl) {
                self.s.seg[s as usize] = Segment::default();
            }
        }
    }
}

/// SS holding a null selector in 64-bit mode: unusable, but its DPL keeps the CPL.
#[must_use]
pub(crate) fn null_ss(rpl: u8) -> Segment {
    Segment {
        selector: u16::from(rpl),
        attr: u16::from(rpl) << attr::DPL_SHIFT,
        ..Segment::default()
    }
}

/// A segment register as virtual-8086 mode (and real-mode style loads there) leave it.
#[must_use]
pub(crate) fn v86_segment(sel: u16) -> Segment {
    Segment {
        base: u64::from(sel) << 4,
        limit: 0xffff,
        selector: sel,
        attr: attr::REAL_DATA | (3 << attr::DPL_SHIFT),
    }
}
