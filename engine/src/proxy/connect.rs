//! Getting a connection to one upstream endpoint: a pooled one when possible, else a new one
//! (opened by `upstream::open`, which the health checker shares).
//! Which endpoint is `upstream::select`'s choice and what happens on failure (another
//! endpoint, or the error) is `proxy::upstream_call`'s.
//!
//! Owns the connect timeout (TCP connect plus, for `https://` targets, the TLS handshake), the
//! "down" marking of refusing targets and the check made before a pooled connection is reused:
//! a non-blocking peek that drops connections the upstream has closed or, for plain ones, on
//! which it sent bytes nobody asked for (a response is never read from such a connection;
//! docs/security.md §5). An idle TLS connection may legitimately hold TLS records
//! (a session ticket), so for TLS only a closed socket disqualifies it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::TargetProtocol;
use crate::io::ReadBuf;
use crate::snapshot::{Route, Target};
use crate::tls::stream::UpStream;
use crate::upstream::group::Endpoint;
use crate::upstream::h2_client::{open_h2, Opened, StreamSlot};
use crate::upstream::open::{open, OpenError};
use crate::upstream::pool::UpstreamConn;
use crate::worker::Worker;

/// Initial read-buffer capacity of a new upstream connection.
const UPSTREAM_READ_BUF: usize = 8 * 1024;

/// Why no upstream connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The endpoint refused or reset the connection (502).
    Refused,
    /// The endpoint did not answer within the connect timeout (504).
    TimedOut,
    /// The route has no endpoint left to try.
    NoTarget,
    /// The TLS handshake with an `https://` target failed (certificate not trusted, wrong
    /// name, protocol error) (502).
    Tls,
}

/// Returns a connection to endpoint `endpoint` (of target `target`) within `connect_timeout`:
/// a pooled one unless `fresh` (the retry of a request whose pooled connection failed), else a
/// new one. A refusal or a timeout marks the address down for this worker
/// (`Selector::mark_down`); a TLS failure does not (the endpoint answers, it cannot be trusted).
pub async fn connect(
    worker: &Worker,
    route: &Route,
    endpoint: &Endpoint,
    connect_timeout: Duration,
    fresh: bool,
) -> Result<UpstreamConn<UpStream>, ConnectError> {
    let Some(target) = route.targets.get(endpoint.target) else {
        return Err(ConnectError::NoTarget);
    };
    let addr = endpoint.state.addr;
    if !fresh {
        let pooled = worker.pool.borrow_mut().checkout(
            addr,
            target.pool_id(),
            Instant::now(),
            peer_is_quiet,
        );
        if let Some(conn) = pooled {
            return Ok(conn);
        }
    }
    // Boxed: the opening future (TCP connect + TLS handshake under a timeout) is ~3 KB, and
    // inline it would be part of, and copied with, every request's future although the
    // steady state only takes pooled connections.
    Box::pin(open_new(worker, route, target, addr, connect_timeout)).await
}

/// Opens a new connection to `addr` for `target`.
async fn open_new(
    worker: &Worker,
    route: &Route,
    target: &Target,
    addr: SocketAddr,
    connect_timeout: Duration,
) -> Result<UpstreamConn<UpStream>, ConnectError> {
    let opened = monoio::time::timeout(connect_timeout, open(addr, target.tls.as_ref())).await;
    let stream = judge(worker, route, target, addr, opened)?;
    Ok(UpstreamConn {
        stream,
        buf: ReadBuf::with_capacity(UPSTREAM_READ_BUF),
        reused: false,
        addr,
        pool_id: target.pool_id(),
    })
}

/// A handle on the worker's HTTP/2 connection to endpoint `addr` of `target` (an `h2c`, `h2`
/// or `auto` target): the live one, else a new one opened within `connect_timeout` (its
/// refusal or timeout marks the address down, as for HTTP/1.1). `Ok(None)`: the `auto`
/// target's ALPN chose HTTP/1.1 (remembered for the endpoint: the caller speaks HTTP/1.1).
/// A new connection is opened as well when every live one is at the server's stream limit
/// (`H2Clients::sender`). The stream's slot comes with the handle.
pub async fn connect_h2(
    worker: &Worker,
    route: &Route,
    target: &Target,
    addr: SocketAddr,
    connect_timeout: Duration,
    max_header_list: usize,
) -> Result<Option<(h2::client::SendRequest<bytes::Bytes>, StreamSlot)>, ConnectError> {
    let pool_id = target.pool_id();
    if let Some(taken) = worker.h2_clients.borrow_mut().sender(addr, pool_id) {
        return Ok(Some(taken));
    }
    let negotiate = target.protocol == TargetProtocol::Auto;
    let opened = monoio::time::timeout(
        connect_timeout,
        Box::pin(open_h2(
            addr,
            target.tls.as_ref(),
            negotiate,
            max_header_list,
        )),
    )
    .await;
    let opened = judge(worker, route, target, addr, opened)?;
    let mut clients = worker.h2_clients.borrow_mut();
    if negotiate {
        clients.remember(addr, pool_id, matches!(opened, Opened::H2(_)));
    }
    match opened {
        Opened::H2(conn) => Ok(Some(clients.insert(addr, pool_id, conn))),
        Opened::Http1 => Ok(None),
    }
}

/// The outcome of opening a connection under the connect timeout: down marks, the rate-limited
/// warnings, the connect-error counter.
fn judge<T>(
    worker: &Worker,
    route: &Route,
    target: &Target,
    addr: SocketAddr,
    opened: Result<Result<T, OpenError>, monoio::time::error::Elapsed>,
) -> Result<T, ConnectError> {
    if target.protocol == TargetProtocol::Auto && !matches!(opened, Ok(Ok(_))) {
        // The endpoint may have changed what it speaks: negotiate again next time.
        worker
            .h2_clients
            .borrow_mut()
            .forget_negotiated(addr, target.pool_id());
    }
    match opened {
        Ok(Ok(conn)) => {
            worker.selector.borrow_mut().mark_up(addr);
            Ok(conn)
        }
        Ok(Err(OpenError::Tls(e))) => {
            if let Some(suppressed) = worker.admit_connect_warning(addr) {
                tracing::warn!(target = %target.url, endpoint = %addr, error = %e, suppressed, "upstream TLS handshake failed");
            }
            Err(ConnectError::Tls)
        }
        Ok(Err(OpenError::Tcp(e))) => {
            if let Some(suppressed) = worker.admit_connect_warning(addr) {
                tracing::warn!(target = %target.url, endpoint = %addr, error = %e, suppressed, "upstream connect failed");
            }
            route.metrics.connect_error(worker.id);
            worker.selector.borrow_mut().mark_down(addr, Instant::now());
            Err(ConnectError::Refused)
        }
        Err(_) => {
            if let Some(suppressed) = worker.admit_connect_warning(addr) {
                tracing::warn!(target = %target.url, endpoint = %addr, suppressed, "upstream connect timed out");
            }
            route.metrics.connect_error(worker.id);
            worker.selector.borrow_mut().mark_down(addr, Instant::now());
            Err(ConnectError::TimedOut)
        }
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
