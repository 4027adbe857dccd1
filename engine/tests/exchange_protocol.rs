//! The exchange protocol and the info token on the request path, against `torii mirror` as a
//! secured backend (and scripted raw backends): success for V1 and V2, the Otoroshi 502 for each
//! way of failing (counted per reason), excluded paths, custom header names, and weak keys.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::seen::seen;
use common::*;
use torii_engine::mirror::secured::{ChallengeMode, Misbehave};
use torii_protocol::ChallengeFailure;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const NOT_SECURED: &str =
    "Downstream microservice does not seems to be secured. Cancelling request !";

fn secured_route(version: &str, target: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "{}name = \"my-service\"\n[routes.challenge]\nversion = \"{version}\"\nsecret = \"{SECRET}\"\n{extra}\n[routes.info_token]\nversion = \"latest\"\nsecret = \"{SECRET}\"\n",
        route("sec", "sec.test", "/", &[target])
    )
}

fn gw(routes: &str) -> torii_engine::control::Gateway {
    gateway(&format!("{}{routes}", gateway_header("")))
}

fn assert_not_secured(r: &Response) {
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("otoroshi-error"), Some("true"));
    assert_eq!(r.json()["Otoroshi-Error"], NOT_SECURED);
    assert!(r.header("otoroshi-state-resp").is_none());
}

#[test]
fn v1_and_v2_with_info_token_succeed() {
    for (version, mode) in [("v1", ChallengeMode::V1), ("v2", ChallengeMode::V2)] {
        let m = secured_mirror(mode, SECRET, Misbehave::None);
        let g = gw(&secured_route(version, m, ""));
        let r = get(g.addrs[0], "sec.test", "/hello");
        assert_eq!(r.status, 200, "{version}: {}", r.text());
        assert!(
            r.header("otoroshi-state-resp").is_none(),
            "answer header removed"
        );
        let j = seen(&r);
        assert_eq!(j["challengeVersion"], version.to_uppercase());
        let token = &j["token"];
        assert_eq!(token["iss"], "Otoroshi");
        assert_eq!(token["aud"], "my-service");
        assert_eq!(token["access_type"], "public");
        assert_eq!(token["sub"], "public");
        assert_eq!(
            token["exp"].as_u64().unwrap() - token["iat"].as_u64().unwrap(),
            30
        );
        assert!(token.get("nbf").is_some() && token.get("nbr").is_none());
        let state = j.one("otoroshi-state").unwrap();
        if version == "v1" {
            assert_eq!(state.len(), 128);
        } else {
            assert!(state.starts_with("eyJ") && state.matches('.').count() == 2);
        }
    }
}

#[test]
fn every_way_of_failing_v2_gives_the_otoroshi_502_and_is_counted() {
    let cases = [
        (Misbehave::NoAnswer, Some(ChallengeFailure::MissingHeader)),
        (Misbehave::WrongState, Some(ChallengeFailure::StateMismatch)),
        (Misbehave::WrongKey, Some(ChallengeFailure::BadSignature)),
        (Misbehave::Expired, None),
    ];
    for (mode, reason) in cases {
        let m = secured_mirror(ChallengeMode::V2, SECRET, mode);
        let g = gw(&secured_route("v2", m, ""));
        let mut s = connect(g.addrs[0]);
        let mut buf = Vec::new();
        for _ in 0..2 {
            // Twice on one connection: the client connection survives the failure.
            s.write_all(b"GET / HTTP/1.1\r\nHost: sec.test\r\n\r\n")
                .unwrap();
            let r = read_response(&mut s, &mut buf, "GET").unwrap();
            assert_not_secured(&r);
        }
        let snap = g.shared.snapshot.load();
        let counters = &snap.routes[0].metrics;
        let total: u64 = torii_engine::metrics::route::CHALLENGE_REASONS
            .iter()
            .map(|r| counters.challenge_failures(*r))
            .sum();
        assert_eq!(total, 2, "{mode:?}");
        if let Some(reason) = reason {
            assert_eq!(
                counters.challenge_failures(reason),
                2,
                "{mode:?} counted as {}",
                reason.reason()
            );
        }
    }
}

#[test]
fn v1_failures_and_an_unsecured_backend_give_502() {
    for mode in [Misbehave::NoAnswer, Misbehave::WrongState] {
        let m = secured_mirror(ChallengeMode::V1, SECRET, mode);
        let g = gw(&secured_route("v1", m, ""));
        assert_not_secured(&get(g.addrs[0], "sec.test", "/"));
    }
    let plain = mirror();
    let g = gw(&secured_route("v2", plain, ""));
    assert_not_secured(&get(g.addrs[0], "sec.test", "/"));
}

#[test]
fn excluded_paths_skip_the_challenge() {
    let plain = mirror();
    let g = gw(&secured_route("v2", plain, "exclude = [\"^/health$\"]"));
    assert_eq!(get(g.addrs[0], "sec.test", "/health").status, 200);
    assert_not_secured(&get(g.addrs[0], "sec.test", "/healthz"));
}

#[test]
fn custom_header_names_are_used_stripped_and_not_spoofable() {
    // A raw V1 backend that echoes X-State into X-State-Resp and reports what it received.
    let b = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut s, &mut buf, log) {
            let text = String::from_utf8_lossy(&req).to_string();
            let states: Vec<&str> = text
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("X-State: ")
                        .or_else(|| l.strip_prefix("x-state: "))
                })
                .collect();
            let body = format!("{}", states.len());
            let resp = format!(
                "HTTP/1.1 200 OK\r\nX-State-Resp: {}\r\nContent-Length: {}\r\n\r\n{body}",
                states.first().copied().unwrap_or(""),
                body.len()
            );
            if s.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    let g = gw(&secured_route(
        "v1",
        b.addr,
        "request_header = \"X-State\"\nresponse_header = \"X-State-Resp\"",
    ));
    let r = request(
        g.addrs[0],
        "GET / HTTP/1.1\r\nHost: sec.test\r\nX-State: spoofed-by-client\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "1",
        "only the gateway's X-State reached the backend"
    );
    assert!(
        r.header("x-state-resp").is_none(),
        "configured answer header removed"
    );
}

#[test]
fn weak_secrets_are_refused_unless_allowed() {
    let m = mirror();
    let weak = route("w", "w.test", "/", &[m])
        + "[routes.challenge]\nversion = \"v2\"\nsecret = \"secret\"\n";
    let cfg = torii_engine::config::load_str(
        &format!("{}{weak}", gateway_header("")),
        std::path::Path::new("."),
    )
    .unwrap();
    let err = torii_engine::snapshot::Snapshot::build(cfg, 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].challenge") && err.contains("32 bytes"),
        "{err}"
    );
    assert!(
        !err.contains("\"secret\"") || err.contains("default"),
        "no secret value in: {err}"
    );
    let allowed = format!("{}{weak}", gateway_header("")).replace(
        "[gateway]\n",
        "[gateway]\ninsecure_allow_weak_keys = true\n",
    );
    let cfg = torii_engine::config::load_str(&allowed, std::path::Path::new(".")).unwrap();
    assert!(torii_engine::snapshot::Snapshot::build(cfg, 1).is_ok());
}
