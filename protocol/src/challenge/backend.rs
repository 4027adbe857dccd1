//! The backend side of the exchange protocol, so a Rust service can secure itself with this
//! crate: read the incoming `Otoroshi-State`, answer with `Otoroshi-State-Resp`. V1 echoes the
//! value; V2 verifies the state token and signs `{"state-resp":…,"aud":"Otoroshi",…}` exactly as
//! Otoroshi's demo backend (`demos/challenge` in Otoroshi's repository) does, with a ttl of 10 s by default.

use super::gateway::ISSUER;
use super::ChallengeVersion;
use crate::jws::{
    self, b64_in_place, json_string_into, sign_tail, write_time_claims, JwtError, SignError,
    SigningKey, Validation, VerifyingKey, DEFAULT_LEEWAY_SECS,
};

/// The answer lifetime Otoroshi's demo backend uses.
pub const DEFAULT_RESPONSE_TTL_SECS: u64 = 10;

/// Why the backend could not answer the challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No `Otoroshi-State` header on the request.
    #[error("no state header on the request")]
    MissingState,
    /// The V2 state token failed verification.
    #[error("invalid state token: {0}")]
    BadStateToken(JwtError),
    /// The V2 state token has no string `state` claim.
    #[error("state token has no state claim")]
    NoStateClaim,
    /// The answer could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

struct V2Keys {
    verify: VerifyingKey,
    sign: SigningKey,
    rules: Validation,
}

enum Mode {
    V1,
    V2(Box<V2Keys>),
}

/// Answers challenges on a backend. Built once at service start.
pub struct BackendResponder {
    mode: Mode,
    ttl_secs: u64,
}

impl std::fmt::Debug for BackendResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = match self.mode {
            Mode::V1 => "V1",
            Mode::V2(_) => "V2",
        };
        f.debug_struct("BackendResponder")
            .field("version", &version)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl BackendResponder {
    /// A V1 responder: echoes the state value.
    pub fn v1() -> Self {
        BackendResponder {
            mode: Mode::V1,
            ttl_secs: DEFAULT_RESPONSE_TTL_SECS,
        }
    }

    /// A V2 responder: `verify` checks the gateway's state token (signature, `exp` with a 10 s
    /// leeway, `iss` = `Otoroshi`), `sign` signs the answer, valid `ttl_secs`.
    pub fn v2(verify: VerifyingKey, sign: SigningKey, ttl_secs: u64) -> Self {
        let rules = Validation {
            leeway: DEFAULT_LEEWAY_SECS,
            required_claims: vec!["exp".to_owned()],
            issuer: Some(ISSUER.to_owned()),
            audience: None,
            reject_future_iat: true,
            check_time: true,
        };
        BackendResponder {
            mode: Mode::V2(Box::new(V2Keys {
                verify,
                sign,
                rules,
            })),
            ttl_secs,
        }
    }

    /// The protocol version this responder answers.
    pub fn version(&self) -> ChallengeVersion {
        match self.mode {
            Mode::V1 => ChallengeVersion::V1,
            Mode::V2(_) => ChallengeVersion::V2,
        }
    }

    /// Appends the `Otoroshi-State-Resp` value for the request's `Otoroshi-State` value
    /// (`None` when absent) to `out`. V1 costs a copy; V2 one verification and one signature.
    pub fn respond(
        &self,
        state_header: Option<&[u8]>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), BackendError> {
        let incoming = state_header.ok_or(BackendError::MissingState)?;
        let Mode::V2(keys) = &self.mode else {
            out.extend_from_slice(incoming);
            return Ok(());
        };
        let V2Keys {
            verify,
            sign,
            rules,
        } = keys.as_ref();
        let token =
            jws::verify(incoming, verify, rules, now).map_err(BackendError::BadStateToken)?;
        let state = token.claim_str("state").ok_or(BackendError::NoStateClaim)?;
        let start = out.len();
        out.extend_from_slice(sign.header_b64().as_bytes());
        out.push(b'.');
        let payload = out.len();
        out.extend_from_slice(b"{\"state-resp\":");
        json_string_into(out, state);
        out.extend_from_slice(b",\"aud\":\"Otoroshi\",");
        write_time_claims(out, now, self.ttl_secs);
        out.push(b'}');
        b64_in_place(out, payload);
        sign_tail(sign, start, out).inspect_err(|_| out.truncate(start))?;
        Ok(())
    }
}
