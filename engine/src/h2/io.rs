//! The transport of an HTTP/2 connection in the poll-style form the `h2` crate drives.
//!
//! Owns [`H2Io`]: the client's TCP stream in monoio's poll-io form (`TcpStreamPoll`, readiness
//! from the worker's own ring or epoll), either plain — with the bytes read while sniffing for
//! the connection preface replayed first (h2c) — or under TLS with `tokio-rustls`, which keeps
//! no bytes outside the rustls session, so a handshake done with it can also be handed back to
//! the HTTP/1.1 code (`into_http1`). Why not `monoio-rustls` with a compat wrapper: see
//! `docs/architecture.md`, "HTTP/2". It must not parse anything: [`WatchedIo`] hands the bytes
//! it reads to `head_watch` and publishes when a header block opened.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use monoio::io::IntoCompIo;
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use monoio::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

use super::head_watch::HeaderBlockWatch;

/// An HTTP/2 connection's transport.
#[derive(Debug)]
pub enum H2Io {
    /// h2c: plain TCP, after `prefix[pos..]` (bytes already read).
    Plain {
        /// The poll-io stream.
        io: TcpStreamPoll,
        /// Bytes read before the switch to poll-io, replayed first.
        prefix: Vec<u8>,
        /// How much of `prefix` was replayed.
        pos: usize,
    },
    /// h2 over TLS (ALPN `h2`).
    Tls(Box<TlsStream<TcpStreamPoll>>),
}

impl H2Io {
    /// A plain connection whose first bytes, `prefix`, were already read.
    pub fn plain(io: TcpStreamPoll, prefix: Vec<u8>) -> Self {
        H2Io::Plain { io, prefix, pos: 0 }
    }
}

/// Gives a TLS connection whose handshake `tokio-rustls` did (over poll-io) back to the
/// completion-based IO the HTTP/1.1 code uses: the TCP stream leaves poll mode and the rustls
/// session — holding every byte read so far, decrypted or not — moves into a `monoio-rustls`
/// stream. Fails only if the descriptor cannot be switched back.
pub fn into_http1(
    tls: TlsStream<TcpStreamPoll>,
) -> io::Result<monoio_rustls::ServerTlsStream<TcpStream>> {
    let (io, session) = tls.into_inner();
    let tcp = io.into_comp_io()?;
    Ok(monoio_rustls::ServerTlsStream::new(tcp, session))
}

impl AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            H2Io::Plain { io, prefix, pos } => {
                if *pos < prefix.len() {
                    let src = &prefix[*pos..];
                    let n = src.len().min(buf.remaining());
                    buf.put_slice(&src[..n]);
                    *pos += n;
                    if *pos == prefix.len() {
                        *prefix = Vec::new();
                        *pos = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                Pin::new(io).poll_read(cx, buf)
            }
            H2Io::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            H2Io::Plain { io, .. } => Pin::new(io).poll_write(cx, buf),
            H2Io::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            H2Io::Plain { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            H2Io::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            H2Io::Plain { io, .. } => io.is_write_vectored(),
            H2Io::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            H2Io::Plain { io, .. } => Pin::new(io).poll_flush(cx),
            H2Io::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            H2Io::Plain { io, .. } => Pin::new(io).poll_shutdown(cx),
            H2Io::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Since when the client's unfinished header block has been open (`None`: no block open),
/// written by [`WatchedIo`], read by the connection task for `limits.client_header_timeout`.
pub type HeadOpenSince = Rc<Cell<Option<monoio::time::Instant>>>;

/// An HTTP/2 transport whose reads are followed by a [`HeaderBlockWatch`]. Cost per read: the
/// frame boundaries in the bytes read, and a clock read when a block opens.
#[derive(Debug)]
pub struct WatchedIo {
    io: H2Io,
    watch: HeaderBlockWatch,
    open_since: HeadOpenSince,
}

impl WatchedIo {
    /// `io`, publishing into `open_since`.
    pub fn new(io: H2Io, open_since: HeadOpenSince) -> Self {
        WatchedIo {
            io,
            watch: HeaderBlockWatch::new(),
            open_since,
        }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.watch.feed(&buf.filled()[before..]);
            match (this.watch.is_open(), this.open_since.get()) {
                (true, None) => this.open_since.set(Some(monoio::time::Instant::now())),
                (false, Some(_)) => this.open_since.set(None),
                _ => {}
            }
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
