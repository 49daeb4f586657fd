//! Measuring what was played, for tests: the pitch of a tone from its zero crossings.

/// Frequency in Hz of a periodic signal sampled at `rate`, from the mean spacing of its rising
/// zero crossings (interpolated between samples). A small dead band around zero ignores
/// noise. `None` with fewer than two crossings.
#[must_use]
pub fn zero_crossing_frequency(samples: &[i16], rate: u32) -> Option<f64> {
    const DEAD_BAND: i32 = 64;
    let mut crossings = Vec::new();
    let mut armed = false;
    for (i, pair) in samples.windows(2).enumerate() {
        let (a, b) = (i32::from(pair[0]), i32::from(pair[1]));
        if a < -DEAD_BAND {
            armed = true;
        }
        if armed && a < 0 && b >= 0 {
            // Linear interpolation of where the signal crosses zero between i and i + 1.
            let frac = f64::from(-a) / f64::from(b - a);
            crossings.push(i as f64 + frac);
            armed = false;
        }
    }
    let (first, last) = (crossings.first()?, crossings.last()?);
    if crossings.len() < 2 || last <= first {
        return None;
    }
    Some((crossings.len() - 1) as f64 * f64::from(rate) / (last - first))
}

/// Root-mean-square level of samples (0 for none).
#[must_use]
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_sine_and_a_square() {
        let rate = 48_000;
        let sine: Vec<i16> = (0..rate)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 48_000.0).sin())
                    as i16
            })
            .collect();
        let f = zero_crossing_frequency(&sine, rate).unwrap();
        assert!((f - 440.0).abs() < 0.05, "{f}");
        let square: Vec<i16> = (0..rate)
            .map(|i| if (i / 50) % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let f = zero_crossing_frequency(&square, rate).unwrap();
        assert!((f - 480.0).abs() < 0.5, "{f}");
        assert_eq!(zero_crossing_frequency(&[0; 100], rate), None);
        assert!((rms(&[3, -3]) - 3.0).abs() < 1e-9);
    }
}
