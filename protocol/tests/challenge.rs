//! Exchange protocol: every ChallengeFailure reason, V2 token shape (checked with jsonwebtoken),
//! and gateway ↔ backend round trips for V1 and V2.

#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use torii_protocol::challenge::{
    verify_v1, BackendError, BackendResponder, ChallengeFailure, ChallengeVersion, IssueError,
    StateGenerator, V2Issuer, V2Verifier, STATE_LEN,
};
use torii_protocol::jws::{self, Algorithm, JwtError, SigningKey, VerifyingKey};

const NOW: u64 = 1_700_000_000;
const TTL: u64 = 30;

fn state_and_jti() -> ([u8; 128], [u8; 36]) {
    let mut g = StateGenerator::from_seed([9; 32]);
    let (mut s, mut j) = ([0; 128], [0; 36]);
    g.fill_state(&mut s);
    g.fill_jti(&mut j);
    (s, j)
}

fn hs512() -> SigningKey {
    signing_key(Algorithm::HS512)
}

/// A backend answer signed with `key`, with arbitrary claims.
fn answer(key: &SigningKey, claims: Value) -> Vec<u8> {
    let mut out = Vec::new();
    jws::encode_claims(key, None, claims.as_object().unwrap(), &mut out).unwrap();
    out
}

fn verifier() -> V2Verifier {
    V2Verifier::new(verifying_key(Algorithm::HS512), TTL, 10)
}

fn good_claims(state: &[u8]) -> Value {
    json!({"state-resp": std::str::from_utf8(state).unwrap(), "aud": "Otoroshi",
           "iat": NOW, "nbf": NOW, "exp": NOW + 10})
}

#[test]
fn v1_checks() {
    let (state, _) = state_and_jti();
    assert_eq!(verify_v1(&state, Some(&state)), Ok(()));
    assert_eq!(
        verify_v1(&state, None),
        Err(ChallengeFailure::MissingHeader)
    );
    let mut other = state;
    other[127] = if other[127] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        verify_v1(&state, Some(&other)),
        Err(ChallengeFailure::StateMismatch)
    );
    assert_eq!(
        verify_v1(&state, Some(&state[..127])),
        Err(ChallengeFailure::StateMismatch)
    );
    assert_eq!(
        verify_v1(&state, Some(b"")),
        Err(ChallengeFailure::StateMismatch)
    );
}

#[test]
fn v2_request_token_has_the_documented_claims() {
    let (state, jti) = state_and_jti();
    for alg in Algorithm::ALL {
        let issuer = V2Issuer::new("my \"route\"\n\u{e9}", TTL, signing_key(alg));
        assert_eq!(issuer.ttl_secs(), TTL);
        let mut out = Vec::with_capacity(2048);
        let now = wall_now();
        issuer.issue_into(&state, &jti, now, &mut out).unwrap();
        let claims = jwt_decode(alg, &out);
        let expected = json!({
            "iss": "Otoroshi", "sub": "Otoroshi", "aud": "my \"route\"\n\u{e9}", "iat": now,
            "nbf": now, "exp": now + TTL, "jti": std::str::from_utf8(&jti).unwrap(),
            "state": std::str::from_utf8(&state).unwrap(),
        });
        assert_eq!(Value::Object(claims), expected, "{alg}");
        let header = jsonwebtoken::decode_header(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(header.kid, None);
    }
}

#[test]
fn v2_issue_does_not_allocate_and_appends() {
    let (state, jti) = state_and_jti();
    let issuer = V2Issuer::new("r", TTL, hs512());
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"X: ");
    let ptr = out.as_ptr();
    issuer.issue_into(&state, &jti, NOW, &mut out).unwrap();
    assert_eq!(out.as_ptr(), ptr, "buffer was reallocated");
    assert!(out.starts_with(b"X: eyJ"));
    let mut bad_state = state;
    bad_state[0] = b'"';
    let len = out.len();
    assert_eq!(
        issuer.issue_into(&bad_state, &jti, NOW, &mut out),
        Err(IssueError::InvalidValue)
    );
    assert_eq!(out.len(), len, "failed issue leaves the buffer as it was");
}

#[test]
fn v2_accepts_a_good_answer_and_each_failure_has_its_reason() {
    let (state, _) = state_and_jti();
    let v = verifier();
    let key = hs512();
    assert_eq!(
        v.verify(&answer(&key, good_claims(&state)), &state, NOW),
        Ok(())
    );
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = good_claims(&state);
        f(c.as_object_mut().unwrap());
        answer(&key, c)
    };
    let cases: Vec<(Vec<u8>, ChallengeFailure)> = vec![
        (
            with(&|c| {
                c.insert("state-resp".into(), json!("x"));
            }),
            ChallengeFailure::StateMismatch,
        ),
        (
            with(&|c| {
                c.remove("state-resp");
            }),
            ChallengeFailure::StateMismatch,
        ),
        (
            answer(
                &SigningKey::hmac(Algorithm::HS512, &[5; 32], false).unwrap(),
                good_claims(&state),
            ),
            ChallengeFailure::BadSignature,
        ),
        (
            answer(&signing_key(Algorithm::HS256), good_claims(&state)),
            ChallengeFailure::AlgMismatch,
        ),
        (
            answer(&signing_key(Algorithm::ES256), good_claims(&state)),
            ChallengeFailure::AlgMismatch,
        ),
        (b"not.a.token".to_vec(), ChallengeFailure::Malformed),
        (b"".to_vec(), ChallengeFailure::Malformed),
        (
            with(&|c| {
                c.insert("exp".into(), json!("soon"));
            }),
            ChallengeFailure::Malformed,
        ),
        (
            with(&|c| {
                c.insert("iat".into(), json!(NOW - 40));
                c.insert("exp".into(), json!(NOW - 11));
            }),
            ChallengeFailure::Expired,
        ),
        (
            with(&|c| {
                c.insert("nbf".into(), json!(NOW + 11));
            }),
            ChallengeFailure::NotYetValid,
        ),
        (
            with(&|c| {
                c.remove("exp");
            }),
            ChallengeFailure::MissingExpIat,
        ),
        (
            with(&|c| {
                c.remove("iat");
            }),
            ChallengeFailure::MissingExpIat,
        ),
        (
            with(&|c| {
                c.insert("exp".into(), json!(NOW + 31));
            }),
            ChallengeFailure::TtlTooLong,
        ),
        (
            with(&|c| {
                c.insert("aud".into(), json!("Someone"));
            }),
            ChallengeFailure::WrongAudience,
        ),
        (
            with(&|c| {
                c.insert("aud".into(), json!(["a", "b"]));
            }),
            ChallengeFailure::WrongAudience,
        ),
        (
            with(&|c| {
                c.remove("aud");
            }),
            ChallengeFailure::WrongAudience,
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            v.verify(&token, &state, NOW),
            Err(expected),
            "{}",
            expected.reason()
        );
    }
    // aud as an array containing Otoroshi is fine; nbf is optional.
    let token = with(&|c| {
        c.insert("aud".into(), json!(["x", "Otoroshi"]));
        c.remove("nbf");
    });
    assert_eq!(v.verify(&token, &state, NOW), Ok(()));
    // Route ttl 5, leeway 10: exp - iat <= 5 and iat >= now - 15 (freshness). A replayed old
    // answer reports `stale` (checked before `expired`); one just past its exp, `expired`.
    let short = V2Verifier::new(verifying_key(Algorithm::HS512), 5, 10);
    let token = with(&|c| {
        c.insert("iat".into(), json!(NOW - 16));
        c.insert("exp".into(), json!(NOW - 10));
        c.insert("nbf".into(), json!(NOW - 16));
    });
    assert_eq!(
        short.verify(&token, &state, NOW),
        Err(ChallengeFailure::TtlTooLong)
    );
    let token = with(&|c| {
        c.insert("iat".into(), json!(NOW - 16));
        c.insert("exp".into(), json!(NOW - 11));
        c.insert("nbf".into(), json!(NOW - 16));
    });
    assert_eq!(
        short.verify(&token, &state, NOW),
        Err(ChallengeFailure::Stale)
    );
    let token = with(&|c| {
        c.insert("iat".into(), json!(NOW - 15));
        c.insert("exp".into(), json!(NOW - 10));
    });
    assert_eq!(short.verify(&token, &state, NOW), Ok(()));
    assert_eq!(
        v.verify_header(None, &state, NOW),
        Err(ChallengeFailure::MissingHeader)
    );
}

#[test]
fn every_failure_reason_is_distinct() {
    let all = [
        ChallengeFailure::MissingHeader,
        ChallengeFailure::StateMismatch,
        ChallengeFailure::BadSignature,
        ChallengeFailure::AlgMismatch,
        ChallengeFailure::Malformed,
        ChallengeFailure::Expired,
        ChallengeFailure::NotYetValid,
        ChallengeFailure::MissingExpIat,
        ChallengeFailure::TtlTooLong,
        ChallengeFailure::Stale,
        ChallengeFailure::WrongAudience,
    ];
    let set: std::collections::HashSet<_> = all.iter().map(|f| f.reason()).collect();
    assert_eq!(set.len(), all.len());
    assert_eq!(ChallengeFailure::ALL, all, "ALL lists every reason once");
}

#[test]
fn v1_round_trip_with_backend() {
    let mut g = StateGenerator::from_os().unwrap();
    let mut state = [0u8; STATE_LEN];
    g.fill_state(&mut state);
    let backend = BackendResponder::v1();
    assert_eq!(backend.version(), ChallengeVersion::V1);
    let mut resp = Vec::new();
    backend.respond(Some(&state), NOW, &mut resp).unwrap();
    assert_eq!(verify_v1(&state, Some(&resp)), Ok(()));
    assert_eq!(
        backend.respond(None, NOW, &mut resp),
        Err(BackendError::MissingState)
    );
}

#[test]
fn v2_round_trip_with_backend_for_several_algorithms() {
    let (state, jti) = state_and_jti();
    for (to_backend, from_backend) in [
        (Algorithm::HS512, Algorithm::HS512),
        (Algorithm::HS256, Algorithm::ES256),
        (Algorithm::ES384, Algorithm::RS256),
    ] {
        let issuer = V2Issuer::new("route", TTL, signing_key(to_backend));
        let verifier = V2Verifier::new(verifying_key(from_backend), TTL, 10);
        let backend =
            BackendResponder::v2(verifying_key(to_backend), signing_key(from_backend), 10);
        let mut req = Vec::new();
        issuer.issue_into(&state, &jti, NOW, &mut req).unwrap();
        let mut resp = Vec::new();
        backend.respond(Some(&req), NOW + 1, &mut resp).unwrap();
        assert_eq!(verifier.verify(&resp, &state, NOW + 2), Ok(()));
        // The answer does not fit another request's state.
        let mut other = state;
        other[0] = if other[0] == b'x' { b'y' } else { b'x' };
        assert_eq!(
            verifier.verify(&resp, &other, NOW + 2),
            Err(ChallengeFailure::StateMismatch)
        );
        // An expired state token is refused by the backend.
        assert!(matches!(
            backend.respond(Some(&req), NOW + TTL + 11, &mut Vec::new()),
            Err(BackendError::BadStateToken(JwtError::Expired))
        ));
    }
}

#[test]
fn backend_refuses_tampered_or_foreign_state_tokens() {
    let (state, jti) = state_and_jti();
    let backend = BackendResponder::v2(verifying_key(Algorithm::HS512), hs512(), 10);
    let mut req = Vec::new();
    V2Issuer::new("r", TTL, hs512())
        .issue_into(&state, &jti, NOW, &mut req)
        .unwrap();
    let mut tampered = req.clone();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        backend.respond(Some(&tampered), NOW, &mut Vec::new()),
        Err(BackendError::BadStateToken(JwtError::BadSignature))
    ));
    // A token with the wrong issuer, and one without a state claim.
    let wrong_iss = answer(
        &hs512(),
        json!({"iss": "Other", "exp": NOW + 5, "state": "s"}),
    );
    assert!(matches!(
        backend.respond(Some(&wrong_iss), NOW, &mut Vec::new()),
        Err(BackendError::BadStateToken(JwtError::WrongIssuer))
    ));
    let no_state = answer(&hs512(), json!({"iss": "Otoroshi", "exp": NOW + 5}));
    assert_eq!(
        backend.respond(Some(&no_state), NOW, &mut Vec::new()),
        Err(BackendError::NoStateClaim)
    );
    // The backend's answer has Otoroshi's demo shape.
    let mut resp = Vec::new();
    backend.respond(Some(&req), NOW, &mut resp).unwrap();
    let payload = resp.split(|&b| b == b'.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(
        claims,
        json!({"state-resp": std::str::from_utf8(&state).unwrap(), "aud": "Otoroshi", "iat": NOW, "nbf": NOW, "exp": NOW + 10})
    );
    let _ = VerifyingKey::hmac(Algorithm::HS512, b"secret", true).unwrap();
}
