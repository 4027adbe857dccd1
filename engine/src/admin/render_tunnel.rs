//! The Prometheus rendering of the WebSocket metrics: results and bytes per route, open tunnels
//! per worker. Called by `super::render` on each scrape, off the request path.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::text::{header, route_series};
use crate::metrics::route::RouteTotals;
use crate::metrics::tunnel::{TunnelResult, DIRECTIONS};
use crate::shared::Shared;

/// Renders the WebSocket metrics: results and bytes per route, open tunnels per worker.
pub fn render(shared: &Shared, routes: &[(String, RouteTotals)], out: &mut String) {
    header(
        out,
        "torii_websocket_tunnels_active",
        "gauge",
        "Open WebSocket tunnels, by worker.",
    );
    for (i, w) in shared.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "torii_websocket_tunnels_active{{worker=\"{i}\"}} {}",
            w.websocket_tunnels.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "torii_websocket_tunnels_total",
        "counter",
        "WebSocket upgrade attempts by route and how they ended (tunnels are counted when they close).",
    );
    for (route, t) in routes {
        for (v, result) in t.tunnels.iter().zip(TunnelResult::ALL) {
            if *v > 0 {
                route_series(
                    out,
                    "torii_websocket_tunnels_total",
                    route,
                    Some(("result", result.label())),
                    *v,
                );
            }
        }
    }
    header(
        out,
        "torii_websocket_bytes_total",
        "counter",
        "Bytes carried by WebSocket tunnels (frames as sent, after the handshake), by route and direction.",
    );
    for (route, t) in routes {
        if t.tunnels.iter().chain(&t.tunnel_bytes).all(|v| *v == 0) {
            continue;
        }
        for (v, direction) in t.tunnel_bytes.iter().zip(DIRECTIONS) {
            route_series(
                out,
                "torii_websocket_bytes_total",
                route,
                Some(("direction", direction)),
                *v,
            );
        }
    }
}
