//! The process-wide registry of route endpoints, so that a reload keeps what the process
//! learned about its upstreams: resolved addresses, health, ejections.
//!
//! Owns the map from route id to [`RouteUpstream`]. Touched only when a snapshot is built
//! (the control thread) and by `GET /upstreams`: never on the request path (a request reads
//! its route's `RouteUpstream` through the snapshot). A route whose targets are unchanged keeps
//! its object whole; a route whose targets changed gets a new one that reuses the endpoint
//! states of the addresses it keeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::RouteConfig;
use crate::upstream::group::RouteUpstream;

/// Route endpoints by route id.
#[derive(Debug, Default)]
pub struct UpstreamRegistry {
    routes: Mutex<HashMap<String, Arc<RouteUpstream>>>,
}

impl UpstreamRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The endpoints of each of `routes` for `workers` workers, reusing the registry's where
    /// the targets are the same. Nothing is stored: call [`UpstreamRegistry::commit`] once the
    /// snapshot they belong to is in force.
    pub fn prepare(&self, routes: &[RouteConfig], workers: usize) -> Vec<Arc<RouteUpstream>> {
        let known = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .map(|rc| match known.get(&rc.id) {
                Some(up) if up.same_targets(&rc.targets, workers) => up.clone(),
                previous => Arc::new(RouteUpstream::new(
                    &rc.id,
                    &rc.targets,
                    workers,
                    previous.map(|p| &**p),
                )),
            })
            .collect()
    }

    /// Makes `routes` the registry's content (routes no longer configured are forgotten).
    pub fn commit(&self, routes: &[Arc<RouteUpstream>]) {
        let mut known = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        known.clear();
        for up in routes {
            known.insert(up.route_id.clone(), up.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn routes(targets: &str) -> Vec<RouteConfig> {
        let text = format!(
            "[gateway]\nhttp = [\"127.0.0.1:0\"]\n[[routes]]\nid = \"r\"\ndomains = [\"a.test\"]\ntargets = [{targets}]\n"
        );
        load_str(&text, std::path::Path::new(".")).unwrap().routes
    }

    #[test]
    fn unchanged_targets_keep_their_object_changed_ones_their_states() {
        let reg = UpstreamRegistry::new();
        let first = reg.prepare(&routes("\"http://127.0.0.1:9\""), 2);
        reg.commit(&first);
        let again = reg.prepare(&routes("\"http://127.0.0.1:9\""), 2);
        assert!(Arc::ptr_eq(&first[0], &again[0]));
        let more = reg.prepare(
            &routes("\"http://127.0.0.1:9\", \"http://127.0.0.1:10\""),
            2,
        );
        assert!(!Arc::ptr_eq(&first[0], &more[0]));
        assert!(Arc::ptr_eq(
            &first[0].endpoints().endpoints[0].state,
            &more[0].endpoints().endpoints[0].state
        ));
        assert_eq!(more[0].endpoints().endpoints.len(), 2);
    }
}
