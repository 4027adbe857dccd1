//! Per-request gateway cost of Otoroshi's exchange protocol, V1 and V2 side by side
//! (`challenge` group).
//!
//! What each function times, per iteration:
//! - `v1`: `fill_state` + a 128-byte copy standing in for the backend's echo + `verify_v1`.
//! - `v2`: `fill_state` + `fill_jti` + `V2Issuer::issue_into` (HS512) + `V2Verifier::verify` of
//!   the backend's answer for that very state. The answer is produced by `BackendResponder`
//!   in the untimed setup (`iter_batched`): signing it is the backend's cost, not the gateway's.
//!   Setup and routine each own a generator with the same seed and consume them in lockstep
//!   (criterion runs one routine per setup, in order), so the timed `fill_state` yields the
//!   very state the precomputed answer is for.
//! - `v2_issue` / `v2_verify`: the two halves of `v2` alone (no state generation), to split it.
//!
//! Run: `cargo bench -p torii-bench --bench challenge`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use torii_protocol::challenge::{
    verify_v1, BackendResponder, StateGenerator, V2Issuer, V2Verifier, JTI_LEN, STATE_LEN,
};
use torii_protocol::jws::{Algorithm, SigningKey};

const NOW: u64 = 1_700_000_000;
const TTL: u64 = 30;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-torii";
const ROUTE: &str = "api-orders";

fn hs512() -> SigningKey {
    SigningKey::hmac(Algorithm::HS512, SECRET, false).expect("HS512 key")
}

fn bench_challenge(c: &mut Criterion) {
    let issuer = V2Issuer::new(ROUTE, TTL, hs512());
    let verifier = V2Verifier::new(hs512().verifying_key(), TTL, 10);
    let backend = BackendResponder::v2(hs512().verifying_key(), hs512(), 10);
    let mut group = c.benchmark_group("challenge");

    let mut gen = StateGenerator::from_seed([1; 32]);
    let mut state = [0u8; STATE_LEN];
    group.bench_function("v1", |b| {
        b.iter(|| {
            gen.fill_state(&mut state);
            let echoed: [u8; STATE_LEN] = black_box(state);
            verify_v1(&state, Some(&echoed)).expect("v1 answer")
        })
    });

    // Setup (untimed): the backend answers the request token for the state that the timed
    // generator (same seed, one step behind) will produce next.
    let mut ahead = StateGenerator::from_seed([2; 32]);
    let mut timed = StateGenerator::from_seed([2; 32]);
    let mut token = Vec::with_capacity(1024);
    let mut setup = || {
        let (mut s, mut j) = ([0u8; STATE_LEN], [0u8; JTI_LEN]);
        ahead.fill_state(&mut s);
        ahead.fill_jti(&mut j);
        token.clear();
        issuer.issue_into(&s, &j, NOW, &mut token).expect("issue");
        let mut answer = Vec::with_capacity(512);
        backend
            .respond(Some(&token), NOW, &mut answer)
            .expect("backend answer");
        (answer, Vec::<u8>::with_capacity(1024))
    };
    group.bench_function("v2", |b| {
        b.iter_batched(
            &mut setup,
            |(answer, mut out)| {
                let (mut s, mut j) = ([0u8; STATE_LEN], [0u8; JTI_LEN]);
                timed.fill_state(&mut s);
                timed.fill_jti(&mut j);
                issuer.issue_into(&s, &j, NOW, &mut out).expect("issue");
                verifier.verify(&answer, &s, NOW).expect("v2 answer");
                (out, answer)
            },
            // 64 inputs (~100 KB) stay in L2, as a just-read answer would; timer cost amortised.
            BatchSize::NumIterations(64),
        )
    });

    let mut gen = StateGenerator::from_seed([3; 32]);
    let (mut s, mut j) = ([0u8; STATE_LEN], [0u8; JTI_LEN]);
    gen.fill_state(&mut s);
    gen.fill_jti(&mut j);
    let mut out = Vec::with_capacity(1024);
    group.bench_function("v2_issue", |b| {
        b.iter(|| {
            out.clear();
            issuer
                .issue_into(black_box(&s), &j, NOW, &mut out)
                .expect("issue");
        })
    });
    // Built here, not from `v2_issue`'s buffer: a name filter may skip that bench.
    let mut request = Vec::with_capacity(1024);
    issuer.issue_into(&s, &j, NOW, &mut request).expect("issue");
    let mut answer = Vec::new();
    backend
        .respond(Some(&request), NOW, &mut answer)
        .expect("backend answer");
    group.bench_function("v2_verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&answer), &s, NOW)
                .expect("v2 answer")
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_challenge
}
criterion_main!(benches);
