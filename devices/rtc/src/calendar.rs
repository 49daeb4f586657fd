//! Civil calendar arithmetic (proleptic Gregorian, UTC) and the MC146818's register formats.

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Days from 1970-01-01 to the given date (negative before it). `month` is 1..=12.
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so that the leap day ends the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days separate 0000-03-01 from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` days after 1970-01-01: (year, month 1..=12, day 1..=31).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * march_month + 2) / 5 + 1) as u32;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[must_use]
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

#[must_use]
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A broken-down time as the clock registers hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    #[must_use]
    pub fn from_unix(t: i64) -> Self {
        let (year, month, day) = civil_from_days(t.div_euclid(DAY));
        let secs = t.rem_euclid(DAY) as u32;
        Self {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    #[must_use]
    pub fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// How register B says values are written: binary or BCD, 24- or 12-hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub binary: bool,
    pub hours24: bool,
}

impl Format {
    #[must_use]
    pub fn encode(self, value: u32) -> u8 {
        let v = value % 100;
        if self.binary {
            v as u8
        } else {
            (((v / 10) << 4) | (v % 10)) as u8
        }
    }

    /// Decode a register; invalid BCD digits are taken at face value (never fails).
    #[must_use]
    pub fn decode(self, byte: u8) -> u32 {
        if self.binary {
            u32::from(byte)
        } else {
            u32::from(byte >> 4) * 10 + u32::from(byte & 0xf)
        }
    }

    /// The hours register for `hour` (0..=23): bit 7 is PM in 12-hour mode.
    #[must_use]
    pub fn encode_hour(self, hour: u32) -> u8 {
        if self.hours24 {
            return self.encode(hour);
        }
        let pm = if hour >= 12 { 0x80 } else { 0 };
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | pm
    }

    #[must_use]
    pub fn decode_hour(self, byte: u8) -> u32 {
        if self.hours24 {
            return self.decode(byte).min(23);
        }
        let pm = if byte & 0x80 != 0 { 12 } else { 0 };
        (self.decode(byte & 0x7f) % 12 + pm).min(23)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(
            DateTime::from_unix(1_700_000_000),
            DateTime {
                year: 2023,
                month: 11,
                day: 14,
                hour: 22,
                minute: 13,
                second: 20
            }
        );
        assert_eq!(DateTime::from_unix(4_102_444_799).to_unix(), 4_102_444_799);
    }

    #[test]
    fn every_day_round_trips_over_four_centuries() {
        let mut expected = (1900, 1, 1);
        for days in days_from_civil(1900, 1, 1)..days_from_civil(2300, 1, 1) {
            let got = civil_from_days(days);
            assert_eq!(got, expected);
            assert_eq!(days_from_civil(got.0, got.1, got.2), days);
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn hour_formats() {
        let bcd12 = Format {
            binary: false,
            hours24: false,
        };
        assert_eq!(bcd12.encode_hour(0), 0x12);
        assert_eq!(bcd12.encode_hour(12), 0x92);
        assert_eq!(bcd12.encode_hour(23), 0x91);
        for h in 0..24 {
            assert_eq!(bcd12.decode_hour(bcd12.encode_hour(h)), h);
        }
        let bin24 = Format {
            binary: true,
            hours24: true,
        };
        assert_eq!(bin24.encode_hour(23), 23);
        assert_eq!(bin24.decode(0xff), 255);
    }
}
