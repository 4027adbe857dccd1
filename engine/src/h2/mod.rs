//! HTTP/2 towards clients, below the connection driver (`server::h2_conn`): one HTTP/2 stream
//! as the request phases' downstream.
//!
//! | module | owns |
//! |---|---|
//! | [`request_head`] | an HTTP/2 request head checked (RFC 9113 §8, the HTTP/1.1 head rules) and read into the request's `OwnedHead` |
//! | [`downstream`] | [`downstream::H2Downstream`]: `proxy::downstream::Downstream` over one stream's `RecvStream` and sending half |
//! | [`relay`] | an HTTP/2 upstream's response relayed to the stream, both bodies piped at once, trailers passed on |
//! | [`send`] | [`send::ResponseSide`] (a stream's sending half, its reset), [`send::DataSink`] (a body as DATA frames under flow control) |
//! | [`io`] | [`io::H2Io`]: the connection's transport in the poll form `h2` drives; [`io::WatchedIo`] over it |
//! | [`head_watch`] | [`head_watch::HeaderBlockWatch`]: whether the client is inside an unfinished header block |
//!
//! Nothing here accepts connections or reads the config; `downstream` implements the proxy's
//! interface and `request_head` fills the proxy's `OwnedHead` (both import `proxy`, which
//! imports nothing of `h2`). An HTTP/2 stream never becomes HTTP/1.1 bytes: its fields are
//! laid out as the lines the HTTP/1.1 upstream receives, and nothing parses them back. The choice of the `h2` crate
//! on monoio's poll-io is in `docs/architecture.md` ("HTTP/2"), its cost in
//! `docs/performance.md`.

pub mod downstream;
pub mod head_watch;
pub mod io;
pub mod relay;
pub mod request_head;
pub mod send;

/// The HTTP/2 connection preface a client sends first (RFC 9113 §3.4): how a plain listener
/// with `gateway.h2c` tells HTTP/2 with prior knowledge from HTTP/1.1.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
