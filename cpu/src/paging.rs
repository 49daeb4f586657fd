//! Page walks: 2-level 32-bit paging (with PSE 4 MiB pages) and PAE (with 2 MiB pages and NX).
//! Accessed and dirty bits are set as the hardware sets them; faults carry the #PF error code.

use crate::bus::Bus;
use crate::fault::Fault;
use crate::phys;
use crate::state::{cr0, cr4, CpuState};
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
}

const EFER_NXE: u64 = 1 << 11;
/// Physical address width we implement (MAXPHYADDR).
pub const PHYS_BITS: u32 = 36;

struct Walk {
    leaf_flags: u64,
    rw: bool,
    us: bool,
    nx: bool,
}

/// Translate `lin` for an access of `kind` by a user (`user`) or supervisor access.
pub fn translate(
    s: &CpuState,
    bus: &mut dyn Bus,
    lin: u64,
    kind: AccessKind,
    user: bool,
) -> Result<Translation, Fault> {
    if s.cr0 & cr0::PG == 0 {
        let all = perm::READ_SUP | perm::READ_USER | perm::WRITE_SUP | perm::WRITE_USER;
        return Ok(Translation {
            paddr: lin & 0xffff_ffff,
            perm: all | perm::EXEC_SUP | perm::EXEC_USER,
            global: false,
        });
    }
    let mut code = 0;
    if kind == AccessKind::Write {
        code |= pf_code::WRITE;
    }
    if user {
        code |= pf_code::USER;
    }
    let nxe = s.efer & EFER_NXE != 0 && s.cr4 & cr4::PAE != 0;
    if kind == AccessKind::Execute && nxe {
        code |= pf_code::FETCH;
    }
    let (paddr, walk) = if s.cr4 & cr4::PAE != 0 {
        walk_pae(s, bus, lin, code, nxe)?
    } else {
        walk_legacy(s, bus, lin, code)?
    };
    check_and_mark(s, bus, lin, kind, user, code, paddr, walk)
}

#[allow(clippy::too_many_arguments)]
fn check_and_mark(
    s: &CpuState,
    bus: &mut dyn Bus,
    lin: u64,
    kind: AccessKind,
    user: bool,
    code: u32,
    (paddr, leaf_addr, leaf_size): (u64, u64, u8),
    w: Walk,
) -> Result<Translation, Fault> {
    let wp = s.cr0 & cr0::WP != 0;
    let allowed = match kind {
        AccessKind::Read => !user || w.us,
        AccessKind::Write => {
            if user {
                w.us && w.rw
            } else {
                w.rw || !wp
            }
        }
        AccessKind::Execute => (!user || w.us) && !w.nx,
    };
    if !allowed {
        return Err(Fault::pf(lin, code | pf_code::PRESENT));
    }
    // The dirty bit is set by the first write through this mapping.
    let mut leaf = w.leaf_flags;
    if kind == AccessKind::Write && leaf & pte::D == 0 {
        leaf |= pte::D;
        phys::write_entry(bus, leaf_addr, leaf, leaf_size);
    }
    let mut p = perm::READ_SUP;
    if w.us {
        p |= perm::READ_USER;
    }
    if !w.nx {
        p |= perm::EXEC_SUP;
        if w.us {
            p |= perm::EXEC_USER;
        }
    }
    if leaf & pte::D != 0 {
        if w.rw || !wp {
            p |= perm::WRITE_SUP;
        }
        if w.rw && w.us {
            p |= perm::WRITE_USER;
        }
    }
    Ok(Translation {
        paddr,
        perm: p,
        global: s.cr4 & cr4::PGE != 0 && leaf & pte::G != 0,
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
    let mut e = phys::read_entry(bus, addr, size);
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
    };
    Ok((((e & addr_mask) | (lin & 0xfff), pte_addr, 8), walk))
}
