//! Per-request cost of machine authentication on a route (API key or bearer token).
//!
//! - group `apikey_check`: the engine's check on a parsed head (`torii_engine::auth::check`:
//!   extractors over the head without copying, one SHA-256 of the secret compared in constant
//!   time, the route check), for the `headers` extractor (`Otoroshi-Client-Id/Secret`) and for
//!   `Authorization: Basic`, on a realistic head of 9 headers; plus the head parse alone as a
//!   reference. Target: the check adds ≤ 0.5 µs per request.
//! - group `bearer_verify`: the same check with `Authorization: Bearer <access token>` issued
//!   by the client-credentials service, ES256 (P-256) and RS256 (2048-bit), keys from
//!   `protocol/tests/keys/`: one signature verification, claims parsing, then the key check.
//!
//! Run: `cargo bench -p torii-bench --bench apikey`.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use torii_engine::auth::check::{check, HeadView};
use torii_engine::auth::{AuthState, RouteApiKeys};
use torii_engine::http1::{parse_request_head, HeadLimits};
use torii_engine::secure::token_cache::{CacheUse, VerifiedTokenCache};
use torii_protocol::apikey::{ApiKey, ApiKeyStore, Extractors};
use torii_protocol::oauth::{
    parse_token_request, ClientCredentials, ClientCredentialsConfig, KeyPair, KeyPairs,
};

const RSA_PEM: &str = include_str!("../../protocol/tests/keys/rsa2048.pem");
const EC256_PEM: &str = include_str!("../../protocol/tests/keys/ec256.pem");
const SECRET: &str = "a-client-secret-of-a-realistic-length-0123";
const ROUTE: &str = "api-orders";

fn state() -> AuthState {
    let mut keys = Vec::new();
    for (id, kp) in [("ec-client", "ec"), ("rsa-client", "rsa")] {
        let mut k = ApiKey::new(id, SECRET, id);
        k.routes = vec![ROUTE.to_owned()];
        k.metadata.insert("jwt-sign-keypair".into(), kp.into());
        k.metadata.insert("scope".into(), "read write".into());
        k.tags = vec!["team-a".into()];
        keys.push(k);
    }
    let pairs = vec![
        KeyPair::from_pem("ec", EC256_PEM).expect("ec key"),
        KeyPair::from_pem("rsa", RSA_PEM).expect("rsa key"),
    ];
    AuthState {
        store: ApiKeyStore::new(keys).expect("store"),
        key_pairs: Some(KeyPairs::new(pairs).expect("pairs")),
        oauth: None,
    }
}

fn head(auth_lines: &str) -> Vec<u8> {
    format!(
        "GET /api/orders/42?expand=items HTTP/1.1\r\nHost: api.example.com\r\n\
         User-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\n\
         X-Request-Id: 8f14e45f-ceea-4e7a-9b2c-3d5e6f7a8b9c\r\nConnection: keep-alive\r\n\
         {auth_lines}\r\n"
    )
    .into_bytes()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn token(auth: &AuthState, client: &str) -> String {
    let body = format!("grant_type=client_credentials&client_id={client}&client_secret={SECRET}");
    let req = parse_token_request(
        Some(b"application/x-www-form-urlencoded"),
        None,
        body.as_bytes(),
    )
    .expect("request");
    let svc = ClientCredentials::new(ClientCredentialsConfig::default());
    let keys = auth.key_pairs.as_ref().expect("pairs");
    svc.token(
        &auth.store,
        keys,
        &req,
        "https://oauth.example.com",
        now(),
        "jti-1",
    )
    .expect("token")
    .access_token
}

fn bench_case(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    raw: &[u8],
    cached: bool,
) {
    let cell = std::cell::RefCell::new(VerifiedTokenCache::default());
    let cache = cached.then_some(CacheUse {
        cache: &cell,
        version: 1,
        cap: 4096,
    });
    let auth = state();
    let route = RouteApiKeys {
        extractors: Extractors::default(),
        wipe_credentials: true,
        required: Default::default(),
    };
    let limits = HeadLimits::default();
    let mut headers = Vec::with_capacity(32);
    let parsed = parse_request_head(raw, &limits, &mut headers);
    let Ok(Some(h)) = parsed else {
        panic!("bench head does not parse")
    };
    let t = now();
    assert!(check(
        &auth,
        &route,
        ROUTE,
        &HeadView::new(raw, &headers, &h),
        t,
        cache
    )
    .is_ok());
    c.bench_function(name, |b| {
        b.iter(|| {
            let view = HeadView::new(black_box(raw), &headers, &h);
            black_box(check(&auth, &route, ROUTE, &view, t, cache).is_ok())
        })
    });
}

fn apikey_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("apikey_check");
    g.measurement_time(Duration::from_secs(3));
    let headers_head = head(&format!(
        "Otoroshi-Client-Id: ec-client\r\nOtoroshi-Client-Secret: {SECRET}\r\n"
    ));
    bench_case(&mut g, "headers", &headers_head, false);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("ec-client:{SECRET}"));
    bench_case(
        &mut g,
        "basic",
        &head(&format!("Authorization: Basic {b64}\r\n")),
        false,
    );
    let mut headers = Vec::with_capacity(32);
    let limits = HeadLimits::default();
    g.bench_function("parse_head_only", |b| {
        b.iter(|| {
            black_box(parse_request_head(black_box(&headers_head), &limits, &mut headers).is_ok())
        })
    });
    g.finish();
}

fn bearer_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("bearer_verify");
    g.measurement_time(Duration::from_secs(3));
    let auth = state();
    for (name, client) in [("ES256", "ec-client"), ("RS256", "rsa-client")] {
        let t = token(&auth, client);
        let raw = head(&format!("Authorization: Bearer {t}\r\n"));
        bench_case(&mut g, name, &raw, false);
        // The same token again on one worker: the verified-token cache answers.
        bench_case(&mut g, &format!("{name}_cached"), &raw, true);
    }
    g.finish();
}

criterion_group!(benches, apikey_check, bearer_verify);
criterion_main!(benches);
