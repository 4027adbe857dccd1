//! TLS helpers for the engine's integration tests: a test PKI generated with rcgen at test
//! time (no keys committed), and a blocking rustls client that records what the handshake
//! negotiated (certificate, ALPN, version).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// A certificate authority that signs leaf certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for `names` (DNS names, `*.x` wildcards or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    /// Writes `<stem>.pem` and `<stem>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{stem}.pem"));
        let k = dir.join(format!("{stem}.key"));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// What a TLS request saw.
pub struct TlsExchange {
    /// The leaf certificate the server sent.
    pub server_cert: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<rustls::ProtocolVersion>,
    /// The raw response (head and body).
    pub response: Vec<u8>,
}

impl TlsExchange {
    pub fn status(&self) -> u16 {
        let text = String::from_utf8_lossy(&self.response);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn body(&self) -> String {
        let text = String::from_utf8_lossy(&self.response).into_owned();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    }
}

/// Client options.
#[derive(Default)]
pub struct ClientOpts<'a> {
    pub versions: Option<&'static [&'static rustls::SupportedProtocolVersion]>,
    pub client_cert: Option<&'a Leaf>,
    pub alpn: Vec<Vec<u8>>,
}

pub fn client_config(ca_der: &[u8], opts: &ClientOpts<'_>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(
            opts.versions
                .unwrap_or(&[&rustls::version::TLS13, &rustls::version::TLS12]),
        )
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match opts.client_cert {
        Some(leaf) => {
            use rustls::pki_types::pem::PemObject;
            let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            builder
                .with_client_auth_cert(vec![CertificateDer::from(leaf.der.clone())], key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = opts.alpn.clone();
    Arc::new(cfg)
}

/// Connects to `addr` with SNI `sni`, trusting `ca_der`, sends `GET path` with `Host: host` and
/// `Connection: close`, and reads the whole response. `Err` carries the handshake or IO error.
pub fn tls_get(
    addr: SocketAddr,
    sni: &str,
    ca_der: &[u8],
    host: &str,
    path: &str,
    opts: &ClientOpts<'_>,
) -> Result<TlsExchange, String> {
    let cfg = client_config(ca_der, opts);
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let server_cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let alpn = conn.alpn_protocol().map(|a| a.to_vec());
    let version = conn.protocol_version();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // Servers that close without close_notify after a `Connection: close` answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(TlsExchange {
        server_cert,
        alpn,
        version,
        response,
    })
}
