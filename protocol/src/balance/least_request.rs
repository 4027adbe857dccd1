//! Least request by the power of two choices, weighted: draw two endpoints at random, send the
//! request to the one with the lower load relative to its weight.
//!
//! Owns [`pick_least_request`]. The "power of two choices" (Mitzenmacher, "The Power of Two
//! Choices in Randomized Load Balancing", 2001) is what Envoy's `LEAST_REQUEST` policy does
//! with its default `choice_count` of 2: comparing two random candidates instead of scanning
//! for the global minimum avoids the herd effect of every worker, each with a slightly stale
//! view of the in-flight counts, sending its next request to the same least-loaded endpoint.
//!
//! Weights: the load compared is `(in_flight + 1) / weight`, the in-flight count the endpoint
//! would have with this request, per unit of weight, so at equal in-flight counts the heavier
//! endpoint wins and under sustained load in-flight counts settle roughly in proportion to the
//! weights. (Envoy switches to a weighted round robin with dynamic weights
//! `weight / (in_flight + 1)^bias` when weights differ; Torii keeps the two choices and folds
//! the weight into the comparison instead, so one rule covers both cases.)
//!
//! The in-flight counts are the caller's (the engine's per-endpoint atomics, read relaxed):
//! this is arithmetic on a snapshot, and a stale count only makes one choice slightly worse.

/// Picks an endpoint by the power of two choices weighted by `weights`: an index into
/// `weights`, or `None` when no endpoint is available with a weight above 0.
///
/// Called once per request (and per retry attempt) by a worker, with a fresh random word.
///
/// The two candidates come from different bits of `random`: the first from its low 32 bits
/// (uniform over all `n` endpoints), the second from its high 32 bits (uniform over the `n − 1`
/// others), so they are always distinct. A drawn candidate that is unavailable (or has weight
/// 0) is replaced by the next available endpoint after it, wrapping around; when both land on
/// the same endpoint the second moves on to the next available one after it, and when only one
/// endpoint is available it is the answer. (As with linear probing, an endpoint just after
/// unavailable ones is drawn a little more often; under load the comparison tends to even
/// it out, since the busier endpoint loses.) Of the two, the one with the lower
/// `(in_flight + 1) / weight` wins, compared exactly by cross-multiplication in `u64` (no
/// floats, no overflow: each side is at most `2^32 · (2^32 − 1)`); ties go to the first
/// candidate.
///
/// Endpoints are `0..min(weights.len(), in_flight.len())`: a longer slice's extra entries
/// take no part. `available(i)` is asked only about candidates and about endpoints crossed
/// while probing.
///
/// Cost: O(1) when the drawn candidates are available (two multiplications, two calls of
/// `available`, one comparison); the probing is O(n) in the worst case (most endpoints
/// unavailable). No allocation, no panic for any input.
pub fn pick_least_request(
    weights: &[u32],
    in_flight: &[u32],
    available: impl Fn(usize) -> bool,
    random: u64,
) -> Option<usize> {
    let n = weights.len().min(in_flight.len());
    if n == 0 {
        return None;
    }
    let usable = |i: usize| weights.get(i).is_some_and(|&w| w > 0) && available(i);
    let first_draw = reduce(random as u32, n);
    let first = next_usable(first_draw, n, &usable)?;
    let second = if n > 1 {
        let mut j = reduce((random >> 32) as u32, n - 1);
        if j >= first_draw {
            j += 1;
        }
        match next_usable(j, n, &usable) {
            Some(s) if s == first => next_usable(first + 1, n, &usable),
            other => other,
        }
    } else {
        None
    };
    let Some(second) = second.filter(|&s| s != first) else {
        return Some(first);
    };
    let load = |i: usize| -> (u64, u64) {
        let in_flight = in_flight.get(i).map_or(0, |&c| u64::from(c));
        let weight = weights.get(i).map_or(1, |&w| u64::from(w));
        (in_flight + 1, weight)
    };
    let (l1, w1) = load(first);
    let (l2, w2) = load(second);
    // l2 / w2 < l1 / w1  ⇔  l2 · w1 < l1 · w2 (weights > 0).
    if l2 * w1 < l1 * w2 {
        Some(second)
    } else {
        Some(first)
    }
}

/// Maps a uniform 32-bit word onto `0..n` by multiply-shift (Lemire's "fast alternative to the
/// modulo reduction"): no division and, unlike `x % n`, it uses the word's high bits.
/// `n` ≥ 1 gives a value below `n`; `n` = 0 gives 0 (callers never pass it).
#[inline(always)]
fn reduce(x: u32, n: usize) -> usize {
    ((u64::from(x) * n as u64) >> 32) as usize
}

/// The first usable index at or after `start`, wrapping around `0..n`; `None` when none is.
#[inline]
fn next_usable(start: usize, n: usize, usable: &impl Fn(usize) -> bool) -> Option<usize> {
    (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::SplitMix;

    #[test]
    fn balance_least_request_avoids_the_busy_endpoint() {
        let weights = [1u32; 8];
        let mut in_flight = [0u32; 8];
        in_flight[3] = 100;
        let mut rng = SplitMix(1);
        let mut counts = [0u32; 8];
        for _ in 0..10_000 {
            let i = pick_least_request(&weights, &in_flight, |_| true, rng.next()).expect("pick");
            counts[i] += 1;
        }
        // The two candidates are distinct, so the busy one always loses to an idle one.
        assert_eq!(counts[3], 0);
        // The others share the rest evenly (each ≈ 10000 / 7 ≈ 1429).
        for (i, &c) in counts.iter().enumerate().filter(|&(i, _)| i != 3) {
            assert!((1300..1560).contains(&c), "endpoint {i}: {c}");
        }
    }

    #[test]
    fn balance_least_request_weights_at_equal_load() {
        // All idle: the heavier of the two candidates wins, so endpoint k (weight k+1) wins
        // against every lighter one. With 4 endpoints and 6 equally likely pairs, endpoint k
        // is picked with probability k / 6: 0, 1/6, 2/6, 3/6.
        let weights = [1u32, 2, 3, 4];
        let in_flight = [0u32; 4];
        let mut rng = SplitMix(7);
        let mut counts = [0u32; 4];
        let picks = 60_000;
        for _ in 0..picks {
            counts
                [pick_least_request(&weights, &in_flight, |_| true, rng.next()).expect("pick")] +=
                1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let expected = picks * k as u32 / 6;
            assert!(
                c.abs_diff(expected) <= picks / 100,
                "endpoint {k}: {c} vs {expected}"
            );
        }
    }

    #[test]
    fn balance_least_request_weights_under_sustained_load() {
        // A closed loop: 40 requests always outstanding; each step one completes, at an
        // endpoint chosen in proportion to its weight among the busy ones (an endpoint of
        // weight w serves w times as fast), and a new one is picked. In the steady state the
        // picks follow the weights.
        let weights = [1u32, 2, 3, 4];
        let mut in_flight = [0u32; 4];
        let mut rng = SplitMix(42);
        let mut counts = [0u64; 4];
        for step in 0..200_000 {
            if in_flight.iter().sum::<u32>() >= 40 {
                let busy: u64 = (0..4)
                    .filter(|&i| in_flight[i] > 0)
                    .map(|i| u64::from(weights[i]))
                    .sum();
                let mut r = rng.next() % busy;
                for i in (0..4).filter(|&i| in_flight[i] > 0) {
                    if r < u64::from(weights[i]) {
                        in_flight[i] -= 1;
                        break;
                    }
                    r -= u64::from(weights[i]);
                }
            }
            let i = pick_least_request(&weights, &in_flight, |_| true, rng.next()).expect("pick");
            in_flight[i] += 1;
            if step >= 10_000 {
                counts[i] += 1;
            }
        }
        let total: u64 = counts.iter().sum();
        for (k, &c) in counts.iter().enumerate() {
            let share = c as f64 / total as f64;
            let expected = f64::from(weights[k]) / 10.0;
            assert!(
                (share - expected).abs() < 0.02,
                "endpoint {k}: {share} vs {expected}"
            );
        }
    }

    #[test]
    fn balance_least_request_lower_relative_load_wins() {
        // Two endpoints: exactly one pair, so every pick compares them.
        let mut rng = SplitMix(3);
        for _ in 0..100 {
            let r = rng.next();
            // (4+1)/1 = 5 against (9+1)/4 = 2.5: the second.
            assert_eq!(pick_least_request(&[1, 4], &[4, 9], |_| true, r), Some(1));
            // (1+1)/2 = 1 against (3+1)/4 = 1: a tie, the first drawn candidate wins,
            // which is either one depending on the draw; both are valid.
            assert!(pick_least_request(&[2, 4], &[1, 3], |_| true, r).is_some());
        }
        // The tie goes to the first candidate: the one drawn from the low bits.
        assert_eq!(pick_least_request(&[2, 4], &[1, 3], |_| true, 0), Some(0));
        assert_eq!(
            pick_least_request(&[2, 4], &[1, 3], |_| true, u64::from(u32::MAX)),
            Some(1)
        );
    }

    #[test]
    fn balance_least_request_unavailable_and_degenerate_inputs() {
        let mut rng = SplitMix(9);
        assert_eq!(pick_least_request(&[], &[], |_| true, 5), None);
        assert_eq!(pick_least_request(&[1, 1], &[], |_| true, 5), None);
        assert_eq!(
            pick_least_request(&[0, 0, 0], &[0, 0, 0], |_| true, 5),
            None
        );
        assert_eq!(
            pick_least_request(&[1, 2, 3], &[0, 0, 0], |_| false, 5),
            None
        );
        for _ in 0..1000 {
            let r = rng.next();
            // One available endpoint: it, whatever its load.
            assert_eq!(
                pick_least_request(&[1, 1, 1, 1], &[0, 0, 500, 0], |i| i == 2, r),
                Some(2)
            );
            // Only even endpoints available: never an odd one.
            let i = pick_least_request(&[3; 9], &[0; 9], |i| i % 2 == 0, r).expect("pick");
            assert_eq!(i % 2, 0);
            // Weight 0 never picked.
            assert_ne!(
                pick_least_request(&[0, 1, 1], &[0, 9, 9], |_| true, r),
                Some(0)
            );
            // Extra in-flight entries are ignored.
            assert_eq!(pick_least_request(&[1], &[0, 0, 0], |_| true, r), Some(0));
        }
    }
}
