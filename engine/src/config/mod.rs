//! Torii's configuration: the TOML file of docs/configuration.md, read in two levels.
//!
//! [`raw::RawConfig`] is what serde reads (`deny_unknown_fields` everywhere), through `parse`,
//! which reports every unknown key and wrong type of a file at once; `validate` turns it into the
//! typed [`Config`] below, collecting every error with its key path (placed at its line and
//! column by `location`); [`warnings()`] lists what loads but would fail at request time. All
//! slow and fallible work of loading happens here, once per load (including blocking DNS for
//! targets, through the `[dns]` servers when set), never per request. This module does not
//! resolve secrets or read key files: [`AlgoSpec`] keeps them unresolved for the snapshot
//! builder. Defaults live in [`defaults`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod auth;
mod dns;
mod duration;
mod error;
mod fields;
mod load_env;
mod location;
mod log_file;
mod parse;
mod quotas;
pub mod raw;
mod raw_rules;
mod raw_upstream;
mod route_spec;
mod rules_spec;
pub mod schema;
mod secret;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_jwt;
#[cfg(test)]
mod tests_quotas;
#[cfg(test)]
mod tests_routes;
#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_rules_headers;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod tests_upstream;
#[cfg(test)]
mod tests_upstream_checks;
#[cfg(test)]
mod tests_warnings;
mod upstream_spec;
mod validate;
mod validate_cors;
mod validate_header_ops;
mod validate_health;
mod validate_jwt;
mod validate_route;
mod validate_rule_values;
mod validate_rules;
mod validate_security;
mod validate_target;
mod validate_tls;
mod validate_upstream;
mod warnings;

pub use auth::{
    parse_rfc3339, ApiKeySpec, AuthSpec, ClientCredentialsSpec, KeyPairSpec, RouteApiKeysSpec,
};
pub use dns::{dns_defaults, DnsSpec, Resolved};
pub use duration::{format_duration, parse_duration, RawDuration, Zero, MAX_DURATION};
pub use error::{io_reason, one_line, ConfigError, ConfigErrors, ConfigWarning};
pub use load_env::{LoadEnv, MapEnv, SystemEnv};
pub use location::KeyLocations;
pub use quotas::{OnRedisError, QuotasSpec, RateLimitSpec, RedisSpec, MAX_PER_IP, MAX_QUOTA};
pub use route_spec::{
    AlgoSpec, ChallengeSpec, ChallengeVersion, InfoTokenSpec, InfoTokenVersion, PathNormalization,
    RouteConfig, Scheme, TargetConfig,
};
pub use rules_spec::{
    CorsSpec, HeaderRulesSpec, IpNet, OriginRule, RedirectSpec, RewritePart, RewriteSpec,
    RouteRules, Template, TemplatePart, Var,
};
pub use secret::{RawSecret, SecretRef};
pub use upstream_spec::{
    upstream_defaults, HashOn, HealthCheckSpec, LoadBalancing, OutlierSpec, RetryCondition,
    RetrySpec, StatusRange, TargetProtocol, UpstreamSpec, UpstreamTimeouts,
};
pub use validate_jwt::{JwksUrlSpec, JwtForward, JwtKeysSpec, JwtSourceSpec, JwtSpec};
pub use validate_tls::{CertificateSpec, ClientAuthSpec, UpstreamTlsSpec};
pub use warnings::warnings;

/// Every default value of the file, in one place (documented in `docs/configuration.md`).
pub mod defaults {
    use std::time::Duration;

    /// `gateway.drain_timeout`.
    pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
    /// `gateway.max_connections_per_worker`.
    pub const MAX_CONNECTIONS_PER_WORKER: usize = 10_000;
    /// Upper bound of `gateway.workers`.
    pub const MAX_WORKERS: usize = 1024;
    /// `limits.max_header_bytes`.
    pub const MAX_HEADER_BYTES: usize = 16_384;
    /// `limits.max_headers`.
    pub const MAX_HEADERS: usize = 100;
    /// `limits.max_request_line_bytes`.
    pub const MAX_REQUEST_LINE_BYTES: usize = 8_192;
    /// `limits.max_body_bytes` (10 MiB).
    pub const MAX_BODY_BYTES: u64 = 10_485_760;
    /// `limits.client_header_timeout`.
    pub const CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// `limits.keepalive_timeout`.
    pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `limits.upstream_connect_timeout`.
    pub const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// `limits.upstream_timeout`.
    pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
    /// `limits.body_idle_timeout`.
    pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `limits.body_min_rate`, bytes per second.
    pub const BODY_MIN_RATE: u64 = 1_024;
    /// `limits.body_min_rate_grace`.
    pub const BODY_MIN_RATE_GRACE: Duration = Duration::from_secs(5);
    /// `limits.response_min_rate`, bytes per second.
    pub const RESPONSE_MIN_RATE: u64 = 1_024;
    /// `limits.response_min_rate_grace`.
    pub const RESPONSE_MIN_RATE_GRACE: Duration = Duration::from_secs(5);
    /// `limits.tls_handshake_timeout`.
    pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// `limits.verified_token_cache`: verified tokens kept per worker.
    pub const VERIFIED_TOKEN_CACHE: usize = 4096;
    /// `limits.websocket_idle_timeout`.
    pub const WEBSOCKET_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// `limits.websocket_max_lifetime`: off.
    pub const WEBSOCKET_MAX_LIFETIME: Duration = Duration::ZERO;
    /// `limits.max_websocket_tunnels_per_worker`.
    pub const MAX_WEBSOCKET_TUNNELS_PER_WORKER: usize = 10_000;
    /// `limits.h2_max_concurrent_streams` (nginx's `http2_max_concurrent_streams` default
    /// too).
    pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
    /// Upper bound of `limits.h2_max_concurrent_streams`.
    pub const MAX_H2_CONCURRENT_STREAMS: u32 = 10_000;
    /// `routes.jwt.leeway`.
    pub const JWT_LEEWAY: Duration = Duration::from_secs(10);
    /// `routes.jwt.jwks_refresh_min`: the shortest time between two fetches of a `jwks_url`,
    /// including those a token with an unknown `kid` asks for.
    pub const JWKS_REFRESH_MIN: Duration = Duration::from_secs(30);
    /// `routes.jwt.jwks_refresh_max`: a fetched set is fetched again at least this often
    /// (Envoy's `jwt_authn` caches a remote JWKS for 10 minutes by default).
    pub const JWKS_REFRESH_MAX: Duration = Duration::from_secs(600);
    /// Smallest accepted `routes.jwt.jwks_refresh_min`.
    pub const JWKS_REFRESH_FLOOR: Duration = Duration::from_secs(1);
    /// `routes.paths`.
    pub const ROUTE_PATH: &str = "/";
    /// `routes.challenge.ttl` and `routes.info_token.ttl`.
    pub const TOKEN_TTL: Duration = Duration::from_secs(30);
    /// `routes.challenge.leeway`.
    pub const CHALLENGE_LEEWAY: Duration = Duration::from_secs(10);
    /// `routes.challenge.request_header`.
    pub const CHALLENGE_REQUEST_HEADER: &str = "Otoroshi-State";
    /// `routes.challenge.response_header`.
    pub const CHALLENGE_RESPONSE_HEADER: &str = "Otoroshi-State-Resp";
    /// `routes.info_token.header`.
    pub const INFO_TOKEN_HEADER: &str = "Otoroshi-Claim";
    /// `algorithm` everywhere.
    pub const ALGORITHM: &str = "HS512";
    /// Largest configuration file read, bytes.
    pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
}

/// The validated configuration. Built once per load; immutable afterwards.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[gateway]`.
    pub gateway: GatewayConfig,
    /// `[limits]`.
    pub limits: Limits,
    /// `[[routes]]`, in file order (route indexes of [`crate::routing::RouteTable`] point here).
    pub routes: Vec<RouteConfig>,
    /// `[[apikeys]]`, `[[key_pairs]]`, `[client_credentials]`.
    pub auth: AuthSpec,
    /// `[[certificates]]`, in file order (the first is the default).
    pub certificates: Vec<CertificateSpec>,
    /// The file it was read from (`None` for [`load_str`]).
    pub source: Option<PathBuf>,
    /// `[access_log]`: where request lines go; `None` = off.
    pub access_log: Option<AccessLogTarget>,
    /// Where each key is written in the file, for errors found after loading (key files read
    /// by the snapshot) and for warnings.
    pub locations: std::sync::Arc<KeyLocations>,
    /// Warnings about single keys found while validating (all warnings: [`warnings()`]).
    pub warnings: Vec<ConfigWarning>,
    /// `[quotas]`: the throttling window and the shared store (defaults when absent).
    pub quotas: QuotasSpec,
    /// `[dns]`: the servers that resolve target names (the system configuration when absent).
    pub dns: DnsSpec,
}

/// Where the access log is written (`[access_log] path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// `path = "stdout"`: the process's standard output (journald under systemd).
    Stdout,
    /// A file, opened in append mode (relative paths are relative to the config file).
    File(PathBuf),
}

/// `[gateway]`. Listeners, `workers` and `admin` take a restart to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Worker threads (`"auto"` resolved to the CPUs the process may use: its affinity mask,
    /// lowered by a cgroup CPU quota).
    pub workers: usize,
    /// Plain HTTP listeners.
    pub http: Vec<SocketAddr>,
    /// TLS listeners.
    pub https: Vec<SocketAddr>,
    /// Client-certificate authentication on https listeners, when set.
    pub client_auth: Option<ClientAuthSpec>,
    /// Admin listener.
    pub admin: Option<SocketAddr>,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Accept HMAC secrets shorter than 32 bytes.
    pub insecure_allow_weak_keys: bool,
    /// Connections a worker holds at most; it stops accepting beyond.
    pub max_connections_per_worker: usize,
    /// How the kernel spreads new connections over the workers' listeners.
    pub connection_steering: ConnectionSteering,
    /// Pin worker *i* to the *i*-th CPU the process may use (`crate::cpus`).
    pub pin_workers: bool,
    /// Which listeners forward request header names containing `_`.
    pub underscores_in_headers: UnderscoreHeaders,
    /// `gateway.http2`: ALPN offers `h2` before `http/1.1` on https listeners.
    pub http2: bool,
    /// `gateway.h2c`: plain listeners accept HTTP/2 with prior knowledge.
    pub h2c: bool,
}

/// `gateway.underscores_in_headers`: whether request header names with `_` reach backends.
///
/// CGI, WSGI, PHP and Rack map `X_Forwarded_For` and `X-Forwarded-For` to the same variable,
/// so a client could make a backend see a forwarding or security header that Torii never
/// checked. Default: dropped (nginx's `underscores_in_headers off`). A name that reads as a
/// header Torii sets or removes (`X_Forwarded_For`, `Otoroshi_Claim`, a route's own security
/// header names) is dropped whatever this says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnderscoreHeaders {
    /// Dropped on every listener (the default), each one counted.
    #[default]
    Drop,
    /// Forwarded on every listener.
    Pass,
    /// Forwarded on these listeners (configured addresses), dropped on the others.
    PassOn(Vec<SocketAddr>),
}

impl UnderscoreHeaders {
    /// Whether connections accepted on `listener` (its configured address) forward them.
    pub fn allows(&self, listener: SocketAddr) -> bool {
        match self {
            UnderscoreHeaders::Drop => false,
            UnderscoreHeaders::Pass => true,
            UnderscoreHeaders::PassOn(list) => list.contains(&listener),
        }
    }
}

/// `gateway.connection_steering`: which worker's listener gets a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionSteering {
    /// The kernel's `SO_REUSEPORT` hash of the connection's addresses (the default): even
    /// whatever CPU receives the packets.
    #[default]
    Hash,
    /// The worker pinned to the CPU that processed the connection's first packet (a
    /// `SO_ATTACH_REUSEPORT_CBPF` program; worker *i* is on the *i*-th allowed CPU): a
    /// connection stays on the core that receives its packets. Only for hosts whose NIC spreads flows over the cores (RSS or RPS) or whose
    /// clients are local; with one receive queue every connection would go to one worker.
    Cpu,
}

/// `[limits]`: what a client or upstream may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Request head cap (request line + headers), bytes → 431.
    pub max_header_bytes: usize,
    /// Header count cap → 431.
    pub max_headers: usize,
    /// Request line cap, bytes → 414.
    pub max_request_line_bytes: usize,
    /// Request body cap, bytes → 413.
    pub max_body_bytes: u64,
    /// Deadline for a complete request head, from its first byte or the connection → 408.
    pub client_header_timeout: Duration,
    /// Idle deadline between requests on a kept-alive connection.
    pub keepalive_timeout: Duration,
    /// Upstream TCP connect deadline → 504.
    pub upstream_connect_timeout: Duration,
    /// Deadline for the upstream response head once the request is sent → 504.
    pub upstream_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_idle_timeout: Duration,
    /// Minimum average request body rate in bytes per second (0 = no minimum).
    pub body_min_rate: u64,
    /// How long a request body may take before `body_min_rate` is enforced.
    pub body_min_rate_grace: Duration,
    /// Minimum average rate at which the client takes a response body, bytes per second,
    /// measured over the time spent writing to it (0 = no minimum).
    pub response_min_rate: u64,
    /// Writing time a response body may take before `response_min_rate` is enforced.
    pub response_min_rate_grace: Duration,
    /// Deadline for a TLS handshake on an https listener (the connection is closed after it).
    pub tls_handshake_timeout: Duration,
    /// Verified bearer and external JWT tokens kept per worker (0 = no cache).
    pub verified_token_cache: usize,
    /// A WebSocket tunnel with no byte either way for this long is closed (both sides).
    pub websocket_idle_timeout: Duration,
    /// A WebSocket tunnel is closed (close frame 1001) this long after it opened, whatever it
    /// carries; zero: no bound.
    pub websocket_max_lifetime: Duration,
    /// Open WebSocket tunnels a worker holds at most; an upgrade beyond it gets 503.
    pub max_websocket_tunnels_per_worker: usize,
    /// Streams an HTTP/2 client may have open at once on one connection
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`); more are refused with `REFUSED_STREAM`.
    pub h2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: defaults::MAX_HEADER_BYTES,
            max_headers: defaults::MAX_HEADERS,
            max_request_line_bytes: defaults::MAX_REQUEST_LINE_BYTES,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            client_header_timeout: defaults::CLIENT_HEADER_TIMEOUT,
            keepalive_timeout: defaults::KEEPALIVE_TIMEOUT,
            upstream_connect_timeout: defaults::UPSTREAM_CONNECT_TIMEOUT,
            upstream_timeout: defaults::UPSTREAM_TIMEOUT,
            body_idle_timeout: defaults::BODY_IDLE_TIMEOUT,
            body_min_rate: defaults::BODY_MIN_RATE,
            body_min_rate_grace: defaults::BODY_MIN_RATE_GRACE,
            response_min_rate: defaults::RESPONSE_MIN_RATE,
            response_min_rate_grace: defaults::RESPONSE_MIN_RATE_GRACE,
            tls_handshake_timeout: defaults::TLS_HANDSHAKE_TIMEOUT,
            verified_token_cache: defaults::VERIFIED_TOKEN_CACHE,
            websocket_idle_timeout: defaults::WEBSOCKET_IDLE_TIMEOUT,
            websocket_max_lifetime: defaults::WEBSOCKET_MAX_LIFETIME,
            max_websocket_tunnels_per_worker: defaults::MAX_WEBSOCKET_TUNNELS_PER_WORKER,
            h2_max_concurrent_streams: defaults::H2_MAX_CONCURRENT_STREAMS,
        }
    }
}

impl Config {
    /// One line for `torii check` and the start-up log, e.g.
    /// `ok: 3 routes, 2 workers, listeners http 127.0.0.1:8080, admin -, drain 10s`.
    pub fn summary(&self) -> String {
        let join = |v: &[SocketAddr]| {
            v.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut listeners = format!("http {}", join(&self.gateway.http));
        if !self.gateway.https.is_empty() {
            listeners = if self.gateway.http.is_empty() {
                format!("https {}", join(&self.gateway.https))
            } else {
                format!("{listeners} https {}", join(&self.gateway.https))
            };
        }
        let admin = self
            .gateway
            .admin
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        format!(
            "ok: {}, {}, listeners {listeners}, admin {admin}, drain {}",
            plural(self.routes.len(), "route"),
            plural(self.gateway.workers, "worker"),
            format_duration(self.gateway.drain_timeout)
        )
    }
}

/// A configuration that did not load.
#[derive(Debug)]
pub enum Rejected {
    /// The file could not be read: one line saying why
    /// (`cannot read /etc/torii/torii.toml: No such file or directory`).
    Unreadable(String),
    /// The file was read but is not a valid configuration.
    Invalid {
        /// Every error found, placed (`(line L, column C)`).
        errors: ConfigErrors,
        /// The configuration as far as it validated (keys in error left out or at their
        /// defaults, with the file's [`KeyLocations`]) when the file parsed, so that the key
        /// and certificate files it names can be read for their own errors
        /// (`snapshot::every_error`): a target that does not resolve hides no missing file.
        partial: Option<Box<Config>>,
    },
}

impl Rejected {
    /// The errors found while loading (one, with no key path, for an unreadable file).
    pub fn into_errors(self) -> ConfigErrors {
        match self {
            Rejected::Unreadable(why) => ConfigErrors::single("", why),
            Rejected::Invalid { errors, .. } => errors,
        }
    }
}

/// Reads, parses and validates a file; relative paths inside resolve against its directory.
/// Uses the process environment and the system resolver (blocking: call at load, not per request).
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_with_env(path, &SystemEnv)
}

/// [`load_file`] with an injected environment.
pub fn load_file_with_env(path: &Path, env: &dyn LoadEnv) -> Result<Config, ConfigErrors> {
    load_file_checked(path, env).map_err(Rejected::into_errors)
}

/// [`load_file_with_env`], telling an unreadable file from an invalid one and keeping what an
/// invalid one validated to ([`Rejected`]).
pub fn load_file_checked(path: &Path, env: &dyn LoadEnv) -> Result<Config, Rejected> {
    let text = parse::read_bounded(path).map_err(Rejected::Unreadable)?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut config = load_str_checked(&text, &base_dir, env)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses and validates `text`; relative file paths resolve against `base_dir`.
/// Uses the process environment and the system resolver.
pub fn load_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    load_str_with_env(text, base_dir, &SystemEnv)
}

/// [`load_str`] with an injected environment (variables and name resolution).
///
/// Every problem is reported at once: each unknown key and value of the wrong type (the rest of
/// the file is still read), then every validation error, each with its key path and, when the
/// key (or the table it belongs in) is written in the file, its line and column.
pub fn load_str_with_env(
    text: &str,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Result<Config, ConfigErrors> {
    load_str_checked(text, base_dir, env).map_err(Rejected::into_errors)
}

/// [`load_str_with_env`], keeping what an invalid file validated to ([`Rejected::Invalid`]).
pub fn load_str_checked(
    text: &str,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Result<Config, Rejected> {
    let parsed = parse::parse(text).map_err(|errors| Rejected::Invalid {
        errors,
        partial: None,
    })?;
    let mut errors = parsed.errors;
    let locations = std::sync::Arc::new(parsed.locations);
    let mut partial = match validate::validate(&parsed.raw, base_dir, env) {
        Ok(mut config) => {
            config.locations = locations.clone();
            if errors.is_empty() {
                return Ok(config);
            }
            Box::new(config)
        }
        Err((more, partial)) => {
            // A key that failed to read is absent for validation: its "required" is noise.
            errors.extend(
                more.0
                    .into_iter()
                    .filter(|e| !parse::is_under_removed(&e.path, &parsed.removed)),
            );
            partial
        }
    };
    partial.locations = locations.clone();
    Err(Rejected::Invalid {
        errors: ConfigErrors(errors).located(&locations),
        partial: Some(partial),
    })
}

/// Parses `text` into a [`raw::RawConfig`] without validating it. Every unknown key and wrong
/// type is reported with its path and position; syntax errors with line and column.
pub fn parse_raw(text: &str) -> Result<raw::RawConfig, ConfigErrors> {
    let parsed = parse::parse(text)?;
    if parsed.errors.is_empty() {
        Ok(parsed.raw)
    } else {
        Err(ConfigErrors(parsed.errors).located(&parsed.locations))
    }
}
