//! Reading a JWKS document (RFC 7517) into verification keys, for the algorithms a route
//! allows.
//!
//! Owns the mapping from JWK members to [`VerifyingKey`]s: `kty: RSA` (`n`, `e`) gives a key for
//! each allowed RS*/PS* algorithm, `kty: EC` (`crv`, `x`, `y`) for the allowed ES* algorithm of
//! its curve; a JWK's own `alg`, when present, narrows that to itself. Symmetric (`oct`) keys
//! are refused (a secret in a key set invites HS/RSA confusion: use `secret` instead); keys
//! whose `use` is not `sig`, JWKs naming an algorithm Torii does not support, and unknown key
//! types (e.g. `OKP`) are skipped. A supported key that is broken (a missing or undecodable
//! member, an RSA modulus outside 2048–8192 bits, a point of the wrong size) refuses the whole
//! document, as does a document over [`MAX_JWKS_BYTES`] or [`MAX_JWKS_KEYS`]: a set is taken
//! whole or not at all. Called at config load, and by a JWKS fetcher for each document.
//! A member name repeated in any object of the document refuses it too (RFC 7517 §4 allows
//! refusing it; `crate::strict_json`).

use serde_json::Value;

use crate::jws::{Algorithm, KeyFamily, VerifyingKey};
use crate::strict_json::{parse_object, JsonError};

/// Largest JWKS document accepted, bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most JWKs a document may list (identity servers publish a handful).
pub const MAX_JWKS_KEYS: usize = 100;

/// One key of a JWKS document, for one algorithm.
#[derive(Debug)]
pub struct JwkKey {
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
    /// The key, bound to one algorithm.
    pub key: VerifyingKey,
    /// Which usable JWK of the document it comes from (0, 1, …): keys of one JWK share it.
    pub index: usize,
}

/// Parses `json` (a JWKS document `{"keys": [...]}`) into keys for `allowed` algorithms.
/// Fails when the document is malformed, too large, lists more than [`MAX_JWKS_KEYS`] keys,
/// holds an `oct` key or a broken key, or yields no key for any allowed algorithm.
pub fn parse_jwks(json: &[u8], allowed: &[Algorithm]) -> Result<Vec<JwkKey>, String> {
    if json.len() > MAX_JWKS_BYTES {
        return Err(format!("JWKS document larger than {MAX_JWKS_BYTES} bytes"));
    }
    let doc = parse_object(json).map_err(|e| match e {
        JsonError::DuplicateMember => {
            "invalid JWKS JSON: a member name appears twice in one object".to_owned()
        }
        // serde_json's own message says where the syntax breaks.
        JsonError::Invalid => match serde_json::from_slice::<Value>(json) {
            Err(detail) => format!("invalid JWKS JSON: {detail}"),
            Ok(_) => "invalid JWKS JSON: not a JSON object".to_owned(),
        },
    })?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err("JWKS document has no \"keys\" array".to_owned());
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(format!(
            "JWKS document lists {} keys (at most {MAX_JWKS_KEYS})",
            keys.len()
        ));
    }
    let mut out: Vec<JwkKey> = Vec::new();
    let mut index = 0;
    for (i, jwk) in keys.iter().enumerate() {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = field("kid").map(str::to_owned);
        let own_alg = match field("alg") {
            None => None,
            Some(a) => match a.parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => continue,
            },
        };
        let candidates = allowed
            .iter()
            .copied()
            .filter(|a| own_alg.is_none_or(|own| own == *a));
        let missing = |m: &str| format!("keys[{i}]: missing {m:?}");
        let before = out.len();
        match field("kty") {
            Some("RSA") => {
                let n = field("n").ok_or_else(|| missing("n"))?;
                let e = field("e").ok_or_else(|| missing("e"))?;
                for alg in candidates.filter(|a| a.family() == KeyFamily::Rsa) {
                    let key = VerifyingKey::from_rsa_jwk(alg, n, e)
                        .map_err(|err| format!("keys[{i}]: {err}"))?;
                    out.push(JwkKey {
                        kid: kid.clone(),
                        key,
                        index,
                    });
                }
            }
            Some("EC") => {
                let crv = field("crv").ok_or_else(|| missing("crv"))?;
                let x = field("x").ok_or_else(|| missing("x"))?;
                let y = field("y").ok_or_else(|| missing("y"))?;
                for alg in candidates.filter(|a| a.ec_curve_name() == Some(crv)) {
                    let key = VerifyingKey::from_ec_jwk(alg, crv, x, y)
                        .map_err(|err| format!("keys[{i}]: {err}"))?;
                    out.push(JwkKey {
                        kid: kid.clone(),
                        key,
                        index,
                    });
                }
            }
            Some("oct") => {
                return Err(format!(
                    "keys[{i}]: symmetric (oct) keys are not accepted in a JWKS; use `secret`"
                ))
            }
            _ => {}
        }
        if out.len() > before {
            index += 1;
        }
    }
    if out.is_empty() {
        let names: Vec<&str> = allowed.iter().map(|a| a.name()).collect();
        return Err(format!(
            "the JWKS document has no key for the allowed algorithms ({})",
            names.join(", ")
        ));
    }
    Ok(out)
}
