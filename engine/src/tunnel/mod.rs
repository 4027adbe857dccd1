//! WebSocket tunnels: what a client connection becomes after the backend answered a verified
//! `101` ([`Outcome::Upgrade`](crate::proxy::context::Outcome::Upgrade)).
//!
//! Owns the tunnel's life: bytes copied both ways through two bounded buffers
//! ([`pump::TUNNEL_BUFFER_BYTES`] each), whatever the transports (plain or TLS on either side);
//! half-close passed on; its admission checked again on every reload and when the admitting
//! key expires ([`admission`]); the end — both directions over, one side failed,
//! `limits.websocket_idle_timeout` without a byte either way, the end of `drain_timeout` once
//! draining started, the admission withdrawn, or `limits.websocket_max_lifetime` — with both
//! sockets closed (a withdrawn admission or the lifetime bound first sends the client a close
//! frame, 1008 or 1001, when the backend-to-client stream is between two frames); the upstream connection never goes back
//! to the pool (it is dropped here). Counts: the open-tunnel gauge while it runs, its result
//! and bytes per route, and its access-log line when it ends (duration, bytes both ways, who
//! closed). It does not read WebSocket frames: what the backend and the client say to each
//! other after the handshake is theirs.
//!
//! Layering: called by `server::conn` (above it); imports `proxy/` (the connection, the
//! upgrade, the record) and `worker/` from below. Nothing below imports it.

pub mod admission;
pub mod panic_guard;
pub mod pump;

use std::cell::Cell;
use std::future::poll_fn;
use std::os::fd::RawFd;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::io::{Split, Splitable};
use torii_protocol::websocket::{
    close_frame, FrameBoundary, CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION,
};

use crate::access_log::line::TunnelLine;
use crate::io::{write_all_timeout, Stream};
use crate::metrics::TunnelResult;
use crate::proxy::client::ClientConn;
use crate::proxy::context::Upgraded;
use crate::proxy::record::{self, UpgradeRecord};
use crate::secure::unix_now;
use crate::worker::signal::Signal;
use crate::worker::Worker;
use admission::{Admission, Withdrawn};
use pump::{pump, DirectionEnd, Flow, Side, StopAtBoundary};

/// Once a tunnel must end (admission withdrawn, lifetime over), how long the backend-to-client
/// direction gets to reach a frame boundary for the close frame; after it, both sockets are
/// closed without one.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// How long writing the close frame to the client may take.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// A reload (or the key's expiry) withdrew the admission.
    Withdrawn(Withdrawn),
    /// `limits.websocket_max_lifetime` is over.
    MaxLifetime,
}

impl ClosedBy {
    /// The access-log value (`closed_by`).
    pub fn label(self) -> &'static str {
        match self {
            ClosedBy::Client => "client",
            ClosedBy::Upstream => "upstream",
            ClosedBy::IdleTimeout => "idle_timeout",
            ClosedBy::Drain => "drain",
            ClosedBy::Withdrawn(_) => "revoked",
            ClosedBy::MaxLifetime => "max_lifetime",
        }
    }

    /// The close frame the client gets, if any: code and reason.
    fn close(self) -> Option<(u16, &'static str)> {
        match self {
            ClosedBy::Withdrawn(w) => Some((CLOSE_POLICY_VIOLATION, w.label())),
            ClosedBy::MaxLifetime => Some((CLOSE_GOING_AWAY, "max_lifetime")),
            _ => None,
        }
    }

    fn result(self) -> TunnelResult {
        match self {
            ClosedBy::Client => TunnelResult::ClientClosed,
            ClosedBy::Upstream => TunnelResult::UpstreamClosed,
            ClosedBy::IdleTimeout => TunnelResult::IdleTimeout,
            ClosedBy::Drain => TunnelResult::Drain,
            ClosedBy::Withdrawn(_) => TunnelResult::Revoked,
            ClosedBy::MaxLifetime => TunnelResult::MaxLifetime,
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

/// The limits a tunnel runs under, from the upgrade request's snapshot.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// `limits.websocket_idle_timeout`.
    pub idle_timeout: Duration,
    /// `limits.websocket_max_lifetime` (zero: none).
    pub max_lifetime: Duration,
}

/// Runs the tunnel between the client connection `conn` (its socket is `client_fd`; its read
/// buffer may already hold the client's first frames) and the upstream connection of
/// `upgraded` (its buffer may hold the backend's), until it ends; then closes both and writes
/// the record. `admission` is checked again at once (a reload may have come since the
/// upgrade), on every reload and when the admitting key expires.
pub async fn run<C: Stream + Split>(
    worker: &Worker,
    conn: ClientConn<C>,
    client_fd: RawFd,
    upgraded: Upgraded,
    record: UpgradeRecord,
    admission: Admission,
    limits: TunnelLimits,
) {
    let _active = ActiveGuard::new(worker);
    let started = Instant::now();
    let client_ip = conn.client.client_ip().to_vec();
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
    let stop = Signal::default();
    let why: Cell<Option<ClosedBy>> = Cell::new(None);

    let (closed_by, at_boundary) = {
        let up_dir = pump(
            &mut client_r,
            &mut upstream_w,
            &mut from_client,
            &flow,
            Side::Client,
            None,
        );
        let mut frames = StopAtBoundary {
            frames: FrameBoundary::new(),
            stop: &stop,
        };
        let down_dir = pump(
            &mut upstream_r,
            &mut client_w,
            &mut from_upstream,
            &flow,
            Side::Upstream,
            Some(&mut frames),
        );
        monoio::select! {
            end = both_directions(up_dir, down_dir) => match end {
                Ended::By(by) => (by, false),
                Ended::Stopped => (why.get().unwrap_or(ClosedBy::Upstream), true),
            },
            _ = idle(&flow, limits.idle_timeout) => (ClosedBy::IdleTimeout, false),
            _ = drain(worker) => (ClosedBy::Drain, false),
            by = admission_ends(worker, &admission, limits.max_lifetime, &stop, &why) => (by, false),
        }
    };
    if let Some((code, reason)) = closed_by.close() {
        tracing::info!(
            route = admission.route(),
            reason,
            close_frame = at_boundary,
            "websocket tunnel closed by the gateway"
        );
        if at_boundary {
            let mut frame = close_frame(code, reason);
            // Best effort: the sockets are closed next whatever the client does.
            let _ = write_all_timeout(&mut client_w, &mut frame, CLOSE_FRAME_TIMEOUT).await;
        }
    }
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

/// How [`both_directions`] ended.
enum Ended {
    /// Both directions are over, or one failed: who closed first.
    By(ClosedBy),
    /// The backend-to-client direction stopped at a frame boundary, as asked.
    Stopped,
}

/// Polls both directions until both ended, or one failed (then at once), or the
/// backend-to-client direction stopped at a frame boundary (then at once). Says who closed
/// first.
async fn both_directions(
    up_dir: impl std::future::Future<Output = DirectionEnd>,
    down_dir: impl std::future::Future<Output = DirectionEnd>,
) -> Ended {
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
                if end == DirectionEnd::Stopped {
                    return Poll::Ready(Ended::Stopped);
                }
                down_end = Some(end);
                first.get_or_insert(side_closed(end, Side::Upstream));
            }
        }
        let failed = matches!(up_end, Some(DirectionEnd::Failed(_)))
            || matches!(down_end, Some(DirectionEnd::Failed(_)));
        match first {
            Some(by) if failed || (up_end.is_some() && down_end.is_some()) => {
                Poll::Ready(Ended::By(by))
            }
            _ => Poll::Pending,
        }
    })
    .await
}

/// Who ended a direction whose source is `reader`.
fn side_closed(end: DirectionEnd, reader: Side) -> ClosedBy {
    let side = match end {
        // Only the backend-to-client direction stops, and `both_directions` returns at once.
        DirectionEnd::Closed | DirectionEnd::Stopped => reader,
        DirectionEnd::Failed(side) => side,
    };
    match side {
        Side::Client => ClosedBy::Client,
        Side::Upstream => ClosedBy::Upstream,
    }
}

/// Completes once the tunnel must end for its admission or its lifetime: says why (kept in
/// `why`), fires `stop` so the backend-to-client direction stops at its next frame boundary,
/// and gives it [`STOP_GRACE`] to do so.
async fn admission_ends(
    worker: &Worker,
    admission: &Admission,
    max_lifetime: Duration,
    stop: &Signal,
    why: &Cell<Option<ClosedBy>>,
) -> ClosedBy {
    let by = watch_admission(worker, admission, max_lifetime).await;
    why.set(Some(by));
    stop.fire();
    monoio::time::sleep(STOP_GRACE).await;
    by
}

/// Checks the admission now, then again on every reload the worker notices and when the
/// admitting key expires; completes when it no longer holds or the lifetime is over. Holds no
/// snapshot while it waits.
async fn watch_admission(
    worker: &Worker,
    admission: &Admission,
    max_lifetime: Duration,
) -> ClosedBy {
    let lifetime_end = (!max_lifetime.is_zero()).then(|| Instant::now() + max_lifetime);
    loop {
        let seen = worker.reloaded.count();
        let now = unix_now();
        let expiry = {
            let snap = worker.snapshot();
            if let Err(w) = admission.check(&snap, now) {
                return ClosedBy::Withdrawn(w);
            }
            admission.key_expiry(&snap)
        };
        // Whole seconds, at least one: the check above uses Unix seconds.
        let expires_in = expiry.map(|t| Duration::from_secs(t.saturating_sub(now).max(1)));
        monoio::select! {
            _ = worker.reloaded.wait_past(seen) => {}
            _ = sleep_or_never(expires_in) => {}
            _ = sleep_or_never(lifetime_end.map(|t| t.saturating_duration_since(Instant::now()))) => {
                return ClosedBy::MaxLifetime;
            }
        }
    }
}

/// Sleeps for `d`, or forever when `None`.
async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => monoio::time::sleep(d).await,
        None => std::future::pending().await,
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
