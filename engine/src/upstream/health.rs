//! The rules of active health checks, without IO or a clock of their own: what a probe's result
//! does to an endpoint's health (the thresholds), and when each endpoint is probed (the
//! schedule). The `torii-health` thread (`health`) drives them; the probe itself is
//! `upstream::probe`.
//!
//! Rules (origin in brackets):
//! - **Verdicts by streaks.** Each endpoint keeps one streak in its shared state
//!   (`EndpointState::probe_streak`, written by the checker only): positive, the good probes in
//!   a row; negative, the bad ones. `unhealthy_threshold` bad probes in a row make it
//!   `Unhealthy`, `healthy_threshold` good ones make it `Healthy` [HAProxy's `fall`/`rise`,
//!   Envoy's `unhealthy_threshold`/`healthy_threshold`, NGINX Plus's `fails`/`passes`]. One probe
//!   of the other kind resets the streak. A new endpoint is `Unknown` and takes traffic until the
//!   first verdict [HAProxy: a server starts up; Envoy would hold it back until its first good
//!   probe, which fails closed on a checker that cannot reach it]. Every probe is counted
//!   (`probes_ok`, `probes_failed`).
//! - **Schedule.** An endpoint seen for the first time is probed after a random delay below
//!   `min(interval, FIRST_PROBE_SPREAD)`, so a start or a reload does not probe every endpoint
//!   at once; each later probe starts `interval` after the previous one started, plus a random
//!   jitter below a tenth of `interval` [Envoy's `interval_jitter_percent`]. A probe still in
//!   flight is never doubled (its `timeout` is at most `interval` anyway).
//! - **Forgetting.** An endpoint the checker no longer finds in any checked route (its address
//!   left the DNS answer, its route lost `[routes.health_check]` or went away) is dropped from
//!   the schedule and its health goes back to `Unknown`, so a verdict from a check that no
//!   longer runs never holds traffic back; the result of a probe of it still in flight is
//!   thrown away. A reload keeps the endpoints it keeps: same state, same schedule.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use torii_protocol::ChallengeFailure;

use crate::upstream::endpoint::{EndpointState, Health};

/// Upper bound of the random delay before an endpoint's first probe.
pub const FIRST_PROBE_SPREAD: Duration = Duration::from_secs(1);

/// The two thresholds of a route's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Good probes in a row that make an endpoint healthy.
    pub healthy: u32,
    /// Bad probes in a row that make an endpoint unhealthy.
    pub unhealthy: u32,
}

/// Why a probe was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadProbe {
    /// A response head with a status outside `statuses`.
    Status(u16),
    /// No whole response head within `timeout` (connect and TLS included).
    Timeout,
    /// The TCP connect failed (refused, reset, unreachable).
    Refused,
    /// The TLS handshake failed.
    Tls,
    /// The connection closed or failed before a whole response head.
    Closed,
    /// The response head did not parse (or was too large).
    Invalid,
    /// On a challenged route: the answer to the exchange protocol did not verify.
    Challenge(ChallengeFailure),
    /// A gRPC health check (`/grpc.health.v1.Health/Check`) ended with this `grpc-status`.
    GrpcStatus(u32),
    /// A gRPC health check answered a `status` other than `SERVING` (1).
    NotServing(u64),
}

impl std::fmt::Display for BadProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadProbe::Status(s) => write!(f, "status {s}"),
            BadProbe::Timeout => f.write_str("timeout"),
            BadProbe::Refused => f.write_str("refused"),
            BadProbe::Tls => f.write_str("TLS handshake failed"),
            BadProbe::Closed => f.write_str("closed before a response"),
            BadProbe::Invalid => f.write_str("invalid response"),
            BadProbe::Challenge(c) => write!(f, "challenge failed ({})", c.reason()),
            BadProbe::GrpcStatus(c) => write!(f, "grpc-status {c}"),
            BadProbe::NotServing(s) => write!(f, "gRPC health status {s}, not SERVING"),
        }
    }
}

/// The streak after one more probe: `good` extends a positive streak or starts one at 1, a bad
/// probe extends a negative streak or starts one at -1. Saturates.
pub fn next_streak(streak: i32, good: bool) -> i32 {
    match (good, streak) {
        (true, s) if s > 0 => s.saturating_add(1),
        (true, _) => 1,
        (false, s) if s < 0 => s.saturating_sub(1),
        (false, _) => -1,
    }
}

/// The health an endpoint whose health is `current` moves to with streak `streak`, when it
/// changes.
pub fn verdict(current: Health, streak: i32, t: Thresholds) -> Option<Health> {
    let reached = |n: i32, threshold: u32| u32::try_from(n).is_ok_and(|n| n >= threshold);
    if reached(streak, t.healthy) && current != Health::Healthy {
        Some(Health::Healthy)
    } else if reached(streak.saturating_neg(), t.unhealthy) && current != Health::Unhealthy {
        Some(Health::Unhealthy)
    } else {
        None
    }
}

/// Records one probe of `state`: counts it, moves the streak, stores the verdict. Returns
/// `(before, after)` when the health changed. Only the checker thread calls it, so the streak's
/// load and store need no compare-and-swap.
pub fn record(state: &EndpointState, good: bool, t: Thresholds) -> Option<(Health, Health)> {
    let counter = if good {
        &state.probes_ok
    } else {
        &state.probes_failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let streak = next_streak(state.probe_streak.load(Ordering::Relaxed), good);
    state.probe_streak.store(streak, Ordering::Relaxed);
    let current = state.health();
    let next = verdict(current, streak, t)?;
    state.set_health(next);
    Some((current, next))
}

/// Forgets what the checker said of `state`: streak 0, health `Unknown`. Returns the health it
/// had when that was not `Unknown`.
pub fn forget(state: &EndpointState) -> Option<Health> {
    state.probe_streak.store(0, Ordering::Relaxed);
    let before = state.set_health(Health::Unknown);
    (before != Health::Unknown).then_some(before)
}

/// A random delay below `bound` (0 for a zero bound).
fn below(bound: Duration, random: u64) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random % nanos)
}

/// When an endpoint seen for the first time at `now` is first probed.
pub fn first_due(now: Instant, interval: Duration, random: u64) -> Instant {
    now + below(interval.min(FIRST_PROBE_SPREAD), random)
}

/// When the probe after one started at `now` is due.
pub fn next_due(now: Instant, interval: Duration, random: u64) -> Instant {
    now + interval + below(interval / 10, random)
}

/// One endpoint in the schedule.
#[derive(Debug)]
struct Slot {
    state: Arc<EndpointState>,
    due: Instant,
    in_flight: bool,
    /// The round that last found it in a checked route.
    seen: u64,
}

/// The checker's schedule: every endpoint of every checked route, when it is due, and whether
/// its probe is in flight. Keyed by the endpoint's shared state (held, so the key is not reused
/// while the entry lives).
#[derive(Debug, Default)]
pub struct Schedule {
    slots: HashMap<usize, Slot>,
    round: u64,
}

fn key(state: &Arc<EndpointState>) -> usize {
    Arc::as_ptr(state) as usize
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a round: every endpoint of every checked route is then passed to
    /// [`Schedule::visit`], and [`Schedule::end_round`] forgets the others.
    pub fn begin_round(&mut self) {
        self.round += 1;
    }

    /// Notes that `state` belongs to a checked route probed every `interval`, and says whether
    /// a probe of it is to start at `now`. When it is, the endpoint is marked in flight and its
    /// next probe scheduled. `random` draws the jitter.
    pub fn visit(
        &mut self,
        state: &Arc<EndpointState>,
        interval: Duration,
        now: Instant,
        random: u64,
    ) -> bool {
        let round = self.round;
        let slot = self.slots.entry(key(state)).or_insert_with(|| Slot {
            state: state.clone(),
            due: first_due(now, interval, random),
            in_flight: false,
            seen: round,
        });
        slot.seen = round;
        if slot.in_flight || slot.due > now {
            return false;
        }
        slot.in_flight = true;
        slot.due = next_due(now, interval, random);
        true
    }

    /// Ends a round: forgets the endpoints it did not visit and returns their states (whose
    /// health the caller resets with [`forget`]).
    pub fn end_round(&mut self) -> Vec<Arc<EndpointState>> {
        let round = self.round;
        let gone: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| s.seen != round)
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .filter_map(|k| self.slots.remove(&k))
            .map(|s| s.state)
            .collect()
    }

    /// A probe of `state` ended. Returns whether the endpoint is still scheduled (when it is
    /// not, its result is to be thrown away).
    pub fn finished(&mut self, state: &Arc<EndpointState>) -> bool {
        match self.slots.get_mut(&key(state)) {
            Some(slot) => {
                slot.in_flight = false;
                true
            }
            None => false,
        }
    }

    /// The earliest time a probe not in flight is due, if any.
    pub fn next_wake(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter(|s| !s.in_flight)
            .map(|s| s.due)
            .min()
    }

    /// Endpoints scheduled.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        healthy: 2,
        unhealthy: 3,
    };

    fn state(port: u16) -> Arc<EndpointState> {
        Arc::new(EndpointState::new(([127, 0, 0, 1], port).into(), 1))
    }

    /// The health after each of `probes` (true: good), from a fresh endpoint.
    fn run(probes: &[bool], t: Thresholds) -> Vec<Health> {
        let s = state(1);
        probes
            .iter()
            .map(|&good| {
                record(&s, good, t);
                s.health()
            })
            .collect()
    }

    #[test]
    fn streaks_count_in_a_row_and_reset_on_the_other_kind() {
        assert_eq!(next_streak(0, true), 1);
        assert_eq!(next_streak(3, true), 4);
        assert_eq!(next_streak(3, false), -1);
        assert_eq!(next_streak(-2, false), -3);
        assert_eq!(next_streak(-2, true), 1);
        assert_eq!(next_streak(i32::MAX, true), i32::MAX);
        assert_eq!(next_streak(i32::MIN, false), i32::MIN);
    }

    #[test]
    fn thresholds_decide_and_unknown_waits_for_a_verdict() {
        use Health::*;
        let (g, b) = (true, false);
        assert_eq!(run(&[b, b, b], T), [Unknown, Unknown, Unhealthy]);
        assert_eq!(run(&[g, g], T), [Unknown, Healthy]);
        // A good probe between bad ones resets the count.
        assert_eq!(
            run(&[b, b, g, b, b, b], T),
            [Unknown, Unknown, Unknown, Unknown, Unknown, Unhealthy]
        );
        // Back up after `healthy` good ones in a row; down again after `unhealthy` bad ones.
        assert_eq!(
            run(&[b, b, b, g, b, g, g, b, b, b], T),
            [
                Unknown, Unknown, Unhealthy, Unhealthy, Unhealthy, Unhealthy, Healthy, Healthy,
                Healthy, Unhealthy
            ]
        );
        let one = Thresholds {
            healthy: 1,
            unhealthy: 1,
        };
        assert_eq!(run(&[g, b, g], one), [Healthy, Unhealthy, Healthy]);
    }

    #[test]
    fn record_counts_probes_and_reports_changes_once() {
        let s = state(1);
        assert_eq!(record(&s, false, T), None);
        assert_eq!(record(&s, false, T), None);
        assert_eq!(
            record(&s, false, T),
            Some((Health::Unknown, Health::Unhealthy))
        );
        assert_eq!(record(&s, false, T), None, "no second report");
        assert!(!s.available(1));
        assert_eq!(record(&s, true, T), None);
        assert_eq!(
            record(&s, true, T),
            Some((Health::Unhealthy, Health::Healthy))
        );
        assert_eq!(s.probes_failed.load(Ordering::Relaxed), 4);
        assert_eq!(s.probes_ok.load(Ordering::Relaxed), 2);
        assert_eq!(forget(&s), Some(Health::Healthy));
        assert_eq!(forget(&s), None);
        assert_eq!(s.probe_streak.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn first_probes_are_spread_and_later_ones_jittered_above_the_interval() {
        let now = Instant::now();
        let i = Duration::from_secs(5);
        for r in [0, 1, 999_999_999, u64::MAX] {
            assert!(first_due(now, i, r) < now + FIRST_PROBE_SPREAD);
            let next = next_due(now, i, r);
            assert!(next >= now + i && next < now + i + i / 10, "{r}");
        }
        let short = Duration::from_millis(100);
        assert!(first_due(now, short, u64::MAX) < now + short);
        assert_ne!(first_due(now, i, 1), first_due(now, i, 500_000_000));
        assert_eq!(first_due(now, Duration::ZERO, 7), now);
    }

    #[test]
    fn the_schedule_probes_when_due_never_twice_at_once_and_forgets_the_gone() {
        let (a, b) = (state(1), state(2));
        let i = Duration::from_millis(100);
        let t0 = Instant::now();
        let mut s = Schedule::new();
        s.begin_round();
        // random 0: the first probe is due at once.
        assert!(s.visit(&a, i, t0, 0));
        assert!(!s.visit(&b, i, t0, 50_000_000), "b is due 50 ms later");
        assert!(s.end_round().is_empty());
        assert_eq!(s.next_wake(), Some(t0 + Duration::from_millis(50)));
        let t1 = t0 + Duration::from_millis(60);
        s.begin_round();
        assert!(!s.visit(&a, i, t1, 0), "a's probe is still in flight");
        assert!(s.visit(&b, i, t1, 0));
        s.end_round();
        assert!(s.finished(&a));
        let t2 = t0 + Duration::from_millis(99);
        s.begin_round();
        assert!(!s.visit(&a, i, t2, 0), "not due before its interval");
        s.visit(&b, i, t2, 0);
        s.end_round();
        let t3 = t0 + Duration::from_millis(100);
        s.begin_round();
        assert!(s.visit(&a, i, t3, 0));
        // b is not visited: its route lost the check (or its address went away).
        let gone = s.end_round();
        assert_eq!(gone.len(), 1);
        assert!(Arc::ptr_eq(&gone[0], &b));
        assert!(!s.finished(&b), "its late result is thrown away");
        assert!(s.finished(&a));
        assert_eq!(s.len(), 1);
    }
}
