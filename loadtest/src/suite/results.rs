//! The suite's results: one [`ScenarioResult`] per scenario run, the [`Skipped`] ones with their
//! reason, and the whole [`SuiteReport`] (what `report.json` holds: the setup — date, host,
//! Torii build, worker counts — and the scenarios) with its terminal table.
//!
//! Plain data and its text; it runs nothing and writes no file. The lab, the scenarios, the
//! HTML page and the orchestrator all import these types from here, below them.

use std::fmt::Write as _;

use serde::Serialize;

use super::host::{HostInfo, ToriiBuild};
use crate::report::{fmt_us, Report};

/// The proxy a scenario measured and how many workers it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyInfo {
    /// `torii` or `nginx`.
    pub name: String,
    /// Torii's worker threads (`[gateway] workers`) or nginx's `worker_processes`.
    pub workers: usize,
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name (`mirror`, `torii-plain`, …).
    pub name: String,
    /// What it measures.
    pub about: String,
    /// The proxy between the generator and the mirror; `None` for the direct run.
    pub proxy: Option<ProxyInfo>,
    /// The generator's report.
    pub report: Report,
    /// User+system CPU µs per request of the proxy process(es); absent for the direct run.
    pub proxy_cpu_us_per_request: Option<f64>,
    /// User+system CPU µs per request of the backend (mirror) process.
    pub backend_cpu_us_per_request: Option<f64>,
}

/// A scenario that did not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Scenario name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// Whether `--quick` was given.
    pub quick: bool,
    /// When the suite started, UTC (RFC 3339).
    pub started_utc: String,
    /// The machine everything ran on.
    pub host: HostInfo,
    /// The `torii` binary measured.
    pub torii: ToriiBuild,
    /// `nginx -v` when the nginx scenarios ran.
    pub nginx_version: Option<String>,
    /// Torii's worker threads and nginx's worker processes: one number for both
    /// (`--proxy-workers`), so that the two are compared on equal terms.
    pub proxy_workers: usize,
    /// Worker threads of each mirror backend.
    pub backend_workers: usize,
    /// Generator threads.
    pub generator_threads: usize,
    /// Generator connections per scenario.
    pub connections: usize,
    /// Seconds per scenario.
    pub duration_s: f64,
    /// The generator's IO driver.
    pub driver: String,
    /// Scenarios run, in order.
    pub scenarios: Vec<ScenarioResult>,
    /// Scenarios skipped, with the reason.
    pub skipped: Vec<Skipped>,
}

impl SuiteReport {
    /// Whether any scenario had errors or check failures.
    pub fn failed(&self) -> bool {
        self.scenarios.iter().any(|s| s.report.failed())
    }

    /// The setup in one line per subject: date, host, Torii build, who ran with how many
    /// workers, and the load (terminal and HTML share these words).
    pub fn setup_lines(&self) -> Vec<(&'static str, String)> {
        let h = &self.host;
        let nginx = match &self.nginx_version {
            Some(v) => format!(
                ", nginx {} ({v})",
                plural(self.proxy_workers, "worker process")
            ),
            None => String::new(),
        };
        vec![
            ("date", self.started_utc.clone()),
            (
                "host",
                format!(
                    "{}, {} logical CPUs ({} usable), kernel {}, {}; load average at start {}",
                    h.cpu_model, h.logical_cpus, h.usable_cpus, h.kernel, h.os, h.load_average
                ),
            ),
            (
                "torii",
                format!(
                    "{}, commit {}, binary {}",
                    self.torii.version,
                    self.torii.commit_label(),
                    self.torii.binary
                ),
            ),
            (
                "workers",
                format!(
                    "torii {}{nginx}, mirror {} each, generator {}",
                    plural(self.proxy_workers, "worker thread"),
                    plural(self.backend_workers, "worker thread"),
                    plural(self.generator_threads, "thread"),
                ),
            ),
            (
                "load",
                format!(
                    "{} run: closed loop, {} connections, {:.1} s per scenario, generator on {}",
                    if self.quick { "quick" } else { "full" },
                    self.connections,
                    self.duration_s,
                    self.driver
                ),
            ),
        ]
    }

    /// The terminal table, after the setup lines.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.setup_lines() {
            let _ = writeln!(s, "{k:<8} {v}");
        }
        s.push_str(&format!(
            "{:<18} {:<9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>10} {:>10}\n",
            "scenario",
            "proxy",
            "req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "errors",
            "checks",
            "proxy µs",
            "backend µs"
        ));
        let cpu = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        for sc in &self.scenarios {
            let r = &sc.report;
            let l = &r.latency;
            s.push_str(&format!(
                "{:<18} {:<9} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>10} {:>10}\n",
                sc.name,
                sc.proxy_label(),
                r.requests_per_s,
                fmt_us(l.get(50.0)),
                fmt_us(l.get(90.0)),
                fmt_us(l.get(99.0)),
                fmt_us(l.get(99.9)),
                fmt_us(l.max_us),
                r.errors.total(),
                r.check_failures,
                cpu(sc.proxy_cpu_us_per_request),
                cpu(sc.backend_cpu_us_per_request)
            ));
        }
        for sk in &self.skipped {
            s.push_str(&format!("skipped {}: {}\n", sk.name, sk.reason));
        }
        s
    }
}

/// `1 worker thread`, `2 worker threads`, `2 worker processes`.
fn plural(n: usize, what: &str) -> String {
    match (n, what.ends_with('s')) {
        (1, _) => format!("{n} {what}"),
        (_, true) => format!("{n} {what}es"),
        (_, false) => format!("{n} {what}s"),
    }
}

impl ScenarioResult {
    /// `torii ×2`, `nginx ×2`, or `-` for the direct run.
    pub fn proxy_label(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| "-".to_string(), |p| format!("{} ×{}", p.name, p.workers))
    }
}
