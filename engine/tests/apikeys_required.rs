//! Required scopes and claims on `[routes.apikeys]`, and `[client_credentials] issuer`, end to
//! end: tokens from Torii's own token service carry the scope they were granted, so
//! a token asked for without `place-order` is refused (403) on a route requiring it even though
//! the key has that scope; a client id and secret are judged on the key's `metadata.scope`;
//! `required_claims` read the bearer token. With a fixed issuer, the tokens' `iss` is the same
//! whatever Host the token request used.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use base64::Engine as _;
use common::auth::{post, temp_dir, OAUTH};
use common::*;
use serde_json::{json, Value};
use torii_engine::auth::keygen::{generate_pem, KeyKind};

const SECRET: &str = "shop-secret-0123456789";

fn start() -> SocketAddr {
    let dir = temp_dir("apikeys-required");
    let pem = dir.join("ec.pem");
    std::fs::write(&pem, generate_pem(KeyKind::EcP256).unwrap()).unwrap();
    let m = mirror();
    let cfg = format!(
        r#"{header}
[client_credentials]
domain = "oauth\\.test|sts\\.other\\.test"
secure = false
issuer = "https://sts.example.com"

[[key_pairs]]
id = "otoroshi-jwt-signing"
private_key = "{pem}"

[[apikeys]]
client_id = "shop"
client_secret = "{SECRET}"
routes = ["inv", "claims"]
metadata = {{ scope = "read place-order" }}

[[apikeys]]
client_id = "reader"
client_secret = "{SECRET}"
routes = ["inv", "claims"]
metadata = {{ scope = "read" }}

{inv}[routes.apikeys]
required_scopes = ["place-order"]

{claims}[routes.apikeys]
required_claims = {{ cid = ["shop", "partner"] }}
"#,
        header = gateway_header(""),
        pem = pem.display(),
        inv = route("inv", "inv.test", "/", &[m]),
        claims = route("claims", "claims.test", "/", &[m]),
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    std::mem::forget(gw);
    addr
}

fn token(addr: SocketAddr, host: &str, id: &str, scope: Option<&str>) -> String {
    let mut body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": SECRET});
    if let Some(s) = scope {
        body["scope"] = json!(s);
    }
    let r = post(
        addr,
        host,
        "/.well-known/otoroshi/oauth/token",
        "application/json",
        "",
        &body.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn call(addr: SocketAddr, host: &str, auth: &str) -> Response {
    request(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{auth}\r\n"),
    )
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn scopes_come_from_the_token_or_the_key_and_claims_from_the_token() {
    let addr = start();
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    let full = token(addr, OAUTH, "shop", None);
    assert_eq!(call(addr, "inv.test", &bearer(&full)).status, 200);
    let narrow = token(addr, OAUTH, "shop", Some("read"));
    let r = call(addr, "inv.test", &bearer(&narrow));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json(), json!({"Otoroshi-Error": "Insufficient scope"}));
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    let reader = token(addr, OAUTH, "reader", None);
    assert_eq!(call(addr, "inv.test", &bearer(&reader)).status, 403);
    // Without a token, the key's metadata.scope decides.
    let headers =
        |id: &str| format!("Otoroshi-Client-Id: {id}\r\nOtoroshi-Client-Secret: {SECRET}\r\n");
    assert_eq!(call(addr, "inv.test", &headers("shop")).status, 200);
    assert_eq!(call(addr, "inv.test", &headers("reader")).status, 403);
    // required_claims: the bearer token's cid must be one of the list; no token, no claims.
    assert_eq!(call(addr, "claims.test", &bearer(&full)).status, 200);
    let r = call(addr, "claims.test", &bearer(&reader));
    assert_eq!(r.status, 403);
    assert_eq!(r.json(), json!({"Otoroshi-Error": "Claim not allowed"}));
    assert!(!r.text().contains("reader"));
    assert_eq!(call(addr, "claims.test", &headers("shop")).status, 403);
}

#[test]
fn a_fixed_issuer_does_not_depend_on_the_host() {
    let addr = start();
    let a = token(addr, OAUTH, "shop", None);
    let b = token(addr, "sts.other.test:8443", "shop", None);
    assert_eq!(claims_of(&a)["iss"], "https://sts.example.com");
    assert_eq!(claims_of(&b)["iss"], "https://sts.example.com");
}
