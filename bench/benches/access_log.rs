//! Per-request cost of the JSON access log's line: capturing the head's fields
//! (method, host, path without the query) and rendering the whole line into a reused buffer,
//! as `server::conn::end_request` does for every request when `[access_log]` is on. The file
//! write happens on the writer thread, in 32 KiB chunks, and is not measured here.
//!
//! Run: `cargo bench -p torii-bench --bench access_log`.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use torii_engine::access_log::line::{capture_head, write_line, LineContext};
use torii_engine::metrics::RequestRecord;

fn bench_line(c: &mut Criterion) {
    let mut rec = RequestRecord::default();
    rec.reset(180);
    rec.answered(200, 512);
    rec.upstream = Some(Duration::from_micros(850));
    let mut g = c.benchmark_group("access_log");
    let mut head = Vec::with_capacity(256);
    g.bench_function("capture_head", |b| {
        b.iter(|| {
            capture_head(
                &mut head,
                black_box(b"GET"),
                black_box(b"api.oto.tools"),
                black_box(b"/orders/12345/items?access_token=secret"),
            );
            black_box(head.len())
        })
    });
    let mut out = Vec::with_capacity(64 * 1024);
    g.bench_function("write_line", |b| {
        b.iter(|| {
            out.clear();
            let ctx = LineContext {
                time: SystemTime::now(),
                elapsed: Duration::from_micros(1_234),
                worker: 1,
                client_ip: b"127.0.0.1",
                route: Some("orders"),
                upstream: Some("127.0.0.1:9001"),
                tunnel: None,
            };
            write_line(&mut out, black_box(&ctx), black_box(&rec), black_box(&head));
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench_line
}
criterion_main!(benches);
