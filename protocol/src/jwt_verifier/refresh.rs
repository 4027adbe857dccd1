//! When a key set fetched from a URL (`jwks_url`) is fetched again: the pure schedule that a
//! fetcher thread follows. No clock: callers pass elapsed times and get durations back.
//!
//! Rules (documented in `docs/configuration.md`, `[routes.jwt]`):
//! * after a good fetch, the next one is due after the response's `Cache-Control: max-age`
//!   (RFC 9111 §5.2.2.1), bounded to `[min, max]`; `no-cache`, `no-store` or `max-age=0` give
//!   `min`; no usable `max-age` gives `max` (`s-maxage`, `Expires` and `Age` are not read);
//! * after a failed fetch (network, status, garbage), retries back off from 1 s, doubling, up
//!   to `min` (a start with the server down recovers within seconds of its return, and a long
//!   outage costs one attempt per `min`);
//! * a token naming a `kid` the set lacks asks for a fetch at once, but fetches caused that way
//!   start at least `min` apart: a flood of tokens with random `kid`s costs one fetch per `min`.

use std::time::Duration;

/// What a response's `Cache-Control` says about caching the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDirective {
    /// `max-age=N` (seconds).
    MaxAge(u64),
    /// `no-cache`, `no-store` or `max-age=0`: fetch again as soon as allowed.
    NoCache,
    /// No header, or nothing usable in it.
    Unspecified,
}

/// Reads a `Cache-Control` header value (`None`: absent). Directive names are
/// case-insensitive (RFC 9111 §5.2); `max-age` may be quoted; a malformed or repeated
/// `max-age` counts as unspecified (RFC 9111 §4.2.1 says to treat invalid freshness
/// information as stale, and a refetch at `max` is the conservative reading here).
pub fn cache_directive(value: Option<&str>) -> CacheDirective {
    let Some(value) = value else {
        return CacheDirective::Unspecified;
    };
    let mut max_age = None;
    let mut repeated = false;
    for part in value.split(',') {
        let part = part.trim();
        let (name, arg) = match part.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (part, None),
        };
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return CacheDirective::NoCache;
        }
        if name.eq_ignore_ascii_case("max-age") {
            if max_age.is_some() {
                repeated = true;
            }
            max_age = Some(
                arg.filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                    // Digits only; beyond u64 is "very long", which `max` bounds anyway.
                    .map(|a| a.parse::<u64>().unwrap_or(u64::MAX)),
            );
        }
    }
    match max_age {
        _ if repeated => CacheDirective::Unspecified,
        Some(Some(0)) => CacheDirective::NoCache,
        Some(Some(n)) => CacheDirective::MaxAge(n),
        _ => CacheDirective::Unspecified,
    }
}

/// The fetch schedule of one URL: `jwks_refresh_min` and `jwks_refresh_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Shortest time between two fetches (also the kid-miss rate limit).
    pub min: Duration,
    /// Longest time a good set is kept without a fetch.
    pub max: Duration,
}

/// First retry delay after a failed fetch.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

impl RefreshPolicy {
    /// Delay from a good fetch to the next one.
    pub fn after_success(&self, directive: CacheDirective) -> Duration {
        let wanted = match directive {
            CacheDirective::MaxAge(secs) => Duration::from_secs(secs),
            CacheDirective::NoCache => self.min,
            CacheDirective::Unspecified => self.max,
        };
        wanted.clamp(self.min, self.max.max(self.min))
    }

    /// Delay from the `failures`-th failed fetch in a row (1 for the first) to the next try:
    /// 1 s, 2 s, 4 s… up to `min`.
    pub fn after_failure(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        FIRST_RETRY
            .saturating_mul(1u32 << shift)
            .min(self.min.max(FIRST_RETRY))
    }

    /// How long a fetch asked for by a kid miss must still wait, `since_last_start` after the
    /// previous fetch started (`None`: there was none): zero once `min` has passed.
    pub fn kid_miss_wait(&self, since_last_start: Option<Duration>) -> Duration {
        match since_last_start {
            None => Duration::ZERO,
            Some(elapsed) => self.min.saturating_sub(elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn reads_max_age_and_no_cache() {
        use CacheDirective::*;
        assert_eq!(cache_directive(None), Unspecified);
        assert_eq!(cache_directive(Some("")), Unspecified);
        assert_eq!(cache_directive(Some("public, max-age=300")), MaxAge(300));
        assert_eq!(cache_directive(Some("Max-Age = \"60\"")), MaxAge(60));
        assert_eq!(cache_directive(Some("max-age=0")), NoCache);
        assert_eq!(cache_directive(Some("max-age=60, no-store")), NoCache);
        assert_eq!(cache_directive(Some("NO-CACHE")), NoCache);
        assert_eq!(cache_directive(Some("max-age=-1")), Unspecified);
        assert_eq!(cache_directive(Some("max-age=1e3")), Unspecified);
        assert_eq!(cache_directive(Some("max-age")), Unspecified);
        assert_eq!(cache_directive(Some("max-age=1, max-age=2")), Unspecified);
        assert_eq!(cache_directive(Some("s-maxage=30")), Unspecified);
        assert_eq!(
            cache_directive(Some("max-age=99999999999999999999999")),
            MaxAge(u64::MAX)
        );
    }

    #[test]
    fn success_delay_is_max_age_within_bounds() {
        let p = RefreshPolicy {
            min: S(30),
            max: S(3600),
        };
        assert_eq!(p.after_success(CacheDirective::MaxAge(300)), S(300));
        assert_eq!(p.after_success(CacheDirective::MaxAge(5)), S(30));
        assert_eq!(p.after_success(CacheDirective::MaxAge(86_400)), S(3600));
        assert_eq!(p.after_success(CacheDirective::MaxAge(u64::MAX)), S(3600));
        assert_eq!(p.after_success(CacheDirective::NoCache), S(30));
        assert_eq!(p.after_success(CacheDirective::Unspecified), S(3600));
    }

    #[test]
    fn failures_back_off_up_to_min() {
        let p = RefreshPolicy {
            min: S(30),
            max: S(3600),
        };
        let delays: Vec<u64> = (1..=8).map(|f| p.after_failure(f).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(p.after_failure(u32::MAX), S(30));
    }

    #[test]
    fn kid_misses_wait_for_min_since_the_last_fetch() {
        let p = RefreshPolicy {
            min: S(30),
            max: S(3600),
        };
        assert_eq!(p.kid_miss_wait(None), Duration::ZERO);
        assert_eq!(p.kid_miss_wait(Some(S(10))), S(20));
        assert_eq!(p.kid_miss_wait(Some(S(30))), Duration::ZERO);
        assert_eq!(p.kid_miss_wait(Some(S(100))), Duration::ZERO);
    }
}
