//! Verification of tokens issued by an external identity server (`[routes.jwt]`, Torii's
//! counterpart of Otoroshi's JWT verifiers; docs/tls.md, and the token rules of
//! docs/security.md §6).
//!
//! Owns the rules a route applies to an external JWT: the algorithm allow-list (keys exist only
//! for allowed algorithms, and a token is checked only with a key of its own `alg`, so `none`,
//! HS-with-an-RSA-key and every other confusion fail), key lookup by `kid` in a set loaded with
//! the config (never a URL: `jku`, `x5u`, `jwk` are ignored), issuer, audience, time claims
//! with an explicit leeway, required scopes and claims ([`RequiredClaims`]), and the 8 KiB size
//! cap before any decoding. It reuses [`crate::jws::verify`] for the token itself. No IO and no
//! clock: keys come in as bytes and `now` is a parameter.
//!
//! Two halves, so that a key set fetched from a URL can be swapped under a route: a
//! [`KeySet`] (the keys) and a [`RouteCheck`] (what the route accepts: algorithms, claims).
//! [`JwtVerifier`] is the two together, for keys fixed at config load; a route whose keys come
//! from `jwks_url` calls [`RouteCheck::verify`] with the set it currently holds. Both run the
//! same code per request. [`refresh`] is the schedule a fetcher follows.

mod claims;
mod jwks;
mod keyset;
pub mod refresh;

pub use claims::{ClaimFailure, RequiredClaims};
pub use jwks::{parse_jwks, JwkKey, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use keyset::{AlgSet, KeySet};

use crate::jws::{self, peek_header, Algorithm, JwtError, Validation, VerifiedToken};
use keyset::Pick;

/// Why an external token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalJwtError {
    /// No token where the route looks for one.
    #[error("no token")]
    Missing,
    /// The token's place occurs more than once (two header lines, a query name twice after
    /// percent-decoding, a cookie twice): refused with 400 whatever the copies hold, since a
    /// backend may read a copy other than the one checked.
    #[error("token sent more than once")]
    Duplicate,
    /// The token's `kid` names no key of the set.
    #[error("unknown kid")]
    UnknownKid,
    /// The key set has several keys and the token has no `kid` to choose one.
    #[error("kid required")]
    MissingKid,
    /// The route's key set has not been fetched yet (its `jwks_url` was unreachable so far).
    #[error("key set unavailable")]
    KeysUnavailable,
    /// The token itself failed (shape, algorithm, signature, claims).
    #[error(transparent)]
    Token(#[from] JwtError),
    /// The token is valid but lacks what the route requires (`required_scopes`,
    /// `required_claims`): 403, not 401.
    #[error(transparent)]
    Forbidden(#[from] ClaimFailure),
}

impl ExternalJwtError {
    /// A short stable label for answers, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ExternalJwtError::Missing => "missing",
            ExternalJwtError::Duplicate => "duplicate",
            ExternalJwtError::UnknownKid => "unknown_kid",
            ExternalJwtError::MissingKid => "missing_kid",
            ExternalJwtError::KeysUnavailable => "keys_unavailable",
            ExternalJwtError::Token(e) => e.reason(),
            ExternalJwtError::Forbidden(f) => f.reason(),
        }
    }

    /// The HTTP status: 403 when the token verified but the route requires more, 400 for a
    /// token sent more than once, else 401.
    pub fn status(&self) -> u16 {
        match self {
            ExternalJwtError::Forbidden(_) => 403,
            ExternalJwtError::Duplicate => 400,
            _ => 401,
        }
    }
}

/// The claims a route checks besides the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalRules {
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (equal, or contained in an array).
    pub audience: Option<String>,
    /// Clock leeway, seconds.
    pub leeway: u64,
    /// Scopes and claims the token must carry (403 otherwise).
    pub required: RequiredClaims,
}

impl ExternalRules {
    fn validation(&self) -> Validation {
        Validation {
            leeway: self.leeway,
            required_claims: vec!["exp".to_owned()],
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            reject_future_iat: true,
            check_time: true,
        }
    }
}

/// Why a verifier could not be built (a config error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// What one route accepts: its algorithms, the claim rules, the required scopes and claims.
/// Immutable after build; applied to whatever [`KeySet`] the route holds at the time.
#[derive(Debug, Clone)]
pub struct RouteCheck {
    allowed: AlgSet,
    validation: Validation,
    required: RequiredClaims,
}

impl RouteCheck {
    /// The check of a route allowing `algorithms` with `rules`.
    pub fn new(algorithms: &[Algorithm], rules: &ExternalRules) -> Self {
        RouteCheck {
            allowed: algorithms.iter().copied().collect(),
            validation: rules.validation(),
            required: rules.required.clone(),
        }
    }

    /// The algorithms the route allows.
    pub fn allowed(&self) -> AlgSet {
        self.allowed
    }

    /// Verifies `token` at `now` (Unix seconds) with a key of `keys`.
    ///
    /// Per request: the size cap, one header decode to read `kid` and `alg` (skipped when the
    /// set is a single key without `kid` lookup), a scan of the set for the key of that `kid`
    /// and `alg` among the allowed algorithms, one signature check, one payload parse, then the
    /// required scopes and claims. A token without `kid` is accepted only when the set holds a
    /// single key.
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &[u8],
        now: u64,
    ) -> Result<VerifiedToken, ExternalJwtError> {
        if token.len() > jws::MAX_TOKEN_LEN {
            return Err(JwtError::TooLong.into());
        }
        let key = match keys.single() {
            Some(only) if !keys.needs_peek() => {
                if !self.allowed.contains(only.algorithm()) {
                    return Err(JwtError::AlgMismatch.into());
                }
                only
            }
            _ => match keys.pick(&peek_header(token)?, self.allowed) {
                Pick::Key(key) => key,
                Pick::UnknownKid => return Err(ExternalJwtError::UnknownKid),
                Pick::MissingKid => return Err(ExternalJwtError::MissingKid),
                Pick::Refused(e) => return Err(e.into()),
            },
        };
        let verified = jws::verify(token, key, &self.validation, now)?;
        if !self.required.is_empty() {
            self.required.check(verified.claims())?;
        }
        Ok(verified)
    }

    /// The time rules alone (`exp`, `nbf`, `iat` with the route's leeway) for a token this
    /// check verified earlier: what a cache of verified tokens applies on every later request.
    /// Everything else [`RouteCheck::verify`] decides depends on the token's bytes only.
    pub fn check_times(&self, token: &VerifiedToken, now: u64) -> Result<(), ExternalJwtError> {
        jws::check_times(token.exp(), token.nbf(), token.iat(), &self.validation, now)
            .map_err(ExternalJwtError::from)
    }
}

/// The verifier of one route whose keys are fixed at config load. Cheap to share.
#[derive(Debug)]
pub struct JwtVerifier {
    keys: KeySet,
    check: RouteCheck,
}

impl JwtVerifier {
    /// A verifier for HS* `algorithms` with `secret`. Secrets under 32 bytes are refused unless
    /// `allow_weak`.
    pub fn from_secret(
        algorithms: &[Algorithm],
        secret: &[u8],
        allow_weak: bool,
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let keys = KeySet::from_secret(algorithms, secret, allow_weak)?;
        Ok(Self::new(keys, algorithms, rules))
    }

    /// A verifier for RS*/PS*/ES* `algorithms` with one PEM public key. Every algorithm listed
    /// must suit the key.
    pub fn from_public_pem(
        algorithms: &[Algorithm],
        pem: &str,
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let keys = KeySet::from_public_pem(algorithms, pem)?;
        Ok(Self::new(keys, algorithms, rules))
    }

    /// A verifier over the keys of a JWKS document, for the allowed `algorithms`.
    pub fn from_jwks(
        algorithms: &[Algorithm],
        json: &[u8],
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let keys = KeySet::from_jwks(algorithms, json)?;
        Ok(Self::new(keys, algorithms, rules))
    }

    /// A verifier over `keys` for a route allowing `algorithms` with `rules`.
    pub fn new(keys: KeySet, algorithms: &[Algorithm], rules: &ExternalRules) -> Self {
        JwtVerifier {
            keys,
            check: RouteCheck::new(algorithms, rules),
        }
    }

    /// Number of keys (one per algorithm and key).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies `token` at `now` (Unix seconds): [`RouteCheck::verify`] with the fixed keys.
    pub fn verify(&self, token: &[u8], now: u64) -> Result<VerifiedToken, ExternalJwtError> {
        self.check.verify(&self.keys, token, now)
    }

    /// [`RouteCheck::check_times`] of this verifier's rules.
    pub fn check_times(&self, token: &VerifiedToken, now: u64) -> Result<(), ExternalJwtError> {
        self.check.check_times(token, now)
    }
}

#[cfg(test)]
mod tests;
