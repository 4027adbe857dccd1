//! The client side of TLS: the rustls `ClientConfig` a route uses towards its `https://`
//! targets, built when a snapshot is built from `routes[].upstream_tls`.
//!
//! Owns the trust roots (the built-in Mozilla roots, or the route's `ca` bundle alone), the
//! optional client certificate (mTLS), the name verified and sent in SNI (the target host, or
//! `server_name`), and the identity that keeps pooled TLS connections apart. Session
//! resumption uses rustls' in-memory store inside the shared config (tickets and TLS 1.3 PSKs),
//! so a new connection to a target resumes when it can. Connections are opened in
//! `proxy::connect`; nothing here does IO on sockets.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::config::{TargetConfig, UpstreamTlsSpec};
use crate::tls::pem::{builtin_roots, load_certs, load_key, load_roots};
use crate::tls::server::ALPN_HTTP11;
use crate::tls::{provider, VERSIONS};

/// What a connection to one `https://` target needs: the route's config, the name to verify,
/// and the pool identity.
#[derive(Debug, Clone)]
pub struct TargetTls {
    /// The route's client config (shared by its https targets).
    pub config: Arc<ClientConfig>,
    /// SNI and verified name.
    pub server_name: ServerName<'static>,
    /// Non-zero identity of (trust settings, client certificate, server name): pooled TLS
    /// connections are only reused for the same identity. Stable across reloads.
    pub pool_id: u64,
}

/// Builds a route's client config. `None` spec: built-in roots, no client certificate.
/// Every problem is returned, each with the `upstream_tls` key it concerns (`ca`,
/// `client_cert`, `client_key`; `""` for the section as a whole): an unreadable CA and an
/// unreadable client key are both reported.
pub fn client_config(
    spec: Option<&UpstreamTlsSpec>,
) -> Result<Arc<ClientConfig>, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let roots = match spec.and_then(|s| s.ca.as_deref()) {
        Some(ca) => load_roots(ca).map_err(|e| errors.push(("ca", e))).ok(),
        None => Some(builtin_roots()),
    };
    let pair = spec.and_then(|s| s.client_cert.as_deref().zip(s.client_key.as_deref()));
    let client = pair.map(|(cert, key)| {
        let chain = load_certs(cert).map_err(|e| errors.push(("client_cert", e)));
        let key = load_key(key).map_err(|e| errors.push(("client_key", e)));
        (cert, chain, key)
    });
    let Some(roots) = roots.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| vec![("", e.to_string())])?
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, Ok(chain), Ok(key))) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                vec![(
                    "client_key",
                    format!("client certificate {}: {e}", cert.display()),
                )]
            })?
        }
        Some(_) => return Err(errors),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS settings of one `https://` target of a route whose config is `config`.
pub fn target_tls(
    config: &Arc<ClientConfig>,
    spec: Option<&UpstreamTlsSpec>,
    target: &TargetConfig,
) -> Result<TargetTls, String> {
    let name = spec
        .and_then(|s| s.server_name.clone())
        .unwrap_or_else(|| target.host.clone());
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| format!("{name:?} is not a valid TLS server name"))?;
    let mut h = std::hash::DefaultHasher::new();
    name.hash(&mut h);
    spec.hash(&mut h);
    Ok(TargetTls {
        config: config.clone(),
        server_name,
        pool_id: h.finish() | 1,
    })
}
