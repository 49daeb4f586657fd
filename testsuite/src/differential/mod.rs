//! The differential harness: random user-level instruction sequences run on the host CPU
//! (in a forked child, see [`native`]) and in the interpreter (see [`interp`]) from the
//! same state, compared on every architecturally defined result.
//!
//! Division: #DE is compared, not avoided; three times in four a DIV/IDIV is preceded by
//! `XOR EDX,EDX` (or `XOR AH,AH`) so that most divisions complete.

pub mod approx;
pub mod catalog;
pub mod compare;
pub mod gen;
pub mod interp;
pub mod layout;
pub mod native;
pub mod operands;
pub mod state;

use catalog::Catalog;
use compare::Mismatch;
use gen::{Generator, Sequence};
use iced_x86::Code;
use layout::{Context, CHILD_DIED};
use std::collections::BTreeMap;

/// xorshift64*: deterministic and small.
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Stop after this many instructions have executed on the host.
    pub instructions: u64,
    /// 64 (64-bit mode) or 32 (compatibility mode).
    pub bitness: u32,
    /// Chosen instructions per sequence (setups and fences come on top).
    pub max_len: usize,
    /// Detailed reports to print (each mismatch is still counted).
    pub print_limit: usize,
    /// Also print (up to 5) sequences the host stopped with this exception vector.
    pub show_vector: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            instructions: 100_000,
            bitness: 64,
            max_len: 24,
            print_limit: 10,
            show_vector: None,
        }
    }
}

/// What a run found.
#[derive(Default)]
pub struct Report {
    pub sequences: u64,
    pub executed: u64,
    /// Executions per instruction form (setups and fences included).
    pub counts: BTreeMap<String, u64>,
    /// Sequences stopped by a fault, per vector.
    pub faults: BTreeMap<u64, u64>,
    pub mismatches: Vec<Mismatch>,
    /// Native children that died outside the sequence (harness trouble).
    pub child_deaths: u64,
    pub catalog_size: usize,
}

impl Report {
    /// Handled, runnable forms executed fewer than `min` times.
    #[must_use]
    pub fn rare(&self, cat: &Catalog, min: u64) -> Vec<(Code, u64)> {
        cat.codes
            .iter()
            .map(|&c| (c, self.counts.get(&format!("{c:?}")).copied().unwrap_or(0)))
            .filter(|&(_, n)| n < min)
            .collect()
    }
}

/// One prepared job.
struct Job {
    seq: Sequence,
    init: Context,
    mem: Vec<u8>,
}

/// Run sequences until `cfg.instructions` have executed. `Err` when the host cannot run
/// them natively (the reason is the message).
pub fn run(cfg: &Config) -> Result<Report, String> {
    let t = native::trampoline().map_err(|e| e.to_string())?;
    let cat = Catalog::new(cfg.bitness);
    let mut g = Generator::new(&cat, cfg.seed);
    let mut interp = interp::Interp::new(cfg.bitness);
    const BATCH: usize = 256;
    let mut batch = native::Batch::new(BATCH).map_err(|e| e.to_string())?;
    let mut probe = Probe {
        batch: native::Batch::new(1).map_err(|e| e.to_string())?,
        t,
        bits: cfg.bitness,
    };
    let mut report = Report {
        catalog_size: cat.codes.len(),
        ..Report::default()
    };
    while report.executed < cfg.instructions {
        let jobs: Vec<Job> = (0..BATCH)
            .map(|_| {
                let n = 1 + g.rng.below(cfg.max_len as u64) as usize;
                let (init, mem) = state::random_state(&mut g, cfg.bitness);
                let seq = g.sequence(n, t.exit);
                Job { seq, init, mem }
            })
            .collect();
        let natives = run_native(&mut batch, &jobs, t, cfg.bitness)?;
        for (job, nat) in jobs.iter().zip(natives) {
            report.sequences += 1;
            let got = interp_run(&mut interp, &job.seq, &job.init, &job.mem, &nat.ctx);
            if nat.ctx.vector == CHILD_DIED {
                report.child_deaths += 1;
            }
            count(&mut report, &job.seq, &nat.ctx);
            if let Some(vec) = nat.ctx.fault() {
                *report.faults.entry(vec).or_default() += 1;
                if cfg.show_vector == Some(vec) && report.faults[&vec] <= 5 {
                    let stop = Some(nat.ctx.fault_rip);
                    println!(
                        "--- stopped by #{vec}:\n{}",
                        compare::listing(&job.seq, stop)
                    );
                }
            }
            let diffs = compare::diff(
                &job.seq,
                &nat.ctx,
                &nat.mem,
                &got.ctx,
                &got.mem,
                cfg.bitness,
            );
            if !diffs.is_empty() {
                // Blame the first instruction after which the results differ.
                let (short, nat, diffs) = if report.mismatches.len() < MAX_SHRINKS {
                    probe.shrink(&g, &mut interp, job)?
                } else {
                    (job.seq.clone(), nat.ctx, diffs)
                };
                let m = compare::Mismatch::new(job_text(job), &short, &nat, diffs);
                if report.mismatches.len() < cfg.print_limit {
                    println!("{}", m.text);
                }
                report.mismatches.push(m);
            }
        }
    }
    Ok(report)
}

/// Both sides' results for hand-written code (`bits` 64 or 32) from `init` over `mem`.
pub struct Pair {
    pub native: Context,
    pub native_mem: Vec<u8>,
    pub interp: Context,
    pub interp_mem: Vec<u8>,
    /// The interpreter's result before [`approx::reconcile`] (equal to `interp` unless the
    /// last instruction is compared within a documented accuracy).
    pub interp_raw: Context,
    /// The differences `compare::diff` finds (empty: agreement).
    pub diffs: Vec<String>,
}

/// Run `code` (no exit jump; it is added) on the host and in the interpreter.
pub fn run_bytes(bits: u32, code: &[u8], init: &Context, mem: &[u8]) -> Result<Pair, String> {
    let t = native::trampoline().map_err(|e| e.to_string())?;
    let cat = Catalog::new(bits);
    let g = Generator::new(&cat, 1);
    let mut dec = iced_x86::Decoder::with_ip(bits, code, layout::SEQ, 0);
    let mut insns = Vec::new();
    while dec.can_decode() {
        let insn = dec.decode();
        insns.push(gen::GenInsn {
            ip: insn.ip(),
            len: insn.len(),
            insn,
            taint: 0,
        });
    }
    let whole = Sequence {
        code: code.to_vec(),
        insns,
        end: layout::SEQ + code.len() as u64,
        final_taint: 0,
    };
    let seq = g.prefix(&whole, whole.insns.len(), t.exit);
    let mut mem_all = mem.to_vec();
    mem_all.resize(layout::MEM_BYTES, 0);
    let job = Job {
        seq,
        init: *init,
        mem: mem_all,
    };
    let mut batch = native::Batch::new(1).map_err(|e| e.to_string())?;
    let nat = run_native(&mut batch, std::slice::from_ref(&job), t, bits)?;
    let nat = &nat[0];
    let mut interp = interp::Interp::new(bits);
    let raw = interp.run(&job.init, &job.mem, &job.seq.code, job.seq.end, 100_000);
    let got = interp_run(&mut interp, &job.seq, &job.init, &job.mem, &nat.ctx);
    let diffs = compare::diff(&job.seq, &nat.ctx, &nat.mem, &got.ctx, &got.mem, bits);
    Ok(Pair {
        native: nat.ctx,
        native_mem: nat.mem.clone(),
        interp: got.ctx,
        interp_mem: got.mem,
        interp_raw: raw.ctx,
        diffs,
    })
}

/// Mismatches narrowed down to their first diverging instruction (each costs a few forks).
const MAX_SHRINKS: usize = 500;

struct Probe {
    batch: native::Batch,
    t: native::Trampoline,
    bits: u32,
}

impl Probe {
    /// Differences after the first `k` instructions of `job`.
    fn diffs(
        &mut self,
        g: &Generator,
        interp: &mut interp::Interp,
        job: &Job,
        k: usize,
    ) -> Result<(Sequence, Context, Vec<String>), String> {
        let seq = g.prefix(&job.seq, k, self.t.exit);
        let probe = Job {
            seq,
            init: job.init,
            mem: job.mem.clone(),
        };
        let nat = run_native(
            &mut self.batch,
            std::slice::from_ref(&probe),
            self.t,
            self.bits,
        )?;
        let nat = &nat[0];
        let got = interp_run(interp, &probe.seq, &probe.init, &probe.mem, &nat.ctx);
        let d = compare::diff(
            &probe.seq, &nat.ctx, &nat.mem, &got.ctx, &got.mem, self.bits,
        );
        Ok((probe.seq, nat.ctx, d))
    }

    /// The shortest prefix of `job` that still mismatches (binary search).
    fn shrink(
        &mut self,
        g: &Generator,
        interp: &mut interp::Interp,
        job: &Job,
    ) -> Result<(Sequence, Context, Vec<String>), String> {
        let (mut lo, mut hi) = (0, job.seq.insns.len());
        let mut best = self.diffs(g, interp, job, hi)?;
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            let r = self.diffs(g, interp, job, mid)?;
            if r.2.is_empty() {
                lo = mid;
            } else {
                hi = mid;
                best = r;
            }
        }
        Ok(best)
    }
}

/// The interpreter's result for `seq`; after an instruction of documented accuracy only
/// (see [`approx`]), reconciled with the host's `native` result within that accuracy.
fn interp_run(
    interp: &mut interp::Interp,
    seq: &Sequence,
    init: &Context,
    mem: &[u8],
    native: &Context,
) -> interp::Outcome {
    let mut got = interp.run(init, mem, &seq.code, seq.end, 100_000);
    let Some(last) = seq.insns.last() else {
        return got;
    };
    if approx::kind(last.insn.code()).is_some() {
        let pre = interp.run(init, mem, &seq.code, last.ip, 100_000);
        got.ctx = approx::reconcile(seq, &pre.ctx, &pre.mem, native, &got.ctx);
    }
    got
}

fn job_text(job: &Job) -> String {
    compare::initial_state_text(&job.init)
}

struct NativeResult {
    ctx: Context,
    mem: Vec<u8>,
}

fn run_native(
    batch: &mut native::Batch,
    jobs: &[Job],
    t: native::Trampoline,
    bits: u32,
) -> Result<Vec<NativeResult>, String> {
    for (i, job) in jobs.iter().enumerate() {
        let s = batch.slot(i);
        s.ctx = job.init;
        s.mem.copy_from_slice(&job.mem);
        let n = job.seq.code.len().min(s.code.len());
        s.code[..n].copy_from_slice(&job.seq.code[..n]);
        s.code_len = n as u64;
        s.bitness = u64::from(bits);
    }
    batch.run(jobs.len(), t).map_err(|e| e.to_string())?;
    Ok((0..jobs.len())
        .map(|i| {
            let s = batch.slot(i);
            NativeResult {
                ctx: s.ctx,
                mem: s.mem.to_vec(),
            }
        })
        .collect())
}

/// Count the instructions the host executed (up to and including a faulting one).
fn count(report: &mut Report, seq: &Sequence, nat: &Context) {
    let stop = nat.fault().map(|_| nat.fault_rip);
    for g in &seq.insns {
        report.executed += 1;
        *report
            .counts
            .entry(format!("{:?}", g.insn.code()))
            .or_default() += 1;
        if Some(g.ip) == stop {
            break;
        }
    }
}
