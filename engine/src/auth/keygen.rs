//! `torii keygen`: makes a PKCS#8 PEM signing key for `[[key_pairs]]`, and the same generator
//! for the ephemeral key pair used when none is configured.
//!
//! Owns key generation (ring's ECDSA P-256/P-384 PKCS#8 generator; ring cannot generate RSA
//! keys, so RSA keys come from elsewhere, e.g. `openssl genpkey`) and writing the file with
//! owner-only permissions, creating the directories above it that are missing (so that
//! `--out keys/signing.pem` works on a fresh checkout). It never overwrites an existing file and
//! never prints the key.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};

/// The kinds of key `torii keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// ECDSA on P-256: tokens signed ES256.
    #[value(name = "ec-p256")]
    EcP256,
    /// ECDSA on P-384: tokens signed ES384.
    #[value(name = "ec-p384")]
    EcP384,
}

impl KeyKind {
    fn ring_alg(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            KeyKind::EcP256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
            KeyKind::EcP384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }
}

/// Wraps DER bytes in a PEM block with `label`, 64 characters a line.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A fresh PKCS#8 `PRIVATE KEY` PEM of `kind`, from the OS's CSPRNG.
pub fn generate_pem(kind: KeyKind) -> Result<String, String> {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(kind.ring_alg(), &rng)
        .map_err(|_| "key generation failed (no OS entropy?)".to_owned())?;
    Ok(pem_encode("PRIVATE KEY", doc.as_ref()))
}

/// `torii keygen --kind KIND --out FILE`: writes a new key to `out` (which must not exist),
/// readable by its owner only, after creating the missing directories above it (with the
/// process's umask, like `mkdir -p`: the key file's own mode is what keeps it private).
/// Returns the line to print.
pub fn run(kind: KeyKind, out: &Path) -> Result<String, String> {
    let pem = generate_pem(kind)?;
    create_parent(out)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let shown = out.display();
    let mut file = opts.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{shown} already exists; remove it first or choose another --out")
        }
        _ => format!("cannot create {shown}: {e}"),
    })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    let alg = match kind {
        KeyKind::EcP256 => "ES256",
        KeyKind::EcP384 => "ES384",
    };
    Ok(format!(
        "wrote a PKCS#8 {alg} signing key to {shown}; use it as [[key_pairs]] private_key"
    ))
}

/// Creates the directories above `out` that do not exist yet; an error names the directory.
fn create_parent(out: &Path) -> Result<(), String> {
    let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|e| {
        format!(
            "cannot create the directory {} for {}: {e}",
            parent.display(),
            out.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_protocol::jws::Algorithm;
    use torii_protocol::oauth::KeyPair;

    #[test]
    fn generated_keys_load_as_key_pairs() {
        for (kind, alg) in [
            (KeyKind::EcP256, Algorithm::ES256),
            (KeyKind::EcP384, Algorithm::ES384),
        ] {
            let pem = generate_pem(kind).unwrap_or_default();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let pair = KeyPair::from_pem("k", &pem);
            assert_eq!(pair.map(|p| p.algorithm()).ok(), Some(alg));
        }
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("torii-keygen-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("k.pem");
        let _ = std::fs::remove_file(&path);
        assert!(run(KeyKind::EcP256, &path).is_ok());
        let first = std::fs::read_to_string(&path).unwrap_or_default();
        let again = run(KeyKind::EcP256, &path);
        assert!(again.is_err_and(|e| e.contains("already exists")));
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode());
            assert_eq!(mode.ok().map(|m| m & 0o777), Some(0o600));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keygen_creates_missing_directories_and_says_when_it_cannot() {
        let dir = std::env::temp_dir().join(format!("torii-keygen-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("keys/nested/signing.pem");
        let done = run(KeyKind::EcP384, &path);
        assert!(done.is_ok(), "{done:?}");
        let pem = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(KeyPair::from_pem("k", &pem).is_ok());
        // A regular file where a directory must go: the error names the directory.
        let blocked = dir.join("keys/nested/signing.pem/below/k.pem");
        let err = run(KeyKind::EcP256, &blocked).err().unwrap_or_default();
        assert!(
            err.starts_with("cannot create the directory ") && err.contains("signing.pem/below"),
            "{err}"
        );
        // A bare file name (no directory part) is written in the current directory as before:
        // create_parent has nothing to make.
        assert!(create_parent(Path::new("k.pem")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
