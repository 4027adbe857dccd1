//! The info token (`Otoroshi-Claim`, docs/compatibility.md §3): a signed JWT
//! telling the backend which route and which API key a request came through, in Otoroshi's
//! `Latest` or `Legacy` layout (no user sessions). Everything constant per route and per key is
//! prepared at config load as base64 chunks; per request only `iat`/`nbf`/`exp`/`jti` are
//! encoded and the signature computed.
//!
//! Design note (reasoned, not yet benchmarked): HMAC-absorbing the constant prefix into a cloned
//! `ring::hmac::Context` was considered. The prefix is per (route, key) pair, so it would need a
//! cache per pair, and for HS512 it saves at most the compression of a few 128-byte blocks of a
//! ~300–800-byte input while adding a ~400-byte context copy. Not implemented; the base64 chunks
//! already remove the per-key serialisation and encoding work. `torii-bench` should measure
//! `write_into` before revisiting this.

mod apikey;
mod signer;

pub use apikey::{ExtraClaims, PreparedApiKey};
pub use signer::{InfoTokenSigner, KeyedPrefix, Layout};

/// Why an info token could not be prepared or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoTokenError {
    /// An extra claim names an envelope or layout claim (or gives `sub`/`iss` a non-string).
    #[error("extra claim {0} is reserved")]
    ReservedClaim(String),
    /// The `jti` contains characters that would need JSON escaping.
    #[error("jti contains characters outside the allowed alphabet")]
    InvalidJti,
    /// The signature could not be computed.
    #[error(transparent)]
    Sign(#[from] crate::jws::SignError),
}
