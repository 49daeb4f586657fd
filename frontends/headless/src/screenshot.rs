//! The display without a window: the VGA picture as a PNG file and the text screen as a UTF-8
//! file, taken when the run ends or after a given number of instructions.

use anyhow::Context;
use nestor_machine::{Machine, MachineExit};
use nestor_vga::{Frame, Vga};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// What to save of the display, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisplayOutputs {
    /// PNG of the picture, written when the run ends (or at `screenshot_at`).
    pub screenshot: Option<PathBuf>,
    /// Take the screenshot once this many instructions have been spent instead.
    pub screenshot_at: Option<u64>,
    /// The text screen as UTF-8 lines, written when the run ends.
    pub vga_text: Option<PathBuf>,
}

/// Write `frame` as an 8-bit RGB PNG.
///
/// ```
/// let frame = nestor_vga::Frame { width: 2, height: 1, rgb: vec![255, 0, 0, 0, 0, 255] };
/// let path = std::env::temp_dir().join(format!("nestor-doc-{}.png", std::process::id()));
/// nestor_headless::write_png(&frame, &path).unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_png(frame: &Frame, path: &Path) -> anyhow::Result<()> {
    let expected = u64::from(frame.width) * u64::from(frame.height) * 3;
    anyhow::ensure!(
        frame.width > 0 && frame.height > 0 && frame.rgb.len() as u64 == expected,
        "cannot write a {}x{} picture of {} bytes as PNG",
        frame.width,
        frame.height,
        frame.rgb.len()
    );
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), frame.width, frame.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = || -> Result<(), png::EncodingError> {
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&frame.rgb)?;
        writer.finish()
    };
    encode().with_context(|| format!("cannot write {}", path.display()))
}

/// The picture the VGA shows now, if the machine has one.
pub fn capture(machine: &mut Machine) -> Option<Frame> {
    machine.board.device_mut::<Vga>().map(|vga| vga.render())
}

/// Write the picture to `path`.
pub fn save_screenshot(machine: &mut Machine, path: &Path) -> anyhow::Result<()> {
    let frame = capture(machine).context("the machine has no VGA adapter")?;
    write_png(&frame, path)
}

/// Write the text screen to `path`; a graphics mode leaves the file empty and says so.
pub fn save_vga_text(machine: &mut Machine, path: &Path) -> anyhow::Result<()> {
    let text = machine
        .board
        .device_mut::<Vga>()
        .context("the machine has no VGA adapter")?
        .text_screen();
    if text.is_none() {
        eprintln!(
            "nestor: the VGA is in a graphics mode: {} is empty",
            path.display()
        );
    }
    std::fs::write(path, text.unwrap_or_default())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Run like [`Machine::run`], saving the display as `outputs` asks. The files of the end of
/// the run are written whatever the reason it ended, an engine error included.
pub fn run_with_display(
    machine: &mut Machine,
    max_insns: Option<u64>,
    outputs: &DisplayOutputs,
) -> anyhow::Result<MachineExit> {
    let early = outputs
        .screenshot_at
        .filter(|&n| max_insns.is_none_or(|max| n < max));
    let mut shot_taken = false;
    let result = match (early, &outputs.screenshot) {
        (Some(n), Some(path)) => match machine.run(Some(n)) {
            Ok(MachineExit::BudgetExhausted) => {
                save_screenshot(machine, path)?;
                shot_taken = true;
                machine.run(max_insns)
            }
            other => other,
        },
        _ => machine.run(max_insns),
    };
    let mut saved = Ok(());
    if let (Some(path), false) = (&outputs.screenshot, shot_taken) {
        saved = save_screenshot(machine, path);
    }
    if let Some(path) = &outputs.vga_text {
        saved = saved.and(save_vga_text(machine, path));
    }
    // An engine error says more than a file that could not be written.
    let exit = result?;
    saved.map(|()| exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &Path) -> (png::OutputInfo, Vec<u8>) {
        let file = std::io::BufReader::new(std::fs::File::open(path).expect("open"));
        let mut reader = png::Decoder::new(file).read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png data");
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("nestor-headless-{}-{name}", std::process::id()))
    }

    #[test]
    fn png_round_trip() {
        let (width, height) = (7u32, 3u32);
        let rgb: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let frame = Frame { width, height, rgb };
        let path = tmp("round.png");
        write_png(&frame, &path).expect("write");
        let (info, data) = decode(&path);
        assert_eq!((info.width, info.height), (width, height));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        assert_eq!(data, frame.rgb);
        std::fs::remove_file(path).expect("remove");
    }

    #[test]
    fn inconsistent_frames_are_errors() {
        let path = tmp("bad.png");
        let short = Frame {
            width: 2,
            height: 2,
            rgb: vec![0; 11],
        };
        assert!(write_png(&short, &path).is_err());
        let empty = Frame {
            width: 0,
            height: 0,
            rgb: Vec::new(),
        };
        assert!(write_png(&empty, &path).is_err());
        let _ = std::fs::remove_file(path);
    }
}
