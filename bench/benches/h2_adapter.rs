//! Per-stream cost of reading an HTTP/2 request head: its RFC 9113 §8 checks and rendering
//! (`render_request_head`, which the head parser then reads as for any request). The response
//! is no longer translated: the stream's downstream builds its head from the upstream's fields
//! directly. The frame IO, HPACK and the stream's task are `h2`'s and monoio's, and are
//! measured end to end by `bench/h2_vs_nginx.py`.
//!
//! Run: `cargo bench -p torii-bench --bench h2_adapter`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use torii_engine::h2::request_head::render_request_head;
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
    g.finish();
}

criterion_group!(benches, bench_adapter);
criterion_main!(benches);
