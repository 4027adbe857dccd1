//! Validation of a route's upstream settings: `load_balancing`, `hash`, `resolve_interval`,
//! `timeouts` and `[routes.retry]` here; `[routes.health_check]` and
//! `[routes.outlier_detection]` in `validate_health`.
//!
//! Owns their grammar, the rules across keys (`hash` goes with `load_balancing = "hash"`;
//! `backoff.base` ≤ `backoff.max`) and the warnings for settings that cannot do anything.
//! Defaults: `upstream_defaults`, with the per-route timeouts defaulting to `[limits]`, and
//! [`UpstreamSpec::defaults`] for a route without `[routes.retry]`. No IO.

use super::duration::{format_duration, parse_raw, Zero};
use super::error::{index, join, Collector};
use super::fields::{checked_duration, duration, int_in, is_token, words};
use super::raw::{RawBackoff, RawHash, RawRetry, RawRoute, RawTimeouts};
use super::validate_health::{health_check, outlier};
use super::Limits;
use super::{
    upstream_defaults as d, HashOn, LoadBalancing, RetryCondition, RetrySpec, TargetConfig,
    UpstreamSpec, UpstreamTimeouts,
};

/// The policies `load_balancing` names.
const POLICIES: [&str; 4] = ["round_robin", "least_request", "random", "hash"];

/// The upstream settings of the route at `path`, whose valid targets are `targets`.
pub(super) fn upstream(
    c: &mut Collector,
    path: &str,
    raw: &RawRoute,
    targets: &[TargetConfig],
    limits: &Limits,
) -> UpstreamSpec {
    let p = |k: &str| join(path, k);
    let defaults = UpstreamSpec::defaults(limits.upstream_connect_timeout, limits.upstream_timeout);
    let load_balancing = policy(c, path, raw);
    let resolve_interval = duration(
        c,
        &p("resolve_interval"),
        &raw.resolve_interval,
        d::RESOLVE_INTERVAL,
        Zero::Rejected,
    );
    let resolve_interval = if resolve_interval < d::MIN_RESOLVE_INTERVAL {
        let min = format_duration(d::MIN_RESOLVE_INTERVAL);
        c.push(p("resolve_interval"), format!("must be at least {min}"));
        d::RESOLVE_INTERVAL
    } else {
        resolve_interval
    };
    if raw.resolve_interval.is_some() && !targets.is_empty() && !targets.iter().any(|t| t.named) {
        c.warn(
            p("resolve_interval"),
            "every target is an IP address, which is never resolved: resolve_interval does nothing",
        );
    }
    let timeouts = match &raw.timeouts {
        None => defaults.timeouts,
        Some(t) => timeouts(c, &p("timeouts"), t, defaults.timeouts),
    };
    let health_check = raw
        .health_check
        .as_ref()
        .and_then(|h| health_check(c, &p("health_check"), h));
    let outlier_detection = raw
        .outlier_detection
        .as_ref()
        .map(|o| outlier(c, &p("outlier_detection"), o));
    let retry = match &raw.retry {
        None => defaults.retry,
        Some(r) => retry(c, &p("retry"), r, &timeouts),
    };
    UpstreamSpec {
        load_balancing,
        resolve_interval,
        timeouts,
        health_check,
        outlier_detection,
        retry,
    }
}

/// `load_balancing`, with `hash` when the policy is `"hash"` (ignored with a warning otherwise).
fn policy(c: &mut Collector, path: &str, raw: &RawRoute) -> LoadBalancing {
    let hash_path = join(path, "hash");
    let hash = raw.hash.as_ref().map(|h| hash_on(c, &hash_path, h));
    let word = raw.load_balancing.as_deref().unwrap_or("round_robin");
    let policy = match word {
        "round_robin" => LoadBalancing::RoundRobin,
        "least_request" => LoadBalancing::LeastRequest,
        "random" => LoadBalancing::Random,
        "hash" => match hash {
            Some(Some(on)) => return LoadBalancing::Hash(on),
            // The error is at `hash`.
            Some(None) => return LoadBalancing::RoundRobin,
            None => {
                c.push(
                    join(path, "load_balancing"),
                    "\"hash\" needs a hash table saying what is hashed: hash = { header = \"…\" }, { cookie = \"…\" }, { query = \"…\" } or { client_ip = true }",
                );
                return LoadBalancing::RoundRobin;
            }
        },
        other => {
            c.push(
                join(path, "load_balancing"),
                format!("unknown policy {other:?} (expected {})", words(&POLICIES)),
            );
            return LoadBalancing::RoundRobin;
        }
    };
    if hash.is_some() {
        // A warning, not an error: the key is valid, it just does nothing under this policy
        // (an operator switching policies back and forth keeps the table written).
        c.warn(
            hash_path,
            format!(
                "does nothing here: it applies to load_balancing = \"hash\" only, and this route's policy is {word:?}"
            ),
        );
    }
    policy
}

/// `hash`: exactly one of `header`, `cookie`, `query`, `client_ip = true`. `None` when in error
/// (recorded).
fn hash_on(c: &mut Collector, path: &str, raw: &RawHash) -> Option<HashOn> {
    let p = |k: &str| join(path, k);
    let mut set = 0;
    let mut on = None;
    if let Some(name) = &raw.header {
        set += 1;
        let name = name.to_ascii_lowercase();
        if is_token(&name) {
            on = Some(HashOn::Header(name));
        } else {
            c.push(
                p("header"),
                format!("{name:?} is not a valid HTTP header name"),
            );
        }
    }
    if let Some(name) = &raw.cookie {
        set += 1;
        if is_token(name) {
            on = Some(HashOn::Cookie(name.clone()));
        } else {
            c.push(
                p("cookie"),
                format!("{name:?} is not a valid cookie name (an RFC 6265 token)"),
            );
        }
    }
    if let Some(name) = &raw.query {
        set += 1;
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"&=#".contains(&b))
        {
            on = Some(HashOn::Query(name.clone()));
        } else {
            c.push(
                p("query"),
                format!("{name:?} is not a query parameter name as sent: visible ASCII without spaces, '&', '=' or '#'"),
            );
        }
    }
    if raw.client_ip == Some(true) {
        set += 1;
        on = Some(HashOn::ClientIp);
    }
    if set != 1 {
        let why = "set exactly one of header, cookie, query or client_ip = true";
        c.push(
            path,
            match set {
                0 => why.to_owned(),
                n => format!("{why} ({n} are set)"),
            },
        );
        return None;
    }
    on
}

/// `timeouts`: each key greater than zero, defaulting to its `[limits]` counterpart.
fn timeouts(
    c: &mut Collector,
    path: &str,
    raw: &RawTimeouts,
    limits: UpstreamTimeouts,
) -> UpstreamTimeouts {
    let p = |k: &str| join(path, k);
    UpstreamTimeouts {
        connect: duration(
            c,
            &p("connect"),
            &raw.connect,
            limits.connect,
            Zero::Rejected,
        ),
        response_header: duration(
            c,
            &p("response_header"),
            &raw.response_header,
            limits.response_header,
            Zero::Rejected,
        ),
        idle: duration(c, &p("idle"), &raw.idle, limits.idle, Zero::Rejected),
    }
}

/// `[routes.retry]` at `path`. Written, it retries every condition unless `on` narrows them.
fn retry(c: &mut Collector, path: &str, raw: &RawRetry, timeouts: &UpstreamTimeouts) -> RetrySpec {
    let p = |k: &str| join(path, k);
    let attempts = int_in(
        c,
        &p("attempts"),
        raw.attempts,
        d::ATTEMPTS,
        1..=d::MAX_ATTEMPTS,
    );
    let on = match &raw.on {
        None => d::RETRY_ON.to_vec(),
        Some(list) => conditions(c, &p("on"), list),
    };
    let per_try_timeout = raw
        .per_try_timeout
        .as_ref()
        .and_then(|t| c.check(&p("per_try_timeout"), parse_raw(t, Zero::Rejected)));
    let unwritten = RawBackoff::default();
    let backoff = raw.backoff.as_ref().unwrap_or(&unwritten);
    let bp = |k: &str| join(&p("backoff"), k);
    let base = checked_duration(
        c,
        &bp("base"),
        &backoff.base,
        d::BACKOFF_BASE,
        Zero::Rejected,
    );
    let max = checked_duration(c, &bp("max"), &backoff.max, d::BACKOFF_MAX, Zero::Rejected);
    if let (Some(b), Some(m)) = (base, max) {
        if b > m {
            // At the key the operator wrote (the other one holds its default).
            let at = if backoff.base.is_some() {
                "base"
            } else {
                "max"
            };
            c.push(
                bp(at),
                format!(
                    "base ({}) must not be longer than max ({})",
                    format_duration(b),
                    format_duration(m)
                ),
            );
        }
    }
    let budget_percent = int_in(
        c,
        &p("budget_percent"),
        raw.budget_percent,
        d::BUDGET_PERCENT,
        1..=100,
    );
    let spec = RetrySpec {
        attempts,
        on,
        per_try_timeout,
        backoff_base: base.unwrap_or(d::BACKOFF_BASE),
        backoff_max: max.unwrap_or(d::BACKOFF_MAX),
        budget_percent,
    };
    retry_warnings(c, path, raw, &spec, timeouts);
    spec
}

/// `retry.on`: known words, each once, at least one.
fn conditions(c: &mut Collector, path: &str, list: &[String]) -> Vec<RetryCondition> {
    if list.is_empty() {
        c.push(
            path,
            "must not be empty: list what is retried, or set attempts = 1 for no retry",
        );
        return d::RETRY_ON.to_vec();
    }
    let mut out: Vec<RetryCondition> = Vec::with_capacity(list.len());
    for (i, word) in list.iter().enumerate() {
        let at = index(path, i);
        match RetryCondition::ALL.into_iter().find(|r| r.as_str() == word) {
            Some(r) if out.contains(&r) => c.push(at, format!("duplicate entry {word:?}")),
            Some(r) => out.push(r),
            None => c.push(
                at,
                format!(
                    "unknown condition {word:?} (expected {})",
                    words(&RetryCondition::ALL.map(RetryCondition::as_str))
                ),
            ),
        }
    }
    out
}

/// Retry settings that cannot do anything.
fn retry_warnings(
    c: &mut Collector,
    path: &str,
    raw: &RawRetry,
    spec: &RetrySpec,
    timeouts: &UpstreamTimeouts,
) {
    if let Some(t) = spec.per_try_timeout {
        if t >= timeouts.response_header {
            c.warn(
                join(path, "per_try_timeout"),
                format!(
                    "{} is not shorter than timeouts.response_header ({}), which ends every try first: per_try_timeout does nothing",
                    format_duration(t),
                    format_duration(timeouts.response_header)
                ),
            );
        }
    }
    if spec.attempts == 1 {
        let written = [
            ("on", raw.on.is_some()),
            ("backoff", raw.backoff.is_some()),
            ("budget_percent", raw.budget_percent.is_some()),
        ];
        for (key, _) in written.iter().filter(|(_, w)| *w) {
            c.warn(
                join(path, key),
                format!("attempts = 1 retries nothing, so {key} does nothing"),
            );
        }
    }
}
