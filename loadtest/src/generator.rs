//! A whole generator run: resolve and render once, start the worker threads (each its own
//! monoio runtime running its share of the connections), print progress once per second on
//! stderr, join, and merge the per-thread measurements into a [`RunResult`].
//!
//! Owns thread lifecycle and timing of the run. It prints nothing but the progress line; the
//! report is [`crate::report`].

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{run_connection, Budget, ConnCtx};
use crate::cpu::CpuTime;
use crate::response::Checks;
use crate::schedule::Schedule;
use crate::stats::{Progress, Stats};
use crate::target::{parse_url, render_request, resolve, tls_server_name, RequestSpec};
use crate::tls::{TlsClient, TlsOptions};
use torii_engine::runtime::AnyRuntime;

/// How long a run may last when only `-n` bounds it.
pub const MAX_RUN: Duration = Duration::from_secs(3600);
/// Extra time the coordinator waits for threads after the deadline plus one request timeout.
const JOIN_GRACE: Duration = Duration::from_secs(5);
/// Coordinator tick: how often it checks the threads (progress prints every 10 ticks).
const TICK: Duration = Duration::from_millis(100);

/// Everything a run needs, as parsed from the command line (or built by the suite).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `http[s]://host:port/path?query`.
    pub url: String,
    /// Trust settings for `https://` targets.
    pub tls: TlsOptions,
    /// What to send.
    pub request: RequestSpec,
    /// Open connections (at least `threads`).
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Stop starting requests after this long.
    pub duration: Duration,
    /// Stop after this many request attempts.
    pub max_requests: Option<u64>,
    /// Open loop at this many requests per second; closed loop when absent.
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Per-response checks.
    pub checks: Checks,
    /// Allow non-loopback targets.
    pub allow_remote: bool,
    /// Print the progress line on stderr once per second.
    pub progress: bool,
}

/// The merged outcome of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The options the run used.
    pub options: RunOptions,
    /// Merged measurements of every thread.
    pub stats: Stats,
    /// Wall time from the first connection to the last response.
    pub elapsed: Duration,
    /// The generator process's CPU time during the run.
    pub cpu: CpuTime,
    /// `io_uring` or `epoll`.
    pub driver: &'static str,
    /// `https://` runs: handshakes that verified a certificate (not resumed).
    pub tls_full_handshakes: Option<u64>,
}

/// Runs the generator. Fails before sending anything when the URL, headers or target are not
/// acceptable (including the loopback rule), or when a thread cannot build a runtime.
pub fn run(options: RunOptions) -> Result<RunResult, String> {
    let url = parse_url(&options.url).map_err(|e| e.to_string())?;
    let addr = resolve(&url, options.allow_remote).map_err(|e| e.to_string())?;
    let request = render_request(&url, &options.request).map_err(|e| e.to_string())?;
    let tls = if url.tls {
        let name = tls_server_name(&url, options.request.host.as_deref());
        Some(TlsClient::new(&options.tls, &name)?)
    } else {
        None
    };
    let threads = options.threads.max(1);
    let connections = options.connections.max(threads);
    let head_request = options.request.method.eq_ignore_ascii_case("HEAD");
    let budget = options.max_requests.map(|n| Arc::new(Budget::new(n)));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = CpuTime::now_self();
    let start = Instant::now();
    let deadline = start + options.duration.min(MAX_RUN);
    let mut handles: Vec<JoinHandle<Result<(Stats, &'static str), String>>> = Vec::new();
    let mut progress: Vec<Arc<Progress>> = Vec::new();
    for t in 0..threads {
        // Connections spread evenly: the first `connections % threads` threads get one more.
        let share = connections / threads + usize::from(t < connections % threads);
        let first_index = t * (connections / threads) + t.min(connections % threads);
        let prog = Arc::new(Progress::default());
        progress.push(prog.clone());
        let (request, tls, checks, budget, thread_stop) = (
            request.clone(),
            tls.clone(),
            options.checks.clone(),
            budget.clone(),
            stop.clone(),
        );
        let (timeout, rate) = (options.timeout, options.rate);
        let spawned = std::thread::Builder::new()
            .name(format!("loadtest-{t}"))
            .spawn(move || {
                let mut rt = AnyRuntime::build().map_err(|e| format!("runtime: {e}"))?;
                let driver = rt.driver_name();
                let stats = Rc::new(RefCell::new(Stats::new()));
                let ctx = Rc::new(ConnCtx {
                    addr,
                    tls,
                    request,
                    head_request,
                    checks,
                    timeout,
                    deadline,
                    budget,
                    stop: thread_stop,
                    stats: stats.clone(),
                    progress: prog,
                });
                rt.block_on(async move {
                    let mut tasks = Vec::with_capacity(share);
                    for i in 0..share {
                        let schedule =
                            rate.map(|r| Schedule::new(start, r, first_index + i, connections));
                        tasks.push(monoio::spawn(run_connection(ctx.clone(), schedule)));
                    }
                    for task in tasks {
                        task.await;
                    }
                });
                let merged = stats.borrow().clone();
                Ok((merged, driver))
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(format!("cannot start thread {t}: {e}"));
            }
        }
    }
    watch(
        &handles,
        &progress,
        &stop,
        start,
        deadline + options.timeout + JOIN_GRACE,
        options.progress,
    );
    let mut stats = Stats::new();
    let mut driver = "epoll";
    let mut last_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok((s, d))) => {
                stats.merge(&s)?;
                driver = d;
            }
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => last_error = Some("a generator thread panicked".to_string()),
        }
    }
    let elapsed = start.elapsed();
    let cpu = CpuTime::now_self().since(&cpu_before);
    if let Some(e) = last_error {
        return Err(e);
    }
    Ok(RunResult {
        options,
        stats,
        elapsed,
        cpu,
        driver,
        tls_full_handshakes: tls.as_ref().map(TlsClient::full_handshakes),
    })
}

/// Waits for the threads, printing the progress line once per second; raises `stop` and
/// returns at `hard_deadline` whatever the threads do (they then finish within one timeout).
fn watch(
    handles: &[JoinHandle<Result<(Stats, &'static str), String>>],
    progress: &[Arc<Progress>],
    stop: &AtomicBool,
    start: Instant,
    hard_deadline: Instant,
    print: bool,
) {
    let max_ticks =
        hard_deadline.saturating_duration_since(start).as_millis() / TICK.as_millis() + 1;
    let mut last = (0u64, start);
    for tick in 1..=max_ticks {
        if handles.iter().all(|h| h.is_finished()) || Instant::now() >= hard_deadline {
            break;
        }
        std::thread::sleep(TICK);
        if print && tick % 10 == 0 {
            let responses: u64 = progress
                .iter()
                .map(|p| p.responses.load(Ordering::Relaxed))
                .sum();
            let errors: u64 = progress
                .iter()
                .map(|p| p.errors.load(Ordering::Relaxed))
                .sum();
            let now = Instant::now();
            let rate =
                (responses - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-9);
            last = (responses, now);
            let mut err = std::io::stderr().lock();
            // The progress line is best effort: a closed stderr must not stop the run.
            let _ = writeln!(
                err,
                "[{:>5.1}s] requests {responses:>10}  req/s {rate:>10.0}  errors {errors}",
                now.duration_since(start).as_secs_f64()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
}
