//! Watchpoints under KVM by page protection, not debug registers (some hosts, such as nested
//! PVM, never load the debugger's DR7, and four registers are few). At every resume each
//! watched linear range is translated through the guest's current paging; the guest-physical
//! pages it lands on are split out of KVM's memory slots, read-only for write watchpoints
//! (writes then exit as KVM_EXIT_MMIO) or unmapped for read and access watchpoints (every
//! access exits). The vCPU performs such an access on guest memory itself, so the guest sees
//! nothing, and reports a stop after the instruction when it touched a watched byte.
//! Limits: a page the guest remaps while running is not followed (the next resume
//! re-translates). KVM cannot fetch instructions from an unmapped page, so a read or access
//! watchpoint on a page holding code that runs degrades to read-only there (only writes are
//! caught on that page until the next resume finds the code gone). Pages the CPU accesses on
//! its own (page tables, descriptor tables, stacks written by interrupt delivery) should not
//! be watched, as KVM may be unable to emulate those accesses; nor pages touched by
//! instructions KVM's emulator lacks. Every trapped access is a VM exit, and is charged as
//! one in the deterministic clock.

use crate::kvm::Slot;
use nestor_cpu::debug::{DebugStop, WatchKind, Watchpoint};
use nestor_cpu::{Bus, PageTarget, PAGE_SIZE};
use std::collections::BTreeMap;
use std::ptr::NonNull;

/// Most guest pages the watchpoints may cover together (each one splits memory slots).
pub const MAX_WATCHED_PAGES: usize = 64;

/// How KVM must see a watched page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Guard {
    /// Mapped read-only: writes exit.
    ReadOnly,
    /// Not mapped at all: every access exits.
    Unmapped,
}

/// The part of a watchpoint that lies in one guest-physical page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub phys: u64,
    pub len: u64,
    /// The linear address `phys` was translated from.
    pub lin: u64,
    pub kind: WatchKind,
}

/// Why watchpoints cannot be armed under KVM.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error(
        "under KVM watchpoints work by page protection, for at most {MAX_WATCHED_PAGES} pages \
         in all; these cover more: delete some, or use --accel interp"
    )]
    TooManyPages,
}

/// The physical pieces of `watchpoints`, translating each linear page with `translate`.
/// Pages that do not translate now are left out (documented: not followed later).
pub fn pieces_for(
    watchpoints: &[Watchpoint],
    mut translate: impl FnMut(u64) -> Option<u64>,
) -> Result<Vec<Piece>, WatchError> {
    let mut pieces = Vec::new();
    let mut pages = 0usize;
    for w in watchpoints {
        let end = w.start.saturating_add(w.len.max(1));
        let mut at = w.start;
        while at < end {
            let len = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(end - at);
            pages += 1;
            if pages > MAX_WATCHED_PAGES {
                return Err(WatchError::TooManyPages);
            }
            if let Some(phys) = translate(at) {
                pieces.push(Piece {
                    phys,
                    len,
                    lin: at,
                    kind: w.kind,
                });
            }
            at = at.saturating_add(len);
        }
    }
    Ok(pieces)
}

/// The guard of every page the pieces touch (unmapped wins over read-only).
#[must_use]
pub fn guards_for(pieces: &[Piece]) -> BTreeMap<u64, Guard> {
    let mut guards = BTreeMap::new();
    for p in pieces {
        let guard = if p.kind == WatchKind::Write {
            Guard::ReadOnly
        } else {
            Guard::Unmapped
        };
        let g = guards.entry(p.phys & !(PAGE_SIZE - 1)).or_insert(guard);
        *g = (*g).max(guard);
    }
    guards
}

/// `base` with every guarded page split out: read-only pages become 4 KiB read-only slots,
/// unmapped pages disappear. Pages outside every slot are ignored; a read-only page of a
/// slot that is read-only already (ROM) leaves it whole.
#[must_use]
pub fn protected_slots(base: &[Slot], guards: &BTreeMap<u64, Guard>) -> Vec<Slot> {
    let mut out = Vec::new();
    for s in base {
        let end = s.guest.saturating_add(s.size);
        let part = |from: u64, to: u64, read_only: bool| Slot {
            guest: from,
            size: to - from,
            host: s.host.wrapping_add(from - s.guest),
            read_only,
        };
        let mut at = s.guest;
        for (&page, &guard) in guards.range(s.guest..end) {
            if guard == Guard::ReadOnly && s.read_only {
                continue;
            }
            let page_end = page.saturating_add(PAGE_SIZE).min(end);
            if page > at {
                out.push(part(at, page, s.read_only));
            }
            if guard == Guard::ReadOnly {
                out.push(part(page, page_end, true));
            }
            at = page_end;
        }
        if end > at {
            out.push(part(at, end, s.read_only));
        }
    }
    out
}

/// What the watch logic made of an MMIO exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Not on a guarded page: the board's business.
    NotOurs,
    /// Done on guest memory; no watched byte touched.
    Quiet,
    /// Done on guest memory, and the debugger must stop after the instruction.
    Hit(DebugStop),
}

/// The watchpoints as armed on KVM's memory slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageWatch {
    pub pieces: Vec<Piece>,
    pub guards: BTreeMap<u64, Guard>,
}

impl PageWatch {
    #[must_use]
    pub fn new(pieces: Vec<Piece>) -> Self {
        let guards = guards_for(&pieces);
        Self { pieces, guards }
    }

    /// Let the CPU fetch the instruction at physical `code`: an unmapped page holding it
    /// becomes read-only (its reads are no longer caught). True if that changed anything.
    pub fn let_code_run(&mut self, code: Option<u64>) -> bool {
        let Some(pc) = code else {
            return false;
        };
        let page = pc & !(PAGE_SIZE - 1);
        match self.guards.get_mut(&page) {
            Some(g) if *g == Guard::Unmapped => {
                *g = Guard::ReadOnly;
                tracing::warn!(
                    "kvm: code runs in the page at {page:#x}, which a read or access \
                     watchpoint unmaps; KVM cannot fetch from it, so only writes to that page \
                     are caught for now (--accel interp catches every access)"
                );
                true
            }
            _ => false,
        }
    }

    /// The stop for an access of `len` bytes at physical `addr`, if it touches a watched byte.
    #[must_use]
    pub fn hit(&self, addr: u64, len: u64, write: bool) -> Option<DebugStop> {
        let end = addr.saturating_add(len.max(1));
        self.pieces.iter().find_map(|p| {
            let wanted = match p.kind {
                WatchKind::Write => write,
                WatchKind::Read => !write,
                WatchKind::Access => true,
            };
            let p_end = p.phys.saturating_add(p.len);
            (wanted && addr < p_end && p.phys < end).then(|| DebugStop::Watch {
                kind: if write {
                    WatchKind::Write
                } else {
                    WatchKind::Read
                },
                addr: p.lin.wrapping_add(addr.max(p.phys) - p.phys),
            })
        })
    }

    /// Is physical `addr` on a page the watchpoints guard?
    #[must_use]
    pub fn guards(&self, addr: u64) -> bool {
        self.guards.contains_key(&(addr & !(PAGE_SIZE - 1)))
    }

    /// Serve an MMIO read exit at `addr` from guest memory described by `base`, if it falls
    /// on a guarded page.
    pub fn serve_read(&self, base: &[Slot], addr: u64, data: &mut [u8]) -> Served {
        if !self.guards(addr) {
            return Served::NotOurs;
        }
        let n = match host_range(base, addr, data.len() as u64) {
            Some((host, n, _)) => {
                // SAFETY: `host_range` returned `n <= data.len()` bytes inside a slot, and
                // every slot lies in a mapping that outlives the VM (see `KvmVm::map`).
                unsafe { std::ptr::copy_nonoverlapping(host as *const u8, data.as_mut_ptr(), n) };
                n
            }
            None => 0,
        };
        // Bytes past the slot's end (an access straddling into a hole) read as open bus.
        data.iter_mut().skip(n).for_each(|b| *b = 0xff);
        self.stop_for(addr, data.len(), false)
    }

    /// Serve an MMIO write exit at `addr` on guest memory described by `base`, if it falls
    /// on a guarded page (writes to ROM are dropped, as the board drops them).
    pub fn serve_write(&self, base: &[Slot], addr: u64, data: &[u8]) -> Served {
        if !self.guards(addr) {
            return Served::NotOurs;
        }
        if let Some((host, n, false)) = host_range(base, addr, data.len() as u64) {
            // SAFETY: as in `serve_read`; the slot is RAM (not read-only) in the memory map.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), host as *mut u8, n) };
        }
        self.stop_for(addr, data.len(), true)
    }

    fn stop_for(&self, addr: u64, len: usize, write: bool) -> Served {
        match self.hit(addr, len as u64, write) {
            Some(stop) => Served::Hit(stop),
            None => Served::Quiet,
        }
    }
}

/// The host address of physical `addr`, how many of `len` bytes follow it in its slot, and
/// whether that slot is read-only.
fn host_range(base: &[Slot], addr: u64, len: u64) -> Option<(u64, usize, bool)> {
    let s = base
        .iter()
        .find(|s| addr >= s.guest && addr - s.guest < s.size)?;
    let n = len.min(s.size - (addr - s.guest));
    Some((s.host.wrapping_add(addr - s.guest), n as usize, s.read_only))
}

/// Guest memory as the memory slots map it, for the debugger's page walks (reads only).
pub struct SlotMemory<'a>(pub &'a [Slot]);

impl Bus for SlotMemory<'_> {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        match host_range(self.0, page_addr, PAGE_SIZE) {
            Some((host, n, read_only)) if n as u64 == PAGE_SIZE => {
                match NonNull::new(host as *mut u8) {
                    Some(ptr) => PageTarget::Host {
                        ptr,
                        writable: !read_only,
                    },
                    None => PageTarget::Mmio,
                }
            }
            _ => PageTarget::Mmio,
        }
    }
    fn map_generation(&self) -> u64 {
        0
    }
    /// KVM does not model the A20 gate.
    fn a20_mask(&self) -> u64 {
        u64::MAX
    }
    fn mmio_read(&mut self, _paddr: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn mmio_write(&mut self, _paddr: u64, _data: &[u8]) {}
    fn sync_retired(&mut self, _retired: u64) {}
    fn io_in(&mut self, _port: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn io_out(&mut self, _port: u16, _size: u8, _value: u32) {}
    fn interrupt_pending(&mut self) -> bool {
        false
    }
    fn interrupt_ack(&mut self) -> u8 {
        0
    }
    fn stop_requested(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
