//! Our compact JWS encoder and verifier against `jsonwebtoken` (10.x, RustCrypto backend) for
//! the same HS512 token: same header (`{"typ":"JWT","alg":"HS512"}`), same claims (a
//! `serde_json::Map` of 9 claims, ~300 bytes of JSON), same secret. The setup asserts that
//! both encoders produce byte-identical tokens.
//!
//! - `encode/torii_claims`: `jws::encode_claims` (serde_json serialisation + base64 + HMAC), the
//!   like-for-like comparison with `encode/jsonwebtoken`.
//! - `encode/torii_into`: `jws::encode_into` with the payload already serialised (what the
//!   hand-written hot paths do), for reference.
//! - `verify/torii` vs `verify/jsonwebtoken`: signature, `exp` (required) checked, no audience;
//!   both return the claims as a `serde_json::Map`.
//!
//! Run: `cargo bench -p torii-bench --bench jwt_encode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use torii_protocol::jws::{self, Algorithm, SigningKey, Validation};

const NOW: u64 = 1_700_000_000;
/// Far in the future: `jsonwebtoken` reads the wall clock to check `exp`.
const EXP: u64 = 4_000_000_000;
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-torii";

fn claims() -> Map<String, Value> {
    let value = json!({
        "iss": "Otoroshi",
        "sub": "orders-service (prod)",
        "aud": "api-orders",
        "iat": NOW,
        "nbf": NOW,
        "exp": EXP,
        "jti": "8f14e45f-ceea-4e7a-9b2c-3d5e6f7a8b9c",
        "access_type": "apikey",
        "scope": "orders:read orders:write invoices:read",
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn bench_encode(c: &mut Criterion) {
    let claims = claims();
    let ours = SigningKey::hmac(Algorithm::HS512, SECRET, false).expect("HS512 key");
    let theirs = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    let payload = serde_json::to_vec(&claims).expect("payload");

    let mut out = Vec::with_capacity(1024);
    jws::encode_claims(&ours, None, &claims, &mut out).expect("encode");
    let reference = jsonwebtoken::encode(&header, &claims, &theirs).expect("encode");
    assert_eq!(
        out,
        reference.as_bytes(),
        "both encoders give the same token"
    );

    let mut group = c.benchmark_group("encode");
    group.bench_function("torii_claims", |b| {
        b.iter(|| {
            out.clear();
            jws::encode_claims(&ours, None, black_box(&claims), &mut out).expect("encode");
        })
    });
    group.bench_function("torii_into", |b| {
        b.iter(|| {
            out.clear();
            jws::encode_into(&ours, None, black_box(&payload), &mut out).expect("encode");
        })
    });
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &theirs).expect("encode"))
    });
    group.finish();

    let ours = ours.verifying_key();
    let rules = Validation::default();
    let theirs = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
    validation.validate_aud = false;
    let token = reference;
    let mut group = c.benchmark_group("verify");
    group.bench_function("torii", |b| {
        b.iter(|| jws::verify(black_box(token.as_bytes()), &ours, &rules, NOW).expect("verify"))
    });
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Map<String, Value>>(black_box(&token), &theirs, &validation)
                .expect("verify")
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
    targets = bench_encode
}
criterion_main!(benches);
