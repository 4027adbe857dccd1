//! Tests of the verified-token cache: what makes a hit, what drops entries, and its bound.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Map, Value};
use torii_protocol::jws::{self, Algorithm, SigningKey, Validation, VerifyingKey};

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A verified HS256 token whose `sub` is `sub`.
fn verified(sub: &str) -> (Vec<u8>, VerifiedToken) {
    let key = SigningKey::hmac(Algorithm::HS256, SECRET, false).unwrap();
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(sub));
    claims.insert("exp".into(), json!(2_000_000_000u64));
    let mut token = Vec::new();
    jws::encode_claims(&key, None, &claims, &mut token).unwrap();
    let vk = VerifyingKey::hmac(Algorithm::HS256, SECRET, false).unwrap();
    let v = jws::verify(&token, &vk, &Validation::default(), 1_700_000_000).unwrap();
    (token, v)
}

#[test]
fn a_hit_needs_the_same_bytes_purpose_keys_and_snapshot() {
    let mut c = VerifiedTokenCache::default();
    let (t, v) = verified("a");
    c.insert(1, 16, Purpose::Bearer, None, &t, v);
    assert_eq!(
        c.get(1, Purpose::Bearer, None, &t)
            .unwrap()
            .claim_str("sub"),
        Some("a")
    );
    // One byte different: a miss (the whole token is the key).
    let mut other = t.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    assert!(c.get(1, Purpose::Bearer, None, &other).is_none());
    // Another purpose: a miss.
    assert!(c.get(1, Purpose::RouteJwt(0), None, &t).is_none());
    // Another key set: a miss.
    let set = Arc::new(KeySet::from_secret(&[Algorithm::HS256], SECRET, false).unwrap());
    assert!(c.get(1, Purpose::Bearer, Some(&*set), &t).is_none());
    // Another snapshot: a miss, and everything is dropped.
    assert!(c.get(2, Purpose::Bearer, None, &t).is_none());
    assert!(c.is_empty());
    assert!(c.get(1, Purpose::Bearer, None, &t).is_none());
}

#[test]
fn a_fetched_key_set_is_compared_by_identity() {
    let mut c = VerifiedTokenCache::default();
    let (t, v) = verified("a");
    let set = Arc::new(KeySet::from_secret(&[Algorithm::HS256], SECRET, false).unwrap());
    c.insert(1, 16, Purpose::RouteJwt(3), Some(set.clone()), &t, v);
    assert!(c.get(1, Purpose::RouteJwt(3), Some(&*set), &t).is_some());
    let rotated = Arc::new(KeySet::from_secret(&[Algorithm::HS256], SECRET, false).unwrap());
    assert!(c
        .get(1, Purpose::RouteJwt(3), Some(&*rotated), &t)
        .is_none());
    assert!(c.get(1, Purpose::RouteJwt(3), None, &t).is_none());
}

#[test]
fn the_bound_holds_under_a_flood_of_distinct_tokens() {
    let mut c = VerifiedTokenCache::default();
    let (_, v) = verified("x");
    for i in 0..10_000u32 {
        let token = format!("token-{i}");
        c.insert(1, 64, Purpose::Bearer, None, token.as_bytes(), v.clone());
        assert!(c.len() <= 64);
    }
    assert_eq!(c.len(), 64);
    // Re-inserting a held token does not evict another one.
    let held = (0..10_000u32)
        .map(|i| format!("token-{i}"))
        .find(|t| c.get(1, Purpose::Bearer, None, t.as_bytes()).is_some())
        .unwrap();
    c.insert(1, 64, Purpose::Bearer, None, held.as_bytes(), v.clone());
    assert_eq!(c.len(), 64);
}

#[test]
fn a_zero_bound_keeps_nothing() {
    let mut c = VerifiedTokenCache::default();
    let (t, v) = verified("a");
    c.insert(1, 0, Purpose::Bearer, None, &t, v);
    assert!(c.is_empty());
    assert!(c.get(1, Purpose::Bearer, None, &t).is_none());
}
