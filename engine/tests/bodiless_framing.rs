//! Answers whose status has no content (204, 304) from a backend that announces a body
//! anyway (`Content-Length: 15` or `Transfer-Encoding: chunked`) and sends it, over HTTP/1.1
//! and HTTP/2 (`curl --http2-prior-knowledge`):
//! * the client gets the status without `Content-Length` or `Transfer-Encoding` (RFC 9110
//!   §8.6; RFC 9111 §3.2 for 304), so a client that honours the field cannot read its next
//!   answer as this one's body;
//! * the 15 bytes never reach the client and are never read as the next response: the
//!   upstream connection is closed after such an answer (RFC 9112 §6.3 ends the response at
//!   its head), even when the bytes come late, after the next request (the worst case: nothing
//!   but the head's announcement tells Torii the connection is dirty);
//! * a HEAD answer's `Content-Length` (the GET's length, RFC 9110 §9.3.2) is forwarded and its
//!   connection reused, which shows the tests can tell a reused connection from a closed one;
//! * an interim 1xx that announces a body is refused (502): what follows it is the final
//!   response by one reading and a body by the other.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::scripted::{scripted, wait_until, Log, Request};
use common::*;

/// 15 bytes that would start a response of their own if read as one.
const STRAY: &str = "HTTP/1.1 418 \r\n";
/// A 15-byte chunked body.
const CHUNKED: &str = "5\r\nhello\r\n0\r\n\r\n";

/// The paths the backend answers without content, with the head and the 15 bytes it sends.
const BODILESS: [(&str, &str, &str); 3] = [
    (
        "/no-content",
        "HTTP/1.1 204 No Content\r\nContent-Length: 15\r\nX-Kind: nc\r\n\r\n",
        STRAY,
    ),
    (
        "/not-modified",
        "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 15\r\n\r\n",
        STRAY,
    ),
    (
        "/no-content-chunked",
        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        CHUNKED,
    ),
];

/// A backend answering the paths of [`BODILESS`] with their head and bytes (with the head, or
/// `late`: in front of its next answer on the same connection), `HEAD /head` with a 200 that
/// announces 15 bytes and sends none, and anything else with `200 next`.
fn backend(late: bool) -> (RawBackend, Arc<Mutex<Log>>) {
    let owed: Mutex<HashMap<usize, String>> = Mutex::default();
    scripted(move |req: &Request| {
        let mut out = owed.lock().unwrap().remove(&req.conn).unwrap_or_default();
        match BODILESS.iter().find(|(p, _, _)| *p == req.path) {
            Some((_, head, body)) => {
                out.push_str(head);
                if late {
                    owed.lock().unwrap().insert(req.conn, (*body).to_owned());
                } else {
                    out.push_str(body);
                }
            }
            None if req.method == "HEAD" => {
                out.push_str("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n");
            }
            None => out.push_str("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"),
        }
        out.into_bytes()
    })
}

fn framing_gateway(b: &RawBackend) -> torii_engine::control::Gateway {
    let header = gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    gateway(&format!("{header}{}", route("f", "f.test", "/", &[b.addr])))
}

/// The upstream connections of the last two requests, once the backend saw them.
fn last_two_conns(log: &Mutex<Log>, seen: usize) -> (usize, usize) {
    let l = wait_until(log, |l| l.requests.len() >= seen);
    assert_eq!(l.requests.len(), seen, "{:?}", l.requests);
    (l.requests[seen - 2].conn, l.requests[seen - 1].conn)
}

#[test]
fn http1_bodiless_answers_lose_their_framing_and_their_upstream_connection() {
    for late in [false, true] {
        let (b, log) = backend(late);
        let g = framing_gateway(&b);
        let mut s = connect(g.addrs[0]);
        let mut buf = Vec::new();
        let mut seen = 0;
        for (path, head, _) in BODILESS {
            let what = format!("{path} (late: {late})");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: f.test\r\n\r\n").as_bytes())
                .unwrap();
            let r = read_response(&mut s, &mut buf, "GET").unwrap();
            assert_eq!(r.status, head[9..12].parse::<u16>().unwrap(), "{what}");
            assert_eq!(r.header("content-length"), None, "{what}: {r:?}");
            assert_eq!(r.header("transfer-encoding"), None, "{what}: {r:?}");
            assert!(buf.is_empty(), "{what}: bytes after the head: {buf:?}");
            // The next request on the same client connection gets its own answer.
            s.write_all(b"GET /next HTTP/1.1\r\nHost: f.test\r\n\r\n")
                .unwrap();
            let next = read_response(&mut s, &mut buf, "GET").unwrap();
            assert_eq!((next.status, next.text().as_str()), (200, "next"), "{what}");
            seen += 2;
            let (first, second) = last_two_conns(&log, seen);
            assert_ne!(first, second, "{what}: the upstream connection was reused");
            let l = wait_until(&log, |l| l.closed.contains(&first));
            assert!(
                l.closed.contains(&first),
                "{what}: not closed: {:?}",
                l.closed
            );
        }
        // A HEAD answer keeps its length and its connection.
        s.write_all(b"HEAD /head HTTP/1.1\r\nHost: f.test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, &mut buf, "HEAD").unwrap();
        assert_eq!((r.status, r.header("content-length")), (200, Some("15")));
        s.write_all(b"GET /next HTTP/1.1\r\nHost: f.test\r\n\r\n")
            .unwrap();
        let next = read_response(&mut s, &mut buf, "GET").unwrap();
        assert_eq!((next.status, next.text().as_str()), (200, "next"));
        let (first, second) = last_two_conns(&log, seen + 2);
        assert_eq!(first, second, "a HEAD answer's connection is reused");
    }
}

#[test]
fn an_interim_answer_announcing_a_body_is_refused() {
    // Read as the RFC says, the "body" is the final answer (`evil`), and the backend's own
    // final answer would be left behind for the next request.
    let evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil";
    let (b, log) = scripted(move |req| {
        let answer = match req.path.as_str() {
            "/interim" => format!(
                "HTTP/1.1 103 Early Hints\r\nContent-Length: {}\r\n\r\n{evil}\
                 HTTP/1.1 204 No Content\r\n\r\n",
                evil.len()
            ),
            _ => "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext".to_owned(),
        };
        answer.into_bytes()
    });
    let g = framing_gateway(&b);
    let mut s = connect(g.addrs[0]);
    let mut buf = Vec::new();
    s.write_all(b"GET /interim HTTP/1.1\r\nHost: f.test\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("evil"));
    s.write_all(b"GET /next HTTP/1.1\r\nHost: f.test\r\n\r\n")
        .unwrap();
    let next = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!((next.status, next.text().as_str()), (200, "next"));
    let (first, second) = last_two_conns(&log, 2);
    assert_ne!(first, second, "the upstream connection was reused");
}

/// `curl --http2-prior-knowledge -i` on `path`: the answer's status line and header lines
/// (lower case), and its body. One connection per call: curl 7.88 fails a second transfer on
/// a prior-knowledge connection it reuses (whatever the server), and the upstream pool that
/// these tests watch is the worker's, shared by every client connection.
fn curl_h2(addr: std::net::SocketAddr, path: &str) -> (Vec<String>, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--http2-prior-knowledge", "-i"])
        .args(["-H", "host: f.test"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl is required (.ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {path} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let lines = head.lines().map(str::to_ascii_lowercase).collect();
    (lines, body.to_owned())
}

#[test]
fn http2_bodiless_answers_lose_their_framing_and_their_upstream_connection() {
    for late in [false, true] {
        let (b, log) = backend(late);
        let g = framing_gateway(&b);
        let mut seen = 0;
        for (path, head, _) in BODILESS {
            let what = format!("{path} (late: {late})");
            let (lines, body) = curl_h2(g.addrs[0], path);
            assert_eq!(
                lines[0].trim(),
                format!("http/2 {}", &head[9..12]),
                "{what}"
            );
            for field in ["content-length", "transfer-encoding"] {
                assert!(
                    !lines.iter().any(|l| l.starts_with(field)),
                    "{what}: {field} in {lines:?}"
                );
            }
            assert!(body.is_empty(), "{what}: body {body:?}");
            let (lines, body) = curl_h2(g.addrs[0], "/next");
            assert_eq!((lines[0].trim(), body.as_str()), ("http/2 200", "next"));
            seen += 2;
            let (first, second) = last_two_conns(&log, seen);
            assert_ne!(first, second, "{what}: the upstream connection was reused");
        }
        // A HEAD answer keeps its length over HTTP/2 too.
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--http2-prior-knowledge", "-I"])
            .args(["-H", "host: f.test"])
            .arg(format!("http://{}/head", g.addrs[0]))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(text.contains("content-length: 15\r\n"), "{text}");
        let (_, body) = curl_h2(g.addrs[0], "/next");
        assert_eq!(body, "next");
        let (first, second) = last_two_conns(&log, seen + 2);
        assert_eq!(first, second, "a HEAD answer's connection is reused");
    }
}
