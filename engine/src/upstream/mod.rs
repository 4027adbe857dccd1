//! Upstream side of the proxy, the parts a worker owns: per-worker keep-alive pools and target
//! selection. Opening a connection for a request is a proxy phase (`proxy::connect`).

pub mod pool;
pub mod select;

/// The transport of an upstream connection, as pooled and proxied.
pub type UpStream = crate::tls::stream::UpStream;
