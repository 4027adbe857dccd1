//! The upstream response head parser. Properties: no panic; an accepted head has unambiguous
//! framing (CRLF-only lines, no obs-fold, never both CL and TE, at most one CL, TE exactly
//! `chunked` and only on HTTP/1.1, no body for HEAD/1xx/204/304, close-delimited bodies never
//! reusable, a 1xx/204/304 that announces a body never reusable and never interim); every
//! strict prefix is "incomplete"; and the head Torii forwards to the client (copy + its own
//! framing) parses back to the same status and framing, with no framing field on 1xx/204/304.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::http1::{
    copy_response_head, parse_response_head, HeadLimits, HeaderField, Method, ResponseBody,
    ResponseHead,
};
use torii_fuzz::framing::{check_lines, digits, framing_headers, is_chunked};
use torii_fuzz::split_selector;

const METHODS: [Method; 4] = [Method::Get, Method::Head, Method::Post, Method::Options];

fn forward(buf: &[u8], head: &ResponseHead, headers: &[HeaderField], out: &mut Vec<u8>) {
    out.clear();
    copy_response_head(buf, head, headers, out, |_| false);
    if head.body == ResponseBody::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fuzz_target!(|data: &[u8]| {
    let (sel, buf) = split_selector(data);
    let method = METHODS[usize::from(sel & 3)];
    let limits = HeadLimits::default();
    let mut headers = Vec::new();
    let head = match parse_response_head(buf, &limits, method, &mut headers) {
        Ok(Some(h)) => h,
        Ok(None) | Err(_) => return,
    };
    assert!((100..=599).contains(&head.status));
    let raw = &buf[..head.head_len];
    assert_eq!(check_lines(raw), headers.len());
    assert!(raw.starts_with(b"HTTP/1."), "status line without HTTP/1.x");
    let f = framing_headers(buf, &headers);
    assert!(f.content_length.len() <= 1 && f.transfer_encoding.len() <= 1);
    assert!(f.content_length.is_empty() || f.transfer_encoding.is_empty());
    if let Some(te) = f.transfer_encoding.first() {
        assert!(is_chunked(te) && head.version_minor == 1);
    }
    if let Some(cl) = f.content_length.first() {
        assert!(digits(cl).is_some(), "invalid Content-Length accepted");
    }
    let no_body = method == Method::Head
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304;
    match head.body {
        ResponseBody::None => assert!(no_body),
        ResponseBody::Length(n) => {
            assert!(!no_body);
            assert_eq!(f.content_length.first().and_then(|v| digits(v)), Some(n));
        }
        ResponseBody::Chunked => assert!(!no_body && !f.transfer_encoding.is_empty()),
        ResponseBody::UntilClose => {
            assert!(!no_body && f.content_length.is_empty() && f.transfer_encoding.is_empty());
            assert!(!head.keep_alive, "close-delimited response marked reusable");
        }
    }
    if head.status == 101 {
        assert!(!head.keep_alive);
    }
    let no_content = (100..200).contains(&head.status) || head.status == 204 || head.status == 304;
    let announced = !f.transfer_encoding.is_empty()
        || f.content_length
            .first()
            .and_then(|v| digits(v))
            .is_some_and(|n| n > 0);
    if no_content && announced {
        assert!(!head.keep_alive, "bytes after a bodiless head read as the next");
        assert!(head.status >= 200 || head.status == 101, "interim head with a body");
    }

    let cut = usize::from(sel >> 2) % head.head_len;
    for k in [cut, head.head_len - 1] {
        let r = parse_response_head(&buf[..k], &limits, method, &mut Vec::new());
        assert_eq!(r, Ok(None), "prefix of {k} bytes of an accepted head");
    }

    let mut out = Vec::new();
    forward(buf, &head, &headers, &mut out);
    let mut headers2 = Vec::new();
    let wide = HeadLimits { max_head_bytes: 1 << 20, ..limits };
    let again = match parse_response_head(&out, &wide, method, &mut headers2) {
        Ok(Some(h)) => h,
        other => panic!("forwarded head refused: {other:?}\n{}", String::from_utf8_lossy(&out)),
    };
    assert_eq!(again.status, head.status);
    assert_eq!(again.body, head.body);
    assert_eq!(again.head_len, out.len());
    if no_content {
        let f2 = framing_headers(&out, &headers2);
        assert!(f2.content_length.is_empty() && f2.transfer_encoding.is_empty());
    }
    let mut out2 = Vec::new();
    forward(&out, &again, &headers2, &mut out2);
    assert_eq!(out, out2, "forwarding is not stable");
});
