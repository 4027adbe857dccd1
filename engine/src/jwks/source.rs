//! A key set fetched from one URL and kept fresh by its own thread: what routes with a
//! `jwks_url` hold ([`JwksSource`], shared behind an `Arc`).
//!
//! Owns the hand-off between the fetcher thread and the workers, and the thread's loop:
//! * workers read the current set with [`JwksSource::keys`], one `ArcSwapOption::load` (no
//!   lock, no allocation, no syscall); `None` until a first fetch succeeded;
//! * a worker that met an unknown `kid` calls [`JwksSource::kid_miss`]: one atomic load, and for
//!   the first miss since the last fetch one swap and one `unpark`; it never waits;
//! * the thread ([`run`]) sleeps until the next refresh (`Cache-Control: max-age` within
//!   `jwks_refresh_min`/`jwks_refresh_max`, or the failure back-off) or a kid miss, whose fetch
//!   starts no sooner than `jwks_refresh_min` after the previous one (the schedule is
//!   `torii_protocol::jwt_verifier::refresh`). A failed fetch, or a document that does not parse
//!   as a whole, keeps the last good set; failures are counted and logged at most once a minute
//!   while they last;
//! * the thread ends when the last `Arc<JwksSource>` is dropped (no snapshot names the URL any
//!   more) or when [`JwksSource::stop`] is called (a reload dropped the URL); dropping never
//!   joins, so it may happen on a worker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use torii_protocol::jwt_verifier::refresh::RefreshPolicy;
use torii_protocol::jwt_verifier::KeySet;

use super::fetch::{Fetched, JwksClient};

/// How often a failing URL is logged at most.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Counters of one URL, kept across reloads (counters never go backwards).
#[derive(Debug, Default)]
pub struct JwksStats {
    /// Fetches that gave a usable set.
    pub fetches_ok: AtomicU64,
    /// Fetches that failed (network, status, size, unusable document).
    pub fetch_errors: AtomicU64,
    /// Distinct keys (`kid`s) in the set in use; 0 before the first good fetch.
    pub keys: AtomicU64,
    /// Unix time of the last good fetch, seconds; 0 before the first.
    pub last_success_unix: AtomicU64,
}

/// State shared by the fetcher thread and the [`JwksSource`] handles.
#[derive(Debug)]
struct State {
    url: String,
    keys: ArcSwapOption<KeySet>,
    /// A worker met an unknown `kid` since the last fetch started.
    refetch: AtomicBool,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
    stats: Arc<JwksStats>,
}

/// The key set of one URL, as routes hold it.
#[derive(Debug)]
pub struct JwksSource {
    state: Arc<State>,
}

impl JwksSource {
    /// A source holding `keys` (or nothing yet) with no thread: for `torii check`, tests and
    /// benches. [`JwksSource::kid_miss`] is then a no-op.
    pub fn detached(url: &str, keys: Option<KeySet>, stats: Arc<JwksStats>) -> Self {
        JwksSource {
            state: Arc::new(State {
                url: url.to_owned(),
                keys: ArcSwapOption::new(keys.map(Arc::new)),
                refetch: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                thread: OnceLock::new(),
                stats,
            }),
        }
    }

    /// A source whose first fetch already happened (`first`, good or not) and whose thread
    /// keeps it fresh from now on. Fails only when the thread cannot be spawned.
    pub fn spawn(
        client: JwksClient,
        policy: RefreshPolicy,
        first: Result<Fetched, String>,
        stats: Arc<JwksStats>,
    ) -> Result<Self, String> {
        let source = Self::detached(client.url(), None, stats);
        let started = Instant::now();
        let mut fetcher = Fetcher {
            state: source.state.clone(),
            client,
            policy,
            next: started,
            last_start: Some(started),
            failures: 0,
            last_error_log: None,
            suppressed: 0,
        };
        fetcher.absorb(started, first);
        let handle = std::thread::Builder::new()
            .name("torii-jwks".to_owned())
            .spawn(move || fetcher.run())
            .map_err(|e| format!("cannot start the JWKS fetcher thread: {e}"))?;
        let _ = source.state.thread.set(handle.thread().clone());
        Ok(source)
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// The set in use, or `None` before the first good fetch. Per request: one lock-free load.
    #[inline]
    pub fn keys(&self) -> arc_swap::Guard<Option<Arc<KeySet>>> {
        self.state.keys.load()
    }

    /// Replaces the set (tests and benches; the fetcher thread stores its own).
    pub fn store(&self, keys: KeySet) {
        self.state.keys.store(Some(Arc::new(keys)));
    }

    /// A token named a `kid` the set lacks: asks the thread for a fetch, which starts at once
    /// or `jwks_refresh_min` after the previous one, whichever is later. Never blocks.
    #[inline]
    pub fn kid_miss(&self) {
        let st = &self.state;
        if st.refetch.load(Ordering::Relaxed) || st.refetch.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(t) = st.thread.get() {
            t.unpark();
        }
    }

    /// Ends the thread (after its fetch in progress, if any). The set stays readable.
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.state.thread.get() {
            t.unpark();
        }
    }

    /// Whether the thread was told to stop.
    pub fn is_stopped(&self) -> bool {
        self.state.stop.load(Ordering::Acquire)
    }
}

impl Drop for JwksSource {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fetcher thread's own state.
struct Fetcher {
    state: Arc<State>,
    client: JwksClient,
    policy: RefreshPolicy,
    /// When the next scheduled fetch is due.
    next: Instant,
    last_start: Option<Instant>,
    /// Failed fetches in a row.
    failures: u32,
    last_error_log: Option<Instant>,
    suppressed: u64,
}

impl Fetcher {
    fn run(mut self) {
        let _ = self.state.thread.set(std::thread::current());
        loop {
            if self.state.stop.load(Ordering::Acquire) {
                tracing::debug!(url = %self.state.url, "JWKS fetcher stopped");
                return;
            }
            let now = Instant::now();
            let mut due = self.next;
            if self.state.refetch.load(Ordering::Acquire) {
                let since = self.last_start.map(|t| now.saturating_duration_since(t));
                due = due.min(now + self.policy.kid_miss_wait(since));
            }
            if now < due {
                std::thread::park_timeout(due - now);
                continue;
            }
            self.state.refetch.store(false, Ordering::Release);
            let started = Instant::now();
            self.last_start = Some(started);
            let result = self.client.fetch();
            self.absorb(started, result);
        }
    }

    /// Takes the outcome of a fetch started at `started`: a good set replaces the old one and
    /// schedules the next refresh; a failure keeps the old set and schedules a retry.
    fn absorb(&mut self, started: Instant, result: Result<Fetched, String>) {
        let stats = &self.state.stats;
        match result {
            Ok(fetched) => {
                let delay = self.policy.after_success(fetched.directive);
                let kids = fetched.keys.kids().join(",");
                let old = self.state.keys.load();
                let changed = old.as_ref().is_none_or(|o| o.kids().join(",") != kids);
                stats
                    .keys
                    .store(fetched.keys.kids().len() as u64, Ordering::Relaxed);
                self.state.keys.store(Some(Arc::new(fetched.keys)));
                stats.fetches_ok.fetch_add(1, Ordering::Relaxed);
                stats.last_success_unix.store(unix_now(), Ordering::Relaxed);
                if self.failures > 0 {
                    tracing::info!(url = %self.state.url, failures = self.failures, kids = %kids,
                        "JWKS fetched again after failures");
                } else if changed {
                    tracing::info!(url = %self.state.url, kids = %kids, next_in = ?delay,
                        "JWKS key set updated");
                }
                self.failures = 0;
                self.suppressed = 0;
                self.next = started + delay;
            }
            Err(why) => {
                self.failures = self.failures.saturating_add(1);
                stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
                let delay = self.policy.after_failure(self.failures);
                let now = Instant::now();
                let due = self
                    .last_error_log
                    .is_none_or(|t| now.saturating_duration_since(t) >= ERROR_LOG_INTERVAL);
                if due {
                    let kept = self.state.keys.load().is_some();
                    tracing::warn!(url = %self.state.url, error = %why, failures = self.failures,
                        suppressed = self.suppressed, retry_in = ?delay, last_good_set_kept = kept,
                        "JWKS fetch failed");
                    self.last_error_log = Some(now);
                    self.suppressed = 0;
                } else {
                    self.suppressed += 1;
                }
                self.next = started + delay;
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
