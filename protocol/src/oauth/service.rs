//! The token and introspection endpoints as functions from a parsed request to a response
//! document. Time (`now`), the issuer (`scheme://host`) and the token id (`jti`) are parameters:
//! the engine reads the clock, the Host header and its random source.
//!
//! Token issuance authenticates the client with the same key checks as every route
//! ([`ApiKeyStore::authenticate_key`]: known, secret in constant time, enabled, not expired; no
//! route, the endpoint is not one), checks requested scopes ⊆ the key's `scope` metadata, and
//! signs a JWT with the key pair named by the key's `jwt-sign-keypair` metadata or the
//! configured default. Introspection authenticates the caller the same way and reports any
//! token that does not verify, or whose key is no longer valid, as `{"active":false}`.

use serde_json::{json, Map, Value};

use super::keys::KeyPairs;
use super::request::{ClientAuthMethod, IntrospectionRequest, TokenRequest};
use super::{ErrorCode, OAuthError};
use crate::apikey::{ApiKeyStore, Credentials, StoredKey, ACCESS_TOKEN_AUDIENCE};
use crate::jws::encode_claims;

/// `[client_credentials]` as the service needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsConfig {
    /// Token lifetime in seconds (`expiration`, default 3600).
    pub expiration_secs: u64,
    /// Key pair used when a key has no `jwt-sign-keypair` metadata.
    pub default_key_pair: String,
    /// A fixed `iss` for every token (`[client_credentials] issuer`). `None`: the request's
    /// `scheme://Host` (Otoroshi's behaviour, port included), see [`ClientCredentials::issuer`].
    pub issuer: Option<String>,
}

impl Default for ClientCredentialsConfig {
    fn default() -> Self {
        ClientCredentialsConfig {
            expiration_secs: 3600,
            default_key_pair: "otoroshi-jwt-signing".to_owned(),
            issuer: None,
        }
    }
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scope, if any.
    pub scope: Option<String>,
}

impl TokenResponse {
    /// `{"access_token":…,"token_type":"Bearer","expires_in":…[,"scope":…]}`.
    pub fn body(&self) -> Vec<u8> {
        let mut doc = json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        if let (Some(scope), Value::Object(m)) = (&self.scope, &mut doc) {
            m.insert("scope".into(), Value::from(scope.as_str()));
        }
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

/// The client-credentials service. Built once per config load.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    config: ClientCredentialsConfig,
}

/// `{"active":false}`.
const INACTIVE: &[u8] = b"{\"active\":false}";

impl ClientCredentials {
    /// The service with this configuration.
    pub fn new(config: ClientCredentialsConfig) -> Self {
        ClientCredentials { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientCredentialsConfig {
        &self.config
    }

    /// The `iss` of a token issued now: the configured issuer, else `scheme://host` of the
    /// token request as Otoroshi writes it (the raw `Host` value, port
    /// included, so one service reached under two names issues two issuers). `request` is only
    /// called without a configured issuer.
    pub fn issuer(&self, request: impl FnOnce() -> String) -> std::borrow::Cow<'_, str> {
        match &self.config.issuer {
            Some(fixed) => std::borrow::Cow::Borrowed(fixed.as_str()),
            None => std::borrow::Cow::Owned(request()),
        }
    }

    /// Config-time check: every key pair the service may sign with exists (the default one and
    /// every `jwt-sign-keypair` metadata). Returns the missing ids.
    pub fn missing_key_pairs(&self, store: &ApiKeyStore, keys: &KeyPairs) -> Vec<String> {
        let mut missing: Vec<String> = std::iter::once(self.config.default_key_pair.as_str())
            .chain(store.iter().filter_map(|k| k.key().sign_key_pair()))
            .filter(|id| keys.get(id).is_none())
            .map(str::to_owned)
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    fn authenticate<'s>(
        store: &'s ApiKeyStore,
        client: &super::request::ClientAuth,
        now: u64,
    ) -> Result<&'s StoredKey, OAuthError> {
        let creds =
            Credentials::IdSecret(client.client_id.as_bytes(), client.client_secret.expose());
        store
            .authenticate_key(&creds, now)
            .map_err(|_| OAuthError::bad_client(client.method == ClientAuthMethod::Basic))
    }

    /// Answers a token request: 200 [`TokenResponse`] or an [`OAuthError`]. `issuer` is the
    /// token's `iss` ([`ClientCredentials::issuer`]); `jti` a fresh random id (at most 64 characters of
    /// `[A-Za-z0-9_-]` is advised). Cost: one SHA-256, one signature, one small serialisation.
    pub fn token(
        &self,
        store: &ApiKeyStore,
        keys: &KeyPairs,
        req: &TokenRequest,
        issuer: &str,
        now: u64,
        jti: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let entry = Self::authenticate(store, &req.client, now)?;
        let key = entry.key();
        let scope = match &req.scope {
            Some(requested) => {
                let allowed: Vec<&str> = key.scopes().map(Iterator::collect).unwrap_or_default();
                let mut granted: Vec<&str> = Vec::new();
                for s in requested.split(' ').filter(|s| !s.is_empty()) {
                    if !allowed.contains(&s) {
                        return Err(OAuthError::new(
                            ErrorCode::InvalidScope,
                            "requested scope exceeds the scope granted to the client",
                        ));
                    }
                    if !granted.contains(&s) {
                        granted.push(s);
                    }
                }
                Some(granted.join(" "))
            }
            None => key
                .scopes()
                .map(|s| s.collect::<Vec<_>>().join(" "))
                .filter(|s| !s.is_empty()),
        };
        let kid = key
            .sign_key_pair()
            .unwrap_or(self.config.default_key_pair.as_str());
        let pair = keys
            .get(kid)
            .ok_or_else(|| OAuthError::new(ErrorCode::ServerError, "signing key unavailable"))?;
        let exp = now.saturating_add(self.config.expiration_secs);
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::from(issuer));
        claims.insert("sub".into(), Value::from(key.client_id.as_str()));
        claims.insert("cid".into(), Value::from(key.client_id.as_str()));
        claims.insert("aud".into(), Value::from(ACCESS_TOKEN_AUDIENCE));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("nbf".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(exp));
        claims.insert("jti".into(), Value::from(jti));
        if let Some(scope) = &scope {
            claims.insert("scope".into(), Value::from(scope.as_str()));
        }
        let mut out = Vec::with_capacity(1024);
        encode_claims(pair.signing_key(), Some(pair.id()), &claims, &mut out)
            .map_err(|_| OAuthError::new(ErrorCode::ServerError, "signing failed"))?;
        let access_token = String::from_utf8(out)
            .map_err(|_| OAuthError::new(ErrorCode::ServerError, "signing failed"))?;
        Ok(TokenResponse {
            access_token,
            expires_in: self.config.expiration_secs,
            scope,
        })
    }

    /// Answers an introspection request (RFC 7662): the caller must authenticate (else 401
    /// `invalid_client`); then 200 with `{"active":false}` for a token that is malformed,
    /// foreign (unknown `kid`, bad signature), expired, not yet valid, or whose key is unknown,
    /// disabled or expired; otherwise the active document. Any authenticated client may
    /// introspect any token (the resource-server model of RFC 7662).
    pub fn introspect(
        &self,
        store: &ApiKeyStore,
        keys: &KeyPairs,
        req: &IntrospectionRequest,
        now: u64,
    ) -> Result<Vec<u8>, OAuthError> {
        Self::authenticate(store, &req.client, now)?;
        let Ok(token) = keys.verify_access_token(req.token.as_bytes(), now) else {
            return Ok(INACTIVE.to_vec());
        };
        let Ok(entry) = store.authenticate_key(&Credentials::Bearer(&token), now) else {
            return Ok(INACTIVE.to_vec());
        };
        let key = entry.key();
        let mut doc = Map::new();
        doc.insert("active".into(), Value::Bool(true));
        doc.insert("client_id".into(), Value::from(key.client_id.as_str()));
        if let Some(scope) = token.claim_str("scope") {
            doc.insert("scope".into(), Value::from(scope));
        }
        doc.insert("token_type".into(), Value::from("Bearer"));
        for (name, value) in [
            ("exp", token.exp()),
            ("iat", token.iat()),
            ("nbf", token.nbf()),
        ] {
            if let Some(v) = value {
                doc.insert(name.into(), Value::from(v));
            }
        }
        for name in ["sub", "aud", "iss", "jti"] {
            if let Some(v) = token.claims().get(name) {
                doc.insert(name.into(), v.clone());
            }
        }
        doc.insert("clientId".into(), Value::from(key.client_id.as_str()));
        doc.insert("clientName".into(), Value::from(key.name.as_str()));
        let metadata: Map<String, Value> = key
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        doc.insert("metadata".into(), Value::Object(metadata));
        doc.insert("tags".into(), Value::from(key.tags.clone()));
        doc.insert("access_type".into(), Value::from("apikey"));
        Ok(serde_json::to_vec(&Value::Object(doc)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_fixed_when_configured_else_from_the_request() {
        let from_request = ClientCredentials::default();
        assert_eq!(
            from_request.issuer(|| "https://sts.example:8443".to_owned()),
            "https://sts.example:8443"
        );
        let fixed = ClientCredentials::new(ClientCredentialsConfig {
            issuer: Some("https://sts.example.com".to_owned()),
            ..ClientCredentialsConfig::default()
        });
        let mut asked = false;
        let iss = fixed.issuer(|| {
            asked = true;
            String::new()
        });
        assert_eq!(iss, "https://sts.example.com");
        assert!(!asked, "the request's host is not even rendered");
    }
}
