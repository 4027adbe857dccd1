//! One test (at least) per JWT and key rule: the algorithm comes from the key, never the token;
//! `none` and key confusion fail; `kid` is only a lookup key; time claims are integers; size and
//! depth caps; ECDSA signature shape; constant-time comparisons; weak HMAC keys refused
//! (docs/security.md §6).
#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use torii_protocol::jws::{
    self, Algorithm, JwtError, KeyError, Part, SigningKey, Validation, VerifyingKey,
};

const NOW: u64 = 1_700_000_000;

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Signs arbitrary header and payload JSON with an HMAC secret (any length), like an attacker.
fn forge_hs(alg: Algorithm, secret: &[u8], header: &str, payload: &str) -> Vec<u8> {
    let key = SigningKey::hmac(alg, secret, true).unwrap();
    let mut out = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes())).into_bytes();
    jws::sign_tail(&key, 0, &mut out).unwrap();
    out
}

fn hs256() -> VerifyingKey {
    verifying_key(Algorithm::HS256)
}

fn check_payload(payload: &str) -> Result<jws::VerifiedToken, JwtError> {
    let token = forge_hs(Algorithm::HS256, HS_SECRET, r#"{"alg":"HS256"}"#, payload);
    jws::verify(&token, &hs256(), &Validation::default(), NOW)
}

#[test]
fn alg_none_in_any_case_fails() {
    let payload = b64(br#"{"exp":4000000000}"#);
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"typ":"JWT","alg":"{none}"}}"#).as_bytes());
        for sig in ["", "AAAA"] {
            let token = format!("{header}.{payload}.{sig}");
            for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
                assert_eq!(
                    jws::verify(
                        token.as_bytes(),
                        &verifying_key(alg),
                        &Validation::default(),
                        NOW
                    )
                    .unwrap_err(),
                    JwtError::AlgNone
                );
            }
        }
    }
}

#[test]
fn alg_mismatch_and_missing_alg() {
    let payload = r#"{"exp":4000000000}"#;
    let token = forge_hs(Algorithm::HS512, HS_SECRET, r#"{"alg":"HS512"}"#, payload);
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::AlgMismatch
    );
    // Header says HS256 but it is signed with HS512: still the key decides.
    let token = forge_hs(Algorithm::HS512, HS_SECRET, r#"{"alg":"HS256"}"#, payload);
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::BadSignature
    );
    for header in [r#"{"typ":"JWT"}"#, r#"{"alg":256}"#, r#"{"alg":null}"#] {
        let token = forge_hs(Algorithm::HS256, HS_SECRET, header, payload);
        assert_eq!(
            jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
            JwtError::MissingAlg
        );
    }
    let token = forge_hs(Algorithm::HS256, HS_SECRET, r#"{"alg":"hs256"}"#, payload);
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::AlgMismatch
    );
}

#[test]
fn key_confusion_hs_token_against_public_key_fails() {
    // The classic attack: HMAC-sign with the public key bytes as the secret, claim HS256.
    for (alg, public) in [
        (Algorithm::RS256, RSA_PUB),
        (Algorithm::PS256, RSA_PUB),
        (Algorithm::ES256, EC256_PUB),
        (Algorithm::ES384, EC384_PUB),
    ] {
        for hs in [Algorithm::HS256, Algorithm::HS512] {
            let header = format!(r#"{{"typ":"JWT","alg":"{}"}}"#, hs.name());
            let token = forge_hs(hs, public.as_bytes(), &header, r#"{"exp":4000000000}"#);
            let key = VerifyingKey::from_public_pem(alg, public).unwrap();
            assert_eq!(
                jws::verify(&token, &key, &Validation::default(), NOW).unwrap_err(),
                JwtError::AlgMismatch
            );
        }
    }
}

#[test]
fn dangerous_header_fields_are_ignored_and_kid_is_a_string() {
    let header = r#"{"alg":"HS256","kid":"../../etc/passwd","jku":"https://evil/jwks","x5u":"https://evil/x5c","jwk":{"kty":"oct","k":"AAAA"}}"#;
    let token = forge_hs(Algorithm::HS256, HS_SECRET, header, r#"{"exp":4000000000}"#);
    let v = jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap();
    assert_eq!(v.header().kid.as_deref(), Some("../../etc/passwd"));
    // An attacker-supplied embedded jwk does not make its own signature valid.
    let token = forge_hs(Algorithm::HS256, &[0u8; 3], header, r#"{"exp":4000000000}"#);
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::BadSignature
    );
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256","kid":7}"#,
        r#"{"exp":4000000000}"#,
    );
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::BadHeaderField("kid")
    );
}

#[test]
fn time_claims_must_be_integers() {
    let cases = [
        (r#"{"exp":"4000000000"}"#, JwtError::ClaimNotNumber("exp")),
        (r#"{"exp":4000000000.5}"#, JwtError::ClaimNotInteger("exp")),
        (r#"{"exp":-1}"#, JwtError::ClaimNegative("exp")),
        (r#"{"exp":253402300800}"#, JwtError::ClaimOutOfRange("exp")),
        (r#"{"exp":1e300}"#, JwtError::ClaimOutOfRange("exp")),
        (
            r#"{"exp":18446744073709551615}"#,
            JwtError::ClaimOutOfRange("exp"),
        ),
        (
            r#"{"exp":4000000000,"nbf":"0"}"#,
            JwtError::ClaimNotNumber("nbf"),
        ),
        (
            r#"{"exp":4000000000,"iat":true}"#,
            JwtError::ClaimNotNumber("iat"),
        ),
        (
            r#"{"exp":4000000000,"iat":-5}"#,
            JwtError::ClaimNegative("iat"),
        ),
        (r#"{"exp":null}"#, JwtError::ClaimNotNumber("exp")),
    ];
    for (payload, expected) in cases {
        assert_eq!(check_payload(payload).unwrap_err(), expected, "{payload}");
    }
    // An integral float is an integer.
    assert_eq!(
        check_payload(r#"{"exp":4000000000.0}"#).unwrap().exp(),
        Some(4_000_000_000)
    );
}

#[test]
fn leeway_boundaries() {
    let exp = NOW - 10;
    assert!(check_payload(&format!(r#"{{"exp":{exp}}}"#)).is_ok());
    let exp = NOW - 11;
    assert_eq!(
        check_payload(&format!(r#"{{"exp":{exp}}}"#)).unwrap_err(),
        JwtError::Expired
    );
    let nbf = NOW + 10;
    assert!(check_payload(&format!(r#"{{"exp":{exp2},"nbf":{nbf}}}"#, exp2 = NOW + 60)).is_ok());
    let nbf = NOW + 11;
    assert_eq!(
        check_payload(&format!(r#"{{"exp":{exp2},"nbf":{nbf}}}"#, exp2 = NOW + 60)).unwrap_err(),
        JwtError::NotYetValid
    );
    let iat = NOW + 11;
    assert_eq!(
        check_payload(&format!(r#"{{"exp":{exp2},"iat":{iat}}}"#, exp2 = NOW + 60)).unwrap_err(),
        JwtError::IssuedInFuture
    );
    // Zero leeway is exact.
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{}}}"#, NOW - 1),
    );
    let strict = Validation {
        leeway: 0,
        ..Validation::default()
    };
    assert_eq!(
        jws::verify(&token, &hs256(), &strict, NOW).unwrap_err(),
        JwtError::Expired
    );
    assert!(jws::verify(&token, &hs256(), &strict, NOW - 1).is_ok());
}

#[test]
fn required_issuer_audience() {
    assert_eq!(
        check_payload("{}").unwrap_err(),
        JwtError::MissingClaim("exp".into())
    );
    let none_required = Validation {
        required_claims: vec![],
        ..Validation::default()
    };
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256"}"#,
        r#"{"iss":"x","aud":["a","b"]}"#,
    );
    assert!(jws::verify(&token, &hs256(), &none_required, NOW).is_ok());
    let iss = Validation {
        issuer: Some("Otoroshi".into()),
        ..none_required.clone()
    };
    assert_eq!(
        jws::verify(&token, &hs256(), &iss, NOW).unwrap_err(),
        JwtError::WrongIssuer
    );
    let aud_b = Validation {
        audience: Some("b".into()),
        ..none_required.clone()
    };
    assert!(jws::verify(&token, &hs256(), &aud_b, NOW).is_ok());
    let aud_c = Validation {
        audience: Some("c".into()),
        ..none_required.clone()
    };
    assert_eq!(
        jws::verify(&token, &hs256(), &aud_c, NOW).unwrap_err(),
        JwtError::WrongAudience
    );
    let token = forge_hs(Algorithm::HS256, HS_SECRET, r#"{"alg":"HS256"}"#, "{}");
    assert_eq!(
        jws::verify(&token, &hs256(), &aud_c, NOW).unwrap_err(),
        JwtError::MissingClaim("aud".into())
    );
}

#[test]
fn oversized_and_malformed_tokens() {
    let big = format!(r#"{{"exp":4000000000,"pad":"{}"}}"#, "x".repeat(8000));
    let token = forge_hs(Algorithm::HS256, HS_SECRET, r#"{"alg":"HS256"}"#, &big);
    assert!(token.len() > jws::MAX_TOKEN_LEN);
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::TooLong
    );
    // Not even base64: the cap applies before decoding.
    let junk = vec![b'!'; jws::MAX_TOKEN_LEN + 1];
    assert_eq!(
        jws::verify(&junk, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::TooLong
    );
    let good = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256"}"#,
        r#"{"exp":4000000000}"#,
    );
    let s = std::str::from_utf8(&good).unwrap();
    let parts: Vec<&str> = s.split('.').collect();
    let cases = [
        (format!("{}.{}", parts[0], parts[1]), JwtError::BadSegments),
        (format!("{s}.x"), JwtError::BadSegments),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            JwtError::BadBase64(Part::Header),
        ),
        (
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            JwtError::BadBase64(Part::Signature),
        ),
        (
            format!("{}.{}.{}", b64(b"[1]"), parts[1], parts[2]),
            JwtError::BadJson(Part::Header),
        ),
        (String::new(), JwtError::BadSegments),
    ];
    for (token, expected) in cases {
        assert_eq!(
            jws::verify(token.as_bytes(), &hs256(), &Validation::default(), NOW).unwrap_err(),
            expected,
            "{token}"
        );
    }
    // The payload is parsed only after the signature is good: a bad payload with a bad
    // signature is reported as a bad signature.
    let token = format!("{}.{}.{}", parts[0], "@@@", parts[2]);
    assert_eq!(
        jws::verify(token.as_bytes(), &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::BadSignature
    );
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256"}"#,
        "not json",
    );
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::BadJson(Part::Payload)
    );
}

#[test]
fn deep_json_is_refused() {
    let deep = format!(
        r#"{{"exp":4000000000,"a":{}1{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    assert_eq!(check_payload(&deep).unwrap_err(), JwtError::TooDeep);
    let ok = format!(
        r#"{{"exp":4000000000,"a":{}1{}}}"#,
        "[".repeat(15),
        "]".repeat(15)
    );
    assert!(check_payload(&ok).is_ok());
    let header = format!(
        r#"{{"alg":"HS256","x":{}{}}}"#,
        "{\"a\":".repeat(20),
        "}".repeat(20)
    );
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        &header,
        r#"{"exp":4000000000}"#,
    );
    assert_eq!(
        jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap_err(),
        JwtError::TooDeep
    );
}

#[test]
fn ecdsa_signature_shape_is_enforced() {
    for (alg, len) in [(Algorithm::ES256, 32usize), (Algorithm::ES384, 48)] {
        let key = signing_key(alg);
        let mut token = Vec::new();
        jws::encode_into(&key, None, br#"{"exp":4000000000}"#, &mut token).unwrap();
        let vk = verifying_key(alg);
        assert!(jws::verify(&token, &vk, &Validation::default(), NOW).is_ok());
        let dot = token.iter().rposition(|&b| b == b'.').unwrap();
        let (input, sig_b64) = (&token[..dot], &token[dot + 1..]);
        let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
        assert_eq!(sig.len(), 2 * len);
        let mut variants: Vec<Vec<u8>> = vec![
            sig[..sig.len() - 1].to_vec(),                  // too short
            [sig.clone(), vec![0]].concat(),                // too long
            [vec![0u8; len], sig[len..].to_vec()].concat(), // r = 0
            [sig[..len].to_vec(), vec![0u8; len]].concat(), // s = 0
            vec![0u8; 2 * len],                             // both zero
        ];
        let mut der_like = vec![0x30, (2 * len + 4) as u8, 0x02, len as u8];
        der_like.extend_from_slice(&sig[..len]);
        variants.push(der_like); // DER instead of fixed r||s
        for bad in variants {
            let forged = [input, b".", b64(&bad).as_bytes()].concat();
            assert_eq!(
                jws::verify(&forged, &vk, &Validation::default(), NOW).unwrap_err(),
                JwtError::BadSignature
            );
        }
    }
}

#[test]
fn weak_hs_keys_need_the_flag() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        assert!(
            matches!(SigningKey::hmac(alg, b"secret", false), Err(KeyError::Weak(w)) if w.len == 6)
        );
        assert!(matches!(
            VerifyingKey::hmac(alg, &[1; 31], false),
            Err(KeyError::Weak(_))
        ));
        assert!(SigningKey::hmac(alg, b"secret", true).is_ok());
        assert!(VerifyingKey::hmac(alg, &[1; 32], false).is_ok());
    }
}

#[test]
fn every_reason_is_distinct() {
    let all = [
        JwtError::TooLong,
        JwtError::BadSegments,
        JwtError::BadBase64(Part::Header),
        JwtError::BadJson(Part::Payload),
        JwtError::TooDeep,
        JwtError::DuplicateMember(Part::Header),
        JwtError::CritHeader,
        JwtError::MissingAlg,
        JwtError::AlgNone,
        JwtError::AlgMismatch,
        JwtError::BadHeaderField("kid"),
        JwtError::BadSignature,
        JwtError::ClaimNotNumber("exp"),
        JwtError::ClaimNotInteger("exp"),
        JwtError::ClaimNegative("exp"),
        JwtError::ClaimOutOfRange("exp"),
        JwtError::Expired,
        JwtError::NotYetValid,
        JwtError::IssuedInFuture,
        JwtError::MissingClaim("x".into()),
        JwtError::WrongIssuer,
        JwtError::WrongAudience,
    ];
    let reasons: std::collections::HashSet<_> = all.iter().map(JwtError::reason).collect();
    assert_eq!(reasons.len(), all.len());
}

#[test]
fn every_limit_is_exact_at_its_boundary() {
    // Size cap: a correctly signed token of exactly MAX_TOKEN_LEN bytes passes, one more fails
    // (and one of 7 KiB passes: the cap is 8 KiB, not less).
    let token_of_len = |len: usize| -> Vec<u8> {
        for spaces in 0..4 {
            let header = format!(r#"{{"alg":"HS256"{}}}"#, " ".repeat(spaces));
            let guess = len * 3 / 4 - 70;
            for pad in guess - 10..guess + 10 {
                let payload = format!(r#"{{"exp":4000000000,"p":"{}"}}"#, "x".repeat(pad));
                let token = forge_hs(Algorithm::HS256, HS_SECRET, &header, &payload);
                if token.len() == len {
                    return token;
                }
            }
        }
        panic!("no token of {len} bytes");
    };
    for len in [7 * 1024, jws::MAX_TOKEN_LEN - 1, jws::MAX_TOKEN_LEN] {
        let token = token_of_len(len);
        assert!(
            jws::verify(&token, &hs256(), &Validation::default(), NOW).is_ok(),
            "{len}"
        );
    }
    assert_eq!(
        jws::verify(
            &token_of_len(jws::MAX_TOKEN_LEN + 1),
            &hs256(),
            &Validation::default(),
            NOW
        )
        .unwrap_err(),
        JwtError::TooLong
    );

    // Time claims: the largest value and zero pass, as integers and as integral floats.
    for exp in ["253402300799", "253402300799.0"] {
        let claims = check_payload(&format!(r#"{{"exp":{exp},"nbf":0,"iat":0.0}}"#)).unwrap();
        assert_eq!(claims.exp(), Some(jws::MAX_TIME_CLAIM), "{exp}");
        assert_eq!((claims.nbf(), claims.iat()), (Some(0), Some(0)));
    }
    assert_eq!(
        check_payload(r#"{"exp":253402300800.0}"#).unwrap_err(),
        JwtError::ClaimOutOfRange("exp")
    );
    assert_eq!(
        check_payload(r#"{"exp":4000000000,"nbf":-0.5}"#).unwrap_err(),
        JwtError::ClaimNegative("nbf")
    );

    // Depth: exactly MAX_JSON_DEPTH passes, one more fails; siblings do not add up.
    let nested = |depth: usize| {
        format!(
            r#"{{"exp":4000000000,"a":{}1{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    assert!(check_payload(&nested(jws::MAX_JSON_DEPTH)).is_ok());
    assert_eq!(
        check_payload(&nested(jws::MAX_JSON_DEPTH + 1)).unwrap_err(),
        JwtError::TooDeep
    );
    let siblings: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{{"v":[1]}}"#)).collect();
    let wide = format!(r#"{{"exp":4000000000,{}}}"#, siblings.join(","));
    assert!(check_payload(&wide).is_ok());
    assert!(jws::json_depth_within(br#"{"a":"\"{[{[","b":"\\"}"#, 1));
    assert!(!jws::json_depth_within(br#"{"a":"\\",[[]]}"#, 2));

    // iat: now + leeway passes, one more second fails, unless future iat is allowed.
    let at = |iat: u64| format!(r#"{{"exp":{},"iat":{iat}}}"#, NOW + 60);
    assert!(check_payload(&at(NOW + 10)).is_ok());
    assert_eq!(
        check_payload(&at(NOW + 11)).unwrap_err(),
        JwtError::IssuedInFuture
    );
    let lenient = Validation {
        reject_future_iat: false,
        ..Validation::default()
    };
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256"}"#,
        &at(NOW + 500),
    );
    assert!(jws::verify(&token, &hs256(), &lenient, NOW).is_ok());
    // nbf exactly now + leeway passes.
    let nbf = format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 60, NOW + 10);
    assert!(check_payload(&nbf).is_ok());
}

#[test]
fn a_verified_token_gives_back_exactly_what_was_signed() {
    let payload = r#"{"exp":4000000000,"iat":1600000000,"nbf":1600000001,"sub":"s","n":1}"#;
    let token = forge_hs(
        Algorithm::HS256,
        HS_SECRET,
        r#"{"alg":"HS256","kid":"k","typ":"at+jwt"}"#,
        payload,
    );
    let v = jws::verify(&token, &hs256(), &Validation::default(), NOW).unwrap();
    assert_eq!(v.header().kid.as_deref(), Some("k"));
    assert_eq!(v.header().typ.as_deref(), Some("at+jwt"));
    assert_eq!(v.header().alg, Algorithm::HS256);
    assert_eq!(
        (v.exp(), v.iat(), v.nbf()),
        (
            Some(4_000_000_000),
            Some(1_600_000_000),
            Some(1_600_000_001)
        )
    );
    assert_eq!(v.claim_str("sub"), Some("s"));
    assert_eq!(v.claim_str("n"), None, "a number is not a string claim");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(payload).unwrap();
    assert_eq!(v.claims(), &expected);
    assert_eq!(v.into_claims(), expected);
}
