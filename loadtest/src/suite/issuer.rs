//! The external issuer of the `jwt` scenario: an RSA key pair made with the `openssl` command
//! (ring, which Torii signs with, cannot generate RSA keys) and one RS256 access token signed
//! with it through `torii-protocol`, as an identity server would hand a service. The gateway's
//! `[routes.jwt]` verifies it with the public half.
//!
//! Owns that key and that token only; nothing here is on the load path.

use std::path::{Path, PathBuf};
use std::process::Command;

use torii_protocol::jws::{encode_claims, Algorithm, SigningKey};

use super::config::{JWT_AUDIENCE, JWT_ISSUER};

/// How long the token is valid: far longer than any suite run.
const TOKEN_TTL_SECS: u64 = 6 * 3600;

/// The issuer's files.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// PKCS#8 private key (PEM).
    pub private_key: PathBuf,
    /// SPKI public key (PEM): what `[routes.jwt] public_key` names.
    pub public_key: PathBuf,
}

/// Runs `openssl` with `args`; its error output is the message on failure.
fn openssl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("openssl {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Makes a 2048-bit RSA key pair (`jwt-issuer.key`, `jwt-issuer.pub`) in `dir`.
pub fn make_issuer(dir: &Path) -> Result<Issuer, String> {
    let issuer = Issuer {
        private_key: dir.join("jwt-issuer.key"),
        public_key: dir.join("jwt-issuer.pub"),
    };
    let private = issuer.private_key.display().to_string();
    let public = issuer.public_key.display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &private,
    ])?;
    openssl(&["pkey", "-in", &private, "-pubout", "-out", &public])?;
    Ok(issuer)
}

/// An RS256 token from `issuer` for the suite's audience, issued at `now` (Unix seconds):
/// `iss`, `aud`, `sub`, `scope`, `iat`, `nbf`, `exp`.
pub fn sign_token(issuer: &Issuer, now: u64) -> Result<String, String> {
    let pem = std::fs::read_to_string(&issuer.private_key)
        .map_err(|e| format!("{}: {e}", issuer.private_key.display()))?;
    let key = SigningKey::from_pem(Algorithm::RS256, &pem)
        .map_err(|e| format!("{}: {e}", issuer.private_key.display()))?;
    let claims = serde_json::json!({
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": "suite-service",
        "scope": "read",
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_TTL_SECS,
    });
    let serde_json::Value::Object(claims) = claims else {
        return Err("token claims are not an object".into());
    };
    let mut out = Vec::new();
    encode_claims(&key, None, &claims, &mut out).map_err(|_| "RS256 signing failed".to_string())?;
    String::from_utf8(out).map_err(|_| "the token is not ASCII".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_protocol::jws::VerifyingKey;

    #[test]
    fn the_token_verifies_with_the_public_key_only() {
        let dir = super::super::procs::TempDir::new().unwrap();
        let issuer = make_issuer(&dir.path).unwrap();
        let token = sign_token(&issuer, 1_700_000_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let public = std::fs::read_to_string(&issuer.public_key).unwrap();
        assert!(public.contains("BEGIN PUBLIC KEY"));
        let key = VerifyingKey::from_public_pem(Algorithm::RS256, &public).unwrap();
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(key.verify_signature(input.as_bytes(), &sig));
        assert!(!key.verify_signature(b"x.y", &sig));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(claims["iss"], JWT_ISSUER);
        assert_eq!(claims["aud"], JWT_AUDIENCE);
        assert_eq!(claims["exp"], 1_700_000_000u64 + TOKEN_TTL_SECS);
    }
}
