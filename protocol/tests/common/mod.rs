//! Shared test helpers: the committed test keys and jsonwebtoken counterparts for each algorithm.
#![allow(dead_code)]

use torii_protocol::jws::{Algorithm, SigningKey, VerifyingKey};

pub const RSA_PEM: &str = include_str!("../keys/rsa2048.pem");
pub const RSA_PKCS1_PEM: &str = include_str!("../keys/rsa2048.pkcs1.pem");
pub const RSA_PUB: &str = include_str!("../keys/rsa2048.pub.pem");
pub const EC256_PEM: &str = include_str!("../keys/ec256.pem");
pub const EC256_PUB: &str = include_str!("../keys/ec256.pub.pem");
pub const EC384_PEM: &str = include_str!("../keys/ec384.pem");
pub const EC384_PUB: &str = include_str!("../keys/ec384.pub.pem");
pub const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-torii";

pub fn private_pem(alg: Algorithm) -> Option<&'static str> {
    match alg.name().as_bytes()[0] {
        b'R' | b'P' => Some(RSA_PEM),
        _ if alg == Algorithm::ES256 => Some(EC256_PEM),
        _ if alg == Algorithm::ES384 => Some(EC384_PEM),
        _ => None,
    }
}

pub fn public_pem(alg: Algorithm) -> Option<&'static str> {
    match alg.name().as_bytes()[0] {
        b'R' | b'P' => Some(RSA_PUB),
        _ if alg == Algorithm::ES256 => Some(EC256_PUB),
        _ if alg == Algorithm::ES384 => Some(EC384_PUB),
        _ => None,
    }
}

pub fn signing_key(alg: Algorithm) -> SigningKey {
    match private_pem(alg) {
        Some(pem) => SigningKey::from_pem(alg, pem).unwrap(),
        None => SigningKey::hmac(alg, HS_SECRET, false).unwrap(),
    }
}

pub fn verifying_key(alg: Algorithm) -> VerifyingKey {
    match public_pem(alg) {
        Some(pem) => VerifyingKey::from_public_pem(alg, pem).unwrap(),
        None => VerifyingKey::hmac(alg, HS_SECRET, false).unwrap(),
    }
}

pub fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.name().parse().unwrap()
}

pub fn jwt_encoding_key(alg: Algorithm) -> jsonwebtoken::EncodingKey {
    match alg.name().as_bytes()[0] {
        b'H' => jsonwebtoken::EncodingKey::from_secret(HS_SECRET),
        b'R' | b'P' => jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        _ => jsonwebtoken::EncodingKey::from_ec_pem(private_pem(alg).unwrap().as_bytes()).unwrap(),
    }
}

pub fn jwt_decoding_key(alg: Algorithm) -> jsonwebtoken::DecodingKey {
    match alg.name().as_bytes()[0] {
        b'H' => jsonwebtoken::DecodingKey::from_secret(HS_SECRET),
        b'R' | b'P' => jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).unwrap(),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(public_pem(alg).unwrap().as_bytes()).unwrap(),
    }
}

/// Decodes with jsonwebtoken: signature and exp checked, audience not.
pub fn jwt_decode(alg: Algorithm, token: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut validation = jsonwebtoken::Validation::new(jwt_alg(alg));
    validation.validate_aud = false;
    validation.leeway = 0;
    let token = std::str::from_utf8(token).unwrap();
    jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &jwt_decoding_key(alg),
        &validation,
    )
    .unwrap()
    .claims
}

/// Current wall-clock time, for tests that hand tokens to jsonwebtoken (which reads the clock).
pub fn wall_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
