//! The sending half of one HTTP/2 stream: its response handle, then its DATA sender, shared
//! between the stream's task (which watches for a reset) and the stream's downstream (which
//! answers).
//!
//! Owns [`ResponseSide`] (the head sent once, then DATA; a reset noticed or sent) and
//! [`DataSink`], the stream's body seen as an `AsyncWriteRent` so that the body pump of the
//! proxy (`crate::proxy::body::pump`: its timeouts, minimum send rate and chunked decoding)
//! writes an upstream's response body straight into DATA frames. Flow control follows the
//! bytes: a write waits until the client's window has room (a client that never opens it is
//! cut by the pump's send deadline, as a slow HTTP/1.1 reader is). It must not decide what a
//! response says: the downstream (`h2::downstream`) does.

use crate::io::SendSlice;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, SendStream};
use http::Response;

/// The sending half of a stream: the response handle until the head is sent, then the
/// stream's DATA sender.
#[derive(Debug)]
pub struct ResponseSide {
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
    /// END_STREAM was sent: the response is complete.
    ended: bool,
}

impl ResponseSide {
    /// A stream that has sent nothing yet.
    pub fn new(respond: SendResponse<Bytes>) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            respond: Some(respond),
            send: None,
            ended: false,
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

    /// The stream's DATA sender, once the head was sent and until it is dropped: a relay
    /// that pipes an HTTP/2 upstream's body into it calls [`ResponseSide::set_ended`] after
    /// the pipe sent the end.
    pub fn sender(&mut self) -> Option<&mut SendStream<Bytes>> {
        self.send.as_mut()
    }

    /// Notes that END_STREAM went out through [`ResponseSide::sender`].
    pub fn set_ended(&mut self) {
        self.ended = true;
    }

    /// True once the response ended (END_STREAM sent).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True once the final head was sent.
    pub fn head_sent(&self) -> bool {
        self.respond.is_none()
    }

    /// Sends an interim head (`100 Continue`). One the client cannot get changes nothing: the
    /// final head follows.
    pub fn send_interim(&mut self, head: Response<()>) {
        if let Some(r) = &mut self.respond {
            let _ = r.send_informational(head);
        }
    }

    /// Sends the final head; `end`: it ends the stream (no body).
    pub fn send_head(&mut self, head: Response<()>, end: bool) -> io::Result<()> {
        let Some(mut respond) = self.respond.take() else {
            return Err(io::ErrorKind::InvalidData.into());
        };
        let send = respond.send_response(head, end).map_err(|e| h2_error(&e))?;
        self.send = Some(send);
        self.ended = end;
        Ok(())
    }

    /// Sends one DATA frame; `end`: it ends the stream.
    pub fn send_data(&mut self, chunk: Bytes, end: bool) -> io::Result<()> {
        match &mut self.send {
            Some(s) => {
                s.send_data(chunk, end).map_err(|e| h2_error(&e))?;
                self.ended |= end;
                Ok(())
            }
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

/// Waits until the stream is reset; the reason.
pub async fn reset_of(side: &RefCell<ResponseSide>) -> Reason {
    poll_fn(|cx| side.borrow_mut().poll_reset(cx)).await
}

/// A stream's response body as a byte sink: each write goes out as DATA frames, each as
/// large as the client's window allows. The frames are cut from one arena whose allocation is
/// reused once `h2` has written them. Nothing ends the stream here:
/// [`DataSink::end`] does.
#[derive(Debug)]
pub struct DataSink<'a> {
    side: &'a RefCell<ResponseSide>,
    arena: &'a mut BytesMut,
    /// Payload bytes sent.
    pub sent: u64,
}

impl<'a> DataSink<'a> {
    /// A sink over `side` (whose head was sent), cutting frames from `arena`.
    pub fn new(side: &'a RefCell<ResponseSide>, arena: &'a mut BytesMut) -> Self {
        Self {
            side,
            arena,
            sent: 0,
        }
    }

    /// Sends `payload` whole; the last frame ends the stream when `end`.
    pub async fn send(&mut self, payload: &[u8], end: bool) -> io::Result<()> {
        let total = payload.len();
        if total == 0 {
            if end {
                self.side.borrow_mut().send_data(Bytes::new(), true)?;
            }
            return Ok(());
        }
        let mut off = 0;
        while off < total {
            let want = total - off;
            let granted = {
                let side = self.side;
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
            self.arena.extend_from_slice(&payload[off..off + n]);
            let chunk = self.arena.split().freeze();
            off += n;
            self.sent += n as u64;
            self.side
                .borrow_mut()
                .send_data(chunk, end && off == total)?;
        }
        Ok(())
    }

    /// Ends the stream (an empty DATA frame with END_STREAM).
    pub fn end(&mut self) -> io::Result<()> {
        self.side.borrow_mut().send_data(Bytes::new(), true)
    }
}

impl SendSlice for DataSink<'_> {
    async fn send_slice(&mut self, src: &[u8]) -> io::Result<usize> {
        self.send(src, false).await.map(|()| src.len())
    }
}

fn h2_error(e: &h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
}
