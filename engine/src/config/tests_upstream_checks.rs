//! Tests of how a route checks, ejects and retries its endpoints: `[routes.health_check]`
//! (with the `statuses` grammar), `[routes.outlier_detection]` and `[routes.retry]`: every key
//! accepted, every refusal with its message and key path, the defaults, and the warnings for
//! settings that cannot do anything. (Targets, policies and timeouts: `tests_upstream`.)

use std::time::Duration;

use super::tests::{errors, located_errors, ok};
use super::*;

/// A route with one IP target, then `rest`.
fn plain(rest: &str) -> String {
    format!(
        "[gateway]\nhttp = [\"127.0.0.1:8080\"]\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9001\"]\n{rest}\n"
    )
}

/// The upstream settings of the first route of `text`.
fn spec(text: &str) -> UpstreamSpec {
    ok(text).routes[0].upstream.clone()
}

/// The warnings of `text` as printed, without their positions.
fn warned(text: &str) -> Vec<String> {
    warnings(&ok(text), 0)
        .iter()
        .map(|w| {
            let s = w.to_string();
            match s.rfind(" (line ") {
                Some(at) => s[..at].to_owned(),
                None => s,
            }
        })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn health(body: &str) -> String {
    plain(&format!("[routes.health_check]\n{body}"))
}

fn range(from: u16, to: u16) -> StatusRange {
    StatusRange { from, to }
}

#[test]
fn a_health_check_with_a_path_only_gets_the_defaults() {
    let h = spec(&health("path = \"/healthz?deep=1\"")).health_check;
    assert_eq!(
        h,
        Some(HealthCheckSpec {
            path: "/healthz?deep=1".into(),
            interval: upstream_defaults::HEALTH_INTERVAL,
            timeout: upstream_defaults::HEALTH_TIMEOUT,
            healthy_threshold: upstream_defaults::HEALTHY_THRESHOLD,
            unhealthy_threshold: upstream_defaults::UNHEALTHY_THRESHOLD,
            statuses: vec![upstream_defaults::HEALTH_STATUSES],
        })
    );
    let default = upstream_defaults::HEALTH_STATUSES;
    assert!(default.contains(200) && default.contains(302) && default.contains(399));
    assert!(!default.contains(199) && !default.contains(400) && !default.contains(503));
    assert_eq!(spec(&plain("")).health_check, None);
}

#[test]
fn health_check_keys_at_their_bounds() {
    let h = spec(&health(
        "path = \"/\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nhealthy_threshold = 1\nunhealthy_threshold = 100\nstatuses = [204, \"200-299\", \"500-599\", 100, \"302-302\"]",
    ))
    .health_check;
    let h = h.unwrap_or_else(|| panic!("no health check"));
    assert_eq!((h.interval, h.timeout), (ms(100), ms(100)));
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (1, 100));
    assert_eq!(
        h.statuses,
        [
            range(204, 204),
            range(200, 299),
            range(500, 599),
            range(100, 100),
            range(302, 302)
        ]
    );
}

#[test]
fn health_check_refusals() {
    assert_eq!(
        errors(&health("interval = \"99ms\"\ntimeout = \"0s\"\nhealthy_threshold = 0\nunhealthy_threshold = 101")),
        [
            "routes[0].health_check.path: required: the path probed with GET, such as \"/health\"",
            "routes[0].health_check.interval: must be at least 100ms",
            "routes[0].health_check.timeout: duration must be greater than zero",
            "routes[0].health_check.healthy_threshold: must be between 1 and 100",
            "routes[0].health_check.unhealthy_threshold: must be between 1 and 100",
        ]
    );
    assert_eq!(
        errors(&health("path = \"health\"")),
        ["routes[0].health_check.path: \"health\" must start with '/'"]
    );
    assert_eq!(
        errors(&health("path = \"/a b#c\"")),
        ["routes[0].health_check.path: \"/a b#c\" must be visible ASCII without spaces or '#' (percent-encode other bytes)"]
    );
    let long = format!(
        "path = \"/{}\"",
        "a".repeat(upstream_defaults::MAX_HEALTH_PATH)
    );
    assert_eq!(
        errors(&health(&long)),
        ["routes[0].health_check.path: longer than 1024 bytes"]
    );
}

#[test]
fn a_probe_fits_in_its_interval_and_the_error_is_at_the_written_key() {
    assert_eq!(
        errors(&health("path = \"/\"\ninterval = \"1s\"\ntimeout = \"1500ms\"")),
        ["routes[0].health_check.timeout: timeout (1500ms) must not be longer than interval (1s): a probe ends before the next one of the same endpoint starts"]
    );
    // Only the interval is written: the default timeout (1s) does not fit, at `interval`.
    let text = health("path = \"/\"\ninterval = \"500ms\"");
    assert_eq!(
        errors(&text),
        ["routes[0].health_check.interval: timeout (1s) must not be longer than interval (500ms): a probe ends before the next one of the same endpoint starts"]
    );
    assert!(located_errors(&text)[0].ends_with("(line 9, column 1)"));
    // An invalid interval is reported once, not compared.
    assert_eq!(
        errors(&health("path = \"/\"\ninterval = \"1x\"\ntimeout = \"9s\"")).len(),
        1
    );
}

#[test]
fn statuses_are_codes_or_ranges() {
    let text = health(
        "path = \"/\"\nstatuses = [99, 600, \"2xx\", \"300-200\", \"200-\", \"0200-0299\", \"200-600\", 200]",
    );
    assert_eq!(
        errors(&text),
        [
            "routes[0].health_check.statuses[0]: status 99 is not between 100 and 599",
            "routes[0].health_check.statuses[1]: status 600 is not between 100 and 599",
            "routes[0].health_check.statuses[2]: \"2xx\" is not a range: write one status as an integer (200) or a range as \"200-299\"",
            "routes[0].health_check.statuses[3]: \"300-200\": the first status must not be greater than the second",
            "routes[0].health_check.statuses[4]: \"200-\" is not a range: write one status as an integer (200) or a range as \"200-299\"",
            "routes[0].health_check.statuses[5]: \"0200-0299\" is not a range: write one status as an integer (200) or a range as \"200-299\"",
            "routes[0].health_check.statuses[6]: status 600 is not between 100 and 599",
        ]
    );
    assert_eq!(
        errors(&health("path = \"/\"\nstatuses = []")),
        ["routes[0].health_check.statuses: must not be empty: list the statuses a healthy endpoint answers"]
    );
    assert_eq!(
        errors(&health("path = \"/\"\nstatuses = [true]")),
        ["routes[0].health_check.statuses[0]: invalid type: boolean, expected a status (an integer) or a range such as \"200-299\""]
    );
}

fn outlier(body: &str) -> String {
    plain(&format!("[routes.outlier_detection]\n{body}"))
}

#[test]
fn outlier_detection_defaults_and_every_key() {
    assert_eq!(
        spec(&outlier("")).outlier_detection,
        Some(OutlierSpec {
            consecutive_5xx: upstream_defaults::CONSECUTIVE_5XX,
            consecutive_gateway_failure: upstream_defaults::CONSECUTIVE_GATEWAY_FAILURE,
            base_ejection_time: upstream_defaults::BASE_EJECTION_TIME,
            max_ejection_time: upstream_defaults::MAX_EJECTION_TIME,
            max_ejection_percent: upstream_defaults::MAX_EJECTION_PERCENT,
        })
    );
    assert_eq!(
        spec(&outlier(
            "consecutive_5xx = 0\nconsecutive_gateway_failure = 1000\nbase_ejection_time = \"10s\"\nmax_ejection_time = \"10s\"\nmax_ejection_percent = 100"
        ))
        .outlier_detection,
        Some(OutlierSpec {
            consecutive_5xx: 0,
            consecutive_gateway_failure: 1000,
            base_ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(10),
            max_ejection_percent: 100,
        })
    );
}

#[test]
fn outlier_detection_refusals() {
    assert_eq!(
        errors(&outlier(
            "consecutive_5xx = -1\nconsecutive_gateway_failure = 1001\nbase_ejection_time = \"0s\"\nmax_ejection_time = \"1\"\nmax_ejection_percent = 101"
        )),
        [
            "routes[0].outlier_detection.consecutive_5xx: must be between 0 and 1000",
            "routes[0].outlier_detection.consecutive_gateway_failure: must be between 0 and 1000",
            "routes[0].outlier_detection.base_ejection_time: duration must be greater than zero",
            "routes[0].outlier_detection.max_ejection_time: invalid duration \"1\": a unit is required; expected a number and a unit (ms, s, m, h, d), or several from the largest unit to the smallest, such as \"30s\", \"1h30m\" or \"1.5s\"",
            "routes[0].outlier_detection.max_ejection_percent: must be between 0 and 100",
        ]
    );
    // Against the default max (5m), at base; against the default base (30s), at max.
    assert_eq!(
        errors(&outlier("base_ejection_time = \"10m\"")),
        ["routes[0].outlier_detection.base_ejection_time: base_ejection_time (10m) must not be longer than max_ejection_time (5m)"]
    );
    assert_eq!(
        errors(&outlier("max_ejection_time = \"10s\"")),
        ["routes[0].outlier_detection.max_ejection_time: base_ejection_time (30s) must not be longer than max_ejection_time (10s)"]
    );
}

#[test]
fn outlier_settings_that_eject_nothing_are_warned() {
    assert_eq!(
        warned(&outlier("consecutive_5xx = 0\nconsecutive_gateway_failure = 0")),
        ["routes[0].outlier_detection: consecutive_5xx and consecutive_gateway_failure are both 0: no rule ejects an endpoint, so outlier_detection does nothing"]
    );
    assert_eq!(
        warned(&outlier("max_ejection_percent = 0")),
        ["routes[0].outlier_detection.max_ejection_percent: 0: no endpoint may be ejected, so outlier_detection does nothing"]
    );
    assert!(warned(&outlier("consecutive_5xx = 0")).is_empty());
}

fn retry(body: &str) -> String {
    plain(&format!("[routes.retry]\n{body}"))
}

#[test]
fn a_written_retry_section_retries_every_condition_unless_on_says() {
    let r = spec(&retry("")).retry;
    assert_eq!(
        r,
        RetrySpec {
            attempts: upstream_defaults::ATTEMPTS,
            on: RetryCondition::ALL.to_vec(),
            per_try_timeout: None,
            backoff_base: upstream_defaults::BACKOFF_BASE,
            backoff_max: upstream_defaults::BACKOFF_MAX,
            budget_percent: upstream_defaults::BUDGET_PERCENT,
        }
    );
    // Absent, only connect failures are retried (nothing was sent).
    assert_eq!(spec(&plain("")).retry.on, [RetryCondition::ConnectFailure]);
    let r = spec(&retry(
        "attempts = 10\non = [\"504\", \"reset\"]\nper_try_timeout = \"500ms\"\nbackoff = { base = \"1s\", max = \"1s\" }\nbudget_percent = 100",
    ))
    .retry;
    assert_eq!(
        r,
        RetrySpec {
            attempts: upstream_defaults::MAX_ATTEMPTS,
            on: vec![RetryCondition::Status504, RetryCondition::Reset],
            per_try_timeout: Some(ms(500)),
            backoff_base: ms(1000),
            backoff_max: ms(1000),
            budget_percent: 100,
        }
    );
    let one = spec(&retry("attempts = 1\nbudget_percent = 1")).retry;
    assert_eq!((one.attempts, one.budget_percent), (1, 1));
}

#[test]
fn retry_refusals() {
    assert_eq!(
        errors(&retry(
            "attempts = 0\non = [\"connect-failure\", \"5xx\", \"reset\", \"connect-failure\"]\nper_try_timeout = \"0s\"\nbudget_percent = 0"
        )),
        [
            "routes[0].retry.attempts: must be between 1 and 10",
            "routes[0].retry.on[1]: unknown condition \"5xx\" (expected \"connect-failure\", \"reset\", \"502\", \"503\" or \"504\")",
            "routes[0].retry.on[3]: duplicate entry \"connect-failure\"",
            "routes[0].retry.per_try_timeout: duration must be greater than zero",
            "routes[0].retry.budget_percent: must be between 1 and 100",
        ]
    );
    assert_eq!(
        errors(&retry("attempts = 11\non = []\nbudget_percent = 101")),
        [
            "routes[0].retry.attempts: must be between 1 and 10",
            "routes[0].retry.on: must not be empty: list what is retried, or set attempts = 1 for no retry",
            "routes[0].retry.budget_percent: must be between 1 and 100",
        ]
    );
}

#[test]
fn backoff_base_is_not_above_max_and_the_error_is_at_the_written_key() {
    assert_eq!(
        errors(&retry("backoff = { base = \"1s\", max = \"500ms\" }")),
        ["routes[0].retry.backoff.base: base (1s) must not be longer than max (500ms)"]
    );
    assert_eq!(
        errors(&retry("backoff = { base = \"1s\" }")),
        ["routes[0].retry.backoff.base: base (1s) must not be longer than max (250ms)"]
    );
    let text = retry("backoff = { max = \"10ms\" }");
    assert_eq!(
        errors(&text),
        ["routes[0].retry.backoff.max: base (25ms) must not be longer than max (10ms)"]
    );
    assert!(located_errors(&text)[0].ends_with("(line 8, column 13)"));
    assert_eq!(
        errors(&retry("backoff = { base = \"0s\", bse = \"1s\" }")),
        [
            "routes[0].retry.backoff.bse: unknown key (did you mean `base`?)",
            "routes[0].retry.backoff.base: duration must be greater than zero",
        ]
    );
}

#[test]
fn retry_settings_that_cannot_act_are_warned() {
    assert_eq!(
        warned(&retry("per_try_timeout = \"30s\"")),
        ["routes[0].retry.per_try_timeout: 30s is not shorter than timeouts.response_header (30s), which ends every try first: per_try_timeout does nothing"]
    );
    assert!(warned(&retry("per_try_timeout = \"29s\"")).is_empty());
    let short =
        plain("timeouts = { response_header = \"1s\" }\n[routes.retry]\nper_try_timeout = \"2s\"");
    assert_eq!(warned(&short).len(), 1);
    assert_eq!(
        warned(&retry(
            "attempts = 1\non = [\"502\"]\nbackoff = { base = \"10ms\" }\nbudget_percent = 50\nper_try_timeout = \"1s\""
        )),
        [
            "routes[0].retry.on: attempts = 1 retries nothing, so on does nothing",
            "routes[0].retry.backoff: attempts = 1 retries nothing, so backoff does nothing",
            "routes[0].retry.budget_percent: attempts = 1 retries nothing, so budget_percent does nothing",
        ]
    );
    assert!(warned(&retry("attempts = 1")).is_empty());
    assert!(warned(&retry("attempts = 3\non = [\"502\"]")).is_empty());
}

#[test]
fn warnings_are_placed_at_their_keys() {
    let text = retry("attempts = 1\non = [\"502\"]");
    let w = warnings(&ok(&text), 0);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "routes[0].retry.on");
    assert!(
        w[0].message.ends_with("(line 9, column 1)"),
        "{}",
        w[0].message
    );
}
