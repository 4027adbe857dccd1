//! Metrics: per-route counters that survive reloads and the per-request record the proxy
//! fills. Rendering them as Prometheus text is the admin listener's (`crate::admin::render`),
//! so this module imports nothing above it.
//!
//! Owns the [`MetricsRegistry`] (route id → [`RouteMetrics`], created by the control thread and
//! handed to every snapshot build, so a reload keeps the counts of routes it keeps) and
//! [`RequestRecord`]. The request path only bumps its own worker's slot: no lock, no shared
//! cache line; the registry's mutex is taken when a snapshot is built and when `/metrics` is
//! scraped, never per request.

pub mod record;
pub mod route;
pub mod tunnel;

use std::sync::{Arc, Mutex};

pub use record::{Protocol, RequestRecord};
pub use route::{RejectReason, RejectionKind, RouteMetrics, RouteTotals};
pub use tunnel::TunnelResult;

/// Label used for requests that matched no route (404, bad heads).
pub const UNROUTED: &str = "-";
/// Label used for the requests of the OAuth2 token service (answered before routing). Route
/// ids may not start with `-`, so neither label can be a route's.
pub const TOKEN_SERVICE: &str = "-token-service";

/// Route counters by route id, kept across reloads.
#[derive(Debug)]
pub struct MetricsRegistry {
    workers: usize,
    routes: Mutex<Vec<(String, Arc<RouteMetrics>)>>,
    unrouted: Arc<RouteMetrics>,
    token_service: Arc<RouteMetrics>,
}

impl MetricsRegistry {
    /// An empty registry for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers,
            routes: Mutex::new(Vec::new()),
            unrouted: Arc::new(RouteMetrics::new(workers)),
            token_service: Arc::new(RouteMetrics::new(workers)),
        }
    }

    /// Workers the counters are sized for.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The counters of route `id`, created on first use. Called when a snapshot is built (not
    /// per request). A route removed by a reload keeps its counters here (they stay exported,
    /// as counters must not go backwards); re-adding it continues from them.
    pub fn route(&self, id: &str) -> Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = routes.iter().find(|(rid, _)| rid == id) {
            return m.clone();
        }
        let m = Arc::new(RouteMetrics::new(self.workers));
        routes.push((id.to_owned(), m.clone()));
        m
    }

    /// Counters of requests that matched no route.
    pub fn unrouted(&self) -> &Arc<RouteMetrics> {
        &self.unrouted
    }

    /// Counters of the token service's requests.
    pub fn token_service(&self) -> &Arc<RouteMetrics> {
        &self.token_service
    }

    /// Every route's totals, in creation order, then the token service's under
    /// [`TOKEN_SERVICE`] and the unrouted ones under [`UNROUTED`].
    pub fn totals(&self) -> Vec<(String, RouteTotals)> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, RouteTotals)> = routes
            .iter()
            .map(|(id, m)| (id.clone(), m.totals()))
            .collect();
        out.push((TOKEN_SERVICE.to_owned(), self.token_service.totals()));
        out.push((UNROUTED.to_owned(), self.unrouted.totals()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_route_id_keeps_its_counters() {
        let reg = MetricsRegistry::new(2);
        let a = reg.route("a");
        a.request(1, Protocol::Http11, 200, Duration::from_millis(1));
        let again = reg.route("a");
        assert!(Arc::ptr_eq(&a, &again));
        let b = reg.route("b");
        assert!(!Arc::ptr_eq(&a, &b));
        reg.unrouted()
            .request(0, Protocol::Http11, 404, Duration::ZERO);
        let totals = reg.totals();
        let ids: Vec<&str> = totals.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b", TOKEN_SERVICE, UNROUTED]);
        assert_eq!(totals[0].1.status[1], 1);
        assert_eq!(totals[3].1.status[3], 1);
    }
}
