//! Validation of `[[routes]]`: ids, names, domains, path prefixes and targets, plus the checks that
//! span routes (unique ids, no two routes on the same domain and path).
//!
//! Owns the host-name and target URL grammar of the file. Target host names are resolved here,
//! through [`LoadEnv::resolve`] (blocking DNS at load time, never per request).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;

use super::error::{index, join, Collector};
use super::raw::RawRoute;
use super::validate_security::{challenge, info_token};
use super::{defaults, Limits, LoadEnv, PathNormalization, RouteConfig, Scheme, TargetConfig};
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
    let targets_path = p("targets");
    let mut targets = Vec::new();
    match raw.targets.as_deref() {
        None => c.push(&targets_path, "required"),
        Some([]) => c.push(&targets_path, "must not be empty"),
        Some(list) => {
            for (i, t) in list.iter().enumerate() {
                if let Some(t) = c.check(&index(&targets_path, i), target(t, env)) {
                    targets.push(t);
                }
            }
        }
    }
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
    let upstream = super::validate_upstream::upstream(c, path, raw, limits);
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
    RouteConfig {
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

/// Checks a DNS host name (already lowercase): labels of `[a-z0-9_-]`, 1–63 bytes, ≤ 253 in all.
fn check_hostname(h: &str) -> Result<(), String> {
    if h.len() > 253 {
        return Err("host name longer than 253 characters".to_owned());
    }
    if h.ends_with('.') {
        return Err("must not end with a dot".to_owned());
    }
    for label in h.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "invalid host name {h:?} (empty or over-long label)"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!("invalid host name {h:?} (letters, digits, '-', '_' and dots; punycode for non-ASCII)"));
        }
    }
    Ok(())
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

/// Parses `http://host[:port]` or `https://host[:port]` and resolves it.
pub(crate) fn target(raw: &str, env: &dyn LoadEnv) -> Result<TargetConfig, String> {
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = lower.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err(format!(
            "target {raw:?} must start with http:// or https://"
        ));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !tail.is_empty() && tail != "/" {
        return Err(format!(
            "target {raw:?} must not have a path, query or fragment (the request path is forwarded as is)"
        ));
    }
    if authority.contains('@') {
        return Err(format!("target {raw:?} must not contain user information"));
    }
    let (host, port_text) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("target {raw:?}: unclosed '['"))?;
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("target {raw:?}: invalid IPv6 address"))?;
        let port = match after {
            "" => None,
            a => Some(
                a.strip_prefix(':')
                    .ok_or_else(|| format!("target {raw:?}: junk after ']'"))?,
            ),
        };
        (inner, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("target {raw:?} has no host"));
    }
    let port = match port_text {
        None => scheme.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("target {raw:?}: invalid port (1-65535)")),
        },
    };
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_none() {
        check_hostname(host).map_err(|e| format!("target {raw:?}: {e}"))?;
    }
    let addrs = match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            let mut found = env
                .resolve(host, port)
                .map_err(|e| format!("cannot resolve {host:?}: {e}"))?;
            // One endpoint per address, in the resolver's order (duplicates dropped).
            let mut seen = std::collections::HashSet::new();
            found.retain(|a| seen.insert(*a));
            found
        }
    };
    let addr = *addrs
        .first()
        .ok_or_else(|| format!("{host:?} resolved to no address"))?;
    let bracketed = if matches!(ip, Some(IpAddr::V6(_))) {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let host_header = if port == scheme.default_port() {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    };
    Ok(TargetConfig {
        scheme,
        host: host.to_owned(),
        port,
        addr,
        addrs,
        named: ip.is_none(),
        weight: super::upstream_defaults::WEIGHT,
        backup: false,
        protocol: super::TargetProtocol::Http1,
        url: format!("{}://{host_header}", scheme.as_str()),
        host_header,
    })
}
