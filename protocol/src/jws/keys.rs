//! Signing and verifying keys, built once from configuration material (HMAC secrets, PEM files,
//! JWK components) and then shared read-only by every worker. Each key carries its [`Algorithm`]:
//! the algorithm is configuration, never something a token can choose. Building a key is the
//! slow, fallible part (PEM/DER parsing, `ring` key checks); using one is allocation-free.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};

use super::alg::{Algorithm, KeyFamily};
use super::pem_der::{decode_pem, parse_spki, PemDerError, SpkiKey};
use crate::secret::{check_hmac_secret, WeakKey};

/// Why key material could not be turned into a key. Never contains the material itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An HMAC secret shorter than [`crate::secret::MIN_HMAC_SECRET_LEN`] bytes without the
    /// explicit `allow_weak` opt-in.
    #[error(transparent)]
    Weak(#[from] WeakKey),
    /// The algorithm needs another kind of key (e.g. an RSA PEM given for `HS256`).
    #[error("algorithm {alg} needs a {expected:?} key")]
    WrongKeyKind {
        /// The configured algorithm.
        alg: Algorithm,
        /// The key family it needs.
        expected: KeyFamily,
    },
    /// No PEM block was found.
    #[error("no PEM block found in key material")]
    NoPem,
    /// The PEM body is not valid base64.
    #[error("PEM body is not valid base64")]
    BadBase64,
    /// The DER inside the PEM is not a structure this crate understands.
    #[error("key DER structure is malformed")]
    BadDer,
    /// The PEM label is not one this constructor accepts (e.g. a certificate).
    #[error("unexpected PEM label {0:?}")]
    UnexpectedPemLabel(String),
    /// The key is for another algorithm or another curve than the configured one.
    #[error("key does not match algorithm {0}")]
    AlgorithmMismatch(Algorithm),
    /// `ring` rejected the key (bad encoding, too small an RSA modulus, inconsistent EC key…).
    #[error("key rejected: {0}")]
    Rejected(String),
    /// A JWK member is not valid base64url or has the wrong length for its curve.
    #[error("bad JWK member {0}")]
    BadJwk(&'static str),
}

impl From<PemDerError> for KeyError {
    fn from(e: PemDerError) -> Self {
        match e {
            PemDerError::NoPemBlock => KeyError::NoPem,
            PemDerError::BadBase64 => KeyError::BadBase64,
            PemDerError::BadDer => KeyError::BadDer,
        }
    }
}

/// Failure to produce a signature (only possible for RSA/ECDSA when `ring`'s internal random
/// source fails; HMAC never fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

/// Largest signature: RSA with an 8192-bit modulus.
const MAX_SIGNATURE_LEN: usize = 1024;

/// A raw signature held inline (HMAC tag, RSA signature or ECDSA `r||s`).
#[derive(Clone)]
pub struct Signature {
    buf: [u8; MAX_SIGNATURE_LEN],
    len: usize,
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({} bytes)", self.len)
    }
}

enum SigningInner {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key (or HMAC secret) with its algorithm, ready to sign.
///
/// Built once per config load. Signing costs two SHA-2 passes over the input for HMAC; RSA-2048
/// is around a millisecond and ECDSA tens of microseconds (typical `ring` figures, not measured
/// here). The base64url JOSE header `{"typ":"JWT","alg":…}` is
/// precomputed here.
pub struct SigningKey {
    alg: Algorithm,
    inner: SigningInner,
    header_b64: String,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn header_b64(alg: Algorithm) -> String {
    let json = format!("{{\"typ\":\"JWT\",\"alg\":\"{}\"}}", alg.name());
    URL_SAFE_NO_PAD.encode(json.as_bytes())
}

fn expect_family(alg: Algorithm, family: KeyFamily) -> Result<(), KeyError> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(KeyError::WrongKeyKind {
            alg,
            expected: alg.family(),
        })
    }
}

impl SigningKey {
    /// Builds an HMAC key (HS256/384/512) from secret bytes, precomputing the `ring` key schedule.
    /// Secrets under 32 bytes are refused unless `allow_weak` (config `insecure_allow_weak_keys`).
    /// Called at config load.
    pub fn hmac(alg: Algorithm, secret: &[u8], allow_weak: bool) -> Result<Self, KeyError> {
        let ring_alg = alg.hmac_alg().ok_or(KeyError::WrongKeyKind {
            alg,
            expected: alg.family(),
        })?;
        check_hmac_secret(secret, allow_weak)?;
        Ok(Self::build(
            alg,
            SigningInner::Hmac(hmac::Key::new(ring_alg, secret)),
        ))
    }

    /// Builds an RSA (RS*/PS*) or EC (ES*) signing key from a PEM private key: PKCS#8
    /// `PRIVATE KEY` for both, or PKCS#1 `RSA PRIVATE KEY` for RSA. The EC curve must match the
    /// algorithm. Called at config load; costs a few ms for RSA (ring checks the key).
    pub fn from_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        let pem = decode_pem(pem)?;
        match alg.family() {
            KeyFamily::Hmac => Err(KeyError::WrongKeyKind {
                alg,
                expected: KeyFamily::Hmac,
            }),
            KeyFamily::Rsa => {
                let pair = match pem.label.as_str() {
                    "PRIVATE KEY" | "" => RsaKeyPair::from_pkcs8(&pem.der),
                    "RSA PRIVATE KEY" => RsaKeyPair::from_der(&pem.der),
                    other => return Err(KeyError::UnexpectedPemLabel(other.to_owned())),
                }
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
                Ok(Self::build(alg, SigningInner::Rsa(pair)))
            }
            KeyFamily::Ec => {
                if !matches!(pem.label.as_str(), "PRIVATE KEY" | "") {
                    return Err(KeyError::UnexpectedPemLabel(pem.label));
                }
                let ring_alg = alg.ec_signing().ok_or(KeyError::AlgorithmMismatch(alg))?;
                let pair = EcdsaKeyPair::from_pkcs8(ring_alg, &pem.der, &SystemRandom::new())
                    .map_err(|e| KeyError::Rejected(e.to_string()))?;
                Ok(Self::build(alg, SigningInner::Ec(pair)))
            }
        }
    }

    fn build(alg: Algorithm, inner: SigningInner) -> Self {
        SigningKey {
            alg,
            inner,
            header_b64: header_b64(alg),
            rng: SystemRandom::new(),
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The precomputed base64url of `{"typ":"JWT","alg":"<alg>"}` (no `kid`).
    pub fn header_b64(&self) -> &str {
        &self.header_b64
    }

    /// Signs `signing_input` (`b64(header).b64(payload)`) and returns the raw signature, held on
    /// the stack (no allocation).
    pub fn sign(&self, signing_input: &[u8]) -> Result<Signature, SignError> {
        let mut out = Signature {
            buf: [0u8; MAX_SIGNATURE_LEN],
            len: 0,
        };
        let raw: &[u8];
        let tag;
        let ec_sig;
        match &self.inner {
            SigningInner::Hmac(key) => {
                tag = hmac::sign(key, signing_input);
                raw = tag.as_ref();
            }
            SigningInner::Rsa(pair) => {
                let padding = self.alg.rsa_signing().ok_or(SignError)?;
                let len = pair.public().modulus_len();
                let sig = out.buf.get_mut(..len).ok_or(SignError)?;
                pair.sign(padding, &self.rng, signing_input, sig)
                    .map_err(|_| SignError)?;
                out.len = len;
                return Ok(out);
            }
            SigningInner::Ec(pair) => {
                ec_sig = pair.sign(&self.rng, signing_input).map_err(|_| SignError)?;
                raw = ec_sig.as_ref();
            }
        }
        let dst = out.buf.get_mut(..raw.len()).ok_or(SignError)?;
        dst.copy_from_slice(raw);
        out.len = raw.len();
        Ok(out)
    }

    /// For HMAC keys, the HMAC state after absorbing `prefix`: cloning it and feeding only the
    /// rest of a signing input that starts with `prefix` gives the same tag as signing the whole
    /// input, without hashing the constant part again per request. `None` for RSA/EC keys.
    /// Called when a config is built.
    pub fn hmac_prefix_state(&self, prefix: &[u8]) -> Option<hmac::Context> {
        match &self.inner {
            SigningInner::Hmac(key) => {
                let mut ctx = hmac::Context::with_key(key);
                ctx.update(prefix);
                Some(ctx)
            }
            _ => None,
        }
    }

    /// The public half (or, for HMAC, the same secret) as a [`VerifyingKey`] with the same
    /// algorithm. Called at config load, e.g. to verify tokens this gateway issued.
    pub fn verifying_key(&self) -> VerifyingKey {
        let inner = match &self.inner {
            SigningInner::Hmac(key) => VerifyingInner::Hmac(key.clone()),
            SigningInner::Rsa(pair) => VerifyingInner::RsaDer(pair.public().as_ref().to_vec()),
            SigningInner::Ec(pair) => VerifyingInner::Ec(pair.public_key().as_ref().to_vec()),
        };
        VerifyingKey {
            alg: self.alg,
            inner,
        }
    }
}

enum VerifyingInner {
    Hmac(hmac::Key),
    /// `RSAPublicKey` DER.
    RsaDer(Vec<u8>),
    /// Big-endian modulus and exponent from a JWK.
    RsaComponents {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed EC point `04||x||y`.
    Ec(Vec<u8>),
}

/// A public key (or HMAC secret) with its algorithm, ready to check signatures.
///
/// Built once at config load. Checking costs one HMAC for HS*; RSA verification is tens of
/// microseconds and ECDSA somewhat more (typical `ring` figures, not measured here). RSA and EC
/// public keys are re-parsed by `ring` on each check (`UnparsedPublicKey`).
pub struct VerifyingKey {
    alg: Algorithm,
    inner: VerifyingInner,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC verifying key (same rules as [`SigningKey::hmac`], weak secrets included).
    pub fn hmac(alg: Algorithm, secret: &[u8], allow_weak: bool) -> Result<Self, KeyError> {
        Ok(SigningKey::hmac(alg, secret, allow_weak)?.verifying_key())
    }

    /// An RSA or EC public key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), or bare base64
    /// SPKI as Otoroshi accepts. The key type and curve must match `alg`. Called at config load.
    pub fn from_public_pem(alg: Algorithm, pem: &str) -> Result<Self, KeyError> {
        if alg.family() == KeyFamily::Hmac {
            return Err(KeyError::WrongKeyKind {
                alg,
                expected: KeyFamily::Hmac,
            });
        }
        let pem = decode_pem(pem)?;
        if !matches!(pem.label.as_str(), "PUBLIC KEY" | "") {
            return Err(KeyError::UnexpectedPemLabel(pem.label));
        }
        let inner = match (parse_spki(&pem.der)?, alg) {
            (SpkiKey::Rsa(der), _) if alg.family() == KeyFamily::Rsa => {
                VerifyingInner::RsaDer(der.to_vec())
            }
            (SpkiKey::P256(point), Algorithm::ES256) | (SpkiKey::P384(point), Algorithm::ES384) => {
                check_point(alg, point)?;
                VerifyingInner::Ec(point.to_vec())
            }
            _ => return Err(KeyError::AlgorithmMismatch(alg)),
        };
        Ok(VerifyingKey { alg, inner })
    }

    /// An RSA public key from JWK members `n` and `e` (base64url, no padding), as found in JWKS
    /// documents. `alg` must be RS* or PS*.
    pub fn from_rsa_jwk(alg: Algorithm, n_b64: &str, e_b64: &str) -> Result<Self, KeyError> {
        expect_family(alg, KeyFamily::Rsa)?;
        let n = URL_SAFE_NO_PAD
            .decode(n_b64)
            .map_err(|_| KeyError::BadJwk("n"))?;
        let e = URL_SAFE_NO_PAD
            .decode(e_b64)
            .map_err(|_| KeyError::BadJwk("e"))?;
        // What ring accepts when verifying (RSA_*_2048_8192_*): a modulus of 2048 to 8192
        // bits and an odd exponent from 3 to 2^33 - 1. Refused here, at load, rather than
        // failing every token later.
        let significant = |v: &[u8]| -> usize {
            let v = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len())..];
            v.first().map_or(0, |&top| {
                (v.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
            })
        };
        if !(2048..=8192).contains(&significant(&n)) {
            return Err(KeyError::Rejected(
                "RSA modulus must be 2048 to 8192 bits".to_owned(),
            ));
        }
        let e_bits = significant(&e);
        if !(2..=33).contains(&e_bits) || e.last().is_none_or(|b| b & 1 == 0) {
            return Err(KeyError::Rejected(
                "RSA exponent must be odd, at least 3 and below 2^33".to_owned(),
            ));
        }
        Ok(VerifyingKey {
            alg,
            inner: VerifyingInner::RsaComponents { n, e },
        })
    }

    /// An EC public key from JWK members `crv` (`P-256`/`P-384`, must match `alg`), `x` and `y`
    /// (base64url coordinates of exactly the curve's size).
    pub fn from_ec_jwk(
        alg: Algorithm,
        crv: &str,
        x_b64: &str,
        y_b64: &str,
    ) -> Result<Self, KeyError> {
        expect_family(alg, KeyFamily::Ec)?;
        if alg.ec_curve_name() != Some(crv) {
            return Err(KeyError::AlgorithmMismatch(alg));
        }
        let len = alg.ec_coordinate_len();
        let x = URL_SAFE_NO_PAD
            .decode(x_b64)
            .map_err(|_| KeyError::BadJwk("x"))?;
        let y = URL_SAFE_NO_PAD
            .decode(y_b64)
            .map_err(|_| KeyError::BadJwk("y"))?;
        if x.len() != len {
            return Err(KeyError::BadJwk("x"));
        }
        if y.len() != len {
            return Err(KeyError::BadJwk("y"));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(VerifyingKey {
            alg,
            inner: VerifyingInner::Ec(point),
        })
    }

    /// The key's algorithm: the only `alg` a token may carry to be checked with this key.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Checks `signature` (raw bytes, already base64-decoded) over `message`. HMAC comparison
    /// is constant time (ring). Returns `false` on any mismatch, including a wrong length.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            VerifyingInner::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            VerifyingInner::RsaDer(der) => match self.alg.rsa_verification() {
                Some(params) => signature::UnparsedPublicKey::new(params, der)
                    .verify(message, signature)
                    .is_ok(),
                None => false,
            },
            VerifyingInner::RsaComponents { n, e } => match self.alg.rsa_verification() {
                Some(params) => RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok(),
                None => false,
            },
            VerifyingInner::Ec(point) => match self.alg.ec_verification() {
                Some(params) => signature::UnparsedPublicKey::new(params, point)
                    .verify(message, signature)
                    .is_ok(),
                None => false,
            },
        }
    }
}

fn check_point(alg: Algorithm, point: &[u8]) -> Result<(), KeyError> {
    if point.len() == 1 + 2 * alg.ec_coordinate_len() && point.first() == Some(&4) {
        Ok(())
    } else {
        Err(KeyError::Rejected(
            "EC public key is not an uncompressed point".to_owned(),
        ))
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
