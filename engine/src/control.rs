//! The control plane of a running gateway: start-up, signals, reload and drain.
//!
//! Owns the main thread after start: it builds the first snapshot, binds the listeners, starts
//! the workers, then waits for signals (signal-hook, not monoio's ctrl-c helper, which would
//! treat SIGHUP as shutdown). SIGHUP re-reads the config file, builds a new snapshot and stores
//! it with one `ArcSwap::store`; a file that fails keeps the old snapshot and every error is
//! logged with its key path. SIGTERM/SIGINT drain in phases (stop accepting, close idle
//! keep-alives, `Connection: close` on the next responses, wait for in-flight requests up to
//! `drain_timeout`) and return, so the process exits 0. Configuration warnings are logged when
//! a file is loaded (start, and every successful reload). It also owns the metrics registry and
//! the access-log writer (created before the first snapshot), starts the admin listener, and
//! tells systemd where it stands (`sysd::notify`: READY, RELOADING, STOPPING). After a reload
//! it stops the JWKS fetchers of URLs the new configuration no longer names (`jwks::retain`).
//! It starts the active health checker (`health`, the `torii-health` thread) before the
//! workers and stops it at the end of a drain.
//! It starts the `torii-dns` thread (`upstream::resolve_loop`), which re-resolves the targets'
//! names of the snapshot in force, nudges it after a reload and stops it after the drain; and
//! it loads files through `upstream::dns::GatewayEnv`, so that `[dns] servers` answer at load.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::access_log::AccessLogSink;
use crate::config::{self, Config};
use crate::health::HealthChecker;
use crate::metrics::MetricsRegistry;
use crate::quota::sync::SyncHandle;
use crate::quota::QuotaCounters;
use crate::runtime::{bind_listeners, spawn_workers, WorkerMain};
use crate::server::listener::{run_gateway_worker, ListenerKind};
use crate::shared::Shared;
use crate::snapshot::Snapshot;
use crate::upstream::dns::GatewayEnv;
use crate::upstream::registry::UpstreamRegistry;
use crate::upstream::resolve_loop::{self, ResolverHandle, Round, Watched};
use crate::worker::Worker;

/// How long the end of a drain waits for the WebSocket tunnels its workers close at
/// `drain_timeout` (each closes both sockets and writes its access-log line).
pub const TUNNEL_CLOSE_GRACE: Duration = Duration::from_millis(500);

/// A started gateway: its shared state and the addresses it listens on.
#[derive(Debug)]
pub struct Gateway {
    /// State shared with the workers.
    pub shared: Arc<Shared>,
    /// Bound listener addresses (port 0 resolved).
    pub addrs: Vec<std::net::SocketAddr>,
    /// The admin listener's bound address, when `gateway.admin` is set.
    pub admin_addr: Option<std::net::SocketAddr>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// The quota sync with Redis, when `[quotas] redis` is set.
    quota_sync: Option<SyncHandle>,
    /// The active health checker (`torii-health`), always running: a reload may add
    /// `[routes.health_check]` to a route.
    health: HealthChecker,
    /// The `torii-dns` thread (stopped when the gateway is drained or dropped).
    resolver: ResolverHandle,
    /// The loader's environment of reloads (keeps its `[dns] servers` client between loads).
    env: GatewayEnv,
}

/// Builds the snapshot for `config`, binds its listeners and starts its workers.
pub fn start(config: Config) -> Result<Gateway, String> {
    start_capped(config, None)
}

/// [`start`], each worker holding at most `connection_cap` client connections when given (what
/// the open-file limit allows; see [`crate::sysd::check_nofile_limit`]).
pub fn start_capped(config: Config, connection_cap: Option<usize>) -> Result<Gateway, String> {
    let workers = config.gateway.workers;
    let mut addrs = config.gateway.http.clone();
    addrs.extend_from_slice(&config.gateway.https);
    let kinds: Arc<[ListenerKind]> = config
        .gateway
        .http
        .iter()
        .map(|a| ListenerKind::Http(*a))
        .chain(config.gateway.https.iter().map(|a| ListenerKind::Https(*a)))
        .collect();
    let admin = config.gateway.admin;
    let steering = config.gateway.connection_steering;
    let pin = config.gateway.pin_workers;
    let access_target = config.access_log.clone();
    let metrics = Arc::new(MetricsRegistry::new(workers));
    let quotas = QuotaCounters::new();
    let redis = config.quotas.redis.clone();
    let locations = config.locations.clone();
    let upstreams = Arc::new(UpstreamRegistry::new());
    let snapshot = Snapshot::build_with(config, 1, &metrics, &quotas, &upstreams)
        .map_err(|e| e.located(&locations).to_string())?;
    let access_log =
        AccessLogSink::start(access_target).map_err(|e| format!("access log writer: {e}"))?;
    let shared = Shared::new(snapshot, metrics, access_log, quotas, upstreams);
    if let Some(cap) = connection_cap {
        // Before any worker accepts.
        shared.connection_cap.store(cap, Ordering::Relaxed);
    }
    // A Redis that is down is not an error (the counts stay local until it answers); an
    // unresolvable secret or unreadable CA is.
    let quota_sync = match &redis {
        Some(spec) => Some(crate::quota::sync::start(shared.quotas.clone(), spec)?),
        None => None,
    };
    // Before the workers: an endpoint is Unknown (takes traffic) until the checker's verdict.
    let health = HealthChecker::start(shared.snapshot.clone())
        .map_err(|e| format!("health checker thread: {e}"))?;
    let resolver = start_resolver(&shared)?;
    let bound = bind_listeners(&addrs, workers, steering).map_err(|e| e.to_string())?;
    // Bound before the workers start, so `/ready` answers 503 until every worker runs.
    let admin_addr = match admin {
        Some(addr) => Some(
            crate::admin::start(addr, shared.clone())
                .map_err(|e| format!("gateway.admin: {addr}: {e}"))?,
        ),
        None => None,
    };
    let main_shared = shared.clone();
    let main: Arc<WorkerMain> = Arc::new(move |id, driver, listeners| {
        let shared = main_shared.clone();
        let kinds = kinds.clone();
        let _ = shared.workers[id].driver.set(driver);
        Box::pin(async move {
            let worker = Worker::new(id, shared);
            run_gateway_worker(worker, listeners, &kinds).await;
        })
    });
    let handles = spawn_workers("torii-worker", "gateway", bound.per_worker, pin, main)
        .map_err(|e| e.to_string())?;
    for addr in &bound.addrs {
        tracing::info!(%addr, workers, "listening");
    }
    wait_for_workers(&shared, Duration::from_secs(5));
    if let Some(addr) = admin_addr {
        tracing::info!(%addr, "admin endpoint up: /metrics /health /ready");
    }
    Ok(Gateway {
        shared,
        addrs: bound.addrs,
        admin_addr,
        workers: handles,
        quota_sync,
        health,
        resolver,
        env: GatewayEnv::new(),
    })
}

/// Starts the `torii-dns` thread on the routes of the snapshot in force at each of its rounds
/// (its named targets re-resolved; never a worker touched).
fn start_resolver(shared: &Arc<Shared>) -> Result<ResolverHandle, String> {
    let shared = shared.clone();
    resolve_loop::start(move || {
        let snap = shared.snapshot.load();
        Round {
            dns: snap.config.dns.clone(),
            routes: snap
                .routes
                .iter()
                .map(|r| Watched {
                    upstream: r.upstream.clone(),
                    resolve_interval: r.upstream_spec.resolve_interval,
                })
                .collect(),
        }
    })
}

impl Gateway {
    /// Re-reads `path` and swaps the new snapshot in. On failure the old snapshot stays and
    /// every error is logged with its key path. Returns whether the new config is in force.
    pub fn reload(&self, path: &Path) -> bool {
        let current = self.shared.snapshot.load();
        let loaded =
            config::load_file_checked(path, &self.env).map_err(crate::snapshot::every_error);
        let result = loaded.and_then(|mut c| {
            warn_restart_only_changes(&current.config, &c);
            // Worker threads are fixed at start: per-worker state in the new snapshot (counters)
            // must be sized for the workers that actually run.
            c.gateway.workers = current.config.gateway.workers;
            let locations = c.locations.clone();
            Snapshot::build_with(
                c,
                current.version + 1,
                &self.shared.metrics,
                &self.shared.quotas,
                &self.shared.upstreams,
            )
            .map_err(|e| e.located(&locations))
        });
        match result {
            Ok(next) => {
                let version = next.version;
                log_warnings(&next.config);
                // Reopened even when unchanged: `mv access.log access.log.1; kill -HUP` rotates.
                self.shared
                    .access_log
                    .reopen(next.config.access_log.clone());
                let urls: Vec<&config::JwksUrlSpec> = next
                    .config
                    .routes
                    .iter()
                    .filter_map(|r| match r.jwt.as_ref().map(|j| &j.keys) {
                        Some(config::JwtKeysSpec::JwksUrl(u)) => Some(u),
                        _ => None,
                    })
                    .collect();
                crate::jwks::retain(&urls);
                let next = Arc::new(next);
                self.shared.snapshot.store(next.clone());
                // Keys the new config no longer meters are forgotten only now that it is in force.
                self.shared.quotas.install(&next.quotas);
                self.shared.reloads_ok.fetch_add(1, Ordering::Relaxed);
                // New routes' names resolve now, not at the thread's next round.
                self.resolver.nudge();
                tracing::info!(version, "configuration reloaded");
                true
            }
            Err(errors) => {
                self.shared.reloads_failed.fetch_add(1, Ordering::Relaxed);
                log_reload_errors(path, &errors);
                false
            }
        }
    }

    /// Drains: workers stop accepting and close idle connections; responses in flight end
    /// with `Connection: close`; WebSocket tunnels go on until `timeout`, when their workers
    /// close them; returns when no client connection is left or `timeout` passed (and the
    /// tunnels closed at that moment had [`TUNNEL_CLOSE_GRACE`] to write their log lines).
    pub fn drain(self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let _ = self.shared.drain_deadline.set(deadline);
        // The flag first: once systemd hears STOPPING, `/ready` must already answer 503.
        self.shared.draining.store(true, Ordering::SeqCst);
        // Logged once the flag is set, so whoever reads the line finds `/ready` at 503.
        tracing::info!(?timeout, "shutting down: draining");
        crate::sysd::notify("STOPPING=1\nSTATUS=draining");
        while self.shared.active_connections() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let grace = deadline + TUNNEL_CLOSE_GRACE;
        while self.shared.websocket_tunnels() > 0 && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = self.shared.active_connections();
        if left > 0 {
            tracing::warn!(
                connections = left,
                "drain timeout reached; closing remaining connections"
            );
        } else {
            for handle in self.workers {
                let _ = handle.join();
            }
            tracing::info!("drained");
        }
        // Workers hand over their access-log lines after each request once draining started,
        // and when they end; wait for the writer to have written them.
        self.shared.access_log.flush(Duration::from_secs(2));
        // The last interval's calls go to Redis before the process exits.
        if let Some(sync) = self.quota_sync {
            sync.stop();
        }
        self.health.stop();
        self.resolver.stop();
    }
}

/// Waits until every worker has started its runtime, so that readiness (`/ready`, systemd's
/// READY=1) is only announced once requests can be served.
fn wait_for_workers(shared: &Shared, within: Duration) {
    let deadline = Instant::now() + within;
    while !shared.workers.iter().all(|w| w.driver.get().is_some()) {
        if Instant::now() >= deadline {
            tracing::warn!("not every worker started within {within:?}; /ready stays 503");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn warn_restart_only_changes(old: &Config, new: &Config) {
    if old.gateway.http != new.gateway.http || old.gateway.https != new.gateway.https {
        tracing::warn!("listener addresses changed: they apply at the next restart only");
    }
    if old.gateway.workers != new.gateway.workers {
        tracing::warn!("worker count changed: it applies at the next restart only");
    }
    if old.gateway.pin_workers != new.gateway.pin_workers {
        tracing::warn!("worker pinning changed: it applies at the next restart only");
    }
    if old.gateway.connection_steering != new.gateway.connection_steering {
        tracing::warn!("connection steering changed: it applies at the next restart only");
    }
    if old.gateway.admin != new.gateway.admin {
        tracing::warn!("admin address changed: it applies at the next restart only");
    }
    if old.quotas.redis != new.quotas.redis {
        tracing::warn!(
            "quotas.redis, redis_ca, key_prefix or sync_interval changed: they apply at the next restart only"
        );
    }
}

/// Logs each error of a rejected reload as one record: `path` is the configuration file, `key`
/// the key path (absent for file-level problems: unreadable file, TOML syntax) and `error` the
/// message on one line, so that a log pipeline reading line by line keeps the record whole.
fn log_reload_errors(path: &Path, errors: &config::ConfigErrors) {
    let file = path.display();
    for e in errors.errors() {
        let error = config::one_line(&e.message);
        if e.path.is_empty() {
            tracing::error!(path = %file, %error, "reload rejected; keeping the running configuration");
        } else {
            tracing::error!(path = %file, key = %e.path, %error, "reload rejected; keeping the running configuration");
        }
    }
}

/// Logs every warning of `config` (see [`config::warnings()`]) at `warn`, with its key path.
fn log_warnings(config: &Config) {
    for w in config::warnings(config, crate::secure::unix_now()) {
        tracing::warn!(key = %w.path, "{}", w.message);
    }
}

/// `torii run`: loads `path`, serves it, reloads on SIGHUP, drains on SIGTERM/SIGINT. A file
/// that does not load is refused with every error of it and of the files it names.
pub fn run(path: PathBuf) -> Result<(), String> {
    let config = config::load_file_checked(&path, &GatewayEnv::new())
        .map_err(|r| crate::snapshot::every_error(r).to_string())?;
    tracing::info!(summary = %config.summary(), "configuration loaded");
    log_warnings(&config);
    serve(config, Some(path), |_| {})
}

/// Serves `config` until SIGTERM/SIGINT (then drains). SIGHUP re-reads `reload_from` when
/// given; without a file (the demo) it is logged and ignored. `on_ready` runs once the
/// listeners are bound, with their addresses.
pub fn serve(
    config: Config,
    reload_from: Option<PathBuf>,
    on_ready: impl FnOnce(&[std::net::SocketAddr]),
) -> Result<(), String> {
    // Signals are registered before any worker starts, so none is lost or left to the default
    // action (which for SIGHUP would kill the process).
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).map_err(|e| format!("signals: {e}"))?;
    let connection_cap = crate::sysd::check_nofile_limit(&config);
    let gateway = start_capped(config, connection_cap)?;
    on_ready(&gateway.addrs);
    crate::sysd::notify("READY=1\nSTATUS=serving");
    for sig in signals.forever() {
        match sig {
            SIGHUP => match &reload_from {
                Some(path) => {
                    tracing::info!(path = %path.display(), "SIGHUP: reloading");
                    crate::sysd::notify_reloading();
                    let ok = gateway.reload(path);
                    let version = gateway.shared.snapshot.load().version;
                    crate::sysd::notify(&format!(
                        "READY=1\nSTATUS=serving config version {version}{}",
                        if ok { "" } else { " (last reload rejected)" }
                    ));
                }
                None => tracing::info!("SIGHUP: the configuration is embedded; nothing to reload"),
            },
            _ => {
                let timeout = gateway.shared.snapshot.load().config.gateway.drain_timeout;
                gateway.drain(timeout);
                return Ok(());
            }
        }
    }
    Ok(())
}
