//! The upstream side seen from outside, through an in-process gateway with a live and a closed
//! backend on one route: the per-endpoint `torii_upstream_*` series of `/metrics`, the
//! `GET /upstreams` document listing both endpoints with their request counts, and the access
//! log's `upstream` (the endpoint actually used) and `attempts` (retries included).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::*;
use torii_engine::{config, control};

/// Requests sent through the gateway.
const REQUESTS: usize = 6;

/// Scrapes `/metrics` into `series → value` (comments skipped).
fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let r = get(admin, "admin", "/metrics");
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// The access-log lines once there are `n` (bounded wait: the writer flushes periodically).
fn log_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), n, "{text}");
    lines
}

#[test]
fn endpoints_show_in_metrics_upstreams_and_the_access_log() {
    let live = mirror();
    let dead = dead_addr();
    let dir = TempDir::new("upstream-obs");
    let toml = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
         drain_timeout = \"2s\"\n\n[access_log]\npath = \"access.log\"\nformat = \"json\"\n\n{}",
        route("r", "up.test", "/", &[live, dead])
    );
    let path = dir.write("torii.toml", &toml);
    let gw = control::start(config::load_file(&path).unwrap()).unwrap();
    let admin = gw.admin_addr.unwrap();
    let addr = gw.addrs[0];

    for _ in 0..REQUESTS {
        // The closed backend refuses the connect; the default retry takes the live one.
        assert_eq!(get(addr, "up.test", "/").status, 200);
    }

    // Access log: every line names the live endpoint; a request that met the closed one first
    // made two tries.
    let lines = log_lines(&dir.0.join("access.log"), REQUESTS);
    for l in &lines {
        assert_eq!(l["upstream"], live.to_string(), "{l}");
        let attempts = l["attempts"].as_u64().unwrap();
        assert!((1..=2).contains(&attempts), "{l}");
    }
    let retried = lines.iter().filter(|l| l["attempts"] == 2).count();
    assert!(
        retried >= 1,
        "round robin tried the closed endpoint: {lines:#?}"
    );

    // Metrics: each request ended with one try on the live endpoint; the closed one got the
    // tries that were retried.
    let m = scrape(admin);
    let series = |name: &str, ep: SocketAddr| format!("{name}{{route=\"r\",endpoint=\"{ep}\"}}");
    let requests = "torii_upstream_endpoint_requests_total";
    assert_eq!(
        m.get(&series(requests, live)),
        Some(&(REQUESTS as f64)),
        "{m:#?}"
    );
    assert_eq!(
        m.get(&series(requests, dead)),
        Some(&(retried as f64)),
        "{m:#?}"
    );
    assert_eq!(
        m.get(&series("torii_upstream_endpoint_up", live)),
        Some(&1.0)
    );
    assert_eq!(
        m.get(&series("torii_upstream_endpoint_in_flight", live)),
        Some(&0.0)
    );
    assert_eq!(
        m.get("torii_upstream_retries_total{route=\"r\",reason=\"connect_failure\"}"),
        Some(&(retried as f64)),
        "{m:#?}"
    );
    assert!(m.contains_key("torii_upstream_ejections_total{route=\"r\"}"));
    assert!(m.contains_key("torii_upstream_panic_picks_total{route=\"r\"}"));
    let checks = format!(
        "torii_upstream_health_checks_total{{route=\"r\",endpoint=\"{live}\",result=\"ok\"}}"
    );
    assert_eq!(m.get(&checks), Some(&0.0), "no health check configured");

    // GET /upstreams: both endpoints, in target order, with their request counts.
    let r = get(admin, "admin", "/upstreams");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let routes = doc["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "{doc}");
    assert_eq!(routes[0]["route"], "r");
    assert_eq!(routes[0]["policy"], "round_robin");
    let eps = routes[0]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{doc}");
    for (ep, want_addr, want_requests) in [
        (&eps[0], live, REQUESTS as u64),
        (&eps[1], dead, retried as u64),
    ] {
        assert_eq!(ep["endpoint"], want_addr.to_string(), "{doc}");
        assert!(ep["target"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{want_addr}")));
        assert_eq!(ep["requests"], want_requests, "{doc}");
        assert_eq!(ep["in_flight"], 0);
        assert_eq!(ep["weight"], 1);
        assert_eq!(ep["backup"], false);
        assert_eq!(ep["health"], "unknown");
    }
    assert_eq!(eps[0]["ejected"], false);

    // Only GET and HEAD.
    let r = request(
        admin,
        "POST /upstreams HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    gw.drain(Duration::from_secs(2));
}
