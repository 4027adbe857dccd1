//! `[routes.cors]` in request-path form: [`CorsPolicy`], its origin matcher, and the two
//! decisions of the Fetch standard's CORS protocol (fetch.spec.whatwg.org, "CORS protocol"):
//! the answer to a preflight ([`CorsPolicy::preflight`]) and the headers of an actual
//! response ([`CorsPolicy::actual_response_headers`]).
//!
//! Header values (`Access-Control-Allow-Methods`, `-Allow-Headers`, `-Expose-Headers`,
//! `-Max-Age`) are rendered once per load; a decision borrows them and the request's origin,
//! and writes nothing until the caller asks ([`PreflightAnswer::write_lines`],
//! [`ActualCors::write_lines`]). `Vary: Origin` goes with every answer whose content depends
//! on the origin (any policy but `"*"` without credentials), refusals included, so caches
//! never serve one origin's answer to another.

use super::template::BytePair;
use crate::config::{CorsSpec, OriginRule};

/// Methods a browser sends without asking (CORS-safelisted).
const SAFELISTED_METHODS: [&[u8]; 3] = [b"GET", b"HEAD", b"POST"];

/// The compiled CORS policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    any_origin: bool,
    exact: Box<[Box<[u8]>]>,
    /// `(".suffix", ":port" or empty)`.
    subdomains: Box<[BytePair]>,
    credentials: bool,
    any_method: bool,
    methods: Box<[Box<[u8]>]>,
    any_header: bool,
    headers: Box<[Box<[u8]>]>,
    allow_methods: Box<[u8]>,
    allow_headers: Box<[u8]>,
    expose_headers: Box<[u8]>,
    max_age: Box<[u8]>,
}

/// Why a preflight is refused (the caller answers 403 without CORS headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightRefusal {
    /// The origin is not allowed.
    Origin,
    /// `Access-Control-Request-Method` is not allowed.
    Method,
    /// A name in `Access-Control-Request-Headers` is not allowed (or not a token).
    Header,
}

/// The decision on a preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight<'a> {
    /// Answer 204 with these headers; the request never reaches the backend.
    Allowed(PreflightAnswer<'a>),
    /// Answer 403 (with `Vary: Origin` when [`CorsPolicy::varies`]).
    Refused(PreflightRefusal),
}

/// The headers of an allowed preflight's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightAnswer<'a> {
    /// `Access-Control-Allow-Origin`: `*` or the request's origin.
    pub allow_origin: &'a [u8],
    /// `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: &'a [u8],
    /// `Access-Control-Allow-Headers` (empty: not sent).
    pub allow_headers: &'a [u8],
    /// `Access-Control-Max-Age` (empty: not sent).
    pub max_age: &'a [u8],
    /// `Vary: Origin`.
    pub vary_origin: bool,
}

/// The CORS headers of an actual (non-preflight) response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActualCors<'a> {
    /// `Access-Control-Allow-Origin`, when the origin is allowed.
    pub allow_origin: Option<&'a [u8]>,
    /// `Access-Control-Allow-Credentials: true` (only with an allowed origin).
    pub credentials: bool,
    /// `Access-Control-Expose-Headers` (empty: not sent; only with an allowed origin).
    pub expose_headers: &'a [u8],
    /// `Vary: Origin`.
    pub vary_origin: bool,
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl PreflightAnswer<'_> {
    /// Appends the answer's header lines (`name: value\r\n`).
    pub fn write_lines(&self, out: &mut Vec<u8>) {
        line(out, b"access-control-allow-origin", self.allow_origin);
        if self.credentials {
            line(out, b"access-control-allow-credentials", b"true");
        }
        line(out, b"access-control-allow-methods", self.allow_methods);
        if !self.allow_headers.is_empty() {
            line(out, b"access-control-allow-headers", self.allow_headers);
        }
        if !self.max_age.is_empty() {
            line(out, b"access-control-max-age", self.max_age);
        }
        if self.vary_origin {
            line(out, b"vary", b"Origin");
        }
    }
}

impl ActualCors<'_> {
    /// Appends the header lines (`name: value\r\n`).
    pub fn write_lines(&self, out: &mut Vec<u8>) {
        if let Some(o) = self.allow_origin {
            line(out, b"access-control-allow-origin", o);
            if self.credentials {
                line(out, b"access-control-allow-credentials", b"true");
            }
            if !self.expose_headers.is_empty() {
                line(out, b"access-control-expose-headers", self.expose_headers);
            }
        }
        if self.vary_origin {
            line(out, b"vary", b"Origin");
        }
    }
}

fn joined(list: &[String], upper: bool) -> Box<[u8]> {
    let mut v = list.join(", ");
    if upper {
        v.make_ascii_uppercase();
    }
    v.into_bytes().into_boxed_slice()
}

impl CorsPolicy {
    /// The compiled form of a validated `[routes.cors]`.
    pub fn build(spec: &CorsSpec) -> Self {
        let mut exact = Vec::new();
        let mut subdomains = Vec::new();
        let mut any_origin = false;
        for o in &spec.origins {
            match o {
                OriginRule::Any => any_origin = true,
                OriginRule::Exact(e) => exact.push(e.as_bytes().into()),
                OriginRule::Subdomains { suffix, port } => subdomains.push((
                    format!(".{suffix}").into_bytes().into_boxed_slice(),
                    port.map_or_else(String::new, |p| format!(":{p}"))
                        .into_bytes()
                        .into_boxed_slice(),
                )),
            }
        }
        let bytes = |l: &[String]| l.iter().map(|s| s.as_bytes().into()).collect();
        CorsPolicy {
            any_origin,
            exact: exact.into_boxed_slice(),
            subdomains: subdomains.into_boxed_slice(),
            credentials: spec.allow_credentials,
            any_method: spec.allow_methods.iter().any(|m| m == "*"),
            methods: bytes(&spec.allow_methods),
            any_header: spec.allow_headers.iter().any(|h| h == "*"),
            headers: bytes(&spec.allow_headers),
            allow_methods: joined(&spec.allow_methods, true),
            allow_headers: joined(&spec.allow_headers, false),
            expose_headers: joined(&spec.expose_headers, false),
            max_age: spec
                .max_age
                .map_or_else(Vec::new, |d| d.as_secs().to_string().into_bytes())
                .into_boxed_slice(),
        }
    }

    /// Whether answers depend on the request's origin (then they carry `Vary: Origin`).
    pub fn varies(&self) -> bool {
        !self.any_origin || self.credentials
    }

    /// Whether `origin` (the `Origin` header's value) may call the route. ASCII
    /// case-insensitive; `null` and malformed values never match a listed origin.
    pub fn origin_allowed(&self, origin: &[u8]) -> bool {
        if self.any_origin {
            return true;
        }
        if self.exact.iter().any(|e| e.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let Some(rest) = origin
            .get(..8)
            .filter(|s| s.eq_ignore_ascii_case(b"https://"))
            .and(origin.get(8..))
        else {
            return false;
        };
        let colon = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        let (host, port) = rest.split_at(colon);
        let host_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if !host.iter().all(host_ok) {
            return false;
        }
        self.subdomains.iter().any(|(suffix, p)| {
            host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && !host[..host.len() - suffix.len()].ends_with(b".")
                && !host.starts_with(b".")
                && port == &p[..]
        })
    }

    /// The answer to a preflight (an `OPTIONS` request with `Origin` and
    /// `Access-Control-Request-Method`; `request_headers` is the
    /// `Access-Control-Request-Headers` value, when sent).
    pub fn preflight<'a>(
        &'a self,
        origin: &'a [u8],
        request_method: &[u8],
        request_headers: Option<&[u8]>,
    ) -> Preflight<'a> {
        if !self.origin_allowed(origin) {
            return Preflight::Refused(PreflightRefusal::Origin);
        }
        let method_ok = self.any_method && !self.credentials
            || SAFELISTED_METHODS.contains(&request_method)
            || self.methods.iter().any(|m| **m == *request_method);
        if !method_ok {
            return Preflight::Refused(PreflightRefusal::Method);
        }
        for name in request_headers.unwrap_or_default().split(|&b| b == b',') {
            let name = name.trim_ascii();
            if name.is_empty() {
                continue;
            }
            let listed = self.headers.iter().any(|h| h.eq_ignore_ascii_case(name));
            let wild = self.any_header
                && !self.credentials
                && !name.eq_ignore_ascii_case(b"authorization");
            if !(listed || wild) {
                return Preflight::Refused(PreflightRefusal::Header);
            }
        }
        Preflight::Allowed(PreflightAnswer {
            allow_origin: self.allow_origin(origin),
            credentials: self.credentials,
            allow_methods: &self.allow_methods,
            allow_headers: &self.allow_headers,
            max_age: &self.max_age,
            vary_origin: self.varies(),
        })
    }

    /// The CORS headers of an actual response to a request with this `Origin` (`None`: the
    /// request had none, and only `Vary` may be written).
    pub fn actual_response_headers<'a>(&'a self, origin: Option<&'a [u8]>) -> ActualCors<'a> {
        let allow_origin = origin
            .filter(|o| self.origin_allowed(o))
            .map(|o| self.allow_origin(o));
        ActualCors {
            allow_origin,
            credentials: self.credentials && allow_origin.is_some(),
            expose_headers: &self.expose_headers,
            vary_origin: self.varies(),
        }
    }

    fn allow_origin<'a>(&self, origin: &'a [u8]) -> &'a [u8] {
        if self.any_origin && !self.credentials {
            b"*"
        } else {
            origin
        }
    }
}

#[cfg(test)]
#[path = "cors_tests.rs"]
mod tests;
