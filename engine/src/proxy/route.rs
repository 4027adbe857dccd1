//! The request's place in the config: its canonical path (before anything looks at the path),
//! phase 2 (route) and phase 4 (admission).
//!
//! Owns the canonical path decision (what routing, the token endpoints, the challenge's
//! exclusions and, by default, the backend see; see `http1::path`), the route lookup (404),
//! the route's `path_normalization = "refuse_ambiguous"` refusal (400), and admission: whether a
//! routed, authenticated request may proceed under the limits (`max_body_bytes` → 413; the
//! slot where per-key quotas and per-IP rate limits are decided, without waiting on anything).
//! Pure decisions over the context: no IO.

use crate::config::PathNormalization;
use crate::http1::{canonicalize_path, BodyFraming};
use crate::proxy::context::RequestCtx;
use crate::proxy::error::ProxyError;

/// Computes the canonical path of the request whose head bytes are `data` into the context;
/// a path with no single meaning is refused (400).
pub fn canonicalize(ctx: &mut RequestCtx<'_>, data: &[u8]) -> Result<(), ProxyError> {
    match canonicalize_path(ctx.head.path.get(data), true, &mut ctx.bufs.path) {
        Ok(rewritten) => {
            ctx.path_rewritten = rewritten;
            Ok(())
        }
        Err(e) => Err(ProxyError::client(400, "Invalid request path", e.reason())),
    }
}

/// Phase 2: the route serving the request's canonical host and path (404 when none), and the
/// route's path rule.
pub fn route(ctx: &mut RequestCtx<'_>, data: &[u8]) -> Result<(), ProxyError> {
    let host = ctx.head.host.map(|s| s.get(data)).unwrap_or(b"");
    let Some(idx) = ctx.snap.table.find(host, ctx.canonical_path(data)) else {
        return Err(ProxyError::no_route());
    };
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

/// Phase 4: whether the request may proceed under the limits. Decided from counters and the
/// head alone: nothing here waits.
pub fn admit(ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    if let BodyFraming::Length(n) = ctx.head.body {
        if n > ctx.snap.limits.max_body_bytes {
            return Err(ProxyError::client(
                413,
                "Request body too large",
                "body.too_large",
            ));
        }
    }
    Ok(())
}
