//! Upstream side of the proxy: the route endpoints every thread shares (`endpoint`, `group`,
//! `registry`), opening a connection to one of them (`open`; `h2_client`: the worker's
//! multiplexed HTTP/2 connections), the re-resolution of target names
//! off the request path (`dns`: the client; `resolve_loop`: the `torii-dns` thread), the parts a
//! worker owns (keep-alive pools and endpoint selection), and the active health checks' rules
//! and probes (`health`, `probe`, `probe_h2` over HTTP/2; the `torii-health` thread that drives them is the crate's
//! `health` module). Getting a connection for a request is a proxy phase (`proxy::connect`).

pub mod dns;
pub mod endpoint;
pub mod group;
pub mod h2_client;
pub mod health;
pub mod open;
pub mod outlier;
pub mod pool;
pub mod probe;
pub mod probe_h2;
pub mod registry;
pub mod resolve_loop;
pub mod select;
#[cfg(test)]
mod select_tests;

/// The transport of an upstream connection, as pooled and proxied.
pub type UpStream = crate::tls::stream::UpStream;
