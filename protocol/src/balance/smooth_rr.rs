//! Smooth weighted round robin, as nginx's upstream module does it
//! (`ngx_http_upstream_get_peer`, introduced in nginx 1.3.1).
//!
//! Owns [`SmoothRoundRobin`]: the per-endpoint `current` counters and the pick. Each pick adds
//! every available endpoint's weight to its counter, chooses the endpoint with the largest
//! counter and takes the sum of the weights off the winner. Over any window of `Σw` picks each
//! endpoint is chosen exactly `w` times (while the set of available endpoints is stable), and
//! the picks are interleaved rather than bunched: weights 5, 1, 1 give `a a b a c a a`, not
//! `a a a a a b c` as a naive weighted round robin would.
//!
//! One instance per worker (the engine keeps one per route and worker thread): `pick` takes
//! `&mut self` and needs no lock. The weights and availability are parameters, so the same
//! state follows a route's endpoint list across configuration reloads as long as its length is
//! unchanged.

/// nginx's smooth weighted round robin over one list of endpoints.
///
/// `current[i]` is endpoint `i`'s counter (nginx's `current_weight`). The state is only these
/// counters: weights and availability come with each [`pick`](Self::pick).
#[derive(Debug, Default, Clone)]
pub struct SmoothRoundRobin {
    current: Vec<i64>,
}

impl SmoothRoundRobin {
    /// A state for `n` endpoints, all counters 0. Called when a route's endpoint list is built.
    /// Cost: one allocation of `n` counters.
    pub fn new(n: usize) -> SmoothRoundRobin {
        let mut rr = SmoothRoundRobin::default();
        rr.reset(n);
        rr
    }

    /// Forgets the counters and sizes the state for `n` endpoints (all counters 0). Called when
    /// the endpoint list changes length (and by [`pick`](Self::pick) itself when it sees a
    /// different length). Cost: O(n); allocates only when `n` exceeds every length seen before.
    pub fn reset(&mut self, n: usize) {
        self.current.clear();
        self.current.resize(n, 0);
    }

    /// The number of endpoints the counters are sized for.
    pub fn len(&self) -> usize {
        self.current.len()
    }

    /// True when sized for no endpoint.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// Picks the next endpoint: an index into `weights`, or `None` when no endpoint is
    /// available with a weight above 0.
    ///
    /// Called once per request (and once per retry attempt) by a worker. `available(i)` is asked
    /// once per endpoint; endpoints it refuses, and endpoints of weight 0, take no part: their
    /// counters are neither raised nor lowered, so an endpoint that comes back resumes where it
    /// left off (nginx skips down and failed peers the same way). Ties go to the lowest index
    /// (nginx keeps the first peer with the largest counter). When `weights.len()` differs from
    /// the state's length the state resets itself first ([`reset`](Self::reset)).
    ///
    /// Cost: O(n), one pass, no allocation (except the reset above when the length grows).
    /// Arithmetic saturates, so no input can overflow or panic.
    pub fn pick(&mut self, weights: &[u32], available: impl Fn(usize) -> bool) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.reset(weights.len());
        }
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, cur)) in weights.iter().zip(self.current.iter_mut()).enumerate() {
            if w == 0 || !available(i) {
                continue;
            }
            let w = i64::from(w);
            *cur = cur.saturating_add(w);
            total = total.saturating_add(w);
            // Strictly greater: the first of equal counters wins, as in nginx.
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        let (index, _) = best?;
        if let Some(cur) = self.current.get_mut(index) {
            *cur = cur.saturating_sub(total);
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(rr: &mut SmoothRoundRobin, weights: &[u32], picks: usize) -> String {
        (0..picks)
            .map(|_| match rr.pick(weights, |_| true) {
                Some(i) => (b'a' + i as u8) as char,
                None => '-',
            })
            .collect()
    }

    #[test]
    fn balance_smooth_rr_nginx_sequence() {
        // The example of nginx's commit message introducing smooth weighted round robin.
        let mut rr = SmoothRoundRobin::default();
        assert_eq!(sequence(&mut rr, &[5, 1, 1], 7), "aabacaa");
        // After a full cycle the counters are back at 0: the cycle repeats.
        assert_eq!(sequence(&mut rr, &[5, 1, 1], 7), "aabacaa");
        assert_eq!(rr.current, vec![0, 0, 0]);
    }

    #[test]
    fn balance_smooth_rr_split_is_exactly_proportional() {
        let mut rr = SmoothRoundRobin::new(2);
        let mut counts = [0u32; 2];
        for _ in 0..10_000 {
            let i = rr.pick(&[3, 1], |_| true).expect("available");
            counts[i] += 1;
        }
        assert_eq!(counts, [7_500, 2_500]);

        // Five endpoints with unrelated weights: every full cycle of Σw picks gives each exactly
        // its weight, and the picks are smooth: after any t picks, each endpoint's count is
        // within 1 of its exact share t·w/Σw (its counter, t·w − Σw·count, stays in (−Σw, Σw)).
        let weights = [7u32, 3, 11, 1, 2];
        let sum: i64 = weights.iter().map(|&w| i64::from(w)).sum();
        let mut rr = SmoothRoundRobin::default();
        let mut counts = [0i64; 5];
        for t in 1..=(sum * 100) {
            counts[rr.pick(&weights, |_| true).expect("available")] += 1;
            for (c, &w) in counts.iter().zip(&weights) {
                let deviation = c * sum - t * i64::from(w);
                assert!(deviation.abs() < sum, "after {t} picks: {counts:?}");
            }
        }
        for (c, w) in counts.iter().zip(weights) {
            assert_eq!(*c, i64::from(w) * 100);
        }
    }

    #[test]
    fn balance_smooth_rr_skips_unavailable_and_keeps_their_counters() {
        let weights = [5u32, 1, 1];
        let mut rr = SmoothRoundRobin::default();
        assert_eq!(rr.pick(&weights, |_| true), Some(0));
        let frozen = rr.current[0];
        // Endpoint 0 down: only 1 and 2 are picked, alternately, and 0's counter is untouched.
        let mut seen = [0u32; 3];
        for _ in 0..10 {
            let i = rr.pick(&weights, |i| i != 0).expect("available");
            seen[i] += 1;
        }
        assert_eq!(seen, [0, 5, 5]);
        assert_eq!(rr.current[0], frozen);
        // Back up: it takes part again.
        let mut seen = [0u32; 3];
        for _ in 0..70 {
            seen[rr.pick(&weights, |_| true).expect("available")] += 1;
        }
        assert!(seen[0] >= 49 && seen[0] <= 51, "{seen:?}");
    }

    #[test]
    fn balance_smooth_rr_none_when_nothing_can_be_picked() {
        let mut rr = SmoothRoundRobin::default();
        assert_eq!(rr.pick(&[], |_| true), None);
        assert_eq!(rr.pick(&[0, 0, 0], |_| true), None);
        assert_eq!(rr.pick(&[1, 2, 3], |_| false), None);
        // Weight 0 takes no part even when available.
        for _ in 0..20 {
            assert_eq!(rr.pick(&[0, 4, 0], |_| true), Some(1));
        }
    }

    #[test]
    fn balance_smooth_rr_resets_on_length_change() {
        let mut rr = SmoothRoundRobin::default();
        assert_eq!(sequence(&mut rr, &[5, 1, 1], 3), "aab");
        // Four endpoints now: the counters restart from 0, so the cycle starts over.
        assert_eq!(sequence(&mut rr, &[1, 1, 1, 1], 4), "abcd");
        assert_eq!(rr.len(), 4);
        rr.reset(0);
        assert!(rr.is_empty());
    }

    #[test]
    fn balance_smooth_rr_huge_weights_do_not_overflow() {
        let weights = [u32::MAX; 4];
        let mut rr = SmoothRoundRobin::default();
        assert_eq!(sequence(&mut rr, &weights, 8), "abcdabcd");
        // One endpoint unavailable for a long time while the others turn: still no overflow.
        for _ in 0..1000 {
            assert!(rr.pick(&weights, |i| i != 3).is_some_and(|i| i != 3));
        }
    }
}
