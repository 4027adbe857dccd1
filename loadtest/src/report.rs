//! The end-of-run report: latency percentiles, the terminal table and the JSON document
//! (`--json OUT`), which carry the same numbers.
//!
//! Owns presentation only: the CPU time it shows is read by [`crate::cpu`] during the run, and
//! it makes no measurement of the target itself.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cpu::CpuTime;
use crate::generator::RunResult;
use crate::stats::Errors;

/// Percentiles shown in tables and stored in reports.
pub const PERCENTILES: [f64; 4] = [50.0, 90.0, 99.0, 99.9];
/// Percentiles of the latency curve (the suite's charts), up to the max.
pub const CURVE: [f64; 9] = [0.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0];

/// Latency summary in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Smallest.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// `p50`, `p90`, `p99`, `p99.9` → microseconds.
    pub percentiles_us: BTreeMap<String, u64>,
    /// Largest.
    pub max_us: u64,
    /// (percentile, microseconds) points from p0 to p100 for charts.
    pub curve_us: Vec<(f64, u64)>,
}

impl Latency {
    /// Summarises a microsecond histogram.
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            min_us: h.min(),
            mean_us: h.mean(),
            percentiles_us: PERCENTILES
                .iter()
                .map(|&p| (percentile_name(p), h.value_at_percentile(p)))
                .collect(),
            max_us: h.max(),
            curve_us: CURVE
                .iter()
                .map(|&p| (p, h.value_at_percentile(p)))
                .collect(),
        }
    }

    /// The named percentile (`"p99"`), 0 when absent.
    pub fn get(&self, p: f64) -> u64 {
        self.percentiles_us
            .get(&percentile_name(p))
            .copied()
            .unwrap_or(0)
    }
}

/// `50.0` → `"p50"`, `99.9` → `"p99.9"`.
pub fn percentile_name(p: f64) -> String {
    format!("p{p}")
}

/// Everything a run reports; `--json OUT` writes exactly this.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Target URL.
    pub url: String,
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Target rate (open loop).
    pub target_rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Threads.
    pub threads: usize,
    /// IO driver of the generator.
    pub driver: &'static str,
    /// Complete responses.
    pub requests: u64,
    /// Wall seconds.
    pub duration_s: f64,
    /// Complete responses per second.
    pub requests_per_s: f64,
    /// Latency (from the intended send time in open loop).
    pub latency: Latency,
    /// Complete responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Errors by kind.
    pub errors: Errors,
    /// Responses failing a check.
    pub check_failures: u64,
    /// Why the first bad response was bad.
    pub bad_response_example: Option<String>,
    /// TLS handshakes of an `https://` run; absent for `http://`.
    pub tls: Option<TlsHandshakes>,
    /// Why the first failed TLS handshake failed.
    pub tls_error_example: Option<String>,
    /// Generator CPU time.
    pub cpu: CpuTime,
    /// Generator CPU microseconds per request.
    pub cpu_us_per_request: f64,
}

impl Report {
    /// Builds the report of a run.
    pub fn from_run(r: &RunResult) -> Report {
        let requests = r.stats.responses();
        let secs = r.elapsed.as_secs_f64();
        Report {
            url: r.options.url.clone(),
            mode: if r.options.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            target_rate: r.options.rate,
            connections: r.options.connections.max(r.options.threads.max(1)),
            threads: r.options.threads.max(1),
            driver: r.driver,
            requests,
            duration_s: secs,
            requests_per_s: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            latency: Latency::from_histogram(&r.stats.latency),
            status: r.stats.status.clone(),
            errors: r.stats.errors,
            check_failures: r.stats.check_failures,
            bad_response_example: r.stats.bad_response_example.clone(),
            tls: r.tls_full_handshakes.map(|full| TlsHandshakes {
                handshakes: r.stats.tls_handshakes,
                resumed: r.stats.tls_handshakes.saturating_sub(full),
            }),
            tls_error_example: r.stats.tls_error_example.clone(),
            cpu: r.cpu,
            cpu_us_per_request: r.cpu.us_per_request(requests),
        }
    }

    /// Whether the run saw any error or check failure (the exit code is then non-zero).
    pub fn failed(&self) -> bool {
        self.errors.total() > 0 || self.check_failures > 0
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let rate = self
            .target_rate
            .map(|r| format!(" at {r} req/s"))
            .unwrap_or_default();
        let _ = writeln!(s, "target      {}", self.url);
        let _ = writeln!(
            s,
            "mode        {} loop{rate}, {} connections, {} threads, {}",
            self.mode, self.connections, self.threads, self.driver
        );
        let _ = writeln!(s, "requests    {}", self.requests);
        let _ = writeln!(s, "duration    {:.2} s", self.duration_s);
        let _ = writeln!(s, "req/s       {:.1}", self.requests_per_s);
        let l = &self.latency;
        let _ = writeln!(
            s,
            "latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            fmt_us(l.get(50.0)),
            fmt_us(l.get(90.0)),
            fmt_us(l.get(99.0)),
            fmt_us(l.get(99.9)),
            fmt_us(l.max_us)
        );
        let codes: Vec<String> = self
            .status
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = writeln!(
            s,
            "status      {}",
            if codes.is_empty() {
                "-".into()
            } else {
                codes.join("  ")
            }
        );
        let e = &self.errors;
        let _ = writeln!(
            s,
            "errors      connect {}  tls {}  read {}  write {}  timeout {}  bad_response {}",
            e.connect, e.tls, e.read, e.write, e.timeout, e.bad_response
        );
        if let Some(why) = &self.bad_response_example {
            let _ = writeln!(s, "bad example {why}");
        }
        if let Some(why) = &self.tls_error_example {
            let _ = writeln!(s, "tls error   {why}");
        }
        if let Some(t) = &self.tls {
            let _ = writeln!(
                s,
                "tls         {} handshakes, {} resumed",
                t.handshakes, t.resumed
            );
        }
        let _ = writeln!(s, "checks      {} failures", self.check_failures);
        let _ = writeln!(
            s,
            "cpu         user {:.2} s  sys {:.2} s  {:.1} µs/request",
            self.cpu.user_s, self.cpu.sys_s, self.cpu_us_per_request
        );
        s
    }
}

/// Handshake counts of an `https://` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TlsHandshakes {
    /// Completed handshakes (one per connection opened).
    pub handshakes: u64,
    /// Of those, resumed ones (no certificate sent: session ticket or id).
    pub resumed: u64,
}

/// `1234` → `"1.23ms"`, `12` → `"12µs"`, `2_500_000` → `"2.50s"`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;
    use std::time::Duration;

    #[test]
    fn latency_summary_and_formatting() {
        let mut s = Stats::new();
        for us in 1..=1000u64 {
            s.record_response(200, Duration::from_micros(us), true);
        }
        let l = Latency::from_histogram(&s.latency);
        assert_eq!(l.get(50.0), 500);
        assert!((999..=1000).contains(&l.get(99.9)));
        assert_eq!(l.max_us, 1000);
        assert_eq!(l.curve_us.len(), CURVE.len());
        assert_eq!(l.curve_us.last(), Some(&(100.0, 1000)));
        assert_eq!(
            Latency::from_histogram(&Stats::new().latency),
            Latency::default()
        );
        assert_eq!(fmt_us(12), "12µs");
        assert_eq!(fmt_us(1234), "1.23ms");
        assert_eq!(fmt_us(2_500_000), "2.50s");
        assert_eq!(percentile_name(99.9), "p99.9");
    }
}
