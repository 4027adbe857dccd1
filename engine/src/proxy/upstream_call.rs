//! Phase 5, the upstream request: wait for the request body to start, draw the security
//! values, take an upstream connection, send the head and the body, and read the response head.
//!
//! Owns the sequence of one upstream exchange and its retry (once, as
//! [`retry_allowed`](crate::proxy::error::retry_allowed) says); the bounded wait for a request
//! body before any upstream connection is taken (`body_rate`); streaming the body with the
//! minimum rate; and reading the response head under `upstream_timeout`, skipping interim 1xx
//! answers. Returns the upstream connection and its response head to the sequencer, or the
//! [`ProxyError`] to answer (refused/reset → 502, timeouts → 504, a request body that failed →
//! its 4xx, closing).

use std::io;
use std::time::Instant;

use crate::http1::{parse_response_head, BodyFraming, ResponseHead};
use crate::io::write_all_timeout;
use crate::proxy::body::{ChunkedMode, Framing, PumpOptions, BODY_BUFFER_BYTES};
use crate::proxy::body_rate::{BodyClock, BodyStart};
use crate::proxy::connect::connect;
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::Downstream;
use crate::proxy::error::{retry_allowed, ProxyError};
use crate::proxy::upstream_head::UpstreamHead;
use crate::proxy::upstream_response::UpstreamResponse;
use crate::secure::unix_now;
use crate::snapshot::RuntimeLimits;
use crate::tls::stream::UpStream;
use crate::upstream::pool::UpstreamConn;
use crate::worker::Worker;

/// Sends the routed, admitted request upstream and reads the response head.
pub async fn forward<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
) -> Result<UpstreamResponse, ProxyError> {
    let snap = ctx.snap;
    let Some((route_idx, route)) = ctx.rec.route.zip(ctx.route) else {
        return Err(ProxyError::no_route());
    };
    let limits = snap.limits;
    // No upstream connection is taken before the body is here (small bodies whole, larger
    // ones their first byte): a client that announces a body and never sends it holds none.
    let (clock, waited) = down.await_body(ctx).await;
    let body_start = waited.map_err(|e| ProxyError::from_body_wait(&e))?;
    let now = unix_now();
    draw_security(worker, ctx);
    let buffered = match body_start {
        BodyStart::Buffered(n) => Some(n),
        BodyStart::None | BodyStart::Streaming => None,
    };
    let streamed = match ctx.head.body {
        BodyFraming::Length(n) if n > 0 && buffered.is_none() => Some(Framing::Length(n)),
        BodyFraming::Chunked => Some(Framing::Chunked),
        _ => None,
    };

    // A buffered body stays with the downstream (the head is the context's) until the
    // request is sent for good, so that the upstream head can be rendered again for a retry or another target.
    let mut attempt = 0;
    let upstream_start = Instant::now();
    let result = loop {
        attempt += 1;
        let (mut up, target_idx) = match connect(worker, snap, route_idx, attempt > 1).await {
            Ok(c) => c,
            Err(e) => break Err(ProxyError::from_connect(e)),
        };
        ctx.rec.target = Some(target_idx);
        let retry = retry_allowed(up.reused, attempt, ctx.head.method, streamed.is_some());
        // The worker's keyed-prefix cache is borrowed only while the head is rendered (no
        // await inside this block).
        let rendered = {
            let mut prefixes = worker.info_prefixes.borrow_mut();
            let keyed = match (&route.info_token, ctx.admitted.key) {
                (Some(info), Some(key)) => prefixes.get(snap.version, route_idx, info, key),
                _ => None,
            };
            let input = UpstreamHead {
                data: ctx.data(),
                head: &ctx.head,
                headers: ctx.fields(),
                canonical_path: ctx.path_rewritten.then_some(&ctx.bufs.path[..]),
                allow_underscores: down.client().allow_underscores,
                route,
                target: &route.targets[target_idx],
                admitted: &ctx.admitted,
                keyed,
                jwt_extra: ctx.jwt_extra.as_ref(),
                security: &ctx.security,
                now,
                request_id: &ctx.rec.request_id,
                xff_line: &down.client().xff_line,
                proto: down.client().scheme,
                websocket: ctx.upgrade.is_some(),
                body: buffered.map(|n| down.buffered_body(n)),
            };
            input.render(&mut ctx.bufs.up_head, &mut ctx.bufs.scratch)
        };
        match rendered {
            Ok(copied) => ctx.rec.underscore_dropped = copied.underscore_dropped,
            Err(why) => break Err(ProxyError::internal(why)),
        }
        if let Err(e) = write_all_timeout(
            &mut up.stream,
            &mut ctx.bufs.up_head,
            limits.upstream_timeout,
        )
        .await
        {
            if retry {
                continue;
            }
            break Err(ProxyError::before_response(&e, false));
        }
        if let Some(framing) = streamed {
            Box::pin(send_request_body(
                down, ctx, &mut up, framing, &limits, clock,
            ))
            .await?;
        }
        match read_response_head(&mut up, ctx, &limits, retry).await {
            Ok(resp) => break Ok(UpstreamResponse::new(up, resp)),
            Err(e) if e.retry => continue,
            Err(e) => break Err(e),
        }
    };
    ctx.rec.upstream = Some(upstream_start.elapsed());
    if let Some(n) = buffered {
        ctx.rec.bytes_in += n as u64;
        down.consume_body(n);
        ctx.body_done = true;
    }
    result
}

/// Draws the per-request random values the route's security features need: the challenge
/// state (unless the canonical path is excluded) and the tokens' `jti`s. No syscall: the
/// worker's CSPRNG.
fn draw_security(worker: &Worker, ctx: &mut RequestCtx<'_>) {
    let Some(route) = ctx.route else { return };
    if route.challenge.is_none() && route.info_token.is_none() {
        return;
    }
    let mut rng = worker.rng.borrow_mut();
    if let Some(ch) = &route.challenge {
        if ch.applies(ctx.canonical_path()) {
            rng.fill_state(&mut ctx.security.state);
            rng.fill_jti(&mut ctx.security.state_jti);
            ctx.security.challenge_sent = true;
        }
    }
    if route.info_token.is_some() {
        rng.fill_jti(&mut ctx.security.info_jti);
    }
}

/// Streams the rest of the request body to the upstream (`100 Continue` was answered, when
/// asked for, before the upstream connection was taken). A failure is answered with close:
/// the body's end is unknown.
async fn send_request_body<D: Downstream>(
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    up: &mut UpstreamConn<UpStream>,
    framing: Framing,
    limits: &RuntimeLimits,
    clock: BodyClock,
) -> Result<(), ProxyError> {
    let opts = PumpOptions {
        read_timeout: limits.body_timeout,
        write_timeout: limits.upstream_timeout,
        max_bytes: limits.max_body_bytes,
        buffer_bytes: BODY_BUFFER_BYTES,
        chunked: ChunkedMode::Rechunk,
        min_rate: Some(clock),
        // A slow upstream reader is bounded by `upstream_timeout` per write.
        min_send_rate: None,
    };
    let n = down
        .send_body(&mut up.stream, framing, &mut ctx.bufs.scratch, opts)
        .await
        .map_err(|e| ProxyError::from_request_body(&e))?;
    ctx.rec.bytes_in += n;
    ctx.body_done = true;
    Ok(())
}

/// Reads the upstream's response head (skipping interim 1xx answers; a `101` only when a
/// WebSocket upgrade was asked for) into `up.buf`.
/// `retry` is whether a failure before any response byte may be retried.
async fn read_response_head(
    up: &mut UpstreamConn<UpStream>,
    ctx: &mut RequestCtx<'_>,
    limits: &RuntimeLimits,
    retry: bool,
) -> Result<ResponseHead, ProxyError> {
    let cap = limits.head.max_head_bytes + 1;
    let deadline = Instant::now() + limits.upstream_timeout;
    loop {
        if !up.buf.is_empty() {
            match parse_response_head(
                up.buf.data(),
                &limits.head,
                ctx.head.method,
                &mut ctx.bufs.resp_headers,
            ) {
                Ok(Some(resp)) if resp.status == 101 && ctx.upgrade.is_none() => {
                    // Torii asked for no upgrade (`Upgrade` is hop-by-hop unless phase 4b
                    // admitted a WebSocket one), so a 101 is a protocol error: nothing is
                    // tunnelled (a tunnel only after a 101 Torii asked for).
                    return Err(ProxyError::bad_response("upstream.unexpected_101"));
                }
                // A 101 answering the WebSocket upgrade Torii asked for: phases 6 and 7 check
                // it before anything is tunnelled.
                Ok(Some(resp)) if resp.status == 101 => return Ok(resp),
                Ok(Some(resp)) if resp.status < 200 => {
                    up.buf.consume(resp.head_len);
                    continue;
                }
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) if up.buf.len() >= cap => {
                    return Err(ProxyError::bad_response("upstream.head_too_large"))
                }
                Ok(None) => {}
                Err(_) => return Err(ProxyError::bad_response("upstream.invalid_head")),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProxyError::response_timeout());
        }
        let had_bytes = !up.buf.is_empty();
        match up.buf.fill_timeout(&mut up.stream, cap, left).await {
            Ok(0) if had_bytes => return Err(ProxyError::bad_response("upstream.closed_mid_head")),
            Ok(0) => {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(ProxyError::before_response(&eof, retry));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(ProxyError::response_timeout())
            }
            Err(_) if had_bytes => return Err(ProxyError::bad_response("upstream.reset_mid_head")),
            Err(e) => return Err(ProxyError::before_response(&e, retry)),
        }
    }
}
