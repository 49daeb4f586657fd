use super::*;
use crate::modes::{standard_mode, DacPalette};
use nestor_device::testing::FakeContext;

mod dirty;

fn vga() -> (Vga, FakeContext) {
    (Vga::new(VgaConfig::default()), FakeContext::new())
}

fn outb(v: &mut Vga, ctx: &mut FakeContext, port: u16, value: u8) {
    v.io_write(port, 1, u32::from(value), ctx);
}

fn inb(v: &mut Vga, ctx: &mut FakeContext, port: u16) -> u8 {
    v.io_read(port, 1, ctx) as u8
}

fn outw(v: &mut Vga, ctx: &mut FakeContext, port: u16, value: u16) {
    v.io_write(port, 2, u32::from(value), ctx);
}

fn inw(v: &mut Vga, ctx: &mut FakeContext, port: u16) -> u16 {
    v.io_read(port, 2, ctx) as u16
}

fn dispi_write(v: &mut Vga, ctx: &mut FakeContext, index: u16, value: u16) {
    outw(v, ctx, dispi::INDEX_PORT, index);
    outw(v, ctx, dispi::DATA_PORT, value);
}

fn dispi_read(v: &mut Vga, ctx: &mut FakeContext, index: u16) -> u16 {
    outw(v, ctx, dispi::INDEX_PORT, index);
    inw(v, ctx, dispi::DATA_PORT)
}

fn set_palette(v: &mut Vga, ctx: &mut FakeContext, palette: DacPalette) {
    outb(v, ctx, 0x3c8, 0);
    for rgb in palette.colors() {
        for c in rgb {
            outb(v, ctx, 0x3c9, c);
        }
    }
}

/// Program a standard mode through the ports from the register tables, as a BIOS does.
fn set_mode(v: &mut Vga, ctx: &mut FakeContext, number: u8) {
    let mode = standard_mode(number).unwrap();
    inb(v, ctx, 0x3da);
    for (port, value) in mode.regs.port_writes() {
        outb(v, ctx, port, value);
    }
    set_palette(v, ctx, mode.palette);
}

fn seq(v: &mut Vga, ctx: &mut FakeContext, index: u8, value: u8) {
    outw(v, ctx, 0x3c4, u16::from(value) << 8 | u16::from(index));
}

fn gc(v: &mut Vga, ctx: &mut FakeContext, index: u8, value: u8) {
    outw(v, ctx, 0x3ce, u16::from(value) << 8 | u16::from(index));
}

fn crtc(v: &mut Vga, ctx: &mut FakeContext, index: u8, value: u8) {
    outw(v, ctx, 0x3d4, u16::from(value) << 8 | u16::from(index));
}

fn poke(v: &mut Vga, ctx: &mut FakeContext, addr: u64, bytes: &[u8]) {
    v.mmio_write(addr, bytes, ctx);
}

fn peek(v: &mut Vga, ctx: &mut FakeContext, addr: u64) -> u8 {
    let mut b = [0];
    v.mmio_read(addr, &mut b, ctx);
    b[0]
}

/// Load a font into plane 2 as the BIOS does: `glyph(c, line)` gives each row's bits.
fn load_font(v: &mut Vga, ctx: &mut FakeContext, glyph: impl Fn(u8, u8) -> u8) {
    seq(v, ctx, 2, 0x04);
    seq(v, ctx, 4, 0x07);
    gc(v, ctx, 4, 0x02);
    gc(v, ctx, 5, 0x00);
    gc(v, ctx, 6, 0x04);
    for c in 0..=255u8 {
        let rows: Vec<u8> = (0..32).map(|line| glyph(c, line)).collect();
        poke(v, ctx, 0xa0000 + u64::from(c) * 32, &rows);
    }
    seq(v, ctx, 2, 0x03);
    seq(v, ctx, 4, 0x02);
    gc(v, ctx, 4, 0x00);
    gc(v, ctx, 5, 0x10);
    gc(v, ctx, 6, 0x0e);
}

fn rgb6(c: [u8; 3]) -> [u8; 3] {
    c.map(|v| v << 2 | v >> 4)
}

const WHITE: [u8; 3] = [0xff; 3];
const BLACK: [u8; 3] = [0; 3];

#[test]
fn mode_3_text_written_through_b8000_reads_back() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 3);
    assert_eq!(v.mmio_ranges(), vec![MmioRange::new(0xb8000, 0x8000)]);
    let text: Vec<u8> = b"Hello, world".iter().flat_map(|&c| [c, 0x1f]).collect();
    poke(&mut v, &mut ctx, 0xb8000, &text);
    poke(
        &mut v,
        &mut ctx,
        0xb8000 + (2 * 80 + 5) * 2,
        &[0x82, 0x07, 0xc4, 0x07],
    );
    let screen = v.text_screen().unwrap();
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines.len(), 25);
    assert_eq!(lines[0], "Hello, world");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "     é─");
    assert_eq!(peek(&mut v, &mut ctx, 0xb8000), b'H');
    assert_eq!(peek(&mut v, &mut ctx, 0xb8001), 0x1f);
    assert_eq!(
        v.state().vram[4],
        0,
        "odd/even: plane 0 holds characters at even addresses only"
    );
    assert_eq!(v.state().vram[8], b'e');
    assert_eq!(v.state().vram[9], 0x1f, "attribute in plane 1");
}

#[test]
fn text_is_drawn_with_font_attributes_cursor_and_blink() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 3);
    load_font(&mut v, &mut ctx, |c, line| match (c, line) {
        (b'A', 0) | (0xc4, _) => 0xff,
        (b'A', _) => 0x81,
        _ => 0,
    });
    assert_eq!(v.mmio_ranges(), vec![MmioRange::new(0xb8000, 0x8000)]);
    poke(
        &mut v,
        &mut ctx,
        0xb8000,
        &[b'A', 0x1e, b' ', 0x07, b'A', 0x8f, 0xc4, 0x0c],
    );
    crtc(&mut v, &mut ctx, 0x0e, 0);
    crtc(&mut v, &mut ctx, 0x0f, 1);
    assert_eq!(v.cursor_position(), Some((1, 0)));
    let f = v.render();
    assert_eq!((f.width, f.height), (720, 400));
    let yellow = rgb6([0x3f, 0x3f, 0x15]);
    let blue = rgb6([0, 0, 0x2a]);
    let grey = rgb6([0x2a; 3]);
    assert_eq!(f.pixel(0, 0), Some(yellow));
    assert_eq!(f.pixel(0, 1), Some(yellow));
    assert_eq!(f.pixel(1, 1), Some(blue));
    assert_eq!(
        f.pixel(8, 0),
        Some(blue),
        "9th dot is background for letters"
    );
    assert_eq!(f.pixel(9 + 3, 13), Some(grey), "cursor on scan lines 13-14");
    assert_eq!(f.pixel(9 + 3, 12), Some(BLACK));
    assert_eq!(f.pixel(18, 0), Some(WHITE), "blinking char shown");
    let red = rgb6([0x3f, 0x15, 0x15]);
    assert_eq!(
        f.pixel(27 + 8, 5),
        Some(red),
        "line graphics extend to dot 9"
    );
    // 32 frames in: cursor and blinking characters are in their off phase.
    let off = v.render_at(16_683_333 * 48);
    assert_eq!(off.pixel(9 + 3, 13), Some(BLACK));
    assert_eq!(off.pixel(18, 0), Some(BLACK));
    // Clearing PAS blanks the screen.
    inb(&mut v, &mut ctx, 0x3da);
    outb(&mut v, &mut ctx, 0x3c0, 0x00);
    assert!(v.render().rgb.iter().all(|&b| b == 0));
}

#[test]
fn forty_columns_and_fifty_rows() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 1);
    poke(&mut v, &mut ctx, 0xb8000 + 39 * 2, b"Z\x07");
    let screen = v.text_screen().unwrap();
    assert_eq!(screen.lines().next().unwrap().chars().count(), 40);
    assert_eq!(v.render().width, 360);
    set_mode(&mut v, &mut ctx, 3);
    crtc(&mut v, &mut ctx, 0x09, 0x47); // 8 scan lines per row
    poke(&mut v, &mut ctx, 0xb8000 + 49 * 160, b"L\x07");
    let screen = v.text_screen().unwrap();
    assert_eq!(screen.lines().count(), 50);
    assert_eq!(screen.lines().last(), Some("L"));
    assert_eq!(v.render().height, 400);
}

#[test]
fn mode_13h_pixel_takes_its_colour_from_the_dac() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 0x13);
    assert_eq!(v.mmio_ranges(), vec![MmioRange::new(0xa0000, 0x10000)]);
    poke(&mut v, &mut ctx, 0xa0000 + 20 * 320 + 10, &[40]);
    poke(&mut v, &mut ctx, 0xa0000 + 199 * 320 + 319, &[15]);
    let f = v.render();
    assert_eq!((f.width, f.height), (320, 200));
    assert_eq!(f.pixel(10, 20), Some([0xff, 0, 0]));
    assert_eq!(f.pixel(319, 199), Some(WHITE));
    assert_eq!(f.pixel(11, 20), Some(BLACK));
    assert_eq!(peek(&mut v, &mut ctx, 0xa0000 + 20 * 320 + 10), 40);
    let generation = v.generation();
    outb(&mut v, &mut ctx, 0x3c8, 40);
    for c in [0, 0x3f, 0] {
        outb(&mut v, &mut ctx, 0x3c9, c);
    }
    assert_ne!(v.generation(), generation);
    assert_eq!(v.render().pixel(10, 20), Some([0, 0xff, 0]));
}

#[test]
fn unchained_256_colour_mode_x() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 0x13);
    seq(&mut v, &mut ctx, 4, 0x06);
    crtc(&mut v, &mut ctx, 0x14, 0x00);
    crtc(&mut v, &mut ctx, 0x17, 0xe3);
    seq(&mut v, &mut ctx, 2, 0x02); // plane 1 only
    poke(&mut v, &mut ctx, 0xa0000 + 80 + 3, &[15]);
    let f = v.render();
    assert_eq!(f.pixel(3 * 4 + 1, 1), Some(WHITE));
    assert_eq!(f.pixel(3 * 4, 1), Some(BLACK));
}

/// Mode 12h with every data path register set to `(index, value)` pairs, planes cleared.
fn mode_12h_with(v: &mut Vga, ctx: &mut FakeContext, regs: &[(u8, u8)]) {
    set_mode(v, ctx, 0x12);
    for &(i, value) in regs {
        gc(v, ctx, i, value);
    }
}

#[test]
fn planar_write_mode_0_with_set_reset_and_bit_mask() {
    let (mut v, mut ctx) = vga();
    mode_12h_with(&mut v, &mut ctx, &[(0, 0x0c), (1, 0x0f), (8, 0xf0)]);
    peek(&mut v, &mut ctx, 0xa0000); // load the (zero) latches
    poke(&mut v, &mut ctx, 0xa0000, &[0x5a]);
    assert_eq!(&v.state().vram[0..4], &[0x00, 0x00, 0xf0, 0xf0]);
    let f = v.render();
    assert_eq!((f.width, f.height), (640, 480));
    let light_red = rgb6([0x3f, 0x15, 0x15]);
    assert_eq!(f.pixel(0, 0), Some(light_red));
    assert_eq!(f.pixel(4, 0), Some(BLACK));
    // Without set/reset the rotated CPU data goes to the enabled planes, bit mask kept.
    gc(&mut v, &mut ctx, 1, 0x0c);
    gc(&mut v, &mut ctx, 3, 0x04); // rotate right by 4
    peek(&mut v, &mut ctx, 0xa0000);
    poke(&mut v, &mut ctx, 0xa0000, &[0x0a]);
    assert_eq!(&v.state().vram[0..4], &[0xa0, 0xa0, 0xf0, 0xf0]);
    // Read mode 0 returns the selected plane; read mode 1 compares colours.
    gc(&mut v, &mut ctx, 4, 1);
    assert_eq!(peek(&mut v, &mut ctx, 0xa0000), 0xa0);
    gc(&mut v, &mut ctx, 5, 0x08);
    gc(&mut v, &mut ctx, 2, 0x0f);
    gc(&mut v, &mut ctx, 7, 0x0f);
    assert_eq!(peek(&mut v, &mut ctx, 0xa0000), 0xa0, "pixels of colour 15");
    gc(&mut v, &mut ctx, 7, 0x0c);
    assert_eq!(
        peek(&mut v, &mut ctx, 0xa0000),
        0xf0,
        "planes 0-1 don't care"
    );
}

#[test]
fn planar_write_modes_1_2_3_and_logical_functions() {
    let (mut v, mut ctx) = vga();
    mode_12h_with(&mut v, &mut ctx, &[(5, 0x02)]);
    poke(&mut v, &mut ctx, 0xa0000, &[0x05]); // write mode 2: colour 5
    assert_eq!(&v.state().vram[0..4], &[0xff, 0x00, 0xff, 0x00]);
    gc(&mut v, &mut ctx, 5, 0x01); // write mode 1: copy the latches
    peek(&mut v, &mut ctx, 0xa0000);
    poke(&mut v, &mut ctx, 0xa0000 + 1, &[0]);
    assert_eq!(&v.state().vram[4..8], &[0xff, 0x00, 0xff, 0x00]);
    // Write mode 3: set/reset colour through (rotated data AND bit mask).
    gc(&mut v, &mut ctx, 5, 0x03);
    gc(&mut v, &mut ctx, 0, 0x0a);
    gc(&mut v, &mut ctx, 8, 0x3c);
    peek(&mut v, &mut ctx, 0xa0000);
    poke(&mut v, &mut ctx, 0xa0000, &[0x0f]);
    assert_eq!(&v.state().vram[0..4], &[0xf3, 0x0c, 0xf3, 0x0c]);
    // Write mode 0 with XOR against the latches.
    gc(&mut v, &mut ctx, 5, 0x00);
    gc(&mut v, &mut ctx, 3, 0x18);
    gc(&mut v, &mut ctx, 8, 0xff);
    peek(&mut v, &mut ctx, 0xa0000);
    poke(&mut v, &mut ctx, 0xa0000, &[0xff]);
    assert_eq!(&v.state().vram[0..4], &[0x0c, 0xf3, 0x0c, 0xf3]);
    // The map mask keeps planes out of the write.
    seq(&mut v, &mut ctx, 2, 0x01);
    gc(&mut v, &mut ctx, 3, 0x00);
    poke(&mut v, &mut ctx, 0xa0000, &[0x00]);
    assert_eq!(&v.state().vram[0..4], &[0x00, 0xf3, 0x0c, 0xf3]);
}

#[test]
fn cga_modes_interleave_scan_lines() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 4);
    poke(&mut v, &mut ctx, 0xb8000, &[0b11_10_01_00]);
    poke(&mut v, &mut ctx, 0xba000, &[0b11_00_00_00]);
    let f = v.render();
    assert_eq!((f.width, f.height), (320, 200));
    assert_eq!(f.pixel(0, 0), Some(WHITE));
    assert_eq!(
        f.pixel(1, 0),
        Some(rgb6([0x3f, 0x15, 0x3f])),
        "bright magenta"
    );
    assert_eq!(f.pixel(2, 0), Some(rgb6([0x15, 0x3f, 0x3f])), "bright cyan");
    assert_eq!(f.pixel(3, 0), Some(BLACK));
    assert_eq!(f.pixel(0, 1), Some(WHITE), "odd line from 0xBA000");
    set_mode(&mut v, &mut ctx, 6);
    poke(&mut v, &mut ctx, 0xb8000 + 80, &[0x80]);
    let f = v.render();
    assert_eq!((f.width, f.height), (640, 200));
    assert_eq!(f.pixel(0, 2), Some(WHITE));
    assert_eq!(f.pixel(1, 2), Some(BLACK));
}

fn vbe_mode(v: &mut Vga, ctx: &mut FakeContext, x: u16, y: u16, bpp: u16) {
    dispi_write(v, ctx, dispi::INDEX_ENABLE, 0);
    dispi_write(v, ctx, dispi::INDEX_XRES, x);
    dispi_write(v, ctx, dispi::INDEX_YRES, y);
    dispi_write(v, ctx, dispi::INDEX_BPP, bpp);
    dispi_write(
        v,
        ctx,
        dispi::INDEX_ENABLE,
        dispi::ENABLED | dispi::LFB_ENABLED,
    );
}

#[test]
fn vbe_800x600x32_through_the_linear_framebuffer() {
    let (mut v, mut ctx) = vga();
    assert_eq!(dispi_read(&mut v, &mut ctx, dispi::INDEX_ID), dispi::ID5);
    assert_eq!(
        dispi_read(&mut v, &mut ctx, dispi::INDEX_VIDEO_MEMORY_64K),
        256
    );
    dispi_write(&mut v, &mut ctx, dispi::INDEX_ENABLE, dispi::GETCAPS);
    assert_eq!(
        dispi_read(&mut v, &mut ctx, dispi::INDEX_XRES),
        dispi::MAX_XRES
    );
    assert_eq!(dispi_read(&mut v, &mut ctx, dispi::INDEX_BPP), 32);
    let remaps = ctx.remaps;
    vbe_mode(&mut v, &mut ctx, 800, 600, 32);
    assert_eq!(ctx.remaps, remaps + 1);
    assert_eq!(
        v.mmio_ranges(),
        vec![
            MmioRange::new(0xa0000, 0x10000),
            MmioRange::new(DEFAULT_LFB, 16 << 20)
        ]
    );
    assert_eq!(dispi_read(&mut v, &mut ctx, dispi::INDEX_XRES), 800);
    assert_eq!(dispi_read(&mut v, &mut ctx, dispi::INDEX_VIRT_HEIGHT), 5242);
    let at = |x: u64, y: u64| DEFAULT_LFB + (y * 800 + x) * 4;
    poke(&mut v, &mut ctx, at(799, 599), &[0x33, 0x22, 0x11, 0x00]);
    poke(&mut v, &mut ctx, at(0, 0), &0x00ff_8000u32.to_le_bytes());
    let f = v.render();
    assert_eq!((f.width, f.height), (800, 600));
    assert_eq!(f.pixel(799, 599), Some([0x11, 0x22, 0x33]));
    assert_eq!(f.pixel(0, 0), Some([0xff, 0x80, 0x00]));
    let mut back = [0u8; 4];
    v.mmio_read(at(799, 599), &mut back, &mut ctx);
    assert_eq!(back, [0x33, 0x22, 0x11, 0x00]);
    // The banked window shows the same memory 64 KiB at a time.
    dispi_write(&mut v, &mut ctx, dispi::INDEX_BANK, 1);
    poke(&mut v, &mut ctx, 0xa0000, &[0xff, 0xff, 0xff]);
    assert_eq!(v.render().pixel(16384 % 800, 16384 / 800), Some(WHITE));
    // Panning moves the picture.
    dispi_write(&mut v, &mut ctx, dispi::INDEX_Y_OFFSET, 1);
    assert_eq!(v.render().pixel(799, 598), Some([0x11, 0x22, 0x33]));
    dispi_write(&mut v, &mut ctx, dispi::INDEX_ENABLE, 0);
    assert_eq!(ctx.remaps, remaps + 2);
    assert_eq!(v.mmio_ranges().len(), 1);
    assert!(v.is_text_mode());
}

#[test]
fn vbe_packed_depths() {
    let (mut v, mut ctx) = vga();
    for (bpp, bytes, expect) in [
        (8u16, vec![63u8], WHITE),
        (15, 0x7c00u16.to_le_bytes().to_vec(), [0xff, 0, 0]),
        (16, 0x07e0u16.to_le_bytes().to_vec(), [0, 0xff, 0]),
        (24, vec![0xff, 0, 0], [0, 0, 0xff]),
    ] {
        vbe_mode(&mut v, &mut ctx, 320, 200, bpp);
        dispi_write(&mut v, &mut ctx, dispi::INDEX_VIRT_WIDTH, 640);
        dispi_write(&mut v, &mut ctx, dispi::INDEX_X_OFFSET, 2);
        let pixel = (640 + 3) * bytes.len() as u64;
        poke(&mut v, &mut ctx, DEFAULT_LFB + pixel, &bytes);
        let f = v.render();
        assert_eq!(f.pixel(1, 1), Some(expect), "{bpp} bpp");
        assert_eq!(f.pixel(0, 1), Some(BLACK), "{bpp} bpp");
    }
    dispi_write(&mut v, &mut ctx, dispi::INDEX_ENABLE, 0);
    dispi_write(&mut v, &mut ctx, dispi::INDEX_BPP, 7);
    assert_eq!(
        dispi_read(&mut v, &mut ctx, dispi::INDEX_BPP),
        24,
        "7 bpp refused"
    );
}

#[test]
fn memory_map_select_moves_the_window() {
    let (mut v, mut ctx) = vga();
    for (map, window) in [
        (0, (0xa0000, 0x20000)),
        (1, (0xa0000, 0x10000)),
        (2, (0xb0000, 0x8000)),
        (3, (0xb8000, 0x8000)),
    ] {
        let remaps = ctx.remaps;
        gc(&mut v, &mut ctx, 6, map << 2 | 1);
        assert_eq!(v.mmio_ranges(), vec![MmioRange::new(window.0, window.1)]);
        assert_eq!(ctx.remaps, remaps + 1);
    }
    gc(&mut v, &mut ctx, 6, 0x0e);
    assert_eq!(peek(&mut v, &mut ctx, 0xa0000), 0xff, "outside the window");
}

#[test]
fn registers_dac_and_status_ports() {
    let (mut v, mut ctx) = vga();
    // DAC: 6-bit components, auto-increment on read and write, state port.
    outb(&mut v, &mut ctx, 0x3c8, 0xff);
    for c in [0xff, 0x01, 0x02, 0x03, 0x04, 0x05] {
        outb(&mut v, &mut ctx, 0x3c9, c);
    }
    assert_eq!(inb(&mut v, &mut ctx, 0x3c8), 1);
    outb(&mut v, &mut ctx, 0x3c7, 0xff);
    assert_eq!(inb(&mut v, &mut ctx, 0x3c7), 3);
    let got: Vec<u8> = (0..6).map(|_| inb(&mut v, &mut ctx, 0x3c9)).collect();
    assert_eq!(got, [0x3f, 0x01, 0x02, 0x03, 0x04, 0x05]);
    // Attribute flip-flop: reading input status 1 returns it to the index state.
    inb(&mut v, &mut ctx, 0x3da);
    outb(&mut v, &mut ctx, 0x3c0, 0x31);
    outb(&mut v, &mut ctx, 0x3c0, 0x2a);
    assert_eq!(inb(&mut v, &mut ctx, 0x3c0), 0x31);
    assert_eq!(inb(&mut v, &mut ctx, 0x3c1), 0x2a);
    outb(&mut v, &mut ctx, 0x3c0, 0x32);
    inb(&mut v, &mut ctx, 0x3da);
    outb(&mut v, &mut ctx, 0x3c0, 0x20);
    assert_eq!(inb(&mut v, &mut ctx, 0x3c0), 0x20);
    // CRTC protection keeps registers 0-7 except line compare bit 8.
    crtc(&mut v, &mut ctx, 0x11, 0x80);
    crtc(&mut v, &mut ctx, 0x00, 0x12);
    crtc(&mut v, &mut ctx, 0x07, 0xff);
    assert_eq!(v.state().crtc[0], 0x5f);
    assert_eq!(v.state().crtc[7], 0x1f);
    crtc(&mut v, &mut ctx, 0x11, 0x00);
    crtc(&mut v, &mut ctx, 0x00, 0x12);
    outb(&mut v, &mut ctx, 0x3d4, 0x00);
    assert_eq!(inb(&mut v, &mut ctx, 0x3d5), 0x12);
    // Monochrome ports answer only with misc output bit 0 clear.
    assert_eq!(inb(&mut v, &mut ctx, 0x3b5), 0xff);
    assert_eq!(inb(&mut v, &mut ctx, 0x3cc), 0x67);
    outb(&mut v, &mut ctx, 0x3c2, 0x66);
    outb(&mut v, &mut ctx, 0x3b4, 0x00);
    assert_eq!(inb(&mut v, &mut ctx, 0x3b5), 0x12);
    assert_eq!(inb(&mut v, &mut ctx, 0x3da), 0xff);
}

#[test]
fn input_status_1_follows_virtual_time() {
    let (mut v, mut ctx) = vga();
    let line = 16_683_333 / 525;
    let mut at = |t: u64| {
        ctx.now_ns = t;
        inb(&mut v, &mut ctx, 0x3da)
    };
    assert_eq!(at(0), 0x00, "displaying");
    assert_eq!(at(line - 1), 0x01, "horizontal blanking");
    assert_eq!(at(485 * line), 0x01, "vertical blanking");
    assert_eq!(at(495 * line), 0x09, "vertical retrace");
    assert_eq!(at(16_683_333 + 495 * line), 0x09, "every frame");
}

#[test]
fn state_round_trips_with_vram() {
    let (mut v, mut ctx) = vga();
    set_mode(&mut v, &mut ctx, 0x13);
    for i in 0..64000u64 {
        poke(&mut v, &mut ctx, 0xa0000 + i, &[(i * 7) as u8]);
    }
    outb(&mut v, &mut ctx, 0x3c8, 9);
    outb(&mut v, &mut ctx, 0x3c9, 0x11);
    let bytes = v.save().unwrap();
    assert!(bytes.len() < 400_000, "untouched VRAM is not saved");
    let mut copy = Vga::new(VgaConfig::default());
    copy.restore(&bytes).unwrap();
    assert_eq!(copy.state(), v.state());
    assert_eq!(copy.render(), v.render());
    let mut small = Vga::new(VgaConfig {
        vram_bytes: 1 << 20,
        ..VgaConfig::default()
    });
    assert!(small.restore(&bytes).is_err(), "VRAM size differs");
    let bad = VgaState {
        palette: vec![0; 3],
        ..VgaState::power_on(16 << 20, None)
    };
    assert!(copy
        .restore(&save_state(STATE_VERSION, &bad).unwrap())
        .is_err());
}

#[test]
fn restored_adapter_carries_on_mid_sequence() {
    let (mut a, mut ctx_a) = vga();
    mode_12h_with(&mut a, &mut ctx_a, &[(3, 0x18)]);
    poke(&mut a, &mut ctx_a, 0xa0010, &[0x3c]);
    peek(&mut a, &mut ctx_a, 0xa0010); // latches loaded
    outb(&mut a, &mut ctx_a, 0x3c8, 3);
    outb(&mut a, &mut ctx_a, 0x3c9, 0x20); // DAC mid-entry
    inb(&mut a, &mut ctx_a, 0x3da);
    outb(&mut a, &mut ctx_a, 0x3c0, 0x21); // attribute flip-flop at data
    let mut b = Vga::new(VgaConfig::default());
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    for (v, ctx) in [(&mut a, &mut ctx_a), (&mut b, &mut ctx_b)] {
        outb(v, ctx, 0x3c0, 0x2f);
        outb(v, ctx, 0x3c9, 0x21);
        outb(v, ctx, 0x3c9, 0x22);
        poke(v, ctx, 0xa0020, &[0xff]); // XOR with the latches loaded before the save
    }
    assert_eq!(a.state(), b.state());
    assert_eq!(a.render(), b.render());
    assert_eq!(&b.state().vram[0x80..0x84], &[0xc3; 4]);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let (mut v, mut ctx) = (
        Vga::new(VgaConfig {
            vram_bytes: 1 << 20,
            ..VgaConfig::default()
        }),
        FakeContext::new(),
    );
    let ports = [
        0x3c0, 0x3c1, 0x3c4, 0x3c5, 0x3c7, 0x3c8, 0x3c9, 0x3ce, 0x3cf, 0x3d4, 0x3d5,
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..60_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [1, 2, 4][((x >> 4) % 3) as usize];
        match (x >> 8) % 6 {
            0 => v.io_write(
                ports[(x >> 12) as usize % ports.len()],
                size,
                (x >> 20) as u32,
                &mut ctx,
            ),
            1 => dispi_write(&mut v, &mut ctx, (x >> 12) as u16 % 12, (x >> 24) as u16),
            2 => {
                let addr = 0xa0000 + (x >> 16) % 0x20000;
                v.mmio_write(addr, &(x >> 32).to_le_bytes()[..size as usize], &mut ctx);
            }
            3 => {
                let mut buf = [0u8; 8];
                v.mmio_read(DEFAULT_LFB + (x >> 16) % (2 << 20), &mut buf, &mut ctx);
            }
            4 => {
                v.io_read(ports[(x >> 12) as usize % ports.len()], size, &mut ctx);
            }
            _ => {
                v.io_read(0x3da, 1, &mut ctx);
            }
        }
        if i % 4000 == 0 {
            let _ = v.render();
            let _ = v.text_screen();
        }
    }
    let mut copy = Vga::new(v.config());
    copy.restore(&v.save().unwrap()).unwrap();
    assert_eq!(copy.state(), v.state());
}

#[test]
fn plugin_options() {
    let mut config = DeviceConfig::default();
    config.options.insert("vram_mib".into(), "8".into());
    config.options.insert("lfb".into(), "0xfd000000".into());
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "vga");
    assert!(dev.ports().iter().any(|r| r.contains(0x1cf)));
    for (key, bad) in [("vram_mib", "0"), ("lfb", "0xfd000100"), ("colour", "1")] {
        let mut config = DeviceConfig::default();
        config.options.insert(key.into(), bad.into());
        assert!((PLUGIN.create)(&mut config).is_err(), "{key}={bad}");
    }
}

#[test]
fn pci_function_puts_the_framebuffer_in_bar_0() {
    use nestor_device::pci::PciFunction;
    let mut v = Vga::new_pci(VgaConfig::default(), pci::DEFAULT_SLOT).unwrap();
    let mut ctx = FakeContext::new();
    assert!(v.pci().is_some());
    assert_eq!(v.pci_slot(), pci::DEFAULT_SLOT);
    assert_eq!(v.config_read(0x00, 4), 0x1111_1234);
    assert_eq!(v.config_read(0x08, 4) >> 8, 0x03_00_00);
    assert_eq!(
        v.config_read(0x10, 4),
        0xe000_0008,
        "preset at lfb, prefetchable"
    );
    assert_eq!(v.lfb_base(), Some(DEFAULT_LFB));
    assert!(
        v.mmio_ranges()
            .contains(&MmioRange::new(DEFAULT_LFB, 16 << 20)),
        "the BAR decodes with VBE off"
    );
    v.config_write(0x10, 4, 0xffff_ffff, &mut ctx);
    assert_eq!(v.config_read(0x10, 4), 0xff00_0008, "16 MiB");
    v.config_write(0x10, 4, 0xc100_0000, &mut ctx);
    assert!(ctx.remaps >= 1);
    assert_eq!(v.lfb_base(), Some(0xc100_0000));
    vbe_mode(&mut v, &mut ctx, 640, 480, 32);
    poke(&mut v, &mut ctx, 0xc100_0000 + 4, &[0xff, 0xff, 0xff, 0]);
    assert_eq!(v.render().pixel(1, 0), Some(WHITE));
    let remaps = ctx.remaps;
    v.config_write(0x04, 2, 0, &mut ctx);
    assert_eq!(ctx.remaps, remaps + 1);
    assert_eq!(v.lfb_base(), None);
    assert_eq!(v.mmio_ranges().len(), 1, "memory decoding off");
    let mut copy = Vga::new_pci(VgaConfig::default(), pci::DEFAULT_SLOT).unwrap();
    copy.restore(&v.save().unwrap()).unwrap();
    assert_eq!(copy.state(), v.state());
    assert!(Vga::new(VgaConfig::default())
        .restore(&v.save().unwrap())
        .is_err());
    v.reset();
    assert_eq!(v.lfb_base(), Some(DEFAULT_LFB), "reset presets BAR 0 again");
}

#[test]
fn plugin_builds_the_pci_form() {
    let mut config = DeviceConfig::default();
    for (k, val) in [("pci", "1"), ("slot", "5"), ("vram_mib", "12")] {
        config.options.insert(k.into(), val.into());
    }
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    let f = dev.pci().unwrap();
    assert_eq!(f.pci_slot(), nestor_device::pci::PciSlot::new(0, 5, 0));
    f.config_write(0x10, 4, 0xffff_ffff, &mut FakeContext::new());
    assert_eq!(
        f.config_read(0x10, 4),
        0xff00_0008,
        "12 MiB rounded up to 16"
    );
}
