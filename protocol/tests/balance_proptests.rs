//! Property tests of `torii_protocol::balance`: for any weights, availability, loads, random
//! words and keys, the pickers never panic and only ever return an endpoint that may be
//! picked, returning `None` exactly when there is none.

use proptest::prelude::*;
use torii_protocol::balance::{
    key_hash, pick_least_request, pick_weighted_random, Backoff, Maglev, OutlierPolicy,
    SmoothRoundRobin,
};

/// Weights biased towards the interesting values: 0 (drained), small ones, and the extremes.
fn weight() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX), any::<u32>()]
}

/// Up to 12 endpoints: (weight, available).
fn endpoints() -> impl Strategy<Value = Vec<(u32, bool)>> {
    proptest::collection::vec((weight(), any::<bool>()), 0..12)
}

fn split(eps: &[(u32, bool)]) -> (Vec<u32>, Vec<bool>) {
    eps.iter().copied().unzip()
}

/// True when endpoint `i` may be picked: weight above 0 and available.
fn usable(weights: &[u32], up: &[bool], i: usize) -> bool {
    weights.get(i).is_some_and(|&w| w > 0) && up.get(i).copied().unwrap_or(false)
}

fn any_usable(weights: &[u32], up: &[bool]) -> bool {
    (0..weights.len()).any(|i| usable(weights, up, i))
}

proptest! {
    #[test]
    fn balance_smooth_rr_picks_only_usable(
        eps in endpoints(),
        rounds in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 12), 1..20),
    ) {
        let (weights, _) = split(&eps);
        let mut rr = SmoothRoundRobin::default();
        // Availability changes between picks, as ejections come and go.
        for up in rounds {
            let up = &up[..weights.len()];
            match rr.pick(&weights, |i| up[i]) {
                Some(i) => prop_assert!(usable(&weights, up, i)),
                None => prop_assert!(!any_usable(&weights, up)),
            }
        }
    }

    #[test]
    fn balance_least_request_picks_only_usable(
        eps in endpoints(),
        loads in proptest::collection::vec(any::<u32>(), 0..14),
        random in any::<u64>(),
    ) {
        let (weights, up) = split(&eps);
        let n = weights.len().min(loads.len());
        match pick_least_request(&weights, &loads, |i| up[i], random) {
            Some(i) => prop_assert!(i < n && usable(&weights, &up, i)),
            None => prop_assert!(!any_usable(&weights[..n], &up[..n])),
        }
    }

    #[test]
    fn balance_least_request_never_picks_the_worse_of_two_usable(
        w in (1u32..1000, 1u32..1000),
        load in (any::<u32>(), any::<u32>()),
        random in any::<u64>(),
    ) {
        // With exactly two usable endpoints both are always the candidates: the pick is the
        // one with the lower (load + 1) / weight, whatever the random word.
        let weights = [w.0, w.1];
        let loads = [load.0, load.1];
        let i = pick_least_request(&weights, &loads, |_| true, random).expect("pick");
        let cost = |k: usize| (u64::from(loads[k]) + 1) * u64::from(weights[1 - k]);
        prop_assert!(cost(i) <= cost(1 - i));
    }

    #[test]
    fn balance_weighted_random_picks_only_usable(eps in endpoints(), random in any::<u64>()) {
        let (weights, up) = split(&eps);
        match pick_weighted_random(&weights, |i| up[i], random) {
            Some(i) => prop_assert!(usable(&weights, &up, i)),
            None => prop_assert!(!any_usable(&weights, &up)),
        }
    }

    #[test]
    fn balance_maglev_lookup_returns_only_usable(
        eps in endpoints(),
        table_size in 0usize..400,
        keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..20),
    ) {
        let (weights, up) = split(&eps);
        let names: Vec<Vec<u8>> = (0..weights.len()).map(|i| format!("ep-{i}").into_bytes()).collect();
        let ids: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        let table = Maglev::build(&ids, &weights, table_size);
        prop_assert_eq!(table.is_empty(), weights.iter().all(|&w| w == 0));
        for key in keys {
            let h = key_hash(&key);
            match table.lookup(h, |i| up[i]) {
                Some(i) => prop_assert!(usable(&weights, &up, i)),
                // None only when no endpoint holding a slot is available.
                None => prop_assert!((0..table.len()).all(|s| !table.slot(s).is_some_and(|i| up[i]))),
            }
        }
    }

    #[test]
    fn balance_maglev_mapping_ignores_the_order_of_ids(
        weights in proptest::collection::vec(1u32..5, 1..8),
        rotate in 0usize..8,
        keys in proptest::collection::vec(any::<u64>(), 1..50),
    ) {
        let names: Vec<Vec<u8>> = (0..weights.len()).map(|i| format!("10.1.0.{i}:443").into_bytes()).collect();
        let ids: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        let a = Maglev::build(&ids, &weights, 211);
        let k = rotate % weights.len();
        let (mut ids2, mut weights2) = (ids.clone(), weights.clone());
        ids2.rotate_left(k);
        weights2.rotate_left(k);
        ids2.reverse();
        weights2.reverse();
        let b = Maglev::build(&ids2, &weights2, 211);
        for h in keys {
            let ia = a.lookup(h, |_| true).expect("endpoint");
            let ib = b.lookup(h, |_| true).expect("endpoint");
            prop_assert_eq!(ids[ia], ids2[ib]);
        }
    }

    #[test]
    fn balance_backoff_stays_in_its_window(
        base in any::<u64>(), max in any::<u64>(), retry in any::<u32>(), random in any::<u64>(),
    ) {
        let b = Backoff { base_ms: base, max_ms: max };
        let d = b.delay_ms(retry, random);
        prop_assert!(d <= max);
        let doublings = retry.max(1) - 1;
        if doublings < 64 && base <= u64::MAX >> doublings {
            prop_assert!(d <= base << doublings);
        }
    }

    #[test]
    fn balance_outlier_limits_hold(
        base in any::<u64>(), max in any::<u64>(), percent in any::<u32>(),
        times in any::<u32>(), ejected in 0usize..200, total in 0usize..200,
    ) {
        let p = OutlierPolicy {
            base_ejection_ms: base,
            max_ejection_ms: max,
            max_ejection_percent: percent,
            ..OutlierPolicy::default()
        };
        let t = p.ejection_ms(times);
        prop_assert!(t <= max.max(base) && t >= base.min(max.max(base)));
        if p.may_eject(ejected, total) {
            // Never the last endpoint, never above the percentage except the one-endpoint floor.
            prop_assert!(ejected + 1 < total || (ejected + 1 == total && percent >= 100));
            prop_assert!(
                (ejected + 1) * 100 <= total * percent.min(100) as usize || ejected == 0
            );
        }
    }
}
