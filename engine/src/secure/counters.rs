//! Per-route, per-worker counters of challenge failures by reason.
//!
//! Owns the counter layout: one cache-line-aligned block of atomics per worker, written only
//! by that worker (relaxed increments, no sharing between cores) and summed when metrics are
//! read. The reasons are `torii_protocol`'s `ChallengeFailure::reason()` labels.

use std::sync::atomic::{AtomicU64, Ordering};

use torii_protocol::ChallengeFailure;

/// Every failure reason, in counter order.
pub const REASONS: [ChallengeFailure; 11] = ChallengeFailure::ALL;

fn index(f: ChallengeFailure) -> usize {
    REASONS.iter().position(|r| *r == f).unwrap_or(0)
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct WorkerBlock([AtomicU64; 11]);

/// Challenge failure counters of one route.
#[derive(Debug)]
pub struct ChallengeCounters {
    per_worker: Box<[WorkerBlock]>,
}

impl ChallengeCounters {
    /// Counters for `workers` workers, all zero.
    pub fn new(workers: usize) -> Self {
        Self {
            per_worker: (0..workers.max(1))
                .map(|_| WorkerBlock::default())
                .collect(),
        }
    }

    /// Counts one failure seen by `worker`.
    #[inline]
    pub fn record(&self, worker: usize, failure: ChallengeFailure) {
        if let Some(block) = self.per_worker.get(worker) {
            block.0[index(failure)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Total failures for `failure` over all workers.
    pub fn total(&self, failure: ChallengeFailure) -> u64 {
        let i = index(failure);
        self.per_worker
            .iter()
            .map(|b| b.0[i].load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason_over_workers() {
        let c = ChallengeCounters::new(2);
        c.record(0, ChallengeFailure::Expired);
        c.record(1, ChallengeFailure::Expired);
        c.record(1, ChallengeFailure::MissingHeader);
        c.record(7, ChallengeFailure::MissingHeader); // unknown worker: ignored, no panic
        assert_eq!(c.total(ChallengeFailure::Expired), 2);
        assert_eq!(c.total(ChallengeFailure::MissingHeader), 1);
        assert_eq!(c.total(ChallengeFailure::Stale), 0);
        let labels: std::collections::HashSet<_> = REASONS.iter().map(|r| r.reason()).collect();
        assert_eq!(
            labels.len(),
            REASONS.len(),
            "every reason has its own label"
        );
    }
}
