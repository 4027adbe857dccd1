//! A worker's cache of verified tokens: bearer access tokens on API-key routes and the external
//! JWTs of `[routes.jwt]`, so that a client reusing one token (for up to an hour) pays for one
//! signature check, not one per request.
//!
//! Owns what may be cached and for how long. An entry is made only after a full, successful
//! verification (failures are never cached) and stores what verification decided (the verified
//! token: header and claims). It is used only:
//! - for the same bytes: the key is the whole token, compared byte for byte, in a map whose hash
//!   is SipHash with keys drawn at random for each worker (`RandomState`), so an attacker cannot
//!   aim collisions at it;
//! - for the same purpose (a bearer token, or one route's external JWT) and the same key set (a
//!   route with `jwks_url` holds the set it verified with: a rotation makes a miss);
//! - under the same snapshot: a config reload (key rotation, revocation) drops the whole cache;
//! - and the caller re-checks on every hit what changes with time or config: `exp`, `nbf`,
//!   `iat` and the leeway against the current clock, and, for API keys, the key's `enabled`,
//!   `valid_until` and route rights against the current snapshot.
//!
//! Bounded by `limits.verified_token_cache` entries per worker (0 = off): when full, an entry
//! chosen by the random hash order is evicted, so a flood of distinct tokens never grows it. No
//! locks: one per worker thread.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::Arc;

use torii_protocol::apikey::BearerVerifier;
use torii_protocol::jws::VerifiedToken;
use torii_protocol::jwt_verifier::KeySet;
use torii_protocol::oauth::KeyPairs;

/// What a cached verification was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An access token of Torii's token service, presented as a bearer on an API-key route.
    Bearer,
    /// The external JWT of the route with this index (`[routes.jwt]`).
    RouteJwt(usize),
}

#[derive(Debug)]
struct Entry {
    purpose: Purpose,
    /// The fetched key set the token was verified with (`None`: keys fixed in the snapshot).
    /// Held, so its address cannot be reused by another set while the entry lives.
    keys: Option<Arc<KeySet>>,
    token: VerifiedToken,
}

/// Verified tokens of one worker.
#[derive(Debug)]
pub struct VerifiedTokenCache {
    version: u64,
    entries: HashMap<Box<[u8]>, Entry, RandomState>,
}

impl Default for VerifiedTokenCache {
    fn default() -> Self {
        Self {
            version: 0,
            entries: HashMap::with_hasher(RandomState::new()),
        }
    }
}

impl VerifiedTokenCache {
    /// The verified form of `token` for `purpose`, when it was verified under snapshot
    /// `version` with the key set `keys` (compared by identity). Drops everything when the
    /// snapshot changed. Cost: one SipHash of the token and one comparison of its bytes.
    pub fn get(
        &mut self,
        version: u64,
        purpose: Purpose,
        keys: Option<&KeySet>,
        token: &[u8],
    ) -> Option<&VerifiedToken> {
        if self.version != version {
            self.entries.clear();
            self.version = version;
            return None;
        }
        let entry = self.entries.get(token)?;
        let same_keys = match (&entry.keys, keys) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(Arc::as_ptr(a), b),
            _ => false,
        };
        (entry.purpose == purpose && same_keys).then_some(&entry.token)
    }

    /// Keeps `verified`, the result of a successful verification of `token`, while at most
    /// `cap` entries are held (0: nothing is kept).
    pub fn insert(
        &mut self,
        version: u64,
        cap: usize,
        purpose: Purpose,
        keys: Option<Arc<KeySet>>,
        token: &[u8],
        verified: VerifiedToken,
    ) {
        if cap == 0 {
            return;
        }
        if self.version != version {
            self.entries.clear();
            self.version = version;
        }
        if self.entries.len() >= cap && !self.entries.contains_key(token) {
            // The first key in the map's (randomly keyed) hash order: an arbitrary victim that
            // a client cannot choose.
            if let Some(victim) = self.entries.keys().next().cloned() {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(
            token.into(),
            Entry {
                purpose,
                keys,
                token: verified,
            },
        );
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A worker's cache as one request uses it: the cache, the snapshot version and the bound.
#[derive(Debug, Clone, Copy)]
pub struct CacheUse<'a> {
    /// The worker's cache.
    pub cache: &'a RefCell<VerifiedTokenCache>,
    /// The request's snapshot version.
    pub version: u64,
    /// `limits.verified_token_cache`.
    pub cap: usize,
}

/// Torii's own key pairs as a [`BearerVerifier`] that remembers what it verified: a hit costs
/// the cache lookup, a clone of the verified claims and the time rules, instead of a signature
/// check. The caller's validation of the key (enabled, `valid_until`, route, `sub`/`cid`,
/// `kid`) runs on every request either way.
#[derive(Debug, Clone, Copy)]
pub struct CachedBearer<'a> {
    /// The token service's key pairs.
    pub pairs: &'a KeyPairs,
    /// The cache, when on.
    pub cache: Option<CacheUse<'a>>,
}

impl BearerVerifier for CachedBearer<'_> {
    fn verify_bearer(&self, token: &[u8], now: u64) -> Result<VerifiedToken, &'static str> {
        let Some(c) = self.cache.filter(|c| c.cap > 0) else {
            return self.pairs.verify_bearer(token, now);
        };
        let hit = c
            .cache
            .borrow_mut()
            .get(c.version, Purpose::Bearer, None, token)
            .cloned();
        if let Some(verified) = hit {
            self.pairs
                .check_times(&verified, now)
                .map_err(|e| e.reason())?;
            return Ok(verified);
        }
        let verified = self.pairs.verify_bearer(token, now)?;
        c.cache.borrow_mut().insert(
            c.version,
            c.cap,
            Purpose::Bearer,
            None,
            token,
            verified.clone(),
        );
        Ok(verified)
    }
}

#[cfg(test)]
#[path = "token_cache_tests.rs"]
mod tests;
