//! Incremental redraws ([`Vga::render_update`]) against full renders.

use super::*;
use crate::dirty::Damage;

/// A small deterministic generator (xorshift64*), so failures replay from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Text3,
    Mode13,
    Planar12,
    Unchained,
    Vbe32,
}

fn set_up(mode: Mode) -> (Vga, FakeContext) {
    let (mut v, mut ctx) = vga();
    match mode {
        Mode::Text3 => {
            set_mode(&mut v, &mut ctx, 3);
            load_font(&mut v, &mut ctx, |c, line| c.wrapping_mul(line | 1) ^ line);
        }
        Mode::Mode13 => set_mode(&mut v, &mut ctx, 0x13),
        Mode::Planar12 => set_mode(&mut v, &mut ctx, 0x12),
        Mode::Unchained => {
            set_mode(&mut v, &mut ctx, 0x13);
            seq(&mut v, &mut ctx, 4, 0x06);
            crtc(&mut v, &mut ctx, 0x14, 0x00);
            crtc(&mut v, &mut ctx, 0x17, 0xe3);
        }
        Mode::Vbe32 => vbe_mode(&mut v, &mut ctx, 160, 100, 32),
    }
    (v, ctx)
}

/// A random CPU write where the mode's picture lives.
fn random_write(v: &mut Vga, ctx: &mut FakeContext, mode: Mode, rng: &mut Rng) {
    let (base, span) = match mode {
        Mode::Text3 => (0xb8000, 0x8000),
        Mode::Vbe32 => (DEFAULT_LFB, 160 * 100 * 4 + 0x1000),
        _ => (0xa0000, 0x1_0000),
    };
    let addr = base + rng.below(span);
    let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.byte()).collect();
    if let Mode::Planar12 | Mode::Unchained = mode {
        // Data path registers change what writes do, not the picture.
        seq(v, ctx, 2, rng.byte() & 0x0f);
        gc(v, ctx, 5, rng.byte() & 0x0b);
        gc(v, ctx, [0, 1, 3, 8][rng.below(4) as usize], rng.byte());
        let mut latch = [0];
        v.mmio_read(base + rng.below(span), &mut latch, ctx);
    }
    poke(v, ctx, addr, &bytes);
}

/// A random change of a register, the DAC or the font.
fn random_register(v: &mut Vga, ctx: &mut FakeContext, mode: Mode, rng: &mut Rng) {
    match rng.below(6) {
        0 => {
            outb(v, ctx, 0x3c8, rng.byte());
            for _ in 0..3 {
                outb(v, ctx, 0x3c9, rng.byte());
            }
        }
        1 if !matches!(mode, Mode::Vbe32) => {
            crtc(v, ctx, 0x0d, rng.byte());
            crtc(v, ctx, 0x0c, rng.byte() & 0x03);
        }
        2 => {
            inb(v, ctx, 0x3da);
            outb(v, ctx, 0x3c0, 0x20 | rng.byte() & 0x0f);
            outb(v, ctx, 0x3c0, rng.byte() & 0x3f);
        }
        3 => {
            crtc(v, ctx, 0x0e, rng.byte() & 0x07);
            crtc(v, ctx, 0x0f, rng.byte());
        }
        4 => crtc(v, ctx, 0x0a, rng.byte() & 0x2f),
        _ if matches!(mode, Mode::Text3) => {
            // One glyph line in plane 2, then back to text addressing.
            seq(v, ctx, 2, 0x04);
            seq(v, ctx, 4, 0x07);
            gc(v, ctx, 5, 0x00);
            gc(v, ctx, 6, 0x04);
            poke(v, ctx, 0xa0000 + rng.below(0x2000), &[rng.byte()]);
            seq(v, ctx, 2, 0x03);
            seq(v, ctx, 4, 0x02);
            gc(v, ctx, 5, 0x10);
            gc(v, ctx, 6, 0x0e);
        }
        _ => {}
    }
}

#[test]
fn incremental_frames_equal_full_renders() {
    for mode in [
        Mode::Text3,
        Mode::Mode13,
        Mode::Planar12,
        Mode::Unchained,
        Mode::Vbe32,
    ] {
        for seed in 1..=2u64 {
            let (mut v, mut ctx) = set_up(mode);
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut frame = v.render();
            let mut now = 0u64;
            let (mut partial, mut none) = (0, 0);
            for step in 0..250 {
                match rng.below(10) {
                    0 => random_register(&mut v, &mut ctx, mode, &mut rng),
                    1 => now += rng.below(300_000_000),
                    2 => {}
                    _ => random_write(&mut v, &mut ctx, mode, &mut rng),
                }
                match v.render_update(&mut frame, now) {
                    Some(Damage { full: false, .. }) => partial += 1,
                    None => none += 1,
                    Some(_) => {}
                }
                assert!(
                    frame == v.render_at(now),
                    "{mode:?} seed {seed} step {step}: incremental frame differs"
                );
            }
            assert!(partial > 30, "{mode:?}: only {partial} partial redraws");
            assert!(none > 0, "{mode:?}: never nothing to redraw");
        }
    }
}

#[test]
fn mode_13h_write_redraws_only_the_lines_of_its_page() {
    let (mut v, mut ctx) = set_up(Mode::Mode13);
    let mut frame = v.render();
    let first = v.render_update(&mut frame, 0);
    assert_eq!(
        first.map(|d| d.full),
        Some(true),
        "the first update is full"
    );
    assert_eq!(v.render_update(&mut frame, 0), None);
    // Chain-4 offset 5000 is stored at VRAM 20000, in page 4 (plane addresses 4096-5119):
    // lines 4096 / 320 = 12 to 5119 / 320 = 15.
    poke(&mut v, &mut ctx, 0xa0000 + 5000, &[0x0f]);
    let damage = v.render_update(&mut frame, 0);
    assert_eq!(
        damage,
        Some(Damage {
            y: 12,
            height: 4,
            full: false
        })
    );
    assert_eq!(frame.pixel(5000 % 320, 5000 / 320), Some(rgb6([0x3f; 3])));
    assert_eq!(
        v.render_update(&mut frame, 0),
        None,
        "nothing written since"
    );
    // Data path registers alone change nothing on screen.
    gc(&mut v, &mut ctx, 8, 0x0f);
    seq(&mut v, &mut ctx, 2, 0x03);
    assert_eq!(v.render_update(&mut frame, 0), None);
}

#[test]
fn dac_change_redraws_everything() {
    let (mut v, mut ctx) = set_up(Mode::Mode13);
    let mut frame = v.render();
    v.render_update(&mut frame, 0);
    outb(&mut v, &mut ctx, 0x3c8, 0);
    for c in [0x3f, 0, 0] {
        outb(&mut v, &mut ctx, 0x3c9, c);
    }
    assert_eq!(
        v.render_update(&mut frame, 0),
        Some(Damage {
            y: 0,
            height: 200,
            full: true
        })
    );
    assert_eq!(frame.pixel(319, 199), Some([0xff, 0, 0]));
}

#[test]
fn restore_and_vbe_writes_are_tracked() {
    let (mut v, mut ctx) = set_up(Mode::Vbe32);
    let mut frame = v.render();
    v.render_update(&mut frame, 0);
    // Line 50 of 160x100x32 starts at byte 50 * 640 = 32000, in page 7 (28672-32767)
    // with lines 44.8-51.2: lines 44 to 51.
    poke(&mut v, &mut ctx, DEFAULT_LFB + 32000, &[0xff]);
    assert_eq!(
        v.render_update(&mut frame, 0),
        Some(Damage {
            y: 44,
            height: 8,
            full: false
        })
    );
    let saved = v.save().unwrap();
    v.restore(&saved).unwrap();
    assert_eq!(v.render_update(&mut frame, 0).map(|d| d.full), Some(true));
}

/// Render time per refresh: `cargo test -p nestor-vga --release -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; not a check"]
fn render_timings() {
    use std::time::Instant;
    let (mut v13, mut ctx) = set_up(Mode::Mode13);
    let (mut vbe, _) = vga();
    vbe_mode(&mut vbe, &mut ctx, 1024, 768, 32);
    let (mut text, _) = set_up(Mode::Text3);
    for (name, v, addr) in [
        ("text 80x25", &mut text, 0xb8000 + 100),
        ("mode 13h", &mut v13, 0xa0000 + 5000),
        ("VBE 1024x768x32", &mut vbe, DEFAULT_LFB + 1_000_000),
    ] {
        let runs = 20u32;
        let started = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(v.render());
        }
        let full = started.elapsed() / runs;
        let mut frame = v.render();
        v.render_update(&mut frame, 0);
        let started = Instant::now();
        for i in 0..runs {
            poke(v, &mut ctx, addr, &[i as u8]);
            std::hint::black_box(v.render_update(&mut frame, 0));
        }
        let update = started.elapsed() / runs;
        let started = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(v.render_update(&mut frame, 0));
        }
        let idle = started.elapsed() / runs;
        println!("{name}: full render {full:?}, update after a 1-byte write {update:?}, idle update {idle:?}");
    }
}

/// One displayed frame of virtual time (the 59.94 Hz the blink counts in).
const FRAME_NS: u64 = 16_683_333;

fn lines(y: u32, height: u32) -> Option<Damage> {
    Some(Damage {
        y,
        height,
        full: false,
    })
}

#[test]
fn text_cursor_blink_and_glyphs_redraw_only_their_rows() {
    let (mut v, mut ctx) = set_up(Mode::Text3);
    poke(&mut v, &mut ctx, 0xb8000 + (3 * 80 + 10) * 2, &[b'A', 0x07]);
    // A blinking block on row 7; its glyph (0xDB) is in another page than 'A's.
    poke(&mut v, &mut ctx, 0xb8000 + 7 * 80 * 2, &[0xdb, 0x87]);
    crtc(&mut v, &mut ctx, 0x0e, 0);
    crtc(&mut v, &mut ctx, 0x0f, 3 * 80 + 10);
    let mut frame = Frame::default();
    assert_eq!(v.render_update(&mut frame, 0).map(|d| d.full), Some(true));
    assert_eq!(v.render_update(&mut frame, 0), None);
    // Frame 16: the cursor goes off (row 3), the characters still show.
    let t = 16 * FRAME_NS + 1;
    assert_eq!(v.render_update(&mut frame, t), lines(3 * 16, 16));
    assert_eq!(frame, v.render_at(t));
    // Frame 32: the cursor comes back (row 3), blinking characters go (row 7).
    let t = 32 * FRAME_NS + 1;
    assert_eq!(v.render_update(&mut frame, t), lines(3 * 16, 5 * 16));
    assert_eq!(frame, v.render_at(t));
    // The cursor moves from row 3 to row 10.
    crtc(&mut v, &mut ctx, 0x0e, (800 >> 8) as u8);
    crtc(&mut v, &mut ctx, 0x0f, (800 & 0xff) as u8);
    assert_eq!(v.render_update(&mut frame, t), lines(3 * 16, 8 * 16));
    assert_eq!(frame, v.render_at(t));
    // A new glyph for 0xDB in plane 2 redraws row 7 only.
    seq(&mut v, &mut ctx, 2, 0x04);
    seq(&mut v, &mut ctx, 4, 0x07);
    gc(&mut v, &mut ctx, 5, 0x00);
    gc(&mut v, &mut ctx, 6, 0x04);
    poke(&mut v, &mut ctx, 0xa0000 + 0xdb * 32 + 2, &[0x81]);
    seq(&mut v, &mut ctx, 2, 0x03);
    seq(&mut v, &mut ctx, 4, 0x02);
    gc(&mut v, &mut ctx, 5, 0x10);
    gc(&mut v, &mut ctx, 6, 0x0e);
    assert_eq!(v.render_update(&mut frame, t), lines(7 * 16, 16));
    assert_eq!(frame, v.render_at(t));
}
