//! The HTTP/1.1 request head parser. Properties: no panic; an accepted head has unambiguous
//! framing (re-derived from the raw bytes: CRLF-only lines, no obs-fold, at most one CL or one
//! exact `chunked` TE and never both, one Host on HTTP/1.1, every header line accounted for);
//! every strict prefix of an accepted head is "incomplete", never another verdict; and the head
//! Torii forwards (copy + Host + framing) parses back to the same method, target and framing,
//! and copies to the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::http1::{
    copy_request_head, parse_request_head, BodyFraming, HeadLimits, HeaderField, HeaderKind,
    RequestHead,
};
use torii_fuzz::framing::{check_lines, digits, framing_headers, is_chunked};
use torii_fuzz::split_selector;

const SMALL: HeadLimits = HeadLimits {
    max_head_bytes: 256,
    max_headers: 8,
    max_request_line_bytes: 64,
};
const WIDE: HeadLimits = HeadLimits {
    max_head_bytes: 1 << 20,
    max_headers: 256,
    max_request_line_bytes: 1 << 20,
};

/// What the proxy forwards for an accepted head: the copy without Host/Expect, then Host and
/// the framing the proxy adds (upstream_call.rs does the same).
fn forward(buf: &[u8], head: &RequestHead, headers: &[HeaderField], out: &mut Vec<u8>) {
    out.clear();
    copy_request_head(buf, head, head.path.get(buf), headers, false, out, |f| {
        matches!(f.kind, HeaderKind::Host | HeaderKind::Expect)
    });
    out.extend_from_slice(b"host: ");
    match head.host {
        Some(h) => out.extend_from_slice(h.get(buf)),
        None => out.extend_from_slice(b"fuzz.test"),
    }
    out.extend_from_slice(b"\r\n");
    if head.body == BodyFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fuzz_target!(|data: &[u8]| {
    let (sel, buf) = split_selector(data);
    let limits = if sel & 1 == 0 { HeadLimits::default() } else { SMALL };
    let mut headers = Vec::new();
    let head = match parse_request_head(buf, &limits, &mut headers) {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(e) => {
            assert!(matches!(e.status(), 400 | 414 | 431 | 505), "{e:?}");
            return;
        }
    };
    assert!(head.head_len <= buf.len());
    let raw = &buf[..head.head_len];
    let lines = check_lines(raw);
    assert_eq!(lines, headers.len(), "a header line is missing from the parsed list");
    assert!(headers.len() <= limits.max_headers);
    assert!(head.head_len <= limits.max_head_bytes + 8, "head over its limit");

    // Framing, from the raw header values.
    let f = framing_headers(buf, &headers);
    assert!(f.content_length.len() <= 1, "several Content-Length accepted");
    assert!(f.transfer_encoding.len() <= 1, "several Transfer-Encoding accepted");
    assert!(
        f.content_length.is_empty() || f.transfer_encoding.is_empty(),
        "Content-Length and Transfer-Encoding accepted together"
    );
    assert!(f.host.len() <= 1, "several Host accepted");
    if head.version_minor == 1 {
        assert_eq!(f.host.len(), 1, "HTTP/1.1 without Host accepted");
    }
    match head.body {
        BodyFraming::None => {
            assert!(f.content_length.is_empty() && f.transfer_encoding.is_empty());
        }
        BodyFraming::Length(n) => {
            assert_eq!(f.content_length.first().and_then(|v| digits(v)), Some(n));
        }
        BodyFraming::Chunked => {
            assert_eq!(head.version_minor, 1, "Transfer-Encoding on HTTP/1.0 accepted");
            assert!(f.transfer_encoding.first().is_some_and(|v| is_chunked(v)));
        }
    }

    // Split reads: every strict prefix is incomplete.
    let cut = usize::from(sel >> 1) % head.head_len;
    for k in [cut, head.head_len - 1] {
        let mut h2 = Vec::new();
        assert_eq!(
            parse_request_head(&buf[..k], &limits, &mut h2),
            Ok(None),
            "prefix of {k} bytes of an accepted head"
        );
    }

    // Forwarded head: parses back to the same request, and copies to the same bytes.
    let mut out = Vec::new();
    forward(buf, &head, &headers, &mut out);
    let mut headers2 = Vec::new();
    let again = match parse_request_head(&out, &WIDE, &mut headers2) {
        Ok(Some(h)) => h,
        other => panic!("forwarded head refused: {other:?}\n{}", String::from_utf8_lossy(&out)),
    };
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.method, head.method);
    assert_eq!(again.method_span.get(&out), head.method_span.get(buf));
    assert_eq!(again.path.get(&out), head.path.get(buf));
    assert_eq!(again.query.map(|q| q.get(&out)), head.query.map(|q| q.get(buf)));
    assert_eq!(again.body, head.body);
    assert_eq!(again.version_minor, 1);
    let mut out2 = Vec::new();
    forward(&out, &again, &headers2, &mut out2);
    assert_eq!(out, out2, "forwarding is not stable");
});
