//! Getting an upstream connection for a route: a pooled one when possible, else a new one to
//! the next target in round-robin order, skipping targets that refused recently.
//!
//! Owns the connect timeout, the "down" marking of refusing targets and the check made before
//! a pooled connection is reused: a non-blocking peek that drops connections the upstream has
//! closed or on which it sent bytes nobody asked for (a response is never read from such a
//! connection; hardening.md "Connection reuse").

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use monoio::net::TcpStream;

use crate::io::ReadBuf;
use crate::server::worker::Worker;
use crate::snapshot::Snapshot;
use crate::upstream::pool::UpstreamConn;

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
}

/// Returns a connection for route `route_idx` and the index of the target it goes to. With
/// `fresh`, the pool is not used (the retry of a request whose pooled connection failed).
pub async fn connect(
    worker: &Worker,
    snap: &Snapshot,
    route_idx: usize,
    fresh: bool,
) -> Result<(UpstreamConn<TcpStream>, usize), ConnectError> {
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
                worker
                    .pool
                    .borrow_mut()
                    .checkout(route.target_addrs[first], now, peer_is_quiet)
            };
            match pooled {
                Some(conn) => Ok((conn, first)),
                None => connect_in_order(worker, snap, route_idx, &order).await,
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
) -> Result<(UpstreamConn<TcpStream>, usize), ConnectError> {
    let route = &snap.routes[route_idx];
    let mut last = ConnectError::Refused;
    for &idx in order {
        let addr = route.target_addrs[idx];
        let attempt = monoio::time::timeout(
            snap.limits.upstream_connect_timeout,
            TcpStream::connect_addr(addr),
        )
        .await;
        match attempt {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                worker.selector.borrow_mut().mark_up(addr);
                let conn = UpstreamConn {
                    stream,
                    buf: ReadBuf::with_capacity(UPSTREAM_READ_BUF),
                    reused: false,
                    addr,
                };
                return Ok((conn, idx));
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %route.targets[idx].url, error = %e, "upstream connect failed");
                route.metrics.connect_error(worker.id);
                worker.selector.borrow_mut().mark_down(addr, Instant::now());
                last = ConnectError::Refused;
            }
            Err(_) => {
                tracing::debug!(target = %route.targets[idx].url, "upstream connect timed out");
                route.metrics.connect_error(worker.id);
                worker.selector.borrow_mut().mark_down(addr, Instant::now());
                last = ConnectError::TimedOut;
            }
        }
    }
    Err(last)
}

/// True when an idle pooled connection has nothing to read and is not closed: a
/// `recv(MSG_PEEK | MSG_DONTWAIT)` that would block.
fn peer_is_quiet(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: `fd` is a valid open socket owned by `stream` for the duration of the call, and
    // `byte` is a writable 1-byte buffer; MSG_PEEK leaves the data in the socket.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}
