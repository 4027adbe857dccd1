//! The configuration file as serde reads it: [`RawConfig`] mirrors the TOML of
//! docs/configuration.md key for key, with `deny_unknown_fields` on every table so a misspelt
//! key is an error with its path.
//!
//! Owns only the shape. Values stay loose where that lets validation report several problems at
//! once (optional keys, durations as [`RawDuration`], sizes as `i64`); all checks and defaults live
//! in `validate`. The rule tables of a route (`rewrite`, `redirect`, `request_headers`,
//! `response_headers`, `[routes.cors]`) live in `raw_rules`; the upstream keys of a route (`targets` entries, `hash`, `timeouts`,
//! `[routes.health_check]`, `[routes.outlier_detection]`, `[routes.retry]`) live in
//! `raw_upstream`, re-exported here. `schema` reads the set of accepted keys from these structs
//! (for "did you mean" and the documentation test), so a key added here is a key the docs must
//! describe.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::duration::RawDuration;
pub use super::raw_rules::{RawCors, RawHeaderRules, RawRedirect, RawRewrite};
pub use super::raw_upstream::{
    RawBackoff, RawHash, RawHealthCheck, RawOutlier, RawRetry, RawStatus, RawTarget,
    RawTargetTable, RawTimeouts,
};
use super::secret::RawSecret;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[gateway]`: processes and listeners.
    #[serde(default)]
    pub gateway: RawGateway,
    /// `[limits]`: sizes and timeouts.
    #[serde(default)]
    pub limits: RawLimits,
    /// `[[certificates]]`: TLS certificates served by SNI.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// `[[key_pairs]]`: signing keys published in jwks.json.
    #[serde(default)]
    pub key_pairs: Vec<RawKeyPair>,
    /// `[client_credentials]`: the OAuth2 service.
    pub client_credentials: Option<RawClientCredentials>,
    /// `[[apikeys]]`: API keys.
    #[serde(default)]
    pub apikeys: Vec<RawApiKey>,
    /// `[[routes]]`.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// `[access_log]`: JSON lines per request; absent = off.
    pub access_log: Option<RawAccessLog>,
    /// `[quotas]`: the throttling window and the Redis store; absent = defaults, local counts.
    pub quotas: Option<RawQuotas>,
    /// `[dns]`: the servers that resolve target names; absent = the system configuration.
    pub dns: Option<RawDns>,
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// Name servers, `IP` or `IP:port` (`[IPv6]:port`).
    pub servers: Option<Vec<String>>,
    /// Deadline of one query.
    pub timeout: Option<RawDuration>,
}

/// `[quotas]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuotas {
    /// The throttling window.
    pub window: Option<RawDuration>,
    /// `redis://` or `rediss://` URL (may embed `${env.…}` / `${file:…}` references).
    pub redis: Option<RawSecret>,
    /// PEM CA bundle that signs a `rediss://` server's certificate.
    pub redis_ca: Option<String>,
    /// First part of every Redis key.
    pub key_prefix: Option<String>,
    /// Time between two exchanges with Redis.
    pub sync_interval: Option<RawDuration>,
    /// `"local"` or `"deny"`.
    pub on_redis_error: Option<String>,
}

/// `[access_log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// File to append to, or `"stdout"`.
    pub path: Option<String>,
    /// Line format; only `"json"`.
    pub format: Option<String>,
}

/// `workers = "auto"` or an integer, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawWorkers {
    /// A string; only `"auto"` is valid.
    Text(String),
    /// An integer; valid in `1..=1024`.
    Count(i64),
}

impl<'de> Deserialize<'de> for RawWorkers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawWorkers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Count(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawWorkers, E> {
                Ok(RawWorkers::Count(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[gateway]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// `"auto"` or a count.
    pub workers: Option<RawWorkers>,
    /// Plain HTTP listener addresses.
    #[serde(default)]
    pub http: Vec<String>,
    /// TLS listener addresses.
    #[serde(default)]
    pub https: Vec<String>,
    /// `[gateway.client_auth]`: client certificates (mTLS) on https listeners.
    pub client_auth: Option<RawClientAuth>,
    /// Admin listener address.
    pub admin: Option<String>,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Option<RawDuration>,
    /// Accept HMAC secrets shorter than 32 bytes.
    pub insecure_allow_weak_keys: Option<bool>,
    /// Accepted connections a worker holds at most.
    pub max_connections_per_worker: Option<i64>,
    /// `"hash"` or `"cpu"`: how new connections are spread over the workers.
    pub connection_steering: Option<String>,
    /// Pin worker *i* to the *i*-th CPU the process may use.
    pub pin_workers: Option<bool>,
    /// Request header names with `_`: `false` (dropped), `true` (kept), or the listener
    /// addresses that keep them.
    pub underscores_in_headers: Option<RawUnderscores>,
    /// ALPN offers `h2` (and `http/1.1`) on https listeners.
    pub http2: Option<bool>,
    /// HTTP/2 with prior knowledge (the connection preface) on plain listeners.
    pub h2c: Option<bool>,
}

/// `gateway.underscores_in_headers`: a boolean, or a list of listener addresses.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawUnderscores {
    /// Every listener (`true`) or none (`false`).
    All(bool),
    /// The listeners (as written in `gateway.http` / `gateway.https`) that keep them.
    Listeners(Vec<String>),
    /// Any string: refused by validation with a message that says what is accepted (kept as
    /// a variant so that a string is a validation error with its key path, not a type error).
    Text(String),
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Request head size cap, bytes.
    pub max_header_bytes: Option<i64>,
    /// Header count cap.
    pub max_headers: Option<i64>,
    /// Request line size cap, bytes.
    pub max_request_line_bytes: Option<i64>,
    /// Request body size cap, bytes.
    pub max_body_bytes: Option<i64>,
    /// Deadline for a complete request head.
    pub client_header_timeout: Option<RawDuration>,
    /// Idle deadline between requests on a kept-alive connection.
    pub keepalive_timeout: Option<RawDuration>,
    /// Upstream connect deadline.
    pub upstream_connect_timeout: Option<RawDuration>,
    /// Upstream response deadline.
    pub upstream_timeout: Option<RawDuration>,
    /// Longest wait for the next bytes of a request body.
    pub body_idle_timeout: Option<RawDuration>,
    /// Minimum average request body rate, bytes per second (0 = off).
    pub body_min_rate: Option<i64>,
    /// Time a request body may take before `body_min_rate` is enforced.
    pub body_min_rate_grace: Option<RawDuration>,
    /// Minimum average send rate of a response body to the client, bytes per second (0 = off).
    pub response_min_rate: Option<i64>,
    /// Time spent writing a response body before `response_min_rate` is enforced.
    pub response_min_rate_grace: Option<RawDuration>,
    /// Deadline for a TLS handshake on an https listener.
    pub tls_handshake_timeout: Option<RawDuration>,
    /// Verified bearer/JWT tokens kept per worker (0 = off).
    pub verified_token_cache: Option<i64>,
    /// A WebSocket tunnel with no byte either way for this long is closed.
    pub websocket_idle_timeout: Option<RawDuration>,
    /// A WebSocket tunnel is closed this long after it opened, whatever it carries (0 = off).
    pub websocket_max_lifetime: Option<RawDuration>,
    /// Open WebSocket tunnels a worker holds at most (beyond: 503 to the upgrade).
    pub max_websocket_tunnels_per_worker: Option<i64>,
    /// Streams an HTTP/2 client may have open at once on one connection.
    pub h2_max_concurrent_streams: Option<i64>,
}

/// `[gateway.client_auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// CA bundle path.
    pub ca: Option<String>,
    /// `"required"` or `"optional"`.
    pub mode: Option<String>,
    /// The https listeners it applies to (default: all).
    #[serde(default)]
    pub listeners: Vec<String>,
}

/// `[[certificates]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// Identifier.
    pub id: Option<String>,
    /// PEM chain path.
    pub cert: Option<String>,
    /// PEM private key path.
    pub key: Option<String>,
}

/// `[[key_pairs]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyPair {
    /// Identifier (the JWT `kid`).
    pub id: Option<String>,
    /// PKCS#8 PEM path.
    pub private_key: Option<String>,
}

/// `[client_credentials]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientCredentials {
    /// Anchored regex on the Host.
    pub domain: Option<String>,
    /// Token lifetime.
    pub expiration: Option<RawDuration>,
    /// Key pair id used when the API key names none.
    pub default_key_pair: Option<String>,
    /// Refuse the endpoints over plain HTTP.
    pub secure: Option<bool>,
    /// A fixed `iss` for the tokens (default: scheme and Host of the request).
    pub issuer: Option<String>,
}

/// `[[apikeys]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret (a secret reference or literal).
    pub client_secret: Option<RawSecret>,
    /// Display name.
    pub name: Option<String>,
    /// Whether the key may be used.
    pub enabled: Option<bool>,
    /// RFC 3339 expiry.
    pub valid_until: Option<String>,
    /// Route ids this key may call.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Free tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free metadata (`scope`, `jwt-sign-keypair`…).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Whether the client id alone (`x-api-key`) authenticates this key.
    pub allow_client_id_only: Option<bool>,
    /// Calls per throttling window.
    pub throttling_quota: Option<i64>,
    /// Calls per UTC day.
    pub daily_quota: Option<i64>,
    /// Calls per UTC month.
    pub monthly_quota: Option<i64>,
}

/// `[[routes]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Unique identifier.
    pub id: Option<String>,
    /// Name (the `aud` of tokens sent to the backend).
    pub name: Option<String>,
    /// Host names or `*.suffix` wildcards.
    pub domains: Option<Vec<String>>,
    /// Path prefixes.
    pub paths: Option<Vec<String>>,
    /// Targets: URLs, or tables with a URL and its settings.
    pub targets: Option<Vec<RawTarget>>,
    /// Target selection policy.
    pub load_balancing: Option<String>,
    /// What the `"hash"` policy hashes.
    pub hash: Option<RawHash>,
    /// Longest time between two resolutions of a target's name.
    pub resolve_interval: Option<RawDuration>,
    /// Per-route upstream timeouts.
    pub timeouts: Option<RawTimeouts>,
    /// `[routes.health_check]`: active health checks.
    pub health_check: Option<RawHealthCheck>,
    /// `[routes.outlier_detection]`: passive ejection of failing endpoints.
    pub outlier_detection: Option<RawOutlier>,
    /// `[routes.retry]`: the retry policy.
    pub retry: Option<RawRetry>,
    /// `"canonical"`, `"refuse_ambiguous"` or `"forward_raw"`: the path sent upstream.
    pub path_normalization: Option<String>,
    /// Carry WebSocket upgrades (default true).
    pub websocket: Option<bool>,
    /// TLS towards `https://` targets.
    pub upstream_tls: Option<RawUpstreamTls>,
    /// `[routes.challenge]`.
    pub challenge: Option<RawChallenge>,
    /// `[routes.info_token]`.
    pub info_token: Option<RawInfoToken>,
    /// `[routes.apikeys]`.
    pub apikeys: Option<RawRouteApiKeys>,
    /// `[routes.jwt]`: external JWT verification.
    pub jwt: Option<RawRouteJwt>,
    /// `[routes.rate_limit]`: per-client-address limit.
    pub rate_limit: Option<RawRateLimit>,
    /// Remove the matched path prefix before the path goes upstream.
    pub strip_prefix: Option<bool>,
    /// Prefix put before the path upstream (Otoroshi's `root`).
    pub target_root: Option<String>,
    /// Regex replacement on the path sent upstream.
    pub rewrite: Option<RawRewrite>,
    /// Send the client's `Host` upstream instead of the target's.
    pub preserve_host: Option<bool>,
    /// Redirect plain-HTTP requests to `https://`.
    pub force_https: Option<bool>,
    /// Answer every request with a redirect.
    pub redirect: Option<RawRedirect>,
    /// The only methods served.
    pub methods: Option<Vec<String>>,
    /// Only `GET`, `HEAD` and `OPTIONS`.
    pub read_only: Option<bool>,
    /// Client networks admitted (CIDR).
    pub allow_ips: Option<Vec<String>>,
    /// Client networks refused (CIDR), checked first.
    pub deny_ips: Option<Vec<String>>,
    /// This route's request body cap, bytes.
    pub max_body_bytes: Option<i64>,
    /// Header rules on the way to the backend.
    pub request_headers: Option<RawHeaderRules>,
    /// Header rules on the way back to the client.
    pub response_headers: Option<RawHeaderRules>,
    /// Request headers that must carry exactly these values.
    pub header_checks: Option<BTreeMap<String, String>>,
    /// `[routes.cors]`: the CORS policy.
    pub cors: Option<RawCors>,
}

/// `[routes.rate_limit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Calls per throttling window per client address.
    pub per_ip: Option<i64>,
}

/// `routes.upstream_tls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// CA bundle path.
    pub ca: Option<String>,
    /// Client certificate path (mTLS).
    pub client_cert: Option<String>,
    /// Client key path (mTLS).
    pub client_key: Option<String>,
    /// SNI / verified name override.
    pub server_name: Option<String>,
}

/// One direction's algorithm and key: `[routes.challenge.to_backend]` / `from_backend`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlgo {
    /// JOSE algorithm name.
    pub algorithm: Option<String>,
    /// HMAC secret.
    pub secret: Option<RawSecret>,
    /// PEM private key path.
    pub private_key: Option<String>,
    /// PEM public key path.
    pub public_key: Option<String>,
}

/// `[routes.challenge]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChallenge {
    /// `"v1"` or `"v2"`.
    pub version: Option<String>,
    /// Token lifetime.
    pub ttl: Option<RawDuration>,
    /// Clock leeway.
    pub leeway: Option<RawDuration>,
    /// Header carrying the state to the backend.
    pub request_header: Option<String>,
    /// Header carrying the answer back.
    pub response_header: Option<String>,
    /// Shared algorithm for both directions.
    pub algorithm: Option<String>,
    /// Shared HMAC secret.
    pub secret: Option<RawSecret>,
    /// Shared private key path.
    pub private_key: Option<String>,
    /// Shared public key path.
    pub public_key: Option<String>,
    /// Overrides for the gateway → backend token.
    pub to_backend: Option<RawAlgo>,
    /// Overrides for the backend → gateway token.
    pub from_backend: Option<RawAlgo>,
    /// Path regexes exempt from the challenge.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// `[routes.info_token]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInfoToken {
    /// `"latest"` or `"legacy"`.
    pub version: Option<String>,
    /// Header name.
    pub header: Option<String>,
    /// Token lifetime.
    pub ttl: Option<RawDuration>,
    /// JOSE algorithm name.
    pub algorithm: Option<String>,
    /// HMAC secret.
    pub secret: Option<RawSecret>,
    /// PEM private key path for RS*/PS*/ES*.
    pub private_key: Option<String>,
}

/// `[routes.apikeys]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteApiKeys {
    /// Extractors switched on, among `client_id`, `headers`, `bearer`, `basic`.
    pub extractors: Option<Vec<String>>,
    /// Custom header names.
    pub custom_headers: Option<RawCustomHeaders>,
    /// Remove credentials before forwarding.
    pub wipe_credentials: Option<bool>,
    /// Scopes the key (or its bearer token) must all have.
    pub required_scopes: Option<Vec<String>>,
    /// Claims of the bearer token: name → accepted value(s).
    pub required_claims: Option<BTreeMap<String, RawClaimValues>>,
    /// Count calls against the key's quotas (false: check only).
    pub update_quotas: Option<bool>,
    /// Send the remaining-calls headers back.
    pub quota_headers: Option<bool>,
}

/// The accepted value(s) of a required claim: `"a"` or `["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawClaimValues {
    /// One accepted value.
    One(String),
    /// Several accepted values.
    Many(Vec<String>),
}

/// `routes.apikeys.custom_headers`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomHeaders {
    /// Header carrying the client id.
    pub client_id: Option<String>,
    /// Header carrying the client secret.
    pub client_secret: Option<String>,
}

/// `[routes.jwt]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteJwt {
    /// Expected `iss`.
    pub issuer: Option<String>,
    /// Expected `aud`.
    pub audience: Option<String>,
    /// Accepted algorithms.
    pub algorithms: Option<Vec<String>>,
    /// JWKS file path.
    pub jwks_file: Option<String>,
    /// JWKS URL, fetched and refreshed.
    pub jwks_url: Option<String>,
    /// CA bundle for `jwks_url`.
    pub jwks_ca: Option<String>,
    /// Allow an `http://` `jwks_url` (tests only).
    pub insecure_jwks_http: Option<bool>,
    /// Shortest time between two fetches of `jwks_url`.
    pub jwks_refresh_min: Option<RawDuration>,
    /// Longest time a fetched set is used without a fetch.
    pub jwks_refresh_max: Option<RawDuration>,
    /// Scopes the token must all have (`scope` / `scp`).
    pub required_scopes: Option<Vec<String>>,
    /// Claims the token must have: name → accepted value(s).
    pub required_claims: Option<BTreeMap<String, RawClaimValues>>,
    /// PEM public key path.
    pub public_key: Option<String>,
    /// HMAC secret.
    pub secret: Option<RawSecret>,
    /// Where the token is read.
    pub source: Option<RawJwtSource>,
    /// `"pass"`, `"strip"` or `"exchange"`.
    pub forward: Option<String>,
    /// Clock leeway for `exp`, `nbf` and `iat`.
    pub leeway: Option<RawDuration>,
}

/// `routes.jwt.source`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtSource {
    /// Header name.
    pub header: Option<String>,
    /// Prefix to strip from the header value.
    pub prefix: Option<String>,
    /// Query parameter name.
    pub query: Option<String>,
    /// Cookie name.
    pub cookie: Option<String>,
}
