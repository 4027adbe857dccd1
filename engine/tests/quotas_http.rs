//! Quotas on the request path, through a running gateway: a key with a limit of N gets N calls
//! through and the next one 429 (`You performed too much requests`, `Retry-After`), which never
//! reaches the backend; exact under concurrency over every worker; refused calls not counted;
//! bearer tokens count against the key they prove; `update_quotas = false` checks without
//! counting; the quota headers; the per-address limit on a public route; the reason in the
//! access log.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::recorder::recorder;
use common::*;

const SECRET: &str = "quota-client-secret-0123456789";

/// A gateway with two workers: route `metered` (API keys, quota headers), route `checked`
/// (API keys, `update_quotas = false`), route `public` (per-address limit 3), all to `backend`.
fn gateway_for(
    backend: std::net::SocketAddr,
    key_limits: &str,
    extra: &str,
) -> torii_engine::control::Gateway {
    let cfg = format!(
        r#"[gateway]
workers = 2
http = ["127.0.0.1:0"]
{extra}
[[apikeys]]
client_id = "metered-client"
client_secret = "{SECRET}"
routes = ["metered", "checked"]
{key_limits}

[[routes]]
id = "metered"
domains = ["metered.test"]
targets = ["http://{backend}"]
[routes.apikeys]
quota_headers = true

[[routes]]
id = "checked"
domains = ["checked.test"]
targets = ["http://{backend}"]
[routes.apikeys]
update_quotas = false

[[routes]]
id = "public"
domains = ["public.test"]
targets = ["http://{backend}"]
[routes.rate_limit]
per_ip = 3
"#
    );
    gateway(&cfg)
}

fn keyed(addr: std::net::SocketAddr, host: &str) -> Response {
    request(
        addr,
        &format!(
            "GET /q HTTP/1.1\r\nHost: {host}\r\nOtoroshi-Client-Id: metered-client\r\nOtoroshi-Client-Secret: {SECRET}\r\nConnection: close\r\n\r\n"
        ),
    )
}

/// Upstream requests the recorder received.
fn upstream_count(rec: &recorder::Recorder) -> usize {
    rec.conns
        .lock()
        .unwrap()
        .iter()
        .map(|c| {
            String::from_utf8_lossy(&c.bytes)
                .matches("GET /q HTTP/1.1")
                .count()
        })
        .sum()
}

#[test]
fn n_calls_pass_the_next_gets_429_and_never_reaches_the_backend() {
    let rec = recorder();
    let gw = gateway_for(rec.addr, "daily_quota = 5", "");
    let addr = gw.addrs[0];
    for left in (0..5).rev() {
        let r = keyed(addr, "metered.test");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("otoroshi-daily-calls-remaining"),
            Some(left.to_string().as_str())
        );
        assert_eq!(r.header("ratelimit-limit"), Some("5"));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some(left.to_string().as_str())
        );
        assert!(r.header("ratelimit-reset").is_some());
    }
    for _ in 0..3 {
        let r = keyed(addr, "metered.test");
        assert_eq!(r.status, 429, "{}", r.text());
        assert_eq!(
            r.json()["Otoroshi-Error"],
            "You performed too much requests"
        );
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(
            (1..=86_400).contains(&retry),
            "until the UTC day resets: {retry}"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        upstream_count(&rec),
        5,
        "refused calls never reach the backend"
    );
    // Refused calls were not counted: the admin view says 5 used.
    let slot = gw.shared.quotas.slot("metered-client").unwrap();
    let used: Vec<u64> = slot.windows().iter().map(|w| w.load().1).collect();
    assert_eq!(used[1], 5, "daily count {used:?}");
}

#[test]
fn exact_under_concurrency_over_every_worker() {
    const N: usize = 150;
    let rec = recorder();
    let gw = gateway_for(rec.addr, &format!("daily_quota = {N}"), "");
    let addr = gw.addrs[0];
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (ok, refused) = (ok.clone(), refused.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    match keyed(addr, "metered.test").status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        s => panic!("status {s}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), N);
    assert_eq!(refused.load(Ordering::Relaxed), 12 * 25 - N);
    let deadline = Instant::now() + Duration::from_secs(5);
    while upstream_count(&rec) < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(upstream_count(&rec), N);
    // Both workers took connections (the count is exact across them, not per worker).
    let per_worker: Vec<u64> = gw
        .shared
        .workers
        .iter()
        .map(|w| w.requests.load(Ordering::Relaxed))
        .collect();
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
}

#[test]
fn check_only_routes_are_refused_at_the_limit_but_never_count() {
    let rec = recorder();
    let gw = gateway_for(rec.addr, "daily_quota = 2", "");
    let addr = gw.addrs[0];
    for _ in 0..4 {
        assert_eq!(
            keyed(addr, "checked.test").status,
            200,
            "checked, not counted"
        );
    }
    assert_eq!(keyed(addr, "metered.test").status, 200);
    assert_eq!(keyed(addr, "metered.test").status, 200);
    assert_eq!(keyed(addr, "metered.test").status, 429);
    assert_eq!(
        keyed(addr, "checked.test").status,
        429,
        "checked against the full quota"
    );
}

#[test]
fn a_bearer_token_counts_against_the_key_it_proves() {
    let rec = recorder();
    let dir = TempDir::new("quota-bearer");
    let pem = torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
        .unwrap();
    let pem_path = dir.write("ec.pem", &pem);
    let extra = format!(
        "[client_credentials]\ndomain = \"oauth\\\\.test\"\nsecure = false\n\n[[key_pairs]]\nid = \"otoroshi-jwt-signing\"\nprivate_key = \"{}\"\n",
        pem_path.display()
    );
    let gw = gateway_for(rec.addr, "daily_quota = 3", &extra);
    let addr = gw.addrs[0];
    let token = common::auth::mint(&pem, "otoroshi-jwt-signing", "metered-client", 3600);
    let bearer = |addr| {
        request(
            addr,
            &format!("GET /q HTTP/1.1\r\nHost: metered.test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(bearer(addr).status, 200);
    assert_eq!(keyed(addr, "metered.test").status, 200);
    assert_eq!(bearer(addr).status, 200);
    let r = bearer(addr);
    assert_eq!(
        r.status,
        429,
        "the token's key has used its 3 calls: {}",
        r.text()
    );
    assert_eq!(keyed(addr, "metered.test").status, 429);
}

#[test]
fn the_per_address_limit_applies_to_public_routes() {
    let rec = recorder();
    let dir = TempDir::new("quota-ip-log");
    let log = dir.0.join("access.log");
    let extra = format!("[access_log]\npath = \"{}\"\n", log.display());
    let gw = gateway_for(rec.addr, "", &extra);
    let addr = gw.addrs[0];
    let public = |addr| {
        request(
            addr,
            "GET /q HTTP/1.1\r\nHost: public.test\r\nConnection: close\r\n\r\n",
        )
    };
    for _ in 0..3 {
        assert_eq!(public(addr).status, 200);
    }
    let r = public(addr);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    gw.drain(Duration::from_secs(2));
    // Workers flush their lines on their own tick: look the refusal up, not the last line.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let refused: Vec<&serde_json::Value> = lines.iter().filter(|l| l["status"] == 429).collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!(refused[0]["reason"], "quota.ip");
    assert_eq!(refused[0]["route"], "public");
    assert!(lines
        .iter()
        .filter(|l| l["status"] == 200)
        .all(|l| l["reason"].is_null()));
}
