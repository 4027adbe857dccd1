//! Key fixtures for the token targets: the PEM test keys of `protocol/tests/keys` and a fixed
//! HMAC secret, one verifying key per algorithm Torii supports.

use torii_protocol::jws::{Algorithm, SigningKey, VerifyingKey};

/// The HMAC secret of the HS* keys (32 bytes: not a weak key).
pub const HMAC_SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef!";

const RSA_PUB: &str = include_str!("../../protocol/tests/keys/rsa2048.pub.pem");
const EC256_PUB: &str = include_str!("../../protocol/tests/keys/ec256.pub.pem");
const EC384_PUB: &str = include_str!("../../protocol/tests/keys/ec384.pub.pem");

/// Every algorithm, by JOSE name.
pub const ALGORITHMS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384",
];

/// The verifying key of `name` (one of [`ALGORITHMS`]).
pub fn verifying_key(name: &str) -> VerifyingKey {
    let alg = Algorithm::from_name(name.as_bytes()).expect("known algorithm");
    let pem = match name {
        "ES256" => EC256_PUB,
        "ES384" => EC384_PUB,
        n if n.starts_with("HS") => {
            return VerifyingKey::hmac(alg, HMAC_SECRET, false).expect("hmac key")
        }
        _ => RSA_PUB,
    };
    VerifyingKey::from_public_pem(alg, pem).expect("fixture public key")
}

/// The HMAC signing key of `name` (an HS* algorithm).
pub fn hmac_signing_key(name: &str) -> SigningKey {
    let alg = Algorithm::from_name(name.as_bytes()).expect("known algorithm");
    SigningKey::hmac(alg, HMAC_SECRET, false).expect("hmac key")
}

/// The RSA public key PEM, used as an HMAC secret in key-confusion attempts.
pub fn rsa_public_pem() -> &'static str {
    RSA_PUB
}
