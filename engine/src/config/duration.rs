//! Durations in the configuration file: strings with a unit (`"500ms"`, `"30s"`, `"5m"`, `"1h"`).
//!
//! Owns [`RawDuration`] (what the file holds, accepted loosely so validation can report every bad
//! value with its path instead of stopping at the first) and the strict parser that turns it into a
//! [`Duration`]. Bare numbers, fractions, signs, spaces, unknown units, overflow and values over
//! [`MAX_DURATION`] are rejected. Formatting back ([`format_duration`]) is used by summaries.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The largest duration accepted anywhere (one year): keeps `Instant + timeout` far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration as written in the file, not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub enum RawDuration {
    /// A string such as `"30s"` (the only accepted form).
    Text(String),
    /// A bare integer: always an error (the unit is mandatory).
    Integer(i64),
    /// A bare float: always an error.
    Float(f64),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration::Float(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a zero duration is meaningful for the key being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// `"0s"` is accepted (for example a leeway, or a drain that does not wait).
    Allowed,
    /// `"0s"` is an error.
    Rejected,
}

/// Parses a raw duration strictly. The error message never repeats the value.
pub(crate) fn parse_raw(raw: &RawDuration, zero: Zero) -> Result<Duration, String> {
    match raw {
        RawDuration::Text(s) => parse_duration(s, zero),
        RawDuration::Integer(_) | RawDuration::Float(_) => {
            Err("a duration must be a string with a unit (ms, s, m, h), such as \"30s\"".to_owned())
        }
    }
}

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m` or `h`.
pub fn parse_duration(s: &str, zero: Zero) -> Result<Duration, String> {
    let digits_end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "invalid duration {s:?}: expected digits then a unit (ms, s, m, h), such as \"30s\""
        ));
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(format!(
                "invalid duration {s:?}: a unit is required (ms, s, m, h)"
            ))
        }
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit (use ms, s, m or h)"
            ))
        }
    };
    let too_large = || format!("duration {s:?} is too large (at most 8760h)");
    let n: u64 = digits.parse().map_err(|_| too_large())?;
    let millis = n.checked_mul(millis_per_unit).ok_or_else(too_large)?;
    let d = Duration::from_millis(millis);
    if d > MAX_DURATION {
        return Err(too_large());
    }
    if d.is_zero() && zero == Zero::Rejected {
        return Err("duration must be greater than zero".to_owned());
    }
    Ok(d)
}

/// Formats a duration in the largest unit that represents it exactly: `10s`, `500ms`, `5m`, `1h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_owned()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        match parse_duration(s, Zero::Rejected) {
            Ok(d) => d,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn units() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("8760h"), MAX_DURATION);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "30", "s", "-1s", "+1s", "1.5s", " 1s", "1s ", "1 s", "1d", "1S", "1sec", "1h30m",
            "ms",
        ] {
            assert!(parse_duration(bad, Zero::Allowed).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_overflow_and_too_large() {
        assert!(parse_duration("99999999999999999999999s", Zero::Allowed).is_err());
        assert!(parse_duration("18446744073709551615h", Zero::Allowed).is_err());
        assert!(parse_duration("8761h", Zero::Allowed).is_err());
    }

    #[test]
    fn zero_depends_on_key() {
        assert!(parse_duration("0s", Zero::Rejected).is_err());
        assert_eq!(parse_duration("0ms", Zero::Allowed), Ok(Duration::ZERO));
    }

    #[test]
    fn bare_numbers_are_errors() {
        assert!(parse_raw(&RawDuration::Integer(30), Zero::Allowed).is_err());
        assert!(parse_raw(&RawDuration::Float(1.5), Zero::Allowed).is_err());
        assert_eq!(
            parse_raw(&RawDuration::Text("2s".into()), Zero::Allowed),
            Ok(Duration::from_secs(2))
        );
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
