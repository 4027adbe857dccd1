//! The info token on API-key routes, as a backend receives it, checked with `jsonwebtoken`
//! (an independent JWT library): each worker signs it from a cached (route, key) prefix
//! (`secure::info::KeyedPrefixCache`), so this test sends several requests per key, with two
//! keys interleaved, on routes of both layouts and different secrets, and verifies every
//! token's signature, audience and identity; then a reload that changes a key's metadata
//! and a route's secret must show in the very next token (the cache is per snapshot).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::seen::seen;
use common::*;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::Value;

const LATEST_SECRET: &str = "latest-route-secret-of-more-than-32-bytes";
const LEGACY_SECRET: &str = "legacy-route-secret-of-more-than-32-bytes";
const ROTATED_SECRET: &str = "rotated-route-secret-of-more-than-32-bytes";

fn config(mirror: std::net::SocketAddr, tier: &str, latest_secret: &str) -> String {
    format!(
        r#"{header}
[[apikeys]]
client_id = "alpha"
client_secret = "alpha-secret"
name = "Alpha"
routes = ["latest", "legacy"]
tags = ["team-a"]
metadata = {{ tier = "{tier}", region = "eu" }}

[[apikeys]]
client_id = "beta"
client_secret = "beta-secret"
name = "Beta"
routes = ["latest", "legacy"]

[[routes]]
id = "latest"
name = "latest-service"
domains = ["latest.test"]
targets = ["http://{mirror}"]
[routes.apikeys]
[routes.info_token]
secret = "{latest_secret}"

[[routes]]
id = "legacy"
name = "legacy-service"
domains = ["legacy.test"]
targets = ["http://{mirror}"]
[routes.apikeys]
[routes.info_token]
version = "legacy"
secret = "{LEGACY_SECRET}"
"#,
        header = gateway_header(""),
    )
}

/// Sends one request with `client`'s credentials and returns the claims of the
/// `Otoroshi-Claim` the backend received, verified with `secret` and audience `aud`.
fn claims(addr: std::net::SocketAddr, host: &str, client: &str, secret: &str, aud: &str) -> Value {
    let r = request(
        addr,
        &format!(
            "GET /x HTTP/1.1\r\nHost: {host}\r\nOtoroshi-Client-Id: {client}\r\n\
             Otoroshi-Client-Secret: {client}-secret\r\n\r\n"
        ),
    );
    let seen = seen(&r);
    let token = seen
        .one("otoroshi-claim")
        .unwrap_or_else(|| panic!("no Otoroshi-Claim reached the backend: {seen}"));
    let mut v = Validation::new(Algorithm::HS512);
    v.set_audience(&[aud]);
    v.set_issuer(&["Otoroshi"]);
    let key = DecodingKey::from_secret(secret.as_bytes());
    let claims = decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("{host} {client}: token refused by jsonwebtoken: {e}"))
        .claims;
    // The same token with another secret must be refused: the check above means something.
    let wrong = DecodingKey::from_secret(b"some-other-secret-of-more-than-32-bytes");
    assert!(decode::<Value>(token, &wrong, &v).is_err());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now) <= 5, "{claims}");
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 30, "{claims}");
    claims
}

/// Where each layout puts the key's identity and metadata (Otoroshi's `Legacy` and `Latest`
/// layouts; docs/compatibility.md §3).
fn identity(claims: &Value, legacy: bool) -> (String, String) {
    if legacy {
        (
            claims["sub"].as_str().unwrap().to_owned(),
            claims["tier"].as_str().unwrap_or("-").to_owned(),
        )
    } else {
        (
            claims["apikey"]["clientId"].as_str().unwrap().to_owned(),
            claims["apikey"]["metadata"]["tier"]
                .as_str()
                .unwrap_or("-")
                .to_owned(),
        )
    }
}

#[test]
fn keyed_info_tokens_verify_for_every_request_and_follow_a_reload() {
    let mirror = mirror();
    let dir = std::env::temp_dir().join(format!("torii-info-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("torii.toml");
    std::fs::write(&file, config(mirror, "gold", LATEST_SECRET)).unwrap();
    let gw = gateway(&std::fs::read_to_string(&file).unwrap());
    let addr = gw.addrs[0];

    let routes = [
        ("latest.test", LATEST_SECRET, "latest-service", false),
        ("legacy.test", LEGACY_SECRET, "legacy-service", true),
    ];
    let expected_id = |client: &str, legacy: bool| {
        if legacy {
            format!("apikey:{client}")
        } else {
            client.to_owned()
        }
    };
    for (host, secret, aud, legacy) in routes {
        for client in ["alpha", "beta", "alpha", "alpha", "beta", "alpha"] {
            let c = claims(addr, host, client, secret, aud);
            let (id, tier) = identity(&c, legacy);
            assert_eq!(id, expected_id(client, legacy), "{c}");
            let want_tier = if client == "alpha" { "gold" } else { "-" };
            assert_eq!(tier, want_tier, "{host} {client}: {c}");
        }
    }

    // A reload changes alpha's metadata and the latest route's secret: the next tokens must
    // carry the new metadata and verify with the new secret only.
    std::fs::write(&file, config(mirror, "silver", ROTATED_SECRET)).unwrap();
    assert!(gw.reload(Path::new(&file)));
    for client in ["alpha", "alpha", "beta"] {
        let c = claims(
            addr,
            "latest.test",
            client,
            ROTATED_SECRET,
            "latest-service",
        );
        let (_, tier) = identity(&c, false);
        let want = if client == "alpha" { "silver" } else { "-" };
        assert_eq!(tier, want, "{c}");
    }
    let c = claims(
        addr,
        "legacy.test",
        "alpha",
        LEGACY_SECRET,
        "legacy-service",
    );
    assert_eq!(identity(&c, true).1, "silver", "{c}");
    let _ = std::fs::remove_dir_all(&dir);
}
