//! HTTP/2 towards upstreams: one multiplexed `h2` client connection per endpoint per worker.
//!
//! Owns [`H2Clients`], a worker's HTTP/2 connections keyed like the HTTP/1.1 pool (the
//! endpoint's address and the target's TLS identity), and opening one ([`open_h2`]): the TCP
//! connect, monoio's poll-io form of the stream (readiness from the worker's own driver, as the
//! server side's `h2::io`), for an `h2` target the TLS handshake with `tokio-rustls` offering
//! ALPN `h2` only, then the `h2` client handshake. The connection's driver is a task spawned on
//! the worker's runtime (nothing crosses threads, no lock of ours); it marks the connection
//! closed when it ends (GOAWAY, error, the upstream closed), and the next request opens a new
//! one while streams still in flight on the old one finish on it. Streams above the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` wait for a slot on the connection (`SendRequest::ready`).
//!
//! It must not decide what is sent nor read a response: `proxy::upstream_h2` does.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// One live HTTP/2 connection: a handle to open streams on it, and whether its driver ended.
#[derive(Debug)]
struct Conn {
    send: SendRequest<Bytes>,
    closed: Rc<Cell<bool>>,
}

/// A worker's HTTP/2 upstream connections (`!Send`: used on its thread only).
#[derive(Debug, Default)]
pub struct H2Clients {
    conns: HashMap<(SocketAddr, u64), Conn>,
}

impl H2Clients {
    /// A handle on the live connection to `addr` with TLS identity `pool_id`, if there is one
    /// (a closed one is forgotten here, so the caller opens a new one).
    pub fn sender(&mut self, addr: SocketAddr, pool_id: u64) -> Option<SendRequest<Bytes>> {
        let key = (addr, pool_id);
        match self.conns.get(&key) {
            Some(c) if !c.closed.get() => Some(c.send.clone()),
            Some(_) => {
                self.conns.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps `conn` as the connection new streams to `addr` / `pool_id` go on (replacing one
    /// that was there: its streams in flight finish on it).
    pub fn insert(&mut self, addr: SocketAddr, pool_id: u64, conn: H2Conn) {
        self.conns.insert(
            (addr, pool_id),
            Conn {
                send: conn.send,
                closed: conn.closed,
            },
        );
    }

    /// Forgets the connection to `addr` / `pool_id` (a stream could not be opened on it:
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
        self.conns.values().filter(|c| !c.closed.get()).count()
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
}

/// The transport of an upstream HTTP/2 connection in the poll form `h2` drives.
#[derive(Debug)]
enum UpIo {
    Plain(TcpStreamPoll),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStreamPoll>>),
}

/// Opens an HTTP/2 connection to `addr`: plain (prior knowledge) without `tls`, else TLS with
/// ALPN `h2` (a server that does not select it fails the opening as a TLS failure). Spawns
/// the connection's driver on the current (worker's) runtime.
pub async fn open_h2(addr: SocketAddr, tls: Option<&TargetTls>) -> Result<H2Conn, OpenError> {
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
            config.alpn_protocols = vec![ALPN_H2.to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let stream = connector
                .connect(tls.server_name.clone(), poll)
                .await
                .map_err(|e| OpenError::Tls(io::Error::other(e.to_string())))?;
            if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
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
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| OpenError::Tcp(io::Error::other(e.to_string())))?;
    let closed = Rc::new(Cell::new(false));
    let flag = closed.clone();
    monoio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
        }
        flag.set(true);
    });
    Ok(H2Conn { send, closed })
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
