//! Signing and verifying keys built from the config's algorithm descriptions, at load time.
//!
//! Owns the translation of an [`AlgoSpec`] (algorithm name, `secret` or PEM key paths) into
//! `torii_protocol` keys: secrets are resolved (`${env.NAME}`, `${file:/path}`) through the
//! real environment and file system, PEM files are read and parsed, and the weak-key rule is
//! applied. Runs on the control thread when a config is built, never per request. Error
//! messages name the problem, never the secret.

use torii_protocol::jws::{Algorithm, SigningKey, VerifyingKey};
use torii_protocol::secret::{resolve, SecretLookup, MIN_HMAC_SECRET_LEN};

use crate::config::AlgoSpec;

/// Secrets from the process environment and the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemSecrets;

impl SecretLookup for SystemSecrets {
    fn env(&self, name: &str) -> Option<Vec<u8>> {
        std::env::var_os(name).map(|v| v.into_encoded_bytes())
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| e.to_string())
    }
}

fn algorithm(spec: &AlgoSpec) -> Result<Algorithm, String> {
    spec.algorithm
        .parse::<Algorithm>()
        .map_err(|_| format!("unsupported algorithm {:?}", spec.algorithm))
}

fn hmac_secret(spec: &AlgoSpec, allow_weak: bool) -> Result<Vec<u8>, String> {
    let raw = spec
        .secret
        .as_ref()
        .ok_or_else(|| format!("{} needs a secret", spec.algorithm))?;
    let secret = resolve(raw.expose_raw(), &SystemSecrets).map_err(|e| e.to_string())?;
    if secret.len() < MIN_HMAC_SECRET_LEN && !allow_weak {
        return Err(format!(
            "the secret is {} bytes long; HMAC keys need at least {MIN_HMAC_SECRET_LEN} bytes (Otoroshi's default \
             \"secret\" is refused). Use a longer secret, or set gateway.insecure_allow_weak_keys = true to accept it",
            secret.len()
        ));
    }
    Ok(secret)
}

fn read_pem(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The key that signs with `spec` (HS secret or PEM private key).
pub fn signing_key(spec: &AlgoSpec, allow_weak: bool) -> Result<SigningKey, String> {
    let alg = algorithm(spec)?;
    if spec.is_hmac() {
        let secret = hmac_secret(spec, allow_weak)?;
        return SigningKey::hmac(alg, &secret, allow_weak).map_err(|e| e.to_string());
    }
    let path = spec
        .private_key
        .as_ref()
        .ok_or_else(|| format!("{alg} signing needs private_key"))?;
    SigningKey::from_pem(alg, &read_pem(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// The key that verifies with `spec` (HS secret, PEM public key, or the public half of a PEM
/// private key).
pub fn verifying_key(spec: &AlgoSpec, allow_weak: bool) -> Result<VerifyingKey, String> {
    let alg = algorithm(spec)?;
    if spec.is_hmac() {
        let secret = hmac_secret(spec, allow_weak)?;
        return VerifyingKey::hmac(alg, &secret, allow_weak).map_err(|e| e.to_string());
    }
    if let Some(path) = &spec.public_key {
        return VerifyingKey::from_public_pem(alg, &read_pem(path)?)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    signing_key(spec, allow_weak).map(|k| k.verifying_key())
}
