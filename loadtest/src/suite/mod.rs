//! `torii-loadtest suite`: starts `torii mirror` backends, a `torii run` gateway with a generated
//! config and, when installed, nginx ([`lab`]); probes that the gateway enforces API keys and
//! tokens and obtains an access token ([`setup`]); then loads each scenario in turn (direct to
//! the mirror, Torii plain, V1, V2, V2 + info token, API key, bearer token, TLS termination,
//! nginx plain and TLS: [`scenarios`]) and writes a table, `report.json` and `report.html`.
//!
//! Owns the order of those steps and the report types. The load itself is
//! [`crate::generator`]; every process started is a [`procs::ProcGuard`], killed on drop
//! whether the suite succeeds or fails.

pub mod config;
pub mod html;
pub mod lab;
pub mod procs;
pub mod scenarios;
pub mod setup;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::SuiteArgs;
use crate::report::{fmt_us, Report};
use lab::Lab;
use procs::TempDir;
use scenarios::{load, scenarios};

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

/// Parses nothing, runs everything; returns the exit code (0 clean, 1 errors or check
/// failures, 2 the suite could not run).
pub fn main(args: &SuiteArgs) -> i32 {
    match run_suite(args) {
        Ok(report) => {
            print!("{}", report.table());
            println!("reports written to {}", args.out.display());
            if report.failed() {
                println!("FAILED: some scenario had errors or check failures");
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("torii-loadtest suite: {e}");
            2
        }
    }
}

/// Finds the `torii` binary: `--torii`, then next to this executable (and its parent, for
/// test binaries in `deps/`), then `PATH`.
pub fn find_torii(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--torii {}: no such file", p.display()))
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("torii");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    find_on_path("torii").ok_or_else(|| {
        "torii binary not found: build it (cargo build -p torii-engine) or pass --torii PATH".into()
    })
}

/// `name` on `PATH`, if any.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .take(256)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A 64-character secret (32 random bytes, hex) from /dev/urandom.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs the suite; the lab's guards kill every process before this returns.
pub fn run_suite(args: &SuiteArgs) -> Result<SuiteReport, String> {
    let torii = find_torii(args.torii.as_deref())?;
    let tmp = TempDir::new()?;
    let (duration, connections) = if args.quick {
        (Duration::from_secs(2), 16)
    } else {
        (Duration::from_secs(10), 64)
    };
    let mut lab = Lab::start(&torii, &tmp.path)?;
    let token = lab.probe_and_fetch_token()?;
    let mut results = Vec::new();
    let mut driver = String::new();
    for sc in scenarios(&lab, &token) {
        for g in lab.guards.iter_mut() {
            g.check_alive()?;
        }
        println!("running {} for {:.0?}...", sc.name, duration);
        let (result, proxy_cpu, backend_cpu) = load(&sc, duration, connections)?;
        driver = result.driver.to_string();
        let report = Report::from_run(&result);
        let per_req = |cpu: f64| (report.requests > 0).then(|| cpu * 1e6 / report.requests as f64);
        results.push(ScenarioResult {
            name: sc.name.clone(),
            about: sc.about.clone(),
            proxy_cpu_us_per_request: proxy_cpu.and_then(per_req),
            backend_cpu_us_per_request: per_req(backend_cpu),
            report,
        });
    }
    let report = SuiteReport {
        quick: args.quick,
        connections,
        duration_s: duration.as_secs_f64(),
        driver,
        scenarios: results,
        skipped: std::mem::take(&mut lab.skipped),
    };
    write_reports(&args.out, &report)?;
    drop(lab);
    Ok(report)
}

/// Writes `report.json` and `report.html` into `out` (created if needed).
pub fn write_reports(out: &Path, report: &SuiteReport) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    let json_path = out.join("report.json");
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    let html_path = out.join("report.html");
    std::fs::write(&html_path, html::render(report))
        .map_err(|e| format!("{}: {e}", html_path.display()))?;
    Ok(())
}
