//! One HTTP/1.1 client connection: the stream, its buffers and the facts about the peer and
//! the listener. Nothing here belongs to a single request; the phases reach it only through
//! its `Downstream` implementation (`downstream_h1.rs`).
//!
//! Owns [`ClientConn`] and [`ClientFacts`] (who the client is and what its listener allows:
//! the same for every request of a connection, and shared by every stream of an HTTP/2 one, so
//! it is rendered once per connection). The read buffer holds what the client sent and nobody consumed yet (the
//! head of the request in progress, the start of its body, pipelined requests behind it); the
//! write buffer holds heads and small answers on their way to the client. Both are reused for
//! every request on the connection, so the steady state allocates nothing.

use std::net::SocketAddr;

use crate::io::ReadBuf;

/// Initial capacity of a connection's read buffer.
const READ_BUF_INITIAL: usize = 4096;
/// Initial capacity of a connection's write buffer.
const WRITE_BUF_INITIAL: usize = 1024;

/// Who the client is and what its listener allows, rendered once per connection.
#[derive(Debug)]
pub struct ClientFacts {
    /// The client's address.
    pub peer: SocketAddr,
    /// `x-forwarded-for: <peer ip>\r\n`.
    pub xff_line: Vec<u8>,
    /// Scheme seen by the client (`http` or `https`).
    pub scheme: &'static [u8],
    /// The listener lets header names with `_` through (`gateway.underscores_in_headers`, as
    /// in force when the connection was accepted).
    pub allow_underscores: bool,
}

impl ClientFacts {
    /// The facts of a connection from `peer` on a listener whose clients see `scheme`.
    pub fn new(peer: SocketAddr, scheme: &'static [u8], allow_underscores: bool) -> Self {
        Self {
            peer,
            xff_line: format!("x-forwarded-for: {}\r\n", peer.ip()).into_bytes(),
            scheme,
            allow_underscores,
        }
    }

    /// True when the connection is TLS (the client sees `https`).
    pub fn is_secure(&self) -> bool {
        self.scheme == b"https"
    }

    /// The client's IP as text, out of the pre-rendered `x-forwarded-for` line.
    pub fn client_ip(&self) -> &[u8] {
        self.xff_line
            .strip_prefix(b"x-forwarded-for: ")
            .and_then(|v| v.strip_suffix(b"\r\n"))
            .unwrap_or(b"")
    }
}

/// The connection-level state of a client connection over the stream `C` (plain or TLS).
#[derive(Debug)]
pub struct ClientConn<C> {
    /// The stream, past its TLS handshake if any.
    pub stream: C,
    /// Bytes read from the client and not yet consumed.
    pub rbuf: ReadBuf,
    /// Heads and small answers being written to the client.
    pub wbuf: Vec<u8>,
    /// Who the client is.
    pub client: ClientFacts,
}

impl<C> ClientConn<C> {
    /// A fresh connection from `peer` on a listener whose clients see `scheme`.
    pub fn new(
        stream: C,
        peer: SocketAddr,
        scheme: &'static [u8],
        allow_underscores: bool,
    ) -> Self {
        Self {
            stream,
            rbuf: ReadBuf::with_capacity(READ_BUF_INITIAL),
            wbuf: Vec::with_capacity(WRITE_BUF_INITIAL),
            client: ClientFacts::new(peer, scheme, allow_underscores),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_facts_are_rendered_once() {
        let c = ClientConn::new(
            (),
            "10.1.2.3:5555".parse().unwrap_or_else(|_| unreachable!()),
            b"https",
            false,
        );
        assert_eq!(c.client.client_ip(), b"10.1.2.3");
        assert_eq!(c.client.xff_line, b"x-forwarded-for: 10.1.2.3\r\n");
        assert!(c.client.is_secure());
        let v6 = ClientConn::new(
            (),
            "[::1]:1".parse().unwrap_or_else(|_| unreachable!()),
            b"http",
            true,
        );
        assert_eq!(v6.client.client_ip(), b"::1");
        assert!(!v6.client.is_secure());
    }
}
