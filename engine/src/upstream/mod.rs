//! Upstream side of the proxy: the route endpoints every thread shares (`endpoint`, `group`,
//! `registry`), the re-resolution of target names off the request path (`dns`: the client;
//! `resolve_loop`: the `torii-dns` thread), and the parts a worker owns: keep-alive pools and
//! endpoint selection. Opening a connection for a request is a proxy phase (`proxy::connect`).

pub mod dns;
pub mod endpoint;
pub mod group;
pub mod pool;
pub mod registry;
pub mod resolve_loop;
pub mod select;

/// The transport of an upstream connection, as pooled and proxied.
pub type UpStream = crate::tls::stream::UpStream;
