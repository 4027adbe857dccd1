//! The HTTP/1.1 implementation of [`Downstream`]: [`ClientConn`] answers the phases.
//!
//! Owns everything HTTP/1.1 about the client side of a request: the keep-alive rule (RFC 9112
//! §9.3 and §9.6: the connection closes when the client asked for it, when an HTTP/1.0 client
//! did not ask to keep it, when part of the request body is still unread — it would be read as
//! the next request — or while draining), what of the read buffer was consumed (the head was
//! consumed when the request took it; the body here, as it is read), `Expect: 100-continue`,
//! the request body's framing on the way to the upstream (`Content-Length` or re-chunked), the
//! framing of a response for the client's version (chunked re-framed for HTTP/1.1 clients,
//! de-chunked and close-delimited for HTTP/1.0 ones; RFC 9112 §7.1), `Connection: close` when
//! the connection ends, and the `101` of a WebSocket switch. The decisions of the phases (what
//! to answer, which upstream header lines the client never sees) come in as parameters.

use crate::proxy::client::ClientFacts;
use std::time::Duration;

use crate::http1::ResponseBody;
use crate::http1::{copy_response_head, BodyFraming, ChunkedDecoder, ChunkedOutput};
use crate::io::{write_all_timeout, Stream};
use crate::metrics::RequestRecord;
use crate::proxy::body::{pump, ChunkedMode, Framing, PumpError, PumpOptions, BODY_BUFFER_BYTES};
use crate::proxy::body_rate::{await_body, read_body_bytes, BodyClock, BodyStart, BodyWaitError};
use crate::proxy::client::ClientConn;
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::{Downstream, LocalAnswer, LocalBody, Relayed, SmallBody};
use crate::proxy::relay_h1::relay_h2_to_h1;
use crate::proxy::respond::{write_empty, write_error, write_grpc, write_json};
use crate::proxy::upstream_response::{H1Response, UpstreamResponse};

/// Response bodies up to this size that are already buffered go out in the head's write.
const COALESCE_RESPONSE_BYTES: u64 = 16 * 1024;

impl<C: Stream> Downstream for ClientConn<C> {
    fn client(&self) -> &ClientFacts {
        &self.client
    }

    fn must_close(&self, ctx: &RequestCtx<'_>, draining: bool) -> bool {
        ctx.body_unread() || !ctx.head.keep_alive || draining
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
        let waited = await_body(
            &mut self.stream,
            &mut self.rbuf,
            &mut self.wbuf,
            &ctx.head,
            &clock,
            limits.body_timeout,
            &mut ctx.continue_sent,
        )
        .await;
        (clock, waited)
    }

    fn buffered_body(&self, n: usize) -> &[u8] {
        self.rbuf.data().get(..n).unwrap_or_default()
    }

    fn consume_body(&mut self, n: usize) {
        self.rbuf.consume(n);
    }

    async fn send_body<W: monoio::io::AsyncWriteRent>(
        &mut self,
        dst: &mut W,
        framing: Framing,
        scratch: &mut Vec<u8>,
        opts: PumpOptions,
    ) -> Result<u64, PumpError> {
        pump(
            &mut self.stream,
            &mut self.rbuf,
            dst,
            framing,
            scratch,
            opts,
        )
        .await
    }

    async fn read_small_body(
        &mut self,
        ctx: &RequestCtx<'_>,
        clock: &BodyClock,
        out: &mut Vec<u8>,
        max: usize,
    ) -> SmallBody {
        let need = match ctx.head.body {
            BodyFraming::None | BodyFraming::Length(0) => return SmallBody::Complete { raw: 0 },
            BodyFraming::Length(n) if n > max as u64 => return SmallBody::TooLarge,
            BodyFraming::Length(n) => Some(n as usize),
            BodyFraming::Chunked => None,
        };
        let idle = ctx.snap.limits.body_timeout;
        // Raw chunked bytes read at most for `max` payload bytes (framing and small chunks
        // cost extra).
        let cap = need.unwrap_or(max * 2 + 1024);
        let mut decoder = ChunkedDecoder::new();
        let mut pos = 0;
        loop {
            let data = self.rbuf.data();
            match need {
                Some(n) if data.len() >= n => {
                    out.extend_from_slice(data.get(..n).unwrap_or_default());
                    return SmallBody::Complete { raw: n };
                }
                Some(_) => {}
                None => {
                    let input = data.get(pos..).unwrap_or_default();
                    match decoder.decode(input, out, ChunkedOutput::Payload) {
                        Err(_) => return SmallBody::Malformed,
                        Ok(p) => {
                            pos += p.consumed;
                            // A chunk announced over the cap is refused at once, before its
                            // data (a local endpoint does not wait for what it will refuse).
                            if decoder.committed_bytes() > max as u64 {
                                return SmallBody::TooLarge;
                            }
                            if p.done {
                                return SmallBody::Complete { raw: pos };
                            }
                        }
                    }
                    if self.rbuf.len() >= cap {
                        return SmallBody::TooLarge;
                    }
                }
            }
            let arrived = self.rbuf.len() as u64;
            let read =
                read_body_bytes(&mut self.stream, &mut self.rbuf, cap, clock, arrived, idle).await;
            if let Err(e) = read {
                return SmallBody::Failed(e);
            }
        }
    }

    async fn send_local(
        &mut self,
        rec: &mut RequestRecord,
        answer: &LocalAnswer<'_>,
        close: bool,
        head_only: bool,
        timeout: Duration,
    ) -> bool {
        self.wbuf.clear();
        match answer.body {
            LocalBody::Error(message) => write_error(
                &mut self.wbuf,
                answer.status,
                message,
                close,
                answer.headers,
            ),
            LocalBody::Json(body) => {
                write_json(&mut self.wbuf, answer.status, body, close, answer.headers)
            }
            LocalBody::Grpc(message) => write_grpc(
                &mut self.wbuf,
                answer.status,
                message,
                close,
                answer.headers,
            ),
            LocalBody::Empty => write_empty(&mut self.wbuf, answer.status, close),
        }
        insert_lines(&mut self.wbuf, answer.lines);
        if head_only {
            truncate_to_head(&mut self.wbuf);
        }
        rec.answered(answer.status, self.wbuf.len());
        write_all_timeout(&mut self.stream, &mut self.wbuf, timeout)
            .await
            .is_ok()
    }

    async fn relay_response(
        &mut self,
        ctx: &mut RequestCtx<'_>,
        resp: &mut UpstreamResponse,
        hidden: impl Fn(&[u8]) -> bool,
        draining: bool,
    ) -> Relayed {
        let resp = match resp {
            UpstreamResponse::Http1(r) => r,
            UpstreamResponse::Http2(r) => {
                let close = self.must_close(ctx, draining);
                return relay_h2_to_h1(&mut self.stream, &mut self.wbuf, ctx, r, &hidden, close)
                    .await;
            }
        };
        let limits = ctx.snap.limits;
        let http10_client = ctx.head.version_minor == 0;
        let framing = resp.body_framing();
        let (chunked_mode, close_after) = match resp.head.body {
            ResponseBody::Chunked if http10_client => (ChunkedMode::Dechunk, true),
            ResponseBody::UntilClose => (ChunkedMode::Rechunk, true),
            _ => (ChunkedMode::Rechunk, false),
        };
        let close = close_after || self.must_close(ctx, draining);

        write_head_lines(&mut self.wbuf, ctx, resp, &hidden);
        if chunked_mode == ChunkedMode::Rechunk && matches!(resp.head.body, ResponseBody::Chunked) {
            self.wbuf
                .extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        if close {
            self.wbuf.extend_from_slice(b"connection: close\r\n");
        } else if http10_client {
            self.wbuf.extend_from_slice(b"connection: keep-alive\r\n");
        }
        self.wbuf.extend_from_slice(&ctx.bufs.quota_headers);
        self.wbuf.extend_from_slice(b"\r\n");
        resp.start_body();
        // A small body already here goes out in the head's write.
        let body_done =
            framing.is_none() || resp.take_small_body(COALESCE_RESPONSE_BYTES, &mut self.wbuf);
        ctx.rec.answered(resp.status(), self.wbuf.len());
        if write_all_timeout(&mut self.stream, &mut self.wbuf, limits.body_timeout)
            .await
            .is_err()
        {
            return Relayed::Failed;
        }
        let Some(framing) = framing.filter(|_| !body_done) else {
            return Relayed::Complete { close };
        };
        let opts = PumpOptions {
            read_timeout: ctx.upstream_idle_timeout(),
            write_timeout: limits.body_timeout,
            max_bytes: u64::MAX,
            buffer_bytes: BODY_BUFFER_BYTES,
            chunked: chunked_mode,
            min_rate: None,
            min_send_rate: Some((limits.response_min_rate, limits.response_min_rate_grace)),
        };
        match resp
            .pump_body(&mut self.stream, framing, &mut ctx.bufs.scratch, opts)
            .await
        {
            Ok(n) => {
                ctx.rec.bytes_out += n;
                Relayed::Complete { close }
            }
            Err(e) => {
                // The status line is already out: the only honest signal left is closing.
                tracing::debug!(error = %e, "response body failed");
                Relayed::Failed
            }
        }
    }

    async fn send_switch(
        &mut self,
        ctx: &mut RequestCtx<'_>,
        resp: &mut H1Response,
        hidden: impl Fn(&[u8]) -> bool,
    ) -> bool {
        write_head_lines(&mut self.wbuf, ctx, resp, &hidden);
        self.wbuf
            .extend_from_slice(b"upgrade: websocket\r\nconnection: upgrade\r\n\r\n");
        resp.start_body();
        ctx.rec.answered(101, self.wbuf.len());
        let timeout = ctx.snap.limits.body_timeout;
        write_all_timeout(&mut self.stream, &mut self.wbuf, timeout)
            .await
            .is_ok()
    }
}

/// Puts pre-rendered header lines at the end of a rendered response's head (in place).
fn insert_lines(out: &mut Vec<u8>, lines: &[u8]) {
    if lines.is_empty() {
        return;
    }
    if let Some(end) = memchr::memmem::find(out, b"\r\n\r\n") {
        out.splice(end + 2..end + 2, lines.iter().copied());
    }
}

/// Cuts a rendered HTTP/1.1 response after its head (the first blank line).
fn truncate_to_head(out: &mut Vec<u8>) {
    if let Some(end) = memchr::memmem::find(out, b"\r\n\r\n") {
        out.truncate(end + 4);
    }
}

/// Starts `wbuf` with the upstream response's status line and header lines, minus the names
/// `hidden` says (hop-by-hop, the challenge answer): the part of the head both a relayed
/// response and a WebSocket switch send as the backend wrote it.
fn write_head_lines(
    wbuf: &mut Vec<u8>,
    ctx: &RequestCtx<'_>,
    resp: &H1Response,
    hidden: &impl Fn(&[u8]) -> bool,
) {
    wbuf.clear();
    let data = resp.head_bytes();
    copy_response_head(data, &resp.head, &ctx.bufs.resp_headers, wbuf, |f| {
        hidden(f.name.get(data))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_answer_keeps_the_head_and_its_content_length() {
        let mut out = Vec::new();
        write_json(&mut out, 200, b"{\"a\":1}", false, &[]);
        truncate_to_head(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.ends_with("content-length: 7\r\n\r\n"), "{text}");
    }
}
