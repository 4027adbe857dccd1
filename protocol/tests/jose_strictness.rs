//! JOSE strictness, in every place Torii parses JOSE JSON: a header with
//! `crit` is refused (RFC 7515 §4.1.11: Torii understands no extension), and a member name
//! repeated in a header, in the claims or in an OAuth2 body is refused, never resolved to the
//! last one (RFC 7515 §4, RFC 7519 §4, RFC 7517 §4, RFC 6749 §3.2). One table per place: JWS
//! verification, the V2 answer check (gateway) and state-token check (backend), the external
//! JWT verifier and its JWKS, bearer access tokens, and the token/introspection bodies.
#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use torii_protocol::apikey::{authenticate, extract, ApiKey, ApiKeyError, ApiKeyStore};
use torii_protocol::apikey::{Extractors, SimpleRequest};
use torii_protocol::challenge::{BackendError, BackendResponder, ChallengeFailure, V2Verifier};
use torii_protocol::jws::{self, Algorithm, JwtError, Part, SigningKey, Validation};
use torii_protocol::jwt_verifier::{ExternalJwtError, ExternalRules, JwtVerifier};
use torii_protocol::oauth::{
    parse_introspection_request, parse_token_request, ClientCredentials, ErrorCode, KeyPair,
    KeyPairs,
};

const NOW: u64 = 1_700_000_000;
const EXP: u64 = NOW + 300;

/// `b64(header).b64(payload).b64(signature)` for arbitrary header and payload text.
fn sign_raw(key: &SigningKey, header: &str, payload: &str) -> Vec<u8> {
    let mut out = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
    .into_bytes();
    jws::sign_tail(key, 0, &mut out).unwrap();
    out
}

/// Headers carrying `crit` in every shape: a list naming a registered parameter, an empty
/// list (forbidden by §4.1.11 itself), the `b64` extension (RFC 7797), and non-list values.
fn crit_headers(alg: &str) -> Vec<String> {
    [
        r#"{"alg":"ALG","crit":["exp"],"exp":1}"#,
        r#"{"alg":"ALG","crit":[]}"#,
        r#"{"alg":"ALG","b64":false,"crit":["b64"]}"#,
        r#"{"crit":["x"],"x":1,"typ":"JWT","alg":"ALG"}"#,
        r#"{"alg":"ALG","crit":null}"#,
        r#"{"alg":"ALG","crit":"b64"}"#,
        r#"{"alg":"ALG","typ":"JWT","crit":[1]}"#,
    ]
    .iter()
    .map(|h| h.replace("ALG", alg))
    .collect()
}

/// Headers with a repeated member, including the shapes that matter: a second `alg` hiding
/// `none` from a last-wins parser, two `kid`s choosing different keys, an escaped spelling.
fn duplicate_headers(alg: &str) -> Vec<String> {
    [
        r#"{"alg":"ALG","alg":"ALG"}"#,
        r#"{"alg":"none","alg":"ALG"}"#,
        r#"{"alg":"ALG","kid":"a","kid":"b"}"#,
        r#"{"alg":"ALG","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"ALG","\u0061lg":"ALG"}"#,
        r#"{"alg":"ALG","x":{"y":1,"y":2}}"#,
        r#"{"alg":"ALG","x":[{"y":1},{"z":1,"z":1}]}"#,
    ]
    .iter()
    .map(|h| h.replace("ALG", alg))
    .collect()
}

/// Claims with a repeated member, at the top level (read and unread claims) and nested.
fn duplicate_payloads(good: &str) -> Vec<String> {
    let inner = good.trim_start_matches('{').trim_end_matches('}');
    vec![
        format!(r#"{{"exp":1,{inner}}}"#),
        format!(r#"{{{inner},"exp":{EXP}}}"#),
        format!(r#"{{"sub":"a",{inner},"sub":"b"}}"#),
        format!(r#"{{{inner},"x":1,"x":1}}"#),
        format!(r#"{{{inner},"\u0065xp":{EXP}}}"#),
        format!(r#"{{{inner},"ctx":{{"role":"user","role":"admin"}}}}"#),
        format!(r#"{{{inner},"ctx":[[{{"a":null,"a":null}}]]}}"#),
    ]
}

#[test]
fn jws_verify_refuses_crit_and_duplicates_for_every_key_family() {
    let rules = Validation::default();
    let good = format!(r#"{{"exp":{EXP},"sub":"s"}}"#);
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
        let (sign, verify) = (signing_key(alg), verifying_key(alg));
        let check = |header: &str, payload: &str| {
            jws::verify(&sign_raw(&sign, header, payload), &verify, &rules, NOW)
        };
        // Controls: the same shapes without the offending member pass.
        let plain = format!(r#"{{"alg":"{}","kid":"k","x":{{"y":1}}}}"#, alg.name());
        assert!(check(&plain, &good).is_ok(), "{alg}");
        let near = format!(r#"{{"alg":"{}","critical":["x"],"Crit":1}}"#, alg.name());
        assert!(
            check(&near, &good).is_ok(),
            "only the exact name crit is refused"
        );
        for header in crit_headers(alg.name()) {
            assert_eq!(check(&header, &good), Err(JwtError::CritHeader), "{header}");
        }
        for header in duplicate_headers(alg.name()) {
            assert_eq!(
                check(&header, &good),
                Err(JwtError::DuplicateMember(Part::Header)),
                "{header}"
            );
        }
        let header = format!(r#"{{"alg":"{}"}}"#, alg.name());
        for payload in duplicate_payloads(&good) {
            assert_eq!(
                check(&header, &payload),
                Err(JwtError::DuplicateMember(Part::Payload)),
                "{payload}"
            );
        }
        // Names differing in case are different names.
        let cased = format!(r#"{{"exp":{EXP},"Exp":1,"EXP":"x"}}"#);
        assert!(check(&header, &cased).is_ok());
    }
    // The signature is still checked before the claims are read.
    let other = SigningKey::hmac(Algorithm::HS256, &[9; 32], false).unwrap();
    let forged = sign_raw(&other, r#"{"alg":"HS256"}"#, r#"{"exp":1,"exp":2}"#);
    assert_eq!(
        jws::verify(&forged, &verifying_key(Algorithm::HS256), &rules, NOW),
        Err(JwtError::BadSignature)
    );
    // peek_kid (key selection) refuses an ambiguous kid before any key is chosen.
    let two_kids = sign_raw(
        &signing_key(Algorithm::HS256),
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        &good,
    );
    assert_eq!(
        jws::peek_kid(&two_kids),
        Err(JwtError::DuplicateMember(Part::Header))
    );
}

#[test]
fn v2_answer_check_refuses_crit_and_duplicates() {
    let key = signing_key(Algorithm::HS512);
    let verifier = V2Verifier::new(verifying_key(Algorithm::HS512), 30, 10);
    let good = format!(
        r#"{{"state-resp":"st","aud":"Otoroshi","iat":{NOW},"nbf":{NOW},"exp":{}}}"#,
        NOW + 10
    );
    let check =
        |header: &str, payload: &str| verifier.verify(&sign_raw(&key, header, payload), b"st", NOW);
    assert_eq!(check(r#"{"alg":"HS512","kid":"k"}"#, &good), Ok(()));
    for header in crit_headers("HS512")
        .into_iter()
        .chain(duplicate_headers("HS512"))
    {
        assert_eq!(
            check(&header, &good),
            Err(ChallengeFailure::Malformed),
            "{header}"
        );
    }
    let mut payloads = duplicate_payloads(&good);
    // A forged state first and the real one last: a last-wins parser would accept it.
    let inner = good.trim_start_matches('{');
    payloads.push(format!(r#"{{"state-resp":"forged",{inner}"#));
    payloads.push(format!(r#"{{"aud":"someone-else",{inner}"#));
    for payload in payloads {
        assert_eq!(
            check(r#"{"alg":"HS512","typ":"JWT"}"#, &payload),
            Err(ChallengeFailure::Malformed),
            "{payload}"
        );
    }
}

#[test]
fn backend_refuses_state_tokens_with_crit_or_duplicates() {
    let key = signing_key(Algorithm::HS512);
    let backend = BackendResponder::v2(verifying_key(Algorithm::HS512), key, 10);
    let key = signing_key(Algorithm::HS512);
    let good = format!(r#"{{"iss":"Otoroshi","exp":{EXP},"state":"st"}}"#);
    let respond = |header: &str, payload: &str| {
        backend.respond(Some(&sign_raw(&key, header, payload)), NOW, &mut Vec::new())
    };
    assert_eq!(respond(r#"{"alg":"HS512"}"#, &good), Ok(()));
    let crit = r#"{"alg":"HS512","crit":["exp"]}"#;
    assert_eq!(
        respond(crit, &good),
        Err(BackendError::BadStateToken(JwtError::CritHeader))
    );
    let inner = good.trim_start_matches('{');
    for payload in [
        format!(r#"{{"state":"forged",{inner}"#),
        format!(r#"{{"iss":"Other",{inner}"#),
    ] {
        assert_eq!(
            respond(r#"{"alg":"HS512"}"#, &payload),
            Err(BackendError::BadStateToken(JwtError::DuplicateMember(
                Part::Payload
            ))),
            "{payload}"
        );
    }
}

fn external_rules() -> ExternalRules {
    ExternalRules {
        issuer: Some("https://sts.test".to_owned()),
        audience: Some("inventory".to_owned()),
        leeway: 10,
        required: Default::default(),
    }
}

#[test]
fn external_verifier_refuses_crit_and_duplicates() {
    let good = format!(r#"{{"iss":"https://sts.test","aud":"inventory","exp":{EXP}}}"#);
    let jwks = KeyPairs::new(vec![
        KeyPair::from_pem("rsa-1", RSA_PEM).unwrap(),
        KeyPair::from_pem("rsa-2", RSA_PEM).unwrap(),
    ])
    .unwrap();
    let by_kid =
        JwtVerifier::from_jwks(&[Algorithm::RS256], jwks.jwks_json(), &external_rules()).unwrap();
    let by_pem =
        JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &external_rules()).unwrap();
    let by_secret =
        JwtVerifier::from_secret(&[Algorithm::HS256], HS_SECRET, false, &external_rules()).unwrap();
    let rsa = signing_key(Algorithm::RS256);
    let hs = signing_key(Algorithm::HS256);
    // (verifier, signer, algorithm, what the header needs to pick the key)
    let cases: [(&JwtVerifier, &SigningKey, &str, &str); 3] = [
        (&by_kid, &rsa, "RS256", r#""kid":"rsa-1","#),
        (&by_pem, &rsa, "RS256", ""),
        (&by_secret, &hs, "HS256", ""),
    ];
    for (verifier, key, alg, kid) in cases {
        let check = |header: &str, payload: &str| {
            let header = header.replacen('{', &format!("{{{kid}"), 1);
            verifier.verify(&sign_raw(key, &header, payload), NOW)
        };
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let header = header.as_str();
        assert!(check(header, &good).is_ok(), "{alg} {kid}");
        for h in crit_headers(alg) {
            assert_eq!(
                check(&h, &good).unwrap_err(),
                ExternalJwtError::Token(JwtError::CritHeader),
                "{h}"
            );
        }
        for h in duplicate_headers(alg) {
            assert_eq!(
                check(&h, &good).unwrap_err(),
                ExternalJwtError::Token(JwtError::DuplicateMember(Part::Header)),
                "{h}"
            );
        }
        for payload in duplicate_payloads(&good).into_iter().chain([
            // A second iss / aud that a first-wins reader would take.
            good.replacen('{', r#"{"iss":"https://evil.test","#, 1),
            good.replacen('{', r#"{"aud":"billing","#, 1),
        ]) {
            assert_eq!(
                check(header, &payload).unwrap_err(),
                ExternalJwtError::Token(JwtError::DuplicateMember(Part::Payload)),
                "{payload}"
            );
        }
    }
    // Two kids naming two keys of the set: refused before either key is tried.
    let two = sign_raw(
        &rsa,
        r#"{"alg":"RS256","kid":"rsa-2","kid":"rsa-1"}"#,
        &good,
    );
    assert_eq!(
        by_kid.verify(&two, NOW).unwrap_err(),
        ExternalJwtError::Token(JwtError::DuplicateMember(Part::Header))
    );
}

#[test]
fn jwks_documents_with_duplicate_members_are_config_errors() {
    let jwks = KeyPairs::new(vec![KeyPair::from_pem("rsa-1", RSA_PEM).unwrap()]).unwrap();
    let doc = std::str::from_utf8(jwks.jwks_json()).unwrap().to_owned();
    assert!(JwtVerifier::from_jwks(&[Algorithm::RS256], doc.as_bytes(), &external_rules()).is_ok());
    for bad in [
        doc.replacen(r#""kid":"rsa-1""#, r#""kid":"rsa-1","kid":"other""#, 1),
        doc.replacen(r#""kty":"RSA""#, r#""kty":"EC","kty":"RSA""#, 1),
        doc.replacen('{', r#"{"keys":[],"#, 1),
    ] {
        let err = JwtVerifier::from_jwks(&[Algorithm::RS256], bad.as_bytes(), &external_rules())
            .unwrap_err();
        assert!(err.0.contains("appears twice"), "{bad}: {err}");
    }
}

fn api_key(id: &str) -> ApiKey {
    let mut k = ApiKey::new(id, "a-long-enough-client-secret", id);
    k.routes = vec!["r1".into()];
    k
}

#[test]
fn bearer_access_tokens_refuse_crit_and_duplicates() {
    let pairs = KeyPairs::new(vec![KeyPair::from_pem("kp", RSA_PEM).unwrap()]).unwrap();
    let store = ApiKeyStore::new(vec![api_key("key-a"), api_key("key-b")]).unwrap();
    let signer = signing_key(Algorithm::RS256);
    let bearer = |header: &str, payload: &str| {
        let token = String::from_utf8(sign_raw(&signer, header, payload)).unwrap();
        let req = SimpleRequest::new().with_header("Authorization", format!("Bearer {token}"));
        let ex = Extractors::default();
        let found = extract(&req, &ex).found;
        let result = authenticate(&store, Some(&pairs), found.as_ref(), "r1", NOW);
        let introspected = ClientCredentials::default()
            .introspect(
                &store,
                &pairs,
                &parse_introspection_request(
                    Some(b"application/x-www-form-urlencoded"),
                    None,
                    format!(
                        "token={token}&client_id=key-b&client_secret=a-long-enough-client-secret"
                    )
                    .as_bytes(),
                )
                .unwrap(),
                NOW,
            )
            .unwrap();
        (
            result.map(|a| a.key.key().client_id.clone()),
            introspected == br#"{"active":false}"#,
        )
    };
    let good = format!(r#"{{"sub":"key-a","cid":"key-a","aud":"otoroshi","exp":{EXP}}}"#);
    let header = r#"{"alg":"RS256","kid":"kp"}"#;
    assert_eq!(bearer(header, &good), (Ok("key-a".to_owned()), false));
    for h in crit_headers("RS256") {
        let h = h.replacen('{', r#"{"kid":"kp","#, 1);
        assert_eq!(
            bearer(&h, &good),
            (Err(ApiKeyError::BadToken("crit_header")), true),
            "{h}"
        );
    }
    let two_kids = r#"{"alg":"RS256","kid":"nope","kid":"kp"}"#;
    assert_eq!(
        bearer(two_kids, &good),
        (Err(ApiKeyError::BadToken("duplicate_member")), true)
    );
    let inner = good.trim_start_matches('{');
    for payload in duplicate_payloads(&good).into_iter().chain([
        // Which key is this? key-b to a first-wins reader, key-a to a last-wins one.
        format!(r#"{{"cid":"key-b","sub":"key-b",{inner}"#),
        format!(r#"{{"aud":"someone-else",{inner}"#),
    ]) {
        assert_eq!(
            bearer(header, &payload),
            (Err(ApiKeyError::BadToken("duplicate_member")), true),
            "{payload}"
        );
    }
}

const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
const JSON: Option<&[u8]> = Some(b"application/json");
const GIVEN_TWICE: &str = "parameter given more than once";

#[test]
fn oauth_bodies_refuse_repeated_parameters() {
    let store = ApiKeyStore::new(vec![api_key("key-a"), api_key("key-b")]).unwrap();
    let secret = "a-long-enough-client-secret";
    // Controls: each client alone gets a token.
    let pairs = KeyPairs::new(vec![
        KeyPair::from_pem("otoroshi-jwt-signing", RSA_PEM).unwrap()
    ])
    .unwrap();
    for id in ["key-a", "key-b"] {
        let body = format!(
            r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}"}}"#
        );
        let req = parse_token_request(JSON, None, body.as_bytes()).unwrap();
        let svc = ClientCredentials::default();
        assert!(svc
            .token(&store, &pairs, &req, "https://x", NOW, "j")
            .is_ok());
    }
    let json_bodies = [
        // The issue's example: serde_json alone would authenticate key-a.
        format!(
            r#"{{"grant_type":"client_credentials","client_id":"key-b","client_id":"key-a","client_secret":"{secret}"}}"#
        ),
        format!(
            r#"{{"grant_type":"client_credentials","client_id":"key-b","client\u005fid":"key-a","client_secret":"{secret}"}}"#
        ),
        format!(
            r#"{{"grant_type":"client_credentials","client_id":"key-a","client_id":null,"client_secret":"{secret}"}}"#
        ),
        format!(
            r#"{{"grant_type":"client_credentials","client_id":"key-a","client_secret":"x","client_secret":"{secret}"}}"#
        ),
        format!(
            r#"{{"grant_type":"password","grant_type":"client_credentials","client_id":"key-a","client_secret":"{secret}"}}"#
        ),
        format!(
            r#"{{"grant_type":"client_credentials","scope":"a","scope":"b","client_id":"key-a","client_secret":"{secret}"}}"#
        ),
    ];
    let form_bodies = [
        format!("grant_type=client_credentials&client_id=key-b&client_id=key-a&client_secret={secret}"),
        format!("grant_type=client_credentials&client_id=key-b&client%5Fid=key-a&client_secret={secret}"),
        format!("grant_type=client_credentials&client_id=key-a&client_id=&client_secret={secret}"),
        format!("grant_type=client_credentials&client_id&client_id=key-a&client_secret={secret}"),
        format!("grant_type=client_credentials&grant_type=client_credentials&client_id=key-a&client_secret={secret}"),
        format!("grant_type=client_credentials&client_id=key-a&client_secret=x&client_secret={secret}"),
        format!("grant_type=client_credentials&scope=a&scope=b&client_id=key-a&client_secret={secret}"),
    ];
    let all = json_bodies
        .iter()
        .map(|b| (JSON, b))
        .chain(form_bodies.iter().map(|b| (FORM, b)));
    for (ct, body) in all {
        let e = parse_token_request(ct, None, body.as_bytes()).unwrap_err();
        assert_eq!(
            (e.code, e.status(), e.description.as_str()),
            (ErrorCode::InvalidRequest, 400, GIVEN_TWICE),
            "{body}"
        );
        // The introspection endpoint parses the same bodies (plus a token).
        let with_token = if ct == JSON {
            body.replacen('{', r#"{"token":"t","#, 1)
        } else {
            format!("token=t&{body}")
        };
        let e = parse_introspection_request(ct, None, with_token.as_bytes()).unwrap_err();
        assert_eq!(e.description, GIVEN_TWICE, "{with_token}");
    }
    // A repeated token parameter, and a repeat next to Basic authentication.
    let basic = format!("Basic {}", STANDARD.encode(format!("key-a:{secret}")));
    for (ct, body) in [
        (FORM, "token=a&token=b".to_owned()),
        (JSON, r#"{"token":"a","token":"b"}"#.to_owned()),
        (
            FORM,
            "grant_type=client_credentials&scope=a&scope=a".to_owned(),
        ),
    ] {
        let e =
            parse_introspection_request(ct, Some(basic.as_bytes()), body.as_bytes()).unwrap_err();
        assert_eq!(e.description, GIVEN_TWICE, "{body}");
    }
}
