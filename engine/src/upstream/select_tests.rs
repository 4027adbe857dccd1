//! Tests of `upstream::select`: policies over a route's endpoint set, tiers and exclusions.

use std::net::SocketAddr;
use std::time::Instant;

use super::group::RouteUpstream;
use super::select::*;
use crate::config::{HashOn, LoadBalancing, Scheme, TargetConfig, TargetProtocol};
use crate::upstream::endpoint::Health;

fn target(port: u16, weight: u32, backup: bool) -> TargetConfig {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    TargetConfig {
        scheme: Scheme::Http,
        host: "127.0.0.1".into(),
        port,
        addr,
        addrs: vec![addr],
        named: false,
        weight,
        backup,
        protocol: TargetProtocol::Http1,
        host_header: format!("127.0.0.1:{port}"),
        url: format!("http://{addr}"),
    }
}

fn picks(
    up: &RouteUpstream,
    policy: &LoadBalancing,
    n: usize,
    hash: impl Fn(usize) -> u64,
) -> Vec<usize> {
    let mut sel = Selector::default();
    let hashing = matches!(policy, LoadBalancing::Hash(_));
    let set = sel.set_for(1, 0, up, hashing);
    let now = Instant::now();
    (0..n)
        .map(|i| {
            sel.pick(0, &set, policy, hash(i), 0, Tried::default(), now, 1)
                .unwrap()
                .index
        })
        .collect()
}

#[test]
fn weighted_round_robin_splits_three_to_one() {
    let up = RouteUpstream::new("r", &[target(1, 3, false), target(2, 1, false)], 1, None);
    let got = picks(&up, &LoadBalancing::RoundRobin, 400, |_| 0);
    assert_eq!(got.iter().filter(|&&i| i == 0).count(), 300);
}

#[test]
fn backups_only_when_no_primary_then_panic() {
    let up = RouteUpstream::new("r", &[target(1, 1, false), target(2, 1, true)], 1, None);
    for policy in [
        LoadBalancing::RoundRobin,
        LoadBalancing::LeastRequest,
        LoadBalancing::Random,
    ] {
        assert!(
            picks(&up, &policy, 20, |_| 0).iter().all(|&i| i == 0),
            "{policy:?}"
        );
    }
    let set = up.endpoints();
    set.endpoints[0].state.set_health(Health::Unhealthy);
    let mut sel = Selector::default();
    let cached = sel.set_for(1, 0, &up, false);
    let now = Instant::now();
    let p = sel
        .pick(
            0,
            &cached,
            &LoadBalancing::RoundRobin,
            0,
            0,
            Tried::default(),
            now,
            1,
        )
        .unwrap();
    assert_eq!(
        p,
        Picked {
            index: 1,
            tier: Tier::Backup
        }
    );
    set.endpoints[1].state.set_health(Health::Unhealthy);
    let p = sel
        .pick(
            0,
            &cached,
            &LoadBalancing::RoundRobin,
            0,
            0,
            Tried::default(),
            now,
            1,
        )
        .unwrap();
    assert_eq!(p.tier, Tier::Panic, "all out: every endpoint is used");
}

#[test]
fn tried_endpoints_are_skipped_until_none_is_left() {
    let up = RouteUpstream::new("r", &[target(1, 1, false), target(2, 1, false)], 1, None);
    let mut sel = Selector::default();
    let cached = sel.set_for(1, 0, &up, false);
    let now = Instant::now();
    let mut tried = Tried::default();
    let first = sel
        .pick(0, &cached, &LoadBalancing::RoundRobin, 0, 0, tried, now, 1)
        .unwrap();
    tried.add(first.index);
    let second = sel
        .pick(0, &cached, &LoadBalancing::RoundRobin, 0, 0, tried, now, 1)
        .unwrap();
    assert_ne!(first.index, second.index);
    tried.add(second.index);
    assert_eq!(
        sel.pick(0, &cached, &LoadBalancing::RoundRobin, 0, 0, tried, now, 1),
        None
    );
}

#[test]
fn a_refusing_address_is_skipped_by_the_worker_that_saw_it() {
    let up = RouteUpstream::new("r", &[target(1, 1, false), target(2, 1, false)], 1, None);
    let mut sel = Selector::default();
    let cached = sel.set_for(1, 0, &up, false);
    let now = Instant::now();
    sel.mark_down(cached.set.endpoints[0].state.addr, now);
    for _ in 0..5 {
        let p = sel
            .pick(
                0,
                &cached,
                &LoadBalancing::Random,
                0,
                0,
                Tried::default(),
                now,
                1,
            )
            .unwrap();
        assert_eq!(p.index, 1);
    }
    let later = now + DOWN_FOR + std::time::Duration::from_millis(1);
    let got: Vec<usize> = (0..40)
        .map(|_| {
            sel.pick(
                0,
                &cached,
                &LoadBalancing::Random,
                0,
                0,
                Tried::default(),
                later,
                1,
            )
            .unwrap()
            .index
        })
        .collect();
    assert!(got.contains(&0), "back after DOWN_FOR");
}

#[test]
fn a_hash_key_sticks_to_one_endpoint() {
    let targets: Vec<TargetConfig> = (1..=5).map(|p| target(p, 1, false)).collect();
    let up = RouteUpstream::new("r", &targets, 1, None);
    let policy = LoadBalancing::Hash(HashOn::ClientIp);
    let key = torii_protocol::balance::key_hash(b"user-42");
    let got = picks(&up, &policy, 50, |_| key);
    assert!(got.iter().all(|&i| i == got[0]));
    let spread = picks(&up, &policy, 500, |i| {
        torii_protocol::balance::key_hash(format!("user-{i}").as_bytes())
    });
    for e in 0..5 {
        assert!(spread.contains(&e), "every endpoint gets keys");
    }
}

#[test]
fn the_retry_budget_allows_a_share_of_requests_in_flight() {
    let up = RouteUpstream::new("r", &[target(1, 1, false)], 1, None);
    let mut sel = Selector::default();
    let _ = sel.set_for(1, 0, &up, false);
    for _ in 0..100 {
        sel.request_started(0);
    }
    let granted = (0..100).filter(|_| sel.take_retry(0, 20)).count();
    assert_eq!(granted, 20);
    sel.request_done(0, 20);
    // Few requests in flight: the floor allows MIN_RETRY_CONCURRENCY.
    for _ in 0..95 {
        sel.request_done(0, 0);
    }
    let floor = (0..50).filter(|_| sel.take_retry(0, 20)).count();
    assert_eq!(floor as u32, MIN_RETRY_CONCURRENCY);
    sel.request_done(0, floor as u32);
    for _ in 0..95 {
        sel.request_started(0);
    }
    sel.request_done(0, 20);
    assert!(sel.take_retry(0, 20));
}
