//! Fixed windows on the UTC calendar: the throttling window (`quotas.window`, aligned on
//! multiples of its length since the Unix epoch), the UTC day and the UTC month.
//!
//! Owns the date arithmetic the quota counters need, without a date crate: days ↔ civil dates
//! (Howard Hinnant's `days_from_civil` / `civil_from_days`, proleptic Gregorian), month
//! lengths and leap years. Time is always a parameter (`now_ms`, Unix milliseconds); nothing
//! here reads a clock. Every function is total: no panic for any `u64` input.

/// Milliseconds in a UTC day (UTC days have no leap seconds in Unix time).
pub const MS_PER_DAY: u64 = 86_400_000;

/// One fixed window `[start_ms, end_ms)`.
///
/// `id` numbers the windows of one kind: consecutive windows have consecutive ids (throttling
/// window index since the epoch, days since 1970-01-01, months since 1970-01), so two hosts
/// with synchronised clocks agree on it without talking to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Window number (see the type's doc).
    pub id: u64,
    /// First millisecond of the window (Unix ms).
    pub start_ms: u64,
    /// First millisecond after the window (Unix ms): when its counts reset.
    pub end_ms: u64,
}

impl Window {
    /// Whole seconds until the window resets, rounded up and at least 1: the value of
    /// `Retry-After` and `RateLimit-Reset` (RFC 9110 §10.2.3: a non-negative integer of
    /// seconds; rounding up means a client that waits that long finds the new window).
    pub fn reset_secs(&self, now_ms: u64) -> u64 {
        let left = self.end_ms.saturating_sub(now_ms);
        left.div_ceil(1000).max(1)
    }

    /// True when `now_ms` falls in the window.
    pub fn contains(&self, now_ms: u64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }
}

/// The throttling window holding `now_ms` for windows of `window_ms` milliseconds (treated as
/// 1 when 0). Windows are aligned on the epoch: `[k·w, (k+1)·w)`.
///
/// Otoroshi starts its window with the first call after the previous one expired (an expiry set
/// on the first increment); Torii aligns windows on the clock instead, so every worker and every
/// host agrees on the window boundaries without coordination and a shared Redis key expires at
/// the same instant for all of them. Either way it is a fixed window: a client may spend one
/// window's quota at its end and the next one's at the start of the next.
pub fn throttling_window(now_ms: u64, window_ms: u64) -> Window {
    let w = window_ms.max(1);
    let id = now_ms / w;
    let start_ms = id * w;
    Window {
        id,
        start_ms,
        end_ms: start_ms.saturating_add(w),
    }
}

/// The UTC day holding `now_ms`; `id` is the number of days since 1970-01-01.
pub fn utc_day(now_ms: u64) -> Window {
    let id = now_ms / MS_PER_DAY;
    let start_ms = id * MS_PER_DAY;
    Window {
        id,
        start_ms,
        end_ms: start_ms.saturating_add(MS_PER_DAY),
    }
}

/// The UTC month holding `now_ms`; `id` is the number of months since January 1970.
pub fn utc_month(now_ms: u64) -> Window {
    let days = (now_ms / MS_PER_DAY) as i64;
    let (year, month, _) = civil_from_days(days);
    let start_days = days_from_civil(year, month, 1);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let end_days = days_from_civil(next_year, next_month, 1);
    let id = (year - 1970) * 12 + i64::from(month) - 1;
    Window {
        id: u64::try_from(id).unwrap_or(0),
        start_ms: days_to_ms(start_days),
        end_ms: days_to_ms(end_days),
    }
}

fn days_to_ms(days: i64) -> u64 {
    u64::try_from(days).unwrap_or(0).saturating_mul(MS_PER_DAY)
}

/// True for Gregorian leap years: divisible by 4, except centuries not divisible by 400.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the civil date `year-month-day` (month 1–12, day 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month 1–12, day 1–31)` of `days` since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1000;

    /// 2024-02-29T12:00:00Z.
    const LEAP_DAY_NOON: u64 = 1_709_208_000_000;

    #[test]
    fn civil_round_trip_over_six_centuries() {
        // Walk every day from 1900-01-01 to 2500-12-31 with a naive calendar and compare.
        let (mut y, mut m, mut d) = (1900i64, 1u32, 1u32);
        let mut days = days_from_civil(1900, 1, 1);
        assert_eq!(days, -25_567);
        while y <= 2500 {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            days += 1;
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn leap_years() {
        for (y, leap) in [
            (1900, false),
            (2000, true),
            (2023, false),
            (2024, true),
            (2100, false),
            (2400, true),
        ] {
            assert_eq!(is_leap_year(y), leap, "{y}");
            assert_eq!(days_in_month(y, 2), if leap { 29 } else { 28 }, "{y}");
        }
        assert_eq!(days_in_month(2024, 0), 0);
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn every_month_of_four_centuries_has_its_length() {
        for y in 1970..2370 {
            for m in 1..=12u32 {
                let first = days_from_civil(y, m, 1);
                let ms = first as u64 * MS_PER_DAY;
                for probe in [ms, ms + MS_PER_DAY / 2] {
                    let w = utc_month(probe);
                    assert_eq!(w.start_ms, ms, "{y}-{m}");
                    let len = (w.end_ms - w.start_ms) / MS_PER_DAY;
                    assert_eq!(len, u64::from(days_in_month(y, m)), "{y}-{m}");
                    assert_eq!(w.id, ((y - 1970) * 12 + i64::from(m) - 1) as u64);
                }
                // The last millisecond of the previous month belongs to it.
                if ms > 0 {
                    let prev = utc_month(ms - 1);
                    assert_eq!(prev.end_ms, ms);
                    assert_eq!(prev.id + 1, utc_month(ms).id);
                }
            }
        }
    }

    #[test]
    fn february_in_leap_and_common_years() {
        let w = utc_month(LEAP_DAY_NOON);
        assert_eq!(w.start_ms, 1_706_745_600_000); // 2024-02-01
        assert_eq!(w.end_ms, 1_709_251_200_000); // 2024-03-01
        let feb_2023 = utc_month(1_676_000_000_000); // 2023-02-10
        assert_eq!((feb_2023.end_ms - feb_2023.start_ms) / MS_PER_DAY, 28);
        // 2100 is not a leap year, 2000 was.
        let feb_2100 = utc_month(days_from_civil(2100, 2, 15) as u64 * MS_PER_DAY);
        assert_eq!((feb_2100.end_ms - feb_2100.start_ms) / MS_PER_DAY, 28);
        let feb_2000 = utc_month(days_from_civil(2000, 2, 15) as u64 * MS_PER_DAY);
        assert_eq!((feb_2000.end_ms - feb_2000.start_ms) / MS_PER_DAY, 29);
        // December rolls into the next year.
        let dec = utc_month(days_from_civil(2030, 12, 31) as u64 * MS_PER_DAY);
        assert_eq!(dec.end_ms, days_from_civil(2031, 1, 1) as u64 * MS_PER_DAY);
    }

    #[test]
    fn day_edges() {
        let d = utc_day(LEAP_DAY_NOON);
        assert_eq!(d.start_ms, 1_709_164_800_000);
        assert_eq!(d.end_ms, 1_709_251_200_000);
        assert_eq!(d.id, 19_782);
        assert!(d.contains(d.start_ms) && d.contains(d.end_ms - 1) && !d.contains(d.end_ms));
        assert_eq!(utc_day(d.end_ms - 1).id, d.id);
        assert_eq!(utc_day(d.end_ms).id, d.id + 1);
        assert_eq!(d.reset_secs(d.end_ms - 1), 1);
        assert_eq!(d.reset_secs(d.start_ms), 86_400);
        assert_eq!(d.reset_secs(LEAP_DAY_NOON), 43_200);
    }

    #[test]
    fn throttling_windows_are_aligned_on_the_epoch() {
        let w = throttling_window(LEAP_DAY_NOON + 3_500, 10 * SEC);
        assert_eq!(w.start_ms, LEAP_DAY_NOON);
        assert_eq!(w.end_ms, LEAP_DAY_NOON + 10 * SEC);
        assert_eq!(w.reset_secs(LEAP_DAY_NOON + 3_500), 7); // 6.5 s rounded up
        assert_eq!(w.reset_secs(LEAP_DAY_NOON + 9_999), 1);
        let next = throttling_window(LEAP_DAY_NOON + 10 * SEC, 10 * SEC);
        assert_eq!(next.id, w.id + 1);
        assert_eq!(next.start_ms, w.end_ms);
        // The last millisecond stays in the window.
        assert_eq!(throttling_window(w.end_ms - 1, 10 * SEC), w);
        // Odd lengths: 1500 ms windows.
        let odd = throttling_window(4_000, 1_500);
        assert_eq!((odd.start_ms, odd.end_ms, odd.id), (3_000, 4_500, 2));
        assert_eq!(odd.reset_secs(4_000), 1);
        // A zero length is treated as 1 ms, not a division by zero.
        assert_eq!(throttling_window(7, 0).end_ms, 8);
    }

    #[test]
    fn extreme_clocks_do_not_panic() {
        for now in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let _ = throttling_window(now, 10 * SEC);
            let _ = throttling_window(now, u64::MAX);
            let _ = utc_day(now);
            let m = utc_month(now);
            let _ = m.reset_secs(now);
        }
        let epoch = utc_month(0);
        assert_eq!((epoch.id, epoch.start_ms), (0, 0));
        assert_eq!(epoch.end_ms, 31 * MS_PER_DAY);
    }
}
