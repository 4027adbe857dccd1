//! Unit tests of [`parse_response_head`]: framing per status and method, keep-alive, and the
//! same line-level strictness as requests.

use super::*;

fn parse_for(method: Method, buf: &[u8]) -> Result<Option<ResponseHead>, ResponseError> {
    let mut hs = Vec::new();
    parse_response_head(buf, &HeadLimits::default(), method, &mut hs)
}

fn ok_for(method: Method, buf: &[u8]) -> ResponseHead {
    match parse_for(method, buf) {
        Ok(Some(h)) => h,
        other => panic!("{other:?} for {}", String::from_utf8_lossy(buf)),
    }
}

fn ok(buf: &[u8]) -> ResponseHead {
    ok_for(Method::Get, buf)
}

fn invalid(buf: &[u8]) -> &'static str {
    match parse_for(Method::Get, buf) {
        Err(ResponseError::Invalid(r)) => r,
        other => panic!("{other:?} for {}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn parses_simple_response() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello";
    let mut hs = Vec::new();
    let h = parse_response_head(buf, &HeadLimits::default(), Method::Get, &mut hs)
        .unwrap()
        .unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.version_minor, 1);
    assert_eq!(h.status_line.get(buf), b"HTTP/1.1 200 OK\r\n");
    assert_eq!(h.head_len, buf.len() - 5);
    assert_eq!(h.body, ResponseBody::Length(5));
    assert!(h.keep_alive);
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[1].line.get(buf), b"X: y\r\n");
    // no reason phrase at all is fine
    assert_eq!(ok(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n").status, 404);
}

#[test]
fn every_prefix_is_incomplete() {
    let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for i in 0..buf.len() {
        assert_eq!(parse_for(Method::Get, &buf[..i]), Ok(None), "prefix {i}");
    }
    assert_eq!(ok(buf).body, ResponseBody::Chunked);
}

#[test]
fn no_body_statuses_and_head() {
    for (status, method) in [
        ("100 Continue", Method::Get),
        ("103 Early Hints", Method::Get),
        ("204 No Content", Method::Get),
        ("304 Not Modified", Method::Get),
        ("200 OK", Method::Head),
        ("404 Not Found", Method::Head),
    ] {
        let buf = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        let h = ok_for(method, buf.as_bytes());
        assert_eq!(h.body, ResponseBody::None, "{status} {method:?}");
        assert!(h.keep_alive);
    }
    let h = ok(b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(h.body, ResponseBody::None);
    assert!(h.keep_alive);
    for s in [100, 101, 102, 103, 199, 204, 304] {
        assert!(status_has_no_content(s), "{s}");
    }
    for s in [200, 201, 205, 206, 300, 303, 305, 404, 599] {
        assert!(!status_has_no_content(s), "{s}");
    }
}

#[test]
fn a_head_announcing_a_body_its_status_forbids_ends_its_connection() {
    // RFC 9112 §6.3 rule 1: the response ends at its head, so the announced bytes would be
    // read as the next response. The final answer stands; its connection is not reused.
    for (status, framing) in [
        ("204 No Content", "Content-Length: 15"),
        ("304 Not Modified", "Content-Length: 15"),
        ("204 No Content", "Transfer-Encoding: chunked"),
        ("304 Not Modified", "Transfer-Encoding: chunked"),
    ] {
        for method in [Method::Get, Method::Head] {
            let buf = format!("HTTP/1.1 {status}\r\n{framing}\r\n\r\n0123456789abcde");
            let h = ok_for(method, buf.as_bytes());
            assert_eq!(h.body, ResponseBody::None, "{status} {framing} {method:?}");
            assert!(!h.keep_alive, "{status} {framing} {method:?}");
            assert_eq!(h.head_len, buf.len() - 15);
        }
    }
    // An interim answer is refused: the bytes after it are the final response by one reading
    // and a body by the other.
    for framing in ["Content-Length: 15", "Transfer-Encoding: chunked"] {
        let buf = format!("HTTP/1.1 100 Continue\r\n{framing}\r\n\r\n");
        assert_eq!(invalid(buf.as_bytes()), "interim response announces a body");
    }
    // A 101's connection is never reused anyway; the tunnel follows its head.
    let h =
        ok(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 15\r\n\r\n");
    assert!(!h.keep_alive);
    // A HEAD answer's Content-Length is the GET's length (RFC 9110 §9.3.2): reused.
    let h = ok_for(
        Method::Head,
        b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n",
    );
    assert_eq!(h.body, ResponseBody::None);
    assert!(h.keep_alive);
}

#[test]
fn switching_protocols_has_no_body_and_is_not_reusable() {
    let h = ok(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(h.status, 101);
    assert_eq!(h.body, ResponseBody::None);
    assert!(!h.keep_alive);
}

#[test]
fn status_must_be_three_digits_in_range() {
    for line in [
        "HTTP/1.1 099 Low",
        "HTTP/1.1 600 High",
        "HTTP/1.1 000 Zero",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 2000 OK",
        "HTTP/1.1 abc OK",
        "HTTP/1.1  200 OK",
        "HTTP/2 200 OK",
        "HTTP/1.2 200 OK",
        "HTTP/1.1200 OK",
        "ICY 200 OK",
    ] {
        let buf = format!("{line}\r\nContent-Length: 0\r\n\r\n");
        let r = parse_for(Method::Get, buf.as_bytes());
        assert!(matches!(r, Err(ResponseError::Invalid(_))), "{line}: {r:?}");
    }
    assert_eq!(
        ok(b"HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n").status,
        599
    );
    assert_eq!(ok(b"HTTP/1.1 100 X\r\n\r\n").status, 100);
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "both Content-Length and Transfer-Encoding"
    );
    // even where the status means no body
    let r = parse_for(
        Method::Head,
        b"HTTP/1.1 204 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    );
    assert!(matches!(r, Err(ResponseError::Invalid(_))));
}

#[test]
fn rejects_several_content_length_even_identical() {
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
        "several Content-Length headers"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
        "several Content-Length headers"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"),
        "invalid Content-Length"
    );
}

#[test]
fn rejects_transfer_encoding_other_than_chunked() {
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "identity"] {
        let buf = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            invalid(buf.as_bytes()),
            "Transfer-Encoding other than chunked"
        );
    }
    assert_eq!(
        invalid(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "Transfer-Encoding on HTTP/1.0"
    );
}

#[test]
fn line_level_strictness() {
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        "bare LF line ending"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
        "bare LF line ending"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
        "obs-fold line"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"),
        "invalid byte in header field value"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
        "invalid header field name"
    );
    assert_eq!(
        invalid(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
        "bare CR in head"
    );
    assert_eq!(
        invalid(b"\r\nHTTP/1.1 200 OK\r\n\r\n"),
        "empty line before the start line"
    );
}

#[test]
fn keep_alive_and_until_close() {
    let h = ok(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.body, ResponseBody::UntilClose);
    assert!(!h.keep_alive);
    assert!(!ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
    assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
    assert!(
        ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive
    );
    assert!(!ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").keep_alive);
}

#[test]
fn limits_apply() {
    let limits = HeadLimits {
        max_head_bytes: 40,
        max_headers: 1,
        max_request_line_bytes: 20,
    };
    let mut hs = Vec::new();
    let p = |b: &[u8], hs: &mut Vec<HeaderField>| parse_response_head(b, &limits, Method::Get, hs);
    assert_eq!(
        p(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", &mut hs),
        Err(ResponseError::TooManyHeaders)
    );
    assert_eq!(
        p(&[b'x'; 40], &mut hs),
        Err(ResponseError::Invalid("status line too long"))
    );
    assert_eq!(
        p(
            b"HTTP/1.1 200 OK\r\nA: 0123456789012345678901\r\n\r\n",
            &mut hs
        ),
        Err(ResponseError::HeadTooLarge)
    );
    assert_eq!(
        ResponseError::HeadTooLarge.to_string(),
        "upstream response head too large"
    );
}

#[test]
fn interim_then_final() {
    let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let first = ok(buf);
    assert_eq!((first.status, first.body), (100, ResponseBody::None));
    let second = ok(&buf[first.head_len..]);
    assert_eq!((second.status, second.body), (200, ResponseBody::Length(2)));
}

#[test]
fn never_panics_on_mutations() {
    let base = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x\r\nX: y\r\n\r\nab";
    let limits = HeadLimits {
        max_head_bytes: 70,
        max_headers: 3,
        max_request_line_bytes: 20,
    };
    let mut hs = Vec::new();
    let mut buf = base.to_vec();
    for i in 0..base.len() {
        for b in [0u8, b'\r', b'\n', b' ', b'\t', b':', b'0', b'9', 0x80, b'a'] {
            buf.copy_from_slice(base);
            buf[i] = b;
            for m in [Method::Get, Method::Head] {
                let _ = parse_response_head(&buf[..i], &limits, m, &mut hs);
                let _ = parse_response_head(&buf, &limits, m, &mut hs);
            }
        }
    }
}
