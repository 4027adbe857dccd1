//! Property tests: encode/verify round trips over random claims, keys and algorithms; any
//! single-byte change to a token fails; JSON escaping round-trips through serde_json.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value};
use torii_protocol::jws::{self, Algorithm, SigningKey, Validation};

const NOW: u64 = 1_700_000_000;

fn claims_strategy() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        proptest::collection::vec(any::<String>(), 0..3).prop_map(Value::from),
    ];
    (
        proptest::collection::btree_map("[a-z_]{1,8}", value, 0..8),
        0u64..100_000,
    )
        .prop_map(|(map, ttl)| {
            let mut claims: Map<String, Value> = map.into_iter().collect();
            for name in ["exp", "nbf", "iat"] {
                claims.remove(name);
            }
            claims.insert("exp".into(), Value::from(NOW + ttl));
            claims.insert("iat".into(), Value::from(NOW));
            claims
        })
}

fn fast_alg() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::HS256),
        Just(Algorithm::HS384),
        Just(Algorithm::HS512),
        Just(Algorithm::ES256),
        Just(Algorithm::ES384),
    ]
}

fn key_for(alg: Algorithm, secret: &[u8]) -> SigningKey {
    match private_pem(alg) {
        Some(pem) => SigningKey::from_pem(alg, pem).unwrap(),
        None => SigningKey::hmac(alg, secret, false).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_fast_algorithms(
        alg in fast_alg(),
        secret in proptest::collection::vec(any::<u8>(), 32..80),
        claims in claims_strategy(),
        kid in proptest::option::of("[ -~]{0,12}"),
    ) {
        let key = key_for(alg, &secret);
        let mut out = Vec::new();
        jws::encode_claims(&key, kid.as_deref(), &claims, &mut out).unwrap();
        let verified = jws::verify(&out, &key.verifying_key(), &Validation::default(), NOW).unwrap();
        prop_assert_eq!(verified.claims(), &claims);
        prop_assert_eq!(verified.header().kid.as_deref(), kid.as_deref());
    }

    #[test]
    fn single_byte_change_fails(
        es in any::<bool>(),
        claims in claims_strategy(),
        index in any::<proptest::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let alg = if es { Algorithm::ES256 } else { Algorithm::HS512 };
        let key = signing_key(alg);
        let mut token = Vec::new();
        jws::encode_claims(&key, None, &claims, &mut token).unwrap();
        let vk = key.verifying_key();
        prop_assert!(jws::verify(&token, &vk, &Validation::default(), NOW).is_ok());
        let i = index.index(token.len());
        token[i] ^= flip;
        prop_assert!(jws::verify(&token, &vk, &Validation::default(), NOW).is_err());
    }

    #[test]
    fn json_escaping_round_trips(s in any::<String>()) {
        let mut out = Vec::new();
        jws::json_string_into(&mut out, &s);
        let parsed: String = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(parsed, s);
    }
}

proptest! {
    // RSA signing is slow in debug builds: a handful of cases.
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_rsa(ps in any::<bool>(), claims in claims_strategy()) {
        let alg = if ps { Algorithm::PS384 } else { Algorithm::RS512 };
        let key = signing_key(alg);
        let mut out = Vec::new();
        jws::encode_claims(&key, None, &claims, &mut out).unwrap();
        let verified = jws::verify(&out, &verifying_key(alg), &Validation::default(), NOW).unwrap();
        prop_assert_eq!(verified.claims(), &claims);
    }
}
