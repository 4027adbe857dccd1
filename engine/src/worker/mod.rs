//! One worker thread's state: what a worker keeps between requests and connections.
//!
//! Owns its view of the config snapshot (a per-worker `arc_swap::Cache`, so a request costs one
//! pointer compare and no shared refcount traffic), its upstream pool, its target selector, its
//! CSPRNG, its caches (info-token prefixes), its access-log buffer, its rate-limited logs, its
//! drain and reload signals and its WebSocket tunnel slots. Everything here is `!Send` and touched by one
//! thread only; `RefCell` borrows are never held across an `.await`.
//!
//! This module sits below everything that serves requests: `server/` (accept loops,
//! connections), `proxy/` (the request phases) and the upstream connection code import it;
//! it imports none of them.

pub mod ratelog;
pub mod signal;
pub mod tunnels;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use torii_protocol::StateGenerator;

use crate::access_log::WorkerBuffer;
use crate::secure::info::KeyedPrefixCache;
use crate::secure::token_cache::VerifiedTokenCache;
use crate::shared::{Shared, WorkerStats};
use crate::snapshot::Snapshot;
use crate::tls::stream::UpStream;
use crate::upstream::pool::Pool;
use crate::upstream::select::Selector;
use ratelog::RateLog;
use signal::Signal;
use tunnels::TunnelSlots;

/// Idle upstream connections kept per target and worker.
const MAX_IDLE_PER_TARGET: usize = 256;
/// Idle upstream connections older than this are closed instead of reused.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The state of one worker thread.
pub struct Worker {
    /// Worker index (0-based).
    pub id: usize,
    /// State shared with the control thread.
    pub shared: Arc<Shared>,
    cache: RefCell<Cache<Arc<ArcSwap<Snapshot>>, Arc<Snapshot>>>,
    // An `Rc` around the `Arc` on purpose: requests clone the `Rc` (a plain increment in this
    // thread) instead of the `Arc`, whose shared counter would bounce between cores.
    #[allow(clippy::redundant_allocation)]
    current: RefCell<Rc<Arc<Snapshot>>>,
    /// Idle upstream connections.
    pub pool: RefCell<Pool<UpStream>>,
    /// Multiplexed HTTP/2 connections to `h2c` / `h2` targets' endpoints.
    pub h2_clients: RefCell<crate::upstream::h2_client::H2Clients>,
    /// Endpoint selection state (per route: the set in use, round-robin weights, in-flight
    /// counts; down marks).
    pub selector: RefCell<Selector>,
    /// Fired when draining starts.
    pub drain: Signal,
    /// Fired when the worker's tick sees a snapshot version it has not seen (a reload): open
    /// WebSocket tunnels check their admission again.
    pub reloaded: Signal,
    /// The snapshot version the tick saw last.
    seen_version: std::cell::Cell<u64>,
    /// This worker's CSPRNG for challenge states and token ids (seeded once from the OS).
    pub rng: RefCell<StateGenerator>,
    /// Rate limit of challenge-failure warnings.
    pub failure_log: RateLog,
    /// Rate limits of upstream connect warnings, one per target address (entries made on a
    /// target's first failure; bounded by the configured targets).
    pub connect_log: RefCell<HashMap<SocketAddr, RateLog>>,
    /// Access-log lines not yet handed to the writer thread.
    pub access_log: WorkerBuffer,
    /// Info-token prefixes of the (route, API key) pairs this worker served.
    pub info_prefixes: RefCell<KeyedPrefixCache>,
    /// Bearer and external JWT tokens this worker verified (`limits.verified_token_cache`).
    pub token_cache: RefCell<VerifiedTokenCache>,
    /// WebSocket tunnels open or being set up (`limits.max_websocket_tunnels_per_worker`).
    pub tunnel_slots: TunnelSlots,
    /// Capture slots and buffer of the routes' `rewrite` rules.
    pub rewrite: RefCell<crate::rules::RewriteScratch>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker reading the snapshot in `shared`.
    pub fn new(id: usize, shared: Arc<Shared>) -> Rc<Self> {
        let mut cache = Cache::new(shared.snapshot.clone());
        let current = Rc::new(cache.load().clone());
        let version = current.version;
        Rc::new(Self {
            id,
            shared,
            cache: RefCell::new(cache),
            current: RefCell::new(current),
            pool: RefCell::new(Pool::new(UPSTREAM_IDLE_TIMEOUT, MAX_IDLE_PER_TARGET)),
            h2_clients: RefCell::default(),
            selector: RefCell::new(Selector::default()),
            drain: Signal::default(),
            reloaded: Signal::default(),
            seen_version: std::cell::Cell::new(version),
            rng: RefCell::new(crate::secure::seeded_state_generator()),
            failure_log: RateLog::default(),
            connect_log: RefCell::default(),
            access_log: WorkerBuffer::default(),
            info_prefixes: RefCell::default(),
            token_cache: RefCell::default(),
            tunnel_slots: TunnelSlots::default(),
            rewrite: RefCell::default(),
        })
    }

    /// The snapshot to use for the request about to start. Cheap: a pointer compare, plus an
    /// `Arc` clone only when a reload happened since the last call. The request keeps the
    /// returned handle until it ends, so a reload never changes a request in flight.
    #[inline]
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
        let mut cache = self.cache.borrow_mut();
        let latest = cache.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(latest, &current) {
            *current = Rc::new(latest.clone());
        }
        current.clone()
    }

    /// Called by the worker's tick: fires [`Worker::reloaded`] when the shared snapshot's
    /// version changed since the last call. Cost: one `ArcSwap` load.
    pub fn notice_reload(&self) {
        let version = self.shared.snapshot.load().version;
        if version != self.seen_version.get() {
            self.seen_version.set(version);
            self.reloaded.fire();
        }
    }

    /// This worker's counters.
    #[inline]
    pub fn stats(&self) -> &WorkerStats {
        &self.shared.workers[self.id]
    }

    /// Whether a warning about upstream `target` may be logged now (at most one a second per
    /// target and worker); `Some(n)` counts the ones suppressed since the last.
    pub fn admit_connect_warning(&self, target: SocketAddr) -> Option<u64> {
        self.connect_log
            .borrow_mut()
            .entry(target)
            .or_default()
            .admit(std::time::Instant::now())
    }

    /// True once draining started (process-wide flag, seen by this worker).
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.drain.is_fired() || self.shared.is_draining()
    }
}

/// Counts a client connection as active for as long as it lives. Created by the accept loop
/// before the connection's task is spawned, so the count the loop checks against
/// `max_connections_per_worker` is never behind.
#[derive(Debug)]
pub struct ConnGuard(Rc<Worker>);

impl ConnGuard {
    /// Registers one more active connection of `worker`.
    pub fn new(worker: Rc<Worker>) -> Self {
        worker
            .stats()
            .active_connections
            .fetch_add(1, Ordering::Relaxed);
        Self(worker)
    }

    /// The worker the connection belongs to.
    pub fn worker(&self) -> &Rc<Worker> {
        &self.0
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0
            .stats()
            .active_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}
