//! CPU time of the generator process (`getrusage(RUSAGE_SELF)`): read before and after a run
//! by [`crate::generator`], shown per request by [`crate::report`].
//!
//! Owns the reading and the arithmetic on it; it knows nothing about runs or reports, so both
//! of those import it from below.

use serde::Serialize;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuTime {
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
}

impl CpuTime {
    /// This process's CPU time so far (all threads), from `getrusage(RUSAGE_SELF)`; zero when
    /// the call fails. One system call.
    pub fn now_self() -> CpuTime {
        // SAFETY: `usage` is a plain C struct on our stack, zero-initialised, and getrusage only
        // writes into it.
        let (rc, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let rc = libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            (rc, usage)
        };
        if rc != 0 {
            return CpuTime::default();
        }
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        CpuTime {
            user_s: secs(usage.ru_utime),
            sys_s: secs(usage.ru_stime),
        }
    }

    /// `self - earlier`, clamped at zero.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            sys_s: (self.sys_s - earlier.sys_s).max(0.0),
        }
    }

    /// User plus system seconds.
    pub fn total_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// CPU microseconds per request (0 when there were no requests).
    pub fn us_per_request(&self, requests: u64) -> f64 {
        if requests == 0 {
            0.0
        } else {
            self.total_s() * 1e6 / requests as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_moves_forward_and_divides_per_request() {
        let before = CpuTime::now_self();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let used = CpuTime::now_self().since(&before);
        assert!(used.total_s() >= 0.0);
        let c = CpuTime {
            user_s: 1.5,
            sys_s: 0.5,
        };
        assert_eq!(c.us_per_request(1_000_000), 2.0);
        assert_eq!(c.us_per_request(0), 0.0);
    }
}
