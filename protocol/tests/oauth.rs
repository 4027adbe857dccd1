//! Client-credentials service: request parsing (form, JSON, bad bodies, both auth methods,
//! grants, scopes), token issue → verification with `jsonwebtoken` through the JWKS (RSA, P-256,
//! P-384), introspection, and access tokens used as bearer credentials on routes (same
//! `validate()`, challenge tokens refused).
#![allow(clippy::unwrap_used)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{EC256_PEM, EC384_PEM, RSA_PEM, RSA_PKCS1_PEM};
use serde_json::{json, Map, Value};
use torii_protocol::apikey::{
    authenticate, extract, ApiKey, ApiKeyError, ApiKeyStore, Extractors, SimpleRequest,
};
use torii_protocol::challenge::{BackendResponder, V2Issuer, JTI_LEN, STATE_LEN};
use torii_protocol::jws::{self, Algorithm, SigningKey};
use torii_protocol::oauth::{
    parse_introspection_request, parse_token_request, ClientAuthMethod, ClientCredentials,
    ClientCredentialsConfig, Endpoint, ErrorCode, KeyPair, KeyPairs, MAX_BODY_LEN,
};

const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");
const JSON: Option<&[u8]> = Some(b"application/json");
const ISS: &str = "https://oauth.oto.tools";

fn keys() -> KeyPairs {
    KeyPairs::new(vec![
        KeyPair::from_pem("otoroshi-jwt-signing", RSA_PEM).unwrap(),
        KeyPair::from_pem("ec256", EC256_PEM).unwrap(),
        KeyPair::from_pem("ec384", EC384_PEM).unwrap(),
    ])
    .unwrap()
}

fn key(id: &str, kp: Option<&str>) -> ApiKey {
    let mut k = ApiKey::new(id, "p:ss%3A+word", "Client");
    k.routes = vec!["r1".into()];
    k.tags = vec!["team-a".into()];
    k.metadata.insert("scope".into(), "read write".into());
    if let Some(kp) = kp {
        k.metadata.insert("jwt-sign-keypair".into(), kp.into());
    }
    k
}

fn store(now: u64) -> ApiKeyStore {
    let mut off = key("off", None);
    off.enabled = false;
    let mut old = key("old", None);
    old.valid_until = Some(now + 100);
    ApiKeyStore::new(vec![
        key("rsa", None),
        key("ec256", Some("ec256")),
        key("ec384", Some("ec384")),
        off,
        old,
    ])
    .unwrap()
}

fn basic(id: &str, secret: &str) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes()
}

/// Form-encoded secret `p:ss%3A+word` (URL-encoded per RFC 6749 §2.3.1).
const SECRET_ENC: &str = "p%3Ass%253A%2Bword";

fn issue(client: &str, now: u64, scope: Option<&str>) -> String {
    let mut body =
        format!("grant_type=client_credentials&client_id={client}&client_secret={SECRET_ENC}");
    if let Some(s) = scope {
        body.push_str(&format!("&scope={s}"));
    }
    let req = parse_token_request(FORM, None, body.as_bytes()).unwrap();
    let svc = ClientCredentials::new(ClientCredentialsConfig::default());
    svc.token(&store(now), &keys(), &req, ISS, now, "jti-1")
        .unwrap()
        .access_token
}

#[test]
fn parse_form_json_and_basic() {
    let req = parse_token_request(
        FORM,
        None,
        format!("grant_type=client_credentials&client_id=rsa&client_secret={SECRET_ENC}&scope=read+write").as_bytes(),
    )
    .unwrap();
    assert_eq!(req.client.client_id, "rsa");
    assert_eq!(req.client.client_secret.expose(), b"p:ss%3A+word");
    assert_eq!(req.client.method, ClientAuthMethod::Body);
    assert_eq!(req.scope.as_deref(), Some("read write"));

    let req = parse_token_request(
        JSON,
        None,
        br#"{"grant_type":"client_credentials","client_id":"rsa","client_secret":"p:ss%3A+word","n":1,"b":true,"z":null}"#,
    )
    .unwrap();
    assert_eq!(req.client.client_secret.expose(), b"p:ss%3A+word");
    assert_eq!(req.scope, None);

    // Basic: id and secret are form-URL-decoded (RFC 6749 §2.3.1).
    let auth = basic("rsa", SECRET_ENC);
    let req = parse_token_request(FORM, Some(&auth), b"grant_type=client_credentials").unwrap();
    assert_eq!(req.client.method, ClientAuthMethod::Basic);
    assert_eq!(req.client.client_secret.expose(), b"p:ss%3A+word");
    assert!(!format!("{req:?}").contains("p:ss"));
}

/// (content type, authorization, body, expected error).
type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Vec<u8>, ErrorCode);

#[test]
fn parse_errors() {
    let auth = basic("rsa", SECRET_ENC);
    let cases: Vec<Case<'_>> = vec![
        // Both authentication methods at once.
        (
            FORM,
            Some(&auth),
            b"grant_type=client_credentials&client_secret=x".to_vec(),
            ErrorCode::InvalidRequest,
        ),
        (
            FORM,
            Some(&auth),
            b"grant_type=client_credentials&client_id=rsa".to_vec(),
            ErrorCode::InvalidRequest,
        ),
        // Grants.
        (
            FORM,
            Some(&auth),
            b"grant_type=password".to_vec(),
            ErrorCode::UnsupportedGrantType,
        ),
        (
            FORM,
            Some(&auth),
            b"scope=read".to_vec(),
            ErrorCode::InvalidRequest,
        ),
        // No client authentication, half of it, undecodable Basic.
        (
            FORM,
            None,
            b"grant_type=client_credentials".to_vec(),
            ErrorCode::InvalidClient,
        ),
        (
            FORM,
            None,
            b"grant_type=client_credentials&client_id=rsa".to_vec(),
            ErrorCode::InvalidClient,
        ),
        (
            FORM,
            Some(b"Basic !!!"),
            b"grant_type=client_credentials".to_vec(),
            ErrorCode::InvalidClient,
        ),
        // Bodies.
        (JSON, None, b"[1,2]".to_vec(), ErrorCode::InvalidRequest),
        (
            JSON,
            None,
            b"{\"grant_type\":".to_vec(),
            ErrorCode::InvalidRequest,
        ),
        (
            JSON,
            None,
            br#"{"client_id":["a"]}"#.to_vec(),
            ErrorCode::InvalidRequest,
        ),
        (
            JSON,
            None,
            format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40)).into_bytes(),
            ErrorCode::InvalidRequest,
        ),
        (
            FORM,
            None,
            b"client_id=%FF&client_secret=x&grant_type=client_credentials".to_vec(),
            ErrorCode::InvalidRequest,
        ),
        (
            FORM,
            None,
            vec![b'a'; MAX_BODY_LEN + 1],
            ErrorCode::BodyTooLarge,
        ),
        (
            Some(b"text/plain"),
            None,
            b"grant_type=client_credentials".to_vec(),
            ErrorCode::InvalidRequest,
        ),
    ];
    for (i, (ct, auth, body, want)) in cases.into_iter().enumerate() {
        let err = parse_token_request(ct, auth, &body).unwrap_err();
        assert_eq!(err.code, want, "case {i}: {err}");
        let doc: Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(doc["error"], want.as_str());
        if want == ErrorCode::BodyTooLarge {
            assert_eq!(doc["error"], "invalid_request");
        }
        assert!(doc["error_description"].is_string());
        let status = match want {
            ErrorCode::InvalidClient => 401,
            // 413, with RFC 6749's `invalid_request` in the body.
            ErrorCode::BodyTooLarge => 413,
            _ => 400,
        };
        assert_eq!(err.status(), status, "case {i}");
    }
    let err = parse_token_request(FORM, Some(b"Basic !!!"), b"").unwrap_err();
    assert_eq!(err.www_authenticate(), Some("Basic realm=\"otoroshi\""));
    let err = parse_token_request(FORM, None, b"grant_type=client_credentials").unwrap_err();
    assert_eq!(err.www_authenticate(), None);
}

#[test]
fn client_authentication_and_scopes() {
    let now = common::wall_now();
    let (store, keys) = (store(now), keys());
    let svc = ClientCredentials::new(ClientCredentialsConfig::default());
    let run = |auth: Vec<u8>, body: &str| {
        let req = parse_token_request(FORM, Some(&auth), body.as_bytes()).unwrap();
        svc.token(&store, &keys, &req, ISS, now, "j")
    };
    let grant = "grant_type=client_credentials";
    for (id, secret) in [
        ("rsa", "wrong"),
        ("nobody", SECRET_ENC),
        ("off", SECRET_ENC),
    ] {
        let err = run(basic(id, secret), grant).unwrap_err();
        assert_eq!((err.code, err.status()), (ErrorCode::InvalidClient, 401));
        assert!(err.www_authenticate().is_some());
    }
    // A future valid_until is valid (Otoroshi inverts this).
    assert!(run(basic("old", SECRET_ENC), grant).is_ok());
    // Scopes: subset ok, superset refused, default = the key's scope.
    let ok = run(basic("rsa", SECRET_ENC), &format!("{grant}&scope=read")).unwrap();
    assert_eq!(ok.scope.as_deref(), Some("read"));
    let doc: Value = serde_json::from_slice(&ok.body()).unwrap();
    assert_eq!(doc["token_type"], "Bearer");
    assert_eq!(doc["expires_in"], 3600);
    assert_eq!(doc["scope"], "read");
    let err = run(
        basic("rsa", SECRET_ENC),
        &format!("{grant}&scope=read+admin"),
    )
    .unwrap_err();
    assert_eq!((err.code, err.status()), (ErrorCode::InvalidScope, 400));
    let all = run(basic("rsa", SECRET_ENC), grant).unwrap();
    assert_eq!(all.scope.as_deref(), Some("read write"));
    assert!(svc.missing_key_pairs(&store, &keys).is_empty());
}

#[test]
fn tokens_verify_with_jsonwebtoken_through_the_jwks() {
    let now = common::wall_now();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(keys().jwks_json()).unwrap();
    assert_eq!(jwks.keys.len(), 3);
    for (client, kid, alg) in [
        (
            "rsa",
            "otoroshi-jwt-signing",
            jsonwebtoken::Algorithm::RS256,
        ),
        ("ec256", "ec256", jsonwebtoken::Algorithm::ES256),
        ("ec384", "ec384", jsonwebtoken::Algorithm::ES384),
    ] {
        let token = issue(client, now, Some("write"));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid));
        assert_eq!(header.alg, alg);
        let jwk = jwks.find(kid).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&["otoroshi"]);
        v.set_issuer(&[ISS]);
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], client);
        assert_eq!(claims["cid"], client);
        assert_eq!(claims["scope"], "write");
        assert_eq!(claims["jti"], "jti-1");
        assert_eq!(claims["exp"], now + 3600);
        assert_eq!(claims["nbf"], now);
    }
    let raw: Value = serde_json::from_slice(keys().jwks_json()).unwrap();
    for k in raw["keys"].as_array().unwrap() {
        assert_eq!(k["use"], "sig");
        assert!(k.get("d").is_none(), "private member published");
    }
    // PKCS#1 RSA loads too, with the same public key.
    let pkcs1 = KeyPair::from_pem("p1", RSA_PKCS1_PEM).unwrap();
    assert_eq!(pkcs1.jwk()["n"], raw["keys"][0]["n"]);
    assert!(KeyPair::from_pem("x", "not a key").is_err());
    assert!(KeyPairs::new(vec![pkcs1, KeyPair::from_pem("p1", EC256_PEM).unwrap()]).is_err());
}

#[test]
fn introspection() {
    let now = 1_700_000_000;
    let (store, keys) = (store(now), keys());
    let svc = ClientCredentials::new(ClientCredentialsConfig::default());
    let token = issue("ec256", now, None);
    let ask = |tok: &str, at: u64| {
        let body = format!("token={tok}");
        let req =
            parse_introspection_request(FORM, Some(&basic("rsa", SECRET_ENC)), body.as_bytes())
                .unwrap();
        let doc = svc.introspect(&store, &keys, &req, at).unwrap();
        serde_json::from_slice::<Value>(&doc).unwrap()
    };
    let doc = ask(&token, now + 5);
    assert_eq!(doc["active"], true);
    for (k, v) in [
        ("client_id", json!("ec256")),
        ("clientId", json!("ec256")),
        ("scope", json!("read write")),
        ("token_type", json!("Bearer")),
        ("aud", json!("otoroshi")),
        ("iss", json!(ISS)),
        ("sub", json!("ec256")),
        ("exp", json!(now + 3600)),
        ("iat", json!(now)),
        ("nbf", json!(now)),
        ("jti", json!("jti-1")),
        ("clientName", json!("Client")),
        ("tags", json!(["team-a"])),
        ("access_type", json!("apikey")),
    ] {
        assert_eq!(doc[k], v, "{k}");
    }
    assert_eq!(doc["metadata"]["jwt-sign-keypair"], "ec256");
    let inactive = json!({"active": false});
    assert_eq!(ask(&token, now + 3600 + 11), inactive, "expired");
    assert_eq!(ask("garbage", now), inactive, "malformed");
    // Change a character well inside the signature (the last one carries only 2 data bits:
    // replacing it can leave the decoded signature unchanged).
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_ne!(tampered, token);
    assert_eq!(ask(&tampered, now), inactive, "tampered signature");
    // Foreign: signed by a key that is not a configured key pair, with a known kid.
    let foreign = SigningKey::from_pem(Algorithm::ES256, common::EC256_PEM).unwrap();
    let other = SigningKey::hmac(Algorithm::HS256, common::HS_SECRET, false).unwrap();
    let mut claims = Map::new();
    claims.insert("cid".into(), json!("ec256"));
    claims.insert("sub".into(), json!("ec256"));
    claims.insert("aud".into(), json!("otoroshi"));
    claims.insert("exp".into(), json!(now + 60));
    let mut out = Vec::new();
    jws::encode_claims(&other, Some("ec256"), &claims, &mut out).unwrap();
    assert_eq!(
        ask(std::str::from_utf8(&out).unwrap(), now),
        inactive,
        "hs confusion"
    );
    out.clear();
    jws::encode_claims(&foreign, Some("unknown"), &claims, &mut out).unwrap();
    assert_eq!(
        ask(std::str::from_utf8(&out).unwrap(), now),
        inactive,
        "unknown kid"
    );
    // The caller must authenticate.
    let req = parse_introspection_request(
        FORM,
        Some(&basic("rsa", "nope")),
        format!("token={token}").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        svc.introspect(&store, &keys, &req, now)
            .unwrap_err()
            .status(),
        401
    );
    assert_eq!(
        parse_introspection_request(FORM, Some(&basic("rsa", "x")), b"")
            .unwrap_err()
            .code,
        ErrorCode::InvalidRequest
    );
}

fn bearer_on_route(
    token: &str,
    route: &str,
    now: u64,
    store: &ApiKeyStore,
) -> Result<String, ApiKeyError> {
    let keys = keys();
    let ex = Extractors::default();
    let req = SimpleRequest::new().with_header("Authorization", format!("Bearer {token}"));
    let out = extract(&req, &ex);
    authenticate(store, Some(&keys), out.found.as_ref(), route, now)
        .map(|a| a.key.key().client_id.clone())
}

#[test]
fn access_tokens_as_route_bearers() {
    let now = 1_700_000_000;
    let s = store(now);
    for client in ["rsa", "ec256", "ec384"] {
        let token = issue(client, now, None);
        assert_eq!(bearer_on_route(&token, "r1", now + 1, &s).unwrap(), client);
        // Same validate(): other route 403, expiry with 10 s leeway.
        assert_eq!(
            bearer_on_route(&token, "r2", now, &s),
            Err(ApiKeyError::NotAuthorized)
        );
        assert!(bearer_on_route(&token, "r1", now + 3610, &s).is_ok());
        assert_eq!(
            bearer_on_route(&token, "r1", now + 3611, &s),
            Err(ApiKeyError::BadToken("expired"))
        );
    }
    // Disabling the key stops its tokens at once.
    let token = issue("rsa", now, None);
    let mut k = key("rsa", None);
    k.enabled = false;
    let disabled = ApiKeyStore::new(vec![k]).unwrap();
    assert_eq!(
        bearer_on_route(&token, "r1", now, &disabled),
        Err(ApiKeyError::Disabled)
    );
    // A key bound to a key pair refuses tokens signed by another.
    let rebound = ApiKeyStore::new(vec![key("rsa", Some("ec256"))]).unwrap();
    assert_eq!(
        bearer_on_route(&token, "r1", now, &rebound),
        Err(ApiKeyError::BadToken("kid_mismatch"))
    );
    assert_eq!(
        bearer_on_route("a.b.c", "r1", now, &s),
        Err(ApiKeyError::BadToken("bad_base64"))
    );
}

#[test]
fn challenge_answers_are_not_bearer_tokens() {
    let now = 1_700_000_000;
    let s = store(now);
    // A real V2 answer from a backend that signs with the same EC key as a key pair.
    let gw_key = SigningKey::hmac(Algorithm::HS512, common::HS_SECRET, false).unwrap();
    let issuer = V2Issuer::new(
        "r1",
        30,
        SigningKey::hmac(Algorithm::HS512, common::HS_SECRET, false).unwrap(),
    );
    let mut request_token = Vec::new();
    issuer
        .issue_into(
            &[b'a'; STATE_LEN],
            &[b'b'; JTI_LEN],
            now,
            &mut request_token,
        )
        .unwrap();
    let backend = BackendResponder::v2(
        gw_key.verifying_key(),
        SigningKey::from_pem(Algorithm::ES256, EC256_PEM).unwrap(),
        30,
    );
    let mut answer = Vec::new();
    backend
        .respond(Some(&request_token), now, &mut answer)
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(bearer_on_route(&answer, "r1", now, &s).is_err());
    // Even with the key pair's kid and a cid claim, aud `Otoroshi` is not `otoroshi`.
    let ec = SigningKey::from_pem(Algorithm::ES256, EC256_PEM).unwrap();
    let claims: Map<String, Value> = serde_json::from_value(json!({
        "state-resp": "x", "aud": "Otoroshi", "iat": now, "nbf": now, "exp": now + 10,
        "cid": "ec256", "sub": "ec256"}))
    .unwrap();
    let mut out = Vec::new();
    jws::encode_claims(&ec, Some("ec256"), &claims, &mut out).unwrap();
    let tok = String::from_utf8(out).unwrap();
    assert_eq!(
        bearer_on_route(&tok, "r1", now, &s),
        Err(ApiKeyError::BadToken("wrong_audience"))
    );
}

#[test]
fn endpoints() {
    assert_eq!(
        Endpoint::from_request("GET", "/.well-known/otoroshi/oauth/jwks.json"),
        Some(Endpoint::Jwks)
    );
    assert_eq!(
        Endpoint::from_request("POST", "/.well-known/otoroshi/oauth/token"),
        Some(Endpoint::Token)
    );
    assert_eq!(
        Endpoint::from_request("POST", "/.well-known/otoroshi/oauth/token/introspect"),
        Some(Endpoint::Introspect)
    );
    assert_eq!(
        Endpoint::from_request("GET", "/.well-known/otoroshi/oauth/token"),
        Some(Endpoint::NotFound)
    );
    assert_eq!(Endpoint::from_request("GET", "/api"), None);
}

#[test]
fn bearer_table_every_location_every_bad_key() {
    let now = 1_700_000_000;
    let svc = ClientCredentials::new(ClientCredentialsConfig::default());
    let kp = keys();
    // Tokens are issued while every key is valid, then checked against a store where they are not.
    let mut issuing = Vec::new();
    let mut checking = Vec::new();
    for id in ["good", "gone", "disabled", "expired", "other"] {
        issuing.push(key(id, None));
        let mut k = key(id, None);
        match id {
            "disabled" => k.enabled = false,
            "expired" => k.valid_until = Some(now),
            "other" => k.routes = vec!["elsewhere".into()],
            _ => {}
        }
        if id != "gone" {
            checking.push(k);
        }
    }
    let issuing = ApiKeyStore::new(issuing).unwrap();
    let checking = ApiKeyStore::new(checking).unwrap();
    let token_for = |id: &str| {
        let body =
            format!("grant_type=client_credentials&client_id={id}&client_secret={SECRET_ENC}");
        let req = parse_token_request(FORM, None, body.as_bytes()).unwrap();
        svc.token(&issuing, &kp, &req, ISS, now - 10, "j")
            .unwrap()
            .access_token
    };
    let mut bad_sig = token_for("good");
    bad_sig.truncate(bad_sig.len() - 4);
    bad_sig.push_str("AAAA");
    let cases = [
        (token_for("good"), Ok("good")),
        (token_for("gone"), Err(ApiKeyError::Unknown)),
        (token_for("disabled"), Err(ApiKeyError::Disabled)),
        (token_for("expired"), Err(ApiKeyError::Expired)),
        (token_for("other"), Err(ApiKeyError::NotAuthorized)),
        (bad_sig, Err(ApiKeyError::BadToken("bad_signature"))),
    ];
    let ex = Extractors::default();
    for (token, want) in &cases {
        let requests = [
            SimpleRequest::new().with_header("Authorization", format!("Bearer {token}")),
            SimpleRequest::new().with_header("Otoroshi-Token", token.as_str()),
            SimpleRequest::new().with_query(&format!("bearer_auth={token}")),
            SimpleRequest::new().with_header("Cookie", format!("access_token={token}")),
        ];
        for req in &requests {
            let out = extract(req, &ex);
            let got = authenticate(&checking, Some(&kp), out.found.as_ref(), "r1", now)
                .map(|a| a.key.key().client_id.clone());
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{req:?}");
            assert_eq!(out.carriers.len(), 1);
        }
    }
}
