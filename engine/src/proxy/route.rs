//! The request's place in the config: its canonical path (before anything looks at the path),
//! phase 2 (route) and phase 4 (admission).
//!
//! Owns the canonical path decision (what routing, the token endpoints, the challenge's
//! exclusions and, by default, the backend see; see `http1::path`), the route lookup (404),
//! the route's `path_normalization = "refuse_ambiguous"` refusal (400), and admission: whether a
//! routed, authenticated request may proceed under the limits (`max_body_bytes` → 413; the
//! slot where per-key quotas and per-IP rate limits are decided, without waiting on anything).
//! Pure decisions over the context: no IO.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::config::PathNormalization;
use crate::http1::{canonicalize_path, BodyFraming};
use crate::proxy::context::RequestCtx;
use crate::proxy::error::ProxyError;
use crate::quota::{unix_ms, Refused};

/// Computes the canonical path of the request into the context; a path with no single meaning
/// is refused (400).
pub fn canonicalize(ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    match canonicalize_path(ctx.head.path.get(ctx.data()), true, &mut ctx.bufs.path) {
        Ok(rewritten) => {
            ctx.path_rewritten = rewritten;
            Ok(())
        }
        Err(e) => Err(ProxyError::client(400, "Invalid request path", e.reason())),
    }
}

/// Phase 2: the route serving the request's canonical host and path (404 when none), and the
/// route's path rule.
pub fn route(ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    let host = ctx.head.host.map(|s| s.get(ctx.data())).unwrap_or(b"");
    let Some((idx, prefix_len)) = ctx.snap.table.find_match(host, ctx.canonical_path()) else {
        return Err(ProxyError::no_route());
    };
    ctx.matched_prefix_len = prefix_len;
    let route = &ctx.snap.routes[idx];
    ctx.rec.route = Some(idx);
    ctx.route = Some(route);
    if ctx.path_rewritten && route.path_normalization == PathNormalization::RefuseAmbiguous {
        return Err(ProxyError::client(
            400,
            "Request path is not in canonical form",
            "path.not_canonical",
        ));
    }
    Ok(())
}

/// Phase 4: whether the request may proceed under the limits: the declared body size
/// (413), the route's per-address rate limit and the admitted key's quotas (429, or 503 while
/// the shared store is down in `deny` mode). Decided from this process's counters (shared by
/// its workers with atomics; the Redis sync runs on its own thread): nothing here waits. A
/// refused call is not counted; `worker` is the metrics slot of the refusal. With
/// `quota_headers`, the remaining calls are rendered into `bufs.quota_headers` for the
/// response.
pub fn admit(worker: usize, ctx: &mut RequestCtx<'_>, peer: IpAddr) -> Result<(), ProxyError> {
    if let BodyFraming::Length(n) = ctx.head.body {
        if n > ctx.max_body_bytes() {
            return Err(ProxyError::client(
                413,
                "Request body too large",
                "body.too_large",
            ));
        }
    }
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let rq = &route.quota;
    let key = ctx.admitted.key;
    if rq.per_ip.is_none() && key.is_none() {
        return Ok(());
    }
    let quotas = &ctx.snap.quotas;
    let now_ms = unix_ms(SystemTime::now());
    let refused = |r: Refused| {
        if let Some(kind) = r.kind() {
            route.metrics.quota_rejection(worker, kind);
        }
        ProxyError::from_quota(&r)
    };
    quotas.admit_ip(rq, peer, now_ms).map_err(refused)?;
    if let Some(key) = key {
        let state = quotas
            .admit_key(key.position(), now_ms, rq.update_quotas)
            .map_err(refused)?;
        if rq.quota_headers {
            state.write_headers(&mut ctx.bufs.quota_headers);
        }
    }
    Ok(())
}
