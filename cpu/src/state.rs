//! Architectural state. `#[repr(C)]`: the JIT addresses fields by offset, so the layout is a
//! contract; any change is a snapshot format change.

use crate::flags::LazyFlags;
use serde::{Deserialize, Serialize};

/// Segment registers in encoding order (the `sreg` field of ModRM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

impl SegReg {
    pub const ALL: [SegReg; 6] = [Self::Es, Self::Cs, Self::Ss, Self::Ds, Self::Fs, Self::Gs];

    #[must_use]
    pub fn from_iced(r: iced_x86::Register) -> Option<Self> {
        use iced_x86::Register as R;
        Some(match r {
            R::ES => Self::Es,
            R::CS => Self::Cs,
            R::SS => Self::Ss,
            R::DS => Self::Ds,
            R::FS => Self::Fs,
            R::GS => Self::Gs,
            _ => return None,
        })
    }
}

/// Descriptor attribute bits as kept in the hidden part of a segment register
/// (bits 40..47 and 52..55 of a descriptor, packed as `type|S<<4|DPL<<5|P<<7|AVL<<12|L<<13|DB<<14|G<<15`).
pub mod attr {
    pub const TYPE_MASK: u16 = 0x000f;
    pub const ACCESSED: u16 = 0x0001;
    /// Data: writable. Code: readable.
    pub const RW: u16 = 0x0002;
    /// Data: expand-down. Code: conforming.
    pub const DC: u16 = 0x0004;
    pub const CODE: u16 = 0x0008;
    /// Code or data (as opposed to a system descriptor).
    pub const S: u16 = 0x0010;
    pub const DPL_SHIFT: u16 = 5;
    pub const DPL_MASK: u16 = 0x0060;
    pub const P: u16 = 0x0080;
    pub const AVL: u16 = 0x1000;
    pub const L: u16 = 0x2000;
    pub const DB: u16 = 0x4000;
    pub const G: u16 = 0x8000;
    /// Read/write accessed data segment, present, DPL 0: what real mode leaves in a segment.
    pub const REAL_DATA: u16 = P | S | RW | ACCESSED;
}

/// A segment register: visible selector plus the hidden descriptor cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct Segment {
    pub base: u64,
    /// Byte-granular limit (already scaled when G is set).
    pub limit: u32,
    pub selector: u16,
    pub attr: u16,
}

impl Segment {
    #[must_use]
    pub fn real_mode(selector: u16) -> Self {
        Self {
            base: u64::from(selector) << 4,
            limit: 0xffff,
            selector,
            attr: attr::REAL_DATA,
        }
    }
    #[must_use]
    pub fn dpl(&self) -> u8 {
        ((self.attr & attr::DPL_MASK) >> attr::DPL_SHIFT) as u8
    }
    #[must_use]
    pub fn present(&self) -> bool {
        self.attr & attr::P != 0
    }
    #[must_use]
    pub fn is_code(&self) -> bool {
        self.attr & (attr::S | attr::CODE) == attr::S | attr::CODE
    }
    /// Default operand/address size bit (D/B).
    #[must_use]
    pub fn big(&self) -> bool {
        self.attr & attr::DB != 0
    }
    #[must_use]
    pub fn long(&self) -> bool {
        self.attr & attr::L != 0
    }
}

/// GDTR / IDTR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct TableReg {
    pub base: u64,
    pub limit: u16,
}

/// Model-specific registers the CPU keeps as state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct Msrs {
    pub tsc: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub apic_base: u64,
    pub pat: u64,
    pub misc_enable: u64,
    /// IA32_MTRR_DEF_TYPE (0x2FF).
    pub mtrr_def_type: u64,
    /// Fixed-range MTRRs: 0x250, 0x258, 0x259, 0x268..=0x26F.
    pub mtrr_fixed: [u64; 11],
    /// Variable-range MTRRs 0x200..=0x20F: base/mask pairs.
    pub mtrr_var: [u64; 16],
    /// SYSCALL/SYSRET selectors (STAR), 64-bit and compatibility-mode entry points, RFLAGS mask.
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    /// The GS base SWAPGS exchanges with GS's (IA32_KERNEL_GS_BASE).
    pub kernel_gs_base: u64,
    /// IA32_TSC_AUX: what RDTSCP and RDPID return.
    pub tsc_aux: u64,
    /// IA32_TSC_DEADLINE, for the local APIC's TSC-deadline timer mode (0 = disarmed).
    pub tsc_deadline: u64,
    /// IA32_DEBUGCTL (LBR, BTF and the freeze bits; only BTF changes execution).
    pub debugctl: u64,
    /// IA32_SPEC_CTRL (IBRS, STIBP, SSBD): stored; speculation is not modelled.
    pub spec_ctrl: u64,
}

/// Events pending between instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct Events {
    pub halted: bool,
    /// Interrupts are inhibited for one instruction (after STI, MOV SS, POP SS).
    pub interrupt_shadow: bool,
    pub nmi_pending: bool,
    /// Shut down after a triple fault; only reset or NMI leaves it.
    pub shutdown: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct CpuState {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    pub rip: u64,
    /// RFLAGS; the arithmetic bits are stale while `lazy` holds a pending result.
    pub rflags: u64,
    pub lazy: LazyFlags,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub dr: [u64; 8],
    pub msr: Msrs,
    pub events: Events,
    /// x87 FPU state (registers, control/status/tag words, last instruction and operand).
    pub x87: crate::x87::X87State,
    /// SSE registers XMM0..XMM15 (little-endian lanes; MXCSR is `x87.mxcsr`).
    pub xmm: [u128; 16],
    /// XCR0, the XSAVE feature mask XSETBV writes (bit 0, x87, is always set).
    #[serde(default = "xcr0_reset", deserialize_with = "xcr0_or_reset")]
    pub xcr0: u64,
}

/// XCR0 after reset and in snapshots that predate it: x87 state only.
fn xcr0_reset() -> u64 {
    1
}

/// XCR0 from a snapshot. Non-self-describing formats (bincode) cannot report a missing last
/// field, only the end of the data: then the snapshot predates XCR0 and it takes its reset
/// value.
fn xcr0_or_reset<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(<u64 as Deserialize>::deserialize(d).map_or(xcr0_reset(), |v| v | 1))
}

pub mod cr0 {
    pub const PE: u64 = 1 << 0;
    pub const MP: u64 = 1 << 1;
    pub const EM: u64 = 1 << 2;
    pub const TS: u64 = 1 << 3;
    pub const ET: u64 = 1 << 4;
    pub const NE: u64 = 1 << 5;
    pub const WP: u64 = 1 << 16;
    pub const AM: u64 = 1 << 18;
    pub const NW: u64 = 1 << 29;
    pub const CD: u64 = 1 << 30;
    pub const PG: u64 = 1 << 31;
}

/// IA32_EFER bits.
pub mod efer {
    /// SYSCALL/SYSRET enable.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enable: IA-32e mode starts when paging is turned on with it set.
    pub const LME: u64 = 1 << 8;
    /// Long mode active (read-only).
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable.
    pub const NXE: u64 = 1 << 11;
}

pub mod cr4 {
    pub const VME: u64 = 1 << 0;
    pub const PVI: u64 = 1 << 1;
    pub const TSD: u64 = 1 << 2;
    pub const DE: u64 = 1 << 3;
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const MCE: u64 = 1 << 6;
    pub const PGE: u64 = 1 << 7;
    pub const PCE: u64 = 1 << 8;
    pub const OSFXSR: u64 = 1 << 9;
    pub const OSXMMEXCPT: u64 = 1 << 10;
    pub const UMIP: u64 = 1 << 11;
    /// 5-level paging (57-bit linear addresses).
    pub const LA57: u64 = 1 << 12;
    pub const FSGSBASE: u64 = 1 << 16;
    pub const PCIDE: u64 = 1 << 17;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
    /// XSAVE/XRSTOR/XGETBV/XSETBV enabled by the OS.
    pub const OSXSAVE: u64 = 1 << 18;
}

pub mod rflags {
    pub const CF: u64 = 1 << 0;
    pub const FIXED1: u64 = 1 << 1;
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const OF: u64 = 1 << 11;
    pub const IOPL: u64 = 3 << 12;
    pub const IOPL_SHIFT: u32 = 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    pub const VIF: u64 = 1 << 19;
    pub const VIP: u64 = 1 << 20;
    pub const ID: u64 = 1 << 21;
    /// The six flags arithmetic instructions define.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
}

impl CpuState {
    /// The power-on state of an x86 CPU (Intel SDM vol. 3, table 9-1): real mode at F000:FFF0
    /// with CS base FFFF0000 so that the first fetch hits the top of the 4 GiB space.
    #[must_use]
    pub fn power_on() -> Self {
        let mut seg = [Segment::real_mode(0); 6];
        seg[SegReg::Cs as usize] = Segment {
            base: 0xffff_0000,
            limit: 0xffff,
            selector: 0xf000,
            attr: attr::P | attr::S | attr::CODE | attr::RW | attr::ACCESSED,
        };
        let mut gpr = [0; 16];
        // EDX holds the processor signature after reset (family 6, model 1: Pentium Pro).
        gpr[2] = 0x0000_0611;
        Self {
            gpr,
            rip: 0xfff0,
            rflags: rflags::FIXED1,
            lazy: LazyFlags::default(),
            seg,
            ldtr: Segment {
                limit: 0xffff,
                attr: attr::P | 2,
                ..Segment::default()
            },
            tr: Segment {
                limit: 0xffff,
                attr: attr::P | 3,
                ..Segment::default()
            },
            gdtr: TableReg {
                base: 0,
                limit: 0xffff,
            },
            idtr: TableReg {
                base: 0,
                limit: 0xffff,
            },
            cr0: cr0::ET | cr0::CD | cr0::NW,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            msr: Msrs {
                apic_base: 0xfee0_0900,
                pat: 0x0007_0406_0007_0406,
                ..Msrs::default()
            },
            events: Events::default(),
            x87: crate::x87::X87State::power_on(),
            xmm: [0; 16],
            xcr0: xcr0_reset(),
        }
    }

    #[must_use]
    pub fn seg(&self, s: SegReg) -> &Segment {
        &self.seg[s as usize]
    }

    #[must_use]
    pub fn protected_mode(&self) -> bool {
        self.cr0 & cr0::PE != 0
    }

    #[must_use]
    pub fn v86_mode(&self) -> bool {
        self.protected_mode() && self.rflags & rflags::VM != 0
    }

    /// Current privilege level: 0 in real mode, 3 in virtual-8086 mode, else SS.DPL. The
    /// hardware keeps CPL in the hidden part of SS (SDM 5.5), which is what makes code that
    /// sets CR0.PE with odd low bits in CS run at CPL 0 until its far jump.
    #[must_use]
    pub fn cpl(&self) -> u8 {
        if !self.protected_mode() {
            0
        } else if self.rflags & rflags::VM != 0 {
            3
        } else {
            self.seg[SegReg::Ss as usize].dpl()
        }
    }

    #[must_use]
    pub fn iopl(&self) -> u8 {
        ((self.rflags & rflags::IOPL) >> rflags::IOPL_SHIFT) as u8
    }

    /// IA-32e mode (64-bit or compatibility mode).
    #[inline]
    #[must_use]
    pub fn long_mode(&self) -> bool {
        self.efer & efer::LMA != 0
    }

    /// 64-bit mode: IA-32e mode with a code segment whose L bit is set.
    #[inline]
    #[must_use]
    pub fn long64(&self) -> bool {
        self.efer & efer::LMA != 0 && self.seg[SegReg::Cs as usize].attr & attr::L != 0
    }

    /// Is `lin` canonical: bits 63..47 (or 63..56 with 5-level paging) all equal?
    #[inline]
    #[must_use]
    pub fn canonical(&self, lin: u64) -> bool {
        let unused = if self.cr4 & cr4::LA57 != 0 { 7 } else { 16 };
        (((lin << unused) as i64) >> unused) as u64 == lin
    }

    /// Code-segment bitness for decoding: 16, 32 or 64.
    #[must_use]
    pub fn code_bitness(&self) -> u32 {
        let cs = self.seg(SegReg::Cs);
        if self.efer & efer::LMA != 0 && cs.long() {
            64
        } else if self.protected_mode() && self.rflags & rflags::VM == 0 && cs.big() {
            32
        } else {
            16
        }
    }
}

impl Default for CpuState {
    fn default() -> Self {
        Self::power_on()
    }
}
