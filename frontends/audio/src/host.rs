//! Playing the mix on the host's sound card through cpal.
//!
//! cpal's stream is not `Send`, so it lives on a thread of its own; the mixer's sink only
//! pushes frames into a shared queue that the stream's callback drains, converting to the
//! device's rate and sample format. The queue holds at most a quarter of a second: when the
//! guest runs faster than real time the oldest frames are dropped, when slower the card
//! plays silence.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use nestor_sound::{AudioSink, Frame, SAMPLE_RATE};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

const MAX_QUEUED: usize = SAMPLE_RATE as usize / 4;

type Queue = Arc<Mutex<VecDeque<Frame>>>;

/// The mixer's sink feeding the host's sound card. Dropping it stops playback.
pub struct HostOutput {
    queue: Queue,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AudioSink for HostOutput {
    fn write(&mut self, frames: &[Frame]) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.extend(frames.iter().copied());
        let excess = q.len().saturating_sub(MAX_QUEUED);
        q.drain(..excess);
    }
}

impl Drop for HostOutput {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Open the host's default output device. With none (a headless machine, CI, no ALSA
/// device), log one line and return `None`: the machine's sound is then discarded.
#[must_use]
pub fn open_host_output() -> Option<HostOutput> {
    if let Err(why) = sound_system_present() {
        tracing::info!("audio: {why}; sound is discarded");
        return None;
    }
    let queue: Queue = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (q, s) = (Arc::clone(&queue), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("nestor-audio".into())
        .spawn(move || match start_stream(q) {
            Ok((stream, desc)) => {
                let _ = ready_tx.send(Ok(desc));
                while !s.load(Ordering::Relaxed) {
                    std::thread::park_timeout(std::time::Duration::from_millis(200));
                }
                drop(stream);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .ok()?;
    match ready_rx.recv() {
        Ok(Ok(desc)) => {
            tracing::info!("audio: playing on {desc}");
            Some(HostOutput {
                queue,
                stop,
                thread: Some(thread),
            })
        }
        Ok(Err(e)) => {
            tracing::info!("audio: no host sound device ({e}); sound is discarded");
            let _ = thread.join();
            None
        }
        Err(_) => {
            tracing::info!("audio: the audio thread failed; sound is discarded");
            None
        }
    }
}

/// On Linux, whether ALSA has a card or a sound server listens: without either, opening the
/// default device only makes ALSA print a screenful of errors before failing.
fn sound_system_present() -> Result<(), String> {
    if !cfg!(target_os = "linux") || std::path::Path::new("/dev/snd").exists() {
        return Ok(());
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
    let server = std::env::var_os("PULSE_SERVER").is_some()
        || runtime
            .is_some_and(|d| d.join("pulse/native").exists() || d.join("pipewire-0").exists());
    if server {
        Ok(())
    } else {
        Err("no host sound device (no /dev/snd, no sound server)".into())
    }
}

/// Converts the queued 48 kHz frames to the device's rate by linear interpolation.
struct Resampler {
    queue: Queue,
    step: f64,
    pos: f64,
    prev: [f32; 2],
    next: [f32; 2],
}

impl Resampler {
    fn next_frame(&mut self, q: &mut VecDeque<Frame>) -> [f32; 2] {
        self.pos += self.step;
        while self.pos >= 1.0 {
            self.pos -= 1.0;
            self.prev = self.next;
            let [l, r] = q.pop_front().unwrap_or([0, 0]);
            self.next = [f32::from(l) / 32768.0, f32::from(r) / 32768.0];
        }
        let t = self.pos as f32;
        [
            self.prev[0] + (self.next[0] - self.prev[0]) * t,
            self.prev[1] + (self.next[1] - self.prev[1]) * t,
        ]
    }

    fn fill<T: cpal::SizedSample + cpal::FromSample<f32>>(
        &mut self,
        out: &mut [T],
        channels: usize,
    ) {
        let queue = Arc::clone(&self.queue);
        let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
        for frame in out.chunks_mut(channels.max(1)) {
            let [l, r] = self.next_frame(&mut q);
            for (i, s) in frame.iter_mut().enumerate() {
                let v = match (i, channels) {
                    (_, 1) => (l + r) / 2.0,
                    (0, _) => l,
                    (1, _) => r,
                    _ => 0.0,
                };
                *s = T::from_sample(v);
            }
        }
    }
}

fn start_stream(queue: Queue) -> Result<(cpal::Stream, String), String> {
    let host = cpal::default_host();
    let device = host
        .default_output_device()
        .ok_or_else(|| "no default output device".to_string())?;
    let supported = device.default_output_config().map_err(|e| e.to_string())?;
    let format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    let channels = usize::from(config.channels);
    let mut resampler = Resampler {
        queue,
        step: f64::from(SAMPLE_RATE) / f64::from(config.sample_rate.0.max(1)),
        pos: 0.0,
        prev: [0.0; 2],
        next: [0.0; 2],
    };
    let err = |e: cpal::StreamError| tracing::warn!("audio stream: {e}");
    let stream = match format {
        cpal::SampleFormat::F32 => device.build_output_stream(
            &config,
            move |out: &mut [f32], _: &cpal::OutputCallbackInfo| resampler.fill(out, channels),
            err,
            None,
        ),
        cpal::SampleFormat::I16 => device.build_output_stream(
            &config,
            move |out: &mut [i16], _: &cpal::OutputCallbackInfo| resampler.fill(out, channels),
            err,
            None,
        ),
        cpal::SampleFormat::U16 => device.build_output_stream(
            &config,
            move |out: &mut [u16], _: &cpal::OutputCallbackInfo| resampler.fill(out, channels),
            err,
            None,
        ),
        other => return Err(format!("unsupported sample format {other}")),
    }
    .map_err(|e| e.to_string())?;
    stream.play().map_err(|e| e.to_string())?;
    let name = device
        .name()
        .unwrap_or_else(|_| "the default device".into());
    Ok((stream, format!("{name} at {} Hz", config.sample_rate.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampler_interpolates_and_pads_with_silence() {
        let queue: Queue = Arc::default();
        queue
            .lock()
            .unwrap()
            .extend([[16384, -16384], [16384, -16384]]);
        let mut r = Resampler {
            queue: Arc::clone(&queue),
            step: 0.5,
            pos: 0.0,
            prev: [0.0; 2],
            next: [0.0; 2],
        };
        let mut out = [0f32; 12];
        r.fill(&mut out, 2);
        assert_eq!(out[0..4], [0.0; 4], "one frame of latency");
        assert_eq!(
            out[4..6],
            [0.25, -0.25],
            "halfway from silence to the first frame"
        );
        assert_eq!(out[6..8], [0.5, -0.5]);
        let mut mono = [0i16; 8];
        r.fill(&mut mono, 1);
        assert_eq!(mono[6..], [0, 0], "the queue ran dry: silence");
    }

    #[test]
    fn opening_without_a_device_is_not_an_error() {
        // Either a device plays or the call logs and returns None: it never fails the run.
        let out = open_host_output();
        if let Some(mut sink) = out {
            sink.write(&[[0, 0]; 10]);
        } else {
            eprintln!("no host sound device here: checked the None path");
        }
    }
}
