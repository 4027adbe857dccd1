//! Validation of `[routes.jwt]`: a token from an external identity server, verified with keys
//! from a file, a URL (`jwks_url`, fetched and refreshed), a PEM public key or a secret, plus
//! the route's required scopes and claims, into the typed [`JwtSpec`].
//!
//! Owns the shape checks only (required keys, enumerations, the URL's scheme, paths made
//! absolute, header names, refresh bounds) and the rule across routes that one `jwks_url` is
//! fetched one way. It must not read key files, fetch a URL nor parse PEM: that happens when
//! the snapshot is built (`crate::secure::jwt`, `crate::jwks`), so that `torii check` and a
//! reload report those problems with the same key paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use torii_protocol::jwt_verifier::RequiredClaims;

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::{duration, header_name, required_claims, ALGORITHMS};
use super::raw::RawRouteJwt;
use super::secret::{resolve_path, secret, RawSecret};
use super::{defaults, LoadEnv, RouteConfig};

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

/// A key set fetched from a URL (`jwks_url`): what identifies its fetcher. Routes naming the
/// same URL must agree on all of it (one fetcher per URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwksUrlSpec {
    /// `https://…` (or `http://…` with `insecure_jwks_http`).
    pub url: String,
    /// CA bundle (PEM) replacing the built-in Mozilla roots (`jwks_ca`).
    pub ca: Option<PathBuf>,
    /// Shortest time between two fetches; also the kid-miss rate limit (`jwks_refresh_min`).
    pub refresh_min: Duration,
    /// Longest time a set is used without a fetch (`jwks_refresh_max`).
    pub refresh_max: Duration,
}

/// Where the verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeysSpec {
    /// A JWKS document file (keys by `kid`).
    JwksFile(PathBuf),
    /// A JWKS document fetched from a URL and refreshed in the background.
    JwksUrl(JwksUrlSpec),
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
    /// Scopes and claims the token must carry (403 otherwise).
    pub required: RequiredClaims,
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
        raw.jwks_url.is_some(),
        raw.public_key.is_some(),
        raw.secret.is_some(),
    ];
    let url_only = [
        ("jwks_ca", raw.jwks_ca.is_some()),
        ("insecure_jwks_http", raw.insecure_jwks_http.is_some()),
        ("jwks_refresh_min", raw.jwks_refresh_min.is_some()),
        ("jwks_refresh_max", raw.jwks_refresh_max.is_some()),
    ];
    if raw.jwks_url.is_none() {
        for (key, _) in url_only.iter().filter(|(_, given)| *given) {
            c.push(p(key), "only applies with jwks_url");
        }
    }
    let keys = match set.iter().filter(|s| **s).count() {
        0 => {
            c.push(
                path,
                "one of jwks_file, jwks_url, public_key or secret is required",
            );
            None
        }
        1 => {
            if let Some(url) = &raw.jwks_url {
                jwks_url(c, path, url, raw, base_dir).map(JwtKeysSpec::JwksUrl)
            } else if let Some(f) = &raw.jwks_file {
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
                "only one of jwks_file, jwks_url, public_key or secret may be set",
            );
            None
        }
    };
    match &keys {
        Some(JwtKeysSpec::Secret(_)) if hmac < algorithms.len() => c.push(
            p("secret"),
            "a secret verifies HS* algorithms only (list HS256/HS384/HS512 in algorithms)",
        ),
        Some(JwtKeysSpec::JwksFile(_) | JwtKeysSpec::JwksUrl(_) | JwtKeysSpec::PublicKey(_))
            if hmac > 0 =>
        {
            c.push(
                p("algorithms"),
                "HS* algorithms need a secret, not public keys (key confusion)",
            )
        }
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
    let required = required_claims(c, path, &raw.required_scopes, &raw.required_claims);
    keys.map(|keys| JwtSpec {
        issuer: raw.issuer.clone(),
        audience: raw.audience.clone(),
        algorithms,
        keys,
        source,
        forward,
        leeway,
        required,
    })
}

/// `jwks_url` and the keys that go with it. The URL must be `https://` (or `http://` with
/// `insecure_jwks_http = true`), name a host, and carry no user information (it appears in
/// logs and metric labels) nor a fragment.
fn jwks_url(
    c: &mut Collector,
    path: &str,
    url: &str,
    raw: &RawRouteJwt,
    base_dir: &Path,
) -> Option<JwksUrlSpec> {
    let p = |k: &str| join(path, k);
    let insecure = raw.insecure_jwks_http.unwrap_or(false);
    let problem = match url.parse::<ureq::http::Uri>() {
        Err(_) => Some(format!("{url:?} is not a valid URL")),
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (_, None) => Some("needs a host".to_owned()),
            (_, Some(a)) if a.as_str().contains('@') => {
                Some("must not carry user information (it would show in logs)".to_owned())
            }
            (Some("https"), Some(_)) => None,
            (Some("http"), Some(_)) if insecure => None,
            (Some("http"), Some(_)) => Some(
                "http:// is refused: use https://, or set insecure_jwks_http = true (tests only)"
                    .to_owned(),
            ),
            _ => Some("must be an https:// URL".to_owned()),
        },
    };
    let problem = problem.or_else(|| url.contains('#').then(|| "must not have a fragment".into()));
    if let Some(why) = &problem {
        c.push(p("jwks_url"), why);
    }
    let refresh_min = duration(
        c,
        &p("jwks_refresh_min"),
        &raw.jwks_refresh_min,
        defaults::JWKS_REFRESH_MIN,
        Zero::Rejected,
    );
    let refresh_max = duration(
        c,
        &p("jwks_refresh_max"),
        &raw.jwks_refresh_max,
        defaults::JWKS_REFRESH_MAX,
        Zero::Rejected,
    );
    if refresh_min < defaults::JWKS_REFRESH_FLOOR {
        c.push(
            p("jwks_refresh_min"),
            "must be at least 1s (it also bounds the fetches a flood of unknown kids causes)",
        );
    }
    if refresh_max < refresh_min {
        c.push(
            p("jwks_refresh_max"),
            "must not be shorter than jwks_refresh_min",
        );
    }
    problem.is_none().then(|| JwksUrlSpec {
        url: url.to_owned(),
        ca: raw.jwks_ca.as_deref().map(|f| resolve_path(base_dir, f)),
        refresh_min,
        refresh_max,
    })
}

/// Routes naming one `jwks_url` share its fetcher, so they must agree on how it is fetched
/// (`jwks_ca`, `jwks_refresh_min`, `jwks_refresh_max`). Errors name the later route.
pub(super) fn shared_jwks_urls(c: &mut Collector, routes: &[RouteConfig]) {
    let mut seen: Vec<(usize, &JwksUrlSpec)> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let Some(JwtSpec {
            keys: JwtKeysSpec::JwksUrl(spec),
            ..
        }) = &r.jwt
        else {
            continue;
        };
        match seen.iter().find(|(_, s)| s.url == spec.url) {
            Some((first, s)) if *s != spec => c.push(
                format!("routes[{i}].jwt"),
                format!(
                    "routes[{first}] fetches the same jwks_url with another jwks_ca, \
                     jwks_refresh_min or jwks_refresh_max: one fetcher serves both, so they must agree"
                ),
            ),
            Some(_) => {}
            None => seen.push((i, spec)),
        }
    }
}

fn non_empty(c: &mut Collector, path: &str, v: &str) {
    if v.is_empty() {
        c.push(path, "must not be empty");
    }
}
