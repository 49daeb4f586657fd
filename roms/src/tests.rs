//! Checks of the images: size, reset vector, determinism, the instruction-count constants,
//! and a disassembly that must decode cleanly (run with `--nocapture` to read it).

use iced_x86::{Code, Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};

use super::*;

/// The generator sources, compiled again here to re-assemble the images.
#[allow(dead_code)]
#[path = "programs/mod.rs"]
mod programs;

fn decode_at(image: &[u8], bitness: u32, offset: usize, ip: u64) -> Instruction {
    let mut decoder = Decoder::with_ip(bitness, &image[offset..], ip, DecoderOptions::NONE);
    decoder.decode()
}

#[test]
fn images_are_64_kib() {
    for rom in all() {
        assert_eq!(rom.image.len(), ROM_SIZE, "{}", rom.name);
        assert_eq!(rom.image.len(), 65536, "{}", rom.name);
    }
}

#[test]
fn reset_vector_is_far_jump_into_f000() {
    for rom in all() {
        assert_eq!(rom.image[RESET_VECTOR_OFFSET], 0xEA, "{}: opcode", rom.name);
        let insn = decode_at(rom.image, 16, RESET_VECTOR_OFFSET, 0xFFF0);
        assert_eq!(insn.code(), Code::Jmp_ptr1616, "{}", rom.name);
        assert_eq!(insn.far_branch_selector(), 0xF000, "{}", rom.name);
        let target = insn.far_branch16() as usize;
        assert_eq!(target, 0, "{}: entry offset", rom.name);
        // The target is real code: it starts with CLI.
        assert_eq!(rom.image[target], 0xFA, "{}: first instruction", rom.name);
    }
}

#[test]
fn images_are_deterministic() {
    let built = [
        demo(),
        bench_int(),
        bench_string(),
        tetris(),
        bench_int64(),
        bench_sse64(),
        mouse_probe(),
    ];
    assert_eq!(built.len(), programs::ALL.len());
    for ((name, build), image) in programs::ALL.iter().zip(built) {
        let first = build().expect("assemble");
        let second = build().expect("assemble");
        assert_eq!(first.image, second.image, "{name}: two builds differ");
        assert_eq!(
            first.image, image,
            "{name}: differs from the image built by build.rs"
        );
    }
}

#[test]
fn instruction_counts_match_the_generated_code() {
    let measured: Vec<Option<u64>> = programs::ALL
        .iter()
        .map(|(_, build)| build().expect("assemble").insns)
        .collect();
    assert_eq!(
        measured,
        [
            None,
            Some(BENCH_INT_INSNS),
            Some(BENCH_STRING_INSNS),
            None,
            Some(BENCH_INT64_INSNS),
            Some(BENCH_SSE64_INSNS),
            None
        ]
    );
    for insns in [
        BENCH_INT_INSNS,
        BENCH_STRING_INSNS,
        BENCH_INT64_INSNS,
        BENCH_SSE64_INSNS,
    ] {
        assert!(
            (190_000_000..210_000_000).contains(&insns),
            "{insns} is not ~200 M"
        );
    }
}

/// Decodes `len` bytes at image `offset` as `bitness`-bit code at address `ip`, fails on an
/// invalid instruction, and returns the listing.
fn disassemble(
    image: &[u8],
    bitness: u32,
    offset: usize,
    ip: u64,
    len: usize,
) -> (Vec<Instruction>, String) {
    let mut decoder = Decoder::with_ip(
        bitness,
        &image[offset..offset + len],
        ip,
        DecoderOptions::NONE,
    );
    let mut formatter = IntelFormatter::new();
    let mut listing = String::new();
    let mut insns = Vec::new();
    for insn in &mut decoder {
        assert!(
            !insn.is_invalid(),
            "invalid instruction at {:#x}",
            insn.ip()
        );
        let mut text = String::new();
        formatter.format(&insn, &mut text);
        listing.push_str(&format!("{:08X}  {text}\n", insn.ip()));
        insns.push(insn);
    }
    (insns, listing)
}

/// Length of the code in a region: up to the last byte that is not the 0xFF filler.
fn code_len(image: &[u8], start: usize, end: usize) -> usize {
    image[start..end]
        .iter()
        .rposition(|&b| b != 0xFF)
        .map_or(0, |p| p + 1)
}

#[test]
fn code_decodes_and_enters_protected_mode_correctly() {
    for rom in all() {
        let len16 = code_len(rom.image, 0, 0x1000);
        let (insns16, listing16) = disassemble(rom.image, 16, 0, 0, len16);
        let len32 = code_len(rom.image, 0x1000, 0x8000);
        let (insns32, listing32) = disassemble(rom.image, 32, 0x1000, 0xF1000, len32);
        println!("==== {} (16-bit, CS base 0xF0000)\n{listing16}", rom.name);
        println!("==== {} (32-bit, linear)\n{listing32}", rom.name);

        let far = insns16
            .iter()
            .find(|i| i.code() == Code::Jmp_ptr1632)
            .expect("jmp far to 32-bit code");
        assert_eq!(far.far_branch_selector(), 0x08, "{}", rom.name);
        assert_eq!(far.far_branch32(), 0xF1000, "{}", rom.name);
        let lgdt = insns16
            .iter()
            .find(|i| i.code() == Code::Lgdt_m1632_16)
            .expect("lgdt");
        assert_eq!(lgdt.memory_displacement32(), 0x820, "{}", rom.name);
        assert_eq!(insns32[0].code(), Code::Mov_r32_imm32, "{}", rom.name);
        assert_eq!(insns32[0].immediate32(), 0x10, "{}", rom.name);

        // The power-off sequence: "Shutdown" to port 0x8900, one byte per OUT DX, AL.
        let bytes: Vec<u8> = insns32
            .windows(2)
            .filter(|w| w[0].code() == Code::Mov_r8_imm8 && w[1].code() == Code::Out_DX_AL)
            .map(|w| w[0].immediate8())
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Shutdown"), "{}: {text}", rom.name);
    }
}

#[test]
fn strings_are_in_the_data_area() {
    let find = |image: &[u8], s: &str| image.windows(s.len()).position(|w| w == s.as_bytes());
    assert!(find(demo(), "Nestor demo ROM: alive\r\n").is_some_and(|p| p >= 0x8000));
    assert!(find(bench_int(), BENCH_INT_EXPECTED_SERIAL).is_some_and(|p| p >= 0x8000));
    assert!(find(bench_string(), BENCH_STRING_EXPECTED_SERIAL).is_some_and(|p| p >= 0x8000));
}
