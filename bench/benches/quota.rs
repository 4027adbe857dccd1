//! Per-request cost of the quota admission check (docs/quotas.md).
//!
//! - group `quota_admit`: `QuotaTable::admit_key` for a key with all three limits (throttling
//!   window, day, month) — the calendar arithmetic of the three windows, three atomic loads for
//!   the look-first check, three compare-and-swaps and the total's add —, counted and
//!   check-only; the same plus rendering the five quota headers into a reused buffer; the same
//!   with the clock read (`SystemTime::now`) included; and the per-address check
//!   (`admit_ip`). One thread, so the counters stay in its cache: the cost of the instructions,
//!   not of contention. Target: ≤ 0.2 µs for the counted check with all three limits.
//!
//! Run: `cargo bench -p torii-bench --bench quota`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use torii_engine::config::{load_str_with_env, MapEnv};
use torii_engine::metrics::MetricsRegistry;
use torii_engine::quota::{unix_ms, QuotaCounters};
use torii_engine::snapshot::Snapshot;

/// Limits that a benchmark run never reaches (the counters hold 2^40 − 1).
const CONFIG: &str = r#"
[gateway]
workers = 1
http = ["127.0.0.1:0"]
[[routes]]
id = "api"
domains = ["api.example.com"]
targets = ["http://127.0.0.1:9"]
[routes.apikeys]
quota_headers = true
[routes.rate_limit]
per_ip = 16777215
[[apikeys]]
client_id = "metered"
client_secret = "s"
routes = ["api"]
throttling_quota = 1099511627775
daily_quota = 1099511627775
monthly_quota = 1099511627775
"#;

fn snapshot() -> (Snapshot, std::sync::Arc<QuotaCounters>) {
    let cfg = load_str_with_env(CONFIG, Path::new("."), &MapEnv::default()).expect("config");
    let counters = QuotaCounters::new();
    let snap = Snapshot::build_with(
        cfg,
        1,
        &MetricsRegistry::new(1),
        &counters,
        &Default::default(),
    )
    .expect("snapshot");
    counters.install(&snap.quotas);
    (snap, counters)
}

fn bench(c: &mut Criterion) {
    let (snap, _counters) = snapshot();
    let pos = snap
        .auth
        .store
        .get("metered")
        .map(|k| k.position())
        .expect("key");
    let q = &snap.quotas;
    let route = &snap.routes[0].quota;
    // A fixed instant in the middle of a day and a throttling window: the same windows for the
    // whole run, so no iteration pays for a window change.
    let now = 1_709_208_003_500u64;
    let ip: IpAddr = "192.0.2.44".parse().expect("ip");
    let mut g = c.benchmark_group("quota_admit");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("three_limits_counted", |b| {
        b.iter(|| black_box(q.admit_key(black_box(pos), black_box(now), true)))
    });
    g.bench_function("three_limits_check_only", |b| {
        b.iter(|| black_box(q.admit_key(black_box(pos), black_box(now), false)))
    });
    let mut head = Vec::with_capacity(256);
    g.bench_function("three_limits_counted_with_headers", |b| {
        b.iter(|| {
            head.clear();
            if let Ok(state) = q.admit_key(black_box(pos), black_box(now), true) {
                state.write_headers(&mut head);
            }
            black_box(head.len())
        })
    });
    g.bench_function("three_limits_counted_with_clock", |b| {
        b.iter(|| black_box(q.admit_key(black_box(pos), unix_ms(SystemTime::now()), true)))
    });
    g.bench_function("per_ip", |b| {
        b.iter(|| black_box(q.admit_ip(route, black_box(ip), black_box(now))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
