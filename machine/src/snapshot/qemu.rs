//! The per-vCPU notes that existing tools read, laid out as QEMU's `dump-guest-memory` writes
//! them for x86-64: an NT_PRSTATUS "CORE" note (Linux's x86-64 `elf_prstatus`, 336 bytes, the
//! registers gdb shows) and a "QEMU" note (`QEMUCPUState` version 1: general registers,
//! segments with their hidden parts, descriptor tables and control registers, for crash).

use nestor_cpu::state::{Segment, TableReg};
use nestor_cpu::CpuState;

/// sizeof(x86_64 elf_prstatus): 112 bytes before `pr_reg`, 27 registers, 8 bytes after.
pub const PRSTATUS_LEN: usize = 336;
/// Offset of `pr_pid` and of `pr_reg` in `elf_prstatus`.
const PR_PID: usize = 32;
const PR_REG: usize = 112;
/// QEMUCPUState version 1 with `kernel_gs_base` (the `size` field tells readers it is there).
pub const QEMU_CPUSTATE_LEN: usize = 440;
const QEMU_CPUSTATE_VERSION: u32 = 1;

/// GPR indices in `CpuState::gpr` (encoding order).
const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

/// ES, CS, SS, DS, FS, GS in `CpuState::seg`.
const ES: usize = 0;
const CS: usize = 1;
const SS: usize = 2;
const DS: usize = 3;
const FS: usize = 4;
const GS: usize = 5;

fn put(out: &mut Vec<u8>, words: &[u64]) {
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

/// The NT_PRSTATUS body for vCPU `index` (its pid is index + 1, as QEMU numbers them).
#[must_use]
pub fn prstatus(s: &CpuState, index: u32) -> Vec<u8> {
    let mut out = vec![0u8; PR_REG];
    out[PR_PID..PR_PID + 4].copy_from_slice(&(index + 1).to_le_bytes());
    let g = &s.gpr;
    let sel = |i: usize| u64::from(s.seg[i].selector);
    #[rustfmt::skip]
    let regs = [
        g[15], g[14], g[13], g[12], g[RBP], g[RBX], g[11], g[10],
        g[9], g[8], g[RAX], g[RCX], g[RDX], g[RSI], g[RDI], 0, // orig_rax, as QEMU writes it
        s.rip, sel(CS), s.rflags, g[RSP], sel(SS),
        s.seg[FS].base, s.seg[GS].base, sel(DS), sel(ES), sel(FS), sel(GS),
    ];
    put(&mut out, &regs);
    out.resize(PRSTATUS_LEN, 0);
    out
}

/// QEMUCPUSegment: selector, limit, flags (the descriptor's high dword, as QEMU keeps it), base.
fn segment(out: &mut Vec<u8>, selector: u16, limit: u32, flags: u32, base: u64) {
    out.extend_from_slice(&u32::from(selector).to_le_bytes());
    out.extend_from_slice(&limit.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
}

fn cached(out: &mut Vec<u8>, s: &Segment) {
    // Our attributes are descriptor bits 40..55; QEMU's flags are bits 32..63 (shifted by 8).
    segment(out, s.selector, s.limit, u32::from(s.attr) << 8, s.base);
}

fn table(out: &mut Vec<u8>, t: &TableReg) {
    segment(out, 0, u32::from(t.limit), 0, t.base);
}

/// The "QEMU" note body.
#[must_use]
pub fn cpu_state(s: &CpuState) -> Vec<u8> {
    let mut out = Vec::with_capacity(QEMU_CPUSTATE_LEN);
    out.extend_from_slice(&QEMU_CPUSTATE_VERSION.to_le_bytes());
    out.extend_from_slice(&(QEMU_CPUSTATE_LEN as u32).to_le_bytes());
    let g = &s.gpr;
    put(
        &mut out,
        &[
            g[RAX], g[RBX], g[RCX], g[RDX], g[RSI], g[RDI], g[RSP], g[RBP],
        ],
    );
    put(&mut out, &g[8..16]);
    put(&mut out, &[s.rip, s.rflags]);
    for i in [CS, DS, ES, FS, GS, SS] {
        cached(&mut out, &s.seg[i]);
    }
    cached(&mut out, &s.ldtr);
    cached(&mut out, &s.tr);
    table(&mut out, &s.gdtr);
    table(&mut out, &s.idtr);
    put(
        &mut out,
        &[s.cr0, 0, s.cr2, s.cr3, s.cr4, s.msr.kernel_gs_base],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    }

    #[test]
    fn layouts_match_the_c_structs() {
        let mut s = CpuState::power_on();
        for (i, r) in s.gpr.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        s.rip = 0xdead_beef;
        s.cr3 = 0x7000;
        s.msr.kernel_gs_base = 0x55;
        let p = prstatus(&s, 0);
        assert_eq!(p.len(), PRSTATUS_LEN);
        assert_eq!(p[PR_PID], 1);
        assert_eq!(word(&p, PR_REG), 0x100f, "r15 first");
        assert_eq!(word(&p, PR_REG + 10 * 8), 0x1000, "rax");
        assert_eq!(word(&p, PR_REG + 16 * 8), 0xdead_beef, "rip");
        assert_eq!(word(&p, PR_REG + 17 * 8), 0xf000, "cs at reset");
        let q = cpu_state(&s);
        assert_eq!(q.len(), QEMU_CPUSTATE_LEN);
        assert_eq!(word(&q, 8), 0x1000, "rax");
        assert_eq!(word(&q, 8 + 16 * 8), 0xdead_beef, "rip");
        // cs: selector, limit, flags (P|S|type in bits 8..15), base.
        let cs = 8 + 18 * 8;
        assert_eq!(
            u32::from_le_bytes(q[cs..cs + 4].try_into().unwrap()),
            0xf000
        );
        assert_eq!(word(&q, cs + 16), 0xffff_0000, "cs base at reset");
        let crs = cs + 10 * 24;
        assert_eq!(word(&q, crs + 3 * 8), 0x7000, "cr3");
        assert_eq!(word(&q, crs + 5 * 8), 0x55, "kernel_gs_base");
    }
}
