//! The desktop frontend for real: `nestor run --display sdl --demo tetris` on an Xvfb X
//! server, keys typed with xdotool (XTEST, as a keyboard would), the window read back with
//! xwd. Skips, saying why, when Xvfb, xdotool or xwd is missing. Also: runs with no display
//! never need one.

use nestor_roms::tetris_layout as layout;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for the window and for the game to show a key's effect. A wait, never
/// a measurement: the test passes as soon as the picture is right.
const PATIENCE: Duration = Duration::from_secs(60);

fn nestor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nestor"))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A child process killed when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start Xvfb on a free display (it picks one and tells us through `-displayfd`).
fn start_xvfb() -> (Reaped, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
            // Without it the server resets whenever its last client leaves, and a client
            // connecting meanwhile (the next xdotool, nestor itself) can be turned away.
            "-noreset",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let stdout = child.stdout.take().expect("Xvfb stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("Xvfb display number");
    let display = format!(":{}", line.trim());
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
    (Reaped(child), display)
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A 32-bit TrueColor window dump read from xwd's file format.
struct Dump {
    width: usize,
    height: usize,
    bytes_per_line: usize,
    pixels: Vec<u8>,
}

impl Dump {
    fn capture(display: &str, window: &str, path: &Path) -> Self {
        let status = Command::new("xwd")
            .args(["-silent", "-id", window, "-out"])
            .arg(path)
            .env("DISPLAY", display)
            .status()
            .expect("run xwd");
        assert!(status.success(), "xwd failed");
        Self::parse(&std::fs::read(path).expect("read xwd dump"))
    }

    /// XWD: a header of big-endian 32-bit fields, the window name, `ncolors` 12-byte colour
    /// entries, then the pixels.
    fn parse(data: &[u8]) -> Self {
        let field = |i: usize| {
            let b: [u8; 4] = data[i * 4..i * 4 + 4].try_into().expect("xwd header");
            u32::from_be_bytes(b) as usize
        };
        let (header_size, width, height) = (field(0), field(4), field(5));
        let (byte_order, bits_per_pixel, bytes_per_line) = (field(7), field(11), field(12));
        let (red_mask, ncolors) = (field(14), field(19));
        assert_eq!(field(1), 7, "xwd file version");
        assert_eq!((bits_per_pixel, byte_order, red_mask), (32, 0, 0xff0000));
        let start = header_size + ncolors * 12;
        let pixels = data[start..start + bytes_per_line * height].to_vec();
        Self {
            width,
            height,
            bytes_per_line,
            pixels,
        }
    }

    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.bytes_per_line + x * 4;
        [self.pixels[i + 2], self.pixels[i + 1], self.pixels[i]]
    }
}

fn vga_rgb(index: u8) -> [u8; 3] {
    layout::PALETTE[usize::from(index)].map(|c| (c << 2) | (c >> 4))
}

/// The columns of the well that hold a block, read off the window: the walls give the
/// well's place and scale, whatever size the window has.
fn occupied_columns(dump: &Dump) -> Option<Vec<u32>> {
    let wall = vga_rgb(layout::COLOR_WALL);
    let mut xs = (usize::MAX, 0);
    let mut ys = (usize::MAX, 0);
    for y in 0..dump.height {
        for x in 0..dump.width {
            if dump.rgb(x, y) == wall {
                xs = (xs.0.min(x), xs.1.max(x));
                ys = (ys.0.min(y), ys.1.max(y));
            }
        }
    }
    if xs.0 > xs.1 {
        return None;
    }
    // The walls span 4 + 80 + 4 VGA pixels across.
    let scale = (xs.1 - xs.0 + 1) as f64 / f64::from(layout::BOARD_COLS * layout::CELL + 8);
    let background = vga_rgb(layout::COLOR_BACKGROUND);
    let mut columns = Vec::new();
    for col in 0..layout::BOARD_COLS {
        let vga_x = 4.0 + f64::from(col * layout::CELL) + 3.5;
        let x = xs.0 + (vga_x * scale) as usize;
        let filled = (ys.0..ys.1).any(|y| {
            let p = dump.rgb(x, y);
            p != background && p != wall && p != [0, 0, 0]
        });
        if filled {
            columns.push(col);
        }
    }
    Some(columns)
}

/// Poll `check` on fresh dumps of the window until it holds or [`PATIENCE`] runs out.
fn wait_for(display: &str, window: &str, dir: &Path, what: &str, check: impl Fn(&Dump) -> bool) {
    let start = Instant::now();
    loop {
        let dump = Dump::capture(display, window, &dir.join("window.xwd"));
        if check(&dump) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "the window never showed {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sdl_window_shows_tetris_responding_to_keys() {
    let missing: Vec<&str> = ["Xvfb", "xdotool", "xwd"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (scripts/setup.sh installs them)",
            missing.join(", ")
        );
        return;
    }
    let dir = temp_dir("sdl");
    let (_xvfb, display) = start_xvfb();
    let args = [
        "run",
        "--display",
        "sdl",
        "--demo",
        "tetris",
        "--serial",
        "none",
    ];
    let (_nestor, window) = start_window(&display, &dir, &args, "^Nestor: tetris");
    let title = xdotool(&display, &["getwindowname", &window]);
    assert!(title.contains("Ctrl+Alt+G"), "title hint: {title}");
    xdotool(&display, &["windowfocus", "--sync", &window]);

    // The game as first drawn: a piece at the top, spawned in columns 3..=6.
    wait_for(&display, &window, &dir, "the well with a piece", |d| {
        occupied_columns(d).is_some_and(|c| !c.is_empty() && c.iter().all(|&c| c >= 3))
    });
    // Three steps left bring any piece to the wall.
    xdotool(&display, &["key", "--delay", "50", "Left", "Left", "Left"]);
    wait_for(&display, &window, &dir, "a block in column 0", |d| {
        occupied_columns(d).is_some_and(|c| c.first() == Some(&0))
    });

    // Ctrl+Alt+S saves the guest's picture, which shows the same.
    xdotool(&display, &["key", "ctrl+alt+s"]);
    let shot = dir.join("nestor-1.png");
    let start = Instant::now();
    while !shot.exists() {
        assert!(start.elapsed() < PATIENCE, "Ctrl+Alt+S wrote no screenshot");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200)); // the file may still be being written
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&shot).expect("png")));
    let info = decoder.read_info().expect("png header").info().clone();
    assert_eq!((info.width, info.height), (320, 200));

    // Ctrl+Alt+P pauses (the title says so) and resumes.
    let title_becomes = |want: &str, present: bool| {
        let start = Instant::now();
        while xdotool(&display, &["getwindowname", &window]).contains(want) != present {
            assert!(
                start.elapsed() < PATIENCE,
                "title never {present} for {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes("paused", true);
    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes("paused", false);

    // Ctrl+Alt+R resets the machine: the game starts again with a piece at the top only.
    xdotool(&display, &["key", "ctrl+alt+r"]);
    wait_for(&display, &window, &dir, "a new game after reset", |d| {
        occupied_columns(d).is_some_and(|c| !c.is_empty() && c.iter().all(|&c| c >= 3))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Xvfb, xdotool and xwd are there; else say which are missing.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["Xvfb", "xdotool", "xwd"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipped: {} not installed (scripts/setup.sh installs them)",
            missing.join(", ")
        );
    }
    missing.is_empty()
}

/// `nestor ARGS` (a run or resume with `--display sdl`) on `display`, in `dir`; its window's
/// id once it is up. SDL is held to X11: should it fail to reach the fresh X server, the run
/// ends with its error at once (rather than trying other video drivers) and is started again.
fn start_window(display: &str, dir: &Path, args: &[&str], title: &str) -> (Reaped, String) {
    let log = dir.join(format!("{}.stderr", args.first().unwrap_or(&"nestor")));
    let spawn = || {
        let stderr = std::fs::File::create(&log).expect("stderr file");
        Reaped(
            nestor()
                .args(args)
                .env("DISPLAY", display)
                .env("SDL_VIDEODRIVER", "x11")
                .env_remove("WAYLAND_DISPLAY")
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("start nestor"),
        )
    };
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut child = spawn();
    let mut attempts = 1;
    let start = Instant::now();
    let window = loop {
        let found = xdotool(display, &["search", "--name", title]);
        if let Some(id) = found.lines().next() {
            break id.to_string();
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            assert!(attempts < 3, "nestor ended ({status}): {}", said());
            eprintln!(
                "nestor ended ({status}) before its window appeared: {}",
                said()
            );
            child = spawn();
            attempts += 1;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no Nestor window appeared: {}",
            said()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    xdotool(display, &["windowfocus", "--sync", &window]);
    (child, window)
}

/// Wait until the window's title does (or does not) contain `want`.
fn title_becomes(display: &str, window: &str, want: &str, present: bool) {
    let start = Instant::now();
    loop {
        let title = xdotool(display, &["getwindowname", window]);
        if title.contains(want) == present {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "title never {present} for {want:?}: {title}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl+Alt+S, then the RGB pixels of the `nestor-N.png` it wrote.
fn guest_screenshot(display: &str, dir: &Path, n: u32) -> Vec<u8> {
    xdotool(display, &["key", "ctrl+alt+s"]);
    let path = dir.join(format!("nestor-{n}.png"));
    let start = Instant::now();
    loop {
        // The file may still be being written: read it once it decodes.
        if let Ok(file) = std::fs::File::open(&path) {
            if let Ok(mut reader) = png::Decoder::new(BufReader::new(file)).read_info() {
                let mut rgb = vec![0; reader.output_buffer_size().unwrap_or(0)];
                if reader.next_frame(&mut rgb).is_ok() {
                    return rgb;
                }
            }
        }
        assert!(start.elapsed() < PATIENCE, "Ctrl+Alt+S wrote no {path:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn new_game_with_a_piece(d: &Dump) -> bool {
    occupied_columns(d).is_some_and(|c| !c.is_empty() && c.iter().all(|&c| c >= 3))
}

fn block_in_column_0(d: &Dump) -> bool {
    occupied_columns(d).is_some_and(|c| c.first() == Some(&0))
}

/// Ctrl+Alt+1 saves the game while paused, the piece moves, Ctrl+Alt+2 brings the saved
/// game back: the window and the guest's own screenshot show exactly the saved picture
/// again, and the restored game still plays.
#[test]
fn sdl_snapshot_hotkeys_save_and_restore_the_game() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("sdl-snapshot");
    let (_xvfb, display) = start_xvfb();
    let args = [
        "run",
        "--display",
        "sdl",
        "--serial",
        "none",
        "--demo",
        "tetris",
        "--snapshot-file",
        "game.elf",
    ];
    let (nestor, window) = start_window(&display, &dir, &args, "^Nestor: tetris");
    wait_for(
        &display,
        &window,
        &dir,
        "the well with a piece",
        new_game_with_a_piece,
    );

    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes(&display, &window, "paused", true);
    xdotool(&display, &["key", "ctrl+alt+1"]);
    title_becomes(&display, &window, "snapshot saved to game.elf", true);
    assert!(dir.join("game.elf").is_file(), "no snapshot file");
    let saved_png = guest_screenshot(&display, &dir, 1);
    let saved_window = Dump::capture(&display, &window, &dir.join("saved.xwd"));
    assert!(new_game_with_a_piece(&saved_window));

    // Play on: the piece goes to the wall.
    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes(&display, &window, "paused", false);
    xdotool(&display, &["key", "--delay", "50", "Left", "Left", "Left"]);
    wait_for(
        &display,
        &window,
        &dir,
        "a block in column 0",
        block_in_column_0,
    );

    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes(&display, &window, "paused", true);
    xdotool(&display, &["key", "ctrl+alt+2"]);
    title_becomes(&display, &window, "snapshot restored from game.elf", true);
    wait_for(&display, &window, &dir, "the saved picture", |d| {
        d.pixels == saved_window.pixels
    });
    assert!(
        guest_screenshot(&display, &dir, 2) == saved_png,
        "restored picture differs"
    );

    // The restored game takes keys.
    xdotool(&display, &["key", "ctrl+alt+p"]);
    title_becomes(&display, &window, "paused", false);
    xdotool(&display, &["key", "--delay", "50", "Left", "Left", "Left"]);
    wait_for(
        &display,
        &window,
        &dir,
        "the restored piece at the wall",
        block_in_column_0,
    );

    // Saved again and carried on by `nestor resume --display sdl` in a new window: the piece
    // is where it was saved (a new game would have it in the middle).
    // The first save's message must be gone before the second one can be seen.
    title_becomes(&display, &window, "snapshot", false);
    xdotool(&display, &["key", "ctrl+alt+1"]);
    title_becomes(&display, &window, "snapshot saved to game.elf", true);
    drop(nestor);
    let args = ["resume", "game.elf", "--display", "sdl", "--serial", "none"];
    let (_resumed, window) = start_window(&display, &dir, &args, "^Nestor");
    title_becomes(&display, &window, "Ctrl+Alt+G grabs the mouse", true);
    wait_for(
        &display,
        &window,
        &dir,
        "the saved piece at the wall",
        block_in_column_0,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A condition on the packets (X, Y positive up, buttons) the guest printed.
type PacketCheck<'a> = dyn Fn(&[(i32, i32, u8)]) -> bool + 'a;

/// A PS/2 packet as the mouse probe prints it ("packet HH HH HH"): X, Y (positive up) and
/// buttons, decoded by the PS/2 format.
fn probe_packets(text: &str) -> Vec<(i32, i32, u8)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("packet "))
        .filter_map(|hex| {
            let b: Vec<u8> = hex
                .split(' ')
                .filter_map(|h| u8::from_str_radix(h, 16).ok())
                .collect();
            let [head, x, y] = b[..] else {
                return None;
            };
            let signed = |v: u8, negative: bool| i32::from(v) - if negative { 256 } else { 0 };
            Some((
                signed(x, head & 0x10 != 0),
                signed(y, head & 0x20 != 0),
                head & 7,
            ))
        })
        .collect()
}

/// The mouse through the window: Ctrl+Alt+G grabs it (the title says how to let go),
/// xdotool moves and clicks, and the guest (the mouse probe ROM) prints the PS/2 packets it
/// got on IRQ12; Ctrl+Alt+G releases it again.
#[test]
fn sdl_mouse_grab_moves_and_clicks_reach_the_guest() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("sdl-mouse");
    let rom = dir.join("mouse.rom");
    std::fs::write(&rom, nestor_roms::mouse_probe()).expect("write rom");
    let log = dir.join("mouse.txt");
    let (_xvfb, display) = start_xvfb();
    let debugcon = format!("file:{}", log.display());
    let rom_arg = rom.display().to_string();
    let args = [
        "run",
        "--display",
        "sdl",
        "--serial",
        "none",
        "--bios",
        rom_arg.as_str(),
        "--debugcon",
        debugcon.as_str(),
    ];
    let (_nestor, window) = start_window(&display, &dir, &args, "^Nestor");
    let printed = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_printed = |what: &str, check: &PacketCheck<'_>| {
        let start = Instant::now();
        loop {
            let text = printed();
            if text.contains("mouse ready") && check(&probe_packets(&text)) {
                return probe_packets(&text).len();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the guest never got {what}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_printed("the mouse enabled", &|_| true);
    title_becomes(&display, &window, "Ctrl+Alt+G grabs the mouse", true);
    xdotool(&display, &["key", "ctrl+alt+g"]);
    title_becomes(
        &display,
        &window,
        "mouse grabbed (Ctrl+Alt+G releases)",
        true,
    );

    // Each step looks only at the packets after the previous step's.
    let mut seen = 0;
    let mut step = |what: &str, action: &[&str], check: &PacketCheck<'_>| {
        std::thread::sleep(Duration::from_millis(200));
        xdotool(&display, action);
        let from = seen;
        seen = wait_printed(what, &|p| p.len() > from && check(&p[from..]));
    };
    step(
        "a move right",
        &["mousemove_relative", "--", "30", "0"],
        &|p| {
            p.iter().any(|&(x, y, b)| x > 0 && y == 0 && b == 0)
                && p.iter().all(|&(x, _, _)| x >= 0)
        },
    );
    step(
        "a move down",
        &["mousemove_relative", "--", "0", "25"],
        &|p| {
            // Down on the screen is negative Y for PS/2.
            p.iter().any(|&(x, y, _)| y < 0 && x == 0) && p.iter().all(|&(_, y, _)| y <= 0)
        },
    );
    step(
        "a move up and left",
        &["mousemove_relative", "--", "-20", "-20"],
        &|p| p.iter().any(|&(x, y, _)| x < 0 && y > 0),
    );
    step("a left click", &["click", "1"], &|p| {
        p.iter().any(|&(_, _, b)| b == 1) && p.last().is_some_and(|&(_, _, b)| b == 0)
    });
    step("a right click", &["click", "3"], &|p| {
        p.iter().any(|&(_, _, b)| b == 2) && p.last().is_some_and(|&(_, _, b)| b == 0)
    });

    xdotool(&display, &["key", "ctrl+alt+g"]);
    title_becomes(&display, &window, "Ctrl+Alt+G grabs the mouse", true);
    // Released: moves no longer reach the guest.
    let before = probe_packets(&printed()).len();
    xdotool(&display, &["mousemove_relative", "--", "30", "30"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(probe_packets(&printed()).len(), before, "{}", printed());
    // A click in the window grabs again; that click is the window's, not the guest's.
    xdotool(&display, &["mousemove", "--window", &window, "200", "200"]);
    xdotool(&display, &["click", "1"]);
    title_becomes(
        &display,
        &window,
        "mouse grabbed (Ctrl+Alt+G releases)",
        true,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(probe_packets(&printed()).len(), before, "{}", printed());
    eprintln!("the guest printed:\n{}", printed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn display_sdl_without_a_display_is_a_clear_error() {
    let out = nestor()
        .args([
            "run",
            "--display",
            "sdl",
            "--demo",
            "tetris",
            "--serial",
            "none",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run nestor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let error: Vec<&str> = stderr.lines().filter(|l| l.contains("nestor:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(error[0].contains("needs a display"), "{stderr}");
}

#[test]
fn without_a_display_runs_are_headless() {
    // No display in the environment, with and without --display none; and --display none
    // with a DISPLAY that names no server.
    for (env, flag) in [
        (None, None),
        (None, Some("none")),
        (Some(":9999"), Some("none")),
    ] {
        let mut cmd = nestor();
        cmd.args([
            "run",
            "--demo",
            "tetris",
            "--serial",
            "none",
            "--deterministic",
        ])
        .args(["--max-insns", "2000000"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
        if let Some(d) = env {
            cmd.env("DISPLAY", d);
        }
        if let Some(d) = flag {
            cmd.args(["--display", d]);
        }
        let out = cmd.output().expect("run nestor");
        // Exit status 6: the budget ran out, so the guest ran with no window.
        assert_eq!(out.status.code(), Some(6), "{out:?}");
    }
}
