//! The Tetris demo's drawing routines: rectangles in mode 13h, the well, the next piece
//! and the score. Part of `tetris.rs`'s program (see there for the RAM and the routines).

use iced_x86::code_asm::*;

use super::tetris::{
    emit_cell_loop, Routines, BOARD, COUNTER, FONT, GAME_OVER, NEXT, PIECE, SCORE, SHAPES,
};
use super::tetris_layout::*;
use super::GenResult;

/// DI = the screen offset of pixel (x, y).
fn offset(x: u32, y: u32) -> u32 {
    y * SCREEN_WIDTH + x
}

/// Fills a rectangle in colour `color` (straight-line call of `fill_rect`).
fn emit_rect(
    a: &mut CodeAssembler,
    r: Routines,
    (x, y, w, h): (u32, u32, u32, u32),
    color: u8,
) -> GenResult<()> {
    a.mov(di, offset(x, y))?;
    a.mov(al, u32::from(color))?;
    a.mov(cx, w)?;
    a.mov(dx, h)?;
    a.call(r.fill_rect)?;
    Ok(())
}

/// The screen cleared and the walls of the well drawn.
pub(super) fn emit_static_screen(a: &mut CodeAssembler, r: Routines) -> GenResult<()> {
    a.xor(di, di)?;
    a.xor(ax, ax)?;
    a.mov(cx, SCREEN_WIDTH * SCREEN_HEIGHT / 2)?;
    a.rep().stosw()?;
    let (well_w, well_h) = (BOARD_COLS * CELL, BOARD_ROWS * CELL);
    let walls = [
        (BOARD_X - 4, BOARD_Y - 4, 4, well_h + 8),
        (BOARD_X + well_w, BOARD_Y - 4, 4, well_h + 8),
        (BOARD_X - 4, BOARD_Y + well_h, well_w + 8, 4),
    ];
    for wall in walls {
        emit_rect(a, r, wall, COLOR_WALL)?;
    }
    Ok(())
}

/// `fill_rect` (DI offset, AL colour, CX width, DX height) and the drawing of the well,
/// the next piece and the score.
pub(super) fn emit_drawing(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    let mut row = a.create_label();
    a.set_label(&mut r.fill_rect)?;
    a.push(bx)?;
    a.mov(bx, cx)?;
    a.set_label(&mut row)?;
    a.mov(cx, bx)?;
    a.push(di)?;
    a.rep().stosb()?;
    a.pop(di)?;
    a.add(di, SCREEN_WIDTH)?;
    a.dec(dx)?;
    a.jnz(row)?;
    a.pop(bx)?;
    a.ret()?;

    // render: the piece is stamped into the well just for drawing it.
    let mut no_piece = a.create_label();
    a.set_label(&mut r.render)?;
    a.cmp(word_ptr(GAME_OVER), 0)?;
    a.jne(no_piece)?;
    a.mov(al, byte_ptr(PIECE))?;
    a.inc(al)?;
    a.call(r.stamp)?;
    a.call(r.draw_board)?;
    a.xor(al, al)?;
    a.call(r.stamp)?;
    a.call(r.draw_next)?;
    a.jmp(r.draw_score)?;
    a.set_label(&mut no_piece)?;
    a.call(r.draw_board)?;
    a.jmp(r.draw_score)?;

    let mut board_row = a.create_label();
    let mut board_col = a.create_label();
    a.set_label(&mut r.draw_board)?;
    a.mov(si, BOARD)?;
    a.mov(bx, offset(BOARD_X, BOARD_Y))?;
    a.mov(bp, BOARD_ROWS)?;
    a.set_label(&mut board_row)?;
    a.push(bx)?;
    a.mov(word_ptr(COUNTER), BOARD_COLS)?;
    a.set_label(&mut board_col)?;
    a.lodsb()?;
    a.mov(di, bx)?;
    a.mov(cx, CELL - 1)?;
    a.mov(dx, CELL - 1)?;
    a.call(r.fill_rect)?;
    a.add(bx, CELL)?;
    a.dec(word_ptr(COUNTER))?;
    a.jnz(board_col)?;
    a.pop(bx)?;
    a.add(bx, CELL * SCREEN_WIDTH)?;
    a.dec(bp)?;
    a.jnz(board_row)?;
    a.ret()?;

    a.set_label(&mut r.draw_next)?;
    emit_rect(a, r, (NEXT_X, NEXT_Y, 4 * CELL, 4 * CELL), COLOR_BACKGROUND)?;
    a.mov(bx, word_ptr(NEXT))?;
    a.shl(bx, 3)?;
    a.mov(dx, word_ptr(bx + SHAPES))?;
    a.mov(al, byte_ptr(NEXT))?;
    a.inc(al)?;
    emit_cell_loop(a, |a, _| {
        a.push(cx)?;
        a.push(dx)?;
        a.mov(di, cx)?;
        a.shr(di, 2)?;
        a.imul_3(di, di, (CELL * SCREEN_WIDTH) as i32)?;
        a.and(cx, 3)?;
        a.shl(cx, 3)?;
        a.add(di, cx)?;
        a.add(di, offset(NEXT_X, NEXT_Y))?;
        a.mov(cx, CELL - 1)?;
        a.mov(dx, CELL - 1)?;
        a.call(r.fill_rect)?;
        a.pop(dx)?;
        a.pop(cx)?;
        Ok(())
    })?;
    a.ret()?;
    Ok(())
}

/// draw_score: five decimal digits of SCORE in the 3x5 font.
pub(super) fn emit_digits(a: &mut CodeAssembler, mut r: Routines) -> GenResult<()> {
    let digit_w = 4 * DIGIT_SCALE;
    let mut digit = a.create_label();
    let mut font_row = a.create_label();
    a.set_label(&mut r.draw_score)?;
    a.mov(ax, word_ptr(SCORE))?;
    a.mov(bx, offset(SCORE_X + 4 * digit_w, SCORE_Y))?;
    a.mov(bp, 5u32)?;
    a.set_label(&mut digit)?;
    a.xor(dx, dx)?;
    a.mov(cx, 10u32)?;
    a.div(cx)?;
    a.push(ax)?;
    a.push(bx)?;
    a.imul_3(si, dx, 5)?;
    a.add(si, FONT)?;
    a.mov(word_ptr(COUNTER), 5)?;
    a.set_label(&mut font_row)?;
    a.lodsb()?;
    a.mov(ah, al)?;
    a.shl(ah, 5)?;
    a.push(bx)?;
    for _ in 0..3 {
        let mut lit = a.create_label();
        a.mov(al, u32::from(COLOR_TEXT))?;
        a.shl(ah, 1)?;
        a.jc(lit)?;
        a.mov(al, u32::from(COLOR_BACKGROUND))?;
        a.set_label(&mut lit)?;
        a.mov(di, bx)?;
        a.mov(cx, DIGIT_SCALE)?;
        a.mov(dx, DIGIT_SCALE)?;
        a.call(r.fill_rect)?;
        a.add(bx, DIGIT_SCALE)?;
    }
    a.pop(bx)?;
    a.add(bx, DIGIT_SCALE * SCREEN_WIDTH)?;
    a.dec(word_ptr(COUNTER))?;
    a.jnz(font_row)?;
    a.pop(bx)?;
    a.pop(ax)?;
    a.sub(bx, digit_w)?;
    a.dec(bp)?;
    a.jnz(digit)?;
    a.ret()?;
    Ok(())
}
