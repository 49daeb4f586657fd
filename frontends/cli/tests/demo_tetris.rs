//! The Tetris demo, headless: keys go in through the i8042, the game is read back off the
//! VGA picture (cell by cell, where `nestor_roms::tetris_layout` says the well is).

use nestor_cpu::Bus;
use nestor_i8042::{Key, I8042};
use nestor_machine::{Machine, MachineConfig, MachineExit};
use nestor_roms::tetris_layout as layout;
use nestor_vga::{Frame, Vga};
use std::collections::BTreeSet;
use std::process::Command;

/// Instructions from reset until the first piece is drawn, with room to spare.
const START: u64 = 3_000_000;
/// Instructions for the game to handle a key and redraw (far less than a gravity step:
/// 50 ticks of 10 ms are 125 M instructions in deterministic time).
const STEP: u64 = 1_000_000;

/// The game and the instructions spent on it so far (retired plus idle time in deterministic
/// mode: what `Machine::run` counts its budget in).
struct Game {
    m: Machine,
    spent: u64,
}

fn tetris() -> Game {
    let config = MachineConfig::new(nestor_roms::tetris().to_vec(), 4);
    let m = Machine::new(config).expect("machine");
    let mut g = Game { m, spent: 0 };
    run_to(&mut g, START);
    g
}

fn run_to(g: &mut Game, insns: u64) {
    let exit = g.m.run(Some(insns)).expect("run");
    assert_eq!(exit, MachineExit::BudgetExhausted);
    g.spent = insns;
}

/// Press and release `key`, then give the game [`STEP`] instructions.
fn tap(g: &mut Game, key: Key) {
    let kbc = g.m.board.device_mut::<I8042>().expect("i8042");
    kbc.key_event(key, true);
    kbc.key_event(key, false);
    run_to(g, g.spent + STEP);
}

fn frame(g: &mut Game) -> Frame {
    g.m.board.device_mut::<Vga>().expect("vga").render()
}

fn pixel(f: &Frame, x: u32, y: u32) -> [u8; 3] {
    let (sx, sy) = (
        f.width / layout::SCREEN_WIDTH,
        f.height / layout::SCREEN_HEIGHT,
    );
    let i = ((y * sy * f.width + x * sx) * 3) as usize;
    [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
}

fn rgb(index: u8) -> [u8; 3] {
    // The DAC's 6-bit components as the VGA renders them to 8 bits.
    layout::PALETTE[usize::from(index)].map(|c| (c << 2) | (c >> 4))
}

/// The occupied cells of the well: (row, column) of every cell not in the background colour.
fn cells(g: &mut Game) -> BTreeSet<(i32, i32)> {
    let f = frame(g);
    let mut set = BTreeSet::new();
    for row in 0..layout::BOARD_ROWS {
        for col in 0..layout::BOARD_COLS {
            let x = layout::BOARD_X + col * layout::CELL + layout::CELL / 2;
            let y = layout::BOARD_Y + row * layout::CELL + layout::CELL / 2;
            if pixel(&f, x, y) != rgb(layout::COLOR_BACKGROUND) {
                set.insert((row as i32, col as i32));
            }
        }
    }
    set
}

/// The cells moved so that the smallest row and column are 0.
fn normalized(cells: &BTreeSet<(i32, i32)>) -> BTreeSet<(i32, i32)> {
    let r0 = cells.iter().map(|c| c.0).min().unwrap_or(0);
    let c0 = cells.iter().map(|c| c.1).min().unwrap_or(0);
    cells.iter().map(|&(r, c)| (r - r0, c - c0)).collect()
}

#[test]
fn tetris_sets_mode_13h_as_the_ibm_bios_does() {
    let mut g = tetris();
    let vga = g.m.board.device_mut::<Vga>().expect("vga");
    let s = vga.state();
    let want = &nestor_vga::modes::MODE_13H.regs;
    assert_eq!(s.misc_output, want.misc);
    assert_eq!(&s.seq[..5], &want.seq);
    assert_eq!(&s.crtc[..25], &want.crtc);
    assert_eq!(&s.gc[..9], &want.gc);
    assert_eq!(&s.attr[..20], &want.attr);
    let f = vga.render();
    assert_eq!(
        (f.width % 320, f.height % 200),
        (0, 0),
        "{}x{}",
        f.width,
        f.height
    );
    // The well's left wall is drawn in its colour.
    let wall = pixel(&f, layout::BOARD_X - 2, layout::BOARD_Y + 10);
    assert_eq!(wall, rgb(layout::COLOR_WALL));
}

#[test]
fn tetris_piece_moves_left_and_turns() {
    let mut g = tetris();
    let start = cells(&mut g);
    assert_eq!(start.len(), 4, "one piece in the well: {start:?}");
    assert!(start.iter().all(|&(r, c)| r < 3 && c >= 3), "{start:?}");

    tap(&mut g, Key::ArrowLeft);
    let left = cells(&mut g);
    let shifted: BTreeSet<_> = start.iter().map(|&(r, c)| (r, c - 1)).collect();
    assert_eq!(left, shifted, "one column to the left");

    tap(&mut g, Key::ArrowUp);
    let turned = cells(&mut g);
    assert_eq!(turned.len(), 4);
    assert_ne!(normalized(&turned), normalized(&left), "the piece turned");

    // Four more turns bring the same shape back; A is "left" too.
    for _ in 0..4 {
        tap(&mut g, Key::ArrowUp);
    }
    assert_eq!(normalized(&cells(&mut g)), normalized(&turned));
    let before = cells(&mut g);
    tap(&mut g, Key::A);
    let after: BTreeSet<_> = before.iter().map(|&(r, c)| (r, c - 1)).collect();
    assert_eq!(cells(&mut g), after);
}

#[test]
fn tetris_hard_drop_lands_the_piece_and_beeps() {
    let mut g = tetris();
    let start = cells(&mut g);
    tap(&mut g, Key::Space);
    let now = cells(&mut g);
    let bottom = (layout::BOARD_ROWS - 1) as i32;
    // The old piece lies on the floor; a new one is at the top.
    let landed: BTreeSet<_> = now.iter().filter(|c| c.0 > 10).copied().collect();
    assert_eq!(normalized(&landed), normalized(&start));
    assert_eq!(landed.iter().map(|c| c.0).max(), Some(bottom));
    assert_eq!(now.len(), 8, "{now:?}");
    // The lock sound, as the guest's ports show it: port 0x61 has counter 2's gate and the
    // speaker on, and the 8254's read-back status of counter 2 says "LSB then MSB, mode 3
    // (square wave), binary"; its count is below the divisor 4561 (~261.6 Hz).
    let bus = &mut g.m.board;
    assert_eq!(bus.io_in(0x61, 1) & 3, 3, "speaker gated on");
    bus.io_out(0x43, 1, 0xe8); // read-back: status of counter 2
    assert_eq!(bus.io_in(0x42, 1) & 0x3f, 0x36, "counter 2 status");
    bus.io_out(0x43, 1, 0x80); // latch counter 2
    let count = bus.io_in(0x42, 1) | bus.io_in(0x42, 1) << 8;
    assert!((1..=4561).contains(&count), "count {count}");
}

#[test]
fn tetris_clears_a_full_row() {
    let mut g = tetris();
    let start = cells(&mut g);
    // The piece's lowest row as it falls straight down.
    let low = start.iter().map(|c| c.0).max().expect("a piece");
    let gap: Vec<i32> = start.iter().filter(|c| c.0 == low).map(|c| c.1).collect();
    // Fill the bottom row of the well except under the piece.
    let bottom = layout::BOARD_ROWS - 1;
    let row: Vec<u8> = (0..layout::BOARD_COLS as i32)
        .map(|c| {
            if gap.contains(&c) {
                0
            } else {
                layout::COLOR_WALL
            }
        })
        .collect();
    let addr = u64::from(layout::BOARD_RAM + bottom * layout::BOARD_COLS);
    assert!(g.m.board.wires.mem.write(addr, &row));
    tap(&mut g, Key::Space);
    // The row is gone; what was above it (the rest of the piece) moved down into it.
    let expected: BTreeSet<_> = start
        .iter()
        .filter(|c| c.0 != low)
        .map(|&(r, c)| (r + bottom as i32 - low + 1, c))
        .collect();
    let landed: BTreeSet<_> = cells(&mut g).into_iter().filter(|c| c.0 > 10).collect();
    assert_eq!(landed, expected);
    let mut score = [0u8; 2];
    assert!(g
        .m
        .board
        .wires
        .mem
        .read(u64::from(layout::SCORE_RAM), &mut score));
    assert_eq!(
        u16::from_le_bytes(score),
        11,
        "1 for the piece, 10 for the row"
    );
}

#[test]
fn tetris_gravity_pulls_the_piece_down_in_virtual_time() {
    let mut g = tetris();
    let start = cells(&mut g);
    // 50 ticks of the 100 Hz PIT: 0.5 s, 125 M instructions of deterministic time.
    run_to(&mut g, START + 130_000_000);
    let fallen: BTreeSet<_> = start.iter().map(|&(r, c)| (r + 1, c)).collect();
    assert_eq!(cells(&mut g), fallen);
}

#[test]
fn tetris_runs_are_a_function_of_the_keys() {
    let play = || {
        let mut g = tetris();
        for key in [
            Key::ArrowRight,
            Key::Space,
            Key::ArrowUp,
            Key::ArrowLeft,
            Key::Space,
        ] {
            tap(&mut g, key);
        }
        frame(&mut g).rgb
    };
    assert!(play() == play(), "two runs with the same keys differ");
}

/// The same through the command line: `--demo tetris --keys-at ... --screenshot`.
#[test]
fn tetris_from_the_command_line_with_scripted_keys() {
    let dir = std::env::temp_dir().join(format!("nestor-tetris-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let shot = |name: &str, keys: &str| {
        let path = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_nestor"))
            .args([
                "run",
                "--demo",
                "tetris",
                "--deterministic",
                "--serial",
                "none",
            ])
            .args(["--max-insns", "6000000", "--keys-at", keys, "--screenshot"])
            .arg(&path)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run nestor");
        assert_eq!(out.status.code(), Some(6), "{out:?}");
        let file = std::io::BufReader::new(std::fs::File::open(&path).expect("png"));
        let mut reader = png::Decoder::new(file).read_info().expect("png header");
        let mut rgb = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut rgb).expect("png data");
        rgb.truncate(info.buffer_size());
        Frame {
            width: info.width,
            height: info.height,
            rgb,
        }
    };
    let still = shot("still.png", "5000000:F1");
    let moved = shot("moved.png", "3000000:Right,4000000:Right");
    let column_of_first_block = |f: &Frame| {
        (0..layout::BOARD_COLS).find(|&col| {
            (0..3).any(|row| {
                let x = layout::BOARD_X + col * layout::CELL + 3;
                let y = layout::BOARD_Y + row * layout::CELL + 3;
                pixel(f, x, y) != rgb(layout::COLOR_BACKGROUND)
            })
        })
    };
    let (a, b) = (column_of_first_block(&still), column_of_first_block(&moved));
    assert_eq!(b, a.map(|c| c + 2), "two steps right");
    let _ = std::fs::remove_dir_all(&dir);
}
