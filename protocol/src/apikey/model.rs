//! The API key model and the store built from configuration (`[[apikeys]]`).
//!
//! The store is built once per config load: it refuses duplicate or blank client ids, hashes
//! every secret once (so the request path compares fixed-size digests in constant time), and
//! prepares each key's info-token chunks ([`PreparedApiKey`]) so that a request authenticated by a
//! key costs no serialisation. Lookup by client id is one `HashMap` probe.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ring::digest::{digest, SHA256};

use crate::info_token::PreparedApiKey;

/// Metadata key naming the key pair that signs this key's OAuth2 access tokens (Otoroshi's
/// `jwt-sign-keypair`). A bearer token presented for this key must carry this `kid`.
pub const META_JWT_SIGN_KEYPAIR: &str = "jwt-sign-keypair";
/// Metadata key holding the space-separated OAuth2 scopes the key may be granted.
pub const META_SCOPE: &str = "scope";

/// An API key's secret. Its `Debug` output is redacted; it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Vec<u8>);

impl ClientSecret {
    /// Wraps the secret bytes (already resolved from `${env.…}` / `${file:…}`).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        ClientSecret(bytes.into())
    }
    /// The raw secret.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

impl From<&str> for ClientSecret {
    fn from(s: &str) -> Self {
        ClientSecret(s.as_bytes().to_vec())
    }
}

/// One API key, as configured in `[[apikeys]]`.
///
/// `S` is the form of the secret: [`ClientSecret`] (resolved bytes) in the store; a
/// configuration loader may keep its unresolved form (`${env.NAME}`) in the same struct and turn
/// it into bytes with [`ApiKey::map_secret`], so that every key field is declared here once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey<S = ClientSecret> {
    /// The client id (non-blank, unique in the store).
    pub client_id: String,
    /// The client secret (non-empty).
    pub client_secret: S,
    /// Display name (`clientName`).
    pub name: String,
    /// A disabled key is refused everywhere, its existing access tokens included.
    pub enabled: bool,
    /// Unix seconds. The key is valid while `now < valid_until` (a date in the future means
    /// valid; Otoroshi's `isActive` inverts this comparison, Torii does not).
    pub valid_until: Option<u64>,
    /// Ids of the routes this key may call.
    pub routes: Vec<String>,
    /// Free tags, shown to backends in the info token.
    pub tags: Vec<String>,
    /// Free metadata; `scope` and `jwt-sign-keypair` have a meaning (see the constants).
    pub metadata: BTreeMap<String, String>,
    /// Whether the client id alone (`x-api-key`, no secret) authenticates this key (Otoroshi's
    /// `allowClientIdOnly`). Default `false`: a client id is not a secret, so this must be an
    /// explicit choice per key (config key `allow_client_id_only`).
    pub allow_client_id_only: bool,
    /// Calls allowed per throttling window (`quotas.window`, Otoroshi's `throttlingQuota`);
    /// `None` = unlimited.
    pub throttling_quota: Option<u64>,
    /// Calls allowed per UTC day (Otoroshi's `dailyQuota`); `None` = unlimited.
    pub daily_quota: Option<u64>,
    /// Calls allowed per UTC month (Otoroshi's `monthlyQuota`); `None` = unlimited.
    pub monthly_quota: Option<u64>,
}

impl<S> ApiKey<S> {
    /// The same key with its secret turned into another form (for example resolved from the
    /// environment). `f` may fail; the key is then dropped and the error returned.
    pub fn map_secret<T, E>(self, f: impl FnOnce(S) -> Result<T, E>) -> Result<ApiKey<T>, E> {
        let ApiKey {
            client_id,
            client_secret,
            name,
            enabled,
            valid_until,
            routes,
            tags,
            metadata,
            allow_client_id_only,
            throttling_quota,
            daily_quota,
            monthly_quota,
        } = self;
        Ok(ApiKey {
            client_secret: f(client_secret)?,
            client_id,
            name,
            enabled,
            valid_until,
            routes,
            tags,
            metadata,
            allow_client_id_only,
            throttling_quota,
            daily_quota,
            monthly_quota,
        })
    }

    /// True when the key has at least one quota (throttling, daily or monthly): only such
    /// keys are counted.
    pub fn is_metered(&self) -> bool {
        self.throttling_quota.is_some()
            || self.daily_quota.is_some()
            || self.monthly_quota.is_some()
    }

    /// True when the key is enabled and `now` is before `valid_until` (if any).
    pub fn is_active(&self, now: u64) -> bool {
        self.enabled && !self.is_expired(now)
    }

    /// True when `valid_until` is set and `now >= valid_until`.
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.valid_until, Some(until) if now >= until)
    }

    /// True when the key lists `route_id` among its routes.
    pub fn allows_route(&self, route_id: &str) -> bool {
        self.routes.iter().any(|r| r == route_id)
    }

    /// The scopes from the `scope` metadata (space-separated), if set.
    pub fn scopes(&self) -> Option<impl Iterator<Item = &str>> {
        self.metadata
            .get(META_SCOPE)
            .map(|s| s.split(' ').filter(|s| !s.is_empty()))
    }

    /// The `jwt-sign-keypair` metadata, if set and non-empty.
    pub fn sign_key_pair(&self) -> Option<&str> {
        self.metadata
            .get(META_JWT_SIGN_KEYPAIR)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

impl ApiKey {
    /// A key with the given credentials, enabled, no expiry, no routes, no tags or metadata,
    /// client-id-only authentication off, no quotas. Fill the public fields for the rest.
    pub fn new(client_id: &str, client_secret: &str, name: &str) -> Self {
        ApiKey {
            client_id: client_id.to_owned(),
            client_secret: ClientSecret::from(client_secret),
            name: name.to_owned(),
            enabled: true,
            valid_until: None,
            routes: Vec::new(),
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            allow_client_id_only: false,
            throttling_quota: None,
            daily_quota: None,
            monthly_quota: None,
        }
    }
}

/// Why a set of keys could not become a store. Names the client id, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Two keys share a client id.
    #[error("duplicate API key client_id {0:?}")]
    DuplicateId(String),
    /// A client id is empty or only whitespace.
    #[error("API key client_id is blank")]
    BlankId,
    /// A key has an empty secret.
    #[error("API key {0:?} has an empty client_secret")]
    EmptySecret(String),
}

/// A key in the store with what the request path needs, prepared once.
#[derive(Debug, Clone)]
pub struct StoredKey {
    key: ApiKey,
    position: usize,
    prepared: PreparedApiKey,
    secret_digest: [u8; 32],
}

impl StoredKey {
    /// The key.
    pub fn key(&self) -> &ApiKey {
        &self.key
    }
    /// The key's position in the list given to [`ApiKeyStore::new`] (its `[[apikeys]]`
    /// index): the engine indexes per-key tables built at config load (quota counters) with
    /// it, so the request path finds them without hashing the client id again.
    pub fn position(&self) -> usize {
        self.position
    }
    /// The key's info-token chunks, ready for `InfoTokenSigner`.
    pub fn prepared(&self) -> &PreparedApiKey {
        &self.prepared
    }
    pub(crate) fn secret_digest(&self) -> &[u8; 32] {
        &self.secret_digest
    }
}

/// SHA-256 of a secret: compared in constant time, so the comparison leaks neither content nor
/// length of the configured secret.
pub(crate) fn secret_digest(secret: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, secret).as_ref());
    out
}

/// All API keys of a configuration, looked up by client id.
///
/// Built at config load; read-only afterwards and shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyStore {
    keys: HashMap<String, StoredKey>,
}

impl ApiKeyStore {
    /// Builds the store: refuses blank or duplicate ids and empty secrets, hashes the secrets
    /// and prepares each key's info-token chunks. Cost: linear in the keys (config load only).
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, StoreError> {
        let mut map = HashMap::with_capacity(keys.len());
        for (position, key) in keys.into_iter().enumerate() {
            if key.client_id.trim().is_empty() {
                return Err(StoreError::BlankId);
            }
            if key.client_secret.expose().is_empty() {
                return Err(StoreError::EmptySecret(key.client_id));
            }
            if map.contains_key(&key.client_id) {
                return Err(StoreError::DuplicateId(key.client_id));
            }
            let prepared = PreparedApiKey::new(&key.client_id, &key.name, &key.metadata, &key.tags);
            let stored = StoredKey {
                secret_digest: secret_digest(key.client_secret.expose()),
                prepared,
                key,
                position,
            };
            map.insert(stored.key.client_id.clone(), stored);
        }
        Ok(ApiKeyStore { keys: map })
    }

    /// The key with this client id (one hash lookup), whatever its state.
    pub fn get(&self, client_id: &str) -> Option<&StoredKey> {
        self.keys.get(client_id)
    }

    /// The key with this client id given as bytes (non-UTF-8 ids are never found).
    pub fn get_bytes(&self, client_id: &[u8]) -> Option<&StoredKey> {
        std::str::from_utf8(client_id)
            .ok()
            .and_then(|id| self.keys.get(id))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, in no particular order (for config checks such as "every `jwt-sign-keypair`
    /// names a configured key pair").
    pub fn iter(&self) -> impl Iterator<Item = &StoredKey> {
        self.keys.values()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn store_refuses_bad_sets() {
        let a = ApiKey::new("a", "s", "A");
        assert_eq!(
            ApiKeyStore::new(vec![a.clone(), a.clone()]).unwrap_err(),
            StoreError::DuplicateId("a".into())
        );
        assert_eq!(
            ApiKeyStore::new(vec![ApiKey::new(" ", "s", "x")]).unwrap_err(),
            StoreError::BlankId
        );
        assert_eq!(
            ApiKeyStore::new(vec![ApiKey::new("b", "", "x")]).unwrap_err(),
            StoreError::EmptySecret("b".into())
        );
        let store = ApiKeyStore::new(vec![a, ApiKey::new("c", "s", "C")]).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get("a").unwrap().position(), 0);
        assert_eq!(store.get("c").unwrap().position(), 1);
        assert_eq!(store.get("a").unwrap().prepared().client_id(), "a");
        assert!(store.get_bytes(b"\xff").is_none());
        assert!(!store.is_empty());
        let mut ids: Vec<&str> = store.iter().map(|k| k.key().client_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "c"]);
        let empty = ApiKeyStore::new(Vec::new()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn a_key_is_metered_when_any_one_quota_is_set() {
        let mut key = ApiKey::new("id", "s", "n");
        assert!(!key.is_metered());
        for set in 0..3 {
            let mut k = key.clone();
            match set {
                0 => k.throttling_quota = Some(1),
                1 => k.daily_quota = Some(1),
                _ => k.monthly_quota = Some(1),
            }
            assert!(k.is_metered(), "quota {set}");
        }
        key.daily_quota = Some(5);
        key.monthly_quota = Some(9);
        assert!(key.is_metered());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let key = ApiKey::new("id", "hunter2-very-secret", "n");
        let text = format!("{key:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn validity_window() {
        let mut key = ApiKey::new("id", "s", "n");
        assert!(key.is_active(10));
        key.valid_until = Some(100);
        assert!(key.is_active(99));
        assert!(!key.is_active(100));
        key.valid_until = None;
        key.enabled = false;
        assert!(!key.is_active(0));
    }

    #[test]
    fn scopes_and_key_pair() {
        let mut key = ApiKey::new("id", "s", "n");
        assert!(key.scopes().is_none());
        key.metadata.insert("scope".into(), " read  write ".into());
        assert_eq!(key.scopes().unwrap().collect::<Vec<_>>(), ["read", "write"]);
        key.metadata
            .insert(META_JWT_SIGN_KEYPAIR.into(), "kp".into());
        assert_eq!(key.sign_key_pair(), Some("kp"));
    }
}
