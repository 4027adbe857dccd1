//! Quota counters without Redis: the admission check called directly by many threads (exact
//! on one host), check-only mode, the refusal and its `Retry-After`, the quota headers, the
//! per-address limit, reloads (counts survive, removed keys are forgotten), and the admin
//! endpoint `GET /quotas/{client_id}` and the quota metrics on a running gateway.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use torii_engine::config::{load_str_with_env, MapEnv};
use torii_engine::metrics::MetricsRegistry;
use torii_engine::quota::{QuotaCounters, QuotaKind, Refused};
use torii_engine::snapshot::Snapshot;

/// 2024-02-29T12:00:03.500Z.
const NOW: u64 = 1_709_208_003_500;

fn config(keys: &str, route_extra: &str) -> String {
    format!(
        "[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\n\
         [[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n\
         [routes.apikeys]\n{route_extra}\n{keys}"
    )
}

fn key(id: &str, limits: &str) -> String {
    format!(
        "[[apikeys]]\nclient_id = \"{id}\"\nclient_secret = \"s\"\nroutes = [\"r\"]\n{limits}\n"
    )
}

fn build(text: &str, counters: &QuotaCounters) -> Snapshot {
    let cfg = load_str_with_env(text, Path::new("."), &MapEnv::default()).unwrap();
    let metrics = MetricsRegistry::new(2);
    let snap = Snapshot::build_with(cfg, 1, &metrics, counters, &Default::default()).unwrap();
    counters.install(&snap.quotas);
    snap
}

fn position(snap: &Snapshot, id: &str) -> usize {
    snap.auth.store.get(id).unwrap().position()
}

#[test]
fn daily_quota_admits_exactly_n_under_concurrency() {
    const N: u64 = 20_000;
    let counters = QuotaCounters::new();
    let snap = Arc::new(build(
        &config(
            &format!(
                "{}{}",
                key("other", "daily_quota = 1"),
                key("k", &format!("daily_quota = {N}"))
            ),
            "",
        ),
        &counters,
    ));
    let pos = position(&snap, "k");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let snap = snap.clone();
            std::thread::spawn(move || {
                let mut admitted = 0u64;
                for i in 0..5_000u64 {
                    match snap.quotas.admit_key(pos, NOW + i % 1000, true) {
                        Ok(state) => {
                            admitted += 1;
                            let d = state.daily.unwrap();
                            assert!(d.used >= 1 && d.used <= N);
                        }
                        Err(r) => assert_eq!(r.kind(), Some(QuotaKind::Daily)),
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        admitted, N,
        "8 threads × 5000 calls against daily_quota = {N}"
    );
    // The (N+1)-th call: 429 until midnight UTC (12 h minus 3.5 s, rounded up).
    let refused = snap.quotas.admit_key(pos, NOW, true).unwrap_err();
    assert_eq!(
        refused,
        Refused::Limit {
            kind: QuotaKind::Daily,
            retry_after_secs: 43_197
        }
    );
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.message(), "You performed too much requests");
    let mut head = Vec::new();
    refused.write_retry_after(&mut head);
    assert_eq!(head, b"Retry-After: 43197\r\n");
    // The next day starts from zero.
    assert!(snap.quotas.admit_key(pos, NOW + 86_400_000, true).is_ok());
}

#[test]
fn several_limits_refused_calls_are_not_counted() {
    let counters = QuotaCounters::new();
    let snap = build(
        &config(
            &key(
                "k",
                "throttling_quota = 2\ndaily_quota = 3\nmonthly_quota = 100",
            ),
            "",
        ),
        &counters,
    );
    let q = &snap.quotas;
    let pos = position(&snap, "k");
    assert!(q.admit_key(pos, NOW, true).is_ok());
    assert!(q.admit_key(pos, NOW, true).is_ok());
    // Third call in the same 10 s window: the window refuses, until its end (6.5 s → 7).
    let r = q.admit_key(pos, NOW, true).unwrap_err();
    assert_eq!(
        r,
        Refused::Limit {
            kind: QuotaKind::Window,
            retry_after_secs: 7
        }
    );
    // Refusals did not count: the next window admits one more, then the day is full.
    let next = NOW + 10_000;
    let ok = q.admit_key(pos, next, true).unwrap();
    assert_eq!(ok.daily.map(|d| (d.used, d.remaining())), Some((3, 0)));
    assert_eq!(ok.monthly.map(|m| m.remaining()), Some(97));
    let r = q.admit_key(pos, next, true).unwrap_err();
    assert_eq!(r.kind(), Some(QuotaKind::Daily));
    let k = q.key(pos).unwrap();
    let t = k.slot.total.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(t, 3);
}

#[test]
fn check_only_and_headers() {
    let counters = QuotaCounters::new();
    let snap = build(
        &config(
            &format!(
                "{}{}",
                key("k", "daily_quota = 10\nmonthly_quota = 1000"),
                key("free", "")
            ),
            "update_quotas = false\nquota_headers = true",
        ),
        &counters,
    );
    let route = &snap.routes[0].quota;
    assert!(!route.update_quotas && route.quota_headers);
    let pos = position(&snap, "k");
    for _ in 0..2 {
        snap.quotas.admit_key(pos, NOW, true).unwrap();
    }
    // update_quotas = false: checked, not counted.
    for _ in 0..5 {
        let s = snap
            .quotas
            .admit_key(pos, NOW, route.update_quotas)
            .unwrap();
        assert_eq!(s.daily.map(|d| d.used), Some(2));
    }
    let s = snap.quotas.admit_key(pos, NOW, true).unwrap();
    let mut out = Vec::new();
    s.write_headers(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Otoroshi-Daily-Calls-Remaining: 7\r\nOtoroshi-Monthly-Calls-Remaining: 997\r\n\
         RateLimit-Limit: 10\r\nRateLimit-Remaining: 7\r\nRateLimit-Reset: 43197\r\n"
    );
    // A key without limits is not counted and sends no header.
    let free = position(&snap, "free");
    assert!(snap.quotas.key(free).is_none());
    let s = snap.quotas.admit_key(free, NOW, true).unwrap();
    let mut out = Vec::new();
    s.write_headers(&mut out);
    assert!(out.is_empty());
}

#[test]
fn per_ip_limit_on_a_route() {
    let counters = QuotaCounters::new();
    let snap = build(
        &format!("{}\n[routes.rate_limit]\nper_ip = 3\n", config("", "")),
        &counters,
    );
    let route = &snap.routes[0].quota;
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    for _ in 0..3 {
        snap.quotas.admit_ip(route, a, NOW).unwrap();
    }
    let r = snap.quotas.admit_ip(route, a, NOW).unwrap_err();
    assert_eq!(
        r,
        Refused::Limit {
            kind: QuotaKind::Ip,
            retry_after_secs: 7
        }
    );
    assert!(snap.quotas.admit_ip(route, b, NOW).is_ok());
    assert!(snap.quotas.admit_ip(route, a, NOW + 10_000).is_ok());
    // A route without rate_limit admits everything.
    let plain = build(&config("", ""), &counters);
    for _ in 0..10 {
        assert!(plain
            .quotas
            .admit_ip(&plain.routes[0].quota, a, NOW)
            .is_ok());
    }
}

#[test]
fn reloads_keep_counts_and_forget_removed_keys() {
    let counters = QuotaCounters::new();
    let v1 = build(&config(&key("k", "daily_quota = 5"), ""), &counters);
    for _ in 0..3 {
        v1.quotas.admit_key(position(&v1, "k"), NOW, true).unwrap();
    }
    // New limits, and another key before it (its position changes): the count is kept.
    let v2 = build(
        &config(
            &format!(
                "{}{}",
                key("new", "daily_quota = 1"),
                key("k", "daily_quota = 4\nmonthly_quota = 9")
            ),
            "",
        ),
        &counters,
    );
    let pos = position(&v2, "k");
    assert_eq!(pos, 1);
    let s = v2.quotas.admit_key(pos, NOW, true).unwrap();
    assert_eq!(s.daily.map(|d| d.used), Some(4));
    assert!(v2.quotas.admit_key(pos, NOW, true).is_err());
    // Removed by a reload: forgotten once that reload is in force...
    let v3 = build(&config(&key("new", "daily_quota = 1"), ""), &counters);
    assert!(counters.slot("k").is_none());
    drop(v3);
    // ...so coming back starts from zero.
    let v4 = build(&config(&key("k", "daily_quota = 4"), ""), &counters);
    let s = v4.quotas.admit_key(position(&v4, "k"), NOW, true).unwrap();
    assert_eq!(s.daily.map(|d| d.used), Some(1));
    // A build that is never installed forgets nothing.
    let cfg = load_str_with_env(&config("", ""), Path::new("."), &MapEnv::default()).unwrap();
    let _unused = Snapshot::build_with(
        cfg,
        9,
        &MetricsRegistry::new(1),
        &counters,
        &Default::default(),
    )
    .unwrap();
    assert!(counters.slot("k").is_some());
}

#[test]
fn admin_document_and_metrics() {
    let text = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
         [[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n\
         [routes.apikeys]\n{}{}",
        key("k/1", "throttling_quota = 5\ndaily_quota = 10"),
        key("free", "")
    );
    let cfg = load_str_with_env(&text, Path::new("."), &MapEnv::default()).unwrap();
    let gw = torii_engine::control::start(cfg).unwrap();
    let admin = gw.admin_addr.unwrap();
    let snap = gw.shared.snapshot.load();
    let pos = position(&snap, "k/1");
    let now = torii_engine::quota::unix_ms(std::time::SystemTime::now());
    for _ in 0..2 {
        snap.quotas.admit_key(pos, now, true).unwrap();
    }
    snap.routes[0].metrics.quota_rejection(0, QuotaKind::Daily);
    let r = common::get(admin, "admin", "/quotas/k%2F1");
    assert_eq!(r.status, 200, "{}", r.text());
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["clientId"], "k/1");
    assert_eq!(doc["metered"], true);
    assert_eq!(doc["authorizedCallsPerWindow"], 5);
    assert_eq!(doc["authorizedCallsPerDay"], 10);
    assert_eq!(doc["currentCallsPerDay"], 2);
    assert_eq!(doc["remainingCallsPerDay"], 8);
    assert_eq!(doc["authorizedCallsPerMonth"], serde_json::Value::Null);
    assert_eq!(doc["currentCallsPerMonth"], 2);
    assert_eq!(doc["store"], "local");
    assert!(doc["daily"]["resetInSeconds"].as_u64().unwrap() <= 86_400);
    let free = common::get(admin, "admin", "/quotas/free");
    let doc: serde_json::Value = serde_json::from_slice(&free.body).unwrap();
    assert_eq!(
        (free.status, doc["metered"].clone()),
        (200, serde_json::Value::Bool(false))
    );
    let unknown = common::get(admin, "admin", "/quotas/nobody");
    assert_eq!(unknown.status, 404);
    assert!(unknown
        .header("content-type")
        .unwrap_or("")
        .contains("json"));
    let doc: serde_json::Value = serde_json::from_slice(&unknown.body).unwrap();
    assert_eq!(doc["clientId"], "nobody");
    let m = common::get(admin, "admin", "/metrics").text();
    assert!(
        m.contains("torii_quota_rejections_total{route=\"r\",kind=\"daily\"} 1"),
        "{m}"
    );
    assert!(m.contains("torii_quota_store_errors_total 0"), "{m}");
    assert!(
        !m.contains("torii_quota_store_up"),
        "no store configured: {m}"
    );
    gw.drain(std::time::Duration::from_secs(1));
}
