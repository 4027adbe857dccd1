//! Unit tests of [`parse_request_head`]: one or more per refusal rule of the module (RFC 9112
//! framing, Host, request target, obs-fold, line endings, size limits), plus what `httparse`
//! alone would let through.

use super::*;

fn parse(buf: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    let mut headers = Vec::new();
    parse_request_head(buf, &HeadLimits::default(), &mut headers)
}

fn ok(buf: &[u8]) -> (RequestHead, Vec<HeaderField>) {
    let mut headers = Vec::new();
    let head = parse_request_head(buf, &HeadLimits::default(), &mut headers)
        .unwrap_or_else(|e| panic!("{e:?} for {}", String::from_utf8_lossy(buf)))
        .unwrap_or_else(|| panic!("incomplete: {}", String::from_utf8_lossy(buf)));
    (head, headers)
}

fn invalid(buf: &[u8]) -> &'static str {
    match parse(buf) {
        Err(RequestError::Invalid(r)) => r,
        other => panic!("{other:?} for {}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn parses_simple_get() {
    let buf =
        b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nX-Empty:\r\n\r\nNEXT";
    let (h, hs) = ok(buf);
    assert_eq!(h.method, Method::Get);
    assert_eq!(h.method_span.get(buf), b"GET");
    assert_eq!(h.target.get(buf), b"/a/b?x=1&y");
    assert_eq!(h.path.get(buf), b"/a/b");
    assert_eq!(h.query.map(|q| q.get(buf)), Some(&b"x=1&y"[..]));
    assert_eq!(h.version_minor, 1);
    assert_eq!(h.request_line.get(buf), b"GET /a/b?x=1&y HTTP/1.1\r\n");
    assert_eq!(h.head_len, buf.len() - 4);
    assert_eq!(h.host.map(|s| s.get(buf)), Some(&b"example.com:8080"[..]));
    assert_eq!(h.body, BodyFraming::None);
    assert!(h.keep_alive && !h.expect_continue && !h.upgrade);
    assert_eq!(hs.len(), 3);
    assert_eq!(hs[0].kind, HeaderKind::Host);
    assert_eq!(hs[1].name.get(buf), b"Accept");
    assert_eq!(hs[1].value.get(buf), b"*/*");
    assert_eq!(hs[1].line.get(buf), b"Accept: */*\r\n");
    assert_eq!(hs[2].value.get(buf), b"");
    assert_eq!(hs[2].line.get(buf), b"X-Empty:\r\n");
    let (h, _) = ok(b"GET /p? HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(h.query.map(|q| q.len()), Some(0));
}

#[test]
fn header_values_trimmed_lines_verbatim() {
    let buf = b"POST /u HTTP/1.1\r\nHost: a\r\nX-A: \t v  w \t\r\nContent-Length:  5 \r\n\r\nhello";
    let (h, hs) = ok(buf);
    assert_eq!(hs[1].value.get(buf), b"v  w");
    assert_eq!(hs[1].line.get(buf), b"X-A: \t v  w \t\r\n");
    assert_eq!(h.body, BodyFraming::Length(5));
    assert_eq!(&buf[h.head_len..], b"hello");
}

#[test]
fn every_prefix_is_incomplete() {
    let buf = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for i in 0..buf.len() {
        assert_eq!(parse(&buf[..i]), Ok(None), "prefix {i}");
    }
    assert_eq!(ok(buf).0.body, BodyFraming::Chunked);
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    for buf in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    ] {
        assert_eq!(invalid(buf), "both Content-Length and Transfer-Encoding");
    }
}

#[test]
fn rejects_several_content_length_even_equal() {
    for buf in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\nContent-Length: 4\r\n\r\n",
    ] {
        assert_eq!(invalid(buf), "several Content-Length headers");
    }
}

#[test]
fn rejects_bad_content_length_values() {
    for v in [
        "+3",
        "-3",
        "3 3",
        "3,3",
        "3, 3",
        "0x3",
        "3a",
        "",
        "18446744073709551616",
        "99999999999999999999999999",
    ] {
        let buf = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
        assert_eq!(invalid(buf.as_bytes()), "invalid Content-Length", "{v:?}");
    }
    let (h, _) = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Length(u64::MAX));
    let (h, _) = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.body, BodyFraming::Length(0));
}

#[test]
fn rejects_transfer_encoding_other_than_chunked() {
    for te in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked;x=1\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chun ked\r\n",
        "Transfer-Encoding:\r\n",
    ] {
        let buf = format!("POST / HTTP/1.1\r\nHost: a\r\n{te}\r\n");
        assert_eq!(
            invalid(buf.as_bytes()),
            "Transfer-Encoding other than chunked",
            "{te:?}"
        );
    }
    for te in ["chunked", "CHUNKED", "Chunked \t", "\tchunked"] {
        let buf = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(ok(buf.as_bytes()).0.body, BodyFraming::Chunked, "{te:?}");
    }
}

#[test]
fn rejects_transfer_encoding_on_http10() {
    let buf = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(invalid(buf), "Transfer-Encoding on HTTP/1.0");
}

#[test]
fn rejects_obs_fold() {
    for buf in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    ] {
        assert_eq!(invalid(buf), "obs-fold line");
    }
}

#[test]
fn rejects_whitespace_before_colon() {
    for buf in [
        &b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 0\r\n\r\n",
    ] {
        assert_eq!(invalid(buf), "invalid header field name");
    }
}

#[test]
fn rejects_empty_field_name() {
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n"),
        "invalid header field name"
    );
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"),
        "invalid header field name"
    );
}

#[test]
fn rejects_nul_cr_lf_in_values() {
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"),
        "invalid byte in header field value"
    );
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n"),
        "invalid byte in header field value"
    );
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"),
        "bare CR in head"
    );
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nb: c\r\n\r\n"),
        "bare LF line ending"
    );
}

#[test]
fn rejects_bare_lf_line_endings() {
    for buf in [
        &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(invalid(buf), "bare LF line ending");
    }
}

#[test]
fn httparse_alone_is_lenient() {
    // What the pre-scan exists for: httparse accepts bare LF line endings and any number of
    // leading empty lines, which a backend may frame differently.
    let mut hs = [httparse::EMPTY_HEADER; 4];
    let mut req = httparse::Request::new(&mut hs);
    let lenient = b"\n\n\r\n\nGET / HTTP/1.1\nHost: a\nX: b\n\n";
    assert!(matches!(
        req.parse(lenient),
        Ok(httparse::Status::Complete(_))
    ));
    assert!(parse(lenient).is_err());
}

#[test]
fn rejects_missing_host_on_http11() {
    assert_eq!(invalid(b"GET / HTTP/1.1\r\n\r\n"), "missing Host header");
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n"),
        "missing Host header"
    );
    let (h, _) = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.host, None);
    assert_eq!(h.version_minor, 0);
}

#[test]
fn rejects_several_host() {
    assert_eq!(
        invalid(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        "several Host headers"
    );
    assert_eq!(
        invalid(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        "several Host headers"
    );
}

#[test]
fn rejects_invalid_host_value() {
    for v in ["", "a b", "a/b", "a@b", "a\"b", "a\\b", "\u{e9}"] {
        let buf = format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n");
        assert_eq!(invalid(buf.as_bytes()), "invalid Host header", "{v:?}");
    }
    ok(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    ok(b"GET / HTTP/1.1\r\nHost: my-host_1.example.COM\r\n\r\n");
}

#[test]
fn rejects_invalid_targets() {
    for target in [
        "a/b",
        "*",
        "/caf\u{e9}",
        "#frag",
        "ftp://a/b",
        "http://a",
        "http://a?x",
        "http:///x",
        "http://user@a/x",
        "//",
    ] {
        let buf = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = parse(buf.as_bytes());
        if target == "//" {
            assert!(r.is_ok(), "{target}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(RequestError::Invalid(_))),
                "{target}: {r:?}"
            );
        }
    }
    // controls and spaces are refused by httparse itself
    for buf in [
        &b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert!(matches!(parse(buf), Err(RequestError::Invalid(_))));
    }
}

/// A fragment is cut off the target (the one rule over both protocols: the `h2` crate drops
/// it from `:path`), so neither the path nor the query carries it; a target that is only a
/// fragment is refused.
#[test]
fn a_fragment_is_cut_off_the_target() {
    for (target, path, query) in [
        ("/a#frag", "/a", None),
        ("/a?x=1#frag", "/a", Some("x=1")),
        ("/a?x=1#", "/a", Some("x=1")),
        ("/public#/../private", "/public", None),
        ("/a#b?c=d", "/a", None),
        ("http://a/x?q#f", "/x", Some("q")),
    ] {
        let buf = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let (h, _) = ok(buf.as_bytes());
        let b = buf.as_bytes();
        assert_eq!(h.path.get(b), path.as_bytes(), "{target}");
        assert_eq!(
            h.query.map(|q| q.get(b)),
            query.map(str::as_bytes),
            "{target}"
        );
        assert!(!h.target.get(b).contains(&b'#'), "{target}");
    }
    assert_eq!(
        invalid(b"GET #a HTTP/1.1\r\nHost: a\r\n\r\n"),
        "invalid request target"
    );
}

#[test]
fn connect_is_refused() {
    assert_eq!(
        invalid(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
        "CONNECT is not supported"
    );
    assert_eq!(
        invalid(b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"),
        "CONNECT is not supported"
    );
}

#[test]
fn accepts_asterisk_for_options() {
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    let (h, _) = ok(buf);
    assert_eq!(h.method, Method::Options);
    assert_eq!(h.path.get(buf), b"*");
    assert_eq!(h.query, None);
}

#[test]
fn absolute_form_needs_matching_host() {
    let buf = b"GET http://Example.com:80/p?q HTTP/1.1\r\nHost: example.com:80\r\n\r\n";
    let (h, _) = ok(buf);
    assert_eq!(h.target.get(buf), b"http://Example.com:80/p?q");
    assert_eq!(h.path.get(buf), b"/p");
    assert_eq!(h.query.map(|q| q.get(buf)), Some(&b"q"[..]));
    assert_eq!(h.host.map(|s| s.get(buf)), Some(&b"example.com:80"[..]));
    ok(b"GET HTTPS://a/ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        invalid(b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"),
        "Host differs from the target authority"
    );
    assert_eq!(
        invalid(b"GET http://a/ HTTP/1.1\r\n\r\n"),
        "missing Host header"
    );
}

#[test]
fn unsupported_version_is_505() {
    for v in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.1"] {
        let buf = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(
            parse(buf.as_bytes()),
            Err(RequestError::UnsupportedVersion),
            "{v}"
        );
    }
    assert_eq!(RequestError::UnsupportedVersion.status(), 505);
}

#[test]
fn garbage_request_line_is_400() {
    for line in [
        "GET / http/1.1",
        "GET / HTTP/1",
        "GET / HTTP/11.1",
        "GET / HTTP/1.1 ",
        "GET  / HTTP/1.1",
        "GET /  HTTP/1.1",
        "GET /",
        "GET",
        "G(T / HTTP/1.1",
        "/ HTTP/1.1",
        "\u{1}",
    ] {
        let buf = format!("{line}\r\nHost: a\r\n\r\n");
        let r = parse(buf.as_bytes());
        assert!(
            matches!(r, Err(RequestError::Invalid(_))),
            "{line:?}: {r:?}"
        );
    }
    assert!(matches!(
        parse(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Err(RequestError::Invalid(_))
    ));
}

#[test]
fn head_too_large_431() {
    let limits = HeadLimits {
        max_head_bytes: 64,
        ..HeadLimits::default()
    };
    let mut hs = Vec::new();
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(40));
    let r = parse_request_head(big.as_bytes(), &limits, &mut hs);
    assert_eq!(r, Err(RequestError::HeadTooLarge));
    assert_eq!(RequestError::HeadTooLarge.status(), 431);
    // still incomplete, but already as long as the limit
    let r = parse_request_head(&big.as_bytes()[..64], &limits, &mut hs);
    assert_eq!(r, Err(RequestError::HeadTooLarge));
    let r = parse_request_head(&big.as_bytes()[..63], &limits, &mut hs);
    assert_eq!(r, Ok(None));
}

#[test]
fn too_many_headers_431() {
    let limits = HeadLimits {
        max_headers: 3,
        ..HeadLimits::default()
    };
    let mut hs = Vec::new();
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(parse_request_head(buf, &limits, &mut hs).is_ok());
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    let r = parse_request_head(buf, &limits, &mut hs);
    assert_eq!(r, Err(RequestError::TooManyHeaders));
    assert_eq!(RequestError::TooManyHeaders.status(), 431);
    // above the stack array of httparse, whatever the configured limit
    let limits = HeadLimits {
        max_headers: 10_000,
        max_head_bytes: 1 << 20,
        ..HeadLimits::default()
    };
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for _ in 0..MAX_PARSED_HEADERS {
        buf.extend_from_slice(b"A: 1\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    let r = parse_request_head(&buf, &limits, &mut hs);
    assert_eq!(r, Err(RequestError::TooManyHeaders));
}

#[test]
fn request_line_too_long_414() {
    let limits = HeadLimits {
        max_request_line_bytes: 20,
        ..HeadLimits::default()
    };
    let mut hs = Vec::new();
    let buf = b"GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n";
    let r = parse_request_head(buf, &limits, &mut hs);
    assert_eq!(r, Err(RequestError::UriTooLong));
    assert_eq!(r.unwrap_err().status(), 414);
    let r = parse_request_head(&buf[..22], &limits, &mut hs);
    assert_eq!(r, Err(RequestError::UriTooLong));
    let r = parse_request_head(&buf[..20], &limits, &mut hs);
    assert_eq!(r, Ok(None));
}

#[test]
fn upgrade_flag() {
    let (h, hs) =
        ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(h.upgrade && h.keep_alive);
    assert!(hs
        .iter()
        .all(|f| f.kind == HeaderKind::Host || f.hop_by_hop));
    let (h, _) = ok(b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\n\r\n");
    assert!(!h.upgrade);
}

#[test]
fn leading_empty_lines_accepted_up_to_four() {
    let buf = b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (h, _) = ok(buf);
    assert_eq!(h.request_line.start, 8);
    assert_eq!(h.method_span.get(buf), b"GET");
    assert_eq!(h.head_len, buf.len());
    assert_eq!(
        invalid(b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        "empty line before the start line"
    );
}

#[test]
fn keep_alive_rules() {
    let ka = |b: &[u8]| ok(b).0.keep_alive;
    assert!(ka(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
}

#[test]
fn expect_continue_flag() {
    assert!(
        ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
            .0
            .expect_continue
    );
    assert!(
        !ok(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n")
            .0
            .expect_continue
    );
    assert!(
        !ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
            .0
            .expect_continue
    );
}

#[test]
fn connection_named_headers_are_hop_by_hop() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret, content-length, host\r\nX-Secret: 1\r\nContent-Length: 0\r\nKeep-Alive: 5\r\nX-Other: 2\r\n\r\n";
    let (_, hs) = ok(buf);
    let hop: Vec<&[u8]> = hs
        .iter()
        .filter(|h| h.hop_by_hop)
        .map(|h| h.name.get(buf))
        .collect();
    assert_eq!(hop, vec![&b"Connection"[..], b"X-Secret", b"Keep-Alive"]);
}

#[test]
fn method_classification() {
    for (m, want, idem) in [
        ("GET", Method::Get, true),
        ("HEAD", Method::Head, true),
        ("POST", Method::Post, false),
        ("PUT", Method::Put, true),
        ("DELETE", Method::Delete, true),
        ("OPTIONS", Method::Options, true),
        ("PATCH", Method::Patch, false),
        ("TRACE", Method::Trace, true),
        ("PROPFIND", Method::Other, false),
        ("get", Method::Other, false),
    ] {
        let buf = format!("{m} / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (h, _) = ok(buf.as_bytes());
        assert_eq!(h.method, want);
        assert_eq!(h.method.is_idempotent(), idem, "{m}");
        assert_eq!(h.method_span.get(buf.as_bytes()), m.as_bytes());
    }
}

#[test]
fn error_statuses_and_reasons() {
    assert_eq!(RequestError::UriTooLong.status(), 414);
    assert_eq!(RequestError::Invalid("x").status(), 400);
    assert_eq!(RequestError::Invalid("x").reason(), "x");
    assert_eq!(
        RequestError::HeadTooLarge.to_string(),
        "request header section too large (431)"
    );
}

#[test]
fn never_panics_on_mutations() {
    let base =
        b"POST /a?b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: x\r\nX: y\r\n\r\nab";
    let limits = HeadLimits {
        max_head_bytes: 90,
        max_headers: 4,
        max_request_line_bytes: 30,
    };
    let mut hs = Vec::new();
    let mut buf = base.to_vec();
    for i in 0..base.len() {
        for b in [
            0u8, b'\r', b'\n', b' ', b'\t', b':', b'?', b'/', 0x80, 0xff, b'a',
        ] {
            buf.copy_from_slice(base);
            buf[i] = b;
            for end in [i, i + 1, buf.len()] {
                let _ = parse_request_head(&buf[..end.min(buf.len())], &limits, &mut hs);
                if let Ok(Some(h)) = parse_request_head(&buf, &limits, &mut hs) {
                    assert!(h.head_len <= buf.len());
                    for f in &hs {
                        assert!(f.line.end as usize <= h.head_len);
                    }
                }
            }
        }
    }
}

#[test]
fn reuses_header_vec_without_growth() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    let mut hs = Vec::with_capacity(8);
    let cap = hs.capacity();
    let t = std::time::Instant::now();
    for _ in 0..10_000 {
        let h = parse_request_head(buf, &HeadLimits::default(), &mut hs);
        assert!(matches!(h, Ok(Some(_))));
    }
    assert_eq!(hs.len(), 3);
    assert_eq!(hs.capacity(), cap);
    // sanity only (debug build, shared machine): real numbers come from the benches
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn underscore_spellings_of_framing_headers_are_refused() {
    for name in [
        "Content_Length",
        "content_length",
        "Transfer_Encoding",
        "TRANSFER_ENCODING",
        "Transfer-Encoding_",
    ] {
        let buf = format!("POST / HTTP/1.1\r\nHost: a\r\n{name}: 5\r\n\r\nhello");
        let got = parse(buf.as_bytes());
        if name.len() == 17 || name.len() == 14 {
            assert_eq!(
                got,
                Err(RequestError::Invalid(
                    "underscore spelling of a framing header"
                )),
                "{name}"
            );
        } else {
            assert!(got.is_ok(), "{name}: {got:?}");
        }
    }
    // Other names with underscores stay allowed.
    let (_, hs) = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX_Custom_Header: 1\r\nContent_Type: x\r\n\r\n");
    assert_eq!(hs.len(), 3);
}
