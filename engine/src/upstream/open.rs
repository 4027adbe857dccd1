//! Opening a new connection to one upstream address: the TCP connect, then, for an
//! `https://` target, the TLS handshake with the target's settings.
//!
//! Owns only the opening and the two ways it fails ([`OpenError`]: the address refused or
//! reset, or it answered but TLS failed). Timeouts, down marks, pooling and what is sent are the
//! callers': the proxy (`proxy::connect`, under the connect timeout) and the health checker
//! (`health`, under the probe's timeout), which both open connections through [`open`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use monoio::net::TcpStream;
use monoio_rustls::TlsConnector;

use crate::tls::client::TargetTls;
use crate::tls::stream::UpStream;

/// Why a new connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The TCP connect failed (refused, reset, unreachable).
    Tcp(io::Error),
    /// The address answered but the TLS handshake failed (certificate not trusted, wrong name,
    /// protocol error).
    Tls(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Tcp(e) => write!(f, "connect: {e}"),
            OpenError::Tls(e) => write!(f, "TLS handshake: {e}"),
        }
    }
}

/// TCP connect to `addr` (no delay), then the TLS handshake when `tls` is given.
pub async fn open(addr: SocketAddr, tls: Option<&TargetTls>) -> Result<UpStream, OpenError> {
    let tcp = TcpStream::connect_addr(addr)
        .await
        .map_err(OpenError::Tcp)?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(UpStream::Plain(tcp));
    };
    let fd = tcp.as_raw_fd();
    let connector = TlsConnector::from(tls.config.clone());
    match connector.connect(tls.server_name.clone(), tcp).await {
        Ok(stream) => Ok(UpStream::tls(stream, fd)),
        Err(e) => Err(OpenError::Tls(io::Error::other(e.to_string()))),
    }
}
