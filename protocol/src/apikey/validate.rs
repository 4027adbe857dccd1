//! The one validation every API key credential goes through, whatever extractor found it
//! (no extractor path skips a check: Otoroshi's issues #2596 and #2598 were extractor paths
//! that did).
//!
//! Order of checks, each with its own [`ApiKeyError`] reason for logs and metrics:
//! 1. the client id names a key (`Unknown`; a dummy secret comparison still runs so the time
//!    taken does not say whether the id exists);
//! 2. the credential proves the key: the secret (SHA-256 digests compared in constant time),
//!    client-id-only allowed by the key, or a verified access token bound to the key
//!    (`BadSecret`, `BadToken`);
//! 3. the key is enabled (`Disabled`) and `now < valid_until` (`Expired`);
//! 4. the key is authorised on the route (`NotAuthorized`, the only 403).
//!
//! Answers (docs/oauth2.md "Answers"): 401 `No ApiKey provided`, 401 `Credential not read on
//! this route; it accepts: …` (see [`super::Accepts`]), 401 `Bad API key`, 403 `API key not
//! authorized on this route`.

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::accepts::Accepts;
use super::model::{secret_digest, ApiKey, ApiKeyStore, StoredKey};
use crate::jws::{audience_contains, VerifiedToken};
use crate::jwt_verifier::ClaimFailure;

/// The audience of OAuth2 access tokens issued by the client-credentials service. The V2
/// exchange protocol uses `Otoroshi` (capital O), so challenge tokens never pass as bearers.
pub const ACCESS_TOKEN_AUDIENCE: &str = "otoroshi";

pub use super::accepts::MSG_NONE_PROVIDED;
/// Message for every 401 once a credential was found.
pub const MSG_BAD_KEY: &str = "Bad API key";
/// Message for a valid key used on a route it is not authorised on.
pub const MSG_NOT_AUTHORIZED: &str = "API key not authorized on this route";
/// Message for a valid key whose scopes lack one the route requires.
pub const MSG_INSUFFICIENT_SCOPE: &str = "Insufficient scope";
/// Message for a valid key whose token lacks a claim value the route requires.
pub const MSG_CLAIM_NOT_ALLOWED: &str = "Claim not allowed";
/// Message for a request that carries a credential place more than once.
pub const MSG_DUPLICATE: &str = "Credential sent more than once";

/// A credential as extracted, ready to validate.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// A client id alone (`x-api-key`): accepted only by keys with `allow_client_id_only`.
    IdOnly(&'a [u8]),
    /// A client id and secret (custom headers, Basic).
    IdSecret(&'a [u8], &'a [u8]),
    /// An access token whose signature, `exp`/`nbf` and audience were already verified with the
    /// key pair named by its `kid` (see `oauth::KeyPairs::verify_access_token`).
    Bearer(&'a VerifiedToken),
}

/// Why a credential was refused. `status()` and `message()` give the answer; `reason()` a
/// stable label for logs and metrics. Never contains a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No credential was found on the request.
    #[error("no API key provided")]
    NoneProvided,
    /// No credential in a place the route reads, but a place of an extractor the route has
    /// switched off is on the request (`Otoroshi-Client-Id` on a bearer-only route; see
    /// [`super::missing`]): 401 with a message listing what the route reads.
    #[error("credential in a place this route does not read")]
    NotAccepted(Accepts),
    /// The client id names no key.
    #[error("unknown client id")]
    Unknown,
    /// Wrong secret, or a client id alone for a key that does not allow it.
    #[error("bad secret")]
    BadSecret,
    /// The key is disabled.
    #[error("key disabled")]
    Disabled,
    /// `now >= valid_until`.
    #[error("key expired")]
    Expired,
    /// The key is valid but not authorised on this route.
    #[error("key not authorized on this route")]
    NotAuthorized,
    /// The bearer token failed verification or is not bound to its key; the label says why.
    #[error("bad token: {0}")]
    BadToken(&'static str),
    /// The key is valid and authorised, but lacks a scope or claim the route requires
    /// (`required_scopes`, `required_claims`; see [`super::check_required`]).
    #[error("forbidden: {0}")]
    Forbidden(ClaimFailure),
    /// A place of an enabled extractor occurs more than once (two header lines, a query name
    /// twice after percent-decoding, a cookie twice): 400, whichever copy is valid, since
    /// backends disagree on which copy they read.
    #[error("credential sent more than once")]
    Duplicate,
}

impl ApiKeyError {
    /// HTTP status: 403 for `NotAuthorized` and `Forbidden`, 400 for `Duplicate` (a malformed
    /// request: the same credential again would be refused again), 401 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            ApiKeyError::Duplicate => 400,
            ApiKeyError::NotAuthorized | ApiKeyError::Forbidden(_) => 403,
            _ => 401,
        }
    }

    /// The `Otoroshi-Error` message.
    pub fn message(&self) -> &'static str {
        match self {
            ApiKeyError::NoneProvided => MSG_NONE_PROVIDED,
            ApiKeyError::NotAccepted(accepts) => accepts.message(),
            ApiKeyError::NotAuthorized => MSG_NOT_AUTHORIZED,
            ApiKeyError::Forbidden(ClaimFailure::MissingScope) => MSG_INSUFFICIENT_SCOPE,
            ApiKeyError::Forbidden(ClaimFailure::ClaimNotAllowed) => MSG_CLAIM_NOT_ALLOWED,
            ApiKeyError::Duplicate => MSG_DUPLICATE,
            _ => MSG_BAD_KEY,
        }
    }

    /// The JSON body `{"Otoroshi-Error":"<message>"}` (static: messages need no escaping).
    pub fn body(&self) -> &'static str {
        match self {
            ApiKeyError::NoneProvided => "{\"Otoroshi-Error\":\"No ApiKey provided\"}",
            ApiKeyError::NotAccepted(accepts) => accepts.body(),
            ApiKeyError::NotAuthorized => {
                "{\"Otoroshi-Error\":\"API key not authorized on this route\"}"
            }
            ApiKeyError::Forbidden(ClaimFailure::MissingScope) => {
                "{\"Otoroshi-Error\":\"Insufficient scope\"}"
            }
            ApiKeyError::Forbidden(ClaimFailure::ClaimNotAllowed) => {
                "{\"Otoroshi-Error\":\"Claim not allowed\"}"
            }
            ApiKeyError::Duplicate => "{\"Otoroshi-Error\":\"Credential sent more than once\"}",
            _ => "{\"Otoroshi-Error\":\"Bad API key\"}",
        }
    }

    /// The `WWW-Authenticate` value for 401 answers (RFC 7235); `None` for 403, except a
    /// missing scope, which gets RFC 6750 §3.1 `insufficient_scope`. A bad bearer token gets
    /// the RFC 6750 `invalid_token` challenge.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            ApiKeyError::NotAuthorized
            | ApiKeyError::Duplicate
            | ApiKeyError::Forbidden(ClaimFailure::ClaimNotAllowed) => None,
            ApiKeyError::Forbidden(ClaimFailure::MissingScope) => {
                Some("Bearer realm=\"otoroshi\", error=\"insufficient_scope\"")
            }
            ApiKeyError::BadToken(_) => Some("Bearer realm=\"otoroshi\", error=\"invalid_token\""),
            _ => Some("Basic realm=\"otoroshi\""),
        }
    }

    /// A stable short label (`none_provided`, `not_accepted`, `unknown`, `bad_secret`, `disabled`, `expired`,
    /// `not_authorized`, `duplicate`, or the token reason such as `expired_token`, `alg_mismatch`).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiKeyError::NoneProvided => "none_provided",
            ApiKeyError::NotAccepted(_) => "not_accepted",
            ApiKeyError::Unknown => "unknown",
            ApiKeyError::BadSecret => "bad_secret",
            ApiKeyError::Disabled => "disabled",
            ApiKeyError::Expired => "expired",
            ApiKeyError::NotAuthorized => "not_authorized",
            ApiKeyError::BadToken(r) => r,
            ApiKeyError::Forbidden(f) => f.reason(),
            ApiKeyError::Duplicate => "duplicate",
        }
    }
}

/// Digest compared when the id is unknown, so that path costs the same as a wrong secret.
const DUMMY_DIGEST: [u8; 32] = [0x5a; 32];

fn client_id_of(token: &VerifiedToken) -> Option<&str> {
    token.claim_str("cid")
}

/// Checks that the credential proves `entry`'s key (step 2).
fn check_proof(entry: &StoredKey, creds: &Credentials<'_>) -> Result<(), ApiKeyError> {
    let key = entry.key();
    match creds {
        Credentials::IdOnly(_) => {
            if key.allow_client_id_only {
                Ok(())
            } else {
                Err(ApiKeyError::BadSecret)
            }
        }
        Credentials::IdSecret(_, secret) => {
            let given = secret_digest(secret);
            if bool::from(given.ct_eq(entry.secret_digest())) {
                Ok(())
            } else {
                Err(ApiKeyError::BadSecret)
            }
        }
        Credentials::Bearer(token) => {
            match token.claims().get("aud") {
                Some(aud) if audience_contains(aud, ACCESS_TOKEN_AUDIENCE) => {}
                _ => return Err(ApiKeyError::BadToken("wrong_audience")),
            }
            if token.exp().is_none() {
                return Err(ApiKeyError::BadToken("missing_exp"));
            }
            if let Some(bound) = key.sign_key_pair() {
                if token.header().kid.as_deref() != Some(bound) {
                    return Err(ApiKeyError::BadToken("kid_mismatch"));
                }
            }
            if token.claims().get("sub").and_then(Value::as_str) != Some(key.client_id.as_str()) {
                return Err(ApiKeyError::BadToken("sub_mismatch"));
            }
            Ok(())
        }
    }
}

impl ApiKeyStore {
    /// Validates a credential for `route_id` at `now` (Unix seconds): the single check every
    /// extractor goes through. Returns the stored key (with its prepared info-token chunks).
    ///
    /// Cost: one hash lookup and, for a secret, one SHA-256 of the presented secret.
    pub fn validate_entry(
        &self,
        creds: &Credentials<'_>,
        route_id: &str,
        now: u64,
    ) -> Result<&StoredKey, ApiKeyError> {
        let entry = self.authenticate_key(creds, now)?;
        if !entry.key().allows_route(route_id) {
            return Err(ApiKeyError::NotAuthorized);
        }
        Ok(entry)
    }

    /// [`ApiKeyStore::validate_entry`], giving the key only.
    pub fn validate(
        &self,
        creds: &Credentials<'_>,
        route_id: &str,
        now: u64,
    ) -> Result<&ApiKey, ApiKeyError> {
        self.validate_entry(creds, route_id, now)
            .map(StoredKey::key)
    }

    /// Steps 1–3 of the validation without the route (step 4): used by the OAuth2 endpoints,
    /// which are not routes. Every other caller must use [`ApiKeyStore::validate`].
    pub fn authenticate_key(
        &self,
        creds: &Credentials<'_>,
        now: u64,
    ) -> Result<&StoredKey, ApiKeyError> {
        let entry = match creds {
            Credentials::IdOnly(id) | Credentials::IdSecret(id, _) => self.get_bytes(id),
            Credentials::Bearer(token) => match client_id_of(token) {
                Some(id) => self.get(id),
                None => return Err(ApiKeyError::BadToken("missing_cid")),
            },
        };
        let Some(entry) = entry else {
            if let Credentials::IdSecret(_, secret) = creds {
                // Same work as a wrong secret; the result is irrelevant.
                let _ = secret_digest(secret).ct_eq(&DUMMY_DIGEST);
            }
            return Err(ApiKeyError::Unknown);
        };
        check_proof(entry, creds)?;
        let key = entry.key();
        if !key.enabled {
            return Err(ApiKeyError::Disabled);
        }
        if key.is_expired(now) {
            return Err(ApiKeyError::Expired);
        }
        Ok(entry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store() -> ApiKeyStore {
        let mut good = ApiKey::new("good", "s3cret", "Good");
        good.routes = vec!["r1".into()];
        let mut idonly = ApiKey::new("idonly", "x", "IdOnly");
        idonly.routes = vec!["r1".into()];
        idonly.allow_client_id_only = true;
        let mut off = ApiKey::new("off", "s", "Off");
        off.routes = vec!["r1".into()];
        off.enabled = false;
        let mut old = ApiKey::new("old", "s", "Old");
        old.routes = vec!["r1".into()];
        old.valid_until = Some(100);
        ApiKeyStore::new(vec![good, idonly, off, old]).unwrap()
    }

    #[test]
    fn secret_checks() {
        let s = store();
        let ok = Credentials::IdSecret(b"good", b"s3cret");
        assert_eq!(s.validate(&ok, "r1", 0).unwrap().client_id, "good");
        assert_eq!(
            s.validate(&ok, "r2", 0).unwrap_err(),
            ApiKeyError::NotAuthorized
        );
        for bad in [&b"s3cre"[..], b"s3cret ", b"", b"S3cret"] {
            let creds = Credentials::IdSecret(b"good", bad);
            assert_eq!(
                s.validate(&creds, "r1", 0).unwrap_err(),
                ApiKeyError::BadSecret
            );
        }
        // A wrong secret on a route the key lacks is still 401, not 403.
        let creds = Credentials::IdSecret(b"good", b"nope");
        assert_eq!(s.validate(&creds, "r2", 0).unwrap_err().status(), 401);
    }

    #[test]
    fn id_only_needs_opt_in() {
        let s = store();
        assert!(s.validate(&Credentials::IdOnly(b"idonly"), "r1", 0).is_ok());
        assert_eq!(
            s.validate(&Credentials::IdOnly(b"good"), "r1", 0)
                .unwrap_err(),
            ApiKeyError::BadSecret
        );
        assert_eq!(
            s.validate(&Credentials::IdOnly(b"nobody"), "r1", 0)
                .unwrap_err(),
            ApiKeyError::Unknown
        );
    }

    #[test]
    fn state_checks() {
        let s = store();
        let off = Credentials::IdSecret(b"off", b"s");
        assert_eq!(
            s.validate(&off, "r1", 0).unwrap_err(),
            ApiKeyError::Disabled
        );
        let old = Credentials::IdSecret(b"old", b"s");
        assert!(s.validate(&old, "r1", 99).is_ok());
        assert_eq!(
            s.validate(&old, "r1", 100).unwrap_err(),
            ApiKeyError::Expired
        );
    }

    #[test]
    fn answers() {
        assert_eq!(ApiKeyError::NoneProvided.message(), "No ApiKey provided");
        assert_eq!(ApiKeyError::NotAuthorized.status(), 403);
        for e in [
            ApiKeyError::Unknown,
            ApiKeyError::BadSecret,
            ApiKeyError::Disabled,
            ApiKeyError::Expired,
            ApiKeyError::BadToken("x"),
        ] {
            assert_eq!(e.status(), 401);
            assert_eq!(e.message(), "Bad API key");
            assert!(e.www_authenticate().is_some());
        }
        let bearer_only = super::super::Extractors {
            client_id: false,
            headers: false,
            basic: false,
            ..Default::default()
        };
        let not_accepted = ApiKeyError::NotAccepted(Accepts::of(&bearer_only));
        assert_eq!(not_accepted.status(), 401);
        assert_eq!(not_accepted.reason(), "not_accepted");
        assert_eq!(
            not_accepted.www_authenticate(),
            ApiKeyError::NoneProvided.www_authenticate()
        );
        assert!(not_accepted
            .message()
            .starts_with("Credential not read on this route; it accepts: a bearer token"));
        for e in [
            ApiKeyError::NoneProvided,
            ApiKeyError::NotAuthorized,
            not_accepted,
        ] {
            let v: Value = serde_json::from_str(e.body()).unwrap();
            assert_eq!(v["Otoroshi-Error"], e.message());
        }
        // The challenge of each answer (RFC 7235; RFC 6750 §3 for a bad bearer token).
        assert_eq!(ApiKeyError::NotAuthorized.www_authenticate(), None);
        assert_eq!(
            ApiKeyError::BadToken("expired").www_authenticate(),
            Some("Bearer realm=\"otoroshi\", error=\"invalid_token\"")
        );
        for e in [ApiKeyError::NoneProvided, ApiKeyError::BadSecret] {
            assert_eq!(e.www_authenticate(), Some("Basic realm=\"otoroshi\""));
        }
    }
}
