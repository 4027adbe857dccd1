//! Passive outlier ejection: what each call's outcome does to its endpoint, process-wide.
//!
//! Owns the bookkeeping of Envoy's `consecutive_5xx` and `consecutive_gateway_failure`
//! detectors over the endpoint's shared atomics (any worker's calls count; a success resets
//! both streaks with a write only when they are not already zero), and the ejection itself:
//! `base_ejection_time × n` (the n-th ejection, bounded by `max_ejection_time`), only while no
//! more than `max_ejection_percent` of the route's endpoints are out (one at least). The
//! arithmetic is `torii_protocol::balance::outlier`; the ejected endpoint takes no traffic
//! until its time ends (`EndpointState::available`).

use std::sync::atomic::Ordering;

use torii_protocol::balance::{CallOutcome, OutlierPolicy};

use crate::config::OutlierSpec;
use crate::upstream::group::EndpointSet;

/// The protocol crate's policy for a route's `[routes.outlier_detection]`.
pub fn policy(spec: &OutlierSpec) -> OutlierPolicy {
    OutlierPolicy {
        consecutive_5xx: spec.consecutive_5xx,
        consecutive_gateway_failure: spec.consecutive_gateway_failure,
        base_ejection_ms: spec.base_ejection_time.as_millis() as u64,
        max_ejection_ms: spec.max_ejection_time.as_millis() as u64,
        max_ejection_percent: spec.max_ejection_percent,
    }
}

/// An ejection a call caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// How long it lasts, milliseconds.
    pub for_ms: u64,
    /// Ejections of this endpoint so far, this one included.
    pub times: u32,
}

/// Records the outcome of one call to endpoint `index` of `set` at `now_ms` (`endpoint::now_ms`)
/// and ejects it when the route's `policy` says so. Returns the ejection this call caused.
pub fn record(
    set: &EndpointSet,
    index: usize,
    outcome: CallOutcome,
    policy: Option<&OutlierPolicy>,
    now_ms: u64,
) -> Option<Ejection> {
    let state = &set.endpoints.get(index)?.state;
    let (five_xx, gateway) = match outcome {
        CallOutcome::Success => {
            state.record_success();
            return None;
        }
        CallOutcome::Status5xx(_) if !torii_protocol::balance::counts_gateway(outcome) => {
            if state.consecutive_gateway.load(Ordering::Relaxed) != 0 {
                state.consecutive_gateway.store(0, Ordering::Relaxed);
            }
            let n = state.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
            (n, 0)
        }
        _ => (
            state.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1,
            state.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1,
        ),
    };
    let policy = policy?;
    if !policy.trips(five_xx, gateway) {
        return None;
    }
    let ejected = set
        .endpoints
        .iter()
        .filter(|e| e.state.is_ejected(now_ms))
        .count();
    if !policy.may_eject(ejected, set.endpoints.len()) {
        return None;
    }
    let times = state
        .times_ejected
        .load(Ordering::Relaxed)
        .saturating_add(1);
    let for_ms = policy.ejection_ms(times);
    state
        .eject_until(now_ms, now_ms.saturating_add(for_ms))
        .then_some(Ejection { for_ms, times })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Scheme, TargetConfig, TargetProtocol};
    use crate::upstream::group::RouteUpstream;

    fn route(n: usize) -> RouteUpstream {
        let targets: Vec<TargetConfig> = (0..n)
            .map(|i| {
                let addr: std::net::SocketAddr = format!("10.0.0.{}:80", i + 1).parse().unwrap();
                TargetConfig {
                    scheme: Scheme::Http,
                    host: addr.ip().to_string(),
                    port: 80,
                    addr,
                    addrs: vec![addr],
                    named: false,
                    weight: 1,
                    backup: false,
                    protocol: TargetProtocol::Http1,
                    host_header: addr.ip().to_string(),
                    url: format!("http://{addr}"),
                }
            })
            .collect();
        RouteUpstream::new("r", &targets, 1, None)
    }

    fn pol() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx: 3,
            consecutive_gateway_failure: 2,
            base_ejection_ms: 1000,
            max_ejection_ms: 10_000,
            max_ejection_percent: 50,
        }
    }

    #[test]
    fn gateway_failures_eject_after_the_threshold_and_for_longer_each_time() {
        let up = route(4);
        let set = up.endpoints();
        let p = pol();
        assert_eq!(
            record(&set, 0, CallOutcome::GatewayFailure, Some(&p), 10),
            None
        );
        let first = record(&set, 0, CallOutcome::GatewayFailure, Some(&p), 10).unwrap();
        assert_eq!(
            first,
            Ejection {
                for_ms: 1000,
                times: 1
            }
        );
        assert!(!set.endpoints[0].state.available(500));
        assert!(set.endpoints[0].state.available(1010));
        record(&set, 0, CallOutcome::GatewayFailure, Some(&p), 2000);
        let second = record(&set, 0, CallOutcome::GatewayFailure, Some(&p), 2000).unwrap();
        assert_eq!(second.for_ms, 2000);
    }

    #[test]
    fn a_success_or_a_plain_5xx_breaks_the_gateway_streak() {
        let up = route(4);
        let set = up.endpoints();
        let p = pol();
        record(&set, 1, CallOutcome::GatewayFailure, Some(&p), 10);
        record(&set, 1, CallOutcome::Success, Some(&p), 10);
        assert_eq!(
            record(&set, 1, CallOutcome::GatewayFailure, Some(&p), 10),
            None
        );
        record(&set, 1, CallOutcome::Status5xx(500), Some(&p), 10);
        assert_eq!(
            set.endpoints[1]
                .state
                .consecutive_gateway
                .load(Ordering::Relaxed),
            0
        );
        // The 5xx streak went on: GatewayFailure, 500, GatewayFailure = 3 ejects.
        assert!(record(&set, 1, CallOutcome::GatewayFailure, Some(&p), 10).is_some());
        assert!(set.endpoints[1].state.is_ejected(11));
    }

    #[test]
    fn no_more_than_the_percentage_is_ejected_and_no_policy_ejects_nothing() {
        let up = route(4);
        let set = up.endpoints();
        let p = pol();
        for i in 0..4 {
            record(&set, i, CallOutcome::GatewayFailure, Some(&p), 10);
            record(&set, i, CallOutcome::GatewayFailure, Some(&p), 10);
        }
        let out = set
            .endpoints
            .iter()
            .filter(|e| e.state.is_ejected(11))
            .count();
        assert_eq!(out, 2, "50 % of 4");
        let other = route(2);
        let set = other.endpoints();
        for _ in 0..10 {
            assert_eq!(record(&set, 0, CallOutcome::GatewayFailure, None, 10), None);
        }
    }
}
