//! One HTTP/2 stream as a byte stream the HTTP/1.1 connection code serves: the adapter that
//! lets every stream go through the same phases as an HTTP/1.1 request without forking them.
//!
//! Owns [`H2Exchange`], an `AsyncReadRent + AsyncWriteRent` whose read side yields the stream's
//! request as HTTP/1.1 bytes (the head rendered by `request_head`, then the DATA frames as they
//! arrive, with their `content-length` or chunked) and then the end of the stream, and whose
//! write side takes the HTTP/1.1 response the phases write and sends it as HTTP/2 (interim
//! heads, the final head, DATA frames; `response::ResponseTranslator`). Flow control follows
//! the bytes: request capacity is released to the client as the phases read the body (so an
//! upload moves at the pace the upstream takes it, never stalls and never piles up here), and
//! response DATA is sent only as the client's window allows (a write waits for capacity: a
//! client that never opens its window is cut by the phases' send deadlines, like a slow
//! HTTP/1.1 reader). It must not decide anything about the request: the phases do.
//!
//! Also owns [`ResponseSide`], the stream's sending half shared with the stream's task so the
//! task can notice a reset from the client while the phases wait on the upstream.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{Response, StatusCode};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut, RawBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::BufResult;

use crate::h2::request_head::BodyFraming;
use crate::h2::response::{ResponseTranslator, Step};

/// The sending half of a stream: the response handle until the head is sent, then the
/// stream's DATA sender.
#[derive(Debug)]
pub struct ResponseSide {
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
}

impl ResponseSide {
    /// A stream that has sent nothing yet.
    pub fn new(respond: SendResponse<Bytes>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            respond: Some(respond),
            send: None,
        }))
    }

    /// Ready with the reason once the stream was reset (by the client, or by the library on a
    /// protocol error); pending while it is open or after it ended cleanly.
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<Reason> {
        let polled = match (&mut self.send, &mut self.respond) {
            (Some(s), _) => s.poll_reset(cx),
            (None, Some(r)) => r.poll_reset(cx),
            (None, None) => return Poll::Pending,
        };
        match polled {
            Poll::Ready(Ok(reason)) => Poll::Ready(reason),
            Poll::Ready(Err(_)) => Poll::Ready(Reason::CANCEL),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Resets the stream with `reason`, whatever was sent so far.
    pub fn reset(&mut self, reason: Reason) {
        if let Some(s) = &mut self.send {
            s.send_reset(reason);
        } else if let Some(r) = &mut self.respond {
            r.send_reset(reason);
        }
    }
}

/// Waits until the stream is reset; the reason.
pub async fn reset_of(side: &RefCell<ResponseSide>) -> Reason {
    poll_fn(|cx| side.borrow_mut().poll_reset(cx)).await
}

/// One stream as the HTTP/1.1 connection code sees it. See the module header.
#[derive(Debug)]
pub struct H2Exchange {
    /// Bytes to yield before `data`: the request head, then chunk-size lines and CRLFs.
    lead: Vec<u8>,
    lead_pos: usize,
    /// The DATA payload being yielded.
    data: Bytes,
    /// A CRLF follows `data` (chunked framing).
    crlf_after: bool,
    body: RecvStream,
    chunked: bool,
    /// The client ended the stream (and the last chunk was queued).
    body_ended: bool,
    side: Rc<RefCell<ResponseSide>>,
    translator: ResponseTranslator,
    /// Body payload decoded from one write, being sent.
    payload: Vec<u8>,
    /// Where DATA frames are cut from: split off and frozen per frame, its allocation reused
    /// once h2 has written them.
    arena: BytesMut,
}

impl H2Exchange {
    /// The stream whose request head was rendered into `head`, framed as `framing`, with its
    /// body `body`, answering through `side`; `translator` knows the request's method.
    pub fn new(
        head: Vec<u8>,
        framing: BodyFraming,
        body: RecvStream,
        side: Rc<RefCell<ResponseSide>>,
        translator: ResponseTranslator,
    ) -> Self {
        Self {
            lead: head,
            lead_pos: 0,
            data: Bytes::new(),
            crlf_after: false,
            chunked: framing == BodyFraming::Chunked,
            body_ended: framing == BodyFraming::None && body.is_end_stream(),
            body,
            side,
            translator,
            payload: Vec::new(),
            arena: BytesMut::new(),
        }
    }

    /// Copies queued request bytes into `dst`; releases flow-control capacity for the DATA
    /// bytes copied.
    fn copy_out(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        loop {
            let room = dst.len() - n;
            if room == 0 {
                break;
            }
            if self.lead_pos < self.lead.len() {
                let src = &self.lead[self.lead_pos..];
                let k = src.len().min(room);
                dst[n..n + k].copy_from_slice(&src[..k]);
                self.lead_pos += k;
                n += k;
                if self.lead_pos == self.lead.len() {
                    self.lead.clear();
                    self.lead_pos = 0;
                }
                continue;
            }
            if !self.data.is_empty() {
                let k = self.data.len().min(room);
                dst[n..n + k].copy_from_slice(&self.data[..k]);
                self.data.advance(k);
                n += k;
                // The phases took these bytes: the client may send as many more.
                let _ = self.body.flow_control().release_capacity(k);
                continue;
            }
            if self.crlf_after {
                self.crlf_after = false;
                self.lead.extend_from_slice(b"\r\n");
                continue;
            }
            break;
        }
        n
    }

    /// Reads request bytes into `dst`: 0 once the request is complete.
    async fn read_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.copy_out(dst);
            if n > 0 || dst.is_empty() {
                return Ok(n);
            }
            if self.body_ended {
                return Ok(0);
            }
            match poll_fn(|cx| self.body.poll_data(cx)).await {
                Some(Ok(bytes)) => {
                    if bytes.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        let mut line = [0u8; 18];
                        let len = hex_line(bytes.len() as u64, &mut line);
                        self.lead.extend_from_slice(&line[..len]);
                        self.crlf_after = true;
                    }
                    self.data = bytes;
                }
                Some(Err(e)) => return Err(body_error(&e)),
                None => {
                    // Request trailers (a HEADERS frame after the DATA) are dropped: Torii
                    // forwards none (docs/configuration.md, "HTTP/2").
                    self.body_ended = true;
                    if self.chunked {
                        self.lead.extend_from_slice(b"0\r\n\r\n");
                    }
                }
            }
        }
    }

    /// Takes one write of the phases' HTTP/1.1 response and sends what it holds.
    async fn write_bytes(&mut self, input: &[u8]) -> io::Result<()> {
        let mut rest = input;
        // Bytes after a complete response (none in practice) are dropped: the stream ended.
        while !rest.is_empty() && !self.translator.is_done() {
            self.payload.clear();
            let step = self
                .translator
                .step(rest, &mut self.payload)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let consumed = match step {
                Step::More => break,
                Step::Interim { status, consumed } => {
                    self.send_interim(status);
                    consumed
                }
                Step::Head {
                    response,
                    end_stream,
                    consumed,
                } => {
                    self.send_head(response, end_stream)?;
                    consumed
                }
                Step::Body { consumed, done } => {
                    self.send_payload(done).await?;
                    consumed
                }
            };
            if consumed == 0 {
                break;
            }
            rest = rest.get(consumed..).unwrap_or_default();
        }
        Ok(())
    }

    fn send_interim(&mut self, status: u16) {
        let mut side = self.side.borrow_mut();
        if let (Some(r), Ok(s)) = (&mut side.respond, StatusCode::from_u16(status)) {
            let mut head = Response::new(());
            *head.status_mut() = s;
            // An interim head the client cannot get changes nothing: the final one follows.
            let _ = r.send_informational(head);
        }
    }

    fn send_head(&mut self, response: Response<()>, end_stream: bool) -> io::Result<()> {
        let mut side = self.side.borrow_mut();
        let Some(mut respond) = side.respond.take() else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        let send = respond
            .send_response(response, end_stream)
            .map_err(|e| h2_error(&e))?;
        side.send = Some(send);
        Ok(())
    }

    /// Sends `self.payload` as DATA frames, each as large as the client's window allows; the
    /// last one ends the stream when `end`.
    async fn send_payload(&mut self, end: bool) -> io::Result<()> {
        let total = self.payload.len();
        if total == 0 {
            if end {
                self.send_data(Bytes::new(), true)?;
            }
            return Ok(());
        }
        let mut off = 0;
        while off < total {
            let want = total - off;
            let granted = {
                let side = &self.side;
                if let Some(s) = &mut side.borrow_mut().send {
                    s.reserve_capacity(want);
                }
                poll_fn(|cx| match &mut side.borrow_mut().send {
                    Some(s) => s.poll_capacity(cx),
                    None => Poll::Ready(None),
                })
                .await
            };
            let n = match granted {
                Some(Ok(0)) => continue,
                Some(Ok(n)) => n.min(want),
                Some(Err(e)) => return Err(h2_error(&e)),
                None => return Err(io::ErrorKind::BrokenPipe.into()),
            };
            self.arena.reserve(n);
            self.arena.extend_from_slice(&self.payload[off..off + n]);
            let chunk = self.arena.split().freeze();
            off += n;
            self.send_data(chunk, end && off == total)?;
        }
        Ok(())
    }

    fn send_data(&mut self, chunk: Bytes, end: bool) -> io::Result<()> {
        match &mut self.side.borrow_mut().send {
            Some(s) => s.send_data(chunk, end).map_err(|e| h2_error(&e)),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

/// `"{n:x}\r\n"` into `out`; its length.
fn hex_line(n: u64, out: &mut [u8; 18]) -> usize {
    let digits = if n == 0 {
        1
    } else {
        (64 - n.leading_zeros()).div_ceil(4) as usize
    };
    for (i, o) in out.iter_mut().take(digits).enumerate() {
        let nibble = (n >> (4 * (digits - 1 - i))) & 0xf;
        *o = b"0123456789abcdef"[nibble as usize];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

fn body_error(e: &h2::Error) -> io::Error {
    let kind = if e.is_reset() || e.is_go_away() || e.is_io() {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, e.to_string())
}

fn h2_error(e: &h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
}

impl AsyncReadRent for H2Exchange {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: `IoBufMut` promises `write_ptr()` is valid for writes of `bytes_total()`
        // bytes while we hold `buf`; the slice does not outlive this call's use of it.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.write_ptr(), buf.bytes_total()) };
        let res = self.read_into(dst).await;
        if let Ok(n) = res {
            // SAFETY: `read_into` initialised the first `n` bytes of the slice above.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        // SAFETY: the first iovec of `buf` is valid for writes while we hold `buf`.
        let res = match unsafe { RawBuf::new_from_iovec_mut(&mut buf) } {
            Some(raw) => self.read(raw).await.0,
            None => Ok(0),
        };
        if let Ok(n) = res {
            // SAFETY: `n` bytes of the first iovec were written just above.
            unsafe { buf.set_init(n) };
        }
        (res, buf)
    }
}

impl AsyncWriteRent for H2Exchange {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `IoBuf` promises `read_ptr()` is valid for reads of `bytes_init()` bytes
        // while we hold `buf`.
        let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = self.write_bytes(src).await.map(|()| src.len());
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: the first iovec of `buf` is valid for reads while we hold `buf`.
        let res = match unsafe { RawBuf::new_from_iovec(&buf) } {
            Some(raw) => self.write(raw).await.0,
            None => Ok(0),
        };
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The end of the phases' response. A complete response was already ended (its last DATA
    /// frame or its head carried END_STREAM); a close-delimited one ends now; anything else
    /// (no response, a body cut short) resets the stream with `INTERNAL_ERROR`, so the client
    /// never takes a truncated body for a whole one.
    async fn shutdown(&mut self) -> io::Result<()> {
        if self.translator.is_done() {
            return Ok(());
        }
        if self.translator.ends_at_close() {
            return self.send_data(Bytes::new(), true);
        }
        self.side.borrow_mut().reset(Reason::INTERNAL_ERROR);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::hex_line;

    #[test]
    fn chunk_size_lines_are_lower_case_hex() {
        for (n, text) in [
            (0u64, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (65535, "ffff\r\n"),
            (u64::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut out = [0u8; 18];
            let len = hex_line(n, &mut out);
            assert_eq!(&out[..len], text.as_bytes(), "{n}");
        }
    }
}
