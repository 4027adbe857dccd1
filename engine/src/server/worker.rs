//! One worker thread's state and its accept loops.
//!
//! Owns what a worker keeps between requests: its view of the config snapshot (a per-worker
//! `arc_swap::Cache`, so a request costs one pointer compare and no shared refcount traffic),
//! its upstream pool, its target selector and its drain signal. Everything here is `!Send` and
//! touched by one thread only; `RefCell` borrows are never held across an `.await`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use monoio::net::TcpListener;
use torii_protocol::StateGenerator;

use crate::server::conn::serve_client;
use crate::server::drain::DrainSignal;
use crate::server::tls_accept::serve_tls_client;
use crate::shared::{Shared, WorkerStats};
use crate::snapshot::Snapshot;
use crate::upstream::pool::Pool;
use crate::upstream::select::Selector;

/// How often a worker looks at the process-wide draining flag.
const DRAIN_POLL: Duration = Duration::from_millis(50);
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
    pub pool: RefCell<Pool<crate::upstream::UpStream>>,
    /// Round-robin cursors and down marks.
    pub selector: RefCell<Selector>,
    /// Reusable buffer for the order in which targets are tried.
    pub order_buf: RefCell<Vec<usize>>,
    /// Fired when draining starts.
    pub drain: DrainSignal,
    /// This worker's CSPRNG for challenge states and token ids (seeded once from the OS).
    pub rng: RefCell<StateGenerator>,
    /// Rate limit of challenge-failure warnings.
    pub failure_log: crate::server::ratelog::RateLog,
    /// Access-log lines not yet handed to the writer thread.
    pub access_log: crate::access_log::WorkerBuffer,
    /// Info-token prefixes of the (route, API key) pairs this worker served.
    pub info_prefixes: RefCell<crate::secure::info::KeyedPrefixCache>,
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
        Rc::new(Self {
            id,
            shared,
            cache: RefCell::new(cache),
            current: RefCell::new(current),
            pool: RefCell::new(Pool::new(UPSTREAM_IDLE_TIMEOUT, MAX_IDLE_PER_TARGET)),
            selector: RefCell::new(Selector::default()),
            order_buf: RefCell::new(Vec::with_capacity(8)),
            drain: DrainSignal::default(),
            rng: RefCell::new(seeded_rng()),
            failure_log: crate::server::ratelog::RateLog::default(),
            access_log: crate::access_log::WorkerBuffer::default(),
            info_prefixes: RefCell::default(),
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

    /// This worker's counters.
    #[inline]
    pub fn stats(&self) -> &WorkerStats {
        &self.shared.workers[self.id]
    }

    /// True once draining started (process-wide flag, seen by this worker).
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.drain.is_fired() || self.shared.is_draining()
    }
}

/// A CSPRNG seeded from the OS once. If the OS cannot give entropy (it practically always
/// can), the seed falls back to time and addresses mixed together, and a warning is logged.
fn seeded_rng() -> StateGenerator {
    match StateGenerator::from_os() {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "no OS entropy for the state generator; using a time-derived seed");
            let mut seed = [0u8; 32];
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            seed[..16].copy_from_slice(&t.to_le_bytes());
            let addr = &seed as *const _ as usize as u64;
            seed[16..24].copy_from_slice(&addr.to_le_bytes());
            StateGenerator::from_seed(seed)
        }
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

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP; the address as configured in `gateway.http`.
    Http(std::net::SocketAddr),
    /// HTTPS; the address as configured in `gateway.https` (it selects the listener's TLS
    /// config, e.g. client-certificate authentication).
    Https(std::net::SocketAddr),
}

/// Runs a worker: one accept loop per listener (`kinds[i]` says what `listeners[i]` serves;
/// a listener without an entry is not served), plus the task that turns the process-wide draining flag
/// into this worker's drain signal. Returns once draining started and every client connection
/// of this worker has ended.
pub async fn run_gateway_worker(
    worker: Rc<Worker>,
    listeners: Vec<TcpListener>,
    kinds: &[ListenerKind],
) {
    let watcher = monoio::spawn(watch_drain(worker.clone()));
    let mut loops = Vec::with_capacity(listeners.len());
    for (listener, &kind) in listeners.into_iter().zip(kinds) {
        loops.push(monoio::spawn(accept_loop(worker.clone(), listener, kind)));
    }
    for handle in loops {
        handle.await;
    }
    watcher.await;
    worker.pool.borrow_mut().clear();
    while worker.stats().active_connections.load(Ordering::Relaxed) > 0 {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.access_log.flush(&worker.shared.access_log);
}

/// The worker's tick: every [`DRAIN_POLL`] it publishes its pool size, hands its access-log
/// lines to the writer, and checks the process-wide draining flag.
async fn watch_drain(worker: Rc<Worker>) {
    loop {
        let idle = worker.pool.borrow().idle_count();
        worker.stats().pool_idle.store(idle, Ordering::Relaxed);
        worker.access_log.flush(&worker.shared.access_log);
        if worker.shared.is_draining() {
            break;
        }
        monoio::time::sleep(DRAIN_POLL).await;
    }
    worker.drain.fire();
}

/// Stops the kernel from completing new connections on `listener` right away. Dropping a
/// monoio listener on io_uring only closes its descriptor once the cancelled accept operation
/// completes, which leaves the port accepting for a while; `shutdown` on a listening socket
/// makes new connection attempts fail at once (and the pending accept return).
fn stop_listening(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is owned by `listener`, which outlives this call; shutdown does
    // not close it, so no other owner is affected.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}

async fn accept_loop(worker: Rc<Worker>, listener: TcpListener, kind: ListenerKind) {
    loop {
        if worker.drain.is_fired() {
            stop_listening(&listener);
            return;
        }
        let max = worker.snapshot().config.gateway.max_connections_per_worker;
        if worker.stats().active_connections.load(Ordering::Relaxed) >= max {
            // Stop accepting until a connection ends (hardening.md "Slow and greedy clients").
            monoio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let accepted = monoio::select! {
            r = listener.accept() => Some(r),
            _ = worker.drain.wait() => None,
        };
        match accepted {
            None => {
                stop_listening(&listener);
                return;
            }
            Some(Ok((stream, peer))) => {
                let guard = ConnGuard::new(worker.clone());
                let _ = stream.set_nodelay(true);
                match kind {
                    ListenerKind::Http(configured) => {
                        let allow = worker
                            .snapshot()
                            .config
                            .gateway
                            .underscores_in_headers
                            .allows(configured);
                        monoio::spawn(serve_client(guard, stream, peer, b"http", allow));
                    }
                    ListenerKind::Https(configured) => {
                        monoio::spawn(serve_tls_client(guard, stream, peer, configured));
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(worker = worker.id, error = %e, "accept failed");
                // Out of file descriptors and similar: back off instead of spinning.
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
