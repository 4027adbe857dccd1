//! Secret values in configuration: `${env.NAME}` and `${file:/path}` resolution, and the rule
//! that HMAC secrets must be at least 32 bytes. This crate does no IO: the engine passes a
//! [`SecretLookup`] that reads the real environment and files; tests use [`MemoryLookup`].
//! Errors name the variable or path, never the secret.
//!
//! Differences from Otoroshi's `${…}` substitution: an unset variable is an error (Otoroshi silently
//! uses the literal `no-env-var-NAME` as the key), and any other `${…}` form is an error (Otoroshi
//! uses `bad-expr`). `${env.NAME:default}` and `${config.…}` are not supported.

use std::collections::HashMap;

/// The shortest HMAC secret accepted without `insecure_allow_weak_keys` (RFC 7518 §3.2 asks
/// for a key at least as long as the hash output; 32 bytes covers HS256).
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// An HMAC secret shorter than [`MIN_HMAC_SECRET_LEN`] without the explicit opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "HMAC secret is {len} bytes, at least {MIN_HMAC_SECRET_LEN} are required \
     (set insecure_allow_weak_keys = true to accept it anyway)"
)]
pub struct WeakKey {
    /// Length of the refused secret in bytes (not the secret).
    pub len: usize,
}

/// Refuses secrets under [`MIN_HMAC_SECRET_LEN`] bytes unless `allow_weak`. Called at config
/// load by every HMAC key constructor.
pub fn check_hmac_secret(secret: &[u8], allow_weak: bool) -> Result<(), WeakKey> {
    if secret.len() < MIN_HMAC_SECRET_LEN && !allow_weak {
        Err(WeakKey { len: secret.len() })
    } else {
        Ok(())
    }
}

/// Where secrets come from. Implemented by the engine over `std::env` and `std::fs`.
pub trait SecretLookup {
    /// The value of environment variable `name`, or `None` when unset.
    fn env(&self, name: &str) -> Option<Vec<u8>>;
    /// The contents of the file at `path`, or a short description of why it could not be read
    /// (an IO error message; it must not contain file contents).
    fn read_file(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// An in-memory [`SecretLookup`] for tests and for embedding fixed values.
#[derive(Debug, Default, Clone)]
pub struct MemoryLookup {
    env: HashMap<String, Vec<u8>>,
    files: HashMap<String, Vec<u8>>,
}

impl MemoryLookup {
    /// An empty lookup: every variable unset, every file missing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an environment variable.
    pub fn with_env(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }
    /// Adds a file.
    pub fn with_file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.to_owned(), contents.into());
        self
    }
}

impl SecretLookup for MemoryLookup {
    fn env(&self, name: &str) -> Option<Vec<u8>> {
        self.env.get(name).cloned()
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_owned())
    }
}

/// Why a secret reference could not be resolved. Displays names and paths only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `${env.NAME}` with `NAME` unset.
    #[error("environment variable {0} is not set")]
    UnsetEnv(String),
    /// `${env.NAME}` where `NAME` is empty or has characters outside `[A-Za-z0-9_]`.
    #[error("invalid environment variable name {0:?}")]
    BadEnvName(String),
    /// `${file:PATH}` that could not be read.
    #[error("cannot read secret file {path}: {reason}")]
    FileUnreadable {
        /// The path.
        path: String,
        /// Why (IO error text).
        reason: String,
    },
    /// `${file:}` with an empty path.
    #[error("empty secret file path")]
    EmptyPath,
    /// A `${` that is not exactly one `${env.NAME}` or `${file:PATH}` making up the whole value.
    #[error("unsupported secret expression (only ${{env.NAME}} and ${{file:/path}} are supported, as the whole value)")]
    UnknownForm,
    /// The resolved value is not UTF-8 where text was needed (PEM keys).
    #[error("secret is not valid UTF-8")]
    NotUtf8,
}

/// Resolves a configured secret value to bytes. Called once per secret at config load.
///
/// * no `${` anywhere → the value itself;
/// * `${env.NAME}` → the variable (unset is an error);
/// * `${file:/path}` → the file contents minus one trailing `\n` (or `\r\n`);
/// * anything else containing `${` → [`SecretError::UnknownForm`].
pub fn resolve(value: &str, lookup: &dyn SecretLookup) -> Result<Vec<u8>, SecretError> {
    if !value.contains("${") {
        return Ok(value.as_bytes().to_vec());
    }
    let inner = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .filter(|inner| !inner.contains('{') && !inner.contains('}'))
        .ok_or(SecretError::UnknownForm)?;
    if let Some(name) = inner.strip_prefix("env.") {
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(SecretError::BadEnvName(name.to_owned()));
        }
        return lookup
            .env(name)
            .ok_or_else(|| SecretError::UnsetEnv(name.to_owned()));
    }
    if let Some(path) = inner.strip_prefix("file:") {
        if path.is_empty() {
            return Err(SecretError::EmptyPath);
        }
        let mut contents =
            lookup
                .read_file(path)
                .map_err(|reason| SecretError::FileUnreadable {
                    path: path.to_owned(),
                    reason,
                })?;
        if contents.last() == Some(&b'\n') {
            contents.pop();
            if contents.last() == Some(&b'\r') {
                contents.pop();
            }
        }
        return Ok(contents);
    }
    Err(SecretError::UnknownForm)
}

/// [`resolve`], then requires UTF-8 (for PEM text).
pub fn resolve_utf8(value: &str, lookup: &dyn SecretLookup) -> Result<String, SecretError> {
    String::from_utf8(resolve(value, lookup)?).map_err(|_| SecretError::NotUtf8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lookup() -> MemoryLookup {
        MemoryLookup::new()
            .with_env("TOKEN_KEY", "from-env-0123456789")
            .with_env("EMPTY", "")
            .with_file("/run/secrets/k", "line1\nline2\n\n")
            .with_file("/run/secrets/crlf", "abc\r\n")
            .with_file("/run/secrets/raw", vec![0xff, 0x00])
    }

    #[test]
    fn literals_pass_through() {
        assert_eq!(resolve("plain secret", &lookup()).unwrap(), b"plain secret");
        assert_eq!(resolve("$notexpr {x}", &lookup()).unwrap(), b"$notexpr {x}");
    }

    #[test]
    fn env_and_file() {
        assert_eq!(
            resolve("${env.TOKEN_KEY}", &lookup()).unwrap(),
            b"from-env-0123456789"
        );
        assert_eq!(resolve("${env.EMPTY}", &lookup()).unwrap(), b"");
        // Exactly one trailing newline is removed.
        assert_eq!(
            resolve("${file:/run/secrets/k}", &lookup()).unwrap(),
            b"line1\nline2\n"
        );
        assert_eq!(
            resolve("${file:/run/secrets/crlf}", &lookup()).unwrap(),
            b"abc"
        );
        assert_eq!(
            resolve("${file:/run/secrets/raw}", &lookup()).unwrap(),
            vec![0xff, 0]
        );
        assert_eq!(
            resolve_utf8("${file:/run/secrets/raw}", &lookup()),
            Err(SecretError::NotUtf8)
        );
    }

    #[test]
    fn errors_are_typed_and_never_show_secrets() {
        let l = lookup();
        assert_eq!(
            resolve("${env.MISSING}", &l),
            Err(SecretError::UnsetEnv("MISSING".into()))
        );
        assert_eq!(
            resolve("${env.}", &l),
            Err(SecretError::BadEnvName(String::new()))
        );
        assert_eq!(
            resolve("${env.A:def}", &l),
            Err(SecretError::BadEnvName("A:def".into()))
        );
        assert_eq!(resolve("${file:}", &l), Err(SecretError::EmptyPath));
        assert!(matches!(
            resolve("${file:/nope}", &l),
            Err(SecretError::FileUnreadable { ref path, .. }) if path == "/nope"
        ));
        for bad in [
            "${config.app.claim.sharedKey}",
            "${vault://x}",
            "pre${env.TOKEN_KEY}",
            "${env.TOKEN_KEY}post",
            "${env.TOKEN_KEY",
            "${${env.X}}",
        ] {
            let err = resolve(bad, &l).unwrap_err();
            assert!(!err.to_string().contains("from-env"), "{err}");
            assert!(matches!(err, SecretError::UnknownForm), "{bad}: {err:?}");
        }
    }

    #[test]
    fn weak_key_rule() {
        assert_eq!(check_hmac_secret(b"secret", false), Err(WeakKey { len: 6 }));
        assert!(check_hmac_secret(b"secret", true).is_ok());
        assert!(check_hmac_secret(&[7u8; 32], false).is_ok());
        assert_eq!(
            check_hmac_secret(&[7u8; 31], false),
            Err(WeakKey { len: 31 })
        );
        assert!(!WeakKey { len: 6 }.to_string().contains("secret\""));
    }
}
