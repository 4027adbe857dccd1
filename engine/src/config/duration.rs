//! Durations in the configuration file: strings of one or more `<number><unit>` parts
//! (`"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1h30m"`, `"1.5s"`, `"2d"`).
//!
//! Owns [`RawDuration`] (what the file holds, accepted loosely so validation can report every bad
//! value with its path instead of stopping at the first) and the parser that turns it into a
//! [`Duration`]. The grammar is checked here, precisely, so that every error says what is wrong;
//! the arithmetic (fractions, overflow) is `humantime`'s. Formatting back ([`format_duration`])
//! is used by summaries.
//!
//! The grammar: one or more parts, optionally separated by one space; a part is digits, an
//! optional fraction (`.` and digits) and a unit among `ms`, `s`, `m`, `h`, `d`; units go from the
//! largest to the smallest, each at most once. The value is a whole number of milliseconds, at
//! most [`MAX_DURATION`]. Bare numbers, signs, other units (`"1w"`, `"1sec"`, `"1M"`) and
//! leading or trailing spaces are errors.

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

/// Parses a raw duration strictly.
pub(crate) fn parse_raw(raw: &RawDuration, zero: Zero) -> Result<Duration, String> {
    match raw {
        RawDuration::Text(s) => parse_duration(s, zero),
        RawDuration::Integer(_) | RawDuration::Float(_) => {
            Err(format!("a duration must be a string: {GRAMMAR}"))
        }
    }
}

/// The accepted units, largest first.
const UNITS: [&str; 5] = ["d", "h", "m", "s", "ms"];

/// What the error messages say is allowed.
const GRAMMAR: &str = "a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"";

/// Checks the grammar of the module header; the error message names the first problem.
fn check_grammar(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid duration {s:?}: {why}; expected {GRAMMAR}"));
    if s.is_empty() {
        return bad("empty");
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut last_rank: Option<usize> = None;
    while i < b.len() {
        if i > 0 && b[i] == b' ' {
            i += 1;
        }
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return bad("a number is expected at each part's start");
        }
        i += digits;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if frac == 0 {
                return bad("digits are expected after the '.'");
            }
            i += frac;
        }
        let letters = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let unit = &s[i..i + letters];
        if unit.is_empty() {
            return bad("a unit is required");
        }
        let Some(rank) = UNITS.iter().position(|u| *u == unit) else {
            return bad(&format!("unknown unit {unit:?}"));
        };
        if last_rank.is_some_and(|r| rank <= r) {
            return bad("units must go from the largest to the smallest, each once");
        }
        last_rank = Some(rank);
        i += letters;
        if i < b.len() && b[i] != b' ' && !b[i].is_ascii_digit() {
            return bad("unexpected character");
        }
        if b.get(i) == Some(&b' ') && i + 1 == b.len() {
            return bad("trailing space");
        }
    }
    Ok(())
}

/// Parses a duration string (grammar in the module header). `zero` says whether `"0s"` is
/// accepted for the key being parsed.
pub fn parse_duration(s: &str, zero: Zero) -> Result<Duration, String> {
    check_grammar(s)?;
    let too_large = || format!("duration {s:?} is too large (at most 365d)");
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_large(),
        other => format!("invalid duration {s:?}: {other}"),
    })?;
    if d > MAX_DURATION {
        return Err(too_large());
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "duration {s:?} is finer than a millisecond (durations are whole milliseconds)"
        ));
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
        assert_eq!(ok("2d"), Duration::from_secs(2 * 86_400));
        assert_eq!(ok("8760h"), MAX_DURATION);
        assert_eq!(ok("365d"), MAX_DURATION);
    }

    #[test]
    fn compound_and_fractional_values() {
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.25s"), Duration::from_millis(250));
        assert_eq!(ok("1m30s500ms"), Duration::from_millis(90_500));
        assert_eq!(ok("1d12h"), Duration::from_secs(36 * 3600));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "30", "s", "-1s", "+1s", " 1s", "1s ", "1 s", "1S", "1sec", "1w", "1M", "1y",
            "1ns", "1us", "ms", "1.s", ".5s", "1..5s", "30m1h", "1m30m", "1h  30m", "1h,30m",
            "1h-30m", "1s 2", "1,5s",
        ] {
            assert!(parse_duration(bad, Zero::Allowed).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_say_what_is_allowed() {
        let e = parse_duration("1sec", Zero::Allowed).unwrap_err();
        assert!(
            e.contains("unknown unit \"sec\"") && e.contains("1h30m"),
            "{e}"
        );
        let e = parse_duration("30m1h", Zero::Allowed).unwrap_err();
        assert!(e.contains("largest to the smallest"), "{e}");
        let e = parse_duration("1.0005s", Zero::Allowed).unwrap_err();
        assert!(e.contains("finer than a millisecond"), "{e}");
    }

    #[test]
    fn rejects_overflow_and_too_large() {
        assert!(parse_duration("99999999999999999999999s", Zero::Allowed).is_err());
        assert!(parse_duration("18446744073709551615h", Zero::Allowed).is_err());
        assert!(parse_duration("8761h", Zero::Allowed).is_err());
        assert!(parse_duration("365d1ms", Zero::Allowed).is_err());
        let e = parse_duration("9999999999999999999d", Zero::Allowed).unwrap_err();
        assert!(e.contains("too large"), "{e}");
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
