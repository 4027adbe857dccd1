//! Weighted random selection: each available endpoint is chosen with probability
//! `weight / Σ weights of the available ones`, from one random word.
//!
//! Owns [`pick_weighted_random`]. Stateless, so unlike [`super::SmoothRoundRobin`] it needs no
//! per-worker state and gives the same distribution whatever the number of workers; over short
//! windows it is burstier than the round robin (picks are independent), over long ones the
//! shares converge to the weights. It is also the building block for "random among the
//! available" (all weights equal).

/// Picks an endpoint at random in proportion to `weights`: an index into `weights`, or `None`
/// when no endpoint is available with a weight above 0.
///
/// Called once per request (and per retry attempt) by a worker, with a fresh random word.
///
/// Two passes: the first sums the weights of the available endpoints (`available(i)` asked
/// once per endpoint of weight > 0), the second maps `random` onto `0..total` by
/// multiply-shift (`(random · total) >> 64` in `u128`, which uses the word's high bits and
/// needs no division) and walks the available endpoints to the one whose weight range holds
/// it. `available` is asked again in the second pass, so it must answer the same both times
/// (a snapshot, not a live flag that may flip between the passes); if it does not, the
/// answer is still an endpoint it accepted, or `None`.
///
/// Bias: with `total` < 2^64 the multiply-shift maps at most ⌈2^64 / total⌉ words to each
/// value, a relative bias below `total / 2^64` — immeasurable for real weights.
///
/// Cost: O(n), two passes, no allocation, no panic for any input (the sum is `u64`: at most
/// `n · (2^32 − 1)`).
pub fn pick_weighted_random(
    weights: &[u32],
    available: impl Fn(usize) -> bool,
    random: u64,
) -> Option<usize> {
    let mut total: u64 = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0 && available(i) {
            total = total.saturating_add(u64::from(w));
        }
    }
    if total == 0 {
        return None;
    }
    let mut target = ((u128::from(random) * u128::from(total)) >> 64) as u64;
    let mut last = None;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0 || !available(i) {
            continue;
        }
        let w = u64::from(w);
        if target < w {
            return Some(i);
        }
        target -= w;
        last = Some(i);
    }
    // Reached only when `available` changed its answers between the passes.
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::SplitMix;
    use std::cell::Cell;

    #[test]
    fn balance_weighted_random_follows_the_weights() {
        let weights = [1u32, 0, 3, 6];
        let mut rng = SplitMix(11);
        let mut counts = [0u32; 4];
        let picks = 100_000;
        for _ in 0..picks {
            counts[pick_weighted_random(&weights, |_| true, rng.next()).expect("pick")] += 1;
        }
        assert_eq!(counts[1], 0, "weight 0 is never picked");
        for (k, &c) in counts.iter().enumerate() {
            let expected = picks * weights[k] / 10;
            // ±1.5 % of all picks: more than 4 standard deviations for these shares.
            assert!(
                c.abs_diff(expected) <= picks * 15 / 1000,
                "endpoint {k}: {c} vs {expected}"
            );
        }
    }

    #[test]
    fn balance_weighted_random_maps_the_word_onto_the_ranges() {
        // The word's position in 0..2^64 selects the weight range: [0, 1/4) → 0, [1/4, 1) → 1.
        let weights = [1u32, 3];
        let quarter = 1u64 << 62;
        assert_eq!(pick_weighted_random(&weights, |_| true, 0), Some(0));
        assert_eq!(
            pick_weighted_random(&weights, |_| true, quarter - 1),
            Some(0)
        );
        assert_eq!(pick_weighted_random(&weights, |_| true, quarter), Some(1));
        assert_eq!(pick_weighted_random(&weights, |_| true, u64::MAX), Some(1));
        // Unavailable endpoints leave the ranges: with 0 down, every word goes to 1.
        assert_eq!(pick_weighted_random(&weights, |i| i != 0, 0), Some(1));
    }

    #[test]
    fn balance_weighted_random_splits_the_word_range_exactly() {
        // Weights 1, 2, 3: the six sixths of 0..2^64 go to 0, 1, 1, 2, 2, 2. Word v lands in
        // sixth ⌊6v / 2^64⌋, so sixth k is [⌈k·2^64 / 6⌉, ⌈(k+1)·2^64 / 6⌉ − 1]: both ends of
        // each are checked, so every boundary is.
        let weights = [1u32, 2, 3];
        let expected = [0usize, 1, 1, 2, 2, 2];
        for (k, &e) in expected.iter().enumerate() {
            let start = |k: u128| (k << 64).div_ceil(6);
            let first = start(k as u128) as u64;
            let last = (start(k as u128 + 1) - 1) as u64;
            assert_eq!(
                pick_weighted_random(&weights, |_| true, first),
                Some(e),
                "sixth {k}"
            );
            assert_eq!(
                pick_weighted_random(&weights, |_| true, last),
                Some(e),
                "sixth {k}"
            );
            if k > 0 {
                let before = pick_weighted_random(&weights, |_| true, first - 1);
                assert_eq!(before, Some(expected[k - 1]), "just before sixth {k}");
            }
        }
    }

    #[test]
    fn balance_weighted_random_skips_unavailable() {
        let weights = [5u32; 10];
        let mut rng = SplitMix(5);
        let mut counts = [0u32; 10];
        for _ in 0..30_000 {
            let i = pick_weighted_random(&weights, |i| i % 3 == 0, rng.next()).expect("pick");
            counts[i] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            if i % 3 == 0 {
                assert!(c.abs_diff(7_500) < 400, "endpoint {i}: {c}");
            } else {
                assert_eq!(c, 0, "endpoint {i} is unavailable");
            }
        }
    }

    #[test]
    fn balance_weighted_random_degenerate_inputs() {
        assert_eq!(pick_weighted_random(&[], |_| true, 1), None);
        assert_eq!(pick_weighted_random(&[0, 0], |_| true, 1), None);
        assert_eq!(pick_weighted_random(&[1, 2], |_| false, 1), None);
        assert_eq!(
            pick_weighted_random(&[u32::MAX; 3], |_| true, u64::MAX),
            Some(2)
        );
        // An `available` that flips between the passes still yields an endpoint it accepted
        // in the second pass, or None.
        let calls = Cell::new(0usize);
        let flaky = |i: usize| {
            calls.set(calls.get() + 1);
            calls.get() <= 3 || i == 0
        };
        assert_eq!(pick_weighted_random(&[1, 1, 1], flaky, u64::MAX), Some(0));
    }
}
