//! gRPC through Torii, end to end with grpcio (`tests/grpc/grpc_peer.py`, grpcio installed by
//! `.ci/test`; harness in `common::grpc`): a grpcio server speaking h2c behind a route whose target is
//! `h2c://127.0.0.1:PORT`, a grpcio client calling through Torii's h2c listener. Unary, server
//! streaming, client streaming, a bidirectional call whose client sends each message only after
//! the previous echo came back (both halves open at once), a 4 MiB message, an error whose
//! `grpc-status-details-bin` trailer arrives intact, what the backend sees (`te: trailers`, the
//! forwarding headers), and Torii's own refusals as gRPC statuses (401 → UNAUTHENTICATED,
//! 404 → UNIMPLEMENTED). The same backend is also reached by an HTTP/1.1 client through curl.

#![allow(clippy::unwrap_used)]

mod common;

use common::grpc::{basic_md, call, Backend};
use common::*;

/// An h2c gateway with route `grpc` (grpc.test, open) and `locked` (locked.test, API keys) to
/// the backend over h2c.
fn gateway_for(port: u16) -> torii_engine::control::Gateway {
    let header = gateway_header("max_body_bytes = 16777216\n").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    let cfg = format!(
        r#"{header}
[[apikeys]]
client_id = "grpc-client"
client_secret = "grpc-secret-0123456789"
routes = ["locked"]

[[routes]]
id = "grpc"
domains = ["grpc.test"]
paths = ["/"]
targets = [{{ url = "h2c://127.0.0.1:{port}" }}]

[[routes]]
id = "locked"
domains = ["locked.test"]
paths = ["/"]
targets = [{{ url = "h2c://127.0.0.1:{port}" }}]
[routes.apikeys]
"#
    );
    gateway(&cfg)
}

#[test]
fn grpc_calls_of_every_kind_pass_through() {
    let backend = Backend::start(&[]);
    let gw = gateway_for(backend.port);
    let addr = gw.addrs[0];

    let r = call(addr, "grpc.test", "unary", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["reply"], "hello");
    // What the backend saw: Torii's forwarding headers. (grpcio hides `te` and
    // `content-type` from handlers; its core resets a call that lacks `te: trailers` with
    // INTERNAL_ERROR, so this call's success shows it was kept.)
    assert_eq!(r["trailing"]["seen-x-forwarded-for"], "127.0.0.1", "{r}");
    assert_eq!(r["trailing"]["seen-x-forwarded-proto"], "http", "{r}");
    assert_eq!(r["trailing"]["seen-x-forwarded-host"], "grpc.test", "{r}");

    let r = call(addr, "grpc.test", "server_stream", &[]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(50)),
        "{r}"
    );
    assert_eq!(
        (r["first"].as_str(), r["last"].as_str()),
        (Some("msg-0"), Some("msg-49"))
    );

    let r = call(addr, "grpc.test", "client_stream", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    // 100 messages of 1000..1099 bytes.
    assert_eq!(r["reply"], "100/104950");

    let r = call(addr, "grpc.test", "bidi", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    let got: Vec<String> = (0..20).map(|i| format!("echo:m{i}")).collect();
    assert_eq!(r["got"], serde_json::json!(got));

    let r = call(addr, "grpc.test", "big", &[]);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(
        (r["same"].as_bool(), r["len"].as_u64()),
        (Some(true), Some(4 << 20))
    );

    // The backend's error: status, message and the binary details trailer, byte for byte.
    let r = call(addr, "grpc.test", "fail", &[]);
    assert_eq!(r["code"], "INVALID_ARGUMENT", "{r}");
    assert_eq!(r["details"], "bad thing: caf\u{e9} 100%");
    assert_eq!(
        r["trailing"],
        serde_json::json!([[
            "grpc-status-details-bin",
            "0803120b62616420726571756573741a0300ff01"
        ]])
    );
    // The backend's own UNIMPLEMENTED for a method it lacks.
    let r = call(addr, "grpc.test", "missing", &[]);
    assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
}

#[test]
fn torii_refusals_are_grpc_statuses() {
    let backend = Backend::start(&[]);
    let gw = gateway_for(backend.port);
    let addr = gw.addrs[0];

    // No key on a route with [routes.apikeys]: Torii's 401 as UNAUTHENTICATED.
    let r = call(addr, "locked.test", "unary", &[]);
    assert_eq!(r["code"], "UNAUTHENTICATED", "{r}");
    assert_eq!(r["details"], "No ApiKey provided", "{r}");
    // With the key (Basic, as gRPC metadata), the call goes through.
    let basic = basic_md("grpc-client", "grpc-secret-0123456789");
    let r = call(addr, "locked.test", "unary", &[&basic]);
    assert_eq!(r["code"], "OK", "{r}");
    // The credential was consumed by Torii, not forwarded.
    assert!(r["trailing"].get("seen-authorization").is_none(), "{r}");

    // No route for the authority: Torii's 404 as UNIMPLEMENTED.
    let r = call(addr, "nowhere.test", "unary", &[]);
    assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
    assert_eq!(r["details"], "No route found", "{r}");
}

/// A gRPC unary call made over HTTP/1.1 (what an HTTP/1.1 client would send), to the same
/// h2c backend: Torii speaks HTTP/2 to the backend and relays its answer chunked, with the
/// backend's `grpc-status` trailer in the last chunk because the client said `TE: trailers`.
/// Without `TE: trailers` Torii sends none to the backend either, which grpcio refuses (a
/// reset): the client gets Torii's 502 as a Trailers-Only UNAVAILABLE.
#[test]
fn an_http11_client_reaches_an_h2c_backend_with_trailers_when_asked() {
    use std::io::{Read, Write};
    let backend = Backend::start(&[]);
    let gw = gateway_for(backend.port);
    let addr = gw.addrs[0];
    // One gRPC message: uncompressed, length 5, "hello".
    let msg = b"\x00\x00\x00\x00\x05hello";
    let exchange = |te: &str| {
        let mut s = connect(addr);
        let head = format!(
            "POST /test.Echo/Unary HTTP/1.1\r\nhost: grpc.test\r\ncontent-type: application/grpc\r\n{te}content-length: {}\r\nconnection: close\r\n\r\n",
            msg.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(msg).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let text = exchange("te: trailers\r\n");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{text}"
    );
    assert!(
        text.contains("content-type: application/grpc\r\n"),
        "{text}"
    );
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    // The echoed message, then the last chunk with the trailers.
    let last = body
        .strip_prefix("a\r\n\u{0}\u{0}\u{0}\u{0}\u{5}hello\r\n0\r\n")
        .unwrap_or_else(|| panic!("{body:?}"));
    assert!(last.starts_with("grpc-status: 0\r\n"), "{body:?}");
    assert!(last.ends_with("\r\n\r\n"), "{body:?}");

    let text = exchange("");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\ngrpc-status: 14\r\n"), "{text}");
    assert!(text.contains("\r\ncontent-length: 0\r\n"), "{text}");
}
