//! Per-request cost of upstream endpoint selection (`torii_protocol::balance`).
//!
//! One selection among 16 endpoints with varied weights (10 to 50), for each policy, in two
//! variants: `all_available`, and `4_unavailable` (endpoints 1, 5, 9 and 13 ejected: the
//! pickers skip or probe past them, Maglev walks past their slots):
//!
//! - group `balance_smooth_rr`: `SmoothRoundRobin::pick` (one pass over the 16 counters);
//! - group `balance_least_request`: `pick_least_request` with varied in-flight counts;
//! - group `balance_weighted_random`: `pick_weighted_random` (two passes);
//! - group `balance_maglev`: `key_hash` of a 16-byte key (a different key each iteration) and
//!   `Maglev::lookup` in a table of the default size (65537 slots, 256 KiB); and, for
//!   reference, `build_16_endpoints`: one `Maglev::build` of that table (not per request).
//!
//! The random words come from an inline splitmix64 (≈ 1 ns, included in the figures), the
//! availability from a `[bool; 16]` snapshot, as the engine passes them. One thread; the
//! 256 KiB Maglev table fits in L2, so lookups measure the arithmetic plus an L2 read.
//! Target: ≤ 50 ns per selection.
//!
//! Run: `cargo bench -p torii-bench --bench balance` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use torii_protocol::balance::{
    key_hash, pick_least_request, pick_weighted_random, Maglev, SmoothRoundRobin,
    DEFAULT_TABLE_SIZE,
};

const N: usize = 16;

/// splitmix64: a cheap source of fresh random words for each iteration.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn weights() -> [u32; N] {
    std::array::from_fn(|i| 10 * (1 + (i as u32 * 7) % 5))
}

/// The availability variants: every endpoint up, and four of them down.
fn variants() -> [(&'static str, [bool; N]); 2] {
    let all = [true; N];
    let mut four_down = [true; N];
    for i in [1, 5, 9, 13] {
        four_down[i] = false;
    }
    [("all_available", all), ("4_unavailable", four_down)]
}

fn bench(c: &mut Criterion) {
    let weights = weights();
    let in_flight: [u32; N] = std::array::from_fn(|i| (i as u32 * 13) % 9);
    let names: Vec<String> = (0..N).map(|i| format!("10.0.0.{i}:8080")).collect();
    let ids: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
    let table = Maglev::build(&ids, &weights, DEFAULT_TABLE_SIZE);

    let mut g = c.benchmark_group("balance_smooth_rr");
    g.measurement_time(Duration::from_secs(3));
    for (name, up) in variants() {
        let mut rr = SmoothRoundRobin::new(N);
        g.bench_function(name, |b| {
            b.iter(|| black_box(rr.pick(black_box(&weights), |i| up[i])))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("balance_least_request");
    g.measurement_time(Duration::from_secs(3));
    for (name, up) in variants() {
        let mut state = 1u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = splitmix(&mut state);
                black_box(pick_least_request(
                    black_box(&weights),
                    black_box(&in_flight),
                    |i| up[i],
                    r,
                ))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("balance_weighted_random");
    g.measurement_time(Duration::from_secs(3));
    for (name, up) in variants() {
        let mut state = 2u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = splitmix(&mut state);
                black_box(pick_weighted_random(black_box(&weights), |i| up[i], r))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("balance_maglev");
    g.measurement_time(Duration::from_secs(3));
    for (name, up) in variants() {
        let mut key = *b"session-00000000";
        let mut counter = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                counter = counter.wrapping_add(1);
                key[8..].copy_from_slice(&counter.to_le_bytes());
                let h = key_hash(black_box(&key));
                black_box(table.lookup(h, |i| up[i]))
            })
        });
    }
    // Not per request: the cost of a table build, paid when the endpoint set changes.
    g.bench_function("build_16_endpoints", |b| {
        b.iter(|| black_box(Maglev::build(black_box(&ids), &weights, DEFAULT_TABLE_SIZE)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
