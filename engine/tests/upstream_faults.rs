//! Upstream behaviour through an in-process gateway: refused and hanging targets, round-robin
//! with a dead target, framing from the upstream (close-delimited, chunked, HEAD, 204), bodies
//! longer than announced, and the retry of an idempotent request on a fresh connection.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

fn gw_to(
    targets: &[std::net::SocketAddr],
    limits: &str,
) -> (torii_engine::control::Gateway, std::net::SocketAddr) {
    let cfg = format!(
        "{}{}",
        gateway_header(limits),
        route("r", "up.test", "/", targets)
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    (gw, addr)
}

#[test]
fn refused_target_gives_502_and_a_live_one_is_used_instead() {
    let (_gw, addr) = gw_to(&[dead_addr()], "");
    let r = get(addr, "up.test", "/");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("otoroshi-error"), Some("true"));

    let m = mirror();
    let (_gw2, addr2) = gw_to(&[dead_addr(), m], "");
    for _ in 0..6 {
        assert_eq!(get(addr2, "up.test", "/").status, 200);
    }
}

#[test]
fn hanging_upstream_gives_504() {
    let hang = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        let _ = read_request(&mut s, &mut buf, log);
        std::thread::sleep(Duration::from_secs(3));
    });
    let (_gw, addr) = gw_to(&[hang.addr], "upstream_timeout = \"300ms\"");
    let r = get(addr, "up.test", "/");
    assert_eq!(r.status, 504);
}

#[test]
fn connect_timeout_gives_504() {
    // A listener whose accept queue is full drops further SYNs: connecting hangs.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let full = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&full, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let (_gw, addr) = gw_to(&[full], "upstream_connect_timeout = \"300ms\"");
    let r = get(addr, "up.test", "/");
    assert_eq!(r.status, 504, "{}", r.text());
}

fn scripted(responses: &'static [&'static [u8]]) -> RawBackend {
    raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        for resp in responses {
            if read_request(&mut s, &mut buf, log).is_none() {
                return;
            }
            if s.write_all(resp).is_err() {
                return;
            }
        }
    })
}

#[test]
fn close_delimited_response_is_forwarded_and_closes_the_client() {
    let b = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        let _ = read_request(&mut s, &mut buf, log);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    });
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), "GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "until the end");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn chunked_head_and_204_framing() {
    let b = scripted(&[
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ]);
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(b"GET /c HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(r.text(), "abcde");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, "HEAD").unwrap();
    assert_eq!(r.header("content-length"), Some("10"));
    s.write_all(b"GET /n HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf, "GET").unwrap().status, 204);
    s.write_all(b"GET /o HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf, "GET").unwrap().text(), "ok");
    assert_eq!(
        b.connections.load(Ordering::SeqCst),
        1,
        "one pooled upstream connection served all four"
    );
}

#[test]
fn http10_client_gets_a_dechunked_body() {
    let b =
        scripted(&[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]);
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.0\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), "GET").unwrap();
    assert_eq!(r.text(), "abc");
    assert!(r.header("transfer-encoding").is_none());
}

#[test]
fn more_body_than_announced_disables_reuse() {
    let b = scripted(&[
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA-BYTES",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno",
    ]);
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf, "GET").unwrap().text(), "ok");
    s.write_all(b"GET /2 HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    // The second request went to a new connection, whose first answer is "ok" again: the
    // stray bytes of the first connection were never read as a response.
    assert_eq!(r.text(), "ok");
    assert_eq!(b.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn reused_connection_closed_by_upstream_is_retried_for_get_not_for_post() {
    // First connection: answers one request, then reads the next and closes without answering.
    let b = raw_backend(|idx, mut s, log| {
        let mut buf = Vec::new();
        if read_request(&mut s, &mut buf, log).is_none() {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
        if idx == 0 {
            let _ = read_request(&mut s, &mut buf, log);
            return; // close without answering
        }
        while read_request(&mut s, &mut buf, log).is_some() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater");
        }
    });
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    let mut buf = Vec::new();
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut s, &mut buf, "GET").unwrap().text(),
        "first"
    );
    s.write_all(b"GET /2 HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(
        r.status,
        200,
        "idempotent request retried on a fresh connection: {}",
        r.text()
    );
    assert_eq!(b.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn upstream_closing_mid_body_closes_the_client() {
    let b = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        let _ = read_request(&mut s, &mut buf, log);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    });
    let (_gw, addr) = gw_to(&[b.addr], "");
    let mut s = connect(addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: up.test\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    while !buf.windows(7).any(|w| w == b"partial") {
        assert!(
            fill(&mut s, &mut buf),
            "partial body forwarded before the close"
        );
    }
    assert!(closes_within(&mut s, Duration::from_secs(3)));
}

#[test]
fn garbage_from_upstream_gives_502_and_the_next_request_works() {
    let b = raw_backend(|idx, mut s, log| {
        let mut buf = Vec::new();
        while read_request(&mut s, &mut buf, log).is_some() {
            let resp: &[u8] = if idx == 0 {
                b"NOT HTTP AT ALL\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if s.write_all(resp).is_err() {
                return;
            }
        }
    });
    let (_gw, addr) = gw_to(&[b.addr], "");
    assert_eq!(get(addr, "up.test", "/").status, 502);
    assert_eq!(get(addr, "up.test", "/").status, 200);
}
