//! The server side of TLS: the rustls `ServerConfig`s of the https listeners, built from
//! `[[certificates]]` and `[gateway.client_auth]` when a snapshot is built.
//!
//! Owns certificate selection by SNI ([`SniResolver`]: exact name, then `*.parent` wildcard,
//! then the first certificate as the default), ALPN (`h2` then `http/1.1` with `gateway.http2`,
//! else `http/1.1` only), the protocol versions
//! (TLS 1.3 and 1.2) and client-certificate verification. Everything here runs at load time;
//! per handshake only the resolver's two map lookups run. It must not do IO on connections: the
//! handshake itself is driven by the accept loop (`server::listener`, then `server::tls_accept`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::{CertificateSpec, ClientAuthSpec, ConfigError};
use crate::http1::{canonical_host, MAX_HOST_BYTES};
use crate::tls::pem::{load_certs, load_key, load_roots};
use crate::tls::{provider, VERSIONS};

/// The ALPN name of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// The ALPN name of HTTP/2 over TLS (RFC 9113 §3.2).
pub const ALPN_H2: &[u8] = b"h2";

/// Chooses the certificate for a handshake from the SNI name.
#[derive(Debug)]
pub struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
}

impl SniResolver {
    /// Index of the certificate served for `sni`: exact name, then a wildcard `*.parent`
    /// covering it (one label only), then 0, the first certificate. The name is compared in
    /// its canonical form ([`canonical_host`]: lower case, one trailing dot removed), the same
    /// form routing and the token service match.
    pub fn pick(&self, sni: Option<&str>) -> usize {
        let mut buf = [0u8; MAX_HOST_BYTES];
        let Some(name) = sni
            .and_then(|n| canonical_host(n.as_bytes(), &mut buf))
            .and_then(|n| std::str::from_utf8(n).ok())
        else {
            return 0;
        };
        if let Some(&i) = self.exact.get(name) {
            return i;
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(&i) = self.wildcard.get(parent) {
                return i;
            }
        }
        0
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there is no certificate (never the case for a built resolver).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys.get(self.pick(hello.server_name())).cloned()
    }
}

/// The https listeners' configs of one snapshot.
#[derive(Debug)]
pub struct TlsServer {
    plain: Arc<ServerConfig>,
    with_client_auth: Option<(Arc<ServerConfig>, ClientAuthSpec)>,
    resolver: Arc<SniResolver>,
}

impl TlsServer {
    /// Reads the certificates and keys, checks each key matches its certificate, and builds
    /// the configs. Errors carry the key path of the entry at fault. With `http2`, ALPN offers
    /// `h2` first (rustls picks the first of the server's protocols the client also offers),
    /// then `http/1.1`; without, only `http/1.1`. A client that offers no ALPN gets HTTP/1.1.
    pub fn build(
        certs: &[CertificateSpec],
        client_auth: Option<&ClientAuthSpec>,
        http2: bool,
    ) -> Result<Self, Vec<ConfigError>> {
        let provider = provider();
        let mut errors = Vec::new();
        let mut keys = Vec::with_capacity(certs.len());
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (i, spec) in certs.iter().enumerate() {
            match certified_key(spec, &provider) {
                Ok((key, names)) => {
                    let idx = keys.len();
                    for name in names {
                        match name.strip_prefix("*.") {
                            Some(parent) => wildcard.entry(parent.to_owned()).or_insert(idx),
                            None => exact.entry(name).or_insert(idx),
                        };
                    }
                    keys.push(Arc::new(key));
                }
                Err(found) => {
                    for (key, message) in found {
                        errors.push(ConfigError::new(
                            format!("certificates[{i}].{key}"),
                            message,
                        ));
                    }
                }
            }
        }
        // The client CA is read now, so that its problems are reported with the certificates'.
        let verifier = client_auth.map(|spec| {
            client_verifier(spec, &provider)
                .map(|v| (v, spec))
                .map_err(|m| errors.push(ConfigError::new("gateway.client_auth.ca", m)))
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        let resolver = Arc::new(SniResolver {
            keys,
            exact,
            wildcard,
        });
        let build = |verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>| {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(VERSIONS)
                .map_err(|e| e.to_string())?;
            let mut config = match verifier {
                Some(v) => builder.with_client_cert_verifier(v),
                None => builder.with_no_client_auth(),
            }
            .with_cert_resolver(resolver.clone());
            config.alpn_protocols = if http2 {
                vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
            } else {
                vec![ALPN_HTTP11.to_vec()]
            };
            Ok::<_, String>(Arc::new(config))
        };
        let plain = build(None).map_err(|m| vec![ConfigError::new("certificates", m)])?;
        let with_client_auth = match verifier {
            Some(Ok((verifier, spec))) => {
                let config = build(Some(verifier))
                    .map_err(|m| vec![ConfigError::new("gateway.client_auth", m)])?;
                Some((config, spec.clone()))
            }
            // Its error is in `errors`, which were returned above.
            Some(Err(())) | None => None,
        };
        Ok(Self {
            plain,
            with_client_auth,
            resolver,
        })
    }

    /// The config for the https listener configured as `addr`.
    pub fn for_listener(&self, addr: SocketAddr) -> &Arc<ServerConfig> {
        match &self.with_client_auth {
            Some((config, spec)) if spec.applies_to(addr) => config,
            _ => &self.plain,
        }
    }

    /// The certificate resolver (for tests and logs).
    pub fn resolver(&self) -> &SniResolver {
        &self.resolver
    }
}

/// A problem of one `[[certificates]]` entry: the key it concerns (`cert`, `key`) and what.
type KeyError = (&'static str, String);

/// Loads one `[[certificates]]` entry and returns it with the DNS names of its leaf
/// (lowercase; wildcards as `*.parent`).
///
/// Every problem is returned with the key it concerns: `cert` (the chain file), `key` (the key
/// file, and a key that does not match the chain), so an unreadable chain and an unreadable key
/// are both reported.
fn certified_key(
    spec: &CertificateSpec,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Vec<String>), Vec<KeyError>> {
    let chain = load_certs(&spec.cert);
    let key = load_key(&spec.key);
    let (chain, key) = match (chain, key) {
        (Ok(chain), Ok(key)) => (chain, key),
        (chain, key) => {
            let errors = [("cert", chain.err()), ("key", key.err())];
            return Err(errors
                .into_iter()
                .filter_map(|(k, e)| Some((k, e?)))
                .collect());
        }
    };
    let names = match chain.first().map(webpki::EndEntityCert::try_from) {
        Some(Ok(leaf)) => leaf
            .valid_dns_names()
            .map(|n| n.to_ascii_lowercase())
            .collect(),
        _ => {
            return Err(vec![(
                "cert",
                format!(
                    "{}: the first certificate is not a valid X.509 certificate",
                    spec.cert.display()
                ),
            )])
        }
    };
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        vec![(
            "key",
            format!(
                "{} and {} do not form a usable pair: {e}",
                spec.key.display(),
                spec.cert.display()
            ),
        )]
    })?;
    Ok((key, names))
}

fn client_verifier(
    spec: &ClientAuthSpec,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let roots = load_roots(&spec.ca)?;
    let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
    let builder = if spec.required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| format!("{}: {e}", spec.ca.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_names_are_matched_in_their_canonical_form() {
        let r = SniResolver {
            keys: Vec::new(),
            exact: HashMap::from([("a.example".to_owned(), 1), ("b.example".to_owned(), 2)]),
            wildcard: HashMap::from([("w.example".to_owned(), 3)]),
        };
        assert_eq!(r.pick(Some("a.example")), 1);
        assert_eq!(r.pick(Some("A.Example.")), 1, "one trailing dot, any case");
        assert_eq!(r.pick(Some("x.W.EXAMPLE")), 3);
        assert_eq!(r.pick(Some("x.w.example.")), 3);
        // Names without a canonical form get the default certificate, like no SNI at all.
        assert_eq!(r.pick(Some("a.example..")), 0);
        assert_eq!(r.pick(Some("a..example")), 0);
        assert_eq!(r.pick(None), 0);
    }
}
