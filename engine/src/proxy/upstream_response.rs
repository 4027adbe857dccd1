//! The upstream's answer as the phases hand it to the client's downstream: a response head and
//! a body stream, over the upstream connection that carries them.
//!
//! Owns [`UpstreamResponse`], the one interface of an upstream's answer whatever protocol
//! carried it: [`H1Response`] over an HTTP/1.1 connection, or `proxy::upstream_h2`'s
//! [`H2Response`] over an HTTP/2 stream. The phases ask only the status, a header (the
//! challenge answer) and what becomes of the connection; each downstream relays the two kinds
//! (`relay_response` matches on them). [`H1Response`] owns the parsed head (its spans index [`UpstreamResponse::head_bytes`],
//! its fields are the request's `bufs.resp_headers`), the body's framing as the upstream sent
//! it, the body itself (taken whole when small and already buffered, or pumped to any byte sink
//! through `body::pump`, unframed or re-framed as the downstream asks), and what becomes of the
//! connection afterwards: back to the worker's pool only after a complete, cleanly framed
//! response that allowed keep-alive and left no stray bytes (`Pool::checkin` checks those),
//! never after a body delimited by the upstream's close or a 204/304 whose head announced one
//! (`ResponseHead::keep_alive`). Downstreams read the head and the body through it and never
//! touch the connection's buffer.

use std::time::Instant;

use monoio::io::AsyncWriteRent;

use crate::http1::{find_header, HeaderField};
use crate::http1::{ResponseBody, ResponseHead};
use crate::proxy::body::{pump, Framing, PumpError, PumpOptions};
use crate::proxy::h2_response::H2Response;
use crate::tls::stream::UpStream;
use crate::upstream::pool::UpstreamConn;
use crate::upstream::select::EndpointInUse;
use crate::worker::Worker;

/// An upstream's answer whose head was read; its body, if any, is still to come.
#[derive(Debug)]
pub enum UpstreamResponse {
    /// Over an HTTP/1.1 connection.
    Http1(H1Response),
    /// Over an HTTP/2 stream.
    Http2(H2Response),
}

impl UpstreamResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            UpstreamResponse::Http1(r) => r.status(),
            UpstreamResponse::Http2(r) => r.status(),
        }
    }

    /// The first value of header `name` (`fields`: the request's `bufs.resp_headers`, which
    /// index an HTTP/1.1 head).
    pub fn header<'a>(&'a self, fields: &[HeaderField], name: &[u8]) -> Option<&'a [u8]> {
        match self {
            UpstreamResponse::Http1(r) => find_header(r.head_bytes(), fields, name),
            UpstreamResponse::Http2(r) => r.header(name),
        }
    }

    /// After the whole response went to the client: an HTTP/1.1 connection back to the pool
    /// when it may be reused (an HTTP/2 stream has nothing to give back).
    pub fn release(self, worker: &Worker) {
        if let UpstreamResponse::Http1(r) = self {
            r.release(worker);
        }
    }

    /// A response the client will not get (see [`H1Response::discard`]; an HTTP/2 stream is
    /// cancelled).
    pub fn discard(self, worker: &Worker) {
        match self {
            UpstreamResponse::Http1(r) => r.discard(worker),
            UpstreamResponse::Http2(r) => r.cancel(),
        }
    }
}

/// An upstream response whose head was read; its body, if any, is still on the connection.
#[derive(Debug)]
pub struct H1Response {
    conn: UpstreamConn<UpStream>,
    /// The parsed head.
    pub head: ResponseHead,
    /// The head was consumed from the connection's buffer: what is buffered is body.
    body_started: bool,
    /// The endpoint answering, counted in flight until the response is dropped.
    endpoint: Option<EndpointInUse>,
}

impl H1Response {
    /// The response whose head `head` was parsed at the start of `conn`'s buffer.
    pub fn new(conn: UpstreamConn<UpStream>, head: ResponseHead) -> Self {
        Self {
            conn,
            head,
            body_started: false,
            endpoint: None,
        }
    }

    /// The same response, counting a request in flight on `endpoint` until it is dropped.
    pub fn on_endpoint(mut self, endpoint: Option<EndpointInUse>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The bytes the head's spans and fields index (until [`UpstreamResponse::start_body`]).
    pub fn head_bytes(&self) -> &[u8] {
        self.conn.buf.data()
    }

    /// The body's framing as the upstream sent it; `None` without a body.
    pub fn body_framing(&self) -> Option<Framing> {
        match self.head.body {
            ResponseBody::None | ResponseBody::Length(0) => None,
            ResponseBody::Length(n) => Some(Framing::Length(n)),
            ResponseBody::Chunked => Some(Framing::Chunked),
            ResponseBody::UntilClose => Some(Framing::UntilClose),
        }
    }

    /// Consumes the head from the connection's buffer: from here on, the buffer holds body.
    pub fn start_body(&mut self) {
        if !self.body_started {
            self.conn.buf.consume(self.head.head_len);
            self.body_started = true;
        }
    }

    /// When the body is a `Content-Length` body of at most `max` bytes already buffered
    /// whole, appends it to `out` and returns true (the body is then complete). Starts the body.
    pub fn take_small_body(&mut self, max: u64, out: &mut Vec<u8>) -> bool {
        self.start_body();
        let ResponseBody::Length(n) = self.head.body else {
            return false;
        };
        if n > max || (self.conn.buf.len() as u64) < n {
            return false;
        }
        let n = n as usize;
        out.extend_from_slice(self.conn.buf.data().get(..n).unwrap_or_default());
        self.conn.buf.consume(n);
        true
    }

    /// Pumps the body to `dst` (`framing` from [`UpstreamResponse::body_framing`]; a chunked
    /// body re-framed or unframed as `opts.chunked` says), through `scratch`. Starts the body.
    /// Returns the payload bytes sent.
    pub async fn pump_body<W: AsyncWriteRent>(
        &mut self,
        dst: &mut W,
        framing: Framing,
        scratch: &mut Vec<u8>,
        opts: PumpOptions,
    ) -> Result<u64, PumpError> {
        self.start_body();
        // Boxed (one allocation per streamed body): inline, the pump's ~2.7 KB state would
        // be copied with every request's future, small coalesced responses included.
        Box::pin(pump(
            &mut self.conn.stream,
            &mut self.conn.buf,
            dst,
            framing,
            scratch,
            opts,
        ))
        .await
    }

    /// After the whole body went to the client: the connection back to the worker's pool,
    /// unless the response said it ends.
    pub fn release(self, worker: &Worker) {
        let reusable = self.head.keep_alive && !matches!(self.head.body, ResponseBody::UntilClose);
        if reusable {
            worker.pool.borrow_mut().checkin(self.conn, Instant::now());
        }
    }

    /// A response the client will not get: its connection is pooled only when the whole body
    /// is already buffered (then skipped) and the response allowed keep-alive, else dropped
    /// (closed).
    pub fn discard(mut self, worker: &Worker) {
        self.start_body();
        let body_buffered = match self.head.body {
            ResponseBody::None => true,
            ResponseBody::Length(n) => self.conn.buf.len() as u64 >= n,
            _ => false,
        };
        if body_buffered && self.head.keep_alive {
            if let ResponseBody::Length(n) = self.head.body {
                self.conn.buf.consume(n as usize);
            }
            worker.pool.borrow_mut().checkin(self.conn, Instant::now());
        }
    }

    /// The connection, its head consumed, for a WebSocket tunnel (never pooled again; its
    /// buffer may already hold the backend's first frames).
    pub fn into_tunnel(mut self) -> UpstreamConn<UpStream> {
        self.start_body();
        self.conn
    }
}
