//! The Prometheus text exposition (format 0.0.4) of everything Torii counts.
//!
//! Owns the metric names, help texts and label sets. Called by the admin listener on each
//! scrape, off the request path: it sums the per-worker slots of every route and reads the
//! per-worker gauges. It never writes a counter and never takes a lock a worker could wait on.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::text::{header, label, route_series};
use crate::metrics::route::{RouteTotals, CHALLENGE_REASONS, LATENCY_BOUNDS_US, STATUS_CLASSES};
use crate::metrics::RejectReason;
use crate::shared::Shared;
use torii_protocol::quota::QuotaKind;

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One `torii_requests_total{route,status,proto}` line.
fn request_series(out: &mut String, route: &str, class: &str, proto: &str, v: u64) {
    out.push_str("torii_requests_total{route=\"");
    label(out, route);
    let _ = writeln!(out, "\",status=\"{class}\",proto=\"{proto}\"}} {v}");
}

/// Seconds from microseconds, for the histogram's `le` labels and `_sum`.
fn secs(us: u64) -> String {
    let s = format!("{:.6}", us as f64 / 1e6);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

fn histogram(out: &mut String, route: &str, t: &RouteTotals) {
    const NAME: &str = "torii_request_duration_seconds";
    let mut cumulative = 0;
    for (i, count) in t.latency.iter().enumerate() {
        cumulative += count;
        let le = LATENCY_BOUNDS_US
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |&b| secs(b));
        let _ = write!(out, "{NAME}_bucket{{route=\"");
        label(out, route);
        let _ = writeln!(out, "\",le=\"{le}\"}} {cumulative}");
    }
    let _ = write!(out, "{NAME}_sum{{route=\"");
    label(out, route);
    let _ = writeln!(out, "\"}} {}", secs(t.latency_sum_us));
    let _ = write!(out, "{NAME}_count{{route=\"");
    label(out, route);
    let _ = writeln!(out, "\"}} {cumulative}");
}

fn reasons(
    out: &mut String,
    name: &str,
    routes: &[(String, RouteTotals)],
    pick: impl Fn(&RouteTotals) -> &[u64],
    labels: &[&str],
) {
    for (route, t) in routes {
        for (v, reason) in pick(t).iter().zip(labels) {
            if *v > 0 {
                route_series(out, name, route, Some(("reason", reason)), *v);
            }
        }
    }
}

/// Renders every metric of `shared` into `out`.
pub fn render(shared: &Shared, out: &mut String) {
    let routes = shared.metrics.totals();

    header(
        out,
        "torii_requests_total",
        "counter",
        "Requests answered, by route, status class (none: the client got no answer) and protocol (http/1.1 or h2).",
    );
    for (route, t) in &routes {
        for ((all, h2), class) in t.status.iter().zip(&t.status_h2).zip(STATUS_CLASSES) {
            for (v, proto) in [(all.saturating_sub(*h2), "http/1.1"), (*h2, "h2")] {
                if v > 0 {
                    request_series(out, route, class, proto, v);
                }
            }
        }
    }

    header(
        out,
        "torii_request_duration_seconds",
        "histogram",
        "Time from a complete request head to the end of its response, by route.",
    );
    for (route, t) in &routes {
        histogram(out, route, t);
    }

    header(
        out,
        "torii_grpc_calls_total",
        "counter",
        "gRPC calls (requests with a gRPC content-type), by route and the gRPC status their client got.",
    );
    for (route, t) in &routes {
        for (code, v) in t.grpc.iter().enumerate() {
            if *v > 0 {
                let code = code.to_string();
                route_series(
                    out,
                    "torii_grpc_calls_total",
                    route,
                    Some(("grpc_status", &code)),
                    *v,
                );
            }
        }
    }

    let challenge_labels: Vec<&str> = CHALLENGE_REASONS.iter().map(|r| r.reason()).collect();
    let reject_labels: Vec<&str> = RejectReason::ALL.iter().map(|r| r.label()).collect();
    header(
        out,
        "torii_challenge_failures_total",
        "counter",
        "Backends that failed the exchange protocol, by route and reason.",
    );
    reasons(
        out,
        "torii_challenge_failures_total",
        &routes,
        |t| &t.challenge,
        &challenge_labels,
    );
    header(
        out,
        "torii_apikey_rejections_total",
        "counter",
        "Requests rejected by the API-key check, by route and reason.",
    );
    reasons(
        out,
        "torii_apikey_rejections_total",
        &routes,
        |t| &t.apikey,
        &reject_labels,
    );
    header(
        out,
        "torii_jwt_rejections_total",
        "counter",
        "Requests rejected by the JWT verifier, by route and reason.",
    );
    reasons(
        out,
        "torii_jwt_rejections_total",
        &routes,
        |t| &t.jwt,
        &reject_labels,
    );

    header(
        out,
        "torii_quota_rejections_total",
        "counter",
        "Requests refused with 429 by a key quota or the per-address limit, by route and kind.",
    );
    for (route, t) in &routes {
        for (v, kind) in t.quota.iter().zip(QuotaKind::ALL) {
            if *v > 0 {
                route_series(
                    out,
                    "torii_quota_rejections_total",
                    route,
                    Some(("kind", kind.label())),
                    *v,
                );
            }
        }
    }
    let store = shared.quotas.store();
    header(
        out,
        "torii_quota_store_errors_total",
        "counter",
        "Failed connects and exchanges with the quota store (Redis).",
    );
    let _ = writeln!(out, "torii_quota_store_errors_total {}", store.errors());
    if store.is_configured() {
        header(
            out,
            "torii_quota_store_up",
            "gauge",
            "1 when the last exchange with the quota store (Redis) succeeded.",
        );
        let _ = writeln!(out, "torii_quota_store_up {}", u8::from(store.is_up()));
    }

    header(
        out,
        "torii_upstream_connect_errors_total",
        "counter",
        "Failed or timed-out connects to upstream targets, by route.",
    );
    for (route, t) in &routes {
        route_series(
            out,
            "torii_upstream_connect_errors_total",
            route,
            None,
            t.connect_errors,
        );
    }

    let snapshot = shared.snapshot.load();
    let views = super::upstreams::views(&snapshot);
    super::upstreams::render_metrics(out, &routes, &views, crate::upstream::endpoint::now_ms());

    super::render_tunnel::render(shared, &routes, out);

    header(
        out,
        "torii_active_connections",
        "gauge",
        "Open client connections, by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_active_connections{{worker=\"{i}\"}} {}",
            w.active_connections.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_h2_active_connections",
        "gauge",
        "Open client connections speaking HTTP/2 (part of torii_active_connections), by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_h2_active_connections{{worker=\"{i}\"}} {}",
            w.h2_connections.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_h2_active_streams",
        "gauge",
        "HTTP/2 streams being served, by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_h2_active_streams{{worker=\"{i}\"}} {}",
            w.h2_streams.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_upstream_idle_connections",
        "gauge",
        "Idle upstream connections in the keep-alive pool, by worker (updated every 50 ms).",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_upstream_idle_connections{{worker=\"{i}\"}} {}",
            w.pool_idle.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_worker_requests_total",
        "counter",
        "Requests handled, by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_worker_requests_total{{worker=\"{i}\"}} {}",
            w.requests.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_request_headers_dropped_total",
        "counter",
        "Request header lines not forwarded because their name contains '_', by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_request_headers_dropped_total{{worker=\"{i}\",reason=\"underscore\"}} {}",
            w.underscore_headers_dropped.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_driver_info",
        "gauge",
        "The IO driver of each started worker (io_uring or epoll).",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        if let Some(driver) = w.driver.get() {
            let _ = writeln!(
                out,
                "torii_driver_info{{worker=\"{i}\",driver=\"{driver}\"}} 1"
            );
        }
    }

    header(
        out,
        "torii_config_version",
        "gauge",
        "Version of the configuration in force (1 at start, +1 per successful reload).",
    );
    let _ = writeln!(
        out,
        "torii_config_version {}",
        shared.snapshot.load().version
    );
    header(
        out,
        "torii_config_reloads_total",
        "counter",
        "Reloads (SIGHUP), by result.",
    );
    let _ = writeln!(
        out,
        "torii_config_reloads_total{{result=\"ok\"}} {}",
        shared.reloads_ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "torii_config_reloads_total{{result=\"failed\"}} {}",
        shared.reloads_failed.load(Ordering::Relaxed)
    );
    jwks(out);
    header(out, "torii_draining", "gauge", "1 once shutdown started.");
    let _ = writeln!(out, "torii_draining {}", u8::from(shared.is_draining()));
    header(
        out,
        "torii_access_log_dropped_total",
        "counter",
        "Access-log lines dropped because the writer fell behind.",
    );
    let _ = writeln!(
        out,
        "torii_access_log_dropped_total {}",
        shared.access_log.dropped()
    );
}

/// The counters of every `jwks_url` fetched since start (`crate::jwks`).
fn jwks(out: &mut String) {
    let urls = crate::jwks::stats();
    if urls.is_empty() {
        return;
    }
    let series = |out: &mut String, name: &str, url: &str, v: u64| {
        out.push_str(name);
        out.push_str("{url=\"");
        label(out, url);
        let _ = writeln!(out, "\"}} {v}");
    };
    type Read = fn(&crate::jwks::JwksStats) -> u64;
    let metrics: [(&str, &str, &str, Read); 4] = [
        (
            "torii_jwks_fetches_total",
            "counter",
            "Fetches of a jwks_url that gave a usable key set.",
            |s| s.fetches_ok.load(Ordering::Relaxed),
        ),
        (
            "torii_jwks_fetch_errors_total",
            "counter",
            "Fetches of a jwks_url that failed (network, status, size, unusable document); the last good set was kept.",
            |s| s.fetch_errors.load(Ordering::Relaxed),
        ),
        (
            "torii_jwks_keys",
            "gauge",
            "Distinct keys (kids) in the set in use for a jwks_url (0: none fetched yet).",
            |s| s.keys.load(Ordering::Relaxed),
        ),
        (
            "torii_jwks_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last good fetch of a jwks_url (0: never).",
            |s| s.last_success_unix.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, read) in metrics {
        header(out, name, kind, help);
        for (url, stats) in &urls {
            series(out, name, url, read(stats));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_short_and_exact() {
        assert_eq!(secs(100), "0.0001");
        assert_eq!(secs(2_500), "0.0025");
        assert_eq!(secs(1_000_000), "1");
        assert_eq!(secs(60_000_000), "60");
        assert_eq!(secs(0), "0");
        assert_eq!(secs(1_234_567), "1.234567");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        label(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
