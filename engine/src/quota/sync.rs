//! The quota sync thread: every `quotas.sync_interval` it pushes each metered key's new local
//! calls to Redis and reads the global totals back, in one pipelined round trip, then folds the
//! other hosts' calls into this host's counters.
//!
//! Owns the loop, the reconnection with exponential backoff ([`MIN_BACKOFF`] doubling to
//! [`MAX_BACKOFF`]), the store's health flag and error count (`torii_quota_store_up`,
//! `torii_quota_store_errors_total`) and the rate-limited error log (one line per
//! [`LOG_EVERY`], with the number of failures in between). It runs on a thread of its own, not
//! on a worker, with blocking IO bounded by `redis_store::IO_TIMEOUT`; workers never wait on
//! it. While Redis is away the counters keep counting locally and nothing is queued: the
//! calls made meanwhile are still in the counters and go with the first exchange that works.
//!
//! Overshoot across hosts: a call admitted on one host reaches Redis at that host's next
//! exchange and the other hosts at their next exchange after that, so each host may miss up to
//! two intervals (plus a round trip) of the others' calls. With H hosts a limit N lets through
//! at most N + (H − 1) × (calls a host admits in 2 × sync_interval), and never more than H × N
//! (each host alone never passes N). Calls spaced by more than 2 × sync_interval are exact.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use torii_protocol::quota::{throttling_window, utc_day, utc_month};

use super::redis_store::RedisStore;
use super::sync_state::{KeySync, Push};
use super::{unix_ms, QuotaCounters};
use crate::config::RedisSpec;

/// First wait before reconnecting after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most one error line per this period.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// A key without local calls for this long stops being exchanged until its next call.
pub const IDLE_AFTER: Duration = Duration::from_secs(10);

/// The running sync thread. [`SyncHandle::stop`] (or dropping it) makes one last exchange, so
/// the calls of the last interval reach Redis, and joins the thread.
#[derive(Debug)]
pub struct SyncHandle {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl SyncHandle {
    /// Stops the thread after a last exchange (bounded by the IO timeouts) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the sync of `counters` with the store of `spec` on a thread named
/// `torii-quota-sync`. Fails (before any thread starts) when the URL's secrets cannot be
/// resolved or the CA cannot be read; Redis being down is not a failure.
pub fn start(counters: Arc<QuotaCounters>, spec: &RedisSpec) -> Result<SyncHandle, String> {
    let store = RedisStore::new(spec)?;
    counters.store().set_configured();
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let thread_stop = stop.clone();
    let interval = spec.sync_interval;
    let display = spec.display.clone();
    let thread = std::thread::Builder::new()
        .name("torii-quota-sync".to_owned())
        .spawn(move || {
            let mut sync = Sync::new(counters, store, interval, display);
            sync.run(&thread_stop);
        })
        .map_err(|e| format!("quota sync thread: {e}"))?;
    tracing::info!(store = %spec.display, interval = ?interval, "quota sync with Redis started");
    Ok(SyncHandle {
        stop,
        thread: Some(thread),
    })
}

struct Sync {
    counters: Arc<QuotaCounters>,
    store: RedisStore,
    interval: Duration,
    display: String,
    keys: HashMap<Box<str>, KeySync>,
    backoff: Duration,
    next_connect: Instant,
    log: ErrorLog,
}

impl Sync {
    fn new(
        counters: Arc<QuotaCounters>,
        store: RedisStore,
        interval: Duration,
        display: String,
    ) -> Self {
        Self {
            counters,
            store,
            interval,
            display,
            keys: HashMap::new(),
            backoff: MIN_BACKOFF,
            next_connect: Instant::now(),
            log: ErrorLog::default(),
        }
    }

    fn run(&mut self, stop: &(Mutex<bool>, Condvar)) {
        let (flag, cv) = stop;
        let mut next_tick = Instant::now();
        loop {
            let stopping = {
                let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    let now = Instant::now();
                    if now >= next_tick {
                        break;
                    }
                    stopped = cv
                        .wait_timeout(stopped, next_tick - now)
                        .map_or_else(|p| p.into_inner().0, |(g, _)| g);
                }
                *stopped
            };
            next_tick = Instant::now() + self.interval;
            self.round(stopping);
            if stopping {
                return;
            }
        }
    }

    /// One exchange (or a reconnection attempt when it is due).
    fn round(&mut self, last: bool) {
        self.refresh_keys();
        if !self.store.is_connected() {
            if Instant::now() < self.next_connect && !last {
                return;
            }
            if let Err(e) = self.store.connect() {
                self.failed(&e);
                return;
            }
        }
        let now_ms = unix_ms(SystemTime::now());
        let windows = [
            throttling_window(now_ms, self.counters.window_ms()),
            utc_day(now_ms),
            utc_month(now_ms),
        ];
        let idle_limit = u32::try_from(IDLE_AFTER.as_millis() / self.interval.as_millis().max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        let mut planned: Vec<(Box<str>, Push)> = Vec::new();
        for (id, ks) in self.keys.iter_mut() {
            let push = ks.plan(&windows);
            if ks.wants_exchange(&push, idle_limit) {
                planned.push((id.clone(), push));
            }
        }
        let batch: Vec<(&str, Push)> = planned.iter().map(|(id, p)| (&**id, *p)).collect();
        match self.store.exchange(&batch) {
            Ok(totals) => {
                for ((id, push), total) in planned.iter().zip(totals) {
                    if let Some(ks) = self.keys.get_mut(id) {
                        ks.apply(push, total);
                    }
                }
                self.keys.retain(|_, ks| !ks.removed);
                self.succeeded();
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Adds the keys metered since the last round; marks the ones gone (one last push).
    fn refresh_keys(&mut self) {
        let current = self.counters.slots();
        for ks in self.keys.values_mut() {
            ks.removed = true;
        }
        for (id, slot) in current {
            match self.keys.get_mut(&id) {
                Some(ks) if Arc::ptr_eq(ks.slot(), &slot) => ks.removed = false,
                _ => {
                    // New, or removed and added back with fresh counters: start over.
                    self.keys.insert(id, KeySync::new(slot));
                }
            }
        }
    }

    fn succeeded(&mut self) {
        let status = self.counters.store();
        if !status.is_up() && status.errors() > 0 {
            tracing::info!(store = %self.display, "quota store reachable again; local counts pushed");
        }
        status.set_up(true);
        self.backoff = MIN_BACKOFF;
        self.log.reset();
    }

    fn failed(&mut self, error: &str) {
        let status = self.counters.store();
        status.set_up(false);
        status.count_error();
        self.store.disconnect();
        self.next_connect = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        if let Some(suppressed) = self.log.admit(Instant::now()) {
            tracing::warn!(
                store = %self.display,
                error,
                suppressed,
                retry_in = ?self.backoff,
                "quota store unreachable; counting locally"
            );
        }
    }
}

/// One line per [`LOG_EVERY`], counting the failures in between.
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    fn reset(&mut self) {
        self.last = None;
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_logged_at_most_once_per_period() {
        let mut log = ErrorLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        assert_eq!(log.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(log.admit(t0 + Duration::from_secs(2)), None);
        assert_eq!(log.admit(t0 + LOG_EVERY), Some(2));
        log.reset();
        assert_eq!(log.admit(t0 + LOG_EVERY), Some(0));
    }
}
