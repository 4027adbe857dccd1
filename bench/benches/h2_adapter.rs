//! Per-stream cost of the HTTP/2 adapter's translations: rendering an HTTP/2
//! request head as HTTP/1.1 (`render_request_head`, which the HTTP/1.1 parser then reads as for
//! any request) and turning the phases' HTTP/1.1 response back into an HTTP/2 head and body
//! (`ResponseTranslator`). The frame IO, HPACK and the stream's task are `h2`'s and monoio's,
//! and are measured end to end by `bench/h2_vs_nginx.py`.
//!
//! Run: `cargo bench -p torii-bench --bench h2_adapter`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use torii_engine::h2::request_head::render_request_head;
use torii_engine::h2::response::{ResponseTranslator, Step};
use torii_engine::http1::{self, HeadLimits};

fn bench_adapter(c: &mut Criterion) {
    let mut g = c.benchmark_group("h2_adapter");
    let uri: Uri = "https://api.oto.tools/orders/12345/items?page=2"
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for (n, v) in [
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        (
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        ),
        ("cookie", "session=abc"),
        ("cookie", "theme=dark"),
    ] {
        headers.append(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    let mut out = Vec::with_capacity(1024);
    g.bench_function("render_request_head", |b| {
        b.iter(|| {
            let f = render_request_head(&Method::GET, &uri, black_box(&headers), true, &mut out);
            black_box((f.is_ok(), out.len()))
        })
    });
    let mut fields = Vec::with_capacity(32);
    g.bench_function("render_and_reparse_head", |b| {
        b.iter(|| {
            let _ = render_request_head(&Method::GET, &uri, black_box(&headers), true, &mut out);
            let h = http1::parse_request_head(&out, &HeadLimits::default(), &mut fields);
            black_box(h.is_ok())
        })
    });
    let response: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\ndate: Thu, 04 Dec 2026 18:00:00 GMT\r\nx-request-id: 0f6c2f1e\r\n\r\n{\"items\":[1,2,3],\"next\":\"/orders/12345/items?page=3\",\"pad\":\"xxxx\"}";
    let mut payload = Vec::with_capacity(1024);
    g.bench_function("translate_response_64b", |b| {
        b.iter(|| {
            let mut t = ResponseTranslator::new(http1::Method::Get, HeadLimits::default());
            let mut rest = black_box(response);
            payload.clear();
            while !rest.is_empty() {
                let n = match t.step(rest, &mut payload) {
                    Ok(Step::Head {
                        consumed, response, ..
                    }) => {
                        black_box(response);
                        consumed
                    }
                    Ok(Step::Body { consumed, .. }) | Ok(Step::Interim { consumed, .. }) => {
                        consumed
                    }
                    _ => break,
                };
                rest = &rest[n..];
            }
            black_box(payload.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_adapter);
criterion_main!(benches);
