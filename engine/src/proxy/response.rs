//! The response leg: the upstream's response head and body sent on to the client.
//!
//! Owns the response-side rules: header lines copied verbatim minus hop-by-hop ones (and, with
//! the exchange protocol, the configured state-response header), framing chosen for the
//! client's HTTP version (chunked re-framed for HTTP/1.1 clients, de-chunked and
//! close-delimited for HTTP/1.0 ones), `Connection: close` when the connection ends, and the
//! decision to return the upstream connection to the pool — only after a complete, cleanly
//! framed response with no extra bytes behind it.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use torii_protocol::ChallengeFailure;

use crate::http1::{
    copy_response_head, eq_ignore_case, find_header, RequestHead, ResponseBody, ResponseHead,
};
use crate::io::{write_all_timeout, Stream};
use crate::proxy::body::{pump, ChunkedMode, Framing, PumpOptions};
use crate::proxy::respond::{write_error, NOT_SECURED};
use crate::proxy::upstream_call::BODY_BUFFER_BYTES;
use crate::server::conn::ClientState;
use crate::server::worker::Worker;
use crate::snapshot::{Route, Snapshot};
use crate::upstream::pool::UpstreamConn;
use crate::upstream::UpStream;

/// Response bodies up to this size that are already buffered go out in the head's write.
const COALESCE_RESPONSE_BYTES: u64 = 16 * 1024;

/// Default name of the answer header, always removed from responses (reference §0.5).
const DEFAULT_STATE_RESP: &[u8] = b"otoroshi-state-resp";

/// Sends the upstream response to the client, after checking the backend's challenge answer
/// when the request carried a challenge. Returns whether the client connection may be kept
/// alive.
#[allow(clippy::too_many_arguments)]
pub async fn send_response<C: Stream>(
    worker: &Rc<Worker>,
    snap: &Rc<Arc<Snapshot>>,
    route: &Route,
    client: &mut C,
    st: &mut ClientState,
    head: &RequestHead,
    mut up: UpstreamConn<UpStream>,
    resp: ResponseHead,
    now: u64,
) -> bool {
    let limits = snap.limits;
    if st.challenge_sent {
        if let Some(ch) = &route.challenge {
            let answer = find_header(up.buf.data(), &st.resp_headers, &ch.response_header);
            if let Err(failure) = ch.check_answer(answer, &st.state, now) {
                return Box::pin(challenge_failed(
                    worker, snap, route, client, st, head, up, resp, failure,
                ))
                .await;
            }
        }
    }
    let answer_header: &[u8] = route
        .challenge
        .as_ref()
        .map_or(DEFAULT_STATE_RESP, |c| &c.response_header);
    let http10_client = head.version_minor == 0;
    let (framing, chunked_mode, close_after) = match resp.body {
        ResponseBody::None => (None, ChunkedMode::Rechunk, false),
        ResponseBody::Length(n) => (Some(Framing::Length(n)), ChunkedMode::Rechunk, false),
        ResponseBody::Chunked if http10_client => {
            (Some(Framing::Chunked), ChunkedMode::Dechunk, true)
        }
        ResponseBody::Chunked => (Some(Framing::Chunked), ChunkedMode::Rechunk, false),
        ResponseBody::UntilClose => (Some(Framing::UntilClose), ChunkedMode::Rechunk, true),
    };
    let close = close_after || !head.keep_alive || worker.is_draining();

    st.wbuf.clear();
    let data = up.buf.data();
    copy_response_head(data, &resp, &st.resp_headers, &mut st.wbuf, |f| {
        let name = f.name.get(data);
        eq_ignore_case(name, answer_header) || eq_ignore_case(name, DEFAULT_STATE_RESP)
    });
    if chunked_mode == ChunkedMode::Rechunk && matches!(resp.body, ResponseBody::Chunked) {
        st.wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        st.wbuf.extend_from_slice(b"connection: close\r\n");
    } else if http10_client {
        st.wbuf.extend_from_slice(b"connection: keep-alive\r\n");
    }
    st.wbuf.extend_from_slice(b"\r\n");
    up.buf.consume(resp.head_len);

    let mut body_done = framing.is_none();
    if let Some(Framing::Length(n)) = framing {
        if n <= COALESCE_RESPONSE_BYTES && up.buf.len() as u64 >= n {
            let n = n as usize;
            st.wbuf.extend_from_slice(&up.buf.data()[..n]);
            up.buf.consume(n);
            body_done = true;
        }
    }
    st.rec.answered(resp.status, st.wbuf.len());
    if write_all_timeout(client, &mut st.wbuf, limits.body_timeout)
        .await
        .is_err()
    {
        return false;
    }
    if !body_done {
        let Some(framing) = framing else { return false };
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
            client,
            framing,
            &mut st.scratch,
            opts,
        ))
        .await
        {
            Ok(n) => st.rec.bytes_out += n,
            Err(e) => {
                // The status line is already out: the only honest signal left is closing. The
                // upstream connection is dropped (closed), never pooled mid-body.
                tracing::debug!(error = %e, "response body failed");
                return false;
            }
        }
    }
    let reusable = resp.keep_alive && !matches!(resp.body, ResponseBody::UntilClose);
    if reusable {
        worker.pool.borrow_mut().checkin(up, Instant::now());
    }
    !close
}

/// The backend failed the challenge: nothing of its response reaches the client, which gets
/// the Otoroshi 502 (decisions.md "failure answer"). The backend body is discarded: the
/// upstream connection goes back to the pool only when the whole body was already buffered,
/// else it is closed. The failure is counted per route and reason, and logged at most once a
/// second per worker.
#[allow(clippy::too_many_arguments)]
async fn challenge_failed<C: Stream>(
    worker: &Rc<Worker>,
    snap: &Snapshot,
    route: &Route,
    client: &mut C,
    st: &mut ClientState,
    head: &RequestHead,
    mut up: UpstreamConn<UpStream>,
    resp: ResponseHead,
    failure: ChallengeFailure,
) -> bool {
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
    let close = !head.keep_alive || worker.is_draining();
    st.wbuf.clear();
    write_error(&mut st.wbuf, 502, NOT_SECURED, close, &[]);
    st.rec.answered(502, st.wbuf.len());
    if write_all_timeout(client, &mut st.wbuf, snap.limits.body_timeout)
        .await
        .is_err()
    {
        return false;
    }
    !close
}
