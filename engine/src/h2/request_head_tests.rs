//! Table tests of `render_request_head`: every rule of RFC 9113 §8 it holds, and that what it
//! renders parses back, with the HTTP/1.1 parser, to the same request.

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

fn render(
    method: &str,
    uri: &str,
    fields: &[(&str, &[u8])],
    eos: bool,
) -> Result<(String, BodyFraming), Malformed> {
    let mut out = Vec::new();
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let u: Uri = uri.parse().unwrap();
    let framing = render_request_head(&m, &u, &headers(fields), eos, &mut out)?;
    Ok((String::from_utf8(out).unwrap(), framing))
}

#[test]
fn a_plain_get_becomes_an_http11_get_with_the_authority_as_host() {
    let (head, framing) = render(
        "GET",
        "https://api.example/a/b?x=1",
        &[("accept", b"*/*"), ("user-agent", b"curl")],
        true,
    )
    .unwrap();
    assert_eq!(
        head,
        "GET /a/b?x=1 HTTP/1.1\r\nhost: api.example\r\naccept: */*\r\nuser-agent: curl\r\n\r\n"
    );
    assert_eq!(framing, BodyFraming::None);
}

#[test]
fn the_rendered_head_parses_back_to_the_same_request() {
    let (head, _) = render(
        "POST",
        "https://api.example:8443/up?q",
        &[("content-length", b"12"), ("x-a", b"1")],
        false,
    )
    .unwrap();
    let mut fields = Vec::new();
    let parsed = http1::parse_request_head(head.as_bytes(), &HeadLimits::default(), &mut fields)
        .unwrap()
        .unwrap();
    assert_eq!(parsed.method, http1::Method::Post);
    assert_eq!(parsed.path.get(head.as_bytes()), b"/up");
    assert_eq!(
        parsed.host.unwrap().get(head.as_bytes()),
        b"api.example:8443"
    );
    assert_eq!(parsed.body, http1::BodyFraming::Length(12));
    assert_eq!(parsed.head_len, head.len());
}

#[test]
fn a_body_without_content_length_is_chunked() {
    let (head, framing) = render("POST", "http://h/p", &[], false).unwrap();
    assert!(
        head.ends_with("transfer-encoding: chunked\r\n\r\n"),
        "{head}"
    );
    assert_eq!(framing, BodyFraming::Chunked);
    let (head, framing) = render("POST", "http://h/p", &[("content-length", b"0")], true).unwrap();
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
    assert_eq!(framing, BodyFraming::None);
    let (_, framing) = render("PUT", "http://h/p", &[("content-length", b"7")], false).unwrap();
    assert_eq!(framing, BodyFraming::Length(7));
}

#[test]
fn cookies_are_joined_into_one_field() {
    let (head, _) = render(
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
        let r = render("GET", "http://h/", &[(name, b"x")], true);
        assert_eq!(
            r.unwrap_err(),
            Malformed("connection-specific field"),
            "{name}"
        );
    }
    let r = render("GET", "http://h/", &[("te", b"gzip")], true);
    assert_eq!(r.unwrap_err(), Malformed("te other than trailers"));
    let (head, _) = render("GET", "http://h/", &[("te", b"trailers")], true).unwrap();
    assert!(
        !head.contains("te:"),
        "te: trailers is not forwarded: {head}"
    );
}

#[test]
fn authority_and_host_must_agree() {
    let r = render("GET", "http://a.example/", &[("host", b"b.example")], true);
    assert_eq!(r.unwrap_err(), Malformed(":authority and host differ"));
    // Same name in another case: one host line, the authority's.
    let (head, _) = render("GET", "http://a.example/", &[("host", b"A.Example")], true).unwrap();
    assert_eq!(head.matches("host:").count(), 1);
    assert!(head.contains("host: a.example\r\n"));
    // No :authority: the Host field is the host.
    let (head, _) = render("GET", "/p", &[("host", b"c.example")], true).unwrap();
    assert!(head.contains("host: c.example\r\n"));
    // Neither: no host line; the HTTP/1.1 parser answers 400 as for an HTTP/1.1 client.
    let (head, _) = render("GET", "/p", &[], true).unwrap();
    assert!(!head.contains("host:"));
    let r = render("GET", "/p", &[("host", b"a"), ("host", b"a")], true);
    assert_eq!(r.unwrap_err(), Malformed("several host fields"));
}

#[test]
fn userinfo_in_the_authority_is_malformed() {
    let r = render("GET", "http://user:pw@a.example/", &[], true);
    assert_eq!(r.unwrap_err(), Malformed("userinfo in :authority"));
}

#[test]
fn values_that_would_break_the_http11_head_are_malformed() {
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
        let mut out = Vec::new();
        let r = render_request_head(&Method::GET, &"/p".parse().unwrap(), &map, true, &mut out);
        assert_eq!(r.unwrap_err(), Malformed("invalid field value"), "{bad:?}");
    }
}

#[test]
fn content_length_must_be_one_number() {
    for bad in [&b"-1"[..], b"1,1", b" 1", b"0x10", b"99999999999999999999"] {
        let r = render("POST", "http://h/", &[("content-length", bad)], false);
        assert!(r.is_err(), "{bad:?}");
    }
    let r = render(
        "POST",
        "http://h/",
        &[("content-length", b"1"), ("content-length", b"1")],
        false,
    );
    assert_eq!(r.unwrap_err(), Malformed("several content-length fields"));
}

#[test]
fn connect_becomes_a_connect_the_http11_parser_refuses() {
    let mut out = Vec::new();
    let uri: Uri = "a.example:443".parse().unwrap();
    render_request_head(&Method::CONNECT, &uri, &HeaderMap::new(), false, &mut out).unwrap();
    let mut fields = Vec::new();
    let r = http1::parse_request_head(&out, &HeadLimits::default(), &mut fields);
    assert!(r.is_err(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn options_star_is_kept() {
    let (head, _) = render("OPTIONS", "*", &[("host", b"h")], true).unwrap();
    assert!(head.starts_with("OPTIONS * HTTP/1.1\r\n"), "{head}");
}
