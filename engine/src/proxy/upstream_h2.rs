//! One try of an upstream exchange over HTTP/2 (targets with `protocol = "h2c"` or `"h2"`):
//! a stream opened on the worker's connection to the endpoint, the request head and body sent,
//! the response head awaited; and [`H2Response`], the answer as the downstreams relay it.
//!
//! Owns the HTTP/2 side of phase 5: the stream (waiting for a slot under the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`), the head (`upstream_head_h2`, from the same rendered
//! head the HTTP/1.1 upstream gets), the body — a small one sent with the head; an HTTP/2
//! client's streamed body piped frame by frame while the response head is awaited and,
//! after it, while the response is relayed (a bidirectional stream: `Downstream::
//! take_h2_body`), its trailers passed on; an HTTP/1.1 client's body sent whole before the head
//! is awaited — and the deadlines: the response head within `head_timeout`, a deadline re-armed
//! whenever the request body moves, so a long client stream is not cut while it sends. It must
//! not decide the endpoint, the retry or the answer: `upstream_call` does.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{Reason, RecvStream, SendStream};

use crate::io::{SendSlice, SliceSink};
use crate::proxy::body::{ChunkedMode, Framing, PumpError, PumpOptions, BODY_BUFFER_BYTES};
use crate::proxy::connect::{connect_h2, ConnectError};
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::Downstream;
use crate::proxy::error::ProxyError;
use crate::proxy::h2_pipe::{Pipe, PipeError};
use crate::proxy::h2_response::H2Response;
use crate::proxy::upstream_head_h2::{te_lists_trailers, to_h2_request};
use crate::snapshot::{Route, RuntimeLimits, Target};
use crate::worker::Worker;

/// Why one HTTP/2 try failed (mapped by `upstream_call` onto its retry reasons).
#[derive(Debug)]
pub enum H2Failure {
    /// No connection.
    Connect(ConnectError),
    /// The stream could not be opened or broke before the response head.
    Reset(ProxyError),
    /// No response head in time.
    Timeout(ProxyError),
    /// Answered as is, never retried (the head could not be carried over, the client's body
    /// failed).
    Final(ProxyError),
    /// An `auto` target's ALPN chose HTTP/1.1: nothing was sent, the caller tries again over
    /// HTTP/1.1.
    Http1,
}

/// What the request sends as its body.
#[derive(Debug, Clone, Copy)]
pub enum BodyPlan {
    /// No body.
    None,
    /// This many bytes, rendered after the head in `bufs.up_head`.
    Buffered,
    /// Streamed from the client, framed so on an HTTP/1.1 client's connection.
    Streamed(Framing),
}

/// One try on endpoint `addr` of `target`: the head already rendered in `ctx.bufs.up_head`
/// (with a buffered body after it).
#[allow(clippy::too_many_arguments)]
pub async fn exchange<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    route: &Route,
    target: &Target,
    addr: SocketAddr,
    connect_timeout: Duration,
    head_timeout: Duration,
    body: BodyPlan,
    limits: &RuntimeLimits,
) -> Result<H2Response, H2Failure> {
    let te =
        crate::http1::find_header(ctx.data(), ctx.fields(), b"te").is_some_and(te_lists_trailers);
    let (request, head_len) = to_h2_request(&ctx.bufs.up_head, target.tls.is_some(), te)
        .map_err(|why| H2Failure::Final(ProxyError::internal(why)))?;
    let max_header_list = limits.head.max_head_bytes;
    let (sender, slot) = connect_h2(
        worker,
        route,
        target,
        addr,
        connect_timeout,
        max_header_list,
    )
    .await
    .map_err(H2Failure::Connect)?
    .ok_or(H2Failure::Http1)?;
    let reset = |e: &h2::Error| {
        worker
            .h2_clients
            .borrow_mut()
            .forget(addr, target.pool_id());
        H2Failure::Reset(ProxyError::before_response(
            &io::Error::other(e.to_string()),
            false,
        ))
    };
    let mut sender = match monoio::time::timeout(head_timeout, sender.ready()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(reset(&e)),
        Err(_) => return Err(H2Failure::Timeout(ProxyError::response_timeout())),
    };
    let no_body = matches!(body, BodyPlan::None);
    let (mut response, mut up_send) = sender
        .send_request(request, no_body)
        .map_err(|e| reset(&e))?;
    let mut request_pipe = None;
    match body {
        BodyPlan::None => {}
        BodyPlan::Buffered => {
            let payload =
                Bytes::copy_from_slice(ctx.bufs.up_head.get(head_len..).unwrap_or_default());
            up_send.send_data(payload, true).map_err(|e| reset(&e))?;
        }
        BodyPlan::Streamed(framing) => match down.take_h2_body() {
            Some(b) => {
                ctx.body_done = true;
                request_pipe = Some((b.recv, Pipe::new(b.buffered, ctx.max_body_bytes())));
            }
            None => {
                let opts = PumpOptions {
                    read_timeout: limits.body_timeout,
                    write_timeout: limits.upstream_timeout,
                    max_bytes: ctx.max_body_bytes(),
                    buffer_bytes: BODY_BUFFER_BYTES,
                    chunked: ChunkedMode::Dechunk,
                    min_rate: None,
                    min_send_rate: None,
                };
                let mut writer = SliceSink(H2Writer { send: &mut up_send });
                let n = down
                    .send_body(&mut writer, framing, &mut ctx.bufs.scratch, opts)
                    .await
                    .map_err(|e| H2Failure::Final(ProxyError::from_request_body(&e).closing()))?;
                ctx.rec.bytes_in += n;
                ctx.body_done = true;
                up_send
                    .send_data(Bytes::new(), true)
                    .map_err(|e| reset(&e))?;
            }
        },
    }
    let head = await_head(&mut response, &mut up_send, &mut request_pipe, head_timeout).await?;
    let (head, body) = head.into_parts();
    Ok(H2Response::new(head, body, up_send, request_pipe, slot))
}

/// What one wait for the response head saw.
enum Step {
    Head(Result<http::Response<RecvStream>, h2::Error>),
    Progress,
    BodyFailed(PipeError),
}

/// Waits for the response head while the request body (if still streaming) is piped up; the
/// deadline `timeout` is re-armed whenever the body moves.
async fn await_head(
    response: &mut ResponseFuture,
    up_send: &mut SendStream<Bytes>,
    request: &mut Option<(RecvStream, Pipe)>,
    timeout: Duration,
) -> Result<http::Response<RecvStream>, H2Failure> {
    loop {
        let step = poll_fn(|cx| {
            if let Some((src, pipe)) = request.as_mut() {
                if let Poll::Ready(Err(e)) = pipe.poll(cx, src, up_send) {
                    return Poll::Ready(Step::BodyFailed(e));
                }
            }
            if let Poll::Ready(r) = Pin::new(&mut *response).poll(cx) {
                return Poll::Ready(Step::Head(r));
            }
            if request.as_mut().is_some_and(|(_, p)| p.take_progress()) {
                Poll::Ready(Step::Progress)
            } else {
                Poll::Pending
            }
        });
        match monoio::time::timeout(timeout, step).await {
            Err(_) => return Err(H2Failure::Timeout(ProxyError::response_timeout())),
            Ok(Step::Progress) => {}
            Ok(Step::Head(Ok(head))) => return Ok(head),
            Ok(Step::Head(Err(e))) => {
                let e = io::Error::other(e.to_string());
                return Err(H2Failure::Reset(ProxyError::before_response(&e, false)));
            }
            // The upstream stopped taking the body: its answer (or reset) says why.
            Ok(Step::BodyFailed(PipeError::Dest(_) | PipeError::DestClosed)) => *request = None,
            Ok(Step::BodyFailed(PipeError::TooLarge)) => {
                up_send.send_reset(Reason::CANCEL);
                return Err(H2Failure::Final(
                    ProxyError::from_request_body(&PumpError::TooLarge).closing(),
                ));
            }
            Ok(Step::BodyFailed(PipeError::Source(e))) => {
                up_send.send_reset(Reason::CANCEL);
                let e = PumpError::Source(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    e.to_string(),
                ));
                return Err(H2Failure::Final(
                    ProxyError::from_request_body(&e).closing(),
                ));
            }
        }
    }
}

/// An HTTP/1.1 client's request body written into the upstream stream as DATA frames, under
/// the upstream's flow control (each write waits for window).
struct H2Writer<'a> {
    send: &'a mut SendStream<Bytes>,
}

impl SendSlice for H2Writer<'_> {
    async fn send_slice(&mut self, payload: &[u8]) -> io::Result<usize> {
        loop {
            let n = self.send.capacity().min(payload.len());
            if n > 0 {
                self.send
                    .send_data(Bytes::copy_from_slice(&payload[..n]), false)
                    .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))?;
                return Ok(n);
            }
            self.send.reserve_capacity(payload.len());
            match poll_fn(|cx| self.send.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))
                }
                None => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
    }
}
