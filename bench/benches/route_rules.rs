//! Per-request cost of a route's compiled rules (`torii_engine::rules`), as the request path
//! will pay it once they are wired: a route with `strip_prefix`, two `request_headers.set`
//! values with variables, and `[routes.cors]` with an exact origin and a wildcard one.
//!
//! - group `route_rules`, `path_headers_cors`: `path_for_upstream` (strip `/api` from
//!   `/api/v1/users/42`), rendering the two header lines into a reused buffer
//!   (`HeaderOps::write_lines`), and `actual_response_headers` for an allowed origin with its
//!   lines written: everything a proxied request of that route costs in rules.
//! - the three parts alone, for reference: `path_for_upstream`, `request_headers`,
//!   `cors_actual`.
//!
//! The rules are built from TOML through the real loader and `CompiledRules::build`, as the
//! snapshot builds them. Buffers are reused across iterations, as a worker reuses them.
//! Target: ≤ 0.3 µs for the whole.
//!
//! Run: `cargo bench -p torii-bench --bench route_rules` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use torii_engine::config::{load_str_with_env, MapEnv};
use torii_engine::rules::{path_for_upstream, CompiledRules, RewriteScratch, Vars};

const CONFIG: &str = r#"
[gateway]
http = ["127.0.0.1:8080"]
[[routes]]
id = "orders"
domains = ["api.example.com"]
paths = ["/api"]
targets = ["http://127.0.0.1:9001"]
strip_prefix = true
request_headers = { set = { "X-Env" = "prod", "X-Caller" = "${apikey.client_id} via ${route_id}" } }
[routes.cors]
allow_origins = ["https://app.example.com", "https://*.example.org"]
allow_methods = ["GET", "POST", "PUT"]
allow_headers = ["Authorization", "Content-Type"]
expose_headers = ["X-Total"]
allow_credentials = true
max_age = "10m"
"#;

fn compiled() -> CompiledRules {
    match load_str_with_env(CONFIG, Path::new("/"), &MapEnv::new::<&str, &str>([])) {
        Ok(config) => CompiledRules::build(&config.routes[0].rules),
        Err(e) => panic!("bench config: {e}"),
    }
}

fn vars() -> Vars<'static> {
    Vars {
        client_ip: b"198.51.100.7",
        route_id: b"orders",
        request_id: b"1798446231894212608",
        apikey_client_id: b"order-app",
        host: b"api.example.com",
        path: b"/api/v1/users/42",
        ..Vars::default()
    }
}

fn bench(c: &mut Criterion) {
    let rules = compiled();
    let vars = vars();
    let mut scratch = RewriteScratch::default();
    let mut path = Vec::with_capacity(256);
    let mut head = Vec::with_capacity(1024);
    let mut g = c.benchmark_group("route_rules");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("path_headers_cors", |b| {
        b.iter(|| {
            let r = black_box(&rules);
            let ok = path_for_upstream(
                black_box(b"/api/v1/users/42"),
                black_box(b"/api"),
                r,
                &mut scratch,
                &mut path,
            );
            head.clear();
            r.request_headers.write_lines(&vars, |_| false, &mut head);
            if let Some(cors) = &r.cors {
                cors.actual_response_headers(Some(black_box(b"https://app.example.com")))
                    .write_lines(&mut head);
            }
            black_box((ok, path.len(), head.len()))
        })
    });
    g.bench_function("path_for_upstream", |b| {
        b.iter(|| {
            let ok = path_for_upstream(
                black_box(b"/api/v1/users/42"),
                black_box(b"/api"),
                black_box(&rules),
                &mut scratch,
                &mut path,
            );
            black_box((ok, path.len()))
        })
    });
    g.bench_function("request_headers", |b| {
        b.iter(|| {
            head.clear();
            black_box(&rules)
                .request_headers
                .write_lines(&vars, |_| false, &mut head);
            black_box(head.len())
        })
    });
    g.bench_function("cors_actual", |b| {
        b.iter(|| {
            head.clear();
            if let Some(cors) = &black_box(&rules).cors {
                cors.actual_response_headers(Some(black_box(b"https://x.example.org")))
                    .write_lines(&mut head);
            }
            black_box(head.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
