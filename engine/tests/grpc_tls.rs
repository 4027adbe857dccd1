//! gRPC over TLS through Torii, end to end with grpcio (`common::grpc`) and a test PKI made
//! with rcgen (`common::tls`): a `protocol = "h2"` target (a grpcio server with
//! `grpc.ssl_server_credentials`, trusted through `[routes.upstream_tls] ca`), Torii's own
//! `https` listener (a grpcio client with `grpc.ssl_channel_credentials` trusting Torii's
//! certificate), and `protocol = "auto"`: ALPN chooses HTTP/2 with the grpcio server and
//! HTTP/1.1 with a server that offers only `http/1.1`, the choice remembered per endpoint.

#![allow(clippy::unwrap_used)]

mod common;

use common::grpc::{call, Backend};
use common::process::TempDir;
use common::tls::TestCa;
use common::*;

/// A grpcio server over TLS with a certificate for 127.0.0.1 from `ca`.
fn tls_backend(dir: &TempDir, ca: &TestCa) -> Backend {
    let (cert, key) = ca.leaf(&["127.0.0.1"]).write(&dir.0, "backend");
    Backend::start(&["--tls", cert.to_str().unwrap(), key.to_str().unwrap()])
}

fn h2c_header() -> String {
    gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    )
}

#[test]
fn an_h2_target_over_tls_carries_every_kind_of_call() {
    let dir = TempDir::new("grpc-tls-up");
    let ca = TestCa::new("grpc upstream CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let backend = tls_backend(&dir, &ca);
    let gw = gateway(&format!(
        r#"{}[[routes]]
id = "tls"
domains = ["tls.test"]
targets = [{{ url = "https://127.0.0.1:{}", protocol = "h2" }}]
[routes.upstream_tls]
ca = "{}"
"#,
        h2c_header(),
        backend.port,
        ca_file.display()
    ));
    let addr = gw.addrs[0];
    let r = call(addr, "tls.test", "unary", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["reply"], "hello");
    let r = call(addr, "tls.test", "server_stream", &[]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(50)),
        "{r}"
    );
    let r = call(addr, "tls.test", "bidi", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    let r = call(addr, "tls.test", "fail", &[]);
    assert_eq!(r["code"], "INVALID_ARGUMENT", "{r}");

    // A CA that did not sign the backend's certificate: no call reaches it.
    let other = TestCa::new("another CA");
    let other_file = dir.write("other.pem", &other.pem());
    let gw2 = gateway(&format!(
        r#"{}[[routes]]
id = "tls"
domains = ["tls.test"]
targets = [{{ url = "https://127.0.0.1:{}", protocol = "h2" }}]
[routes.upstream_tls]
ca = "{}"
"#,
        h2c_header(),
        backend.port,
        other_file.display()
    ));
    let r = call(gw2.addrs[0], "tls.test", "unary", &[]);
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
}

#[test]
fn grpc_clients_call_torii_over_tls() {
    let dir = TempDir::new("grpc-tls-down");
    let ca = TestCa::new("grpc gateway CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let (cert, key) = ca.leaf(&["grpc.test"]).write(&dir.0, "gateway");
    let backend = Backend::start(&[]);
    let gw = gateway(&format!(
        r#"[gateway]
workers = 1
https = ["127.0.0.1:0"]
drain_timeout = "2s"

[[certificates]]
id = "gw"
cert = "{}"
key = "{}"

[[routes]]
id = "grpc"
domains = ["grpc.test"]
targets = [{{ url = "h2c://127.0.0.1:{}" }}]
"#,
        cert.display(),
        key.display(),
        backend.port
    ));
    let addr = gw.addrs[0];
    let tls = [
        &*format!("--tls-ca={}", ca_file.display()),
        "--tls-name=grpc.test",
    ];
    let r = call(addr, "grpc.test", "unary", &tls);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["trailing"]["seen-x-forwarded-proto"], "https", "{r}");
    let r = call(addr, "grpc.test", "client_stream", &tls);
    assert_eq!(
        (r["code"].as_str(), r["reply"].as_str()),
        (Some("OK"), Some("100/104950")),
        "{r}"
    );
    let r = call(addr, "grpc.test", "bidi", &tls);
    assert_eq!(r["code"], "OK", "{r}");
    // Torii's own refusal, over TLS too.
    let r = call(addr, "nowhere.test", "unary", &tls);
    assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
}

#[test]
fn protocol_auto_lets_alpn_choose() {
    let dir = TempDir::new("grpc-tls-auto");
    let ca = TestCa::new("auto CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    // An HTTP/2-only server (grpcio) and an HTTP/1.1-only one (a gateway whose https
    // listener offers only http/1.1, in front of a mirror).
    let backend = tls_backend(&dir, &ca);
    let (cert, key) = ca.leaf(&["127.0.0.1"]).write(&dir.0, "h1");
    let h1 = gateway(&format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\nhttp2 = false\ndrain_timeout = \"2s\"\n\
         [[certificates]]\nid = \"h1\"\ncert = \"{}\"\nkey = \"{}\"\n{}",
        cert.display(),
        key.display(),
        route("m", "127.0.0.1", "/", &[mirror()])
    ));
    let gw = gateway(&format!(
        r#"{}[[routes]]
id = "grpc"
domains = ["grpc.test"]
targets = [{{ url = "https://127.0.0.1:{}", protocol = "auto" }}]
upstream_tls = {{ ca = "{ca}" }}

[[routes]]
id = "web"
domains = ["web.test"]
targets = [{{ url = "https://{}", protocol = "auto" }}]
upstream_tls = {{ ca = "{ca}" }}
"#,
        h2c_header(),
        backend.port,
        h1.addrs[0],
        ca = ca_file.display()
    ));
    let addr = gw.addrs[0];
    // grpcio offers only h2: the call goes over HTTP/2 (over HTTP/1.1 it could not succeed);
    // the second and third calls use what was learnt.
    for _ in 0..3 {
        let r = call(addr, "grpc.test", "unary", &[]);
        assert_eq!(r["code"], "OK", "{r}");
    }
    let r = call(addr, "grpc.test", "server_stream", &[]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(50)),
        "{r}"
    );
    // The HTTP/1.1-only server: the first request learns, the next ones go straight to it.
    for _ in 0..3 {
        let r = get(addr, "web.test", "/hello");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["path"], "/hello", "{}", r.text());
    }
}
