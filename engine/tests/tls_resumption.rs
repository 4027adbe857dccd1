//! Upstream TLS session resumption: a rustls server that records how each handshake went
//! (full or resumed) and closes every connection after one response, so that each request
//! through Torii needs a new upstream TLS connection. The first handshake is full; the next
//! ones resume the session the route's shared client config cached (docs/tls.md, "TLS to
//! upstreams").
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls::TestCa;
use common::{gateway, gateway_header, request};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};

/// Starts the recording server for `upstream.test`; returns its address and the handshake
/// kinds seen so far. Serves `conns` connections, then its thread ends.
fn recording_server(ca: &TestCa, conns: usize) -> (SocketAddr, Arc<Mutex<Vec<HandshakeKind>>>) {
    let leaf = ca.leaf(&["upstream.test"]);
    let certs = vec![CertificateDer::from(leaf.der.clone())];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let seen = kinds.clone();
    std::thread::spawn(move || {
        for _ in 0..conns {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = ServerConnection::new(config.clone()).unwrap();
            let mut tls = StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if let Some(kind) = tls.conn.handshake_kind() {
                seen.lock().unwrap().push(kind);
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (addr, kinds)
}

#[test]
fn upstream_tls_sessions_are_resumed() {
    let dir = common::process::TempDir::new("tls-resume");
    let ca = TestCa::new("resumption CA");
    let (up, kinds) = recording_server(&ca, 3);
    let ca_file = dir.write("ca.pem", &ca.pem());
    let gw = gateway(&format!(
        "{}[[routes]]\nid = \"s\"\ndomains = [\"r.test\"]\ntargets = [\"https://{up}\"]\nupstream_tls = {{ ca = \"{}\", server_name = \"upstream.test\" }}\n",
        gateway_header(""),
        ca_file.display()
    ));
    for i in 0..3 {
        let r = request(
            gw.addrs[0],
            "GET /x HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.text(), "ok");
    }
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[0], HandshakeKind::Full, "{kinds:?}");
    assert!(
        kinds[1..].iter().all(|k| *k == HandshakeKind::Resumed),
        "later connections resume the cached session: {kinds:?}"
    );
}
