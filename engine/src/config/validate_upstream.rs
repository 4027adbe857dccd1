//! Validation of a route's upstream settings: `load_balancing`, `hash`, `resolve_interval`,
//! `timeouts`, `[routes.health_check]`, `[routes.outlier_detection]` and `[routes.retry]`.
//!
//! Owns their grammar and defaults (`upstream_defaults`, with the per-route timeouts
//! defaulting to `[limits]`). No IO.

use super::error::{join, Collector};
use super::raw::RawRoute;
use super::upstream_spec::{LoadBalancing, UpstreamSpec};
use super::Limits;

/// The upstream settings of the route at `path`.
pub(super) fn upstream(
    c: &mut Collector,
    path: &str,
    raw: &RawRoute,
    limits: &Limits,
) -> UpstreamSpec {
    let p = |k: &str| join(path, k);
    let load_balancing = match raw.load_balancing.as_deref() {
        None | Some("round_robin") => LoadBalancing::RoundRobin,
        Some("least_request") => LoadBalancing::LeastRequest,
        Some("random") => LoadBalancing::Random,
        Some(other) => {
            c.push(
                p("load_balancing"),
                format!(
                    "unknown policy {other:?} (expected \"round_robin\", \"least_request\", \"random\" or \"hash\")"
                ),
            );
            LoadBalancing::RoundRobin
        }
    };
    UpstreamSpec {
        load_balancing,
        ..UpstreamSpec::defaults(limits.upstream_connect_timeout, limits.upstream_timeout)
    }
}
