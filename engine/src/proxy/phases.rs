//! The request phases, in order, in one place: the sequencer.
//!
//! Each phase is a function of its own module that takes the request context and returns a
//! result; no phase calls the next one. An `Err` is turned into Torii's answer by
//! [`answer`](crate::proxy::answer::answer), the one place that decides what the client gets
//! and whether its connection stays open.
//!
//! | # | phase | module | refuses with |
//! |---|---|---|---|
//! | 0 | canonical path | [`route::canonicalize`] | 400 |
//! | 1 | local endpoints (OAuth2 token, introspect, JWKS) | [`oauth_endpoint`] | its own RFC 6749 answers |
//! | 2 | route | [`route::route`] | 404, 400 |
//! | 2b | route rules: filters, `force_https`, `redirect`, CORS preflight | [`route_rules::filter`] | 403, 405, 400, 413; 308 and the redirect's status; a preflight's 204 or 403 |
//! | 3 | authenticate: external JWT, API key / bearer | [`authenticate`] | 401, 403 |
//! | 4 | admission: limits (and quotas) | [`route::admit`] | 413, 429, 503 (quota store down under `deny`) |
//! | 4b | a WebSocket upgrade: its handshake, a tunnel slot | [`upgrade::admit_upgrade`] | 400, 503 |
//! | 4c | route rules: the path sent upstream (`strip_prefix`, `rewrite`, `target_root`) | [`route_rules::upstream_path`] | 400 |
//! | 5 | upstream request: body start, connect, head, body, response head | [`upstream_call`] | 408, 413, 502, 504 |
//! | 6 | response head: the backend's challenge answer (on a `101` too) | [`response::check_challenge`] | 502 |
//! | 7 | response head and body to the client; upstream reuse — or, for a `101` answering a WebSocket upgrade, the switch checked and sent on | [`response::send_response`], [`upgrade::switch`] | 502 |
//! | 8 | record: metrics and the access-log line | [`record`](crate::proxy::record) (called by the connection) | — |
//!
//! A verified switch ends the request with [`Outcome::Upgrade`]: the connection loop, not the
//! phases, runs the tunnel.

use crate::metrics::TunnelResult;
use crate::proxy::answer::answer;
use crate::proxy::authenticate::authenticate;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::Downstream;
use crate::proxy::error::ProxyError;
use crate::proxy::{oauth_endpoint, response, route, route_rules, upgrade, upstream_call};
use crate::worker::Worker;

/// Runs the phases of the request in `ctx` (which owns its head), answering through the
/// client's downstream `down`, and says how the client connection goes on.
pub async fn handle_request<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
) -> Outcome {
    match before_upstream(worker, down, ctx) {
        Ok(None) => {}
        Ok(Some(endpoint)) => {
            return Box::pin(oauth_endpoint::serve(worker, down, ctx, endpoint)).await;
        }
        Err(e) => return Box::pin(answer(worker, down, ctx, e)).await,
    }
    let resp = match upstream_call::forward(worker, down, ctx).await {
        Ok(resp) => resp,
        Err(e) => return Box::pin(answer(worker, down, ctx, e)).await,
    };
    let resp = match response::check_challenge(worker, ctx, resp) {
        Ok(resp) => resp,
        Err(e) => {
            upgrade::count(worker, ctx, TunnelResult::BadHandshake);
            return Box::pin(answer(worker, down, ctx, e)).await;
        }
    };
    if ctx.upgrade.is_some() {
        if resp.status() == 101 {
            return match Box::pin(upgrade::switch(worker, down, ctx, resp)).await {
                Ok(outcome) => outcome,
                Err(e) => Box::pin(answer(worker, down, ctx, e)).await,
            };
        }
        // The backend refused the upgrade: its answer is relayed like any response and the
        // connection stays HTTP.
        upgrade::count(worker, ctx, TunnelResult::Refused);
        ctx.upgrade = None;
    }
    response::send_response(worker, down, ctx, resp).await
}

/// Phases 0 to 4, which decide from the head alone. `Ok(Some(_))`: a local endpoint answers.
fn before_upstream<D: Downstream>(
    worker: &Worker,
    down: &D,
    ctx: &mut RequestCtx<'_>,
) -> Result<Option<torii_protocol::oauth::Endpoint>, ProxyError> {
    route::canonicalize(ctx)?;
    if let Some(endpoint) = oauth_endpoint::endpoint_for(ctx) {
        return Ok(Some(endpoint));
    }
    route::route(ctx)?;
    route_rules::filter(ctx, down.client())?;
    authenticate(worker, ctx)?;
    route::admit(worker.id, ctx, down.client().peer.ip())?;
    upgrade::admit_upgrade(worker, ctx)?;
    route_rules::upstream_path(worker, ctx)?;
    Ok(None)
}
