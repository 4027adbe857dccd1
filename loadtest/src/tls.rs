//! The generator's TLS client for `https://` targets: one rustls `ClientConfig` (ring provider,
//! TLS 1.3 and 1.2, ALPN `http/1.1`) built once per run and shared by every thread, the server
//! name sent in SNI and verified, and the count of full handshakes.
//!
//! Owns trust (`--ca FILE`, the built-in Mozilla roots, or `--insecure`) and the handshake
//! accounting; the connect itself is in [`crate::conn`]. Session resumption is rustls' in-memory
//! store inside the shared config (TLS 1.3 tickets, TLS 1.2 session ids): a connection that is
//! reopened resumes when the server allows it. A resumed handshake does not verify a
//! certificate, so the verifier counts full handshakes and `handshakes - full` were resumed.
//! Nothing here runs per request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use torii_engine::tls::pem::{builtin_roots, load_roots};
use torii_engine::tls::server::ALPN_HTTP11;
use torii_engine::tls::{provider, VERSIONS};

/// TLS settings of a run (`--ca`, `--insecure`); ignored for `http://` targets.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM bundle to trust instead of the built-in roots.
    pub ca: Option<PathBuf>,
    /// Accept any certificate and name (handshake signatures are still verified).
    pub insecure: bool,
}

/// What every TLS connection of a run shares.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The shared config (and with it the session-resumption store).
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate must carry.
    pub server_name: ServerName<'static>,
    verifier: Arc<CountingVerifier>,
}

impl TlsClient {
    /// Builds the client for `server_name` (a DNS name or an IP address). Fails on an
    /// unreadable `--ca` file or an invalid name. Called once per run.
    pub fn new(options: &TlsOptions, server_name: &str) -> Result<TlsClient, String> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| format!("{server_name:?} is not a valid TLS server name"))?;
        let provider = provider();
        let check = if options.insecure {
            Check::Nothing(provider.clone())
        } else {
            let roots = match &options.ca {
                Some(path) => load_roots(path).map_err(|e| format!("--ca: {e}"))?,
                None => builtin_roots(),
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("--ca: {e}"))?;
            Check::WebPki(webpki)
        };
        let verifier = Arc::new(CountingVerifier {
            check,
            full: AtomicU64::new(0),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: name,
            verifier,
        })
    }

    /// Handshakes so far that verified a certificate (full, not resumed), over all threads.
    pub fn full_handshakes(&self) -> u64 {
        self.verifier.full.load(Ordering::Relaxed)
    }
}

/// How certificates are checked.
#[derive(Debug)]
enum Check {
    /// webpki against the trusted roots, with the server name.
    WebPki(Arc<WebPkiServerVerifier>),
    /// `--insecure`: any certificate, any name; signatures checked with the provider.
    Nothing(Arc<CryptoProvider>),
}

/// A certificate verifier that counts the certificates it was asked to verify (one per full
/// handshake; resumed handshakes present none).
#[derive(Debug)]
struct CountingVerifier {
    check: Check,
    full: AtomicU64,
}

impl ServerCertVerifier for CountingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.full.fetch_add(1, Ordering::Relaxed);
        match &self.check {
            Check::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Check::Nothing(_) => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.check {
            Check::WebPki(v) => v.verify_tls12_signature(message, cert, dss),
            Check::Nothing(p) => {
                verify_tls12_signature(message, cert, dss, &p.signature_verification_algorithms)
            }
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match &self.check {
            Check::WebPki(v) => v.verify_tls13_signature(message, cert, dss),
            Check::Nothing(p) => {
                verify_tls13_signature(message, cert, dss, &p.signature_verification_algorithms)
            }
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.check {
            Check::WebPki(v) => v.supported_verify_schemes(),
            Check::Nothing(p) => p.signature_verification_algorithms.supported_schemes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ca_files_are_checked_when_built() {
        let opts = TlsOptions::default();
        let c = TlsClient::new(&opts, "api.test").unwrap();
        assert_eq!(c.full_handshakes(), 0);
        assert_eq!(c.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(TlsClient::new(&opts, "127.0.0.1").is_ok(), "IP names");
        assert!(TlsClient::new(&opts, "bad name!").is_err());
        let missing = TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let err = TlsClient::new(&missing, "api.test").unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let insecure = TlsOptions {
            ca: None,
            insecure: true,
        };
        assert!(TlsClient::new(&insecure, "api.test").is_ok());
    }
}
