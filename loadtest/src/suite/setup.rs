//! What the suite prepares before any load: random secrets, a throw-away PKI (a CA and one
//! leaf, generated with rcgen into the temp dir), the token service's signing key
//! (`torii keygen`), and a small blocking HTTP/1.1 client used for the probes that prove the
//! gateway enforces what a scenario measures (no credential → 401) and to obtain the bearer
//! scenario's access token.
//!
//! Nothing here is on the load path: the client sends a handful of requests with
//! `Connection: close`, each bounded by a timeout and a response size cap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// Per-request timeout of the probe client (connect, write, each read).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest probe response read.
const MAX_PROBE_RESPONSE: u64 = 1 << 20;

/// A 64-character secret (32 random bytes, hex) from /dev/urandom.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Files of the suite's PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (what the generator trusts with `--ca`).
    pub ca: PathBuf,
    /// The leaf certificate served by the gateway and nginx.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

/// Generates a CA and a leaf for `names` (DNS names) and writes `ca.pem`, `server.pem` and
/// `server.key` into `dir`.
pub fn make_pki(dir: &Path, names: &[&str]) -> Result<Pki, String> {
    let err = |e: rcgen::Error| format!("certificate generation: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "torii-loadtest suite CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let leaf_key = KeyPair::generate().map_err(err)?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut leaf = CertificateParams::new(names).map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "torii-loadtest suite");
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(err)?;
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    for (path, text) in [
        (&pki.ca, ca_cert.pem()),
        (&pki.cert, leaf_cert.pem()),
        (&pki.key, leaf_key.serialize_pem()),
    ] {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(pki)
}

/// Makes the token service's signing key with `torii keygen --kind ec-p256`, as an operator
/// would; returns its path.
pub fn keygen(torii: &Path, dir: &Path) -> Result<PathBuf, String> {
    let out = dir.join("signing.pem");
    let done = Command::new(torii)
        .args(["keygen", "--kind", "ec-p256", "--out"])
        .arg(&out)
        .output()
        .map_err(|e| format!("{} keygen: {e}", torii.display()))?;
    if !done.status.success() {
        return Err(format!(
            "torii keygen failed: {}",
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    Ok(out)
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body (after the head; the probes' answers are small and `Content-Length` framed).
    pub body: String,
}

/// Sends one request (`method path`, `Host: host`, extra header lines, optional body) with
/// `Connection: close` to `addr` and reads the whole answer.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    headers: &[String],
    body: &[u8],
) -> Result<Answer, String> {
    let fail = |e: std::io::Error| format!("probe {method} {host}{path}: {e}");
    let mut tcp = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(fail)?;
    tcp.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(fail)?;
    tcp.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(fail)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    tcp.write_all(&bytes).map_err(fail)?;
    let mut raw = Vec::new();
    tcp.take(MAX_PROBE_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(fail)?;
    parse_answer(&raw).ok_or_else(|| {
        format!(
            "probe {method} {host}{path}: unreadable answer {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    })
}

/// Status and body of a raw `Content-Length` (or close-delimited) response.
pub fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        body: body.to_string(),
    })
}

/// Obtains an access token from Torii's token service (`client_credentials`, JSON body, on the
/// plain listener: the suite's service has `secure = false`).
pub fn fetch_token(
    gateway: SocketAddr,
    oauth_host: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<String, String> {
    let body = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    })
    .to_string();
    let answer = send(
        gateway,
        "POST",
        "/.well-known/otoroshi/oauth/token",
        oauth_host,
        &["Content-Type: application/json".to_string()],
        body.as_bytes(),
    )?;
    token_from(&answer)
}

/// The `access_token` of a token-service answer; it must be a JWT (base64url and dots) since
/// it goes into a header line.
pub fn token_from(answer: &Answer) -> Result<String, String> {
    if answer.status != 200 {
        return Err(format!(
            "token service answered {}: {}",
            answer.status, answer.body
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("token service answer is not JSON ({e}): {}", answer.body))?;
    let token = v["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access_token in {}", answer.body))?;
    let jwt_chars = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if token.is_empty() || !jwt_chars {
        return Err(format!("access_token {token:?} is not a JWT"));
    }
    Ok(token.to_string())
}

/// Fails unless `answer` has `want` status; `what` says which probe for the message.
pub fn expect_status(answer: &Answer, want: u16, what: &str) -> Result<(), String> {
    if answer.status == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {want}, got {} {}",
            answer.status,
            answer.body.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_tokens_are_parsed_strictly() {
        let a = parse_answer(b"HTTP/1.1 401 Unauthorized\r\nX: y\r\n\r\n{\"e\":1}").unwrap();
        assert_eq!((a.status, a.body.as_str()), (401, "{\"e\":1}"));
        assert!(parse_answer(b"garbage").is_none());
        let ok = Answer {
            status: 200,
            body: r#"{"access_token":"aa.bb-_.cc","expires_in":3600}"#.into(),
        };
        assert_eq!(token_from(&ok).unwrap(), "aa.bb-_.cc");
        let injected = Answer {
            status: 200,
            body: r#"{"access_token":"a\r\nX: 1"}"#.into(),
        };
        assert!(token_from(&injected).is_err());
        let refused = Answer {
            status: 401,
            body: r#"{"error":"invalid_client"}"#.into(),
        };
        assert!(token_from(&refused).unwrap_err().contains("invalid_client"));
        assert!(expect_status(&refused, 401, "x").is_ok());
        assert!(expect_status(&refused, 200, "no key")
            .unwrap_err()
            .contains("no key: expected 200, got 401"));
    }

    #[test]
    fn the_pki_verifies_with_the_generators_tls_client() {
        let dir = super::super::procs::TempDir::new().unwrap();
        let pki = make_pki(&dir.path, &["plain.test"]).unwrap();
        let opts = crate::tls::TlsOptions {
            ca: Some(pki.ca.clone()),
            insecure: false,
        };
        assert!(crate::tls::TlsClient::new(&opts, "plain.test").is_ok());
        let key = std::fs::read_to_string(&pki.key).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let certs = torii_engine::tls::pem::load_certs(&pki.cert).unwrap();
        assert_eq!(certs.len(), 1);
    }
}
