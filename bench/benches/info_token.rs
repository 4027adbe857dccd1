//! Per-request cost of the info token (`Otoroshi-Claim`): `InfoTokenSigner::write_into` with a
//! realistic API key (5 metadata entries, 3 tags), jti given, output buffer reused.
//!
//! - group `info_token`: the `latest` and `legacy` layouts, HS512 (Otoroshi's default), each
//!   hashed in full and from the (route, key) prefix the engine caches (`*_keyed`).
//! - group `info_token_alg`: the same latest-layout payload signed HS512 vs RS256 (2048-bit) vs
//!   ES256 (P-256), keys from `protocol/tests/keys/`.
//! - group `info_token_hmac`: a what-if for the design note in `info_token/mod.rs`: the HMAC of
//!   the latest token's signing input computed in full (`full`, what `write_into` does) vs from
//!   a `ring::hmac::Context` that already absorbed the constant `header.payload-prefix` and is
//!   cloned per request (`prefix_absorbed`). Only the HMAC is timed, not base64 or copies.
//!
//! Run: `cargo bench -p torii-bench --bench info_token`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use torii_protocol::info_token::{InfoTokenSigner, Layout, PreparedApiKey};
use torii_protocol::jws::{Algorithm, SigningKey};

const NOW: u64 = 1_700_000_000;
const TTL: u64 = 30;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-torii";
const ROUTE: &str = "api-orders";
const JTI: &[u8; 36] = b"8f14e45f-ceea-4e7a-9b2c-3d5e6f7a8b9c";
const RSA_PEM: &str = include_str!("../../protocol/tests/keys/rsa2048.pem");
const EC256_PEM: &str = include_str!("../../protocol/tests/keys/ec256.pem");

/// A realistic key: 5 metadata entries, 3 tags.
fn api_key() -> PreparedApiKey {
    let metadata: BTreeMap<String, String> = [
        ("team", "checkout"),
        ("env", "production"),
        ("owner", "alice@example.com"),
        ("cost-center", "CC-4521"),
        ("tier", "gold"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let tags = ["orders", "internal", "v2"].map(str::to_owned);
    PreparedApiKey::new(
        "k7Bz3xQ9mN2pL5vR",
        "orders-service (prod)",
        &metadata,
        &tags,
    )
}

fn hs512() -> SigningKey {
    SigningKey::hmac(Algorithm::HS512, SECRET, false).expect("HS512 key")
}

fn bench_layouts(c: &mut Criterion) {
    let key = api_key();
    let mut group = c.benchmark_group("info_token");
    for (name, layout) in [("latest", Layout::Latest), ("legacy", Layout::Legacy)] {
        let signer = InfoTokenSigner::new(layout, ROUTE, TTL, hs512());
        let mut out = Vec::with_capacity(2048);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                signer
                    .write_into(Some(black_box(&key)), None, None, NOW, JTI, &mut out)
                    .expect("info token");
            })
        });
        // The engine's steady state: the (route, key) prefix is already hashed.
        let keyed = signer.keyed_prefix(&key).expect("HMAC key");
        group.bench_function(format!("{name}_keyed"), |b| {
            b.iter(|| {
                out.clear();
                signer
                    .write_into(
                        Some(black_box(&key)),
                        None,
                        Some(&keyed),
                        NOW,
                        JTI,
                        &mut out,
                    )
                    .expect("info token");
            })
        });
    }
    group.finish();
}

fn bench_algorithms(c: &mut Criterion) {
    let key = api_key();
    let keys = [
        ("HS512", hs512()),
        (
            "RS256",
            SigningKey::from_pem(Algorithm::RS256, RSA_PEM).expect("RSA key"),
        ),
        (
            "ES256",
            SigningKey::from_pem(Algorithm::ES256, EC256_PEM).expect("EC key"),
        ),
    ];
    let mut group = c.benchmark_group("info_token_alg");
    // RSA-2048 signing is ~1 ms: fewer samples keep the run short.
    group.sample_size(20);
    for (name, signing_key) in keys {
        let signer = InfoTokenSigner::new(Layout::Latest, ROUTE, TTL, signing_key);
        let mut out = Vec::with_capacity(2048);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                signer
                    .write_into(Some(black_box(&key)), None, None, NOW, JTI, &mut out)
                    .expect("info token");
            })
        });
    }
    group.finish();
}

/// Length of the common prefix of two byte strings.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn bench_hmac_prefix(c: &mut Criterion) {
    let key = api_key();
    let signer = InfoTokenSigner::new(Layout::Latest, ROUTE, TTL, hs512());
    let (mut t1, mut t2) = (Vec::new(), Vec::new());
    let other_jti = b"00000000-0000-4000-8000-000000000000";
    signer
        .write_into(Some(&key), None, None, NOW, JTI, &mut t1)
        .expect("info token");
    signer
        .write_into(Some(&key), None, None, NOW + 1_000_000, other_jti, &mut t2)
        .expect("info token");
    let Some(dot) = t1.iter().rposition(|&b| b == b'.') else {
        return;
    };
    let input = &t1[..dot];
    // The per-(route, key) constant part: what two tokens for other times and jtis share.
    let prefix = common_prefix(input, &t2);
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, SECRET);
    let mut absorbed = ring::hmac::Context::with_key(&ring_key);
    absorbed.update(&input[..prefix]);
    assert_eq!(
        {
            let mut ctx = absorbed.clone();
            ctx.update(&input[prefix..]);
            ctx.sign().as_ref().to_vec()
        },
        ring::hmac::sign(&ring_key, input).as_ref().to_vec()
    );
    println!(
        "info_token_hmac: signing input {} bytes, constant prefix {} bytes",
        input.len(),
        prefix
    );
    let mut group = c.benchmark_group("info_token_hmac");
    group.bench_function("full", |b| {
        b.iter(|| ring::hmac::sign(&ring_key, black_box(input)))
    });
    group.bench_function("prefix_absorbed", |b| {
        b.iter(|| {
            let mut ctx = absorbed.clone();
            ctx.update(black_box(&input[prefix..]));
            ctx.sign()
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
    targets = bench_layouts, bench_algorithms, bench_hmac_prefix
}
criterion_main!(benches);
