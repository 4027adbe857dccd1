//! The transport of an upstream connection: plain TCP or TLS over TCP, as one type so that the
//! per-worker pool and the proxy phases handle both alike.
//!
//! Owns only the dispatch of monoio's owned-buffer IO to the right stream (one `match` per
//! read or write, no allocation) and access to the socket for the pool's liveness check. It
//! must not know about HTTP or pooling rules.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::net::TcpStream;
use monoio::BufResult;
use monoio_rustls::ClientTlsStream;

/// A plain or TLS upstream connection.
#[derive(Debug)]
pub enum UpStream {
    /// `http://` target.
    Plain(TcpStream),
    /// `https://` target; the socket's descriptor is kept for the pool's liveness check.
    Tls(Box<ClientTlsStream<TcpStream>>, RawFd),
}

impl UpStream {
    /// Wraps a TLS stream over `tcp`, whose descriptor is read before the wrap.
    pub fn tls(stream: ClientTlsStream<TcpStream>, fd: RawFd) -> Self {
        UpStream::Tls(Box::new(stream), fd)
    }

    /// The socket's descriptor.
    pub fn raw_fd(&self) -> RawFd {
        match self {
            UpStream::Plain(s) => s.as_raw_fd(),
            UpStream::Tls(_, fd) => *fd,
        }
    }

    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, UpStream::Tls(..))
    }
}

// SAFETY: both transports are `Split` (monoio's TCP stream: reads and writes are independent
// operations on the socket; monoio-rustls's stream: declared so by the crate). One caveat of
// the TLS one, a panic its read half can raise on an invalid record while a write is in
// flight, is contained where streams are split (`tunnel::pump`).
unsafe impl Split for UpStream {}

impl AsyncReadRent for UpStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.read(buf).await,
            UpStream::Tls(s, _) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.readv(buf).await,
            UpStream::Tls(s, _) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.write(buf).await,
            UpStream::Tls(s, _) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            UpStream::Plain(s) => s.writev(buf).await,
            UpStream::Tls(s, _) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            UpStream::Plain(s) => s.flush().await,
            UpStream::Tls(s, _) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            UpStream::Plain(s) => s.shutdown().await,
            UpStream::Tls(s, _) => s.shutdown().await,
        }
    }
}
