//! Validation of `[routes.cors]`: the origins a browser may call the route from, and what the
//! preflight answers (methods, request headers, exposed headers, credentials, cache time).
//!
//! Owns the origin grammar (`scheme://host[:port]`, `https://*.suffix[:port]`, `"*"`) and the
//! Fetch standard's rule that a wildcard (`"*"` origin, method, header or exposed header)
//! means nothing to a browser on a request with credentials, so `"*"` with
//! `allow_credentials = true` is an error. Warns about methods the route's own `methods` or
//! `read_only` refuse before any CORS answer. No IO.

use super::duration::Zero;
use super::error::{index, join, Collector};
use super::fields::{checked_duration, is_token};
use super::raw_rules::RawCors;
use super::rules_spec::{CorsSpec, OriginRule};
use super::validate_rule_values::methods as method_list;
use super::validate_target::check_hostname;

/// `allow_methods` when not written (the CORS-safelisted methods).
const DEFAULT_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// `[routes.cors]` at `path`. `route_methods` and `read_only` are the route's filters.
pub(super) fn cors(
    c: &mut Collector,
    path: &str,
    raw: &RawCors,
    route_methods: &[String],
    read_only: bool,
) -> Option<CorsSpec> {
    let p = |k: &str| join(path, k);
    let credentials = raw.allow_credentials.unwrap_or(false);
    let origins = origins(
        c,
        &p("allow_origins"),
        raw.allow_origins.as_deref(),
        credentials,
    );
    let allow_methods = match raw.allow_methods.as_deref() {
        None => DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect(),
        Some(list) => method_list(c, &p("allow_methods"), Some(list)),
    };
    wildcard_alone(c, &p("allow_methods"), &allow_methods, credentials);
    for (i, m) in allow_methods.iter().enumerate() {
        let refused_by_methods = !route_methods.is_empty() && !route_methods.contains(m);
        let refused_by_read_only = read_only && !["GET", "HEAD", "OPTIONS"].contains(&m.as_str());
        if m != "*" && raw.allow_methods.is_some() && (refused_by_methods || refused_by_read_only) {
            c.warn(
                index(&p("allow_methods"), i),
                format!("{m} is refused by the route's methods or read_only before any CORS answer: browsers may ask, the request never runs"),
            );
        }
    }
    let allow_headers = names(
        c,
        &p("allow_headers"),
        raw.allow_headers.as_deref(),
        credentials,
    );
    let expose_headers = names(
        c,
        &p("expose_headers"),
        raw.expose_headers.as_deref(),
        credentials,
    );
    let max_age = match &raw.max_age {
        None => None,
        Some(_) => checked_duration(
            c,
            &p("max_age"),
            &raw.max_age,
            Default::default(),
            Zero::Allowed,
        ),
    };
    Some(CorsSpec {
        origins: origins?,
        allow_methods,
        allow_headers,
        expose_headers,
        allow_credentials: credentials,
        max_age,
    })
}

/// `"*"` must be the only entry of a list, and is refused with credentials.
fn wildcard_alone(c: &mut Collector, path: &str, list: &[String], credentials: bool) {
    if let Some(i) = list.iter().position(|x| x == "*") {
        if list.len() > 1 {
            c.push(
                index(path, i),
                "\"*\" must be the only entry (it already means every one)",
            );
        } else if credentials {
            c.push(
                index(path, i),
                "\"*\" is refused with allow_credentials = true: the Fetch standard gives a wildcard no meaning on requests with credentials; list the values",
            );
        }
    }
}

/// `allow_origins`: required, not empty.
fn origins(
    c: &mut Collector,
    path: &str,
    raw: Option<&[String]>,
    credentials: bool,
) -> Option<Vec<OriginRule>> {
    let list = match raw {
        None => {
            c.push(
                path,
                "required: the origins browsers may call this route from",
            );
            return None;
        }
        Some([]) => {
            c.push(path, "must not be empty");
            return None;
        }
        Some(l) => l,
    };
    let mut out: Vec<OriginRule> = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let at = index(path, i);
        let Some(rule) = c.check(&at, origin(o)) else {
            continue;
        };
        if rule == OriginRule::Any && (list.len() > 1 || credentials) {
            let why = if credentials {
                "\"*\" is refused with allow_credentials = true: the Fetch standard forbids Access-Control-Allow-Origin: * on requests with credentials; list the origins"
            } else {
                "\"*\" must be the only origin (it already allows every one)"
            };
            c.push(at, why);
        } else if out.contains(&rule) {
            c.push(at, format!("duplicate origin {o:?}"));
        } else {
            out.push(rule);
        }
    }
    Some(out)
}

/// One origin: `"*"`, `scheme://host[:port]` or `https://*.suffix[:port]`.
fn origin(o: &str) -> Result<OriginRule, String> {
    if o == "*" {
        return Ok(OriginRule::Any);
    }
    let lower = o.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = lower.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(format!(
            "{o:?} is not an origin: write scheme://host[:port] (\"https://app.example.com\"), https://*.suffix, or \"*\""
        ));
    };
    let (host, port) = if rest.starts_with('[') {
        let close = rest.find(']').map_or(rest.len(), |i| i + 1);
        let (h, after) = rest.split_at(close);
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("{o:?}: an origin has no path, query or fragment")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && !p.starts_with(['0', '+']) => Some(n),
            _ => return Err(format!("{o:?}: invalid port")),
        },
    };
    let default = if scheme == "https" { 443 } else { 80 };
    if port == Some(default) {
        return Err(format!(
            "{o:?}: leave the default port out (browsers send the origin without it)"
        ));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if scheme != "https" {
            return Err(format!("{o:?}: a wildcard origin must be https:// (any plain-HTTP subdomain could be forged on the network)"));
        }
        check_hostname(suffix).map_err(|e| format!("{o:?}: {e}"))?;
        if !suffix.contains('.') {
            return Err(format!(
                "{o:?}: the wildcard covers a whole top-level domain; name a domain you own"
            ));
        }
        return Ok(OriginRule::Subdomains {
            suffix: suffix.to_owned(),
            port,
        });
    }
    if host.contains('*') {
        return Err(format!("{o:?}: '*' only as a leading \"*.\" of the host"));
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{o:?}: invalid IPv6 address"))?;
    } else {
        check_hostname(host).map_err(|e| format!("{o:?}: {e}"))?;
    }
    Ok(OriginRule::Exact(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }))
}

/// `allow_headers` / `expose_headers`: tokens, lowercase, no duplicates; `"*"` alone.
fn names(c: &mut Collector, path: &str, raw: Option<&[String]>, credentials: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, n) in raw.unwrap_or_default().iter().enumerate() {
        let lower = n.to_ascii_lowercase();
        if n != "*" && !is_token(n) {
            c.push(
                index(path, i),
                format!("{n:?} is not a valid HTTP header name"),
            );
        } else if out.contains(&lower) {
            c.push(index(path, i), format!("duplicate header {n:?}"));
        } else {
            out.push(lower);
        }
    }
    wildcard_alone(c, path, &out, credentials);
    out
}
