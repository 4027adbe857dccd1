//! The route's rules applied to requests (docs/configuration.md, "Rule order").
//!
//! Phase 2b ([`filter`], before authentication): the client filters (`deny_ips`/`allow_ips`
//! → 403, `methods`/`read_only` → 405 with `Allow`, `header_checks` → 400, the route's
//! `max_body_bytes` against a declared length → 413), `force_https` (308 to `https://`),
//! `redirect` (its status and `Location`), then a CORS preflight (204 with the policy's
//! lines, or 403; the method filter sees the method it asks for). Phase 4c
//! ([`upstream_path`]): the path sent upstream (`strip_prefix`, `rewrite`, `target_root` →
//! `ctx.bufs.rule_path`, read by the head render, which also applies `preserve_host` and
//! writes `request_headers` after every line it carries, so `set_if_missing` sees what the
//! backend would), with the worker's `RewriteScratch`. Then the variables of the header rules
//! ([`header_vars`]), the `response_headers` lines on the upstream's response
//! ([`write_response_lines`]) and the CORS lines of actual responses ([`write_actual_cors`]).
//!
//! Owns applying [`CompiledRules`] decisions to a request: the decisions themselves are the
//! `rules` module's. An answer's extra lines (`Allow`, `Location`) are rendered into
//! `ctx.bufs.answer_lines`, which [`answer`](crate::proxy::answer::answer) sends with it. A
//! route without rules costs one branch.

use crate::http1::{canonical_host, find_header, BodyFraming, Method, MAX_HOST_BYTES};
use crate::proxy::client::ClientFacts;
use crate::proxy::context::RequestCtx;
use crate::proxy::error::ProxyError;
use crate::proxy::upstream_response::UpstreamResponse;
use crate::rules::{
    https_location, path_for_upstream, redirect_location, AllowHeader, CompiledRules,
};
use crate::rules::{CorsPolicy, HeaderOps, Preflight, PreflightRefusal, Vars};
use crate::snapshot::Route;
use crate::worker::Worker;

/// Message of the 403 of `allow_ips` / `deny_ips`.
pub const IP_REFUSED: &str = "Your IP address is not allowed";
/// Message of the 405 of `methods` / `read_only`.
pub const METHOD_REFUSED: &str = "Method not allowed";
/// Message of the 403 of a refused CORS preflight.
pub const CORS_REFUSED: &str = "CORS request not allowed";
/// Message of the 400 of `header_checks`.
pub const HEADER_CHECK_FAILED: &str = "Missing or invalid header";

/// Phase 2b: the routed request against its route's filters, `force_https` and `redirect`.
/// `Err`: Torii answers (a refusal, or a redirect with its `Location` in
/// `ctx.bufs.answer_lines`).
pub fn filter(ctx: &mut RequestCtx<'_>, client: &ClientFacts) -> Result<(), ProxyError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let rules: &CompiledRules = &route.rules;
    if rules.empty {
        return Ok(());
    }
    if !rules.ip_allowed(client.peer.ip()) {
        return Err(ProxyError::client(403, IP_REFUSED, "rules.ip_refused"));
    }
    let data = ctx.data();
    let preflight = preflight_of(ctx, rules);
    // A preflight passes the method filter as the method it asks for.
    let method = preflight.map_or(ctx.head.method_span.get(data), |p| p.method);
    if let Err(AllowHeader(allow)) = rules.method_allowed(method) {
        push_line(&mut ctx.bufs.answer_lines, b"allow", allow);
        return Err(ProxyError::client(405, METHOD_REFUSED, "rules.method"));
    }
    let fields = ctx.fields();
    let lines = fields.iter().map(|f| (f.name.get(data), f.value.get(data)));
    if !rules.header_checks_pass(lines) {
        return Err(ProxyError::client(
            400,
            HEADER_CHECK_FAILED,
            "rules.header_check",
        ));
    }
    if let (Some(max), BodyFraming::Length(n)) = (rules.max_body_bytes, ctx.head.body) {
        if n > max {
            return Err(ProxyError::client(
                413,
                "Request body too large",
                "body.too_large",
            ));
        }
    }
    redirects(ctx, rules, client)?;
    match preflight {
        Some(p) => Err(answer_preflight(ctx, p)),
        None => Ok(()),
    }
}

/// A CORS preflight on a route with `[routes.cors]`: an `OPTIONS` request with `Origin` and
/// `Access-Control-Request-Method`.
#[derive(Debug, Clone, Copy)]
struct PreflightAsk<'a> {
    cors: &'a CorsPolicy,
    origin: &'a [u8],
    method: &'a [u8],
    headers: Option<&'a [u8]>,
}

fn preflight_of<'a>(ctx: &RequestCtx<'a>, rules: &'a CompiledRules) -> Option<PreflightAsk<'a>> {
    let cors = rules.cors.as_ref()?;
    if ctx.head.method != Method::Options {
        return None;
    }
    let (data, fields) = (ctx.data(), ctx.fields());
    Some(PreflightAsk {
        cors,
        origin: find_header(data, fields, b"origin")?,
        method: find_header(data, fields, b"access-control-request-method")?,
        headers: find_header(data, fields, b"access-control-request-headers"),
    })
}

/// Torii's answer to a preflight: 204 with the policy's lines, or 403 (with `Vary: Origin`
/// when the policy depends on the origin). Never sent upstream, before any API-key check.
fn answer_preflight(ctx: &mut RequestCtx<'_>, p: PreflightAsk<'_>) -> ProxyError {
    let out = &mut ctx.bufs.answer_lines;
    match p.cors.preflight(p.origin, p.method, p.headers) {
        Preflight::Allowed(answer) => {
            answer.write_lines(out);
            ProxyError::client(204, "No Content", "cors.preflight").bare()
        }
        Preflight::Refused(why) => {
            if p.cors.varies() {
                push_line(out, b"vary", b"Origin");
            }
            let reason = match why {
                PreflightRefusal::Origin => "cors.origin_refused",
                PreflightRefusal::Method => "cors.method_refused",
                PreflightRefusal::Header => "cors.header_refused",
            };
            ProxyError::client(403, CORS_REFUSED, reason)
        }
    }
}

/// Appends the CORS lines of an actual response (the route's `[routes.cors]`, `None`
/// without: one branch) to `out`, for the request in `ctx`.
pub fn write_actual_cors(ctx: &RequestCtx<'_>, out: &mut Vec<u8>) {
    let Some(cors) = ctx.route.and_then(|r| r.rules.cors.as_ref()) else {
        return;
    };
    let origin = find_header(ctx.data(), ctx.fields(), b"origin");
    cors.actual_response_headers(origin).write_lines(out);
}

/// Whether `name` is an `Access-Control-*` field, which the upstream may not send on a
/// route whose CORS answers are Torii's.
pub fn is_cors_field(name: &[u8]) -> bool {
    name.get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"access-control-"))
}

/// `force_https` (a plain-HTTP request), then `redirect`.
fn redirects(
    ctx: &mut RequestCtx<'_>,
    rules: &CompiledRules,
    client: &ClientFacts,
) -> Result<(), ProxyError> {
    let data = ctx.data();
    let query = ctx.head.query.map_or(&[][..], |q| q.get(data));
    let host_header = ctx.head.host.map_or(&[][..], |h| h.get(data));
    if rules.force_https && !client.is_secure() {
        let out = &mut ctx.bufs.answer_lines;
        out.extend_from_slice(b"location: ");
        let path = if ctx.path_rewritten {
            &ctx.bufs.path[..]
        } else {
            ctx.head.path.get(data)
        };
        https_location(host_header, path, query, out);
        out.extend_from_slice(b"\r\n");
        return Err(ProxyError::client(308, "Permanent Redirect", "rules.force_https").bare());
    }
    if let Some(redirect) = &rules.redirect {
        let mut buf = [0u8; MAX_HOST_BYTES];
        let host = canonical_host(host_header, &mut buf).unwrap_or_default();
        let path = if ctx.path_rewritten {
            &ctx.bufs.path[..]
        } else {
            ctx.head.path.get(data)
        };
        let out = &mut ctx.bufs.answer_lines;
        out.extend_from_slice(b"location: ");
        redirect_location(redirect, host, path, query, out);
        out.extend_from_slice(b"\r\n");
        return Err(ProxyError::client(redirect.status, "Redirect", "rules.redirect").bare());
    }
    Ok(())
}

/// Phase 4c: the path the route's rules send upstream (`strip_prefix`, then `rewrite`, then
/// `target_root`; the query is kept by the head render), into `ctx.bufs.rule_path`. A
/// rewrite whose result is not canonical is refused (400).
pub fn upstream_path(worker: &Worker, ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let rules: &CompiledRules = &route.rules;
    if rules.empty
        || !(rules.strip_prefix || rules.rewrite.is_some() || !rules.target_root.is_empty())
    {
        return Ok(());
    }
    let canonical = if ctx.path_rewritten {
        &ctx.bufs.path[..]
    } else {
        ctx.head.path.get(ctx.data())
    };
    let prefix = canonical.get(..ctx.matched_prefix_len).unwrap_or_default();
    let mut scratch = worker.rewrite.borrow_mut();
    match path_for_upstream(
        canonical,
        prefix,
        rules,
        &mut scratch,
        &mut ctx.bufs.rule_path,
    ) {
        Ok(()) => {
            ctx.rule_path_set = true;
            Ok(())
        }
        Err(_) => Err(ProxyError::client(
            400,
            "Invalid request path",
            "rules.path_refused",
        )),
    }
}

/// The variables of the route's header rules for the request in `ctx` (on `route`, from a
/// client at `client_ip`); `host_buf` holds the canonical host. `${token.sub}` is the `sub`
/// of the token `[routes.jwt]` verified (empty without one).
pub fn header_vars<'a>(
    ctx: &'a RequestCtx<'_>,
    route: &'a Route,
    client_ip: &'a [u8],
    host_buf: &'a mut [u8; MAX_HOST_BYTES],
) -> Vars<'a> {
    let data = ctx.data();
    let host = ctx.head.host.map_or(&[][..], |h| h.get(data));
    let key = ctx.admitted.key.map(|k| k.prepared());
    Vars {
        client_ip,
        route_id: route.id.as_bytes(),
        request_id: &ctx.rec.request_id,
        apikey_client_id: key.map_or(&[][..], |k| k.client_id().as_bytes()),
        apikey_name: key.map_or(&[][..], |k| k.client_name().as_bytes()),
        token_sub: &ctx.bufs.token_sub,
        host: canonical_host(host, host_buf).unwrap_or_default(),
        path: ctx.canonical_path(),
        query: ctx.head.query.map_or(&[][..], |q| q.get(data)),
    }
}

/// The route's `response_headers` to apply to the upstream's response in `ctx` (`None`
/// without any: one branch).
pub fn response_ops<'r>(ctx: &RequestCtx<'r>) -> Option<&'r HeaderOps> {
    ctx.route
        .map(|r| &*r.rules)
        .filter(|r| !r.empty && !r.response_headers.is_empty())
        .map(|r| &r.response_headers)
}

/// Renders the lines `ops` writes on the upstream's response `resp` (`set_if_missing` looks
/// at its fields) into `ctx.bufs.quota_headers`, which the relay sends after the upstream's
/// own lines.
pub fn write_response_lines(
    ctx: &mut RequestCtx<'_>,
    ops: &HeaderOps,
    resp: &UpstreamResponse,
    client_ip: &[u8],
) {
    let Some(route) = ctx.route else {
        return;
    };
    let mut out = std::mem::take(&mut ctx.bufs.quota_headers);
    let mut host_buf = [0u8; MAX_HOST_BYTES];
    let vars = header_vars(ctx, route, client_ip, &mut host_buf);
    let fields = &ctx.bufs.resp_headers;
    ops.write_lines(&vars, |n| resp.header(fields, n).is_some(), &mut out);
    ctx.bufs.quota_headers = out;
}

/// Appends `name: value\r\n`.
fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
