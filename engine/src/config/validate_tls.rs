//! Validation of the TLS and external-JWT parts of the file: `[[certificates]]`,
//! `[gateway.client_auth]`, `routes[].upstream_tls` and `[routes.jwt]`, into the typed specs
//! defined here.
//!
//! Owns the shape checks only (required keys, enumerations, paths made absolute, header names).
//! It must not read certificate or key files nor parse PEM: that happens when the snapshot is
//! built (`crate::tls`, `crate::secure::jwt`), so that `torii check` and a reload report file
//! problems with the same key paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::{duration, header_name, ALGORITHMS};
use super::raw::{RawCertificate, RawClientAuth, RawRouteJwt, RawUpstreamTls};
use super::secret::{resolve_path, secret, RawSecret};
use super::{defaults, LoadEnv};

/// One `[[certificates]]` entry: a PEM chain and its key, served by SNI on https listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSpec {
    /// Identifier (for logs and errors).
    pub id: String,
    /// PEM chain path (leaf first).
    pub cert: PathBuf,
    /// PEM private key path (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[gateway.client_auth]`: client-certificate authentication (mTLS) on https listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthSpec {
    /// CA bundle (PEM) that client certificates must chain to.
    pub ca: PathBuf,
    /// True: a client without a valid certificate fails the handshake. False: a certificate is
    /// asked for and checked when sent, but not required.
    pub required: bool,
    /// The https listeners it applies to (empty: every https listener).
    pub listeners: Vec<SocketAddr>,
}

impl ClientAuthSpec {
    /// Whether the https listener configured as `addr` asks for client certificates.
    pub fn applies_to(&self, addr: SocketAddr) -> bool {
        self.listeners.is_empty() || self.listeners.contains(&addr)
    }
}

/// `routes[].upstream_tls`: how `https://` targets of a route are verified and authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTlsSpec {
    /// CA bundle (PEM) replacing the built-in Mozilla roots.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mTLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    pub client_key: Option<PathBuf>,
    /// Name sent in SNI and verified in the certificate, instead of the target's host.
    pub server_name: Option<String>,
}

/// Where `[routes.jwt]` reads the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSourceSpec {
    /// A header, with a prefix to remove (`Bearer `), compared case-insensitively.
    Header {
        /// Header name.
        name: String,
        /// Prefix before the token (may be empty).
        prefix: String,
    },
    /// A query parameter.
    Query(String),
    /// A cookie.
    Cookie(String),
}

/// What happens to a verified external token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtForward {
    /// Forwarded unchanged.
    Pass,
    /// Removed before the request goes to the backend.
    Strip,
    /// Removed and replaced by the route's info token carrying the external `sub`, `scope`, `iss`.
    Exchange,
}

/// Where the verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeysSpec {
    /// A JWKS document file (keys by `kid`).
    JwksFile(PathBuf),
    /// One PEM public key (SPKI, or an RSA PKCS#1 public key).
    PublicKey(PathBuf),
    /// An HMAC secret (HS* algorithms).
    Secret(RawSecret),
}

/// `[routes.jwt]`, validated. Keys are not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSpec {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (equal, or contained in an array), when set.
    pub audience: Option<String>,
    /// Algorithms accepted (the token's `alg` must be one of them and match its key).
    pub algorithms: Vec<String>,
    /// Key material.
    pub keys: JwtKeysSpec,
    /// Where the token is.
    pub source: JwtSourceSpec,
    /// Pass, strip or exchange.
    pub forward: JwtForward,
    /// Clock leeway for `exp`, `nbf`, `iat`.
    pub leeway: Duration,
}

/// `[[certificates]]`.
pub(super) fn certificates(
    c: &mut Collector,
    raw: &[RawCertificate],
    base_dir: &Path,
) -> Vec<CertificateSpec> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, rc) in raw.iter().enumerate() {
        let path = index("certificates", i);
        let p = |k: &str| join(&path, k);
        let id = rc
            .id
            .clone()
            .unwrap_or_else(|| format!("certificates[{i}]"));
        if out.iter().any(|s: &CertificateSpec| s.id == id) {
            c.push(p("id"), format!("duplicate id {id:?}"));
        }
        let mut file = |key: &str, v: &Option<String>| match v.as_deref() {
            None | Some("") => {
                c.push(p(key), "required");
                None
            }
            Some(f) => Some(resolve_path(base_dir, f)),
        };
        let cert = file("cert", &rc.cert);
        let key = file("key", &rc.key);
        if let (Some(cert), Some(key)) = (cert, key) {
            out.push(CertificateSpec { id, cert, key });
        }
    }
    out
}

/// `[gateway.client_auth]`; `https` are the validated https listener addresses.
pub(super) fn client_auth(
    c: &mut Collector,
    raw: &RawClientAuth,
    https: &[SocketAddr],
    base_dir: &Path,
) -> Option<ClientAuthSpec> {
    let path = "gateway.client_auth";
    let p = |k: &str| join(path, k);
    let ca = match raw.ca.as_deref() {
        None | Some("") => {
            c.push(p("ca"), "required");
            None
        }
        Some(f) => Some(resolve_path(base_dir, f)),
    };
    let required = match raw.mode.as_deref() {
        None | Some("required") => true,
        Some("optional") => false,
        Some(m) => {
            c.push(
                p("mode"),
                format!("unknown mode {m:?} (expected \"required\" or \"optional\")"),
            );
            true
        }
    };
    let mut listeners = Vec::new();
    for (i, s) in raw.listeners.iter().enumerate() {
        let lp = index(&p("listeners"), i);
        match s.parse::<SocketAddr>() {
            Ok(a) if https.contains(&a) => listeners.push(a),
            Ok(a) => c.push(lp, format!("{a} is not one of gateway.https")),
            Err(_) => c.push(lp, format!("invalid address {s:?}")),
        }
    }
    if https.is_empty() {
        c.push(path, "needs at least one gateway.https listener");
    }
    ca.map(|ca| ClientAuthSpec {
        ca,
        required,
        listeners,
    })
}

/// `routes[i].upstream_tls`.
pub(super) fn upstream_tls(
    c: &mut Collector,
    path: &str,
    raw: &RawUpstreamTls,
    base_dir: &Path,
) -> UpstreamTlsSpec {
    let p = |k: &str| join(path, k);
    let file = |v: &Option<String>| v.as_deref().map(|f| resolve_path(base_dir, f));
    let spec = UpstreamTlsSpec {
        ca: file(&raw.ca),
        client_cert: file(&raw.client_cert),
        client_key: file(&raw.client_key),
        server_name: raw.server_name.as_ref().map(|s| s.to_ascii_lowercase()),
    };
    match (&spec.client_cert, &spec.client_key) {
        (Some(_), None) => c.push(p("client_key"), "required with client_cert"),
        (None, Some(_)) => c.push(p("client_cert"), "required with client_key"),
        _ => {}
    }
    if let Some(name) = &spec.server_name {
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            c.push(
                p("server_name"),
                format!("{name:?} is not a valid DNS name or IP address"),
            );
        }
    }
    spec
}

/// `[routes.jwt]`. `has_info_token` tells whether the route has `[routes.info_token]`, which
/// `forward = "exchange"` needs.
pub(super) fn jwt(
    c: &mut Collector,
    path: &str,
    raw: &RawRouteJwt,
    has_info_token: bool,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Option<JwtSpec> {
    let p = |k: &str| join(path, k);
    let algorithms: Vec<String> = match raw.algorithms.as_deref() {
        None | Some([]) => {
            c.push(p("algorithms"), "required: the algorithms tokens may use");
            Vec::new()
        }
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                if ALGORITHMS.contains(&a.as_str()) {
                    Some(a.clone())
                } else {
                    c.push(
                        index(&p("algorithms"), i),
                        format!(
                            "unknown algorithm {a:?} (expected one of {})",
                            ALGORITHMS.join(", ")
                        ),
                    );
                    None
                }
            })
            .collect(),
    };
    let hmac = algorithms.iter().filter(|a| a.starts_with("HS")).count();
    if hmac > 0 && hmac < algorithms.len() {
        c.push(
            p("algorithms"),
            "HS* algorithms cannot be mixed with RS*/PS*/ES* ones (key confusion)",
        );
    }
    let set = [
        raw.jwks_file.is_some(),
        raw.public_key.is_some(),
        raw.secret.is_some(),
    ];
    let keys = match set.iter().filter(|s| **s).count() {
        0 => {
            c.push(path, "one of jwks_file, public_key or secret is required");
            None
        }
        1 => {
            if let Some(f) = &raw.jwks_file {
                Some(JwtKeysSpec::JwksFile(resolve_path(base_dir, f)))
            } else if let Some(f) = &raw.public_key {
                Some(JwtKeysSpec::PublicKey(resolve_path(base_dir, f)))
            } else {
                raw.secret
                    .as_ref()
                    .and_then(|s| secret(c, &p("secret"), s, base_dir, env))
                    .map(JwtKeysSpec::Secret)
            }
        }
        _ => {
            c.push(
                path,
                "only one of jwks_file, public_key or secret may be set",
            );
            None
        }
    };
    match &keys {
        Some(JwtKeysSpec::Secret(_)) if hmac < algorithms.len() => c.push(
            p("secret"),
            "a secret verifies HS* algorithms only (list HS256/HS384/HS512 in algorithms)",
        ),
        Some(JwtKeysSpec::JwksFile(_) | JwtKeysSpec::PublicKey(_)) if hmac > 0 => c.push(
            p("algorithms"),
            "HS* algorithms need a secret, not public keys (key confusion)",
        ),
        _ => {}
    }
    let source = match &raw.source {
        None => JwtSourceSpec::Header {
            name: "Authorization".to_owned(),
            prefix: "Bearer ".to_owned(),
        },
        Some(s) => {
            let sp = p("source");
            let given = [s.header.is_some(), s.query.is_some(), s.cookie.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                c.push(&sp, "exactly one of header, query or cookie is required");
            }
            if s.prefix.is_some() && s.header.is_none() {
                c.push(join(&sp, "prefix"), "only applies to a header source");
            }
            if s.header.is_some() {
                let name = header_name(c, &join(&sp, "header"), &s.header, "Authorization");
                JwtSourceSpec::Header {
                    name,
                    prefix: s.prefix.clone().unwrap_or_default(),
                }
            } else if let Some(q) = &s.query {
                non_empty(c, &join(&sp, "query"), q);
                JwtSourceSpec::Query(q.clone())
            } else if let Some(k) = &s.cookie {
                non_empty(c, &join(&sp, "cookie"), k);
                JwtSourceSpec::Cookie(k.clone())
            } else {
                JwtSourceSpec::Query(String::new())
            }
        }
    };
    let forward = match raw.forward.as_deref() {
        None | Some("pass") => JwtForward::Pass,
        Some("strip") => JwtForward::Strip,
        Some("exchange") => JwtForward::Exchange,
        Some(f) => {
            c.push(
                p("forward"),
                format!("unknown value {f:?} (expected \"pass\", \"strip\" or \"exchange\")"),
            );
            JwtForward::Pass
        }
    };
    if forward != JwtForward::Pass && !matches!(source, JwtSourceSpec::Header { .. }) {
        c.push(
            p("forward"),
            "strip and exchange need a header source (a token in a query string or a cookie can only be passed)",
        );
    }
    if forward == JwtForward::Exchange && !has_info_token {
        c.push(
            p("forward"),
            "exchange needs [routes.info_token]: the external token is replaced by the route's info token",
        );
    }
    let leeway = duration(
        c,
        &p("leeway"),
        &raw.leeway,
        defaults::JWT_LEEWAY,
        Zero::Allowed,
    );
    keys.map(|keys| JwtSpec {
        issuer: raw.issuer.clone(),
        audience: raw.audience.clone(),
        algorithms,
        keys,
        source,
        forward,
        leeway,
    })
}

fn non_empty(c: &mut Collector, path: &str, v: &str) {
    if v.is_empty() {
        c.push(path, "must not be empty");
    }
}
