//! The host CPU's x87 as the oracle: the same instruction runs natively (inline assembly on
//! memory operands) and in the interpreter (real mode on a flat bus), and the 80-bit results
//! and the status word are compared bit for bit. x86-64 hosts only.

use crate::handlers::alu::tests::run_real_with;
use crate::x87::F80;
use std::arch::asm;

/// Shared layout of the native and the emulated run: operands, control word, results.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Block {
    a: [u8; 10],
    b: [u8; 10],
    /// A memory operand (random on entry) or a store's destination.
    m: [u8; 10],
    cw: u16,
    sw: u16,
    /// 037Fh: restored before the final stores, so that unmasked exceptions stay pending
    /// nowhere (a native #MF would be SIGFPE).
    cw_default: u16,
    _pad: [u8; 4],
    r: [[u8; 10]; 3],
}

const BASE: u16 = 0x2000;

/// `fninit; fldcw; fld b; fld a; <op>; fnstsw; fstp ×3` natively.
macro_rules! native {
    ($op:literal) => {
        |blk: &mut Block| {
            // SAFETY: the block is a live, writable `Block`; the sequence leaves the x87
            // stack empty and the control word at its default (the ABI's state).
            unsafe {
                asm!(
                    "fninit",
                    "fldcw word ptr [{p} + 30]",
                    "fld tbyte ptr [{p} + 10]",
                    "fld tbyte ptr [{p}]",
                    $op,
                    "fnstsw word ptr [{p} + 32]",
                    "fnclex",
                    "fldcw word ptr [{p} + 34]",
                    "fstp tbyte ptr [{p} + 40]",
                    "fstp tbyte ptr [{p} + 50]",
                    "fstp tbyte ptr [{p} + 60]",
                    "fninit",
                    p = in(reg) blk as *mut Block,
                    options(nostack),
                );
            }
        }
    };
}

/// The same sequence in real mode, the operation's bytes in the middle.
fn emulate(blk: &Block, op: &[u8]) -> Block {
    let at = |off: u16| (BASE + off).to_le_bytes();
    let mut code = vec![0xdb, 0xe3];
    for (opc, off) in [([0xd9, 0x2e], 30), ([0xdb, 0x2e], 10), ([0xdb, 0x2e], 0)] {
        code.extend_from_slice(&opc);
        code.extend_from_slice(&at(off));
    }
    code.extend_from_slice(op);
    code.extend_from_slice(&[0xdd, 0x3e]);
    code.extend_from_slice(&at(32));
    code.extend_from_slice(&[0xdb, 0xe2, 0xd9, 0x2e]);
    code.extend_from_slice(&at(34));
    for off in [40, 50, 60] {
        code.extend_from_slice(&[0xdb, 0x3e]);
        code.extend_from_slice(&at(off));
    }
    code.push(0xf4);
    let bytes: [u8; std::mem::size_of::<Block>()] =
        // SAFETY: Block is plain old data.
        unsafe { std::mem::transmute(*blk) };
    let (_, bus) = run_real_with(&code, 20, |_, bus| bus.load(u64::from(BASE), &bytes));
    let mut out = [0u8; std::mem::size_of::<Block>()];
    let n = out.len();
    out.copy_from_slice(&bus.ram()[usize::from(BASE)..usize::from(BASE) + n]);
    // SAFETY: as above.
    unsafe { std::mem::transmute(out) }
}

/// xorshift64*, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value around 2^[lo, hi], with specials mixed in when `specials`.
    fn value(&mut self, lo: i32, hi: i32, specials: bool) -> F80 {
        let k = self.next();
        let sign = k & 1 != 0;
        if specials {
            match (k >> 1) % 16 {
                0 => return F80::zero(sign),
                1 => return F80::inf(sign),
                2 => return F80::new(sign, 0x7fff, 0xc000_0000_0000_0000 | self.next() >> 20),
                3 => return F80::new(sign, 0x7fff, 0x8000_0000_0000_0000 | self.next() >> 20 | 1),
                4 => return F80::new(sign, 0, self.next() >> 1),
                5 => return F80::new(sign, 0x7ffe, self.next() | 1 << 63),
                _ => {}
            }
        }
        let span = (hi - lo + 1) as u64;
        let e = lo + ((k >> 8) % span) as i32;
        F80::new(sign, (e + 16383) as u16, self.next() | 1 << 63)
    }
}

struct Case {
    name: &'static str,
    bytes: &'static [u8],
    native: fn(&mut Block),
    range: (i32, i32),
    specials: bool,
    /// Results must agree bit for bit (false: transcendental, compared within 1 ulp).
    exact: bool,
}

/// Run `n` random operand pairs per control word through one operation.
fn run(case: &Case, n: usize, cws: &[u16], seed: u64) -> (usize, usize, Vec<String>) {
    let mut rng = Rng(seed);
    let (mut total, mut bad, mut report) = (0, 0, Vec::new());
    for &cw in cws {
        for _ in 0..n {
            let mut m = rng
                .value(case.range.0, case.range.1, case.specials)
                .to_bytes();
            if rng.next().is_multiple_of(4) {
                m[..8].copy_from_slice(&rng.next().to_le_bytes());
            }
            let mut blk = Block {
                a: rng
                    .value(case.range.0, case.range.1, case.specials)
                    .to_bytes(),
                b: rng
                    .value(case.range.0, case.range.1, case.specials)
                    .to_bytes(),
                m,
                cw,
                cw_default: 0x037f,
                ..Block::default()
            };
            let emu = emulate(&blk, case.bytes);
            (case.native)(&mut blk);
            total += 1;
            let same = blk.sw == emu.sw && blk.r == emu.r && blk.m == emu.m;
            let close = same || (!case.exact && within_one_ulp(&blk, &emu));
            if !same {
                bad += 1;
                if report.len() < 6 || !close {
                    report.push(format!(
                        "{} cw={cw:04x} a={} b={}: host sw={:04x} {} {} m={} | emu sw={:04x} {} {} m={}{}",
                        case.name,
                        hex(&blk.a),
                        hex(&blk.b),
                        blk.sw,
                        hex(&blk.r[0]),
                        hex(&blk.r[1]),
                        hex(&blk.m),
                        emu.sw,
                        hex(&emu.r[0]),
                        hex(&emu.r[1]),
                        hex(&emu.m),
                        if close { "" } else { "  <-- beyond 1 ulp" }
                    ));
                }
            }
        }
    }
    (total, bad, report)
}

fn hex(b: &[u8; 10]) -> String {
    let f = F80::from_bytes(b);
    format!("{:04x}:{:016x}", f.se, f.mant)
}

/// Same status except C1 (the round-up bit) and results at most one unit apart.
fn within_one_ulp(h: &Block, e: &Block) -> bool {
    if (h.sw ^ e.sw) & !0x0220 != 0 {
        return false;
    }
    h.r.iter().zip(e.r.iter()).all(|(x, y)| {
        let (x, y) = (F80::from_bytes(x), F80::from_bytes(y));
        let ord = |v: F80| i128::from(v.exp()) << 64 | i128::from(v.mant);
        x.sign() == y.sign() && (ord(x) - ord(y)).abs() <= 1
    })
}

macro_rules! case {
    ($name:literal, $bytes:expr, $range:expr, $specials:expr, $exact:expr) => {
        Case {
            name: $name,
            bytes: &$bytes,
            native: native!($name),
            range: $range,
            specials: $specials,
            exact: $exact,
        }
    };
}

/// Control words: masked, each rounding mode, each precision.
const CWS: [u16; 6] = [0x037f, 0x077f, 0x0b7f, 0x0f7f, 0x027f, 0x007f];

#[test]
fn arithmetic_matches_the_host_bit_for_bit() {
    let cases = [
        case!("fadd st(0), st(1)", [0xd8, 0xc1], (-70, 70), true, true),
        case!("fsub st(0), st(1)", [0xd8, 0xe1], (-3, 3), true, true),
        case!("fsubr st(0), st(1)", [0xd8, 0xe9], (-3, 3), true, true),
        case!("fmul st(0), st(1)", [0xd8, 0xc9], (-9000, 9000), true, true),
        case!("fdiv st(0), st(1)", [0xd8, 0xf1], (-9000, 9000), true, true),
        case!("fdivr st(0), st(1)", [0xd8, 0xf9], (-100, 100), true, true),
        case!("fsqrt", [0xd9, 0xfa], (-16400, 16383), true, true),
        case!("fprem", [0xd9, 0xf8], (-200, 200), true, true),
        case!("fprem1", [0xd9, 0xf5], (-80, 80), true, true),
        case!("fscale", [0xd9, 0xfd], (-5, 14), true, true),
        case!("frndint", [0xd9, 0xfc], (-3, 70), true, true),
        case!("fxtract", [0xd9, 0xf4], (-16445, 16383), true, true),
        case!("fcom st(1)", [0xd8, 0xd1], (-2, 2), true, true),
        case!("fucom st(1)", [0xdd, 0xe1], (-2, 2), true, true),
        case!("fxam", [0xd9, 0xe5], (-16445, 16383), true, true),
    ];
    let mut failures = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let (total, bad, report) = run(c, 150, &CWS, 0x1234_5678 + k as u64);
        println!("{:<20} {total} cases, {bad} mismatches", c.name);
        for r in &report {
            println!("  {r}");
        }
        if bad > 0 {
            failures.push(c.name);
        }
    }
    assert!(failures.is_empty(), "mismatches in {failures:?}");
}

/// Unmasked exceptions (results biased by 24576, nothing stored to memory...).
const UNMASKED: [u16; 3] = [0x0360, 0x0b60, 0x0060];

#[test]
fn loads_stores_and_unmasked_exceptions_match_the_host() {
    let cases = [
        case!(
            "fst dword ptr [{p} + 20]",
            [0xd9, 0x16, 0x14, 0x20],
            (-160, 160),
            true,
            true
        ),
        case!(
            "fst qword ptr [{p} + 20]",
            [0xdd, 0x16, 0x14, 0x20],
            (-1100, 1100),
            true,
            true
        ),
        case!(
            "fist word ptr [{p} + 20]",
            [0xdf, 0x16, 0x14, 0x20],
            (-3, 17),
            true,
            true
        ),
        case!(
            "fist dword ptr [{p} + 20]",
            [0xdb, 0x16, 0x14, 0x20],
            (-3, 33),
            true,
            true
        ),
        case!(
            "fistp qword ptr [{p} + 20]",
            [0xdf, 0x3e, 0x14, 0x20],
            (-3, 65),
            true,
            true
        ),
        case!(
            "fisttp dword ptr [{p} + 20]",
            [0xdb, 0x0e, 0x14, 0x20],
            (-3, 33),
            true,
            true
        ),
        case!(
            "fbstp tbyte ptr [{p} + 20]",
            [0xdf, 0x36, 0x14, 0x20],
            (-3, 62),
            true,
            true
        ),
        case!(
            "fld dword ptr [{p} + 20]",
            [0xd9, 0x06, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fld qword ptr [{p} + 20]",
            [0xdd, 0x06, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fadd dword ptr [{p} + 20]",
            [0xd8, 0x06, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fmul qword ptr [{p} + 20]",
            [0xdc, 0x0e, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fidiv word ptr [{p} + 20]",
            [0xde, 0x36, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fbld tbyte ptr [{p} + 20]",
            [0xdf, 0x26, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fcomp dword ptr [{p} + 20]",
            [0xd8, 0x1e, 0x14, 0x20],
            (-3, 3),
            true,
            true
        ),
        case!(
            "fmul st(0), st(1)",
            [0xd8, 0xc9],
            (-12000, 12000),
            true,
            true
        ),
        case!(
            "fdiv st(0), st(1)",
            [0xd8, 0xf1],
            (-12000, 12000),
            true,
            true
        ),
        case!(
            "faddp st(1), st(0)",
            [0xde, 0xc1],
            (-16445, 16383),
            true,
            true
        ),
        case!("fsqrt", [0xd9, 0xfa], (-16445, 16383), true, true),
        case!("fscale", [0xd9, 0xfd], (-16445, 16383), true, true),
        case!("fxch st(1)", [0xd9, 0xc9], (-3, 3), true, true),
    ];
    let cws: Vec<u16> = CWS.iter().chain(UNMASKED.iter()).copied().collect();
    let mut failures = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let (total, bad, report) = run(c, 120, &cws, 0x5eed_0000 + k as u64);
        println!("{:<28} {total} cases, {bad} mismatches", c.name);
        for r in &report {
            println!("  {r}");
        }
        if bad > 0 {
            failures.push(c.name);
        }
    }
    assert!(failures.is_empty(), "mismatches in {failures:?}");
}

#[test]
fn transcendentals_against_the_host() {
    let cases = [
        case!("fsin", [0xd9, 0xfe], (-30, 8), false, false),
        case!("fcos", [0xd9, 0xff], (-30, 8), false, false),
        case!("fsincos", [0xd9, 0xfb], (-4, 62), false, false),
        case!("fptan", [0xd9, 0xf2], (-20, 6), false, false),
        case!("fpatan", [0xd9, 0xf3], (-60, 60), true, false),
        case!("f2xm1", [0xd9, 0xf0], (-40, -1), false, false),
        case!("fyl2x", [0xd9, 0xf1], (-200, 200), true, false),
        case!("fyl2xp1", [0xd9, 0xf9], (-40, -3), false, false),
        case!("fsin", [0xd9, 0xfe], (-70, 70), true, false),
        case!("fsincos", [0xd9, 0xfb], (-70, 70), true, false),
        case!("fptan", [0xd9, 0xf2], (-70, 70), true, false),
        case!("f2xm1", [0xd9, 0xf0], (-16445, 0), true, false),
        // FYL2XP1 specials are left out: the random huge operands fall outside its domain,
        // where the hardware returns ST0 (undefined by the SDM; not mimicked).
    ];
    let mut beyond = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let (total, bad, report) = run(c, 200, &CWS[..4], 0x9e37_79b9 + k as u64);
        println!("{:<8} {total} cases, {bad} not bit-exact", c.name);
        for r in &report {
            println!("  {r}");
            if r.ends_with("beyond 1 ulp") {
                beyond.push(r.clone());
            }
        }
    }
    assert!(beyond.is_empty(), "{} results beyond 1 ulp", beyond.len());
}
