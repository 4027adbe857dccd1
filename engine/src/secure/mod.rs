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

use torii_protocol::StateGenerator;

/// Current Unix time in seconds (one vDSO clock read).
#[inline]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A CSPRNG for the exchange protocol's states and `jti`s (one per thread that draws them:
/// each worker, the health checker), seeded from the OS once. If the OS cannot give entropy (it practically always
/// can), the seed falls back to time and addresses mixed together, and a warning is logged.
pub fn seeded_state_generator() -> StateGenerator {
    match StateGenerator::from_os() {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "no OS entropy for the state generator; using a time-derived seed");
            let mut seed = [0u8; 32];
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            seed[..16].copy_from_slice(&t.to_le_bytes());
            let addr = &seed as *const _ as usize as u64;
            seed[16..24].copy_from_slice(&addr.to_le_bytes());
            StateGenerator::from_seed(seed)
        }
    }
}
