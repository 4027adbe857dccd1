//! Validation of the TLS parts of the file: `[[certificates]]`, `[gateway.client_auth]` and
//! `routes[].upstream_tls`, into the typed specs defined here.
//!
//! Owns the shape checks only (required keys, enumerations, paths made absolute, header names).
//! It must not read certificate or key files nor parse PEM: that happens when the snapshot is
//! built (`crate::tls`), so that `torii check` and a reload report file problems with the same
//! key paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::{index, join, Collector};
use super::raw::{RawCertificate, RawClientAuth, RawUpstreamTls};
use super::secret::resolve_path;

/// One `[[certificates]]` entry: a PEM chain and its key, served by SNI on https listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSpec {
    /// Identifier (for logs and errors).
    pub id: String,
    /// PEM chain path (leaf first).
    pub cert: PathBuf,
    /// PEM private key path (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[gateway.client_auth]`: client-certificate authentication (mTLS) on https listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthSpec {
    /// CA bundle (PEM) that client certificates must chain to.
    pub ca: PathBuf,
    /// True: a client without a valid certificate fails the handshake. False: a certificate is
    /// asked for and checked when sent, but not required.
    pub required: bool,
    /// The https listeners it applies to (empty: every https listener).
    pub listeners: Vec<SocketAddr>,
}

impl ClientAuthSpec {
    /// Whether the https listener configured as `addr` asks for client certificates.
    pub fn applies_to(&self, addr: SocketAddr) -> bool {
        self.listeners.is_empty() || self.listeners.contains(&addr)
    }
}

/// `routes[].upstream_tls`: how `https://` targets of a route are verified and authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTlsSpec {
    /// CA bundle (PEM) replacing the built-in Mozilla roots.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mTLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    pub client_key: Option<PathBuf>,
    /// Name sent in SNI and verified in the certificate, instead of the target's host.
    pub server_name: Option<String>,
}

/// `[[certificates]]`.
pub(super) fn certificates(
    c: &mut Collector,
    raw: &[RawCertificate],
    base_dir: &Path,
) -> Vec<CertificateSpec> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, rc) in raw.iter().enumerate() {
        let path = index("certificates", i);
        let p = |k: &str| join(&path, k);
        let id = rc
            .id
            .clone()
            .unwrap_or_else(|| format!("certificates[{i}]"));
        if out.iter().any(|s: &CertificateSpec| s.id == id) {
            c.push(p("id"), format!("duplicate id {id:?}"));
        }
        let mut file = |key: &str, v: &Option<String>| match v.as_deref() {
            None | Some("") => {
                c.push(p(key), "required");
                None
            }
            Some(f) => Some(resolve_path(base_dir, f)),
        };
        let cert = file("cert", &rc.cert);
        let key = file("key", &rc.key);
        if let (Some(cert), Some(key)) = (cert, key) {
            out.push(CertificateSpec { id, cert, key });
        }
    }
    out
}

/// `[gateway.client_auth]`; `https` are the validated https listener addresses.
pub(super) fn client_auth(
    c: &mut Collector,
    raw: &RawClientAuth,
    https: &[SocketAddr],
    base_dir: &Path,
) -> Option<ClientAuthSpec> {
    let path = "gateway.client_auth";
    let p = |k: &str| join(path, k);
    let ca = match raw.ca.as_deref() {
        None | Some("") => {
            c.push(p("ca"), "required");
            None
        }
        Some(f) => Some(resolve_path(base_dir, f)),
    };
    let required = match raw.mode.as_deref() {
        None | Some("required") => true,
        Some("optional") => false,
        Some(m) => {
            c.push(
                p("mode"),
                format!("unknown mode {m:?} (expected \"required\" or \"optional\")"),
            );
            true
        }
    };
    let mut listeners = Vec::new();
    for (i, s) in raw.listeners.iter().enumerate() {
        let lp = index(&p("listeners"), i);
        match s.parse::<SocketAddr>() {
            Ok(a) if https.contains(&a) => listeners.push(a),
            Ok(a) => c.push(lp, format!("{a} is not one of gateway.https")),
            Err(_) => c.push(lp, format!("invalid address {s:?}")),
        }
    }
    if https.is_empty() {
        c.push(path, "needs at least one gateway.https listener");
    }
    ca.map(|ca| ClientAuthSpec {
        ca,
        required,
        listeners,
    })
}

/// `routes[i].upstream_tls`.
pub(super) fn upstream_tls(
    c: &mut Collector,
    path: &str,
    raw: &RawUpstreamTls,
    base_dir: &Path,
) -> UpstreamTlsSpec {
    let p = |k: &str| join(path, k);
    let file = |v: &Option<String>| v.as_deref().map(|f| resolve_path(base_dir, f));
    let spec = UpstreamTlsSpec {
        ca: file(&raw.ca),
        client_cert: file(&raw.client_cert),
        client_key: file(&raw.client_key),
        server_name: raw.server_name.as_ref().map(|s| s.to_ascii_lowercase()),
    };
    match (&spec.client_cert, &spec.client_key) {
        (Some(_), None) => c.push(p("client_key"), "required with client_cert"),
        (None, Some(_)) => c.push(p("client_cert"), "required with client_key"),
        _ => {}
    }
    if let Some(name) = &spec.server_name {
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            c.push(
                p("server_name"),
                format!("{name:?} is not a valid DNS name or IP address"),
            );
        }
    }
    spec
}
