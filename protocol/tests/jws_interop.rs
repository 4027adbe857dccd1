//! Interop with the `jsonwebtoken` crate for every algorithm, both directions, plus the Otoroshi
//! documentation vector and key loading variants.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Map, Value};
use torii_protocol::jws::{
    self, Algorithm, JwtError, KeyError, SigningKey, Validation, VerifyingKey,
};

const DOCS_VECTOR: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.eyJzdWIiOiItLSIsImF1ZCI6Im15LXNlcnZpY2UiLCJpc3MiOiJPdG9yb3NoaSIsImV4cCI6MTUyMTQ0OTkwNiwiaWF0IjoxNTIxNDQ5ODc2LCJqdGkiOiI3MTAyNWNjMTktMmFjNy00Yjk3LTljYzctMWM0ODEzYmM1OTI0In0.mRcfuFVFPLUV1FWHyL6rLHIJIu0KEpBkKQCk5xh-_cBt9cb6uD6enynDU0H1X2VpW5-bFxWCy4U4V78CbAQv4g";

#[test]
fn otoroshi_docs_vector() {
    let key = VerifyingKey::hmac(Algorithm::HS512, b"secret", true).unwrap();
    let rules = Validation::default();
    let token = jws::verify(DOCS_VECTOR.as_bytes(), &key, &rules, 1_521_449_890).unwrap();
    assert_eq!(token.header().alg, Algorithm::HS512);
    assert_eq!(token.header().typ.as_deref(), Some("JWT"));
    assert_eq!(token.header().kid, None);
    assert_eq!(token.claim_str("aud"), Some("my-service"));
    assert_eq!(token.claim_str("sub"), Some("--"));
    assert_eq!(token.exp(), Some(1_521_449_906));
    assert_eq!(token.iat(), Some(1_521_449_876));
    assert_eq!(token.nbf(), None);
    // exp + leeway is the last accepted second.
    assert!(jws::verify(DOCS_VECTOR.as_bytes(), &key, &rules, 1_521_449_916).is_ok());
    assert_eq!(
        jws::verify(DOCS_VECTOR.as_bytes(), &key, &rules, 1_521_449_917).unwrap_err(),
        JwtError::Expired
    );
    assert_eq!(
        jws::verify(DOCS_VECTOR.as_bytes(), &key, &rules, 1_521_449_990).unwrap_err(),
        JwtError::Expired
    );
    for other in [&b"secreT"[..], b"secret ", b"", b"Secret", HS_SECRET] {
        let key = VerifyingKey::hmac(Algorithm::HS512, other, true).unwrap();
        assert_eq!(
            jws::verify(DOCS_VECTOR.as_bytes(), &key, &rules, 1_521_449_890).unwrap_err(),
            JwtError::BadSignature
        );
    }
    // The default Otoroshi key is refused without the explicit opt-in.
    assert!(matches!(
        VerifyingKey::hmac(Algorithm::HS512, b"secret", false),
        Err(KeyError::Weak(_))
    ));
}

fn sample_claims(now: u64) -> Map<String, Value> {
    let value = json!({
        "iss": "Otoroshi", "sub": "client \"1\"", "aud": ["a", "b"], "exp": now + 60, "iat": now,
        "nbf": now, "jti": "x", "meta": {"k": "v\n\u{e9}\u{1F600}"}, "n": 1.5
    });
    value.as_object().unwrap().clone()
}

#[test]
fn our_tokens_verify_with_jsonwebtoken() {
    let now = wall_now();
    let claims = sample_claims(now);
    for alg in Algorithm::ALL {
        let key = signing_key(alg);
        let mut out = Vec::new();
        jws::encode_claims(&key, None, &claims, &mut out).unwrap();
        assert_eq!(jwt_decode(alg, &out), claims, "{alg}");
        let header = jsonwebtoken::decode_header(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(header.kid, None);
        // With a kid, and reusing the buffer.
        out.clear();
        jws::encode_claims(&key, Some("key-1 \"q\""), &claims, &mut out).unwrap();
        let header = jsonwebtoken::decode_header(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(header.kid.as_deref(), Some("key-1 \"q\""));
        assert_eq!(jwt_decode(alg, &out), claims, "{alg} with kid");
        // And we verify our own token with the derived and the loaded verifying keys.
        let rules = Validation::default();
        let v = jws::verify(&out, &key.verifying_key(), &rules, now).unwrap();
        assert_eq!(v.header().kid.as_deref(), Some("key-1 \"q\""));
        assert_eq!(v.claims(), &claims);
        assert!(jws::verify(&out, &verifying_key(alg), &rules, now).is_ok());
    }
}

#[test]
fn header_is_otoroshi_shaped() {
    let key = signing_key(Algorithm::HS512);
    let mut out = Vec::new();
    jws::encode_into(&key, None, b"{}", &mut out).unwrap();
    let header_b64 = out.split(|&b| b == b'.').next().unwrap();
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header_b64)
        .unwrap();
    assert_eq!(header, br#"{"typ":"JWT","alg":"HS512"}"#);
}

#[test]
fn their_tokens_verify_with_us() {
    let now = wall_now();
    let claims = sample_claims(now);
    for alg in Algorithm::ALL {
        let mut header = jsonwebtoken::Header::new(jwt_alg(alg));
        header.kid = Some("kid-7".into());
        let token = jsonwebtoken::encode(&header, &claims, &jwt_encoding_key(alg)).unwrap();
        let rules = Validation {
            issuer: Some("Otoroshi".into()),
            audience: Some("b".into()),
            ..Validation::default()
        };
        let verified = jws::verify(token.as_bytes(), &verifying_key(alg), &rules, now).unwrap();
        assert_eq!(verified.claims(), &claims, "{alg}");
        assert_eq!(verified.header().kid.as_deref(), Some("kid-7"));
        assert_eq!(
            jws::peek_kid(token.as_bytes()).unwrap().as_deref(),
            Some("kid-7")
        );
        // A key of the same family but another algorithm refuses it.
        let other = match alg {
            Algorithm::HS256 => Algorithm::HS384,
            Algorithm::RS256 => Algorithm::PS256,
            Algorithm::PS256 => Algorithm::RS256,
            Algorithm::ES256 => Algorithm::ES384,
            _ => Algorithm::HS256,
        };
        assert_eq!(
            jws::verify(token.as_bytes(), &verifying_key(other), &rules, now).unwrap_err(),
            JwtError::AlgMismatch
        );
    }
}

#[test]
fn jwk_keys_verify() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let now = wall_now();
    let claims = sample_claims(now);
    // EC: x and y are the halves of the uncompressed point in the SPKI.
    for (alg, len) in [(Algorithm::ES256, 32), (Algorithm::ES384, 48)] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jwt_alg(alg)),
            &claims,
            &jwt_encoding_key(alg),
        )
        .unwrap();
        let der = pem_body(public_pem(alg).unwrap());
        let point = &der[der.len() - (1 + 2 * len)..];
        let x = URL_SAFE_NO_PAD.encode(&point[1..=len]);
        let y = URL_SAFE_NO_PAD.encode(&point[1 + len..]);
        let crv = alg.ec_curve_name().unwrap();
        let key = VerifyingKey::from_ec_jwk(alg, crv, &x, &y).unwrap();
        assert!(jws::verify(token.as_bytes(), &key, &Validation::default(), now).is_ok());
        let wrong_crv = if crv == "P-256" { "P-384" } else { "P-256" };
        assert!(VerifyingKey::from_ec_jwk(alg, wrong_crv, &x, &y).is_err());
        assert_eq!(
            VerifyingKey::from_ec_jwk(alg, crv, &x[1..], &y).unwrap_err(),
            KeyError::BadJwk("x")
        );
    }
    // RSA: n and e via jsonwebtoken's own JWK export of the same key.
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
        &jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        panic!("not RSA")
    };
    for alg in [Algorithm::RS256, Algorithm::PS512] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jwt_alg(alg)),
            &claims,
            &jwt_encoding_key(alg),
        )
        .unwrap();
        let key = VerifyingKey::from_rsa_jwk(alg, &rsa.n, &rsa.e).unwrap();
        assert!(jws::verify(token.as_bytes(), &key, &Validation::default(), now).is_ok());
    }
    assert_eq!(
        VerifyingKey::from_rsa_jwk(Algorithm::RS256, "!!", &rsa.e).unwrap_err(),
        KeyError::BadJwk("n")
    );
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn key_loading_variants_and_errors() {
    // PKCS#1 RSA private keys are accepted and sign like the PKCS#8 form.
    let pkcs1 = SigningKey::from_pem(Algorithm::RS256, RSA_PKCS1_PEM).unwrap();
    let mut out = Vec::new();
    jws::encode_into(&pkcs1, None, br#"{"exp":4000000000}"#, &mut out).unwrap();
    assert!(jws::verify(
        &out,
        &verifying_key(Algorithm::RS256),
        &Validation::default(),
        0
    )
    .is_ok());
    // Curve and family mismatches.
    assert!(SigningKey::from_pem(Algorithm::ES384, EC256_PEM).is_err());
    assert!(SigningKey::from_pem(Algorithm::ES256, RSA_PEM).is_err());
    assert!(SigningKey::from_pem(Algorithm::RS256, EC256_PEM).is_err());
    assert!(matches!(
        SigningKey::from_pem(Algorithm::HS256, RSA_PEM),
        Err(KeyError::WrongKeyKind { .. })
    ));
    assert!(matches!(
        SigningKey::hmac(Algorithm::RS256, HS_SECRET, false),
        Err(KeyError::WrongKeyKind { .. })
    ));
    assert_eq!(
        VerifyingKey::from_public_pem(Algorithm::ES256, EC384_PUB).unwrap_err(),
        KeyError::AlgorithmMismatch(Algorithm::ES256)
    );
    assert_eq!(
        VerifyingKey::from_public_pem(Algorithm::RS256, EC256_PUB).unwrap_err(),
        KeyError::AlgorithmMismatch(Algorithm::RS256)
    );
    assert!(matches!(
        VerifyingKey::from_public_pem(Algorithm::RS256, RSA_PEM),
        Err(KeyError::UnexpectedPemLabel(_))
    ));
    assert_eq!(
        SigningKey::from_pem(Algorithm::RS256, "not a key").unwrap_err(),
        KeyError::BadBase64
    );
    // Debug output never shows key material.
    let dbg = format!(
        "{:?} {:?}",
        signing_key(Algorithm::HS256),
        verifying_key(Algorithm::HS256)
    );
    assert!(!dbg.contains("0123456789abcdef"));
}
