//! Nestor's gdb architecture: one fixed x86-64 register layout for the whole session, in every
//! CPU mode (so the 'g' packet never changes size), described to gdb by `target.xml`.

use gdbstub::arch::{Arch, Registers};
use nestor_cpu::debug::{linear_pc, CpuMode};
use nestor_cpu::state::{CpuState, SegReg};
use nestor_cpu::x87::F80;

/// The x86 PC as gdb sees it through Nestor.
pub enum NestorX86 {}

impl Arch for NestorX86 {
    type Usize = u64;
    type Registers = X86Regs;
    type BreakpointKind = usize;
    type RegId = ();

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The target description served to gdb (i386:x86-64 core, SSE, segment bases, system regs).
pub const TARGET_XML: &str = include_str!("target.xml");

/// Our GPR index (encoding order) of each of gdb's first 16 registers.
const GDB_GPR_ORDER: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];
/// Segment registers in gdb's order: cs ss ds es fs gs.
const GDB_SEG_ORDER: [SegReg; 6] = [
    SegReg::Cs,
    SegReg::Ss,
    SegReg::Ds,
    SegReg::Es,
    SegReg::Fs,
    SegReg::Gs,
];
/// Names of the registers of the "org.nestor.x86.system" feature, in order.
pub const SYSTEM_REGS: [&str; 11] = [
    "es_base",
    "cs_base",
    "ss_base",
    "ds_base",
    "k_gs_base",
    "cr0",
    "cr2",
    "cr3",
    "cr4",
    "cr8",
    "efer",
];

/// Every register of the layout, in `target.xml` order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct X86Regs {
    /// rax rbx rcx rdx rsi rdi rbp rsp r8..r15 (gdb's order).
    pub gpr: [u64; 16],
    /// The linear PC: CS.base + IP outside 64-bit mode (what breakpoints and memory use).
    pub rip: u64,
    pub eflags: u32,
    /// cs ss ds es fs gs selectors.
    pub seg: [u32; 6],
    /// ST(0)..ST(7), 80-bit.
    pub st: [[u8; 10]; 8],
    /// fctrl fstat ftag fiseg fioff foseg fooff fop.
    pub fpu: [u32; 8],
    pub xmm: [u128; 16],
    pub mxcsr: u32,
    pub fs_base: u64,
    pub gs_base: u64,
    /// See [`SYSTEM_REGS`].
    pub sys: [u64; 11],
}

impl Registers for X86Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        let mut put = |bytes: &[u8]| bytes.iter().for_each(|b| write_byte(Some(*b)));
        self.gpr.iter().for_each(|r| put(&r.to_le_bytes()));
        put(&self.rip.to_le_bytes());
        put(&self.eflags.to_le_bytes());
        self.seg.iter().for_each(|r| put(&r.to_le_bytes()));
        self.st.iter().for_each(|r| put(r));
        self.fpu.iter().for_each(|r| put(&r.to_le_bytes()));
        self.xmm.iter().for_each(|r| put(&r.to_le_bytes()));
        put(&self.mxcsr.to_le_bytes());
        put(&self.fs_base.to_le_bytes());
        put(&self.gs_base.to_le_bytes());
        self.sys.iter().for_each(|r| put(&r.to_le_bytes()));
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        let mut r = Reader(bytes);
        for g in &mut self.gpr {
            *g = r.u64()?;
        }
        self.rip = r.u64()?;
        self.eflags = r.u32()?;
        for s in &mut self.seg {
            *s = r.u32()?;
        }
        for st in &mut self.st {
            st.copy_from_slice(r.take(10)?);
        }
        for f in &mut self.fpu {
            *f = r.u32()?;
        }
        for x in &mut self.xmm {
            let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| ())?;
            *x = u128::from_le_bytes(b);
        }
        self.mxcsr = r.u32()?;
        self.fs_base = r.u64()?;
        self.gs_base = r.u64()?;
        for s in &mut self.sys {
            *s = r.u64()?;
        }
        Ok(())
    }
}

/// Consumes little-endian fields from a 'G' packet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        if self.0.len() < n {
            return Err(());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, ()> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| ())?,
        ))
    }
    fn u32(&mut self) -> Result<u32, ()> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| ())?,
        ))
    }
}

/// The full x87 tag word (2 bits per physical register) from the abridged one.
fn full_tag_word(s: &CpuState) -> u32 {
    use nestor_cpu::x87::f80::Class;
    let mut tag = 0u32;
    for (i, r) in s.x87.st.iter().enumerate() {
        let t = if s.x87.ftw & (1 << i) == 0 {
            3
        } else {
            match r.class() {
                Class::Zero => 1,
                Class::Normal => 0,
                _ => 2,
            }
        };
        tag |= t << (2 * i);
    }
    tag
}

fn top(s: &CpuState) -> usize {
    usize::from((s.x87.fsw >> 11) & 7)
}

impl X86Regs {
    /// The layout filled from the CPU state.
    #[must_use]
    pub fn from_state(s: &CpuState) -> Self {
        let mut r = Self::default();
        for (g, &i) in r.gpr.iter_mut().zip(GDB_GPR_ORDER.iter()) {
            *g = s.gpr[i];
        }
        r.rip = linear_pc(s);
        r.eflags = s.rflags as u32;
        for (v, &seg) in r.seg.iter_mut().zip(GDB_SEG_ORDER.iter()) {
            *v = u32::from(s.seg(seg).selector);
        }
        for (i, st) in r.st.iter_mut().enumerate() {
            *st = s.x87.st[(top(s) + i) & 7].to_bytes();
        }
        let x = &s.x87;
        r.fpu = [
            u32::from(x.fcw),
            u32::from(x.fsw),
            full_tag_word(s),
            u32::from(x.fcs),
            x.fip as u32,
            u32::from(x.fds),
            x.fdp as u32,
            u32::from(x.fop),
        ];
        r.xmm = s.xmm;
        r.mxcsr = x.mxcsr;
        r.fs_base = s.seg(SegReg::Fs).base;
        r.gs_base = s.seg(SegReg::Gs).base;
        r.sys = [
            s.seg(SegReg::Es).base,
            s.seg(SegReg::Cs).base,
            s.seg(SegReg::Ss).base,
            s.seg(SegReg::Ds).base,
            s.msr.kernel_gs_base,
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.cr8,
            s.efer,
        ];
        r
    }

    /// Write gdb's edits back into `s`. Selectors written in real or virtual-8086 mode move
    /// their segment's base as a load would; elsewhere the hidden caches keep their value
    /// unless a base register was written.
    pub fn apply_to(&self, s: &mut CpuState) {
        let mode = CpuMode::of(s);
        let old = Self::from_state(s);
        for (&g, &i) in self.gpr.iter().zip(GDB_GPR_ORDER.iter()) {
            s.gpr[i] = g;
        }
        let bases = [
            (SegReg::Es, self.sys[0], old.sys[0]),
            (SegReg::Cs, self.sys[1], old.sys[1]),
            (SegReg::Ss, self.sys[2], old.sys[2]),
            (SegReg::Ds, self.sys[3], old.sys[3]),
            (SegReg::Fs, self.fs_base, old.fs_base),
            (SegReg::Gs, self.gs_base, old.gs_base),
        ];
        for (seg, new, was) in bases {
            if new != was {
                s.seg[seg as usize].base = new;
            }
        }
        for (&v, &seg) in self.seg.iter().zip(GDB_SEG_ORDER.iter()) {
            let r = &mut s.seg[seg as usize];
            if u32::from(r.selector) != v {
                r.selector = v as u16;
                if mode.real_segments() {
                    r.base = u64::from(v as u16) << 4;
                }
            }
        }
        // gdb's PC is linear; IP is its offset from CS.base outside 64-bit mode.
        s.rip = match s.code_bitness() {
            64 => self.rip,
            32 => self.rip.wrapping_sub(s.seg(SegReg::Cs).base) & 0xffff_ffff,
            _ => self.rip.wrapping_sub(s.seg(SegReg::Cs).base) & 0xffff,
        };
        s.rflags = u64::from(self.eflags) | 2;
        for (i, st) in self.st.iter().enumerate() {
            s.x87.st[(top(s) + i) & 7] = F80::from_bytes(st);
        }
        s.xmm = self.xmm;
        s.x87.mxcsr = self.mxcsr;
        s.msr.kernel_gs_base = self.sys[4];
        s.cr0 = self.sys[5];
        s.cr2 = self.sys[6];
        s.cr3 = self.sys[7];
        s.cr4 = self.sys[8];
        s.cr8 = self.sys[9];
        s.efer = self.sys[10];
        self.apply_fpu_control(s);
    }

    fn apply_fpu_control(&self, s: &mut CpuState) {
        let x = &mut s.x87;
        x.fcw = self.fpu[0] as u16;
        x.fsw = self.fpu[1] as u16;
        // Abridged tag: a register is in use unless its full tag says empty (3).
        x.ftw = (0..8).fold(0u8, |acc, i| {
            let empty = (self.fpu[2] >> (2 * i)) & 3 == 3;
            acc | (u8::from(!empty) << i)
        });
        x.fcs = self.fpu[3] as u16;
        x.fip = u64::from(self.fpu[4]);
        x.fds = self.fpu[5] as u16;
        x.fdp = u64::from(self.fpu[6]);
        x.fop = self.fpu[7] as u16;
    }

    /// Size of the 'g' packet payload in bytes (fixed for the whole session).
    #[must_use]
    pub fn packet_len() -> usize {
        let mut n = 0;
        Self::default().gdb_serialize(|_| n += 1);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_cpu::state::{cr0, Segment};

    /// Bytes in the layout `target.xml` declares, summed from its `bitsize` attributes.
    fn xml_bytes() -> usize {
        TARGET_XML
            .split("<reg ")
            .skip(1)
            .map(|r| {
                let bits = r
                    .split("bitsize=\"")
                    .nth(1)
                    .and_then(|t| t.split('"').next());
                bits.and_then(|b| b.parse::<usize>().ok()).unwrap_or(0) / 8
            })
            .sum()
    }

    #[test]
    fn packet_matches_the_target_description() {
        assert_eq!(X86Regs::packet_len(), xml_bytes());
        assert_eq!(
            X86Regs::packet_len(),
            16 * 8 + 8 + 4 + 6 * 4 + 80 + 32 + 256 + 4 + 16 + 88
        );
    }

    #[test]
    fn same_size_in_real_protected_and_long_mode() {
        let real = CpuState::power_on();
        let mut prot = real.clone();
        prot.cr0 |= cr0::PE;
        let mut long = prot.clone();
        long.efer |= nestor_cpu::state::efer::LMA;
        long.seg[SegReg::Cs as usize].attr |= nestor_cpu::state::attr::L;
        for s in [&real, &prot, &long] {
            let mut n = 0;
            X86Regs::from_state(s).gdb_serialize(|_| n += 1);
            assert_eq!(n, X86Regs::packet_len());
        }
    }

    #[test]
    fn real_mode_pc_is_linear_and_round_trips() {
        let mut s = CpuState::power_on();
        s.seg[SegReg::Cs as usize] = Segment::real_mode(0xf000);
        s.rip = 0x1234;
        s.gpr[3] = 0xdead_beef; // rbx: second in gdb's order
        let r = X86Regs::from_state(&s);
        assert_eq!(r.rip, 0xf1234);
        assert_eq!(r.gpr[1], 0xdead_beef);
        let mut bytes = Vec::new();
        r.gdb_serialize(|b| bytes.push(b.unwrap_or(0)));
        let mut back = X86Regs::default();
        back.gdb_deserialize(&bytes).expect("well-formed packet");
        assert_eq!(back, r);
        let mut moved = back.clone();
        moved.rip = 0xf2000;
        let mut s2 = s.clone();
        moved.apply_to(&mut s2);
        assert_eq!(s2.rip, 0x2000);
        assert_eq!(s2.gpr[3], 0xdead_beef);
    }

    #[test]
    fn short_packet_is_rejected() {
        let mut r = X86Regs::default();
        assert!(r.gdb_deserialize(&[0u8; 20]).is_err());
    }
}
