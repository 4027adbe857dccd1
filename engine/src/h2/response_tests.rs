//! Tests of `ResponseTranslator`: heads split anywhere, interim heads, every body framing,
//! connection-specific fields removed, trailers dropped.

use super::*;

/// Feeds `input` in pieces of `split` bytes; returns the steps seen (heads and interim
/// statuses as text), the payload and whether the body completed.
fn run(method: Method, input: &[u8], split: usize) -> (Vec<String>, Vec<u8>, bool) {
    let mut t = ResponseTranslator::new(method, HeadLimits::default());
    let mut events = Vec::new();
    let mut payload = Vec::new();
    let mut done = false;
    for piece in input.chunks(split) {
        let mut rest = piece;
        while !rest.is_empty() {
            match t.step(rest, &mut payload).unwrap() {
                Step::More => break,
                Step::Interim { status, consumed } => {
                    events.push(format!("interim {status}"));
                    rest = &rest[consumed..];
                }
                Step::Head {
                    response,
                    end_stream,
                    consumed,
                } => {
                    let mut names: Vec<&str> =
                        response.headers().keys().map(|k| k.as_str()).collect();
                    names.sort_unstable();
                    events.push(format!(
                        "head {} end={end_stream} {}",
                        response.status().as_u16(),
                        names.join(",")
                    ));
                    done |= end_stream;
                    rest = &rest[consumed..];
                }
                Step::Body { consumed, done: d } => {
                    done |= d;
                    rest = &rest[consumed..];
                }
            }
        }
    }
    (events, payload, done)
}

#[test]
fn a_length_framed_response_split_anywhere() {
    let input = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello";
    for split in 1..input.len() {
        let (events, payload, done) = run(Method::Get, input, split);
        assert_eq!(
            events,
            ["head 200 end=false content-length,content-type"],
            "split {split}"
        );
        assert_eq!(payload, b"hello");
        assert!(done);
    }
}

#[test]
fn a_chunked_response_is_unframed_and_its_trailers_dropped() {
    let input = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nkeep-alive: timeout=5\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nx-trailer: t\r\n\r\n";
    for split in [1, 2, 7, input.len()] {
        let (events, payload, done) = run(Method::Get, input, split);
        assert_eq!(events, ["head 200 end=false "], "split {split}");
        assert_eq!(payload, b"abcde");
        assert!(done);
    }
}

#[test]
fn interim_heads_come_before_the_final_one() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n";
    let (events, payload, done) = run(Method::Post, input, 3);
    assert_eq!(events, ["interim 100", "head 204 end=true x-a"]);
    assert!(payload.is_empty());
    assert!(done);
}

#[test]
fn head_requests_and_bodiless_statuses_end_with_the_head() {
    let input = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
    let (events, _, done) = run(Method::Head, input, input.len());
    assert_eq!(events, ["head 200 end=true content-length"]);
    assert!(done);
    let input = b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n";
    let (events, _, _) = run(Method::Get, input, input.len());
    assert_eq!(events, ["head 304 end=true etag"]);
}

#[test]
fn statuses_without_content_lose_their_content_length() {
    // RFC 9110 §8.6 (1xx, 204) and RFC 9111 §3.2 (304): the field would announce a body the
    // stream never carries.
    for status in ["204 No Content", "304 Not Modified"] {
        let input = format!("HTTP/1.1 {status}\r\ncontent-length: 15\r\netag: e\r\n\r\n");
        let (events, payload, done) = run(Method::Get, input.as_bytes(), input.len());
        let code = &status[..3];
        assert_eq!(events, [format!("head {code} end=true etag")]);
        assert!(payload.is_empty() && done);
    }
    // A HEAD answer keeps the GET's length (RFC 9110 §9.3.2).
    let input = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n";
    let (events, _, _) = run(Method::Head, input, input.len());
    assert_eq!(events, ["head 200 end=true content-length"]);
}

#[test]
fn a_close_delimited_body_ends_at_close() {
    let mut t = ResponseTranslator::new(Method::Get, HeadLimits::default());
    let mut payload = Vec::new();
    let input = b"HTTP/1.1 200 OK\r\n\r\nabc";
    let Step::Head { consumed, .. } = t.step(input, &mut payload).unwrap() else {
        panic!("head expected");
    };
    let Step::Body { done, .. } = t.step(&input[consumed..], &mut payload).unwrap() else {
        panic!("body expected");
    };
    assert!(!done);
    assert!(t.ends_at_close());
    assert_eq!(payload, b"abc");
}

#[test]
fn hop_by_hop_fields_never_reach_http2() {
    let input = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\nkeep-alive: 1\r\nproxy-connection: x\r\nupgrade: h2c\r\nte: trailers\r\ntrailer: x\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\n";
    let mut t = ResponseTranslator::new(Method::Get, HeadLimits::default());
    let Step::Head { response, .. } = t.step(input, &mut Vec::new()).unwrap() else {
        panic!("head expected");
    };
    let h = response.headers();
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
    ] {
        assert!(!h.contains_key(n), "{n}");
    }
    assert_eq!(h.get_all("set-cookie").iter().count(), 2);
}

#[test]
fn broken_responses_are_refused() {
    for input in [
        &b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
    ] {
        let mut t = ResponseTranslator::new(Method::Get, HeadLimits::default());
        assert!(t.step(input, &mut Vec::new()).is_err(), "{input:?}");
    }
    let mut t = ResponseTranslator::new(Method::Get, HeadLimits::default());
    let input = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
    let Step::Head { consumed, .. } = t.step(input, &mut Vec::new()).unwrap() else {
        panic!("head expected");
    };
    assert!(t.step(&input[consumed..], &mut Vec::new()).is_err());
}
