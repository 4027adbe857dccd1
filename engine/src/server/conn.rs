//! One HTTP/1.1 client connection: reads request heads under their deadlines and runs each
//! request through the phases, for as long as the connection is kept alive.
//!
//! Owns the rules for reading a head: the idle deadline between requests, the absolute deadline
//! for a head once its first byte arrived (408), the size limits (431/414, from the parser) and
//! closing idle connections when draining starts. HTTP/1.1 runs one request at a time: the
//! connection copies each parsed head out of its read buffer into the same [`OwnedHead`] and
//! lends it and the same [`RequestBuffers`] to each request's context (no allocation per
//! request), records each request when it ends, and goes on as the [`Outcome`] says — for
//! [`Outcome::Upgrade`], by running the WebSocket tunnel the connection became.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use monoio::io::Split;

use crate::http1::{parse_request_head, RequestError, RequestHead};
use crate::io::Stream;
use crate::metrics::Protocol;
use crate::proxy::answer::answer_unparsed;
use crate::proxy::client::ClientConn;
use crate::proxy::context::Upgraded;
use crate::proxy::context::{Outcome, RequestBuffers, RequestCtx};
use crate::proxy::error::ProxyError;
use crate::proxy::head::OwnedHead;
use crate::proxy::record::UpgradeRecord;
use crate::proxy::{phases, record};
use crate::snapshot::RuntimeLimits;
use crate::tunnel;
use crate::tunnel::admission::Admission;
use crate::tunnel::TunnelLimits;
use crate::worker::{ConnGuard, Worker};

/// Capacity an idle keep-alive connection keeps (memory per idle connection).
const READ_BUF_IDLE: usize = 4096;

/// Outcome of waiting for a request head.
enum HeadRead {
    /// A complete head, copied into the connection's [`OwnedHead`] and consumed from `rbuf`.
    Head(RequestHead),
    /// The client went away, stayed idle too long, or draining started while idle.
    Closed,
    /// The head is invalid or too slow: answer this and close.
    Reject(ProxyError),
}

/// Serves one client connection until it closes. `client` is the plain or TLS stream (already
/// past its handshake) over the socket `socket`; `proto` is the scheme the client sees (`http`
/// or `https`); `allow_underscores` is the listener's `gateway.underscores_in_headers` at
/// accept time. A request the backend switched to WebSocket turns the connection into a
/// tunnel (`crate::tunnel`), which ends it.
pub async fn serve_client<C: Stream + Split>(
    guard: ConnGuard,
    client: C,
    socket: RawFd,
    peer: SocketAddr,
    proto: &'static [u8],
    allow_underscores: bool,
) {
    let conn = ClientConn::new(client, peer, proto, allow_underscores);
    serve_upgradable(guard.worker(), conn, socket).await;
}

/// [`serve_conn`], then the tunnel when the connection became one.
pub async fn serve_upgradable<C: Stream + Split>(
    worker: &Rc<Worker>,
    conn: ClientConn<C>,
    socket: RawFd,
) {
    if let Some(t) = serve_conn(worker, conn).await {
        tunnel::run(
            worker,
            t.conn,
            socket,
            t.upgraded,
            t.record,
            t.admission,
            t.limits,
        )
        .await;
    }
}

/// A connection whose request the backend switched to WebSocket (a verified 101): what the
/// tunnel needs. The request was counted; its access-log line is written when the tunnel ends.
#[derive(Debug)]
pub struct BecameTunnel<C> {
    /// The client connection, with any bytes it already sent behind the upgrade request.
    pub conn: ClientConn<C>,
    /// The upstream connection and the bytes it sent behind its 101.
    pub upgraded: Upgraded,
    /// The upgrade request's record, for the tunnel's line.
    pub record: UpgradeRecord,
    /// What admitted the upgrade, checked again while the tunnel is open.
    pub admission: Admission,
    /// The request snapshot's WebSocket limits.
    pub limits: TunnelLimits,
}

/// The connection loop of [`serve_client`] over a connection already set up: its read buffer
/// may hold bytes read before (the bytes sniffed for the HTTP/2 preface). Returns the
/// connection when a request made it a WebSocket tunnel.
pub async fn serve_conn<C: Stream>(
    worker: &Rc<Worker>,
    mut conn: ClientConn<C>,
) -> Option<BecameTunnel<C>> {
    let mut bufs = RequestBuffers::new();
    let mut req = OwnedHead::new();
    loop {
        let limits = worker.snapshot().limits;
        match read_head(worker, &mut conn, &mut req, &limits).await {
            HeadRead::Head(head) => {
                // Loaded once the head is in, so a request that waited on an idle keep-alive
                // connection runs on the config in force when it arrived.
                let snap = worker.snapshot();
                let started = Instant::now();
                let mut ctx = RequestCtx::new(&snap, head, &req, &mut bufs, started);
                ctx.rec.protocol = Protocol::Http11;
                record::begin(worker, &mut ctx);
                let outcome = phases::handle_request(worker, &mut conn, &mut ctx).await;
                if let Outcome::Upgrade(upgraded) = outcome {
                    let limits = TunnelLimits {
                        idle_timeout: ctx.snap.limits.websocket_idle_timeout,
                        max_lifetime: ctx.snap.limits.websocket_max_lifetime,
                    };
                    let key = ctx.admitted.key.map(|k| k.key().client_id.as_str());
                    let admission = ctx.route.map(|r| Admission::new(r, key));
                    let logged = ctx.logged;
                    let record = record::upgraded(
                        worker,
                        &snap,
                        &ctx.rec,
                        &mut ctx.bufs.log_head,
                        logged,
                        started,
                    );
                    // The tunnel holds neither the request's snapshot nor its buffers.
                    drop(ctx);
                    drop(snap);
                    return record
                        .zip(admission)
                        .map(|(record, admission)| BecameTunnel {
                            conn,
                            upgraded: *upgraded,
                            record,
                            admission,
                            limits,
                        });
                }
                record::finish(
                    worker,
                    &snap,
                    &ctx.rec,
                    &ctx.bufs.log_head,
                    ctx.logged,
                    conn.client.client_ip(),
                    started,
                );
                match outcome {
                    Outcome::KeepAlive => conn.rbuf.shrink_idle(READ_BUF_IDLE),
                    Outcome::Close | Outcome::Upgrade(_) => break,
                }
            }
            HeadRead::Closed => break,
            HeadRead::Reject(e) => {
                let snap = worker.snapshot();
                let started = Instant::now();
                let (mut rec, logged) = record::begin_unparsed(
                    worker,
                    &snap,
                    Protocol::Http11,
                    &mut bufs.log_head,
                    conn.rbuf.len(),
                );
                answer_unparsed(&mut conn, &mut rec, &e, limits.client_header_timeout, false).await;
                record::finish(
                    worker,
                    &snap,
                    &rec,
                    &bufs.log_head,
                    logged,
                    conn.client.client_ip(),
                    started,
                );
                break;
            }
        }
    }
    let _ = conn.stream.shutdown().await;
    None
}

/// Waits for the next complete request head on the connection; once parsed, it is copied into
/// `req` and consumed from the read buffer.
async fn read_head<C: Stream>(
    worker: &Worker,
    conn: &mut ClientConn<C>,
    req: &mut OwnedHead,
    limits: &RuntimeLimits,
) -> HeadRead {
    // Room for the whole head plus one byte, so an over-long head is seen as such.
    let cap = limits.head.max_head_bytes + 1;
    let mut deadline: Option<Instant> = None;
    loop {
        if !conn.rbuf.is_empty() {
            match parse_request_head(conn.rbuf.data(), &limits.head, req.fields_mut()) {
                Ok(Some(head)) => {
                    req.take_bytes(&head, conn.rbuf.data());
                    conn.rbuf.consume(head.head_len);
                    return HeadRead::Head(head);
                }
                Ok(None) => {}
                Err(e) => return reject(&e),
            }
            if conn.rbuf.len() >= cap {
                return reject(&RequestError::HeadTooLarge);
            }
        }
        let idle = conn.rbuf.is_empty() && deadline.is_none();
        let res = if idle {
            if worker.is_draining() {
                return HeadRead::Closed;
            }
            monoio::select! {
                r = conn.rbuf.fill_timeout(&mut conn.stream, cap, limits.keepalive_timeout) => r,
                _ = worker.drain.wait() => return HeadRead::Closed,
            }
        } else {
            let d = *deadline.get_or_insert_with(|| Instant::now() + limits.client_header_timeout);
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return HeadRead::Reject(ProxyError::head_timeout());
            }
            conn.rbuf.fill_timeout(&mut conn.stream, cap, left).await
        };
        match res {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + limits.client_header_timeout);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !idle => {
                return HeadRead::Reject(ProxyError::head_timeout());
            }
            Err(_) => return HeadRead::Closed,
        }
    }
}

fn reject(e: &RequestError) -> HeadRead {
    HeadRead::Reject(ProxyError::from_head(e))
}
