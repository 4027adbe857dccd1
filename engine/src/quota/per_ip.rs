//! The per-client-address limiter of `[routes.rate_limit] per_ip`: a fixed-size table shared by
//! every worker of the process, so its memory is bounded whatever the number of clients.
//!
//! Owns the table layout and its replacement rule. Each entry is one `AtomicU64` holding a
//! fingerprint of (route, address) (24 bits), the throttling window's tag (16 bits) and the
//! count (24 bits); an entry is claimed, counted and recycled with compare-and-swap only (no
//! lock). A (route, address) pair may live in two entries (two-way set-associative, both in
//! the same cache line): its own live entry is counted; else a free or stale entry (older
//! window) is claimed; else, with both entries live for other clients, the one with the smaller
//! count is evicted and starts over.
//!
//! Exactness: exact while the table holds the live pairs of the window. Eviction only ever
//! forgets counts (a client may then get more than `per_ip` in that window; never fewer), and
//! only happens when more than two live pairs hash to the same entry pair; with
//! [`ENTRIES`] = 65 536 entries that is rare below tens of thousands of active clients per
//! window. Two pairs with the same 24-bit fingerprint in the same entry pair share a count (a
//! chance of about 1 in 8 million per pair of clients). IPv6 clients are counted per /64
//! prefix (one subscriber's allocation: otherwise a client could rotate addresses freely);
//! IPv4-mapped IPv6 addresses count as their IPv4 address. Counts are per host: they are not
//! shared through Redis (nginx's `limit_req` zones are per host too).
//!
//! It must not allocate or read a clock per call: the window is a parameter.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries in the table (a power of two): 512 KiB per process.
pub const ENTRIES: usize = 1 << 16;
/// Largest count an entry holds (`MAX_PER_IP` in the config is the same number).
pub const MAX_PER_IP_COUNT: u64 = (1 << 24) - 1;

const COUNT_MASK: u64 = MAX_PER_IP_COUNT;
const TAG_SHIFT: u32 = 24;
const TAG_MASK: u64 = 0xFFFF;
const FP_SHIFT: u32 = 40;
const FP_MASK: u64 = 0xFF_FFFF;

#[inline]
fn pack(fp: u64, tag: u64, count: u64) -> u64 {
    (fp << FP_SHIFT) | (tag << TAG_SHIFT) | count.min(COUNT_MASK)
}

#[inline]
fn fp_of(w: u64) -> u64 {
    w >> FP_SHIFT
}

#[inline]
fn tag_of(w: u64) -> u64 {
    (w >> TAG_SHIFT) & TAG_MASK
}

#[inline]
fn count_of(w: u64) -> u64 {
    w & COUNT_MASK
}

/// The address bits a client is counted by: IPv4 (also when IPv4-mapped), or the /64 prefix
/// of an IPv6 address.
#[inline]
pub fn client_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u64::from(u32::from(v4)),
            // The /64 prefix, marked so it never equals an IPv4 value.
            None => (u128::from(v6) >> 64) as u64 | (1 << 63),
        },
    }
}

/// A 64-bit mix (the SplitMix64 finaliser): every input bit moves every output bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The process's per-address table.
#[derive(Debug)]
pub struct IpTable {
    entries: Box<[AtomicU64]>,
    seed: u64,
}

impl IpTable {
    /// An empty table with a random hash seed (so that colliding addresses cannot be chosen in
    /// advance). Allocates [`ENTRIES`] words once.
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // Without OS randomness the table still works; only collisions become predictable.
        let _ = getrandom::getrandom(&mut seed);
        Self::with_seed(u64::from_le_bytes(seed))
    }

    /// An empty table with a fixed seed (tests).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            entries: (0..ENTRIES).map(|_| AtomicU64::new(0)).collect(),
            seed,
        }
    }

    /// Counts one call of client `ip` on the route whose seed is `route_seed` in window
    /// `window_id`, unless the client already made `limit` calls in it. Returns the count
    /// after the call, or `Err(count)` when the limit is reached (the call is not counted).
    /// Cost: two loads and one compare-and-swap, no allocation.
    pub fn admit(
        &self,
        route_seed: u64,
        ip: IpAddr,
        limit: u64,
        window_id: u64,
    ) -> Result<u64, u64> {
        let h = mix(client_bits(ip) ^ mix(route_seed ^ self.seed));
        let mask = (ENTRIES - 1) as u64;
        let i = (h & mask) as usize;
        let j = i ^ 1;
        let fp = ((h >> 40) & FP_MASK) | 1; // never 0: 0 is an empty entry
        let tag = window_id & TAG_MASK;
        let next_tag = (tag + 1) & TAG_MASK;
        let limit = limit.min(MAX_PER_IP_COUNT);
        let cas = |idx: usize, old: u64, new: u64| {
            self.entries[idx]
                .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        };
        loop {
            let words = [
                (i, self.entries[i].load(Ordering::Acquire)),
                (j, self.entries[j].load(Ordering::Acquire)),
            ];
            // 1. The client's live entry (its window, or the next one when another worker's
            //    clock is a little ahead).
            if let Some(&(idx, w)) = words
                .iter()
                .find(|(_, w)| fp_of(*w) == fp && (tag_of(*w) == tag || tag_of(*w) == next_tag))
            {
                let count = count_of(w);
                if count >= limit {
                    return Err(count);
                }
                if cas(idx, w, w + 1) {
                    return Ok(count + 1);
                }
                continue;
            }
            // 2. A free entry, or one left from an older window.
            if let Some(&(idx, w)) = words
                .iter()
                .find(|(_, w)| *w == 0 || (tag_of(*w) != tag && tag_of(*w) != next_tag))
            {
                if cas(idx, w, pack(fp, tag, 1)) {
                    return Ok(1);
                }
                continue;
            }
            // 3. Both live for other clients: evict the less active one.
            let (idx, w) = if count_of(words[0].1) <= count_of(words[1].1) {
                words[0]
            } else {
                words[1]
            };
            if cas(idx, w, pack(fp, tag, 1)) {
                return Ok(1);
            }
        }
    }

    /// Calls of `ip` on the route `route_seed` in window `window_id` (0 when it has no entry).
    /// For tests and diagnostics.
    pub fn count(&self, route_seed: u64, ip: IpAddr, window_id: u64) -> u64 {
        let h = mix(client_bits(ip) ^ mix(route_seed ^ self.seed));
        let i = (h & (ENTRIES - 1) as u64) as usize;
        let fp = ((h >> 40) & FP_MASK) | 1;
        [i, i ^ 1]
            .iter()
            .map(|&idx| self.entries[idx].load(Ordering::Acquire))
            .find(|w| fp_of(*w) == fp && tag_of(*w) == window_id & TAG_MASK)
            .map_or(0, count_of)
    }
}

impl Default for IpTable {
    fn default() -> Self {
        Self::new()
    }
}

/// A route's seed for the table: a hash of its id, computed when the snapshot is built, so
/// that a reload keeps the counts of a route whose id is unchanged.
pub fn route_seed(route_id: &str) -> u64 {
    route_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn limit_per_address_per_route_per_window() {
        let t = IpTable::with_seed(7);
        let r = route_seed("r");
        let ip = v4(192, 0, 2, 1);
        for n in 1..=3 {
            assert_eq!(t.admit(r, ip, 3, 100), Ok(n));
        }
        assert_eq!(t.admit(r, ip, 3, 100), Err(3));
        assert_eq!(t.count(r, ip, 100), 3);
        // Another address, another route, another window: their own counts.
        assert_eq!(t.admit(r, v4(192, 0, 2, 2), 3, 100), Ok(1));
        assert_eq!(t.admit(route_seed("other"), ip, 3, 100), Ok(1));
        assert_eq!(t.admit(r, ip, 3, 101), Ok(1));
        assert_eq!(t.count(r, ip, 101), 1);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let c: IpAddr = "2001:db8:1:3::1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(client_bits(a), client_bits(b));
        assert_ne!(client_bits(a), client_bits(c));
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(client_bits(mapped), client_bits(v4(192, 0, 2, 1)));
        let t = IpTable::with_seed(1);
        assert_eq!(t.admit(1, a, 1, 5), Ok(1));
        assert_eq!(t.admit(1, b, 1, 5), Err(1));
        assert_eq!(t.admit(1, c, 1, 5), Ok(1));
    }

    #[test]
    fn memory_is_bounded_and_eviction_never_refuses_a_new_client() {
        let t = IpTable::with_seed(3);
        // Four times more clients than entries, each calling once: every first call passes.
        for n in 0..(4 * ENTRIES as u32) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n));
            assert_eq!(t.admit(9, ip, 1, 1), Ok(1), "{ip}");
        }
        assert_eq!(t.entries.len(), ENTRIES);
    }

    #[test]
    fn exact_under_contention_for_one_client() {
        let t = std::sync::Arc::new(IpTable::with_seed(5));
        let ip = v4(198, 51, 100, 7);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..2_000)
                        .filter(|_| t.admit(1, ip, 5_000, 3).is_ok())
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        assert_eq!(admitted, 5_000);
    }

    #[test]
    fn a_worker_slightly_ahead_does_not_reset_the_count() {
        let t = IpTable::with_seed(11);
        let ip = v4(203, 0, 113, 1);
        assert_eq!(t.admit(1, ip, 10, 41), Ok(1)); // a worker already in window 41
        assert_eq!(t.admit(1, ip, 10, 40), Ok(2)); // one still in 40 counts into it
        assert_eq!(t.admit(1, ip, 10, 41), Ok(3));
    }
}
