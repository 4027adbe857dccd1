//! Machine authentication in the engine: API keys checked on routes and the OAuth2
//! client-credentials token service (docs/oauth2.md).
//!
//! Owns the IO side of what `torii_protocol::apikey` and `torii_protocol::oauth` decide:
//! * [`build`]: at snapshot build, resolves the API key secrets, reads the key pair PEM files
//!   (or makes the process's ephemeral P-256 pair), and compiles everything into an
//!   [`AuthState`] (one per snapshot) and a [`RouteApiKeys`] per protected route;
//! * [`check`]: per request on a protected route, runs the extractors over the parsed head
//!   ([`check::HeadView`], no copy), validates, and says which credential carriers to wipe;
//! * [`wipe`]: rewrites the forwarded head without those carriers;
//! * the `/.well-known/otoroshi/oauth/` endpoints are answered before routing by
//!   `proxy::oauth_endpoint`, over `AuthState::oauth`;
//! * [`keygen`]: `torii keygen` and the ephemeral key pair.
//!
//! It must not parse keys or compile anything per request, and never logs a secret or token.

pub mod check;
pub mod keygen;
pub mod wipe;

use std::sync::OnceLock;

use torii_protocol::apikey::{ApiKeyStore, ClientSecret, Extractors};
use torii_protocol::jwt_verifier::RequiredClaims;
use torii_protocol::oauth::{ClientCredentials, ClientCredentialsConfig, KeyPair, KeyPairs};
use torii_protocol::secret::resolve;

use crate::config::{io_reason, AuthSpec, ConfigError, RouteApiKeysSpec};
use crate::secure::keys::SystemSecrets;

/// The token service of a snapshot (`[client_credentials]`).
#[derive(Debug)]
pub struct OAuthService {
    /// The protocol-side service (expiration, default key pair).
    pub service: ClientCredentials,
    /// `^(?i:domain)$`, matched against the Host without its port.
    pub domain: regex::Regex,
    /// Refuse the endpoints on plain HTTP connections.
    pub secure: bool,
}

/// Everything the request path needs for API keys and tokens, built once per snapshot.
#[derive(Debug, Default)]
pub struct AuthState {
    /// `[[apikeys]]`, by client id.
    pub store: ApiKeyStore,
    /// `[[key_pairs]]` (or the ephemeral pair); `None` when there is none and the token
    /// service is off (bearer tokens are then refused as `no_key_pairs`).
    pub key_pairs: Option<KeyPairs>,
    /// The token service, when `[client_credentials]` is present.
    pub oauth: Option<OAuthService>,
}

/// `[routes.apikeys]` compiled for the request path.
#[derive(Debug, Clone)]
pub struct RouteApiKeys {
    /// Which extractors run.
    pub extractors: Extractors,
    /// Remove the credential carriers before forwarding.
    pub wipe_credentials: bool,
    /// Scopes and bearer-token claims required (`required_scopes`, `required_claims`).
    pub required: RequiredClaims,
}

impl RouteApiKeys {
    /// From the validated section.
    pub fn build(spec: &RouteApiKeysSpec) -> Self {
        RouteApiKeys {
            extractors: Extractors {
                client_id: spec.client_id,
                headers: spec.headers,
                bearer: spec.bearer,
                basic: spec.basic,
                custom: spec.custom.clone(),
            },
            wipe_credentials: spec.wipe_credentials,
            required: spec.required.clone(),
        }
    }
}

/// The process's ephemeral signing key (PKCS#8 PEM), made once: a reload keeps it, so tokens
/// survive a SIGHUP (not a restart).
static EPHEMERAL_PEM: OnceLock<Result<String, String>> = OnceLock::new();

fn ephemeral_pem() -> Result<String, String> {
    EPHEMERAL_PEM
        // The warning about it is a configuration warning (`config::warnings`), printed by
        // `torii check` and logged by `torii run`.
        .get_or_init(|| keygen::generate_pem(keygen::KeyKind::EcP256))
        .clone()
}

/// Builds the authentication part of a snapshot. Errors carry their key paths; a secret or key
/// never appears in them. Cost: secret resolution, one SHA-256 per key, PEM parsing (a few ms
/// for RSA): config load only.
pub fn build(spec: &AuthSpec) -> Result<AuthState, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut keys = Vec::with_capacity(spec.apikeys.len());
    for (i, k) in spec.apikeys.iter().enumerate() {
        let resolved =
            k.clone()
                .map_secret(|raw| match resolve(raw.expose_raw(), &SystemSecrets) {
                    Ok(s) if s.is_empty() => Err("resolves to an empty secret".to_owned()),
                    Ok(s) => Ok(ClientSecret::new(s)),
                    Err(e) => Err(e.to_string()),
                });
        match resolved {
            Ok(key) => keys.push(key),
            Err(why) => errors.push(ConfigError::new(format!("apikeys[{i}].client_secret"), why)),
        }
    }
    let store = match ApiKeyStore::new(keys) {
        Ok(s) => s,
        Err(e) => {
            errors.push(ConfigError::new("apikeys", e.to_string()));
            ApiKeyStore::default()
        }
    };
    let mut pairs = Vec::with_capacity(spec.key_pairs.len());
    for (i, kp) in spec.key_pairs.iter().enumerate() {
        let path = format!("key_pairs[{i}].private_key");
        let pem = match std::fs::read_to_string(&kp.private_key) {
            Ok(p) => p,
            Err(e) => {
                let shown = kp.private_key.display();
                errors.push(ConfigError::new(
                    path,
                    format!("cannot read {shown}: {}", io_reason(&e)),
                ));
                continue;
            }
        };
        match KeyPair::from_pem(&kp.id, &pem) {
            Ok(pair) => pairs.push(pair),
            Err(e) => errors.push(ConfigError::new(path, e.to_string())),
        }
    }
    let oauth = spec.client_credentials.as_ref().map(|cc| OAuthService {
        service: ClientCredentials::new(ClientCredentialsConfig {
            expiration_secs: cc.expiration.as_secs().max(1),
            default_key_pair: cc.default_key_pair.clone(),
            issuer: cc.issuer.clone(),
        }),
        domain: cc.domain.clone(),
        secure: cc.secure,
    });
    if spec.key_pairs.is_empty() {
        if let Some(o) = &oauth {
            let id = o.service.config().default_key_pair.as_str();
            match ephemeral_pem()
                .and_then(|pem| KeyPair::from_pem(id, &pem).map_err(|e| e.to_string()))
            {
                Ok(pair) => pairs.push(pair),
                Err(e) => errors.push(ConfigError::new(
                    "key_pairs",
                    format!("cannot make the ephemeral key pair: {e}"),
                )),
            }
        }
    }
    let key_pairs = if pairs.is_empty() {
        None
    } else {
        match KeyPairs::new(pairs) {
            Ok(k) => Some(k),
            Err(e) => {
                errors.push(ConfigError::new("key_pairs", e.to_string()));
                None
            }
        }
    };
    if let (Some(o), Some(kp)) = (&oauth, &key_pairs) {
        for id in o.service.missing_key_pairs(&store, kp) {
            errors.push(ConfigError::new(
                "client_credentials",
                format!("key pair {id:?} is not configured"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AuthState {
        store,
        key_pairs,
        oauth,
    })
}
