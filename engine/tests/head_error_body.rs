//! An answer Torii makes itself to a HEAD request carries no content (RFC 9110 §9.3.2; RFC
//! 9112 §6.3: a client ends the message after the head). A body would be read, on a
//! keep-alive connection, as the start of the next answer: the client connection would be out
//! of step. Found by this test on the challenge-failure 502 and on the no-route 404, when
//! `write_error` wrote the body whatever the method.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::scripted::scripted;
use common::*;

/// Sends `HEAD path` then a pipelined `GET /next`; the bytes after the HEAD answer must be
/// the next answer's status line.
fn head_then_next(addr: std::net::SocketAddr, host: &str, path: &str) -> Response {
    let mut s = connect(addr);
    s.write_all(
        format!(
            "HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\nGET /next HTTP/1.1\r\nHost: {host}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "HEAD").unwrap();
    while buf.len() < 9 {
        assert!(fill(&mut s, &mut buf), "closed before the next answer");
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 "),
        "{path}: body bytes after the HEAD answer ({}): {:?}",
        r.status,
        String::from_utf8_lossy(&buf)
    );
    r
}

#[test]
fn torii_s_own_answers_to_head_carry_no_body() {
    let (b, _) = scripted(|req| {
        if req.path == "/fail" {
            return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec();
        }
        let st = req.values("otoroshi-state")[0].to_owned();
        format!("HTTP/1.1 200 OK\r\nOtoroshi-State-Resp: {st}\r\nContent-Length: 2\r\n\r\nok")
            .into_bytes()
    });
    let g = gateway(&format!(
        "{}{}[routes.challenge]\nversion = \"v1\"\n",
        gateway_header(""),
        route("sec", "sec.test", "/", &[b.addr])
    ));
    assert_eq!(head_then_next(g.addrs[0], "nowhere.test", "/").status, 404);
    assert_eq!(head_then_next(g.addrs[0], "sec.test", "/fail").status, 502);
}
