//! Where the Tetris demo draws on its 320x200 mode 13h screen and which colours it uses:
//! shared by the generator (`programs/`) and by tests that read the game off the screen.

/// Screen size in mode 13h.
pub const SCREEN_WIDTH: u32 = 320;
pub const SCREEN_HEIGHT: u32 = 200;
/// The well: columns and rows of cells.
pub const BOARD_COLS: u32 = 10;
pub const BOARD_ROWS: u32 = 20;
/// Side of one cell in pixels (a 7x7 block and a 1-pixel gap).
pub const CELL: u32 = 8;
/// Top-left pixel of the well's cell (0, 0).
pub const BOARD_X: u32 = 120;
pub const BOARD_Y: u32 = 20;
/// Top-left pixel of the 4x4-cell preview of the next piece.
pub const NEXT_X: u32 = 224;
pub const NEXT_Y: u32 = 28;
/// Top-left pixel of the score (5 decimal digits, 3x5 font scaled by [`DIGIT_SCALE`]).
pub const SCORE_X: u32 = 224;
pub const SCORE_Y: u32 = 84;
pub const DIGIT_SCALE: u32 = 3;
/// Palette index of the background.
pub const COLOR_BACKGROUND: u8 = 0;
/// Palette indexes 1..=7 are the seven pieces (I, O, T, S, Z, J, L).
pub const COLOR_PIECES: core::ops::RangeInclusive<u8> = 1..=7;
/// Palette index of the well's walls.
pub const COLOR_WALL: u8 = 8;
/// Palette index of the score digits.
pub const COLOR_TEXT: u8 = 9;
/// Palette index that fills the well when the game is over.
pub const COLOR_GAME_OVER: u8 = 10;
/// The palette (6-bit DAC components) of indexes 0..=10.
pub const PALETTE: [[u8; 3]; 11] = [
    [0, 0, 8],    // background: dark blue
    [0, 63, 63],  // I: cyan
    [63, 63, 0],  // O: yellow
    [48, 0, 63],  // T: purple
    [0, 63, 0],   // S: green
    [63, 0, 0],   // Z: red
    [0, 0, 63],   // J: blue
    [63, 40, 0],  // L: orange
    [40, 40, 40], // wall: grey
    [63, 63, 63], // text: white
    [24, 24, 24], // game over: dark grey
];
/// Gravity: the falling piece drops one row every this many PIT ticks (100 Hz).
pub const FALL_TICKS: u16 = 50;
/// RAM address of the well: one byte per cell, row by row, 0 = empty, else the palette index.
pub const BOARD_RAM: u32 = 0x600;
/// RAM address of the score (16-bit): 1 per piece placed, 10 per row cleared.
pub const SCORE_RAM: u32 = 0x510;
/// PIT channel 0 divisor for 100 Hz (1193182 / 11932).
pub const PIT_DIVISOR: u16 = 11932;
