//! Otoroshi's tutorial "Secure an app with OAuth2 client_credential flow", end to end over real
//! sockets: no key → 401; a token via JSON and via a form with Basic authentication; the call
//! with the token reaches the backend without credentials; introspection (active, inactive);
//! the JWKS, with tokens checked by independent libraries (the `jsonwebtoken` crate and PyJWT);
//! malformed requests get a 400 with an `error_description`, never a 500; `secure`; a reload
//! that disables a key stops its tokens at once.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::auth::*;
use common::python::pyjwt_crypto_or_skip;
use common::seen::seen;
use common::*;
use serde_json::Value;

const TOKEN: &str = "/.well-known/otoroshi/oauth/token";
const INTROSPECT: &str = "/.well-known/otoroshi/oauth/token/introspect";
const JWKS: &str = "/.well-known/otoroshi/oauth/jwks.json";
const FORM: &str = "application/x-www-form-urlencoded";

fn bearer_get(addr: std::net::SocketAddr, token: &str) -> Response {
    request(
        addr,
        &format!("GET /hello?a=1 HTTP/1.1\r\nHost: {API}\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
}

fn assert_no_store(r: &Response) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn tutorial_flow_end_to_end() {
    let g = start("oauth-flow", false);
    let addr = g.addr;

    // 1. No key: 401 with the tutorial's body.
    let r = get(addr, API, "/hello");
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), r#"{"Otoroshi-Error":"No ApiKey provided"}"#);
    assert_eq!(r.header("otoroshi-error"), Some("true"));
    assert!(r.header("www-authenticate").is_some());

    // 2. A token, JSON body (the tutorial's command).
    let r = token_json(addr, "my-client", SECRET);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_store(&r);
    let doc = r.json();
    assert_eq!(doc["token_type"], "Bearer");
    assert_eq!(doc["expires_in"], 3600);
    assert_eq!(doc["scope"], "read write");
    let token = doc["access_token"].as_str().unwrap().to_owned();

    // 3. A token, form body with HTTP Basic (id and secret form-URL-encoded, RFC 6749 §2.3.1),
    //    asking for a narrower scope.
    let auth = format!(
        "Authorization: {}\r\n",
        basic("my-client", &form_encode(SECRET))
    );
    let r = post(
        addr,
        OAUTH,
        TOKEN,
        FORM,
        &auth,
        "grant_type=client_credentials&scope=read",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "read");
    let form_token = r.json()["access_token"].as_str().unwrap().to_owned();

    // 4. The call with either token: 200, and the backend sees no credentials.
    for t in [&token, &form_token] {
        let r = bearer_get(addr, t);
        let seen = seen(&r);
        assert_eq!(seen["path"], "/hello");
        assert_eq!(seen["query"], "a=1");
        assert!(!seen.has("authorization"), "{seen}");
    }

    // 5. Introspection: active with the claims, then inactive for junk and a tampered token.
    let body = format!(
        "token={token}&client_id=my-client&client_secret={}",
        form_encode(SECRET)
    );
    let r = post(addr, OAUTH, INTROSPECT, FORM, "", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_store(&r);
    let doc = r.json();
    assert_eq!(doc["active"], true);
    assert_eq!(doc["client_id"], "my-client");
    assert_eq!(doc["clientName"], "My client");
    assert_eq!(doc["scope"], "read write");
    assert_eq!(doc["iss"], format!("http://{OAUTH}"));
    assert_eq!(doc["tags"], serde_json::json!(["team-a"]));
    let mut tampered = token.clone().into_bytes();
    let mid = tampered.len() - 20;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    for junk in [
        "not-a-token".to_owned(),
        String::from_utf8(tampered).unwrap(),
    ] {
        let body = format!("token={junk}&client_id=rsa-client&client_secret=rsa-secret");
        let r = post(addr, OAUTH, INTROSPECT, FORM, "", &body);
        assert_eq!(
            (r.status, r.text()),
            (200, r#"{"active":false}"#.to_owned())
        );
    }
    // The caller must authenticate.
    let r = post(addr, OAUTH, INTROSPECT, FORM, "", &format!("token={token}"));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");

    // 6. JWKS, and the tokens checked by jsonwebtoken with it (ES256, and RS256 for the key
    //    whose jwt-sign-keypair is `rsa`).
    let r = get(addr, OAUTH, JWKS);
    assert_eq!(r.status, 200);
    let jwks_doc = r.json();
    let keys = jwks_doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].is_string() && k["alg"].is_string());
        assert!(k.get("d").is_none());
    }
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&r.body).unwrap();
    let rsa = token_json(addr, "rsa-client", "rsa-secret");
    let rsa_token = rsa.json()["access_token"].as_str().unwrap().to_owned();
    for (t, kid, alg) in [
        (
            &token,
            "otoroshi-jwt-signing",
            jsonwebtoken::Algorithm::ES256,
        ),
        (&rsa_token, "rsa", jsonwebtoken::Algorithm::RS256),
    ] {
        let header = jsonwebtoken::decode_header(t).unwrap();
        assert_eq!((header.kid.as_deref(), header.alg), (Some(kid), alg));
        let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(kid).unwrap()).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&["otoroshi"]);
        v.set_issuer(&[format!("http://{OAUTH}")]);
        let claims = jsonwebtoken::decode::<Value>(t, &key, &v).unwrap().claims;
        assert_eq!(claims["sub"], claims["cid"]);
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    }
    assert_eq!(bearer_get(addr, &rsa_token).status, 200);

    // 7. PyJWT agrees (the independent library of the compatibility tests).
    if pyjwt_crypto_or_skip("PyJWT check of the ES256/RS256 tokens") {
        pyjwt_verifies(&jwks_doc, &token, "ES256");
        pyjwt_verifies(&jwks_doc, &rsa_token, "RS256");
    }
}

/// Verifies `token` with PyJWT and the JWKS document.
fn pyjwt_verifies(jwks: &Value, token: &str, alg: &str) {
    let script = r#"
import json, sys, jwt
jwks, token, alg = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
kid = jwt.get_unverified_header(token)["kid"]
jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
key = jwt.PyJWK(jwk).key
claims = jwt.decode(token, key, algorithms=[alg], audience="otoroshi")
assert claims["cid"] == claims["sub"], claims
print("ok")
"#;
    let out = std::process::Command::new(common::python::python())
        .args(["-c", script, &jwks.to_string(), token, alg])
        .output()
        .expect("Python with PyJWT[crypto] (.ci/test installs it)");
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "PyJWT refused the {alg} token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn malformed_requests_get_400_never_500() {
    let g = start("oauth-malformed", false);
    let addr = g.addr;
    let cases: [(&str, &str, &str, u16, &str); 8] = [
        ("application/json", "", "{not json", 400, "invalid_request"),
        (
            "text/plain",
            "",
            "grant_type=client_credentials",
            400,
            "invalid_request",
        ),
        (
            FORM,
            "",
            "grant_type=password&client_id=my-client&client_secret=x",
            400,
            "unsupported_grant_type",
        ),
        (
            FORM,
            "",
            "grant_type=client_credentials&client_id=my-client&client_id=x",
            400,
            "invalid_request",
        ),
        (
            "application/json",
            "",
            r#"{"grant_type":"client_credentials","client_id":["a"]}"#,
            400,
            "invalid_request",
        ),
        (
            FORM,
            "",
            "client_id=rsa-client&client_secret=rsa-secret",
            400,
            "invalid_request",
        ),
        (
            FORM,
            "",
            "grant_type=implicit&client_id=rsa-client&client_secret=rsa-secret",
            400,
            "unsupported_grant_type",
        ),
        (
            FORM,
            "",
            "grant_type=client_credentials&client_id=my-client&client_secret=x&scope=admin",
            401,
            "invalid_client",
        ),
    ];
    for (ctype, extra, body, status, error) in cases {
        let r = post(addr, OAUTH, TOKEN, ctype, extra, body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_no_store(&r);
        assert_eq!(r.json()["error"], error, "{body}");
        assert!(r.json()["error_description"].is_string());
    }
    // Scope beyond the key's: invalid_scope.
    let body = format!(
        "grant_type=client_credentials&client_id=my-client&client_secret={}&scope=read+admin",
        form_encode(SECRET)
    );
    let r = post(addr, OAUTH, TOKEN, FORM, "", &body);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, Value::from("invalid_scope"))
    );
    // Basic and body credentials at once.
    let auth = format!("Authorization: {}\r\n", basic("rsa-client", "rsa-secret"));
    let r = post(
        addr,
        OAUTH,
        TOKEN,
        FORM,
        &auth,
        "grant_type=client_credentials&client_id=rsa-client",
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, Value::from("invalid_request"))
    );
    // Wrong Basic secret: 401 with WWW-Authenticate.
    let auth = format!("Authorization: {}\r\n", basic("rsa-client", "nope"));
    let r = post(
        addr,
        OAUTH,
        TOKEN,
        FORM,
        &auth,
        "grant_type=client_credentials",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // An oversized body is refused without reading it, and the connection closes.
    let r = request(
        addr,
        &format!("POST {TOKEN} HTTP/1.1\r\nHost: {OAUTH}\r\nContent-Type: {FORM}\r\nContent-Length: 100000\r\n\r\nx"),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.json()["error_description"], "request body too large");
    // Unknown endpoint under the prefix, and a wrong method.
    assert_eq!(
        get(addr, OAUTH, "/.well-known/otoroshi/oauth/nope").status,
        404
    );
    assert_eq!(get(addr, OAUTH, TOKEN).status, 404);
    // Another host: not the service (no route either).
    assert_eq!(get(addr, "elsewhere.test", JWKS).status, 404);
    assert_eq!(
        get(addr, "elsewhere.test", JWKS).json()["Otoroshi-Error"],
        "No route found"
    );
}

#[test]
fn chunked_and_expect_continue_bodies() {
    let g = start("oauth-chunked", false);
    let body = "grant_type=client_credentials&client_id=rsa-client&client_secret=rsa-secret";
    let (a, b) = body.split_at(20);
    let raw = format!(
        "POST {TOKEN} HTTP/1.1\r\nHost: {OAUTH}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let r = request(g.addr, &raw);
    assert_eq!(r.status, 200, "{}", r.text());
    // Expect: 100-continue, body sent after the interim answer; keep-alive afterwards.
    let mut s = connect(g.addr);
    let head = format!(
        "POST {TOKEN} HTTP/1.1\r\nHost: {OAUTH}\r\nContent-Type: {FORM}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(fill(&mut s, &mut buf));
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    buf.clear();
    s.write_all(body.as_bytes()).unwrap();
    let r = read_response(&mut s, &mut buf, "POST").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    s.write_all(format!("GET {JWKS} HTTP/1.1\r\nHost: {OAUTH}\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf, "GET").unwrap().status, 200);
}

#[test]
fn secure_service_refuses_plain_http() {
    let g = start("oauth-secure", true);
    let r = token_json(g.addr, "rsa-client", "rsa-secret");
    assert_eq!(r.status, 400);
    assert_no_store(&r);
    assert_eq!(
        r.json(),
        serde_json::json!({"error":"invalid_request","error_description":"use a secure channel"})
    );
    assert_eq!(get(g.addr, OAUTH, JWKS).status, 400);
}

#[test]
fn a_reload_that_disables_a_key_stops_its_tokens_at_once() {
    let g = start("oauth-reload", false);
    let token = token_json(g.addr, "my-client", SECRET).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bearer_get(g.addr, &token).status, 200);
    let disabled = g.config.replacen(
        "metadata = { scope = \"read write\" }",
        "metadata = { scope = \"read write\" }\nenabled = false",
        1,
    );
    assert_ne!(disabled, g.config);
    std::fs::write(&g.config_path, disabled).unwrap();
    assert!(g.gw.reload(&g.config_path));
    let r = bearer_get(g.addr, &token);
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), r#"{"Otoroshi-Error":"Bad API key"}"#);
    let r = post(
        g.addr,
        OAUTH,
        INTROSPECT,
        FORM,
        "",
        &format!("token={token}&client_id=rsa-client&client_secret=rsa-secret"),
    );
    assert_eq!(r.json()["active"], false);
}
