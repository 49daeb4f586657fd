//! Tests of the ROM image and of the trap protocol (with a fake platform, no CPU).

use crate::call::r;
use crate::services::{frame, layout, status, svc, StubKind, STUBS};
use crate::testing::FakePlatform;
use crate::{rom, rom_layout, Bios, BiosConfig, Platform, TrapResult};
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use nestor_cpu::{CpuState, SegReg, Segment};

fn f_seg(off: u16) -> &'static [u8] {
    &rom()[layout::F_SEG_IMAGE + usize::from(off)..]
}

/// Decodes 16-bit code at F000:`off` up to the first IRET (or HLT not preceded by STI).
fn decode_stub(off: u16, max: usize) -> Vec<Instruction> {
    let mut d = Decoder::with_ip(16, f_seg(off), u64::from(off), DecoderOptions::NONE);
    let mut out: Vec<Instruction> = Vec::new();
    while d.can_decode() && out.len() < max {
        let i = d.decode();
        let after_sti = out.last().is_some_and(|p| p.mnemonic() == Mnemonic::Sti);
        out.push(i);
        if i.mnemonic() == Mnemonic::Iret || (i.mnemonic() == Mnemonic::Hlt && !after_sti) {
            break;
        }
    }
    out
}

#[test]
fn image_has_reset_vector_date_and_model() {
    let img = rom();
    assert_eq!(img.len(), layout::ROM_SIZE);
    let reset = f_seg(layout::F_RESET);
    assert_eq!(&reset[..5], &[0xEA, 0x5B, 0xE0, 0x00, 0xF0]);
    assert_eq!(&f_seg(layout::F_DATE)[..8], layout::DATE);
    assert_eq!(f_seg(layout::F_MODEL)[0], layout::MODEL_BYTE);
    assert_eq!(f_seg(layout::F_IRET)[0], 0xCF);
}

#[test]
fn every_stub_traps_with_its_service_number() {
    for stub in STUBS.iter().filter(|s| s.kind != StubKind::Pm32) {
        let off = rom_layout::STUB_OFFSETS
            .iter()
            .find(|(s, _)| *s == stub.service)
            .map(|(_, o)| *o)
            .unwrap();
        let code = decode_stub(off, 40);
        assert_eq!(
            code[0].code(),
            Code::Push_r32,
            "stub {:#x} saves EDX",
            stub.service
        );
        assert_eq!(code[0].op0_register(), Register::EDX);
        assert_eq!(code[1].op0_register(), Register::EAX);
        let out = code
            .iter()
            .position(|i| i.code() == Code::Out_DX_AL)
            .expect("an OUT DX, AL");
        assert_eq!(code[out - 1].code(), Code::Mov_r8_imm8);
        assert_eq!(code[out - 1].immediate8(), stub.service);
        assert_eq!(code[out - 2].immediate16(), crate::services::TRAP_PORT);
        let last = code.last().unwrap().mnemonic();
        let expected = if stub.kind == StubKind::BootFailed {
            Mnemonic::Hlt
        } else {
            Mnemonic::Iret
        };
        assert_eq!(last, expected, "stub {:#x} ends", stub.service);
    }
}

#[test]
fn fixed_entry_points_jump_to_their_stubs() {
    let stub = |s: u8| {
        rom_layout::STUB_OFFSETS
            .iter()
            .find(|(n, _)| *n == s)
            .unwrap()
            .1
    };
    for (at, service) in [
        (layout::F_INT10, svc::VIDEO),
        (layout::F_INT13, svc::DISK),
        (layout::F_INT15, svc::SYSTEM),
        (layout::F_INT16, svc::KEYBOARD),
        (layout::F_INT19, svc::BOOT),
        (layout::F_INT1A, svc::CLOCK),
        (layout::F_INT08, svc::IRQ0_TIMER),
    ] {
        let i = decode_stub(at, 1)[0];
        assert_eq!(i.code(), Code::Jmp_rel16);
        assert_eq!(i.near_branch16(), stub(service), "entry at F000:{at:04X}");
    }
    let post = decode_stub(layout::F_POST, 1)[0];
    assert_eq!(post.near_branch16(), rom_layout::F_POST_CODE);
}

#[test]
fn bios32_directory_and_pci_entry() {
    let dir = &f_seg(rom_layout::F_BIOS32)[..16];
    assert_eq!(&dir[..4], b"_32_");
    assert_eq!(dir.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    let entry = u32::from_le_bytes([dir[4], dir[5], dir[6], dir[7]]);
    assert!((0xF_0000..0x10_0000).contains(&entry));
    let mut d = Decoder::with_ip(
        32,
        f_seg((entry - 0xF_0000) as u16),
        u64::from(entry),
        DecoderOptions::NONE,
    );
    let first = d.decode();
    assert_eq!(first.mnemonic(), Mnemonic::Cmp);
    assert_eq!(first.immediate32(), 0x4943_5024, "$PCI");
    // The offset BIOS32 returns in EDX is the PCI entry.
    let mov_edx = (0..6)
        .map(|_| d.decode())
        .find(|i| i.op0_register() == Register::EDX)
        .unwrap();
    assert_eq!(mov_edx.op1_kind(), OpKind::Immediate32);
    assert_eq!(mov_edx.immediate32(), u32::from(rom_layout::F_PCI32_ENTRY));
}

#[test]
fn no_option_rom_signature_inside_the_bios() {
    let img = rom();
    for at in (0..0x1_0000).step_by(0x800) {
        assert_ne!(&img[at..at + 2], &[0x55, 0xAA], "image offset {at:#x}");
    }
}

#[test]
fn fonts_have_every_printable_character() {
    let glyph16 = |c: u8| &f_seg(layout::F_FONT_8X16)[usize::from(c) * 16..][..16];
    let glyph8 = |c: u8| &f_seg(layout::F_FONT_8X8)[usize::from(c) * 8..][..8];
    for c in 0x21..=0x7Eu8 {
        assert!(glyph16(c).iter().any(|r| *r != 0), "8x16 {:?}", c as char);
        assert!(glyph8(c).iter().any(|r| *r != 0), "8x8 {:?}", c as char);
    }
    assert!(glyph16(b' ').iter().all(|r| *r == 0));
    let mut seen = std::collections::HashSet::new();
    for c in (b'A'..=b'Z').chain(b'a'..=b'z').chain(b'0'..=b'9') {
        assert!(
            seen.insert(glyph16(c).to_vec()),
            "{:?} looks like another glyph",
            c as char
        );
    }
    // Box drawing reaches the cell edges it should: ─ left and right, │ top and bottom.
    let h = glyph16(0xC4);
    assert!(h.contains(&0xFF));
    let v = glyph16(0xB3);
    assert!(v[0] != 0 && v[15] != 0);
    assert_eq!(glyph16(0xDB), &[0xFF; 16]);
    // The low half of the 8x8 font also sits at the PC/AT address.
    assert_eq!(
        &f_seg(layout::F_FONT_8X8_LOW)[..0x400],
        &f_seg(layout::F_FONT_8X8)[..0x400]
    );
}

/// A real-mode CPU in the middle of a stub: frame at 0000:0FF2 with the caller's EAX/EDX.
fn cpu_at_trap(p: &mut FakePlatform, eax: u32, edx: u32, flags: u16) -> CpuState {
    let mut cpu = CpuState::power_on();
    for s in SegReg::ALL {
        cpu.seg[s as usize] = Segment::real_mode(0);
    }
    cpu.seg[SegReg::Cs as usize] = Segment::real_mode(0xF000);
    let sp = 0x1000 - frame::SIZE;
    cpu.gpr[r::SP] = sp;
    cpu.gpr[r::AX] = 0x99;
    let mut f = Vec::new();
    f.extend_from_slice(&eax.to_le_bytes());
    f.extend_from_slice(&edx.to_le_bytes());
    f.extend_from_slice(&0x1234u16.to_le_bytes());
    f.extend_from_slice(&0x0000u16.to_le_bytes());
    f.extend_from_slice(&flags.to_le_bytes());
    p.write_mem(sp, &f);
    cpu
}

fn frame_word(p: &mut FakePlatform, at: u64) -> u32 {
    crate::guest::rd32(p, 0x1000 - frame::SIZE + at)
}

#[test]
fn trap_returns_results_through_the_frame() {
    let mut p = FakePlatform::new(0x10_0000);
    crate::guest::wr16(&mut p, crate::bda::EQUIPMENT, 0x4227);
    let mut cpu = cpu_at_trap(&mut p, 0xABCD_0000, 0x1111_2222, 0x0202);
    let mut bios = Bios::new(BiosConfig::default());
    assert_eq!(
        bios.handle_trap(svc::EQUIPMENT, &mut cpu, &mut p),
        TrapResult::Continue
    );
    assert_eq!(cpu.gpr[r::AX] as u8, status::DONE);
    assert_eq!(frame_word(&mut p, frame::EAX), 0xABCD_4227);
    assert_eq!(frame_word(&mut p, frame::EDX), 0x1111_2222);
}

#[test]
fn keyboard_read_waits_until_a_key_is_there() {
    let mut p = FakePlatform::new(0x10_0000);
    crate::keyboard::init_bda(&mut p);
    let mut bios = Bios::new(BiosConfig::default());
    let mut cpu = cpu_at_trap(&mut p, 0x0000, 0, 0x0202);
    bios.handle_trap(svc::KEYBOARD, &mut cpu, &mut p);
    assert_eq!(cpu.gpr[r::AX] as u8, status::WAIT_IRQ);
    assert_eq!(
        frame_word(&mut p, frame::EAX),
        0,
        "frame untouched while waiting"
    );
    crate::keyboard::enqueue(&mut p, 0x1E61);
    bios.handle_trap(svc::KEYBOARD, &mut cpu, &mut p);
    assert_eq!(cpu.gpr[r::AX] as u8, status::DONE);
    assert_eq!(frame_word(&mut p, frame::EAX), 0x1E61);
    // AH=01h with an empty buffer: ZF set in the returned FLAGS.
    let mut cpu = cpu_at_trap(&mut p, 0x0100, 0, 0x0202);
    bios.handle_trap(svc::KEYBOARD, &mut cpu, &mut p);
    assert_ne!(frame_word(&mut p, frame::FLAGS) & 0x40, 0);
}

#[test]
fn e820_through_the_trap() {
    let mut p = FakePlatform::new(0x10_0000);
    let mut bios = Bios::from_state(crate::BiosState {
        low_ram_end: 64 << 20,
        ..Default::default()
    });
    let mut ebx = 0u32;
    let mut entries = Vec::new();
    loop {
        let mut cpu = cpu_at_trap(&mut p, 0xE820, 0x534D_4150, 0x0202);
        cpu.gpr[r::BX] = u64::from(ebx);
        cpu.gpr[r::CX] = 24;
        cpu.gpr[r::DI] = 0x2000;
        bios.handle_trap(svc::SYSTEM, &mut cpu, &mut p);
        assert_eq!(frame_word(&mut p, frame::EAX), 0x534D_4150);
        assert_eq!(frame_word(&mut p, frame::FLAGS) & 1, 0, "CF clear");
        let base = u64::from(crate::guest::rd32(&mut p, 0x2000))
            | u64::from(crate::guest::rd32(&mut p, 0x2004)) << 32;
        entries.push(base);
        ebx = cpu.gpr[r::BX] as u32;
        if ebx == 0 {
            break;
        }
    }
    assert_eq!(entries, vec![0, 0x9_FC00, 0xE_0000, 0x10_0000, 0xFFFE_0000]);
}

#[test]
fn teletype_writes_text_memory_and_mirrors_to_com1() {
    let mut p = FakePlatform::new(0x10_0000);
    let mut st = crate::BiosState {
        serial_mirror: true,
        ..Default::default()
    };
    // The fake VGA ignores register writes; text memory is plain RAM here.
    crate::video::set_mode(&mut st, &mut p, 0x03);
    crate::video::print(&st, &mut p, "Hi\r\n");
    assert_eq!(&p.mem[0xB_8000..0xB_8004], &[b'H', 0x07, b'i', 0x07]);
    assert_eq!(p.written(0x3F8), b"Hi\r\n");
    assert_eq!(crate::video::draw::cursor(&mut p, 0), (1, 0));
    for _ in 0..30 {
        crate::video::print(&st, &mut p, "x\r\n");
    }
    assert_eq!(
        crate::video::draw::cursor(&mut p, 0),
        (24, 0),
        "scrolled, not past the end"
    );
    assert_eq!(p.mem[0xB_8000 + 23 * 160], b'x');
}

/// xorshift64*: a deterministic stream for the robustness test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Random registers, stacks, memory and port values into every service: nothing panics
/// (guest values never crash the host), and every trap that returns leaves a valid status.
#[test]
fn random_calls_never_panic() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let services: Vec<u8> = STUBS
        .iter()
        .map(|s| s.service)
        .chain([0x00, 0x42, 0xFF])
        .collect();
    let mut p = FakePlatform::new(0x10_0000);
    for b in p.mem.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut bios = Bios::new(BiosConfig::default());
    for round in 0..20_000 {
        let service = services[(rng.next() % services.len() as u64) as usize];
        // Ports answer with random bytes for a while.
        for port in [
            0x1F7u16, 0x3F6, 0x1F0, 0x177, 0x376, 0x3F4, 0x3F5, 0x60, 0x64, 0x71, 0xCFC, 0x1CF,
            0x3DA,
        ] {
            let q = p.inputs.entry(port).or_default();
            q.clear();
            for _ in 0..8 {
                q.push_back(rng.next() as u32);
            }
        }
        // Half the calls use a low function number in AH, where most services have theirs.
        let mut eax = rng.next() as u32;
        if round % 2 == 0 {
            eax = (eax & 0xFFFF_00FF) | ((eax >> 24) % 0x50) << 8;
        }
        if round % 11 == 0 {
            eax = 0xE820 | (eax & 0xFFFF_0000);
        }
        let mut cpu = cpu_at_trap(&mut p, eax, rng.next() as u32, rng.next() as u16);
        for reg in [r::BX, r::CX, r::SI, r::DI, r::BP] {
            cpu.gpr[reg] = rng.next();
        }
        for s in [SegReg::Es, SegReg::Ds] {
            cpu.seg[s as usize] = Segment::real_mode(rng.next() as u16);
        }
        if round % 7 == 0 {
            // A stack at the very top of memory, partly unreadable.
            cpu.gpr[r::SP] = 0xFFFE;
            cpu.seg[SegReg::Ss as usize] = Segment::real_mode(0xFFFF);
        }
        p.now = rng.next() >> 8;
        let jumps = matches!(service, svc::POST | svc::BOOT | svc::PCI32);
        let _ = bios.handle_trap(service, &mut cpu, &mut p);
        let st = cpu.gpr[r::AX] as u8;
        assert!(
            jumps || st <= status::BOOT_FAILED,
            "service {service:#x} status {st}"
        );
        if round % 500 == 0 {
            // The state survives a snapshot round trip at any point.
            let cfg = bincode::config::standard();
            let bytes = bincode::serde::encode_to_vec(bios.state(), cfg).unwrap();
            let (back, _): (crate::BiosState, _) =
                bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
            assert_eq!(&back, bios.state());
        }
    }
}
