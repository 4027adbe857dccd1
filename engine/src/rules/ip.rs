//! `allow_ips` / `deny_ips` in request-path form: [`IpSet`], sorted disjoint address ranges
//! that answer "is this address in the list" with a binary search, no allocation.
//!
//! Networks are turned into inclusive ranges of integers (`u32` for IPv4, `u128` for IPv6),
//! sorted, and merged where they overlap or touch, once per load. An IPv4-mapped IPv6 address
//! (`::ffff:10.1.2.3`, what a dual-stack socket reports for an IPv4 client) is looked up as
//! the IPv4 address it carries.

use std::net::IpAddr;

use crate::config::IpNet;

/// A set of networks, ready for lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

impl IpSet {
    /// The set of `nets` (validated: network addresses, IPv4-mapped ones already IPv4).
    pub fn build(nets: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n.addr.to_canonical() {
                IpAddr::V4(a) => {
                    let span = u32::MAX.checked_shr(u32::from(n.prefix)).unwrap_or(0);
                    let start = u32::from(a) & !span;
                    v4.push((start, start | span));
                }
                IpAddr::V6(a) => {
                    let span = u128::MAX.checked_shr(u32::from(n.prefix)).unwrap_or(0);
                    let start = u128::from(a) & !span;
                    v6.push((start, start | span));
                }
            }
        }
        IpSet {
            v4: merge(v4).into_boxed_slice(),
            v6: merge(v6).into_boxed_slice(),
        }
    }

    /// Whether the set holds no network.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is in one of the networks. No allocation; O(log n).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }
    }
}

/// Sorts ranges and merges those that overlap or touch.
fn merge<T: Copy + Ord + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if last.1.succ().is_none_or(|next| s <= next) => {
                last.1 = last.1.max(e);
            }
            _ => out.push((s, e)),
        }
    }
    out
}

/// Whether `x` is in one of the sorted disjoint `ranges`.
fn find<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(s, _)| s <= x);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, e)| x <= e)
}

mod num_like {
    /// The next integer, `None` at the top.
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for u32 {
        fn succ(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().unwrap();
        let prefix = p.parse().unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        IpNet { addr, prefix }
    }

    fn set(list: &[&str]) -> IpSet {
        IpSet::build(&list.iter().map(|s| net(s)).collect::<Vec<_>>())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn membership_at_the_edges() {
        let s = set(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
        for (a, inside) in [
            ("10.0.0.0", true),
            ("10.255.255.255", true),
            ("9.255.255.255", false),
            ("11.0.0.0", false),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("::ffff:10.1.2.3", true),
            ("::ffff:11.1.2.3", false),
            ("2001:db8::", true),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db9::", false),
            ("::10.1.2.3", false),
        ] {
            assert_eq!(s.contains(ip(a)), inside, "{a}");
        }
        assert!(!IpSet::default().contains(ip("10.0.0.1")));
        assert!(IpSet::default().is_empty() && !s.is_empty());
    }

    #[test]
    fn everything_and_merging() {
        let all = set(&["0.0.0.0/0", "::/0"]);
        assert!(all.contains(ip("255.255.255.255")) && all.contains(ip("ffff::1")));
        let merged = set(&["10.0.0.0/9", "10.128.0.0/9", "10.1.0.0/16"]);
        assert_eq!(merged.v4.len(), 1);
        assert_eq!(merged, set(&["10.0.0.0/8"]));
    }

    proptest! {
        /// The set agrees with checking every network one by one.
        #[test]
        fn agrees_with_a_linear_scan(
            nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..12),
            probes in proptest::collection::vec(any::<u32>(), 1..32),
        ) {
            let nets: Vec<IpNet> = nets
                .into_iter()
                .map(|(a, p)| {
                    let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
                    IpNet { addr: IpAddr::from((a & mask).to_be_bytes()), prefix: p }
                })
                .collect();
            let s = IpSet::build(&nets);
            for p in probes {
                for x in [p, p & 0xffff_ff00] {
                    let a = IpAddr::from(x.to_be_bytes());
                    prop_assert_eq!(s.contains(a), nets.iter().any(|n| n.contains(a)));
                }
            }
        }
    }
}
