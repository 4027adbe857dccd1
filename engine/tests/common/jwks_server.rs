//! A JWKS server the test controls, on 127.0.0.1:0: HTTPS with a certificate from a test CA
//! (rcgen; the gateway trusts it through `jwks_ca`), or plain HTTP. The test swaps the document,
//! the `Cache-Control` header and the answer (200, another status, or a connection closed
//! without an answer), and reads the requests it received (count and times), so fetches are
//! counted on the server side. Signing keys are ES256 pairs generated per test (`torii keygen`'s
//! generator); tokens are minted with `jsonwebtoken`, an independent implementation.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use torii_engine::auth::keygen::{generate_pem, KeyKind};
use torii_protocol::oauth::{KeyPair, KeyPairs};

use super::tls::TestCa;

/// How the server answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with the document.
    Document,
    /// This status, empty body.
    Status(u16),
    /// The connection is closed without an answer.
    Close,
}

struct State {
    document: Vec<u8>,
    cache_control: Option<String>,
    answer: Answer,
    requests: Vec<Instant>,
}

/// A running JWKS server.
pub struct JwksServer {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:port/jwks` or `http://…`.
    pub url: String,
    /// The CA file to name in `jwks_ca` (HTTPS only).
    pub ca_path: Option<PathBuf>,
    state: Arc<Mutex<State>>,
}

/// An ES256 signing key with its `kid`.
pub struct SigningKey {
    pub kid: String,
    pub pem: String,
}

impl SigningKey {
    pub fn new(kid: &str) -> Self {
        SigningKey {
            kid: kid.to_owned(),
            pem: generate_pem(KeyKind::EcP256).unwrap(),
        }
    }

    /// A token with `claims`, signed ES256 with this key under its `kid`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_as(claims, &self.kid)
    }

    /// A token signed with this key but naming `kid`.
    pub fn token_as(&self, claims: &Value, kid: &str) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(kid.to_owned());
        let key = jsonwebtoken::EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    }
}

/// The JWKS document publishing `keys`.
pub fn jwks_of(keys: &[&SigningKey]) -> Vec<u8> {
    let pairs = keys
        .iter()
        .map(|k| KeyPair::from_pem(&k.kid, &k.pem).unwrap())
        .collect();
    KeyPairs::new(pairs).unwrap().jwks_json().to_vec()
}

/// Claims accepted by [`jwt_section`] routes, valid for five minutes.
pub fn claims(extra: Value) -> Value {
    let now = torii_engine::secure::unix_now();
    let mut c = json!({"iss": "https://sts.test", "aud": "inventory", "sub": "order-processing",
                       "iat": now, "exp": now + 300});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

impl JwksServer {
    /// An HTTPS server on a free port; its CA is written into `dir`.
    pub fn https(dir: &Path, document: Vec<u8>) -> Self {
        Self::https_at(dir, document, None)
    }

    /// An HTTPS server on `bind`, or on a free port; its CA is written into `dir` as
    /// `jwks-ca.pem`.
    pub fn https_at(dir: &Path, document: Vec<u8>, bind: Option<SocketAddr>) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ca = TestCa::new("jwks test CA");
        let ca_path = dir.join("jwks-ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        Self::https_with(&ca, ca_path, document, bind)
    }

    /// An HTTPS server with a certificate from `ca` (whose PEM is at `ca_path`) on `bind`
    /// (e.g. a port a gateway already names: the identity server "comes back").
    pub fn https_with(
        ca: &TestCa,
        ca_path: PathBuf,
        document: Vec<u8>,
        bind: Option<SocketAddr>,
    ) -> Self {
        let leaf = ca.leaf(&["127.0.0.1"]);
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(leaf.der.clone())], key)
            .unwrap();
        Self::start(document, Some(Arc::new(config)), Some(ca_path), bind)
    }

    /// A plain HTTP server.
    pub fn http(document: Vec<u8>) -> Self {
        Self::start(document, None, None, None)
    }

    fn start(
        document: Vec<u8>,
        tls: Option<Arc<rustls::ServerConfig>>,
        ca_path: Option<PathBuf>,
        bind: Option<SocketAddr>,
    ) -> Self {
        let listener =
            TcpListener::bind(bind.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let state = Arc::new(Mutex::new(State {
            document,
            cache_control: None,
            answer: Answer::Document,
            requests: Vec::new(),
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                let tls = tls.clone();
                std::thread::spawn(move || serve(conn, tls, &st));
            }
        });
        JwksServer {
            addr,
            url: format!("{scheme}://{addr}/jwks"),
            ca_path,
            state,
        }
    }

    /// Serves `document` from now on.
    pub fn set_document(&self, document: Vec<u8>) {
        self.state.lock().unwrap().document = document;
    }

    /// Sends this `Cache-Control` (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.state.lock().unwrap().cache_control = value.map(str::to_owned);
    }

    /// Answers this way from now on.
    pub fn set_answer(&self, answer: Answer) {
        self.state.lock().unwrap().answer = answer;
    }

    /// Requests received so far.
    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// When each request arrived.
    pub fn fetch_times(&self) -> Vec<Instant> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until more than `n` requests arrived, at most `within`. Returns the count.
    pub fn wait_fetches_over(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let got = self.fetches();
            if got > n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn serve(tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, st: &Mutex<State>) {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut conn: Box<dyn Conn> = match tls {
        Some(cfg) => {
            let Ok(server) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            Box::new(rustls::StreamOwned::new(server, tcp))
        }
        None => Box::new(tcp),
    };
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let (answer, document, cache_control) = {
        let mut s = st.lock().unwrap();
        s.requests.push(Instant::now());
        (
            s.answer.clone(),
            s.document.clone(),
            s.cache_control.clone(),
        )
    };
    let (status, body) = match answer {
        Answer::Close => return,
        Answer::Status(code) => (code, Vec::new()),
        Answer::Document => (200, document),
    };
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(cc) = cache_control {
        out.push_str(&format!("cache-control: {cc}\r\n"));
    }
    out.push_str("\r\n");
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(&body);
    let _ = conn.flush();
}
