//! The info token (`Otoroshi-Claim`) of one route (docs/compatibility.md §3).
//!
//! Owns a route's compiled signer (layout, audience, ttl, key; constant payload parts prepared
//! by `torii_protocol` at build time), the rendering of the header line per request, and each
//! worker's cache of keyed prefixes ([`KeyedPrefixCache`]): the HMAC state after the constant
//! part of one API key's tokens on one route, so that per request only the time claims and
//! the `jti` are hashed.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use torii_protocol::apikey::StoredKey;
use torii_protocol::challenge::JTI_LEN;
use torii_protocol::info_token::{
    ExtraClaims, InfoTokenError, InfoTokenSigner, KeyedPrefix, Layout, PreparedApiKey,
};

use crate::config::{ConfigError, InfoTokenSpec, InfoTokenVersion};
use crate::secure::keys::signing_key;

/// A route's compiled info token.
#[derive(Debug)]
pub struct RouteInfoToken {
    signer: InfoTokenSigner,
    /// `<header>: `, written before the token.
    prefix: Vec<u8>,
    /// Lower-case header name (incoming copies are dropped).
    pub header: Vec<u8>,
}

impl RouteInfoToken {
    /// Builds the info token of route `route_name`. Errors are at the key they concern
    /// (`routes[i].info_token.secret`, `….private_key`).
    pub fn build(
        route_name: &str,
        spec: &InfoTokenSpec,
        allow_weak: bool,
    ) -> Result<Self, ConfigError> {
        let layout = match spec.version {
            InfoTokenVersion::Latest => Layout::Latest,
            InfoTokenVersion::Legacy => Layout::Legacy,
        };
        let key = signing_key(&spec.algo, allow_weak)?;
        let mut prefix = spec.header.as_bytes().to_vec();
        prefix.extend_from_slice(b": ");
        Ok(Self {
            signer: InfoTokenSigner::new(layout, route_name, spec.ttl.as_secs().max(1), key),
            prefix,
            header: spec.header.to_ascii_lowercase().into_bytes(),
        })
    }

    /// Appends `<header>: <token>\r\n` to `out`, describing the caller (`api_key`, or the
    /// public access type when `None`).
    pub fn render_header(
        &self,
        api_key: Option<&PreparedApiKey>,
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), InfoTokenError> {
        self.render_with(api_key, None, None, jti, now, out)
    }

    /// Like [`RouteInfoToken::render_header`], adding `extra` claims (the external `sub`,
    /// `scope` and `iss` of a token exchanged by `[routes.jwt] forward = "exchange"`) and
    /// using `keyed`, the cached prefix of `api_key` on this route, when there is one.
    pub fn render_with(
        &self,
        api_key: Option<&PreparedApiKey>,
        extra: Option<&ExtraClaims>,
        keyed: Option<&KeyedPrefix>,
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), InfoTokenError> {
        let start = out.len();
        out.extend_from_slice(&self.prefix);
        if let Err(e) = self.signer.write_into(api_key, extra, keyed, now, jti, out) {
            out.truncate(start);
            return Err(e);
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// Keyed prefixes a worker keeps at most; past it, tokens of new pairs are signed in full
/// (what they cost without the cache). ~400 bytes each.
const MAX_KEYED_PREFIXES: usize = 1024;

/// A worker's keyed info-token prefixes, by (route index, API key) of the snapshot in force.
/// A pair's prefix is made on its first request (the cost of one token) and reused after;
/// all are dropped when the snapshot changes (a reload may change the route, the key or the
/// signing secret). Single-threaded: one per worker, never shared.
#[derive(Debug, Default)]
pub struct KeyedPrefixCache {
    version: u64,
    entries: HashMap<(usize, usize), Option<KeyedPrefix>>,
}

impl KeyedPrefixCache {
    /// The prefix of `key` on route `route_idx` (whose info token is `info`) of snapshot
    /// `version`; `None` for a non-HMAC signer or when the cache is full. `key` must belong
    /// to that snapshot: its address identifies it while the snapshot lives.
    pub fn get(
        &mut self,
        version: u64,
        route_idx: usize,
        info: &RouteInfoToken,
        key: &StoredKey,
    ) -> Option<&KeyedPrefix> {
        if self.version != version {
            self.entries.clear();
            self.version = version;
        }
        let full = self.entries.len() >= MAX_KEYED_PREFIXES;
        let id = (route_idx, std::ptr::from_ref(key) as usize);
        match self.entries.entry(id) {
            Entry::Occupied(e) => e.into_mut().as_ref(),
            Entry::Vacant(_) if full => None,
            Entry::Vacant(v) => v.insert(info.signer.keyed_prefix(key.prepared())).as_ref(),
        }
    }

    /// Number of (route, key) pairs held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no pair is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use torii_protocol::apikey::{ApiKey, ApiKeyStore};

    use super::*;
    use crate::config::{AlgoSpec, InfoTokenSpec, InfoTokenVersion, RawSecret};

    fn route_info(version: InfoTokenVersion) -> RouteInfoToken {
        let spec = InfoTokenSpec {
            version,
            header: "Otoroshi-Claim".to_owned(),
            ttl: Duration::from_secs(30),
            algo: AlgoSpec {
                algorithm: "HS512".to_owned(),
                secret: Some(RawSecret::new("a-literal-secret-of-more-than-32-bytes")),
                private_key: None,
                public_key: None,
                key_path: "routes[0].info_token".to_owned(),
            },
        };
        RouteInfoToken::build("orders", &spec, false).unwrap()
    }

    const JTI: [u8; JTI_LEN] = *b"01234567-89ab-4cde-8f01-23456789abcd";

    #[test]
    fn prefixes_are_kept_per_pair_and_dropped_with_the_snapshot() {
        let store = ApiKeyStore::new(vec![
            ApiKey::new("a", "secret-a", "Key A"),
            ApiKey::new("b", "secret-b", "Key B"),
        ])
        .unwrap();
        let (a, b) = (store.get("a").unwrap(), store.get("b").unwrap());
        for version in [InfoTokenVersion::Latest, InfoTokenVersion::Legacy] {
            let info = route_info(version);
            let mut cache = KeyedPrefixCache::default();
            assert!(cache.get(1, 0, &info, a).is_some());
            assert!(cache.get(1, 0, &info, a).is_some());
            assert_eq!(cache.len(), 1);
            assert!(cache.get(1, 0, &info, b).is_some());
            assert!(cache.get(1, 3, &info, a).is_some());
            assert_eq!(cache.len(), 3);
            // A new snapshot: everything made from the old one goes.
            assert!(cache.get(2, 0, &info, b).is_some());
            assert_eq!(cache.len(), 1);
            // What the cached prefix signs is what a full pass signs, for each key.
            for key in [a, b] {
                let (mut fast, mut full) = (Vec::new(), Vec::new());
                let keyed = cache.get(2, 0, &info, key);
                info.render_with(
                    Some(key.prepared()),
                    None,
                    keyed,
                    &JTI,
                    1_700_000_000,
                    &mut fast,
                )
                .unwrap();
                info.render_with(
                    Some(key.prepared()),
                    None,
                    None,
                    &JTI,
                    1_700_000_000,
                    &mut full,
                )
                .unwrap();
                assert_eq!(fast, full, "{version:?}");
            }
        }
    }

    #[test]
    fn the_cache_stops_growing_at_its_cap() {
        let keys = (0..=MAX_KEYED_PREFIXES)
            .map(|i| ApiKey::new(&format!("k{i}"), "s", "n"))
            .collect();
        let store = ApiKeyStore::new(keys).unwrap();
        let info = route_info(InfoTokenVersion::Latest);
        let mut cache = KeyedPrefixCache::default();
        for i in 0..MAX_KEYED_PREFIXES {
            let key = store.get(&format!("k{i}")).unwrap();
            assert!(cache.get(7, 0, &info, key).is_some());
        }
        let last = store.get(&format!("k{MAX_KEYED_PREFIXES}")).unwrap();
        assert!(
            cache.get(7, 0, &info, last).is_none(),
            "over the cap: signed in full"
        );
        assert_eq!(cache.len(), MAX_KEYED_PREFIXES);
        assert!(cache.get(7, 0, &info, store.get("k0").unwrap()).is_some());
    }
}
