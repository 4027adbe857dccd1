//! The document of `GET /quotas/{client_id}` on the admin listener: a key's limits, this
//! host's current counts and when each window resets (Otoroshi's quotas document has the same
//! purpose and these field names: `authorizedCallsPerWindow`, `throttlingCallsPerWindow`,
//! `remainingCallsPerWindow`, `…PerDay`, `…PerMonth`).
//!
//! Owns the JSON shape only; it reads the counters (no write) and is called off the request
//! path. Counts are this host's view: its own calls plus the other hosts' as of the last
//! exchange with Redis.

use serde_json::{json, Value};
use torii_protocol::apikey::ApiKeyStore;
use torii_protocol::quota::{throttling_window, utc_day, utc_month};

use super::counter::tag;
use super::{QuotaTable, StoreStatus};

/// The JSON document for `client_id`, or `None` when no key has this id.
///
/// Unlimited windows have `null` limits and remaining counts; a key without any limit is not
/// counted (`"metered": false`, counts 0).
pub fn quota_document(
    store: &ApiKeyStore,
    table: &QuotaTable,
    status: &StoreStatus,
    client_id: &str,
    now_ms: u64,
) -> Option<Value> {
    let key = store.get(client_id)?;
    let windows = [
        throttling_window(now_ms, table.window_ms()),
        utc_day(now_ms),
        utc_month(now_ms),
    ];
    let quota = table.key(key.position());
    let (limits, counts) = match quota {
        Some(q) => {
            let c = q.slot.windows();
            (
                [q.limits.window, q.limits.daily, q.limits.monthly],
                [0, 1, 2].map(|i| c[i].count(tag(windows[i].id))),
            )
        }
        None => ([None; 3], [0; 3]),
    };
    let remaining = |i: usize| limits[i].map(|l: u64| l.saturating_sub(counts[i]));
    let window = |i: usize| {
        json!({
            "limit": limits[i],
            "current": counts[i],
            "remaining": remaining(i),
            "resetAt": windows[i].end_ms,
            "resetInSeconds": windows[i].reset_secs(now_ms),
        })
    };
    let total = quota.map_or(0, |q| {
        q.slot.total.load(std::sync::atomic::Ordering::Relaxed)
    });
    let store_state = if !status.is_configured() {
        "local"
    } else if status.is_up() {
        "up"
    } else {
        "down"
    };
    Some(json!({
        "clientId": client_id,
        "metered": quota.is_some(),
        "windowMillis": table.window_ms(),
        "authorizedCallsPerWindow": limits[0],
        "throttlingCallsPerWindow": counts[0],
        "remainingCallsPerWindow": remaining(0),
        "authorizedCallsPerDay": limits[1],
        "currentCallsPerDay": counts[1],
        "remainingCallsPerDay": remaining(1),
        "authorizedCallsPerMonth": limits[2],
        "currentCallsPerMonth": counts[2],
        "remainingCallsPerMonth": remaining(2),
        "window": window(0),
        "daily": window(1),
        "monthly": window(2),
        "hostCallsSinceStart": total,
        "store": store_state,
    }))
}
