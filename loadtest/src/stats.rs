//! Per-thread measurements: the latency histogram (microseconds, 3 significant digits), status
//! counts, socket errors, timeouts, bad responses and check failures; merged once at the end.
//!
//! Owns the accounting rules (what counts as an error) and the merge. It does no IO; the shared
//! atomics that feed the once-a-second progress line live in [`Progress`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Significant digits kept by every latency histogram.
pub const SIGFIG: u8 = 3;

/// Error counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// Connecting failed (refused, timed out; for https, the TCP part or the whole connect
    /// including the handshake timed out).
    pub connect: u64,
    /// The TLS handshake failed (certificate not trusted, wrong name, protocol error).
    pub tls: u64,
    /// Reading failed (reset, closed before a response started on a fresh connection).
    pub read: u64,
    /// Writing the request failed.
    pub write: u64,
    /// A request got no complete response within the per-request timeout.
    pub timeout: u64,
    /// A response could not be parsed, or the connection closed in the middle of it.
    pub bad_response: u64,
}

impl Errors {
    /// Sum of every kind.
    pub fn total(&self) -> u64 {
        self.connect + self.tls + self.read + self.write + self.timeout + self.bad_response
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.tls += o.tls;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.bad_response += o.bad_response;
    }
}

/// What one thread measured (and, after [`Stats::merge`], the whole run).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of every complete response, in microseconds.
    pub latency: Histogram<u64>,
    /// Complete responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Errors by kind.
    pub errors: Errors,
    /// Complete responses that failed a configured check.
    pub check_failures: u64,
    /// Why the first bad response was bad, to tell the user what went wrong.
    pub bad_response_example: Option<String>,
    /// TLS handshakes completed (https targets; full and resumed).
    pub tls_handshakes: u64,
    /// Why the first failed TLS handshake failed.
    pub tls_error_example: Option<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty measurements.
    pub fn new() -> Self {
        Stats {
            latency: new_histogram(),
            status: BTreeMap::new(),
            errors: Errors::default(),
            check_failures: 0,
            bad_response_example: None,
            tls_handshakes: 0,
            tls_error_example: None,
        }
    }

    /// Records one complete response. Called once per response; O(1).
    pub fn record_response(&mut self, status: u16, latency: Duration, checks_passed: bool) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
        *self.status.entry(status).or_insert(0) += 1;
        if !checks_passed {
            self.check_failures += 1;
        }
    }

    /// Complete responses (whatever their status).
    pub fn responses(&self) -> u64 {
        self.status.values().sum()
    }

    /// Adds `other` into `self`: histograms, status counts, errors. Called once per thread at
    /// the end of a run.
    pub fn merge(&mut self, other: &Stats) -> Result<(), String> {
        self.latency
            .add(&other.latency)
            .map_err(|e| format!("histogram merge: {e:?}"))?;
        for (code, n) in &other.status {
            *self.status.entry(*code).or_insert(0) += n;
        }
        self.errors.add(&other.errors);
        self.check_failures += other.check_failures;
        if self.bad_response_example.is_none() {
            self.bad_response_example = other.bad_response_example.clone();
        }
        self.tls_handshakes += other.tls_handshakes;
        if self.tls_error_example.is_none() {
            self.tls_error_example = other.tls_error_example.clone();
        }
        Ok(())
    }
}

/// Largest latency tracked exactly, in microseconds (one hour); larger ones saturate to it.
pub const MAX_TRACKED_US: u64 = 3_600_000_000;

/// A latency histogram: 1 µs to one hour, 3 significant digits (about 200 KiB). Every histogram
/// has the same bounds, so merging never falls out of range.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_TRACKED_US, SIGFIG) {
        Ok(h) => h,
        // Only reachable with invalid constant bounds; fail loudly rather than mis-measure.
        Err(e) => panic!("latency histogram bounds: {e:?}"),
    }
}

/// Counters shared with the progress printer: one per thread, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Progress {
    /// Complete responses so far.
    pub responses: AtomicU64,
    /// Errors and check failures so far.
    pub errors: AtomicU64,
}

impl Progress {
    /// Adds one response (and one error when `failed`).
    pub fn count(&self, failed: bool) {
        self.responses.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one error that produced no response.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_threads_adds_everything() {
        let mut a = Stats::new();
        let mut b = Stats::new();
        for ms in 1..=100u64 {
            a.record_response(200, Duration::from_millis(ms), true);
        }
        b.record_response(200, Duration::from_secs(2), true);
        b.record_response(503, Duration::from_micros(10), false);
        b.errors.timeout = 2;
        b.errors.connect = 1;
        b.errors.tls = 1;
        b.tls_handshakes = 3;
        b.tls_error_example = Some("bad certificate".into());
        a.tls_handshakes = 2;
        a.merge(&b).unwrap();
        assert_eq!(a.tls_handshakes, 5);
        assert_eq!(a.tls_error_example.as_deref(), Some("bad certificate"));
        assert_eq!(a.latency.len(), 102);
        assert_eq!(a.responses(), 102);
        assert_eq!(a.status.get(&200), Some(&101));
        assert_eq!(a.status.get(&503), Some(&1));
        assert_eq!(a.check_failures, 1);
        assert_eq!(a.errors.total(), 4);
        // 3 significant digits: the max is 2 s within 0.2 % (bucket granularity).
        let max = a.latency.max();
        assert!((1_996_000..=2_004_000).contains(&max), "{max}");
        let p50 = a.latency.value_at_quantile(0.5);
        assert!((49_000..=51_100).contains(&p50), "{p50}");
        assert_eq!(a.latency.min(), 10);
    }

    #[test]
    fn sub_microsecond_latencies_count_as_one() {
        let mut s = Stats::new();
        s.record_response(200, Duration::from_nanos(10), true);
        assert_eq!(s.latency.min(), 1);
    }

    #[test]
    fn progress_counts_errors() {
        let p = Progress::default();
        p.count(false);
        p.count(true);
        p.error();
        assert_eq!(p.responses.load(Ordering::Relaxed), 2);
        assert_eq!(p.errors.load(Ordering::Relaxed), 2);
    }
}
