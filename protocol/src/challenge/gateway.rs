//! The gateway side of the exchange protocol (reference §1, decisions.md "Exchange protocol"):
//! the V1 echo check, the V2 request token issued per request, and the V2 answer check with
//! every failure a typed [`ChallengeFailure`]. Constant per-route parts are prepared once.

use subtle::ConstantTimeEq;

use super::state::{JTI_LEN, STATE_LEN};
use crate::jws::{
    self, aligned_b64, b64_in_place, sign_tail, write_u64, JwtError, SignError, SigningKey,
    Validation, VerifyingKey,
};

/// The issuer and expected audience Otoroshi uses (`otoroshi.headers.jwt.issuer`).
pub const ISSUER: &str = "Otoroshi";

/// Why a backend's challenge answer was refused. Each has a stable [`reason`](Self::reason)
/// used as the `reason` label of `torii_challenge_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeFailure {
    /// No `Otoroshi-State-Resp` (or configured) header in the response.
    #[error("no state in response header")]
    MissingHeader,
    /// V1 value or V2 `state-resp` differs from the state sent (or `state-resp` is absent).
    #[error("state from response does not match request one")]
    StateMismatch,
    /// The V2 token signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The V2 token `alg` is not the configured algorithm (including `none`).
    #[error("algorithm does not match the configured one")]
    AlgMismatch,
    /// The V2 token is not a well-formed JWS or has a malformed claim.
    #[error("malformed token")]
    Malformed,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `exp` or `iat` is missing.
    #[error("exp / iat is empty")]
    MissingExpIat,
    /// `exp - iat` exceeds the route ttl.
    #[error("response token ttl too big")]
    TtlTooLong,
    /// `iat` is older than `now - ttl - leeway` (Torii's freshness rule).
    #[error("response token is stale")]
    Stale,
    /// `aud` does not contain `Otoroshi`.
    #[error("wrong audience")]
    WrongAudience,
}

impl ChallengeFailure {
    /// Stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ChallengeFailure::MissingHeader => "missing_header",
            ChallengeFailure::StateMismatch => "state_mismatch",
            ChallengeFailure::BadSignature => "bad_signature",
            ChallengeFailure::AlgMismatch => "alg_mismatch",
            ChallengeFailure::Malformed => "malformed",
            ChallengeFailure::Expired => "expired",
            ChallengeFailure::NotYetValid => "not_yet_valid",
            ChallengeFailure::MissingExpIat => "missing_exp_iat",
            ChallengeFailure::TtlTooLong => "ttl_too_long",
            ChallengeFailure::Stale => "stale",
            ChallengeFailure::WrongAudience => "wrong_audience",
        }
    }

    fn from_jwt(e: JwtError) -> Self {
        match e {
            JwtError::AlgNone | JwtError::AlgMismatch | JwtError::MissingAlg => {
                ChallengeFailure::AlgMismatch
            }
            JwtError::BadSignature => ChallengeFailure::BadSignature,
            JwtError::Expired => ChallengeFailure::Expired,
            JwtError::NotYetValid | JwtError::IssuedInFuture => ChallengeFailure::NotYetValid,
            JwtError::WrongAudience => ChallengeFailure::WrongAudience,
            JwtError::MissingClaim(ref c) if c == "aud" => ChallengeFailure::WrongAudience,
            _ => ChallengeFailure::Malformed,
        }
    }
}

/// Checks a V1 answer: the received header value must equal the sent state byte for byte
/// (constant time; no trimming, no case folding). Called once per proxied response.
pub fn verify_v1(sent_state: &[u8], received: Option<&[u8]>) -> Result<(), ChallengeFailure> {
    let received = received.ok_or(ChallengeFailure::MissingHeader)?;
    if bool::from(sent_state.ct_eq(received)) {
        Ok(())
    } else {
        Err(ChallengeFailure::StateMismatch)
    }
}

/// Why a V2 request token could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The state or jti contains bytes that are not printable ASCII JSON-safe characters.
    #[error("state or jti contains characters outside the allowed alphabet")]
    InvalidValue,
    /// The signature could not be computed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Appends `"<value>"` after checking that `value` needs no JSON escaping.
fn push_plain_string(out: &mut Vec<u8>, value: &[u8]) -> Result<(), IssueError> {
    if !value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        return Err(IssueError::InvalidValue);
    }
    out.push(b'"');
    out.extend_from_slice(value);
    out.push(b'"');
    Ok(())
}

/// Issues V2 request tokens for one route. Built once per route at config load.
///
/// Payload: `{"iss":"Otoroshi","sub":"Otoroshi","aud":<route>,` (precomputed, space-padded to a
/// multiple of 3 bytes so its base64 is a fixed prefix) then, per request,
/// `"iat":…,"nbf":…,"exp":…,"jti":…,"state":…}`.
#[derive(Debug)]
pub struct V2Issuer {
    key: SigningKey,
    ttl_secs: u64,
    /// `b64(header).b64(constant payload prefix)`.
    prefix: Vec<u8>,
}

impl V2Issuer {
    /// Prepares the constant parts for `route_name`; `ttl_secs` is the token lifetime
    /// (Otoroshi's default 30).
    pub fn new(route_name: &str, ttl_secs: u64, key: SigningKey) -> Self {
        let mut json = Vec::with_capacity(64 + route_name.len());
        json.extend_from_slice(br#"{"iss":"Otoroshi","sub":"Otoroshi","aud":"#);
        jws::json_string_into(&mut json, route_name);
        json.push(b',');
        let mut prefix = key.header_b64().as_bytes().to_vec();
        prefix.push(b'.');
        prefix.extend_from_slice(&aligned_b64(json));
        V2Issuer {
            key,
            ttl_secs,
            prefix,
        }
    }

    /// The configured lifetime.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Appends the signed state token for `state` to `out`. Per request: ~250 bytes of JSON
    /// written and base64-encoded, one signature; no allocation when `out` has ~900 bytes free
    /// (HMAC) or more for RSA.
    pub fn issue_into(
        &self,
        state: &[u8; STATE_LEN],
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), IssueError> {
        let start = out.len();
        out.extend_from_slice(&self.prefix);
        let tail = out.len();
        out.extend_from_slice(b"\"iat\":");
        write_u64(out, now);
        out.extend_from_slice(b",\"nbf\":");
        write_u64(out, now);
        out.extend_from_slice(b",\"exp\":");
        write_u64(out, now.saturating_add(self.ttl_secs));
        out.extend_from_slice(b",\"jti\":");
        let checked = push_plain_string(out, jti).and_then(|()| {
            out.extend_from_slice(b",\"state\":");
            push_plain_string(out, state)
        });
        if let Err(e) = checked {
            out.truncate(start);
            return Err(e);
        }
        out.push(b'}');
        b64_in_place(out, tail);
        sign_tail(&self.key, start, out).inspect_err(|_| out.truncate(start))?;
        Ok(())
    }
}

/// Checks V2 answers for one route. Built once per route at config load.
#[derive(Debug)]
pub struct V2Verifier {
    key: VerifyingKey,
    ttl_secs: u64,
    leeway_secs: u64,
    rules: Validation,
}

impl V2Verifier {
    /// `key` carries the expected algorithm; `ttl_secs` caps `exp - iat` and the token age;
    /// `leeway_secs` is the clock-skew allowance (Otoroshi's default 10).
    pub fn new(key: VerifyingKey, ttl_secs: u64, leeway_secs: u64) -> Self {
        let rules = Validation {
            leeway: leeway_secs,
            required_claims: Vec::new(),
            issuer: None,
            audience: Some(ISSUER.to_owned()),
            reject_future_iat: true,
            check_time: false,
        };
        V2Verifier {
            key,
            ttl_secs,
            leeway_secs,
            rules,
        }
    }

    /// Checks the answer header value, `None` when the header is absent.
    pub fn verify_header(
        &self,
        header: Option<&[u8]>,
        expected_state: &[u8],
        now: u64,
    ) -> Result<(), ChallengeFailure> {
        self.verify(
            header.ok_or(ChallengeFailure::MissingHeader)?,
            expected_state,
            now,
        )
    }

    /// Checks a V2 answer token against the state sent. Called once per proxied response.
    /// Order: alg, signature, aud, `state-resp` (constant time), `exp`/`iat` presence,
    /// `exp - iat <= ttl`, freshness `iat >= now - ttl - leeway`, then `exp`/`nbf`/`iat`
    /// against `now` with the leeway.
    ///
    /// Note: with `exp - iat <= ttl` holding, a stale `iat` implies `exp + leeway < now`, so the
    /// freshness rule mostly refines the *reason* (a replayed old answer reports `stale`, a
    /// short-lived answer that just ran out reports `expired`); it also guards against a
    /// future change of the lifetime rule.
    /// Cost: one signature check and one small JSON parse.
    pub fn verify(
        &self,
        token: &[u8],
        expected_state: &[u8],
        now: u64,
    ) -> Result<(), ChallengeFailure> {
        let verified =
            jws::verify(token, &self.key, &self.rules, now).map_err(ChallengeFailure::from_jwt)?;
        let state_ok = verified
            .claim_str("state-resp")
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected_state)));
        if !state_ok {
            return Err(ChallengeFailure::StateMismatch);
        }
        let (Some(exp), Some(iat)) = (verified.exp(), verified.iat()) else {
            return Err(ChallengeFailure::MissingExpIat);
        };
        if exp.saturating_sub(iat) > self.ttl_secs {
            return Err(ChallengeFailure::TtlTooLong);
        }
        if iat
            .saturating_add(self.ttl_secs)
            .saturating_add(self.leeway_secs)
            < now
        {
            return Err(ChallengeFailure::Stale);
        }
        jws::check_times(Some(exp), verified.nbf(), Some(iat), &self.rules, now)
            .map_err(ChallengeFailure::from_jwt)
    }
}
