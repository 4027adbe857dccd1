//! A per-worker rate limit for repetitive warnings (challenge failures, say), so that a
//! misbehaving backend or an attacker cannot flood the log.
//!
//! Owns one window counter: at most one line per second gets through; the lines dropped in
//! between are counted and reported with the next line that passes.

use std::cell::Cell;
use std::time::Instant;

/// At most one log line per second, with a count of the ones suppressed.
#[derive(Debug, Default)]
pub struct RateLog {
    last: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl RateLog {
    /// Returns `Some(suppressed_since_last)` when a line may be logged now, else counts it.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        match self.last.get() {
            Some(t) if now.duration_since(t).as_secs() < 1 => {
                self.suppressed.set(self.suppressed.get() + 1);
                None
            }
            _ => {
                self.last.set(Some(now));
                Some(self.suppressed.replace(0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_line_per_second_with_a_count() {
        let log = RateLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        assert_eq!(log.admit(t0 + Duration::from_millis(10)), None);
        assert_eq!(log.admit(t0 + Duration::from_millis(20)), None);
        assert_eq!(log.admit(t0 + Duration::from_millis(1100)), Some(2));
    }
}
