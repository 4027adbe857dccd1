//! Verification of tokens issued by an external identity server (`[routes.jwt]`, reference
//! §5.4 "JWT verifiers", decisions and hardening.md "JWT and keys").
//!
//! Owns the rules a route applies to an external JWT: the algorithm allow-list (keys exist only
//! for allowed algorithms, and a token is checked only with a key of its own `alg`, so `none`,
//! HS-with-an-RSA-key and every other confusion fail), key lookup by `kid` in a set loaded with
//! the config (never a URL: `jku`, `x5u`, `jwk` are ignored), issuer, audience, time claims
//! with an explicit leeway, and the 8 KiB size cap before any decoding. It reuses
//! [`crate::jws::verify`] for the token itself. No IO and no clock: keys come in as bytes and
//! `now` is a parameter. Built once per config load; [`JwtVerifier::verify`] runs per request.

mod jwks;

pub use jwks::{parse_jwks, JwkKey};

use crate::jws::{
    self, peek_kid, Algorithm, JwtError, KeyFamily, Validation, VerifiedToken, VerifyingKey,
};

/// Why an external token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalJwtError {
    /// No token where the route looks for one.
    #[error("no token")]
    Missing,
    /// The token's `kid` names no key of the set.
    #[error("unknown kid")]
    UnknownKid,
    /// The key set has several keys and the token has no `kid` to choose one.
    #[error("kid required")]
    MissingKid,
    /// The token itself failed (shape, algorithm, signature, claims).
    #[error(transparent)]
    Token(#[from] JwtError),
}

impl ExternalJwtError {
    /// A short stable label for answers, logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ExternalJwtError::Missing => "missing",
            ExternalJwtError::UnknownKid => "unknown_kid",
            ExternalJwtError::MissingKid => "missing_kid",
            ExternalJwtError::Token(e) => e.reason(),
        }
    }
}

/// One verification key, with the `kid` it is looked up by (if any).
#[derive(Debug)]
struct Entry {
    kid: Option<String>,
    key: VerifyingKey,
}

/// The verifier of one route. Immutable after build; cheap to share.
#[derive(Debug)]
pub struct JwtVerifier {
    entries: Vec<Entry>,
    by_kid: bool,
    validation: Validation,
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

impl JwtVerifier {
    /// A verifier for HS* `algorithms` with `secret`. Secrets under 32 bytes are refused unless
    /// `allow_weak`.
    pub fn from_secret(
        algorithms: &[Algorithm],
        secret: &[u8],
        allow_weak: bool,
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let entries = algorithms
            .iter()
            .map(|&alg| {
                if alg.family() != KeyFamily::Hmac {
                    return Err(BuildError(format!("{} does not take a secret", alg.name())));
                }
                VerifyingKey::hmac(alg, secret, allow_weak)
                    .map(|key| Entry { kid: None, key })
                    .map_err(|e| BuildError(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(entries, false, rules)
    }

    /// A verifier for RS*/PS*/ES* `algorithms` with one PEM public key. Every algorithm listed
    /// must suit the key.
    pub fn from_public_pem(
        algorithms: &[Algorithm],
        pem: &str,
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let entries = algorithms
            .iter()
            .map(|&alg| {
                VerifyingKey::from_public_pem(alg, pem)
                    .map(|key| Entry { kid: None, key })
                    .map_err(|e| BuildError(format!("{}: {e}", alg.name())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(entries, false, rules)
    }

    /// A verifier over the keys of a JWKS document, for the allowed `algorithms`.
    pub fn from_jwks(
        algorithms: &[Algorithm],
        json: &[u8],
        rules: &ExternalRules,
    ) -> Result<Self, BuildError> {
        let keys = parse_jwks(json, algorithms).map_err(BuildError)?;
        let entries = keys
            .into_iter()
            .map(|k| Entry {
                kid: k.kid,
                key: k.key,
            })
            .collect();
        Self::new(entries, true, rules)
    }

    fn new(entries: Vec<Entry>, by_kid: bool, rules: &ExternalRules) -> Result<Self, BuildError> {
        if entries.is_empty() {
            return Err(BuildError("no usable key".to_owned()));
        }
        Ok(Self {
            entries,
            by_kid,
            validation: rules.validation(),
        })
    }

    /// Number of keys (one per algorithm and key).
    pub fn key_count(&self) -> usize {
        self.entries.len()
    }

    /// Verifies `token` at `now` (Unix seconds).
    ///
    /// Per request: the size cap, at most one header decode per candidate key (a candidate of
    /// another algorithm fails at the header, before any signature work), one signature check
    /// and one payload parse. With a JWKS, the token's `kid` selects the candidates; a token
    /// without `kid` is accepted only when the set has a single key.
    pub fn verify(&self, token: &[u8], now: u64) -> Result<VerifiedToken, ExternalJwtError> {
        if token.len() > jws::MAX_TOKEN_LEN {
            return Err(JwtError::TooLong.into());
        }
        let kid = if self.by_kid { peek_kid(token)? } else { None };
        let mut last = None;
        for entry in &self.entries {
            if self.by_kid {
                match (&kid, &entry.kid) {
                    (Some(want), Some(have)) if want == have => {}
                    (Some(_), _) => continue,
                    (None, _) if self.entries.len() > 1 => {
                        return Err(ExternalJwtError::MissingKid)
                    }
                    (None, _) => {}
                }
            }
            match jws::verify(token, &entry.key, &self.validation, now) {
                Ok(t) => return Ok(t),
                // Another key may be of the token's algorithm.
                Err(JwtError::AlgMismatch) => last = Some(JwtError::AlgMismatch),
                Err(e) => return Err(e.into()),
            }
        }
        // A candidate that was tried either returned or left `AlgMismatch` here, so nothing
        // here means that no key had the token's kid.
        match last {
            Some(e) => Err(e.into()),
            None => Err(ExternalJwtError::UnknownKid),
        }
    }
}

#[cfg(test)]
mod tests;
