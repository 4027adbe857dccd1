//! An HTTP/2 upstream's response relayed to an HTTP/2 client's stream: the head (its fields
//! minus the hidden ones), then both bodies at once — the response's DATA down and, when the
//! request body is still streaming (a bidirectional call), the request's DATA up — and the
//! response's trailers as the stream's trailing HEADERS.
//!
//! Owns the relay's loop and its deadline: one idle deadline (`timeouts.idle` of the route)
//! re-armed whenever either direction moves a byte, so a long-lived stream is cut only when
//! both sides are silent that long. Flow control is the pipes' (`proxy::h2_pipe`). For a gRPC
//! call it also owns the status the client reads (`RequestRecord::grpc_status`, from the
//! trailers or the Trailers-Only head passed on) and the end of a call cut short after its
//! head: trailers with Torii's status ([`end_grpc_call`]: `UNAVAILABLE` when the upstream's
//! stream failed, `DEADLINE_EXCEEDED` when both sides were idle too long or the call's
//! `grpc-timeout` passed) rather than a reset a client reads as `INTERNAL`. Otherwise a
//! failure is a reset: `H2Downstream::finish` resets a stream whose response did not end.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::Poll;

use bytes::Bytes;
use h2::Reason;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response};

use crate::h2::send::ResponseSide;
use crate::http1::status_has_no_content;
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::Relayed;
use crate::proxy::grpc::{grpc_status_for, is_grpc, push_grpc_message, status_read};
use crate::proxy::h2_pipe::{Pipe, PipeError};
use crate::proxy::h2_response::H2Response;

/// What one turn of the relay saw.
enum Step {
    Progress,
    Done,
    RequestFailed(PipeError),
    ResponseFailed(PipeError),
    ClientGone,
}

/// Relays `resp` to the stream whose sending half is `side`. See the module header.
pub async fn relay_h2(
    side: &RefCell<ResponseSide>,
    ctx: &mut RequestCtx<'_>,
    resp: &mut H2Response,
    hidden: &impl Fn(&[u8]) -> bool,
) -> Relayed {
    let mut head = Response::new(());
    *head.status_mut() = resp.head.status;
    fill_fields(
        head.headers_mut(),
        &resp.head.headers,
        resp.status(),
        hidden,
    );
    append_quota_lines(head.headers_mut(), &ctx.bufs.quota_headers);
    ctx.rec.answered(resp.status(), 0);
    let grpc =
        crate::http1::find_header(ctx.data(), ctx.fields(), b"content-type").is_some_and(is_grpc);
    let end = resp.body.is_end_stream();
    if grpc && end {
        let status = resp.head.headers.get("grpc-status").map(|v| v.as_bytes());
        ctx.rec.grpc_status = Some(status_read(status, resp.status()));
    }
    if side.borrow_mut().send_head(head, end).is_err() {
        resp.up_send.send_reset(Reason::CANCEL);
        return Relayed::Failed;
    }
    if end {
        ctx.rec.bytes_in += finish_request(resp);
        return Relayed::Complete { close: false };
    }
    let idle = ctx.upstream_idle_timeout();
    let mut down = Pipe::new(Bytes::new(), u64::MAX);
    let outcome = loop {
        let step = poll_fn(|cx| {
            if let Some((src, pipe)) = resp.request.as_mut() {
                if let Poll::Ready(Err(e)) = pipe.poll(cx, src, &mut resp.up_send) {
                    return Poll::Ready(Step::RequestFailed(e));
                }
            }
            let mut s = side.borrow_mut();
            let Some(dst) = s.sender() else {
                return Poll::Ready(Step::ClientGone);
            };
            match down.poll(cx, &mut resp.body, dst) {
                Poll::Ready(Ok(())) => {
                    s.set_ended();
                    return Poll::Ready(Step::Done);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Step::ResponseFailed(e)),
                Poll::Pending => {}
            }
            let up_moved = resp
                .request
                .as_mut()
                .is_some_and(|(_, p)| p.take_progress());
            if down.take_progress() || up_moved {
                Poll::Ready(Step::Progress)
            } else {
                Poll::Pending
            }
        });
        match monoio::time::timeout(idle, step).await {
            Ok(Step::Progress) => {}
            Ok(Step::Done) => break Relayed::Complete { close: false },
            // The upstream no longer takes the body (it answered, or reset its side with
            // NO_ERROR): the response goes on.
            Ok(Step::RequestFailed(PipeError::Dest(_) | PipeError::DestClosed)) => {
                if let Some((_, p)) = resp.request.take() {
                    ctx.rec.bytes_in += p.sent;
                }
            }
            Ok(Step::RequestFailed(e)) => {
                tracing::debug!(error = ?e, "request body failed mid-stream; streams reset");
                break Relayed::Failed;
            }
            Ok(Step::ResponseFailed(e)) => {
                tracing::debug!(error = ?e, "response body failed mid-stream; streams reset");
                if grpc && matches!(e, PipeError::Source(_)) {
                    ctx.rec.grpc_status = end_grpc_call(side, 502, "upstream stream failed");
                }
                break Relayed::Failed;
            }
            Ok(Step::ClientGone) => break Relayed::Failed,
            Err(_) => {
                tracing::debug!("HTTP/2 exchange idle past timeouts.idle; streams reset");
                if grpc {
                    ctx.rec.grpc_status = end_grpc_call(side, 504, "upstream idle timeout");
                }
                break Relayed::Failed;
            }
        }
    };
    if grpc && outcome != Relayed::Failed {
        let status = down.grpc_status.as_ref().map(|v| v.as_bytes());
        ctx.rec.grpc_status = Some(status_read(status, resp.status()));
    }
    ctx.rec.bytes_out += down.sent;
    if outcome == Relayed::Failed {
        resp.up_send.send_reset(Reason::CANCEL);
    } else {
        ctx.rec.bytes_in += finish_request(resp);
    }
    outcome
}

/// Ends a gRPC call on `side` with Torii's HTTP `status` (mapped as `proxy::grpc` says) and
/// `message`: after a head already sent, trailers `grpc-status` and `grpc-message` (ending the
/// stream); before it, a Trailers-Only head. The gRPC code sent; `None` when the response had
/// already ended or the stream cannot send any more.
pub fn end_grpc_call(side: &RefCell<ResponseSide>, status: u16, message: &str) -> Option<u8> {
    let code = grpc_status_for(status);
    let mut s = side.borrow_mut();
    if s.is_ended() {
        return None;
    }
    if !s.head_sent() {
        return s
            .send_head(grpc_head(status, message, &[]), true)
            .ok()
            .map(|()| code);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    let mut encoded = Vec::with_capacity(message.len());
    push_grpc_message(&mut encoded, message);
    if let Ok(v) = HeaderValue::from_bytes(&encoded) {
        trailers.insert("grpc-message", v);
    }
    let sent = s.sender()?.send_trailers(trailers).ok();
    s.set_ended();
    sent.map(|()| code)
}

/// The Trailers-Only gRPC answer for Torii's `status` and `message` (see `proxy::grpc`): one
/// header block that ends the stream.
pub fn grpc_head(status: u16, message: &str, extra: &[(&str, &str)]) -> Response<()> {
    let mut head = Response::new(());
    let h = head.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(
        "grpc-status",
        HeaderValue::from(u16::from(grpc_status_for(status))),
    );
    let mut encoded = Vec::with_capacity(message.len());
    push_grpc_message(&mut encoded, message);
    if let Ok(v) = HeaderValue::from_bytes(&encoded) {
        h.insert("grpc-message", v);
    }
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    }
    head
}

/// The response ended: a request body still streaming is not wanted any more (the upstream
/// stream is cancelled) and its bytes are counted.
fn finish_request(resp: &mut H2Response) -> u64 {
    match resp.request.take() {
        Some((_, p)) if !p.is_done() => {
            resp.up_send.send_reset(Reason::CANCEL);
            p.sent
        }
        Some((_, p)) => p.sent,
        None => 0,
    }
}

/// The upstream's fields that go on to the client: not `hidden` (the challenge answer), no
/// `content-length` on a status without content. (`h2` already refused connection-specific
/// fields from the upstream as malformed.)
fn fill_fields(
    out: &mut HeaderMap,
    from: &HeaderMap,
    status: u16,
    hidden: &impl Fn(&[u8]) -> bool,
) {
    let no_content = status_has_no_content(status);
    out.reserve(from.len());
    for (name, value) in from {
        if hidden(name.as_str().as_bytes()) || (no_content && name == http::header::CONTENT_LENGTH)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
}

/// Appends pre-rendered `name: value\r\n` lines (the quota headers) as fields.
pub fn append_quota_lines(out: &mut HeaderMap, lines: &[u8]) {
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            out.append(n, v);
        }
    }
}
