//! The external-JWT verify path of `[routes.jwt]` for RS256 (`jwt_verify_rs256` group): what a
//! route with a JWT check adds per request, besides finding the token in the head.
//!
//! - `torii_pem`: `JwtVerifier::verify` with one PEM public key (size cap, header check, RSA
//!   2048 signature, payload parse, `exp`/`nbf`/`iat`, `iss`, `aud`).
//! - `torii_jwks_kid`: the same with a JWKS of two keys, looked up by `kid` (adds a header
//!   decode for the `kid`).
//! - `route_jwks_file` / `route_jwks_url`: the route's whole verify step in the engine
//!   (`RouteJwt::verify`) with the same two-key JWKS, once as keys fixed at load (`jwks_file`)
//!   and once as a set fetched from a URL (`jwks_url`: a shared source whose set is loaded from
//!   an `ArcSwapOption` per request, built for every asymmetric algorithm). The two must
//!   cost the same.
//! - `jsonwebtoken`: `jsonwebtoken::decode` (10.x, RustCrypto backend) with the same key and
//!   the same checks, for reference.
//!
//! The token is minted once by `jsonwebtoken` in the setup. Keys: `protocol/tests/keys`.
//!
//! Run: `cargo bench -p torii-bench --bench jwt_verify_rs256`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use torii_protocol::jws::Algorithm;

use torii_engine::jwks::JwksSource;
use torii_engine::secure::RouteJwt;
use torii_protocol::jwt_verifier::{AlgSet, ExternalRules, JwtVerifier, KeySet};
use torii_protocol::{KeyPair, KeyPairs};

const RSA_PEM: &str = include_str!("../../protocol/tests/keys/rsa2048.pem");
const RSA_PUB: &str = include_str!("../../protocol/tests/keys/rsa2048.pub.pem");
const EC_PEM: &str = include_str!("../../protocol/tests/keys/ec256.pem");
/// Far in the future: `jsonwebtoken` reads the wall clock to check `exp`.
const EXP: u64 = 4_000_000_000;
const NOW: u64 = 1_800_000_000;

fn bench_verify(c: &mut Criterion) {
    let claims = json!({
        "iss": "https://sts.example.com", "aud": "inventory", "sub": "order-processing",
        "scope": "inventory:read", "iat": NOW, "nbf": NOW, "exp": EXP,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("sts-1".to_owned());
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("rsa pem");
    let token = jsonwebtoken::encode(&header, &claims, &enc).expect("encode");
    let rules = ExternalRules {
        issuer: Some("https://sts.example.com".to_owned()),
        audience: Some("inventory".to_owned()),
        leeway: 10,
        required: Default::default(),
    };
    let pem = JwtVerifier::from_public_pem(&[Algorithm::RS256], RSA_PUB, &rules).expect("pem");
    let pairs = KeyPairs::new(vec![
        KeyPair::from_pem("ec-0", EC_PEM).expect("ec"),
        KeyPair::from_pem("sts-1", RSA_PEM).expect("rsa"),
    ])
    .expect("pairs");
    let jwks = JwtVerifier::from_jwks(
        &[Algorithm::RS256, Algorithm::ES256],
        pairs.jwks_json(),
        &rules,
    )
    .expect("jwks");
    pem.verify(token.as_bytes(), NOW).expect("pem verifies");
    jwks.verify(token.as_bytes(), NOW).expect("jwks verifies");
    let dec = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).expect("pub");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["https://sts.example.com"]);
    validation.set_audience(&["inventory"]);

    let mut group = c.benchmark_group("jwt_verify_rs256");
    group.bench_function("torii_pem", |b| {
        b.iter(|| {
            pem.verify(black_box(token.as_bytes()), NOW)
                .expect("verify")
        })
    });
    group.bench_function("torii_jwks_kid", |b| {
        b.iter(|| {
            jwks.verify(black_box(token.as_bytes()), NOW)
                .expect("verify")
        })
    });
    let algorithms = [Algorithm::RS256, Algorithm::ES256];
    let file_route = RouteJwt::with_keys(
        KeySet::from_jwks(&algorithms, pairs.jwks_json()).expect("file set"),
        &algorithms,
        &rules,
    );
    let fetched =
        KeySet::from_jwks(&AlgSet::asymmetric().to_vec(), pairs.jwks_json()).expect("fetched set");
    let source = JwksSource::detached(
        "https://sts.example.com/jwks",
        Some(fetched),
        Default::default(),
    );
    let url_route = RouteJwt::with_source(Arc::new(source), &algorithms, &rules);
    file_route
        .verify(token.as_bytes(), NOW)
        .expect("file route");
    url_route.verify(token.as_bytes(), NOW).expect("url route");
    group.bench_function("route_jwks_file", |b| {
        b.iter(|| {
            file_route
                .verify(black_box(token.as_bytes()), NOW)
                .expect("verify")
        })
    });
    group.bench_function("route_jwks_url", |b| {
        b.iter(|| {
            url_route
                .verify(black_box(token.as_bytes()), NOW)
                .expect("verify")
        })
    });
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Map<String, Value>>(black_box(&token), &dec, &validation)
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
    targets = bench_verify
}
criterion_main!(benches);
