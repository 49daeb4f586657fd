//! Summing channels that each render at their own pace into one gap-free stream.

use crate::{AudioSink, Frame, SAMPLE_RATE};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// A channel may run ahead of the slowest active one by this many frames; past it the mixer
/// emits anyway and the laggard's late frames are dropped (a device that forgot to flush must
/// not hold every other one's sound in memory for ever).
const MAX_LAG_FRAMES: u64 = 2 * SAMPLE_RATE as u64;

/// Frames mixed per pass, so that a long silence is never materialized at once.
const CHUNK: usize = 4096;

#[derive(Default)]
struct Channel {
    name: String,
    /// Rendered frames starting at `data_start`; frames outside are silence.
    data: VecDeque<Frame>,
    data_start: u64,
    /// Every frame before this one is known (rendered or silent).
    end: u64,
    /// Silent from `end` on until the next write: the channel never holds the mix back.
    idle: bool,
}

impl Channel {
    fn value(&self, frame: u64) -> Frame {
        frame
            .checked_sub(self.data_start)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.data.get(i))
            .copied()
            .unwrap_or([0, 0])
    }

    fn drop_before(&mut self, frame: u64) {
        let n = frame.saturating_sub(self.data_start);
        let n = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        self.data.drain(..n);
        self.data_start = self.data_start.max(frame);
    }
}

#[derive(Default)]
struct Inner {
    channels: Vec<Channel>,
    /// Frames before this one went to the sinks.
    emitted: u64,
    sinks: Vec<Box<dyn AudioSink>>,
    scratch: Vec<Frame>,
}

impl Inner {
    /// The frame up to which every channel's sound is known.
    fn limit(&self) -> u64 {
        let max_end = self.channels.iter().map(|c| c.end).max().unwrap_or(0);
        let active = self
            .channels
            .iter()
            .filter(|c| !c.idle)
            .map(|c| c.end)
            .min();
        let limit = active.unwrap_or(max_end);
        limit.max(max_end.saturating_sub(MAX_LAG_FRAMES))
    }

    fn emit_until(&mut self, limit: u64) {
        while self.emitted < limit {
            let n = usize::try_from(limit - self.emitted)
                .unwrap_or(CHUNK)
                .min(CHUNK);
            let start = self.emitted;
            if !self.sinks.is_empty() {
                self.scratch.clear();
                for i in 0..n as u64 {
                    let (mut l, mut r) = (0i32, 0i32);
                    for c in &self.channels {
                        let [cl, cr] = c.value(start + i);
                        l += i32::from(cl);
                        r += i32::from(cr);
                    }
                    self.scratch.push([clamp16(l), clamp16(r)]);
                }
                for sink in &mut self.sinks {
                    sink.write(&self.scratch);
                }
            }
            self.emitted = start + n as u64;
            for c in &mut self.channels {
                c.drop_before(self.emitted);
                c.end = c.end.max(self.emitted);
            }
        }
    }

    fn emit(&mut self) {
        let limit = self.limit();
        self.emit_until(limit);
    }

    fn write(&mut self, id: usize, start: u64, frames: &[Frame]) {
        let emitted = self.emitted;
        let Some(c) = self.channels.get_mut(id) else {
            return;
        };
        if c.idle {
            // Silence up to `start` is known now: let the others play past it first.
            c.end = c.end.max(start);
            self.emit();
        }
        let Some(c) = self.channels.get_mut(id) else {
            return;
        };
        c.idle = false;
        // Frames already played or already rendered are dropped (a restore rewound time).
        let from = c.end.max(emitted);
        let skip = usize::try_from(from.saturating_sub(start)).unwrap_or(usize::MAX);
        let Some(frames) = frames.get(skip..) else {
            return;
        };
        let start = start.max(from);
        let data_end = c.data_start + c.data.len() as u64;
        if !c.data.is_empty() && start.saturating_sub(data_end) > MAX_LAG_FRAMES {
            // A jump far ahead (a restored state from later on): play what is pending first
            // rather than fill the gap with silence in memory.
            self.emit_until(data_end);
        }
        let Some(c) = self.channels.get_mut(id) else {
            return;
        };
        if c.data.is_empty() {
            c.data_start = start;
        } else {
            let gap = start.saturating_sub(c.data_start + c.data.len() as u64);
            c.data.extend(std::iter::repeat_n([0, 0], gap as usize));
        }
        c.data.extend(frames.iter().copied());
        c.end = start + frames.len() as u64;
        self.emit();
    }
}

fn clamp16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The machine's audio mixer. Clones share one mixer.
#[derive(Clone, Default)]
pub struct Mixer {
    inner: Arc<Mutex<Inner>>,
}

impl Mixer {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A sink that panicked poisons nothing we cannot go on with.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new input, silent until its device writes to it.
    #[must_use]
    pub fn channel(&self, name: &str) -> SoundChannel {
        let mut inner = self.lock();
        let end = inner.emitted;
        inner.channels.push(Channel {
            name: name.to_string(),
            end,
            idle: true,
            ..Channel::default()
        });
        SoundChannel {
            mixer: Some(self.clone()),
            id: inner.channels.len() - 1,
        }
    }

    /// Names of the channels, in creation order.
    #[must_use]
    pub fn channel_names(&self) -> Vec<String> {
        self.lock()
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Send mixed frames to `sink` too, from the next frame on.
    pub fn add_sink(&self, sink: Box<dyn AudioSink>) {
        self.lock().sinks.push(sink);
    }

    /// Frames handed to the sinks so far.
    #[must_use]
    pub fn emitted_frames(&self) -> u64 {
        self.lock().emitted
    }

    /// The machine stopped at `frame`: emit everything known before it and flush the sinks.
    /// Idle channels are silent up to `frame`; a channel that was playing ends the stream at
    /// the last frame it rendered, so the recording never ends in silence the guest did not
    /// play.
    pub fn finish(&self, frame: u64) {
        let mut inner = self.lock();
        let playing = inner
            .channels
            .iter()
            .filter(|c| !c.idle)
            .map(|c| c.end)
            .min();
        let limit = playing.unwrap_or(frame).min(frame);
        inner.emit_until(limit);
        for sink in &mut inner.sinks {
            sink.flush();
        }
    }
}

/// One device's input to the [`Mixer`]. A device keeps the index of the next frame it will
/// render in its saved state and writes frames in order.
pub struct SoundChannel {
    mixer: Option<Mixer>,
    id: usize,
}

impl SoundChannel {
    /// A channel connected to nothing (a device built without a machine around it).
    #[must_use]
    pub fn detached() -> Self {
        Self { mixer: None, id: 0 }
    }

    /// Frames `start..start + frames.len()`. A gap before `start` is silence; frames the
    /// channel already wrote, or that were already played, are ignored.
    pub fn write(&self, start: u64, frames: &[Frame]) {
        if let Some(m) = &self.mixer {
            m.lock().write(self.id, start, frames);
        }
    }

    /// Nothing to play from `frame` on until the next [`SoundChannel::write`]: the mix goes
    /// on without waiting for this channel.
    pub fn set_idle(&self, frame: u64) {
        if let Some(m) = &self.mixer {
            let mut inner = m.lock();
            if let Some(c) = inner.channels.get_mut(self.id) {
                c.end = c.end.max(frame);
                c.idle = true;
            }
            inner.emit();
        }
    }
}

impl Default for SoundChannel {
    fn default() -> Self {
        Self::detached()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Frame>>>);
    impl AudioSink for Capture {
        fn write(&mut self, frames: &[Frame]) {
            self.0.lock().unwrap().extend_from_slice(frames);
        }
    }

    fn setup() -> (Mixer, Capture) {
        let m = Mixer::new();
        let c = Capture::default();
        m.add_sink(Box::new(c.clone()));
        (m, c)
    }

    #[test]
    fn slowest_active_channel_holds_the_mix() {
        let (m, cap) = setup();
        let a = m.channel("a");
        let b = m.channel("b");
        a.write(0, &[[1, 1]; 10]);
        assert_eq!(m.emitted_frames(), 10, "b is idle: a alone decides");
        b.write(10, &[[2, 2]; 3]);
        a.write(10, &[[1, 1]; 1]);
        assert_eq!(m.emitted_frames(), 11, "b ran ahead, a is behind");
        a.write(11, &[[1, 1]; 5]);
        assert_eq!(m.emitted_frames(), 13);
        let out = cap.0.lock().unwrap().clone();
        assert_eq!(out[9], [1, 1]);
        assert_eq!(out[10], [3, 3]);
        assert_eq!(out[12], [3, 3]);
    }

    #[test]
    fn silence_between_writes_is_emitted_in_place() {
        let (m, cap) = setup();
        let a = m.channel("a");
        a.write(0, &[[5, 5]; 2]);
        a.set_idle(2);
        a.write(100_000, &[[7, 7]; 1]);
        a.set_idle(100_001);
        m.finish(100_010);
        let b = m.channel("b");
        b.write(100_010, &[[1, 1]; 5]);
        m.finish(100_100); // b plays on: the stream ends where b stopped
        assert_eq!(m.emitted_frames(), 100_015);
        let out = cap.0.lock().unwrap().clone();
        assert_eq!(out.len(), 100_015);
        assert_eq!(out[1], [5, 5]);
        assert_eq!(out[2], [0, 0]);
        assert_eq!(out[99_999], [0, 0]);
        assert_eq!(out[100_000], [7, 7]);
        assert_eq!(out[100_001], [0, 0]);
    }

    #[test]
    fn rewritten_and_late_frames_are_dropped_and_sums_clip() {
        let (m, cap) = setup();
        let a = m.channel("a");
        let b = m.channel("b");
        b.write(0, &[]); // active: the mix waits for it
        a.write(0, &[[30_000, -30_000]; 4]);
        b.write(0, &[[30_000, -30_000]; 2]);
        b.write(1, &[[9, 9]; 3]); // frame 1 again: ignored
        a.write(2, &[[1, 1]; 2]); // already written: ignored
        let out = cap.0.lock().unwrap().clone();
        assert_eq!(out[0], [i16::MAX, i16::MIN]);
        assert_eq!(out[2], [30_009, -29_991]);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn a_stalled_channel_cannot_hold_sound_for_ever() {
        let (m, _cap) = setup();
        let a = m.channel("a");
        let b = m.channel("b");
        b.write(0, &[[0, 0]; 1]);
        let second = vec![[1, 1]; SAMPLE_RATE as usize];
        for s in 0..5u64 {
            a.write(s * u64::from(SAMPLE_RATE), &second);
        }
        assert!(m.emitted_frames() >= 3 * u64::from(SAMPLE_RATE));
        let detached = SoundChannel::detached();
        detached.write(0, &second);
        detached.set_idle(5);
        assert_eq!(m.channel_names(), vec!["a", "b"]);
    }

    #[test]
    fn a_jump_far_ahead_does_not_buffer_the_gap() {
        let m = Mixer::new();
        let a = m.channel("a");
        let b = m.channel("b");
        b.write(0, &[]);
        a.write(0, &[[1, 1]; 100]);
        a.write(3600 * u64::from(SAMPLE_RATE), &[[1, 1]; 1]);
        assert!(m.lock().channels.iter().all(|c| c.data.len() < 1000));
    }
}
