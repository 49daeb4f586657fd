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
    let _nestor = Reaped(
        nestor()
            .args([
                "run",
                "--display",
                "sdl",
                "--demo",
                "tetris",
                "--serial",
                "none",
            ])
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nestor"),
    );
    let start = Instant::now();
    let window = loop {
        let found = xdotool(&display, &["search", "--name", "^Nestor: tetris"]);
        if let Some(id) = found.lines().next() {
            break id.to_string();
        }
        assert!(start.elapsed() < PATIENCE, "no Nestor window appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
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
