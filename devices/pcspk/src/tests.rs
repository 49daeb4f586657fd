use super::*;
use nestor_device::testing::FakeContext;
use nestor_pit::Pit;
use nestor_sound::analysis::zero_crossing_frequency;
use nestor_sound::{AudioSink, Mixer, SAMPLE_RATE};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Frame>>>);

impl AudioSink for Capture {
    fn write(&mut self, frames: &[Frame]) {
        self.0.lock().unwrap().extend_from_slice(frames);
    }
}

impl Capture {
    fn left(&self) -> Vec<i16> {
        self.0.lock().unwrap().iter().map(|f| f[0]).collect()
    }
}

struct Rig {
    pit: Pit,
    speaker: PcSpeaker,
    mixer: Mixer,
    capture: Capture,
    ctx: FakeContext,
}

fn rig() -> Rig {
    let mixer = Mixer::new();
    let capture = Capture::default();
    mixer.add_sink(Box::new(capture.clone()));
    let speaker = PcSpeaker::new(mixer.channel("pcspk"));
    let mut pit = Pit::new();
    pit.connect_speaker(Box::new(speaker.wire()));
    Rig {
        pit,
        speaker,
        mixer,
        capture,
        ctx: FakeContext::new(),
    }
}

impl Rig {
    fn out(&mut self, port: u16, value: u8) {
        self.pit.io_write(port, 1, u32::from(value), &mut self.ctx);
    }

    fn tone(&mut self, divisor: u16) {
        self.out(0x43, 0xb6);
        self.out(0x42, divisor as u8);
        self.out(0x42, (divisor >> 8) as u8);
        self.out(0x61, 0x03);
    }

    fn run_ms(&mut self, ms: u64) {
        let until = self.ctx.now_ns + ms * 1_000_000;
        self.ctx.run_until(&mut self.speaker, until);
    }
}

#[test]
fn mode3_tone_has_the_programmed_pitch() {
    for hz in [110.0, 440.0, 1000.0, 3000.0] {
        let mut r = rig();
        let divisor = (nestor_pit::CLOCK_HZ as f64 / hz).round() as u16;
        r.tone(divisor);
        r.run_ms(500);
        let samples = r.capture.left();
        assert_eq!(samples.len(), SAMPLE_RATE as usize / 2);
        let f = zero_crossing_frequency(&samples, SAMPLE_RATE).expect("a tone");
        let want = nestor_pit::CLOCK_HZ as f64 / f64::from(divisor);
        assert!((f - want).abs() / want < 0.002, "{hz} Hz: measured {f}");
        let peak = samples.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert_eq!(peak, AMPLITUDE);
    }
}

#[test]
fn speaker_off_is_silent_and_idle() {
    let mut r = rig();
    r.tone(2712);
    r.run_ms(20);
    r.out(0x61, 0x01); // gate on, speaker off
    assert_eq!(r.speaker.next_deadline_ns(), None);
    r.ctx.now_ns += 50_000_000;
    r.out(0x61, 0x03);
    r.run_ms(20);
    r.mixer.finish(frame_at_ns(r.ctx.now_ns));
    let samples = r.capture.left();
    assert_eq!(samples.len(), 90 * 48);
    assert!(samples[..20 * 48].iter().any(|&s| s != 0));
    assert!(samples[20 * 48 + 1..70 * 48].iter().all(|&s| s == 0));
    assert!(samples[70 * 48 + 1..].iter().any(|&s| s != 0));
}

#[test]
fn gate_low_holds_the_line_and_toggling_bit1_clicks() {
    let mut r = rig();
    // Counter 2 in mode 3 with the gate low keeps OUT high: bit 1 alone moves the cone.
    r.out(0x43, 0xb6);
    r.out(0x42, 0);
    r.out(0x42, 0x10);
    for i in 0..100u64 {
        r.out(0x61, if i % 2 == 0 { 0x02 } else { 0x00 });
        r.ctx.now_ns += 1_000_000;
    }
    r.mixer.finish(frame_at_ns(r.ctx.now_ns));
    let samples = r.capture.left();
    let f = zero_crossing_frequency(
        &samples
            .iter()
            .map(|s| s - (AMPLITUDE / 2) as i16)
            .collect::<Vec<_>>(),
        SAMPLE_RATE,
    )
    .unwrap();
    assert!((f - 500.0).abs() < 5.0, "{f}");
}

#[test]
fn state_round_trips_and_restored_speaker_plays_on_identically() {
    let mut r = rig();
    r.tone(1234);
    r.run_ms(7);
    let saved = r.speaker.save().unwrap();
    let mut other = PcSpeaker::new(SoundChannel::detached());
    other.restore(&saved).unwrap();
    assert_eq!(other.state(), r.speaker.state());
    assert_eq!(other.save().unwrap(), saved);
    // Both render the next 30 ms into their own mixers: same samples.
    let capture2 = Capture::default();
    let mixer2 = Mixer::new();
    mixer2.add_sink(Box::new(capture2.clone()));
    let mut restored = PcSpeaker::new(mixer2.channel("pcspk"));
    restored.restore(&saved).unwrap();
    let before = r.capture.left().len();
    let mut ctx2 = r.ctx.clone();
    r.run_ms(30);
    ctx2.run_until(&mut restored, r.ctx.now_ns);
    let a = r.capture.left()[before..].to_vec();
    let b = capture2.left();
    assert_eq!(a.len(), 30 * 48);
    assert_eq!(&b[b.len() - a.len()..], &a[..]);
    assert!(restored.restore(&saved[..saved.len() - 1]).is_err());
}

#[test]
fn random_inputs_never_panic() {
    let mut r = rig();
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = [0x40, 0x41, 0x42, 0x43, 0x61][(x % 5) as usize];
        r.out(port, (x >> 8) as u8);
        r.ctx.now_ns += (x >> 40) % 200_000;
        r.ctx.run_until(&mut r.speaker, r.ctx.now_ns);
    }
    let mut garbage = PcSpeaker::new(SoundChannel::detached());
    assert!(garbage.restore(&[0xff; 64]).is_err());
    let mut cfg = DeviceConfig::default();
    assert!((PLUGIN.create)(&mut cfg).is_ok());
}

#[test]
fn switching_off_never_holds_other_channels_back() {
    let mut r = rig();
    let other = r.mixer.channel("other");
    r.tone(2712);
    r.run_ms(15);
    r.out(0x61, 0x00); // off between two flushes
    let at = frame_at_ns(r.ctx.now_ns);
    other.write(0, &vec![[1, 1]; at as usize + 2_000]);
    assert_eq!(
        r.mixer.emitted_frames(),
        at + 2_000,
        "the silent speaker does not hold the mix"
    );
}
