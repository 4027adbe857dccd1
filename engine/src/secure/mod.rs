//! Security features attached to routes: the exchange protocol (challenge), the info token and
//! the external JWT check.
//!
//! Owns the per-route objects built at config load (keys, prepared token parts, header lines)
//! and the per-request operations on them, which the proxy calls: render the request headers
//! (`Otoroshi-State`, `Otoroshi-Claim`) and check the backend's answer. Nothing here parses a
//! key or a config value per request.

pub mod challenge;
pub mod info;
pub mod jwt;
pub mod keys;
pub mod token_cache;

pub use challenge::RouteChallenge;
pub use info::RouteInfoToken;
pub use jwt::RouteJwt;

/// Current Unix time in seconds (one vDSO clock read).
#[inline]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
