//! The suite's results: one [`ScenarioResult`] per scenario run, the [`Skipped`] ones with their
//! reason, and the whole [`SuiteReport`] (what `report.json` holds) with its terminal table.
//!
//! Plain data and its text table; it runs nothing and writes no file. The lab, the HTML page
//! and the orchestrator all import these types from here, below them.

use serde::Serialize;

use crate::report::{fmt_us, Report};

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name (`mirror`, `torii-plain`, …).
    pub name: String,
    /// What it measures.
    pub about: String,
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

    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<14} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>10} {:>10}\n",
            "scenario",
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
        );
        let cpu = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        for sc in &self.scenarios {
            let r = &sc.report;
            let l = &r.latency;
            s.push_str(&format!(
                "{:<14} {:>10.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>10} {:>10}\n",
                sc.name,
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
