//! The `torii-dns` thread: resolves the named targets of every route again while the gateway
//! runs, off the request path, and publishes each changed answer as the route's new endpoint
//! set (`RouteUpstream::set_target_addresses`).
//!
//! Owns the schedule. Each round it asks its source for the routes in force (the current
//! snapshot: a reload is seen at the next round, at most [`MAX_NAP`] later, or at once when
//! nudged); a route whose `RouteUpstream` object is the same as before keeps its schedule, a
//! new object's names are resolved at once, a gone one is forgotten. After a good answer a
//! name is resolved again when its TTL ends, within `[MIN_RESOLVE_INTERVAL, resolve_interval]`
//! ([`after_answer`]); after a failure or an answer without address, the last good addresses
//! stay and it is tried again after `MIN_RESOLVE_INTERVAL` doubled per failure in a row, never
//! later than `resolve_interval` ([`after_failure`]). Failures are logged at `warn`, at most
//! once per [`WARN_EVERY`] per target; a changed set at `info` with the old and new addresses.
//! Counts go to `RouteUpstream::dns_ok` / `dns_failed`. It never touches a worker: workers see
//! the new set at their next endpoint load, and requests already on a removed address finish
//! there (they hold the old set). It must not import the snapshot or the shared state: its
//! caller hands it a source of [`Round`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::upstream_defaults::MIN_RESOLVE_INTERVAL;
use crate::config::DnsSpec;
use crate::upstream::dns::{Answer, DnsClient};
use crate::upstream::group::RouteUpstream;

/// Longest sleep between two rounds: how late a reload's new routes can be noticed when
/// nobody nudges the thread.
pub const MAX_NAP: Duration = Duration::from_secs(1);
/// At most one failure warning per target this often (the others are counted in the next).
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// A route to keep resolved: its endpoints and its `resolve_interval`.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The route's endpoints (the same object across reloads that keep its targets).
    pub upstream: Arc<RouteUpstream>,
    /// Longest time between two resolutions of one of its names.
    pub resolve_interval: Duration,
}

/// What one round works on: the `[dns]` settings and the routes in force.
#[derive(Debug, Clone)]
pub struct Round {
    /// `[dns]` of the configuration in force.
    pub dns: DnsSpec,
    /// Every route in force.
    pub routes: Vec<Watched>,
}

/// When to resolve a name again after a good answer whose TTL has `ttl` left: the TTL,
/// but not sooner than `MIN_RESOLVE_INTERVAL` nor later than `resolve_interval`.
pub fn after_answer(ttl: Duration, resolve_interval: Duration) -> Duration {
    ttl.clamp(
        MIN_RESOLVE_INTERVAL,
        resolve_interval.max(MIN_RESOLVE_INTERVAL),
    )
}

/// When to try a name again after its `failures`-th failure in a row (1 for the first):
/// `MIN_RESOLVE_INTERVAL` doubled for each earlier failure, at most `resolve_interval`.
pub fn after_failure(failures: u32, resolve_interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    MIN_RESOLVE_INTERVAL
        .saturating_mul(1 << doublings)
        .min(resolve_interval.max(MIN_RESOLVE_INTERVAL))
}

/// The running thread. [`ResolverHandle::stop`] (or dropping it) ends it, a lookup in flight
/// abandoned within 100 ms, and joins it.
#[derive(Debug)]
pub struct ResolverHandle {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
    nudged: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Control {
    fn signal(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::SeqCst);
        // Taken so that the thread is either before its flag check or waiting: never between.
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }

    /// Sleeps up to `nap`, or until stopped or nudged.
    fn nap(&self, nap: Duration) {
        let held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.stop.load(Ordering::SeqCst) || self.nudged.swap(false, Ordering::SeqCst) {
            return;
        }
        let _ = self.wake.wait_timeout(held, nap);
        self.nudged.store(false, Ordering::SeqCst);
    }
}

impl ResolverHandle {
    /// Makes the thread start a round now (after a reload: new routes resolve at once).
    pub fn nudge(&self) {
        self.control.signal(&self.control.nudged);
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.control.signal(&self.control.stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ResolverHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the `torii-dns` thread on the rounds `source` gives (called once per round, on that
/// thread).
pub fn start(source: impl Fn() -> Round + Send + 'static) -> Result<ResolverHandle, String> {
    let control = Arc::new(Control::default());
    let thread_control = control.clone();
    let thread = std::thread::Builder::new()
        .name("torii-dns".to_owned())
        .spawn(move || {
            let mut state = Loop::default();
            while !thread_control.stop.load(Ordering::SeqCst) {
                let round = source();
                let now = Instant::now();
                state.follow(&round.routes, now);
                state.resolve_due(&round.dns, now, &thread_control.stop);
                thread_control.nap(state.nap(Instant::now()));
            }
        })
        .map_err(|e| format!("DNS thread: {e}"))?;
    Ok(ResolverHandle {
        control,
        thread: Some(thread),
    })
}

/// One named target's schedule.
#[derive(Debug, Clone)]
struct TargetState {
    next: Instant,
    failures: u32,
    last_warn: Option<Instant>,
    suppressed: u64,
}

/// One route's schedules (`None` for a target written as an IP literal).
#[derive(Debug)]
struct RouteState {
    upstream: Arc<RouteUpstream>,
    interval: Duration,
    targets: Vec<Option<TargetState>>,
}

/// The thread's state between rounds: routes by the address of their `RouteUpstream` (kept
/// alive here, so an address is never reused while its entry exists), and the client.
#[derive(Debug, Default)]
struct Loop {
    routes: HashMap<usize, RouteState>,
    client: Option<DnsClient>,
}

impl Loop {
    /// Takes the routes in force: kept objects keep their schedule (a shorter interval moves
    /// it closer), new ones are due `now`, gone ones are dropped.
    fn follow(&mut self, watched: &[Watched], now: Instant) {
        let mut next = HashMap::with_capacity(watched.len());
        for w in watched {
            let key = Arc::as_ptr(&w.upstream) as usize;
            let state = match self.routes.remove(&key) {
                Some(mut kept) => {
                    if kept.interval != w.resolve_interval {
                        let latest = now + w.resolve_interval.max(MIN_RESOLVE_INTERVAL);
                        for t in kept.targets.iter_mut().flatten() {
                            t.next = t.next.min(latest);
                        }
                        kept.interval = w.resolve_interval;
                    }
                    kept
                }
                None => RouteState {
                    upstream: w.upstream.clone(),
                    interval: w.resolve_interval,
                    targets: w
                        .upstream
                        .targets
                        .iter()
                        .map(|t| {
                            t.named.then_some(TargetState {
                                next: now,
                                failures: 0,
                                last_warn: None,
                                suppressed: 0,
                            })
                        })
                        .collect(),
                },
            };
            next.insert(key, state);
        }
        self.routes = next;
    }

    /// How long to sleep: until the next name is due, at most [`MAX_NAP`].
    fn nap(&self, now: Instant) -> Duration {
        self.routes
            .values()
            .flat_map(|r| r.targets.iter().flatten())
            .map(|t| t.next.saturating_duration_since(now))
            .min()
            .map_or(MAX_NAP, |d| d.min(MAX_NAP))
    }

    /// Resolves every name due at `now` (all at once), then applies each result.
    fn resolve_due(&mut self, dns: &DnsSpec, now: Instant, stop: &AtomicBool) {
        let mut due: Vec<((usize, usize), String)> = Vec::new();
        for (&key, route) in &self.routes {
            for (i, t) in route.targets.iter().enumerate() {
                if t.as_ref().is_some_and(|t| t.next <= now) {
                    due.push(((key, i), route.upstream.targets[i].host.clone()));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        if self.client.as_ref().is_none_or(|c| c.spec() != dns) {
            if self.client.is_some() {
                tracing::info!(servers = ?dns.servers, timeout = ?dns.timeout, "[dns] settings changed");
            }
            self.client = match DnsClient::new(dns) {
                Ok(c) => Some(c),
                Err(e) => {
                    for (key, _) in due {
                        self.apply(key, Err(e.clone()));
                    }
                    return;
                }
            };
        }
        let Some(client) = &self.client else { return };
        let results = client.lookup_all(due, || stop.load(Ordering::SeqCst));
        for (key, result) in results {
            self.apply(key, result);
        }
    }

    /// Records one result of target `key.1` of route `key.0`.
    fn apply(&mut self, (route, target): (usize, usize), result: Result<Answer, String>) {
        let Some(r) = self.routes.get_mut(&route) else {
            return;
        };
        let Some(Some(t)) = r.targets.get_mut(target) else {
            return;
        };
        let up = &r.upstream;
        let key = &up.targets[target];
        let now = Instant::now();
        match result {
            Ok(answer) => {
                up.dns_ok.fetch_add(1, Ordering::Relaxed);
                let addrs: Vec<SocketAddr> = answer
                    .addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, key.port))
                    .collect();
                let old = up.target_addresses(target);
                if up.set_target_addresses(target, &addrs) {
                    tracing::info!(route = %up.route_id, target = %key.url, old = %list(&old), new = %list(&addrs), "target addresses changed");
                }
                if t.failures > 0 {
                    tracing::info!(route = %up.route_id, target = %key.url, failures = t.failures, "target name resolves again");
                }
                t.failures = 0;
                t.next = now + after_answer(answer.ttl, r.interval);
            }
            Err(error) => {
                up.dns_failed.fetch_add(1, Ordering::Relaxed);
                t.failures = t.failures.saturating_add(1);
                let retry = after_failure(t.failures, r.interval);
                t.next = now + retry;
                if t.last_warn
                    .is_none_or(|w| now.duration_since(w) >= WARN_EVERY)
                {
                    let kept = list(&up.target_addresses(target));
                    tracing::warn!(route = %up.route_id, target = %key.url, host = %key.host, %error, failures = t.failures, retry_in = ?retry, suppressed = t.suppressed, kept = %kept, "target name resolution failed; keeping its last good addresses");
                    t.last_warn = Some(now);
                    t.suppressed = 0;
                } else {
                    t.suppressed += 1;
                }
            }
        }
    }
}

/// Addresses as one space-separated word list, for logs.
fn list(addrs: &[SocketAddr]) -> String {
    let words: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Scheme, TargetConfig, TargetProtocol};

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_ttl_is_honoured_within_bounds() {
        assert_eq!(
            after_answer(Duration::ZERO, 30 * S),
            S,
            "never sooner than 1s"
        );
        assert_eq!(after_answer(Duration::from_millis(300), 30 * S), S);
        assert_eq!(after_answer(10 * S, 30 * S), 10 * S, "the TTL when inside");
        assert_eq!(
            after_answer(3600 * S, 30 * S),
            30 * S,
            "never later than the interval"
        );
        assert_eq!(after_answer(3600 * S, Duration::from_millis(10)), S);
    }

    #[test]
    fn failures_back_off_by_doubling_up_to_the_interval() {
        let got: Vec<Duration> = (1..=7).map(|n| after_failure(n, 30 * S)).collect();
        assert_eq!(got, [S, 2 * S, 4 * S, 8 * S, 16 * S, 30 * S, 30 * S]);
        assert_eq!(after_failure(0, 30 * S), S);
        assert_eq!(after_failure(u32::MAX, 30 * S), 30 * S, "no overflow");
        assert_eq!(after_failure(5, Duration::ZERO), S);
        assert_eq!(after_failure(3, 3 * S), 3 * S);
    }

    fn upstream(hosts: &[(&str, bool)]) -> Arc<RouteUpstream> {
        let targets: Vec<TargetConfig> = hosts
            .iter()
            .map(|&(host, named)| TargetConfig {
                scheme: Scheme::Http,
                host: host.into(),
                port: 80,
                addr: "10.0.0.1:80".parse().unwrap(),
                addrs: vec!["10.0.0.1:80".parse().unwrap()],
                named,
                weight: 1,
                backup: false,
                protocol: TargetProtocol::Http1,
                host_header: host.into(),
                url: format!("http://{host}"),
            })
            .collect();
        Arc::new(RouteUpstream::new("r", &targets, 1, None))
    }

    fn watched(up: &Arc<RouteUpstream>, interval: Duration) -> Watched {
        Watched {
            upstream: up.clone(),
            resolve_interval: interval,
        }
    }

    #[test]
    fn kept_routes_keep_their_schedule_new_ones_are_due_gone_ones_dropped() {
        let now = Instant::now();
        let a = upstream(&[("a.test", true), ("10.0.0.9", false)]);
        let mut state = Loop::default();
        state.follow(&[watched(&a, 30 * S)], now);
        let key_a = Arc::as_ptr(&a) as usize;
        let ta = &state.routes[&key_a].targets;
        assert!(ta[1].is_none(), "an IP literal is never resolved");
        assert_eq!(ta[0].as_ref().unwrap().next, now, "new: due at once");
        assert_eq!(state.nap(now), Duration::ZERO);

        // A good answer, then a reload that keeps `a` and adds `b`.
        let answer = Answer {
            addrs: vec!["10.0.0.2".parse().unwrap()],
            ttl: 10 * S,
        };
        state.apply((key_a, 0), Ok(answer));
        assert_eq!(a.target_addresses(0), ["10.0.0.2:80".parse().unwrap()]);
        assert_eq!(a.dns_ok.load(Ordering::Relaxed), 1);
        let scheduled = state.routes[&key_a].targets[0].as_ref().unwrap().next;
        assert!(scheduled >= now + 10 * S - Duration::from_millis(100));
        let b = upstream(&[("b.test", true)]);
        let later = now + S;
        state.follow(&[watched(&a, 30 * S), watched(&b, 30 * S)], later);
        assert_eq!(
            state.routes[&key_a].targets[0].as_ref().unwrap().next,
            scheduled
        );
        assert_eq!(state.nap(later), Duration::ZERO, "b is due");

        // A shorter interval brings a's next resolution closer; dropping a forgets it.
        state.follow(&[watched(&a, 2 * S), watched(&b, 30 * S)], later);
        assert!(state.routes[&key_a].targets[0].as_ref().unwrap().next <= later + 2 * S);
        state.follow(&[watched(&b, 30 * S)], later);
        assert!(!state.routes.contains_key(&key_a));
        assert_eq!(state.routes.len(), 1);
    }

    #[test]
    fn a_failure_keeps_the_addresses_and_backs_off() {
        let now = Instant::now();
        let a = upstream(&[("a.test", true)]);
        let key = Arc::as_ptr(&a) as usize;
        let mut state = Loop::default();
        state.follow(&[watched(&a, 30 * S)], now);
        for n in 1..=3u32 {
            state.apply((key, 0), Err("refused".into()));
            let t = state.routes[&key].targets[0].clone().unwrap();
            assert_eq!(t.failures, n);
            let wait = t.next.saturating_duration_since(Instant::now());
            assert!(wait <= after_failure(n, 30 * S) && wait + S >= after_failure(n, 30 * S));
        }
        assert_eq!(a.dns_failed.load(Ordering::Relaxed), 3);
        assert_eq!(a.target_addresses(0), ["10.0.0.1:80".parse().unwrap()]);
        let t = state.routes[&key].targets[0].clone().unwrap();
        assert_eq!(t.suppressed, 2, "one warning, two suppressed");
        // An answer without address is a failure too (the client never gives one; the set
        // refuses one anyway).
        assert!(!a.set_target_addresses(0, &[]));
    }
}
