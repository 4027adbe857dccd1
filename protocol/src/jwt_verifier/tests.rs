//! Tests of the external-JWT verifier: tokens minted by an independent library (`jsonwebtoken`)
//! are accepted, and every token rule of docs/security.md §6 is its own test.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::oauth::{KeyPair, KeyPairs};

const RSA_PEM: &str = include_str!("../../tests/keys/rsa2048.pem");
const RSA_PUB: &str = include_str!("../../tests/keys/rsa2048.pub.pem");
const EC_PEM: &str = include_str!("../../tests/keys/ec256.pem");
const SECRET: &[u8] = b"an-hmac-secret-of-at-least-32-bytes!";
const NOW: u64 = 1_800_000_000;

fn rules() -> ExternalRules {
    ExternalRules {
        issuer: Some("https://sts.test".to_owned()),
        audience: Some("inventory".to_owned()),
        leeway: 10,
        required: RequiredClaims::default(),
    }
}

fn claims() -> Value {
    json!({"iss": "https://sts.test", "aud": "inventory", "sub": "order-processing",
           "scope": "inventory:read", "iat": NOW, "exp": NOW + 300})
}

fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let mut h = Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    encode(
        &h,
        claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn pem_verifier() -> JwtVerifier {
    JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &rules()).unwrap()
}

fn jwks_doc() -> Vec<u8> {
    let rsa = KeyPair::from_pem("rsa-1", RSA_PEM).unwrap();
    let ec = KeyPair::from_pem("ec-1", EC_PEM).unwrap();
    KeyPairs::new(vec![rsa, ec]).unwrap().jwks_json().to_vec()
}

/// A token with the given raw header and payload JSON, signed with HS256 and `secret`.
fn forge(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn err(v: &JwtVerifier, token: &str) -> ExternalJwtError {
    v.verify(token.as_bytes(), NOW).unwrap_err()
}

#[test]
fn accepts_rs256_from_jsonwebtoken_with_a_pem_key() {
    let t = pem_verifier()
        .verify(rs256(&claims(), None).as_bytes(), NOW)
        .unwrap();
    assert_eq!(t.claim_str("sub"), Some("order-processing"));
    assert_eq!(t.claim_str("scope"), Some("inventory:read"));
}

#[test]
fn accepts_tokens_by_kid_from_a_jwks() {
    let v = JwtVerifier::from_jwks(&[Algorithm::RS256, Algorithm::ES256], &jwks_doc(), &rules())
        .unwrap();
    assert_eq!(v.key_count(), 2);
    assert!(v
        .verify(rs256(&claims(), Some("rsa-1")).as_bytes(), NOW)
        .is_ok());
    let mut h = Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("ec-1".to_owned());
    let ec = encode(
        &h,
        &claims(),
        &EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(v.verify(ec.as_bytes(), NOW).is_ok());
    assert_eq!(
        err(&v, &rs256(&claims(), Some("nope"))),
        ExternalJwtError::UnknownKid
    );
    assert_eq!(
        err(&v, &rs256(&claims(), None)),
        ExternalJwtError::MissingKid
    );
    // The RSA key under the EC key's kid: the EC key cannot check an RS256 token.
    assert_eq!(
        err(&v, &rs256(&claims(), Some("ec-1"))),
        ExternalJwtError::Token(JwtError::AlgMismatch)
    );
}

#[test]
fn jwks_yields_keys_for_allowed_algorithms_only() {
    let v = JwtVerifier::from_jwks(&[Algorithm::RS256], &jwks_doc(), &rules()).unwrap();
    assert_eq!(v.key_count(), 1);
    assert!(JwtVerifier::from_jwks(&[Algorithm::ES384], &jwks_doc(), &rules()).is_err());
    let oct = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
    assert!(JwtVerifier::from_jwks(&[Algorithm::RS256], oct, &rules()).is_err());
    assert!(JwtVerifier::from_jwks(&[Algorithm::RS256], b"{}", &rules()).is_err());
    assert!(JwtVerifier::from_jwks(&[Algorithm::RS256], b"not json", &rules()).is_err());
}

#[test]
fn accepts_hs256_from_jsonwebtoken_with_a_secret() {
    let v = JwtVerifier::from_secret(&[Algorithm::HS256], SECRET, false, &rules()).unwrap();
    assert!(v.verify(hs256(&claims(), SECRET).as_bytes(), NOW).is_ok());
    assert_eq!(
        err(
            &v,
            &hs256(&claims(), b"another-secret-of-at-least-32-bytes!!")
        ),
        ExternalJwtError::Token(JwtError::BadSignature)
    );
}

#[test]
fn weak_secret_refused_unless_allowed() {
    assert!(JwtVerifier::from_secret(&[Algorithm::HS256], b"short", false, &rules()).is_err());
    assert!(JwtVerifier::from_secret(&[Algorithm::HS256], b"short", true, &rules()).is_ok());
}

#[test]
fn attack_alg_none() {
    let payload = claims().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let t = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        assert!(pem_verifier().verify(t.as_bytes(), NOW).is_err(), "{alg}");
    }
}

#[test]
fn attack_hs256_signed_with_the_rsa_public_key() {
    // Key confusion (CVE-2022-29217 style): HMAC over the token with the PEM text as secret.
    let t = hs256(&claims(), RSA_PUB.as_bytes());
    assert_eq!(
        err(&pem_verifier(), &t),
        ExternalJwtError::Token(JwtError::AlgMismatch)
    );
}

#[test]
fn attack_algorithm_outside_the_allow_list() {
    let v = JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &rules()).unwrap();
    let mut h = Header::new(jsonwebtoken::Algorithm::PS256);
    h.kid = None;
    let ps = encode(
        &h,
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(err(&v, &ps), ExternalJwtError::Token(JwtError::AlgMismatch));
}

#[test]
fn attack_wrong_issuer() {
    let mut c = claims();
    c["iss"] = json!("https://evil.test");
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::WrongIssuer)
    );
}

#[test]
fn attack_wrong_audience() {
    let mut c = claims();
    c["aud"] = json!(["billing", "orders"]);
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::WrongAudience)
    );
    c["aud"] = json!(["billing", "inventory"]);
    assert!(pem_verifier()
        .verify(rs256(&c, None).as_bytes(), NOW)
        .is_ok());
}

#[test]
fn attack_string_exp() {
    // CVE-2026-25537: a string `exp` must not skip the expiry check.
    let mut c = claims();
    c["exp"] = json!("1");
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::ClaimNotNumber("exp"))
    );
}

#[test]
fn attack_expired() {
    let mut c = claims();
    c["exp"] = json!(NOW - 11);
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::Expired)
    );
    // Within the leeway.
    c["exp"] = json!(NOW - 10);
    assert!(pem_verifier()
        .verify(rs256(&c, None).as_bytes(), NOW)
        .is_ok());
}

#[test]
fn attack_not_yet_valid() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 60);
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::NotYetValid)
    );
}

#[test]
fn attack_missing_exp() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::MissingClaim(_))
    ));
}

#[test]
fn attack_oversized_token() {
    let mut c = claims();
    c["pad"] = json!("x".repeat(9 * 1024));
    assert_eq!(
        err(&pem_verifier(), &rs256(&c, None)),
        ExternalJwtError::Token(JwtError::TooLong)
    );
}

#[test]
fn attack_deep_json() {
    let v = JwtVerifier::from_secret(&[Algorithm::HS256], SECRET, false, &rules()).unwrap();
    let deep = format!(
        r#"{{"iss":"https://sts.test","aud":"inventory","exp":{},"x":{}{}}}"#,
        NOW + 60,
        "[".repeat(40),
        "]".repeat(40)
    );
    let t = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &deep, SECRET);
    assert_eq!(err(&v, &t), ExternalJwtError::Token(JwtError::TooDeep));
}

#[test]
fn attack_jku_and_embedded_jwk_are_ignored() {
    // A header pointing at an attacker's keys changes nothing: the signature must still verify
    // with the configured key.
    let v = JwtVerifier::from_secret(&[Algorithm::HS256], SECRET, false, &rules()).unwrap();
    let header = r#"{"alg":"HS256","jku":"https://evil.test/jwks","jwk":{"kty":"oct","k":"eA"}}"#;
    let attacker = b"attacker-secret-attacker-secret-attacker";
    let t = forge(header, &claims().to_string(), attacker);
    assert_eq!(err(&v, &t), ExternalJwtError::Token(JwtError::BadSignature));
    let good = forge(header, &claims().to_string(), SECRET);
    assert!(v.verify(good.as_bytes(), NOW).is_ok());
}

#[test]
fn attack_kid_is_only_a_lookup_key() {
    let v = JwtVerifier::from_jwks(&[Algorithm::RS256], &jwks_doc(), &rules()).unwrap();
    for kid in [
        "../../etc/passwd",
        "https://evil.test/key",
        "rsa-1' OR '1'='1",
    ] {
        assert_eq!(
            err(&v, &rs256(&claims(), Some(kid))),
            ExternalJwtError::UnknownKid
        );
    }
}

#[test]
fn attack_ecdsa_signature_of_the_wrong_length_or_zero() {
    let pub_pem = include_str!("../../tests/keys/ec256.pub.pem");
    let v = JwtVerifier::from_public_pem(&[Algorithm::ES256], pub_pem, &rules()).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    for sig in [vec![0u8; 64], vec![1u8; 63], vec![1u8; 65], vec![]] {
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert!(v.verify(t.as_bytes(), NOW).is_err());
    }
}

/// `doc` without the JWKs' `alg` members (many identity servers omit them).
fn without_alg(doc: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(doc).unwrap();
    for k in v["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("alg");
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn a_shared_set_serves_each_route_its_own_algorithms() {
    // What a fetcher builds: keys for every asymmetric algorithm.
    let doc = without_alg(&jwks_doc());
    let keys = KeySet::from_jwks(&AlgSet::asymmetric().to_vec(), &doc).unwrap();
    assert!(keys.algorithms().contains(Algorithm::PS512));
    assert_eq!(keys.kids(), ["rsa-1", "ec-1"]);
    let rs_only = RouteCheck::new(&[Algorithm::RS256], &rules());
    let es_only = RouteCheck::new(&[Algorithm::ES256], &rules());
    let token = rs256(&claims(), Some("rsa-1"));
    assert!(rs_only.verify(&keys, token.as_bytes(), NOW).is_ok());
    // The key exists, but this route does not allow RS256.
    assert_eq!(
        es_only.verify(&keys, token.as_bytes(), NOW).unwrap_err(),
        ExternalJwtError::Token(JwtError::AlgMismatch)
    );
    assert_eq!(
        rs_only
            .verify(&keys, rs256(&claims(), Some("rsa-2")).as_bytes(), NOW)
            .unwrap_err(),
        ExternalJwtError::UnknownKid
    );
}

#[test]
fn one_jwk_without_kid_in_the_token_is_enough() {
    let rsa = KeyPair::from_pem("rsa-1", RSA_PEM).unwrap();
    let doc = without_alg(KeyPairs::new(vec![rsa]).unwrap().jwks_json());
    // Six keys (RS*, PS*) from one JWK: still one key as far as `kid` is concerned.
    let keys = KeySet::from_jwks(&AlgSet::asymmetric().to_vec(), &doc).unwrap();
    assert_eq!(keys.len(), 6);
    let check = RouteCheck::new(&[Algorithm::RS256], &rules());
    assert!(check
        .verify(&keys, rs256(&claims(), None).as_bytes(), NOW)
        .is_ok());
}

#[test]
fn required_scopes_and_claims_give_403() {
    let mut r = rules();
    r.required = RequiredClaims {
        scopes: vec!["place-order".into()],
        claims: vec![("sub".into(), vec!["order-processing".into()])],
    };
    let v = JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &r).unwrap();
    let e = err(&v, &rs256(&claims(), None));
    assert_eq!(e, ExternalJwtError::Forbidden(ClaimFailure::MissingScope));
    assert_eq!((e.status(), e.reason()), (403, "insufficient_scope"));
    let mut c = claims();
    c["scope"] = json!("inventory:read place-order");
    assert!(v.verify(rs256(&c, None).as_bytes(), NOW).is_ok());
    c["sub"] = json!("someone-else");
    let e = err(&v, &rs256(&c, None));
    assert_eq!(
        e,
        ExternalJwtError::Forbidden(ClaimFailure::ClaimNotAllowed)
    );
    assert_eq!(e.status(), 403);
    // A bad signature stays 401, whatever the claims.
    let e = err(&v, &forge(r#"{"alg":"RS256"}"#, "{}", SECRET));
    assert_eq!(e.status(), 401);
}

#[test]
fn unusable_or_oversized_sets_are_refused_whole() {
    let all = AlgSet::asymmetric().to_vec();
    let good = String::from_utf8(jwks_doc()).unwrap();
    let doc: Value = serde_json::from_str(&good).unwrap();
    let rsa = doc["keys"][0].clone();
    // A 1024-bit modulus beside a good key: ring would refuse it at every check.
    let small_n = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
    let mut weak = rsa.clone();
    weak["kid"] = json!("weak");
    weak["n"] = json!(small_n);
    let with_weak = json!({"keys": [rsa.clone(), weak]}).to_string();
    let e = KeySet::from_jwks(&all, with_weak.as_bytes()).unwrap_err();
    assert!(e.0.contains("2048"), "{e}");
    let mut even_e = rsa.clone();
    even_e["e"] = json!(URL_SAFE_NO_PAD.encode([0x01, 0x00, 0x00]));
    let doc = json!({"keys": [even_e]}).to_string();
    assert!(KeySet::from_jwks(&all, doc.as_bytes()).is_err());
    let many: Vec<Value> = (0..=MAX_JWKS_KEYS).map(|_| rsa.clone()).collect();
    let doc = json!({ "keys": many }).to_string();
    let e = KeySet::from_jwks(&all, doc.as_bytes()).unwrap_err();
    assert!(e.0.contains("at most"), "{e}");
    let big = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(MAX_JWKS_BYTES));
    assert!(KeySet::from_jwks(&all, big.as_bytes()).is_err());
    for garbage in [&b"<html>"[..], b"{}", b"{\"keys\":{}}", b"{\"keys\":[]}"] {
        assert!(KeySet::from_jwks(&all, garbage).is_err());
    }
    // Unknown key types are skipped, not fatal.
    let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "ed"});
    let doc = json!({"keys": [okp, rsa]}).to_string();
    assert_eq!(
        KeySet::from_jwks(&all, doc.as_bytes()).unwrap().kids(),
        ["rsa-1"]
    );
}

#[test]
fn a_single_key_set_needs_no_kid_and_a_kid_must_name_it() {
    let rsa = KeyPair::from_pem("rsa-1", RSA_PEM).unwrap();
    let one = KeyPairs::new(vec![rsa]).unwrap().jwks_json().to_vec();
    let v = JwtVerifier::from_jwks(&[Algorithm::RS256], &one, &rules()).unwrap();
    assert_eq!(v.key_count(), 1);
    assert!(v.verify(rs256(&claims(), None).as_bytes(), NOW).is_ok());
    assert!(v
        .verify(rs256(&claims(), Some("rsa-1")).as_bytes(), NOW)
        .is_ok());
    assert_eq!(
        err(&v, &rs256(&claims(), Some("rsa-2"))),
        ExternalJwtError::UnknownKid
    );
}

#[test]
fn the_size_cap_is_exact() {
    // A token of exactly MAX_TOKEN_LEN bytes is verified, one byte more is refused first.
    let v = JwtVerifier::from_secret(&[Algorithm::HS256], SECRET, false, &rules()).unwrap();
    let sized = |len: usize| {
        (0..4)
            .flat_map(|spaces| (0..400).map(move |pad| (spaces, pad)))
            .find_map(|(spaces, pad)| {
                let mut c = claims();
                c["pad"] = json!("x".repeat(jws::MAX_TOKEN_LEN * 3 / 4 - 300 + pad));
                let header = format!(r#"{{"alg":"HS256"{}}}"#, " ".repeat(spaces));
                let t = forge(&header, &c.to_string(), SECRET);
                (t.len() == len).then_some(t)
            })
            .unwrap()
    };
    assert!(v.verify(sized(jws::MAX_TOKEN_LEN).as_bytes(), NOW).is_ok());
    assert_eq!(
        err(&v, &sized(jws::MAX_TOKEN_LEN + 1)),
        ExternalJwtError::Token(JwtError::TooLong)
    );
}

/// The limits of a set are exact, an `oct` key refuses the whole set even beside usable keys,
/// and a skipped entry does not count as a key of the set (`index` is what the one-key rule
/// counts).
#[test]
fn set_limits_are_exact_and_only_usable_entries_are_counted() {
    use super::jwks::{parse_jwks, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
    let rs256 = [Algorithm::RS256];
    let good = String::from_utf8(jwks_doc()).unwrap();
    let doc: Value = serde_json::from_str(&good).unwrap();
    let rsa = doc["keys"][0].clone();
    let many: Vec<Value> = (0..MAX_JWKS_KEYS).map(|_| rsa.clone()).collect();
    let keys = parse_jwks(json!({ "keys": many }).to_string().as_bytes(), &rs256).unwrap();
    assert_eq!(keys.len(), MAX_JWKS_KEYS);
    let base = json!({"keys": [rsa.clone()], "pad": ""}).to_string();
    let padded = |extra: usize| {
        json!({"keys": [rsa.clone()], "pad": "x".repeat(MAX_JWKS_BYTES - base.len() + extra)})
            .to_string()
    };
    assert_eq!(padded(0).len(), MAX_JWKS_BYTES);
    assert!(parse_jwks(padded(0).as_bytes(), &rs256).is_ok());
    let e = parse_jwks(padded(1).as_bytes(), &rs256).unwrap_err();
    assert!(e.contains("larger than"), "{e}");
    let oct = json!({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "kid": "s"});
    let e = parse_jwks(
        json!({"keys": [rsa.clone(), oct]}).to_string().as_bytes(),
        &rs256,
    )
    .unwrap_err();
    assert!(e.contains("oct"), "{e}");
    let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "ed"});
    let keys = parse_jwks(json!({"keys": [okp, rsa]}).to_string().as_bytes(), &rs256).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].index, 0);
}
