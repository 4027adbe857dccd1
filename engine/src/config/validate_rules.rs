//! Validation of a route's request and response rules (issue 30): `strip_prefix`,
//! `target_root`, `rewrite`, `preserve_host`, `force_https`, `redirect`, `methods`,
//! `read_only`, `allow_ips`, `deny_ips`, `max_body_bytes`, `request_headers`,
//! `response_headers` and `header_checks`; `[routes.cors]` is in `validate_cors`.
//!
//! Owns their grammars (path prefixes, CIDR networks, templates with `${…}` variables, the
//! rewrite's replacement) and the refusals that protect what Torii itself writes: no rule may
//! set, add or remove a header Torii owns (`validate_header_ops`). Also the warnings for rules
//! that can never apply. The value grammars the rule validators share (templates, method
//! lists) are in `validate_rule_values`. No IO.

use std::collections::HashSet;
use std::net::IpAddr;

use super::error::{index, join, Collector};
use super::fields::compile_regex;
use super::raw::{RawRedirect, RawRewrite, RawRoute};
use super::rules_spec::{
    IpNet, RedirectSpec, RewritePart, RewriteSpec, RouteRules, TemplatePart, Var,
};
use super::validate_cors::cors;
use super::validate_header_ops::{header_checks, header_rules, Owned};
use super::validate_rule_values::{methods, template};

/// The statuses `redirect.status` accepts.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
/// `redirect.status` when not written: 308 keeps the method and the body (a `POST` stays a
/// `POST`), where 301 and 302 let clients turn it into a `GET`.
pub(super) const DEFAULT_REDIRECT_STATUS: u16 = 308;
/// The methods `read_only` keeps.
const READ_ONLY_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// The rules of the route at `path`. `paths` are its valid path prefixes; `owned` the header
/// names its security sections write.
pub(super) fn rules(
    c: &mut Collector,
    path: &str,
    raw: &RawRoute,
    paths: &[String],
    owned: &Owned,
) -> RouteRules {
    let p = |k: &str| join(path, k);
    let target_root = match raw.target_root.as_deref() {
        None => String::new(),
        Some(r) => c
            .check(&p("target_root"), check_root(r))
            .unwrap_or_default(),
    };
    let rewrite = raw
        .rewrite
        .as_ref()
        .and_then(|r| rewrite(c, &p("rewrite"), r));
    let redirect = raw
        .redirect
        .as_ref()
        .and_then(|r| redirect(c, &p("redirect"), r));
    let methods = methods(c, &p("methods"), raw.methods.as_deref());
    let read_only = raw.read_only.unwrap_or(false);
    if read_only {
        read_only_methods(c, path, &methods);
    }
    let allow_ips = networks(c, &p("allow_ips"), raw.allow_ips.as_deref());
    let deny_ips = networks(c, &p("deny_ips"), raw.deny_ips.as_deref());
    for (i, a) in allow_ips.iter().enumerate() {
        if let Some(d) = deny_ips.iter().find(|d| d.covers(a)) {
            c.warn(
                index(&p("allow_ips"), i),
                format!("{a} is inside deny_ips entry {d}, which is checked first: it never admits anyone"),
            );
        }
    }
    let max_body_bytes = raw.max_body_bytes.and_then(|v| match u64::try_from(v) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            c.push(
                p("max_body_bytes"),
                format!("must be between 1 and {}", i64::MAX),
            );
            None
        }
    });
    let request_headers = raw
        .request_headers
        .as_ref()
        .map(|h| header_rules(c, &p("request_headers"), h, owned, true))
        .unwrap_or_default();
    let response_headers = raw
        .response_headers
        .as_ref()
        .map(|h| header_rules(c, &p("response_headers"), h, owned, false))
        .unwrap_or_default();
    let header_checks = raw
        .header_checks
        .as_ref()
        .map(|h| header_checks(c, &p("header_checks"), h))
        .unwrap_or_default();
    let cors = raw
        .cors
        .as_ref()
        .and_then(|co| cors(c, &p("cors"), co, &methods, read_only));
    if cors.is_some() {
        owned_by_cors(c, &p("response_headers"), &response_headers);
    }
    let strip_prefix = raw.strip_prefix.unwrap_or(false);
    if strip_prefix && !paths.is_empty() && paths.iter().all(|x| x == "/") {
        c.warn(
            p("strip_prefix"),
            "the route's only path prefix is \"/\": there is nothing to strip",
        );
    }
    if redirect.is_some() {
        redirect_shadows(c, path, raw);
    }
    RouteRules {
        strip_prefix,
        target_root,
        rewrite,
        preserve_host: raw.preserve_host.unwrap_or(false),
        force_https: raw.force_https.unwrap_or(false),
        redirect,
        methods,
        read_only,
        allow_ips,
        deny_ips,
        max_body_bytes,
        request_headers,
        response_headers,
        header_checks,
        cors,
    }
}

/// `target_root`: a canonical path prefix, kept without its trailing `/` (`"/"`: none).
fn check_root(r: &str) -> Result<String, String> {
    if !r.starts_with('/') {
        return Err(format!("{r:?} must start with '/'"));
    }
    check_path_literal(r)?;
    let trimmed = r.strip_suffix('/').unwrap_or(r);
    if trimmed.contains("//") || trimmed.split('/').any(|s| s == "." || s == "..") {
        return Err(format!(
            "{r:?} is not a canonical path: no \"//\", no \".\" or \"..\" segment"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The bytes a path literal (`target_root`, a rewrite's `to`) may hold: visible ASCII without
/// `?`, `#` or `\`, and percent-escapes of bytes that stay encoded in canonical paths only
/// (`%2F`, `%5C` and `%00` have no single meaning, unreserved ones are decoded by clients).
fn check_path_literal(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    for (i, &x) in b.iter().enumerate() {
        if !(0x21..0x7f).contains(&x) || matches!(x, b'?' | b'#' | b'\\') {
            return Err(format!(
                "{s:?} contains a space, a control or non-ASCII character, '?', '#' or '\\'"
            ));
        }
        if x == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            match byte {
                None => return Err(format!("{s:?}: '%' must start a %XX escape")),
                Some(v)
                    if v.is_ascii_alphanumeric()
                        || matches!(v, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | 0) =>
                {
                    return Err(format!(
                        "{s:?}: %{} is not allowed in a path (write the character itself, or none for %2F, %5C, %00)",
                        hex.unwrap_or_default()
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `rewrite = { from, to }`.
fn rewrite(c: &mut Collector, path: &str, raw: &RawRewrite) -> Option<RewriteSpec> {
    let (Some(from), Some(to)) = (&raw.from, &raw.to) else {
        for (k, v) in [("from", raw.from.is_none()), ("to", raw.to.is_none())] {
            if v {
                c.push(join(path, k), "required");
            }
        }
        return None;
    };
    let re = compile_regex(from).and_then(|_| {
        regex::bytes::RegexBuilder::new(from)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regex: {}", super::one_line(&e.to_string())))
    });
    let re = c.check(&join(path, "from"), re)?;
    let parts = c.check(&join(path, "to"), replacement(to, &re))?;
    Some(RewriteSpec {
        from: re,
        to: parts,
    })
}

/// A rewrite's `to`: literals, `$N`, `${N}`, `${name}` (groups of `re`) and `$$`.
fn replacement(to: &str, re: &regex::bytes::Regex) -> Result<Vec<RewritePart>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = to;
    while let Some(at) = rest.find('$') {
        lit.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (group, used) = if let Some(s) = after.strip_prefix('$') {
            lit.push('$');
            rest = s;
            continue;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("{to:?}: \"${{\" without its '}}'"))?;
            let name = &inner[..end];
            let g = match name.parse::<usize>() {
                Ok(n) => n,
                Err(_) => re
                    .capture_names()
                    .position(|n| n == Some(name))
                    .ok_or_else(|| format!("{to:?}: from has no group named {name:?}"))?,
            };
            (g, end + 2)
        } else {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let n = after[..digits].parse::<usize>().map_err(|_| {
                format!("{to:?}: '$' must be followed by a group number, {{name}} or '$'")
            })?;
            (n, digits)
        };
        if group >= re.captures_len() {
            return Err(format!(
                "{to:?}: from has no group {group} (it has {})",
                re.captures_len() - 1
            ));
        }
        if !lit.is_empty() {
            parts.push(RewritePart::Literal(std::mem::take(&mut lit)));
        }
        parts.push(RewritePart::Group(group));
        rest = &after[used..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(RewritePart::Literal(lit));
    }
    for p in &parts {
        if let RewritePart::Literal(l) = p {
            check_path_literal(l)?;
        }
    }
    if let Some(RewritePart::Literal(first)) = parts.first() {
        if re.as_str().starts_with("^/") && !first.starts_with('/') {
            return Err(format!(
                "{to:?} must start with '/' (or with a group): from replaces the path from its start"
            ));
        }
    }
    Ok(parts)
}

/// `redirect = { to, status }`.
fn redirect(c: &mut Collector, path: &str, raw: &RawRedirect) -> Option<RedirectSpec> {
    let status = match raw.status {
        None => DEFAULT_REDIRECT_STATUS,
        Some(s) => match REDIRECT_STATUSES.iter().find(|&&x| i64::from(x) == s) {
            Some(&x) => x,
            None => {
                c.push(
                    join(path, "status"),
                    "must be 301, 302, 303, 307 or 308 (308, the default, keeps the method and body)",
                );
                DEFAULT_REDIRECT_STATUS
            }
        },
    };
    let Some(to) = &raw.to else {
        c.push(join(path, "to"), "required");
        return None;
    };
    let allowed = [Var::Path, Var::Query, Var::Host];
    let template = c.check(&join(path, "to"), template(to, &allowed, false))?;
    let starts = match template.parts.first() {
        Some(TemplatePart::Literal(l)) => l.as_str(),
        _ => "",
    };
    let lower = starts.to_ascii_lowercase();
    let absolute = ["http://", "https://"].iter().any(|s| {
        lower.starts_with(s) && lower.len() > s.len() && !lower[s.len()..].starts_with('/')
    });
    let local = starts.starts_with('/') && !starts.starts_with("//") && !starts.starts_with("/\\");
    if !(absolute || local) {
        c.push(
            join(path, "to"),
            format!("{to:?} must be an http:// or https:// URL with its host written, or a path starting with a single '/'"),
        );
        return None;
    }
    Some(RedirectSpec {
        to: template,
        status,
    })
}

/// `read_only = true` with `methods`: what it removes never runs; nothing left is an error.
fn read_only_methods(c: &mut Collector, path: &str, methods: &[String]) {
    if methods.is_empty() {
        return;
    }
    let mp = join(path, "methods");
    let mut kept = 0;
    for (i, m) in methods.iter().enumerate() {
        if READ_ONLY_METHODS.contains(&m.as_str()) {
            kept += 1;
        } else {
            c.warn(
                index(&mp, i),
                format!("{m} is never served: read_only = true allows only GET, HEAD and OPTIONS"),
            );
        }
    }
    if kept == 0 {
        c.push(
            join(path, "read_only"),
            "with these methods no request can be served: read_only = true allows only GET, HEAD and OPTIONS, and methods lists none of them",
        );
    }
}

/// `allow_ips` / `deny_ips`: CIDR networks or bare addresses, no duplicates.
fn networks(c: &mut Collector, path: &str, raw: Option<&[String]>) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in raw.unwrap_or_default().iter().enumerate() {
        let ip = index(path, i);
        if let Some(net) = c.check(&ip, parse_net(s)) {
            if !seen.insert(net) {
                c.push(ip, format!("duplicate network {net}"));
            } else {
                out.push(net);
            }
        }
    }
    out
}

/// `"10.0.0.0/8"`, `"2001:db8::/32"`, `"192.0.2.1"` (a /32), `"::1"` (a /128). Host bits must
/// be zero; an IPv4-mapped IPv6 network is read as IPv4.
pub(super) fn parse_net(s: &str) -> Result<IpNet, String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or a network such as \"10.0.0.0/8\""))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(p) if p <= max && !l.starts_with('+') => p,
            _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
        },
    };
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
            _ => (addr, prefix),
        },
        v4 => (v4, prefix),
    };
    let net = IpNet { addr, prefix };
    let network = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(a) & mask).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(a) & mask).to_be_bytes())
        }
    };
    if network != addr {
        return Err(format!(
            "{s:?} has host bits set: the network is \"{network}/{prefix}\" (or write the address alone for just that host)"
        ));
    }
    Ok(net)
}

/// With `[routes.cors]`, the `Access-Control-*` response headers are the policy's.
fn owned_by_cors(c: &mut Collector, path: &str, rules: &super::rules_spec::HeaderRulesSpec) {
    let names = rules
        .set
        .iter()
        .chain(&rules.set_if_missing)
        .chain(&rules.add)
        .map(|(n, _)| n)
        .chain(&rules.remove);
    for n in names {
        if n.starts_with("access-control-") {
            c.push(
                path,
                format!("{n:?} is written by [routes.cors] on this route: change the CORS policy instead"),
            );
        }
    }
}

/// What a `redirect` makes unreachable: every request is answered by it before these run.
fn redirect_shadows(c: &mut Collector, path: &str, raw: &RawRoute) {
    let written = [
        ("strip_prefix", raw.strip_prefix.is_some()),
        ("target_root", raw.target_root.is_some()),
        ("rewrite", raw.rewrite.is_some()),
        ("preserve_host", raw.preserve_host.is_some()),
        ("request_headers", raw.request_headers.is_some()),
        ("response_headers", raw.response_headers.is_some()),
        ("cors", raw.cors.is_some()),
    ];
    for (key, _) in written.iter().filter(|(_, w)| *w) {
        c.warn(
            join(path, key),
            "never applies: every request of this route is answered by its redirect, before this rule runs",
        );
    }
}
