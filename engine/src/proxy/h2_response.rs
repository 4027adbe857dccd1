//! An HTTP/2 upstream's answer as the phases and the downstreams see it: [`H2Response`], its
//! head, its body stream, the request's sending half and, for an HTTP/2 client's streamed
//! request, the body still being piped up.
//!
//! Owns the answer's small API (status, a header, the request bytes sent, cancelling) and what
//! it holds for as long as it lives: the endpoint's in-flight count and the stream's slot on
//! its connection. Making one is `proxy::upstream_h2`'s job (one try); relaying it is each
//! downstream's. It imports neither, so `upstream_response` can name it.

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::response::Parts;

use crate::proxy::h2_pipe::Pipe;
use crate::upstream::h2_client::StreamSlot;
use crate::upstream::select::EndpointInUse;

/// An HTTP/2 upstream's answer: its head, its body stream and, for an HTTP/2 client's
/// streamed request, the request body still going up.
#[derive(Debug)]
pub struct H2Response {
    /// Status and fields.
    pub head: Parts,
    /// The response body and trailers.
    pub body: RecvStream,
    /// The request's sending half (its body, or a reset).
    pub up_send: SendStream<Bytes>,
    /// The client's request body still being piped up (an HTTP/2 client's).
    pub request: Option<(RecvStream, Pipe)>,
    endpoint: Option<EndpointInUse>,
    /// The stream counted on its connection (`H2Clients`) while the answer lives.
    _slot: StreamSlot,
}

impl H2Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status.as_u16()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let name = std::str::from_utf8(name).ok()?;
        self.head.headers.get(name).map(|v| v.as_bytes())
    }

    /// Request body bytes piped up so far.
    pub fn request_sent(&self) -> u64 {
        self.request.as_ref().map_or(0, |(_, p)| p.sent)
    }

    /// The answer will not be relayed: the stream is reset (`CANCEL`).
    pub fn cancel(mut self) {
        self.up_send.send_reset(Reason::CANCEL);
        drop(self.endpoint.take());
    }
}

impl H2Response {
    /// The answer to a try: `head` and `body` from the upstream, the request's `up_send`, the
    /// client's body still piping up (`request`), counted on its connection by `slot`.
    pub fn new(
        head: Parts,
        body: RecvStream,
        up_send: SendStream<Bytes>,
        request: Option<(RecvStream, Pipe)>,
        slot: StreamSlot,
    ) -> Self {
        Self {
            head,
            body,
            up_send,
            request,
            endpoint: None,
            _slot: slot,
        }
    }
}

impl H2Response {
    /// The same response, counting a request in flight on `endpoint` until it is dropped.
    pub fn on_endpoint(mut self, endpoint: Option<EndpointInUse>) -> Self {
        self.endpoint = endpoint;
        self
    }
}
