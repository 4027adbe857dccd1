//! Phases 6 and 7, the response: the backend's challenge answer checked on the response head,
//! then the head and body sent on to the client, and the upstream connection's reuse.
//!
//! Owns the response-side rules: a backend that fails the exchange protocol never reaches the
//! client (502, its body discarded: the upstream connection is pooled only when that body was
//! already buffered whole); header lines copied verbatim minus hop-by-hop ones, the
//! state-response header (the route's and the default name, on every route) and
//! `Content-Length` on 1xx, 204 and 304 (`http1::status_has_no_content`); framing chosen for
//! the client's HTTP version (chunked re-framed for HTTP/1.1 clients, de-chunked and
//! close-delimited for HTTP/1.0 ones); `Connection: close` when the connection ends; and the
//! decision to return the upstream connection to the pool — only after a complete, cleanly
//! framed response with no extra bytes behind it, and never after a 204 or 304 whose head
//! announced a body (its bytes would be read as the next response: `ResponseHead::keep_alive`).

use std::time::Instant;

use torii_protocol::ChallengeFailure;

use crate::http1::{copy_response_head, eq_ignore_case, find_header, ResponseBody, ResponseHead};
use crate::io::{write_all_timeout, Stream};
use crate::proxy::body::{pump, ChunkedMode, Framing, PumpOptions};
use crate::proxy::client::ClientConn;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::Downstream;
use crate::proxy::error::{ProxyError, Side};
use crate::proxy::respond::NOT_SECURED;
use crate::proxy::upstream_call::BODY_BUFFER_BYTES;
use crate::secure::unix_now;
use crate::tls::stream::UpStream;
use crate::upstream::pool::UpstreamConn;
use crate::worker::Worker;

/// Response bodies up to this size that are already buffered go out in the head's write.
const COALESCE_RESPONSE_BYTES: u64 = 16 * 1024;

/// Default name of the answer header, always removed from responses (Otoroshi strips it).
const DEFAULT_STATE_RESP: &[u8] = b"otoroshi-state-resp";

/// True for the header lines that carry the backend's challenge answer (the route's response
/// header, and the default name on every route): never sent on to the client.
pub fn is_answer_header(ctx: &RequestCtx<'_>, name: &[u8]) -> bool {
    let answer_header: &[u8] = ctx
        .route
        .and_then(|r| r.challenge.as_ref())
        .map_or(DEFAULT_STATE_RESP, |c| &c.response_header);
    eq_ignore_case(name, answer_header) || eq_ignore_case(name, DEFAULT_STATE_RESP)
}

/// Phase 6: when the request carried a challenge, the backend's answer on the response head
/// must check out. It runs on every response head, a `101` switching to WebSocket included
/// (Otoroshi's legacy WebSocket path skips it there; Torii does not). On failure the upstream connection is disposed of (pooled only when the
/// whole response body is already buffered, else closed) and the 502 is returned.
pub fn check_challenge(
    worker: &Worker,
    ctx: &RequestCtx<'_>,
    up: UpstreamConn<UpStream>,
    resp: &ResponseHead,
) -> Result<UpstreamConn<UpStream>, ProxyError> {
    let (Some(route), true) = (ctx.route, ctx.security.challenge_sent) else {
        return Ok(up);
    };
    let Some(ch) = &route.challenge else {
        return Ok(up);
    };
    let answer = find_header(up.buf.data(), &ctx.bufs.resp_headers, &ch.response_header);
    let Err(failure) = ch.check_answer(answer, &ctx.security.state, unix_now()) else {
        return Ok(up);
    };
    route.metrics.challenge_failure(worker.id, failure);
    if let Some(suppressed) = worker.failure_log.admit(Instant::now()) {
        tracing::warn!(
            route = %route.id,
            reason = failure.reason(),
            status = resp.status,
            suppressed,
            "backend failed the exchange protocol; answering 502"
        );
    }
    discard(worker, up, resp);
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

/// A response the client will not get: its upstream connection is pooled only when the whole
/// body is already buffered (then skipped), else dropped (closed).
fn discard(worker: &Worker, mut up: UpstreamConn<UpStream>, resp: &ResponseHead) {
    up.buf.consume(resp.head_len);
    let body_buffered = match resp.body {
        ResponseBody::None => true,
        ResponseBody::Length(n) => up.buf.len() as u64 >= n,
        _ => false,
    };
    if body_buffered && resp.keep_alive {
        if let ResponseBody::Length(n) = resp.body {
            up.buf.consume(n as usize);
        }
        worker.pool.borrow_mut().checkin(up, Instant::now());
    }
}

/// Phase 7: sends the response head and body to the client, then returns the upstream
/// connection to the pool when it is clean. Says how the client connection goes on.
pub async fn send_response<C: Stream>(
    worker: &Worker,
    conn: &mut ClientConn<C>,
    ctx: &mut RequestCtx<'_>,
    mut up: UpstreamConn<UpStream>,
    resp: ResponseHead,
) -> Outcome {
    let limits = ctx.snap.limits;
    let http10_client = ctx.head.version_minor == 0;
    let (framing, chunked_mode, close_after) = match resp.body {
        ResponseBody::None => (None, ChunkedMode::Rechunk, false),
        ResponseBody::Length(n) => (Some(Framing::Length(n)), ChunkedMode::Rechunk, false),
        ResponseBody::Chunked if http10_client => {
            (Some(Framing::Chunked), ChunkedMode::Dechunk, true)
        }
        ResponseBody::Chunked => (Some(Framing::Chunked), ChunkedMode::Rechunk, false),
        ResponseBody::UntilClose => (Some(Framing::UntilClose), ChunkedMode::Rechunk, true),
    };
    let close = close_after || conn.must_close(ctx, worker.is_draining());

    conn.wbuf.clear();
    let data = up.buf.data();
    copy_response_head(data, &resp, &ctx.bufs.resp_headers, &mut conn.wbuf, |f| {
        is_answer_header(ctx, f.name.get(data))
    });
    if chunked_mode == ChunkedMode::Rechunk && matches!(resp.body, ResponseBody::Chunked) {
        conn.wbuf
            .extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        conn.wbuf.extend_from_slice(b"connection: close\r\n");
    } else if http10_client {
        conn.wbuf.extend_from_slice(b"connection: keep-alive\r\n");
    }
    conn.wbuf.extend_from_slice(&ctx.bufs.quota_headers);
    conn.wbuf.extend_from_slice(b"\r\n");
    up.buf.consume(resp.head_len);

    let mut body_done = framing.is_none();
    if let Some(Framing::Length(n)) = framing {
        if n <= COALESCE_RESPONSE_BYTES && up.buf.len() as u64 >= n {
            let n = n as usize;
            conn.wbuf.extend_from_slice(&up.buf.data()[..n]);
            up.buf.consume(n);
            body_done = true;
        }
    }
    ctx.rec.answered(resp.status, conn.wbuf.len());
    if write_all_timeout(&mut conn.stream, &mut conn.wbuf, limits.body_timeout)
        .await
        .is_err()
    {
        return Outcome::Close;
    }
    if !body_done {
        let Some(framing) = framing else {
            return Outcome::Close;
        };
        let opts = PumpOptions {
            read_timeout: limits.upstream_timeout,
            write_timeout: limits.body_timeout,
            max_bytes: u64::MAX,
            buffer_bytes: BODY_BUFFER_BYTES,
            chunked: chunked_mode,
            min_rate: None,
            min_send_rate: Some((limits.response_min_rate, limits.response_min_rate_grace)),
        };
        // Boxed (one allocation per streamed body): inline, the pump's ~2.7 KB state would
        // be copied with every request's future, small coalesced responses included.
        match Box::pin(pump(
            &mut up.stream,
            &mut up.buf,
            &mut conn.stream,
            framing,
            &mut ctx.bufs.scratch,
            opts,
        ))
        .await
        {
            Ok(n) => ctx.rec.bytes_out += n,
            Err(e) => {
                // The status line is already out: the only honest signal left is closing. The
                // upstream connection is dropped (closed), never pooled mid-body.
                tracing::debug!(error = %e, "response body failed");
                return Outcome::Close;
            }
        }
    }
    release(worker, up, &resp);
    Outcome::keep_alive_unless(close)
}

/// Returns a fully read upstream connection to the pool, unless its response said it ends.
fn release(worker: &Worker, up: UpstreamConn<UpStream>, resp: &ResponseHead) {
    let reusable = resp.keep_alive && !matches!(resp.body, ResponseBody::UntilClose);
    if reusable {
        worker.pool.borrow_mut().checkin(up, Instant::now());
    }
}
