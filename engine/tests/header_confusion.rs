//! What the backend sees must be what Torii checked, beyond the path: header names with `_`
//! (CGI/WSGI stacks read `X_Forwarded_For` as `X-Forwarded-For`), forwarding headers that only
//! a proxy may set, one host form for every host match (the token service included), and
//! request bodies that never arrive (no upstream connection is held for them).
//!
//! Every check reads the exact bytes a recording backend received, so a duplicated or
//! re-spelled header line cannot hide behind a parser that keeps the last value.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::recorder::{recorder, Received};
use common::*;

/// The header lines of the one request a recorder connection carried, names lower-cased with
/// `_` read as `-` (what a CGI backend makes of them).
fn received_header_names(rec: &recorder::Recorder) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let conns = rec.conns.lock().unwrap().clone();
        if let Some(c) = conns
            .iter()
            .find(|c| c.bytes.windows(4).any(|w| w == b"\r\n\r\n"))
        {
            let text = String::from_utf8_lossy(&c.bytes).into_owned();
            let head = text.split("\r\n\r\n").next().unwrap().to_owned();
            return head
                .lines()
                .skip(1)
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (
                        n.to_ascii_lowercase().replace('_', "-"),
                        v.trim().to_owned(),
                    )
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "the backend received no request");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SPOOFED: &str = "X_Forwarded_For: 6.6.6.6\r\n\
X-Forwarded-For: 6.6.6.6\r\n\
Otoroshi_Claim: forged\r\n\
Otoroshi_State: forged\r\n\
X_Forwarded_Proto: https\r\n\
Forwarded: for=6.6.6.6;proto=https\r\n\
X-Real-IP: 6.6.6.6\r\n\
True-Client-IP: 6.6.6.6\r\n\
X-Client-IP: 6.6.6.6\r\n\
X-Forwarded-Port: 443\r\n\
X-Forwarded-Ssl: on\r\n\
X-Forwarded-Scheme: https\r\n\
X-Forwarded-Prefix: /admin\r\n\
X-Original-URL: /admin\r\n\
X-Rewrite-URL: /admin\r\n\
X_Custom: underscore\r\n\
X-Kept: dash\r\n";

const PROXY_ONLY: [&str; 12] = [
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-forwarded-port",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-prefix",
    "x-original-url",
    "x-rewrite-url",
    "otoroshi-claim",
    "otoroshi-state",
];

fn send_spoofed(addr: SocketAddr, host: &str) {
    let mut s = connect(addr);
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}\r\n{SPOOFED}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn underscore_and_proxy_only_headers_never_reach_the_backend() {
    let rec = recorder();
    let cfg = format!(
        "{}{}",
        gateway_header(""),
        route("r", "r.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    send_spoofed(gw.addrs[0], "r.test");
    let seen = received_header_names(&rec);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    for gone in PROXY_ONLY.iter().chain(&["x-custom"]) {
        assert!(
            !names.contains(gone),
            "{gone} reached the backend: {seen:?}"
        );
    }
    // X-Forwarded-For is the client's address alone, on one line.
    let xff: Vec<&(String, String)> = seen
        .iter()
        .filter(|(n, _)| n == "x-forwarded-for")
        .collect();
    assert_eq!(xff.len(), 1, "{seen:?}");
    assert_eq!(xff[0].1, "127.0.0.1");
    let proto: Vec<&(String, String)> = seen
        .iter()
        .filter(|(n, _)| n == "x-forwarded-proto")
        .collect();
    assert_eq!(proto.len(), 1, "{seen:?}");
    assert_eq!(proto[0].1, "http");
    assert!(names.contains(&"x-kept"), "{seen:?}");
    // Every underscore line was dropped and counted.
    let dropped = gw.shared.workers[0]
        .underscore_headers_dropped
        .load(Ordering::Relaxed);
    assert_eq!(
        dropped, 5,
        "X_Forwarded_For, Otoroshi_Claim, Otoroshi_State, X_Forwarded_Proto, X_Custom"
    );
}

#[test]
fn a_listener_may_keep_underscores_but_never_spoofable_ones() {
    let rec = recorder();
    let rec2 = recorder();
    let cfg = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\", \"127.0.0.2:0\"]\nunderscores_in_headers = [\"127.0.0.2:0\"]\n\n{}{}",
        route("r", "r.test", "/", &[rec.addr]),
        route("r2", "r2.test", "/", &[rec2.addr])
    );
    let gw = gateway(&cfg);
    // The listener that keeps underscores: X_Custom passes, the spoofable spellings do not.
    send_spoofed(gw.addrs[1], "r.test");
    let seen = received_header_names(&rec);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"x-custom"), "{seen:?}");
    for gone in PROXY_ONLY {
        assert!(
            !names.contains(&gone),
            "{gone} reached the backend: {seen:?}"
        );
    }
    let xff: Vec<&(String, String)> = seen
        .iter()
        .filter(|(n, _)| n == "x-forwarded-for")
        .collect();
    assert_eq!(
        xff,
        [&("x-forwarded-for".to_owned(), "127.0.0.1".to_owned())]
    );
    // The other listener drops every underscore name.
    send_spoofed(gw.addrs[0], "r2.test");
    let seen = received_header_names(&rec2);
    assert!(!seen.iter().any(|(n, _)| n == "x-custom"), "{seen:?}");
}

#[test]
fn a_custom_security_header_cannot_be_spoofed_with_an_underscore() {
    let rec = recorder();
    let cfg = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nunderscores_in_headers = true\n\n{}[routes.info_token]\nheader = \"X-Caller\"\nsecret = \"{}\"\n",
        route("r", "r.test", "/", &[rec.addr]),
        "c".repeat(40)
    );
    let gw = gateway(&cfg);
    let mut s = connect(gw.addrs[0]);
    s.write_all(b"GET / HTTP/1.1\r\nHost: r.test\r\nX_Caller: forged\r\nx-caller: forged too\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let seen = received_header_names(&rec);
    let callers: Vec<&(String, String)> = seen.iter().filter(|(n, _)| n == "x-caller").collect();
    assert_eq!(callers.len(), 1, "only Torii's own token: {seen:?}");
    assert!(callers[0].1.starts_with("eyJ"), "{seen:?}");
}

/// The token service and the routes agree on the host: `oauth.test.` (trailing dot) or
/// `OAUTH.TEST:80` is the token service's host, never a wildcard route's.
#[test]
fn the_token_service_host_cannot_slip_to_a_wildcard_route() {
    let rec = recorder();
    let cfg = format!(
        "{}[client_credentials]\ndomain = \"oauth\\\\.test\"\nsecure = true\n\n[[apikeys]]\nclient_id = \"c\"\nclient_secret = \"client-secret-value\"\nroutes = [\"wild\"]\n\n{}",
        gateway_header(""),
        route("wild", "*.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    let body = "grant_type=client_credentials&client_id=c&client_secret=client-secret-value";
    for host in ["oauth.test.", "OAUTH.Test:80", "oauth.test"] {
        let r = request(
            gw.addrs[0],
            &format!(
                "POST /.well-known/otoroshi/oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(r.status, 400, "{host}: {}", r.text());
        assert_eq!(
            r.json()["error_description"],
            "use a secure channel",
            "{host}"
        );
    }
    assert_eq!(rec.received(Duration::from_millis(200)), Received::Nothing);
}

/// Clients that announce a body and never send it hold no upstream connection, and are cut
/// when the minimum body rate's grace period ends (not after the 30 s idle timeout).
#[test]
fn absent_request_bodies_hold_no_upstream_connection() {
    let rec = recorder();
    let cfg = format!(
        "{}{}",
        gateway_header("body_min_rate_grace = \"1s\""),
        route("r", "r.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..60 {
        let mut s = connect(gw.addrs[0]);
        let expect = if i % 3 == 0 {
            "Expect: 100-continue\r\n"
        } else {
            ""
        };
        let framing = if i % 2 == 0 {
            "Content-Length: 5000000\r\n"
        } else {
            "Transfer-Encoding: chunked\r\n"
        };
        write!(
            s,
            "POST /upload HTTP/1.1\r\nHost: r.test\r\n{framing}{expect}\r\n"
        )
        .unwrap();
        clients.push((s, !expect.is_empty()));
    }
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        rec.conns.lock().unwrap().is_empty(),
        "an upstream connection was taken before any body byte"
    );
    for (mut s, expect) in clients {
        let mut buf = Vec::new();
        if expect {
            // Answered before any upstream is involved: the client waits for it to send.
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                assert!(fill(&mut s, &mut buf), "closed before 100 Continue");
            }
            assert!(buf.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
        }
        let r = read_response(&mut s, &mut buf, "POST").unwrap();
        assert_eq!(r.status, 408, "{}", r.text());
        assert!(closes_within(&mut s, Duration::from_secs(2)));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "cut after {took:?}, not at the grace period"
    );
    assert!(rec.conns.lock().unwrap().is_empty());
}

/// A body that starts and then stalls is cut by the rate measured from the end of the head.
#[test]
fn a_stalled_body_is_cut_by_the_minimum_rate() {
    let rec = recorder();
    let cfg = format!(
        "{}{}",
        gateway_header("body_min_rate_grace = \"1s\"\nbody_min_rate = 1024"),
        route("r", "r.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    let started = Instant::now();
    let mut s = connect(gw.addrs[0]);
    s.write_all(b"POST / HTTP/1.1\r\nHost: r.test\r\nContent-Length: 100000\r\n\r\nabc")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "POST").unwrap();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_token_endpoint_refuses_an_oversized_chunk_at_once() {
    let cfg = format!(
        "{}[client_credentials]\ndomain = \"oauth\\\\.test\"\nsecure = false\n\n{}",
        gateway_header(""),
        route("r", "r.test", "/", &[dead_addr()])
    );
    let gw = gateway(&cfg);
    for body in [
        "FFFFFF\r\n",
        "2001\r\n",
        "10\r\n0123456789abcdef\r\n2000\r\n",
    ] {
        let started = Instant::now();
        let mut s = connect(gw.addrs[0]);
        write!(
            s,
            "POST /.well-known/otoroshi/oauth/token HTTP/1.1\r\nHost: oauth.test\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        )
        .unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, "POST").unwrap();
        assert_eq!(r.status, 413, "{body:?}: {}", r.text());
        assert!(started.elapsed() < Duration::from_secs(3), "{body:?}");
    }
}
