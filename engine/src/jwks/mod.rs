//! Key sets fetched from a `jwks_url` (`[routes.jwt]`), refreshed in the background: one
//! fetcher thread per distinct URL per process, shared by every route naming it.
//!
//! Owns the process-wide registry of fetchers ([`obtain`], [`retain`]), the per-URL counters
//! (kept across reloads, read by the metrics rendering through [`stats`]), and the two ways a
//! snapshot build gets a set ([`JwksMode`]):
//! * [`JwksMode::Check`] (`torii check`): one fetch on the calling thread, and its failure is an
//!   error; no thread is started;
//! * [`JwksMode::Serve`] (start and reload): the URL's live fetcher when there is one (no
//!   fetch, no wait), else a first fetch on the calling thread (the only fetch anything waits
//!   for: at most [`fetch::FETCH_TIMEOUT`]), then a thread; a failed first fetch is a warning
//!   and the route answers 401 until a fetch succeeds.
//!
//! Workers only ever call [`JwksSource::keys`] and [`JwksSource::kid_miss`]; the registry's
//! mutex is taken when a snapshot is built, on reload and on a metrics scrape, never per
//! request. It must not import the proxy, the snapshot or the metrics: they call it.

pub mod fetch;
pub mod source;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use torii_protocol::jwt_verifier::refresh::RefreshPolicy;

use crate::config::JwksUrlSpec;
pub use fetch::{JwksClient, FETCH_TIMEOUT};
pub use source::{JwksSource, JwksStats};

/// How a snapshot build obtains key sets from URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksMode {
    /// `torii check`: fetch once here; an unreachable URL or an unusable set is an error.
    Check,
    /// A running gateway: share or start the URL's fetcher; a failed first fetch is a warning.
    Serve,
}

/// The process's fetchers (several per URL only between a reload that changed a URL's settings
/// and the [`retain`] that follows it) and the counters of every URL fetched since start.
#[derive(Debug, Default)]
struct Registry {
    fetchers: Vec<(JwksUrlSpec, Weak<JwksSource>)>,
    stats: Vec<(String, Arc<JwksStats>)>,
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// The counters of `url`, created on first use.
    fn stats_for(&mut self, url: &str) -> Arc<JwksStats> {
        if let Some((_, s)) = self.stats.iter().find(|(u, _)| u == url) {
            return s.clone();
        }
        let stats = Arc::new(JwksStats::default());
        self.stats.push((url.to_owned(), stats.clone()));
        stats
    }
}

/// The key set source for `spec`. `Serve`: the live fetcher of this URL and settings when
/// there is one, else a new one (first fetch here, then its thread); the `Err` is then only a
/// client that cannot be built (an unreadable `jwks_ca`) or a thread that cannot start, and a
/// failed first fetch is logged as a warning. `Check`: one fetch, and its failure is the
/// `Err`. Called when a snapshot is built, never per request.
pub fn obtain(spec: &JwksUrlSpec, mode: JwksMode) -> Result<Arc<JwksSource>, String> {
    let client = JwksClient::new(spec)?;
    if mode == JwksMode::Check {
        let fetched = client.fetch()?;
        let stats = Arc::new(JwksStats::default());
        let source = JwksSource::detached(&spec.url, Some(fetched.keys), stats);
        return Ok(Arc::new(source));
    }
    let mut reg = lock();
    reg.fetchers.retain(|(_, weak)| weak.strong_count() > 0);
    let live = reg
        .fetchers
        .iter()
        .filter(|(s, _)| s == spec)
        .filter_map(|(_, weak)| weak.upgrade())
        .find(|s| !s.is_stopped());
    if let Some(source) = live {
        return Ok(source);
    }
    let stats = reg.stats_for(&spec.url);
    // The first fetch runs with the registry locked: a second route naming the URL in the same
    // build waits for it and then shares the source instead of fetching again.
    let first = client.fetch();
    match &first {
        Ok(f) => tracing::info!(url = %spec.url, kids = %f.keys.kids().join(","), "JWKS fetched"),
        Err(e) => {
            stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %spec.url, error = %e,
                "JWKS fetch failed at load: the routes using it answer 401 until a fetch \
                 succeeds (retried in the background)")
        }
    }
    let policy = RefreshPolicy {
        min: spec.refresh_min,
        max: spec.refresh_max,
    };
    let source = Arc::new(JwksSource::spawn(client, policy, first, stats)?);
    reg.fetchers.push((spec.clone(), Arc::downgrade(&source)));
    Ok(source)
}

/// After a successful reload: stops the fetchers whose URL and settings the configuration in
/// force no longer names, even while an old snapshot still holds them (their last set stays
/// readable to it). Counters stay.
pub fn retain(in_use: &[&JwksUrlSpec]) {
    let mut reg = lock();
    reg.fetchers.retain(|(spec, weak)| {
        if in_use.contains(&spec) {
            return true;
        }
        if let Some(source) = weak.upgrade() {
            tracing::info!(url = %spec.url, "JWKS URL no longer configured this way: fetcher stopped");
            source.stop();
        }
        false
    });
}

/// Fetcher threads running now (not told to stop), for tests and logs.
pub fn live_fetchers() -> usize {
    lock()
        .fetchers
        .iter()
        .filter_map(|(_, weak)| weak.upgrade())
        .filter(|s| !s.is_stopped())
        .count()
}

/// Every URL fetched since start with its counters, in first-use order (metrics scrape).
pub fn stats() -> Vec<(String, Arc<JwksStats>)> {
    lock().stats.clone()
}
