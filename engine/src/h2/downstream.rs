//! The HTTP/2 implementation of [`Downstream`]: one stream answers the phases directly over
//! its `RecvStream` and its sending half, with no HTTP/1.1 bytes in between.
//!
//! Owns everything HTTP/2 about the client side of a request: the request body taken from
//! DATA frames (flow-control capacity released as the phases take the bytes, so an upload
//! moves at the pace the upstream takes it; request trailers dropped towards an HTTP/1.1
//! upstream), framed for the HTTP/1.1 upstream by its `content-length` or as chunks, or handed
//! over whole as a stream to an HTTP/2 upstream (`take_h2_body`: piped with its trailers
//! alongside the response, `h2::relay`); `100 Continue` as an
//! interim head; the heads Torii sends, built as `http` fields — the upstream's fields minus
//! the connection-specific ones (RFC 9113 §8.2.2: `connection`, `keep-alive`,
//! `proxy-connection`, `transfer-encoding`, `upgrade`, `te`, `trailer` and the fields a
//! `Connection` header names) and minus `content-length` on a status that has no content;
//! the upstream's body unframed into DATA frames (`h2::send::DataSink`, through the proxy's
//! body pump); and the end of a response: a response cut short, or none at all, resets the
//! stream with `INTERNAL_ERROR` ([`H2Downstream::finish`]), so a client never takes a cut body
//! for a whole one. There is no keep-alive decision: a stream carries one request.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::{Reason, RecvStream};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};

use crate::h2::relay::{append_quota_lines as append_lines, grpc_head, relay_h2};
use crate::h2::send::{DataSink, ResponseSide};
use crate::http1::ResponseHead;
use crate::http1::{push_hex_line, status_has_no_content, BodyFraming, HeaderKind};
use crate::io::write_all_timeout;
use crate::io::SliceSink;
use crate::metrics::RequestRecord;
use crate::proxy::body::{ChunkedMode, Framing, PumpError, PumpOptions, BODY_BUFFER_BYTES};
use crate::proxy::body_rate::{BodyClock, BodyStart, BodyWaitError, BUFFERED_BODY_BYTES};
use crate::proxy::client::ClientFacts;
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::{Downstream, LocalAnswer, LocalBody, Relayed, SmallBody};
use crate::proxy::h2_pipe::H2Body;
use crate::proxy::respond::push_json_escaped;
use crate::proxy::upstream_response::{H1Response, UpstreamResponse};

/// One HTTP/2 stream as the phases' downstream. See the module header.
#[derive(Debug)]
pub struct H2Downstream {
    /// The request body; taken by an HTTP/2 upstream exchange ([`Downstream::take_h2_body`]).
    recv: Option<RecvStream>,
    side: Rc<RefCell<ResponseSide>>,
    /// The connection's client, shared by its streams.
    client: Rc<ClientFacts>,
    /// Request body bytes received and not yet taken by the phases.
    body: Vec<u8>,
    /// Request body bytes received so far (the rate's measure).
    received: u64,
    /// The client ended the stream (END_STREAM seen).
    body_ended: bool,
    /// Where DATA frames are cut from.
    arena: BytesMut,
}

impl H2Downstream {
    /// The downstream of a stream whose request body is `recv`, answering through `side`, on
    /// a connection of `client`'s.
    pub fn new(recv: RecvStream, side: Rc<RefCell<ResponseSide>>, client: Rc<ClientFacts>) -> Self {
        Self {
            body_ended: recv.is_end_stream(),
            recv: Some(recv),
            side,
            client,
            body: Vec::new(),
            received: 0,
            arena: BytesMut::new(),
        }
    }

    /// The end of the request: a response that did not end (none was sent, or its body was
    /// cut short) resets the stream with `INTERNAL_ERROR`.
    pub fn finish(&mut self) {
        let mut side = self.side.borrow_mut();
        if !side.is_ended() {
            side.reset(Reason::INTERNAL_ERROR);
        }
    }

    /// Ends a gRPC call with Torii's HTTP `status` and `message` (`h2::relay::end_grpc_call`:
    /// trailers after a head, else a Trailers-Only head); the gRPC code sent.
    pub fn end_grpc_call(&mut self, status: u16, message: &str) -> Option<u8> {
        crate::h2::relay::end_grpc_call(&self.side, status, message)
    }

    /// Takes the next DATA frame into `self.body` under `timeout`; `Ok(false)` at the end of
    /// the stream.
    async fn read_data(&mut self, timeout: Duration) -> Result<bool, ReadFailure> {
        let Some(recv) = self.recv.as_mut().filter(|_| !self.body_ended) else {
            return Ok(false);
        };
        let next = monoio::time::timeout(timeout, poll_fn(|cx| recv.poll_data(cx))).await;
        match next {
            Err(_) => Err(ReadFailure::Timeout),
            Ok(None) => {
                self.body_ended = true;
                Ok(false)
            }
            Ok(Some(Ok(bytes))) => {
                self.body.extend_from_slice(&bytes);
                self.received += bytes.len() as u64;
                // The phases hold these bytes: the client may send as many more.
                let _ = recv.flow_control().release_capacity(bytes.len());
                Ok(true)
            }
            Ok(Some(Err(e))) => Err(ReadFailure::Gone(body_error(&e))),
        }
    }

    /// [`H2Downstream::read_data`] under the minimum body rate of `clock` and `idle`.
    async fn read_data_rated(
        &mut self,
        clock: &BodyClock,
        idle: Duration,
    ) -> Result<bool, BodyWaitError> {
        let (timeout, by_rate) = clock.read_timeout(self.received, idle);
        let too_slow = if by_rate {
            BodyWaitError::TooSlow
        } else {
            BodyWaitError::Idle
        };
        if timeout.is_zero() {
            return Err(too_slow);
        }
        match self.read_data(timeout).await {
            Ok(more) => Ok(more),
            Err(ReadFailure::Timeout) => Err(too_slow),
            Err(ReadFailure::Gone(_)) => Err(BodyWaitError::Gone),
        }
    }

    /// Sends `head` and then `body` whole, the last frame ending the stream.
    async fn send_whole(&mut self, head: Response<()>, body: &[u8], head_only: bool) -> bool {
        let end = head_only || body.is_empty();
        if self.side.borrow_mut().send_head(head, end).is_err() {
            return false;
        }
        if end {
            return true;
        }
        DataSink::new(&self.side, &mut self.arena)
            .send(body, true)
            .await
            .is_ok()
    }
}

/// Why taking a DATA frame failed.
enum ReadFailure {
    Timeout,
    Gone(io::Error),
}

impl Downstream for H2Downstream {
    fn client(&self) -> &ClientFacts {
        &self.client
    }

    /// A stream carries one request: nothing is kept alive, nothing needs closing.
    fn must_close(&self, _ctx: &RequestCtx<'_>, _draining: bool) -> bool {
        false
    }

    async fn await_body(
        &mut self,
        ctx: &mut RequestCtx<'_>,
    ) -> (BodyClock, Result<BodyStart, BodyWaitError>) {
        let limits = &ctx.snap.limits;
        let clock = BodyClock::new(
            ctx.head_done,
            limits.body_min_rate,
            limits.body_min_rate_grace,
        );
        let want = match ctx.head.body {
            BodyFraming::None | BodyFraming::Length(0) => return (clock, Ok(BodyStart::None)),
            BodyFraming::Length(n) if n <= BUFFERED_BODY_BYTES => n as usize,
            BodyFraming::Length(_) | BodyFraming::Chunked => 1,
        };
        if self.body.is_empty() && ctx.head.expect_continue && !ctx.continue_sent {
            let mut interim = Response::new(());
            *interim.status_mut() = StatusCode::CONTINUE;
            self.side.borrow_mut().send_interim(interim);
            ctx.continue_sent = true;
        }
        let idle = limits.body_timeout;
        while self.body.len() < want && !self.body_ended {
            if let Err(e) = self.read_data_rated(&clock, idle).await {
                return (clock, Err(e));
            }
        }
        let start = match ctx.head.body {
            BodyFraming::Length(n) if n <= BUFFERED_BODY_BYTES => {
                if self.body.len() < want {
                    // `h2` holds a stream to its `content-length`; a shorter body is a reset.
                    return (clock, Err(BodyWaitError::Gone));
                }
                BodyStart::Buffered(want)
            }
            _ => BodyStart::Streaming,
        };
        (clock, Ok(start))
    }

    fn take_h2_body(&mut self) -> Option<H2Body> {
        let recv = self.recv.take()?;
        self.body_ended = true;
        Some(H2Body {
            recv,
            buffered: Bytes::from(std::mem::take(&mut self.body)),
        })
    }

    fn buffered_body(&self, n: usize) -> &[u8] {
        self.body.get(..n).unwrap_or(&self.body)
    }

    fn consume_body(&mut self, n: usize) {
        self.body.drain(..n.min(self.body.len()));
    }

    async fn send_body<W: monoio::io::AsyncWriteRent>(
        &mut self,
        dst: &mut W,
        framing: Framing,
        scratch: &mut Vec<u8>,
        opts: PumpOptions,
    ) -> Result<u64, PumpError> {
        let chunked = framing == Framing::Chunked;
        let mut sent = 0u64;
        loop {
            if !self.body.is_empty() {
                let n = self.body.len() as u64;
                if sent + n > opts.max_bytes {
                    return Err(PumpError::TooLarge);
                }
                scratch.clear();
                if chunked {
                    push_hex_line(scratch, n);
                }
                scratch.extend_from_slice(&self.body);
                if chunked {
                    scratch.extend_from_slice(b"\r\n");
                }
                self.body.clear();
                write_all_timeout(dst, scratch, opts.write_timeout)
                    .await
                    .map_err(PumpError::Dest)?;
                sent += n;
            }
            let (timeout, by_rate) = match opts.min_rate {
                Some(clock) => clock.read_timeout(self.received, opts.read_timeout),
                None => (opts.read_timeout, false),
            };
            let slow = if by_rate {
                PumpError::TooSlow
            } else {
                PumpError::SourceTimeout
            };
            if self.body_ended {
                break;
            }
            if timeout.is_zero() {
                return Err(slow);
            }
            match self.read_data(timeout).await {
                Ok(_) => {}
                Err(ReadFailure::Timeout) => return Err(slow),
                Err(ReadFailure::Gone(e)) => return Err(PumpError::Source(e)),
            }
        }
        if chunked {
            scratch.clear();
            scratch.extend_from_slice(b"0\r\n\r\n");
            write_all_timeout(dst, scratch, opts.write_timeout)
                .await
                .map_err(PumpError::Dest)?;
        }
        Ok(sent)
    }

    async fn read_small_body(
        &mut self,
        ctx: &RequestCtx<'_>,
        clock: &BodyClock,
        out: &mut Vec<u8>,
        max: usize,
    ) -> SmallBody {
        let idle = ctx.snap.limits.body_timeout;
        loop {
            out.extend_from_slice(&self.body);
            self.body.clear();
            if out.len() > max {
                return SmallBody::TooLarge;
            }
            match self.read_data_rated(clock, idle).await {
                Ok(true) => {}
                Ok(false) => return SmallBody::Complete { raw: 0 },
                Err(e) => return SmallBody::Failed(e),
            }
        }
    }

    async fn send_local(
        &mut self,
        rec: &mut RequestRecord,
        answer: &LocalAnswer<'_>,
        _close: bool,
        head_only: bool,
        timeout: Duration,
    ) -> bool {
        if let LocalBody::Grpc(message) = answer.body {
            rec.answered(answer.status, 0);
            rec.grpc_status = Some(crate::proxy::grpc::grpc_status_for(answer.status));
            let mut head = grpc_head(answer.status, message, answer.headers);
            append_lines(head.headers_mut(), answer.lines);
            return self.side.borrow_mut().send_head(head, true).is_ok();
        }
        let Ok(status) = StatusCode::from_u16(answer.status) else {
            return false;
        };
        let mut head = Response::new(());
        *head.status_mut() = status;
        let h = head.headers_mut();
        if !matches!(answer.body, LocalBody::Empty) {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        // The error document is rendered per error answer, as over HTTP/1.1.
        let mut error_body = Vec::new();
        let content: &[u8] = match answer.body {
            LocalBody::Error(message) => {
                h.insert("otoroshi-error", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(message) {
                    h.insert("otoroshi-error-msg", v);
                }
                error_body.extend_from_slice(b"{\"Otoroshi-Error\":\"");
                push_json_escaped(&mut error_body, message.as_bytes());
                error_body.extend_from_slice(b"\"}");
                &error_body
            }
            LocalBody::Json(json) => json,
            LocalBody::Grpc(_) | LocalBody::Empty => &[],
        };
        for (name, value) in answer.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                h.append(n, v);
            }
        }
        append_lines(h, answer.lines);
        if answer.status != 204 {
            h.insert(CONTENT_LENGTH, HeaderValue::from(content.len()));
        }
        rec.answered(answer.status, content.len());
        monoio::time::timeout(timeout, self.send_whole(head, content, head_only))
            .await
            .unwrap_or(false)
    }

    async fn relay_response(
        &mut self,
        ctx: &mut RequestCtx<'_>,
        resp: &mut UpstreamResponse,
        hidden: impl Fn(&[u8]) -> bool,
        _draining: bool,
    ) -> Relayed {
        let resp = match resp {
            UpstreamResponse::Http1(r) => r,
            UpstreamResponse::Http2(r) => return relay_h2(&self.side, ctx, r, &hidden).await,
        };
        let limits = ctx.snap.limits;
        let Ok(status) = StatusCode::from_u16(resp.status()) else {
            return Relayed::Failed;
        };
        let mut head = Response::new(());
        *head.status_mut() = status;
        fill_fields(
            head.headers_mut(),
            resp.head_bytes(),
            &resp.head,
            &ctx.bufs.resp_headers,
            &hidden,
        );
        append_lines(head.headers_mut(), &ctx.bufs.quota_headers);
        let framing = resp.body_framing();
        resp.start_body();
        ctx.rec.answered(resp.status(), 0);
        if self
            .side
            .borrow_mut()
            .send_head(head, framing.is_none())
            .is_err()
        {
            return Relayed::Failed;
        }
        let Some(framing) = framing else {
            return Relayed::Complete { close: false };
        };
        let opts = PumpOptions {
            read_timeout: ctx.upstream_idle_timeout(),
            write_timeout: limits.body_timeout,
            max_bytes: u64::MAX,
            buffer_bytes: BODY_BUFFER_BYTES,
            chunked: ChunkedMode::Dechunk,
            min_rate: None,
            min_send_rate: Some((limits.response_min_rate, limits.response_min_rate_grace)),
        };
        let mut sink = SliceSink(DataSink::new(&self.side, &mut self.arena));
        let pumped = resp
            .pump_body(&mut sink, framing, &mut ctx.bufs.scratch, opts)
            .await;
        let SliceSink(mut sink) = sink;
        ctx.rec.bytes_out += sink.sent;
        match pumped {
            Ok(_) if sink.end().is_ok() => Relayed::Complete { close: false },
            Ok(_) => Relayed::Failed,
            Err(e) => {
                tracing::debug!(error = %e, "response body failed; stream reset");
                Relayed::Failed
            }
        }
    }

    /// Never asked: over HTTP/2 `Upgrade` is a connection-specific field, refused with the
    /// head, so no WebSocket upgrade is admitted.
    async fn send_switch(
        &mut self,
        _ctx: &mut RequestCtx<'_>,
        _resp: &mut H1Response,
        _hidden: impl Fn(&[u8]) -> bool,
    ) -> bool {
        false
    }
}
/// The upstream's fields that go on to an HTTP/2 client: not hop-by-hop (by name, or named by
/// its `Connection`), not `hidden`, no `content-length` on a status without content. A field
/// `http` refuses (a byte HTTP/2 cannot carry) is dropped alone.
fn fill_fields(
    out: &mut HeaderMap,
    data: &[u8],
    resp: &ResponseHead,
    fields: &[crate::http1::HeaderField],
    hidden: &impl Fn(&[u8]) -> bool,
) {
    let no_content = status_has_no_content(resp.status);
    out.reserve(fields.len());
    for f in fields {
        let name = f.name.get(data);
        let kind = HeaderKind::classify(name);
        if f.hop_by_hop
            || kind.is_hop_by_hop()
            || (no_content && kind == HeaderKind::ContentLength)
            || hidden(name)
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(f.value.get(data)),
        ) {
            out.append(n, v);
        }
    }
}

fn body_error(e: &h2::Error) -> io::Error {
    let kind = if e.is_reset() || e.is_go_away() || e.is_io() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_response_head, HeadLimits, Method};

    fn fields_of(method: Method, input: &[u8], hidden: &[u8]) -> HeaderMap {
        let mut fields = Vec::new();
        let resp = match parse_response_head(input, &HeadLimits::default(), method, &mut fields) {
            Ok(Some(r)) => r,
            other => panic!("{other:?}"),
        };
        let mut out = HeaderMap::new();
        fill_fields(&mut out, input, &resp, &fields, &|n: &[u8]| n == hidden);
        out
    }

    #[test]
    fn hop_by_hop_fields_never_reach_http2() {
        let input = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close, x-gone\r\nx-gone: 1\r\nkeep-alive: 1\r\nproxy-connection: x\r\nupgrade: h2c\r\nte: trailers\r\ntrailer: x\r\nset-cookie: a=1\r\nset-cookie: b=2\r\notoroshi-state-resp: t\r\n\r\n";
        let h = fields_of(Method::Get, input, b"otoroshi-state-resp");
        for n in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "upgrade",
            "te",
            "trailer",
            "x-gone",
            "otoroshi-state-resp",
        ] {
            assert!(!h.contains_key(n), "{n}");
        }
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        assert_eq!(
            h.get("content-length").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
    }

    #[test]
    fn statuses_without_content_lose_their_content_length() {
        // RFC 9110 §8.6 (1xx, 204) and RFC 9111 §3.2 (304): the field would announce a body
        // the stream never carries.
        for status in ["204 No Content", "304 Not Modified"] {
            let input = format!("HTTP/1.1 {status}\r\ncontent-length: 15\r\netag: e\r\n\r\n");
            let h = fields_of(Method::Get, input.as_bytes(), b"");
            assert!(!h.contains_key("content-length"), "{status}");
            assert!(h.contains_key("etag"));
        }
        // A HEAD answer keeps the GET's length (RFC 9110 §9.3.2).
        let h = fields_of(
            Method::Head,
            b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n",
            b"",
        );
        assert_eq!(
            h.get("content-length").map(|v| v.as_bytes()),
            Some(&b"15"[..])
        );
    }

    #[test]
    fn quota_lines_become_fields() {
        let mut h = HeaderMap::new();
        append_lines(
            &mut h,
            b"Otoroshi-Daily-Calls-Remaining: 9\r\nRateLimit-Limit: 10\r\n",
        );
        assert_eq!(
            h.get("otoroshi-daily-calls-remaining")
                .map(|v| v.as_bytes()),
            Some(&b"9"[..])
        );
        assert_eq!(
            h.get("ratelimit-limit").map(|v| v.as_bytes()),
            Some(&b"10"[..])
        );
        assert_eq!(h.len(), 2);
    }
}
