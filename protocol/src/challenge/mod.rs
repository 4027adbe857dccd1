//! Otoroshi's exchange protocol ("challenge", docs/compatibility.md): per-worker state generation, the
//! gateway's V1/V2 issue and check, and the backend's answer. Pure: the caller supplies `now`,
//! header values and buffers; nothing here reads clocks, sockets or the environment (except the
//! one-time OS seed in [`StateGenerator::from_os`]).

mod backend;
mod gateway;
mod state;

pub use backend::{BackendError, BackendResponder, DEFAULT_RESPONSE_TTL_SECS};
pub use gateway::{verify_v1, ChallengeFailure, IssueError, V2Issuer, V2Verifier, ISSUER};
pub use state::{StateGenerator, JTI_LEN, STATE_ALPHABET, STATE_LEN};

/// The protocol version of a route (Otoroshi's default for NG routes is V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChallengeVersion {
    /// Echo of a random value.
    V1,
    /// Signed tokens both ways.
    #[default]
    V2,
}
