//! Key pairs of `[[key_pairs]]`: they sign the client-credentials access tokens, are published
//! in `jwks.json`, and verify those tokens when they come back as bearer credentials.
//!
//! A key pair is loaded from a PKCS#8 PEM (or PKCS#1 for RSA). Its algorithm follows from the
//! key: RS256 for RSA, ES256 for P-256, ES384 for P-384. Signing reuses [`SigningKey`]; the public
//! JWK members (`n`/`e`, or `crv`/`x`/`y`) are read from `ring` here. The JWKS document is
//! serialised once when the set is built. A token's `kid` is only ever a key of the `HashMap`
//! built here: never a path, URL or query.

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};
use serde_json::{json, Value};

use crate::apikey::{BearerVerifier, ACCESS_TOKEN_AUDIENCE};
use crate::jws::{
    self, Algorithm, JwtError, KeyError, SigningKey, Validation, VerifiedToken, VerifyingKey,
};

/// Why key pairs could not be loaded. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyPairError {
    /// Not a PEM private key this crate reads.
    #[error("key pair {id:?}: not a PKCS#8 RSA, P-256 or P-384 private key")]
    Unsupported {
        /// The key pair id.
        id: String,
    },
    /// The signing key could not be built.
    #[error("key pair {id:?}: {source}")]
    Key {
        /// The key pair id.
        id: String,
        /// Why.
        source: KeyError,
    },
    /// Two key pairs share an id.
    #[error("duplicate key pair id {0:?}")]
    DuplicateId(String),
    /// An id is blank.
    #[error("key pair id is blank")]
    BlankId,
}

/// One signing key pair with its id, algorithm and public JWK.
#[derive(Debug)]
pub struct KeyPair {
    id: String,
    signing: SigningKey,
    verifying: VerifyingKey,
    jwk: Value,
}

/// Base64 body of the first PEM block (or the whole text when unarmoured) and its label.
fn pem_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let mut label = String::new();
    let mut body = String::new();
    let mut inside = !pem.contains("-----BEGIN ");
    for line in pem.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            label = rest.trim_end_matches('-').to_owned();
            inside = true;
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    let der = STANDARD.decode(body.as_bytes()).ok()?;
    (!der.is_empty()).then_some((label, der))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strips the leading zero bytes ring keeps in big-endian integers (JWK wants the minimal form).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let s = &bytes[start..];
    if s.is_empty() {
        bytes.get(bytes.len().saturating_sub(1)..).unwrap_or(bytes)
    } else {
        s
    }
}

impl KeyPair {
    /// Loads key pair `id` from a PEM private key (PKCS#8 `PRIVATE KEY`, or PKCS#1
    /// `RSA PRIVATE KEY`). Called at config load; costs a few ms for RSA.
    pub fn from_pem(id: &str, pem: &str) -> Result<Self, KeyPairError> {
        let unsupported = || KeyPairError::Unsupported { id: id.to_owned() };
        let (label, der) = pem_der(pem).ok_or_else(unsupported)?;
        let rsa = if label == "RSA PRIVATE KEY" {
            RsaKeyPair::from_der(&der).ok()
        } else {
            RsaKeyPair::from_pkcs8(&der).ok()
        };
        let (alg, jwk) = if let Some(pair) = rsa {
            let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
            let jwk = json!({"kty": "RSA", "n": b64(unsigned(&c.n)), "e": b64(unsigned(&c.e))});
            (Algorithm::RS256, jwk)
        } else {
            let rng = SystemRandom::new();
            let curves = [
                (&ECDSA_P256_SHA256_FIXED_SIGNING, Algorithm::ES256, "P-256"),
                (&ECDSA_P384_SHA384_FIXED_SIGNING, Algorithm::ES384, "P-384"),
            ];
            let (alg, crv, point) = curves
                .iter()
                .find_map(|(ring_alg, alg, crv)| {
                    let pair = EcdsaKeyPair::from_pkcs8(ring_alg, &der, &rng).ok()?;
                    Some((*alg, *crv, pair.public_key().as_ref().to_vec()))
                })
                .ok_or_else(unsupported)?;
            let len = (point.len().saturating_sub(1)) / 2;
            let (x, y) = point.get(1..).unwrap_or(&[]).split_at(len);
            (
                alg,
                json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)}),
            )
        };
        let signing = SigningKey::from_pem(alg, pem).map_err(|source| KeyPairError::Key {
            id: id.to_owned(),
            source,
        })?;
        let mut jwk = jwk;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::from(id));
            m.insert("alg".into(), Value::from(alg.name()));
            m.insert("use".into(), Value::from("sig"));
        }
        Ok(KeyPair {
            id: id.to_owned(),
            verifying: signing.verifying_key(),
            signing,
            jwk,
        })
    }

    /// The id (the tokens' `kid`).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// RS256, ES256 or ES384.
    pub fn algorithm(&self) -> Algorithm {
        self.signing.algorithm()
    }
    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }
    /// The public JWK (`kty`, `kid`, `alg`, `use`, and `n`/`e` or `crv`/`x`/`y`).
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }
}

/// Every configured key pair by id, with the JWKS document prepared.
#[derive(Debug)]
pub struct KeyPairs {
    pairs: HashMap<String, KeyPair>,
    jwks: Vec<u8>,
    rules: Validation,
}

impl KeyPairs {
    /// Builds the set (duplicate or blank ids refused) and serialises the JWKS document, keys
    /// in the given order. Access tokens are later verified with a 10 s leeway.
    pub fn new(pairs: Vec<KeyPair>) -> Result<Self, KeyPairError> {
        let mut keys = Vec::with_capacity(pairs.len());
        let mut map = HashMap::with_capacity(pairs.len());
        for pair in pairs {
            if pair.id.trim().is_empty() {
                return Err(KeyPairError::BlankId);
            }
            if map.contains_key(&pair.id) {
                return Err(KeyPairError::DuplicateId(pair.id));
            }
            keys.push(pair.jwk.clone());
            map.insert(pair.id.clone(), pair);
        }
        let jwks = serde_json::to_vec(&json!({ "keys": keys })).unwrap_or_default();
        let rules = Validation {
            leeway: jws::DEFAULT_LEEWAY_SECS,
            required_claims: vec!["exp".into(), "cid".into()],
            issuer: None,
            audience: Some(ACCESS_TOKEN_AUDIENCE.into()),
            reject_future_iat: true,
            check_time: true,
        };
        Ok(KeyPairs {
            pairs: map,
            jwks,
            rules,
        })
    }

    /// Sets the leeway on `exp`/`nbf`/`iat` for [`KeyPairs::verify_access_token`].
    pub fn with_leeway(mut self, leeway: u64) -> Self {
        self.rules.leeway = leeway;
        self
    }

    /// The key pair with this id.
    pub fn get(&self, id: &str) -> Option<&KeyPair> {
        self.pairs.get(id)
    }

    /// True when there is no key pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `{"keys":[…]}`, serialised once: the body of `GET …/jwks.json`.
    pub fn jwks_json(&self) -> &[u8] {
        &self.jwks
    }

    /// Verifies an access token: `kid` present and naming a key pair (a map lookup), the
    /// algorithm of that pair, the signature, `exp` (required) and `nbf`/`iat` with the leeway,
    /// `aud` containing `otoroshi`, and a `cid` claim. The key behind `cid` is checked by
    /// `ApiKeyStore::validate`, not here.
    pub fn verify_access_token(&self, token: &[u8], now: u64) -> Result<VerifiedToken, JwtError> {
        let kid = jws::peek_kid(token)?.ok_or(JwtError::MissingClaim("kid".into()))?;
        let pair = self
            .pairs
            .get(&kid)
            .ok_or(JwtError::MissingClaim("kid".into()))?;
        jws::verify(token, &pair.verifying, &self.rules, now)
    }
}

impl KeyPairs {
    /// The time rules alone (`exp`, `nbf`, `iat` with the leeway) for an access token this
    /// set verified earlier: what a cache of verified tokens applies on every later request.
    /// The signature, `kid`, `aud` and claim types depend on the token's bytes only.
    pub fn check_times(&self, token: &VerifiedToken, now: u64) -> Result<(), JwtError> {
        jws::check_times(token.exp(), token.nbf(), token.iat(), &self.rules, now)
    }
}

impl BearerVerifier for KeyPairs {
    fn verify_bearer(&self, token: &[u8], now: u64) -> Result<VerifiedToken, &'static str> {
        self.verify_access_token(token, now).map_err(|e| match e {
            JwtError::MissingClaim(c) if c == "kid" => "unknown_kid",
            e => e.reason(),
        })
    }
}
