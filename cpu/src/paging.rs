//! Page walks: 2-level 32-bit paging (with PSE 4 MiB pages), PAE (with 2 MiB pages and NX) and
//! IA-32e 4- and 5-level paging (with 2 MiB and 1 GiB pages). Accessed and dirty bits are set as
//! the hardware sets them; SMEP and SMAP apply in every mode; faults carry the #PF error code.

use crate::bus::Bus;
use crate::fault::Fault;
use crate::phys;
use crate::state::{cr0, cr4, efer, CpuState};
use crate::tlb::perm;

/// What an access wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    Read,
    Write,
    Execute,
}

pub mod pte {
    pub const P: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const US: u64 = 1 << 2;
    pub const A: u64 = 1 << 5;
    pub const D: u64 = 1 << 6;
    pub const PS: u64 = 1 << 7;
    pub const G: u64 = 1 << 8;
    pub const NX: u64 = 1 << 63;
}

pub mod pf_code {
    pub const PRESENT: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const USER: u32 = 1 << 2;
    pub const RSVD: u32 = 1 << 3;
    pub const FETCH: u32 = 1 << 4;
}

/// The result of a successful walk.
#[derive(Clone, Copy, Debug)]
pub struct Translation {
    pub paddr: u64,
    /// `tlb::perm` bits this mapping allows.
    pub perm: u8,
    pub global: bool,
    /// log2 of the size of the page (12, 21, 22 or 30).
    pub page_shift: u8,
}

/// Physical address width we implement (MAXPHYADDR).
pub const PHYS_BITS: u32 = 36;

/// Who makes an access, as the page-level protection checks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// An explicit access at CPL 3.
    User,
    /// An explicit access at CPL 0-2; `ac` is EFLAGS.AC, which lets SMAP through.
    Supervisor { ac: bool },
    /// An implicit supervisor access to a system structure (GDT, LDT, IDT, TSS): SMAP
    /// applies whatever AC says.
    System,
}

struct Walk {
    leaf_flags: u64,
    rw: bool,
    us: bool,
    nx: bool,
    page_shift: u8,
}

/// Translate `lin` for an access of `kind` with privilege `who`.
pub fn translate(
    s: &CpuState,
    bus: &mut dyn Bus,
    lin: u64,
    kind: AccessKind,
    who: Privilege,
) -> Result<Translation, Fault> {
    if s.cr0 & cr0::PG == 0 {
        return Ok(Translation {
            paddr: lin & 0xffff_ffff,
            perm: u8::MAX,
            global: false,
            page_shift: 12,
        });
    }
    let mut code = 0;
    if kind == AccessKind::Write {
        code |= pf_code::WRITE;
    }
    if who == Privilege::User {
        code |= pf_code::USER;
    }
    let nxe = s.efer & efer::NXE != 0 && s.cr4 & cr4::PAE != 0;
    if kind == AccessKind::Execute && (nxe || s.cr4 & cr4::SMEP != 0) {
        code |= pf_code::FETCH;
    }
    let (paddr, walk) = if s.efer & efer::LMA != 0 {
        walk_long(s, bus, lin, code, nxe)?
    } else if s.cr4 & cr4::PAE != 0 {
        walk_pae(s, bus, lin, code, nxe)?
    } else {
        walk_legacy(s, bus, lin, code)?
    };
    check_and_mark(s, bus, lin, kind, who, code, paddr, walk)
}

/// May an access of `kind` by `who` use a page with these combined rights?
fn allowed(s: &CpuState, kind: AccessKind, who: Privilege, w: &Walk) -> bool {
    let wp = s.cr0 & cr0::WP != 0;
    // SMAP keeps supervisor data accesses off user pages unless AC opens an explicit one;
    // SMEP keeps supervisor fetches off them altogether.
    let smap_blocks =
        w.us && s.cr4 & cr4::SMAP != 0 && !matches!(who, Privilege::Supervisor { ac: true });
    let smep_blocks = w.us && s.cr4 & cr4::SMEP != 0;
    let user = who == Privilege::User;
    match kind {
        AccessKind::Read => (user && w.us) || (!user && !smap_blocks),
        AccessKind::Write => {
            if user {
                w.us && w.rw
            } else {
                (w.rw || !wp) && !smap_blocks
            }
        }
        AccessKind::Execute => !w.nx && if user { w.us } else { !smep_blocks },
    }
}

/// The `tlb::perm` bits of a mapping: every kind of access it allows without another walk
/// (write bits only once the dirty bit is set).
fn perm_bits(s: &CpuState, w: &Walk, dirty: bool) -> u8 {
    let wp = s.cr0 & cr0::WP != 0;
    let smap = w.us && s.cr4 & cr4::SMAP != 0;
    let smep = w.us && s.cr4 & cr4::SMEP != 0;
    let mut p = perm::READ_SUP_AC;
    if !smap {
        p |= perm::READ_SUP;
    }
    if w.us {
        p |= perm::READ_USER;
    }
    if !w.nx {
        if !smep {
            p |= perm::EXEC_SUP;
        }
        if w.us {
            p |= perm::EXEC_USER;
        }
    }
    if dirty {
        if w.rw || !wp {
            p |= perm::WRITE_SUP_AC;
            if !smap {
                p |= perm::WRITE_SUP;
            }
        }
        if w.rw && w.us {
            p |= perm::WRITE_USER;
        }
    }
    p
}

#[allow(clippy::too_many_arguments)]
fn check_and_mark(
    s: &CpuState,
    bus: &mut dyn Bus,
    lin: u64,
    kind: AccessKind,
    who: Privilege,
    code: u32,
    (paddr, leaf_addr, leaf_size): (u64, u64, u8),
    w: Walk,
) -> Result<Translation, Fault> {
    if !allowed(s, kind, who, &w) {
        return Err(Fault::pf(lin, code | pf_code::PRESENT));
    }
    // The dirty bit is set by the first write through this mapping.
    let mut leaf = w.leaf_flags;
    if kind == AccessKind::Write && leaf & pte::D == 0 {
        leaf |= pte::D;
        phys::write_entry(bus, leaf_addr, leaf, leaf_size);
    }
    Ok(Translation {
        paddr,
        perm: perm_bits(s, &w, leaf & pte::D != 0),
        global: s.cr4 & cr4::PGE != 0 && leaf & pte::G != 0,
        page_shift: w.page_shift,
    })
}

/// Read an entry, check presence and reserved bits, set its accessed bit.
fn fetch_entry(
    bus: &mut dyn Bus,
    addr: u64,
    size: u8,
    lin: u64,
    code: u32,
    reserved: u64,
) -> Result<u64, Fault> {
    let e = phys::read_entry(bus, addr, size);
    check_entry(bus, addr, size, e, lin, code, reserved)
}

/// Check presence and reserved bits of the entry `e` read at `addr`; set its accessed bit.
fn check_entry(
    bus: &mut dyn Bus,
    addr: u64,
    size: u8,
    mut e: u64,
    lin: u64,
    code: u32,
    reserved: u64,
) -> Result<u64, Fault> {
    if e & pte::P == 0 {
        return Err(Fault::pf(lin, code));
    }
    if e & reserved != 0 {
        return Err(Fault::pf(lin, code | pf_code::PRESENT | pf_code::RSVD));
    }
    if e & pte::A == 0 {
        e |= pte::A;
        phys::write_entry(bus, addr, e, size);
    }
    Ok(e)
}

type WalkResult = Result<((u64, u64, u8), Walk), Fault>;

fn walk_legacy(s: &CpuState, bus: &mut dyn Bus, lin: u64, code: u32) -> WalkResult {
    let lin = lin & 0xffff_ffff;
    let pde_addr = (s.cr3 & 0xffff_f000) | ((lin >> 22) << 2);
    let pde = fetch_entry(bus, pde_addr, 4, lin, code, 0)?;
    if pde & pte::PS != 0 && s.cr4 & cr4::PSE != 0 {
        // PSE-36: bits 13..16 of a 4 MiB PDE are physical address bits 32..35 (up to
        // PHYS_BITS); the bits above them, up to bit 21, are reserved.
        let rsvd = ((1u64 << 22) - 1) & !((1u64 << (13 + PHYS_BITS - 32)) - 1);
        if pde & rsvd != 0 {
            return Err(Fault::pf(lin, code | pf_code::PRESENT | pf_code::RSVD));
        }
        let base = (pde & 0xffc0_0000) | ((pde >> 13) & 0xf) << 32;
        let walk = Walk {
            leaf_flags: pde,
            rw: pde & pte::RW != 0,
            us: pde & pte::US != 0,
            nx: false,
            page_shift: 22,
        };
        return Ok(((base | (lin & 0x3f_ffff), pde_addr, 4), walk));
    }
    let pte_addr = (pde & 0xffff_f000) | (((lin >> 12) & 0x3ff) << 2);
    let e = fetch_entry(bus, pte_addr, 4, lin, code, 0)?;
    let walk = Walk {
        leaf_flags: e,
        rw: pde & e & pte::RW != 0,
        us: pde & e & pte::US != 0,
        nx: false,
        page_shift: 12,
    };
    Ok((((e & 0xffff_f000) | (lin & 0xfff), pte_addr, 4), walk))
}

fn walk_pae(s: &CpuState, bus: &mut dyn Bus, lin: u64, code: u32, nxe: bool) -> WalkResult {
    let lin = lin & 0xffff_ffff;
    let addr_mask = ((1u64 << PHYS_BITS) - 1) & !0xfff;
    let above_phys = !((1u64 << PHYS_BITS) - 1) & !pte::NX;
    let nx_rsvd = if nxe { 0 } else { pte::NX };
    let pdpte_addr = (s.cr3 & 0xffff_ffe0) | ((lin >> 30) << 3);
    // PDPTEs have no RW/US/A semantics; bits 1,2,5..8 are reserved.
    let pdpte = phys::read_entry(bus, pdpte_addr, 8);
    if pdpte & pte::P == 0 {
        return Err(Fault::pf(lin, code));
    }
    if pdpte & (above_phys | pte::NX | 0x1e6) != 0 {
        return Err(Fault::pf(lin, code | pf_code::PRESENT | pf_code::RSVD));
    }
    let pde_addr = (pdpte & addr_mask) | (((lin >> 21) & 0x1ff) << 3);
    let pde = fetch_entry(bus, pde_addr, 8, lin, code, above_phys | nx_rsvd)?;
    if pde & pte::PS != 0 {
        if pde & 0x1f_e000 != 0 {
            return Err(Fault::pf(lin, code | pf_code::PRESENT | pf_code::RSVD));
        }
        let walk = Walk {
            leaf_flags: pde,
            rw: pde & pte::RW != 0,
            us: pde & pte::US != 0,
            nx: nxe && pde & pte::NX != 0,
            page_shift: 21,
        };
        let base = pde & addr_mask & !0x1f_ffff;
        return Ok(((base | (lin & 0x1f_ffff), pde_addr, 8), walk));
    }
    let pte_addr = (pde & addr_mask) | (((lin >> 12) & 0x1ff) << 3);
    let e = fetch_entry(bus, pte_addr, 8, lin, code, above_phys | nx_rsvd)?;
    let walk = Walk {
        leaf_flags: e,
        rw: pde & e & pte::RW != 0,
        us: pde & e & pte::US != 0,
        nx: nxe && (pde | e) & pte::NX != 0,
        page_shift: 12,
    };
    Ok((((e & addr_mask) | (lin & 0xfff), pte_addr, 8), walk))
}

/// IA-32e paging: 4 levels, or 5 with CR4.LA57; 1 GiB pages at the PDPT level and 2 MiB pages
/// at the directory level. Bits 62..52 are ignored, bits 51..MAXPHYADDR reserved.
fn walk_long(s: &CpuState, bus: &mut dyn Bus, lin: u64, code: u32, nxe: bool) -> WalkResult {
    let addr_mask = ((1u64 << PHYS_BITS) - 1) & !0xfff;
    let rsvd_phys = ((1u64 << 52) - 1) & !((1u64 << PHYS_BITS) - 1);
    let nx_rsvd = if nxe { 0 } else { pte::NX };
    let levels: u32 = if s.cr4 & cr4::LA57 != 0 { 5 } else { 4 };
    let mut table = s.cr3 & addr_mask;
    let (mut rw, mut us, mut nx) = (true, true, false);
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let addr = table | (((lin >> shift) & 0x1ff) << 3);
        let e = phys::read_entry(bus, addr, 8);
        let large = (level == 2 || level == 3) && e & pte::PS != 0;
        let size_mask = (1u64 << shift) - 1;
        let mut rsvd = rsvd_phys | nx_rsvd;
        if level >= 4 {
            // No large pages above the page-directory-pointer table.
            rsvd |= pte::PS;
        }
        if large {
            // Bit 12 is PAT; the rest of the offset bits must be clear.
            rsvd |= size_mask & !0x1fff;
        }
        let e = check_entry(bus, addr, 8, e, lin, code, rsvd)?;
        rw &= e & pte::RW != 0;
        us &= e & pte::US != 0;
        nx |= nxe && e & pte::NX != 0;
        if level == 1 || large {
            let walk = Walk {
                leaf_flags: e,
                rw,
                us,
                nx,
                page_shift: shift as u8,
            };
            let base = e & addr_mask & !size_mask;
            return Ok(((base | (lin & size_mask), addr, 8), walk));
        }
        table = e & addr_mask;
    }
    // Unreachable: level 1 always ends the loop.
    Err(Fault::pf(lin, code))
}
