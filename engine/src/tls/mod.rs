//! TLS on both sides of the gateway, with rustls on the ring provider only.
//!
//! Owns the rustls configs built at load time ([`server`]: https listeners, SNI, mTLS;
//! [`client`]: `https://` targets), PEM file reading ([`pem`]) and the upstream transport that
//! is plain or TLS ([`stream`]). The provider is always built with
//! `builder_with_provider(ring)`, so no process-wide default provider is installed or used.
//! Nothing here runs per request except the IO of [`stream::UpStream`].

pub mod client;
pub mod pem;
pub mod server;
pub mod stream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::SupportedProtocolVersion;

/// TLS 1.3 and TLS 1.2, nothing older.
pub const VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring crypto provider (the only one compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
