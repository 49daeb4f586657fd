//! Creative Sound Blaster 16 at 0x220: the DSP (version 4.05: reset, direct DAC, 8- and
//! 16-bit mono/stereo PCM, single-cycle and auto-init, over ISA DMA channels 1 and 5), the
//! CT1745 mixer, and the OPL3 FM synthesizer at 0x220-0x223, 0x228-0x229 and 0x388-0x38B.
//!
//! The card cannot see the DMA controller, so the machine calls [`Sb16::service`] with it
//! after every access of either (see `machine/src/isa_dma.rs`); used alone, as a plugin,
//! its transfers move no data. Sound is rendered into a [`SoundChannel`] frame by frame
//! from the virtual clock: before every access to the card, on a timer at each block's end
//! (the interrupt) and every 10 ms while something plays.

mod dsp;
pub mod mixer;
#[cfg(test)]
mod tests;

pub use dsp::{DspState, Transfer};
pub use mixer::MixerState;

use mixer::reg;
use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, PluginDescriptor, PortRange, Snapshot, StateError,
};
use nestor_dma::Dma;
use nestor_opl3::{Opl3, Opl3State};
use nestor_sound::{frame_at_ns, ns_at_frame, Frame, SoundChannel};
use serde::{Deserialize, Serialize};

/// Version of [`Sb16State`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The card's base port.
pub const BASE: u16 = 0x220;
/// The AdLib-compatible OPL ports.
pub const ADLIB: u16 = 0x388;

/// Frames rendered per timer call while something plays (10 ms).
const FLUSH_FRAMES: u64 = 480;
/// Frames per write to the mixer.
const CHUNK: usize = 1024;

/// Plugin descriptor (no options). Built this way the card has no DMA controller and no
/// mixer channel: the machine builds it with [`Sb16::new`] inside its ISA DMA pairing.
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "sb16",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&[])?;
    Ok(Box::new(Sb16::new(SoundChannel::detached())))
}

/// Guest-visible state of the card.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Sb16State {
    pub dsp: DspState,
    pub mixer: MixerState,
    pub opl: Opl3State,
    /// Frames before this one were rendered.
    pub rendered_frame: u64,
}

/// The Sound Blaster 16.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_sb16::Sb16;
/// use nestor_sound::SoundChannel;
///
/// let mut sb = Sb16::new(SoundChannel::detached());
/// let mut ctx = FakeContext::new();
/// sb.io_write(0x226, 1, 1, &mut ctx); // DSP reset pulse
/// sb.io_write(0x226, 1, 0, &mut ctx);
/// assert_eq!(sb.io_read(0x22e, 1, &mut ctx) & 0x80, 0x80);
/// assert_eq!(sb.io_read(0x22a, 1, &mut ctx), 0xaa);
/// sb.io_write(0x22c, 1, 0xe1, &mut ctx); // version
/// assert_eq!((sb.io_read(0x22a, 1, &mut ctx), sb.io_read(0x22a, 1, &mut ctx)), (4, 5));
/// ```
pub struct Sb16 {
    dsp: DspState,
    mixer: MixerState,
    opl: Opl3,
    rendered_frame: u64,
    /// OPL sample that plays now (zero-order hold from the chip's 49716 Hz to 48 kHz).
    opl_current: [i32; 2],
    channel: SoundChannel,
    scratch: Vec<Frame>,
}

impl Sb16 {
    /// A card after power-on, playing into `channel`.
    #[must_use]
    pub fn new(channel: SoundChannel) -> Self {
        Self {
            dsp: DspState::default(),
            mixer: MixerState::default(),
            opl: Opl3::new(),
            rendered_frame: 0,
            opl_current: [0, 0],
            channel,
            scratch: Vec::new(),
        }
    }

    #[must_use]
    pub fn state(&self) -> Sb16State {
        Sb16State {
            dsp: self.dsp.clone(),
            mixer: self.mixer.clone(),
            opl: self.opl.state().clone(),
            rendered_frame: self.rendered_frame,
        }
    }

    fn set_state(&mut self, s: Sb16State) -> Result<(), StateError> {
        if s.mixer.registers.len() != 256 {
            return Err(StateError::Decode(
                "mixer register file is not 256 bytes".into(),
            ));
        }
        self.opl
            .set_state(s.opl)
            .map_err(|e| StateError::Decode(e.into()))?;
        self.dsp = s.dsp;
        self.mixer = s.mixer;
        self.rendered_frame = s.rendered_frame;
        self.opl_current = [0, 0];
        Ok(())
    }

    /// The DMA channel a transfer uses now.
    fn dma_channel(&self, t: &Transfer) -> u8 {
        let (low, high) = self.mixer.dma_channels();
        if t.bits16 {
            high
        } else {
            low
        }
    }

    /// Whether the card makes sound, or will at a known time without guest action.
    fn active(&self) -> bool {
        self.dsp.transfer.is_some() || self.dsp.direct_sample != 0x80 || !self.opl.silent()
    }

    /// Move the DSP up to virtual time `t`: fetch the frames whose time has come, end blocks
    /// (interrupt, auto-init or stop).
    fn advance_dsp(&mut self, t: u64, mut dma: Option<&mut Dma>, ctx: &mut dyn DeviceContext) {
        for _ in 0..64 {
            let Some(tr) = &self.dsp.transfer else {
                return;
            };
            if tr.paused_at_ns.is_some() {
                return;
            }
            let due = tr.due(t);
            if due > tr.done {
                let frames = due - tr.done;
                let channel = self.dma_channel(tr);
                let tr = tr.clone();
                let last = fetch(&tr, frames, channel, dma.as_deref_mut(), ctx);
                if let Some(frame) = last {
                    self.dsp.current = frame;
                }
                if let Some(live) = &mut self.dsp.transfer {
                    live.done = due;
                }
            }
            let Some(tr) = &mut self.dsp.transfer else {
                return;
            };
            if tr.done < tr.block_frames() || t < tr.block_end_ns() {
                return;
            }
            if tr.bits16 {
                self.dsp.irq16_pending = true;
            } else {
                self.dsp.irq8_pending = true;
            }
            if tr.auto_init && !tr.exit_after_block {
                tr.start_ns = tr.block_end_ns();
                tr.done = 0;
            } else {
                self.dsp.transfer = None;
                self.dsp.current = [0, 0];
            }
        }
    }

    /// The mixed frame that plays at virtual time `t`.
    fn frame(&mut self, t: u64, dma: Option<&mut Dma>, ctx: &mut dyn DeviceContext) -> Frame {
        self.advance_dsp(t, dma, ctx);
        let opl_index = u128::from(t) * u128::from(nestor_opl3::SAMPLE_RATE) / 1_000_000_000;
        let opl_index = opl_index as u64;
        let behind = opl_index
            .saturating_add(1)
            .saturating_sub(self.opl.state().samples);
        if self.opl.silent() {
            self.opl.skip(behind);
            self.opl_current = [0, 0];
        } else {
            for _ in 0..behind.min(4) {
                self.opl_current = self.opl.generate();
            }
            self.opl.skip(behind.saturating_sub(4));
        }
        let pcm = if self.dsp.transfer.is_some() {
            self.dsp.current
        } else {
            let v = (i16::from(self.dsp.direct_sample) - 128) << 8;
            [v, v]
        };
        let voice = self.mixer.source_gains(reg::VOICE_L, reg::VOICE_R);
        let fm = self.mixer.source_gains(reg::FM_L, reg::FM_R);
        let mix = |i: usize| {
            let v =
                (i64::from(pcm[i]) * voice[i] + i64::from(self.opl_current[i]) * 2 * fm[i]) >> 16;
            v.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
        };
        [mix(0), mix(1)]
    }

    /// Render every frame before virtual time `now` and move the DSP to `now`.
    fn render(&mut self, now: u64, mut dma: Option<&mut Dma>, ctx: &mut dyn DeviceContext) {
        let end = frame_at_ns(now);
        if end > self.rendered_frame && !self.active() {
            self.channel.set_idle(end);
            let opl_now = u128::from(now) * u128::from(nestor_opl3::SAMPLE_RATE) / 1_000_000_000;
            let behind = (opl_now as u64).saturating_sub(self.opl.state().samples);
            self.opl.skip(behind);
            self.rendered_frame = end;
        }
        while self.rendered_frame < end {
            let n = usize::try_from(end - self.rendered_frame).map_or(CHUNK, |n| n.min(CHUNK));
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            for i in 0..n as u64 {
                let t = ns_at_frame(self.rendered_frame + i);
                scratch.push(self.frame(t, dma.as_deref_mut(), ctx));
            }
            self.channel.write(self.rendered_frame, &scratch);
            self.scratch = scratch;
            self.rendered_frame += n as u64;
        }
        self.advance_dsp(now, dma, ctx);
        self.update_irq(ctx);
        self.idle_if_silent();
    }

    /// A card with nothing to play must not hold the mix back until its next render.
    fn idle_if_silent(&mut self) {
        if !self.active() {
            self.channel.set_idle(self.rendered_frame);
        }
    }

    fn update_irq(&mut self, ctx: &mut dyn DeviceContext) {
        let line = self.mixer.irq_line();
        let level = self.dsp.irq_requested();
        if line != self.dsp.irq_line && self.dsp.irq_level {
            ctx.set_irq(self.dsp.irq_line, false);
            self.dsp.irq_level = false;
        }
        self.dsp.irq_line = line;
        if level != self.dsp.irq_level {
            ctx.set_irq(line, level);
            self.dsp.irq_level = level;
        }
    }

    /// Catch the card up to now with the DMA controller at hand: the machine calls this after
    /// every access to the card or the controller, and on the card's timer.
    pub fn service(&mut self, dma: &mut Dma, ctx: &mut dyn DeviceContext) {
        self.render(ctx.now_ns(), Some(dma), ctx);
    }

    /// A port read, with the DMA controller (`None`: transfers move nothing).
    pub fn read_port(
        &mut self,
        port: u16,
        dma: Option<&mut Dma>,
        ctx: &mut dyn DeviceContext,
    ) -> u8 {
        let now = ctx.now_ns();
        self.render(now, dma, ctx);
        let v = match port {
            0x388 | 0x38a | 0x220 | 0x222 | 0x228 => self.opl.read_status(now),
            0x224 => self.mixer.index,
            0x225 => self
                .mixer
                .read_data(u8::from(self.dsp.irq8_pending) | u8::from(self.dsp.irq16_pending) << 1),
            0x22a => self.dsp.read_data(),
            0x22c => 0x7f, // write buffer ready
            0x22e => {
                self.dsp.irq8_pending = false;
                u8::from(!self.dsp.output.is_empty()) << 7 | 0x7f
            }
            0x22f => {
                self.dsp.irq16_pending = false;
                0xff
            }
            _ => 0xff,
        };
        self.update_irq(ctx);
        self.idle_if_silent();
        v
    }

    /// A port write, with the DMA controller (`None`: transfers move nothing).
    pub fn write_port(
        &mut self,
        port: u16,
        value: u8,
        dma: Option<&mut Dma>,
        ctx: &mut dyn DeviceContext,
    ) {
        let now = ctx.now_ns();
        self.render(now, dma, ctx);
        match port {
            0x388 | 0x220 | 0x228 => self.opl.write_address(0, value),
            0x38a | 0x222 => self.opl.write_address(1, value),
            0x389 | 0x38b | 0x221 | 0x223 | 0x229 => self.opl.write_data(value, now),
            0x224 => self.mixer.index = value,
            0x225 => self.mixer.write_data(value),
            0x226 => {
                let high = value & 1 != 0;
                if self.dsp.reset_high && !high {
                    self.dsp.reset();
                }
                self.dsp.reset_high = high;
            }
            0x22c => self.dsp.write(value, now),
            _ => {}
        }
        self.update_irq(ctx);
        self.idle_if_silent();
    }

    /// Virtual time at which the card next needs its timer.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        let block_end = self
            .dsp
            .transfer
            .as_ref()
            .filter(|t| t.paused_at_ns.is_none())
            .map(Transfer::block_end_ns);
        let flush = self
            .active()
            .then(|| ns_at_frame(self.rendered_frame.saturating_add(FLUSH_FRAMES)));
        [block_end, flush].into_iter().flatten().min()
    }
}

/// Fetch `frames` frames of a transfer through DMA; returns the last one (`None` when the
/// transfer moves no sound: recording, command 0x80). Bytes the controller does not deliver
/// are silence.
fn fetch(
    tr: &Transfer,
    frames: u32,
    channel: u8,
    dma: Option<&mut Dma>,
    ctx: &mut dyn DeviceContext,
) -> Option<Frame> {
    if tr.silence {
        return None;
    }
    let per = tr.bytes_per_frame();
    let mut buf = vec![tr.silence_byte(); frames as usize * per];
    if let Some(dma) = dma {
        let _ = dma.transfer(channel, &mut buf, ctx);
    }
    if tr.input {
        return None;
    }
    let last = buf.len().checked_sub(per)?;
    Some(tr.decode(&buf[last..]))
}

impl Snapshot for Sb16 {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state())
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let s: Sb16State = restore_state(STATE_VERSION, bytes)?;
        self.set_state(s)
    }
}

impl Device for Sb16 {
    fn name(&self) -> &str {
        "sb16"
    }

    fn ports(&self) -> Vec<PortRange> {
        vec![PortRange::new(BASE, 0x10), PortRange::new(ADLIB, 4)]
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        read_bytewise(port, size, |p| self.read_port(p, None, ctx))
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        write_bytewise(port, size, value, |p, b| self.write_port(p, b, None, ctx));
    }

    fn reset(&mut self) {
        let rendered = self.rendered_frame;
        let (level, line) = (self.dsp.irq_level, self.dsp.irq_line);
        let samples = self.opl.state().samples;
        let _ = self.set_state(Sb16State::default());
        self.rendered_frame = rendered;
        self.dsp.irq_level = level;
        self.dsp.irq_line = line;
        self.opl.skip(samples);
        self.idle_if_silent();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.deadline()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.render(ctx.now_ns(), None, ctx);
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
