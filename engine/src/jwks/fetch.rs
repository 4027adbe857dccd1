//! One HTTP(S) GET of a `jwks_url`, with a blocking client (`ureq` on rustls with the ring
//! provider), turned into a [`KeySet`] and the response's caching directive.
//!
//! Owns the client settings of a JWKS fetch: trust roots (the `jwks_ca` bundle alone, or the
//! built-in Mozilla roots), a [`FETCH_TIMEOUT`] for the whole exchange, no redirects (a
//! redirect is an error: the configured URL is the one trusted), no proxy from the environment,
//! `Accept: application/json`, a body cap of [`MAX_JWKS_BYTES`] read before any parsing, and
//! only status 200 accepted. The document must parse as a whole ([`KeySet::from_jwks`] for every
//! asymmetric algorithm): anything else is an error and the caller keeps its last good set.
//! Called on a fetcher thread or, for the first fetch, on the thread building a snapshot; never
//! on a worker.

use std::sync::Arc;
use std::time::Duration;

use torii_protocol::jwt_verifier::refresh::{cache_directive, CacheDirective};
use torii_protocol::jwt_verifier::{AlgSet, KeySet, MAX_JWKS_BYTES};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::config::JwksUrlSpec;
use crate::tls::pem::load_certs;

/// Longest time one fetch may take, from connecting to the end of the body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A good fetch: the parsed set and what the server said about caching it.
#[derive(Debug)]
pub struct Fetched {
    /// The keys, for every asymmetric algorithm their JWKs allow.
    pub keys: KeySet,
    /// The response's `Cache-Control`.
    pub directive: CacheDirective,
}

/// The client of one URL, built once per fetcher (the CA bundle is read here).
pub struct JwksClient {
    url: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl JwksClient {
    /// A client for `spec`. Fails when the CA bundle cannot be read.
    pub fn new(spec: &JwksUrlSpec) -> Result<Self, String> {
        let roots = match &spec.ca {
            Some(ca) => {
                let certs: Vec<Certificate<'static>> = load_certs(ca)?
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                RootCerts::Specific(Arc::new(certs))
            }
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(crate::tls::provider())
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .https_only(spec.url.starts_with("https://"))
            .timeout_global(Some(FETCH_TIMEOUT))
            .user_agent(concat!("torii/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .build()
            .new_agent();
        Ok(JwksClient {
            url: spec.url.clone(),
            agent,
        })
    }

    /// The URL fetched.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One GET. Errors are one line for the log (never the body: it could be anything).
    pub fn fetch(&self) -> Result<Fetched, String> {
        let mut response = self
            .agent
            .get(&self.url)
            .call()
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("answered {status}, expected 200"));
        }
        let directive = cache_directive(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
        );
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_JWKS_BYTES as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    format!("document larger than {MAX_JWKS_BYTES} bytes")
                }
                e => format!("reading the body failed: {e}"),
            })?;
        let keys = KeySet::from_jwks(&AlgSet::asymmetric().to_vec(), &body)
            .map_err(|e| format!("unusable document: {e}"))?;
        Ok(Fetched { keys, directive })
    }
}
