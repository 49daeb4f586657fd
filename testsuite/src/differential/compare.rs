//! Comparing the host's result with the interpreter's, and printing a readable diff: the
//! sequence (address, bytes, disassembly), the initial state, and per register or memory
//! byte the host's value (expected) against the interpreter's (got).

use super::gen::Sequence;
use super::layout::{self, off, Context};
use iced_x86::{Code, Formatter, IntelFormatter, RflagsBits};
use std::fmt::Write;

const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// A sequence whose results differ.
pub struct Mismatch {
    /// The instruction the difference is blamed on: the faulting one, else the last one.
    pub code: Code,
    pub text: String,
}

impl Mismatch {
    #[must_use]
    pub fn new(init: String, seq: &Sequence, native: &Context, diffs: Vec<String>) -> Self {
        let stop = native.fault().map(|_| native.fault_rip);
        let blamed = seq
            .insns
            .iter()
            .find(|g| Some(g.ip) == stop)
            .or(seq.insns.last())
            .map_or(Code::INVALID, |g| g.insn.code());
        let mut text = String::from("=== differential mismatch ===\n");
        text.push_str(&listing(seq, stop));
        text.push_str(&init);
        for d in diffs {
            let _ = writeln!(text, "  {d}");
        }
        Self { code: blamed, text }
    }
}

/// The sequence, one instruction a line; `stop` marks the faulting one.
#[must_use]
pub fn listing(seq: &Sequence, stop: Option<u64>) -> String {
    let mut out = String::new();
    let mut f = IntelFormatter::new();
    for g in &seq.insns {
        let start = (g.ip - layout::SEQ) as usize;
        let bytes: String = seq.code[start..start + g.len]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut asm = String::new();
        f.format(&g.insn, &mut asm);
        let mark = if Some(g.ip) == stop { "=>" } else { "  " };
        let _ = writeln!(
            out,
            "{mark} {:08x} {bytes:<30} {asm:<40} ; {:?}",
            g.ip,
            g.insn.code()
        );
    }
    out
}

#[must_use]
pub fn initial_state_text(c: &Context) -> String {
    let mut out = String::from("initial:");
    for (i, r) in c.gpr.iter().enumerate() {
        let _ = write!(out, " {}={r:#x}", GPR_NAMES[i]);
    }
    let _ = writeln!(
        out,
        "\n  rflags={:#x} fcw={:#06x} fsw={:#06x} ftw={:#04x} mxcsr={:#x}",
        c.rflags,
        word(&c.fx, off::X87_FCW),
        word(&c.fx, off::X87_FSW),
        c.fx[off::X87_FTW],
        c.mxcsr()
    );
    for i in 0..8 {
        let _ = write!(out, "  st{i}={}", st_text(c, i));
    }
    out.push('\n');
    for i in 0..16 {
        let _ = write!(out, "  xmm{i}={:#034x}", c.xmm(i));
        if i % 4 == 3 {
            out.push('\n');
        }
    }
    out
}

fn word(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn st_text(c: &Context, i: usize) -> String {
    let at = off::ST + 16 * i;
    let mant = u64::from_le_bytes(c.fx[at..at + 8].try_into().unwrap_or([0; 8]));
    format!("{:04x}:{mant:016x}", word(&c.fx, at + 8))
}

/// EFLAGS bits of iced's `RflagsBits`.
#[must_use]
pub fn eflags_of(bits: u32) -> u64 {
    let map = [
        (RflagsBits::OF, 1 << 11),
        (RflagsBits::SF, 1 << 7),
        (RflagsBits::ZF, 1 << 6),
        (RflagsBits::AF, 1 << 4),
        (RflagsBits::CF, 1),
        (RflagsBits::PF, 1 << 2),
        (RflagsBits::DF, 1 << 10),
        (RflagsBits::AC, 1 << 18),
    ];
    map.iter().filter(|m| bits & m.0 != 0).map(|m| m.1).sum()
}

/// FSW condition-code bits of iced's `RflagsBits`.
#[must_use]
pub fn fsw_of(bits: u32) -> u16 {
    let map = [
        (RflagsBits::C0, 1 << 8),
        (RflagsBits::C1, 1 << 9),
        (RflagsBits::C2, 1 << 10),
        (RflagsBits::C3, 1 << 14),
    ];
    map.iter().filter(|m| bits & m.0 != 0).map(|m| m.1).sum()
}

/// The user-visible RFLAGS bits compared: arithmetic flags, DF, AC.
const RFLAGS_COMPARED: u64 = 0x4_0cd5;

/// Differences between the host's (`n`) and the interpreter's (`g`) results.
#[must_use]
pub fn diff(
    seq: &Sequence,
    n: &Context,
    nm: &[u8],
    g: &Context,
    gm: &[u8],
    bits: u32,
) -> Vec<String> {
    let mut d = Vec::new();
    if n.vector == layout::CHILD_DIED {
        d.push(format!("host child died (wait status {:#x})", n.error_code));
        return d;
    }
    if n.vector != g.vector {
        d.push(format!(
            "fault: host {} at {:#x}, interpreter {} at {:#x}",
            vec_text(n.vector),
            n.fault_rip,
            vec_text(g.vector),
            g.fault_rip
        ));
        return d;
    }
    let stop = n.fault().map(|_| n.fault_rip);
    if let Some(rip) = stop {
        if rip != g.fault_rip {
            d.push(format!(
                "fault rip: host {rip:#x} interpreter {:#x}",
                g.fault_rip
            ));
        }
        let code_mask = if n.vector == 14 { 0x1f } else { u64::MAX };
        if n.error_code & code_mask != g.error_code & code_mask {
            d.push(format!(
                "error code: host {:#x} interpreter {:#x}",
                n.error_code, g.error_code
            ));
        }
        if n.vector == 14 && n.fault_addr != g.fault_addr {
            d.push(format!(
                "cr2: host {:#x} interpreter {:#x}",
                n.fault_addr, g.fault_addr
            ));
        }
    }
    let taint = stop.map_or(seq.final_taint, |rip| seq.taint_at(rip));
    let gpr_mask = if bits == 64 { u64::MAX } else { 0xffff_ffff };
    for (i, name) in GPR_NAMES.iter().enumerate() {
        if (n.gpr[i] ^ g.gpr[i]) & gpr_mask != 0 {
            d.push(format!(
                "{name}: host {:#x} interpreter {:#x}",
                n.gpr[i], g.gpr[i]
            ));
        }
    }
    let fmask = RFLAGS_COMPARED & !eflags_of(taint);
    if (n.rflags ^ g.rflags) & fmask != 0 {
        d.push(format!(
            "rflags: host {:#x} interpreter {:#x} (compared {fmask:#x}, differ {:#x})",
            n.rflags,
            g.rflags,
            (n.rflags ^ g.rflags) & fmask
        ));
    }
    x87_diff(n, g, taint, &mut d);
    let xmms = if bits == 64 { 16 } else { 8 };
    for i in 0..xmms {
        if n.xmm(i) != g.xmm(i) {
            d.push(format!(
                "xmm{i}: host {:#034x} interpreter {:#034x}",
                n.xmm(i),
                g.xmm(i)
            ));
        }
    }
    mem_diff(nm, gm, &mut d);
    d
}

fn vec_text(v: u64) -> String {
    match v {
        layout::NO_FAULT => "none".into(),
        layout::CHILD_DIED => "died/hung".into(),
        v => format!("#{v}"),
    }
}

fn x87_diff(n: &Context, g: &Context, taint: u32, d: &mut Vec<String>) {
    let (nf, gf) = (&n.fx, &g.fx);
    if word(nf, off::X87_FCW) != word(gf, off::X87_FCW) {
        d.push(format!(
            "fcw: host {:#06x} interpreter {:#06x}",
            word(nf, 0),
            word(gf, 0)
        ));
    }
    let fsw_mask = !fsw_of(taint);
    if (word(nf, off::X87_FSW) ^ word(gf, off::X87_FSW)) & fsw_mask != 0 {
        d.push(format!(
            "fsw: host {:#06x} interpreter {:#06x} (compared {fsw_mask:#06x})",
            word(nf, 2),
            word(gf, 2)
        ));
    }
    if nf[off::X87_FTW] != gf[off::X87_FTW] {
        d.push(format!(
            "ftw: host {:#04x} interpreter {:#04x}",
            nf[4], gf[4]
        ));
    }
    if n.mxcsr() != g.mxcsr() {
        d.push(format!(
            "mxcsr: host {:#x} interpreter {:#x}",
            n.mxcsr(),
            g.mxcsr()
        ));
    }
    for i in 0..8 {
        let at = off::ST + 16 * i;
        if nf[at..at + 10] != gf[at..at + 10] {
            d.push(format!(
                "st{i}: host {} interpreter {}",
                st_text(n, i),
                st_text(g, i)
            ));
        }
    }
}

fn mem_diff(n: &[u8], g: &[u8], d: &mut Vec<String>) {
    let mut shown = 0;
    for (i, (a, b)) in n.iter().zip(g).enumerate() {
        if a != b {
            shown += 1;
            if shown > 8 {
                d.push("(more memory differences)".into());
                break;
            }
            let addr = if i < layout::DATA_BYTES {
                layout::DATA + i as u64
            } else {
                layout::STACK + (i - layout::DATA_BYTES) as u64
            };
            d.push(format!(
                "mem[{addr:#x}]: host {a:#04x} interpreter {b:#04x}"
            ));
        }
    }
}
