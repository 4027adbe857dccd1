//! Table tests of `read_request_head`: every rule of RFC 9113 §8 it holds, the HTTP/1.1 head
//! rules it shares (limits, target, host, framing names), and the head it leaves: fields laid
//! out as the upstream receives them, spans that read back the same request.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};

use super::*;
use crate::http1::{self, HeadLimits};

fn headers(fields: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in fields {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    map
}

fn read_with(
    method: &str,
    uri: &str,
    fields: &[(&str, &[u8])],
    eos: bool,
    limits: &HeadLimits,
) -> Result<(String, RequestHead, OwnedHead), Refusal> {
    let mut out = OwnedHead::new();
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let u: Uri = uri.parse().unwrap();
    let head = read_request_head(&m, &u, &headers(fields), eos, limits, &mut out)?;
    Ok((String::from_utf8(out.bytes().to_vec()).unwrap(), head, out))
}

fn read(
    method: &str,
    uri: &str,
    fields: &[(&str, &[u8])],
    eos: bool,
) -> Result<(String, RequestHead), Refusal> {
    read_with(method, uri, fields, eos, &HeadLimits::default()).map(|(s, h, _)| (s, h))
}

fn invalid(why: &'static str) -> Refusal {
    Refusal::Refused(RequestError::Invalid(why))
}

#[test]
fn a_plain_get_keeps_its_fields_with_the_authority_as_host() {
    let (head, parsed) = read(
        "GET",
        "https://api.example/a/b?x=1",
        &[("accept", b"*/*"), ("user-agent", b"curl")],
        true,
    )
    .unwrap();
    assert_eq!(
        head,
        "GET /a/b?x=1\r\nhost: api.example\r\naccept: */*\r\nuser-agent: curl\r\n\r\n"
    );
    assert!(
        !head.contains("HTTP/1.1"),
        "no HTTP/1.1 request line: {head}"
    );
    assert_eq!(parsed.body, http1::BodyFraming::None);
}

#[test]
fn the_head_reads_back_as_the_same_request() {
    let (head, parsed, owned) = read_with(
        "POST",
        "https://api.example:8443/up?q",
        &[("content-length", b"12"), ("x-a", b"1")],
        false,
        &HeadLimits::default(),
    )
    .unwrap();
    let data = head.as_bytes();
    assert_eq!(parsed.method, http1::Method::Post);
    assert_eq!(parsed.method_span.get(data), b"POST");
    assert_eq!(parsed.path.get(data), b"/up");
    assert_eq!(parsed.query.map(|q| q.get(data)), Some(&b"q"[..]));
    assert_eq!(parsed.host.unwrap().get(data), b"api.example:8443");
    assert_eq!(parsed.body, http1::BodyFraming::Length(12));
    assert_eq!(parsed.head_len, head.len());
    assert!(parsed.keep_alive && !parsed.upgrade && !parsed.expect_continue);
    let names: Vec<_> = owned
        .fields()
        .iter()
        .map(|f| String::from_utf8_lossy(f.name.get(data)).into_owned())
        .collect();
    assert_eq!(names, ["host", "x-a", "content-length"]);
    assert_eq!(owned.find(b"x-a"), Some(&b"1"[..]));
    let cl = owned.fields()[2];
    assert_eq!(cl.kind, http1::HeaderKind::ContentLength);
    assert_eq!(cl.line.get(data), b"content-length: 12\r\n");
}

#[test]
fn a_body_without_content_length_is_chunked() {
    let (head, parsed) = read("POST", "http://h/p", &[], false).unwrap();
    assert_eq!(parsed.body, http1::BodyFraming::Chunked);
    assert!(!head.contains("transfer-encoding"), "{head}");
    let (head, parsed) = read("POST", "http://h/p", &[("content-length", b"0")], true).unwrap();
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
    assert_eq!(parsed.body, http1::BodyFraming::Length(0));
    let (_, parsed) = read("PUT", "http://h/p", &[("content-length", b"7")], false).unwrap();
    assert_eq!(parsed.body, http1::BodyFraming::Length(7));
}

#[test]
fn cookies_are_joined_into_one_field() {
    let (head, _) = read(
        "GET",
        "http://h/",
        &[
            ("cookie", b"a=1"),
            ("x", b"y"),
            ("cookie", b"b=2"),
            ("cookie", b"c=3"),
        ],
        true,
    )
    .unwrap();
    assert_eq!(head.matches("cookie:").count(), 1, "{head}");
    assert!(head.contains("cookie: a=1; b=2; c=3\r\n"), "{head}");
}

#[test]
fn connection_specific_fields_are_malformed() {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        let r = read("GET", "http://h/", &[(name, b"x")], true);
        assert_eq!(
            r.unwrap_err(),
            Refusal::Malformed("connection-specific field"),
            "{name}"
        );
    }
    let r = read("GET", "http://h/", &[("te", b"gzip")], true);
    assert_eq!(r.unwrap_err(), Refusal::Malformed("te other than trailers"));
    let (head, _) = read("GET", "http://h/", &[("te", b"trailers")], true).unwrap();
    // Kept in the request's head for an HTTP/2 upstream; the HTTP/1.1 upstream head drops it
    // as hop-by-hop (`HeaderKind::Te`, upstream_head_tests).
    assert!(head.contains("te: trailers\r\n"), "{head}");
}

#[test]
fn authority_and_host_must_agree() {
    let r = read("GET", "http://a.example/", &[("host", b"b.example")], true);
    assert_eq!(
        r.unwrap_err(),
        Refusal::Malformed(":authority and host differ")
    );
    // Same name in another case: one host field, the authority's.
    let (head, _) = read("GET", "http://a.example/", &[("host", b"A.Example")], true).unwrap();
    assert_eq!(head.matches("host:").count(), 1);
    assert!(head.contains("host: a.example\r\n"));
    // No :authority: the Host field is the host.
    let (head, _) = read("GET", "/p", &[("host", b"c.example")], true).unwrap();
    assert!(head.contains("host: c.example\r\n"));
    // Neither: refused with 400 as an HTTP/1.1 head without Host is.
    let r = read("GET", "/p", &[], true);
    assert_eq!(r.unwrap_err(), invalid("missing Host header"));
    let r = read("GET", "/p", &[("host", b"a"), ("host", b"a")], true);
    assert_eq!(r.unwrap_err(), Refusal::Malformed("several host fields"));
    let r = read("GET", "/p", &[("host", b"a b")], true);
    assert_eq!(r.unwrap_err(), invalid("invalid Host header"));
}

#[test]
fn userinfo_in_the_authority_is_malformed() {
    let r = read("GET", "http://user:pw@a.example/", &[], true);
    assert_eq!(r.unwrap_err(), Refusal::Malformed("userinfo in :authority"));
}

#[test]
fn values_that_would_break_the_upstream_head_are_malformed() {
    for bad in [
        &b"a\r\nx: y"[..],
        b"a\nb",
        b"a\0b",
        b" lead",
        b"trail\t",
        b"del\x7f",
    ] {
        // `HeaderValue::from_bytes` refuses some of these already; build the rest unchecked.
        let Ok(v) = HeaderValue::from_bytes(bad) else {
            continue;
        };
        let mut map = HeaderMap::new();
        map.insert(HeaderName::from_static("x-a"), v);
        let mut out = OwnedHead::new();
        let uri: Uri = "http://h/p".parse().unwrap();
        let r = read_request_head(
            &Method::GET,
            &uri,
            &map,
            true,
            &HeadLimits::default(),
            &mut out,
        );
        assert_eq!(
            r.unwrap_err(),
            Refusal::Malformed("invalid field value"),
            "{bad:?}"
        );
    }
}

#[test]
fn content_length_must_be_one_number() {
    for bad in [&b"-1"[..], b"1,1", b" 1", b"0x10", b"99999999999999999999"] {
        let r = read("POST", "http://h/", &[("content-length", bad)], false);
        assert!(r.is_err(), "{bad:?}");
    }
    let r = read(
        "POST",
        "http://h/",
        &[("content-length", b"1"), ("content-length", b"1")],
        false,
    );
    assert_eq!(
        r.unwrap_err(),
        Refusal::Malformed("several content-length fields")
    );
}

#[test]
fn connect_is_refused_as_over_http11() {
    let mut out = OwnedHead::new();
    let uri: Uri = "a.example:443".parse().unwrap();
    let r = read_request_head(
        &Method::CONNECT,
        &uri,
        &HeaderMap::new(),
        false,
        &HeadLimits::default(),
        &mut out,
    );
    assert_eq!(r.unwrap_err(), invalid("CONNECT is not supported"));
}

#[test]
fn options_star_is_kept_and_star_is_for_options_only() {
    let (head, parsed) = read("OPTIONS", "*", &[("host", b"h")], true).unwrap();
    assert!(head.starts_with("OPTIONS *\r\n"), "{head}");
    assert_eq!(parsed.path.get(head.as_bytes()), b"*");
    let r = read("GET", "*", &[("host", b"h")], true);
    assert_eq!(r.unwrap_err(), invalid("invalid request target"));
}

#[test]
fn underscore_spellings_of_framing_fields_are_refused() {
    for name in ["content_length", "transfer_encoding"] {
        let r = read("POST", "http://h/", &[(name, b"5")], true);
        assert_eq!(
            r.unwrap_err(),
            invalid("underscore spelling of a framing header"),
            "{name}"
        );
    }
    let (_, _, owned) = read_with(
        "GET",
        "http://h/",
        &[("x_custom", b"1")],
        true,
        &HeadLimits::default(),
    )
    .unwrap();
    assert!(owned.fields().iter().any(|f| f.underscore));
}

#[test]
fn expect_100_continue_is_seen() {
    let (_, parsed) = read(
        "POST",
        "http://h/",
        &[("expect", b"100-continue"), ("content-length", b"3")],
        false,
    )
    .unwrap();
    assert!(parsed.expect_continue);
}

#[test]
fn the_limits_are_those_of_the_same_head_over_http11() {
    let limits = HeadLimits {
        max_head_bytes: 100,
        max_headers: 3,
        max_request_line_bytes: 30,
    };
    // `GET /` + ` HTTP/1.1` = 14 bytes of request line: within 30.
    assert!(read_with("GET", "http://h/", &[], true, &limits).is_ok());
    // 21 bytes of path + `GET ` + ` HTTP/1.1` = 34 > 30.
    let long = format!("http://h/{}", "p".repeat(20));
    let r = read_with("GET", &long, &[], true, &limits);
    assert_eq!(
        r.map(|_| ()).unwrap_err(),
        Refusal::Refused(RequestError::UriTooLong)
    );
    let many: [(&str, &[u8]); 3] = [("a", b"1"), ("b", b"1"), ("c", b"1")];
    let r = read_with("GET", "http://h/", &many, true, &limits);
    assert_eq!(
        r.map(|_| ()).unwrap_err(),
        Refusal::Refused(RequestError::TooManyHeaders),
        "host + 3 fields > 3"
    );
    let big = [("x-big", &[b'v'; 80][..])];
    let r = read_with("GET", "http://h/", &big, true, &limits);
    assert_eq!(
        r.map(|_| ()).unwrap_err(),
        Refusal::Refused(RequestError::HeadTooLarge)
    );
}
