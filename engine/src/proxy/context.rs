//! The room of one request: everything the phases learn and decide about it, from its parsed
//! head to the record written when it ends.
//!
//! Owns [`RequestCtx`] (per request: the head it owns, the snapshot it runs on, the route, the
//! admitted key or verified token, the challenge state and token ids, a WebSocket upgrade asked
//! for, the record), [`RequestBuffers`] (the reusable buffers a request works in: the upstream
//! head, the canonical path) and [`Outcome`] (how the client connection goes on once
//! the request ended, [`Upgraded`] for a WebSocket tunnel). Nothing here is
//! connection-level: a connection's stream and buffers are `ClientConn`'s. An HTTP/1.1
//! connection runs one context at a time and lends it the same buffers each time (no allocation
//! per request); a protocol with several requests in flight per connection gives each its own.

use std::time::Instant;

use torii_protocol::challenge::{JTI_LEN, STATE_LEN};
use torii_protocol::info_token::ExtraClaims;
use torii_protocol::websocket::KEY_LEN;

use crate::auth::check::Admitted;
use crate::http1::{BodyFraming, HeaderField, RequestHead};
use crate::metrics::RequestRecord;
use crate::proxy::head::OwnedHead;
use crate::snapshot::{Route, Snapshot};
use crate::tls::stream::UpStream;
use crate::upstream::pool::UpstreamConn;
use crate::worker::tunnels::TunnelSlot;

/// How the client connection goes on after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Ready for the next request.
    KeepAlive,
    /// Close it (the client asked, the body's end is unknown, draining, or an error).
    Close,
    /// The backend switched to WebSocket (a verified `101`, already sent on to the client):
    /// the connection loop turns the connection into a tunnel to this upstream connection.
    /// The phases never run the tunnel themselves.
    Upgrade(Box<Upgraded>),
}

/// A request that asked for a WebSocket upgrade on a route that carries them
/// (`RequestCtx::upgrade`, set by phase 4b).
#[derive(Debug)]
pub struct WebSocketUpgrade {
    /// The client's `Sec-WebSocket-Key` (valid: 16 bytes in base64); the backend's `101` must
    /// carry the accept value it implies.
    pub key: [u8; KEY_LEN],
    /// The worker's tunnel slot this upgrade holds (given back when the request ends without
    /// a tunnel).
    pub slot: TunnelSlot,
}

/// What a verified `101` leaves for the tunnel: the upstream connection (never pooled again;
/// its buffer may already hold the backend's first frames) and the tunnel slot.
#[derive(Debug)]
pub struct Upgraded {
    /// The upstream connection, its `101` head consumed.
    pub up: UpstreamConn<UpStream>,
    /// The worker's tunnel slot.
    pub slot: TunnelSlot,
}

impl Outcome {
    /// `KeepAlive` unless `close`.
    pub fn keep_alive_unless(close: bool) -> Self {
        if close {
            Outcome::Close
        } else {
            Outcome::KeepAlive
        }
    }
}

/// Reusable buffers of a request. Cleared, never shrunk, between requests.
#[derive(Debug, Default)]
pub struct RequestBuffers {
    /// The upstream request head being sent (kept until the response head arrives, so that a
    /// request can be retried on a fresh connection).
    pub up_head: Vec<u8>,
    /// Header spans of the upstream response head.
    pub resp_headers: Vec<HeaderField>,
    /// Scratch space: chunked re-encoding, query rewriting, token request bodies.
    pub scratch: Vec<u8>,
    /// The canonical path, when it differs from the client's bytes.
    pub path: Vec<u8>,
    /// The path the route's rules send upstream (`strip_prefix`, `rewrite`, `target_root`),
    /// when they change it.
    pub rule_path: Vec<u8>,
    /// The head's method, host and path as JSON fields for the access-log line.
    pub log_head: Vec<u8>,
    /// Header lines added to the upstream's response: the remaining calls (`quota_headers`),
    /// the route's `response_headers` and CORS lines; empty otherwise.
    pub quota_headers: Vec<u8>,
    /// Header lines of an answer Torii makes itself for a route rule (`Allow`, `Location`,
    /// CORS preflight lines); empty otherwise.
    pub answer_lines: Vec<u8>,
    /// The `sub` of the token `[routes.jwt]` verified for this request (`${token.sub}`);
    /// cleared for every request, so one request's subject never reaches the next.
    pub token_sub: Vec<u8>,
}

impl RequestBuffers {
    /// Buffers sized for a typical request.
    pub fn new() -> Self {
        Self {
            up_head: Vec::with_capacity(1024),
            resp_headers: Vec::with_capacity(32),
            ..Self::default()
        }
    }
}

/// The random values a route's security features send with one request.
#[derive(Debug, Clone, Copy)]
pub struct SecurityDraw {
    /// The challenge state (V1 value, or the `state` claim of the V2 token).
    pub state: [u8; STATE_LEN],
    /// The `jti` of the V2 state token.
    pub state_jti: [u8; JTI_LEN],
    /// The `jti` of the info token.
    pub info_jti: [u8; JTI_LEN],
    /// A challenge was sent: the response must answer it.
    pub challenge_sent: bool,
}

impl Default for SecurityDraw {
    fn default() -> Self {
        Self {
            state: [0; STATE_LEN],
            state_jti: [0; JTI_LEN],
            info_jti: [0; JTI_LEN],
            challenge_sent: false,
        }
    }
}

/// Everything about one request. `'r` is the request's lifetime: the snapshot it loaded when
/// its head arrived (kept for the whole request, so a reload never changes a request in
/// flight) and the buffers it was lent.
#[derive(Debug)]
pub struct RequestCtx<'r> {
    /// The config the request runs on.
    pub snap: &'r Snapshot,
    /// The parsed head; its spans index [`RequestCtx::data`].
    pub head: RequestHead,
    /// The head's bytes and header fields, owned by the request (no phase reads a connection
    /// buffer for them).
    pub req: &'r OwnedHead,
    /// The request's buffers.
    pub bufs: &'r mut RequestBuffers,
    /// When the head was complete: the request's duration and its body's minimum rate count
    /// from here.
    pub head_done: Instant,
    /// `bufs.path` holds the canonical path (the client's bytes were not canonical).
    pub path_rewritten: bool,
    /// The matched route.
    pub route: Option<&'r Route>,
    /// The length of the path prefix the route matched (of the canonical path).
    pub matched_prefix_len: usize,
    /// `bufs.rule_path` holds the path the route's rules send upstream.
    pub rule_path_set: bool,
    /// The API key that authenticated the request, and the credentials to wipe.
    pub admitted: Admitted<'r>,
    /// Claims of a verified external JWT to carry in the info token.
    pub jwt_extra: Option<ExtraClaims>,
    /// What the route's security features send.
    pub security: SecurityDraw,
    /// A WebSocket upgrade the backend is asked for (phase 4b).
    pub upgrade: Option<WebSocketUpgrade>,
    /// `100 Continue` was sent.
    pub continue_sent: bool,
    /// The whole request body was read (buffered or streamed upstream).
    pub body_done: bool,
    /// What the request did, for metrics and the access log.
    pub rec: RequestRecord,
    /// An access-log line is written when the request ends.
    pub logged: bool,
}

impl<'r> RequestCtx<'r> {
    /// A context for `head` (whose spans index `req`), complete at `head_done`, on `snap`,
    /// working in `bufs`.
    pub fn new(
        snap: &'r Snapshot,
        head: RequestHead,
        req: &'r OwnedHead,
        bufs: &'r mut RequestBuffers,
        head_done: Instant,
    ) -> Self {
        let mut rec = RequestRecord::default();
        rec.reset(head.head_len);
        bufs.quota_headers.clear();
        bufs.token_sub.clear();
        bufs.answer_lines.clear();
        Self {
            snap,
            body_done: !has_body(&head),
            head,
            req,
            bufs,
            head_done,
            path_rewritten: false,
            route: None,
            matched_prefix_len: 0,
            rule_path_set: false,
            admitted: Admitted::default(),
            jwt_extra: None,
            security: SecurityDraw::default(),
            upgrade: None,
            continue_sent: false,
            rec,
            logged: false,
        }
    }

    /// The head's bytes, which the spans of [`RequestCtx::head`] and of the header fields
    /// index. Borrowed from the request, not from the context: a phase may hold them while it
    /// changes the context.
    pub fn data(&self) -> &'r [u8] {
        self.req.bytes()
    }

    /// The head's header fields, as spans of [`RequestCtx::data`].
    pub fn fields(&self) -> &'r [HeaderField] {
        self.req.fields()
    }

    /// The canonical path: what routing matched and, unless the route forwards raw paths,
    /// what the backend receives.
    pub fn canonical_path(&self) -> &[u8] {
        if self.path_rewritten {
            &self.bufs.path
        } else {
            self.head.path.get(self.data())
        }
    }

    /// The longest silence of the upstream while its response body streams: the route's
    /// `timeouts.idle` (`limits.upstream_timeout` without a route).
    pub fn upstream_idle_timeout(&self) -> std::time::Duration {
        self.route.map_or(self.snap.limits.upstream_timeout, |r| {
            r.upstream_spec.timeouts.idle
        })
    }

    /// The largest request body accepted: the route's `max_body_bytes` rule, else
    /// `[limits] max_body_bytes`.
    pub fn max_body_bytes(&self) -> u64 {
        self.route
            .and_then(|r| r.rules.max_body_bytes)
            .unwrap_or(self.snap.limits.max_body_bytes)
    }

    /// True while part of the request body is still unread on the client connection (an
    /// answer must then close it, or the rest would be read as the next request).
    pub fn body_unread(&self) -> bool {
        !self.body_done
    }
}

/// True when the request has a body (a `Content-Length` above 0, or chunked).
pub fn has_body(head: &RequestHead) -> bool {
    match head.body {
        BodyFraming::None | BodyFraming::Length(0) => false,
        BodyFraming::Length(_) | BodyFraming::Chunked => true,
    }
}
