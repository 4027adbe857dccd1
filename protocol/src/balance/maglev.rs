//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016, §3.4), with weights as Envoy's `MAGLEV` load balancer adds them.
//!
//! Owns [`Maglev`]: the lookup table built from the endpoints' identities and weights, and the
//! lookup of a key's hash in it. Each endpoint gets a permutation of the table's slots from two
//! hashes of its identity (`offset = h0 % M`, `skip = h1 % (M − 1) + 1`, slot `j` of the
//! permutation = `(offset + j · skip) % M`); the endpoints then take turns claiming the next
//! free slot of their permutation until the table is full. Because `M` is prime, every `skip`
//! is coprime with it and each permutation visits every slot.
//!
//! Properties callers rely on:
//! * **Stable across hosts.** The table depends only on the set of (identity, weight) pairs:
//!   the hashes are [`super::xxhash64`] (stable, seeds 0 and 1 as in Envoy) and the endpoints
//!   take their turns in the order of their identity bytes, not in the order given. Two
//!   gateway hosts with the same endpoint set send a key to the same endpoint.
//! * **Balance.** Each endpoint holds a share of the slots proportional to its weight (the
//!   table is `M` ≫ endpoints, so the rounding is ≈ 1/M).
//! * **Minimal disruption.** Removing one of `n` endpoints moves the keys it held and only a
//!   few others (the paper's Figure 11: near-minimal, not exactly minimal); adding one moves
//!   ≈ 1/(n+1) of the keys. Marking an endpoint unavailable (the `available` argument of
//!   [`Maglev::lookup`]) instead of rebuilding moves exactly its keys and no other.
//!
//! Weights (Envoy's rule): at turn `k` an endpoint of weight `w` claims a slot only while
//! `k · w ≥ claimed_so_far · w_max`, so the heaviest endpoint claims one slot per turn and one
//! of a third of its weight one every third turn. Envoy computes this with normalized `f64`
//! weights; here it is exact integer arithmetic.

use super::hash::xxhash64;

/// The default table size: 65537, Envoy's default, the prime the Maglev paper uses in its
/// evaluation. Memory: 4 bytes per slot (256 KiB); a build costs ≈ M steps plus hashing.
pub const DEFAULT_TABLE_SIZE: usize = 65_537;

/// The largest table size: 5 000 011 (a prime; Envoy's upper bound too). Larger requests are
/// clamped to it.
pub const MAX_TABLE_SIZE: usize = 5_000_011;

/// Marks a free slot while the table is being filled.
const FREE: u32 = u32::MAX;

/// A Maglev lookup table: slot → index of an endpoint in the `ids` slice given to
/// [`Maglev::build`].
///
/// Built once per endpoint-set change (configuration load, membership change) and shared
/// read-only by every worker; lookups take `&self`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    /// Builds the table for the endpoints `ids[i]` (their identities, e.g. `b"10.0.0.1:80"`)
    /// with weights `weights[i]`.
    ///
    /// Called when a route's endpoint set or weights change, never per request. `table_size`
    /// should be a prime well above the endpoint count (Envoy advises ≥ 100 × the endpoints;
    /// [`DEFAULT_TABLE_SIZE`] suits up to a few hundred): when it is not prime it is rounded
    /// UP to the next prime, at least 2, and clamped to [`MAX_TABLE_SIZE`]; [`Maglev::len`]
    /// gives the size used. With fewer slots than endpoints some endpoints get no slot.
    ///
    /// Endpoints are `0..min(ids.len(), weights.len())`; those of weight 0 get no slot; with
    /// no endpoint of weight > 0 the table is empty and every lookup gives `None`. Identities
    /// should be unique: two equal ones get the same permutation and share its slots, and
    /// which of the two indexes holds which slot then depends on their order.
    ///
    /// Cost: two hashes per endpoint, one sort of the endpoints, one allocation of the table
    /// and one of the per-endpoint build state, and ≈ `M · ln M` steps in the worst case
    /// (typically a few milliseconds for M = 65537). No panic for any input.
    pub fn build(ids: &[&[u8]], weights: &[u32], table_size: usize) -> Maglev {
        let n = ids.len().min(weights.len()).min(FREE as usize);
        let m = next_prime(table_size.clamp(2, MAX_TABLE_SIZE));
        let mut entries: Vec<Entry<'_>> = (0..n)
            .filter(|&i| weights[i] > 0)
            .map(|i| {
                let id = ids[i];
                Entry {
                    index: i as u32,
                    id,
                    weight: u64::from(weights[i]),
                    offset: xxhash64(id, 0) % m as u64,
                    skip: xxhash64(id, 1) % (m as u64 - 1) + 1,
                    next: 0,
                    target: 0,
                }
            })
            .collect();
        if entries.is_empty() {
            return Maglev {
                table: Box::new([]),
            };
        }
        // Turns in the order of the identities, so the input order does not matter.
        entries.sort_unstable_by(|a, b| (a.id, a.weight, a.index).cmp(&(b.id, b.weight, b.index)));
        let max_weight = entries.iter().map(|e| e.weight).max().unwrap_or(1);

        let mut table = vec![FREE; m].into_boxed_slice();
        let mut filled = 0usize;
        // The heaviest endpoint claims a slot every turn, so at most `m` turns fill the table.
        let mut turn: u64 = 1;
        while filled < m {
            for e in entries.iter_mut() {
                if filled == m {
                    break;
                }
                // Envoy: `if (iteration * entry.weight_ < entry.target_weight_) continue;`
                if turn * e.weight < e.target {
                    continue;
                }
                e.target += max_weight;
                // The first free slot of this endpoint's permutation; it exists because the
                // table is not full and the permutation visits every slot (M prime).
                for _ in 0..m {
                    let slot = ((e.offset + e.skip * (e.next % m as u64)) % m as u64) as usize;
                    e.next += 1;
                    if table[slot] == FREE {
                        table[slot] = e.index;
                        filled += 1;
                        break;
                    }
                }
            }
            turn += 1;
        }
        Maglev { table }
    }

    /// The endpoint for a key: an index into the `ids` given to [`Maglev::build`], or `None`
    /// when the table is empty or no endpoint in it is available.
    ///
    /// Called once per request with `key_hash` of the affinity key ([`super::key_hash`]).
    /// The key's slot is `hash % M`. When that slot's endpoint is unavailable, the lookup walks
    /// forward through the table (wrapping, at most `M` slots) to the first slot whose
    /// endpoint is available. The walk is deterministic, so while an endpoint is down its keys
    /// all go to the same fallbacks on every worker and host, and they spread over the others
    /// as the table's slots do (the table interleaves endpoints pseudo-randomly). The paper
    /// rebuilds the table without the failed backend instead; the walk costs no rebuild and
    /// moves no key of an available endpoint.
    ///
    /// Cost: one division, one table read and one call of `available` when the slot's
    /// endpoint is up (one cache miss on a cold 256 KiB table); with `k` of `n` endpoints down,
    /// ≈ `n / (n − k)` slots on average. No allocation, no panic.
    pub fn lookup(&self, hash: u64, available: impl Fn(usize) -> bool) -> Option<usize> {
        let m = self.table.len();
        if m == 0 {
            return None;
        }
        let start = (hash % m as u64) as usize;
        let (head, tail) = self.table.split_at(start);
        tail.iter()
            .chain(head)
            .map(|&i| i as usize)
            .find(|&i| available(i))
    }

    /// The number of slots (the prime `M` used), 0 when built with no endpoint of weight > 0.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when the table has no slot: every lookup gives `None`.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The endpoint index holding `slot` (`slot < len()`), for diagnostics and tests.
    pub fn slot(&self, slot: usize) -> Option<usize> {
        self.table.get(slot).map(|&i| i as usize)
    }
}

/// One endpoint's state while the table is filled (Envoy's `TableBuildEntry`).
struct Entry<'a> {
    index: u32,
    id: &'a [u8],
    weight: u64,
    offset: u64,
    skip: u64,
    /// Position in this endpoint's permutation of the next slot to try.
    next: u64,
    /// Slots claimed so far × the largest weight: the weighting threshold.
    target: u64,
}

/// The smallest prime ≥ `n` (n ≥ 2), by trial division: ≤ √n divisions per candidate, and
/// prime gaps below 5 000 011 are short, so this is microseconds.
fn next_prime(n: usize) -> usize {
    (n.max(2)..)
        .find(|&c| is_prime(c))
        .unwrap_or(MAX_TABLE_SIZE)
}

fn is_prime(n: usize) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::key_hash;

    fn ids(names: &[String]) -> Vec<&[u8]> {
        names.iter().map(|s| s.as_bytes()).collect()
    }

    fn endpoints(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("10.0.0.{i}:80")).collect()
    }

    /// Hashes of 100 000 distinct keys.
    fn keys() -> Vec<u64> {
        (0..100_000)
            .map(|k| key_hash(format!("session-{k}").as_bytes()))
            .collect()
    }

    /// The identity each key maps to.
    fn owners<'a>(table: &Maglev, names: &'a [String], keys: &[u64]) -> Vec<&'a str> {
        keys.iter()
            .map(|&h| names[table.lookup(h, |_| true).expect("endpoint")].as_str())
            .collect()
    }

    fn slots_per_endpoint(table: &Maglev, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for s in 0..table.len() {
            counts[table.slot(s).expect("slot")] += 1;
        }
        counts
    }

    #[test]
    fn balance_maglev_table_size_is_a_prime() {
        let names = endpoints(0..3);
        let build = |size| Maglev::build(&ids(&names), &[1, 1, 1], size).len();
        assert_eq!(build(DEFAULT_TABLE_SIZE), 65_537);
        assert_eq!(build(65_536), 65_537);
        assert_eq!(build(100), 101);
        assert_eq!(build(7), 7);
        assert_eq!(build(0), 2);
        assert_eq!(build(usize::MAX), MAX_TABLE_SIZE);
        assert!(is_prime(MAX_TABLE_SIZE));
        assert!(!is_prime(65_535) && !is_prime(1) && !is_prime(0) && is_prime(2));
    }

    #[test]
    fn balance_maglev_key_sticks_to_one_endpoint() {
        let names = endpoints(0..10);
        let weights = [1u32; 10];
        let a = Maglev::build(&ids(&names), &weights, DEFAULT_TABLE_SIZE);
        let b = Maglev::build(&ids(&names), &weights, DEFAULT_TABLE_SIZE);
        assert_eq!(a, b, "a rebuild gives the same table");
        let h = key_hash(b"user-42");
        let first = a.lookup(h, |_| true).expect("endpoint");
        for _ in 0..10 {
            assert_eq!(a.lookup(h, |_| true), Some(first));
            assert_eq!(b.lookup(h, |_| true), Some(first));
        }
        // Every slot is filled with one of the endpoints, and the slots are shared evenly.
        for c in slots_per_endpoint(&a, 10) {
            assert!(c.abs_diff(6_554) <= 2, "{c} slots");
        }
    }

    #[test]
    fn balance_maglev_order_of_ids_does_not_matter() {
        let names = endpoints(0..12);
        let weights: Vec<u32> = (0..12).map(|i| 1 + i % 4).collect();
        let forward = Maglev::build(&ids(&names), &weights, 1_009);
        // Reversed and rotated copies of the same (identity, weight) pairs.
        let mut order: Vec<usize> = (0..12).rev().collect();
        order.rotate_left(5);
        let names2: Vec<String> = order.iter().map(|&i| names[i].clone()).collect();
        let weights2: Vec<u32> = order.iter().map(|&i| weights[i]).collect();
        let shuffled = Maglev::build(&ids(&names2), &weights2, 1_009);
        for s in 0..forward.len() {
            let a = &names[forward.slot(s).expect("slot")];
            let b = &names2[shuffled.slot(s).expect("slot")];
            assert_eq!(a, b, "slot {s}");
        }
    }

    #[test]
    fn balance_maglev_removing_an_endpoint_moves_few_keys() {
        let keys = keys();
        let all = endpoints(0..10);
        let before = owners(
            &Maglev::build(&ids(&all), &[1; 10], DEFAULT_TABLE_SIZE),
            &all,
            &keys,
        );
        let gone = all[4].clone();
        let rest: Vec<String> = all.iter().filter(|n| **n != gone).cloned().collect();
        let after = owners(
            &Maglev::build(&ids(&rest), &[1; 9], DEFAULT_TABLE_SIZE),
            &rest,
            &keys,
        );
        let on_gone = before.iter().filter(|o| **o == gone).count();
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let moved_others = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != gone && b != a)
            .count();
        assert!(on_gone.abs_diff(10_000) < 500, "{on_gone} keys were on it");
        // Every key of the removed endpoint moved; of the others, under 1 % (the paper's
        // near-minimal disruption: ≈ 0.3 % here), so the total stays near 1/10.
        assert!(moved >= on_gone);
        assert!(
            moved_others * 100 <= keys.len() - on_gone,
            "{moved_others} others moved"
        );
        assert!(moved * 1000 <= keys.len() * 115, "{moved} keys moved");
    }

    #[test]
    fn balance_maglev_adding_an_endpoint_moves_about_one_in_eleven() {
        let keys = keys();
        let ten = endpoints(0..10);
        let eleven = endpoints(0..11);
        let before = owners(
            &Maglev::build(&ids(&ten), &[1; 10], DEFAULT_TABLE_SIZE),
            &ten,
            &keys,
        );
        let after = owners(
            &Maglev::build(&ids(&eleven), &[1; 11], DEFAULT_TABLE_SIZE),
            &eleven,
            &keys,
        );
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let to_new = after.iter().filter(|a| **a == eleven[10]).count();
        // 1/11 ≈ 9.09 %: the new endpoint's share, taken from the others.
        assert!(
            to_new.abs_diff(9_091) < 500,
            "{to_new} keys on the new endpoint"
        );
        // The keys that moved are (nearly all) those the new endpoint took: ≈ 9.3 % in all.
        assert!(
            moved >= to_new && moved * 1000 <= keys.len() * 105,
            "{moved} keys moved"
        );
    }

    #[test]
    fn balance_maglev_unavailable_moves_only_its_keys() {
        let keys = keys();
        let names = endpoints(0..10);
        let table = Maglev::build(&ids(&names), &[1; 10], DEFAULT_TABLE_SIZE);
        let mut fallbacks = [0usize; 10];
        for &h in &keys {
            let home = table.lookup(h, |_| true).expect("endpoint");
            let with_3_down = table.lookup(h, |i| i != 3).expect("endpoint");
            if home == 3 {
                assert_ne!(with_3_down, 3);
                fallbacks[with_3_down] += 1;
                // Deterministic: the same key falls back to the same endpoint.
                assert_eq!(table.lookup(h, |i| i != 3), Some(with_3_down));
            } else {
                assert_eq!(
                    with_3_down, home,
                    "a key of an available endpoint never moves"
                );
            }
        }
        // The fallback traffic spreads over the nine others (≈ 1 100 each), not onto one.
        for (i, &f) in fallbacks.iter().enumerate().filter(|&(i, _)| i != 3) {
            assert!((700..1_600).contains(&f), "endpoint {i} took {f}");
        }
        assert_eq!(table.lookup(keys[0], |_| false), None);
    }

    #[test]
    fn balance_maglev_weights_share_the_slots() {
        let names = endpoints(0..2);
        let table = Maglev::build(&ids(&names), &[3, 1], DEFAULT_TABLE_SIZE);
        let counts = slots_per_endpoint(&table, 2);
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((ratio - 3.0).abs() <= 0.15, "{counts:?}");
        // Five endpoints with weights 1..=5: shares within 5 % of w / 15.
        let names = endpoints(0..5);
        let weights = [1u32, 2, 3, 4, 5];
        let table = Maglev::build(&ids(&names), &weights, DEFAULT_TABLE_SIZE);
        for (i, c) in slots_per_endpoint(&table, 5).into_iter().enumerate() {
            let expected = DEFAULT_TABLE_SIZE as f64 * f64::from(weights[i]) / 15.0;
            assert!(
                (c as f64 - expected).abs() <= expected * 0.05,
                "endpoint {i}: {c}"
            );
        }
    }

    #[test]
    fn balance_maglev_degenerate_inputs() {
        let names = endpoints(0..3);
        let empty = Maglev::build(&[], &[], DEFAULT_TABLE_SIZE);
        assert!(empty.is_empty() && empty.lookup(1, |_| true).is_none());
        let zero = Maglev::build(&ids(&names), &[0, 0, 0], DEFAULT_TABLE_SIZE);
        assert!(zero.is_empty() && zero.lookup(1, |_| true).is_none());
        // Mismatched lengths: only the first min(ids, weights) endpoints exist.
        let short = Maglev::build(&ids(&names), &[1], 101);
        assert!((0..short.len()).all(|s| short.slot(s) == Some(0)));
        // Weight 0 endpoints hold no slot.
        let some = Maglev::build(&ids(&names), &[1, 0, 1], 101);
        assert!((0..some.len()).all(|s| some.slot(s) != Some(1)));
        // More endpoints than slots: the table is still full, and lookups work.
        let many = endpoints(0..20);
        let tiny = Maglev::build(&ids(&many), &[1; 20], 3);
        assert_eq!(tiny.len(), 3);
        assert!((0..3).all(|s| tiny.slot(s).is_some_and(|i| i < 20)));
        assert!(tiny.lookup(u64::MAX, |_| true).is_some());
        // Duplicate identities share one permutation and still fill the table.
        let dup = [b"a".as_slice(), b"a".as_slice()];
        let t = Maglev::build(&dup, &[1, 1], 11);
        assert!((0..11).all(|s| t.slot(s).is_some_and(|i| i < 2)));
    }
}
