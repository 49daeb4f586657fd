//! Runs the SingleStepTests 80286 real-mode suite (`../shared/testdata/sst80286`) on the
//! interpreter: one instruction per test through the normal fetch path, then every register
//! the test names and every RAM byte it lists are compared, undefined flags masked.
//!
//! Prints a table per instruction form and ends with `N passed, N failed`. A test is skipped
//! only where a Pentium Pro-class CPU rightly differs from the 286 (the reason is printed
//! per form); the run fails if fewer than 99.5 % of the non-revoked, non-skipped tests pass.
//!
//! `SST_FORMS=00,F6.6` runs only those forms; `SST_VERBOSE=N` prints up to N failing tests
//! per form with the differences; `SST_SHOW_SKIPS=1` lists every skipped test.

use nestor_cpu::state::{rflags, SegReg, Segment, TableReg};
use nestor_cpu::{Bus, Cpu, PageTarget, PAGE_SIZE};
use nestor_testsuite::flags::{undefined_flags, Form};
use nestor_testsuite::moo::{list_test_files, load_revocation_list, MooFile, MooTest, Reg16};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Mutex;

/// The 286 address space the tests assume (24 address lines).
const RAM: usize = 16 << 20;
/// Required share of passing tests among the non-revoked ones.
const PASS_RATE: f64 = 0.995;
/// FLAGS bits 12-15: IOPL and NT cannot be set in real mode on the 286 (they can on the
/// 386 and later), so they are never compared.
const FLAGS_HIGH: u16 = 0xF000;

/// RAM allocated page by page on first touch: a fresh 16 MiB machine per test costs only
/// the pages the test uses, and every byte the CPU wrote can be found afterwards.
#[derive(Default)]
struct SparseBus {
    pages: HashMap<u64, Box<[u8; PAGE_SIZE as usize]>>,
}

impl SparseBus {
    fn page_mut(&mut self, page: u64) -> &mut [u8; PAGE_SIZE as usize] {
        self.pages
            .entry(page)
            .or_insert_with(|| Box::new([0; PAGE_SIZE as usize]))
    }
    fn load(&mut self, addr: u32, v: u8) {
        let a = u64::from(addr);
        self.page_mut(a & !(PAGE_SIZE - 1))[(a % PAGE_SIZE) as usize] = v;
    }
    fn get(&self, addr: u32) -> u8 {
        let a = u64::from(addr);
        self.pages
            .get(&(a & !(PAGE_SIZE - 1)))
            .map_or(0, |p| p[(a % PAGE_SIZE) as usize])
    }
    /// Non-zero bytes anywhere in RAM (everything starts zeroed).
    fn nonzero(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.pages.iter().flat_map(|(base, p)| {
            p.iter()
                .enumerate()
                .filter(|(_, b)| **b != 0)
                .map(move |(i, b)| (*base as u32 + i as u32, *b))
        })
    }
}

impl Bus for SparseBus {
    fn page(&mut self, page_addr: u64) -> PageTarget {
        if page_addr >= RAM as u64 {
            return PageTarget::Mmio;
        }
        let p = self.page_mut(page_addr);
        PageTarget::Host {
            ptr: NonNull::from(&mut p[0]),
            writable: true,
        }
    }
    fn map_generation(&self) -> u64 {
        0
    }
    fn a20_mask(&self) -> u64 {
        u64::MAX
    }
    fn mmio_read(&mut self, _paddr: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn mmio_write(&mut self, _paddr: u64, _data: &[u8]) {}
    fn sync_retired(&mut self, _retired: u64) {}
    /// The suite's IN instructions read all ones.
    fn io_in(&mut self, _port: u16, size: u8) -> u32 {
        (u64::MAX >> (64 - 8 * u32::from(size))) as u32
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

/// Why a test is not counted as a pass or a failure: places where a Pentium Pro-class CPU
/// rightly differs from the 80286 the suite was recorded on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    Lock,
    TooLong,
    StackWrap,
    StringWrap,
    PopWrap,
    FsGs,
    AamFlags,
    IdivRange,
    Esc,
}

impl Skip {
    fn reason(self) -> &'static str {
        match self {
            Skip::Lock => "LOCK on a non-lockable form or register destination: #UD on 386+, ignored by the 286",
            Skip::TooLong => "instruction over 10 bytes: fault on the 286, allowed up to 15 bytes on 386+",
            Skip::StackWrap => "SS-relative access wrapping at FFFFh: 286 raises #GP(13), 386+ #SS(12)",
            Skip::StringWrap => {
                "word string access at FFFFh: 286 advances SI/DI/CX before #GP, 386+ faults are restartable"
            }
            Skip::PopWrap => "POP m16 whose store faults: 286 keeps SP incremented, 386+ restores it",
            Skip::FsGs => "MOV to/from FS/GS: #UD on the 286, FS/GS exist on 386+",
            Skip::AamFlags => "AAM 0: 286 updates SF/ZF/PF before #DE, 386+ leave the flags unchanged",
            Skip::IdivRange => "IDIV with a quotient out of range: the 286 misses some overflows, 386+ raise #DE",
            Skip::Esc => "ESC (x87) without a coprocessor: the 286 only computes the address; x87 not implemented yet",
        }
    }
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(Skip),
}

#[derive(Default)]
struct FormStats {
    name: String,
    passed: u32,
    failed: u32,
    skipped: BTreeMap<Skip, u32>,
    revoked: u32,
    details: Vec<String>,
}

fn reg_of(cpu: &Cpu, r: Reg16) -> u16 {
    let g = |i: usize| cpu.s.gpr[i] as u16;
    let seg = |s: SegReg| cpu.s.seg[s as usize].selector;
    match r {
        Reg16::Ax => g(0),
        Reg16::Cx => g(1),
        Reg16::Dx => g(2),
        Reg16::Bx => g(3),
        Reg16::Sp => g(4),
        Reg16::Bp => g(5),
        Reg16::Si => g(6),
        Reg16::Di => g(7),
        Reg16::Cs => seg(SegReg::Cs),
        Reg16::Ss => seg(SegReg::Ss),
        Reg16::Ds => seg(SegReg::Ds),
        Reg16::Es => seg(SegReg::Es),
        Reg16::Ip => cpu.s.rip as u16,
        Reg16::Flags => cpu.flags() as u16,
    }
}

/// A fresh real-mode CPU with the test's initial registers.
fn setup_cpu(t: &MooTest) -> Cpu {
    let mut cpu = Cpu::new();
    let mut s = cpu.s.clone();
    let r = |reg: Reg16| u64::from(t.init.regs.get(reg).unwrap_or(0));
    for (i, reg) in [
        Reg16::Ax,
        Reg16::Cx,
        Reg16::Dx,
        Reg16::Bx,
        Reg16::Sp,
        Reg16::Bp,
        Reg16::Si,
        Reg16::Di,
    ]
    .into_iter()
    .enumerate()
    {
        s.gpr[i] = r(reg);
    }
    let cs_attr = s.seg[SegReg::Cs as usize].attr;
    for (seg, reg) in [
        (SegReg::Es, Reg16::Es),
        (SegReg::Cs, Reg16::Cs),
        (SegReg::Ss, Reg16::Ss),
        (SegReg::Ds, Reg16::Ds),
    ] {
        s.seg[seg as usize] = Segment::real_mode(r(reg) as u16);
    }
    s.seg[SegReg::Cs as usize].attr = cs_attr;
    s.seg[SegReg::Fs as usize] = Segment::real_mode(0);
    s.seg[SegReg::Gs as usize] = Segment::real_mode(0);
    s.rip = r(Reg16::Ip);
    s.idtr = TableReg {
        base: 0,
        limit: 0x3ff,
    };
    cpu.set_state(s);
    cpu.set_flags((r(Reg16::Flags) & !u64::from(FLAGS_HIGH)) | rflags::FIXED1);
    cpu
}

/// The leading prefix bytes of the test's instruction.
fn prefixes(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, 0x26 | 0x2E | 0x36 | 0x3E | 0xF0 | 0xF2 | 0xF3))
        .count();
    &bytes[..n]
}

/// Does CS:IP sit at the handler of IVT entry `v` (i.e. did we deliver vector `v`)?
fn at_vector(cpu: &Cpu, bus: &SparseBus, v: u8) -> bool {
    let at = u32::from(v) * 4;
    let ip = u16::from_le_bytes([bus.get(at), bus.get(at + 1)]);
    let cs = u16::from_le_bytes([bus.get(at + 2), bus.get(at + 3)]);
    cpu.s.seg[SegReg::Cs as usize].selector == cs && cpu.s.rip as u16 == ip
}

/// Physical address of the FLAGS word an exception pushed. `EXCP` records it rounded down
/// to an even address, so it is recomputed from the final SS:SP (the frame is FLAGS, CS, IP).
fn pushed_flags_addr(t: &MooTest) -> u32 {
    let get = |r: Reg16| {
        t.fina
            .regs
            .get(r)
            .or_else(|| t.init.regs.get(r))
            .unwrap_or(0)
    };
    (u32::from(get(Reg16::Ss)) << 4) + u32::from(get(Reg16::Sp).wrapping_add(4))
}

/// The flags that may differ after this test: the form's undefined flags, refined by the
/// shift count for the shift group (the count decides which flags are defined).
fn undefined_mask(form: Form, t: &MooTest) -> u16 {
    use nestor_testsuite::flags::{AF, CF, OF};
    let reg = form.reg.unwrap_or(0);
    let body = &t.bytes[prefixes(&t.bytes).len()..];
    let count = match form.opcode {
        0xD2 | 0xD3 => t.init.regs.get(Reg16::Cx).unwrap_or(0) & 0x1f,
        0xC0 | 0xC1 => u16::from(body.get(body.len().wrapping_sub(2)).copied().unwrap_or(0)) & 0x1f,
        _ => return undefined_flags(form),
    };
    let width = if form.opcode & 1 == 0 { 8 } else { 16 };
    match (count, reg) {
        (0, _) => 0,
        (1, 0..=3) => 0,
        (_, 0..=3) => OF,
        (1, _) => AF,
        (c, 4..=6) if c >= width => AF | OF | CF,
        _ => AF | OF,
    }
}

fn run_test(form: Form, t: &MooTest) -> Outcome {
    let mut bus = SparseBus::default();
    for &(addr, v) in &t.init.ram {
        bus.load(addr, v);
    }
    let mut cpu = setup_cpu(t);
    cpu.step(&mut bus);
    let result = compare(form, t, &cpu, &bus, &[]);
    if matches!(result, Outcome::Pass) {
        return result;
    }
    classify(form, t, &cpu, &bus).map_or(result, Outcome::Skip)
}

/// A failing test that shows one of the known 286 / 386+ differences (recognised by where
/// our CPU went and what differs), or `None` for a real failure.
fn classify(form: Form, t: &MooTest, cpu: &Cpu, bus: &SparseBus) -> Option<Skip> {
    let expect = t.exception.map(|e| e.number);
    let pre = prefixes(&t.bytes);
    let len = t.bytes.len() - 1;
    let modrm_reg = t.bytes.get(pre.len() + 1).map(|m| (m >> 3) & 7);
    let op = form.opcode;
    if pre.contains(&0xF0) && expect != Some(6) && at_vector(cpu, bus, 6) {
        return Some(Skip::Lock);
    }
    if matches!(expect, Some(6 | 13)) && len > 10 {
        return Some(Skip::TooLong);
    }
    if expect == Some(13) && at_vector(cpu, bus, 12) && !at_vector(cpu, bus, 13) {
        return Some(Skip::StackWrap);
    }
    let string = matches!(op, 0x6C..=0x6F | 0xA4..=0xA7 | 0xAA..=0xAF);
    let index_regs = [Reg16::Si, Reg16::Di, Reg16::Cx];
    if string
        && expect == Some(13)
        && matches!(compare(form, t, cpu, bus, &index_regs), Outcome::Pass)
    {
        return Some(Skip::StringWrap);
    }
    if op == 0x8F && expect == Some(13) && at_vector(cpu, bus, 13) {
        return Some(Skip::PopWrap);
    }
    if matches!(op, 0x8C | 0x8E) && expect == Some(6) && matches!(modrm_reg, Some(4 | 5)) {
        return Some(Skip::FsGs);
    }
    if op == 0xD4 && expect == Some(0) && at_vector(cpu, bus, 0) {
        return Some(Skip::AamFlags);
    }
    if matches!(op, 0xF6 | 0xF7)
        && form.reg == Some(7)
        && expect.is_none()
        && at_vector(cpu, bus, 0)
    {
        return Some(Skip::IdivRange);
    }
    if op == 0xD8 && at_vector(cpu, bus, 6) {
        return Some(Skip::Esc);
    }
    None
}

/// Compare our state with the test's final state; registers in `ignore` are not compared.
fn compare(form: Form, t: &MooTest, cpu: &Cpu, bus: &SparseBus, ignore: &[Reg16]) -> Outcome {
    let mut diff = String::new();
    let undef = undefined_mask(form, t);
    for r in Reg16::ALL {
        let Some(init) = t.init.regs.get(r) else {
            continue;
        };
        if ignore.contains(&r) {
            continue;
        }
        let want = t.fina.regs.get(r).unwrap_or(init);
        let mut got = reg_of(cpu, r);
        // The suite ends every test with a HLT after the instruction (or at the handler it
        // jumped to); we stop before it, so add its byte unless we halted ourselves.
        if r == Reg16::Ip && !cpu.s.events.halted {
            got = got.wrapping_add(1);
        }
        let mask = if r == Reg16::Flags {
            !(FLAGS_HIGH | undef)
        } else {
            0xFFFF
        };
        if want & mask != got & mask {
            let _ = write!(diff, " {}: want {want:04x} got {got:04x};", r.name());
        }
    }
    let flag_addr = t.exception.map(|_| pushed_flags_addr(t));
    let mut want_ram: BTreeMap<u32, u8> = t.init.ram.iter().copied().collect();
    want_ram.extend(t.fina.ram.iter().copied());
    for (&addr, &want) in &want_ram {
        let got = bus.get(addr);
        // The FLAGS word an exception pushed: mask undefined and high bits there too.
        let mask = match flag_addr {
            Some(f) if addr == f => !(undef as u8),
            Some(f) if addr == f + 1 => !((undef | FLAGS_HIGH) >> 8) as u8,
            _ => 0xff,
        };
        if want & mask != got & mask {
            let _ = write!(diff, " [{addr:06x}]: want {want:02x} got {got:02x};");
        }
    }
    // Bytes written where the test expects nothing (RAM the test does not list is zero).
    for (addr, got) in bus.nonzero() {
        if !want_ram.contains_key(&addr) {
            let _ = write!(diff, " [{addr:06x}]: stray write {got:02x};");
        }
    }
    if diff.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(diff)
    }
}

fn run_form(name: &str, path: &PathBuf, revoked: &HashSet<String>, verbose: usize) -> FormStats {
    let show_skips = std::env::var_os("SST_SHOW_SKIPS").is_some();
    let mut st = FormStats {
        name: name.to_string(),
        ..FormStats::default()
    };
    let form: Form = name.parse().expect("form name");
    let file = MooFile::from_path(path).expect("MOO file");
    for t in &file.tests {
        if t.is_revoked(revoked) {
            st.revoked += 1;
            continue;
        }
        match run_test(form, t) {
            Outcome::Pass => st.passed += 1,
            Outcome::Skip(s) => {
                *st.skipped.entry(s).or_default() += 1;
                if show_skips {
                    st.details.push(format!(
                        "  skip #{} {} [{:02x?}]: {s:?}",
                        t.index, t.name, t.bytes
                    ));
                }
            }
            Outcome::Fail(d) => {
                st.failed += 1;
                if st.details.len() < verbose {
                    let exc = t
                        .exception
                        .map(|e| format!(" exc {}", e.number))
                        .unwrap_or_default();
                    st.details.push(format!(
                        "  #{} {} [{:02x?}]{exc}:{d}",
                        t.index, t.name, t.bytes
                    ));
                }
            }
        }
    }
    st
}

/// A plain `main` (harness = false) so the per-form table and the closing
/// `N passed, N failed` line reach CI's log instead of being captured.
fn main() {
    let dir = nestor_testsuite::sst80286_real_mode_dir();
    let revoked =
        load_revocation_list(nestor_testsuite::sst80286_dir().join("revocation_list.txt"))
            .expect("revocation list");
    let only: Option<HashSet<String>> = std::env::var("SST_FORMS")
        .ok()
        .map(|s| s.split(',').map(|f| f.trim().to_uppercase()).collect());
    let verbose: usize = std::env::var("SST_VERBOSE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let files: Vec<(String, PathBuf)> = list_test_files(&dir)
        .expect("test directory")
        .into_iter()
        .filter(|(n, _)| only.as_ref().is_none_or(|o| o.contains(n)))
        .collect();
    assert!(!files.is_empty(), "no MOO files in {}", dir.display());
    let queue = Mutex::new(files.iter());
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some((name, path)) = queue.lock().expect("queue").next() else {
                    break;
                };
                let st = run_form(name, path, &revoked, verbose);
                results.lock().expect("results").push(st);
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.name.cmp(&b.name));
    report(&results);
}

fn report(results: &[FormStats]) {
    let (mut passed, mut failed, mut skipped, mut revoked) = (0u64, 0u64, 0u64, 0u64);
    let mut by_reason: BTreeMap<Skip, u64> = BTreeMap::new();
    println!(
        "{:<6} {:>7} {:>7} {:>7}  reason",
        "form", "passed", "failed", "skipped"
    );
    for st in results {
        let sk: u32 = st.skipped.values().sum();
        let reasons: Vec<String> = st
            .skipped
            .iter()
            .map(|(s, n)| format!("{n}: {}", s.reason()))
            .collect();
        println!(
            "{:<6} {:>7} {:>7} {:>7}  {}",
            st.name,
            st.passed,
            st.failed,
            sk,
            reasons.join("; ")
        );
        for d in &st.details {
            println!("{d}");
        }
        passed += u64::from(st.passed);
        failed += u64::from(st.failed);
        skipped += u64::from(sk);
        revoked += u64::from(st.revoked);
        for (s, n) in &st.skipped {
            *by_reason.entry(*s).or_default() += u64::from(*n);
        }
    }
    for (s, n) in &by_reason {
        println!("skipped {n}: {}", s.reason());
    }
    let compared = passed + failed;
    let rate = if compared == 0 {
        0.0
    } else {
        passed as f64 / compared as f64
    };
    let all = compared + skipped;
    println!(
        "{revoked} revoked, {skipped} skipped as 286-only behaviour, {compared} compared: {:.3} % pass ({:.3} % of all {all} non-revoked tests)",
        rate * 100.0,
        if all == 0 { 0.0 } else { passed as f64 * 100.0 / all as f64 }
    );
    println!("{passed} passed, {failed} failed");
    if rate < PASS_RATE {
        eprintln!(
            "sst80286: pass rate {:.3} % is below {:.1} %",
            rate * 100.0,
            PASS_RATE * 100.0
        );
        std::process::exit(1);
    }
}
