//! TLS on both sides, over real sockets on 127.0.0.1 with a PKI generated at test time:
//! the handshake on https listeners (SNI selection: exact, wildcard, default; ALPN; TLS 1.2
//! and 1.3; the handshake deadline; client certificates), and `https://` targets (verified
//! against a route `ca` with a `server_name` override; a wrong CA gives 502).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::seen::{seen, seen_json};
use common::tls::{tls_get, ClientOpts, Leaf, TestCa};
use common::*;

/// A gateway with one https listener serving `certs` (in order), routing `*` domains to a
/// mirror, plus `extra` config.
fn tls_gateway(
    dir: &TempDir,
    certs: &[(&str, &Leaf)],
    extra: &str,
    limits: &str,
) -> (torii_engine::control::Gateway, SocketAddr) {
    let m = mirror();
    let mut cfg = format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n{extra}\n[limits]\n{limits}\n"
    );
    for (stem, leaf) in certs {
        let (c, k) = leaf.write(&dir.0, stem);
        cfg.push_str(&format!(
            "[[certificates]]\nid = \"{stem}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            c.display(),
            k.display()
        ));
    }
    cfg.push_str(&route("a", "a.test", "/", &[m]));
    cfg.push_str(&route("w", "*.wild.test", "/", &[m]));
    cfg.push_str(&route("u", "unknown.test", "/", &[m]));
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    (gw, addr)
}

#[test]
fn sni_selects_exact_then_wildcard_then_default() {
    let dir = TempDir::new("tls-sni");
    let ca = TestCa::new("sni CA");
    let first = ca.leaf(&["a.test"]);
    let wild = ca.leaf(&["*.wild.test"]);
    let exact = ca.leaf(&["exact.wild.test"]);
    let (_gw, addr) = tls_gateway(
        &dir,
        &[("first", &first), ("wild", &wild), ("exact", &exact)],
        "",
        "",
    );
    let opts = ClientOpts::default();
    let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/p", &opts).unwrap();
    assert_eq!(x.server_cert, first.der);
    assert_eq!(x.status(), 200, "{}", x.body());
    let body = seen_json(serde_json::from_str(&x.body()).unwrap());
    assert_eq!(body.one("x-forwarded-proto"), Some("https"));
    let x = tls_get(
        addr,
        "any.wild.test",
        &ca.der(),
        "any.wild.test",
        "/",
        &opts,
    )
    .unwrap();
    assert_eq!(x.server_cert, wild.der, "wildcard");
    let x = tls_get(
        addr,
        "EXACT.wild.test",
        &ca.der(),
        "exact.wild.test",
        "/",
        &opts,
    )
    .unwrap();
    assert_eq!(x.server_cert, exact.der, "exact wins over wildcard");
    // No certificate for the name: the first one is served (and the client, verifying the
    // name, refuses it).
    let err = tls_get(addr, "unknown.test", &ca.der(), "unknown.test", "/", &opts)
        .err()
        .unwrap();
    assert!(
        err.contains("certificate") || err.contains("Certificate"),
        "{err}"
    );
    // A wildcard covers one label only.
    let err = tls_get(
        addr,
        "a.b.wild.test",
        &ca.der(),
        "a.b.wild.test",
        "/",
        &opts,
    );
    assert!(err.is_err());
}

#[test]
fn alpn_and_both_protocol_versions() {
    let dir = TempDir::new("tls-ver");
    let ca = TestCa::new("ver CA");
    let leaf = ca.leaf(&["a.test"]);
    let h2_h1 = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // (gateway extra, client ALPN, ALPN expected): `gateway.http2 = false` offers only
    // http/1.1; with HTTP/2 on (the default) a client that offers only http/1.1, or no ALPN
    // at all, gets HTTP/1.1 (the h2 choice itself: engine/tests/h2_functional.rs).
    type Case<'a> = (&'a str, Vec<Vec<u8>>, Option<&'a [u8]>);
    let cases: [Case<'_>; 3] = [
        ("http2 = false", h2_h1, Some(b"http/1.1")),
        ("", vec![b"http/1.1".to_vec()], Some(b"http/1.1")),
        ("", Vec::new(), None),
    ];
    for (extra, alpn, expected_alpn) in cases {
        let (_gw, addr) = tls_gateway(&dir, &[("a", &leaf)], extra, "");
        for (versions, expected) in [
            (
                &[&rustls::version::TLS13][..],
                rustls::ProtocolVersion::TLSv1_3,
            ),
            (
                &[&rustls::version::TLS12][..],
                rustls::ProtocolVersion::TLSv1_2,
            ),
        ] {
            let opts = ClientOpts {
                versions: Some(Box::leak(versions.to_vec().into_boxed_slice())),
                alpn: alpn.clone(),
                ..Default::default()
            };
            let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/", &opts).unwrap();
            assert_eq!(x.version, Some(expected));
            assert_eq!(x.alpn.as_deref(), expected_alpn, "{extra:?} {alpn:?}");
            assert_eq!(x.status(), 200);
        }
    }
}

#[test]
fn a_silent_client_is_closed_at_the_handshake_deadline() {
    let dir = TempDir::new("tls-deadline");
    let ca = TestCa::new("deadline CA");
    let leaf = ca.leaf(&["a.test"]);
    let (_gw, addr) = tls_gateway(
        &dir,
        &[("a", &leaf)],
        "",
        "tls_handshake_timeout = \"300ms\"",
    );
    let mut s = connect(addr);
    let start = Instant::now();
    let mut b = [0u8; 16];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "expected a close");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn client_certificates_required_on_the_listener() {
    let dir = TempDir::new("tls-mtls");
    let ca = TestCa::new("server CA");
    let clients = TestCa::new("clients CA");
    let other = TestCa::new("other CA");
    std::fs::write(dir.0.join("clients.pem"), clients.pem()).unwrap();
    let extra = format!(
        "[gateway.client_auth]\nca = \"{}\"\nmode = \"required\"\n",
        dir.0.join("clients.pem").display()
    );
    let leaf = ca.leaf(&["a.test"]);
    let (_gw, addr) = tls_gateway(&dir, &[("a", &leaf)], &extra, "");
    let none = tls_get(
        addr,
        "a.test",
        &ca.der(),
        "a.test",
        "/",
        &ClientOpts::default(),
    );
    assert!(none.is_err(), "no client certificate must fail");
    let bad = other.leaf(&["client"]);
    let wrong = ClientOpts {
        client_cert: Some(&bad),
        ..Default::default()
    };
    assert!(tls_get(addr, "a.test", &ca.der(), "a.test", "/", &wrong).is_err());
    let good = clients.leaf(&["client"]);
    let ok = ClientOpts {
        client_cert: Some(&good),
        ..Default::default()
    };
    let x = tls_get(addr, "a.test", &ca.der(), "a.test", "/", &ok).unwrap();
    assert_eq!(x.status(), 200);
}

/// A TLS "upstream": a gateway terminating TLS for `upstream.test` in front of a mirror.
fn tls_upstream(dir: &TempDir, ca: &TestCa) -> (torii_engine::control::Gateway, SocketAddr) {
    let leaf = ca.leaf(&["upstream.test"]);
    let m = mirror();
    let (c, k) = leaf.write(&dir.0, "upstream");
    let cfg = format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\n{}",
        c.display(),
        k.display(),
        route("up", "127.0.0.1", "/", &[m])
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    (gw, addr)
}

fn https_route(upstream: SocketAddr, ca_file: &std::path::Path) -> String {
    format!(
        "{}[[routes]]\nid = \"s\"\ndomains = [\"b.test\"]\ntargets = [\"https://{upstream}\"]\nupstream_tls = {{ ca = \"{}\", server_name = \"upstream.test\" }}\n",
        gateway_header(""),
        ca_file.display()
    )
}

#[test]
fn https_targets_verified_against_the_route_ca() {
    let dir = TempDir::new("tls-up");
    let ca = TestCa::new("upstream CA");
    let (_up, up_addr) = tls_upstream(&dir, &ca);
    let ca_file = dir.write("ca.pem", &ca.pem());
    let gw = gateway(&https_route(up_addr, &ca_file));
    let addr = gw.addrs[0];
    // Several requests on one keep-alive client connection: the pooled TLS connection is reused.
    let mut s = connect(addr);
    let mut buf = Vec::new();
    for _ in 0..3 {
        use std::io::Write;
        s.write_all(b"GET /x HTTP/1.1\r\nHost: b.test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, &mut buf, "GET").unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        // The upstream gateway saw an https client.
        assert_eq!(seen(&r).one("x-forwarded-proto"), Some("https"));
    }
}

#[test]
fn https_target_with_a_wrong_ca_gives_502() {
    let dir = TempDir::new("tls-up-bad");
    let ca = TestCa::new("upstream CA");
    let wrong = TestCa::new("wrong CA");
    let (_up, up_addr) = tls_upstream(&dir, &ca);
    let ca_file = dir.write("wrong.pem", &wrong.pem());
    let gw = gateway(&https_route(up_addr, &ca_file));
    let r = get(gw.addrs[0], "b.test", "/");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("Upstream TLS handshake failed"),
        "{}",
        r.text()
    );
}

#[test]
fn https_target_with_the_wrong_name_gives_502() {
    let dir = TempDir::new("tls-up-name");
    let ca = TestCa::new("upstream CA");
    let (_up, up_addr) = tls_upstream(&dir, &ca);
    let ca_file = dir.write("ca.pem", &ca.pem());
    // No server_name override: the target's IP is verified, and the certificate has no IP SAN.
    let cfg = format!(
        "{}[[routes]]\nid = \"s\"\ndomains = [\"b.test\"]\ntargets = [\"https://{up_addr}\"]\nupstream_tls = {{ ca = \"{}\" }}\n",
        gateway_header(""),
        ca_file.display()
    );
    let gw = gateway(&cfg);
    assert_eq!(get(gw.addrs[0], "b.test", "/").status, 502);
}
