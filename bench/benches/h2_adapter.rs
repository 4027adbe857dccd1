//! Per-stream cost of reading an HTTP/2 request head into the request's own head
//! (`read_request_head`: the RFC 9113 §8 checks and the HTTP/1.1 head rules, the fields copied
//! into the request's buffer; no HTTP/1.1 head rendered or parsed). The response is not
//! translated either: the stream's downstream builds its head from the upstream's fields. The frame IO, HPACK and the stream's task are `h2`'s and monoio's, and are
//! measured end to end by `bench/h2_vs_nginx.py`.
//!
//! Run: `cargo bench -p torii-bench --bench h2_adapter`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use torii_engine::h2::request_head::read_request_head;
use torii_engine::http1::HeadLimits;
use torii_engine::proxy::head::OwnedHead;

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
    let mut out = OwnedHead::new();
    let limits = HeadLimits::default();
    g.bench_function("read_request_head", |b| {
        b.iter(|| {
            let h = read_request_head(
                &Method::GET,
                &uri,
                black_box(&headers),
                true,
                &limits,
                &mut out,
            );
            black_box((h.is_ok(), out.bytes().len()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_adapter);
criterion_main!(benches);
