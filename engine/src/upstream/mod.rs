//! Upstream side of the proxy: connecting to targets, per-worker keep-alive pools, target
//! selection.

pub mod connect;
pub mod pool;
pub mod select;

/// The transport of an upstream connection, as pooled and proxied.
pub type UpStream = crate::tls::stream::UpStream;
