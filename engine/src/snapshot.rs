//! The immutable config snapshot that workers read on every request.
//!
//! Owns the translation from a validated [`Config`] into what the request path needs ready-made:
//! the compiled route table, each route's targets with their pre-rendered `Host` header lines,
//! the keys and prepared token parts of the security features, and each route's compiled
//! rules. Built on the control thread at start and on every reload; everything slow or
//! fallible happens here, never per request. A snapshot is never mutated after it is built.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{AuthState, RouteApiKeys};
use crate::config::{
    Config, ConfigError, ConfigErrors, JwtKeysSpec, PathNormalization, Rejected, Scheme,
    UpstreamSpec,
};
use crate::http1::HeadLimits;
use crate::jwks::JwksMode;
use crate::metrics::{MetricsRegistry, RouteMetrics};
use crate::quota::{QuotaCounters, QuotaTable, RouteQuota};
use crate::routing::RouteTable;
use crate::rules::CompiledRules;
use crate::secure::{RouteChallenge, RouteInfoToken, RouteJwt};
use crate::tls::client::{client_config, target_tls, TargetTls};
use crate::tls::server::TlsServer;
use crate::upstream::group::RouteUpstream;
use crate::upstream::registry::UpstreamRegistry;

/// One upstream target, ready for the request path.
#[derive(Debug)]
pub struct Target {
    /// Resolved address (the pool key).
    pub addr: SocketAddr,
    /// `host: <host[:port]>\r\n`, written as is into upstream request heads.
    pub host_line: Vec<u8>,
    /// The target as configured, for logs.
    pub url: String,
    /// `addr` as text (`"127.0.0.1:9001"`), rendered once for the access log.
    pub addr_text: Box<str>,
    /// TLS settings, for an `https://` target.
    pub tls: Option<TargetTls>,
    /// How Torii speaks to it (`h2c` and `h2`: HTTP/2, `upstream::h2_client`).
    pub protocol: crate::config::TargetProtocol,
}

impl Target {
    /// True when requests go to this target over HTTP/2 (`protocol = "h2c"` or `"h2"`).
    pub fn speaks_h2(&self) -> bool {
        use crate::config::TargetProtocol;
        matches!(self.protocol, TargetProtocol::H2c | TargetProtocol::H2)
    }
}

impl Target {
    /// The pool identity of connections to this target (0: plain).
    pub fn pool_id(&self) -> u64 {
        self.tls.as_ref().map_or(0, |t| t.pool_id)
    }
}

/// One route, ready for the request path.
#[derive(Debug)]
pub struct Route {
    /// Route id from the config.
    pub id: String,
    /// Route name (the `aud` of tokens sent to the backend).
    pub name: String,
    /// Targets in config order.
    pub targets: Vec<Target>,
    /// The targets' addresses, in the same order, for the selector.
    pub target_addrs: Vec<SocketAddr>,
    /// The exchange protocol, when `[routes.challenge]` is set.
    pub challenge: Option<RouteChallenge>,
    /// The info token, when `[routes.info_token]` is set.
    pub info_token: Option<RouteInfoToken>,
    /// This route's counters (from the registry: the same object across reloads).
    pub metrics: Arc<RouteMetrics>,
    /// The route's endpoints (from the upstream registry: kept across reloads).
    pub upstream: Arc<RouteUpstream>,
    /// How endpoints are chosen, timed, ejected and retried.
    pub upstream_spec: UpstreamSpec,
    /// API keys required, when `[routes.apikeys]` is set.
    pub apikeys: Option<RouteApiKeys>,
    /// The external JWT check, when `[routes.jwt]` is set.
    pub jwt: Option<RouteJwt>,
    /// The path the backend receives (`path_normalization`).
    pub path_normalization: PathNormalization,
    /// Per-address limit and the key-quota switches (`update_quotas`, `quota_headers`).
    pub quota: RouteQuota,
    /// WebSocket upgrades are carried (`websocket`).
    pub websocket: bool,
    /// The route's path, filter, header and CORS rules, compiled (`proxy::route_rules`).
    pub rules: Arc<CompiledRules>,
}

/// Request-path view of `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeLimits {
    /// Head parser limits.
    pub head: HeadLimits,
    /// Largest request body accepted.
    pub max_body_bytes: u64,
    /// Deadline for a whole request head, from its first byte.
    pub client_header_timeout: Duration,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive_timeout: Duration,
    /// Longest wait for the next bytes of a body.
    pub body_timeout: Duration,
    /// Minimum average rate of a request body, bytes per second (0: off)...
    pub body_min_rate: u64,
    /// ...enforced once the body has taken this long.
    pub body_min_rate_grace: Duration,
    /// Minimum average send rate of a response body to the client, bytes per second (0: off)...
    pub response_min_rate: u64,
    /// ...enforced once writing it has taken this long.
    pub response_min_rate_grace: Duration,
    /// Deadline to connect to an upstream.
    pub upstream_connect_timeout: Duration,
    /// Longest wait for upstream bytes (response head and body).
    pub upstream_timeout: Duration,
    /// Deadline for a TLS handshake on an https listener.
    pub tls_handshake_timeout: Duration,
    /// Verified tokens a worker keeps (0: no cache).
    pub verified_token_cache: usize,
    /// A WebSocket tunnel with no byte either way for this long is closed.
    pub websocket_idle_timeout: Duration,
    /// A WebSocket tunnel is closed this long after it opened (zero: never).
    pub websocket_max_lifetime: Duration,
    /// Open WebSocket tunnels (and upgrades in flight) a worker holds at most.
    pub max_websocket_tunnels_per_worker: usize,
}

/// Everything a worker reads per request, built once per config load.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every successful load; starts at 1.
    pub version: u64,
    /// The validated config it was built from.
    pub config: Config,
    /// Host/path → route index.
    pub table: RouteTable,
    /// Routes by index.
    pub routes: Vec<Route>,
    /// Limits in request-path form.
    pub limits: RuntimeLimits,
    /// API keys, key pairs and the token service.
    pub auth: AuthState,
    /// The https listeners' TLS configs (`None` without https listeners).
    pub tls: Option<TlsServer>,
    /// Each metered key's limits and process-wide counters, by `StoredKey::position()`.
    pub quotas: QuotaTable,
}

impl Snapshot {
    /// Builds a snapshot from a validated config with counters of its own (`torii check`,
    /// tests). Fails with every error found, each with the key path it concerns; a `jwks_url`
    /// is fetched once and must give a usable set ([`JwksMode::Check`]).
    pub fn build(config: Config, version: u64) -> Result<Self, ConfigErrors> {
        let metrics = MetricsRegistry::new(config.gateway.workers);
        Self::build_in(
            config,
            version,
            &metrics,
            &QuotaCounters::default(),
            &UpstreamRegistry::new(),
            JwksMode::Check,
        )
    }

    /// Builds a snapshot whose routes count into `metrics`, whose keys count into `quotas` and
    /// whose endpoints come from `upstreams` (the running gateway's registries, so that a
    /// reload keeps the counts, addresses, health and ejections of the routes and keys it
    /// keeps; call `QuotaCounters::install` once the snapshot is in force); a `jwks_url` gets
    /// its process-wide fetcher ([`JwksMode::Serve`]).
    pub fn build_with(
        config: Config,
        version: u64,
        metrics: &MetricsRegistry,
        quotas: &QuotaCounters,
        upstreams: &UpstreamRegistry,
    ) -> Result<Self, ConfigErrors> {
        Self::build_in(config, version, metrics, quotas, upstreams, JwksMode::Serve)
    }

    fn build_in(
        config: Config,
        version: u64,
        metrics: &MetricsRegistry,
        quotas: &QuotaCounters,
        upstreams: &UpstreamRegistry,
        jwks: JwksMode,
    ) -> Result<Self, ConfigErrors> {
        let endpoints = upstreams.prepare(&config.routes, config.gateway.workers);
        let (parts, errors) = build_parts(&config, metrics, &endpoints, Some(jwks));
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        upstreams.commit(&endpoints);
        let Parts { routes, auth, tls } = parts;
        let table = RouteTable::build(&config.routes);
        let quotas = quotas.table(&config.auth.apikeys, &config.quotas);
        let l = &config.limits;
        let limits = RuntimeLimits {
            head: HeadLimits {
                max_head_bytes: l.max_header_bytes,
                max_headers: l.max_headers,
                max_request_line_bytes: l.max_request_line_bytes,
            },
            max_body_bytes: l.max_body_bytes,
            client_header_timeout: l.client_header_timeout,
            keepalive_timeout: l.keepalive_timeout,
            body_timeout: l.body_idle_timeout,
            body_min_rate: l.body_min_rate,
            body_min_rate_grace: l.body_min_rate_grace,
            response_min_rate: l.response_min_rate,
            response_min_rate_grace: l.response_min_rate_grace,
            upstream_connect_timeout: l.upstream_connect_timeout,
            upstream_timeout: l.upstream_timeout,
            tls_handshake_timeout: l.tls_handshake_timeout,
            verified_token_cache: l.verified_token_cache,
            websocket_idle_timeout: l.websocket_idle_timeout,
            websocket_max_lifetime: l.websocket_max_lifetime,
            max_websocket_tunnels_per_worker: l.max_websocket_tunnels_per_worker,
        };
        Ok(Self {
            version,
            config,
            table,
            routes,
            limits,
            auth,
            tls,
            quotas,
        })
    }
}

/// What a build reads from secrets, key files and certificate files, before the route table.
struct Parts {
    routes: Vec<Route>,
    auth: AuthState,
    tls: Option<TlsServer>,
}

/// Builds the keys, targets, API keys and TLS configs of `config`, collecting every error with
/// the key path it concerns. `jwks`: how a `jwks_url` is obtained; `None` fetches none (its
/// route gets no JWT check), for a configuration that already failed validation.
fn build_parts(
    config: &Config,
    metrics: &MetricsRegistry,
    endpoints: &[Arc<RouteUpstream>],
    jwks: Option<JwksMode>,
) -> (Parts, Vec<ConfigError>) {
    let mut errors: Vec<ConfigError> = Vec::new();
    // Keys are built (secrets resolved, PEM parsed) here, once per load.
    let mut routes = Vec::with_capacity(config.routes.len());
    let allow_weak = config.gateway.insecure_allow_weak_keys;
    for (i, rc) in config.routes.iter().enumerate() {
        // Key errors come placed at the key they concern (`routes[i].challenge.secret`).
        let challenge = rc.challenge.as_ref().and_then(|spec| {
            let path = format!("routes[{i}].challenge");
            RouteChallenge::build(&rc.name, &path, spec, allow_weak)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let info_token = rc.info_token.as_ref().and_then(|spec| {
            RouteInfoToken::build(&rc.name, spec, allow_weak)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let targets = build_targets(i, rc, &mut errors);
        // Without a mode (a configuration that failed validation) no URL is fetched.
        let jwt = rc.jwt.as_ref().and_then(|spec| {
            let mode = match (&spec.keys, jwks) {
                (JwtKeysSpec::JwksUrl(_), None) => return None,
                (_, mode) => mode.unwrap_or(JwksMode::Check),
            };
            RouteJwt::build(&format!("routes[{i}].jwt"), spec, allow_weak, mode)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let target_addrs = targets.iter().map(|t| t.addr).collect();
        routes.push(Route {
            id: rc.id.clone(),
            name: rc.name.clone(),
            targets,
            target_addrs,
            challenge,
            info_token,
            metrics: metrics.route(&rc.id),
            upstream: endpoints[i].clone(),
            upstream_spec: rc.upstream.clone(),
            apikeys: rc.apikeys.as_ref().map(RouteApiKeys::build),
            jwt,
            path_normalization: rc.path_normalization,
            quota: RouteQuota::build(rc),
            websocket: rc.websocket,
            rules: Arc::new(CompiledRules::build(&rc.rules)),
        });
    }
    let auth = match crate::auth::build(&config.auth) {
        Ok(a) => a,
        Err(errs) => {
            errors.extend(errs);
            AuthState::default()
        }
    };
    let tls = if config.gateway.https.is_empty() {
        None
    } else {
        match TlsServer::build(
            &config.certificates,
            config.gateway.client_auth.as_ref(),
            config.gateway.http2,
        ) {
            Ok(t) => Some(t),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        }
    };
    (Parts { routes, auth, tls }, errors)
}

/// Every error of a configuration that did not load, placed (`(line L, column C)`): the
/// file's own and, when it parsed, those of the secrets, key files and certificate files that
/// the part that validated names (no `jwks_url` is fetched), so that an unresolvable target does
/// not hide a missing key file. An error of that second stage is left out when the first
/// already reported its key, a key inside it or around it, or anything in a list whose entries
/// validation leaves out when they fail (`certificates`, `key_pairs`, `apikeys`, a route's
/// `targets`): the partial configuration's indexes in such a list are not the file's.
pub fn every_error(rejected: Rejected) -> ConfigErrors {
    let (mut errors, partial) = match rejected {
        Rejected::Unreadable(why) => return ConfigErrors::single("", why),
        Rejected::Invalid { errors, partial } => (errors, partial),
    };
    let Some(partial) = partial else {
        return errors;
    };
    let metrics = MetricsRegistry::new(partial.gateway.workers);
    let endpoints = UpstreamRegistry::new().prepare(&partial.routes, partial.gateway.workers);
    let (_, found) = build_parts(&partial, &metrics, &endpoints, None);
    let reported: Vec<String> = errors.0.iter().map(|e| e.path.clone()).collect();
    let more: Vec<ConfigError> = found
        .into_iter()
        .filter(|e| !overlaps_reported(&e.path, &reported))
        .collect();
    errors
        .0
        .extend(ConfigErrors(more).located(&partial.locations).0);
    errors
}

/// Whether a later stage's error at `path` repeats or may misplace one of `reported`.
fn overlaps_reported(path: &str, reported: &[String]) -> bool {
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    let list = filtered_list(path);
    reported
        .iter()
        .any(|r| within(path, r) || within(r, path) || list.is_some_and(|l| within(r, l)))
}

/// The list `path` is in when validation leaves that list's failed entries out of the partial
/// configuration: `certificates`, `key_pairs`, `apikeys`, `routes[i].targets`.
fn filtered_list(path: &str) -> Option<&str> {
    for top in ["certificates", "key_pairs", "apikeys"] {
        if path == top || path.starts_with(&format!("{top}[")) {
            return Some(top);
        }
    }
    let rest = path.strip_prefix("routes[")?;
    let close = rest.find(']')?;
    let end = "routes[".len() + close + 1;
    path[end..]
        .starts_with(".targets")
        .then(|| &path[..end + ".targets".len()])
}

/// The targets of route `i`, with the route's TLS client config built once for its `https://`
/// targets. Errors are pushed with their key path.
fn build_targets(
    i: usize,
    rc: &crate::config::RouteConfig,
    errors: &mut Vec<ConfigError>,
) -> Vec<Target> {
    let spec = rc.upstream_tls.as_ref();
    let needs_tls = rc.targets.iter().any(|t| t.scheme == Scheme::Https);
    let config = if needs_tls {
        match client_config(spec) {
            Ok(c) => Some(c),
            Err(found) => {
                for (key, message) in found {
                    let section = format!("routes[{i}].upstream_tls");
                    let path = match key {
                        "" => section,
                        key => format!("{section}.{key}"),
                    };
                    errors.push(ConfigError { path, message });
                }
                None
            }
        }
    } else {
        None
    };
    let mut targets = Vec::with_capacity(rc.targets.len());
    for (j, t) in rc.targets.iter().enumerate() {
        let tls = match (&config, t.scheme) {
            (Some(config), Scheme::Https) => match target_tls(config, spec, t) {
                Ok(tls) => Some(tls),
                Err(message) => {
                    errors.push(ConfigError {
                        path: format!("routes[{i}].targets[{j}]"),
                        message,
                    });
                    None
                }
            },
            _ => None,
        };
        targets.push(Target {
            addr: t.addr,
            host_line: format!("host: {}\r\n", t.host_header).into_bytes(),
            url: t.url.clone(),
            addr_text: t.addr.to_string().into_boxed_str(),
            tls,
            protocol: t.protocol,
        });
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "[gateway]\nhttp = [\"127.0.0.1:0\"]\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n";

    /// The errors of building `section` (after [`ROUTE`]; it starts at line 7), as
    /// `torii check` prints them.
    fn build_errors(section: &str) -> Vec<String> {
        let text = format!("{ROUTE}{section}");
        let config = crate::config::load_str(&text, std::path::Path::new("/"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let locations = config.locations.clone();
        match Snapshot::build(config, 1) {
            Ok(_) => panic!("built:\n{text}"),
            Err(e) => e
                .located(&locations)
                .0
                .iter()
                .map(|e| e.to_string())
                .collect(),
        }
    }

    /// The error for a short HMAC secret written `"$NAME"` at `path`, `line`:`col`.
    fn short_shell(path: &str, name: &str, line: usize, col: usize) -> String {
        format!(
            "{path}: looks like a shell variable: write \"${{env.{name}}}\" to read it from the environment (Torii does not expand shell syntax, so as written the secret is the text itself); that text is {} bytes long, and HMAC keys need at least 32 (line {line}, column {col})",
            name.len() + 1
        )
    }

    #[test]
    fn a_short_secret_is_reported_at_its_key_with_the_shell_hint_first() {
        let long = "0123456789abcdef0123456789abcdef";
        let rows: [(String, String); 6] = [
            (
                "[routes.challenge]\nsecret = \"$CHALLENGE_SECRET\"\n".to_owned(),
                short_shell("routes[0].challenge.secret", "CHALLENGE_SECRET", 8, 1),
            ),
            (
                // The direction with its own table is named: the file has it.
                format!("[routes.challenge]\nsecret = \"{long}\"\n[routes.challenge.to_backend]\n  secret = \"$TO_BACKEND\"\n"),
                short_shell("routes[0].challenge.to_backend.secret", "TO_BACKEND", 10, 3),
            ),
            (
                format!("[routes.challenge]\nsecret = \"{long}\"\n[routes.challenge.from_backend]\nsecret = \"$FROM_BACKEND\"\n"),
                short_shell("routes[0].challenge.from_backend.secret", "FROM_BACKEND", 10, 1),
            ),
            (
                // A direction table with only an algorithm uses the shared secret.
                "[routes.challenge]\nsecret = \"$SHARED\"\n[routes.challenge.to_backend]\nalgorithm = \"HS256\"\n".to_owned(),
                short_shell("routes[0].challenge.secret", "SHARED", 8, 1),
            ),
            (
                "[routes.info_token]\nsecret = \"$CLAIM_SECRET\"\n".to_owned(),
                short_shell("routes[0].info_token.secret", "CLAIM_SECRET", 8, 1),
            ),
            (
                "[routes.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"$JWT_SECRET\"\n".to_owned(),
                short_shell("routes[0].jwt.secret", "JWT_SECRET", 9, 1),
            ),
        ];
        for (section, expected) in rows {
            let errors = build_errors(&section);
            assert_eq!(errors, [expected], "{section}");
            let value = section
                .lines()
                .filter_map(|l| l.trim().strip_prefix("secret = \"$"))
                .map(|v| format!("${}", v.trim_end_matches('"')))
                .next()
                .unwrap_or_default();
            assert!(!errors[0].contains(&value), "{value} in {errors:?}");
        }
        // Any other short secret: the length rule alone, at the key, and never the text.
        let errors = build_errors("[routes.info_token]\nsecret = \"short-literal\"\n");
        assert_eq!(
            errors,
            ["routes[0].info_token.secret: the secret is 13 bytes long; HMAC keys need at least 32 bytes (Otoroshi's default \"secret\" is refused). Use a longer secret, or set gateway.insecure_allow_weak_keys = true to accept it (line 8, column 1)"]
        );
    }

    #[test]
    fn key_file_errors_are_reported_at_their_key() {
        let errors = build_errors(
            "[routes.info_token]\nalgorithm = \"ES256\"\nprivate_key = \"/nonexistent/k.pem\"\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("routes[0].info_token.private_key: cannot read /nonexistent/k.pem: ")
                && errors[0].ends_with("(line 9, column 1)"),
            "{errors:?}"
        );
        let errors = build_errors(
            "[routes.jwt]\nalgorithms = [\"RS256\"]\njwks_file = \"/nonexistent/jwks.json\"\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("routes[0].jwt.jwks_file: cannot read /nonexistent/jwks.json: "),
            "{errors:?}"
        );
    }
}

#[cfg(test)]
#[path = "snapshot_positions_tests.rs"]
mod positions_tests;
