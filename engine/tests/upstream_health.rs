//! Active health checks end to end, on loopback: a gateway started in-process probes its
//! routes' endpoints from its `torii-health` thread, and the workers stop sending requests to
//! an endpoint found unhealthy and send them again once it recovers; on a challenged route a
//! backend that answers 200 without answering the exchange protocol is unhealthy.
//!
//! Every wait is bounded (`WAIT`); every backend and the gateway bind 127.0.0.1 port 0. Run
//! under both IO drivers (`MONOIO_FORCE_LEGACY_DRIVER=1` for epoll).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::scripted::{scripted, Log, Request};
use common::tls::TestCa;
use common::*;
use torii_engine::control::Gateway;
use torii_engine::mirror::secured::{ChallengeMode, Misbehave};
use torii_engine::upstream::endpoint::Health;

/// Longest wait for a verdict or for traffic to come back.
const WAIT: Duration = Duration::from_secs(5);

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const HEALTH_CHECK: &str = "[routes.health_check]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nunhealthy_threshold = 2\nhealthy_threshold = 2\n";

fn answer(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The health the checker gave the endpoint at `addr` of the gateway's first route.
fn health_of(g: &Gateway, addr: SocketAddr) -> Option<Health> {
    let snap = g.shared.snapshot.load();
    let set = snap.routes[0].upstream.endpoints();
    set.endpoints
        .iter()
        .find(|e| e.state.addr == addr)
        .map(|e| e.state.health())
}

/// Waits (at most `WAIT`) until the endpoint at `addr` has `health`; says whether it did.
fn wait_for_health(g: &Gateway, addr: SocketAddr, health: Health) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if health_of(g, addr) == Some(health) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The requests a backend received that are not health probes.
fn traffic(log: &Mutex<Log>) -> Vec<Request> {
    log.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.path != "/health")
        .cloned()
        .collect()
}

/// The health probes a backend received.
fn probes(log: &Mutex<Log>) -> Vec<Request> {
    log.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.path == "/health")
        .cloned()
        .collect()
}

#[test]
fn an_endpoint_failing_its_check_takes_no_traffic_until_it_passes_again() {
    let status = Arc::new(AtomicU16::new(503));
    let s = status.clone();
    let (sick, sick_log) = scripted(move |r| match r.path.as_str() {
        "/health" => answer(s.load(Ordering::SeqCst), "health"),
        _ => answer(200, "sick"),
    });
    let (well, well_log) = scripted(|_| answer(200, "well"));
    let g = gateway(&format!(
        "{}{}{HEALTH_CHECK}",
        gateway_header(""),
        route("r", "h.test", "/", &[well.addr, sick.addr])
    ));

    assert!(
        wait_for_health(&g, sick.addr, Health::Unhealthy),
        "the endpoint answering 503 on /health is not unhealthy after {WAIT:?}: {:?}",
        health_of(&g, sick.addr)
    );
    assert!(wait_for_health(&g, well.addr, Health::Healthy));
    // What a probe looks like.
    let probe = probes(&sick_log).remove(0);
    assert_eq!(probe.method, "GET");
    assert_eq!(probe.values("user-agent"), ["torii-health-check"]);
    assert_eq!(probe.values("connection"), ["close"]);
    assert_eq!(probe.values("host"), [sick.addr.to_string()]);

    let before = traffic(&sick_log).len();
    for i in 0..20 {
        let r = get(g.addrs[0], "h.test", &format!("/r{i}"));
        assert_eq!((r.status, r.text().as_str()), (200, "well"), "request {i}");
    }
    assert_eq!(
        traffic(&sick_log).len(),
        before,
        "a request reached the unhealthy endpoint"
    );
    assert!(traffic(&well_log).len() >= 20);
    let snap = g.shared.snapshot.load();
    let set = snap.routes[0].upstream.endpoints();
    let sick_state = &set
        .endpoints
        .iter()
        .find(|e| e.state.addr == sick.addr)
        .unwrap()
        .state;
    assert!(sick_state.probes_failed.load(Ordering::Relaxed) >= 2);

    // It recovers: requests reach it again within the bounded wait.
    status.store(200, Ordering::SeqCst);
    let deadline = Instant::now() + WAIT;
    let mut back = false;
    while !back && Instant::now() < deadline {
        back = get(g.addrs[0], "h.test", "/again").text() == "sick";
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        back,
        "no request reached the recovered endpoint within {WAIT:?}"
    );
    assert_eq!(health_of(&g, sick.addr), Some(Health::Healthy));
    assert!(sick_state.probes_ok.load(Ordering::Relaxed) >= 2);
    g.drain(Duration::from_secs(2));
}

#[test]
fn a_reload_keeps_verdicts_and_a_route_that_drops_its_check_forgets_them() {
    let (sick, sick_log) = scripted(|r| match r.path.as_str() {
        "/health" => answer(503, "health"),
        _ => answer(200, "sick"),
    });
    let (well, _well_log) = scripted(|_| answer(200, "well"));
    let routes = route("r", "h.test", "/", &[well.addr, sick.addr]);
    let checked = format!("{}{routes}{HEALTH_CHECK}", gateway_header(""));
    let g = gateway(&checked);
    assert!(wait_for_health(&g, sick.addr, Health::Unhealthy));

    let dir = TempDir::new("upstream-health");
    let file = dir.0.join("torii.toml");
    // The same route, renamed: a reload that keeps the endpoints keeps what was found.
    std::fs::write(
        &file,
        checked.replace("id = \"r\"", "id = \"r\"\nname = \"renamed\""),
    )
    .unwrap();
    assert!(g.reload(&file));
    assert_eq!(g.shared.snapshot.load().routes[0].name, "renamed");
    assert_eq!(health_of(&g, sick.addr), Some(Health::Unhealthy));
    let before = traffic(&sick_log).len();
    for i in 0..10 {
        assert_eq!(get(g.addrs[0], "h.test", &format!("/k{i}")).text(), "well");
    }
    assert_eq!(traffic(&sick_log).len(), before);

    // Without the check, its verdict is forgotten and requests reach it again.
    std::fs::write(&file, format!("{}{routes}", gateway_header(""))).unwrap();
    assert!(g.reload(&file));
    assert!(
        wait_for_health(&g, sick.addr, Health::Unknown),
        "{:?}",
        health_of(&g, sick.addr)
    );
    let reached = (0..10).any(|i| get(g.addrs[0], "h.test", &format!("/u{i}")).text() == "sick");
    assert!(
        reached,
        "no request reached the endpoint once its route dropped the check"
    );
    g.drain(Duration::from_secs(2));
}

#[test]
fn on_a_challenged_route_a_backend_that_cannot_answer_the_challenge_is_unhealthy() {
    let secured = secured_mirror(ChallengeMode::V2, SECRET, Misbehave::None);
    let (plain_backend, plain_log) = scripted(|_| answer(200, "unsecured"));
    let plain = plain_backend.addr;
    let g = gateway(&format!(
        "{}{}name = \"svc\"\n[routes.challenge]\nversion = \"v2\"\nsecret = \"{SECRET}\"\n{HEALTH_CHECK}",
        gateway_header(""),
        route("sec", "sec.test", "/", &[secured, plain])
    ));

    assert!(
        wait_for_health(&g, plain, Health::Unhealthy),
        "the backend answering 200 without the challenge's answer is not unhealthy: {:?}",
        health_of(&g, plain)
    );
    // The one that answers the challenge passes the same probes.
    assert!(
        wait_for_health(&g, secured, Health::Healthy),
        "{:?}",
        health_of(&g, secured)
    );
    let probe = probes(&plain_log).remove(0);
    let state = probe.values("otoroshi-state");
    assert!(
        state.len() == 1 && state[0].starts_with("eyJ") && state[0].matches('.').count() == 2,
        "a probe on a V2 route carries a state token: {:?}",
        probe.lines
    );

    let before = traffic(&plain_log).len();
    for i in 0..20 {
        let r = get(g.addrs[0], "sec.test", &format!("/r{i}"));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    assert_eq!(
        traffic(&plain_log).len(),
        before,
        "a request reached the backend that cannot answer the challenge"
    );
    g.drain(Duration::from_secs(2));
}

/// A gateway terminating TLS with a certificate for `upstream.test` signed by `ca`, in front of
/// a mirror (which answers 200 to every path, `/health` included).
fn tls_upstream(dir: &TempDir, ca: &TestCa, stem: &str) -> Gateway {
    let (cert, key) = ca.leaf(&["upstream.test"]).write(&dir.0, stem);
    gateway(&format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\n{}",
        cert.display(),
        key.display(),
        route("up", "127.0.0.1", "/", &[mirror()])
    ))
}

#[test]
fn https_endpoints_are_probed_over_the_targets_tls() {
    let dir = TempDir::new("upstream-health-tls");
    let ca = TestCa::new("upstream CA");
    let trusted = tls_upstream(&dir, &ca, "trusted");
    let untrusted = tls_upstream(&dir, &TestCa::new("another CA"), "untrusted");
    let (good, bad) = (trusted.addrs[0], untrusted.addrs[0]);
    let ca_file = dir.write("ca.pem", &ca.pem());
    let g = gateway(&format!(
        "{}[[routes]]\nid = \"s\"\ndomains = [\"b.test\"]\ntargets = [\"https://{good}\", \"https://{bad}\"]\nupstream_tls = {{ ca = \"{}\", server_name = \"upstream.test\" }}\n{}",
        gateway_header(""),
        ca_file.display(),
        // A TLS handshake in a debug build gets more than the plain probes' 100 ms.
        HEALTH_CHECK.replace("\"100ms\"", "\"250ms\"")
    ));
    assert!(
        wait_for_health(&g, good, Health::Healthy),
        "the endpoint whose certificate the route trusts: {:?}",
        health_of(&g, good)
    );
    assert!(
        wait_for_health(&g, bad, Health::Unhealthy),
        "the endpoint whose certificate the route does not trust: {:?}",
        health_of(&g, bad)
    );
    for i in 0..10 {
        let r = get(g.addrs[0], "b.test", &format!("/t{i}"));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    g.drain(Duration::from_secs(2));
    trusted.drain(Duration::from_secs(2));
    untrusted.drain(Duration::from_secs(2));
}
