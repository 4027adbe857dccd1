//! The TLS handshake of a connection accepted on an https listener, under its deadline, before
//! the connection is served like a plain one.
//!
//! Owns the choice of the listener's rustls config from the snapshot current at accept time
//! (so after a SIGHUP reload, new connections get the new certificates while established ones
//! keep theirs) and the handshake deadline (`limits.tls_handshake_timeout`: a silent or
//! slow client holds nothing for long). It must not parse HTTP: once the handshake is done the stream goes to
//! [`serve_client`] with the `https` scheme. With `gateway.http2` the handshake and the ALPN
//! choice are `server::negotiate`'s.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use monoio::net::TcpStream;
use monoio_rustls::TlsAcceptor;

use crate::server::conn::serve_client;
use crate::server::negotiate::serve_tls_negotiated;
use crate::worker::ConnGuard;

/// Runs the handshake on `stream`, accepted on the https listener configured as `listener`,
/// then serves the connection. A handshake that fails or takes longer than the deadline closes
/// the connection (logged at debug level: scanners and broken clients are common).
pub async fn serve_tls_client(
    guard: ConnGuard,
    stream: TcpStream,
    peer: SocketAddr,
    listener: SocketAddr,
) {
    let (config, deadline, allow_underscores, http2) = {
        let snap = guard.worker().snapshot();
        let Some(tls) = &snap.tls else {
            tracing::warn!(%listener, "connection on an https listener but no TLS config is loaded");
            return;
        };
        (
            tls.for_listener(listener).clone(),
            snap.limits.tls_handshake_timeout,
            snap.config.gateway.underscores_in_headers.allows(listener),
            snap.config.gateway.http2,
        )
    };
    if http2 {
        return serve_tls_negotiated(guard, stream, peer, config, deadline, allow_underscores)
            .await;
    }
    let acceptor = TlsAcceptor::from(config);
    // The socket under the TLS stream, for the WebSocket tunnel the connection may become.
    let socket = stream.as_raw_fd();
    match monoio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve_client(guard, tls, socket, peer, b"https", allow_underscores).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
