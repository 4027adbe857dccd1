//! One direction of a tunnel: bytes read from one side written to the other through one
//! bounded buffer, and both directions polled together until both ended or one failed.
//!
//! Owns the copy loop (bytes already buffered first: the client may have pipelined its first
//! frame behind the upgrade request, the backend may have sent its first frame in the same
//! packet as the `101`), half-close (the end of one direction is passed on as a shutdown of
//! the other side's write half, the other direction goes on), the activity clock and byte
//! counts, the containment of a panic inside a TLS stream (see [`Flow::poll_pump`]), and for
//! the backend-to-client direction an early stop between two WebSocket frames when the tunnel
//! asks for one ([`StopAtBoundary`]), so the tunnel can then send the client a close frame. It
//! never closes sockets: the tunnel does, once both directions are over.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use torii_protocol::websocket::FrameBoundary;

use crate::io::ReadBuf;
use crate::metrics::RouteMetrics;
use crate::worker::signal::Signal;

/// Most bytes a direction holds at once (read from one side, not yet written to the other).
pub const TUNNEL_BUFFER_BYTES: usize = 16 * 1024;

/// The side of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client of the gateway.
    Client,
    /// The backend.
    Upstream,
}

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectionEnd {
    /// Its source closed (end of stream); the other side was told (half-close).
    Closed,
    /// Reading from or writing to `Side` failed (reset, TLS error): the tunnel must close.
    Failed(Side),
    /// Stopped on request between two frames: everything read was written, and a frame may be
    /// written next.
    Stopped,
}

/// What lets a direction stop early at a frame boundary: the boundaries of the bytes it wrote,
/// and the signal that asks it to stop.
#[derive(Debug)]
pub struct StopAtBoundary<'a> {
    /// The frames written so far.
    pub frames: FrameBoundary,
    /// Fired when the tunnel must end.
    pub stop: &'a Signal,
}

/// What both directions share: the time of the last byte, the bytes each way, and where to
/// count them.
#[derive(Debug)]
pub struct Flow<'a> {
    /// When the last byte was read from either side.
    pub last_activity: Cell<Instant>,
    /// Bytes from the client to the backend.
    pub to_upstream: Cell<u64>,
    /// Bytes from the backend to the client.
    pub to_client: Cell<u64>,
    /// The route's counters, the worker's slot.
    pub metrics: &'a RouteMetrics,
    /// The worker writing them.
    pub worker: usize,
}

impl<'a> Flow<'a> {
    /// A flow starting now.
    pub fn new(metrics: &'a RouteMetrics, worker: usize) -> Self {
        Self {
            last_activity: Cell::new(Instant::now()),
            to_upstream: Cell::new(0),
            to_client: Cell::new(0),
            metrics,
            worker,
        }
    }

    fn moved(&self, to_upstream: bool, n: usize) {
        let n = n as u64;
        let total = if to_upstream {
            &self.to_upstream
        } else {
            &self.to_client
        };
        total.set(total.get() + n);
        self.metrics.tunnel_bytes(self.worker, to_upstream, n);
    }

    /// Polls one direction's future with a panic contained: monoio-rustls streams split in a
    /// read and a write half can panic inside the read half when a peer sends an invalid TLS
    /// record while a write to that peer is in flight (the read's error path writes an alert
    /// through the write buffer the pending write holds). The panic is caught here, where
    /// nothing of the worker is mid-update, and the direction ends as failed: both sockets are
    /// then closed, as any TLS error would close them.
    pub fn poll_pump<F: Future<Output = DirectionEnd>>(
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
        reader: Side,
    ) -> Poll<DirectionEnd> {
        match catch_unwind(AssertUnwindSafe(|| {
            super::panic_guard::quiet(|| fut.poll(cx))
        })) {
            Ok(p) => p,
            Err(_) => {
                tracing::debug!(side = ?reader, "TLS stream failed inside a tunnel; closing it");
                Poll::Ready(DirectionEnd::Failed(reader))
            }
        }
    }
}

/// Copies `from` to `to` until `from` ends, starting with what `buf` already holds; then shuts
/// `to`'s write side down (half-close). `reader` names `from`'s side; `to_upstream` says the
/// direction. With `stop`, the direction follows its frame boundaries and, once the signal
/// fired, ends with [`DirectionEnd::Stopped`] at the first boundary where it waits to read
/// (the read in flight is dropped: the tunnel is closing).
pub async fn pump<R: AsyncReadRent, W: AsyncWriteRent>(
    from: &mut R,
    to: &mut W,
    buf: &mut ReadBuf,
    flow: &Flow<'_>,
    reader: Side,
    mut stop: Option<&mut StopAtBoundary<'_>>,
) -> DirectionEnd {
    let (writer, to_upstream) = match reader {
        Side::Client => (Side::Upstream, true),
        Side::Upstream => (Side::Client, false),
    };
    loop {
        let n = buf.len();
        if n > 0 {
            if let Some(s) = stop.as_deref_mut() {
                s.frames.feed(&buf.data()[..n]);
            }
            if buf.write_prefix_to(to, n).await.is_err() {
                return DirectionEnd::Failed(writer);
            }
            flow.moved(to_upstream, n);
        }
        let read = buf.fill(from, TUNNEL_BUFFER_BYTES);
        let read = match stop.as_deref() {
            Some(s) if s.frames.at_boundary() => {
                monoio::select! {
                    r = read => r,
                    _ = s.stop.wait() => return DirectionEnd::Stopped,
                }
            }
            _ => read.await,
        };
        match read {
            Ok(0) => break,
            Ok(_) => flow.last_activity.set(Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(_) => return DirectionEnd::Failed(reader),
        }
    }
    // The source ended: pass the end on and let the other direction finish (RFC 6455 §7.1.1:
    // the backend closes the TCP connection first, after the close handshake).
    match to.shutdown().await {
        Ok(()) => DirectionEnd::Closed,
        Err(_) => DirectionEnd::Failed(writer),
    }
}
