//! Info token: both layouts decoded with jsonwebtoken, envelope protection, escaping, extras.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Map, Value};
use torii_protocol::challenge::StateGenerator;
use torii_protocol::info_token::{
    ExtraClaims, InfoTokenError, InfoTokenSigner, Layout, PreparedApiKey,
};
use torii_protocol::jws::Algorithm;

const TTL: u64 = 30;

fn jti() -> [u8; 36] {
    let mut j = [0u8; 36];
    StateGenerator::from_seed([2; 32]).fill_jti(&mut j);
    j
}

fn key() -> PreparedApiKey {
    let metadata: BTreeMap<String, String> = [
        ("team", "a \"quoted\" \\ team\n"),
        ("iss", "evil"),
        ("exp", "0"),
        ("name", "not-the-name"),
        ("emoji", "\u{1F600}\u{e9}"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    PreparedApiKey::new(
        "client-1",
        "My \"App\"",
        &metadata,
        &["t1".into(), "t\"2".into()],
    )
}

fn write(
    signer: &InfoTokenSigner,
    k: Option<&PreparedApiKey>,
    extra: Option<&ExtraClaims>,
    now: u64,
) -> Map<String, Value> {
    let mut out = Vec::new();
    signer
        .write_into(k, extra, None, now, &jti(), &mut out)
        .unwrap();
    jwt_decode(Algorithm::HS512, &out)
}

const ROUTE: &str = "route \"x\" \\ \n\t\u{1}\u{e9}\u{1F600}";

fn envelope(now: u64) -> Value {
    json!({"iss": "Otoroshi", "aud": ROUTE, "iat": now, "nbf": now, "exp": now + TTL,
           "jti": std::str::from_utf8(&jti()).unwrap()})
}

fn merged(now: u64, more: Value) -> Value {
    let mut e = envelope(now);
    e.as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    e
}

#[test]
fn latest_layout() {
    let now = wall_now();
    let signer = InfoTokenSigner::new(Layout::Latest, ROUTE, TTL, signing_key(Algorithm::HS512));
    let claims = write(&signer, None, None, now);
    assert_eq!(
        Value::Object(claims),
        merged(now, json!({"sub": "public", "access_type": "public"}))
    );
    let claims = write(&signer, Some(&key()), None, now);
    let expected = merged(
        now,
        json!({
            "sub": "My \"App\"", "access_type": "apikey",
            "apikey": {"clientId": "client-1", "clientName": "My \"App\"", "tags": ["t1", "t\"2"],
                "metadata": {"team": "a \"quoted\" \\ team\n", "iss": "evil", "exp": "0",
                             "name": "not-the-name", "emoji": "\u{1F600}\u{e9}", "empty": ""}}
        }),
    );
    assert_eq!(Value::Object(claims), expected);
}

#[test]
fn legacy_layout_never_lets_metadata_overwrite_the_envelope() {
    let now = wall_now();
    let signer = InfoTokenSigner::new(Layout::Legacy, ROUTE, TTL, signing_key(Algorithm::HS512));
    assert_eq!(
        Value::Object(write(&signer, None, None, now)),
        merged(now, json!({"sub": "--"}))
    );
    let claims = write(&signer, Some(&key()), None, now);
    assert_eq!(claims["iss"], "Otoroshi");
    assert_eq!(claims["exp"], now + TTL);
    assert_eq!(claims["name"], "My \"App\"");
    assert_eq!(claims["sub"], "apikey:client-1");
    assert_eq!(claims["user_id"], "client-1");
    assert_eq!(claims["team"], "a \"quoted\" \\ team\n");
    assert_eq!(claims["emoji"], "\u{1F600}\u{e9}");
    assert!(!claims.contains_key("empty"));
    let meta: Value = serde_json::from_str(claims["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["iss"], "evil");
    let tags: Value = serde_json::from_str(claims["tags"].as_str().unwrap()).unwrap();
    assert_eq!(tags, json!(["t1", "t\"2"]));
    let light: Value = serde_json::from_str(claims["apikey"].as_str().unwrap()).unwrap();
    assert_eq!(light["clientId"], "client-1");
    assert_eq!(light["metadata"]["team"], "a \"quoted\" \\ team\n");
    // The raw payload has no duplicate keys (a lenient parser could pick either one).
    let mut out = Vec::new();
    signer
        .write_into(Some(&key()), None, None, now, &jti(), &mut out)
        .unwrap();
    let payload = out.split(|&b| b == b'.').nth(1).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.matches("\"iss\":").count(), 1, "{text}");
    assert_eq!(text.matches("\"name\":").count(), 1, "{text}");
    // Empty name and tags are omitted in Legacy.
    let bare = PreparedApiKey::new("id", "", &BTreeMap::new(), &[]);
    let claims = write(&signer, Some(&bare), None, now);
    assert!(
        !claims.contains_key("name")
            && !claims.contains_key("tags")
            && !claims.contains_key("metadata")
    );
}

#[test]
fn every_algorithm_signs_info_tokens() {
    let now = wall_now();
    for alg in Algorithm::ALL {
        let signer = InfoTokenSigner::new(Layout::Latest, "r", TTL, signing_key(alg));
        let mut out = Vec::new();
        signer
            .write_into(Some(&key()), None, None, now, &jti(), &mut out)
            .unwrap();
        assert_eq!(jwt_decode(alg, &out)["sub"], "My \"App\"", "{alg}");
    }
}

#[test]
fn extra_claims() {
    let now = wall_now();
    let signer = InfoTokenSigner::new(Layout::Latest, ROUTE, TTL, signing_key(Algorithm::HS512));
    let extra = json!({"sub": "external-user", "iss": "https://idp", "scope": "read write", "n": [1, {"a": null}]});
    let extra = ExtraClaims::new(extra.as_object().unwrap()).unwrap();
    let claims = write(&signer, Some(&key()), Some(&extra), now);
    assert_eq!(claims["sub"], "external-user");
    assert_eq!(claims["iss"], "https://idp");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["n"], json!([1, {"a": null}]));
    assert_eq!(claims["access_type"], "apikey");
    for reserved in ["aud", "exp", "iat", "nbf", "jti", "apikey", "access_type"] {
        let m = json!({reserved: "x"});
        assert_eq!(
            ExtraClaims::new(m.as_object().unwrap()).unwrap_err(),
            InfoTokenError::ReservedClaim(reserved.into())
        );
    }
    let m = json!({"sub": 5});
    assert!(ExtraClaims::new(m.as_object().unwrap()).is_err());
}

#[test]
fn buffer_reuse_and_bad_jti() {
    let signer = InfoTokenSigner::new(Layout::Legacy, "r", TTL, signing_key(Algorithm::HS256));
    let mut out = Vec::with_capacity(4096);
    let ptr = out.as_ptr();
    signer
        .write_into(Some(&key()), None, None, 1, &jti(), &mut out)
        .unwrap();
    assert_eq!(out.as_ptr(), ptr);
    let len = out.len();
    let mut bad = jti();
    bad[3] = b'"';
    assert_eq!(
        signer.write_into(None, None, None, 1, &bad, &mut out),
        Err(InfoTokenError::InvalidJti)
    );
    assert_eq!(out.len(), len);
}
