//! Decoded-instruction cache, per guest physical page. Each entry carries the handler resolved
//! at decode time, so executing a cached instruction is one indirect call. A write to a page
//! that holds cached code drops that page; a whole-cache flush bumps a generation number.

use crate::table::Handler;
use iced_x86::Instruction;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Keys are page addresses: a multiplicative hash is as good as SipHash here and far cheaper
/// on the per-instruction lookup.
#[derive(Default)]
struct PageHasher(u64);

impl Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A decoded instruction and what executes it.
#[derive(Clone, Copy)]
pub struct Decoded {
    pub insn: Instruction,
    pub handler: Handler,
}

struct CodePage {
    generation: u64,
    bitness: u32,
    /// Per byte offset in the page: index+1 into `insns`, 0 when not decoded.
    slots: Box<[u16; 4096]>,
    insns: Vec<Decoded>,
}

#[derive(Default)]
pub struct DecodeCache {
    /// Boxed so that a page's address is stable while it is in the map.
    pages: HashMap<u64, Box<CodePage>, BuildHasherDefault<PageHasher>>,
    generation: u64,
    /// The page the last lookup hit: straight-line code stays on one page.
    last: Option<(u64, std::ptr::NonNull<CodePage>)>,
    /// Bumped whenever a page is dropped, reset or flushed: a [`PageHandle`] taken under an
    /// older epoch is no longer looked through.
    epoch: u64,
    /// Pages dropped while an instruction may still be executing from them (self-modifying
    /// code): freed at the next full fetch, when no handler holds one of their instructions.
    /// (Moving a page here keeps its instruction buffer where it is.)
    dropped: Vec<CodePage>,
}

/// A held code page: instruction lookups without hashing while the cache's epoch holds.
#[derive(Clone, Copy)]
pub struct PageHandle {
    page: std::ptr::NonNull<CodePage>,
    epoch: u64,
}

impl DecodeCache {
    /// A handle on the decoded page `ppage` for `bitness`, if the page is current.
    #[must_use]
    pub fn handle(&self, ppage: u64, bitness: u32) -> Option<PageHandle> {
        let page = self.pages.get(&ppage)?;
        (page.generation == self.generation && page.bitness == bitness).then(|| PageHandle {
            page: std::ptr::NonNull::from(&**page),
            epoch: self.epoch,
        })
    }

    /// The instruction decoded at `offset` of the handle's page, if the handle still holds.
    #[inline]
    #[must_use]
    pub fn get_by_handle(&self, h: PageHandle, offset: u64) -> Option<&Decoded> {
        if h.epoch != self.epoch {
            return None;
        }
        // SAFETY: every removal of a page from `pages` (and every reset of a page's contents
        // for another generation or bitness) bumps `epoch`, so with an equal epoch the Box the
        // handle points into is alive and describes the same page.
        let page = unsafe { h.page.as_ref() };
        let slot = *page.slots.get((offset & 0xfff) as usize)?;
        page.insns.get(usize::from(slot).checked_sub(1)?)
    }

    #[must_use]
    pub fn get(&mut self, ppage: u64, offset: u16, bitness: u32) -> Option<&Decoded> {
        let page: &CodePage = match self.last {
            // SAFETY: `last` points into a Box owned by `pages`; it is cleared whenever a page
            // is removed from the map, so the Box is alive.
            Some((p, ptr)) if p == ppage => unsafe { ptr.as_ref() },
            _ => {
                let page = self.pages.get(&ppage)?;
                self.last = Some((ppage, std::ptr::NonNull::from(&**page)));
                page
            }
        };
        if page.generation != self.generation || page.bitness != bitness {
            return None;
        }
        let slot = *page.slots.get(usize::from(offset))?;
        page.insns.get(usize::from(slot).checked_sub(1)?)
    }

    /// Remember `d` at `ppage+offset`. Returns true when the page just became a code page
    /// (the caller must then write-protect it in the TLB).
    pub fn insert(&mut self, ppage: u64, offset: u16, bitness: u32, d: Decoded) -> bool {
        let generation = self.generation;
        let mut fresh = false;
        let page = self.pages.entry(ppage).or_insert_with(|| {
            fresh = true;
            Box::new(CodePage {
                generation,
                bitness,
                slots: Box::new([0; 4096]),
                insns: Vec::new(),
            })
        });
        if page.generation != generation || page.bitness != bitness {
            self.epoch = self.epoch.wrapping_add(1);
            page.generation = generation;
            page.bitness = bitness;
            page.slots.fill(0);
            page.insns.clear();
        }
        if page.insns.len() < usize::from(u16::MAX) - 1 {
            page.insns.push(d);
            if let Some(slot) = page.slots.get_mut(usize::from(offset)) {
                *slot = page.insns.len() as u16;
            }
        }
        fresh
    }

    #[must_use]
    pub fn holds_code(&self, ppage: u64) -> bool {
        self.pages.contains_key(&ppage)
    }

    /// The page was written: forget what was decoded from it.
    pub fn invalidate(&mut self, ppage: u64) {
        if let Some(page) = self.pages.remove(&ppage) {
            self.epoch = self.epoch.wrapping_add(1);
            self.dropped.push(*page);
        }
        if self.last.is_some_and(|(p, _)| p == ppage) {
            self.last = None;
        }
    }

    /// Free the pages dropped since the last call (no instruction from them is running).
    #[inline]
    pub fn release_dropped(&mut self) {
        if !self.dropped.is_empty() {
            self.dropped.clear();
        }
    }

    pub fn flush_all(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.generation = self.generation.wrapping_add(1);
    }
}
