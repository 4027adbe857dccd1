//! Phase 8, record: what a request did, counted in metrics and written to the access log.
//!
//! Owns the start of a request's record (its id from the worker's CSPRNG, the head's method,
//! host and path captured for the access-log line before the head is consumed) and its end (the
//! worker's request count and dropped-header count, the route's — or the unrouted — counters
//! and latency, and the line in the worker's access-log buffer). A request that became a
//! WebSocket tunnel is counted when the `101` is sent and logged when the tunnel closes
//! ([`upgraded`], [`tunnel_closed`]). Writes only this worker's slots: plain loads and
//! stores, no locked adds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::access_log::line::{capture_head, write_line, AddrText, LineContext, TunnelLine};
use crate::metrics::{Protocol, RequestRecord, RouteMetrics};
use crate::proxy::context::RequestCtx;
use crate::snapshot::{Route, Snapshot};
use crate::worker::Worker;

/// Starts the record of the request in `ctx`: draws the request id and, when the access log is
/// on, captures the head's fields for the line.
pub fn begin(worker: &Worker, ctx: &mut RequestCtx<'_>) {
    worker.rng.borrow_mut().fill_jti(&mut ctx.rec.request_id);
    ctx.logged = ctx.snap.config.access_log.is_some();
    if !ctx.logged {
        return;
    }
    let data = ctx.data();
    let host = ctx.head.host.map_or(&b""[..], |h| h.get(data));
    capture_head(
        &mut ctx.bufs.log_head,
        ctx.head.method_span.get(data),
        host,
        ctx.head.path.get(data),
    );
}

/// [`begin`] for a head refused before it could be parsed (400, 408, 414, 431, 505) on a
/// connection speaking `protocol`: a new record with the bytes received so far as `bytes_in`,
/// and whether a line will be written (its method, host and path empty, since nothing of the
/// head can be trusted).
pub fn begin_unparsed(
    worker: &Worker,
    snap: &Snapshot,
    protocol: Protocol,
    log_head: &mut Vec<u8>,
    received: usize,
) -> (RequestRecord, bool) {
    let mut rec = RequestRecord {
        protocol,
        ..RequestRecord::default()
    };
    rec.reset(received);
    worker.rng.borrow_mut().fill_jti(&mut rec.request_id);
    if snap.config.access_log.is_none() {
        return (rec, false);
    }
    capture_head(log_head, b"", b"", b"");
    (rec, true)
}

/// Records a request that ended: its counters, and its access-log line when `logged`.
/// `started` is when its head was complete; `client_ip` the peer's address as text.
pub fn finish(
    worker: &Worker,
    snap: &Snapshot,
    rec: &RequestRecord,
    log_head: &[u8],
    logged: bool,
    client_ip: &[u8],
    started: Instant,
) {
    let elapsed = started.elapsed();
    let route = count(worker, snap, rec, elapsed);
    if !logged {
        return;
    }
    let endpoint = rec.endpoint.map(AddrText::new);
    let line = LineContext {
        time: SystemTime::now(),
        elapsed,
        worker: worker.id,
        client_ip,
        route: match route {
            Some(r) => Some(r.id.as_str()),
            None if rec.token_service => Some(crate::metrics::TOKEN_SERVICE),
            None => None,
        },
        upstream: endpoint.as_ref().map(AddrText::as_str),
        tunnel: None,
    };
    append(worker, &line, rec, log_head);
}

/// What the access-log line of a request that became a WebSocket tunnel needs when the tunnel
/// ends. Owned, so that the tunnel holds neither the request's snapshot (a reload in the
/// meantime frees the old one) nor the connection's buffers.
#[derive(Debug)]
pub struct UpgradeRecord {
    /// The request's record (status 101).
    pub rec: RequestRecord,
    /// Its captured method, host and path (empty when the access log is off).
    pub log_head: Vec<u8>,
    /// A line is written when the tunnel closes.
    pub logged: bool,
    /// From the complete head to the `101` sent.
    pub handshake: Duration,
    /// The route's id.
    pub route: Box<str>,
    /// The endpoint the backend answered from.
    pub upstream: Option<std::net::SocketAddr>,
    /// The route's counters (tunnel results and bytes).
    pub metrics: Arc<RouteMetrics>,
}

/// Records a request that the backend switched to WebSocket: counted now like any request
/// (status 101, the handshake's duration, so tunnels do not stretch the latency histogram);
/// its access-log line waits for the tunnel's end ([`tunnel_closed`]). Takes `log_head`.
pub fn upgraded(
    worker: &Worker,
    snap: &Snapshot,
    rec: &RequestRecord,
    log_head: &mut Vec<u8>,
    logged: bool,
    started: Instant,
) -> Option<UpgradeRecord> {
    let handshake = started.elapsed();
    let route = count(worker, snap, rec, handshake)?;
    Some(UpgradeRecord {
        rec: rec.clone(),
        log_head: if logged {
            std::mem::take(log_head)
        } else {
            Vec::new()
        },
        logged,
        handshake,
        route: route.id.as_str().into(),
        upstream: rec.endpoint,
        metrics: route.metrics.clone(),
    })
}

/// Writes the access-log line of a tunnel that ended (when the access log is on).
pub fn tunnel_closed(worker: &Worker, up: &UpgradeRecord, client_ip: &[u8], tunnel: TunnelLine) {
    if !up.logged {
        return;
    }
    let endpoint = up.upstream.map(AddrText::new);
    let line = LineContext {
        time: SystemTime::now(),
        elapsed: up.handshake,
        worker: worker.id,
        client_ip,
        route: Some(&up.route),
        upstream: endpoint.as_ref().map(AddrText::as_str),
        tunnel: Some(tunnel),
    };
    append(worker, &line, &up.rec, &up.log_head);
}

/// Counts a request in the worker's and its route's counters; returns its route.
fn count<'s>(
    worker: &Worker,
    snap: &'s Snapshot,
    rec: &RequestRecord,
    elapsed: Duration,
) -> Option<&'s Route> {
    let stats = worker.stats();
    let n = stats.requests.load(Ordering::Relaxed);
    stats.requests.store(n + 1, Ordering::Relaxed);
    if rec.underscore_dropped > 0 {
        let d = &stats.underscore_headers_dropped;
        let n = d.load(Ordering::Relaxed);
        d.store(n + u64::from(rec.underscore_dropped), Ordering::Relaxed);
    }
    let route = rec.route.and_then(|i| snap.routes.get(i));
    let registry = &worker.shared.metrics;
    let metrics = match route {
        Some(r) => &r.metrics,
        None if rec.token_service => registry.token_service(),
        None => registry.unrouted(),
    };
    metrics.request(worker.id, rec.protocol, rec.status, elapsed);
    if let Some(code) = rec.grpc_status {
        metrics.grpc_call(worker.id, code);
    }
    route
}

/// Appends a line to the worker's access-log buffer (handed over at once while draining).
fn append(worker: &Worker, line: &LineContext<'_>, rec: &RequestRecord, log_head: &[u8]) {
    let sink = &worker.shared.access_log;
    worker
        .access_log
        .append(sink, |out| write_line(out, line, rec, log_head));
    if worker.is_draining() {
        worker.access_log.flush(sink);
    }
}
