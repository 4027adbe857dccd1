//! A route's request and response rules (issue 30) in the form the request path reads:
//! [`CompiledRules`], built once per load from the validated [`RouteRules`] by the snapshot
//! builder, and the pure decisions over it.
//!
//! Owns the per-request logic, sans IO and without allocation (results go into the caller's
//! buffers or borrow the rules): the client filters ([`CompiledRules::ip_allowed`],
//! [`CompiledRules::method_allowed`], [`CompiledRules::header_checks_pass`]), the path sent
//! upstream and redirect targets (`path`), value templates and header operations
//! (`template`), the address lists (`ip`) and CORS (`cors`). Imports `config` only.
//!
//! Applied by `proxy::route_rules` (and the upstream head render), in this order: filters
//! (addresses, method, header checks, body size) → `force_https` and `redirect` → CORS
//! preflight → authentication → quotas → path and request headers → upstream → response
//! headers and CORS headers.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::RouteRules;

mod cors;
mod ip;
mod path;
mod template;
#[cfg(test)]
mod tests;

pub use cors::{ActualCors, CorsPolicy, Preflight, PreflightAnswer, PreflightRefusal};
pub use ip::IpSet;
pub use path::{
    https_location, is_canonical, path_for_upstream, redirect_location, CompiledPart,
    CompiledRedirect, CompiledRewrite, PathRefused, RewriteScratch,
};
pub use template::{render_value, BytePair, CompiledTemplate, Context, HeaderOps, Part, Vars};

/// The methods `read_only` keeps.
const READ_ONLY: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// Identity of each [`CompiledRules`] built by this process (keys [`RewriteScratch`]).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The value of the `Allow` header of a 405 answer (`GET, HEAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowHeader<'a>(pub &'a [u8]);

/// A route's rules, ready for the request path.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    /// Unique per build (never 0): tells the rules of two routes, or of two loads, apart.
    id: u64,
    /// Nothing is written: every function below is a no-op for it.
    pub empty: bool,
    /// Remove the matched prefix.
    pub strip_prefix: bool,
    /// Put in front of the path upstream (no trailing `/`; empty: none).
    pub target_root: Box<[u8]>,
    /// The rewrite, when written.
    pub rewrite: Option<CompiledRewrite>,
    /// Send the client's `Host` upstream.
    pub preserve_host: bool,
    /// Redirect plain-HTTP requests to `https://` ([`https_location`]).
    pub force_https: bool,
    /// Answer every request with this redirect ([`redirect_location`]).
    pub redirect: Option<CompiledRedirect>,
    /// Allowed methods (empty: any).
    methods: Box<[Box<[u8]>]>,
    /// `Allow` of a 405.
    allow_value: Box<[u8]>,
    /// `allow_ips` (empty: everyone not denied).
    pub allow_ips: IpSet,
    /// `deny_ips` (checked first).
    pub deny_ips: IpSet,
    /// This route's body cap, replacing `[limits] max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// `request_headers`.
    pub request_headers: HeaderOps,
    /// `response_headers`.
    pub response_headers: HeaderOps,
    /// `header_checks`: (lowercase name, exact value).
    pub header_checks: Box<[BytePair]>,
    /// `[routes.cors]`.
    pub cors: Option<CorsPolicy>,
}

impl CompiledRules {
    /// Compiles validated rules. Infallible: everything that can fail was checked at load.
    pub fn build(spec: &RouteRules) -> Self {
        let methods: Vec<&str> = match (spec.methods.is_empty(), spec.read_only) {
            (true, false) => Vec::new(),
            (true, true) => READ_ONLY.to_vec(),
            (false, ro) => spec
                .methods
                .iter()
                .map(String::as_str)
                .filter(|m| !ro || READ_ONLY.contains(m))
                .collect(),
        };
        CompiledRules {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            empty: spec.is_empty(),
            strip_prefix: spec.strip_prefix,
            target_root: spec.target_root.as_bytes().into(),
            rewrite: spec.rewrite.as_ref().map(CompiledRewrite::build),
            preserve_host: spec.preserve_host,
            force_https: spec.force_https,
            redirect: spec.redirect.as_ref().map(|r| CompiledRedirect {
                to: CompiledTemplate::build(&r.to),
                status: r.status,
            }),
            allow_value: methods.join(", ").into_bytes().into_boxed_slice(),
            methods: methods.iter().map(|m| m.as_bytes().into()).collect(),
            allow_ips: IpSet::build(&spec.allow_ips),
            deny_ips: IpSet::build(&spec.deny_ips),
            max_body_bytes: spec.max_body_bytes,
            request_headers: HeaderOps::build(&spec.request_headers),
            response_headers: HeaderOps::build(&spec.response_headers),
            header_checks: spec
                .header_checks
                .iter()
                .map(|(n, v)| (n.as_bytes().into(), v.as_bytes().into()))
                .collect(),
            cors: spec.cors.as_ref().map(CorsPolicy::build),
        }
    }

    /// Whether a client at `ip` may use the route: never when in `deny_ips`; else, when
    /// `allow_ips` is written, only when in it. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        !self.deny_ips.contains(ip) && (self.allow_ips.is_empty() || self.allow_ips.contains(ip))
    }

    /// Whether `method` (case-sensitive, as RFC 9110 says) may be used: `methods`, narrowed
    /// by `read_only`. `Err` carries the `Allow` value of the 405 answer. For a CORS
    /// preflight, pass the method it asks for.
    pub fn method_allowed(&self, method: &[u8]) -> Result<(), AllowHeader<'_>> {
        if self.methods.is_empty() || self.methods.iter().any(|m| **m == *method) {
            Ok(())
        } else {
            Err(AllowHeader(&self.allow_value))
        }
    }

    /// Whether the request's header lines (`(name, value)`, values trimmed) pass
    /// `header_checks`: for each check, at least one line of that name (any case), and every
    /// line of that name carrying exactly the value (a second, different line fails: backends
    /// disagree on which one they read).
    pub fn header_checks_pass<'h, I>(&self, headers: I) -> bool
    where
        I: IntoIterator<Item = (&'h [u8], &'h [u8])> + Clone,
    {
        self.header_checks.iter().all(|(name, value)| {
            let mut seen = false;
            for (n, v) in headers.clone() {
                if n.eq_ignore_ascii_case(name) {
                    if v != &value[..] {
                        return false;
                    }
                    seen = true;
                }
            }
            seen
        })
    }
}
