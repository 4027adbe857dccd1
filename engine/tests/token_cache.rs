//! The verified-token cache end to end: a token that was verified once is not trusted beyond
//! what still holds. Expiry is checked against the clock on every request, a reload that
//! disables the key refuses its cached tokens at once, a token cached for one route is no pass
//! for another, and `forward = "exchange"` signs a fresh info token per request.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::auth::{self, API};
use common::*;

/// Leeway of access tokens and of `[routes.jwt]` (seconds): the default of both.
const LEEWAY: u64 = 10;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bearer(addr: std::net::SocketAddr, host: &str, token: &str) -> Response {
    request(
        addr,
        &format!("GET /x HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
}

/// Sleeps until the clock is past `exp + LEEWAY`.
fn wait_past(exp: u64) {
    while now() <= exp + LEEWAY {
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_cached_bearer_token_that_expires_is_refused() {
    let g = auth::start("token-cache-expiry", false);
    // Valid for about two more seconds (its `exp` is within the leeway).
    let exp_in = -(LEEWAY as i64) + 2;
    let token = auth::mint(&g.ec_pem, "otoroshi-jwt-signing", "my-client", exp_in);
    let exp = (now() as i64 + exp_in) as u64;
    for _ in 0..3 {
        assert_eq!(
            bearer(g.addr, API, &token).status,
            200,
            "verified, then cached"
        );
    }
    wait_past(exp);
    let r = bearer(g.addr, API, &token);
    assert_eq!(r.status, 401, "a cached token past its exp: {}", r.text());
}

#[test]
fn a_key_disabled_by_a_reload_is_refused_at_once() {
    let g = auth::start("token-cache-reload", false);
    let token = auth::mint(&g.ec_pem, "otoroshi-jwt-signing", "my-client", 3600);
    assert_eq!(bearer(g.addr, API, &token).status, 200);
    assert_eq!(bearer(g.addr, API, &token).status, 200);
    let disabled = g.config.replace(
        "name = \"My client\"",
        "name = \"My client\"\nenabled = false",
    );
    assert_ne!(disabled, g.config);
    std::fs::write(&g.config_path, disabled).unwrap();
    assert!(g.gw.reload(&g.config_path));
    assert_eq!(bearer(g.addr, API, &token).status, 401);
}

#[test]
fn a_token_cached_for_one_route_is_refused_on_another() {
    let g = auth::start("token-cache-route", false);
    let token = auth::mint(&g.ec_pem, "otoroshi-jwt-signing", "my-client", 3600);
    assert_eq!(bearer(g.addr, API, &token).status, 200);
    assert_eq!(bearer(g.addr, API, &token).status, 200);
    // `my-client` may call `api`, not `other`: the cached verification changes nothing.
    assert_eq!(bearer(g.addr, "other.test", &token).status, 403);
    assert_eq!(bearer(g.addr, API, &token).status, 200);
}

const JWT_SECRET: &str = "an-external-issuer-secret-of-32-bytes-at-least";

/// An HS256 token from an external issuer for `aud`, expiring `exp_in` seconds from now.
fn external(aud: &str, exp_in: i64) -> String {
    let n = now() as i64;
    let claims = serde_json::json!({
        "iss": "https://sts.test", "aud": aud, "sub": "order-processing",
        "scope": "place-order", "iat": n, "exp": n + exp_in,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .unwrap()
}

fn jwt_gateway() -> torii_engine::control::Gateway {
    let m = mirror();
    let claim_secret = "a-claim-secret-for-the-info-token-0123456789";
    let cfg = format!(
        r#"{header}
[[routes]]
id = "inventory"
domains = ["inventory.test"]
targets = ["http://{m}"]
[routes.jwt]
issuer = "https://sts.test"
audience = "inventory"
algorithms = ["HS256"]
secret = "{JWT_SECRET}"
forward = "exchange"
[routes.info_token]
secret = "{claim_secret}"

[[routes]]
id = "billing"
domains = ["billing.test"]
targets = ["http://{m}"]
[routes.jwt]
issuer = "https://sts.test"
audience = "billing"
algorithms = ["HS256"]
secret = "{JWT_SECRET}"
"#,
        header = gateway_header(""),
    );
    gateway(&cfg)
}

#[test]
fn a_cached_external_jwt_that_expires_is_refused() {
    let gw = jwt_gateway();
    let exp_in = -(LEEWAY as i64) + 2;
    let token = external("inventory", exp_in);
    let exp = (now() as i64 + exp_in) as u64;
    assert_eq!(bearer(gw.addrs[0], "inventory.test", &token).status, 200);
    assert_eq!(bearer(gw.addrs[0], "inventory.test", &token).status, 200);
    wait_past(exp);
    let r = bearer(gw.addrs[0], "inventory.test", &token);
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn an_external_jwt_cached_for_one_route_is_refused_on_another() {
    let gw = jwt_gateway();
    let token = external("inventory", 3600);
    assert_eq!(bearer(gw.addrs[0], "inventory.test", &token).status, 200);
    assert_eq!(bearer(gw.addrs[0], "inventory.test", &token).status, 200);
    // Same bytes, same keys, but `billing` wants another audience.
    let r = bearer(gw.addrs[0], "billing.test", &token);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.json()["Otoroshi-Error"],
        "error.bad.token: wrong audience"
    );
}

#[test]
fn exchange_signs_a_fresh_info_token_per_request() {
    let gw = jwt_gateway();
    let token = external("inventory", 3600);
    let claims: Vec<String> = (0..3)
        .map(|_| {
            let r = bearer(gw.addrs[0], "inventory.test", &token);
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["headers"]["otoroshi-claim"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(claims[0], claims[1]);
    assert_ne!(claims[1], claims[2]);
    for c in &claims {
        let payload = c.split('.').nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            json["sub"], "order-processing",
            "the exchanged subject: {json}"
        );
    }
}
