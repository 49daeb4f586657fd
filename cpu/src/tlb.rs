//! Software TLB: linear page → host pointer (RAM) or MMIO, with the permissions the page walk
//! granted. Direct-mapped; a miss costs one page walk.

use std::ptr::NonNull;

pub const TLB_SIZE: usize = 256;

/// Permission bits of an entry. A write bit is only set once the walk has set the dirty bit
/// and the physical page is writable host memory without cached code.
pub mod perm {
    pub const READ_SUP: u8 = 1 << 0;
    pub const READ_USER: u8 = 1 << 1;
    pub const WRITE_SUP: u8 = 1 << 2;
    pub const WRITE_USER: u8 = 1 << 3;
    pub const EXEC_SUP: u8 = 1 << 4;
    pub const EXEC_USER: u8 = 1 << 5;
    /// Explicit supervisor read/write while EFLAGS.AC = 1: the only supervisor data accesses
    /// CR4.SMAP lets reach user pages.
    pub const READ_SUP_AC: u8 = 1 << 6;
    pub const WRITE_SUP_AC: u8 = 1 << 7;
    pub const ANY_WRITE: u8 = WRITE_SUP | WRITE_USER | WRITE_SUP_AC;
}

#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    /// Linear page number (linear >> 12); `u64::MAX` when empty.
    pub vpage: u64,
    /// Physical address of the page.
    pub ppage: u64,
    /// Host address of the page, if it is host memory.
    pub host: Option<NonNull<u8>>,
    pub perm: u8,
    pub global: bool,
    /// log2 of the size of the page that mapped it (12, 21, 22 or 30).
    pub page_shift: u8,
}

impl TlbEntry {
    const EMPTY: Self = Self {
        vpage: u64::MAX,
        ppage: 0,
        host: None,
        perm: 0,
        global: false,
        page_shift: 12,
    };
}

pub struct Tlb {
    entries: Box<[TlbEntry; TLB_SIZE]>,
    /// Bumped by every change that can add, drop or alter a mapping, so that a cached
    /// translation (the interpreter's code window) knows when to look again.
    epoch: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Self {
            entries: Box::new([TlbEntry::EMPTY; TLB_SIZE]),
            epoch: 0,
        }
    }
}

impl Tlb {
    #[inline]
    #[must_use]
    pub fn lookup(&self, lin: u64, need: u8) -> Option<&TlbEntry> {
        let vpage = lin >> 12;
        let e = &self.entries[(vpage as usize) % TLB_SIZE];
        (e.vpage == vpage && e.perm & need == need).then_some(e)
    }

    /// The change counter: equal values mean no mapping changed in between.
    #[inline]
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn insert(&mut self, e: TlbEntry) {
        self.epoch = self.epoch.wrapping_add(1);
        self.entries[(e.vpage as usize) % TLB_SIZE] = e;
    }

    pub fn flush_all(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.entries.fill(TlbEntry::EMPTY);
    }

    /// MOV CR3: global pages (CR4.PGE) survive.
    pub fn flush_non_global(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        for e in self.entries.iter_mut().filter(|e| !e.global) {
            *e = TlbEntry::EMPTY;
        }
    }

    /// INVLPG: every entry filled from the page (of whatever size) that maps `lin` goes.
    pub fn flush_page(&mut self, lin: u64) {
        self.epoch = self.epoch.wrapping_add(1);
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.vpage != u64::MAX && ((e.vpage << 12) ^ lin) >> e.page_shift.min(63) == 0)
        {
            *e = TlbEntry::EMPTY;
        }
    }

    /// Take write permission away from every entry mapping physical page `ppage` (it now holds
    /// decoded code, so writes must take the slow path that invalidates it).
    pub fn write_protect_phys(&mut self, ppage: u64) {
        for e in self.entries.iter_mut().filter(|e| e.ppage == ppage) {
            e.perm &= !perm::ANY_WRITE;
        }
    }
}
