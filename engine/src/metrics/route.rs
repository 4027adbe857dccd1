//! Per-route counters: requests by status class, the latency histogram, challenge failures,
//! API-key and JWT rejections by reason, quota rejections by kind, upstream connect errors,
//! and WebSocket tunnels (by result, and their bytes each way).
//!
//! Owns the counter layout: one cache-line-aligned [`Slot`] of plain `AtomicU64`s per worker,
//! written only by that worker (a relaxed load and store, not even a locked read-modify-write:
//! there is one writer) and summed over the workers when `/metrics` is scraped. It must not
//! lock, allocate or read a clock: callers pass the facts (status, elapsed time, reason).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use torii_protocol::quota::QuotaKind;
use torii_protocol::ChallengeFailure;

use super::record::Protocol;
use super::tunnel::TunnelResult;

/// Status-class labels, in counter order; the last one counts requests that got no answer
/// (the client went away before one was sent).
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// Upper bounds of the latency buckets, in microseconds: 1-2.5-5 per decade from 100 µs to
/// 10 s, then 30 s and 60 s (log-linear, fixed: every route and worker uses the same).
pub const LATENCY_BOUNDS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];
/// Buckets: one per bound plus `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Every challenge failure reason, in counter order.
pub const CHALLENGE_REASONS: [ChallengeFailure; 11] = ChallengeFailure::ALL;

/// Which check rejected a request before it reached a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The route's API-key check (`[routes.apikeys]`).
    ApiKey,
    /// The route's external JWT verifier (`[routes.jwt]`).
    Jwt,
}

/// Why an API key or a JWT was rejected. One list for both kinds, so the checks can share
/// labels; each kind uses the reasons that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No credential found in the request.
    Missing,
    /// The credential could not be parsed (bad base64, not a JWT, too long).
    Malformed,
    /// No API key with this client id.
    UnknownKey,
    /// The client secret does not match.
    BadSecret,
    /// The key is disabled.
    Disabled,
    /// The key's `valid_until` or the token's `exp` has passed.
    Expired,
    /// The token's `nbf`/`iat` is in the future.
    NotYetValid,
    /// The key exists but is not authorised on this route (403).
    NotAuthorized,
    /// The token's signature does not verify.
    BadSignature,
    /// The token's `alg` is not the configured one.
    BadAlgorithm,
    /// The token's `iss` is not the expected issuer.
    BadIssuer,
    /// The token's `aud` does not contain the expected audience.
    BadAudience,
    /// Any other claim check failed.
    BadClaims,
    /// A bearer token failed verification for a reason not listed above.
    BadToken,
    /// The token (or key) is valid but lacks a scope the route requires (403).
    InsufficientScope,
    /// The route's key set (`jwks_url`) has not been fetched yet.
    KeysUnavailable,
    /// The credential's place occurs more than once on the request (400).
    Duplicate,
}

impl RejectReason {
    /// Every reason, in counter order.
    pub const ALL: [RejectReason; 17] = [
        RejectReason::Missing,
        RejectReason::Malformed,
        RejectReason::UnknownKey,
        RejectReason::BadSecret,
        RejectReason::Disabled,
        RejectReason::Expired,
        RejectReason::NotYetValid,
        RejectReason::NotAuthorized,
        RejectReason::BadSignature,
        RejectReason::BadAlgorithm,
        RejectReason::BadIssuer,
        RejectReason::BadAudience,
        RejectReason::BadClaims,
        RejectReason::BadToken,
        RejectReason::InsufficientScope,
        RejectReason::KeysUnavailable,
        RejectReason::Duplicate,
    ];

    /// The metric label (`reason="…"`).
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::Missing => "missing",
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::BadSecret => "bad_secret",
            RejectReason::Disabled => "disabled",
            RejectReason::Expired => "expired",
            RejectReason::NotYetValid => "not_yet_valid",
            RejectReason::NotAuthorized => "not_authorized",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::BadAlgorithm => "bad_algorithm",
            RejectReason::BadIssuer => "bad_issuer",
            RejectReason::BadAudience => "bad_audience",
            RejectReason::BadClaims => "bad_claims",
            RejectReason::BadToken => "bad_token",
            RejectReason::InsufficientScope => "insufficient_scope",
            RejectReason::KeysUnavailable => "keys_unavailable",
            RejectReason::Duplicate => "duplicate",
        }
    }

    /// The reason for a token refused with one of the protocol's JWT labels
    /// (`torii_protocol::jws::JwtError::reason`, or the claim checks' own labels such as
    /// `wrong_audience`, `missing_exp`). Unknown labels count as [`RejectReason::BadToken`].
    pub fn from_token_label(label: &str) -> RejectReason {
        match label {
            "too_long" | "bad_segments" | "bad_base64" | "bad_json" | "too_deep"
            | "bad_header_field" | "crit_header" | "duplicate_member" => RejectReason::Malformed,
            "missing_alg" | "alg_none" | "alg_mismatch" => RejectReason::BadAlgorithm,
            "missing" => RejectReason::Missing,
            "bad_signature" | "unknown_kid" | "missing_kid" | "kid_mismatch" => {
                RejectReason::BadSignature
            }
            "expired" | "expired_token" => RejectReason::Expired,
            "not_yet_valid" | "issued_in_future" => RejectReason::NotYetValid,
            "wrong_issuer" => RejectReason::BadIssuer,
            "wrong_audience" => RejectReason::BadAudience,
            "insufficient_scope" => RejectReason::InsufficientScope,
            "keys_unavailable" => RejectReason::KeysUnavailable,
            "duplicate" => RejectReason::Duplicate,
            l if l.starts_with("claim_")
                || l.starts_with("missing_")
                || l.ends_with("_mismatch") =>
            {
                RejectReason::BadClaims
            }
            _ => RejectReason::BadToken,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const REASONS: usize = RejectReason::ALL.len();

/// The counters of one route written by one worker, on their own cache lines.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    status: [AtomicU64; STATUS_CLASSES.len()],
    status_h2: [AtomicU64; STATUS_CLASSES.len()],
    latency: [AtomicU64; BUCKETS],
    latency_sum_us: AtomicU64,
    challenge: [AtomicU64; CHALLENGE_REASONS.len()],
    apikey: [AtomicU64; REASONS],
    jwt: [AtomicU64; REASONS],
    quota: [AtomicU64; QuotaKind::ALL.len()],
    connect_errors: AtomicU64,
    tunnels: [AtomicU64; TunnelResult::ALL.len()],
    tunnel_bytes: [AtomicU64; 2],
    retries: [AtomicU64; RETRY_REASONS.len()],
    ejections: AtomicU64,
    panics: AtomicU64,
    grpc: [AtomicU64; GRPC_STATUSES],
}

/// gRPC status codes counted by `torii_grpc_calls_total` (0 `OK` to 16 `UNAUTHENTICATED`; a
/// larger code a backend sends counts as 2 `UNKNOWN`, as gRPC clients read it).
pub const GRPC_STATUSES: usize = 17;

/// The `reason` label values of `torii_upstream_retries_total`
/// (`torii_protocol::balance::RetryReason::label`).
pub const RETRY_REASONS: [&str; 6] = ["connect_failure", "reset", "502", "503", "504", "timeout"];

/// Adds `n` to a counter that only the calling worker writes: a plain load and store (no
/// locked instruction), still a valid atomic for the scraper to read.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

fn status_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

/// The bucket of a latency of `us` microseconds (the first bound it does not exceed).
fn bucket_index(us: u64) -> usize {
    LATENCY_BOUNDS_US.partition_point(|&b| b < us)
}

fn challenge_index(f: ChallengeFailure) -> usize {
    CHALLENGE_REASONS.iter().position(|r| *r == f).unwrap_or(0)
}

/// Counters of one route, one slot per worker. Owned by the [`super::MetricsRegistry`] (so
/// they survive reloads) and shared with every snapshot's `Route` of the same id.
#[derive(Debug)]
pub struct RouteMetrics {
    slots: Box<[Slot]>,
}

/// Totals of one route over every worker, as read by a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTotals {
    /// Requests by status class ([`STATUS_CLASSES`] order), every protocol.
    pub status: [u64; STATUS_CLASSES.len()],
    /// The part of `status` that came over HTTP/2 (the rest is HTTP/1.x).
    pub status_h2: [u64; STATUS_CLASSES.len()],
    /// Non-cumulative latency bucket counts ([`LATENCY_BOUNDS_US`] order, then `+Inf`).
    pub latency: [u64; BUCKETS],
    /// Sum of the latencies, microseconds.
    pub latency_sum_us: u64,
    /// Challenge failures ([`CHALLENGE_REASONS`] order).
    pub challenge: [u64; CHALLENGE_REASONS.len()],
    /// API-key rejections ([`RejectReason::ALL`] order).
    pub apikey: [u64; REASONS],
    /// JWT rejections ([`RejectReason::ALL`] order).
    pub jwt: [u64; REASONS],
    /// Quota rejections (429) by kind ([`QuotaKind::ALL`] order).
    pub quota: [u64; QuotaKind::ALL.len()],
    /// Failed upstream connects.
    pub connect_errors: u64,
    /// Retries by reason ([`RETRY_REASONS`] order).
    pub retries: [u64; RETRY_REASONS.len()],
    /// Endpoints ejected by outlier detection.
    pub ejections: u64,
    /// Picks made in panic mode (no endpoint available: every one used).
    pub panics: u64,
    /// WebSocket upgrade attempts by result ([`TunnelResult::ALL`] order).
    pub tunnels: [u64; TunnelResult::ALL.len()],
    /// Bytes tunnelled: client to upstream, upstream to client.
    pub tunnel_bytes: [u64; 2],
    /// gRPC calls by the status their client got (index = code).
    pub grpc: [u64; GRPC_STATUSES],
}

impl RouteMetrics {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    /// Called by `worker` once per request when the request ends: counts it by status class
    /// (0 = no answer) and protocol, and its latency. Cost: three or four counter bumps and a
    /// search in 18 bounds.
    #[inline]
    pub fn request(&self, worker: usize, protocol: Protocol, status: u16, elapsed: Duration) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let class = status_index(status);
        bump(&slot.status[class], 1);
        if protocol == Protocol::H2 {
            bump(&slot.status_h2[class], 1);
        }
        bump(&slot.latency[bucket_index(us)], 1);
        bump(&slot.latency_sum_us, us);
    }

    /// Called by `worker` once per gRPC call when it ends, with the gRPC status its client got
    /// (`torii_grpc_calls_total`; other requests have no such series).
    #[inline]
    pub fn grpc_call(&self, worker: usize, code: u8) {
        if let Some(slot) = self.slots.get(worker) {
            let i = usize::from(code);
            bump(&slot.grpc[if i < GRPC_STATUSES { i } else { 2 }], 1);
        }
    }

    /// Called by `worker` when the backend failed the exchange protocol.
    #[inline]
    pub fn challenge_failure(&self, worker: usize, failure: ChallengeFailure) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.challenge[challenge_index(failure)], 1);
        }
    }

    /// Called by `worker` when the API-key check or the JWT verifier of the route rejected a
    /// request (exported as `torii_apikey_rejections_total` / `torii_jwt_rejections_total`).
    #[inline]
    pub fn rejection(&self, worker: usize, kind: RejectionKind, reason: RejectReason) {
        if let Some(slot) = self.slots.get(worker) {
            let counters = match kind {
                RejectionKind::ApiKey => &slot.apikey,
                RejectionKind::Jwt => &slot.jwt,
            };
            bump(&counters[reason.index()], 1);
        }
    }

    /// Called by `worker` when a quota or the per-address limit refused a request with 429
    /// (exported as `torii_quota_rejections_total{route,kind}`).
    #[inline]
    pub fn quota_rejection(&self, worker: usize, kind: QuotaKind) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.quota[kind.index()], 1);
        }
    }

    /// Called by `worker` when a connect to one of the route's targets failed or timed out.
    #[inline]
    pub fn connect_error(&self, worker: usize) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.connect_errors, 1);
        }
    }

    /// Called by `worker` when it retries a request for `reason` (a [`RETRY_REASONS`] label;
    /// another label is not counted).
    #[inline]
    pub fn retry(&self, worker: usize, reason: &str) {
        if let (Some(slot), Some(i)) = (
            self.slots.get(worker),
            RETRY_REASONS.iter().position(|r| *r == reason),
        ) {
            bump(&slot.retries[i], 1);
        }
    }

    /// Called by `worker` when a call it made ejected an endpoint.
    #[inline]
    pub fn ejection(&self, worker: usize) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.ejections, 1);
        }
    }

    /// Called by `worker` when it picked an endpoint in panic mode.
    #[inline]
    pub fn panic_pick(&self, worker: usize) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.panics, 1);
        }
    }

    /// Called by `worker` when a WebSocket upgrade attempt ended with `result`.
    #[inline]
    pub fn tunnel(&self, worker: usize, result: TunnelResult) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.tunnels[result.index()], 1);
        }
    }

    /// Called by `worker` when a tunnel moved `n` bytes, client to upstream (`upstream = true`)
    /// or back.
    #[inline]
    pub fn tunnel_bytes(&self, worker: usize, to_upstream: bool, n: u64) {
        if let Some(slot) = self.slots.get(worker) {
            bump(&slot.tunnel_bytes[usize::from(!to_upstream)], n);
        }
    }

    /// Failures for `failure` over all workers (tests and scrapes).
    pub fn challenge_failures(&self, failure: ChallengeFailure) -> u64 {
        let i = challenge_index(failure);
        self.slots
            .iter()
            .map(|s| s.challenge[i].load(Ordering::Relaxed))
            .sum()
    }

    /// Sums every worker's slot (scrape time; reads only).
    pub fn totals(&self) -> RouteTotals {
        let mut t = RouteTotals::default();
        let add = |dst: &mut [u64], src: &[AtomicU64]| {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s.load(Ordering::Relaxed);
            }
        };
        for slot in self.slots.iter() {
            add(&mut t.status, &slot.status);
            add(&mut t.status_h2, &slot.status_h2);
            add(&mut t.latency, &slot.latency);
            add(&mut t.challenge, &slot.challenge);
            add(&mut t.apikey, &slot.apikey);
            add(&mut t.jwt, &slot.jwt);
            add(&mut t.quota, &slot.quota);
            add(&mut t.tunnels, &slot.tunnels);
            add(&mut t.tunnel_bytes, &slot.tunnel_bytes);
            add(&mut t.retries, &slot.retries);
            add(&mut t.grpc, &slot.grpc);
            t.ejections += slot.ejections.load(Ordering::Relaxed);
            t.panics += slot.panics.load(Ordering::Relaxed);
            t.latency_sum_us += slot.latency_sum_us.load(Ordering::Relaxed);
            t.connect_errors += slot.connect_errors.load(Ordering::Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_labels_map_to_reasons() {
        use super::RejectReason as R;
        assert_eq!(R::from_token_label("alg_none"), R::BadAlgorithm);
        assert_eq!(R::from_token_label("bad_signature"), R::BadSignature);
        assert_eq!(R::from_token_label("expired"), R::Expired);
        assert_eq!(R::from_token_label("issued_in_future"), R::NotYetValid);
        assert_eq!(R::from_token_label("wrong_issuer"), R::BadIssuer);
        assert_eq!(R::from_token_label("wrong_audience"), R::BadAudience);
        assert_eq!(R::from_token_label("missing_cid"), R::BadClaims);
        assert_eq!(R::from_token_label("bad_base64"), R::Malformed);
        assert_eq!(R::from_token_label("something_new"), R::BadToken);
        assert_eq!(R::from_token_label("missing"), R::Missing);
        assert_eq!(R::from_token_label("missing_kid"), R::BadSignature);
    }

    use super::*;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Slot>() % 64, 0);
    }

    #[test]
    fn requests_by_class_and_bucket_summed_over_workers() {
        let m = RouteMetrics::new(2);
        m.request(0, Protocol::Http11, 200, Duration::from_micros(100)); // le=0.0001 (bound inclusive)
        m.request(1, Protocol::H2, 204, Duration::from_micros(101)); // le=0.00025
        m.request(1, Protocol::Http11, 502, Duration::from_secs(120)); // +Inf
        m.request(0, Protocol::H2, 0, Duration::from_millis(3)); // none, le=0.005
        m.request(9, Protocol::H2, 200, Duration::ZERO); // unknown worker: ignored, no panic
        let t = m.totals();
        assert_eq!(t.status, [0, 2, 0, 0, 1, 1]);
        assert_eq!(t.status_h2, [0, 1, 0, 0, 0, 1], "the HTTP/2 part");
        assert_eq!(t.latency[0], 1);
        assert_eq!(t.latency[1], 1);
        assert_eq!(t.latency[5], 1);
        assert_eq!(t.latency[BUCKETS - 1], 1);
        assert_eq!(t.latency.iter().sum::<u64>(), 4);
        assert_eq!(t.latency_sum_us, 100 + 101 + 120_000_000 + 3_000);
    }

    #[test]
    fn reasons_are_counted_separately() {
        let m = RouteMetrics::new(3);
        m.challenge_failure(2, ChallengeFailure::Expired);
        m.challenge_failure(0, ChallengeFailure::Expired);
        m.rejection(1, RejectionKind::ApiKey, RejectReason::BadSecret);
        m.rejection(1, RejectionKind::Jwt, RejectReason::BadSecret);
        m.rejection(2, RejectionKind::Jwt, RejectReason::BadClaims);
        m.connect_error(0);
        m.quota_rejection(0, QuotaKind::Daily);
        m.quota_rejection(2, QuotaKind::Daily);
        m.quota_rejection(1, QuotaKind::Ip);
        m.tunnel(1, TunnelResult::IdleTimeout);
        m.tunnel(2, TunnelResult::IdleTimeout);
        m.tunnel(2, TunnelResult::OverLimit);
        m.tunnel_bytes(0, true, 10);
        m.tunnel_bytes(1, false, 7);
        m.tunnel_bytes(1, true, 1);
        m.grpc_call(0, 0);
        m.grpc_call(1, 0);
        m.grpc_call(1, 14);
        m.grpc_call(2, 200);
        let t = m.totals();
        assert_eq!((t.grpc[0], t.grpc[14], t.grpc[2]), (2, 1, 1));
        assert_eq!(t.grpc.iter().sum::<u64>(), 4);
        assert_eq!(t.quota, [0, 2, 0, 1]);
        assert_eq!(t.tunnels[TunnelResult::IdleTimeout.index()], 2);
        assert_eq!(t.tunnels[TunnelResult::OverLimit.index()], 1);
        assert_eq!(t.tunnels.iter().sum::<u64>(), 3);
        assert_eq!(t.tunnel_bytes, [11, 7]);
        assert_eq!(t.challenge[challenge_index(ChallengeFailure::Expired)], 2);
        assert_eq!(t.challenge.iter().sum::<u64>(), 2);
        assert_eq!(t.apikey[RejectReason::BadSecret.index()], 1);
        assert_eq!(t.apikey.iter().sum::<u64>(), 1);
        assert_eq!(t.jwt[RejectReason::BadSecret.index()], 1);
        assert_eq!(t.jwt[RejectReason::BadClaims.index()], 1);
        assert_eq!(t.connect_errors, 1);
    }

    #[test]
    fn labels_are_unique_and_in_index_order() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let labels: std::collections::HashSet<_> =
            RejectReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), RejectReason::ALL.len());
        let ch: std::collections::HashSet<_> =
            CHALLENGE_REASONS.iter().map(|r| r.reason()).collect();
        assert_eq!(ch.len(), CHALLENGE_REASONS.len());
    }
}
