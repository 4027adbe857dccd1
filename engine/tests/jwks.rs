//! `[routes.jwt] jwks_url` end to end: an in-process gateway whose route verifies
//! tokens with the key set of a JWKS server the test controls (`common::jwks_server`, HTTPS on
//! 127.0.0.1:0 with a test CA named by `jwks_ca`, or plain HTTP with `insecure_jwks_http`).
//! Fetches are counted on the server side. Covered: a rotation is picked up within the refresh
//! bound without a reload; an unknown `kid` causes one refetch, and a flood of random `kid`s at
//! most one per `jwks_refresh_min`; a server down, garbage, an oversized document or a set with
//! a broken key keep the last good set; `Cache-Control: max-age` is honoured within the bounds;
//! a start with the URL unreachable serves 401 until the server comes back (and `torii check`
//! refuses it); routes naming one URL share one fetch; required scopes and claims give 403.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::auth::temp_dir;
use common::jwks_server::{claims, jwks_of, Answer, JwksServer, SigningKey};
use common::*;
use serde_json::json;

/// A `[routes.jwt]` section on `url` (ES256, issuer/audience of [`claims`]).
fn jwt_section(url: &str, ca: Option<&Path>, extra: &str) -> String {
    let ca = ca.map_or(String::new(), |p| {
        format!("jwks_ca = \"{}\"\n", p.display())
    });
    format!(
        "[routes.jwt]\nissuer = \"https://sts.test\"\naudience = \"inventory\"\n\
         algorithms = [\"ES256\"]\njwks_url = \"{url}\"\n{ca}{extra}"
    )
}

/// A gateway with route `inv.test` → a mirror, checking tokens with the server's set.
fn gateway_on(server: &JwksServer, extra: &str) -> SocketAddr {
    let cfg = format!(
        "{}{}{}",
        gateway_header(""),
        route("inv", "inv.test", "/", &[mirror()]),
        jwt_section(&server.url, server.ca_path.as_deref(), extra)
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    std::mem::forget(gw);
    addr
}

fn call(addr: SocketAddr, token: &str) -> Response {
    request(
        addr,
        &format!(
            "GET /items HTTP/1.1\r\nHost: inv.test\r\nAccept: application/json\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        ),
    )
}

/// Calls until the answer is `status` or `within` passed; returns the last answer.
fn call_until(addr: SocketAddr, token: &str, status: u16, within: Duration) -> Response {
    let deadline = Instant::now() + within;
    loop {
        let r = call(addr, token);
        if r.status == status || Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rotation_is_picked_up_within_the_refresh_bound_without_a_reload() {
    let dir = temp_dir("jwks-rotation");
    let (k1, k2) = (SigningKey::new("k1"), SigningKey::new("k2"));
    let server = JwksServer::https(&dir, jwks_of(&[&k1]));
    let gw = gateway_on(
        &server,
        "jwks_refresh_min = \"1s\"\njwks_refresh_max = \"2s\"\n",
    );
    assert_eq!(server.fetches(), 1, "one fetch at start");
    assert_eq!(call(gw, &k1.token(&claims(json!({})))).status, 200);
    // The identity server rotates: k2 only. No token names k2 yet, so only the periodic
    // refresh (no Cache-Control: jwks_refresh_max, 2 s) can bring it.
    server.set_document(jwks_of(&[&k2]));
    let seen = server.wait_fetches_over(1, Duration::from_secs(4));
    assert!(seen >= 2, "no refresh within the 2 s bound (+2 s margin)");
    let r = call(gw, &k2.token(&claims(json!({}))));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(gw, &k1.token(&claims(json!({}))));
    assert_eq!(r.status, 401, "the retired key is gone with its set");
    assert_eq!(r.json()["Otoroshi-Error"], "error.bad.token: unknown key");
}

#[test]
fn an_unknown_kid_refetches_once_and_a_flood_at_most_once_per_interval() {
    let dir = temp_dir("jwks-kid-miss");
    let (k1, k2) = (SigningKey::new("k1"), SigningKey::new("k2"));
    let server = JwksServer::https(&dir, jwks_of(&[&k1]));
    // A long max: every fetch after the first one is caused by a kid miss.
    let gw = gateway_on(
        &server,
        "jwks_refresh_min = \"2s\"\njwks_refresh_max = \"10m\"\n",
    );
    assert_eq!(server.fetches(), 1);
    // A new key the gateway has never seen: the first token is refused (nobody waits on a
    // fetch), the refetch it asked for brings k2 within jwks_refresh_min.
    server.set_document(jwks_of(&[&k1, &k2]));
    let t2 = k2.token(&claims(json!({})));
    let first = call(gw, &t2);
    assert_eq!(first.status, 401);
    let r = call_until(gw, &t2, 200, Duration::from_secs(4));
    assert_eq!(r.status, 200, "{}", r.text());
    let after_rotation = server.fetches();
    assert!(
        after_rotation == 2,
        "one refetch, got {after_rotation} fetches"
    );
    // A flood of tokens naming random kids for 5 s: all refused, and the server sees at most
    // one fetch per 2 s (plus one for a fetch already due at the start).
    let start = Instant::now();
    let mut sent = 0u32;
    while start.elapsed() < Duration::from_secs(5) && sent < 2_000 {
        let kid = format!("random-{sent}-{}", start.elapsed().as_nanos());
        assert_eq!(call(gw, &k1.token_as(&claims(json!({})), &kid)).status, 401);
        sent += 1;
    }
    let flood = server.fetches() - after_rotation;
    let allowed = (start.elapsed().as_secs_f64() / 2.0).ceil() as usize + 1;
    assert!(
        (1..=allowed).contains(&flood),
        "{sent} random kids caused {flood} fetches (at most {allowed})"
    );
    assert_eq!(call(gw, &k1.token(&claims(json!({})))).status, 200);
}

#[test]
fn a_failing_server_garbage_and_oversized_or_broken_sets_keep_the_last_good_set() {
    let dir = temp_dir("jwks-last-good");
    let (k1, k2) = (SigningKey::new("k1"), SigningKey::new("k2"));
    let server = JwksServer::https(&dir, jwks_of(&[&k1]));
    let gw = gateway_on(
        &server,
        "jwks_refresh_min = \"1s\"\njwks_refresh_max = \"1s\"\n",
    );
    let t1 = k1.token(&claims(json!({})));
    let t2 = k2.token(&claims(json!({})));
    assert_eq!(call(gw, &t1).status, 200);
    let mut broken: serde_json::Value = serde_json::from_slice(&jwks_of(&[&k2])).unwrap();
    broken["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "EC", "crv": "P-256", "kid": "bad", "x": "AAAA", "y": "AAAA"}));
    let oversized = format!(
        "{{\"keys\":{},\"pad\":\"{}\"}}",
        serde_json::to_string(&broken["keys"][0]).unwrap(),
        "x".repeat(300 * 1024)
    );
    type Change<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Change<'_>); 6] = [
        (
            "connection closed",
            Box::new(|| server.set_answer(Answer::Close)),
        ),
        ("503", Box::new(|| server.set_answer(Answer::Status(503)))),
        (
            "redirect",
            Box::new(|| server.set_answer(Answer::Status(302))),
        ),
        (
            "garbage",
            Box::new(|| {
                server.set_answer(Answer::Document);
                server.set_document(b"<html>not a key set</html>".to_vec())
            }),
        ),
        (
            "oversized",
            Box::new(|| server.set_document(oversized.clone().into_bytes())),
        ),
        (
            "a broken key beside a good one",
            Box::new(|| server.set_document(serde_json::to_vec(&broken).unwrap())),
        ),
    ];
    let errors_before = fetch_errors(&server.url);
    for (what, apply) in cases {
        apply();
        let n = server.fetches();
        server.wait_fetches_over(n, Duration::from_secs(5));
        // Let the fetch that just arrived finish.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            call(gw, &t1).status,
            200,
            "{what}: the last good set was not kept"
        );
        assert_eq!(call(gw, &t2).status, 401, "{what}: a refused set was used");
    }
    assert!(
        fetch_errors(&server.url) >= errors_before + 6,
        "fetch errors are counted"
    );
    // Back to a good document: k2 arrives.
    server.set_document(jwks_of(&[&k2]));
    assert_eq!(call_until(gw, &t2, 200, Duration::from_secs(5)).status, 200);
}

fn fetch_errors(url: &str) -> u64 {
    torii_engine::jwks::stats()
        .iter()
        .find(|(u, _)| u == url)
        .map_or(0, |(_, s)| {
            s.fetch_errors.load(std::sync::atomic::Ordering::Relaxed)
        })
}

#[test]
fn cache_control_max_age_is_honoured_within_the_bounds() {
    let dir = temp_dir("jwks-cache-control");
    let k1 = SigningKey::new("k1");
    let doc = jwks_of(&[&k1]);
    // Three URLs fetched side by side: max-age inside the bounds, above max, and no-store.
    let inside = JwksServer::https(&dir.join("a"), doc.clone());
    inside.set_cache_control(Some("public, max-age=2"));
    let above = JwksServer::https(&dir.join("b"), doc.clone());
    above.set_cache_control(Some("max-age=86400"));
    let no_store = JwksServer::https(&dir.join("c"), doc);
    no_store.set_cache_control(Some("no-store"));
    for s in [&inside, &above, &no_store] {
        gateway_on(s, "jwks_refresh_min = \"1s\"\njwks_refresh_max = \"3s\"\n");
    }
    std::thread::sleep(Duration::from_millis(6_600));
    let gaps = |s: &JwksServer| -> Vec<f64> {
        s.fetch_times()
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect()
    };
    for (name, s, lo, hi) in [
        ("max-age=2", &inside, 1.9, 2.6),
        ("max-age=86400 (max 3s)", &above, 2.9, 3.6),
        ("no-store (min 1s)", &no_store, 0.9, 1.6),
    ] {
        let g = gaps(s);
        assert!(g.len() >= 2, "{name}: {g:?}");
        assert!(
            g.iter().all(|d| (lo..=hi).contains(d)),
            "{name}: gaps {g:?}"
        );
    }
}

#[test]
fn plain_http_only_with_insecure_jwks_http() {
    let k1 = SigningKey::new("k1");
    let server = JwksServer::http(jwks_of(&[&k1]));
    let cfg = |extra: &str| {
        format!(
            "{}{}{}",
            gateway_header(""),
            route("inv", "inv.test", "/", &[mirror()]),
            jwt_section(&server.url, None, extra)
        )
    };
    let err = torii_engine::config::load_str(&cfg(""), Path::new(".")).unwrap_err();
    assert!(err.to_string().contains("http:// is refused"), "{err}");
    let gw = gateway(&cfg("insecure_jwks_http = true\n"));
    assert_eq!(call(gw.addrs[0], &k1.token(&claims(json!({})))).status, 200);
    std::mem::forget(gw);
}

#[test]
fn an_unreachable_url_is_a_check_error_and_a_401_at_run_until_it_comes_back() {
    let dir = temp_dir("jwks-late");
    let k1 = SigningKey::new("k1");
    let addr = dead_addr();
    let url = format!("https://{addr}/jwks");
    let ca = dir.join("jwks-ca.pem");
    let cfg = format!(
        "{}{}{}",
        gateway_header(""),
        route("inv", "inv.test", "/", &[mirror()]),
        jwt_section(&url, Some(&ca), "jwks_refresh_min = \"30s\"\n")
    );
    let test_ca = common::tls::TestCa::new("jwks test CA");
    std::fs::write(&ca, test_ca.pem()).unwrap();
    let config = torii_engine::config::load_str(&cfg, Path::new(".")).unwrap();
    let err = torii_engine::snapshot::Snapshot::build(config.clone(), 1).unwrap_err();
    assert!(err.to_string().contains("routes[0].jwt"), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    let gw = torii_engine::control::start(config).unwrap();
    let t1 = k1.token(&claims(json!({})));
    let r = call(gw.addrs[0], &t1);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["Otoroshi-Error"],
        "error.bad.token: key set unavailable"
    );
    // The identity server comes up: retries back off from 1 s, not jwks_refresh_min.
    let server = JwksServer::https_with(&test_ca, ca, jwks_of(&[&k1]), Some(addr));
    let r = call_until(gw.addrs[0], &t1, 200, Duration::from_secs(8));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(server.fetches() >= 1);
    std::mem::forget(gw);
}

#[test]
fn routes_naming_one_url_share_one_fetcher() {
    let dir = temp_dir("jwks-shared");
    let k1 = SigningKey::new("k1");
    let server = JwksServer::https(&dir, jwks_of(&[&k1]));
    let m = mirror();
    let section = jwt_section(&server.url, server.ca_path.as_deref(), "");
    let cfg = format!(
        "{}{}{section}{}{section}",
        gateway_header(""),
        route("a", "a.test", "/", &[m]),
        route("b", "b.test", "/", &[m]),
    );
    let gw = gateway(&cfg);
    assert_eq!(server.fetches(), 1, "one fetch for two routes");
    let token = k1.token(&claims(json!({})));
    for host in ["a.test", "b.test"] {
        let r = request(
            gw.addrs[0],
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "{host}");
    }
    std::mem::forget(gw);
}

#[test]
fn required_scopes_and_claims_answer_403_naming_no_value() {
    let dir = temp_dir("jwks-required");
    let k1 = SigningKey::new("k1");
    let server = JwksServer::https(&dir, jwks_of(&[&k1]));
    let gw = gateway_on(
        &server,
        "required_scopes = [\"place-order\"]\nrequired_claims = { azp = [\"order-processing\", \"web-shop\"] }\n",
    );
    let ok = claims(json!({"scope": "read place-order", "azp": "web-shop"}));
    assert_eq!(call(gw, &k1.token(&ok)).status, 200);
    let scp = claims(json!({"scp": ["place-order"], "azp": "order-processing"}));
    assert_eq!(call(gw, &k1.token(&scp)).status, 200);
    let cases = [
        (
            json!({"scope": "read", "azp": "web-shop"}),
            "error.insufficient.scope",
        ),
        (json!({"azp": "web-shop"}), "error.insufficient.scope"),
        (
            json!({"scope": "place-order", "azp": "intruder-svc"}),
            "error.claim.not.allowed",
        ),
        (json!({"scope": "place-order"}), "error.claim.not.allowed"),
    ];
    for (extra, message) in cases {
        let r = call(gw, &k1.token(&claims(extra.clone())));
        assert_eq!(r.status, 403, "{extra}");
        assert_eq!(r.json(), json!({ "Otoroshi-Error": message }), "{extra}");
        assert_eq!(r.header("otoroshi-error"), Some("true"));
        assert!(!r.text().contains("intruder") && !r.text().contains("read"));
    }
    // A bad token stays 401 whatever it claims.
    let other = SigningKey::new("k1");
    assert_eq!(call(gw, &other.token(&ok)).status, 401);
}
