//! Phase 2b: the route's rules that decide from the head alone, before authentication
//! (docs/configuration.md, "Rule order"): the client filters (`deny_ips`/`allow_ips` → 403,
//! `methods`/`read_only` → 405 with `Allow`, `header_checks` → 400, the route's
//! `max_body_bytes` against a declared length → 413), then `force_https` (308 to
//! `https://`) and `redirect` (its status and `Location`); phase 4c: the path sent upstream
//! (`strip_prefix`, `rewrite`, `target_root` → `ctx.bufs.rule_path`, read by the head render,
//! which also applies `preserve_host`), with the worker's `RewriteScratch`.
//!
//! Owns applying [`CompiledRules`] decisions to a request: the decisions themselves are the
//! `rules` module's. An answer's extra lines (`Allow`, `Location`) are rendered into
//! `ctx.bufs.answer_lines`, which [`answer`](crate::proxy::answer::answer) sends with it. A
//! route without rules costs one branch.

use crate::http1::{canonical_host, BodyFraming, MAX_HOST_BYTES};
use crate::proxy::client::ClientFacts;
use crate::proxy::context::RequestCtx;
use crate::proxy::error::ProxyError;
use crate::rules::{
    https_location, path_for_upstream, redirect_location, AllowHeader, CompiledRules,
};
use crate::worker::Worker;

/// Message of the 403 of `allow_ips` / `deny_ips`.
pub const IP_REFUSED: &str = "Your IP address is not allowed";
/// Message of the 405 of `methods` / `read_only`.
pub const METHOD_REFUSED: &str = "Method not allowed";
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
    if let Err(AllowHeader(allow)) = rules.method_allowed(ctx.head.method_span.get(data)) {
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
    redirects(ctx, rules, client)
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

/// Appends `name: value\r\n`.
fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
