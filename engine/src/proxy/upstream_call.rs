//! The upstream leg of a proxied request: connection, request head and body, response head,
//! response body, and the decision to pool the upstream connection.
//!
//! Owns the forwarding rules: the client's header lines are copied verbatim minus hop-by-hop,
//! spoofable and replaced ones, plus `Host`, `X-Forwarded-*` and framing headers; chunked
//! bodies are re-framed canonically; the safe retry rule (design.md: once, on a fresh
//! connection, only when a reused pooled connection failed before any response byte, the method
//! is idempotent and no body was streamed); and the error mapping of hardening.md "Upstream
//! failures" (refused/reset → 502, timeouts → 504, failure after the response head was sent →
//! the client connection is closed).

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::check::Admitted;
use crate::auth::wipe;
use crate::config::PathNormalization;
use crate::http1::{
    copy_request_head, eq_name_dashed, parse_response_head, BodyFraming, HeaderKind, RequestHead,
    ResponseHead,
};
use crate::io::{write_all_timeout, Stream};
use crate::proxy::body::{pump, ChunkedMode, Framing, PumpError, PumpOptions};
use crate::proxy::body_rate::{await_body, BodyClock, BodyStart, BodyWaitError};
use crate::proxy::respond::write_error;
use crate::proxy::response::send_response;
use crate::secure::unix_now;
use crate::server::conn::ClientState;
use crate::server::worker::Worker;
use crate::snapshot::{Route, RuntimeLimits, Snapshot, Target};
use crate::upstream::connect::{connect, ConnectError};
use crate::upstream::pool::UpstreamConn;
use crate::upstream::UpStream;
use torii_protocol::info_token::KeyedPrefix;

/// Read-buffer cap while streaming bodies.
pub(crate) const BODY_BUFFER_BYTES: usize = 64 * 1024;

/// Why the upstream leg failed before a response head reached the client.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// Connecting failed (refused, reset, timed out) on every target tried.
    Connect(ConnectError),
    /// The upstream failed (reset, closed) before any response byte.
    BeforeResponse(io::Error),
    /// No response head within the upstream timeout.
    ResponseTimeout,
    /// The upstream's response head was invalid.
    BadResponse(&'static str),
    /// Torii could not build the request (a token could not be signed).
    Internal(&'static str),
}

impl UpstreamError {
    fn status(&self) -> u16 {
        match self {
            UpstreamError::Connect(ConnectError::TimedOut) | UpstreamError::ResponseTimeout => 504,
            UpstreamError::Internal(_) => 500,
            _ => 502,
        }
    }

    fn message(&self) -> &'static str {
        match self {
            UpstreamError::Connect(ConnectError::Refused) => "Upstream connection refused",
            UpstreamError::Connect(ConnectError::TimedOut) => "Upstream connection timed out",
            UpstreamError::Connect(ConnectError::NoTarget) => "No upstream target",
            UpstreamError::Connect(ConnectError::Tls) => "Upstream TLS handshake failed",
            UpstreamError::BeforeResponse(_) => "Upstream connection failed",
            UpstreamError::ResponseTimeout => "Upstream timed out",
            UpstreamError::BadResponse(_) => "Upstream sent an invalid response",
            UpstreamError::Internal(_) => "Internal error",
        }
    }
}

/// Proxies one routed request to the route's targets. Returns whether the client connection
/// may be kept alive.
pub async fn forward<C: Stream>(
    worker: &Rc<Worker>,
    snap: &Rc<Arc<Snapshot>>,
    route_idx: usize,
    client: &mut C,
    st: &mut ClientState,
    head: RequestHead,
    admitted: Admitted<'_>,
) -> bool {
    let route = &snap.routes[route_idx];
    let limits = snap.limits;
    // No upstream connection is taken before the body is here (small bodies whole, larger
    // ones their first byte): a client that announces a body and never sends it holds none.
    let clock = BodyClock::new(
        st.head_done,
        limits.body_min_rate,
        limits.body_min_rate_grace,
    );
    let body_start = match await_body(
        client,
        &mut st.rbuf,
        &mut st.wbuf,
        &head,
        &clock,
        limits.body_timeout,
        &mut st.continue_sent,
    )
    .await
    {
        Ok(start) => start,
        Err(e) => return Box::pin(body_wait_failed(client, st, &limits, e)).await,
    };
    let now = unix_now();
    prepare_security(worker, route, st, &head);
    let coalesced = match body_start {
        BodyStart::Buffered(n) => Some(n),
        BodyStart::None | BodyStart::Streaming => None,
    };
    let streamed_body = match head.body {
        BodyFraming::Length(n) if n > 0 && coalesced.is_none() => Some(Framing::Length(n)),
        BodyFraming::Chunked => Some(Framing::Chunked),
        _ => None,
    };

    // The client head (and a coalesced body) stay in `rbuf` until the request is sent for
    // good, so that the upstream head can be rendered again for a retry or another target.
    let mut head_consumed = false;
    let mut attempt = 0;
    let upstream_start = Instant::now();
    let result = loop {
        attempt += 1;
        let (mut up, target_idx) = match connect(worker, snap, route_idx, attempt > 1).await {
            Ok(c) => c,
            Err(e) => break Err(UpstreamError::Connect(e)),
        };
        st.rec.target = Some(target_idx);
        // The worker's keyed-prefix cache is borrowed only while the head is rendered (no
        // await inside this block).
        let rendered = {
            let mut prefixes = worker.info_prefixes.borrow_mut();
            let keyed = match (&route.info_token, admitted.key) {
                (Some(info), Some(key)) => prefixes.get(snap.version, route_idx, info, key),
                _ => None,
            };
            render_upstream_head(
                route,
                &route.targets[target_idx],
                st,
                &head,
                coalesced,
                now,
                &admitted,
                keyed,
            )
        };
        if let Err(why) = rendered {
            break Err(UpstreamError::Internal(why));
        }
        let retryable =
            up.reused && attempt == 1 && head.method.is_idempotent() && streamed_body.is_none();
        if let Err(e) =
            write_all_timeout(&mut up.stream, &mut st.up_head, limits.upstream_timeout).await
        {
            if retryable {
                continue;
            }
            break Err(UpstreamError::BeforeResponse(e));
        }
        if let Some(framing) = streamed_body {
            st.rbuf.consume(head.head_len);
            head_consumed = true;
            if let Err(keep_alive) = Box::pin(send_request_body(
                client, st, &mut up, framing, &limits, clock,
            ))
            .await
            {
                return keep_alive;
            }
        }
        match read_response_head(&mut up, st, &head, &limits).await {
            Ok(resp) => break Ok((up, resp)),
            Err(UpstreamError::BeforeResponse(_)) if retryable => continue,
            Err(e) => break Err(e),
        }
    };
    st.rec.upstream = Some(upstream_start.elapsed());
    st.rec.bytes_in += coalesced.unwrap_or(0) as u64;
    let body_unread = streamed_body.is_some() && !head_consumed;
    if !head_consumed {
        st.rbuf.consume(head.head_len + coalesced.unwrap_or(0));
    }
    match result {
        Ok((up, resp)) => {
            send_response(worker, snap, route, client, st, &head, up, resp, now).await
        }
        Err(e) => Box::pin(fail(worker, client, st, &head, &limits, &e, body_unread)).await,
    }
}

/// Draws the per-request random values the route's security features need: the challenge
/// state (unless the path is excluded) and the tokens' `jti`s. No syscall: the worker's CSPRNG.
fn prepare_security(worker: &Worker, route: &Route, st: &mut ClientState, head: &RequestHead) {
    st.challenge_sent = false;
    if route.challenge.is_none() && route.info_token.is_none() {
        return;
    }
    let mut rng = worker.rng.borrow_mut();
    if let Some(ch) = &route.challenge {
        if ch.applies(st.canonical_path(head)) {
            rng.fill_state(&mut st.state);
            rng.fill_jti(&mut st.state_jti);
            st.challenge_sent = true;
        }
    }
    if route.info_token.is_some() {
        rng.fill_jti(&mut st.info_jti);
    }
}

/// True for incoming headers that carry the same names as the route's security headers:
/// clients must not be able to send their own (reference §0.5; the default names are already
/// dropped as spoofable). `_` and `-` count as equal, as CGI/WSGI backends read them.
fn is_route_security_header(route: &Route, name: &[u8]) -> bool {
    route
        .challenge
        .as_ref()
        .is_some_and(|c| eq_name_dashed(name, &c.request_header))
        || route
            .info_token
            .as_ref()
            .is_some_and(|t| eq_name_dashed(name, &t.header))
        || route.jwt.as_ref().is_some_and(|j| j.strips_header(name))
}

/// Renders the upstream request head for `target` into `st.up_head`, followed by the
/// coalesced body when there is one. Reads the client head from `st.rbuf` without consuming it.
#[allow(clippy::too_many_arguments)]
fn render_upstream_head(
    route: &Route,
    target: &Target,
    st: &mut ClientState,
    head: &RequestHead,
    coalesced: Option<usize>,
    now: u64,
    admitted: &Admitted<'_>,
    keyed: Option<&KeyedPrefix>,
) -> Result<(), &'static str> {
    st.up_head.clear();
    let data = st.rbuf.data();
    let wipe = &admitted.wipe;
    let path = if st.path_rewritten && route.path_normalization != PathNormalization::ForwardRaw {
        &st.path_buf[..]
    } else {
        head.path.get(data)
    };
    let copied = copy_request_head(
        data,
        head,
        path,
        &st.headers,
        st.allow_underscores,
        &mut st.up_head,
        |f| {
            matches!(f.kind, HeaderKind::Host | HeaderKind::Expect)
                || is_route_security_header(route, f.name.get(data))
                || wipe::drops_header(wipe, f.name.get(data))
        },
    );
    st.rec.underscore_dropped = copied.underscore_dropped;
    if !wipe.is_empty() {
        wipe::rewrite_request_line(
            wipe,
            data,
            head,
            path.len(),
            &mut st.up_head,
            &mut st.scratch,
        );
        if wipe.touches_cookies() {
            wipe::write_cookie_lines(wipe, data, &st.headers, &mut st.up_head);
        }
    }
    if st.challenge_sent {
        if let Some(ch) = &route.challenge {
            ch.render_state_header(&st.state, &st.state_jti, now, &mut st.up_head)
                .map_err(|_| "challenge state token")?;
        }
    }
    if let Some(info) = &route.info_token {
        let key = admitted.key.map(|k| k.prepared());
        info.render_with(
            key,
            st.jwt_extra.as_ref(),
            keyed,
            &st.info_jti,
            now,
            &mut st.up_head,
        )
        .map_err(|_| "info token")?;
    }
    st.up_head.extend_from_slice(&target.host_line);
    st.up_head.extend_from_slice(b"otoroshi-request-id: ");
    st.up_head.extend_from_slice(&st.rec.request_id);
    st.up_head.extend_from_slice(b"\r\n");
    st.up_head.extend_from_slice(&st.xff_line);
    st.up_head.extend_from_slice(b"x-forwarded-proto: ");
    st.up_head.extend_from_slice(st.proto);
    st.up_head.extend_from_slice(b"\r\n");
    if let Some(host) = head.host {
        st.up_head.extend_from_slice(b"x-forwarded-host: ");
        st.up_head.extend_from_slice(host.get(data));
        st.up_head.extend_from_slice(b"\r\n");
    }
    if matches!(head.body, BodyFraming::Chunked) {
        st.up_head
            .extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    st.up_head.extend_from_slice(b"\r\n");
    if let Some(n) = coalesced {
        if let Some(body) = data.get(head.head_len..head.head_len + n) {
            st.up_head.extend_from_slice(body);
        }
    }
    Ok(())
}

/// Streams the rest of the request body to the upstream (`100 Continue` was answered, when
/// asked for, before the upstream connection was taken). On failure, answers the client and
/// returns `Err(keep_alive)` (always false: the body's end is unknown).
async fn send_request_body<C: Stream>(
    client: &mut C,
    st: &mut ClientState,
    up: &mut UpstreamConn<UpStream>,
    framing: Framing,
    limits: &RuntimeLimits,
    clock: BodyClock,
) -> Result<(), bool> {
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
    match pump(
        client,
        &mut st.rbuf,
        &mut up.stream,
        framing,
        &mut st.scratch,
        opts,
    )
    .await
    {
        Ok(n) => {
            st.rec.bytes_in += n;
            Ok(())
        }
        Err(e) => {
            let (status, message) = match e {
                PumpError::TooLarge => (413, "Request body too large"),
                PumpError::Framing(_) => (400, "Bad request"),
                PumpError::SourceTimeout => (408, "Request timeout"),
                PumpError::TooSlow => (408, "Request body too slow"),
                PumpError::Source(_) => return Err(false),
                PumpError::Dest(_) | PumpError::DestTooSlow => (502, "Upstream connection failed"),
            };
            st.wbuf.clear();
            write_error(&mut st.wbuf, status, message, true, &[]);
            st.rec.answered(status, st.wbuf.len());
            let _ = write_all_timeout(client, &mut st.wbuf, limits.body_timeout).await;
            Err(false)
        }
    }
}

/// Answers a request whose body did not come (408, too slow or idle) and closes: the rest of
/// the body may still be on its way. Returns false (the connection ends).
async fn body_wait_failed<C: Stream>(
    client: &mut C,
    st: &mut ClientState,
    limits: &RuntimeLimits,
    e: BodyWaitError,
) -> bool {
    let message = match e {
        BodyWaitError::TooSlow => "Request body too slow",
        BodyWaitError::Idle => "Request timeout",
        BodyWaitError::Gone => return false,
    };
    st.wbuf.clear();
    write_error(&mut st.wbuf, 408, message, true, &[]);
    st.rec.answered(408, st.wbuf.len());
    let _ = write_all_timeout(client, &mut st.wbuf, limits.body_timeout).await;
    false
}

/// Reads the upstream's response head (skipping interim 1xx answers) into `up.buf`.
async fn read_response_head(
    up: &mut UpstreamConn<UpStream>,
    st: &mut ClientState,
    head: &RequestHead,
    limits: &RuntimeLimits,
) -> Result<ResponseHead, UpstreamError> {
    let cap = limits.head.max_head_bytes + 1;
    let deadline = Instant::now() + limits.upstream_timeout;
    loop {
        if !up.buf.is_empty() {
            match parse_response_head(
                up.buf.data(),
                &limits.head,
                head.method,
                &mut st.resp_headers,
            ) {
                Ok(Some(resp)) if resp.status == 101 => {
                    // Torii never asks for an upgrade (Upgrade is hop-by-hop), so a 101 is a
                    // protocol error: nothing is tunnelled (hardening.md "Upgrade").
                    return Err(UpstreamError::BadResponse("unexpected 101"));
                }
                Ok(Some(resp)) if resp.status < 200 => {
                    up.buf.consume(resp.head_len);
                    continue;
                }
                Ok(Some(resp)) => return Ok(resp),
                Ok(None) if up.buf.len() >= cap => {
                    return Err(UpstreamError::BadResponse("head too large"))
                }
                Ok(None) => {}
                Err(_) => return Err(UpstreamError::BadResponse("invalid head")),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(UpstreamError::ResponseTimeout);
        }
        let had_bytes = !up.buf.is_empty();
        match up.buf.fill_timeout(&mut up.stream, cap, left).await {
            Ok(0) if had_bytes => return Err(UpstreamError::BadResponse("closed mid-head")),
            Ok(0) => {
                return Err(UpstreamError::BeforeResponse(
                    io::ErrorKind::UnexpectedEof.into(),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(UpstreamError::ResponseTimeout)
            }
            Err(e) if had_bytes => {
                let _ = e;
                return Err(UpstreamError::BadResponse("reset mid-head"));
            }
            Err(e) => return Err(UpstreamError::BeforeResponse(e)),
        }
    }
}

/// Answers the client for an upstream failure that happened before any response byte was
/// sent to it. The connection stays open only when no request body is left unread.
async fn fail<C: Stream>(
    worker: &Worker,
    client: &mut C,
    st: &mut ClientState,
    head: &RequestHead,
    limits: &RuntimeLimits,
    e: &UpstreamError,
    body_unread: bool,
) -> bool {
    match e {
        UpstreamError::BeforeResponse(io) => {
            tracing::debug!(error = %io, "upstream failed before responding")
        }
        UpstreamError::BadResponse(why) => {
            tracing::debug!(why, "upstream sent an invalid response")
        }
        UpstreamError::Internal(why) => {
            tracing::error!(why, "could not build the upstream request")
        }
        other => tracing::debug!(error = ?other, "upstream failure"),
    }
    let close = body_unread || !head.keep_alive || worker.is_draining();
    st.wbuf.clear();
    write_error(&mut st.wbuf, e.status(), e.message(), close, &[]);
    st.rec.answered(e.status(), st.wbuf.len());
    if write_all_timeout(client, &mut st.wbuf, limits.body_timeout)
        .await
        .is_err()
    {
        return false;
    }
    !close
}
