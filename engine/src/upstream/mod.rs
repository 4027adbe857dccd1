//! Upstream side of the proxy: the route endpoints every thread shares (`endpoint`, `group`,
//! `registry`), opening a connection to one of them (`open`), the parts a worker owns
//! (keep-alive pools and endpoint selection), and the active health checks' rules and probe
//! (`health`, `probe`; the `torii-health` thread that drives them is the crate's `health`
//! module). Getting a connection for a request is a proxy phase (`proxy::connect`).

pub mod endpoint;
pub mod group;
pub mod health;
pub mod open;
pub mod outlier;
pub mod pool;
pub mod probe;
pub mod registry;
pub mod select;
#[cfg(test)]
mod select_tests;

/// The transport of an upstream connection, as pooled and proxied.
pub type UpStream = crate::tls::stream::UpStream;
