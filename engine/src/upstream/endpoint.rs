//! One upstream endpoint (an address of a target) and the state every thread of the process
//! shares about it: health (written by the health checker), passive ejection (written by the
//! workers that saw its failures), and per-worker counters (each written by its worker only).
//!
//! Owns the atomics and the rules that read them together ([`EndpointState::available`]).
//! Nothing here locks: a worker reads a few relaxed atomics per selection, and writes only on
//! a failure, on an ejection, or its own counter slot. The state lives in an `Arc` that
//! survives DNS answers and reloads that keep the address (see `upstream::registry`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds since the first call in this process: the clock ejections are kept on (an
/// `Instant` does not fit an atomic). Cheap: one `Instant::now()`.
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// [`now_ms`] at `at`, for a caller that already read the clock (no second clock read).
pub fn ms_at(at: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    // +1 so that 0 never means "now" (0 is "not ejected").
    at.saturating_duration_since(start).as_millis() as u64 + 1
}

/// What the active health check says of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not checked (no `[routes.health_check]`, or no verdict yet): counts as up.
    Unknown,
    /// Passed `healthy_threshold` probes in a row.
    Healthy,
    /// Failed `unhealthy_threshold` probes in a row: takes no traffic.
    Unhealthy,
}

impl Health {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Health::Healthy,
            2 => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Health::Unknown => 0,
            Health::Healthy => 1,
            Health::Unhealthy => 2,
        }
    }

    /// The word used by `GET /upstreams` and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// A counter slot written by one worker only, on its own cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerSlot {
    /// Requests of this worker in flight to the endpoint (load + store: one writer).
    pub in_flight: AtomicU32,
    /// Requests this worker sent to the endpoint (tries, retries included).
    pub requests: AtomicU64,
}

/// The process-wide state of one endpoint.
#[derive(Debug)]
pub struct EndpointState {
    /// The address.
    pub addr: SocketAddr,
    /// `addr` as text, rendered once (access log, metrics labels, `GET /upstreams`).
    pub addr_text: Box<str>,
    health: AtomicU8,
    /// Consecutive good (positive) or bad (negative) probes, the health checker's only.
    pub probe_streak: std::sync::atomic::AtomicI32,
    /// Probes that passed / failed since start.
    pub probes_ok: AtomicU64,
    /// Probes that failed since start.
    pub probes_failed: AtomicU64,
    /// `now_ms()` until which the endpoint is ejected (0: not ejected).
    ejected_until_ms: AtomicU64,
    /// Ejections so far (the next lasts `base × (n + 1)`).
    pub times_ejected: AtomicU32,
    /// Consecutive 5xx answers (any worker).
    pub consecutive_5xx: AtomicU32,
    /// Consecutive gateway failures (any worker).
    pub consecutive_gateway: AtomicU32,
    slots: Box<[WorkerSlot]>,
}

impl EndpointState {
    /// A fresh state for `addr` with one counter slot per worker.
    pub fn new(addr: SocketAddr, workers: usize) -> Self {
        Self {
            addr,
            addr_text: addr.to_string().into_boxed_str(),
            health: AtomicU8::new(0),
            probe_streak: Default::default(),
            probes_ok: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
            ejected_until_ms: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            slots: (0..workers.max(1)).map(|_| WorkerSlot::default()).collect(),
        }
    }

    /// The health checker's verdict.
    #[inline]
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    /// Sets the health checker's verdict; returns the previous one.
    pub fn set_health(&self, health: Health) -> Health {
        Health::from_u8(self.health.swap(health.to_u8(), Ordering::Relaxed))
    }

    /// True while an ejection lasts at `now_ms`.
    #[inline]
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// `now_ms()` when the current (or last) ejection ends; 0 when never ejected.
    pub fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// Ejects the endpoint until `until_ms` unless another thread just did (the first of
    /// several workers crossing the threshold wins). Returns whether this call ejected it.
    pub fn eject_until(&self, now_ms: u64, until_ms: u64) -> bool {
        let current = self.ejected_until_ms.load(Ordering::Relaxed);
        if current > now_ms {
            return false;
        }
        let won = self
            .ejected_until_ms
            .compare_exchange(current, until_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if won {
            self.times_ejected.fetch_add(1, Ordering::Relaxed);
            self.consecutive_5xx.store(0, Ordering::Relaxed);
            self.consecutive_gateway.store(0, Ordering::Relaxed);
        }
        won
    }

    /// Whether a request may go here at `now_ms`: not ejected and not found unhealthy.
    #[inline]
    pub fn available(&self, now_ms: u64) -> bool {
        !self.is_ejected(now_ms) && self.health() != Health::Unhealthy
    }

    /// This worker's counter slot (worker ids past the slots share the last one, which only
    /// happens to a state made for fewer workers than run; counts stay approximate then).
    #[inline]
    pub fn slot(&self, worker: usize) -> &WorkerSlot {
        let last = self.slots.len() - 1;
        &self.slots[worker.min(last)]
    }

    /// Requests in flight, all workers.
    pub fn in_flight(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| u64::from(s.in_flight.load(Ordering::Relaxed)))
            .sum()
    }

    /// Requests sent, all workers.
    pub fn requests(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.requests.load(Ordering::Relaxed))
            .sum()
    }

    /// Records a success: the consecutive-failure counts go back to 0 (written only when not
    /// already 0, so the steady state writes nothing shared).
    #[inline]
    pub fn record_success(&self) {
        if self.consecutive_5xx.load(Ordering::Relaxed) != 0 {
            self.consecutive_5xx.store(0, Ordering::Relaxed);
        }
        if self.consecutive_gateway.load(Ordering::Relaxed) != 0 {
            self.consecutive_gateway.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> EndpointState {
        EndpointState::new("127.0.0.1:1".parse().unwrap(), 2)
    }

    #[test]
    fn ejection_is_won_once_and_ends() {
        let s = state();
        s.consecutive_5xx.store(5, Ordering::Relaxed);
        assert!(s.eject_until(10, 100));
        assert!(!s.eject_until(11, 200), "already ejected");
        assert!(s.is_ejected(99));
        assert!(!s.available(99));
        assert!(!s.is_ejected(100));
        assert!(s.available(100));
        assert_eq!(s.times_ejected.load(Ordering::Relaxed), 1);
        assert_eq!(s.consecutive_5xx.load(Ordering::Relaxed), 0);
        assert!(s.eject_until(150, 300));
        assert_eq!(s.times_ejected.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn unhealthy_is_unavailable_unknown_is_not() {
        let s = state();
        assert!(s.available(1));
        assert_eq!(s.set_health(Health::Unhealthy), Health::Unknown);
        assert!(!s.available(1));
        s.set_health(Health::Healthy);
        assert!(s.available(1));
    }

    #[test]
    fn success_clears_failure_counts() {
        let s = state();
        s.consecutive_gateway.store(3, Ordering::Relaxed);
        s.record_success();
        assert_eq!(s.consecutive_gateway.load(Ordering::Relaxed), 0);
    }
}
