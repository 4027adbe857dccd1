//! Validation of `[[routes]]`: ids, names, domains, path prefixes, plus the checks that span
//! routes (unique ids, no two routes on the same domain and path); the route's sections are
//! validated by the modules below (`validate_target` for `targets`, `validate_upstream` for
//! the upstream settings, `validate_security`, `validate_tls`, `validate_jwt`, `auth`,
//! `quotas`, `validate_rules` for the request and response rules).
//!
//! Owns the domain and path-prefix grammars of the file.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::path::Path;

use super::error::{index, join, Collector};
use super::raw::RawRoute;
use super::validate_security::{challenge, info_token};
use super::validate_target::check_hostname;
use super::{defaults, Limits, LoadEnv, PathNormalization, RouteConfig, Scheme};
use super::{validate_jwt, validate_tls};
use crate::http1::canonicalize_path;

/// Validates every route, then the constraints across them.
pub(super) fn routes(
    c: &mut Collector,
    raw: &[RawRoute],
    limits: &Limits,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> Vec<RouteConfig> {
    let routes: Vec<RouteConfig> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| route(c, &index("routes", i), r, limits, base_dir, env))
        .collect();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut served: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        let path = index("routes", i);
        if !r.id.is_empty() {
            if let Some(first) = ids.insert(&r.id, i) {
                c.push(
                    join(&path, "id"),
                    format!("duplicate id {:?} (also routes[{first}])", r.id),
                );
            }
        }
        for (d, domain) in r.domains.iter().enumerate() {
            for p in &r.paths {
                match served.get(&(domain.as_str(), p.as_str())) {
                    Some(&first) if first != i => c.push(
                        index(&join(&path, "domains"), d),
                        format!(
                            "{domain}{p} is already served by routes[{first}] ({:?})",
                            routes[first].id
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        served.insert((domain, p), i);
                    }
                }
            }
        }
    }
    routes
}

fn route(
    c: &mut Collector,
    path: &str,
    raw: &RawRoute,
    limits: &Limits,
    base_dir: &Path,
    env: &dyn LoadEnv,
) -> RouteConfig {
    let p = |k: &str| join(path, k);
    let id = match raw.id.as_deref() {
        None => {
            c.push(p("id"), "required");
            String::new()
        }
        Some("") => {
            c.push(p("id"), "must not be empty");
            String::new()
        }
        Some(id) if id.starts_with('-') => {
            // `-` and `-token-service` label the unrouted and token-service requests.
            c.push(
                p("id"),
                format!("{id:?} must not start with '-' (reserved for metrics labels)"),
            );
            id.to_owned()
        }
        Some(id) => id.to_owned(),
    };
    let name = match raw.name.as_deref() {
        None => id.clone(),
        Some("") => {
            c.push(p("name"), "must not be empty");
            id.clone()
        }
        Some(n) => n.to_owned(),
    };
    let domains = non_empty_list(c, &p("domains"), raw.domains.as_deref(), check_domain);
    let default_paths = [defaults::ROUTE_PATH.to_owned()];
    let paths = non_empty_list(
        c,
        &p("paths"),
        Some(raw.paths.as_deref().unwrap_or(&default_paths)),
        check_path,
    );
    let targets = super::validate_target::targets(c, &p("targets"), raw.targets.as_deref(), env);
    let path_normalization = match raw.path_normalization.as_deref() {
        None | Some("canonical") => PathNormalization::Canonical,
        Some("refuse_ambiguous") => PathNormalization::RefuseAmbiguous,
        Some("forward_raw") => PathNormalization::ForwardRaw,
        Some(other) => {
            c.push(
                p("path_normalization"),
                format!(
                    "unknown mode {other:?} (expected \"canonical\", \"refuse_ambiguous\" or \"forward_raw\")"
                ),
            );
            PathNormalization::Canonical
        }
    };
    let upstream = super::validate_upstream::upstream(c, path, raw, &targets, limits);
    let challenge = raw
        .challenge
        .as_ref()
        .map(|ch| challenge(c, &p("challenge"), ch, base_dir, env));
    let info_token = raw
        .info_token
        .as_ref()
        .map(|it| info_token(c, &p("info_token"), it, base_dir, env));
    let apikeys = raw
        .apikeys
        .as_ref()
        .map(|a| super::auth::route_apikeys(c, &p("apikeys"), a));
    let upstream_tls = raw
        .upstream_tls
        .as_ref()
        .map(|t| validate_tls::upstream_tls(c, &p("upstream_tls"), t, base_dir));
    if upstream_tls.is_some() && !targets.iter().any(|t| t.scheme == Scheme::Https) {
        c.push(
            p("upstream_tls"),
            "applies to https:// targets only, and the route has none",
        );
    }
    let jwt = raw
        .jwt
        .as_ref()
        .and_then(|j| validate_jwt::jwt(c, &p("jwt"), j, raw.info_token.is_some(), base_dir, env));
    let rate_limit = raw
        .rate_limit
        .as_ref()
        .and_then(|rl| super::quotas::rate_limit(c, &p("rate_limit"), rl));
    let owned = super::validate_header_ops::Owned::of(challenge.as_ref(), info_token.as_ref());
    let rules = super::validate_rules::rules(c, path, raw, &paths, &owned);
    RouteConfig {
        rules,
        path_normalization,
        websocket: raw.websocket.unwrap_or(true),
        id,
        name,
        domains,
        paths,
        targets,
        upstream,
        challenge,
        info_token,
        apikeys,
        upstream_tls,
        jwt,
        rate_limit,
    }
}

/// Checks each entry of a required, non-empty list with no duplicates (after normalisation).
fn non_empty_list(
    c: &mut Collector,
    path: &str,
    raw: Option<&[String]>,
    check: fn(&str) -> Result<String, String>,
) -> Vec<String> {
    let list = match raw {
        None => {
            c.push(path, "required");
            return Vec::new();
        }
        Some([]) => {
            c.push(path, "must not be empty");
            return Vec::new();
        }
        Some(l) => l,
    };
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let item_path = index(path, i);
        if let Some(v) = c.check(&item_path, check(item)) {
            if out.contains(&v) {
                c.push(item_path, format!("duplicate entry {v:?}"));
            } else {
                out.push(v);
            }
        }
    }
    out
}

/// A route domain: exact host, `*.suffix`, `[ipv6]`, or `*` alone (the catch-all, matched after
/// every other domain); lowercased, no port.
pub(crate) fn check_domain(raw: &str) -> Result<String, String> {
    let d = raw.to_ascii_lowercase();
    if d.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if d == "*" {
        return Ok(d);
    }
    if let Some(inner) = d.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(d),
            _ => Err(format!(
                "invalid IPv6 domain {raw:?} (write \"[::1]\", without a port)"
            )),
        };
    }
    if d.contains(':') {
        return Err(format!("domain {raw:?} must not contain a port"));
    }
    let name = match d.strip_prefix("*.") {
        Some(suffix) => suffix,
        None => &d,
    };
    if name.contains('*') {
        return Err(format!(
            "invalid wildcard in {raw:?} (only a leading \"*.\" is allowed)"
        ));
    }
    check_hostname(name)?;
    Ok(d)
}

/// A path prefix: starts with `/`, no spaces, control characters, `#` or `?`, and written in
/// canonical form (routing compares prefixes with the canonical request path, so a prefix
/// such as `/a/../b` or `/%61` could never match as written).
fn check_path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("path {p:?} must start with '/'"));
    }
    if p.bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'#' || b == b'?')
    {
        return Err(format!(
            "path {p:?} contains a space, a control character, '#' or '?'"
        ));
    }
    let mut canonical = Vec::new();
    match canonicalize_path(p.as_bytes(), true, &mut canonical) {
        Ok(false) => Ok(p.to_owned()),
        Ok(true) => Err(format!(
            "path {p:?} is not in canonical form: write {:?} (request paths are matched after \
             decoding unreserved characters, resolving dot segments and merging slashes)",
            String::from_utf8_lossy(&canonical)
        )),
        Err(e) => Err(format!(
            "path {p:?} can never match: request paths with it are refused ({e})"
        )),
    }
}
