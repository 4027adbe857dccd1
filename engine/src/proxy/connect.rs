//! Getting an upstream connection for a route: a pooled one when possible, else a new one to
//! the next target in round-robin order, skipping targets that refused recently.
//!
//! Owns the connect timeout (TCP connect plus, for `https://` targets, the TLS handshake), the
//! "down" marking of refusing targets and the check made before a pooled connection is reused:
//! a non-blocking peek that drops connections the upstream has closed or, for plain ones, on
//! which it sent bytes nobody asked for (a response is never read from such a connection;
//! docs/security.md §5). An idle TLS connection may legitimately hold TLS records
//! (a session ticket), so for TLS only a closed socket disqualifies it.
//!
//! A target is reached at its current address: the first of its endpoints in the route's
//! endpoint set (`upstream::group`, which the `torii-dns` thread updates when the target's
//! name resolves to new addresses), else the address found at load. Pooled connections are
//! keyed by that address, so none to an address the name left is reused; requests already on
//! one finish there.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use monoio::net::TcpStream;
use monoio_rustls::TlsConnector;

use crate::io::ReadBuf;
use crate::snapshot::{Route, Snapshot, Target};
use crate::tls::stream::UpStream;
use crate::upstream::pool::UpstreamConn;
use crate::worker::Worker;

/// Initial read-buffer capacity of a new upstream connection.
const UPSTREAM_READ_BUF: usize = 8 * 1024;

/// Why no upstream connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// Every target refused or reset the connection (502).
    Refused,
    /// The last target tried did not answer within the connect timeout (504).
    TimedOut,
    /// The route has no target.
    NoTarget,
    /// The TLS handshake with an `https://` target failed (certificate not trusted, wrong
    /// name, protocol error) (502).
    Tls,
}

/// Returns a connection for route `route_idx` and the index of the target it goes to. With
/// `fresh`, the pool is not used (the retry of a request whose pooled connection failed).
pub async fn connect(
    worker: &Worker,
    snap: &Snapshot,
    route_idx: usize,
    fresh: bool,
) -> Result<(UpstreamConn<UpStream>, usize), ConnectError> {
    let route = &snap.routes[route_idx];
    let now = Instant::now();
    // The worker's order buffer, lent for this call (no allocation per request; a call that
    // finds it lent out to a concurrent connect gets an empty one).
    let mut order = std::mem::take(&mut *worker.order_buf.borrow_mut());
    worker.selector.borrow_mut().order(
        snap.version,
        route_idx,
        &route.target_addrs,
        now,
        &mut order,
    );
    let result = match order.first() {
        None => Err(ConnectError::NoTarget),
        Some(&first) => {
            let pooled = if fresh {
                None
            } else {
                let target = &route.targets[first];
                worker.pool.borrow_mut().checkout(
                    current_addr(route, first),
                    target.pool_id(),
                    now,
                    peer_is_quiet,
                )
            };
            match pooled {
                Some(conn) => Ok((conn, first)),
                // Boxed: the opening future (TCP connect + TLS handshake under a timeout) is
                // ~3 KB, and inline it would be part of, and copied with, every request's
                // future although the steady state only takes pooled connections.
                None => Box::pin(connect_in_order(worker, snap, route_idx, &order)).await,
            }
        }
    };
    *worker.order_buf.borrow_mut() = order;
    result
}

/// Opens a new connection to the first target in `order` that accepts one, marking the ones
/// that refuse or time out as down.
async fn connect_in_order(
    worker: &Worker,
    snap: &Snapshot,
    route_idx: usize,
    order: &[usize],
) -> Result<(UpstreamConn<UpStream>, usize), ConnectError> {
    let route = &snap.routes[route_idx];
    let mut last = ConnectError::Refused;
    for &idx in order {
        let target = &route.targets[idx];
        let addr = current_addr(route, idx);
        let attempt =
            monoio::time::timeout(snap.limits.upstream_connect_timeout, open(target, addr)).await;
        match attempt {
            Ok(Ok(stream)) => {
                worker.selector.borrow_mut().mark_up(addr);
                let conn = UpstreamConn {
                    stream,
                    buf: ReadBuf::with_capacity(UPSTREAM_READ_BUF),
                    reused: false,
                    addr,
                    pool_id: target.pool_id(),
                };
                return Ok((conn, idx));
            }
            Ok(Err(Opened::Tls(e))) => {
                // The target answers but cannot be trusted: not marked down (it is up), and
                // the next target is tried.
                if let Some(suppressed) = worker.admit_connect_warning(addr) {
                    tracing::warn!(target = %target.url, error = %e, suppressed, "upstream TLS handshake failed");
                }
                last = ConnectError::Tls;
            }
            Ok(Err(Opened::Tcp(e))) => {
                if let Some(suppressed) = worker.admit_connect_warning(addr) {
                    tracing::warn!(target = %target.url, error = %e, suppressed, "upstream connect failed");
                }
                route.metrics.connect_error(worker.id);
                worker.selector.borrow_mut().mark_down(addr, Instant::now());
                last = ConnectError::Refused;
            }
            Err(_) => {
                if let Some(suppressed) = worker.admit_connect_warning(addr) {
                    tracing::warn!(target = %target.url, suppressed, "upstream connect timed out");
                }
                route.metrics.connect_error(worker.id);
                worker.selector.borrow_mut().mark_down(addr, Instant::now());
                last = ConnectError::TimedOut;
            }
        }
    }
    Err(last)
}

/// Why a new connection could not be opened.
enum Opened {
    Tcp(io::Error),
    Tls(io::Error),
}

/// Where target `idx` of `route` is now: the first address of its endpoints in the route's
/// current set, else the one found at load. One lock-free load of the set.
fn current_addr(route: &Route, idx: usize) -> SocketAddr {
    let set = route.upstream.endpoints();
    set.endpoints
        .iter()
        .find(|e| e.target == idx)
        .map_or(route.targets[idx].addr, |e| e.state.addr)
}

/// TCP connect to `addr`, then the TLS handshake for an `https://` target.
async fn open(target: &Target, addr: SocketAddr) -> Result<UpStream, Opened> {
    let tcp = TcpStream::connect_addr(addr).await.map_err(Opened::Tcp)?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &target.tls else {
        return Ok(UpStream::Plain(tcp));
    };
    let fd = tcp.as_raw_fd();
    let connector = TlsConnector::from(tls.config.clone());
    match connector.connect(tls.server_name.clone(), tcp).await {
        Ok(stream) => Ok(UpStream::tls(stream, fd)),
        Err(e) => Err(Opened::Tls(io::Error::other(e.to_string()))),
    }
}

/// True when an idle pooled connection is not closed and, for a plain one, has nothing to
/// read: a `recv(MSG_PEEK | MSG_DONTWAIT)` that would block. A TLS connection may hold a
/// session ticket or another post-handshake record, which rustls reads with the next
/// response; a close_notify among them shows as an early end of the response and is handled
/// like any connection the upstream closed.
fn peer_is_quiet(stream: &UpStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: `fd` is a valid open socket owned by `stream` for the duration of the call, and
    // `byte` is a writable 1-byte buffer; MSG_PEEK leaves the data in the socket.
    let n = unsafe {
        libc::recv(
            stream.raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
    }
    n > 0 && stream.is_tls()
}
