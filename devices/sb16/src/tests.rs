use super::*;
use nestor_device::testing::FakeContext;
use nestor_sound::analysis::{rms, zero_crossing_frequency};
use nestor_sound::{AudioSink, Mixer, SAMPLE_RATE};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Frame>>>);

impl AudioSink for Capture {
    fn write(&mut self, frames: &[Frame]) {
        self.0.lock().unwrap().extend_from_slice(frames);
    }
}

impl Capture {
    fn channel(&self, i: usize) -> Vec<i16> {
        self.0.lock().unwrap().iter().map(|f| f[i]).collect()
    }
}

struct Rig {
    sb: Sb16,
    dma: Dma,
    ctx: FakeContext,
    mixer: Mixer,
    capture: Capture,
}

fn rig() -> Rig {
    let mixer = Mixer::new();
    let capture = Capture::default();
    mixer.add_sink(Box::new(capture.clone()));
    let sb = Sb16::new(mixer.channel("sb16"));
    Rig {
        sb,
        dma: Dma::new(),
        ctx: FakeContext::with_ram(1 << 20),
        mixer,
        capture,
    }
}

impl Rig {
    fn out(&mut self, port: u16, value: u8) {
        if (0x00..=0xdf).contains(&port) {
            self.dma.io_write(port, 1, u32::from(value), &mut self.ctx);
            self.sb.service(&mut self.dma, &mut self.ctx);
        } else {
            self.sb
                .write_port(port, value, Some(&mut self.dma), &mut self.ctx);
        }
    }

    fn inb(&mut self, port: u16) -> u8 {
        self.sb.read_port(port, Some(&mut self.dma), &mut self.ctx)
    }

    fn dsp(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.out(0x22c, b);
        }
    }

    fn mix(&mut self, index: u8, value: u8) {
        self.out(0x224, index);
        self.out(0x225, value);
    }

    /// Run the card's timers up to `until`, acknowledging each interrupt like a driver.
    fn run_until(&mut self, until: u64, ack: bool) {
        while let Some(d) = self.sb.deadline().filter(|&d| d <= until) {
            self.ctx.now_ns = self.ctx.now_ns.max(d);
            self.sb.service(&mut self.dma, &mut self.ctx);
            if ack && self.ctx.irq(5) {
                let port = if self.sb.dsp.irq16_pending {
                    0x22f
                } else {
                    0x22e
                };
                self.inb(port);
            }
        }
        self.ctx.now_ns = self.ctx.now_ns.max(until);
        self.sb.service(&mut self.dma, &mut self.ctx);
    }

    /// Program 8237 `channel` for an auto-init or single read transfer of `units` units at
    /// physical `addr`.
    fn program_dma(&mut self, channel: u8, addr: u32, units: u32, auto: bool) {
        let mode = 0x48 | if auto { 0x10 } else { 0 } | (channel & 3);
        self.out(0xd6, 0xc0); // channel 4 cascades controller 1
        self.out(0xd4, 0x00);
        if channel < 4 {
            let c = u16::from(channel);
            self.out(0x0a, 0x04 | channel);
            self.out(0x0b, mode);
            self.out(0x0c, 0);
            self.out(c * 2, addr as u8);
            self.out(c * 2, (addr >> 8) as u8);
            self.out(0x83, (addr >> 16) as u8); // page of channel 1
            self.out(c * 2 + 1, (units - 1) as u8);
            self.out(c * 2 + 1, ((units - 1) >> 8) as u8);
            self.out(0x0a, channel);
        } else {
            let c = u16::from(channel - 4);
            let word = addr >> 1;
            self.out(0xd4, 0x04 | (channel & 3));
            self.out(0xd6, mode);
            self.out(0xd8, 0);
            self.out(0xc0 + c * 4, word as u8);
            self.out(0xc0 + c * 4, (word >> 8) as u8);
            self.out(0x8b, (addr >> 16) as u8 & 0xfe); // page of channel 5
            self.out(0xc2 + c * 4, (units - 1) as u8);
            self.out(0xc2 + c * 4, ((units - 1) >> 8) as u8);
            self.out(0xd4, channel & 3);
        }
    }

    fn reset_dsp(&mut self) {
        self.out(0x226, 1);
        self.out(0x226, 0);
        assert_eq!(self.inb(0x22a), 0xaa);
    }
}

#[test]
fn dsp_identifies_itself() {
    let mut r = rig();
    r.reset_dsp();
    r.dsp(&[0xe1]);
    assert_eq!((r.inb(0x22a), r.inb(0x22a)), (4, 5));
    r.dsp(&[0xe0, 0x5a]);
    assert_eq!(r.inb(0x22a), 0xa5);
    r.dsp(&[0xe4, 0x42, 0xe8]);
    assert_eq!(r.inb(0x22a), 0x42);
    r.dsp(&[0xe3]);
    let mut text = Vec::new();
    while r.inb(0x22e) & 0x80 != 0 {
        text.push(r.inb(0x22a));
    }
    assert!(text.starts_with(b"COPYRIGHT (C) CREATIVE"), "{text:?}");
    assert_eq!(text.last(), Some(&0));
    r.dsp(&[0xd1, 0xd8]);
    assert_eq!(r.inb(0x22a), 0xff);
    r.dsp(&[0xd3, 0xd8]);
    assert_eq!(r.inb(0x22a), 0x00);
    assert_eq!(r.inb(0x22c) & 0x80, 0, "ready for commands");
    r.dsp(&[0xf2]);
    assert!(r.ctx.irq(5));
    assert_eq!(r.inb(0x22e) & 0x80, 0, "nothing to read");
    assert!(!r.ctx.irq(5), "reading base+E acknowledges");
}

#[test]
fn single_cycle_8bit_block_interrupts_once_at_its_end() {
    let mut r = rig();
    r.reset_dsp();
    for i in 0..1000 {
        r.ctx.ram[0x1_0000 + i] = if i % 20 < 10 { 0xff } else { 0x00 };
    }
    r.program_dma(1, 0x1_0000, 1000, false);
    r.dsp(&[0x40, 156]); // time constant 256 - 100: 10 kHz
    r.dsp(&[0x14, 0xe7, 0x03]); // 1000 bytes
    r.ctx.clear_events();
    r.run_until(200_000_000, false);
    assert_eq!(r.ctx.rising_edge_times(5), vec![100_000_000]);
    assert!(r.sb.dsp.transfer.is_none());
    assert!(
        r.dma.state().controller1.channel(1).unwrap().masked,
        "terminal count"
    );
    let left = r.capture.channel(0);
    let f = zero_crossing_frequency(&left[..4_800], SAMPLE_RATE).unwrap();
    assert!((f - 500.0).abs() < 5.0, "{f}");
    assert!(
        left[5_000..].iter().all(|&s| s == 0),
        "silent after the block"
    );
}

/// A 16-bit signed stereo sine at `hz`, `frames` frames at 44.1 kHz.
fn sine16(hz: f64, frames: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..frames {
        let v = (12_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 44_100.0).sin()) as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
        bytes.extend_from_slice(&(-v).to_le_bytes());
    }
    bytes
}

fn start_sine_playback(r: &mut Rig) {
    r.reset_dsp();
    // 4410 frames = 100 ms: a whole number of 441 Hz periods, so auto-init loops seamlessly.
    let data = sine16(441.0, 4_410);
    r.ctx.ram[0x2_0000..0x2_0000 + data.len()].copy_from_slice(&data);
    r.program_dma(5, 0x2_0000, (data.len() / 2) as u32, true);
    r.mix(reg::MASTER_L, 0xf8);
    r.mix(reg::MASTER_R, 0xf8);
    r.mix(reg::VOICE_L, 0xf8);
    r.mix(reg::VOICE_R, 0xf8);
    r.dsp(&[0x41, 0xac, 0x44]); // 44100 Hz
                                // 16-bit auto-init, signed stereo; block = half the buffer (4410 samples).
    r.dsp(&[0xb6, 0x30, 0x39, 0x11]);
}

#[test]
fn auto_init_16bit_stereo_plays_a_sine_at_its_pitch() {
    let mut r = rig();
    start_sine_playback(&mut r);
    r.ctx.clear_events();
    r.run_until(500_000_000, true);
    let left = r.capture.channel(0);
    let right = r.capture.channel(1);
    assert_eq!(left.len(), 24_000);
    let f = zero_crossing_frequency(&left, SAMPLE_RATE).unwrap();
    assert!((f - 441.0).abs() / 441.0 < 0.005, "{f}");
    assert!(rms(&left) > 8_000.0);
    assert!(left
        .iter()
        .zip(&right)
        .all(|(l, r)| (i32::from(*l) + i32::from(*r)).abs() <= 1));
    // A block is 2205 frames (50 ms): ten interrupts in half a second.
    let edges = r.ctx.rising_edge_times(5);
    assert_eq!(edges.len(), 10, "{edges:?}");
    assert_eq!(edges[0], 50_000_000);
    // Exit auto-init: the current block finishes, then silence.
    r.dsp(&[0xd9]);
    r.run_until(700_000_000, true);
    assert!(r.sb.dsp.transfer.is_none());
    assert_eq!(r.ctx.rising_edge_times(5).len(), 11);
}

#[test]
fn pause_and_continue_shift_the_block() {
    let mut r = rig();
    start_sine_playback(&mut r);
    r.run_until(10_000_000, true);
    r.dsp(&[0xd5]);
    r.run_until(30_000_000, true);
    assert!(r.sb.deadline().is_none_or(|d| d > 30_000_000));
    r.dsp(&[0xd6]);
    r.ctx.clear_events();
    r.run_until(100_000_000, true);
    assert_eq!(r.ctx.rising_edge_times(5), vec![70_000_000]);
}

#[test]
fn mixer_volume_zero_silences_the_voice() {
    let mut r = rig();
    start_sine_playback(&mut r);
    r.mix(reg::VOICE_L, 0);
    r.mix(reg::VOICE_R, 0);
    r.run_until(50_000_000, true);
    let left = r.capture.channel(0);
    assert!(rms(&left[100..]) < 20.0);
}

#[test]
fn opl_through_the_adlib_ports_plays_a_note() {
    let mut r = rig();
    let opl = |reg: u8, value: u8, r: &mut Rig| {
        r.out(0x388, reg);
        r.out(0x389, value);
    };
    // AdLib detection.
    opl(0x04, 0x60, &mut r);
    opl(0x04, 0x80, &mut r);
    assert_eq!(r.inb(0x388) & 0xe0, 0);
    opl(0x02, 0xff, &mut r);
    opl(0x04, 0x21, &mut r);
    r.ctx.now_ns += 100_000;
    assert_eq!(r.inb(0x388) & 0xe0, 0xc0);
    opl(0x04, 0x60, &mut r);
    opl(0x04, 0x80, &mut r);
    r.mix(0x22, 0xff); // SBPro master and FM registers: full volume
    r.mix(0x26, 0xff);
    // A 440 Hz sine on channel 0 (operator 1 silent).
    for (reg, value) in [
        (0x20, 0x21),
        (0x40, 0x3f),
        (0x23, 0x21),
        (0x43, 0x00),
        (0x63, 0xf0),
        (0x83, 0x0f),
        (0xa0, 0x44),
        (0xb0, 0x32),
    ] {
        opl(reg, value, &mut r);
    }
    let start = r.capture.channel(0).len();
    r.run_until(r.ctx.now_ns + 500_000_000, false);
    let left = r.capture.channel(0)[start..].to_vec();
    let f = zero_crossing_frequency(&left, SAMPLE_RATE).unwrap();
    assert!((f - 440.0).abs() / 440.0 < 0.01, "{f}");
    assert!(rms(&left) > 500.0);
    // Key off: silence, and the card stops rendering.
    opl(0xb0, 0x12, &mut r);
    r.run_until(r.ctx.now_ns + 100_000_000, false);
    assert_eq!(r.sb.deadline(), None);
}

#[test]
fn state_round_trips_and_a_restored_card_plays_on_identically() {
    let mut r = rig();
    start_sine_playback(&mut r);
    r.out(0x388, 0x20);
    r.out(0x389, 0x21);
    r.run_until(73_000_000, true);
    let saved = r.sb.save().unwrap();
    let dma_saved = r.dma.save().unwrap();
    let mut other = Sb16::new(SoundChannel::detached());
    other.restore(&saved).unwrap();
    assert_eq!(other.state(), r.sb.state());
    assert_eq!(other.save().unwrap(), saved);
    // A twin built from the snapshot renders the next 200 ms exactly like the original.
    let mut twin = rig();
    twin.sb.restore(&saved).unwrap();
    twin.dma.restore(&dma_saved).unwrap();
    twin.ctx = r.ctx.clone();
    twin.ctx.clear_events();
    r.ctx.clear_events();
    let before = r.capture.channel(0).len();
    r.run_until(273_000_000, true);
    twin.run_until(273_000_000, true);
    let a = r.capture.channel(0)[before..].to_vec();
    let b = twin.capture.channel(0);
    assert_eq!(&b[b.len() - a.len()..], &a[..]);
    assert_eq!(r.ctx.irq_events, twin.ctx.irq_events);
    assert!(other.restore(&saved[..saved.len() / 2]).is_err());
}

#[test]
fn random_io_never_panics() {
    let mut r = rig();
    let mut x = 0x0123_4567_89ab_cdefu64;
    let ports: Vec<u16> = (0x220..0x230)
        .chain(0x388..0x38c)
        .chain([0x0a, 0x0b, 0x02, 0x03, 0xd4, 0xd6, 0xc4, 0xc6])
        .collect();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = ports[(x % ports.len() as u64) as usize];
        if x & 0x100 == 0 {
            r.out(port, (x >> 16) as u8);
        } else {
            r.inb(port);
        }
        r.ctx.now_ns += (x >> 48) % 50_000;
        if x & 0xf000 == 0 {
            r.run_until(r.ctx.now_ns + 2_000_000, x & 1 == 0);
        }
    }
    let mut plain = Sb16::new(SoundChannel::detached());
    let mut ctx = FakeContext::new();
    for p in 0x220..0x230u16 {
        plain.io_write(p, 2, 0xc6c6, &mut ctx);
        let _ = plain.io_read(p, 4, &mut ctx);
    }
    ctx.run_until(&mut plain, 50_000_000);
    plain.reset();
    assert!(plain.restore(&[0xff; 100]).is_err());
    assert!((PLUGIN.create)(&mut DeviceConfig::default()).is_ok());
    let _ = r.mixer.emitted_frames();
}

#[test]
fn a_finished_transfer_never_holds_other_channels_back() {
    let mut r = rig();
    r.reset_dsp();
    r.program_dma(1, 0x1_0000, 100, false);
    r.dsp(&[0x40, 156, 0x14, 99, 0]); // 100 bytes at 10 kHz: 10 ms
    r.run_until(10_000_000, true);
    assert!(r.sb.dsp.transfer.is_none());
    let other = r.mixer.channel("other");
    other.write(0, &[[1, 1]; 4_000]);
    assert_eq!(r.mixer.emitted_frames(), 4_000);
}
