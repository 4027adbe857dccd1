//! WebSocket tunnels: what a client connection becomes after the backend answered a verified
//! `101` ([`Outcome::Upgrade`](crate::proxy::context::Outcome::Upgrade)).
//!
//! Owns the tunnel's life: bytes copied both ways through two bounded buffers
//! ([`pump::TUNNEL_BUFFER_BYTES`] each), whatever the transports (plain or TLS on either side);
//! half-close passed on; the end — both directions over, one side failed,
//! `limits.websocket_idle_timeout` without a byte either way, or the end of `drain_timeout`
//! once draining started — with both sockets closed; the upstream connection never goes back
//! to the pool (it is dropped here). Counts: the open-tunnel gauge while it runs, its result
//! and bytes per route, and its access-log line when it ends (duration, bytes both ways, who
//! closed). It does not read WebSocket frames: what the backend and the client say to each
//! other after the handshake is theirs.
//!
//! Layering: called by `server::conn` (above it); imports `proxy/` (the connection, the
//! upgrade, the record) and `worker/` from below. Nothing below imports it.

pub mod panic_guard;
pub mod pump;

use std::future::poll_fn;
use std::os::fd::RawFd;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::io::{Split, Splitable};

use crate::access_log::line::TunnelLine;
use crate::io::Stream;
use crate::metrics::TunnelResult;
use crate::proxy::client::ClientConn;
use crate::proxy::context::Upgraded;
use crate::proxy::record::{self, UpgradeRecord};
use crate::worker::Worker;
use pump::{pump, DirectionEnd, Flow, Side};

/// Who ended a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The client closed (or reset, or failed) its side first.
    Client,
    /// The backend did.
    Upstream,
    /// No byte either way for `limits.websocket_idle_timeout`.
    IdleTimeout,
    /// Draining, and `gateway.drain_timeout` is over.
    Drain,
}

impl ClosedBy {
    /// The access-log value (`closed_by`).
    pub fn label(self) -> &'static str {
        match self {
            ClosedBy::Client => "client",
            ClosedBy::Upstream => "upstream",
            ClosedBy::IdleTimeout => "idle_timeout",
            ClosedBy::Drain => "drain",
        }
    }

    fn result(self) -> TunnelResult {
        match self {
            ClosedBy::Client => TunnelResult::ClientClosed,
            ClosedBy::Upstream => TunnelResult::UpstreamClosed,
            ClosedBy::IdleTimeout => TunnelResult::IdleTimeout,
            ClosedBy::Drain => TunnelResult::Drain,
        }
    }
}

/// Counts a tunnel in `torii_websocket_tunnels_active` for as long as it lives.
struct ActiveGuard<'w>(&'w Worker);

impl<'w> ActiveGuard<'w> {
    fn new(worker: &'w Worker) -> Self {
        worker
            .stats()
            .websocket_tunnels
            .fetch_add(1, Ordering::Relaxed);
        Self(worker)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0
            .stats()
            .websocket_tunnels
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the tunnel between the client connection `conn` (its socket is `client_fd`; its read
/// buffer may already hold the client's first frames) and the upstream connection of
/// `upgraded` (its buffer may hold the backend's), until it ends; then closes both and writes
/// the record. `idle_timeout` is `limits.websocket_idle_timeout` of the request's snapshot.
pub async fn run<C: Stream + Split>(
    worker: &Worker,
    conn: ClientConn<C>,
    client_fd: RawFd,
    upgraded: Upgraded,
    record: UpgradeRecord,
    idle_timeout: Duration,
) {
    let _active = ActiveGuard::new(worker);
    let started = Instant::now();
    let client_ip = conn.client_ip().to_vec();
    let ClientConn {
        stream: client,
        rbuf: mut from_client,
        ..
    } = conn;
    let Upgraded { up, slot } = upgraded;
    let upstream_fd = up.stream.raw_fd();
    let mut from_upstream = up.buf;
    let (mut client_r, mut client_w) = client.into_split();
    let (mut upstream_r, mut upstream_w) = up.stream.into_split();
    let flow = Flow::new(&record.metrics, worker.id);

    let closed_by = {
        let up_dir = pump(
            &mut client_r,
            &mut upstream_w,
            &mut from_client,
            &flow,
            Side::Client,
        );
        let down_dir = pump(
            &mut upstream_r,
            &mut client_w,
            &mut from_upstream,
            &flow,
            Side::Upstream,
        );
        monoio::select! {
            by = both_directions(up_dir, down_dir) => by,
            _ = idle(&flow, idle_timeout) => ClosedBy::IdleTimeout,
            _ = drain(worker) => ClosedBy::Drain,
        }
    };
    // Whatever is still in flight (a read waiting on a quiet peer, a write to a peer that does
    // not read) completes now, and both peers see the connection end.
    abort(client_fd);
    abort(upstream_fd);
    drop((client_r, client_w, upstream_r, upstream_w));
    drop(slot);
    record.metrics.tunnel(worker.id, closed_by.result());
    let line = TunnelLine {
        duration: started.elapsed(),
        bytes_in: flow.to_upstream.get(),
        bytes_out: flow.to_client.get(),
        closed_by: closed_by.label(),
    };
    tracing::debug!(
        route = %record.route,
        closed_by = line.closed_by,
        bytes_in = line.bytes_in,
        bytes_out = line.bytes_out,
        "websocket tunnel closed"
    );
    record::tunnel_closed(worker, &record, &client_ip, line);
}

/// Polls both directions until both ended, or one failed (then at once). Says who closed
/// first.
async fn both_directions(
    up_dir: impl std::future::Future<Output = DirectionEnd>,
    down_dir: impl std::future::Future<Output = DirectionEnd>,
) -> ClosedBy {
    let mut up_dir = pin!(up_dir);
    let mut down_dir = pin!(down_dir);
    let mut up_end: Option<DirectionEnd> = None;
    let mut down_end: Option<DirectionEnd> = None;
    let mut first: Option<ClosedBy> = None;
    poll_fn(|cx| {
        if up_end.is_none() {
            if let Poll::Ready(end) = Flow::poll_pump(up_dir.as_mut(), cx, Side::Client) {
                up_end = Some(end);
                first.get_or_insert(side_closed(end, Side::Client));
            }
        }
        if down_end.is_none() {
            if let Poll::Ready(end) = Flow::poll_pump(down_dir.as_mut(), cx, Side::Upstream) {
                down_end = Some(end);
                first.get_or_insert(side_closed(end, Side::Upstream));
            }
        }
        let failed = matches!(up_end, Some(DirectionEnd::Failed(_)))
            || matches!(down_end, Some(DirectionEnd::Failed(_)));
        match first {
            Some(by) if failed || (up_end.is_some() && down_end.is_some()) => Poll::Ready(by),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Who ended a direction whose source is `reader`.
fn side_closed(end: DirectionEnd, reader: Side) -> ClosedBy {
    let side = match end {
        DirectionEnd::Closed => reader,
        DirectionEnd::Failed(side) => side,
    };
    match side {
        Side::Client => ClosedBy::Client,
        Side::Upstream => ClosedBy::Upstream,
    }
}

/// Completes when no byte moved either way for `timeout`.
async fn idle(flow: &Flow<'_>, timeout: Duration) {
    loop {
        let deadline = flow.last_activity.get() + timeout;
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        monoio::time::sleep(deadline - now).await;
    }
}

/// Completes at the end of the drain: `gateway.drain_timeout` after draining started.
async fn drain(worker: &Worker) {
    worker.drain.wait().await;
    let deadline = worker
        .shared
        .drain_deadline()
        .unwrap_or_else(|| Instant::now() + worker.snapshot().config.gateway.drain_timeout);
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        monoio::time::sleep(left).await;
    }
}

/// Shuts a socket down both ways: a read or write of it still in flight completes, and the
/// peer sees the end (the descriptor is closed when its stream is dropped).
fn abort(fd: RawFd) {
    // SAFETY: `fd` belongs to a stream the caller still owns (dropped after this call), so
    // it is open and is this tunnel's socket; shutdown does not close it.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}
