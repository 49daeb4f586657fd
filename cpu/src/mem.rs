//! Guest memory as instructions see it: segmentation checks, then the TLB (host pointer fast
//! path), then page walks and the bus on a miss.

use crate::bus::{Bus, PageTarget, PAGE_SIZE};
use crate::fault::{Exec, Fault};
use crate::paging::{self, AccessKind, Privilege};
use crate::phys;
use crate::state::{cr0, rflags, SegReg};
use crate::tlb::{perm, TlbEntry};
use crate::Cpu;

/// Where a translated access goes.
enum Target {
    Host(*mut u8),
    Slow(u64),
}

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

impl Cpu {
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
        self.s.cpl() == 3
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
            Target::Slow(pa) => phys::read(bus, pa, buf),
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
            Target::Slow(pa) => self.write_phys(bus, pa, data),
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
    pub fn read_mem(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec<u64> {
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
    pub fn write_mem(
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
    pub fn probe_write(&mut self, bus: &mut dyn Bus, seg: SegReg, off: u64, size: u8) -> Exec {
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
