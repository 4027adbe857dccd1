//! API-key quotas and per-address rate limits (docs/quotas.md): the process-wide counters, the
//! admission check the request path calls, and the Redis synchronisation between hosts.
//!
//! Owns:
//! * [`QuotaCounters`] — one per process, in `Shared`, outside the config snapshot so counts
//!   survive a reload: each metered key's [`counter::KeySlot`] by client id, the per-address
//!   table ([`per_ip::IpTable`]) and the store's health ([`StoreStatus`]). The registry's
//!   mutex is taken when a snapshot is built, by the sync thread and by the admin endpoint;
//!   never on the request path.
//! * [`QuotaTable`] — one per snapshot: each key's limits and counter slot, indexed by
//!   `StoredKey::position()`, so the request path never hashes a client id; and
//!   [`RouteQuota`] per route. [`QuotaTable::admit_ip`] and [`QuotaTable::admit_key`] are the
//!   request path's calls.
//! * [`sync`] — the dedicated thread that exchanges deltas and totals with Redis.
//! * [`report`] — the admin document of `GET /quotas/{client_id}`.
//!
//! The pure rules (windows, refusals, headers) are in `torii_protocol::quota`. Nothing here
//! blocks a worker: workers only do atomic operations; Redis is the sync thread's business.

pub mod counter;
pub mod per_ip;
pub mod redis_store;
pub mod report;
pub mod sync;
pub mod sync_state;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use counter::KeySlot;
pub use per_ip::IpTable;
pub use table::{KeyLimits, KeyQuota, QuotaTable, Refused, RouteQuota, MSG_STORE_UNAVAILABLE};
pub use torii_protocol::quota::{QuotaKind, QuotaState};

use crate::config::{ApiKeySpec, OnRedisError, QuotasSpec};

/// Unix milliseconds of `t` (0 before the epoch): the `now_ms` of the admission calls.
#[inline]
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The health of the shared store, written by the sync thread, read by the admission check
/// (`on_redis_error = "deny"`), `/metrics` and the admin endpoint.
#[derive(Debug, Default)]
pub struct StoreStatus {
    configured: AtomicBool,
    up: AtomicBool,
    errors: AtomicU64,
}

impl StoreStatus {
    /// True once a sync thread runs (`[quotas] redis` is set).
    pub fn is_configured(&self) -> bool {
        self.configured.load(Ordering::Relaxed)
    }

    /// True when the last exchange with Redis succeeded.
    #[inline]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Failed connects and exchanges since start (`torii_quota_store_errors_total`).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn set_configured(&self) {
        self.configured.store(true, Ordering::Relaxed);
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    pub(crate) fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// The process's quota counters (see the module doc).
#[derive(Debug)]
pub struct QuotaCounters {
    keys: Mutex<HashMap<Box<str>, Arc<KeySlot>>>,
    ip: Arc<IpTable>,
    store: Arc<StoreStatus>,
    window_ms: AtomicU64,
}

impl Default for QuotaCounters {
    fn default() -> Self {
        Self {
            keys: Mutex::new(HashMap::new()),
            ip: Arc::new(IpTable::new()),
            store: Arc::new(StoreStatus::default()),
            window_ms: AtomicU64::new(window_ms(&QuotasSpec::default())),
        }
    }
}

fn window_ms(spec: &QuotasSpec) -> u64 {
    u64::try_from(spec.window.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl QuotaCounters {
    /// Empty counters (one per process; tests may make several to stand for several hosts).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The store's health.
    pub fn store(&self) -> &Arc<StoreStatus> {
        &self.store
    }

    /// The throttling window of the configuration in force, milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<KeySlot>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds a snapshot's table: every metered key of `keys` (in `[[apikeys]]` order, the
    /// order of `StoredKey::position`) gets its slot, the existing one when the client id
    /// already had one (a key whose limits change keeps its count). Forgets nothing: that is
    /// [`Self::install`]'s job, once the snapshot is in force. Called at load, never per
    /// request; cost: one map probe per key.
    pub fn table(&self, keys: &[ApiKeySpec], spec: &QuotasSpec) -> QuotaTable {
        let mut map = self.lock();
        let keys = keys
            .iter()
            .map(|k| {
                let limits = KeyLimits {
                    window: k.throttling_quota,
                    daily: k.daily_quota,
                    monthly: k.monthly_quota,
                };
                if !limits.is_metered() {
                    return None;
                }
                let slot = map
                    .entry(k.client_id.as_str().into())
                    .or_insert_with(|| Arc::new(KeySlot::default()))
                    .clone();
                Some(KeyQuota {
                    client_id: k.client_id.as_str().into(),
                    limits,
                    slot,
                })
            })
            .collect();
        QuotaTable {
            keys,
            window_ms: window_ms(spec),
            deny_when_down: spec.on_redis_error == OnRedisError::Deny && spec.redis.is_some(),
            ip: self.ip.clone(),
            store: self.store.clone(),
        }
    }

    /// Called once the snapshot holding `table` is in force (at start and after each
    /// successful reload): forgets the keys it does not meter (a key removed by a reload, or
    /// whose limits were all removed, starts from zero if it comes back) and records its
    /// window for the sync thread.
    pub fn install(&self, table: &QuotaTable) {
        let keep: HashSet<&str> = table.metered_keys().map(|k| &*k.client_id).collect();
        self.lock().retain(|id, _| keep.contains(&**id));
        self.window_ms.store(table.window_ms, Ordering::Relaxed);
    }

    /// The slot of `client_id`, if metered (admin endpoint).
    pub fn slot(&self, client_id: &str) -> Option<Arc<KeySlot>> {
        self.lock().get(client_id).cloned()
    }

    /// Every metered key with its slot (the sync thread, once per round).
    pub fn slots(&self) -> Vec<(Box<str>, Arc<KeySlot>)> {
        self.lock()
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect()
    }
}
