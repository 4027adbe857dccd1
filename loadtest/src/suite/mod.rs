//! `torii-loadtest suite`: starts `torii mirror` backends, a `torii run` gateway with a generated
//! config and, when installed, nginx ([`lab`]); probes that the gateway enforces API keys and
//! tokens and obtains an access token ([`setup`]); then loads each scenario in turn (direct to
//! the mirror, Torii plain, V1, V2, V2 + info token, API key, API key with quotas synced
//! through Redis, bearer token, an external issuer's RS256 token, TLS termination,
//! nginx plain and TLS, and a WebSocket echo direct, through Torii and through nginx:
//! [`scenarios`]) and writes a table, `report.json` and `report.html`.
//!
//! Owns the order of those steps and the suite's arguments; the report types are [`results`],
//! the facts about the machine and the build [`host`], the page [`html`]. The load itself is
//! [`crate::generator`]; every process started is a [`procs::ProcGuard`], killed on drop
//! whether the suite succeeds or fails.

pub mod bar_chart;
pub mod config;
pub mod host;
pub mod html;
pub mod issuer;
pub mod lab;
pub mod latency_chart;
pub mod procs;
pub mod redis;
pub mod results;
pub mod sample;
pub mod scenarios;
pub mod setup;
pub mod svg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::report::Report;
use host::{HostInfo, ToriiBuild};
use lab::{Lab, MIRROR_WORKERS};
use procs::{find_on_path, TempDir};
pub use results::{ProxyInfo, ScenarioResult, Skipped, SuiteReport};
use scenarios::{load, scenarios, GENERATOR_THREADS};

/// `torii-loadtest suite`.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    /// Short runs (2 s per scenario, 16 connections): what CI runs; finishes in under a minute.
    #[arg(long)]
    pub quick: bool,
    /// The `torii` binary (default: next to this binary, then on PATH).
    #[arg(long)]
    pub torii: Option<PathBuf>,
    /// Where report.json and report.html go.
    #[arg(long, default_value = "loadtest-report")]
    pub out: PathBuf,
    /// Worker threads of Torii and worker processes of nginx: one number for both, so that the
    /// two proxies are compared on equal terms.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub proxy_workers: u16,
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

/// Runs the suite; the lab's guards kill every process before this returns.
pub fn run_suite(args: &SuiteArgs) -> Result<SuiteReport, String> {
    let torii = find_torii(args.torii.as_deref())?;
    let tmp = TempDir::new()?;
    let (duration, connections) = if args.quick {
        (Duration::from_secs(2), 16)
    } else {
        (Duration::from_secs(10), 64)
    };
    let started_utc = host::now_utc();
    let host = HostInfo::read();
    let build = ToriiBuild::read(&torii);
    let proxy_workers = usize::from(args.proxy_workers);
    let mut lab = Lab::start(&torii, &tmp.path, proxy_workers)?;
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
            proxy: sc.proxy_info.clone(),
            proxy_cpu_us_per_request: proxy_cpu.and_then(per_req),
            backend_cpu_us_per_request: per_req(backend_cpu),
            report,
        });
    }
    let report = SuiteReport {
        quick: args.quick,
        started_utc,
        host,
        torii: build,
        nginx_version: lab.nginx_version.clone(),
        proxy_workers,
        backend_workers: MIRROR_WORKERS,
        generator_threads: GENERATOR_THREADS,
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
