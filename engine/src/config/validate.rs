//! `RawConfig → Config`: every check of the file, collecting every error with its key path.
//!
//! This file owns the top level (`[gateway]`, `[limits]`, `[access_log]`) and calls the section
//! validators below it: `validate_route` (domains, paths, targets and the checks across routes),
//! `validate_security` (a route's challenge and info token), `validate_tls`, `validate_jwt`,
//! `auth`, `quotas` and `dns` (read first: target names go to its servers). Nothing here
//! resolves secrets or reads key files; the outside calls are the injected environment lookups
//! of [`LoadEnv`] (variables, names, and whether the access log's file can be opened), and the
//! CPUs the process may use for `workers = "auto"` (`available_parallelism`, `cpus::allowed_cpus`).

use std::net::SocketAddr;
use std::path::Path;

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::duration;
use super::raw::{RawConfig, RawGateway, RawLimits, RawUnderscores, RawWorkers};
use super::validate_route::routes;
use super::{
    defaults, Config, ConfigErrors, ConnectionSteering, GatewayConfig, Limits, LoadEnv,
    UnderscoreHeaders,
};

/// Largest accepted `max_header_bytes` / `max_request_line_bytes` (1 MiB).
const MAX_HEAD_BYTES: u64 = 1 << 20;
/// Largest accepted `max_headers`.
const MAX_HEADER_COUNT: u64 = 1024;
/// Largest accepted `limits.verified_token_cache` (about 1 KiB each: 1 GiB per worker).
const MAX_TOKEN_CACHE: u64 = 1 << 20;
/// Largest accepted `max_connections_per_worker`.
const MAX_CONNECTIONS: u64 = 1_000_000;
/// Largest accepted `max_websocket_tunnels_per_worker` (a tunnel is also a connection).
const MAX_WEBSOCKET_TUNNELS: u64 = MAX_CONNECTIONS;

/// Validates a parsed file. `base_dir` anchors relative paths; `env` answers variable lookups and
/// name resolution. On errors, the configuration as far as it validated comes with them.
pub(crate) fn validate(
    raw: &RawConfig,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Result<Config, (ConfigErrors, Box<Config>)> {
    let mut c = Collector::default();
    let mut gateway = gateway(&mut c, &raw.gateway);
    let limits = limits(&mut c, &raw.limits);
    let certificates = super::validate_tls::certificates(&mut c, &raw.certificates, base_dir);
    if !gateway.https.is_empty() && raw.certificates.is_empty() {
        c.push(
            "gateway.https",
            "https listeners need at least one [[certificates]] entry (a cert and key file pair)",
        );
    }
    gateway.client_auth = raw
        .gateway
        .client_auth
        .as_ref()
        .and_then(|ca| super::validate_tls::client_auth(&mut c, ca, &gateway.https, base_dir));
    // Target names go to the `[dns]` servers when set (`ServersEnv`), else as before.
    let dns = super::dns::dns(&mut c, raw.dns.as_ref());
    let named = super::dns::ServersEnv::new(env, &dns);
    let routes = routes(&mut c, &raw.routes, &limits, base_dir, &named);
    super::validate_jwt::shared_jwks_urls(&mut c, &routes);
    let access_log = raw
        .access_log
        .as_ref()
        .and_then(|a| access_log(&mut c, a, base_dir, env));
    let auth = super::auth::auth(&mut c, raw, &routes, base_dir, env);
    let quotas = super::quotas::quotas(&mut c, raw.quotas.as_ref(), base_dir, env);
    let warnings = c.take_warnings();
    c.finish_partial(Config {
        gateway,
        limits,
        routes,
        auth,
        certificates,
        source: None,
        access_log,
        locations: Default::default(),
        warnings,
        quotas,
        dns,
    })
    .map_err(|(errors, partial)| (errors, Box::new(partial)))
}

/// `[access_log]`. A file path must be one this process can append to (`env.appendable`: its
/// directory exists and is writable, or the file is), so that `torii check`, a start and a
/// reload refuse what the writer thread could not open: without systemd's `LogsDirectory=`
/// nothing creates `/var/log/torii`, and the writer would discard every line.
fn access_log(
    c: &mut Collector,
    raw: &super::raw::RawAccessLog,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Option<super::AccessLogTarget> {
    if let Some(f) = raw.format.as_deref() {
        if f != "json" {
            c.push("access_log.format", "must be \"json\"");
        }
    }
    match raw.path.as_deref() {
        None | Some("") => {
            c.push("access_log.path", "required: a file path or \"stdout\"");
            None
        }
        Some("stdout") => Some(super::AccessLogTarget::Stdout),
        Some(p) => {
            let path = base_dir.join(p);
            match env.appendable(&path) {
                Ok(()) => Some(super::AccessLogTarget::File(path)),
                Err(why) => {
                    let shown = path.display();
                    c.push(
                        "access_log.path",
                        format!("cannot append to {shown}: {why}"),
                    );
                    None
                }
            }
        }
    }
}

/// An optional positive integer no larger than `max`, or its default.
fn bounded(
    c: &mut Collector,
    path: &str,
    raw: Option<i64>,
    default: u64,
    min: u64,
    max: u64,
) -> u64 {
    let Some(v) = raw else { return default };
    match u64::try_from(v) {
        Ok(v) if v >= min && v <= max => v,
        Ok(0) | Err(_) if min > 0 => {
            c.push(path, "must be greater than zero");
            default
        }
        _ => {
            c.push(path, format!("must be between {min} and {max}"));
            default
        }
    }
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn socket_addr(c: &mut Collector, path: &str, s: &str) -> Option<SocketAddr> {
    let r = s.parse::<SocketAddr>().map_err(|_| {
        format!(
            "invalid address {s:?}: expected IP:port, such as \"127.0.0.1:8080\" or \"[::1]:8080\""
        )
    });
    c.check(path, r)
}

fn gateway(c: &mut Collector, raw: &RawGateway) -> GatewayConfig {
    let max = defaults::MAX_WORKERS;
    let workers = match &raw.workers {
        None => auto_workers(),
        Some(RawWorkers::Text(t)) if t == "auto" => auto_workers(),
        Some(RawWorkers::Count(n)) if (1..=max as i64).contains(n) => to_usize(*n as u64),
        Some(_) => {
            c.push(
                "gateway.workers",
                format!("must be \"auto\" or an integer from 1 to {max}"),
            );
            1
        }
    };
    let mut seen: Vec<(SocketAddr, String)> = Vec::new();
    let mut listener = |c: &mut Collector, path: String, s: &str| -> Option<SocketAddr> {
        let addr = socket_addr(c, &path, s)?;
        // Port 0 asks the kernel for a free port: two of them never collide.
        let taken = seen.iter().find(|(a, _)| *a == addr && addr.port() != 0);
        if let Some((_, first)) = taken {
            c.push(path, format!("address {addr} is already used by {first}"));
            return None;
        }
        seen.push((addr, path));
        Some(addr)
    };
    let http: Vec<SocketAddr> = raw
        .http
        .iter()
        .enumerate()
        .filter_map(|(i, s)| listener(c, index("gateway.http", i), s))
        .collect();
    let https: Vec<SocketAddr> = raw
        .https
        .iter()
        .enumerate()
        .filter_map(|(i, s)| listener(c, index("gateway.https", i), s))
        .collect();
    if raw.http.is_empty() && raw.https.is_empty() {
        c.push(
            "gateway.http",
            "at least one http or https listener is required",
        );
    }
    let admin = raw
        .admin
        .as_deref()
        .and_then(|s| listener(c, "gateway.admin".to_owned(), s));
    let underscores_in_headers = underscores(c, raw.underscores_in_headers.as_ref(), &http, &https);
    GatewayConfig {
        workers,
        http,
        https,
        client_auth: None,
        admin,
        drain_timeout: duration(
            c,
            "gateway.drain_timeout",
            &raw.drain_timeout,
            defaults::DRAIN_TIMEOUT,
            Zero::Allowed,
        ),
        insecure_allow_weak_keys: raw.insecure_allow_weak_keys.unwrap_or(false),
        max_connections_per_worker: to_usize(bounded(
            c,
            "gateway.max_connections_per_worker",
            raw.max_connections_per_worker,
            defaults::MAX_CONNECTIONS_PER_WORKER as u64,
            1,
            MAX_CONNECTIONS,
        )),
        connection_steering: steering(
            c,
            raw.connection_steering.as_deref(),
            workers,
            raw.pin_workers.unwrap_or(true),
        ),
        pin_workers: raw.pin_workers.unwrap_or(true),
        underscores_in_headers,
        http2: raw.http2.unwrap_or(true),
        h2c: raw.h2c.unwrap_or(false),
    }
}

/// `gateway.underscores_in_headers`: listed addresses must be configured listeners.
fn underscores(
    c: &mut Collector,
    raw: Option<&RawUnderscores>,
    http: &[SocketAddr],
    https: &[SocketAddr],
) -> UnderscoreHeaders {
    let list = match raw {
        None | Some(RawUnderscores::All(false)) => return UnderscoreHeaders::Drop,
        Some(RawUnderscores::All(true)) => return UnderscoreHeaders::Pass,
        Some(RawUnderscores::Listeners(list)) => list,
        Some(RawUnderscores::Text(t)) => {
            c.push(
                "gateway.underscores_in_headers",
                format!("{t:?}: expected true, false, or a list of listener addresses"),
            );
            return UnderscoreHeaders::Drop;
        }
    };
    let mut addrs = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let path = index("gateway.underscores_in_headers", i);
        match s.parse::<SocketAddr>() {
            Ok(a) if http.contains(&a) || https.contains(&a) => addrs.push(a),
            Ok(_) => c.push(
                path,
                format!("{s:?} is not a gateway.http or gateway.https listener"),
            ),
            Err(_) => c.push(path, format!("{s:?} is not a listener address (ip:port)")),
        }
    }
    UnderscoreHeaders::PassOn(addrs)
}

/// `gateway.connection_steering`. With `"cpu"` a connection goes to the worker pinned to the
/// CPU that received it (worker *i* on the *i*-th CPU the process may use), so workers past the
/// number of allowed CPUs would never get one, and without pinning no worker is on any CPU in
/// particular: both refused rather than left to misbehave.
fn steering(c: &mut Collector, raw: Option<&str>, workers: usize, pin: bool) -> ConnectionSteering {
    const PATH: &str = "gateway.connection_steering";
    match raw {
        None | Some("hash") => ConnectionSteering::Hash,
        Some("cpu") => {
            let cpus = crate::cpus::allowed_cpus().len();
            if workers > cpus {
                c.push(
                    PATH,
                    format!(
                        "\"cpu\" needs at most one worker per CPU the process may use ({cpus} here): workers {cpus} to {} would get no connections",
                        workers - 1
                    ),
                );
            }
            if !pin {
                c.push(
                    PATH,
                    "\"cpu\" hands a connection to the worker pinned to the CPU that received it, and gateway.pin_workers = false pins none",
                );
            }
            ConnectionSteering::Cpu
        }
        Some(other) => {
            c.push(PATH, format!("expected \"hash\" or \"cpu\", got {other:?}"));
            ConnectionSteering::Hash
        }
    }
}

fn auto_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(defaults::MAX_WORKERS)
}

fn limits(c: &mut Collector, raw: &RawLimits) -> Limits {
    let d = Limits::default();
    let p = |k: &str| join("limits", k);
    let nz = Zero::Rejected;
    Limits {
        max_header_bytes: to_usize(bounded(
            c,
            &p("max_header_bytes"),
            raw.max_header_bytes,
            d.max_header_bytes as u64,
            1,
            MAX_HEAD_BYTES,
        )),
        max_headers: to_usize(bounded(
            c,
            &p("max_headers"),
            raw.max_headers,
            d.max_headers as u64,
            1,
            MAX_HEADER_COUNT,
        )),
        max_request_line_bytes: to_usize(bounded(
            c,
            &p("max_request_line_bytes"),
            raw.max_request_line_bytes,
            d.max_request_line_bytes as u64,
            1,
            MAX_HEAD_BYTES,
        )),
        max_body_bytes: bounded(
            c,
            &p("max_body_bytes"),
            raw.max_body_bytes,
            d.max_body_bytes,
            1,
            i64::MAX as u64,
        ),
        client_header_timeout: duration(
            c,
            &p("client_header_timeout"),
            &raw.client_header_timeout,
            d.client_header_timeout,
            nz,
        ),
        keepalive_timeout: duration(
            c,
            &p("keepalive_timeout"),
            &raw.keepalive_timeout,
            d.keepalive_timeout,
            nz,
        ),
        upstream_connect_timeout: duration(
            c,
            &p("upstream_connect_timeout"),
            &raw.upstream_connect_timeout,
            d.upstream_connect_timeout,
            nz,
        ),
        upstream_timeout: duration(
            c,
            &p("upstream_timeout"),
            &raw.upstream_timeout,
            d.upstream_timeout,
            nz,
        ),
        body_idle_timeout: duration(
            c,
            &p("body_idle_timeout"),
            &raw.body_idle_timeout,
            d.body_idle_timeout,
            nz,
        ),
        body_min_rate: bounded(
            c,
            &p("body_min_rate"),
            raw.body_min_rate,
            d.body_min_rate,
            0,
            i64::MAX as u64,
        ),
        body_min_rate_grace: duration(
            c,
            &p("body_min_rate_grace"),
            &raw.body_min_rate_grace,
            d.body_min_rate_grace,
            Zero::Allowed,
        ),
        response_min_rate: bounded(
            c,
            &p("response_min_rate"),
            raw.response_min_rate,
            d.response_min_rate,
            0,
            i64::MAX as u64,
        ),
        response_min_rate_grace: duration(
            c,
            &p("response_min_rate_grace"),
            &raw.response_min_rate_grace,
            d.response_min_rate_grace,
            Zero::Allowed,
        ),
        tls_handshake_timeout: duration(
            c,
            &p("tls_handshake_timeout"),
            &raw.tls_handshake_timeout,
            d.tls_handshake_timeout,
            nz,
        ),
        verified_token_cache: to_usize(bounded(
            c,
            &p("verified_token_cache"),
            raw.verified_token_cache,
            d.verified_token_cache as u64,
            0,
            MAX_TOKEN_CACHE,
        )),
        websocket_idle_timeout: duration(
            c,
            &p("websocket_idle_timeout"),
            &raw.websocket_idle_timeout,
            d.websocket_idle_timeout,
            nz,
        ),
        websocket_max_lifetime: duration(
            c,
            &p("websocket_max_lifetime"),
            &raw.websocket_max_lifetime,
            d.websocket_max_lifetime,
            Zero::Allowed,
        ),
        max_websocket_tunnels_per_worker: to_usize(bounded(
            c,
            &p("max_websocket_tunnels_per_worker"),
            raw.max_websocket_tunnels_per_worker,
            d.max_websocket_tunnels_per_worker as u64,
            0,
            MAX_WEBSOCKET_TUNNELS,
        )),
        h2_max_concurrent_streams: u32::try_from(bounded(
            c,
            &p("h2_max_concurrent_streams"),
            raw.h2_max_concurrent_streams,
            u64::from(d.h2_max_concurrent_streams),
            1,
            u64::from(defaults::MAX_H2_CONCURRENT_STREAMS),
        ))
        .unwrap_or(defaults::H2_MAX_CONCURRENT_STREAMS),
    }
}
