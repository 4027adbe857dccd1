//! `torii-loadtest suite`: starts `torii mirror` backends, a `torii run` gateway with a generated
//! config and, when installed, nginx; then loads each scenario in turn (direct to the mirror,
//! Torii plain, V1, V2, V2 + info token, nginx) and writes a table, `report.json` and
//! `report.html`.
//!
//! Owns scenario selection, process start-up order and the proxy-CPU measurement
//! (`/proc/PID/stat` before and after each scenario). The load itself is
//! [`crate::generator`]; every process started here is a [`procs::ProcGuard`], killed on drop
//! whether the suite succeeds or fails.

pub mod config;
pub mod html;
pub mod procs;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::cli::SuiteArgs;
use crate::generator::RunOptions;
use crate::report::{fmt_us, Report};
use crate::response::Checks;
use crate::target::RequestSpec;
use config::{host_of, Backends, SECRET_ENV};
use procs::{children_of, free_port, total_cpu_s, ProcGuard, TempDir};

/// How long a started process may take to listen.
const START_LIMIT: Duration = Duration::from_secs(10);

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

/// A scenario to load.
struct Scenario {
    name: String,
    about: String,
    port: u16,
    host: Option<String>,
    /// The proxy's master process (None for the direct run).
    proxy: Option<u32>,
    /// Also count children of the proxy (nginx workers).
    proxy_children: bool,
    backend: u32,
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
fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts `torii mirror` on a free port with `extra` flags; returns the guard and the port.
fn start_mirror(
    torii: &Path,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> Result<(ProcGuard, u16), String> {
    let port = free_port()?;
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(torii);
    cmd.arg("mirror")
        .arg("--listen")
        .arg(loopback(port).to_string())
        .args(["--workers", "1"])
        .args(extra);
    let mut guard = ProcGuard::spawn(name, cmd, &log)?;
    guard.wait_ready(loopback(port), START_LIMIT, &log)?;
    Ok((guard, port))
}

/// Runs the suite; the guards it creates kill every process before this returns.
pub fn run_suite(args: &SuiteArgs) -> Result<SuiteReport, String> {
    let torii = find_torii(args.torii.as_deref())?;
    let tmp = TempDir::new()?;
    let dir = tmp.path.clone();
    let secret = new_secret()?;
    let (duration, connections) = if args.quick {
        (Duration::from_secs(2), 16)
    } else {
        (Duration::from_secs(10), 64)
    };
    let mut skipped = Vec::new();
    let mut guards: Vec<ProcGuard> = Vec::new();

    let help = Command::new(&torii)
        .args(["mirror", "--help"])
        .output()
        .map_err(|e| format!("{} mirror --help: {e}", torii.display()))?;
    let challenge_ok = String::from_utf8_lossy(&help.stdout).contains("--challenge");

    let (mirror, plain_port) = start_mirror(&torii, &dir, "mirror", &[])?;
    let mirror_pid = mirror.pid();
    guards.push(mirror);
    let mut backends = Backends {
        plain: plain_port,
        v1: None,
        v2: None,
    };
    let mut challenge_pids = (0, 0);
    if challenge_ok {
        let (m1, p1) = start_mirror(&torii, &dir, "mirror-v1", &["--challenge", "v1"])?;
        let (m2, p2) = start_mirror(
            &torii,
            &dir,
            "mirror-v2",
            &["--challenge", "v2", "--secret", &secret],
        )?;
        challenge_pids = (m1.pid(), m2.pid());
        backends.v1 = Some(p1);
        backends.v2 = Some(p2);
        guards.push(m1);
        guards.push(m2);
    } else {
        for name in ["torii-v1", "torii-v2", "torii-v2-info"] {
            skipped.push(Skipped {
                name: name.into(),
                reason: "`torii mirror --help` does not list --challenge yet".into(),
            });
        }
        println!("note: torii mirror has no --challenge yet; skipping the V1, V2 and info-token scenarios");
    }

    let gw_port = free_port()?;
    let cfg_path = dir.join("torii.toml");
    std::fs::write(&cfg_path, config::gateway_toml(gw_port, &backends))
        .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
    let gw_log = dir.join("torii.log");
    let mut cmd = Command::new(&torii);
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg_path)
        .env(SECRET_ENV, &secret);
    let mut gateway = ProcGuard::spawn("torii", cmd, &gw_log)?;
    gateway.wait_ready(loopback(gw_port), START_LIMIT, &gw_log)?;
    let gw_pid = gateway.pid();
    guards.push(gateway);

    let mut scenarios = vec![
        Scenario {
            name: "mirror".into(),
            about: "generator → mirror, no proxy (the baseline)".into(),
            port: plain_port,
            host: None,
            proxy: None,
            proxy_children: false,
            backend: mirror_pid,
        },
        Scenario {
            name: "torii-plain".into(),
            about: "generator → torii (route without security) → mirror".into(),
            port: gw_port,
            host: Some(host_of("plain")),
            proxy: Some(gw_pid),
            proxy_children: false,
            backend: mirror_pid,
        },
    ];
    if challenge_ok {
        for (route, about, backend) in [
            (
                "v1",
                "torii with the V1 challenge (state echoed back)",
                challenge_pids.0,
            ),
            (
                "v2",
                "torii with the V2 challenge (signed tokens both ways)",
                challenge_pids.1,
            ),
            (
                "v2-info",
                "torii with V2 and an Otoroshi-Claim info token",
                challenge_pids.1,
            ),
        ] {
            scenarios.push(Scenario {
                name: format!("torii-{route}"),
                about: about.into(),
                port: gw_port,
                host: Some(host_of(route)),
                proxy: Some(gw_pid),
                proxy_children: false,
                backend,
            });
        }
    }
    match find_on_path("nginx") {
        None => {
            skipped.push(Skipped {
                name: "nginx".into(),
                reason: "nginx is not on PATH".into(),
            });
            println!("note: nginx not installed; skipping the nginx scenario");
        }
        Some(nginx) => {
            let port = free_port()?;
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, config::nginx_conf(&dir, port, plain_port))
                .map_err(|e| format!("{}: {e}", conf.display()))?;
            let log = dir.join("nginx.log");
            let mut cmd = Command::new(nginx);
            cmd.arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("nginx-error.log"))
                .arg("-c")
                .arg(&conf);
            let mut g = ProcGuard::spawn("nginx", cmd, &log)?;
            g.wait_ready(loopback(port), START_LIMIT, &log)?;
            scenarios.push(Scenario {
                name: "nginx".into(),
                about: "generator → nginx (2 workers, keep-alive upstream) → mirror".into(),
                port,
                host: None,
                proxy: Some(g.pid()),
                proxy_children: true,
                backend: mirror_pid,
            });
            guards.push(g);
        }
    }

    let mut results = Vec::new();
    let mut driver = String::new();
    for sc in &scenarios {
        for g in guards.iter_mut() {
            g.check_alive()?;
        }
        println!("running {} for {:.0?}...", sc.name, duration);
        let (result, proxy_cpu, backend_cpu) = load(sc, duration, connections)?;
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
        skipped,
    };
    write_reports(&args.out, &report)?;
    drop(guards);
    Ok(report)
}

/// Loads one scenario; returns the run and the CPU seconds the proxy and the backend spent.
fn load(
    sc: &Scenario,
    duration: Duration,
    connections: usize,
) -> Result<(crate::generator::RunResult, Option<f64>, f64), String> {
    let proxy_pids = |p: u32| {
        let mut pids = vec![p];
        if sc.proxy_children {
            pids.extend(children_of(p));
        }
        pids
    };
    let pids = sc.proxy.map(proxy_pids).unwrap_or_default();
    let proxy_before = total_cpu_s(&pids);
    let backend_before = total_cpu_s(&[sc.backend]);
    let options = RunOptions {
        url: format!("http://127.0.0.1:{}/suite?q=1", sc.port),
        tls: crate::tls::TlsOptions::default(),
        request: RequestSpec {
            method: "GET".into(),
            host: sc.host.clone(),
            headers: vec!["Accept: application/json".into()],
            body: Vec::new(),
        },
        connections,
        threads: 1,
        duration,
        max_requests: None,
        rate: None,
        timeout: Duration::from_secs(5),
        checks: Checks {
            status: Some(200),
            ..Checks::default()
        },
        allow_remote: false,
        progress: false,
    };
    let result = crate::generator::run(options)?;
    let proxy_cpu = sc
        .proxy
        .map(|_| (total_cpu_s(&pids) - proxy_before).max(0.0));
    let backend_cpu = (total_cpu_s(&[sc.backend]) - backend_before).max(0.0);
    Ok((result, proxy_cpu, backend_cpu))
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
