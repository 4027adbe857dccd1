//! Validation of how a route tells a sick endpoint: actively, by probing it
//! (`[routes.health_check]`), and passively, by counting its failures
//! (`[routes.outlier_detection]`).
//!
//! Owns their ranges, the cross-key rules (a probe's `timeout` fits in its `interval`;
//! `base_ejection_time` ≤ `max_ejection_time`), the grammar of `statuses` (an integer is one
//! status, a string `"200-299"` a range, both ends included) and the warnings for settings that
//! cannot do anything. Defaults come from `upstream_defaults`. No IO.

use super::duration::{format_duration, Zero};
use super::error::{index, join, Collector};
use super::fields::{checked_duration, int_in};
use super::raw::{RawHealthCheck, RawOutlier, RawStatus};
use super::{upstream_defaults as d, HealthCheckSpec, OutlierSpec, StatusRange};

/// `[routes.health_check]` at `path`; `None` when its `path` key is missing or invalid.
pub(super) fn health_check(
    c: &mut Collector,
    path: &str,
    raw: &RawHealthCheck,
) -> Option<HealthCheckSpec> {
    let p = |k: &str| join(path, k);
    let probe_path = match &raw.path {
        None => {
            c.push(
                p("path"),
                "required: the path probed with GET, such as \"/health\"",
            );
            None
        }
        Some(s) => c.check(&p("path"), probe_path(s)),
    };
    let interval = checked_duration(
        c,
        &p("interval"),
        &raw.interval,
        d::HEALTH_INTERVAL,
        Zero::Rejected,
    );
    let interval = match interval {
        Some(i) if i < d::MIN_HEALTH_INTERVAL => {
            let min = format_duration(d::MIN_HEALTH_INTERVAL);
            c.push(p("interval"), format!("must be at least {min}"));
            None
        }
        other => other,
    };
    let timeout = checked_duration(
        c,
        &p("timeout"),
        &raw.timeout,
        d::HEALTH_TIMEOUT,
        Zero::Rejected,
    );
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t > i {
            // At the key the operator wrote (the other one holds its default).
            let at = if raw.timeout.is_some() {
                "timeout"
            } else {
                "interval"
            };
            c.push(
                p(at),
                format!(
                    "timeout ({}) must not be longer than interval ({}): a probe ends before the next one of the same endpoint starts",
                    format_duration(t),
                    format_duration(i)
                ),
            );
        }
    }
    let threshold = 1..=d::MAX_THRESHOLD;
    let healthy_threshold = int_in(
        c,
        &p("healthy_threshold"),
        raw.healthy_threshold,
        d::HEALTHY_THRESHOLD,
        threshold.clone(),
    );
    let unhealthy_threshold = int_in(
        c,
        &p("unhealthy_threshold"),
        raw.unhealthy_threshold,
        d::UNHEALTHY_THRESHOLD,
        threshold,
    );
    let statuses = match raw.statuses.as_deref() {
        None => vec![d::HEALTH_STATUSES],
        Some([]) => {
            c.push(
                p("statuses"),
                "must not be empty: list the statuses a healthy endpoint answers",
            );
            vec![d::HEALTH_STATUSES]
        }
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, s)| c.check(&index(&p("statuses"), i), status(s)))
            .collect(),
    };
    Some(HealthCheckSpec {
        path: probe_path?,
        interval: interval.unwrap_or(d::HEALTH_INTERVAL),
        timeout: timeout.unwrap_or(d::HEALTH_TIMEOUT),
        healthy_threshold,
        unhealthy_threshold,
        statuses,
    })
}

/// The path (and query) a probe asks for: starts with `/`, visible ASCII without `#` (bytes
/// beyond are percent-encoded), at most `MAX_HEALTH_PATH` bytes. Sent as written.
fn probe_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("{s:?} must start with '/'"));
    }
    if s.len() > d::MAX_HEALTH_PATH {
        return Err(format!("longer than {} bytes", d::MAX_HEALTH_PATH));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(format!(
            "{s:?} must be visible ASCII without spaces or '#' (percent-encode other bytes)"
        ));
    }
    Ok(s.to_owned())
}

/// One `statuses` entry: an integer is one status, a string `"from-to"` a range.
fn status(raw: &RawStatus) -> Result<StatusRange, String> {
    match raw {
        RawStatus::Code(n) => code(*n).map(|s| StatusRange { from: s, to: s }),
        RawStatus::Text(t) => {
            let not_a_range = || {
                format!(
                    "{t:?} is not a range: write one status as an integer (200) or a range as \"200-299\""
                )
            };
            let (from, to) = t.split_once('-').ok_or_else(not_a_range)?;
            let number = |part: &str| match part.len() {
                1..=3 if part.bytes().all(|b| b.is_ascii_digit()) => {
                    part.parse::<i64>().map_err(|_| not_a_range())
                }
                _ => Err(not_a_range()),
            };
            let (from, to) = (code(number(from)?)?, code(number(to)?)?);
            if from > to {
                return Err(format!(
                    "{t:?}: the first status must not be greater than the second"
                ));
            }
            Ok(StatusRange { from, to })
        }
    }
}

/// A status code, 100–599.
fn code(n: i64) -> Result<u16, String> {
    match u16::try_from(n) {
        Ok(s) if (100..=599).contains(&s) => Ok(s),
        _ => Err(format!("status {n} is not between 100 and 599")),
    }
}

/// `[routes.outlier_detection]` at `path`.
pub(super) fn outlier(c: &mut Collector, path: &str, raw: &RawOutlier) -> OutlierSpec {
    let p = |k: &str| join(path, k);
    let count = 0..=d::MAX_CONSECUTIVE;
    let consecutive_5xx = int_in(
        c,
        &p("consecutive_5xx"),
        raw.consecutive_5xx,
        d::CONSECUTIVE_5XX,
        count.clone(),
    );
    let consecutive_gateway_failure = int_in(
        c,
        &p("consecutive_gateway_failure"),
        raw.consecutive_gateway_failure,
        d::CONSECUTIVE_GATEWAY_FAILURE,
        count,
    );
    let base = checked_duration(
        c,
        &p("base_ejection_time"),
        &raw.base_ejection_time,
        d::BASE_EJECTION_TIME,
        Zero::Rejected,
    );
    let max = checked_duration(
        c,
        &p("max_ejection_time"),
        &raw.max_ejection_time,
        d::MAX_EJECTION_TIME,
        Zero::Rejected,
    );
    if let (Some(b), Some(m)) = (base, max) {
        if b > m {
            let at = if raw.base_ejection_time.is_some() {
                "base_ejection_time"
            } else {
                "max_ejection_time"
            };
            c.push(
                p(at),
                format!(
                    "base_ejection_time ({}) must not be longer than max_ejection_time ({})",
                    format_duration(b),
                    format_duration(m)
                ),
            );
        }
    }
    let max_ejection_percent = int_in(
        c,
        &p("max_ejection_percent"),
        raw.max_ejection_percent,
        d::MAX_EJECTION_PERCENT,
        0..=100,
    );
    let spec = OutlierSpec {
        consecutive_5xx,
        consecutive_gateway_failure,
        base_ejection_time: base.unwrap_or(d::BASE_EJECTION_TIME),
        max_ejection_time: max.unwrap_or(d::MAX_EJECTION_TIME),
        max_ejection_percent,
    };
    outlier_warnings(c, path, raw, &spec);
    spec
}

/// Outlier settings that cannot eject anything.
fn outlier_warnings(c: &mut Collector, path: &str, raw: &RawOutlier, spec: &OutlierSpec) {
    if spec.consecutive_5xx == 0 && spec.consecutive_gateway_failure == 0 {
        c.warn(
            path,
            "consecutive_5xx and consecutive_gateway_failure are both 0: no rule ejects an endpoint, so outlier_detection does nothing",
        );
    } else if raw.max_ejection_percent.is_some() && spec.max_ejection_percent == 0 {
        c.warn(
            join(path, "max_ejection_percent"),
            "0: no endpoint may be ejected, so outlier_detection does nothing",
        );
    }
}
