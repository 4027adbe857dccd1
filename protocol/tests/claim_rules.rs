//! Claim rules on the security path that once had no test: bearer access tokens
//! without `exp`, with `sub` ≠ `cid`, without `cid`; and `iss`/`aud` of the wrong JSON type
//! (`"iss": 5`, `"aud": [1, "x"]`) in every verifier that reads them. Bearer rules are checked
//! at both layers: the key-pair verifier (`KeyPairs`, what the gateway runs) and the key
//! binding in `ApiKeyStore::validate` (which must hold on its own, for any `BearerVerifier`).
#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use torii_protocol::apikey::{authenticate, extract, ApiKey, ApiKeyError, ApiKeyStore};
use torii_protocol::apikey::{Credentials, Extractors, SimpleRequest};
use torii_protocol::challenge::{BackendError, BackendResponder, ChallengeFailure, V2Verifier};
use torii_protocol::jws::{self, Algorithm, JwtError, SigningKey, Validation};
use torii_protocol::jwt_verifier::{ExternalJwtError, ExternalRules, JwtVerifier};
use torii_protocol::oauth::{KeyPair, KeyPairs};

const NOW: u64 = 1_700_000_000;
const EXP: u64 = NOW + 300;

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

fn store() -> ApiKeyStore {
    let keys = ["key-a", "key-b"].map(|id| {
        let mut k = ApiKey::new(id, "a-long-enough-client-secret", id);
        k.routes = vec!["r1".into()];
        k
    });
    ApiKeyStore::new(keys.into()).unwrap()
}

/// A token signed by key pair `kp` (RS256) with these claims, presented as a bearer on `r1`
/// through the gateway's path: extraction, `KeyPairs` verification, then `validate`.
fn on_route(claims: &str) -> Result<String, ApiKeyError> {
    let pairs = KeyPairs::new(vec![KeyPair::from_pem("kp", RSA_PEM).unwrap()]).unwrap();
    let token = sign_raw(
        &signing_key(Algorithm::RS256),
        r#"{"alg":"RS256","kid":"kp"}"#,
        claims,
    );
    let header = format!("Bearer {}", String::from_utf8(token).unwrap());
    let req = SimpleRequest::new().with_header("Authorization", header);
    let ex = Extractors::default();
    let found = extract(&req, &ex).found;
    authenticate(&store(), Some(&pairs), found.as_ref(), "r1", NOW)
        .map(|a| a.key.key().client_id.clone())
}

/// The same claims, verified by a lenient verifier (signature only: no required claim, no
/// audience), then bound to a key by `validate` alone.
fn validate_only(claims: &str) -> Result<String, ApiKeyError> {
    let token = sign_raw(&signing_key(Algorithm::HS256), r#"{"alg":"HS256"}"#, claims);
    let lenient = Validation {
        required_claims: Vec::new(),
        ..Validation::default()
    };
    let verified = jws::verify(&token, &verifying_key(Algorithm::HS256), &lenient, NOW).unwrap();
    store()
        .validate(&Credentials::Bearer(&verified), "r1", NOW)
        .map(|k| k.client_id.clone())
}

/// Both layers, on the same claims.
fn both(claims: &str) -> (Result<String, ApiKeyError>, Result<String, ApiKeyError>) {
    (on_route(claims), validate_only(claims))
}

fn ok(id: &str) -> Result<String, ApiKeyError> {
    Ok(id.to_owned())
}

fn bad(reason: &'static str) -> Result<String, ApiKeyError> {
    Err(ApiKeyError::BadToken(reason))
}

#[test]
fn bearer_controls_pass_at_both_layers() {
    let good = format!(r#"{{"sub":"key-a","cid":"key-a","aud":"otoroshi","exp":{EXP}}}"#);
    assert_eq!(both(&good), (ok("key-a"), ok("key-a")));
    let arr = format!(r#"{{"sub":"key-b","cid":"key-b","aud":["x","otoroshi"],"exp":{EXP}}}"#);
    assert_eq!(both(&arr), (ok("key-b"), ok("key-b")));
}

#[test]
fn bearer_without_exp_is_refused() {
    // KeyPairs requires exp (missing_claim); validate refuses it on its own (missing_exp).
    let no_exp = r#"{"sub":"key-a","cid":"key-a","aud":"otoroshi"}"#;
    assert_eq!(both(no_exp), (bad("missing_claim"), bad("missing_exp")));
    // exp present but null or a string is not an exp either.
    for exp in ["null", r#""4000000000""#] {
        let claims = format!(r#"{{"sub":"key-a","cid":"key-a","aud":"otoroshi","exp":{exp}}}"#);
        assert_eq!(on_route(&claims), bad("claim_not_number"), "{claims}");
    }
}

#[test]
fn bearer_sub_must_be_the_cid() {
    for sub in [
        r#""key-b""#,
        r#""KEY-A""#,
        r#""key-a ""#,
        "5",
        "null",
        r#"["key-a"]"#,
    ] {
        let claims = format!(r#"{{"sub":{sub},"cid":"key-a","aud":"otoroshi","exp":{EXP}}}"#);
        assert_eq!(
            both(&claims),
            (bad("sub_mismatch"), bad("sub_mismatch")),
            "{sub}"
        );
    }
    let no_sub = format!(r#"{{"cid":"key-a","aud":"otoroshi","exp":{EXP}}}"#);
    assert_eq!(both(&no_sub), (bad("sub_mismatch"), bad("sub_mismatch")));
}

#[test]
fn bearer_without_a_string_cid_is_refused() {
    // KeyPairs requires the cid claim to be present; validate needs it to be a string.
    let no_cid = format!(r#"{{"sub":"key-a","aud":"otoroshi","exp":{EXP}}}"#);
    assert_eq!(both(&no_cid), (bad("missing_claim"), bad("missing_cid")));
    for cid in ["5", "null", r#"["key-a"]"#, r#"{"id":"key-a"}"#] {
        let claims = format!(r#"{{"sub":"key-a","cid":{cid},"aud":"otoroshi","exp":{EXP}}}"#);
        assert_eq!(
            both(&claims),
            (bad("missing_cid"), bad("missing_cid")),
            "{cid}"
        );
    }
    // A cid naming no key.
    let unknown = format!(r#"{{"sub":"key-z","cid":"key-z","aud":"otoroshi","exp":{EXP}}}"#);
    assert_eq!(
        both(&unknown),
        (Err(ApiKeyError::Unknown), Err(ApiKeyError::Unknown))
    );
}

/// `aud` values that must never match `x`: a non-string element next to the right one, or
/// the right one in a shape other than a string or an array of strings.
const BAD_AUDS: [&str; 8] = [
    r#"[1,"x"]"#,
    r#"["x",1]"#,
    r#"["x",null]"#,
    r#"[["x"]]"#,
    r#"["x",{"x":"x"}]"#,
    r#"{"0":"x"}"#,
    "5",
    "true",
];

#[test]
fn aud_must_be_a_string_or_an_array_of_strings() {
    // The generic check.
    let rules = Validation {
        audience: Some("x".into()),
        ..Validation::default()
    };
    let check = |aud: &str| {
        let token = sign_raw(
            &signing_key(Algorithm::HS256),
            r#"{"alg":"HS256"}"#,
            &format!(r#"{{"aud":{aud},"exp":{EXP}}}"#),
        );
        jws::verify(&token, &verifying_key(Algorithm::HS256), &rules, NOW).map(|_| ())
    };
    assert_eq!(check(r#""x""#), Ok(()));
    assert_eq!(check(r#"["y","x"]"#), Ok(()));
    for aud in BAD_AUDS {
        assert_eq!(check(aud), Err(JwtError::WrongAudience), "{aud}");
    }
    // Bearer tokens (audience `otoroshi`), at both layers.
    for aud in BAD_AUDS {
        let aud = aud.replace('x', "otoroshi");
        let claims = format!(r#"{{"sub":"key-a","cid":"key-a","aud":{aud},"exp":{EXP}}}"#);
        assert_eq!(
            both(&claims),
            (bad("wrong_audience"), bad("wrong_audience")),
            "{aud}"
        );
    }
    // The V2 answer check (audience `Otoroshi`).
    let key = signing_key(Algorithm::HS512);
    let verifier = V2Verifier::new(verifying_key(Algorithm::HS512), 30, 10);
    let answer = |aud: &str| {
        let claims = format!(
            r#"{{"state-resp":"st","aud":{aud},"iat":{NOW},"exp":{}}}"#,
            NOW + 10
        );
        verifier.verify(&sign_raw(&key, r#"{"alg":"HS512"}"#, &claims), b"st", NOW)
    };
    assert_eq!(answer(r#"["Otoroshi"]"#), Ok(()));
    for aud in BAD_AUDS {
        let aud = aud.replace('x', "Otoroshi");
        assert_eq!(answer(&aud), Err(ChallengeFailure::WrongAudience), "{aud}");
    }
    // The external verifier.
    let external = external_verifier();
    for aud in BAD_AUDS {
        let aud = aud.replace('x', "inventory");
        let claims = format!(r#"{{"iss":"https://sts.test","aud":{aud},"exp":{EXP}}}"#);
        assert_eq!(
            external_check(&external, &claims),
            Err(ExternalJwtError::Token(JwtError::WrongAudience)),
            "{aud}"
        );
    }
}

fn external_verifier() -> JwtVerifier {
    let rules = ExternalRules {
        issuer: Some("https://sts.test".to_owned()),
        audience: Some("inventory".to_owned()),
        leeway: 10,
        required: Default::default(),
    };
    JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &rules).unwrap()
}

fn external_check(v: &JwtVerifier, claims: &str) -> Result<(), ExternalJwtError> {
    let token = sign_raw(&signing_key(Algorithm::RS256), r#"{"alg":"RS256"}"#, claims);
    v.verify(&token, NOW).map(|_| ())
}

#[test]
fn iss_must_be_the_configured_string() {
    let external = external_verifier();
    let claims = |iss: &str| format!(r#"{{"iss":{iss},"aud":"inventory","exp":{EXP}}}"#);
    assert_eq!(
        external_check(&external, &claims(r#""https://sts.test""#)),
        Ok(())
    );
    for iss in [
        "5",
        "null",
        "true",
        r#"["https://sts.test"]"#,
        r#"{"iss":"https://sts.test"}"#,
        r#""https://sts.test/""#,
        r#""HTTPS://STS.TEST""#,
    ] {
        assert_eq!(
            external_check(&external, &claims(iss)),
            Err(ExternalJwtError::Token(JwtError::WrongIssuer)),
            "{iss}"
        );
    }
    let absent = format!(r#"{{"aud":"inventory","exp":{EXP}}}"#);
    assert_eq!(
        external_check(&external, &absent),
        Err(ExternalJwtError::Token(JwtError::MissingClaim(
            "iss".into()
        )))
    );
    // The backend side of the exchange protocol requires iss `Otoroshi` on the state token.
    let key = signing_key(Algorithm::HS512);
    let backend = BackendResponder::v2(verifying_key(Algorithm::HS512), key, 10);
    let key = signing_key(Algorithm::HS512);
    for iss in ["5", "null", r#"["Otoroshi"]"#] {
        let token = sign_raw(
            &key,
            r#"{"alg":"HS512"}"#,
            &format!(r#"{{"iss":{iss},"exp":{EXP},"state":"st"}}"#),
        );
        assert_eq!(
            backend.respond(Some(&token), NOW, &mut Vec::new()),
            Err(BackendError::BadStateToken(JwtError::WrongIssuer)),
            "{iss}"
        );
    }
}
