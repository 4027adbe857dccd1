//! `https://` targets end to end: the generator against a small rustls server on 127.0.0.1:0
//! with a certificate authority and leaf generated at test time (rcgen). Covers trust (`--ca`,
//! built-in roots, `--insecure`), the server name (SNI from `--host`), keep-alive over TLS, and
//! session resumption when connections are reopened (TLS 1.3 tickets and TLS 1.2 session ids).

// Test-only helpers (outside #[test] functions) may panic on setup failures.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned, SupportedProtocolVersion};
use torii_loadtest::generator::{run, RunOptions};
use torii_loadtest::response::Checks;
use torii_loadtest::target::RequestSpec;
use torii_loadtest::tls::TlsOptions;

/// A CA (PEM written to a temp file) and a server config for a leaf naming `api.test`.
struct Pki {
    ca_file: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

fn pki(tag: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "lt test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["api.test".to_string()]).unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let dir = std::env::temp_dir().join(format!("torii-lt-https-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    Pki {
        ca_file,
        chain: vec![leaf_cert.der().clone()],
        key_der: leaf_key.serialize_der(),
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// SNI of every handshake.
    sni: Vec<Option<String>>,
    requests: u64,
}

/// Starts the server with the given protocol versions; answers every request with 200 and a
/// JSON body, and closes after answering a request that carried `Connection: close`.
fn server(
    pki: &Pki,
    versions: &'static [&'static SupportedProtocolVersion],
) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.chain.clone(),
            PrivateKeyDer::try_from(pki.key_der.clone()).unwrap(),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cfg = Arc::new(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(1000).flatten() {
            let (cfg, s) = (cfg.clone(), s.clone());
            std::thread::spawn(move || serve(tcp, cfg, &s));
        }
    });
    (addr, seen)
}

fn serve(tcp: TcpStream, cfg: Arc<ServerConfig>, seen: &Mutex<Seen>) {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut conn = ServerConnection::new(cfg).unwrap();
    let mut tcp = tcp;
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    let sni = conn.server_name().map(str::to_string);
    seen.lock().unwrap().sni.push(sni.clone());
    let mut reader = BufReader::new(StreamOwned::new(conn, tcp));
    for _ in 0..100_000 {
        let mut close = false;
        let mut saw_request = false;
        for _ in 0..200 {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            saw_request = true;
            close |= line.eq_ignore_ascii_case("connection: close\r\n");
        }
        if !saw_request {
            return;
        }
        seen.lock().unwrap().requests += 1;
        let body = format!("{{\"sni\":\"{}\"}}", sni.as_deref().unwrap_or(""));
        let conn_hdr = if close { "Connection: close\r\n" } else { "" };
        let resp = format!(
            "HTTP/1.1 200 OK\r\n{conn_hdr}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let stream = reader.get_mut();
        if stream.write_all(resp.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
        if close {
            stream.conn.send_close_notify();
            let _ = stream.flush();
            return;
        }
    }
}

fn options(addr: SocketAddr, pki: &Pki, n: u64) -> RunOptions {
    RunOptions {
        url: format!("https://{addr}/hello"),
        tls: TlsOptions {
            ca: Some(pki.ca_file.clone()),
            insecure: false,
        },
        request: RequestSpec {
            method: "GET".into(),
            host: Some("api.test".into()),
            ..RequestSpec::default()
        },
        connections: 4,
        threads: 2,
        duration: Duration::from_secs(30),
        max_requests: Some(n),
        rate: None,
        timeout: Duration::from_secs(5),
        checks: Checks {
            status: Some(200),
            body_contains: Some(b"\"sni\":\"api.test\"".to_vec()),
            ..Checks::default()
        },
        allow_remote: false,
        progress: false,
    }
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[test]
fn keep_alive_over_tls_with_sni_from_the_host_option() {
    let pki = pki("ka");
    let (addr, seen) = server(&pki, BOTH);
    let r = run(options(addr, &pki, 300)).unwrap();
    assert_eq!(r.stats.errors.total(), 0, "{:?}", r.stats);
    assert_eq!(r.stats.responses(), 300);
    assert_eq!(r.stats.check_failures, 0);
    assert_eq!(r.stats.tls_handshakes, 4, "one per keep-alive connection");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests, 300);
    assert_eq!(seen.sni.len(), 4);
    assert!(seen.sni.iter().all(|s| s.as_deref() == Some("api.test")));
}

#[test]
fn reopened_connections_resume_their_session() {
    for (tag, versions) in [("tls13", BOTH), ("tls12", TLS12)] {
        let pki = pki(tag);
        let (addr, seen) = server(&pki, versions);
        let mut o = options(addr, &pki, 30);
        (o.connections, o.threads) = (1, 1);
        o.request.headers = vec!["Connection: close".into()];
        let r = run(o).unwrap();
        assert_eq!(r.stats.errors.total(), 0, "{tag}: {:?}", r.stats);
        assert_eq!(r.stats.responses(), 30, "{tag}");
        assert_eq!(r.stats.tls_handshakes, 30, "{tag}: one per request");
        let full = r.tls_full_handshakes.unwrap();
        assert!(full <= 2, "{tag}: {full} full handshakes, the rest resumed");
        assert_eq!(seen.lock().unwrap().requests, 30, "{tag}");
    }
}

#[test]
fn untrusted_or_misnamed_certificates_are_tls_errors_and_insecure_skips_the_check() {
    let pki = pki("trust");
    let (addr, _) = server(&pki, BOTH);
    // Built-in roots do not know the test CA.
    let mut o = options(addr, &pki, 3);
    (o.connections, o.threads) = (1, 1);
    o.tls.ca = None;
    let r = run(o.clone()).unwrap();
    assert_eq!(r.stats.errors.tls, 3, "{:?}", r.stats);
    assert_eq!(r.stats.responses(), 0);
    let why = r.stats.tls_error_example.clone().unwrap();
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    // Trusted CA, but the certificate does not name other.test.
    let mut misnamed = o.clone();
    misnamed.tls.ca = Some(pki.ca_file.clone());
    misnamed.request.host = Some("other.test".into());
    let r = run(misnamed).unwrap();
    assert_eq!(r.stats.errors.tls, 3, "{:?}", r.stats);
    // --insecure: no trust, any name; the request still goes through TLS.
    let mut insecure = o;
    insecure.tls.insecure = true;
    insecure.request.host = Some("api.test".into());
    let r = run(insecure).unwrap();
    assert_eq!(r.stats.errors.total(), 0, "{:?}", r.stats);
    assert_eq!(r.stats.responses(), 3);
    assert_eq!(r.stats.check_failures, 0);
}

#[test]
fn binary_reports_tls_handshakes_in_json() {
    let pki = pki("bin");
    let (addr, _) = server(&pki, BOTH);
    let json = pki.ca_file.with_file_name("out.json");
    let bin = env!("CARGO_BIN_EXE_torii-loadtest");
    let out = std::process::Command::new(bin)
        .args(["run", "--url", &format!("https://{addr}/"), "--host"])
        .args(["api.test", "-n", "20", "-c", "2", "--quiet", "--ca"])
        .arg(&pki.ca_file)
        .args(["--expect-status", "200", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("tls         2 handshakes"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["tls"]["handshakes"], 2);
    assert_eq!(v["requests"], 20);
    let bad = std::process::Command::new(bin)
        .args(["run", "--url", &format!("https://{addr}/"), "--host"])
        .args(["api.test", "-n", "2", "-c", "1", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("tls error"));
}
