use super::*;
use nestor_sound::analysis::{rms, zero_crossing_frequency};

/// Channel 0 as a pure sine: operator 1 silent (TL 63) modulating nothing, operator 2 at
/// full level, instant attack, sustaining.
fn sine_voice(opl: &mut Opl3, fnum: u16, block: u8) {
    for (reg, value) in [
        (0x20, 0x21), // op1: EGT, MULT 1
        (0x40, 0x3f),
        (0x60, 0xf0),
        (0x80, 0x0f),
        (0x23, 0x21), // op2: EGT, MULT 1
        (0x43, 0x00),
        (0x63, 0xf0),
        (0x83, 0x0f),
        (0xc0, 0x00),
    ] {
        opl.write(0, reg, value, 0);
    }
    opl.write(0, 0xa0, fnum as u8, 0);
    opl.write(0, 0xb0, 0x20 | block << 2 | (fnum >> 8) as u8, 0);
}

fn left(opl: &mut Opl3, n: usize) -> Vec<i16> {
    (0..n)
        .map(|_| opl.generate()[0].clamp(-32768, 32767) as i16)
        .collect()
}

#[test]
fn note_has_the_frequency_of_its_fnum_and_block() {
    // f = fnum * 49716 / 2^(20 - block)
    for (fnum, block) in [(580u16, 4u8), (0x16b, 4), (0x2ae, 5), (0x200, 2)] {
        let mut opl = Opl3::new();
        sine_voice(&mut opl, fnum, block);
        let s = left(&mut opl, SAMPLE_RATE as usize / 2);
        let want = f64::from(fnum) * f64::from(SAMPLE_RATE) / f64::from(1u32 << (20 - block));
        let got = zero_crossing_frequency(&s, SAMPLE_RATE).unwrap();
        assert!(
            (got - want).abs() / want < 0.002,
            "fnum {fnum:#x} block {block}: {got} vs {want}"
        );
        assert!(rms(&s) > 2500.0, "a full-level sine");
    }
}

#[test]
fn multiplier_scales_the_pitch() {
    let mut opl = Opl3::new();
    sine_voice(&mut opl, 580, 4);
    opl.write(0, 0x23, 0x23, 0); // op2 MULT 3
    let s = left(&mut opl, 20_000);
    let f = zero_crossing_frequency(&s, SAMPLE_RATE).unwrap();
    assert!((f - 1320.0).abs() < 10.0, "{f}");
}

#[test]
fn fm_adds_harmonics_and_additive_mixes() {
    let mut plain = Opl3::new();
    sine_voice(&mut plain, 580, 4);
    let mut fm = Opl3::new();
    sine_voice(&mut fm, 580, 4);
    fm.write(0, 0x40, 0x10, 0); // the modulator speaks
    let a = left(&mut plain, 4000);
    let b = left(&mut fm, 4000);
    assert_ne!(a, b);
    // Still periodic at the note's pitch (modulator and carrier at MULT 1).
    let f = zero_crossing_frequency(&b, SAMPLE_RATE).unwrap();
    assert!(f > 430.0, "{f}");
    let mut add = Opl3::new();
    sine_voice(&mut add, 580, 4);
    add.write(0, 0x40, 0x00, 0);
    add.write(0, 0xc0, 0x01, 0); // additive: two full sines in phase
    let c = left(&mut add, 4000);
    assert!(rms(&c) > 1.8 * rms(&a));
}

#[test]
fn envelope_attacks_decays_and_releases() {
    let mut opl = Opl3::new();
    sine_voice(&mut opl, 580, 4);
    opl.write(0, 0x63, 0x84, 0); // slower attack, decay
    opl.write(0, 0x83, 0x5f, 0); // sustain level 5 (15 dB), fast release
    let _ = left(&mut opl, 200);
    let early = opl.operator(3).unwrap().envelope;
    assert!(early > 0 && early < operator::ENV_MAX, "{early}");
    let _ = left(&mut opl, 40_000);
    assert_eq!(opl.operator(3).unwrap().env_phase, EnvPhase::Sustain);
    assert_eq!(opl.operator(3).unwrap().envelope, 5 << 4);
    opl.write(0, 0xb0, 0x12, 0); // key off
    let _ = left(&mut opl, 5_000);
    assert!(opl.silent(), "released to silence");
    assert!(left(&mut opl, 100).iter().all(|&s| s == 0));
}

#[test]
fn adlib_detection_sees_both_timers() {
    let mut opl = Opl3::new();
    opl.write(0, 0x04, 0x60, 0);
    opl.write(0, 0x04, 0x80, 0);
    assert_eq!(opl.read_status(0) & 0xe0, 0);
    opl.write(0, 0x02, 0xff, 1_000);
    opl.write(0, 0x04, 0x21, 1_000); // start timer 1, mask timer 2
    assert_eq!(opl.read_status(60_000) & 0xe0, 0);
    assert_eq!(opl.read_status(81_000) & 0xe0, 0xc0);
    assert_eq!(opl.read_status(81_000) & 0x06, 0, "an OPL3");
    opl.write(0, 0x04, 0x80, 90_000);
    assert_eq!(opl.read_status(90_000), 0);
    opl.write(0, 0x03, 0xfe, 100_000);
    opl.write(0, 0x04, 0x02, 100_000);
    assert_eq!(opl.read_status(739_000), 0);
    assert_eq!(opl.read_status(741_000), 0xa0);
}

#[test]
fn opl3_mode_pans_and_pairs_channels() {
    let mut opl = Opl3::new();
    opl.write(1, 0x05, 0x01, 0); // OPL3 mode
    sine_voice(&mut opl, 580, 4);
    opl.write(0, 0xc0, 0x20, 0); // right only
    let s: Vec<[i32; 2]> = (0..2000).map(|_| opl.generate()).collect();
    assert!(s.iter().all(|f| f[0] == 0));
    assert!(s.iter().any(|f| f[1] > 3000));
    // Four operators on channels 0 + 3: channel 3's own key does nothing.
    let mut quad = Opl3::new();
    quad.write(1, 0x05, 0x01, 0);
    quad.write(1, 0x04, 0x01, 0);
    sine_voice(&mut quad, 580, 4);
    quad.write(0, 0xc0, 0x31, 0); // additive first half, both speakers
    quad.write(0, 0xb3, 0x20, 0);
    let _ = quad.generate();
    let (c, d) = Opl3::slots(3);
    assert!(quad.operator(c).unwrap().key_on && quad.operator(d).unwrap().key_on);
    quad.write(0, 0xb0, 0x00, 0);
    assert!(!quad.operator(d).unwrap().key_on);
    // Bank 1 channels are silent in OPL2 mode.
    let mut opl2 = Opl3::new();
    for (reg, value) in [
        (0x23, 0x21),
        (0x43, 0),
        (0x63, 0xf0),
        (0x83, 0x0f),
        (0xa0, 0x44),
    ] {
        opl2.write(1, reg, value, 0);
    }
    opl2.write(1, 0xb0, 0x32, 0);
    assert!((0..1000).all(|_| opl2.generate() == [0, 0]));
}

#[test]
fn rhythm_mode_keys_the_drums() {
    let mut opl = Opl3::new();
    for slot in 0..18 {
        let off = offset_of_slot(slot) as u8;
        opl.write(0, 0x20 + off, 0x21, 0);
        opl.write(0, 0x60 + off, 0xf4, 0);
        opl.write(0, 0x80 + off, 0x0f, 0);
    }
    opl.write(0, 0xa6, 0x80, 0);
    opl.write(0, 0xb6, 0x09, 0);
    opl.write(0, 0xbd, 0x3f, 0); // rhythm on, every instrument struck
    assert!((6..9).all_keyed(&opl));
    let s = left(&mut opl, 3000);
    assert!(rms(&s) > 500.0);
}

trait Keys {
    fn all_keyed(self, opl: &Opl3) -> bool;
}

impl Keys for std::ops::Range<usize> {
    fn all_keyed(self, opl: &Opl3) -> bool {
        self.flat_map(|ch| {
            let (a, b) = Opl3::slots(ch);
            [a, b]
        })
        .all(|s| opl.operator(s).is_some_and(|o| o.key_on))
    }
}

#[test]
fn random_register_writes_never_panic() {
    let mut opl = Opl3::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        opl.write((x & 1) as u8, (x >> 8) as u8, (x >> 16) as u8, i * 1000);
        let _ = opl.generate();
        let _ = opl.read_status(x >> 20);
    }
    assert!(operator_slot(0x35).is_some() && operator_slot(0x36).is_none());
    assert_eq!(operator_slot(0x123), Some(18 + 3));
    assert!(opl
        .set_state(Opl3State {
            registers: vec![0; 3],
            ..Opl3State::default()
        })
        .is_err());
    let saved = opl.state().clone();
    let mut other = Opl3::new();
    other.set_state(saved.clone()).unwrap();
    assert_eq!(other.generate(), opl.generate());
}

#[test]
fn rhythm_tom_tom_is_a_tone_and_hi_hat_is_noise() {
    let setup = |keys: u8| {
        let mut opl = Opl3::new();
        for slot in 12..18 {
            let off = offset_of_slot(slot) as u8;
            opl.write(0, 0x20 + off, 0x21, 0);
            opl.write(0, 0x60 + off, 0xf0, 0);
            opl.write(0, 0x80 + off, 0x0f, 0);
        }
        for ch in [7u8, 8] {
            opl.write(0, 0xa0 + ch, 0x44, 0);
            opl.write(0, 0xb0 + ch, 0x12, 0); // fnum 0x244, block 4: 440 Hz, no key
        }
        opl.write(0, 0xbd, 0x20 | keys, 0);
        opl
    };
    let tom = left(&mut setup(0x04), 20_000);
    let f = zero_crossing_frequency(&tom, SAMPLE_RATE).unwrap();
    assert!((f - 440.0).abs() < 3.0, "tom-tom at {f} Hz");
    assert!(rms(&tom) > 4000.0, "twice as loud as one operator");
    let hat = left(&mut setup(0x01), 20_000);
    assert!(rms(&hat) > 1000.0);
    let rising = hat.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    assert!(rising > 1_000, "noisy: {rising} crossings in 0.4 s");
}
