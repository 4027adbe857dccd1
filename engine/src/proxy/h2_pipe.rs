//! One direction of an HTTP/2 exchange relayed stream to stream: DATA frames from a
//! `RecvStream` into a `SendStream`, then its trailers (or the end of the stream).
//!
//! Owns [`Pipe`], a poll-style pump that holds no bytes across a `Pending`, so two of them (the
//! request body going up, the response body coming down) run at once in one task, and
//! dropping one mid-way loses nothing the other needs. Flow control follows the bytes: a chunk
//! goes out only as far as the receiver's window allows, and the capacity of the source is
//! released only once the bytes were handed to the destination, so a slow reader on one side
//! slows the sender on the other instead of filling memory. Used by `proxy::upstream_h2`
//! (the request body while the response head is awaited) and `h2::downstream` (both
//! directions once the head came). It must not decide deadlines: callers time it through
//! [`Pipe::take_progress`].

use std::task::{Context, Poll};

use bytes::Bytes;
use h2::{RecvStream, SendStream};

/// Why a pipe stopped before its end.
#[derive(Debug)]
pub enum PipeError {
    /// The source failed (reset, connection lost).
    Source(h2::Error),
    /// The destination failed (reset, connection lost, or it stopped accepting data).
    Dest(h2::Error),
    /// The destination stream can no longer send.
    DestClosed,
    /// More than the pipe's byte limit.
    TooLarge,
}

/// The request body of an HTTP/2 client, handed by its downstream to an HTTP/2 upstream
/// exchange: the stream and the bytes already taken from it.
#[derive(Debug)]
pub struct H2Body {
    /// The rest of the body and its trailers.
    pub recv: RecvStream,
    /// Bytes received before the hand-over (their capacity is already released).
    pub buffered: Bytes,
}

/// One direction's progress. See the module header.
#[derive(Debug)]
pub struct Pipe {
    /// A chunk taken from the source and not yet wholly sent.
    pending: Bytes,
    /// Of `pending`, how many bytes hold source capacity still to release once sent.
    unreleased: usize,
    data_done: bool,
    done: bool,
    /// Payload bytes sent.
    pub sent: u64,
    max: u64,
    progressed: bool,
    /// The `grpc-status` of the trailers it passed on, as sent (gRPC calls read it).
    pub grpc_status: Option<http::HeaderValue>,
}

impl Pipe {
    /// A pipe whose first bytes are `buffered` (capacity already released), at most `max`
    /// payload bytes in all.
    pub fn new(buffered: Bytes, max: u64) -> Self {
        Self {
            pending: buffered,
            unreleased: 0,
            data_done: false,
            done: false,
            sent: 0,
            max,
            progressed: false,
            grpc_status: None,
        }
    }

    /// True once the body and its trailers (or its end) were sent.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether bytes moved since the last call (a read or a write): callers re-arm their idle
    /// deadline on it.
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    /// Moves what can be moved now; `Ready(Ok(()))` once the body and its end went.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut RecvStream,
        dst: &mut SendStream<Bytes>,
    ) -> Poll<Result<(), PipeError>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !self.pending.is_empty() {
                let want = self.pending.len();
                if dst.capacity() == 0 {
                    dst.reserve_capacity(want);
                    match dst.poll_capacity(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(None) => return Poll::Ready(Err(PipeError::DestClosed)),
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(PipeError::Dest(e))),
                        Poll::Ready(Some(Ok(0))) => {
                            if dst.capacity() == 0 {
                                return Poll::Pending;
                            }
                        }
                        Poll::Ready(Some(Ok(_))) => {}
                    }
                }
                let n = dst.capacity().min(want);
                if n == 0 {
                    return Poll::Pending;
                }
                let part = self.pending.split_to(n);
                if let Err(e) = dst.send_data(part, false) {
                    return Poll::Ready(Err(PipeError::Dest(e)));
                }
                self.sent += n as u64;
                self.progressed = true;
                let release = n.min(self.unreleased);
                if release > 0 {
                    self.unreleased -= release;
                    let _ = src.flow_control().release_capacity(release);
                }
                continue;
            }
            if !self.data_done {
                match src.poll_data(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => self.data_done = true,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(PipeError::Source(e))),
                    Poll::Ready(Some(Ok(chunk))) => {
                        if self.sent + chunk.len() as u64 > self.max {
                            return Poll::Ready(Err(PipeError::TooLarge));
                        }
                        self.progressed = true;
                        self.unreleased = chunk.len();
                        if chunk.is_empty() {
                            continue;
                        }
                        self.pending = chunk;
                    }
                }
                continue;
            }
            let end = match src.poll_trailers(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(PipeError::Source(e))),
                Poll::Ready(Ok(Some(trailers))) => {
                    self.grpc_status = trailers.get("grpc-status").cloned();
                    dst.send_trailers(trailers)
                }
                Poll::Ready(Ok(None)) => dst.send_data(Bytes::new(), true),
            };
            if let Err(e) = end {
                return Poll::Ready(Err(PipeError::Dest(e)));
            }
            self.done = true;
            self.progressed = true;
            return Poll::Ready(Ok(()));
        }
    }
}
