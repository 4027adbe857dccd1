//! HTTP/2 towards upstreams: one multiplexed `h2` client connection per endpoint per worker.
//!
//! Owns [`H2Clients`], a worker's HTTP/2 connections keyed like the HTTP/1.1 pool (the
//! endpoint's address and the target's TLS identity) and, for `protocol = "auto"` targets,
//! what each endpoint's ALPN chose; and opening one ([`open_h2`]): the TCP connect, monoio's
//! poll-io form of the stream (readiness from the worker's own driver, as the server side's
//! `h2::io`), for an `h2` target the TLS handshake with `tokio-rustls` offering ALPN `h2` only
//! (`auto`: `h2` then `http/1.1`, and a server choosing HTTP/1.1 ends the opening with
//! [`Opened::Http1`]), then the `h2` client handshake with hardening settings mirroring the
//! server side's (`server::h2_conn`): a bounded header list, bounded pending-accept and
//! locally-reset streams, a bounded send buffer per stream. The connection's driver is a task spawned on
//! the worker's runtime (nothing crosses threads, no lock of ours); it marks the connection
//! closed when it ends (GOAWAY, error, the upstream closed), and the next request opens a new
//! one while streams still in flight on the old one finish on it. The driver also keeps the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS` where requests see it: a request finding every
//! connection to its endpoint at that limit opens another one (up to
//! [`MAX_CONNS_PER_ENDPOINT`]; past that, it waits for a slot on the least busy,
//! `SendRequest::ready`). Each stream holds a [`StreamSlot`] on its connection while it lives.
//!
//! **Keep-alive** [gRPC's `GRPC_ARG_KEEPALIVE_TIME_MS`, Envoy's `connection_keepalive`]: a
//! connection with no stream open sends a PING every [`PING_INTERVAL`] (a task next to the
//! driver, `h2`'s `PingPong`); one whose PING ACK does not come within [`PING_TIMEOUT`] is
//! marked closed, so new streams open a new connection instead of finding a peer that died
//! without a FIN or RST (a middlebox dropped the connection) only when a call on it times out.
//! While a stream is open its own deadlines watch the connection.
//!
//! It must not decide what is sent nor read a response: `proxy::upstream_h2` does.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use monoio::io::IntoPollIo;
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use monoio::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::tls::client::TargetTls;
use crate::upstream::open::OpenError;

/// The ALPN protocol id of HTTP/2 (RFC 9113 §3.2).
const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol id of HTTP/1.1.
const ALPN_HTTP11: &[u8] = b"http/1.1";
/// Streams the upstream may reset (or we reset) before the connection errors out: the server
/// side's bound ("Rapid Reset", CVE-2023-44487).
const MAX_LOCAL_RESETS: usize = 200;
/// Most bytes buffered for sending per stream before `poll_capacity` waits.
const MAX_SEND_BUFFER: usize = 256 * 1024;

/// How long a connection with no stream open waits between two PINGs.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// How long a PING's ACK may take before the connection is taken for dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's keep-alive PINGs: how often, and how long the ACK may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Time between two PINGs while no stream is open.
    pub interval: Duration,
    /// Longest wait for the ACK.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            interval: PING_INTERVAL,
            timeout: PING_TIMEOUT,
        }
    }
}

/// Most HTTP/2 connections a worker opens to one endpoint (each carrying the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS`); more streams wait for a slot.
pub const MAX_CONNS_PER_ENDPOINT: usize = 8;

/// One live HTTP/2 connection: a handle to open streams on it, whether its driver ended, the
/// server's stream limit and the streams open on it.
#[derive(Debug)]
struct Conn {
    send: SendRequest<Bytes>,
    closed: Rc<Cell<bool>>,
    limit: Rc<Cell<usize>>,
    streams: Rc<Cell<usize>>,
}

impl Conn {
    fn has_room(&self) -> bool {
        self.streams.get() < self.limit.get()
    }

    fn take(&self) -> (SendRequest<Bytes>, StreamSlot) {
        (self.send.clone(), StreamSlot::on(&self.streams))
    }
}

/// One stream counted on its connection while it lives (dropped with the exchange).
#[derive(Debug)]
pub struct StreamSlot(Rc<Cell<usize>>);

impl StreamSlot {
    fn on(count: &Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Self(count.clone())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// A worker's HTTP/2 upstream connections (`!Send`: used on its thread only).
#[derive(Debug, Default)]
pub struct H2Clients {
    conns: HashMap<(SocketAddr, u64), Vec<Conn>>,
    /// `protocol = "auto"` endpoints: whether their last ALPN chose HTTP/2.
    alpn: HashMap<(SocketAddr, u64), bool>,
}

impl H2Clients {
    /// What the ALPN of `addr` / `pool_id` (an `auto` target's endpoint) chose last: `Some(true)`
    /// HTTP/2, `Some(false)` HTTP/1.1, `None` not known yet (the next opening negotiates).
    pub fn negotiated(&self, addr: SocketAddr, pool_id: u64) -> Option<bool> {
        self.alpn.get(&(addr, pool_id)).copied()
    }

    /// Remembers what the ALPN of `addr` / `pool_id` chose.
    pub fn remember(&mut self, addr: SocketAddr, pool_id: u64, h2: bool) {
        self.alpn.insert((addr, pool_id), h2);
    }

    /// Forgets what the ALPN of `addr` / `pool_id` chose (a connection to it failed): the next
    /// opening negotiates again.
    pub fn forget_negotiated(&mut self, addr: SocketAddr, pool_id: u64) {
        self.alpn.remove(&(addr, pool_id));
    }

    /// A handle on a live connection to `addr` with TLS identity `pool_id` for one more stream,
    /// and the stream's slot: the first below the server's stream limit; when every one is at
    /// its limit, `None` (the caller opens another) unless there are
    /// [`MAX_CONNS_PER_ENDPOINT`] already (then the least busy: the stream waits for a slot).
    /// Closed connections are forgotten here.
    pub fn sender(
        &mut self,
        addr: SocketAddr,
        pool_id: u64,
    ) -> Option<(SendRequest<Bytes>, StreamSlot)> {
        let key = (addr, pool_id);
        let list = self.conns.get_mut(&key)?;
        list.retain(|c| !c.closed.get());
        if list.is_empty() {
            self.conns.remove(&key);
            return None;
        }
        if let Some(c) = list.iter().find(|c| c.has_room()) {
            return Some(c.take());
        }
        if list.len() < MAX_CONNS_PER_ENDPOINT {
            return None;
        }
        list.iter().min_by_key(|c| c.streams.get()).map(Conn::take)
    }

    /// Adds `conn` to the connections new streams to `addr` / `pool_id` go on; a handle and a
    /// slot for the stream that opened it.
    pub fn insert(
        &mut self,
        addr: SocketAddr,
        pool_id: u64,
        conn: H2Conn,
    ) -> (SendRequest<Bytes>, StreamSlot) {
        let conn = Conn {
            send: conn.send,
            closed: conn.closed,
            limit: conn.limit,
            streams: conn.streams,
        };
        let taken = conn.take();
        self.conns.entry((addr, pool_id)).or_default().push(conn);
        taken
    }

    /// Forgets the connections to `addr` / `pool_id` (a stream could not be opened on one:
    /// GOAWAY received, connection broken), so that the next request opens a new one.
    pub fn forget(&mut self, addr: SocketAddr, pool_id: u64) {
        self.conns.remove(&(addr, pool_id));
    }

    /// Forgets every connection (drain): streams in flight finish, new ones are not opened.
    pub fn clear(&mut self) {
        self.conns.clear();
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.conns
            .values()
            .flatten()
            .filter(|c| !c.closed.get())
            .count()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new connection, its driver running.
#[derive(Debug)]
pub struct H2Conn {
    /// Opens streams on it.
    pub send: SendRequest<Bytes>,
    /// Set when its driver ended.
    pub closed: Rc<Cell<bool>>,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` as last acknowledged (kept by the
    /// driver; unlimited until the server's SETTINGS came).
    pub limit: Rc<Cell<usize>>,
    /// The streams open on it (the keep-alive PINGs only an idle connection).
    pub streams: Rc<Cell<usize>>,
}

/// The transport of an upstream HTTP/2 connection in the poll form `h2` drives.
#[derive(Debug)]
enum UpIo {
    Plain(TcpStreamPoll),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStreamPoll>>),
}

/// What an opening gave.
#[derive(Debug)]
pub enum Opened {
    /// An HTTP/2 connection, its driver running.
    H2(H2Conn),
    /// The server chose HTTP/1.1 (or no protocol) in ALPN, offered `h2` and `http/1.1` for an
    /// `auto` target: the connection was dropped, the caller speaks HTTP/1.1 to it.
    Http1,
}

/// Opens an HTTP/2 connection to `addr`: plain (prior knowledge) without `tls`, else TLS with
/// ALPN `h2` (a server that does not select it fails the opening as a TLS failure), or with
/// `h2` and `http/1.1` when `negotiate` (`auto`), a server choosing HTTP/1.1 giving
/// [`Opened::Http1`]. A response header list (decoded) over `max_header_list` bytes is refused,
/// as over HTTP/1.1 (`limits.max_header_bytes`). Spawns the connection's driver on the current
/// (worker's) runtime, and its keep-alive ([`KeepAlive::default`]).
pub async fn open_h2(
    addr: SocketAddr,
    tls: Option<&TargetTls>,
    negotiate: bool,
    max_header_list: usize,
) -> Result<Opened, OpenError> {
    open_h2_with(
        addr,
        tls,
        negotiate,
        max_header_list,
        Some(KeepAlive::default()),
    )
    .await
}

/// [`open_h2`] with `keep_alive` (`None`: no PINGs, for a connection of one exchange).
pub async fn open_h2_with(
    addr: SocketAddr,
    tls: Option<&TargetTls>,
    negotiate: bool,
    max_header_list: usize,
    keep_alive: Option<KeepAlive>,
) -> Result<Opened, OpenError> {
    let tcp = TcpStream::connect_addr(addr)
        .await
        .map_err(OpenError::Tcp)?;
    let _ = tcp.set_nodelay(true);
    let poll = tcp.into_poll_io().map_err(OpenError::Tcp)?;
    let io = match tls {
        None => UpIo::Plain(poll),
        Some(tls) => {
            // Once per new connection: the route's config with ALPN `h2` (its session store
            // is shared through the clone).
            let mut config = (*tls.config).clone();
            config.alpn_protocols = if negotiate {
                vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
            } else {
                vec![ALPN_H2.to_vec()]
            };
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let stream = connector
                .connect(tls.server_name.clone(), poll)
                .await
                .map_err(|e| OpenError::Tls(io::Error::other(e.to_string())))?;
            let chosen = stream.get_ref().1.alpn_protocol();
            if negotiate && chosen != Some(ALPN_H2) {
                return Ok(Opened::Http1);
            }
            if chosen != Some(ALPN_H2) {
                return Err(OpenError::Tls(io::Error::other(
                    "the target did not select ALPN h2",
                )));
            }
            UpIo::Tls(Box::new(stream))
        }
    };
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .max_header_list_size(u32::try_from(max_header_list).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(MAX_LOCAL_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_RESETS))
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| OpenError::Tcp(io::Error::other(e.to_string())))?;
    let mut conn = conn;
    let closed = Rc::new(Cell::new(false));
    let streams = Rc::new(Cell::new(0));
    if let (Some(every), Some(ping_pong)) = (keep_alive, conn.ping_pong()) {
        monoio::spawn(keep_alive_task(
            ping_pong,
            every,
            closed.clone(),
            streams.clone(),
        ));
    }
    let limit = Rc::new(Cell::new(conn.max_concurrent_send_streams()));
    let (flag, seen) = (closed.clone(), limit.clone());
    monoio::spawn(async move {
        let mut conn = conn;
        let ended = std::future::poll_fn(|cx| {
            let polled = Pin::new(&mut conn).poll(cx);
            seen.set(conn.max_concurrent_send_streams());
            polled
        })
        .await;
        if let Err(e) = ended {
            tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
        }
        flag.set(true);
    });
    Ok(Opened::H2(H2Conn {
        send,
        closed,
        limit,
        streams,
    }))
}

/// PINGs the connection every `every.interval` while no stream is open on it, until it is
/// closed; marks it closed when an ACK does not come within `every.timeout` (or the PING
/// fails).
async fn keep_alive_task(
    mut ping_pong: h2::PingPong,
    every: KeepAlive,
    closed: Rc<Cell<bool>>,
    streams: Rc<Cell<usize>>,
) {
    loop {
        monoio::time::sleep(every.interval).await;
        if closed.get() {
            return;
        }
        if streams.get() > 0 {
            continue;
        }
        let ok = match monoio::time::timeout(every.timeout, ping_pong.ping(h2::Ping::opaque()))
            .await
        {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "upstream HTTP/2 keep-alive PING failed");
                false
            }
            Err(_) => {
                tracing::debug!("upstream HTTP/2 keep-alive PING unanswered: connection forgotten");
                false
            }
        };
        if !ok {
            closed.set(true);
            return;
        }
    }
}

impl AsyncRead for UpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpIo::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpIo::Plain(io) => io.is_write_vectored(),
            UpIo::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Plain(io) => Pin::new(io).poll_flush(cx),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::runtime::AnyRuntime;

    /// A hand-written HTTP/2 peer on 127.0.0.1:0: reads the client preface, sends empty
    /// SETTINGS, ACKs the client's, counts the PINGs and ACKs them when `pong`. Ends when the
    /// client closes (or after 5 s of silence).
    fn peer(pong: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let pings = Arc::new(AtomicUsize::new(0));
        let seen = pings.clone();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut preface = [0u8; 24];
            if s.read_exact(&mut preface).is_err() {
                return;
            }
            let _ = s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
            loop {
                let mut head = [0u8; 9];
                if s.read_exact(&mut head).is_err() {
                    return;
                }
                let len = (usize::from(head[0]) << 16)
                    | (usize::from(head[1]) << 8)
                    | usize::from(head[2]);
                let mut payload = vec![0u8; len];
                if s.read_exact(&mut payload).is_err() {
                    return;
                }
                match (head[3], head[4] & 1) {
                    (4, 0) => {
                        let _ = s.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
                    }
                    (6, 0) => {
                        seen.fetch_add(1, Ordering::SeqCst);
                        if pong {
                            let mut ack = vec![0, 0, 8, 6, 1, 0, 0, 0, 0];
                            ack.extend_from_slice(&payload);
                            let _ = s.write_all(&ack);
                        }
                    }
                    _ => {}
                }
            }
        });
        (addr, pings)
    }

    /// Opens a connection to `addr` with a PING every 50 ms (ACK within 100 ms), `busy` streams
    /// counted open on it; whether it is marked closed 600 ms later.
    fn closed_after_a_while(addr: SocketAddr, busy: usize) -> bool {
        let mut rt = AnyRuntime::build().unwrap();
        rt.block_on(async move {
            let every = KeepAlive {
                interval: Duration::from_millis(50),
                timeout: Duration::from_millis(100),
            };
            let opened = open_h2_with(addr, None, false, 16 * 1024, Some(every)).await;
            let Ok(Opened::H2(conn)) = opened else {
                panic!("no HTTP/2 connection: {opened:?}");
            };
            conn.streams.set(busy);
            monoio::time::sleep(Duration::from_millis(600)).await;
            conn.closed.get()
        })
    }

    #[test]
    fn an_idle_connection_is_pinged_and_kept_while_its_peer_answers() {
        let (addr, pings) = peer(true);
        assert!(!closed_after_a_while(addr, 0));
        let n = pings.load(Ordering::SeqCst);
        assert!(n >= 3, "{n} PINGs in 600 ms at one per 50 ms");
    }

    #[test]
    fn a_connection_whose_peer_does_not_answer_pings_is_closed() {
        let (addr, pings) = peer(false);
        assert!(closed_after_a_while(addr, 0));
        assert_eq!(pings.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_with_a_stream_open_is_not_pinged() {
        let (addr, pings) = peer(false);
        assert!(!closed_after_a_while(addr, 1));
        assert_eq!(pings.load(Ordering::SeqCst), 0);
    }
}
