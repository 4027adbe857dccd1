//! State shared between the control thread and the workers.
//!
//! Owns the current config snapshot (behind `ArcSwap`), the process-wide draining flag, the
//! per-worker counters (each on its own cache line, written only by its worker), the metrics
//! registry (route counters that survive reloads), the upstream registry (endpoint states that
//! survive reloads), the quota counters (per-key and per-address
//! counts that survive reloads) and the access-log sink. Nothing here is
//! locked on the request path: workers read the snapshot through a per-worker cache and only
//! touch their own counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::access_log::AccessLogSink;
use crate::metrics::MetricsRegistry;
use crate::quota::QuotaCounters;
use crate::snapshot::Snapshot;
use crate::upstream::registry::UpstreamRegistry;

/// Counters of one worker, padded to a cache line so workers never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerStats {
    /// Open client connections.
    pub active_connections: AtomicUsize,
    /// Requests completed.
    pub requests: AtomicU64,
    /// The IO driver this worker runs on (`io_uring` or `epoll`), set once at start.
    pub driver: OnceLock<&'static str>,
    /// Idle upstream connections in this worker's pool (refreshed on the worker's 50 ms tick).
    pub pool_idle: AtomicUsize,
    /// Request header lines not forwarded because their name contains `_`.
    pub underscore_headers_dropped: AtomicU64,
    /// Open WebSocket tunnels (`torii_websocket_tunnels_active`).
    pub websocket_tunnels: AtomicUsize,
    /// Open client connections that speak HTTP/2 (part of `active_connections`).
    pub h2_connections: AtomicUsize,
    /// Open HTTP/2 streams being served (one task each).
    pub h2_streams: AtomicUsize,
}

/// Everything the control thread and the workers share.
#[derive(Debug)]
pub struct Shared {
    /// The config in force. Replaced whole on reload.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Set once on SIGTERM/SIGINT: workers stop accepting and close idle connections.
    pub draining: AtomicBool,
    /// When the drain ends (`drain_timeout` after it started): set just before `draining`.
    /// WebSocket tunnels still open then are closed.
    pub drain_deadline: OnceLock<Instant>,
    /// One entry per worker.
    pub workers: Vec<WorkerStats>,
    /// Reloads that replaced the config.
    pub reloads_ok: AtomicU64,
    /// Reloads rejected (the old config kept serving).
    pub reloads_failed: AtomicU64,
    /// Route counters by route id (each snapshot's routes hold theirs).
    pub metrics: Arc<MetricsRegistry>,
    /// Route endpoints by route id (each snapshot's routes hold theirs): resolved addresses,
    /// health and ejections that survive reloads.
    pub upstreams: Arc<UpstreamRegistry>,
    /// Where the workers hand their access-log lines.
    pub access_log: AccessLogSink,
    /// Quota counters by key and client address, and the quota store's health (each
    /// snapshot's `QuotaTable` points into them).
    pub quotas: Arc<QuotaCounters>,
    /// Client connections each worker may hold whatever `max_connections_per_worker` says:
    /// what the open-file limit allows (`sysd::connections_within`); `usize::MAX` when the
    /// limit holds the configuration (and for gateways started in-process).
    pub connection_cap: AtomicUsize,
}

impl Shared {
    /// Shared state for the `metrics.workers()` workers starting on `snapshot` (built with
    /// the same `metrics` registry and `quotas` counters, which take its keys as the ones in
    /// force).
    pub fn new(
        snapshot: Snapshot,
        metrics: Arc<MetricsRegistry>,
        access_log: AccessLogSink,
        quotas: Arc<QuotaCounters>,
        upstreams: Arc<UpstreamRegistry>,
    ) -> Arc<Self> {
        let workers = metrics.workers();
        quotas.install(&snapshot.quotas);
        Arc::new(Self {
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            draining: AtomicBool::new(false),
            drain_deadline: OnceLock::new(),
            workers: (0..workers).map(|_| WorkerStats::default()).collect(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            metrics,
            upstreams,
            access_log,
            quotas,
            connection_cap: AtomicUsize::new(usize::MAX),
        })
    }

    /// True once every worker has started its runtime (its driver is known) and draining has
    /// not begun: what `/ready` answers.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.workers.iter().all(|w| w.driver.get().is_some())
    }

    /// True once draining has started.
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// When the drain ends, once it started.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline.get().copied()
    }

    /// Open WebSocket tunnels over all workers.
    pub fn websocket_tunnels(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.websocket_tunnels.load(Ordering::Relaxed))
            .sum()
    }

    /// Open client connections over all workers.
    pub fn active_connections(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.active_connections.load(Ordering::Relaxed))
            .sum()
    }
}
