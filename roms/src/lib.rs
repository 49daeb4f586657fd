//! Guest programs for Nestor, assembled from source when this crate is built.
//!
//! Each program is a complete 64 KiB firmware image (there is no BIOS under it): map it so
//! that it ends at physical 0xFFFFF (and again just below 4 GiB), reset the CPU, and it runs
//! from the reset vector F000:FFF0. It talks to the machine only through
//!
//! - the 16550 UART COM1 at 0x3F8 (its output is the program's visible result),
//! - Bochs' APM shutdown port 0x8900 (the bytes "Shutdown": clean power-off, exit status 0),
//! - QEMU's isa-debug-exit at 0xF4, only if the power-off did not happen (value 1), or if a
//!   self-check failed (value 2).
//!
//! The same images run under Bochs 2.7 (`romimage: file=demo.rom`). The sources, with the
//! ROM layout and the RAM they use, are in `src/programs/` (`common.rs` first); `build.rs`
//! assembles them with iced-x86's code assembler.
//!
//! | image            | what it does                                                     |
//! |------------------|------------------------------------------------------------------|
//! | [`demo`]         | banner, real → protected mode, prime sieve and CRC-32, "bye"     |
//! | [`bench_int`]    | ~200 M instructions of a register-only integer loop              |
//! | [`bench_string`] | ~200 M instructions of REP STOSD/MOVSD, REPE CMPSB, memory loop |
//! | [`bench_int64`]  | ~200 M instructions of an integer loop in 64-bit long mode       |
//! | [`bench_sse64`]  | ~200 M instructions of an SSE/SSE2 loop in 64-bit long mode      |
//! | [`mouse_probe`]  | PS/2 mouse on through the i8042, prints each IRQ12 packet        |
//!
//! ```
//! let rom = nestor_roms::demo();
//! assert_eq!(rom.len(), nestor_roms::ROM_SIZE);
//! assert_eq!(rom[0xFFF0], 0xEA); // jmp far F000:0000
//! ```

/// Size of every image: 64 KiB.
pub const ROM_SIZE: usize = 0x1_0000;

/// Offset of the reset vector in an image (physical 0xFFFF0).
pub const RESET_VECTOR_OFFSET: usize = 0xFFF0;

static DEMO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo.rom"));
static BENCH_INT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_int.rom"));
static BENCH_STRING: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_string.rom"));
static BENCH_INT64: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_int64.rom"));
static BENCH_SSE64: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_sse64.rom"));
static TETRIS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tetris.rom"));
static MOUSE_PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mouse_probe.rom"));

pub mod tetris_layout;

/// The falling-blocks game (VGA mode 13h, keyboard on IRQ1, PC speaker): runs until the
/// machine is switched off; [`tetris_layout`] says where it draws. Source: `src/tetris.rs`.
#[must_use]
pub fn tetris() -> &'static [u8] {
    TETRIS
}

/// The mouse probe: enables the PS/2 mouse through the i8042 (0xA8, 0xD4 0xF4), prints
/// "mouse ready", then "packet HH HH HH" for every packet IRQ12 brings, on port 0xE9 and
/// COM1. Source: `src/programs/mouse_probe.rs`.
#[must_use]
pub fn mouse_probe() -> &'static [u8] {
    MOUSE_PROBE
}

/// The demo ROM. It prints exactly [`DEMO_EXPECTED_SERIAL`] on COM1, then powers off.
#[must_use]
pub fn demo() -> &'static [u8] {
    DEMO
}

/// The integer benchmark ROM: [`BENCH_INT_INSNS`] instructions, then
/// [`BENCH_INT_EXPECTED_SERIAL`] on COM1 and power-off.
#[must_use]
pub fn bench_int() -> &'static [u8] {
    BENCH_INT
}

/// The string/memory benchmark ROM: [`BENCH_STRING_INSNS`] instructions, then
/// [`BENCH_STRING_EXPECTED_SERIAL`] on COM1 and power-off.
#[must_use]
pub fn bench_string() -> &'static [u8] {
    BENCH_STRING
}

/// Everything the demo ROM writes to COM1, byte for byte:
///
/// ```text
/// Nestor demo ROM: alive
/// real mode: COM1 ready, entering 32-bit protected mode
/// protected mode: flat 4 GiB segments loaded
/// sieve: 168 primes below 1000, sum 76127 (0x0001295F), largest 997
/// crc32("123456789") = 0xCBF43926
/// bye
/// ```
///
/// Every line ends in "\r\n". The first two lines are printed in real mode, the rest in
/// 32-bit protected mode. 168, 76127 (= 0x1295F) and 997 are the number, sum and largest of
/// the primes below 1000; 0xCBF43926 is the standard CRC-32 check value.
pub const DEMO_EXPECTED_SERIAL: &str = "Nestor demo ROM: alive\r\n\
real mode: COM1 ready, entering 32-bit protected mode\r\n\
protected mode: flat 4 GiB segments loaded\r\n\
sieve: 168 primes below 1000, sum 76127 (0x0001295F), largest 997\r\n\
crc32(\"123456789\") = 0xCBF43926\r\n\
bye\r\n";

/// Everything the integer benchmark writes to COM1.
pub const BENCH_INT_EXPECTED_SERIAL: &str = "bench-int done\r\n";

/// Everything the string benchmark writes to COM1 (when its self-check passes).
pub const BENCH_STRING_EXPECTED_SERIAL: &str = "bench-string done\r\n";

/// Instructions [`bench_int`] executes from the reset vector up to and including its last
/// `OUT` (the final byte of "Shutdown" to port 0x8900).
///
/// ```text
///   reset stub (jmp far F000:0000)             1
/// + real mode, straight line                  41  = 7 start-up + 21 COM1 init (7 × mov dx,
///                                                    mov al, out) + 13 GDT (6 dword stores,
///                                                    2 GDTR stores, lgdt), CR0.PE (3), far jmp
/// + 32-bit entry and set-up                   12  = 7 (mov eax, 5 segment loads, mov esp)
///                                                    + 5 (four register seeds, mov ebp)
/// + OUTER × (3 + INNER × 10)         200_000_600  = 200 × (3 + 100_000 × 10); the inner body
///                                                    is add, xor, rol, mov, shr, add, xor,
///                                                    sub, dec, jnz; the 3 are mov ecx, dec ebp,
///                                                    jnz
/// + mov esi, call puts                         2
/// + puts("bench-int done\r\n")               228  = 16 chars × 14 + 4 (see below)
/// + power-off up to the last OUT              21  = 4 (wait for COM1's TEMT: mov dx, in,
///                                                    test, jz) + mov dx + 8 × (mov al, out)
/// = 200_000_905
/// ```
///
/// `puts` costs 5 instructions per character (lodsb, test, jz, call, jmp) plus `putc`'s 9
/// (mov ah, mov dx, in, test, jz, mov al, mov dx, out, ret), and 4 for the NUL (lodsb, test,
/// jz, ret). That assumes every read of COM1's line status register finds what the guest
/// waits for (THRE before each character, TEMT before power-off) at once, as with an
/// instantly transmitting emulated UART; a UART that makes the guest wait (Bochs' models
/// the baud rate) adds 3 instructions (in, test, jz) per extra poll. The generator measures
/// each term on the emitted code, and a unit test checks that it agrees with this constant.
/// Cross-checked under Bochs 2.7: its tick count at the final OUT was this number − 1 plus
/// a multiple of 3 (the polls).
pub const BENCH_INT_INSNS: u64 = 200_000_905;

/// Instructions [`bench_string`] executes from the reset vector up to and including its last
/// `OUT`, counting each iteration of a REP-prefixed string instruction as one instruction
/// (as Bochs counts them; none of them runs with ECX = 0 here).
///
/// ```text
///   reset stub                                 1
/// + real mode, straight line                  41  (as for BENCH_INT_INSNS)
/// + 32-bit entry and set-up                    8  = 7 + mov ebp
/// + OUTER × per_trip                 200_007_288  = 4068 × 49_166, where per_trip =
///                                                    14 (12 movs/jne, dec ebp, jnz)
///                                                  + 4096 (rep stosd, 16 KiB)
///                                                  + 4096 (rep movsd, 16 KiB)
///                                                  + 16384 (repe cmpsb, 16 KiB, all equal)
///                                                  + 4096 × 6 (read-modify-write loop)
/// + mov esi, call puts                         2
/// + puts("bench-string done\r\n")            270  = 19 chars × 14 + 4
/// + power-off up to the last OUT              21
/// = 200_007_631
/// ```
///
/// The same UART assumption as for [`BENCH_INT_INSNS`] applies. Note that an instruction
/// hook in QEMU/Unicorn fires once more per REP instruction (for the final ECX = 0 check),
/// so such a tracer reports 3 × 4068 = 12_204 more; Bochs agrees with this constant.
pub const BENCH_STRING_INSNS: u64 = 200_007_631;

/// The 64-bit integer benchmark ROM (needs an x86-64 CPU model): [`BENCH_INT64_INSNS`]
/// instructions, then [`BENCH_INT64_EXPECTED_SERIAL`] on COM1 and power-off.
#[must_use]
pub fn bench_int64() -> &'static [u8] {
    BENCH_INT64
}

/// The 64-bit SSE benchmark ROM (needs an x86-64 CPU model): [`BENCH_SSE64_INSNS`]
/// instructions, then [`BENCH_SSE64_EXPECTED_SERIAL`] on COM1 and power-off.
#[must_use]
pub fn bench_sse64() -> &'static [u8] {
    BENCH_SSE64
}

/// Everything the 64-bit integer benchmark writes to COM1.
pub const BENCH_INT64_EXPECTED_SERIAL: &str = "bench-int64 done\r\n";

/// Everything the 64-bit SSE benchmark writes to COM1.
pub const BENCH_SSE64_EXPECTED_SERIAL: &str = "bench-sse64 done\r\n";

/// Instructions [`bench_int64`] executes from the reset vector up to and including its last
/// `OUT`:
///
/// ```text
///   reset stub                                 1
/// + real mode, straight line                  41  (as for BENCH_INT_INSNS)
/// + 32-bit entry and long-mode switch         29  = 7 (segments, ESP) + 6 page-table
///                                                    stores + 2 descriptor stores + GDTR
///                                                    limit + lgdt + 2 (CR4) + 2 (CR3)
///                                                    + 4 (rdmsr/wrmsr EFER.LME) + 3 (CR0.PG)
///                                                    + far jump to the 64-bit segment
/// + 64-bit set-up                              5  = 4 register seeds + mov ebp
/// + OUTER × (3 + INNER × 10)         200_000_600  = 200 × (3 + 100_000 × 10); the inner body
///                                                    is add, xor, rol, mov, shr, add, xor,
///                                                    sub (64-bit registers, R8/R9 among
///                                                    them), dec, jnz
/// + mov esi, call puts                         2
/// + puts("bench-int64 done\r\n")             256  = 18 chars × 14 + 4
/// + power-off up to the last OUT              21
/// = 200_000_955
/// ```
///
/// The UART assumption of [`BENCH_INT_INSNS`] applies; the generator measures each term on
/// the emitted code and a unit test checks this constant against it.
pub const BENCH_INT64_INSNS: u64 = 200_000_955;

/// Instructions [`bench_sse64`] executes, counted as for [`BENCH_INT64_INSNS`] but with 13
/// set-up instructions (XMM seeds through MOVQ/MOVD/PSHUFD/MOVDQA, mov ebp) and an inner body
/// of paddd, pxor, movdqa, psrlq, paddq, pshufd, addps, mulps, dec, jnz:
/// 1 + 41 + 29 + 13 + 200_000_600 + 2 + 256 + 21 = 200_000_963.
pub const BENCH_SSE64_INSNS: u64 = 200_000_963;

/// One guest program with what a test needs to check a run of it.
#[derive(Clone, Copy, Debug)]
pub struct GuestRom {
    /// Short name, e.g. "demo".
    pub name: &'static str,
    /// The 64 KiB image.
    pub image: &'static [u8],
    /// Exactly what it writes to COM1 before powering off.
    pub expected_serial: &'static str,
    /// Instructions from reset to the last `OUT`, for the benchmarks.
    pub insns: Option<u64>,
}

/// All guest programs of this crate.
#[must_use]
pub fn all() -> [GuestRom; 3] {
    [
        GuestRom {
            name: "demo",
            image: demo(),
            expected_serial: DEMO_EXPECTED_SERIAL,
            insns: None,
        },
        GuestRom {
            name: "bench_int",
            image: bench_int(),
            expected_serial: BENCH_INT_EXPECTED_SERIAL,
            insns: Some(BENCH_INT_INSNS),
        },
        GuestRom {
            name: "bench_string",
            image: bench_string(),
            expected_serial: BENCH_STRING_EXPECTED_SERIAL,
            insns: Some(BENCH_STRING_INSNS),
        },
    ]
}

#[cfg(test)]
mod tests;
