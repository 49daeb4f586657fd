//! `monitor` commands: what gdb has no word for (system registers, CPU mode, page walks,
//! descriptor tables, physical memory, exception and mode-switch stops, reset).

use crate::target::NestorTarget;
use nestor_cpu::debug::{CpuMode, DebugWalk};
use nestor_cpu::paging::pte;
use nestor_cpu::state::{cr0, cr4, efer, rflags, CpuState, SegReg, Segment};
use std::fmt::Write;

const HELP: &str = "\
Nestor monitor commands:
  regs                      all system registers, decoded
  mode                      CPU mode and paging mode
  translate ADDR            page walk of linear ADDR, level by level
  gdt | idt                 descriptor tables, decoded
  phys read ADDR [LEN]      hex dump of physical memory (LEN <= 4096, default 64)
  phys write ADDR BYTE...   write bytes (hex) to physical memory
  break exception N|off     stop after exception vector N is delivered (or clear all)
  break mode-switch [off]   stop after an instruction that changes the CPU mode
  reset                     reset the machine
";

/// Run one monitor command line and return its output.
pub fn run(t: &mut NestorTarget<'_>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.as_slice() {
        ["regs"] => Ok(regs(&t.machine.vcpu.state())),
        ["mode"] => Ok(mode(&t.machine.vcpu.state())),
        ["translate", addr] => parse_num(addr).map(|a| translate(t, a)),
        ["gdt"] => Ok(gdt(t)),
        ["idt"] => Ok(idt(t)),
        ["phys", "read", addr, rest @ ..] => phys_read(t, addr, rest),
        ["phys", "write", addr, bytes @ ..] => phys_write(t, addr, bytes),
        ["break", "exception", "off"] => {
            t.break_exceptions = 0;
            Ok("exception stops cleared\n".into())
        }
        ["break", "exception", n] => break_exception(t, n),
        ["break", "mode-switch"] | ["break", "mode-switch", "on"] => {
            t.break_mode_switch = true;
            Ok("will stop at the next CPU mode switch\n".into())
        }
        ["break", "mode-switch", "off"] => {
            t.break_mode_switch = false;
            Ok("mode-switch stops off\n".into())
        }
        ["reset"] => {
            t.machine.debug_reset();
            Ok("machine reset\n".into())
        }
        [] | ["help"] => Ok(HELP.into()),
        _ => Err(format!("unknown command '{line}'")),
    };
    result.unwrap_or_else(|e| format!("error: {e}\n{HELP}"))
}

fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("'{s}' is not a number"))
}

fn bits(value: u64, names: &[(u64, &str)]) -> String {
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| value & b != 0)
        .map(|(_, n)| *n)
        .collect();
    set.join(" ")
}

const CR0_BITS: [(u64, &str); 11] = [
    (cr0::PE, "PE"),
    (cr0::MP, "MP"),
    (cr0::EM, "EM"),
    (cr0::TS, "TS"),
    (cr0::ET, "ET"),
    (cr0::NE, "NE"),
    (cr0::WP, "WP"),
    (cr0::AM, "AM"),
    (cr0::NW, "NW"),
    (cr0::CD, "CD"),
    (cr0::PG, "PG"),
];
const CR4_BITS: [(u64, &str); 17] = [
    (cr4::VME, "VME"),
    (cr4::PVI, "PVI"),
    (cr4::TSD, "TSD"),
    (cr4::DE, "DE"),
    (cr4::PSE, "PSE"),
    (cr4::PAE, "PAE"),
    (cr4::MCE, "MCE"),
    (cr4::PGE, "PGE"),
    (cr4::PCE, "PCE"),
    (cr4::OSFXSR, "OSFXSR"),
    (cr4::OSXMMEXCPT, "OSXMMEXCPT"),
    (cr4::UMIP, "UMIP"),
    (cr4::LA57, "LA57"),
    (cr4::FSGSBASE, "FSGSBASE"),
    (cr4::PCIDE, "PCIDE"),
    (cr4::SMEP, "SMEP"),
    (cr4::SMAP, "SMAP"),
];
const EFER_BITS: [(u64, &str); 4] = [
    (efer::SCE, "SCE"),
    (efer::LME, "LME"),
    (efer::LMA, "LMA"),
    (efer::NXE, "NXE"),
];
const RFLAGS_BITS: [(u64, &str); 16] = [
    (rflags::CF, "CF"),
    (rflags::PF, "PF"),
    (rflags::AF, "AF"),
    (rflags::ZF, "ZF"),
    (rflags::SF, "SF"),
    (rflags::TF, "TF"),
    (rflags::IF, "IF"),
    (rflags::DF, "DF"),
    (rflags::OF, "OF"),
    (rflags::NT, "NT"),
    (rflags::RF, "RF"),
    (rflags::VM, "VM"),
    (rflags::AC, "AC"),
    (rflags::VIF, "VIF"),
    (rflags::VIP, "VIP"),
    (rflags::ID, "ID"),
];

fn paging_mode(s: &CpuState) -> &'static str {
    if s.cr0 & cr0::PG == 0 {
        "off"
    } else if s.long_mode() {
        if s.cr4 & cr4::LA57 != 0 {
            "5-level"
        } else {
            "4-level"
        }
    } else if s.cr4 & cr4::PAE != 0 {
        "PAE"
    } else {
        "2-level (32-bit)"
    }
}

fn mode(s: &CpuState) -> String {
    format!(
        "{}, paging {}, CPL {}\n",
        CpuMode::of(s),
        paging_mode(s),
        s.cpl()
    )
}

/// Hidden-cache attributes in words: "code DPL0 L", "data RW DPL3 B", "sys type 9 ...".
fn seg_attr(seg: &Segment) -> String {
    use nestor_cpu::state::attr;
    let a = seg.attr;
    let mut w = Vec::new();
    if a & attr::S == 0 {
        w.push(format!("sys type {}", a & attr::TYPE_MASK));
    } else if a & attr::CODE != 0 {
        w.push("code".to_string());
        if a & attr::RW != 0 {
            w.push("R".into());
        }
        if a & attr::DC != 0 {
            w.push("conforming".into());
        }
    } else {
        w.push("data".to_string());
        if a & attr::RW != 0 {
            w.push("RW".into());
        }
        if a & attr::DC != 0 {
            w.push("expand-down".into());
        }
    }
    w.push(format!("DPL{}", seg.dpl()));
    for (bit, name) in [
        (attr::P, "P"),
        (attr::L, "L"),
        (attr::DB, "D/B"),
        (attr::G, "G"),
    ] {
        if a & bit != 0 {
            w.push(name.into());
        }
    }
    w.join(" ")
}

fn regs(s: &CpuState) -> String {
    let mut o = String::new();
    let _ = write!(o, "{}", mode(s));
    let _ = writeln!(
        o,
        "rip={:#018x} rflags={:#010x} [{}] IOPL={}",
        s.rip,
        s.rflags,
        bits(s.rflags, &RFLAGS_BITS),
        s.iopl()
    );
    let names = ["es", "cs", "ss", "ds", "fs", "gs"];
    for (name, seg) in names.iter().zip(SegReg::ALL) {
        let r = s.seg(seg);
        let _ = writeln!(
            o,
            "{name}  ={:04x} base={:#018x} limit={:#010x} attr={:#06x} [{}]",
            r.selector,
            r.base,
            r.limit,
            r.attr,
            seg_attr(r)
        );
    }
    for (name, r) in [("ldtr", &s.ldtr), ("tr", &s.tr)] {
        let _ = writeln!(
            o,
            "{name:<4}={:04x} base={:#018x} limit={:#010x} attr={:#06x} [{}]",
            r.selector,
            r.base,
            r.limit,
            r.attr,
            seg_attr(r)
        );
    }
    let _ = writeln!(
        o,
        "gdtr base={:#018x} limit={:#06x}\nidtr base={:#018x} limit={:#06x}",
        s.gdtr.base, s.gdtr.limit, s.idtr.base, s.idtr.limit
    );
    let _ = writeln!(o, "cr0={:#018x} [{}]", s.cr0, bits(s.cr0, &CR0_BITS));
    let _ = writeln!(o, "cr2={:#018x}\ncr3={:#018x}", s.cr2, s.cr3);
    let _ = writeln!(o, "cr4={:#018x} [{}]", s.cr4, bits(s.cr4, &CR4_BITS));
    let _ = writeln!(o, "cr8={:#018x}", s.cr8);
    let _ = writeln!(o, "efer={:#018x} [{}]", s.efer, bits(s.efer, &EFER_BITS));
    for (i, d) in s.dr.iter().enumerate().filter(|(i, _)| *i != 4 && *i != 5) {
        let _ = writeln!(o, "dr{i}={d:#018x}");
    }
    let m = &s.msr;
    let _ = writeln!(
        o,
        "fs_base={:#018x} gs_base={:#018x} kernel_gs_base={:#018x}",
        s.seg(SegReg::Fs).base,
        s.seg(SegReg::Gs).base,
        m.kernel_gs_base
    );
    let _ = writeln!(
        o,
        "star={:#018x} lstar={:#018x} cstar={:#018x} sfmask={:#018x}",
        m.star, m.lstar, m.cstar, m.sfmask
    );
    let _ = writeln!(
        o,
        "sysenter_cs={:#x} sysenter_esp={:#x} sysenter_eip={:#x}",
        m.sysenter_cs, m.sysenter_esp, m.sysenter_eip
    );
    let _ = writeln!(
        o,
        "apic_base={:#x} pat={:#018x} tsc={:#x} debugctl={:#x}",
        m.apic_base, m.pat, m.tsc, m.debugctl
    );
    o
}

fn entry_flags(e: u64) -> String {
    let names = [
        (pte::P, "P"),
        (pte::RW, "RW"),
        (pte::US, "US"),
        (pte::A, "A"),
        (pte::D, "D"),
        (pte::PS, "PS"),
        (pte::G, "G"),
        (pte::NX, "NX"),
    ];
    bits(e, &names)
}

fn translate(t: &mut NestorTarget<'_>, lin: u64) -> String {
    let s = t.machine.vcpu.state();
    let walk: DebugWalk = t.machine.debug_walk(lin);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "linear {lin:#x}: paging {}, cr3={:#x}",
        paging_mode(&s),
        s.cr3
    );
    for l in &walk.levels {
        let _ = writeln!(
            o,
            "  {:<5}[{:3}] @ {:#012x} = {:#018x} [{}]",
            l.name,
            l.index,
            l.addr,
            l.entry,
            entry_flags(l.entry)
        );
    }
    match walk.paddr {
        Some(pa) => {
            let size = match walk.page_shift {
                30 => "1 GiB",
                22 => "4 MiB",
                21 => "2 MiB",
                _ => "4 KiB",
            };
            let _ = writeln!(o, "  -> physical {pa:#x} ({size} page)");
        }
        None => {
            let _ = writeln!(o, "  -> not mapped");
        }
    }
    o
}

fn read_table(t: &mut NestorTarget<'_>, base: u64, limit: u16) -> Vec<u8> {
    let mut buf = vec![0u8; usize::from(limit) + 1];
    let n = t.machine.debug_read_linear(base, &mut buf);
    buf.truncate(n);
    buf
}

fn qword(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = buf.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

fn gdt(t: &mut NestorTarget<'_>) -> String {
    let s = t.machine.vcpu.state();
    let table = read_table(t, s.gdtr.base, s.gdtr.limit);
    let mut o = format!(
        "GDT base={:#x} limit={:#x} (empty entries not shown)\n",
        s.gdtr.base, s.gdtr.limit
    );
    let mut at = 8;
    while at + 8 <= table.len() {
        let d = qword(&table, at);
        let system = d & (1 << 44) == 0;
        // Long mode system descriptors (LDT, TSS) take two slots.
        let wide = system && s.long_mode() && d != 0;
        if d != 0 {
            let _ = writeln!(
                o,
                "  {:#06x}: {}",
                at,
                descriptor(d, qword(&table, at + 8), wide)
            );
        }
        at += if wide { 16 } else { 8 };
    }
    o
}

fn descriptor(d: u64, high: u64, wide: bool) -> String {
    let mut base = ((d >> 16) & 0xff_ffff) | ((d >> 32) & 0xff00_0000);
    if wide {
        base |= (high & 0xffff_ffff) << 32;
    }
    let mut limit = (d & 0xffff) | ((d >> 32) & 0xf_0000);
    if d & (1 << 55) != 0 {
        limit = (limit << 12) | 0xfff;
    }
    let attr = (((d >> 40) & 0xff) | ((d >> 40) & 0xf000)) as u16;
    let seg = Segment {
        base,
        limit: limit as u32,
        selector: 0,
        attr,
    };
    format!(
        "base={base:#x} limit={limit:#x} [{}]{}",
        seg_attr(&seg),
        if seg.present() { "" } else { " not present" }
    )
}

fn idt(t: &mut NestorTarget<'_>) -> String {
    let s = t.machine.vcpu.state();
    let table = read_table(t, s.idtr.base, s.idtr.limit);
    let mut o = format!(
        "IDT base={:#x} limit={:#x} (absent gates not shown)\n",
        s.idtr.base, s.idtr.limit
    );
    if !s.protected_mode() {
        for (v, e) in table.chunks_exact(4).take(256).enumerate() {
            let off = u16::from_le_bytes([e[0], e[1]]);
            let seg = u16::from_le_bytes([e[2], e[3]]);
            let _ = writeln!(o, "  {v:#04x}: {seg:04x}:{off:04x}");
        }
        return o;
    }
    let size = if s.long_mode() { 16 } else { 8 };
    for (v, e) in table.chunks_exact(size).take(256).enumerate() {
        let lo = qword(e, 0);
        if lo & (1 << 47) == 0 {
            continue;
        }
        let mut off = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000);
        if size == 16 {
            off |= (qword(e, 8) & 0xffff_ffff) << 32;
        }
        let kind = match (lo >> 40) & 0xf {
            0x5 => "task gate",
            0x6 | 0xe => "interrupt gate",
            0x7 | 0xf => "trap gate",
            _ => "gate?",
        };
        let _ = writeln!(
            o,
            "  {v:#04x}: {kind} {:04x}:{off:#x} DPL{}{}",
            (lo >> 16) & 0xffff,
            (lo >> 45) & 3,
            if size == 16 && (lo >> 32) & 7 != 0 {
                format!(" IST{}", (lo >> 32) & 7)
            } else {
                String::new()
            }
        );
    }
    o
}

fn phys_read(t: &mut NestorTarget<'_>, addr: &str, rest: &[&str]) -> Result<String, String> {
    let addr = parse_num(addr)?;
    let len = match rest {
        [] => 64,
        [n] => parse_num(n)?,
        _ => return Err("phys read ADDR [LEN]".into()),
    };
    if len == 0 || len > 4096 {
        return Err("LEN must be 1..=4096".into());
    }
    let mut buf = vec![0u8; len as usize];
    if !t.machine.debug_read_phys(addr, &mut buf) {
        return Err(format!("{addr:#x}+{len:#x} is not all RAM or ROM"));
    }
    let mut o = String::new();
    for (i, line) in buf.chunks(16).enumerate() {
        let _ = write!(o, "{:#012x}:", addr.wrapping_add(16 * i as u64));
        for b in line {
            let _ = write!(o, " {b:02x}");
        }
        let text: String = line
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(o, "  {text}");
    }
    Ok(o)
}

fn phys_write(t: &mut NestorTarget<'_>, addr: &str, bytes: &[&str]) -> Result<String, String> {
    let addr = parse_num(addr)?;
    let data: Vec<u8> = bytes
        .iter()
        .map(|b| u8::from_str_radix(b.trim_start_matches("0x"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| "bytes are hex, e.g. 90 cc 0f".to_string())?;
    if data.is_empty() {
        return Err("phys write ADDR BYTE...".into());
    }
    if !t.machine.debug_write_phys(addr, &data) {
        return Err(format!("{addr:#x}+{:#x} is not all RAM", data.len()));
    }
    Ok(format!("wrote {} bytes at {addr:#x}\n", data.len()))
}

fn break_exception(t: &mut NestorTarget<'_>, n: &str) -> Result<String, String> {
    let v = parse_num(n)?;
    if v >= 32 {
        return Err("exception vectors are 0..=31".into());
    }
    let before = t.break_exceptions;
    t.break_exceptions |= 1 << v;
    if let Err(e) = t.machine.set_debug(&t.setup(false)) {
        t.break_exceptions = before;
        return Err(e.to_string());
    }
    Ok(format!("will stop after exception {v} is delivered\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_hex_and_decimal() {
        assert_eq!(parse_num("0x10"), Ok(16));
        assert_eq!(parse_num("10"), Ok(10));
        assert!(parse_num("zz").is_err());
    }

    #[test]
    fn regs_decode_control_bits() {
        let mut s = CpuState::power_on();
        s.cr0 |= cr0::PE | cr0::PG;
        s.efer = efer::LME | efer::LMA;
        let text = regs(&s);
        assert!(text.contains("[PE ET NW CD PG]"), "{text}");
        assert!(text.contains("efer=0x0000000000000500 [LME LMA]"), "{text}");
    }

    #[test]
    fn flat_code_descriptor_decodes() {
        // Base 0, limit 4 GiB, 32-bit code, DPL 0.
        let d = 0x00cf_9a00_0000_ffffu64;
        let text = descriptor(d, 0, false);
        assert_eq!(text, "base=0x0 limit=0xffffffff [code R DPL0 P D/B G]");
    }
}
