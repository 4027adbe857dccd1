//! The upstream side as the admin listener shows it: the `torii_upstream_*` series of
//! `/metrics` (per route: retries, ejections, panic picks; per endpoint: up, requests, in
//! flight, health checks) and the JSON document of `GET /upstreams`.
//!
//! Owns those metric names, help texts and label sets, and the document's shape. Reads the
//! endpoint sets of the routes in force (`RouteUpstream::endpoints`, a lock-free load) and the
//! atomics of their [`EndpointState`]s at scrape time, off the request path: it allocates as
//! it likes, writes no counter and takes no lock a worker could wait on. Endpoints are labelled
//! by their address as text (`EndpointState::addr_text`), as in the access log.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::text::{header, label, route_series};
use crate::metrics::route::{RouteTotals, RETRY_REASONS};
use crate::snapshot::Snapshot;
use crate::upstream::endpoint::EndpointState;
use crate::upstream::group::RouteUpstream;

/// One route's endpoints as the renderers see them: its selection policy (the configuration
/// word of `load_balancing`) and its shared endpoint sets.
#[derive(Debug, Clone, Copy)]
pub struct RouteView<'a> {
    /// `load_balancing` (`round_robin`, `least_request`, `random`, `hash`).
    pub policy: &'static str,
    /// The route's endpoints (its id is `route_id`).
    pub upstream: &'a RouteUpstream,
}

/// The views of every route of `snapshot`, in configuration order.
pub fn views(snapshot: &Snapshot) -> Vec<RouteView<'_>> {
    snapshot
        .routes
        .iter()
        .map(|r| RouteView {
            policy: r.upstream_spec.load_balancing.as_str(),
            upstream: &r.upstream,
        })
        .collect()
}

/// One per-endpoint series: `name{route="…",endpoint="…"[,k="v"]} v`.
fn endpoint_series(
    out: &mut String,
    name: &str,
    route: &str,
    endpoint: &str,
    extra: Option<(&str, &str)>,
    v: u64,
) {
    out.push_str(name);
    out.push_str("{route=\"");
    label(out, route);
    out.push_str("\",endpoint=\"");
    label(out, endpoint);
    out.push('"');
    if let Some((k, val)) = extra {
        let _ = write!(out, ",{k}=\"");
        label(out, val);
        out.push('"');
    }
    let _ = writeln!(out, "}} {v}");
}

/// Writes one per-endpoint metric (header, then a series per endpoint of every route).
fn per_endpoint(
    out: &mut String,
    routes: &[RouteView<'_>],
    (name, kind, help): (&str, &str, &str),
    mut series: impl FnMut(&mut String, &str, &EndpointState),
) {
    header(out, name, kind, help);
    for r in routes {
        let set = r.upstream.endpoints();
        for e in &set.endpoints {
            series(out, &r.upstream.route_id, &e.state);
        }
    }
}

/// Renders the `torii_upstream_*` series of the endpoints of `routes` (their state at
/// `now_ms`, on `upstream::endpoint::now_ms`'s clock) and of the per-route counters `totals`.
pub fn render_metrics(
    out: &mut String,
    totals: &[(String, RouteTotals)],
    routes: &[RouteView<'_>],
    now_ms: u64,
) {
    const UP: &str = "torii_upstream_endpoint_up";
    per_endpoint(
        out,
        routes,
        (
            UP,
            "gauge",
            "1 when the endpoint takes traffic now (not ejected, not found unhealthy), by route and endpoint.",
        ),
        |out, route, s| {
            let up = u64::from(s.available(now_ms));
            endpoint_series(out, UP, route, &s.addr_text, None, up);
        },
    );
    const REQUESTS: &str = "torii_upstream_endpoint_requests_total";
    per_endpoint(
        out,
        routes,
        (
            REQUESTS,
            "counter",
            "Requests sent to the endpoint (each try, retries included), by route and endpoint.",
        ),
        |out, route, s| endpoint_series(out, REQUESTS, route, &s.addr_text, None, s.requests()),
    );
    const IN_FLIGHT: &str = "torii_upstream_endpoint_in_flight";
    per_endpoint(
        out,
        routes,
        (
            IN_FLIGHT,
            "gauge",
            "Requests in flight to the endpoint, by route and endpoint.",
        ),
        |out, route, s| endpoint_series(out, IN_FLIGHT, route, &s.addr_text, None, s.in_flight()),
    );
    const CHECKS: &str = "torii_upstream_health_checks_total";
    per_endpoint(
        out,
        routes,
        (
            CHECKS,
            "counter",
            "Active health-check probes of the endpoint, by route, endpoint and result (ok, failed).",
        ),
        |out, route, s| {
            let ok = s.probes_ok.load(Ordering::Relaxed);
            let failed = s.probes_failed.load(Ordering::Relaxed);
            endpoint_series(out, CHECKS, route, &s.addr_text, Some(("result", "ok")), ok);
            let failed_label = Some(("result", "failed"));
            endpoint_series(out, CHECKS, route, &s.addr_text, failed_label, failed);
        },
    );

    const RETRIES: &str = "torii_upstream_retries_total";
    header(
        out,
        RETRIES,
        "counter",
        "Upstream tries repeated on another endpoint, by route and reason.",
    );
    for (route, t) in totals {
        for (v, reason) in t.retries.iter().zip(RETRY_REASONS) {
            if *v > 0 {
                route_series(out, RETRIES, route, Some(("reason", reason)), *v);
            }
        }
    }
    const EJECTIONS: &str = "torii_upstream_ejections_total";
    header(
        out,
        EJECTIONS,
        "counter",
        "Endpoints ejected by passive outlier detection, by route.",
    );
    for (route, t) in totals {
        route_series(out, EJECTIONS, route, None, t.ejections);
    }
    const PANICS: &str = "torii_upstream_panic_picks_total";
    header(
        out,
        PANICS,
        "counter",
        "Endpoints picked in panic mode (none available, so any was taken), by route.",
    );
    for (route, t) in totals {
        route_series(out, PANICS, route, None, t.panics);
    }
}

/// The `GET /upstreams` entry of one endpoint at `now_ms`.
fn endpoint_json(e: &crate::upstream::group::Endpoint, target: &str, now_ms: u64) -> Value {
    let s = &e.state;
    let ejected = s.is_ejected(now_ms);
    let ejected_for_ms = if ejected {
        s.ejected_until_ms().saturating_sub(now_ms)
    } else {
        0
    };
    json!({
        "endpoint": &*s.addr_text,
        "target": target,
        "weight": e.weight,
        "backup": e.backup,
        "health": s.health().as_str(),
        "ejected": ejected,
        "ejected_for_ms": ejected_for_ms,
        "times_ejected": s.times_ejected.load(Ordering::Relaxed),
        "in_flight": s.in_flight(),
        "requests": s.requests(),
    })
}

/// The `GET /upstreams` document: every route in force with its policy and its current
/// endpoints (state at `now_ms`), in configuration order.
pub fn document(routes: &[RouteView<'_>], now_ms: u64) -> Value {
    let routes: Vec<Value> = routes
        .iter()
        .map(|r| {
            let set = r.upstream.endpoints();
            let endpoints: Vec<Value> = set
                .endpoints
                .iter()
                .map(|e| {
                    let target = r.upstream.targets.get(e.target).map_or("", |t| &t.url);
                    endpoint_json(e, target, now_ms)
                })
                .collect();
            json!({
                "route": r.upstream.route_id,
                "policy": r.policy,
                "endpoints": endpoints,
            })
        })
        .collect();
    json!({ "routes": routes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use crate::upstream::endpoint::Health;

    /// A route `r"q` (a quote, to see the escaping) with two targets.
    fn upstream() -> RouteUpstream {
        let text = "[gateway]\nhttp = [\"127.0.0.1:0\"]\n[[routes]]\nid = 'r\"q'\n\
                    domains = [\"a.test\"]\n\
                    targets = [\"http://127.0.0.1:9001\", \"http://127.0.0.1:9002\"]\n";
        let cfg = load_str(text, std::path::Path::new(".")).unwrap();
        let rc = &cfg.routes[0];
        RouteUpstream::new(&rc.id, &rc.targets, 2, None)
    }

    /// Loads the state the tests assert on: the first endpoint ejected until 1_500 with 7
    /// requests (two workers) and 1 in flight, the second unhealthy with probe counts.
    fn exercised(up: &RouteUpstream) {
        let set = up.endpoints();
        let (a, b) = (&set.endpoints[0].state, &set.endpoints[1].state);
        a.slot(0).requests.store(4, Ordering::Relaxed);
        a.slot(1).requests.store(3, Ordering::Relaxed);
        a.slot(1).in_flight.store(1, Ordering::Relaxed);
        assert!(a.eject_until(1_000, 1_500));
        b.set_health(Health::Unhealthy);
        b.probes_ok.store(5, Ordering::Relaxed);
        b.probes_failed.store(3, Ordering::Relaxed);
    }

    #[test]
    fn metrics_have_one_series_per_endpoint_and_escape_labels() {
        let up = upstream();
        exercised(&up);
        let views = [RouteView {
            policy: "round_robin",
            upstream: &up,
        }];
        let mut t = RouteTotals::default();
        t.retries[0] = 2;
        t.ejections = 1;
        let totals = vec![("r\"q".to_owned(), t)];
        let mut out = String::new();
        render_metrics(&mut out, &totals, &views, 1_200);
        let has = |line: &str| out.lines().any(|l| l == line);
        let a = "route=\"r\\\"q\",endpoint=\"127.0.0.1:9001\"";
        let b = "route=\"r\\\"q\",endpoint=\"127.0.0.1:9002\"";
        for line in [
            format!("torii_upstream_endpoint_up{{{a}}} 0"),
            format!("torii_upstream_endpoint_up{{{b}}} 0"),
            format!("torii_upstream_endpoint_requests_total{{{a}}} 7"),
            format!("torii_upstream_endpoint_requests_total{{{b}}} 0"),
            format!("torii_upstream_endpoint_in_flight{{{a}}} 1"),
            format!("torii_upstream_health_checks_total{{{b},result=\"ok\"}} 5"),
            format!("torii_upstream_health_checks_total{{{b},result=\"failed\"}} 3"),
            "torii_upstream_retries_total{route=\"r\\\"q\",reason=\"connect_failure\"} 2".into(),
            "torii_upstream_ejections_total{route=\"r\\\"q\"} 1".into(),
            "torii_upstream_panic_picks_total{route=\"r\\\"q\"} 0".into(),
            "# TYPE torii_upstream_endpoint_up gauge".into(),
            "# TYPE torii_upstream_endpoint_requests_total counter".into(),
        ] {
            assert!(has(&line), "missing {line} in\n{out}");
        }
        assert!(
            !out.contains("reason=\"reset\""),
            "retry reasons at zero are omitted"
        );
        // Once the ejection is over, the first endpoint is up again.
        out.clear();
        render_metrics(&mut out, &totals, &views, 1_500);
        assert!(out
            .lines()
            .any(|l| l == format!("torii_upstream_endpoint_up{{{a}}} 1")));
    }

    #[test]
    fn document_lists_every_endpoint_with_its_state() {
        let up = upstream();
        exercised(&up);
        let views = [RouteView {
            policy: "least_request",
            upstream: &up,
        }];
        let doc = document(&views, 1_200);
        // Through text, as a client gets it.
        let doc: Value = serde_json::from_str(&doc.to_string()).unwrap();
        let route = &doc["routes"][0];
        assert_eq!(route["route"], "r\"q");
        assert_eq!(route["policy"], "least_request");
        let eps = route["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 2);
        let (a, b) = (&eps[0], &eps[1]);
        assert_eq!(a["endpoint"], "127.0.0.1:9001");
        assert_eq!(a["target"], "http://127.0.0.1:9001");
        assert_eq!(a["weight"], 1);
        assert_eq!(a["backup"], false);
        assert_eq!(a["health"], "unknown");
        assert_eq!(a["ejected"], true);
        assert_eq!(a["ejected_for_ms"], 300);
        assert_eq!(a["times_ejected"], 1);
        assert_eq!(a["in_flight"], 1);
        assert_eq!(a["requests"], 7);
        assert_eq!(b["endpoint"], "127.0.0.1:9002");
        assert_eq!(b["health"], "unhealthy");
        assert_eq!(b["ejected"], false);
        assert_eq!(b["ejected_for_ms"], 0);
        assert_eq!(b["requests"], 0);
        let after = document(&views, 2_000);
        assert_eq!(after["routes"][0]["endpoints"][0]["ejected"], false);
        assert_eq!(after["routes"][0]["endpoints"][0]["ejected_for_ms"], 0);
    }
}
