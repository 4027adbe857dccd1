//! State shared between the control thread and the workers.
//!
//! Owns the current config snapshot (behind `ArcSwap`), the process-wide draining flag and the
//! per-worker counters (each on its own cache line, written only by its worker). Nothing here
//! is locked on the request path: workers read the snapshot through a per-worker cache and
//! only touch their own counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::snapshot::Snapshot;

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
}

/// Everything the control thread and the workers share.
#[derive(Debug)]
pub struct Shared {
    /// The config in force. Replaced whole on reload.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Set once on SIGTERM/SIGINT: workers stop accepting and close idle connections.
    pub draining: AtomicBool,
    /// One entry per worker.
    pub workers: Vec<WorkerStats>,
    /// Reloads that replaced the config.
    pub reloads_ok: AtomicU64,
    /// Reloads rejected (the old config kept serving).
    pub reloads_failed: AtomicU64,
}

impl Shared {
    /// Shared state for `workers` workers starting on `snapshot`.
    pub fn new(snapshot: Snapshot, workers: usize) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            draining: AtomicBool::new(false),
            workers: (0..workers).map(|_| WorkerStats::default()).collect(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        })
    }

    /// True once draining has started.
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Open client connections over all workers.
    pub fn active_connections(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.active_connections.load(Ordering::Relaxed))
            .sum()
    }
}
