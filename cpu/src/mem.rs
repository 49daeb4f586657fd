//! Guest memory as instructions see it: segmentation checks, then the TLB (host pointer fast
//! path), then page walks and the bus on a miss.

use crate::bus::{Bus, PageTarget, PAGE_SIZE};
use crate::fault::{Exec, Fault};
use crate::paging::{self, AccessKind, Privilege};
use crate::phys;
use crate::state::{attr, cr0, rflags, SegReg};
use crate::tlb::{perm, TlbEntry};
use crate::Cpu;

/// Where a translated access goes.
enum Target {
    Host(*mut u8),
    Slow(u64),
}

#[inline]
fn needed_perm(kind: AccessKind, who: Privilege) -> u8 {
    use Privilege::{Supervisor, System, User};
    match (kind, who) {
        (AccessKind::Read, User) => perm::READ_USER,
        (AccessKind::Read, Supervisor { ac: true }) => perm::READ_SUP_AC,
        (AccessKind::Read, _) => perm::READ_SUP,
        (AccessKind::Write, User) => perm::WRITE_USER,
        (AccessKind::Write, Supervisor { ac: true }) => perm::WRITE_SUP_AC,
        (AccessKind::Write, _) => perm::WRITE_SUP,
        (AccessKind::Execute, User) => perm::EXEC_USER,
        (AccessKind::Execute, Supervisor { .. } | System) => perm::EXEC_SUP,
    }
}

/// Load `size` (1, 2, 4 or 8) little-endian bytes.
///
/// # Safety
/// `p` must be valid for reads of `size` bytes.
#[inline]
unsafe fn load(p: *const u8, size: u8) -> u64 {
    match size {
        1 => u64::from(*p),
        2 => u64::from(u16::from_le(std::ptr::read_unaligned(p.cast::<u16>()))),
        4 => u64::from(u32::from_le(std::ptr::read_unaligned(p.cast::<u32>()))),
        _ => u64::from_le(std::ptr::read_unaligned(p.cast::<u64>())),
    }
}

/// Store the low `size` (1, 2, 4 or 8) bytes of `v`, little-endian.
///
/// # Safety
/// `p` must be valid for writes of `size` bytes.
#[inline]
unsafe fn store(p: *mut u8, size: u8, v: u64) {
    match size {
        1 => *p = v as u8,
        2 => std::ptr::write_unaligned(p.cast::<u16>(), (v as u16).to_le()),
        4 => std::ptr::write_unaligned(p.cast::<u32>(), (v as u32).to_le()),
        _ => std::ptr::write_unaligned(p.cast::<u64>(), v.to_le()),
    }
}

impl Cpu {
    /// The host address of an explicit access of `size` (1, 2, 4 or 8) bytes at `lin` when
    /// the TLB already grants it on host memory and nothing else must see the access (no
    /// page crossing, no debugger watching). `None` sends the access down the full path.
    #[inline(always)]
    fn host_fast(&self, lin: u64, size: u8, kind: AccessKind) -> Option<*mut u8> {
        let off = lin & (PAGE_SIZE - 1);
        if !matches!(size, 1 | 2 | 4 | 8) || off + u64::from(size) > PAGE_SIZE || self.debug.active
        {
            return None;
        }
        // A misaligned access may owe an #AC: the full path decides.
        if lin & u64::from(size - 1) != 0 && self.s.rflags & rflags::AC != 0 {
            return None;
        }
        let need = needed_perm(kind, self.privilege(self.user_access()));
        let host = self.tlb.lookup(lin, need)?.host?;
        // SAFETY: the bus keeps the page valid until the map generation changes (the TLB is
        // flushed when it does) and `off + size` stays inside the page.
        Some(unsafe { host.as_ptr().add(off as usize) })
    }

    /// Translate a linear address for one access that does not cross a page.
    fn translate(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        kind: AccessKind,
        who: Privilege,
    ) -> Exec<Target> {
        let need = needed_perm(kind, who);
        let off = lin & (PAGE_SIZE - 1);
        if let Some(e) = self.tlb.lookup(lin, need) {
            return Ok(match e.host {
                // SAFETY: the bus keeps the page valid until the map generation changes,
                // and the TLB is flushed when it does.
                Some(h) => Target::Host(unsafe { h.as_ptr().add(off as usize) }),
                None => Target::Slow(e.ppage | off),
            });
        }
        let t = paging::translate(&self.s, bus, lin, kind, who)?;
        let ppage = t.paddr & bus.a20_mask() & !(PAGE_SIZE - 1);
        let mut p = t.perm;
        let host = match bus.page(ppage) {
            PageTarget::Host { ptr, writable } => {
                if !writable || self.icache.holds_code(ppage) {
                    p &= !perm::ANY_WRITE;
                }
                Some(ptr)
            }
            PageTarget::Mmio => None,
        };
        self.tlb.insert(TlbEntry {
            vpage: lin >> 12,
            ppage,
            host,
            perm: p,
            global: t.global,
            page_shift: t.page_shift,
        });
        Ok(match host {
            Some(h) if p & need == need => {
                // SAFETY: as above.
                Target::Host(unsafe { h.as_ptr().add(off as usize) })
            }
            _ => Target::Slow(ppage | off),
        })
    }

    /// Is this access made with user privilege (CPL 3)?
    #[inline]
    pub(crate) fn user_access(&self) -> bool {
        // CPL 3, spelled out so that the hot paths need no call: V86 mode, or SS.DPL = 3.
        let s = &self.s;
        s.cr0 & cr0::PE != 0
            && (s.rflags & rflags::VM != 0
                || s.seg[SegReg::Ss as usize].attr & attr::DPL_MASK == attr::DPL_MASK)
    }

    /// The page-protection view of an explicit access: user, or supervisor with EFLAGS.AC.
    #[inline]
    pub(crate) fn privilege(&self, user: bool) -> Privilege {
        if user {
            Privilege::User
        } else {
            Privilege::Supervisor {
                ac: self.s.rflags & rflags::AC != 0,
            }
        }
    }

    /// Read `buf.len()` (≤ 8) bytes at a linear address (an explicit access).
    pub fn read_linear(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        buf: &mut [u8],
        kind: AccessKind,
        user: bool,
    ) -> Exec {
        let who = self.privilege(user);
        self.read_linear_as(bus, lin, buf, kind, who)
    }

    /// Read `buf.len()` (≤ 8) bytes at a linear address with privilege `who`.
    pub(crate) fn read_linear_as(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        buf: &mut [u8],
        kind: AccessKind,
        who: Privilege,
    ) -> Exec {
        let first = (PAGE_SIZE - (lin & (PAGE_SIZE - 1))).min(buf.len() as u64) as usize;
        let (a, b) = buf.split_at_mut(first);
        let ta = self.translate(bus, lin, kind, who)?;
        let tb = if b.is_empty() {
            None
        } else {
            Some(self.translate(
                bus,
                lin.wrapping_add(first as u64) & self.lin_mask(),
                kind,
                who,
            )?)
        };
        if self.debug.active {
            self.debug.note_access(lin, a.len() + b.len(), kind);
        }
        self.read_target(bus, ta, a);
        if let Some(t) = tb {
            self.read_target(bus, t, b);
        }
        Ok(())
    }

    fn read_target(&mut self, bus: &mut dyn Bus, t: Target, buf: &mut [u8]) {
        match t {
            // SAFETY: `p` points into a valid host page and the access does not cross it.
            Target::Host(p) => unsafe {
                std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len())
            },
            Target::Slow(pa) => {
                // Device registers (HPET, LAPIC timer) read the time of this instruction.
                bus.sync_retired(self.retired);
                phys::read(bus, pa, buf);
            }
        }
    }

    /// Write bytes at a linear address (an explicit access); both pages are translated
    /// before either is written.
    pub fn write_linear(&mut self, bus: &mut dyn Bus, lin: u64, data: &[u8], user: bool) -> Exec {
        let who = self.privilege(user);
        self.write_linear_as(bus, lin, data, who)
    }

    /// Write bytes at a linear address with privilege `who`.
    pub(crate) fn write_linear_as(
        &mut self,
        bus: &mut dyn Bus,
        lin: u64,
        data: &[u8],
        who: Privilege,
    ) -> Exec {
        let first = (PAGE_SIZE - (lin & (PAGE_SIZE - 1))).min(data.len() as u64) as usize;
        let (a, b) = data.split_at(first);
        let ta = self.translate(bus, lin, AccessKind::Write, who)?;
        let tb = if b.is_empty() {
            None
        } else {
            Some(self.translate(
                bus,
                lin.wrapping_add(first as u64) & self.lin_mask(),
                AccessKind::Write,
                who,
            )?)
        };
        if self.debug.active {
            self.debug.note_access(lin, data.len(), AccessKind::Write);
        }
        self.write_target(bus, ta, a);
        if let Some(t) = tb {
            self.write_target(bus, t, b);
        }
        Ok(())
    }

    fn write_target(&mut self, bus: &mut dyn Bus, t: Target, data: &[u8]) {
        match t {
            // SAFETY: as in `read_target`; the TLB grants write only to writable host pages.
            Target::Host(p) => unsafe {
                std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len())
            },
            Target::Slow(pa) => {
                bus.sync_retired(self.retired);
                self.write_phys(bus, pa, data);
            }
        }
    }

    /// Physical write that keeps the decoded-instruction cache coherent.
    pub fn write_phys(&mut self, bus: &mut dyn Bus, paddr: u64, data: &[u8]) {
        let ppage = paddr & bus.a20_mask() & !(PAGE_SIZE - 1);
        if self.icache.holds_code(ppage) {
            self.icache.invalidate(ppage);
        }
        phys::write(bus, paddr, data);
    }

    /// Linear addresses wrap at 4 GiB outside IA-32e mode. (Compatibility-mode segment
    /// arithmetic wraps at 4 GiB in `check_segment`; system structures may lie anywhere.)
    #[inline]
    pub(crate) fn lin_mask(&self) -> u64 {
        if self.s.long_mode() {
            u64::MAX
        } else {
            0xffff_ffff
        }
    }

    /// 64-bit mode: the base is FS's or GS's or else 0, there are no limits, and both ends of
    /// the access must be canonical (#SS(0) for the stack segment, else #GP(0)).
    #[inline]
    pub(crate) fn linear64(&self, seg: SegReg, off: u64, size: u8) -> Exec<u64> {
        let lin = match seg {
            SegReg::Fs | SegReg::Gs => self.s.seg[seg as usize].base.wrapping_add(off),
            _ => off,
        };
        let last = lin.wrapping_add(u64::from(size.max(1)) - 1);
        if !self.s.canonical(lin) || !self.s.canonical(last) {
            return Err(if seg == SegReg::Ss {
                Fault::ss(0)
            } else {
                Fault::gp(0)
            });
        }
        Ok(lin)
    }

    /// Check an access of `size` bytes at `seg:off` and return its linear address.
    #[inline]
    pub fn seg_linear(&self, seg: SegReg, off: u64, size: u8, write: bool) -> Exec<u64> {
        match self.seg_linear_fast(seg, off, size, write) {
            Some(lin) => Ok(lin),
            None => self.seg_linear_full(seg, off, size, write),
        }
    }

    /// The linear address of `seg:off` when the access certainly passes the segment checks:
    /// 64-bit mode with canonical ends, or an expand-up segment of the right type with the
    /// access inside its limit. `None` leaves the decision (and any fault) to the full check.
    #[inline(always)]
    pub(crate) fn seg_linear_fast(
        &self,
        seg: SegReg,
        off: u64,
        size: u8,
        write: bool,
    ) -> Option<u64> {
        let s = &self.s;
        let sd = &s.seg[seg as usize];
        let last_off = u64::from(size).wrapping_sub(1);
        if s.long64() {
            let lin = match seg {
                SegReg::Fs | SegReg::Gs => sd.base.wrapping_add(off),
                _ => off,
            };
            let ok = size > 0 && s.canonical(lin) && s.canonical(lin.wrapping_add(last_off));
            return ok.then_some(lin);
        }
        let types = s.cr0 & cr0::PE != 0 && s.rflags & rflags::VM == 0;
        let a = sd.attr;
        let type_ok = !types
            || if write {
                a & (attr::P | attr::CODE | attr::RW) == attr::P | attr::RW
            } else {
                a & attr::P != 0 && (a & attr::CODE == 0 || a & attr::RW != 0)
            };
        let expand_down = a & (attr::CODE | attr::DC | attr::S) == attr::DC | attr::S;
        let last = off.wrapping_add(last_off);
        let ok = type_ok && !expand_down && last >= off && last <= u64::from(sd.limit);
        ok.then(|| sd.base.wrapping_add(off) & 0xffff_ffff)
    }

    /// The segment checks in full, faults included.
    #[inline(never)]
    pub(crate) fn seg_linear_full(
        &self,
        seg: SegReg,
        off: u64,
        size: u8,
        write: bool,
    ) -> Exec<u64> {
        if self.s.long64() {
            return self.linear64(seg, off, size);
        }
        let types = self.s.protected_mode() && self.s.rflags & rflags::VM == 0;
        self.check_segment(
            &self.s.seg[seg as usize],
            seg == SegReg::Ss,
            off,
            size,
            write,
            types,
        )
    }

    #[inline]
    fn check_alignment(&self, lin: u64, size: u8) -> Exec {
        if size > 1
            && lin & (u64::from(size) - 1) != 0
            && self.s.cr0 & cr0::AM != 0
            && self.s.rflags & rflags::AC != 0
            && self.s.cpl() == 3
        {
            return Err(Fault::ac());
        }
        Ok(())
    }

    /// Read a value of `size` bytes (1, 2, 4, 8) at `seg:off`.
    #[inline]
    pub fn read_mem(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec<u64> {
        if let Some(lin) = self.seg_linear_fast(seg, off, size, false) {
            if let Some(p) = self.host_fast(lin, size, AccessKind::Read) {
                // SAFETY: `host_fast` checked that `size` bytes at `p` are in one host page.
                return Ok(unsafe { load(p, size) });
            }
        }
        self.read_mem_full(bus, seg, off, size)
    }

    /// `read_mem` through the full segment checks, translation and the bus.
    #[inline(never)]
    fn read_mem_full(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec<u64> {
        let lin = self.seg_linear(seg, off, size, false)?;
        self.check_alignment(lin, size)?;
        let user = self.user_access();
        let mut b = [0u8; 8];
        self.read_linear(
            bus,
            lin,
            &mut b[..usize::from(size)],
            AccessKind::Read,
            user,
        )?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write the low `size` bytes of `value` at `seg:off`.
    #[inline]
    pub fn write_mem(
        &mut self,
        bus: &mut dyn Bus,
        seg: SegReg,
        off: u64,
        size: u8,
        value: u64,
    ) -> Exec {
        if let Some(lin) = self.seg_linear_fast(seg, off, size, true) {
            if let Some(p) = self.host_fast(lin, size, AccessKind::Write) {
                // SAFETY: `host_fast` checked that `size` bytes at `p` are in one writable host
                // page (the TLB grants write only there, and never on pages holding code).
                unsafe { store(p, size, value) };
                return Ok(());
            }
        }
        self.write_mem_full(bus, seg, off, size, value)
    }

    /// `write_mem` through the full segment checks, translation and the bus.
    #[inline(never)]
    fn write_mem_full(
        &mut self,
        bus: &mut dyn Bus,
        seg: SegReg,
        off: u64,
        size: u8,
        value: u64,
    ) -> Exec {
        let lin = self.seg_linear(seg, off, size, true)?;
        self.check_alignment(lin, size)?;
        let user = self.user_access();
        self.write_linear(bus, lin, &value.to_le_bytes()[..usize::from(size)], user)
    }

    /// Check that `seg:off` can be written without writing (read-modify-write instructions
    /// check the write before they read).
    #[inline]
    pub fn probe_write(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec {
        if let Some(lin) = self.seg_linear_fast(seg, off, size, true) {
            if self.host_fast(lin, size, AccessKind::Write).is_some() {
                return Ok(());
            }
        }
        self.probe_write_full(bus, seg, off, size)
    }

    #[inline(never)]
    fn probe_write_full(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec {
        let lin = self.seg_linear(seg, off, size, true)?;
        let who = self.privilege(self.user_access());
        let first = (PAGE_SIZE - (lin & (PAGE_SIZE - 1))).min(u64::from(size));
        self.translate(bus, lin, AccessKind::Write, who)?;
        if first < u64::from(size) {
            self.translate(
                bus,
                lin.wrapping_add(first) & self.lin_mask(),
                AccessKind::Write,
                who,
            )?;
        }
        Ok(())
    }

    /// Check that `seg:off` can be read without reading it (cache-line flushes, MONITOR):
    /// the segment and page checks of a load, and no device access.
    pub fn probe_read(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec {
        let lin = self.seg_linear(seg, off, size, false)?;
        let who = self.privilege(self.user_access());
        let first = (PAGE_SIZE - (lin & (PAGE_SIZE - 1))).min(u64::from(size));
        self.translate(bus, lin, AccessKind::Read, who)?;
        if first < u64::from(size) {
            self.translate(
                bus,
                lin.wrapping_add(first) & self.lin_mask(),
                AccessKind::Read,
                who,
            )?;
        }
        Ok(())
    }

    /// Supervisor read of system structures (descriptor tables, TSS) by linear address.
    pub fn read_sys(&mut self, bus: &mut dyn Bus, lin: u64, size: u8) -> Exec<u64> {
        let mut b = [0u8; 8];
        self.read_linear_as(
            bus,
            lin & self.lin_mask(),
            &mut b[..usize::from(size)],
            AccessKind::Read,
            Privilege::System,
        )?;
        Ok(u64::from_le_bytes(b))
    }

    /// Supervisor write of system structures by linear address.
    pub fn write_sys(&mut self, bus: &mut dyn Bus, lin: u64, size: u8, value: u64) -> Exec {
        self.write_linear_as(
            bus,
            lin & self.lin_mask(),
            &value.to_le_bytes()[..usize::from(size)],
            Privilege::System,
        )
    }
}
