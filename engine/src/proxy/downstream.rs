//! The client side of a request as the phases see it: the [`Downstream`] interface, one
//! implementation per wire protocol (HTTP/1.1: `ClientConn`, in `downstream_h1.rs`).
//!
//! Owns what the phases may ask of the client side and nothing of how it is done: the facts of
//! the client's connection (address, scheme, header policy), the keep-alive rule of a response
//! (`must_close`), the request body (waiting for its start, the part already buffered, the
//! rest streamed to the upstream or read whole for a local endpoint), the complete responses
//! Torii makes itself ([`LocalAnswer`]: errors, the token service, introspection, JWKS), the
//! upstream's response relayed (head filtered, body streamed) and the WebSocket switch.
//! Framing, what was consumed and the `Connection` rules stay inside the implementation: no
//! phase reads or writes a connection buffer.

use crate::proxy::client::ClientFacts;

use crate::http1::Method;
use crate::metrics::RequestRecord;
use crate::proxy::body::{Framing, PumpError, PumpOptions};
use crate::proxy::body_rate::{BodyClock, BodyStart, BodyWaitError};
use crate::proxy::context::RequestCtx;
use crate::proxy::h2_pipe::H2Body;
use crate::proxy::upstream_response::{H1Response, UpstreamResponse};

/// The body of a response Torii makes itself.
#[derive(Debug, Clone, Copy)]
pub enum LocalBody<'a> {
    /// The Otoroshi error shape around this fixed, header-safe message
    /// (`crate::proxy::respond::write_error`).
    Error(&'a str),
    /// A JSON document (the token service's answers).
    Json(&'a [u8]),
    /// An error answered to a gRPC request as a gRPC Trailers-Only response: HTTP 200,
    /// `content-type: application/grpc`, `grpc-status` from the answer's status
    /// (`crate::proxy::grpc::grpc_status_for`) and this message as `grpc-message`, no body.
    /// The answer's status is what is recorded (metrics, access log).
    Grpc(&'a str),
    /// No content (a redirect, a CORS preflight): `Content-Length: 0`, none on a `204`.
    Empty,
}

/// A complete response Torii makes itself.
#[derive(Debug, Clone, Copy)]
pub struct LocalAnswer<'a> {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: LocalBody<'a>,
    /// Headers beyond the body's own (`WWW-Authenticate`, `Retry-After`, `Cache-Control`).
    pub headers: &'a [(&'a str, &'a str)],
    /// More header lines, pre-rendered (`name: value\r\n` each): a route rule's `Allow`,
    /// `Location` or CORS lines.
    pub lines: &'a [u8],
}

/// How reading a small request body whole ended ([`Downstream::read_small_body`]).
#[derive(Debug)]
pub enum SmallBody {
    /// The payload is in the output buffer; `raw` bytes of the connection were its framing
    /// and payload (consumed by [`Downstream::consume_body`] once the answer is decided).
    Complete {
        /// Bytes the body took on the wire.
        raw: usize,
    },
    /// Over the cap.
    TooLarge,
    /// Bad framing.
    Malformed,
    /// The body did not come (too slow, idle) or the client left.
    Failed(BodyWaitError),
}

/// How relaying the upstream's response ended ([`Downstream::relay_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// The whole response went to the client; the connection closes after it when `close`.
    Complete {
        /// The connection ends after this response.
        close: bool,
    },
    /// The client or the upstream failed mid-way: the connection closes, the upstream
    /// connection is not reusable.
    Failed,
}

/// The client side of one request, whatever its wire protocol. Tasks stay on their worker
/// thread, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Downstream {
    /// Who the client is and what its listener allows (rendered once per connection).
    fn client(&self) -> &ClientFacts;

    /// The keep-alive rule: true when the connection ends after the response to the request
    /// in `ctx` (`draining`: the worker is draining).
    fn must_close(&self, ctx: &RequestCtx<'_>, draining: bool) -> bool;

    /// Waits, before any upstream connection is taken, until the request's body is buffered
    /// whole (small bodies) or its first byte arrived, answering `Expect: 100-continue`.
    /// Returns the body's rate clock (counting from the end of the head) with the outcome.
    async fn await_body(
        &mut self,
        ctx: &mut RequestCtx<'_>,
    ) -> (BodyClock, Result<BodyStart, BodyWaitError>);

    /// The first `n` bytes of the body, buffered ([`BodyStart::Buffered`]).
    fn buffered_body(&self, n: usize) -> &[u8];

    /// Marks `n` buffered body bytes as read.
    fn consume_body(&mut self, n: usize);

    /// Streams the rest of the request body, framed as `framing` says, to `dst` (an
    /// HTTP/1.1 upstream connection, or an HTTP/2 upstream stream's DATA).
    async fn send_body<W: monoio::io::AsyncWriteRent>(
        &mut self,
        dst: &mut W,
        framing: Framing,
        scratch: &mut Vec<u8>,
        opts: PumpOptions,
    ) -> Result<u64, PumpError>;

    /// Hands the rest of the request body over as an HTTP/2 stream, for an HTTP/2 upstream to
    /// pipe frame by frame alongside the response (a bidirectional stream, its trailers
    /// passed on). `None` (the default, HTTP/1.1 clients): the body goes through
    /// [`Downstream::send_body`] before the response is awaited, its trailers dropped.
    fn take_h2_body(&mut self) -> Option<H2Body> {
        None
    }

    /// Reads the request body whole into `out` (a local endpoint's), at most `max` payload
    /// bytes, under `clock`. Nothing is consumed: see [`SmallBody::Complete`].
    async fn read_small_body(
        &mut self,
        ctx: &RequestCtx<'_>,
        clock: &BodyClock,
        out: &mut Vec<u8>,
        max: usize,
    ) -> SmallBody;

    /// Sends `answer` whole, closing the connection after it when `close`, within `timeout`,
    /// and notes its status and size in `rec`. `head_only`: the request was `HEAD`, so the
    /// answer carries no content (RFC 9110 §9.3.2). False when it could not be sent.
    async fn send_local(
        &mut self,
        rec: &mut RequestRecord,
        answer: &LocalAnswer<'_>,
        close: bool,
        head_only: bool,
        timeout: std::time::Duration,
    ) -> bool;

    /// Relays the upstream's response `resp` (its fields in `ctx.bufs.resp_headers`) and its
    /// body to the client, minus the header fields `hidden` names and plus the request's quota
    /// headers. `draining`: the worker is draining.
    async fn relay_response(
        &mut self,
        ctx: &mut RequestCtx<'_>,
        resp: &mut UpstreamResponse,
        hidden: impl Fn(&[u8]) -> bool,
        draining: bool,
    ) -> Relayed;

    /// Sends a verified `101` on (head filtered like [`Downstream::relay_response`]'s, plus
    /// `Upgrade: websocket`): the connection becomes a tunnel. False when it could not be sent.
    async fn send_switch(
        &mut self,
        ctx: &mut RequestCtx<'_>,
        resp: &mut H1Response,
        hidden: impl Fn(&[u8]) -> bool,
    ) -> bool;
}

/// True when the request in `ctx` was `HEAD`: its answers carry no content.
pub fn is_head(ctx: &RequestCtx<'_>) -> bool {
    ctx.head.method == Method::Head
}
