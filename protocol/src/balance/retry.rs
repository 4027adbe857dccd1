//! Retries: which failures may be retried ([`RetryOn`], [`RetryReason`]), whether the request
//! can be sent again at all ([`safe_to_repeat`], [`is_idempotent`]), how long to wait before
//! the next attempt ([`Backoff`]) and whether the route's retry budget allows one more
//! ([`budget_allows`]) — the rules of Envoy's router retry policy, as arithmetic.
//!
//! The engine owns the attempts, their timers and the in-flight counters; it asks these
//! functions once per failed attempt, in the order: reason allowed by the route's `retry_on`,
//! request safe to repeat, attempts left, budget allows, then waits [`Backoff::delay_ms`] and
//! picks an endpoint again (the pickers avoid the failed one through their `available`).

/// The set of failures a route retries (its `retry_on` words), a bitset.
///
/// [`Default`] is the EMPTY set (no retry); [`RetryOn::default_set`] is the set a route gets
/// when it configures none: all five.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn(u8);

impl RetryOn {
    /// `connect-failure`: the connection to the endpoint could not be opened (refused,
    /// unreachable, connect timeout). Nothing of the request was sent.
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1);
    /// `reset`: the connection was reset or closed before a response head arrived.
    pub const RESET: RetryOn = RetryOn(1 << 1);
    /// `502`: the endpoint answered 502 Bad Gateway.
    pub const STATUS_502: RetryOn = RetryOn(1 << 2);
    /// `503`: the endpoint answered 503 Service Unavailable.
    pub const STATUS_503: RetryOn = RetryOn(1 << 3);
    /// `504`: the endpoint answered 504 Gateway Timeout, or the attempt's own timeout
    /// (`per_try_timeout`) expired ([`RetryReason::Timeout`]).
    pub const STATUS_504: RetryOn = RetryOn(1 << 4);

    const ALL: u8 = 0b1_1111;

    /// The empty set: nothing is retried.
    pub const fn empty() -> RetryOn {
        RetryOn(0)
    }

    /// All five conditions: the set of a route that configures no `retry_on`.
    pub const fn default_set() -> RetryOn {
        RetryOn(Self::ALL)
    }

    /// The condition named by one config word: `connect-failure`, `reset`, `502`, `503` or
    /// `504` (exact, lower case); `None` for any other word. Called when the config is loaded.
    pub fn parse(word: &str) -> Option<RetryOn> {
        Some(match word {
            "connect-failure" => RetryOn::CONNECT_FAILURE,
            "reset" => RetryOn::RESET,
            "502" => RetryOn::STATUS_502,
            "503" => RetryOn::STATUS_503,
            "504" => RetryOn::STATUS_504,
            _ => return None,
        })
    }

    /// True when every condition of `other` is in `self`. Cost: one AND.
    pub const fn contains(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0
    }

    /// The conditions of both sets.
    pub const fn union(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// True when the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bits (bit 0 = connect-failure … bit 4 = 504), e.g. for a compact config dump.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// Why an attempt failed, as the retry policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// The connection could not be opened; nothing was sent.
    ConnectFailure,
    /// The connection was reset or closed before a response head arrived.
    Reset,
    /// The endpoint answered with this status (only 502, 503 and 504 are ever retried).
    Status(u16),
    /// The attempt's own timeout (`per_try_timeout`) expired before a response head.
    Timeout,
}

impl RetryReason {
    /// The metric label of the reason: `connect_failure`, `reset`, `502`, `503`, `504`,
    /// `timeout`; any other status is `other_status`. Called when counting a retry.
    pub fn label(&self) -> &'static str {
        match self {
            RetryReason::ConnectFailure => "connect_failure",
            RetryReason::Reset => "reset",
            RetryReason::Status(502) => "502",
            RetryReason::Status(503) => "503",
            RetryReason::Status(504) => "504",
            RetryReason::Status(_) => "other_status",
            RetryReason::Timeout => "timeout",
        }
    }

    /// True when a route retrying `on` retries this failure.
    ///
    /// Each reason has its word; `Status(s)` needs `s` to be 502, 503 or 504 and its word.
    /// `Timeout` (the per-try timeout) is allowed by `504`, because an attempt that times out
    /// is answered as 504 Gateway Timeout when it is not retried: the route that retries a 504
    /// from the endpoint retries the 504 the gateway would produce. (Envoy's `5xx` and
    /// `gateway-error` conditions include per-try timeouts likewise; its `reset` includes them
    /// too, Torii's `reset` does not: it means the connection broke.) Cost: one AND.
    pub fn allowed_by(&self, on: RetryOn) -> bool {
        let needed = match self {
            RetryReason::ConnectFailure => RetryOn::CONNECT_FAILURE,
            RetryReason::Reset => RetryOn::RESET,
            RetryReason::Status(502) => RetryOn::STATUS_502,
            RetryReason::Status(503) => RetryOn::STATUS_503,
            RetryReason::Status(504) | RetryReason::Timeout => RetryOn::STATUS_504,
            RetryReason::Status(_) => return false,
        };
        on.contains(needed)
    }
}

/// Exponential back-off with full jitter between attempts.
///
/// [`Default`] is Envoy's: base 25 ms, max 250 ms (10 × the base).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base_ms: u64,
    /// The largest ceiling: later retries' ceilings stop doubling here.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base_ms: 25,
            max_ms: 250,
        }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (1 for the first retry; 0 reads as 1): uniform in
    /// `[0, min(max_ms, base_ms · 2^(retry − 1))]`, both ends included, drawn from `random`.
    ///
    /// "Full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): clients
    /// that failed together spread their retries over the whole window instead of retrying in
    /// synchronised waves. Envoy's fully jittered back-off draws from a window of the same
    /// shape. Called once per retry. Cost: a shift and a 128-bit multiplication; the ceiling
    /// saturates, so any `retry` (up to `u32::MAX`) and any `base_ms` are safe.
    pub fn delay_ms(&self, retry: u32, random: u64) -> u64 {
        let doublings = retry.max(1) - 1;
        let ceiling = if doublings >= 64 || self.base_ms > (u64::MAX >> doublings) {
            u64::MAX
        } else {
            self.base_ms << doublings
        }
        .min(self.max_ms);
        // Multiply-shift onto 0..=ceiling (ceiling + 1 values, computed in u128 so that a
        // ceiling of u64::MAX does not overflow).
        ((u128::from(random) * (u128::from(ceiling) + 1)) >> 64) as u64
    }
}

/// Envoy's default retry budget: retries may be 20 % of the active requests.
pub const DEFAULT_BUDGET_PERCENT: u32 = 20;
/// Envoy's default floor of the retry budget: 3 concurrent retries are always allowed.
pub const DEFAULT_MIN_RETRY_CONCURRENCY: u32 = 3;

/// True when one more retry fits the route's retry budget (Envoy's `retry_budget`): the
/// retries in flight stay below `max(min_concurrency, requests_in_flight × budget_percent /
/// 100)`.
///
/// A budget instead of a fixed cap scales with traffic yet stops a retry storm: when an
/// upstream fails every request, retries cannot multiply the load by more than
/// `1 + budget_percent / 100`. `requests_in_flight` is the route's active requests (retries
/// included, as Envoy counts them); `retries_in_flight` the retries among them. Called before
/// each retry. Cost: integer arithmetic in `u64`, no overflow.
pub fn budget_allows(
    retries_in_flight: u32,
    requests_in_flight: u32,
    budget_percent: u32,
    min_concurrency: u32,
) -> bool {
    let share = u64::from(requests_in_flight) * u64::from(budget_percent) / 100;
    u64::from(retries_in_flight) < share.max(u64::from(min_concurrency))
}

/// True when a failed attempt's request may be sent again: its method is idempotent, or
/// nothing of the request reached the endpoint yet (a connect failure, or a reset before the
/// first byte was written), so the endpoint cannot have acted on it.
///
/// Called before each retry, with [`is_idempotent`] of the method and whether any byte of the
/// request was written to the endpoint's connection. (A request body that was streamed and not
/// kept cannot be repeated either; that is the caller's check.) Cost: one OR.
pub fn safe_to_repeat(idempotent_method: bool, request_bytes_sent: bool) -> bool {
    idempotent_method || !request_bytes_sent
}

/// True for the idempotent methods of RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE (the safe
/// ones) and PUT, DELETE. Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET.
/// POST, PATCH, CONNECT and unknown methods are not idempotent. Cost: one length match and
/// at most one comparison.
pub fn is_idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::SplitMix;

    const WORDS: [(&str, RetryOn); 5] = [
        ("connect-failure", RetryOn::CONNECT_FAILURE),
        ("reset", RetryOn::RESET),
        ("502", RetryOn::STATUS_502),
        ("503", RetryOn::STATUS_503),
        ("504", RetryOn::STATUS_504),
    ];

    #[test]
    fn balance_retry_on_parse_and_set_operations() {
        let mut all = RetryOn::empty();
        for (word, flag) in WORDS {
            assert_eq!(RetryOn::parse(word), Some(flag), "{word}");
            assert!(!all.contains(flag));
            all = all.union(flag);
            assert!(all.contains(flag));
        }
        assert_eq!(all, RetryOn::default_set());
        assert_eq!(RetryOn::default(), RetryOn::empty());
        assert!(RetryOn::default().is_empty() && !all.is_empty());
        assert_eq!(all.bits().count_ones(), 5);
        for word in [
            "",
            "5xx",
            "Reset",
            "connect_failure",
            "500",
            " 502",
            "gateway-error",
        ] {
            assert_eq!(RetryOn::parse(word), None, "{word:?}");
        }
        let two = RetryOn::STATUS_502.union(RetryOn::STATUS_503);
        assert!(all.contains(two) && !two.contains(all) && two.contains(RetryOn::empty()));
    }

    #[test]
    fn balance_retry_reason_labels_and_rules() {
        use RetryReason::*;
        let cases = [
            (ConnectFailure, "connect_failure", RetryOn::CONNECT_FAILURE),
            (Reset, "reset", RetryOn::RESET),
            (Status(502), "502", RetryOn::STATUS_502),
            (Status(503), "503", RetryOn::STATUS_503),
            (Status(504), "504", RetryOn::STATUS_504),
            (Timeout, "timeout", RetryOn::STATUS_504),
        ];
        for (reason, label, word) in cases {
            assert_eq!(reason.label(), label);
            assert!(reason.allowed_by(word), "{label} by its word");
            assert!(reason.allowed_by(RetryOn::default_set()));
            assert!(!reason.allowed_by(RetryOn::empty()));
            // No other single word allows it.
            for (_, other) in WORDS.iter().filter(|(_, f)| *f != word) {
                assert!(!reason.allowed_by(*other), "{label} by {other:?}");
            }
        }
        assert_eq!(Status(500).label(), "other_status");
        assert!(!Status(500).allowed_by(RetryOn::default_set()));
        assert!(!Status(429).allowed_by(RetryOn::default_set()));
    }

    #[test]
    fn balance_retry_backoff_full_jitter_window() {
        let b = Backoff::default();
        // Ceilings 25, 50, 100, 200, then capped at 250: the largest word reaches the ceiling,
        // the smallest gives 0.
        for (retry, ceiling) in [
            (0, 25),
            (1, 25),
            (2, 50),
            (3, 100),
            (4, 200),
            (5, 250),
            (40, 250),
        ] {
            assert_eq!(b.delay_ms(retry, u64::MAX), ceiling, "retry {retry}");
            assert_eq!(b.delay_ms(retry, 0), 0);
        }
        // Uniform over 0..=100 for the third retry.
        let mut rng = SplitMix(17);
        let mut hist = [0u32; 101];
        for _ in 0..101_000 {
            hist[b.delay_ms(3, rng.next()) as usize] += 1;
        }
        assert!(hist.iter().all(|&h| (800..1_200).contains(&h)), "{hist:?}");
        // No overflow whatever the numbers.
        let big = Backoff {
            base_ms: u64::MAX / 3,
            max_ms: u64::MAX,
        };
        assert_eq!(big.delay_ms(u32::MAX, u64::MAX), u64::MAX);
        assert_eq!(big.delay_ms(2, u64::MAX), (u64::MAX / 3) * 2);
        let zero = Backoff {
            base_ms: 0,
            max_ms: 1_000,
        };
        assert_eq!(zero.delay_ms(10, u64::MAX), 0);
        let max_below_base = Backoff {
            base_ms: 100,
            max_ms: 30,
        };
        assert_eq!(max_below_base.delay_ms(1, u64::MAX), 30);
    }

    #[test]
    fn balance_retry_budget() {
        // Envoy's defaults: 20 %, at least 3.
        let (p, min) = (DEFAULT_BUDGET_PERCENT, DEFAULT_MIN_RETRY_CONCURRENCY);
        assert!(budget_allows(0, 0, p, min));
        assert!(budget_allows(2, 1, p, min));
        assert!(!budget_allows(3, 1, p, min), "the floor is 3");
        assert!(budget_allows(19, 100, p, min));
        assert!(!budget_allows(20, 100, p, min), "20 % of 100");
        assert!(!budget_allows(0, 100, 0, 0), "no budget, no floor");
        assert!(budget_allows(u32::MAX - 1, u32::MAX, 100, 0));
        assert!(
            budget_allows(u32::MAX - 1, 0, 0, u32::MAX),
            "the floor alone"
        );
        assert!(
            budget_allows(u32::MAX, u32::MAX, 200, 0),
            "no overflow in the product"
        );
    }

    #[test]
    fn balance_retry_safe_to_repeat_and_idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(is_idempotent(m.as_bytes()), "{m}");
        }
        for m in [
            "POST", "PATCH", "CONNECT", "get", "Get", "", "GETX", "PROPFIND",
        ] {
            assert!(!is_idempotent(m.as_bytes()), "{m}");
        }
        assert!(safe_to_repeat(true, true));
        assert!(safe_to_repeat(true, false));
        assert!(
            safe_to_repeat(false, false),
            "nothing sent: the endpoint saw nothing"
        );
        assert!(
            !safe_to_repeat(false, true),
            "a POST that reached the endpoint"
        );
    }
}
