//! The chip's fixed tables, from the YM3812/YMF262 documentation: a quarter sine stored as
//! logarithms, the power-of-two table that turns a logarithm back into a level, the key
//! scale level per octave, the frequency multipliers and the envelope's step patterns.

use std::sync::OnceLock;

struct Tables {
    /// -log2(sin) of the first quarter wave, in 1/256 units, 256 entries.
    log_sin: [u16; 256],
    /// 2^(-i/256) scaled to 4096, 256 entries.
    exp: [u16; 256],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut log_sin = [0u16; 256];
        let mut exp = [0u16; 256];
        for i in 0..256 {
            let x = (i as f64 + 0.5) * std::f64::consts::FRAC_PI_2 / 256.0;
            log_sin[i] = (-x.sin().log2() * 256.0).round() as u16;
            exp[i] = (2f64.powf(-(i as f64) / 256.0) * 4096.0).round() as u16;
        }
        Tables { log_sin, exp }
    })
}

/// -log2(|sin|) of quarter-wave step `i` (0..256), in 1/256 units.
#[must_use]
pub fn log_sin(i: u32) -> u32 {
    u32::from(tables().log_sin[(i & 0xff) as usize])
}

/// The linear level (0..=4096) of an attenuation given as -log2 in 1/256 units.
#[must_use]
pub fn level(log: u32) -> i32 {
    let shift = log >> 8;
    if shift >= 13 {
        return 0;
    }
    i32::from(tables().exp[(log & 0xff) as usize]) >> shift
}

/// Key scale level at block 7 for the top 4 bits of F-number, in 0.1875 dB envelope units
/// (the manual's 3 dB/octave column: 0, 9, 12, 13.875 ... 21 dB).
pub const KSL_BLOCK7: [u16; 16] = [
    0, 48, 64, 74, 80, 86, 90, 94, 96, 100, 102, 104, 106, 108, 110, 112,
];

/// Frequency multiplier x2, by MULT (0 means one half).
pub const MULT_X2: [u32; 16] = [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 20, 24, 24, 30, 30];

/// Which of eight successive envelope clock ticks step, by the rate's low two bits: 4, 5, 6
/// or 7 of 8, the x1, x1.25, x1.5 and x1.75 rates.
pub const STEP_PATTERN: [[u8; 8]; 4] = [
    [0, 1, 0, 1, 0, 1, 0, 1],
    [0, 1, 0, 1, 1, 1, 0, 1],
    [0, 1, 1, 1, 0, 1, 1, 1],
    [0, 1, 1, 1, 1, 1, 1, 1],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_and_exp_tables_invert_each_other() {
        assert_eq!(level(0), 4096);
        assert_eq!(level(256), 2048);
        assert_eq!(level(13 << 8), 0);
        // Peak of the sine (the quarter's last step) is almost full scale.
        let peak = level(log_sin(255));
        assert!((4090..=4096).contains(&peak), "{peak}");
        // 30 degrees is half of the peak.
        let i = (256.0 * 30.0 / 90.0 - 0.5_f64).round() as u32;
        let half = level(log_sin(i));
        assert!((half - 2048).abs() < 20, "{half}");
    }
}
