//! A route's endpoints: every address of every target, as one immutable [`EndpointSet`]
//! published through an `ArcSwap` in the route's [`RouteUpstream`].
//!
//! Owns the rule that builds a set from the targets' current addresses (one endpoint per
//! address, the target's weight and backup flag on each; an address that stays keeps its
//! [`EndpointState`], so its health and ejection survive a DNS answer and a reload), and the
//! publication of a new set when a target's addresses change (the resolver thread). Workers
//! only load the current set: a lock-free read. An endpoint missing from the new set takes no
//! new request; requests already on it finish (they hold the old set): drained, not cut.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::config::TargetConfig;
use crate::upstream::endpoint::EndpointState;

/// One endpoint of a set.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Index of its target in the route's targets (TLS, `Host` line, pool identity).
    pub target: usize,
    /// Share of traffic (its target's weight).
    pub weight: u32,
    /// Takes traffic only when no primary endpoint is available.
    pub backup: bool,
    /// The shared state.
    pub state: Arc<EndpointState>,
}

/// The endpoints of a route at one moment.
#[derive(Debug, Default)]
pub struct EndpointSet {
    /// Increases with every new set of this route.
    pub version: u64,
    /// Endpoints, target by target in config order, addresses in resolver order.
    pub endpoints: Vec<Endpoint>,
    /// Their weights, in the same order (the policies take a slice).
    pub weights: Vec<u32>,
    /// True when at least one endpoint is a backup.
    pub has_backups: bool,
}

/// What a route's targets are, as far as endpoints go (url, weight, backup, protocol): two
/// routes, or two loads of one route, with equal keys can share endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetKey {
    /// Normalised URL.
    pub url: String,
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Re-resolved at run time.
    pub named: bool,
    /// Weight.
    pub weight: u32,
    /// Backup flag.
    pub backup: bool,
}

impl TargetKey {
    /// The key of a configured target.
    pub fn of(t: &TargetConfig) -> Self {
        Self {
            url: t.url.clone(),
            host: t.host.clone(),
            port: t.port,
            named: t.named,
            weight: t.weight,
            backup: t.backup,
        }
    }
}

/// A route's endpoints, shared by the workers (read), the resolver and the health checker.
#[derive(Debug)]
pub struct RouteUpstream {
    /// The route id (logs, metrics).
    pub route_id: String,
    /// The targets, in config order.
    pub targets: Vec<TargetKey>,
    /// Number of workers (counter slots of new endpoint states).
    workers: usize,
    /// Each target's current addresses (the writers' copy; serialises writers).
    addresses: Mutex<Vec<Vec<SocketAddr>>>,
    set: ArcSwap<EndpointSet>,
    /// Run-time resolutions of this route's named targets that gave addresses (the
    /// `torii-dns` thread counts; a reload that keeps this object keeps the count).
    pub dns_ok: AtomicU64,
    /// Run-time resolutions that failed or gave no address (the last good addresses stayed).
    pub dns_failed: AtomicU64,
}

impl RouteUpstream {
    /// The endpoints of `targets` at their load-time addresses, reusing the states of
    /// `previous` (the route before a reload) for the addresses it had.
    pub fn new(
        route_id: &str,
        targets: &[TargetConfig],
        workers: usize,
        previous: Option<&RouteUpstream>,
    ) -> Self {
        let keys: Vec<TargetKey> = targets.iter().map(TargetKey::of).collect();
        let addresses: Vec<Vec<SocketAddr>> = targets.iter().map(|t| t.addrs.clone()).collect();
        let old = previous.map(|p| p.set.load_full());
        let set = build_set(&keys, &addresses, workers, old.as_deref(), 1);
        Self {
            route_id: route_id.to_owned(),
            targets: keys,
            workers,
            addresses: Mutex::new(addresses),
            set: ArcSwap::from_pointee(set),
            dns_ok: AtomicU64::new(0),
            dns_failed: AtomicU64::new(0),
        }
    }

    /// The current endpoints. Lock-free; cheap enough for every request.
    #[inline]
    pub fn endpoints(&self) -> Guard<Arc<EndpointSet>> {
        self.set.load()
    }

    /// The current endpoints, as an owned handle (threads that keep it across waits).
    pub fn endpoints_full(&self) -> Arc<EndpointSet> {
        self.set.load_full()
    }

    /// The addresses target `target` has now.
    pub fn target_addresses(&self, target: usize) -> Vec<SocketAddr> {
        let addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        addresses.get(target).cloned().unwrap_or_default()
    }

    /// Gives target `target` the addresses `addrs` (a resolver answer, deduplicated here).
    /// Publishes a new set and returns true when they differ from the current ones (as a
    /// set: order alone changes nothing); an empty answer is ignored (the last good one is
    /// kept) and returns false.
    pub fn set_target_addresses(&self, target: usize, addrs: &[SocketAddr]) -> bool {
        if addrs.is_empty() {
            return false;
        }
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = addresses.get_mut(target) else {
            return false;
        };
        let mut new: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
        for a in addrs {
            if !new.contains(a) {
                new.push(*a);
            }
        }
        let same = new.len() == current.len() && new.iter().all(|a| current.contains(a));
        if same {
            return false;
        }
        *current = new;
        let old = self.set.load_full();
        let set = build_set(
            &self.targets,
            &addresses,
            self.workers,
            Some(&old),
            old.version + 1,
        );
        self.set.store(Arc::new(set));
        true
    }

    /// Whether a route configured with `targets` for `workers` workers can keep this
    /// object as is (same targets: its resolved addresses stay).
    pub fn same_targets(&self, targets: &[TargetConfig], workers: usize) -> bool {
        self.workers == workers
            && self.targets.len() == targets.len()
            && self
                .targets
                .iter()
                .zip(targets)
                .all(|(k, t)| *k == TargetKey::of(t))
    }
}

/// One endpoint per (target, address), states taken from `old` where the address was there.
fn build_set(
    targets: &[TargetKey],
    addresses: &[Vec<SocketAddr>],
    workers: usize,
    old: Option<&EndpointSet>,
    version: u64,
) -> EndpointSet {
    let mut endpoints = Vec::new();
    for (i, (t, addrs)) in targets.iter().zip(addresses).enumerate() {
        for &addr in addrs {
            let state = old
                .and_then(|o| o.endpoints.iter().find(|e| e.state.addr == addr))
                .map(|e| e.state.clone())
                .unwrap_or_else(|| Arc::new(EndpointState::new(addr, workers)));
            endpoints.push(Endpoint {
                target: i,
                weight: t.weight,
                backup: t.backup,
                state,
            });
        }
    }
    EndpointSet {
        version,
        weights: endpoints.iter().map(|e| e.weight).collect(),
        has_backups: endpoints.iter().any(|e| e.backup),
        endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Scheme, TargetProtocol};

    fn target(host: &str, addrs: &[&str], weight: u32, backup: bool) -> TargetConfig {
        let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        TargetConfig {
            scheme: Scheme::Http,
            host: host.into(),
            port: 80,
            addr: addrs[0],
            addrs,
            named: true,
            weight,
            backup,
            protocol: TargetProtocol::Http1,
            host_header: host.into(),
            url: format!("http://{host}"),
        }
    }

    #[test]
    fn every_address_is_an_endpoint_with_its_target_weight() {
        let targets = [
            target("a", &["10.0.0.1:80", "10.0.0.2:80"], 3, false),
            target("b", &["10.0.0.3:80"], 1, true),
        ];
        let up = RouteUpstream::new("r", &targets, 2, None);
        let set = up.endpoints();
        assert_eq!(set.endpoints.len(), 3);
        assert_eq!(set.weights, vec![3, 3, 1]);
        assert_eq!(set.endpoints[2].target, 1);
        assert!(set.endpoints[2].backup && set.has_backups);
    }

    #[test]
    fn a_new_answer_keeps_surviving_states_and_drops_the_rest() {
        let targets = [target("a", &["10.0.0.1:80", "10.0.0.2:80"], 1, false)];
        let up = RouteUpstream::new("r", &targets, 1, None);
        let kept = up.endpoints().endpoints[1].state.clone();
        assert!(!up.set_target_addresses(
            0,
            &[
                "10.0.0.2:80".parse().unwrap(),
                "10.0.0.1:80".parse().unwrap()
            ]
        ));
        assert!(
            !up.set_target_addresses(0, &[]),
            "an empty answer keeps the last good one"
        );
        assert!(up.set_target_addresses(
            0,
            &[
                "10.0.0.2:80".parse().unwrap(),
                "10.0.0.9:80".parse().unwrap()
            ]
        ));
        let set = up.endpoints();
        assert_eq!(set.version, 2);
        assert_eq!(set.endpoints.len(), 2);
        assert!(Arc::ptr_eq(&set.endpoints[0].state, &kept));
        assert_eq!(set.endpoints[1].state.addr_text.as_ref(), "10.0.0.9:80");
        assert_eq!(up.target_addresses(0).len(), 2);
    }

    #[test]
    fn a_reload_reuses_states_of_the_same_addresses() {
        let targets = [target("a", &["10.0.0.1:80"], 1, false)];
        let first = RouteUpstream::new("r", &targets, 1, None);
        let state = first.endpoints().endpoints[0].state.clone();
        let changed = [target("a", &["10.0.0.1:80"], 5, false)];
        assert!(!first.same_targets(&changed, 1));
        assert!(first.same_targets(&targets, 1));
        let second = RouteUpstream::new("r", &changed, 1, Some(&first));
        assert!(Arc::ptr_eq(&second.endpoints().endpoints[0].state, &state));
        assert_eq!(second.endpoints().weights, vec![5]);
    }
}
