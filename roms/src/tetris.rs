//! `tetris`: a falling-blocks game, the desktop demo (`nestor run --demo tetris`).
//!
//! A 64 KiB firmware image with no BIOS under it, all in 16-bit real mode:
//!
//! 1. Copies its tables (piece shapes, digit font) from the ROM to RAM, points IVT entries
//!    8 and 9 at its IRQ0/IRQ1 handlers, programs both 8259s (IRQ0-7 at vector 8, only IRQ0
//!    and IRQ1 unmasked) and PIT channel 0 at 100 Hz.
//! 2. Sets VGA mode 13h by writing the standard register values itself, loads its palette
//!    and draws the well ([`super::tetris_layout`] says where everything is).
//! 3. Loops on HLT: IRQ1 queues the bytes of port 0x60 (set 1, as the 8042 translates them),
//!    IRQ0 counts ticks; the main loop moves the piece on keys (arrows or WASD, Space drops,
//!    Enter restarts after the game is over) and lets it fall every `FALL_TICKS` ticks.
//! 4. Sounds: PIT channel 2 square wave gated through port 0x61, switched off by IRQ0.
//!
//! The pieces come from a 16-bit LCG with a fixed seed, so a run is a function of the key
//! presses and the ticks at which they arrive: deterministic under `--deterministic`.

use iced_x86::code_asm::*;

use super::common;
use super::tetris_draw::{emit_digits, emit_drawing, emit_static_screen};
use super::tetris_layout::*;
use super::{GenError, GenResult, Program};

// RAM (DS = 0): variables, the key queue, the well and the tables copied from the ROM.
pub(super) const TICKS: u32 = 0x500;
pub(super) const KQ_HEAD: u32 = 0x502;
pub(super) const KQ_TAIL: u32 = 0x503;
pub(super) const PIECE: u32 = 0x504;
pub(super) const ROT: u32 = 0x506;
pub(super) const PX: u32 = 0x508;
pub(super) const PY: u32 = 0x50A;
pub(super) const NEXT: u32 = 0x50C;
pub(super) const SEED: u32 = 0x50E;
pub(super) const SCORE: u32 = SCORE_RAM;
pub(super) const FALL_AT: u32 = 0x512;
pub(super) const SOUND_LEFT: u32 = 0x514;
pub(super) const GAME_OVER: u32 = 0x516;
pub(super) const COUNTER: u32 = 0x518;
pub(super) const KQ_BUF: u32 = 0x520;
pub(super) const BOARD: u32 = BOARD_RAM;
pub(super) const TABLES: u32 = 0x1000;
pub(super) const SHAPES: u32 = TABLES;
pub(super) const FONT: u32 = TABLES + 7 * 4 * 2;

/// The LCG's seed at power-on.
const INITIAL_SEED: u32 = 0x2B1D;
/// Set 1 make codes the game reacts to.
const KEYS_LEFT: [u32; 2] = [0x4B, 0x1E];
const KEYS_RIGHT: [u32; 2] = [0x4D, 0x20];
const KEYS_ROTATE: [u32; 2] = [0x48, 0x11];
const KEYS_DOWN: [u32; 2] = [0x50, 0x1F];
const KEY_SPACE: u32 = 0x39;
const KEY_ENTER: u32 = 0x1C;
/// PIT channel 2 divisors and lengths (ticks) of the sounds.
const SOUND_LOCK: (u32, u32) = (4561, 3); // ~262 Hz
const SOUND_LINE: (u32, u32) = (1140, 12); // ~1047 Hz
const SOUND_OVER: (u32, u32) = (9121, 40); // ~131 Hz

/// The seven tetrominoes in their spawn orientation (I, O, T, S, Z, J, L) and whether they
/// turn in a 4x4 box (I), not at all (O) or in a 3x3 box.
const PIECES: [(&[&str], u32); 7] = [
    (&["....", "XXXX"], 4),
    (&[".XX.", ".XX."], 0),
    (&[".X.", "XXX"], 3),
    (&[".XX", "XX."], 3),
    (&["XX.", ".XX"], 3),
    (&["X..", "XXX"], 3),
    (&["..X", "XXX"], 3),
];

/// 3x5 digits, one byte per row, bit 2 = left column.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 2, 2, 2],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Mode 13h as the IBM VGA BIOS sets it: misc output, sequencer, CRTC, graphics controller,
/// attribute controller.
const MODE13_MISC: u8 = 0x63;
const MODE13_SEQ: [u8; 5] = [0x03, 0x01, 0x0F, 0x00, 0x0E];
const MODE13_CRTC: [u8; 25] = [
    0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9C, 0x0E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF,
];
const MODE13_GC: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF];
const MODE13_ATTR: [u8; 21] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
    0x41, 0x00, 0x0F, 0x00, 0x00,
];

/// The 4x4 bit mask (bit 15 = row 0, column 0) of every piece in every rotation.
fn shape_masks() -> [[u16; 4]; 7] {
    let mut masks = [[0u16; 4]; 7];
    for (piece, (rows, size)) in PIECES.iter().enumerate() {
        let mut cells: Vec<(u32, u32)> = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (c, symbol) in row.chars().enumerate() {
                if symbol == 'X' {
                    cells.push((r as u32, c as u32));
                }
            }
        }
        for mask in masks[piece].iter_mut() {
            *mask = cells
                .iter()
                .fold(0, |m, &(r, c)| m | (0x8000 >> (r * 4 + c)));
            if *size > 0 {
                // A quarter turn clockwise inside the piece's box.
                cells = cells.iter().map(|&(r, c)| (c, size - 1 - r)).collect();
            }
        }
    }
    masks
}

/// The tables the game copies to RAM at [`TABLES`].
fn tables() -> Vec<u8> {
    let mut bytes = Vec::new();
    for rotations in shape_masks() {
        for mask in rotations {
            bytes.extend_from_slice(&mask.to_le_bytes());
        }
    }
    for digit in DIGITS {
        bytes.extend_from_slice(&digit);
    }
    bytes
}

/// Labels of the routines.
#[derive(Clone, Copy)]
pub(super) struct Routines {
    pub(super) fits: CodeLabel,
    pub(super) stamp: CodeLabel,
    pub(super) fill_rect: CodeLabel,
    pub(super) render: CodeLabel,
    pub(super) draw_board: CodeLabel,
    pub(super) draw_next: CodeLabel,
    pub(super) draw_score: CodeLabel,
    pub(super) random: CodeLabel,
    pub(super) spawn: CodeLabel,
    pub(super) try_shift: CodeLabel,
    pub(super) rotate: CodeLabel,
    pub(super) step_down: CodeLabel,
    pub(super) hard_drop: CodeLabel,
    pub(super) clear_lines: CodeLabel,
    pub(super) beep: CodeLabel,
    pub(super) new_game: CodeLabel,
    pub(super) get_key: CodeLabel,
    pub(super) irq0: CodeLabel,
    pub(super) irq1: CodeLabel,
}

impl Routines {
    fn new(a: &mut CodeAssembler) -> Self {
        Self {
            fits: a.create_label(),
            stamp: a.create_label(),
            fill_rect: a.create_label(),
            render: a.create_label(),
            draw_board: a.create_label(),
            draw_next: a.create_label(),
            draw_score: a.create_label(),
            random: a.create_label(),
            spawn: a.create_label(),
            try_shift: a.create_label(),
            rotate: a.create_label(),
            step_down: a.create_label(),
            hard_drop: a.create_label(),
            clear_lines: a.create_label(),
            beep: a.create_label(),
            new_game: a.create_label(),
            get_key: a.create_label(),
            irq0: a.create_label(),
            irq1: a.create_label(),
        }
    }
}

pub fn build() -> GenResult<Program> {
    let table_bytes = tables();
    let mut a = CodeAssembler::new(16)?;
    let mut r = Routines::new(&mut a);
    let mut irq0_offset = a.create_label();
    let mut irq1_offset = a.create_label();
    emit_start(&mut a, table_bytes.len() as u32)?;
    // IVT entries 8 and 9: offsets patched from the labels, segment F000.
    a.mov(word_ptr(8 * 4), 0)?;
    a.set_label(&mut irq0_offset)?;
    a.mov(word_ptr(8 * 4 + 2), u32::from(common::ROM_SEGMENT))?;
    a.mov(word_ptr(9 * 4), 0)?;
    a.set_label(&mut irq1_offset)?;
    a.mov(word_ptr(9 * 4 + 2), u32::from(common::ROM_SEGMENT))?;
    emit_pic_pit(&mut a)?;
    emit_mode13(&mut a)?;
    a.mov(word_ptr(SEED), INITIAL_SEED)?;
    a.call(r.new_game)?;
    a.sti()?;
    emit_main_loop(&mut a, r)?;
    // By reference: the IVT patch below reads the handlers' addresses from these labels.
    emit_interrupts(&mut a, &mut r)?;
    emit_piece_logic(&mut a, r)?;
    emit_game_rules(&mut a, r)?;
    emit_drawing(&mut a, r)?;
    emit_digits(&mut a, r)?;
    let result = a.assemble_options(
        0,
        iced_x86::BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let mut code = result.inner.code_buffer.clone();
    // Patch the IVT offsets: the word immediate that ends each `mov word [..], 0`.
    for (patch_after, handler) in [(irq0_offset, r.irq0), (irq1_offset, r.irq1)] {
        let end = result.label_ip(&patch_after)? as usize;
        let target = result.label_ip(&handler)? as u16;
        code[end - 2..end].copy_from_slice(&target.to_le_bytes());
    }
    link(&code, &table_bytes)
}

/// Places the code at image offset 0 (up to the data area) and the tables at the data area.
fn link(code: &[u8], table_bytes: &[u8]) -> GenResult<Program> {
    let mut image = common::link(&[], &[], &common::DataArea::default())?;
    let data = common::DATA_OFFSET as usize;
    if code.len() > data {
        return Err(GenError::Layout(format!(
            "tetris code is {} bytes, overruns {data:#x}",
            code.len()
        )));
    }
    image[..code.len()].copy_from_slice(code);
    image[data..data + table_bytes.len()].copy_from_slice(table_bytes);
    Ok(Program { image, insns: None })
}

/// Segments and stack, the tables copied to RAM, variables cleared.
fn emit_start(a: &mut CodeAssembler, table_len: u32) -> GenResult<()> {
    a.cli()?;
    a.cld()?;
    a.xor(ax, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, common::STACK_TOP)?;
    a.mov(ax, u32::from(common::ROM_SEGMENT))?;
    a.mov(ds, ax)?;
    a.mov(si, common::DATA_OFFSET)?;
    a.mov(di, TABLES)?;
    a.mov(cx, table_len)?;
    a.rep().movsb()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.mov(di, TICKS)?;
    a.mov(cx, (BOARD - TICKS) / 2)?;
    a.rep().stosw()?;
    Ok(())
}

/// Both 8259s (master at vector 8, slave at 0x70, only IRQ0 and IRQ1 unmasked) and PIT
/// channel 0 as a 100 Hz rate generator.
fn emit_pic_pit(a: &mut CodeAssembler) -> GenResult<()> {
    let writes: [(u32, u32); 11] = [
        (0x20, 0x11),
        (0x21, 0x08),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xA0, 0x11),
        (0xA1, 0x70),
        (0xA1, 0x02),
        (0xA1, 0x01),
        (0xA1, 0xFF),
        (0x21, 0xFC),
        (0x43, 0x34),
    ];
    for (port, value) in writes {
        a.mov(al, value)?;
        a.out(port as i32, al)?;
    }
    a.mov(ax, u32::from(PIT_DIVISOR))?;
    a.out(0x40, al)?;
    a.mov(al, ah)?;
    a.out(0x40, al)?;
    // Drop a byte the 8042 may already hold.
    a.in_(al, 0x60)?;
    Ok(())
}

/// `out index; out data` pairs for an indexed VGA register file.
fn emit_indexed(a: &mut CodeAssembler, port: u32, values: &[u8]) -> GenResult<()> {
    a.mov(dx, port)?;
    for (index, &value) in values.iter().enumerate() {
        a.mov(al, index as u32)?;
        a.out(dx, al)?;
        a.inc(dx)?;
        a.mov(al, u32::from(value))?;
        a.out(dx, al)?;
        a.dec(dx)?;
    }
    Ok(())
}

/// VGA mode 13h, the game's palette, a cleared screen (ES = A000 from here on).
fn emit_mode13(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(dx, 0x3C2u32)?;
    a.mov(al, u32::from(MODE13_MISC))?;
    a.out(dx, al)?;
    emit_indexed(a, 0x3C4, &MODE13_SEQ)?;
    // CRTC 0x11 first: clear its protect bit so that registers 0-7 take the new values.
    a.mov(dx, 0x3D4u32)?;
    a.mov(ax, 0x0E11u32)?;
    a.out(dx, al)?;
    a.inc(dx)?;
    a.mov(al, ah)?;
    a.out(dx, al)?;
    emit_indexed(a, 0x3D4, &MODE13_CRTC)?;
    emit_indexed(a, 0x3CE, &MODE13_GC)?;
    a.mov(dx, 0x3DAu32)?;
    a.in_(al, dx)?; // attribute flip-flop to "index"
    a.mov(dx, 0x3C0u32)?;
    for (index, &value) in MODE13_ATTR.iter().enumerate() {
        a.mov(al, index as u32)?;
        a.out(dx, al)?;
        a.mov(al, u32::from(value))?;
        a.out(dx, al)?;
    }
    a.mov(al, 0x20)?; // palette address source: the display reads the palette again
    a.out(dx, al)?;
    a.mov(dx, 0x3C8u32)?;
    a.mov(al, 0)?;
    a.out(dx, al)?;
    a.inc(dx)?;
    for rgb in PALETTE {
        for component in rgb {
            a.mov(al, u32::from(component))?;
            a.out(dx, al)?;
        }
    }
    a.mov(ax, 0xA000u32)?;
    a.mov(es, ax)?;
    Ok(())
}

/// Compares AL with each code and jumps to `target` on a match.
fn emit_dispatch(a: &mut CodeAssembler, codes: &[u32], target: CodeLabel) -> GenResult<()> {
    for &code in codes {
        a.cmp(al, code)?;
        a.je(target)?;
    }
    Ok(())
}

/// HLT, then the queued keys, then gravity.
fn emit_main_loop(a: &mut CodeAssembler, r: Routines) -> GenResult<()> {
    let mut main_loop = a.create_label();
    let mut keys = a.create_label();
    let mut tick = a.create_label();
    let mut over_key = a.create_label();
    let mut left = a.create_label();
    let mut right = a.create_label();
    let mut rotate = a.create_label();
    let mut down = a.create_label();
    let mut drop = a.create_label();
    let mut changed = a.create_label();
    a.set_label(&mut main_loop)?;
    a.hlt()?;
    a.set_label(&mut keys)?;
    a.call(r.get_key)?;
    a.jc(tick)?;
    a.cmp(word_ptr(GAME_OVER), 0)?;
    a.jne(over_key)?;
    emit_dispatch(a, &KEYS_LEFT, left)?;
    emit_dispatch(a, &KEYS_RIGHT, right)?;
    emit_dispatch(a, &KEYS_ROTATE, rotate)?;
    emit_dispatch(a, &KEYS_DOWN, down)?;
    emit_dispatch(a, &[KEY_SPACE], drop)?;
    a.jmp(keys)?;
    a.set_label(&mut left)?;
    a.mov(ax, 0xFFFFu32)?;
    a.xor(cx, cx)?;
    a.call(r.try_shift)?;
    a.jmp(changed)?;
    a.set_label(&mut right)?;
    a.mov(ax, 1u32)?;
    a.xor(cx, cx)?;
    a.call(r.try_shift)?;
    a.jmp(changed)?;
    a.set_label(&mut rotate)?;
    a.call(r.rotate)?;
    a.jmp(changed)?;
    a.set_label(&mut down)?;
    a.call(r.step_down)?;
    a.jmp(changed)?;
    a.set_label(&mut drop)?;
    a.call(r.hard_drop)?;
    a.set_label(&mut changed)?;
    a.call(r.render)?;
    a.jmp(keys)?;

    a.set_label(&mut over_key)?;
    a.cmp(al, KEY_ENTER)?;
    a.jne(keys)?;
    a.call(r.new_game)?;
    a.jmp(keys)?;

    a.set_label(&mut tick)?;
    a.cmp(word_ptr(GAME_OVER), 0)?;
    a.jne(main_loop)?;
    a.mov(ax, word_ptr(TICKS))?;
    a.sub(ax, word_ptr(FALL_AT))?;
    a.js(main_loop)?;
    a.mov(ax, word_ptr(TICKS))?;
    a.add(ax, u32::from(FALL_TICKS))?;
    a.mov(word_ptr(FALL_AT), ax)?;
    a.call(r.step_down)?;
    a.call(r.render)?;
    a.jmp(main_loop)?;
    Ok(())
}

/// IRQ0 (ticks, sound off) and IRQ1 (key queue), and `get_key` for the main loop.
fn emit_interrupts(a: &mut CodeAssembler, r: &mut Routines) -> GenResult<()> {
    let mut done = a.create_label();
    a.set_label(&mut r.irq0)?;
    a.push(ax)?;
    a.push(ds)?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.inc(word_ptr(TICKS))?;
    a.cmp(word_ptr(SOUND_LEFT), 0)?;
    a.je(done)?;
    a.dec(word_ptr(SOUND_LEFT))?;
    a.jnz(done)?;
    a.in_(al, 0x61)?;
    a.and(al, 0xFC)?;
    a.out(0x61, al)?;
    a.set_label(&mut done)?;
    a.mov(al, 0x20)?;
    a.out(0x20, al)?;
    a.pop(ds)?;
    a.pop(ax)?;
    a.iret()?;

    let mut full = a.create_label();
    a.set_label(&mut r.irq1)?;
    a.push(ax)?;
    a.push(bx)?;
    a.push(ds)?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.in_(al, 0x60)?;
    a.mov(bl, byte_ptr(KQ_TAIL))?;
    a.xor(bh, bh)?;
    a.mov(byte_ptr(bx + KQ_BUF), al)?;
    a.inc(bl)?;
    a.and(bl, 15)?;
    a.cmp(bl, byte_ptr(KQ_HEAD))?;
    a.je(full)?; // a full queue drops the byte
    a.mov(byte_ptr(KQ_TAIL), bl)?;
    a.set_label(&mut full)?;
    a.mov(al, 0x20)?;
    a.out(0x20, al)?;
    a.pop(ds)?;
    a.pop(bx)?;
    a.pop(ax)?;
    a.iret()?;

    // get_key: AL = next queued byte with CF clear, or CF set when the queue is empty.
    let mut empty = a.create_label();
    a.set_label(&mut r.get_key)?;
    a.cli()?;
    a.mov(bl, byte_ptr(KQ_HEAD))?;
    a.cmp(bl, byte_ptr(KQ_TAIL))?;
    a.je(empty)?;
    a.xor(bh, bh)?;
    a.mov(al, byte_ptr(bx + KQ_BUF))?;
    a.inc(bl)?;
    a.and(bl, 15)?;
    a.mov(byte_ptr(KQ_HEAD), bl)?;
    a.sti()?;
    a.clc()?;
    a.ret()?;
    a.set_label(&mut empty)?;
    a.sti()?;
    a.stc()?;
    a.ret()?;
    Ok(())
}

/// Calls `body` once per set bit of DX (shifted out from bit 15) with CX = the cell index
/// 0..16 (row = CX / 4, column = CX % 4). `body` may use AX, BX, SI, DI and jump to `next`.
pub(super) fn emit_cell_loop(
    a: &mut CodeAssembler,
    body: impl FnOnce(&mut CodeAssembler, CodeLabel) -> GenResult<()>,
) -> GenResult<()> {
    let mut top = a.create_label();
    let mut next = a.create_label();
    a.xor(cx, cx)?;
    a.set_label(&mut top)?;
    a.shl(dx, 1)?;
    a.jnc(next)?;
    body(a, next)?;
    a.set_label(&mut next)?;
    a.inc(cx)?;
    a.cmp(cx, 16)?;
    a.jb(top)?;
    Ok(())
}

/// DX = the shape of the current piece in its current rotation.
fn emit_load_shape(a: &mut CodeAssembler) -> GenResult<()> {
    a.mov(bx, word_ptr(PIECE))?;
    a.shl(bx, 2)?;
    a.add(bx, word_ptr(ROT))?;
    a.shl(bx, 1)?;
    a.mov(dx, word_ptr(bx + SHAPES))?;
    Ok(())
}

/// `fits` (CF set when the current piece overlaps a wall, the floor or a block; rows above
/// the top are free) and `stamp` (AL written into the well under the piece).
fn emit_piece_logic(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    let mut collide = a.create_label();
    a.set_label(&mut r.fits)?;
    emit_load_shape(a)?;
    emit_cell_loop(a, |a, next| {
        a.mov(ax, cx)?;
        a.and(ax, 3)?;
        a.add(ax, word_ptr(PX))?;
        a.cmp(ax, BOARD_COLS)?;
        a.jae(collide)?; // unsigned: a negative column is huge
        a.mov(bx, cx)?;
        a.shr(bx, 2)?;
        a.add(bx, word_ptr(PY))?;
        a.js(next)?;
        a.cmp(bx, BOARD_ROWS)?;
        a.jae(collide)?;
        a.imul_3(bx, bx, BOARD_COLS as i32)?;
        a.add(bx, ax)?;
        a.cmp(byte_ptr(bx + BOARD), 0)?;
        a.jne(collide)?;
        Ok(())
    })?;
    a.clc()?;
    a.ret()?;
    a.set_label(&mut collide)?;
    a.stc()?;
    a.ret()?;

    a.set_label(&mut r.stamp)?;
    a.push(ax)?;
    emit_load_shape(a)?;
    a.pop(ax)?;
    emit_cell_loop(a, |a, next| {
        a.mov(si, cx)?;
        a.shr(si, 2)?;
        a.add(si, word_ptr(PY))?;
        a.js(next)?;
        a.imul_3(si, si, BOARD_COLS as i32)?;
        a.mov(di, cx)?;
        a.and(di, 3)?;
        a.add(di, word_ptr(PX))?;
        a.add(si, di)?;
        a.mov(byte_ptr(si + BOARD), al)?;
        Ok(())
    })?;
    a.ret()?;
    Ok(())
}

/// Moving, rotating, dropping, locking, clearing lines, new pieces and new games.
fn emit_game_rules(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    // try_shift: move by (AX, CX); CF set (and nothing moved) when it does not fit.
    let mut undo = a.create_label();
    a.set_label(&mut r.try_shift)?;
    a.add(word_ptr(PX), ax)?;
    a.add(word_ptr(PY), cx)?;
    a.push(ax)?;
    a.push(cx)?;
    a.call(r.fits)?;
    a.pop(cx)?;
    a.pop(ax)?;
    a.jc(undo)?;
    a.ret()?;
    a.set_label(&mut undo)?;
    a.sub(word_ptr(PX), ax)?;
    a.sub(word_ptr(PY), cx)?;
    a.stc()?;
    a.ret()?;

    // rotate: a quarter turn clockwise if it fits.
    let mut turned = a.create_label();
    a.set_label(&mut r.rotate)?;
    a.mov(ax, word_ptr(ROT))?;
    a.push(ax)?;
    a.inc(ax)?;
    a.and(ax, 3)?;
    a.mov(word_ptr(ROT), ax)?;
    a.call(r.fits)?;
    a.pop(ax)?;
    a.jnc(turned)?;
    a.mov(word_ptr(ROT), ax)?;
    a.set_label(&mut turned)?;
    a.ret()?;

    // step_down: one row down, or lock the piece where it is.
    let mut lock = a.create_label();
    a.set_label(&mut r.step_down)?;
    a.xor(ax, ax)?;
    a.mov(cx, 1u32)?;
    a.call(r.try_shift)?;
    a.jc(lock)?;
    a.ret()?;
    a.set_label(&mut r.hard_drop)?;
    a.xor(ax, ax)?;
    a.mov(cx, 1u32)?;
    a.call(r.try_shift)?;
    a.jnc(r.hard_drop)?;
    a.set_label(&mut lock)?;
    a.mov(al, byte_ptr(PIECE))?;
    a.inc(al)?;
    a.call(r.stamp)?;
    a.inc(word_ptr(SCORE))?;
    a.mov(bx, SOUND_LOCK.0)?;
    a.mov(cx, SOUND_LOCK.1)?;
    a.call(r.beep)?;
    a.call(r.clear_lines)?;
    a.jmp(r.spawn)?;

    emit_clear_lines(a, r)?;
    emit_spawn(a, r)?;

    // random: AX = the next piece, 0..7, from a 16-bit LCG.
    a.set_label(&mut r.random)?;
    a.mov(ax, word_ptr(SEED))?;
    a.mov(dx, 25173u32)?;
    a.mul(dx)?;
    a.add(ax, 13849u32)?;
    a.mov(word_ptr(SEED), ax)?;
    a.mov(al, ah)?;
    a.xor(ah, ah)?;
    a.mov(cl, 7)?;
    a.div(cl)?;
    a.mov(al, ah)?;
    a.xor(ah, ah)?;
    a.ret()?;

    // beep: PIT channel 2 at divisor BX for CX ticks.
    a.set_label(&mut r.beep)?;
    a.mov(al, 0xB6)?;
    a.out(0x43, al)?;
    a.mov(ax, bx)?;
    a.out(0x42, al)?;
    a.mov(al, ah)?;
    a.out(0x42, al)?;
    a.in_(al, 0x61)?;
    a.or(al, 3)?;
    a.out(0x61, al)?;
    a.mov(word_ptr(SOUND_LEFT), cx)?;
    a.ret()?;

    // new_game: empty well, score 0, the first pieces, the static screen.
    a.set_label(&mut r.new_game)?;
    a.push(es)?;
    a.push(ds)?;
    a.pop(es)?;
    a.mov(di, BOARD)?;
    a.mov(cx, BOARD_COLS * BOARD_ROWS)?;
    a.xor(al, al)?;
    a.rep().stosb()?;
    a.pop(es)?;
    a.mov(word_ptr(SCORE), 0)?;
    a.mov(word_ptr(GAME_OVER), 0)?;
    a.call(r.random)?;
    a.mov(word_ptr(NEXT), ax)?;
    a.call(r.spawn)?;
    a.mov(ax, word_ptr(TICKS))?;
    a.add(ax, u32::from(FALL_TICKS))?;
    a.mov(word_ptr(FALL_AT), ax)?;
    emit_static_screen(a, r)?;
    a.jmp(r.render)?;
    Ok(())
}

/// clear_lines: every full row goes; the rows above move down; 10 points per row.
fn emit_clear_lines(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    let mut check = a.create_label();
    let mut cell = a.create_label();
    let mut not_full = a.create_label();
    a.set_label(&mut r.clear_lines)?;
    a.mov(bp, BOARD_ROWS - 1)?;
    a.set_label(&mut check)?;
    a.imul_3(si, bp, BOARD_COLS as i32)?;
    a.add(si, BOARD)?;
    a.mov(cx, BOARD_COLS)?;
    a.set_label(&mut cell)?;
    a.cmp(byte_ptr(si), 0)?;
    a.je(not_full)?;
    a.inc(si)?;
    a.loop_(cell)?;
    // Full: copy rows 0..bp one row down (backwards), then empty row 0.
    a.push(es)?;
    a.push(ds)?;
    a.pop(es)?;
    a.imul_3(cx, bp, BOARD_COLS as i32)?;
    a.mov(si, cx)?;
    a.add(si, BOARD - 1)?;
    a.mov(di, si)?;
    a.add(di, BOARD_COLS)?;
    a.std()?;
    a.rep().movsb()?;
    a.cld()?;
    a.mov(di, BOARD)?;
    a.mov(cx, BOARD_COLS)?;
    a.xor(al, al)?;
    a.rep().stosb()?;
    a.pop(es)?;
    a.add(word_ptr(SCORE), 10)?;
    a.mov(bx, SOUND_LINE.0)?;
    a.mov(cx, SOUND_LINE.1)?;
    a.call(r.beep)?;
    a.jmp(check)?;
    a.set_label(&mut not_full)?;
    a.dec(bp)?;
    a.jns(check)?;
    a.ret()?;
    Ok(())
}

/// spawn: the next piece enters at the top; if it does not fit the game is over and the
/// empty cells of the well turn grey.
fn emit_spawn(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    let mut fits = a.create_label();
    let mut cell = a.create_label();
    let mut filled = a.create_label();
    a.set_label(&mut r.spawn)?;
    a.mov(ax, word_ptr(NEXT))?;
    a.mov(word_ptr(PIECE), ax)?;
    a.call(r.random)?;
    a.mov(word_ptr(NEXT), ax)?;
    a.mov(word_ptr(ROT), 0)?;
    a.mov(word_ptr(PX), 3)?;
    a.mov(word_ptr(PY), 0)?;
    a.call(r.fits)?;
    a.jnc(fits)?;
    a.mov(word_ptr(GAME_OVER), 1)?;
    a.mov(si, BOARD)?;
    a.mov(cx, BOARD_COLS * BOARD_ROWS)?;
    a.set_label(&mut cell)?;
    a.cmp(byte_ptr(si), 0)?;
    a.jne(filled)?;
    a.mov(byte_ptr(si), u32::from(COLOR_GAME_OVER))?;
    a.set_label(&mut filled)?;
    a.inc(si)?;
    a.loop_(cell)?;
    a.mov(bx, SOUND_OVER.0)?;
    a.mov(cx, SOUND_OVER.1)?;
    a.call(r.beep)?;
    a.set_label(&mut fits)?;
    a.ret()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_piece_turns_about_its_centre() {
        let t = shape_masks()[2];
        // .X.. / XXX. -> .X.. / .XX. / .X.. -> .... / XXX. / .X.. -> .X.. / XX.. / .X..
        assert_eq!(t, [0x4E00, 0x4640, 0x0E40, 0x4C40]);
        assert!(shape_masks()
            .iter()
            .all(|rot| rot.iter().all(|m| m.count_ones() == 4)));
    }
}
