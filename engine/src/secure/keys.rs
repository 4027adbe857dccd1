//! Signing and verifying keys built from the config's algorithm descriptions, at load time.
//!
//! Owns the translation of an [`AlgoSpec`] (algorithm name, `secret` or PEM key paths) into
//! `torii_protocol` keys: secrets are resolved (`${env.NAME}`, `${file:/path}`) through the
//! real environment and file system, PEM files are read and parsed, and the weak-key rule is
//! applied. Runs on the control thread when a config is built, never per request. Each error
//! is a [`ConfigError`] at the key it concerns, as the file names it (the spec's `key_path`:
//! `routes[0].challenge.secret`, never an internal direction the file does not have); messages
//! name the problem, never the secret.

use torii_protocol::jws::{Algorithm, SigningKey, VerifyingKey};
use torii_protocol::secret::{resolve, SecretLookup, MIN_HMAC_SECRET_LEN};

use crate::config::{io_reason, AlgoSpec, ConfigError, RawSecret};

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

/// The error about key `key` of `spec`'s key table.
fn at(spec: &AlgoSpec, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("{}.{key}", spec.key_path), message)
}

fn algorithm(spec: &AlgoSpec) -> Result<Algorithm, ConfigError> {
    spec.algorithm.parse::<Algorithm>().map_err(|_| {
        let m = format!("unsupported algorithm {:?}", spec.algorithm);
        at(spec, "algorithm", m)
    })
}

/// Resolves an HMAC secret and applies the weak-key rule (RFC 7518 §3.2: a key at least as
/// long as the hash output) unless `allow_weak`. A short secret written as a shell variable
/// (`"$CHALLENGE_SECRET"`: the text itself, since Torii does not expand it) gets the hint to
/// write `${env.…}` first: that is the mistake, not the length. Errors are messages for the
/// secret's key; they never contain the secret.
pub fn hmac_secret(raw: &RawSecret, allow_weak: bool) -> Result<Vec<u8>, String> {
    let secret = resolve(raw.expose_raw(), &SystemSecrets).map_err(|e| e.to_string())?;
    if secret.len() >= MIN_HMAC_SECRET_LEN || allow_weak {
        return Ok(secret);
    }
    let len = secret.len();
    Err(match raw.shell_hint() {
        Some(hint) => format!(
            "{hint}; that text is {len} bytes long, and HMAC keys need at least {MIN_HMAC_SECRET_LEN}"
        ),
        None => format!(
            "the secret is {len} bytes long; HMAC keys need at least {MIN_HMAC_SECRET_LEN} bytes (Otoroshi's default \
             \"secret\" is refused). Use a longer secret, or set gateway.insecure_allow_weak_keys = true to accept it"
        ),
    })
}

fn spec_secret(spec: &AlgoSpec, allow_weak: bool) -> Result<Vec<u8>, ConfigError> {
    let raw = spec
        .secret
        .as_ref()
        .ok_or_else(|| at(spec, "secret", format!("{} needs a secret", spec.algorithm)))?;
    hmac_secret(raw, allow_weak).map_err(|m| at(spec, "secret", m))
}

fn read_pem(spec: &AlgoSpec, key: &str, path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        at(
            spec,
            key,
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        )
    })
}

/// The key that signs with `spec` (HS secret or PEM private key).
pub fn signing_key(spec: &AlgoSpec, allow_weak: bool) -> Result<SigningKey, ConfigError> {
    let alg = algorithm(spec)?;
    if spec.is_hmac() {
        let secret = spec_secret(spec, allow_weak)?;
        return SigningKey::hmac(alg, &secret, allow_weak)
            .map_err(|e| at(spec, "secret", e.to_string()));
    }
    let path = spec.private_key.as_ref().ok_or_else(|| {
        at(
            spec,
            "private_key",
            format!("{alg} signing needs private_key"),
        )
    })?;
    SigningKey::from_pem(alg, &read_pem(spec, "private_key", path)?)
        .map_err(|e| at(spec, "private_key", format!("{}: {e}", path.display())))
}

/// The key that verifies with `spec` (HS secret, PEM public key, or the public half of a PEM
/// private key).
pub fn verifying_key(spec: &AlgoSpec, allow_weak: bool) -> Result<VerifyingKey, ConfigError> {
    let alg = algorithm(spec)?;
    if spec.is_hmac() {
        let secret = spec_secret(spec, allow_weak)?;
        return VerifyingKey::hmac(alg, &secret, allow_weak)
            .map_err(|e| at(spec, "secret", e.to_string()));
    }
    if let Some(path) = &spec.public_key {
        return VerifyingKey::from_public_pem(alg, &read_pem(spec, "public_key", path)?)
            .map_err(|e| at(spec, "public_key", format!("{}: {e}", path.display())));
    }
    signing_key(spec, allow_weak).map(|k| k.verifying_key())
}
