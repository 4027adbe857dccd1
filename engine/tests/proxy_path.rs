//! End-to-end tests of the request path through an in-process gateway and mirror on
//! 127.0.0.1:0: routing, header handling, bodies in both framings, keep-alive and pipelining.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::seen::seen;
use common::*;

fn setup() -> (torii_engine::control::Gateway, std::net::SocketAddr) {
    let m = mirror();
    let cfg = format!(
        "{}{}{}",
        gateway_header(""),
        route("api", "api.test", "/", &[m]),
        route("wild", "*.wild.test", "/v1", &[m])
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    (gw, addr)
}

#[test]
fn proxies_and_rewrites_headers() {
    let (_gw, addr) = setup();
    // Every forwarding and Otoroshi header a client could spoof, some twice and in odd cases:
    // none of these lines may reach the backend, beside or instead of Torii's own.
    let spoofed = "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 6.6.6.7\r\n\
                   X-Forwarded-Proto: spoofed-proto\r\nX-FORWARDED-HOST: spoofed-host\r\n\
                   X-Forwarded-Protocol: spoofed\r\nOtoroshi-State: spoofed\r\n\
                   Otoroshi-Claim: spoofed\r\nOtoroshi-Client-Id: spoofed\r\n\
                   Otoroshi-Client-Secret: spoofed\r\nOtoroshi-Authorization: spoofed\r\n\
                   otoroshi-request-id: spoofed\r\nOtoroshi-Try-It-Request-Id: spoofed\r\n\
                   Raw-Request-Uri: spoofed\r\nRemote-Address: spoofed\r\n\
                   Timeout-Access: spoofed\r\nTls-Session-Info: spoofed\r\n";
    let r = request(
        addr,
        &format!(
            "GET /hello?x=1 HTTP/1.1\r\nHost: API.test:8080\r\nX-Custom: kept as is\r\n{spoofed}\
             Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\
             X-Custom: second line\r\n\r\n"
        ),
    );
    let j = seen(&r);
    assert_eq!(j["method"], "GET");
    assert_eq!(j["path"], "/hello");
    assert_eq!(j["query"], "x=1");
    // Repeated end-to-end headers are forwarded, both lines, in order.
    assert_eq!(j.values("x-custom"), ["kept as is", "second line"]);
    assert_eq!(j.one("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(j.one("x-forwarded-proto"), Some("http"));
    assert_eq!(j.one("x-forwarded-host"), Some("API.test:8080"));
    let host = j.one("host").unwrap();
    assert!(host.starts_with("127.0.0.1:"), "Host is the target's: {j}");
    let id = j.one("otoroshi-request-id").unwrap();
    assert_ne!(id, "spoofed");
    assert!(
        !j.any_line_contains("spoofed"),
        "a spoofed line survived: {j}"
    );
    assert!(
        !j.any_line_contains("6.6.6."),
        "the client's XFF survived: {j}"
    );
    for gone in [
        "otoroshi-state",
        "otoroshi-claim",
        "otoroshi-client-id",
        "x-hop",
        "keep-alive",
        "connection",
    ] {
        assert!(!j.has(gone), "{gone} must not reach the backend: {j}");
    }
}

#[test]
fn no_route_is_a_json_404() {
    let (_gw, addr) = setup();
    let r = get(addr, "unknown.test", "/");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("otoroshi-error"), Some("true"));
    assert_eq!(r.json()["Otoroshi-Error"], "No route found");
    // Wildcard domain with a path prefix.
    assert_eq!(get(addr, "a.wild.test", "/v1/x").status, 200);
    assert_eq!(get(addr, "a.wild.test", "/v2").status, 404);
    assert_eq!(get(addr, "wild.test", "/v1").status, 404);
}

#[test]
fn bodies_in_both_framings_reach_the_backend() {
    let (_gw, addr) = setup();
    let big = "x".repeat(200_000);
    let r = request(
        addr,
        &format!(
            "POST /p HTTP/1.1\r\nHost: api.test\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        ),
    );
    assert_eq!(seen(&r)["body_bytes"], 200_000);
    let r = request(
        addr,
        "POST /p HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    );
    let j = seen(&r);
    assert_eq!(j["body_bytes"], 11);
    assert_eq!(j.one("transfer-encoding"), Some("chunked"));
    assert!(!j.has("trailer"), "{j}");
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let (_gw, addr) = setup();
    let mut s = connect(addr);
    let mut reqs = String::new();
    for i in 0..5 {
        reqs.push_str(&format!("GET /n{i} HTTP/1.1\r\nHost: api.test\r\n\r\n"));
    }
    reqs.push_str("POST /body HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\n\r\nabc");
    reqs.push_str("GET /last HTTP/1.1\r\nHost: api.test\r\n\r\n");
    s.write_all(reqs.as_bytes()).unwrap();
    let mut buf = Vec::new();
    for i in 0..5 {
        let r = read_response(&mut s, &mut buf, "GET").unwrap();
        assert_eq!(seen(&r)["path"], format!("/n{i}"));
    }
    let r = read_response(&mut s, &mut buf, "POST").unwrap();
    assert_eq!(seen(&r)["body_bytes"], 3);
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(seen(&r)["path"], "/last");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let (_gw, addr) = setup();
    let mut s = connect(addr);
    s.write_all(
        b"POST /e HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(fill(&mut s, &mut buf));
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    buf.drain(..25);
    s.write_all(b"abcd").unwrap();
    let r = read_response(&mut s, &mut buf, "POST").unwrap();
    let j = seen(&r);
    assert_eq!(j["body_bytes"], 4);
    assert!(!j.has("expect"), "{j}");
}

#[test]
fn http10_client_without_keep_alive_gets_close() {
    let (_gw, addr) = setup();
    let mut s = connect(addr);
    s.write_all(b"GET /old HTTP/1.0\r\nHost: api.test\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut s, std::time::Duration::from_secs(2)));
}
