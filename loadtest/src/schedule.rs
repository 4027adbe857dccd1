//! Open-loop scheduling (`--rate`): when each connection should send, and the latency measured
//! from that intended time, so a stalled server is charged for the requests it delayed
//! (coordinated omission corrected, as wrk2 does).
//!
//! Pure arithmetic on `Instant`s handed in by the caller: no clock reads, no sleeping. The
//! connection code sleeps until [`Schedule::next_send`] and records [`corrected_latency`].

use std::time::{Duration, Instant};

/// One connection's send schedule: `rate / connections` requests per second, the connections
/// staggered by `1 / rate` so that together they send evenly spaced requests.
#[derive(Debug, Clone)]
pub struct Schedule {
    first: Instant,
    interval: Duration,
    sent: u64,
}

impl Schedule {
    /// The schedule of connection `index` (0-based) out of `connections`, for a total of
    /// `rate` requests per second starting at `start`. `rate` must be positive; it is clamped
    /// to at least one request per hour so the interval stays finite.
    pub fn new(start: Instant, rate: f64, index: usize, connections: usize) -> Self {
        let rate = if rate.is_finite() {
            rate.max(1.0 / 3600.0)
        } else {
            1.0
        };
        let connections = connections.max(1) as f64;
        let interval = Duration::from_secs_f64(connections / rate);
        let offset = Duration::from_secs_f64(index as f64 / rate);
        Schedule {
            first: start + offset,
            interval,
            sent: 0,
        }
    }

    /// Time between two sends on this connection.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The intended send time of the next request, and advances the schedule. A caller that
    /// is already late sends at once, but still measures from this time.
    pub fn next_send(&mut self) -> Instant {
        let at = self.intended(self.sent);
        self.sent += 1;
        at
    }

    /// Intended send time of request `k` (0-based) of this connection.
    pub fn intended(&self, k: u64) -> Instant {
        // Multiply in f64 seconds: u32 overflow of `Duration * u32` is not an issue then, and
        // the rounding error stays far below a microsecond for any realistic run.
        self.first + Duration::from_secs_f64(self.interval.as_secs_f64() * k as f64)
    }
}

/// Latency of a response that completed at `done` for a request meant to go out at
/// `intended`: the time the caller waited, whether or not the request could be sent on time.
pub fn corrected_latency(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn connections_are_staggered_over_the_total_rate() {
        let t0 = Instant::now();
        // 1000 req/s over 4 connections: each sends every 4 ms, offset by 1 ms.
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|i| {
                let mut s = Schedule::new(t0, 1000.0, i, 4);
                assert_eq!(s.interval(), 4 * MS);
                (0..3).map(move |_| s.next_send() - t0).collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        let expected: Vec<Duration> = (0..12).map(|k| k * MS).collect();
        for (got, want) in all.iter().zip(&expected) {
            assert!(
                got.abs_diff(*want) < Duration::from_micros(1),
                "{got:?} vs {want:?}"
            );
        }
    }

    /// One connection at 100 req/s against a server that takes 1 ms, except once 50 ms.
    /// The requests queued behind the stall are charged for their wait: 41, 32, 23, 14, 5 ms.
    #[test]
    fn a_stall_is_charged_to_the_requests_it_delayed() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100.0, 0, 1);
        let service = [1, 50, 1, 1, 1, 1, 1, 1];
        let mut free_at = t0;
        let mut corrected = Vec::new();
        let mut naive = Vec::new();
        for svc in service {
            let intended = s.next_send();
            let sent = intended.max(free_at);
            let done = sent + svc * MS;
            free_at = done;
            corrected.push(corrected_latency(intended, done).as_micros() / 1000);
            naive.push((done - sent).as_micros() / 1000);
        }
        assert_eq!(corrected, vec![1, 50, 41, 32, 23, 14, 5, 1]);
        assert_eq!(naive, vec![1, 50, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn early_completion_never_goes_negative_and_rates_are_clamped() {
        let t0 = Instant::now();
        assert_eq!(corrected_latency(t0 + MS, t0), Duration::ZERO);
        let s = Schedule::new(t0, 0.0, 0, 1);
        assert_eq!(s.interval(), Duration::from_secs(3600));
        let s = Schedule::new(t0, f64::NAN, 0, 0);
        assert_eq!(s.interval(), Duration::from_secs(1));
        assert_eq!(s.intended(2) - t0, Duration::from_secs(2));
    }
}
