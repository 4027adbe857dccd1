//! The admission check of the request path: a snapshot's [`QuotaTable`] (each key's limits and
//! counters, resolved when the snapshot is built) and each route's [`RouteQuota`].
//!
//! Owns the decision for one call: per-address limit, then the key's three windows, with the
//! refusal ([`Refused`]: 429 with `Retry-After`, or 503 under `on_redis_error = "deny"`) or the
//! usage the quota headers report ([`QuotaState`]). Per call it costs a few atomic operations on
//! the key's own cache line and some integer arithmetic: no lock, no allocation, no hashing of
//! the client id, no wait on Redis. It must not build anything: [`QuotaCounters::table`] does
//! that at load.
//!
//! [`QuotaCounters::table`]: super::QuotaCounters::table

use std::net::IpAddr;
use std::sync::Arc;

use torii_protocol::quota::{
    throttling_window, utc_day, utc_month, QuotaKind, QuotaState, Usage, MSG_TOO_MANY_REQUESTS,
};

use super::counter::{tag, KeySlot, WindowCounter};
use super::per_ip::IpTable;
use super::StoreStatus;
use crate::config::RouteConfig;

/// The body of the 503 answered to metered calls while the store is down under
/// `on_redis_error = "deny"`.
pub const MSG_STORE_UNAVAILABLE: &str = "Quotas cannot be checked right now";

/// A key's limits, from `[[apikeys]]` (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLimits {
    /// `throttling_quota`: calls per throttling window.
    pub window: Option<u64>,
    /// `daily_quota`: calls per UTC day.
    pub daily: Option<u64>,
    /// `monthly_quota`: calls per UTC month.
    pub monthly: Option<u64>,
}

impl KeyLimits {
    /// True when at least one window is limited (only such keys are counted).
    pub fn is_metered(&self) -> bool {
        self.window.is_some() || self.daily.is_some() || self.monthly.is_some()
    }

    fn in_order(&self) -> [Option<u64>; 3] {
        [self.window, self.daily, self.monthly]
    }
}

/// A metered key in a snapshot: its limits and its process-wide counters.
#[derive(Debug)]
pub struct KeyQuota {
    /// The key's client id.
    pub client_id: Box<str>,
    /// Its limits in this snapshot.
    pub limits: KeyLimits,
    /// Its counters (the same object across reloads while the key stays metered).
    pub slot: Arc<KeySlot>,
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A limit is reached: answer 429 `You performed too much requests` with `Retry-After`.
    Limit {
        /// Which limit.
        kind: QuotaKind,
        /// Seconds until that window resets (at least 1).
        retry_after_secs: u64,
    },
    /// `on_redis_error = "deny"` and the store cannot be reached: answer 503.
    StoreUnavailable,
}

impl Refused {
    /// The HTTP status: 429, or 503 for [`Refused::StoreUnavailable`].
    pub fn status(&self) -> u16 {
        match self {
            Refused::Limit { .. } => 429,
            Refused::StoreUnavailable => 503,
        }
    }

    /// The `Otoroshi-Error` message: Otoroshi's `You performed too much requests` for 429.
    pub fn message(&self) -> &'static str {
        match self {
            Refused::Limit { .. } => MSG_TOO_MANY_REQUESTS,
            Refused::StoreUnavailable => MSG_STORE_UNAVAILABLE,
        }
    }

    /// The `Retry-After` value in seconds (1 for the store: the next sync may bring it back).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refused::Limit {
                retry_after_secs, ..
            } => *retry_after_secs,
            Refused::StoreUnavailable => 1,
        }
    }

    /// The limit kind, for `torii_quota_rejections_total{kind}` (`None` for the store).
    pub fn kind(&self) -> Option<QuotaKind> {
        match self {
            Refused::Limit { kind, .. } => Some(*kind),
            Refused::StoreUnavailable => None,
        }
    }

    /// The reason for the access log: `quota.window`, `quota.daily`, `quota.monthly`,
    /// `quota.ip` or `quota.store_unavailable`.
    pub fn reason(&self) -> &'static str {
        match self.kind() {
            Some(QuotaKind::Window) => "quota.window",
            Some(QuotaKind::Daily) => "quota.daily",
            Some(QuotaKind::Monthly) => "quota.monthly",
            Some(QuotaKind::Ip) => "quota.ip",
            None => "quota.store_unavailable",
        }
    }

    /// Appends `Retry-After: N\r\n` to a response head.
    pub fn write_retry_after(&self, out: &mut Vec<u8>) {
        torii_protocol::quota::header(out, "Retry-After", self.retry_after_secs());
    }
}

/// A route's quota settings, built with the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteQuota {
    /// `rate_limit.per_ip`: calls per window per client address.
    pub per_ip: Option<u64>,
    /// The route's seed in the per-address table (a hash of its id: stable across reloads).
    pub route_seed: u64,
    /// `apikeys.update_quotas` (default true): count the call; false checks without counting.
    pub update_quotas: bool,
    /// `apikeys.quota_headers` (default false): send the remaining-calls headers back.
    pub quota_headers: bool,
}

impl RouteQuota {
    /// From a validated route.
    pub fn build(route: &RouteConfig) -> Self {
        let (update_quotas, quota_headers) = route
            .apikeys
            .as_ref()
            .map_or((true, false), |a| (a.update_quotas, a.quota_headers));
        Self {
            per_ip: route.rate_limit.map(|r| r.per_ip),
            route_seed: super::per_ip::route_seed(&route.id),
            update_quotas,
            quota_headers,
        }
    }
}

/// Every metered key of a snapshot, by [`torii_protocol::apikey::StoredKey::position`], plus
/// what the check needs from `[quotas]`. Built by `QuotaCounters::table`.
#[derive(Debug)]
pub struct QuotaTable {
    pub(super) keys: Vec<Option<KeyQuota>>,
    pub(super) window_ms: u64,
    pub(super) deny_when_down: bool,
    pub(super) ip: Arc<IpTable>,
    pub(super) store: Arc<StoreStatus>,
}

impl QuotaTable {
    /// The quota of the key at `position` (`StoredKey::position()`); `None` for a key without
    /// limits (not counted) or an unknown position.
    #[inline]
    pub fn key(&self, position: usize) -> Option<&KeyQuota> {
        self.keys.get(position).and_then(Option::as_ref)
    }

    /// The throttling window, milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Metered keys in this snapshot.
    pub fn metered_keys(&self) -> impl Iterator<Item = &KeyQuota> {
        self.keys.iter().flatten()
    }

    /// The per-address check of a route (phase "admission", before the key check, on every
    /// route with `[routes.rate_limit]`, public ones included). Counts the call when it passes.
    #[inline]
    pub fn admit_ip(&self, route: &RouteQuota, ip: IpAddr, now_ms: u64) -> Result<(), Refused> {
        let Some(limit) = route.per_ip else {
            return Ok(());
        };
        let window = throttling_window(now_ms, self.window_ms);
        match self.ip.admit(route.route_seed, ip, limit, window.id) {
            Ok(_) => Ok(()),
            Err(_) => Err(Refused::Limit {
                kind: QuotaKind::Ip,
                retry_after_secs: window.reset_secs(now_ms),
            }),
        }
    }

    /// The key check (phase "admission", after authentication), for the key at `position`
    /// (`StoredKey::position()` of the admitted key, whatever extractor or bearer token proved
    /// it). `count` is the route's `update_quotas`: when false the limits are checked and the
    /// call is not counted.
    ///
    /// Returns the usage for the quota headers ([`QuotaState::write_headers`]; empty for a key
    /// without limits) or why the call is refused. A refused call is not counted. Exact on one
    /// host: with `daily_quota = N`, N calls pass whatever the concurrency.
    #[inline]
    pub fn admit_key(
        &self,
        position: usize,
        now_ms: u64,
        count: bool,
    ) -> Result<QuotaState, Refused> {
        match self.key(position) {
            None => Ok(QuotaState::default()),
            Some(key) => self.admit_metered(key, now_ms, count),
        }
    }

    /// [`Self::admit_key`] for a key already looked up.
    pub fn admit_metered(
        &self,
        key: &KeyQuota,
        now_ms: u64,
        count: bool,
    ) -> Result<QuotaState, Refused> {
        // Deny only where a sync thread runs (a store added by a reload takes a restart).
        if self.deny_when_down && !self.store.is_up() && self.store.is_configured() {
            return Err(Refused::StoreUnavailable);
        }
        let windows = [
            throttling_window(now_ms, self.window_ms),
            utc_day(now_ms),
            utc_month(now_ms),
        ];
        let tags = windows.map(|w| tag(w.id));
        let counters = key.slot.windows();
        let limits = key.limits.in_order();
        let usage = |i: usize, used: u64| -> Option<Usage> {
            limits[i].map(|limit| Usage {
                limit,
                used,
                reset_secs: windows[i].reset_secs(now_ms),
            })
        };
        // Look first: a full window refuses without writing (no transient count that a
        // concurrent call could see), and names the window that resets last.
        let before = QuotaState {
            window: usage(0, counters[0].count(tags[0])),
            daily: usage(1, counters[1].count(tags[1])),
            monthly: usage(2, counters[2].count(tags[2])),
        };
        if let Some((kind, retry_after_secs)) = before.refusal() {
            return Err(Refused::Limit {
                kind,
                retry_after_secs,
            });
        }
        if !count {
            return Ok(before);
        }
        let mut after = [0u64; 3];
        let mut counted = [0u32; 3];
        for i in 0..3 {
            match counters[i].try_increment(tags[i], limits[i]) {
                Ok((t, n)) => (counted[i], after[i]) = (t, n),
                Err(_) => {
                    undo(&counters[..i], &counted[..i]);
                    let kind = [QuotaKind::Window, QuotaKind::Daily, QuotaKind::Monthly][i];
                    return Err(Refused::Limit {
                        kind,
                        retry_after_secs: windows[i].reset_secs(now_ms),
                    });
                }
            }
        }
        key.slot
            .total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(QuotaState {
            window: usage(0, after[0]),
            daily: usage(1, after[1]),
            monthly: usage(2, after[2]),
        })
    }
}

/// Takes back the increments of a call refused by a later window: a refused call is not
/// counted (Otoroshi increments before it checks, so its refused calls count; see
/// `docs/compatibility.md`).
fn undo(counters: &[&WindowCounter], tags: &[u32]) {
    for (c, t) in counters.iter().zip(tags) {
        c.undo(*t);
    }
}
