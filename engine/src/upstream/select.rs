//! Endpoint selection for one worker: the route's policy over its current endpoint set, with
//! the availability rules (primaries, then backups, then every endpoint: panic mode).
//!
//! Owns worker-local state only (no atomics written, no locks): per route, the endpoint set
//! the worker last saw (an `Rc` handle, so a request keeps its set without touching a shared
//! reference count), the smooth round-robin weights, the worker's requests and retries in
//! flight (the retry budget); and the "refused a connection" marks of addresses, which keep a
//! worker from trying a closed port again for [`DOWN_FOR`]. What all workers share about an
//! endpoint (health, ejection) is read from its `EndpointState`. The arithmetic of each
//! policy is `torii_protocol::balance`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torii_protocol::balance::{pick_least_request, pick_weighted_random, Maglev, SmoothRoundRobin};

use crate::config::LoadBalancing;
use crate::upstream::group::{EndpointSet, RouteUpstream};

/// How long an address that refused a connection is skipped by the worker that saw it.
pub const DOWN_FOR: Duration = Duration::from_secs(5);

/// Retries a worker may have in flight on a route whatever its budget says. Envoy's floor is
/// 3 per cluster; Torii's budget is per worker, and a worker serving a few dozen requests at
/// once must be able to retry the burst of one endpoint that dies under them (Linkerd's
/// budget has a floor of 10 retries a second for the same reason).
pub const MIN_RETRY_CONCURRENCY: u32 = 10;

/// Largest number of endpoints a request remembers having tried (a bit each).
pub const MAX_TRACKED: usize = 64;

/// The endpoints a request already tried (bit `i`: endpoint `i` of its set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tried(u64);

impl Tried {
    /// Marks endpoint `i` as tried (beyond [`MAX_TRACKED`] nothing is remembered).
    pub fn add(&mut self, i: usize) {
        if i < MAX_TRACKED {
            self.0 |= 1 << i;
        }
    }

    /// Whether endpoint `i` was tried.
    pub fn has(self, i: usize) -> bool {
        i < MAX_TRACKED && self.0 & (1 << i) != 0
    }
}

/// Which of its endpoints a route's selection may use at the moment of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Available primaries.
    Primary,
    /// Available backups (no primary available).
    Backup,
    /// Every endpoint not tried yet: none is available (all ejected, unhealthy or refusing).
    Panic,
}

/// A pick: the endpoint and the tier it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    /// Index in the set.
    pub index: usize,
    /// Where it came from ([`Tier::Panic`] is counted and logged by the caller).
    pub tier: Tier,
}

#[derive(Debug, Default)]
struct RouteState {
    /// The set last seen, and its hash table when the policy hashes.
    set: Option<Rc<CachedSet>>,
    rr: SmoothRoundRobin,
    in_flight: u32,
    retries_in_flight: u32,
}

/// An endpoint set as a worker holds it, with the derived tables its policy needs.
#[derive(Debug)]
pub struct CachedSet {
    /// The set.
    pub set: Arc<EndpointSet>,
    /// Maglev table, for the `hash` policy.
    pub maglev: Option<Maglev>,
}

/// Worker-local selection state.
#[derive(Debug, Default)]
pub struct Selector {
    snapshot_version: u64,
    routes: Vec<RouteState>,
    down_until: HashMap<SocketAddr, Instant>,
    in_flight_scratch: Vec<u32>,
    rng: u64,
}

impl Selector {
    /// The route's current set as this worker holds it (refreshed when the route's set or
    /// the snapshot changed). `hashing`: build the Maglev table (the `hash` policy).
    pub fn set_for(
        &mut self,
        snapshot_version: u64,
        route: usize,
        upstream: &RouteUpstream,
        hashing: bool,
    ) -> Rc<CachedSet> {
        if self.snapshot_version != snapshot_version {
            self.snapshot_version = snapshot_version;
            for r in &mut self.routes {
                r.set = None;
            }
        }
        if self.routes.len() <= route {
            self.routes.resize_with(route + 1, RouteState::default);
        }
        let state = &mut self.routes[route];
        let current = upstream.endpoints();
        match &state.set {
            Some(cached) if Arc::ptr_eq(&cached.set, &current) => cached.clone(),
            _ => {
                let set = arc_swap::Guard::into_inner(current);
                let maglev = hashing.then(|| {
                    let ids: Vec<&[u8]> = set
                        .endpoints
                        .iter()
                        .map(|e| e.state.addr_text.as_bytes())
                        .collect();
                    Maglev::build(
                        &ids,
                        &set.weights,
                        torii_protocol::balance::DEFAULT_TABLE_SIZE,
                    )
                });
                state.rr.reset(set.endpoints.len());
                let cached = Rc::new(CachedSet { set, maglev });
                state.set = Some(cached.clone());
                cached
            }
        }
    }

    /// Picks an endpoint of `cached` for route `route` with `policy`, skipping the ones in
    /// `tried`. `hash`: the request's key hash, for the `hash` policy. `worker`: this worker's
    /// id (its in-flight counts, for `least_request`). `None` when every endpoint was tried.
    #[allow(clippy::too_many_arguments)]
    pub fn pick(
        &mut self,
        route: usize,
        cached: &CachedSet,
        policy: &LoadBalancing,
        hash: u64,
        worker: usize,
        tried: Tried,
        now: Instant,
        now_ms: u64,
    ) -> Option<Picked> {
        let set = &cached.set;
        let n = set.endpoints.len();
        if n == 0 {
            return None;
        }
        let random = self.next_random();
        let down = &self.down_until;
        let refusing = |i: usize| {
            down.get(&set.endpoints[i].state.addr)
                .is_some_and(|until| *until > now)
        };
        let usable =
            |i: usize| !tried.has(i) && set.endpoints[i].state.available(now_ms) && !refusing(i);
        let tiers: [(Tier, &dyn Fn(usize) -> bool); 3] = [
            (Tier::Primary, &|i| !set.endpoints[i].backup && usable(i)),
            (Tier::Backup, &|i| set.endpoints[i].backup && usable(i)),
            (Tier::Panic, &|i| !tried.has(i)),
        ];
        if matches!(policy, LoadBalancing::LeastRequest) {
            self.in_flight_scratch.clear();
            self.in_flight_scratch.extend(
                set.endpoints
                    .iter()
                    .map(|e| e.state.slot(worker).in_flight.load(Ordering::Relaxed)),
            );
        }
        let rr = &mut self.routes.get_mut(route)?.rr;
        for (tier, allowed) in tiers {
            if tier == Tier::Backup && !set.has_backups {
                continue;
            }
            let picked = match policy {
                LoadBalancing::RoundRobin => rr.pick(&set.weights, allowed),
                LoadBalancing::LeastRequest => {
                    pick_least_request(&set.weights, &self.in_flight_scratch, allowed, random)
                }
                LoadBalancing::Random => pick_weighted_random(&set.weights, allowed, random),
                LoadBalancing::Hash(_) => match &cached.maglev {
                    Some(table) => table.lookup(hash, allowed),
                    None => pick_weighted_random(&set.weights, allowed, random),
                },
            };
            if let Some(index) = picked {
                return Some(Picked { index, tier });
            }
        }
        None
    }

    /// Marks `addr` as refusing connections for [`DOWN_FOR`] (this worker only).
    pub fn mark_down(&mut self, addr: SocketAddr, now: Instant) {
        if self.down_until.len() > 4096 {
            self.down_until.retain(|_, until| *until > now);
        }
        self.down_until.insert(addr, now + DOWN_FOR);
    }

    /// Clears the mark of `addr` after a successful connection.
    pub fn mark_up(&mut self, addr: SocketAddr) {
        if !self.down_until.is_empty() {
            self.down_until.remove(&addr);
        }
    }

    /// Counts a request of route `route` in flight (call [`Selector::request_done`] after).
    pub fn request_started(&mut self, route: usize) {
        if let Some(r) = self.routes.get_mut(route) {
            r.in_flight = r.in_flight.saturating_add(1);
        }
    }

    /// Ends what [`Selector::request_started`] counted, and the request's retries.
    pub fn request_done(&mut self, route: usize, retries: u32) {
        if let Some(r) = self.routes.get_mut(route) {
            r.in_flight = r.in_flight.saturating_sub(1);
            r.retries_in_flight = r.retries_in_flight.saturating_sub(retries);
        }
    }

    /// Takes a retry out of route `route`'s budget when it allows one: retries in flight
    /// below `budget_percent` of the requests in flight, at least [`MIN_RETRY_CONCURRENCY`].
    pub fn take_retry(&mut self, route: usize, budget_percent: u32) -> bool {
        let Some(r) = self.routes.get_mut(route) else {
            return false;
        };
        let allowed = torii_protocol::balance::budget_allows(
            r.retries_in_flight,
            r.in_flight,
            budget_percent,
            MIN_RETRY_CONCURRENCY,
        );
        if allowed {
            r.retries_in_flight = r.retries_in_flight.saturating_add(1);
        }
        allowed
    }

    /// A random word (splitmix64; selection needs spread, not secrecy).
    pub fn next_random(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = seed();
        }
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A per-worker seed: the clock and the address of a local, mixed.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let local = 0u8;
    (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// The endpoint a request is using, held until its response ends: counts the request in
/// flight on it in this worker's slot (what `least_request` compares, and `GET /upstreams`
/// shows). Holds the worker's `Rc` of the set, so the endpoint outlives a new DNS answer.
#[derive(Debug)]
pub struct EndpointInUse {
    set: Rc<CachedSet>,
    index: usize,
    worker: usize,
}

impl EndpointInUse {
    /// Starts counting a request of `worker` on endpoint `index` of `set`.
    pub fn start(set: Rc<CachedSet>, index: usize, worker: usize) -> Option<Self> {
        let state = &set.set.endpoints.get(index)?.state;
        let slot = state.slot(worker);
        slot.in_flight.store(
            slot.in_flight.load(Ordering::Relaxed).saturating_add(1),
            Ordering::Relaxed,
        );
        slot.requests.store(
            slot.requests.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        Some(Self { set, index, worker })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &crate::upstream::group::Endpoint {
        &self.set.set.endpoints[self.index]
    }
}

impl Drop for EndpointInUse {
    fn drop(&mut self) {
        let slot = self.set.set.endpoints[self.index].state.slot(self.worker);
        slot.in_flight.store(
            slot.in_flight.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
    }
}
