//! The validated form of one `[[routes]]` entry and of its security sections: what
//! `validate_route` and `validate_security` produce and the snapshot builder consumes.
//!
//! Owns the route-level types ([`RouteConfig`], [`TargetConfig`], [`ChallengeSpec`],
//! [`InfoTokenSpec`], [`AlgoSpec`], [`PathNormalization`]). Data only: no validation, no IO;
//! secrets and key files stay unresolved.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::auth::RouteApiKeysSpec;
use super::quotas::RateLimitSpec;
use super::rules_spec::RouteRules;
use super::secret::RawSecret;
use super::upstream_spec::{TargetProtocol, UpstreamSpec};
use super::validate_jwt::JwtSpec;
use super::validate_tls::UpstreamTlsSpec;

/// `routes.path_normalization`: the path a route's backend receives. Routing always matches
/// the canonical path (`crate::http1::canonicalize_path`), and paths with no single meaning
/// (`%2F`, `\`, `..` above the root…) are refused with 400 whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathNormalization {
    /// The canonical path (the default): the backend serves the resource Torii routed and
    /// checked.
    #[default]
    Canonical,
    /// The client's bytes, but only when they are already canonical; any request whose path
    /// needed normalising is refused with 400. For backends that must see the path byte for
    /// byte and where a rewrite would be wrong.
    RefuseAmbiguous,
    /// The client's bytes, as sent, even when they differ from the canonical path that was
    /// routed. The backend may then read another resource than Torii checked (a backend that
    /// does not decode `%61` serves `/%61dmin` as another path than `/admin`): use only when
    /// the backend resolves paths exactly as RFC 3986 does, or when the route has no checks.
    ForwardRaw,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Unique identifier.
    pub id: String,
    /// Name, the `aud` of tokens sent to the backend (defaults to `id`).
    pub name: String,
    /// Lowercase exact host names (no port) or `*.suffix` wildcards.
    pub domains: Vec<String>,
    /// Path prefixes, each starting with `/`.
    pub paths: Vec<String>,
    /// Where requests go, each resolved at load (and re-resolved at run time when a name).
    pub targets: Vec<TargetConfig>,
    /// How endpoints are chosen, checked, ejected, timed and retried.
    pub upstream: UpstreamSpec,
    /// The exchange protocol, when on.
    pub challenge: Option<ChallengeSpec>,
    /// The info token, when on.
    pub info_token: Option<InfoTokenSpec>,
    /// `[routes.apikeys]`: API keys required, when on.
    pub apikeys: Option<RouteApiKeysSpec>,
    /// TLS settings of the `https://` targets (defaults when absent).
    pub upstream_tls: Option<UpstreamTlsSpec>,
    /// External JWT verification, when on.
    pub jwt: Option<JwtSpec>,
    /// The path sent to the backend.
    pub path_normalization: PathNormalization,
    /// `[routes.rate_limit]`: calls per window per client address, when set.
    pub rate_limit: Option<RateLimitSpec>,
    /// WebSocket upgrades are carried (`websocket`, default true); when false, `Upgrade` is
    /// dropped like any hop-by-hop header.
    pub websocket: bool,
    /// Path, redirect, filter, header and CORS rules (issue 30): validated and compiled, not
    /// yet applied to requests.
    pub rules: RouteRules,
}

/// URL scheme of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://` (and `h2c://`, HTTP/2 over the same plain TCP).
    Http,
    /// `https://`.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// One upstream target (`targets[]`, a URL or a table), resolved at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// Scheme.
    pub scheme: Scheme,
    /// Lowercase host as written (an IPv6 literal without brackets).
    pub host: String,
    /// Port (80 for `http://` and `h2c://`, 443 for `https://`, when not written).
    pub port: u16,
    /// First address the host resolved to at load.
    pub addr: SocketAddr,
    /// Every address the host resolved to at load (`addr` first); one for an IP literal.
    pub addrs: Vec<SocketAddr>,
    /// True when `host` is a name (re-resolved at run time), false for an IP literal.
    pub named: bool,
    /// Share of the traffic against the route's other targets (1–1000, default 1); each
    /// address of a name gets this weight.
    pub weight: u32,
    /// A backup target takes traffic only when no primary endpoint is available.
    pub backup: bool,
    /// How Torii speaks to it.
    pub protocol: TargetProtocol,
    /// `Host` header to send: `host[:port]`, port omitted when it is the scheme's default,
    /// IPv6 literals in brackets.
    pub host_header: String,
    /// Normalised URL `scheme://host_header`, for logs: `h2c://` for HTTP/2 over plain TCP
    /// (however it was written), else the scheme.
    pub url: String,
}

/// Exchange protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeVersion {
    /// Random state echoed back as is.
    V1,
    /// Signed tokens both ways.
    V2,
}

/// `[routes.challenge]`, validated. Keys are not resolved yet.
#[derive(Debug, Clone)]
pub struct ChallengeSpec {
    /// Protocol version (default V2).
    pub version: ChallengeVersion,
    /// Token lifetime (default 30 s).
    pub ttl: Duration,
    /// Clock leeway (default 10 s).
    pub leeway: Duration,
    /// Header carrying the state to the backend.
    pub request_header: String,
    /// Header carrying the answer back; always removed before the client sees the response.
    pub response_header: String,
    /// Algorithm and signing key of the gateway → backend token.
    pub to_backend: AlgoSpec,
    /// Algorithm and verifying key of the backend → gateway token.
    pub from_backend: AlgoSpec,
    /// Paths (regexes on the request path) that skip the challenge.
    pub exclude: Vec<regex::Regex>,
}

/// Info token layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoTokenVersion {
    /// Otoroshi's current layout.
    Latest,
    /// Otoroshi's legacy layout.
    Legacy,
}

/// `[routes.info_token]`, validated. Keys are not resolved yet.
#[derive(Debug, Clone)]
pub struct InfoTokenSpec {
    /// Layout (default latest).
    pub version: InfoTokenVersion,
    /// Header name (default `Otoroshi-Claim`).
    pub header: String,
    /// Token lifetime (default 30 s).
    pub ttl: Duration,
    /// Signing algorithm and key.
    pub algo: AlgoSpec,
}

/// An algorithm and its key material, unresolved.
///
/// HS* algorithms carry a `secret`; RS*/PS*/ES* carry `private_key` (signing) and/or `public_key`
/// (verifying) paths, made absolute against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgoSpec {
    /// JOSE name: HS256/384/512, RS256/384/512, PS256/384/512, ES256/384.
    pub algorithm: String,
    /// HMAC secret, unresolved (`${env.…}`, `${file:…}` or literal).
    pub secret: Option<RawSecret>,
    /// PEM private key path.
    pub private_key: Option<PathBuf>,
    /// PEM public key path.
    pub public_key: Option<PathBuf>,
    /// Where `secret`, `private_key` and `public_key` are written, in the file's key names
    /// (`routes[0].challenge`, or `routes[0].challenge.to_backend` when that table brings its
    /// own key): errors found when the keys are built are reported there.
    pub key_path: String,
}

impl AlgoSpec {
    /// Whether the algorithm is an HMAC one (HS*).
    pub fn is_hmac(&self) -> bool {
        self.algorithm.starts_with("HS")
    }
}
