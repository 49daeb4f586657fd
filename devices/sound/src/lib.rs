//! The machine's audio path, with no host audio in it.
//!
//! Sound devices (PC speaker, Sound Blaster, OPL) render 16-bit stereo frames at the fixed
//! [`SAMPLE_RATE`], each frame stamped with its index on the virtual clock
//! (`frame = ns * SAMPLE_RATE / 1e9`), and write them into a [`SoundChannel`]. The [`Mixer`]
//! sums the channels frame by frame and hands finished frames to the [`AudioSink`]s a frontend
//! attached (a WAV file, cpal). Since every frame's place comes from virtual time, a
//! deterministic run produces the same samples whatever the host does.
//!
//! ```
//! use nestor_sound::{Mixer, Frame, AudioSink};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone, Default)]
//! struct Capture(Arc<Mutex<Vec<Frame>>>);
//! impl AudioSink for Capture {
//!     fn write(&mut self, frames: &[Frame]) {
//!         self.0.lock().unwrap().extend_from_slice(frames);
//!     }
//! }
//!
//! let mixer = Mixer::new();
//! let capture = Capture::default();
//! mixer.add_sink(Box::new(capture.clone()));
//! let a = mixer.channel("a");
//! let b = mixer.channel("b");
//! a.write(0, &[]); // both active: the mix waits for the slower one
//! b.write(0, &[[1, 2]; 2]);
//! a.write(0, &[[100, 100]; 4]);
//! b.set_idle(2); // b is silent from frame 2 on
//! assert_eq!(*capture.0.lock().unwrap(), vec![[101, 102], [101, 102], [100, 100], [100, 100]]);
//! ```

pub mod analysis;
mod mixer;

pub use mixer::{Mixer, SoundChannel};

/// Frames per second of every channel and of the mixer's output.
pub const SAMPLE_RATE: u32 = 48_000;

/// One stereo sample pair: left, right.
pub type Frame = [i16; 2];

/// Where finished audio goes (a WAV file, a host audio device). A host resource: it lives
/// outside every device's state.
pub trait AudioSink: Send {
    /// The next frames, in order, with no gaps (silence is written as zeros).
    fn write(&mut self, frames: &[Frame]);
    /// The machine stopped: push buffered frames to their destination.
    fn flush(&mut self) {}
}

/// Index of the frame playing at virtual time `ns`.
#[must_use]
pub fn frame_at_ns(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(SAMPLE_RATE) / 1_000_000_000) as u64
}

/// Virtual time at which frame `frame` starts (the first ns whose [`frame_at_ns`] is `frame`).
#[must_use]
pub fn ns_at_frame(frame: u64) -> u64 {
    let ns = (u128::from(frame) * 1_000_000_000).div_ceil(u128::from(SAMPLE_RATE));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_ns_round_trip() {
        for f in [0u64, 1, 47_999, 48_000, 123_456_789] {
            assert_eq!(frame_at_ns(ns_at_frame(f)), f);
            assert_eq!(
                frame_at_ns(ns_at_frame(f).saturating_sub(1)),
                f.saturating_sub(1)
            );
        }
        assert_eq!(frame_at_ns(1_000_000_000), 48_000);
        assert_eq!(
            frame_at_ns(u64::MAX),
            (u128::from(u64::MAX) * 48 / 1_000_000) as u64
        );
    }
}
