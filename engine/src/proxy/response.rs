//! Phases 6 and 7, the response: the backend's challenge answer checked on the response head,
//! then the response relayed to the client through its downstream, and the upstream
//! connection's reuse.
//!
//! Owns the response-side rules the phases decide: a backend that fails the exchange protocol
//! never reaches the client (502, its body discarded: `UpstreamResponse::discard` pools the
//! connection only when that body was already buffered whole); the state-response header (the
//! route's and the default name, on every route) is never sent on (`is_hidden`); the upstream
//! connection goes back to the pool only after the downstream relayed the whole response
//! (`UpstreamResponse::release`). How the head and body are framed for the client is the
//! downstream's (`proxy::downstream_h1`, `h2::downstream`).

use std::time::Instant;

use torii_protocol::ChallengeFailure;

use crate::http1::eq_ignore_case;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::{Downstream, Relayed};
use crate::proxy::error::{ProxyError, Side};
use crate::proxy::respond::NOT_SECURED;
use crate::proxy::route_rules;
use crate::proxy::upstream_response::UpstreamResponse;
use crate::secure::unix_now;
use crate::worker::Worker;

/// Default name of the answer header, always removed from responses (Otoroshi strips it).
const DEFAULT_STATE_RESP: &[u8] = b"otoroshi-state-resp";

/// The name of the header that carries the backend's challenge answer on the request's route
/// (the default name when the route has no challenge).
pub fn answer_header_of<'r>(ctx: &RequestCtx<'r>) -> &'r [u8] {
    ctx.route
        .and_then(|r| r.challenge.as_ref())
        .map_or(DEFAULT_STATE_RESP, |c| &c.response_header)
}

/// True for the header lines that carry the backend's challenge answer (`answer_header`, the
/// route's response header, and the default name on every route): never sent on to the client.
pub fn is_hidden(answer_header: &[u8], name: &[u8]) -> bool {
    eq_ignore_case(name, answer_header) || eq_ignore_case(name, DEFAULT_STATE_RESP)
}

/// Phase 6: when the request carried a challenge, the backend's answer on the response head
/// must check out. It runs on every response head, a `101` switching to WebSocket included
/// (Otoroshi's legacy WebSocket path skips it there; Torii does not). On failure the upstream connection is disposed of (pooled only when the
/// whole response body is already buffered, else closed) and the 502 is returned.
pub fn check_challenge(
    worker: &Worker,
    ctx: &RequestCtx<'_>,
    resp: UpstreamResponse,
) -> Result<UpstreamResponse, ProxyError> {
    let (Some(route), true) = (ctx.route, ctx.security.challenge_sent) else {
        return Ok(resp);
    };
    let Some(ch) = &route.challenge else {
        return Ok(resp);
    };
    let answer = resp.header(&ctx.bufs.resp_headers, &ch.response_header);
    let Err(failure) = ch.check_answer(answer, &ctx.security.state, unix_now()) else {
        return Ok(resp);
    };
    route.metrics.challenge_failure(worker.id, failure);
    if let Some(suppressed) = worker.failure_log.admit(Instant::now()) {
        tracing::warn!(
            route = %route.id,
            reason = failure.reason(),
            status = resp.status(),
            suppressed,
            "backend failed the exchange protocol; answering 502"
        );
    }
    resp.discard(worker);
    Err(ProxyError::new(
        Side::Upstream,
        502,
        NOT_SECURED,
        challenge_reason(failure),
    ))
}

/// The access-log reason of a failed challenge: `challenge.` and the failure's own label.
fn challenge_reason(failure: ChallengeFailure) -> &'static str {
    match failure {
        ChallengeFailure::MissingHeader => "challenge.missing_header",
        ChallengeFailure::StateMismatch => "challenge.state_mismatch",
        ChallengeFailure::BadSignature => "challenge.bad_signature",
        ChallengeFailure::AlgMismatch => "challenge.alg_mismatch",
        ChallengeFailure::Malformed => "challenge.malformed",
        ChallengeFailure::Expired => "challenge.expired",
        ChallengeFailure::NotYetValid => "challenge.not_yet_valid",
        ChallengeFailure::MissingExpIat => "challenge.missing_exp_iat",
        ChallengeFailure::TtlTooLong => "challenge.ttl_too_long",
        ChallengeFailure::Stale => "challenge.stale",
        ChallengeFailure::WrongAudience => "challenge.wrong_audience",
    }
}

/// Phase 7: relays the response head and body to the client through its downstream (minus
/// the challenge answer), then returns the upstream connection to the pool when it is clean.
/// Says how the client connection goes on.
pub async fn send_response<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    mut resp: UpstreamResponse,
) -> Outcome {
    let ops = route_rules::response_ops(ctx);
    if let Some(ops) = ops {
        route_rules::write_response_lines(ctx, ops, &resp, down.client().client_ip());
    }
    let cors = ctx.route.is_some_and(|r| r.rules.cors.is_some());
    if cors {
        let mut lines = std::mem::take(&mut ctx.bufs.quota_headers);
        route_rules::write_actual_cors(ctx, &mut lines);
        ctx.bufs.quota_headers = lines;
    }
    let hidden = answer_header_of(ctx);
    let hidden = |name: &[u8]| {
        is_hidden(hidden, name)
            || ops.is_some_and(|o| o.drops(name))
            || (cors && route_rules::is_cors_field(name))
    };
    match down
        .relay_response(ctx, &mut resp, hidden, worker.is_draining())
        .await
    {
        Relayed::Complete { close } => {
            resp.release(worker);
            Outcome::keep_alive_unless(close)
        }
        // The upstream connection is dropped (closed), never pooled mid-body.
        Relayed::Failed => Outcome::Close,
    }
}
