//! Boundary tests of public-key construction: the key family each algorithm needs, the RSA
//! modulus sizes ring verifies with (2048 to 8192 bits), and the EC point form (uncompressed,
//! of the curve's size). Each case is one a verifier must refuse at load rather than accept a
//! key that cannot, or must not, check a signature.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use super::*;

const RSA_PUB: &str = include_str!("../../tests/keys/rsa2048.pub.pem");
const EC256_PUB: &str = include_str!("../../tests/keys/ec256.pub.pem");
/// 65537, the usual RSA public exponent.
const E: &str = "AQAB";

/// A base64url modulus of exactly `bits` significant bits: the top one set, the last byte odd.
fn modulus(bits: usize) -> String {
    let len = bits.div_ceil(8);
    let mut n = vec![0u8; len];
    n[0] = 1 << ((bits - 1) % 8);
    n[len - 1] |= 1;
    URL_SAFE_NO_PAD.encode(n)
}

/// A P-256 SubjectPublicKeyInfo in PEM (RFC 5480 §2: id-ecPublicKey, prime256v1) whose
/// BIT STRING holds `point` as given, so that malformed points can be presented.
fn p256_spki_pem(point: &[u8]) -> String {
    // SEQUENCE { OID 1.2.840.10045.2.1, OID 1.2.840.10045.3.1.7 }
    let mut body = vec![
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    body.extend([0x03, u8::try_from(point.len() + 1).unwrap(), 0x00]);
    body.extend_from_slice(point);
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend(body);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

#[test]
fn an_rsa_modulus_is_taken_from_2048_to_8192_bits_exactly() {
    for (bits, taken) in [
        (1024, false),
        (2041, false),
        (2047, false),
        (2048, true),
        (2049, true),
        (4096, true),
        (8192, true),
        (8193, false),
    ] {
        let key = VerifyingKey::from_rsa_jwk(Algorithm::RS256, &modulus(bits), E);
        assert_eq!(key.is_ok(), taken, "{bits} bits: {key:?}");
    }
}

#[test]
fn a_key_of_another_family_is_refused_for_the_algorithm() {
    assert!(matches!(
        VerifyingKey::from_rsa_jwk(Algorithm::ES256, &modulus(2048), E),
        Err(KeyError::WrongKeyKind { .. })
    ));
    assert!(VerifyingKey::from_public_pem(Algorithm::RS256, RSA_PUB).is_ok());
    assert!(matches!(
        VerifyingKey::from_public_pem(Algorithm::ES256, RSA_PUB),
        Err(KeyError::AlgorithmMismatch(Algorithm::ES256))
    ));
    assert!(matches!(
        VerifyingKey::from_public_pem(Algorithm::RS256, EC256_PUB),
        Err(KeyError::AlgorithmMismatch(Algorithm::RS256))
    ));
}

#[test]
fn an_ec_public_key_must_be_an_uncompressed_point_of_the_curve_size() {
    assert!(VerifyingKey::from_public_pem(Algorithm::ES256, EC256_PUB).is_ok());
    // The form is checked here; whether the point is on the curve, by ring at each check.
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    assert!(VerifyingKey::from_public_pem(Algorithm::ES256, &p256_spki_pem(&point)).is_ok());
    point[0] = 5;
    assert!(VerifyingKey::from_public_pem(Algorithm::ES256, &p256_spki_pem(&point)).is_err());
    // A compressed point's length with the uncompressed marker, and a real compressed point.
    let mut short = vec![4u8];
    short.extend([7u8; 32]);
    assert!(VerifyingKey::from_public_pem(Algorithm::ES256, &p256_spki_pem(&short)).is_err());
    short[0] = 2;
    assert!(VerifyingKey::from_public_pem(Algorithm::ES256, &p256_spki_pem(&short)).is_err());
}
