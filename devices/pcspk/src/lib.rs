//! The PC speaker: a square wave from the 8254's counter 2, let through by port 0x61 bit 1.
//!
//! The PIT owns counter 2 and port 0x61; it sends every change of what the speaker hears
//! ([`nestor_pit::SpeakerInput`]) down a [`SpeakerWire`]. This device turns that timeline
//! into samples: each output frame is the average of the line's level over the PIT clock
//! ticks the frame spans (a box filter, so a tone keeps its pitch and loses most aliasing).
//! While the speaker is enabled it renders every 10 ms of virtual time; disabled, it is idle
//! and costs nothing.

#[cfg(test)]
mod tests;

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, PluginDescriptor,
    PortRange, Snapshot, StateError,
};
use nestor_pit::{ns_to_ticks, SpeakerInput, SpeakerLine};
use nestor_sound::{frame_at_ns, ns_at_frame, Frame, SoundChannel};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

/// Version of [`PcSpeakerState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// Peak sample value of the square wave (about a quarter of full scale).
pub const AMPLITUDE: i32 = 8_000;

/// Frames rendered per timer call while the speaker is on (10 ms).
const FLUSH_FRAMES: u64 = 480;

/// Frames rendered per write to the mixer.
const CHUNK: u64 = 1024;

/// Plugin descriptor (no options). A speaker built this way hears nothing until the machine
/// connects its [`PcSpeaker::wire`] to the PIT and gives it a mixer channel.
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "pcspk",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(PcSpeaker::new(SoundChannel::detached())))
}

/// Guest-visible state: what the speaker hears and how far it has played.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PcSpeakerState {
    pub input: SpeakerInput,
    /// Frames before this one were rendered.
    pub rendered_frame: u64,
}

struct Core {
    state: PcSpeakerState,
    channel: SoundChannel,
    scratch: Vec<Frame>,
}

impl Core {
    /// The sample of frame `f`: the line's mean level over its ticks, centred on zero.
    fn sample(&mut self, f: u64) -> i16 {
        let t0 = ns_to_ticks(ns_at_frame(f));
        let t1 = ns_to_ticks(ns_at_frame(f.saturating_add(1))).max(t0 + 1);
        let c2 = &mut self.state.input.counter2;
        let mut high = 0i64;
        for t in t0..t1 {
            c2.settle(t);
            high += i64::from(c2.output(t));
        }
        let n = (t1 - t0) as i64;
        (i64::from(AMPLITUDE) * (2 * high - n) / n) as i16
    }

    fn render_until(&mut self, frame: u64) {
        let start = self.state.rendered_frame;
        if frame <= start {
            return;
        }
        if !self.state.input.enabled {
            self.channel.set_idle(frame);
            self.state.rendered_frame = frame;
            return;
        }
        let mut f = start;
        while f < frame {
            let n = (frame - f).min(CHUNK);
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            for i in 0..n {
                let s = self.sample(f + i);
                scratch.push([s, s]);
            }
            self.channel.write(f, &scratch);
            self.scratch = scratch;
            f += n;
        }
        self.state.rendered_frame = frame;
    }
}

/// The PC speaker.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_pcspk::PcSpeaker;
/// use nestor_pit::Pit;
/// use nestor_sound::{Mixer, SoundChannel};
///
/// let mixer = Mixer::new();
/// let mut speaker = PcSpeaker::new(mixer.channel("pcspk"));
/// let mut pit = Pit::new();
/// pit.connect_speaker(Box::new(speaker.wire()));
/// let mut ctx = FakeContext::new();
/// pit.io_write(0x43, 1, 0xb6, &mut ctx); // counter 2, LSB then MSB, mode 3
/// pit.io_write(0x42, 1, 0xa9, &mut ctx); // 1193182 / 0x0a9 ~ 7060 Hz
/// pit.io_write(0x42, 1, 0x00, &mut ctx);
/// pit.io_write(0x61, 1, 0x03, &mut ctx); // gate and speaker on
/// ctx.run_until(&mut speaker, 100_000_000);
/// assert_eq!(mixer.emitted_frames(), 4_800); // 100 ms at 48 kHz
/// ```
pub struct PcSpeaker {
    core: Arc<Mutex<Core>>,
}

/// The PIT's end of the speaker's input: give it to [`nestor_pit::Pit::connect_speaker`].
pub struct SpeakerWire {
    core: Arc<Mutex<Core>>,
}

fn lock(core: &Arc<Mutex<Core>>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl SpeakerLine for SpeakerWire {
    fn changed(&mut self, now_ns: u64, input: &SpeakerInput) {
        let mut core = lock(&self.core);
        core.render_until(frame_at_ns(now_ns));
        if core.state.input != *input {
            core.state.input = input.clone();
        }
        if !input.enabled {
            // Silent from here on: the mix must not wait for this channel.
            let frame = core.state.rendered_frame;
            core.channel.set_idle(frame);
        }
    }
}

impl PcSpeaker {
    /// A silent speaker playing into `channel`.
    #[must_use]
    pub fn new(channel: SoundChannel) -> Self {
        Self {
            core: Arc::new(Mutex::new(Core {
                state: PcSpeakerState::default(),
                channel,
                scratch: Vec::new(),
            })),
        }
    }

    /// The input wire, for the PIT.
    #[must_use]
    pub fn wire(&self) -> SpeakerWire {
        SpeakerWire {
            core: Arc::clone(&self.core),
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> PcSpeakerState {
        lock(&self.core).state.clone()
    }
}

impl Snapshot for PcSpeaker {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &lock(&self.core).state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        lock(&self.core).state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for PcSpeaker {
    fn name(&self) -> &str {
        "pcspk"
    }

    fn ports(&self) -> Vec<PortRange> {
        Vec::new()
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}

    fn reset(&mut self) {
        let mut core = lock(&self.core);
        core.state.input = SpeakerInput::default();
        let frame = core.state.rendered_frame;
        core.channel.set_idle(frame);
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        let core = lock(&self.core);
        core.state
            .input
            .enabled
            .then(|| ns_at_frame(core.state.rendered_frame.saturating_add(FLUSH_FRAMES)))
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        lock(&self.core).render_until(frame_at_ns(ctx.now_ns()));
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
