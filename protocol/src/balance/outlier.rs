//! Passive outlier ejection: which call outcomes count as failures, when a streak of them
//! ejects an endpoint, for how long, and how many endpoints may be out at once — the
//! arithmetic of Envoy's `outlier_detection` (consecutive 5xx and consecutive gateway failure
//! detectors), without its success-rate and failure-percentage detectors.
//!
//! Owns [`OutlierPolicy`] (the thresholds), [`CallOutcome`] (what a call to an endpoint gave),
//! [`Consecutive`] (an endpoint's two streak counters), [`counts_5xx`], [`counts_gateway`] and
//! [`panic_mode`]. The engine keeps the counters and the ejection deadlines per endpoint
//! (atomics shared by the workers) and reads its clock; nothing here does.
//!
//! The flow, per endpoint: after each call, [`Consecutive::record`] the outcome; when
//! [`OutlierPolicy::trips`] says the streak is long enough and [`OutlierPolicy::may_eject`]
//! allows one more ejection, the endpoint is ejected for
//! [`OutlierPolicy::ejection_ms`]`(times_ejected)` and its counters are zeroed; while ejected
//! it is unavailable to the pickers; when no endpoint is available at all, [`panic_mode`]
//! says to pick among all of them.

/// Thresholds of passive outlier ejection, per route.
///
/// [`Default`] is Envoy's defaults, with one deliberate difference in
/// [`may_eject`](Self::may_eject) (one endpoint may always be ejected): consecutive 5xx = 5,
/// consecutive gateway failures = 5, base ejection 30 s, max ejection 300 s, max ejected 10 %.
/// In Envoy the gateway-failure detector counts by default but is not enforced
/// (`enforcing_consecutive_gateway_failure` defaults to 0 %); Torii has no enforcement
/// percentages: a detector with a threshold above 0 ejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Consecutive 5xx outcomes ([`counts_5xx`]) that eject an endpoint; 0 = detector off.
    pub consecutive_5xx: u32,
    /// Consecutive gateway failures ([`counts_gateway`]) that eject an endpoint; 0 = off.
    pub consecutive_gateway_failure: u32,
    /// Ejection time of a first ejection; the n-th ejection lasts n times this.
    pub base_ejection_ms: u64,
    /// Longest ejection (Envoy: the larger of this and `base_ejection_ms` applies).
    pub max_ejection_ms: u64,
    /// Most endpoints of the route ejected at once, in percent of them (above 100 reads as
    /// 100; 0 = never eject).
    pub max_ejection_percent: u32,
}

impl Default for OutlierPolicy {
    /// Envoy's defaults: 5, 5, 30 000 ms, 300 000 ms, 10 %.
    fn default() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejection_percent: 10,
        }
    }
}

impl OutlierPolicy {
    /// True when an endpoint with these streaks should be ejected: a detector that is on (its
    /// threshold above 0) has seen at least its threshold of consecutive failures.
    ///
    /// Called after each failed call to an endpoint. Envoy ejects when a counter reaches the
    /// threshold exactly (`==`) and zeroes it on ejection; `>=` here gives the same result and
    /// also ejects a streak that went on while [`may_eject`](Self::may_eject) refused. Callers
    /// zero the counters when they eject ([`Consecutive::default`]). Cost: two comparisons.
    pub fn trips(&self, consecutive_5xx: u32, consecutive_gateway: u32) -> bool {
        (self.consecutive_5xx > 0 && consecutive_5xx >= self.consecutive_5xx)
            || (self.consecutive_gateway_failure > 0
                && consecutive_gateway >= self.consecutive_gateway_failure)
    }

    /// How long the `times_ejected`-th ejection of an endpoint lasts, in ms:
    /// `base_ejection_ms × times_ejected`, capped at `max(max_ejection_ms, base_ejection_ms)`
    /// (Envoy's rule: the cap never shortens the base time). `times_ejected` counts this
    /// ejection, so it is ≥ 1; 0 reads as 1.
    ///
    /// Called when an endpoint is ejected. Envoy lowers `times_ejected` by one for each
    /// ejection-time interval the endpoint then stays healthy, so a flapping endpoint stays out
    /// longer each time and a recovered one is forgiven; that bookkeeping is the caller's.
    /// Cost: a multiplication; saturates, never overflows.
    pub fn ejection_ms(&self, times_ejected: u32) -> u64 {
        let cap = self.max_ejection_ms.max(self.base_ejection_ms);
        self.base_ejection_ms
            .saturating_mul(u64::from(times_ejected.max(1)))
            .min(cap)
    }

    /// True when one more of the route's `total` endpoints may be ejected while `ejected_now`
    /// are: `(ejected_now + 1) × 100 ≤ total × max_ejection_percent` (Envoy's rule), OR no
    /// endpoint is ejected and there are at least two (the floor: one may always go).
    ///
    /// The floor is Envoy's `always_eject_one_host` turned on, where Envoy's default is off:
    /// with the default 10 % and fewer than 10 endpoints — a gateway's usual case — Envoy's
    /// rule alone never ejects anything. The floor never ejects a lone endpoint (there is
    /// nowhere else to send its traffic; only `max_ejection_percent = 100` does, and then
    /// [`panic_mode`] sends to it anyway), and `max_ejection_percent = 0` turns ejection off,
    /// floor included. Called before ejecting. Cost: integer arithmetic in `u128`, no overflow.
    pub fn may_eject(&self, ejected_now: usize, total: usize) -> bool {
        let percent = self.max_ejection_percent.min(100);
        if percent == 0 || ejected_now >= total {
            return false;
        }
        let within = (ejected_now as u128 + 1) * 100 <= total as u128 * u128::from(percent);
        within || (ejected_now == 0 && total >= 2)
    }
}

/// What one call to an endpoint gave, as outlier detection sees it.
///
/// Envoy's classification (with `split_external_local_origin_errors` off, its default):
/// * [`Success`](Self::Success): any response that is not 5xx — 1xx to 4xx; a 4xx is the
///   client's fault, not the endpoint's. It ends both streaks.
/// * [`Status5xx`](Self::Status5xx): a 500..=599 response other than 502, 503 and 504,
///   e.g. 500 or 501. It counts for the 5xx detector only, and ends a gateway-failure streak.
/// * [`GatewayFailure`](Self::GatewayFailure): the call failed at the transport — connection
///   refused, reset before a response, connect or response timeout — or the endpoint answered
///   502, 503 or 504. It counts for both detectors (Envoy counts a local-origin failure as the
///   5xx the gateway answers with, and 502–504 as 5xx too).
///
/// [`CallOutcome::from_status`] maps a response status this way. A `Status5xx` holding
/// 502/503/504 anyway is treated as a gateway failure; one outside 500..=599 as a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A response below 500 (or not an error of the endpoint).
    Success,
    /// A 5xx response other than 502/503/504.
    Status5xx(u16),
    /// A transport failure (connect refused or timed out, reset, response timeout) or a
    /// 502/503/504 response.
    GatewayFailure,
}

impl CallOutcome {
    /// The outcome of a response with `status`: 502–504 → `GatewayFailure`, other 5xx →
    /// `Status5xx`, anything else → `Success`. Called once per upstream response.
    pub fn from_status(status: u16) -> CallOutcome {
        match status {
            502..=504 => CallOutcome::GatewayFailure,
            500..=599 => CallOutcome::Status5xx(status),
            _ => CallOutcome::Success,
        }
    }
}

/// True when `outcome` extends the consecutive-5xx streak: every 5xx response and every
/// gateway failure (a transport failure is answered as a 502/503/504, so Envoy counts it as
/// a 5xx too). Called after each call.
pub fn counts_5xx(outcome: CallOutcome) -> bool {
    match outcome {
        CallOutcome::Success => false,
        CallOutcome::Status5xx(status) => (500..=599).contains(&status),
        CallOutcome::GatewayFailure => true,
    }
}

/// True when `outcome` extends the consecutive-gateway-failure streak: transport failures
/// and 502, 503, 504 (also when passed as `Status5xx`). Called after each call.
pub fn counts_gateway(outcome: CallOutcome) -> bool {
    match outcome {
        CallOutcome::Success => false,
        CallOutcome::Status5xx(status) => (502..=504).contains(&status),
        CallOutcome::GatewayFailure => true,
    }
}

/// An endpoint's two streak counters (Envoy's `consecutive_5xx_` and
/// `consecutive_gateway_failure_`), for callers that keep them as plain integers; the engine
/// may keep them in atomics and apply the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consecutive {
    /// Consecutive outcomes for which [`counts_5xx`] held.
    pub five_xx: u32,
    /// Consecutive outcomes for which [`counts_gateway`] held.
    pub gateway: u32,
}

impl Consecutive {
    /// Adds one call's outcome, with Envoy's rules: a success zeroes both streaks; a 5xx that
    /// is not a gateway failure extends the 5xx streak and zeroes the gateway one; a gateway
    /// failure extends both. Saturates. Called after each call; then ask
    /// [`OutlierPolicy::trips`]`(self.five_xx, self.gateway)`.
    pub fn record(&mut self, outcome: CallOutcome) {
        self.five_xx = if counts_5xx(outcome) {
            self.five_xx.saturating_add(1)
        } else {
            0
        };
        self.gateway = if counts_gateway(outcome) {
            self.gateway.saturating_add(1)
        } else {
            0
        };
    }
}

/// True when the pickers should ignore availability and choose among all `total` endpoints:
/// none of them is available (all ejected or marked down) and there is at least one.
///
/// Called before a pick. Sending to an ejected endpoint beats refusing every request while
/// all are out. Envoy enters panic mode earlier, when fewer than 50 % are healthy
/// (`healthy_panic_threshold`); with `max_ejection_percent` bounding ejections Torii only
/// needs the last-resort case.
pub fn panic_mode(available: usize, total: usize) -> bool {
    available == 0 && total > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_outlier_default_is_envoys() {
        let p = OutlierPolicy::default();
        assert_eq!(
            (p.consecutive_5xx, p.consecutive_gateway_failure),
            (5, 5),
            "thresholds"
        );
        assert_eq!((p.base_ejection_ms, p.max_ejection_ms), (30_000, 300_000));
        assert_eq!(p.max_ejection_percent, 10);
    }

    #[test]
    fn balance_outlier_trips_at_the_threshold_of_an_enabled_detector() {
        let p = OutlierPolicy {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 3,
            ..OutlierPolicy::default()
        };
        assert!(!p.trips(4, 2));
        assert!(p.trips(5, 0));
        assert!(p.trips(0, 3));
        assert!(p.trips(9, 9));
        let off = OutlierPolicy {
            consecutive_5xx: 0,
            consecutive_gateway_failure: 0,
            ..p
        };
        assert!(!off.trips(u32::MAX, u32::MAX), "0 turns a detector off");
        let only_gw = OutlierPolicy {
            consecutive_5xx: 0,
            ..p
        };
        assert!(!only_gw.trips(100, 2) && only_gw.trips(0, 3));
    }

    #[test]
    fn balance_outlier_ejection_time_grows_and_caps() {
        let p = OutlierPolicy::default();
        assert_eq!(p.ejection_ms(0), 30_000, "0 reads as the first ejection");
        assert_eq!(p.ejection_ms(1), 30_000);
        assert_eq!(p.ejection_ms(3), 90_000);
        assert_eq!(p.ejection_ms(10), 300_000);
        assert_eq!(p.ejection_ms(11), 300_000);
        assert_eq!(p.ejection_ms(u32::MAX), 300_000);
        // A max below the base never shortens the base time.
        let odd = OutlierPolicy {
            base_ejection_ms: 60_000,
            max_ejection_ms: 1_000,
            ..p
        };
        assert_eq!(odd.ejection_ms(1), 60_000);
        assert_eq!(odd.ejection_ms(5), 60_000);
        let huge = OutlierPolicy {
            base_ejection_ms: u64::MAX / 2,
            max_ejection_ms: u64::MAX,
            ..p
        };
        assert_eq!(huge.ejection_ms(4), u64::MAX, "saturates");
    }

    #[test]
    fn balance_outlier_may_eject_percent_and_floor() {
        let p = OutlierPolicy::default(); // 10 %
                                          // Envoy's rule: 20 endpoints → 2 may be out.
        assert!(p.may_eject(0, 20) && p.may_eject(1, 20));
        assert!(!p.may_eject(2, 20));
        // The floor: one of a few endpoints may always go, but not a second.
        assert!(p.may_eject(0, 3) && p.may_eject(0, 2));
        assert!(!p.may_eject(1, 3));
        assert!(!p.may_eject(0, 1), "a lone endpoint stays");
        let hundred = OutlierPolicy {
            max_ejection_percent: 100,
            ..p
        };
        assert!(hundred.may_eject(0, 1), "unless 100 % may go");
        assert!(!p.may_eject(0, 0));
        let half = OutlierPolicy {
            max_ejection_percent: 50,
            ..p
        };
        assert!(half.may_eject(1, 4) && !half.may_eject(2, 4));
        let all = OutlierPolicy {
            max_ejection_percent: 250,
            ..p
        };
        assert!(
            all.may_eject(3, 4) && !all.may_eject(4, 4),
            "above 100 reads as 100"
        );
        let never = OutlierPolicy {
            max_ejection_percent: 0,
            ..p
        };
        assert!(!never.may_eject(0, 100));
        assert!(p.may_eject(0, usize::MAX) && !p.may_eject(usize::MAX, usize::MAX));
    }

    #[test]
    fn balance_outlier_classification() {
        use CallOutcome::*;
        for (status, outcome, five, gw) in [
            (200, Success, false, false),
            (404, Success, false, false),
            (499, Success, false, false),
            (500, Status5xx(500), true, false),
            (501, Status5xx(501), true, false),
            (502, GatewayFailure, true, true),
            (503, GatewayFailure, true, true),
            (504, GatewayFailure, true, true),
            (505, Status5xx(505), true, false),
            (599, Status5xx(599), true, false),
            (600, Success, false, false),
        ] {
            assert_eq!(CallOutcome::from_status(status), outcome, "{status}");
            assert_eq!(
                (counts_5xx(outcome), counts_gateway(outcome)),
                (five, gw),
                "{status}"
            );
        }
        // A 502..=504 passed as Status5xx is still a gateway failure; a non-5xx is no failure.
        assert!(counts_gateway(Status5xx(503)) && counts_5xx(Status5xx(503)));
        assert!(!counts_5xx(Status5xx(200)) && !counts_gateway(Status5xx(200)));
    }

    #[test]
    fn balance_outlier_streaks_follow_envoys_rules() {
        let p = OutlierPolicy::default();
        let mut c = Consecutive::default();
        for _ in 0..4 {
            c.record(CallOutcome::GatewayFailure);
        }
        assert_eq!(
            c,
            Consecutive {
                five_xx: 4,
                gateway: 4
            }
        );
        assert!(!p.trips(c.five_xx, c.gateway));
        // A 500 extends the 5xx streak but breaks the gateway one.
        c.record(CallOutcome::Status5xx(500));
        assert_eq!(
            c,
            Consecutive {
                five_xx: 5,
                gateway: 0
            }
        );
        assert!(p.trips(c.five_xx, c.gateway));
        // A success breaks both.
        c.record(CallOutcome::Success);
        assert_eq!(c, Consecutive::default());
        let mut c = Consecutive {
            five_xx: u32::MAX,
            gateway: u32::MAX,
        };
        c.record(CallOutcome::GatewayFailure);
        assert_eq!(
            c,
            Consecutive {
                five_xx: u32::MAX,
                gateway: u32::MAX
            },
            "saturates"
        );
    }

    #[test]
    fn balance_outlier_panic_mode_only_when_none_is_available() {
        assert!(panic_mode(0, 3));
        assert!(!panic_mode(1, 3));
        assert!(!panic_mode(3, 3));
        assert!(!panic_mode(0, 0), "nothing to fall back to");
    }
}
