//! Upstream endpoint selection, passive outlier ejection and retries: the pure arithmetic.
//!
//! A route sends each request to one of its endpoints (targets). This module decides which,
//! given what the engine knows at that instant — weights, in-flight counts, which endpoints are
//! ejected — and decides what to do when the attempt fails. The engine holds the state (per
//! worker pickers, shared atomics for in-flight counts, streaks and ejection deadlines) and
//! does the selection per worker without locks; everything here is a function of its
//! arguments: no IO, no clock reads (time is milliseconds passed in), no thread-local
//! randomness (callers pass random `u64` words), and no allocation on the per-request paths
//! (only [`Maglev::build`] and [`SmoothRoundRobin::new`]/[`reset`](SmoothRoundRobin::reset)
//! allocate).
//!
//! # Policies
//!
//! * [`SmoothRoundRobin`] (`round_robin`, the default): nginx's smooth weighted round robin;
//!   exact weight shares, interleaved, per-worker state.
//! * [`pick_least_request`] (`least_request`): power of two choices on
//!   `(in_flight + 1) / weight`; adapts to slow endpoints.
//! * [`pick_weighted_random`] (`random`): stateless, weight-proportional.
//! * [`Maglev`] + [`key_hash`] (`consistent_hash`): a key (header, cookie, client address)
//!   always goes to the same endpoint, on every worker and every gateway host, as long as the
//!   endpoint set is the same.
//!
//! # Availability, fallbacks, panic mode
//!
//! Every picker takes `available: impl Fn(usize) -> bool` — the engine's "not ejected, not
//! drained, not the endpoint that just failed this request" — and an endpoint of weight 0 is
//! never picked. Unavailable endpoints are skipped (the round robin keeps their counters, the
//! two choices probe forward, Maglev walks forward through its table), and `None` means no
//! endpoint qualifies. When none is available at all, [`panic_mode`] tells the caller to pick
//! again with every endpoint allowed: a request to an ejected endpoint beats a certain 503.
//!
//! # Outlier ejection
//!
//! [`OutlierPolicy`] (Envoy's consecutive-5xx and consecutive-gateway-failure detectors):
//! [`CallOutcome`] classifies each call, [`Consecutive`] keeps the streaks,
//! [`OutlierPolicy::trips`] / [`OutlierPolicy::may_eject`] / [`OutlierPolicy::ejection_ms`]
//! decide an ejection and its length (30 s × n, at most 300 s; at most 10 % of the endpoints,
//! but always one).
//!
//! # Retries
//!
//! [`RetryOn`] (the route's `retry_on`: `connect-failure`, `reset`, `502`, `503`, `504`, all by
//! default), [`RetryReason::allowed_by`], [`safe_to_repeat`] / [`is_idempotent`] (never repeat
//! a non-idempotent request the endpoint may have seen), [`budget_allows`] (20 % of the active
//! requests, at least 3), [`Backoff::delay_ms`] (full jitter, 25 ms doubling up to 250 ms).
//!
//! ```
//! use torii_protocol::balance::{key_hash, pick_least_request, Maglev, SmoothRoundRobin};
//!
//! let weights = [3, 1];
//! let mut rr = SmoothRoundRobin::default();
//! let picks: Vec<_> = (0..4).filter_map(|_| rr.pick(&weights, |_| true)).collect();
//! assert_eq!(picks, [0, 0, 1, 0]);
//!
//! // Endpoint 0 has 10 requests in flight, endpoint 1 none: the two choices take 1.
//! assert_eq!(pick_least_request(&[1, 1], &[10, 0], |_| true, 0x1234_5678_9abc_def0), Some(1));
//!
//! let ids: [&[u8]; 3] = [b"10.0.0.1:80", b"10.0.0.2:80", b"10.0.0.3:80"];
//! let table = Maglev::build(&ids, &[1, 1, 1], 1_009);
//! let home = table.lookup(key_hash(b"user-42"), |_| true).unwrap();
//! // While `home` is down the key goes elsewhere, and comes back when it is up again.
//! let fallback = table.lookup(key_hash(b"user-42"), |i| i != home).unwrap();
//! assert_ne!(fallback, home);
//! ```

pub mod hash;
pub mod least_request;
pub mod maglev;
pub mod outlier;
pub mod random;
pub mod retry;
pub mod smooth_rr;

pub use hash::{key_hash, xxhash64};
pub use least_request::pick_least_request;
pub use maglev::{Maglev, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE};
pub use outlier::{
    counts_5xx, counts_gateway, panic_mode, CallOutcome, Consecutive, OutlierPolicy,
};
pub use random::pick_weighted_random;
pub use retry::{
    budget_allows, is_idempotent, safe_to_repeat, Backoff, RetryOn, RetryReason,
    DEFAULT_BUDGET_PERCENT, DEFAULT_MIN_RETRY_CONCURRENCY,
};
pub use smooth_rr::SmoothRoundRobin;

/// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// 2014): the deterministic random words of this module's tests.
#[cfg(test)]
pub(crate) struct SplitMix(pub(crate) u64);

#[cfg(test)]
impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    //! The pieces together, as the engine strings them: a request's attempts over a route whose
    //! endpoints fail, with ejection, panic mode and the retry rules.
    use super::*;

    /// One route: 4 endpoints, endpoint 2 answers every call with 503.
    struct Route {
        weights: [u32; 4],
        streaks: [Consecutive; 4],
        ejected_until: [u64; 4],
        times_ejected: [u32; 4],
    }

    impl Route {
        fn available(&self, i: usize, now_ms: u64) -> bool {
            self.ejected_until[i] <= now_ms
        }

        fn record(&mut self, policy: &OutlierPolicy, i: usize, outcome: CallOutcome, now_ms: u64) {
            self.streaks[i].record(outcome);
            let ejected_now = (0..4).filter(|&j| !self.available(j, now_ms)).count();
            let s = self.streaks[i];
            if policy.trips(s.five_xx, s.gateway) && policy.may_eject(ejected_now, 4) {
                self.times_ejected[i] += 1;
                self.ejected_until[i] = now_ms + policy.ejection_ms(self.times_ejected[i]);
                self.streaks[i] = Consecutive::default();
            }
        }
    }

    #[test]
    fn balance_attempts_eject_the_failing_endpoint_then_readmit_it() {
        let policy = OutlierPolicy::default();
        let mut route = Route {
            weights: [1, 1, 1, 1],
            streaks: [Consecutive::default(); 4],
            ejected_until: [0; 4],
            times_ejected: [0; 4],
        };
        let mut rr = SmoothRoundRobin::default();
        let mut now = 1_000_000u64;
        let mut sent_to_2_after_ejection = 0;
        for _ in 0..100 {
            now += 10;
            let i = rr
                .pick(&route.weights, |i| route.available(i, now))
                .expect("an endpoint");
            let outcome = CallOutcome::from_status(if i == 2 { 503 } else { 200 });
            if route.times_ejected[2] > 0 && i == 2 {
                sent_to_2_after_ejection += 1;
            }
            route.record(&policy, i, outcome, now);
            if i == 2 {
                // The 503 is retried: allowed, safe for a GET, within the budget.
                let reason = RetryReason::Status(503);
                assert!(reason.allowed_by(RetryOn::default_set()));
                assert!(safe_to_repeat(is_idempotent(b"GET"), true));
                assert!(budget_allows(
                    0,
                    1,
                    DEFAULT_BUDGET_PERCENT,
                    DEFAULT_MIN_RETRY_CONCURRENCY
                ));
                let retry = rr.pick(&route.weights, |j| j != i && route.available(j, now));
                assert!(retry.is_some_and(|j| j != 2));
            }
        }
        // Five 503s in a row ejected endpoint 2 (the floor allows one of four), for 30 s.
        assert_eq!(route.times_ejected[2], 1);
        assert_eq!(sent_to_2_after_ejection, 0);
        assert!(route.ejected_until[2] > now);
        // 30 s later it is back in the rotation.
        now = route.ejected_until[2];
        let back = (0..4).filter_map(|_| rr.pick(&route.weights, |i| route.available(i, now)));
        assert_eq!(back.filter(|&i| i == 2).count(), 1);
    }

    #[test]
    fn balance_panic_mode_uses_every_endpoint() {
        let weights = [2u32, 1];
        let down = |_| false;
        assert_eq!(pick_weighted_random(&weights, down, 7), None);
        assert!(panic_mode(0, weights.len()));
        // The caller picks again with every endpoint allowed.
        assert!(pick_weighted_random(&weights, |_| true, 7).is_some());
    }
}
