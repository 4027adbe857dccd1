//! The validated form of a route's upstream settings: how its endpoints are chosen
//! (`load_balancing`, `hash`), re-resolved (`resolve_interval`), timed (`timeouts`), checked
//! (`[routes.health_check]`), ejected (`[routes.outlier_detection]`) and retried
//! (`[routes.retry]`).
//!
//! Owns the types only ([`UpstreamSpec`] and its parts) and their documented defaults
//! ([`upstream_defaults`]). Data only: no validation, no IO; `validate_upstream` builds them
//! and the snapshot builder turns them into the request path's form.

use std::time::Duration;

/// `protocol` of a target: how Torii speaks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetProtocol {
    /// HTTP/1.1 (the default).
    #[default]
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2,
    /// HTTP/2 over plain TCP, prior knowledge.
    H2c,
    /// ALPN decides on a TLS target (`h2` when offered, else HTTP/1.1).
    Auto,
}

impl TargetProtocol {
    /// Every protocol, in the order the documentation lists them.
    pub const ALL: [TargetProtocol; 4] = [
        TargetProtocol::Http1,
        TargetProtocol::H2,
        TargetProtocol::H2c,
        TargetProtocol::Auto,
    ];

    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetProtocol::Http1 => "http1",
            TargetProtocol::H2 => "h2",
            TargetProtocol::H2c => "h2c",
            TargetProtocol::Auto => "auto",
        }
    }
}

/// What a `hash` policy hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// A request header (name lowercase); absent → the client address.
    Header(String),
    /// A cookie (name as written); absent → the client address.
    Cookie(String),
    /// A query parameter (name as written); absent → the client address.
    Query(String),
    /// The client address (after `trusted_proxies`).
    ClientIp,
}

/// `load_balancing`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LoadBalancing {
    /// Smooth weighted round robin (nginx's), per worker. The default.
    #[default]
    RoundRobin,
    /// Power of two choices over the worker's in-flight requests, weighted.
    LeastRequest,
    /// Weighted random.
    Random,
    /// Consistent hashing (Maglev) of `hash`.
    Hash(HashOn),
}

impl LoadBalancing {
    /// The configuration word.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoadBalancing::RoundRobin => "round_robin",
            LoadBalancing::LeastRequest => "least_request",
            LoadBalancing::Random => "random",
            LoadBalancing::Hash(_) => "hash",
        }
    }
}

/// `timeouts`: per-route upstream timeouts, each defaulting to its `[limits]` counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// TCP connect plus TLS handshake (`limits.upstream_connect_timeout`).
    pub connect: Duration,
    /// From the request sent to the whole response head (`limits.upstream_timeout`).
    pub response_header: Duration,
    /// Longest silence while the response body streams (`limits.upstream_timeout`).
    pub idle: Duration,
}

/// An inclusive range of statuses a health check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted status.
    pub from: u16,
    /// Highest accepted status.
    pub to: u16,
}

impl StatusRange {
    /// Whether `status` is in the range.
    pub fn contains(&self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }
}

/// `[routes.health_check]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// Path (and query) probed with `GET`.
    pub path: String,
    /// Time between two probes of one endpoint.
    pub interval: Duration,
    /// Deadline of one probe (connect, TLS, answer).
    pub timeout: Duration,
    /// Consecutive good probes that make an unhealthy endpoint healthy.
    pub healthy_threshold: u32,
    /// Consecutive bad probes that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
    /// Accepted statuses.
    pub statuses: Vec<StatusRange>,
}

/// `[routes.outlier_detection]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierSpec {
    /// Consecutive 5xx answers that eject an endpoint (0: off).
    pub consecutive_5xx: u32,
    /// Consecutive gateway failures (connect refused, reset, timeout, 502/503/504) that eject
    /// an endpoint (0: off).
    pub consecutive_gateway_failure: u32,
    /// Ejection time of a first ejection; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// Upper bound of one ejection.
    pub max_ejection_time: Duration,
    /// Share of a route's endpoints that may be ejected at once, percent.
    pub max_ejection_percent: u32,
}

/// A condition `[routes.retry] on` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCondition {
    /// The connection could not be opened (nothing was sent).
    ConnectFailure,
    /// The connection was reset or closed before any response byte.
    Reset,
    /// The upstream answered 502.
    Status502,
    /// The upstream answered 503.
    Status503,
    /// The upstream answered 504 (and `per_try_timeout` expired).
    Status504,
}

impl RetryCondition {
    /// Every condition, in the order the documentation lists them.
    pub const ALL: [RetryCondition; 5] = [
        RetryCondition::ConnectFailure,
        RetryCondition::Reset,
        RetryCondition::Status502,
        RetryCondition::Status503,
        RetryCondition::Status504,
    ];

    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryCondition::ConnectFailure => "connect-failure",
            RetryCondition::Reset => "reset",
            RetryCondition::Status502 => "502",
            RetryCondition::Status503 => "503",
            RetryCondition::Status504 => "504",
        }
    }
}

/// `[routes.retry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySpec {
    /// Tries in all, the first included (1: no retry).
    pub attempts: u32,
    /// What is retried.
    pub on: Vec<RetryCondition>,
    /// Deadline of one try, from sending to the response head (`None`: `timeouts.response_header`).
    pub per_try_timeout: Option<Duration>,
    /// First backoff bound (full jitter below it).
    pub backoff_base: Duration,
    /// Largest backoff bound.
    pub backoff_max: Duration,
    /// Retries in flight allowed, as a percentage of the route's requests in flight.
    pub budget_percent: u32,
}

/// A route's upstream settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Endpoint selection policy.
    pub load_balancing: LoadBalancing,
    /// Longest time between two resolutions of a target's name (the record TTL shortens it,
    /// within `upstream_defaults::MIN_RESOLVE_INTERVAL`).
    pub resolve_interval: Duration,
    /// Per-route timeouts.
    pub timeouts: UpstreamTimeouts,
    /// Active health checks, when set.
    pub health_check: Option<HealthCheckSpec>,
    /// Passive outlier ejection, when set.
    pub outlier_detection: Option<OutlierSpec>,
    /// Retry policy (defaults when `[routes.retry]` is absent).
    pub retry: RetrySpec,
}

impl UpstreamSpec {
    /// The settings of a route that says nothing about its upstream, with `[limits]`'
    /// `upstream_connect_timeout` and `upstream_timeout`.
    pub fn defaults(connect: Duration, upstream_timeout: Duration) -> Self {
        use upstream_defaults as d;
        Self {
            load_balancing: LoadBalancing::RoundRobin,
            resolve_interval: d::RESOLVE_INTERVAL,
            timeouts: UpstreamTimeouts {
                connect,
                response_header: upstream_timeout,
                idle: upstream_timeout,
            },
            health_check: None,
            outlier_detection: None,
            retry: RetrySpec {
                attempts: d::ATTEMPTS,
                on: vec![RetryCondition::ConnectFailure],
                per_try_timeout: None,
                backoff_base: d::BACKOFF_BASE,
                backoff_max: d::BACKOFF_MAX,
                budget_percent: d::BUDGET_PERCENT,
            },
        }
    }
}

/// Defaults of the upstream settings (documented in `docs/configuration.md` and
/// `docs/upstreams.md`).
pub mod upstream_defaults {
    use std::time::Duration;

    /// `targets[].weight`.
    pub const WEIGHT: u32 = 1;
    /// Largest `targets[].weight`.
    pub const MAX_WEIGHT: u32 = 1000;
    /// `resolve_interval`.
    pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
    /// Shortest time between two resolutions, whatever the TTL says.
    pub const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
    /// `health_check.interval`.
    pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
    /// Shortest `health_check.interval`.
    pub const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(100);
    /// `health_check.timeout`.
    pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
    /// `health_check.healthy_threshold`.
    pub const HEALTHY_THRESHOLD: u32 = 2;
    /// `health_check.unhealthy_threshold`.
    pub const UNHEALTHY_THRESHOLD: u32 = 3;
    /// Largest `health_check.healthy_threshold` and `unhealthy_threshold`.
    pub const MAX_THRESHOLD: u32 = 100;
    /// `health_check.statuses`: 2xx and 3xx (HAProxy's and NGINX Plus's `match` default; a
    /// probe does not follow redirects, and a redirect still shows a server that answers).
    pub const HEALTH_STATUSES: super::StatusRange = super::StatusRange { from: 200, to: 399 };
    /// Longest `health_check.path`, bytes.
    pub const MAX_HEALTH_PATH: usize = 1024;
    /// `outlier_detection.consecutive_5xx` (Envoy's).
    pub const CONSECUTIVE_5XX: u32 = 5;
    /// `outlier_detection.consecutive_gateway_failure` (Envoy's).
    pub const CONSECUTIVE_GATEWAY_FAILURE: u32 = 5;
    /// Largest `outlier_detection.consecutive_5xx` and `consecutive_gateway_failure`.
    pub const MAX_CONSECUTIVE: u32 = 1000;
    /// `outlier_detection.base_ejection_time` (Envoy's).
    pub const BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
    /// `outlier_detection.max_ejection_time` (Envoy's).
    pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
    /// `outlier_detection.max_ejection_percent`.
    pub const MAX_EJECTION_PERCENT: u32 = 50;
    /// `retry.attempts` when `[routes.retry]` is absent: one retry, on connect failures only
    /// (nothing of the request was sent, so any method may go to the next endpoint).
    pub const ATTEMPTS: u32 = 2;
    /// Largest `retry.attempts`.
    pub const MAX_ATTEMPTS: u32 = 10;
    /// `retry.backoff.base`.
    pub const BACKOFF_BASE: Duration = Duration::from_millis(25);
    /// `retry.backoff.max`.
    pub const BACKOFF_MAX: Duration = Duration::from_millis(250);
    /// `retry.budget_percent`: half the requests in flight, so that one endpoint of two
    /// failing at once is retried whole (Envoy's 20 % left a third of a killed endpoint's
    /// burst unretried in the load tests); a route whose every endpoint fails still sends at
    /// most 1.5 times its load.
    pub const BUDGET_PERCENT: u32 = 50;
    /// `retry.on` when `[routes.retry]` is written without it: every condition (what an
    /// operator who writes the section asks for; `attempts` and the budget bound the cost).
    pub const RETRY_ON: [super::RetryCondition; 5] = super::RetryCondition::ALL;
}
