//! HTTP/2 towards clients, below the connection driver (`server::h2_conn`): the pieces that
//! turn one HTTP/2 stream into a request the HTTP/1.1 connection code and the phases serve.
//!
//! | module | owns |
//! |---|---|
//! | [`request_head`] | an HTTP/2 request head checked (RFC 9113 §8) and rendered as HTTP/1.1 |
//! | [`response`] | the HTTP/1.1 response the phases write, turned back into HTTP/2 parts |
//! | [`exchange`] | [`exchange::H2Exchange`]: one stream as an `AsyncReadRent + AsyncWriteRent` |
//! | [`io`] | [`io::H2Io`]: the connection's transport in the poll form `h2` drives; [`io::WatchedIo`] over it |
//! | [`head_watch`] | [`head_watch::HeaderBlockWatch`]: whether the client is inside an unfinished header block |
//!
//! Nothing here accepts connections, reads the config or runs phases; it imports from
//! `http1` only. The choice of the `h2` crate on monoio's poll-io, and the adapter's cost, are
//! in `docs/architecture.md` ("HTTP/2") and `docs/performance.md`.

pub mod exchange;
pub mod head_watch;
pub mod io;
pub mod request_head;
pub mod response;

/// The HTTP/2 connection preface a client sends first (RFC 9113 §3.4): how a plain listener
/// with `gateway.h2c` tells HTTP/2 with prior knowledge from HTTP/1.1.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
