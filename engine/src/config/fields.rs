//! Field-level checks shared by every section validator: durations, bounded integers, header
//! names and tokens, regexes, the JOSE algorithm names and the required scopes and claims of
//! `[routes.jwt]` and `[routes.apikeys]`.
//!
//! Owns the small grammars that several sections use, so that `validate`, `validate_route`,
//! `validate_security`, `validate_tls`, `validate_upstream`, `validate_health` and `auth`
//! import them from below instead of from each other. Pure: no file, secret or environment is touched here.

use std::ops::RangeInclusive;
use std::time::Duration;

use std::collections::BTreeMap;

use torii_protocol::jwt_verifier::RequiredClaims;

use super::duration::{parse_raw, RawDuration, Zero};
use super::error::{index, join, Collector};
use super::raw::RawClaimValues;

/// The JOSE algorithm names Torii accepts.
pub const ALGORITHMS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384",
];

/// An optional duration, or its default.
pub(super) fn duration(
    c: &mut Collector,
    path: &str,
    raw: &Option<RawDuration>,
    default: Duration,
    zero: Zero,
) -> Duration {
    match raw {
        None => default,
        Some(r) => c.check(path, parse_raw(r, zero)).unwrap_or(default),
    }
}

/// An optional duration, or its default when absent; `None` when it is written and invalid
/// (the error is recorded), for keys checked against each other afterwards.
pub(super) fn checked_duration(
    c: &mut Collector,
    path: &str,
    raw: &Option<RawDuration>,
    default: Duration,
    zero: Zero,
) -> Option<Duration> {
    match raw {
        None => Some(default),
        Some(r) => c.check(path, parse_raw(r, zero)),
    }
}

/// `v` when it is in `range`; else `must be between {min} and {max}`.
pub(super) fn in_range(v: i64, range: RangeInclusive<u32>) -> Result<u32, String> {
    match u32::try_from(v) {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "must be between {} and {}",
            range.start(),
            range.end()
        )),
    }
}

/// An optional integer in `range` ([`in_range`]), or its default.
pub(super) fn int_in(
    c: &mut Collector,
    path: &str,
    raw: Option<i64>,
    default: u32,
    range: RangeInclusive<u32>,
) -> u32 {
    match raw {
        None => default,
        Some(v) => c.check(path, in_range(v, range)).unwrap_or(default),
    }
}

/// `"a", "b" or "c"`: the accepted words of a key, for its error messages.
pub(super) fn words(list: &[&str]) -> String {
    let quoted: Vec<String> = list.iter().map(|w| format!("{w:?}")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Whether `s` is an RFC 9110 token (a header name, a cookie name): one or more letters,
/// digits and ``!#$%&'*+-.^_`|~``.
pub(super) fn is_token(s: &str) -> bool {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !s.is_empty() && s.bytes().all(tchar)
}

/// Checks an HTTP header name (an RFC 9110 token) or returns the default.
pub(super) fn header_name(
    c: &mut Collector,
    path: &str,
    raw: &Option<String>,
    default: &str,
) -> String {
    let Some(name) = raw else {
        return default.to_owned();
    };
    if !is_token(name) {
        c.push(path, format!("{name:?} is not a valid HTTP header name"));
        return default.to_owned();
    }
    name.clone()
}

/// Compiles a regex; the error is flattened to one line.
pub(super) fn compile_regex(re: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let reason = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .map_or_else(
                    || text.split_whitespace().collect::<Vec<_>>().join(" "),
                    str::to_owned,
                );
            format!("invalid regex: {reason}")
        })
}

/// `required_scopes` and `required_claims` of the section at `path`. A scope is one word (no
/// whitespace: the token's `scope` is split on spaces); a claim name and each accepted value are
/// non-empty strings, and a list holds at least one value.
pub(super) fn required_claims(
    c: &mut Collector,
    path: &str,
    scopes: &Option<Vec<String>>,
    claims: &Option<BTreeMap<String, RawClaimValues>>,
) -> RequiredClaims {
    let mut out = RequiredClaims::default();
    for (i, s) in scopes.iter().flatten().enumerate() {
        if s.is_empty() || s.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            let why = "a scope is one non-empty word (the token's scope is split on spaces)";
            c.push(index(&join(path, "required_scopes"), i), why);
        } else if !out.scopes.contains(s) {
            out.scopes.push(s.clone());
        }
    }
    for (name, values) in claims.iter().flatten() {
        let cp = join(&join(path, "required_claims"), name);
        let values = match values {
            RawClaimValues::One(v) => vec![v.clone()],
            RawClaimValues::Many(list) => list.clone(),
        };
        if name.is_empty() {
            c.push(&cp, "a claim name must not be empty");
        } else if values.is_empty() {
            c.push(&cp, "list at least one accepted value");
        } else if values.iter().any(String::is_empty) {
            c.push(&cp, "accepted values must not be empty");
        } else {
            out.claims.push((name.clone(), values));
        }
    }
    out
}
