//! Key fixtures for the token targets: the PEM test keys of `protocol/tests/keys` and a fixed
//! HMAC secret, one verifying key per algorithm Torii supports, the matching signing keys, and
//! the signers an attacker would try for algorithm confusion (HMAC keyed with a public key).

use torii_protocol::jws::{Algorithm, SigningKey, VerifyingKey};

/// The HMAC secret of the HS* keys (32 bytes: not a weak key).
pub const HMAC_SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef!";

const RSA_PUB: &str = include_str!("../../protocol/tests/keys/rsa2048.pub.pem");
const EC256_PUB: &str = include_str!("../../protocol/tests/keys/ec256.pub.pem");
const EC384_PUB: &str = include_str!("../../protocol/tests/keys/ec384.pub.pem");
const RSA_PEM: &str = include_str!("../../protocol/tests/keys/rsa2048.pem");
const EC256_PEM: &str = include_str!("../../protocol/tests/keys/ec256.pem");
const EC384_PEM: &str = include_str!("../../protocol/tests/keys/ec384.pem");

/// Every algorithm, by JOSE name.
pub const ALGORITHMS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384",
];

fn algorithm(name: &str) -> Algorithm {
    Algorithm::from_name(name.as_bytes()).expect("known algorithm")
}

fn public_pem(name: &str) -> &'static str {
    match name {
        "ES256" => EC256_PUB,
        "ES384" => EC384_PUB,
        _ => RSA_PUB,
    }
}

/// The verifying key of `name` (one of [`ALGORITHMS`]).
pub fn verifying_key(name: &str) -> VerifyingKey {
    let alg = algorithm(name);
    if name.starts_with("HS") {
        return VerifyingKey::hmac(alg, HMAC_SECRET, false).expect("hmac key");
    }
    VerifyingKey::from_public_pem(alg, public_pem(name)).expect("fixture public key")
}

/// The HMAC signing key of `name` (an HS* algorithm).
pub fn hmac_signing_key(name: &str) -> SigningKey {
    SigningKey::hmac(algorithm(name), HMAC_SECRET, false).expect("hmac key")
}

/// Who signs a token in the signed modes of `jws_verify`.
pub struct Signer {
    /// The key that signs.
    pub key: SigningKey,
    /// The algorithm a verifier may accept the token under: the signer's own for a genuine
    /// key; `None` for an attack (HMAC keyed with public key bytes), which nothing may accept.
    pub genuine: Option<&'static str>,
    /// What the signer is, for messages.
    pub label: String,
}

/// Every genuine signer (one per algorithm, the fixture key of [`verifying_key`]) followed by
/// the confusion signers: each HS algorithm keyed with each public key PEM, the text a
/// confused verifier would feed to HMAC. Built once per fuzzing process (RSA keys take ms).
pub fn signers() -> Vec<Signer> {
    let mut out: Vec<Signer> = ALGORITHMS
        .iter()
        .map(|&name| {
            let alg = algorithm(name);
            let key = match name {
                n if n.starts_with("HS") => hmac_signing_key(n),
                "ES256" => SigningKey::from_pem(alg, EC256_PEM).expect("fixture EC key"),
                "ES384" => SigningKey::from_pem(alg, EC384_PEM).expect("fixture EC key"),
                _ => SigningKey::from_pem(alg, RSA_PEM).expect("fixture RSA key"),
            };
            Signer {
                key,
                genuine: Some(name),
                label: name.to_owned(),
            }
        })
        .collect();
    for hs in ["HS256", "HS384", "HS512"] {
        for public in ["RS256", "ES256", "ES384"] {
            let secret = public_pem(public).as_bytes();
            let key = SigningKey::hmac(algorithm(hs), secret, true).expect("hmac key");
            out.push(Signer {
                key,
                genuine: None,
                label: format!("{hs} keyed with the {public} public key"),
            });
        }
    }
    out
}
