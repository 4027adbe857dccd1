//! The JOSE signature algorithms Torii supports, and the mapping from each one to the `ring`
//! primitives that implement it. Parsing is exact (JOSE names are case-sensitive); `none` is not an
//! algorithm here and can never be produced by parsing.

use std::fmt;
use std::str::FromStr;

use ring::{hmac, signature};

/// A JWS signature algorithm (RFC 7518 §3). `none` is deliberately absent.
///
/// Chosen at configuration time and stored inside every key: verification compares the token's
/// `alg` header with the key's algorithm and never lets the token choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512 (Otoroshi's default).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1-SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1-SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256, fixed-length `r||s` signature.
    ES256,
    /// ECDSA on P-384 with SHA-384, fixed-length `r||s` signature.
    ES384,
}

/// The family of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// A shared secret (HS*).
    Hmac,
    /// An RSA key pair or public key (RS*, PS*).
    Rsa,
    /// An EC key pair or public key on the algorithm's curve (ES*).
    Ec,
}

/// Error returned when a string is not the name of a supported algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JWS algorithm")]
pub struct UnknownAlgorithm;

impl Algorithm {
    /// Every supported algorithm, in a stable order (useful for tests and config validation).
    pub const ALL: [Algorithm; 11] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
    ];

    /// The JOSE name (`"HS512"`…). Free: a static string.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
        }
    }

    /// Parses an exact JOSE name from bytes (as found in a token header). Case-sensitive.
    pub fn from_name(name: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name().as_bytes() == name)
    }

    /// Which kind of key this algorithm needs.
    pub const fn family(self) -> KeyFamily {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => KeyFamily::Ec,
        }
    }

    pub(crate) fn hmac_alg(self) -> Option<hmac::Algorithm> {
        match self {
            Algorithm::HS256 => Some(hmac::HMAC_SHA256),
            Algorithm::HS384 => Some(hmac::HMAC_SHA384),
            Algorithm::HS512 => Some(hmac::HMAC_SHA512),
            _ => None,
        }
    }

    pub(crate) fn rsa_signing(self) -> Option<&'static dyn signature::RsaEncoding> {
        match self {
            Algorithm::RS256 => Some(&signature::RSA_PKCS1_SHA256),
            Algorithm::RS384 => Some(&signature::RSA_PKCS1_SHA384),
            Algorithm::RS512 => Some(&signature::RSA_PKCS1_SHA512),
            Algorithm::PS256 => Some(&signature::RSA_PSS_SHA256),
            Algorithm::PS384 => Some(&signature::RSA_PSS_SHA384),
            Algorithm::PS512 => Some(&signature::RSA_PSS_SHA512),
            _ => None,
        }
    }

    pub(crate) fn rsa_verification(self) -> Option<&'static signature::RsaParameters> {
        match self {
            Algorithm::RS256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            _ => None,
        }
    }

    pub(crate) fn ec_signing(self) -> Option<&'static signature::EcdsaSigningAlgorithm> {
        match self {
            Algorithm::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            Algorithm::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            _ => None,
        }
    }

    pub(crate) fn ec_verification(self) -> Option<&'static signature::EcdsaVerificationAlgorithm> {
        match self {
            Algorithm::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED),
            Algorithm::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED),
            _ => None,
        }
    }

    /// Length in bytes of one EC coordinate for ES* algorithms (32 for P-256, 48 for P-384).
    pub(crate) const fn ec_coordinate_len(self) -> usize {
        match self {
            Algorithm::ES384 => 48,
            _ => 32,
        }
    }

    /// The base64url of the two plain JOSE headers `{"typ":"JWT","alg":"<alg>"}` (ours, and
    /// what Otoroshi writes) and `{"alg":"<alg>","typ":"JWT"}` (Node's and auth0's order). A
    /// verifier that sees exactly one of these segments knows the parsed header without
    /// decoding it.
    pub(crate) const fn plain_headers_b64(self) -> [&'static str; 2] {
        match self {
            Algorithm::HS256 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::HS384 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzM4NCJ9",
                "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::HS512 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9",
                "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::RS256 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9",
                "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::RS384 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzM4NCJ9",
                "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::RS512 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzUxMiJ9",
                "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::PS256 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJQUzI1NiJ9",
                "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::PS384 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJQUzM4NCJ9",
                "eyJhbGciOiJQUzM4NCIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::PS512 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJQUzUxMiJ9",
                "eyJhbGciOiJQUzUxMiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::ES256 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9",
                "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9",
            ],
            Algorithm::ES384 => [
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzM4NCJ9",
                "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9",
            ],
        }
    }

    /// The JWK `crv` name for ES* algorithms.
    pub const fn ec_curve_name(self) -> Option<&'static str> {
        match self {
            Algorithm::ES256 => Some("P-256"),
            Algorithm::ES384 => Some("P-384"),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s.as_bytes()).ok_or(UnknownAlgorithm)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
    }

    #[test]
    fn parsing_is_exact() {
        for bad in ["none", "None", "hs256", "HS256 ", "ES512", "EdDSA", ""] {
            assert_eq!(bad.parse::<Algorithm>(), Err(UnknownAlgorithm), "{bad}");
        }
    }

    #[test]
    fn families() {
        assert_eq!(Algorithm::HS384.family(), KeyFamily::Hmac);
        assert_eq!(Algorithm::PS512.family(), KeyFamily::Rsa);
        assert_eq!(Algorithm::ES384.family(), KeyFamily::Ec);
        assert_eq!(Algorithm::ES384.ec_coordinate_len(), 48);
        assert_eq!(Algorithm::ES256.ec_curve_name(), Some("P-256"));
    }

    #[test]
    fn plain_headers_are_the_documented_json() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        for alg in Algorithm::ALL {
            let [ours, reversed] = alg.plain_headers_b64();
            let name = alg.name();
            assert_eq!(
                URL_SAFE_NO_PAD.decode(ours).unwrap(),
                format!("{{\"typ\":\"JWT\",\"alg\":\"{name}\"}}").as_bytes()
            );
            assert_eq!(
                URL_SAFE_NO_PAD.decode(reversed).unwrap(),
                format!("{{\"alg\":\"{name}\",\"typ\":\"JWT\"}}").as_bytes()
            );
        }
    }
}
