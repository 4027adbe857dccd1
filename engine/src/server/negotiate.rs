//! Which protocol a new client connection speaks, and the hand-off to its connection code.
//!
//! Owns the two choices: on an https listener with `gateway.http2`, the TLS handshake is done
//! by `tokio-rustls` over the socket's poll-io form and ALPN decides — `h2` goes to
//! [`serve_h2`], anything else (`http/1.1`, no ALPN) is handed back to completion IO and
//! [`serve_client`] with every byte read so far kept in the rustls session; on a plain
//! listener with `gateway.h2c`, the first bytes are read and compared with the HTTP/2
//! connection preface (RFC 9113 §3.4, "prior knowledge"): the whole preface goes to
//! [`serve_h2`], anything else is served as HTTP/1.1 with those bytes already in its read
//! buffer. The HTTP/1.1 `Upgrade: h2c` dance (RFC 7540 §3.2, removed by RFC 9113) is not
//! offered: `Upgrade` is hop-by-hop and never reaches a backend, and the request is served as
//! HTTP/1.1. It must not parse requests.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::io::IntoPollIo;
use monoio::net::TcpStream;
use rustls::ServerConfig;

use crate::h2::io::{into_http1, H2Io};
use crate::h2::PREFACE;
use crate::proxy::client::ClientConn;
use crate::proxy::client::ClientFacts;
use crate::server::conn::{serve_client, serve_upgradable};
use crate::server::h2_conn::serve_h2;
use crate::tls::server::ALPN_H2;
use crate::worker::ConnGuard;

/// TLS on an https listener that offers `h2`: handshake within `deadline`, then the protocol
/// ALPN chose.
pub async fn serve_tls_negotiated(
    guard: ConnGuard,
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    deadline: Duration,
    allow_underscores: bool,
) {
    // The socket under every form of the stream, for the WebSocket tunnel an HTTP/1.1
    // connection may become.
    let socket = stream.as_raw_fd();
    let poll = match stream.into_poll_io() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot switch a connection to poll IO");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match monoio::time::timeout(deadline, acceptor.accept(poll)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        let facts = Rc::new(ClientFacts::new(peer, b"https", allow_underscores));
        return serve_h2(guard, H2Io::Tls(Box::new(tls)), facts).await;
    }
    match into_http1(tls) {
        Ok(s) => serve_client(guard, s, socket, peer, b"https", allow_underscores).await,
        Err(e) => tracing::warn!(%peer, error = %e, "cannot hand a TLS connection to HTTP/1.1"),
    }
}

/// A plain connection on a listener with `gateway.h2c`: HTTP/2 when it starts with the
/// preface, HTTP/1.1 otherwise.
pub async fn serve_plain_sniffed(
    guard: ConnGuard,
    stream: TcpStream,
    peer: SocketAddr,
    allow_underscores: bool,
) {
    let worker = guard.worker().clone();
    let limits = worker.snapshot().limits;
    let socket = stream.as_raw_fd();
    let mut conn = ClientConn::new(stream, peer, b"http", allow_underscores);
    // The first byte may take the idle deadline (as for a first HTTP/1.1 request); the rest of
    // the preface the head deadline.
    let mut head_deadline: Option<Instant> = None;
    while conn.rbuf.len() < PREFACE.len() && PREFACE.starts_with(conn.rbuf.data()) {
        let wait = match head_deadline {
            None => limits.keepalive_timeout,
            Some(d) => d.saturating_duration_since(Instant::now()),
        };
        let read = monoio::select! {
            r = conn.rbuf.fill_timeout(&mut conn.stream, PREFACE.len(), wait) => r,
            _ = worker.drain.wait() => return,
        };
        match read {
            Ok(0) | Err(_) if conn.rbuf.is_empty() => return,
            // A short read that ends or stalls: what came is served as HTTP/1.1, which
            // answers it as it answers any incomplete head.
            Ok(0) | Err(_) => break,
            Ok(_) => {
                head_deadline.get_or_insert_with(|| Instant::now() + limits.client_header_timeout);
            }
        }
    }
    if conn.rbuf.data() != PREFACE {
        return serve_upgradable(&worker, conn, socket).await;
    }
    let prefix = conn.rbuf.data().to_vec();
    let io = match conn.stream.into_poll_io() {
        Ok(io) => io,
        Err(e) => return tracing::warn!(%peer, error = %e, "cannot switch a connection to poll IO"),
    };
    let facts = Rc::new(ClientFacts::new(peer, b"http", allow_underscores));
    serve_h2(guard, H2Io::plain(io, prefix), facts).await;
}
