//! Hostile and slow clients against an in-process gateway: framing errors answered and
//! closed, size limits (431/414/413), the head deadline (408), and a request body that must
//! never be read as the next request after a local answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

fn setup(
    limits: &str,
) -> (
    torii_engine::control::Gateway,
    std::net::SocketAddr,
    RawBackend,
) {
    let b = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        while read_request(&mut s, &mut buf, log).is_some() {
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let cfg = format!(
        "{}{}",
        gateway_header(limits),
        route("r", "lim.test", "/", &[b.addr])
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    (gw, addr, b)
}

fn answer_and_close(addr: std::net::SocketAddr, raw: &[u8]) -> u16 {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET").expect("an answer");
    assert_eq!(r.header("connection"), Some("close"), "status {}", r.status);
    assert!(
        closes_within(&mut s, Duration::from_secs(2)),
        "closed after {}",
        r.status
    );
    r.status
}

#[test]
fn ambiguous_framing_is_refused_and_never_forwarded() {
    let (_gw, addr, b) = setup("");
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: lim.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: lim.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: lim.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: lim.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: lim.test\r\nX-A: 1\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : lim.test\r\n\r\n",
        b"GET / HTTP/1.1\nHost: lim.test\n\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: lim.test\r\nHost: other\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: lim.test\r\nContent-Length: +3\r\n\r\nabc",
    ];
    for raw in cases {
        let status = answer_and_close(addr, raw);
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(
        b.connections.load(Ordering::SeqCst),
        0,
        "nothing reached the backend"
    );
}

#[test]
fn oversized_heads_and_bodies_get_their_statuses() {
    let (_gw, addr, _b) = setup("max_header_bytes = 2048\nmax_headers = 10\nmax_body_bytes = 100");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: lim.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4000)
    );
    assert_eq!(answer_and_close(addr, big.as_bytes()), 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: lim.test\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(answer_and_close(addr, many.as_bytes()), 431);
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: lim.test\r\n\r\n",
        "u".repeat(10_000)
    );
    let status = answer_and_close(addr, long_uri.as_bytes());
    assert!(status == 414 || status == 431, "{status}");
    let body = format!(
        "POST / HTTP/1.1\r\nHost: lim.test\r\nContent-Length: 101\r\n\r\n{}",
        "b".repeat(101)
    );
    assert_eq!(answer_and_close(addr, body.as_bytes()), 413);
}

#[test]
fn slow_head_gets_408_within_the_deadline() {
    let (_gw, addr, _b) = setup("client_header_timeout = \"400ms\"");
    let mut s = connect(addr);
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: lim").unwrap();
    let r = read_response(&mut s, &mut Vec::new(), "GET").expect("408");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn idle_keep_alive_connection_is_closed_after_its_timeout() {
    let (_gw, addr, _b) = setup("keepalive_timeout = \"300ms\"");
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: lim.test\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut s, &mut Vec::new(), "GET")
            .unwrap()
            .status,
        200
    );
    assert!(closes_within(&mut s, Duration::from_secs(3)));
}

#[test]
fn body_behind_a_local_answer_is_never_read_as_a_request() {
    let (_gw, addr, b) = setup("");
    // A large POST on a route that does not exist gets 404 before its body is read; a second
    // request hidden in the body must not reach the backend.
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: lim.test\r\n\r\n";
    let body = format!("{smuggled}{}", "p".repeat(100_000));
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = connect(addr);
    let _ = s.write_all(raw.as_bytes());
    let r = read_response(&mut s, &mut Vec::new(), "POST").unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closes_within(&mut s, Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(b.connections.load(Ordering::SeqCst), 0);
    assert!(!String::from_utf8_lossy(&b.received.lock().unwrap()).contains("/smuggled"));
}

#[test]
fn slow_request_body_is_cut_with_408() {
    let (_gw, addr, _b) = setup("body_min_rate = 1000\nbody_min_rate_grace = \"300ms\"");
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nHost: lim.test\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut answered = None;
    // One byte every 100 ms: 10 B/s, far below 1000 B/s. Bounded to 40 bytes / ~4 s.
    for _ in 0..40 {
        if s.write_all(b"x").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        s.set_nonblocking(true).unwrap();
        let mut probe = [0u8; 1];
        let peeked = s.peek(&mut probe);
        s.set_nonblocking(false).unwrap();
        if matches!(peeked, Ok(n) if n > 0) {
            answered = read_response(&mut s, &mut Vec::new(), "POST");
            break;
        }
    }
    let r = answered.expect("the gateway answers the slow body");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn beyond_max_connections_the_worker_stops_accepting() {
    let cfg = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nmax_connections_per_worker = 2\n\n{}",
        route("r", "lim.test", "/", &[mirror()])
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: lim.test\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_response(&mut s, &mut Vec::new(), "GET")
                .unwrap()
                .status,
            200
        );
        held.push(s);
    }
    // The kernel completes the handshake (backlog), but Torii does not accept it yet.
    let mut third = connect(addr);
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: lim.test\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        std::io::Read::read(&mut third, &mut byte).is_err(),
        "no answer while two connections are open"
    );
    drop(held.pop());
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = read_response(&mut third, &mut Vec::new(), "GET").expect("accepted once a slot frees");
    assert_eq!(r.status, 200);
}
