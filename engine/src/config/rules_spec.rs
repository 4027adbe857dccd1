//! The validated form of a route's request and response rules (issue 30): what
//! `validate_rules` and `validate_cors` produce from `raw_rules` and `RawRoute`'s plain keys,
//! and what `crate::rules::CompiledRules` is built from.
//!
//! Owns [`RouteRules`] and its parts: the rewrite (its regex compiled, its replacement split
//! into literals and group numbers), the redirect and header value templates (split into
//! literals and [`Var`]s), the CIDR lists, the CORS policy. Data only: no validation, no IO.

use std::net::IpAddr;
use std::time::Duration;

/// Everything a route says about its requests and responses besides routing and security.
/// [`RouteRules::default`] is a route that writes none of these keys.
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    /// `strip_prefix`: the matched path prefix is removed before the path goes upstream.
    pub strip_prefix: bool,
    /// `target_root`: prefix put before the path upstream, without a trailing `/` (`""`: none).
    pub target_root: String,
    /// `rewrite`, when written.
    pub rewrite: Option<RewriteSpec>,
    /// `preserve_host`: the client's `Host` goes upstream instead of the target's.
    pub preserve_host: bool,
    /// `force_https`: a request on a plain listener is redirected to `https://`.
    pub force_https: bool,
    /// `redirect`, when written: every request is answered with it.
    pub redirect: Option<RedirectSpec>,
    /// `methods`, upper case, in file order; empty: any method.
    pub methods: Vec<String>,
    /// `read_only`: only `GET`, `HEAD` and `OPTIONS`.
    pub read_only: bool,
    /// `allow_ips`: when not empty, only these networks.
    pub allow_ips: Vec<IpNet>,
    /// `deny_ips`: never these networks (checked first).
    pub deny_ips: Vec<IpNet>,
    /// `max_body_bytes`: this route's request body cap, replacing `[limits] max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// `request_headers`.
    pub request_headers: HeaderRulesSpec,
    /// `response_headers`.
    pub response_headers: HeaderRulesSpec,
    /// `header_checks`: lowercase name → the exact value every request must carry.
    pub header_checks: Vec<(String, String)>,
    /// `[routes.cors]`, when written.
    pub cors: Option<CorsSpec>,
}

impl RouteRules {
    /// Whether the route writes none of the rule keys (every field at its default).
    pub fn is_empty(&self) -> bool {
        !self.strip_prefix
            && self.target_root.is_empty()
            && self.rewrite.is_none()
            && !self.preserve_host
            && !self.force_https
            && self.redirect.is_none()
            && self.methods.is_empty()
            && !self.read_only
            && self.allow_ips.is_empty()
            && self.deny_ips.is_empty()
            && self.max_body_bytes.is_none()
            && self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.header_checks.is_empty()
            && self.cors.is_none()
    }
}

/// `rewrite`: the first match of `from` in the path is replaced by `to`.
#[derive(Debug, Clone)]
pub struct RewriteSpec {
    /// The compiled `from` (on the path's bytes, anchored only where written).
    pub from: regex::bytes::Regex,
    /// `to`, split into literals and group numbers (named groups resolved).
    pub to: Vec<RewritePart>,
}

/// One part of a rewrite's replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewritePart {
    /// Bytes copied as they are.
    Literal(String),
    /// The text of this group of `from` (empty when the group did not take part).
    Group(usize),
}

/// `redirect`: the `Location` template and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSpec {
    /// `to`, with `${path}`, `${query}` and `${host}`.
    pub to: Template,
    /// 301, 302, 303, 307 or 308 (default 308).
    pub status: u16,
}

/// A value with variables, split at load into literal and variable parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// The parts, in order.
    pub parts: Vec<TemplatePart>,
}

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Literal(String),
    /// A value known per request.
    Var(Var),
}

/// The variables a template may name (`${client_ip}`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// `${client_ip}`: the client's address.
    ClientIp,
    /// `${route_id}`: the route's id.
    RouteId,
    /// `${request_id}`: the `Otoroshi-Request-Id`.
    RequestId,
    /// `${apikey.client_id}`: the admitted API key's id (empty without one).
    ApikeyClientId,
    /// `${apikey.name}`: the admitted API key's name (empty without one).
    ApikeyName,
    /// `${token.sub}`: the `sub` of the verified token (empty without one).
    TokenSub,
    /// `${host}`: the canonical host.
    Host,
    /// `${path}`: the canonical path the client asked for.
    Path,
    /// `${query}`: `?` and the query, or nothing (redirects only).
    Query,
}

impl Var {
    /// Every variable, with its name as written between `${` and `}`.
    pub const ALL: [(&'static str, Var); 9] = [
        ("client_ip", Var::ClientIp),
        ("route_id", Var::RouteId),
        ("request_id", Var::RequestId),
        ("apikey.client_id", Var::ApikeyClientId),
        ("apikey.name", Var::ApikeyName),
        ("token.sub", Var::TokenSub),
        ("host", Var::Host),
        ("path", Var::Path),
        ("query", Var::Query),
    ];

    /// The name as written between `${` and `}`.
    pub fn name(self) -> &'static str {
        Var::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

/// `request_headers` or `response_headers`: lowercase names, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRulesSpec {
    /// Lines of these names are replaced by one with this value.
    pub set: Vec<(String, Template)>,
    /// Written only when no line of the name is there.
    pub set_if_missing: Vec<(String, Template)>,
    /// Written whatever is there.
    pub add: Vec<(String, Template)>,
    /// Lines of these names are removed.
    pub remove: Vec<String>,
}

impl HeaderRulesSpec {
    /// Whether no operation is written.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.set_if_missing.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
    }
}

/// A network of `allow_ips` / `deny_ips`: the network address (host bits zero) and the prefix
/// length. An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is kept as its IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length: 0–32 for IPv4, 0–128 for IPv6.
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` (an IPv4-mapped IPv6 address read as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(n)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(n)
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &IpNet) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `[routes.cors]`, validated: names lowercase, methods upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSpec {
    /// `allow_origins`.
    pub origins: Vec<OriginRule>,
    /// `allow_methods` (default `GET`, `HEAD`, `POST`); `"*"` alone: any.
    pub allow_methods: Vec<String>,
    /// `allow_headers`, lowercase; `"*"`: any but `authorization`.
    pub allow_headers: Vec<String>,
    /// `expose_headers`, lowercase; `"*"`: every one.
    pub expose_headers: Vec<String>,
    /// `allow_credentials`.
    pub allow_credentials: bool,
    /// `max_age`, when written.
    pub max_age: Option<Duration>,
}

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    /// `"*"`: any origin (answered `Access-Control-Allow-Origin: *`).
    Any,
    /// `scheme://host[:port]`, lowercase, the default port left out (as browsers send it).
    Exact(String),
    /// `https://*.suffix[:port]`: `https://` origins whose host ends with `.suffix` (one or more
    /// labels before it), on that port. `suffix` is lowercase, without the leading dot.
    Subdomains {
        /// The host suffix, without the leading `.`.
        suffix: String,
        /// The port as written, `None` for the default 443.
        port: Option<u16>,
    },
}
