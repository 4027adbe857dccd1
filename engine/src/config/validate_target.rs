//! Validation of a route's `targets`: each entry a URL (`http://`, `https://`, `h2c://`) or a
//! table (`url`, `weight`, `backup`, `protocol`), and the rule across them (at least one
//! target that is not a backup).
//!
//! Owns the target URL and host-name grammars (route domains use the latter) and how a URL's
//! scheme and a `protocol` combine. Target host names are resolved here, through
//! [`LoadEnv::resolve`] (blocking DNS at load time, never per request); every address a name
//! resolves to is kept.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::error::{index, join, Collector};
use super::fields::{in_range, words};
use super::raw::{RawTarget, RawTargetTable};
use super::{upstream_defaults, LoadEnv, Scheme, TargetConfig, TargetProtocol};

/// The targets of the route whose `targets` key is at `path`. An entry in error is left out.
pub(super) fn targets(
    c: &mut Collector,
    path: &str,
    raw: Option<&[RawTarget]>,
    env: &dyn LoadEnv,
) -> Vec<TargetConfig> {
    let list = match raw {
        None => {
            c.push(path, "required");
            return Vec::new();
        }
        Some([]) => {
            c.push(path, "must not be empty");
            return Vec::new();
        }
        Some(list) => list,
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let entry_path = index(path, i);
        let found = match t {
            RawTarget::Url(url) => c.check(&entry_path, target(url, env)),
            RawTarget::Table(t) => table(c, &entry_path, t, env),
        };
        out.extend(found);
    }
    let backup = |t: &RawTarget| matches!(t, RawTarget::Table(t) if t.backup == Some(true));
    if list.iter().all(backup) {
        c.push(
            path,
            "every target is a backup: at least one must not be (backup targets take traffic only when no other endpoint is available)",
        );
    }
    out
}

/// A `targets` entry written as a table; `None` when any of its keys is in error.
fn table(
    c: &mut Collector,
    path: &str,
    raw: &RawTargetTable,
    env: &dyn LoadEnv,
) -> Option<TargetConfig> {
    let p = |k: &str| join(path, k);
    let parsed = match &raw.url {
        None => {
            c.push(
                p("url"),
                "required: the target's URL, such as \"http://app.internal:9000\"",
            );
            None
        }
        Some(url) => c.check(&p("url"), target(url, env)),
    };
    let weight = match raw.weight {
        None => Some(upstream_defaults::WEIGHT),
        Some(w) => c.check(&p("weight"), in_range(w, 1..=upstream_defaults::MAX_WEIGHT)),
    };
    let written = match raw.protocol.as_deref() {
        None => None,
        Some(word) => Some(c.check(&p("protocol"), protocol_word(word))?),
    };
    let mut t = parsed?;
    if let Some(written) = written {
        t.protocol = c.check(&p("protocol"), combine(written, &t))?;
    }
    t.weight = weight?;
    t.backup = raw.backup.unwrap_or(false);
    t.url = format!("{}://{}", url_scheme(t.scheme, t.protocol), t.host_header);
    Some(t)
}

/// A `protocol` word.
fn protocol_word(word: &str) -> Result<TargetProtocol, String> {
    TargetProtocol::ALL
        .into_iter()
        .find(|p| p.as_str() == word)
        .ok_or_else(|| {
            format!(
                "unknown protocol {word:?} (expected {})",
                words(&TargetProtocol::ALL.map(TargetProtocol::as_str))
            )
        })
}

/// The protocol `written` for target `t` (parsed from its URL), when the URL's scheme allows
/// it: `"h2"` and `"auto"` need TLS (`https://`), `"h2c"` plain TCP, and an `h2c://` URL
/// speaks HTTP/2 only.
fn combine(written: TargetProtocol, t: &TargetConfig) -> Result<TargetProtocol, String> {
    let h2c_url = t.protocol == TargetProtocol::H2c;
    match (written, t.scheme) {
        (TargetProtocol::Http1, _) if h2c_url => Err(
            "\"http1\" on an h2c:// target, which speaks HTTP/2 with prior knowledge: write http:// for HTTP/1.1".to_owned(),
        ),
        (TargetProtocol::Http1, _)
        | (TargetProtocol::H2 | TargetProtocol::Auto, Scheme::Https)
        | (TargetProtocol::H2c, Scheme::Http) => Ok(written),
        (TargetProtocol::H2, Scheme::Http) => Err(
            "\"h2\" is HTTP/2 over TLS and needs an https:// target; HTTP/2 over plain TCP is \"h2c\"".to_owned(),
        ),
        (TargetProtocol::Auto, Scheme::Http) => Err(
            "\"auto\" lets the TLS handshake (ALPN) choose and needs an https:// target; HTTP/2 over plain TCP is \"h2c\"".to_owned(),
        ),
        (TargetProtocol::H2c, Scheme::Https) => Err(
            "\"h2c\" is HTTP/2 over plain TCP and this target is https://: write \"h2\" (or \"auto\") for HTTP/2 over TLS, or an http:// or h2c:// URL".to_owned(),
        ),
    }
}

/// The scheme a target's normalised URL shows: `h2c` for HTTP/2 over plain TCP.
fn url_scheme(scheme: Scheme, protocol: TargetProtocol) -> &'static str {
    match (scheme, protocol) {
        (Scheme::Http, TargetProtocol::H2c) => "h2c",
        (s, _) => s.as_str(),
    }
}

/// Checks a DNS host name (already lowercase): labels of `[a-z0-9_-]`, 1–63 bytes, ≤ 253 in all.
pub(super) fn check_hostname(h: &str) -> Result<(), String> {
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

/// Parses `http://host[:port]`, `https://host[:port]` or `h2c://host[:port]` and resolves
/// it: weight 1, not a backup, protocol HTTP/1.1 (`h2c://`: [`TargetProtocol::H2c`] over
/// [`Scheme::Http`]).
pub(crate) fn target(raw: &str, env: &dyn LoadEnv) -> Result<TargetConfig, String> {
    let lower = raw.to_ascii_lowercase();
    let (scheme, protocol, rest) = if let Some(r) = lower.strip_prefix("http://") {
        (Scheme::Http, TargetProtocol::Http1, r)
    } else if let Some(r) = lower.strip_prefix("https://") {
        (Scheme::Https, TargetProtocol::Http1, r)
    } else if let Some(r) = lower.strip_prefix("h2c://") {
        (Scheme::Http, TargetProtocol::H2c, r)
    } else {
        return Err(format!(
            "target {raw:?} must start with http://, https:// or h2c://"
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
        weight: upstream_defaults::WEIGHT,
        backup: false,
        protocol,
        url: format!("{}://{host_header}", url_scheme(scheme, protocol)),
        host_header,
    })
}
