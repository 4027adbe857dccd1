//! Property tests across the module: a well-formed request built from random parts survives
//! parse → [`copy_request_head`] (+ the caller's own framing headers) → parse with the same
//! method, target, header names and values (minus the dropped ones) and framing; and no input,
//! however random, makes a parser or the chunked decoder panic.

use proptest::prelude::*;

use super::*;

/// Header names the generator draws from: ordinary ones, and every kind the copy must drop.
const NAMES: &[&str] = &[
    "Accept",
    "User-Agent",
    "Cookie",
    "X-Request-Id",
    "x-custom",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Authorization",
    "Proxy-Connection",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "Otoroshi-State",
    "Otoroshi-Claim",
    "Otoroshi-Client-Secret",
    "Raw-Request-Uri",
    "Connection",
];

fn header_strategy() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        prop::sample::select(NAMES).prop_map(str::to_owned),
        "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}".prop_filter("plain name", |n| {
            HeaderKind::classify(n.as_bytes()) == HeaderKind::Other
        }),
    ];
    let value = prop_oneof![
        "[ \t]{0,2}[!-~]([ -~]{0,30}[!-~])?[ \t]{0,2}",
        Just(String::new()),
        prop::sample::select(&["close", "keep-alive", "x-custom, Accept", "upgrade"][..])
            .prop_map(str::to_owned),
    ];
    (name, value).prop_filter("Connection values are tokens", |(n, v)| {
        !n.eq_ignore_ascii_case("connection") || !v.trim().is_empty()
    })
}

#[derive(Debug, Clone)]
struct Parts {
    method: &'static str,
    target: String,
    minor: u8,
    host: Option<String>,
    headers: Vec<(String, String)>,
    framing: u8,
    length: u64,
}

fn parts_strategy() -> impl Strategy<Value = Parts> {
    (
        prop::sample::select(
            &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
            ][..],
        ),
        "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,10}){1,4}(\\?[A-Za-z0-9=&%./?-]{0,20})?",
        0u8..=1,
        proptest::option::weighted(0.9, "[a-z0-9-]{1,12}(\\.[a-z]{2,5})?(:[0-9]{2,5})?"),
        prop::collection::vec(header_strategy(), 0..12),
        0u8..3,
        any::<u64>(),
    )
        .prop_map(
            |(method, target, minor, host, headers, framing, length)| Parts {
                method,
                target,
                minor,
                host: if minor == 1 && host.is_none() {
                    Some("fallback".into())
                } else {
                    host
                },
                headers,
                framing: if minor == 0 && framing == 2 {
                    1
                } else {
                    framing
                },
                length,
            },
        )
}

fn build(p: &Parts) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.{}\r\n", p.method, p.target, p.minor).into_bytes();
    let mut push = |n: &str, v: &str| out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
    if let Some(h) = &p.host {
        push("Host", &format!(" {h}"));
    }
    for (i, (n, v)) in p.headers.iter().enumerate() {
        push(n, v);
        if i == 1 {
            match p.framing {
                1 => push("Content-Length", &format!(" {}", p.length)),
                2 => push("Transfer-Encoding", " chunked"),
                _ => {}
            }
        }
    }
    if p.headers.len() < 2 {
        match p.framing {
            1 => push("Content-Length", &p.length.to_string()),
            2 => push("Transfer-Encoding", "Chunked"),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// (name, value) pairs of the headers a forwarded copy must keep, in order.
fn kept(buf: &[u8], headers: &[HeaderField], dropped: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .filter(|h| {
            !h.hop_by_hop
                && !matches!(
                    h.kind,
                    HeaderKind::OtoroshiSpoofable
                        | HeaderKind::XForwardedFor
                        | HeaderKind::XForwardedProto
                        | HeaderKind::XForwardedHost
                )
                && !eq_ignore_case(h.name.get(buf), dropped)
        })
        .map(|h| (h.name.get(buf).to_vec(), h.value.get(buf).to_vec()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn copy_then_reparse_roundtrips(p in parts_strategy()) {
        let limits = HeadLimits::default();
        let buf = build(&p);
        let mut hs = Vec::new();
        let first = parse_request_head(&buf, &limits, &mut hs);
        let first = match first {
            Ok(Some(h)) => h,
            other => return Err(TestCaseError::fail(format!("{other:?}: {}", String::from_utf8_lossy(&buf)))),
        };
        prop_assert_eq!(first.head_len, buf.len());
        prop_assert_eq!(first.target.get(&buf), p.target.as_bytes());

        let mut out = Vec::new();
        copy_request_head(&buf, &first, first.path.get(&buf), &hs, true, &mut out, |h| eq_ignore_case(h.name.get(&buf), b"cookie"));
        if first.host.is_none() {
            write_header(&mut out, b"host", b"added");
        }
        if first.body == BodyFraming::Chunked {
            write_header(&mut out, b"transfer-encoding", b"chunked");
        }
        out.extend_from_slice(b"\r\n");

        let mut hs2 = Vec::new();
        let second = parse_request_head(&out, &limits, &mut hs2);
        let second = match second {
            Ok(Some(h)) => h,
            other => return Err(TestCaseError::fail(format!("{other:?}: {}", String::from_utf8_lossy(&out)))),
        };
        prop_assert_eq!(second.head_len, out.len());
        prop_assert_eq!(second.method, first.method);
        prop_assert_eq!(second.method_span.get(&out), first.method_span.get(&buf));
        prop_assert_eq!(second.target.get(&out), first.target.get(&buf));
        prop_assert_eq!(second.path.get(&out), first.path.get(&buf));
        prop_assert_eq!(second.query.map(|q| q.get(&out)), first.query.map(|q| q.get(&buf)));
        prop_assert_eq!(second.version_minor, 1);
        prop_assert_eq!(second.body, first.body);

        let mut want = kept(&buf, &hs, b"cookie");
        if first.host.is_none() {
            want.push((b"host".to_vec(), b"added".to_vec()));
        }
        if first.body == BodyFraming::Chunked {
            want.push((b"transfer-encoding".to_vec(), b"chunked".to_vec()));
        }
        let got: Vec<(Vec<u8>, Vec<u8>)> = hs2
            .iter()
            .map(|h| (h.name.get(&out).to_vec(), h.value.get(&out).to_vec()))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let limits = HeadLimits { max_head_bytes: 200, max_headers: 8, max_request_line_bytes: 64 };
        let mut hs = Vec::new();
        let _ = parse_request_head(&bytes, &limits, &mut hs);
        let _ = parse_response_head(&bytes, &limits, Method::Get, &mut hs);
        let mut out = Vec::new();
        let _ = ChunkedDecoder::new().decode(&bytes, &mut out, ChunkedOutput::Rechunk);
    }

    #[test]
    fn near_valid_requests_never_panic(p in parts_strategy(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut buf = build(&p);
        let i = at.index(buf.len());
        buf[i] = b;
        let mut hs = Vec::new();
        if let Ok(Some(h)) = parse_request_head(&buf, &HeadLimits::default(), &mut hs) {
            let mut out = Vec::new();
            copy_request_head(&buf, &h, h.path.get(&buf), &hs, true, &mut out, |_| false);
            prop_assert!(out.len() <= buf.len() + 16);
        }
    }
}
