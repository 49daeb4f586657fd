//! `--screenshot`, `--screenshot-at` and `--vga-text` end to end, on Nestor's BIOS with no disk:
//! it prints its banner on the VGA text screen, finds nothing to boot and halts for ever.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit status of a guest halted with interrupts disabled.
const HALTED_FOREVER: i32 = 8;

fn nestor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nestor"))
        .args(["run", "--bios", "nestor", "--clock", "deterministic"])
        .args(["--serial", "none"])
        .args(args)
        .output()
        .expect("run nestor")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nestor-display-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A decoded 8-bit RGB picture.
struct Picture {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Picture {
    fn load(path: &Path) -> Self {
        let file = std::io::BufReader::new(std::fs::File::open(path).expect("open png"));
        let mut reader = png::Decoder::new(file).read_info().expect("png header");
        let mut rgb = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut rgb).expect("png data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        rgb.truncate(info.buffer_size());
        Self {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y * self.width + x) as usize * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// How many pixels of the rectangle differ from `background`.
    fn lit(&self, x: std::ops::Range<u32>, y: std::ops::Range<u32>, background: [u8; 3]) -> usize {
        y.flat_map(|y| x.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| self.pixel(x, y) != background)
            .count()
    }
}

fn assert_status(out: &Output, status: i32) {
    assert_eq!(
        out.status.code(),
        Some(status),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bios_banner_is_on_the_text_screen_and_the_screenshot() {
    let (text, shot) = (tmp("banner.txt"), tmp("banner.png"));
    let out = nestor(&["--vga-text", arg(&text), "--screenshot", arg(&shot)]);
    assert_status(&out, HALTED_FOREVER);
    let screen = std::fs::read_to_string(&text).expect("text screen");
    assert!(screen.starts_with("Nestor BIOS\n"), "{screen}");
    assert!(screen.contains("No bootable device"), "{screen}");
    assert_eq!(screen.lines().count(), 25, "{screen}");

    let picture = Picture::load(&shot);
    // Mode 3: 80x25 cells of 9 (or 8) dots by 16 lines.
    assert!(
        [(720, 400), (640, 400)].contains(&(picture.width, picture.height)),
        "{}x{}",
        picture.width,
        picture.height
    );
    let cell_w = picture.width / 80;
    let background = picture.pixel(picture.width - 1, picture.height - 1);
    // "Nestor BIOS" is the first 11 cells of row 0; the rest of that row is blank.
    let banner = picture.lit(0..11 * cell_w, 0..16, background);
    assert!(banner > 100, "only {banner} banner pixels lit");
    assert_eq!(
        picture.lit(20 * cell_w..picture.width, 0..16, background),
        0
    );
}

#[test]
fn screenshot_at_is_taken_early_and_the_run_goes_on() {
    let (text, shot) = (tmp("early.txt"), tmp("early.png"));
    let out = nestor(&[
        "--screenshot-at",
        "1",
        "--screenshot",
        arg(&shot),
        "--vga-text",
        arg(&text),
    ]);
    // The run went on to the end after the screenshot...
    assert_status(&out, HALTED_FOREVER);
    let screen = std::fs::read_to_string(&text).expect("text screen");
    assert!(screen.contains("No bootable device"), "{screen}");
    // ...which shows the screen before the BIOS wrote anything on it.
    let picture = Picture::load(&shot);
    let background = picture.pixel(0, picture.height - 1);
    assert_eq!(
        picture.lit(0..picture.width, 0..picture.height, background),
        0
    );
}

#[test]
fn screenshot_is_written_when_the_budget_runs_out_first() {
    let shot = tmp("budget.png");
    let out = nestor(&[
        "--max-insns",
        "5",
        "--screenshot-at",
        "1000",
        "--screenshot",
        arg(&shot),
    ]);
    assert_status(&out, 6);
    let picture = Picture::load(&shot);
    assert!(picture.width > 0 && picture.height > 0);
}

#[test]
fn screenshot_at_needs_a_screenshot_path() {
    let out = nestor(&["--screenshot-at", "10"]);
    assert_status(&out, 2);
}
