//! gRPC deadlines and failures through Torii, end to end with grpcio and a raw `h2` client
//! (`common::grpc`): `grpc-timeout` is the call's deadline (the client gets
//! DEADLINE_EXCEEDED, the backend sees its call cancelled, even when the client itself never
//! cancels); a stream that sends every 300 ms lives 3 s under 1 s idle timeouts, in either
//! direction, while a call silent longer is cut; a backend that dies mid-stream is UNAVAILABLE
//! at the client; an HTTP/2 head refused before it is a request gets a gRPC status.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::grpc::{call, raw, Backend};
use common::*;

/// An h2c gateway with `limits` and route `grpc` (grpc.test) to `port`.
fn h2c_gateway(limits: &str, port: u16) -> torii_engine::control::Gateway {
    let header = gateway_header(limits).replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    gateway(&format!(
        "{header}[[routes]]\nid = \"grpc\"\ndomains = [\"grpc.test\"]\ntargets = [{{ url = \"h2c://127.0.0.1:{port}\" }}]\n"
    ))
}

/// Waits (at most 5 s) until the backend noted `n` cancelled calls; what it noted.
fn cancelled_calls(backend: &Backend, n: usize) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let ev = backend.events();
        if ev["cancelled"].as_array().unwrap().len() >= n || Instant::now() > until {
            return ev;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn grpc_timeout_is_the_calls_deadline_and_cancels_the_upstream_call() {
    let backend = Backend::start(&[]);
    let gw = h2c_gateway("", backend.port);
    let addr = gw.addrs[0];

    // grpcio: the client's own deadline (it cancels too).
    let r = call(addr, "grpc.test", "deadline", &[]);
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    // A client that never cancels: Torii ends the call at 200 ms with DEADLINE_EXCEEDED, as a
    // Trailers-Only answer (no response head had come), and resets the upstream stream.
    let r = raw(addr, "grpc.test", "deadline");
    let head = &r["headers"];
    assert_eq!(head[":status"], "200", "{r}");
    assert_eq!(head["grpc-status"], "4", "{r}");
    // Torii forwards `grpc-timeout`, so the grpcio backend runs the same 200 ms deadline and
    // may end the call a moment before Torii does: either way the client sees
    // DEADLINE_EXCEEDED, with Torii's words or grpcio's.
    assert!(
        ["Deadline exceeded", "Deadline Exceeded"]
            .contains(&head["grpc-message"].as_str().unwrap_or("")),
        "{r}"
    );
    let took = r["elapsed"].as_f64().unwrap();
    assert!((0.15..2.0).contains(&took), "{r}");
    // Both upstream calls (held 3 s by the backend) were cancelled, neither completed.
    let ev = cancelled_calls(&backend, 2);
    assert_eq!(
        ev["cancelled"],
        serde_json::json!(["sleep", "sleep"]),
        "{ev}"
    );
    assert_eq!(ev["done"], serde_json::json!([]), "{ev}");
}

#[test]
fn long_streams_live_while_either_side_sends() {
    let backend = Backend::start(&[]);
    let gw = h2c_gateway(
        "body_idle_timeout = \"1s\"\nupstream_timeout = \"1s\"\n",
        backend.port,
    );
    let addr = gw.addrs[0];
    // The backend sends a message every 300 ms for 3 s.
    let r = call(addr, "grpc.test", "ticker", &[]);
    assert_eq!(
        (r["code"].as_str(), r["count"].as_u64()),
        (Some("OK"), Some(11)),
        "{r}"
    );
    assert!(r["elapsed"].as_f64().unwrap() >= 2.9, "{r}");
    // The client sends a message every 300 ms for 3 s; the answer comes at the end.
    let r = call(addr, "grpc.test", "slow_client_stream", &[]);
    assert_eq!(
        (r["code"].as_str(), r["reply"].as_str()),
        (Some("OK"), Some("11/110")),
        "{r}"
    );
    // Silent both ways for longer than the timeout: cut (no response head in 1 s → 504).
    let r = call(addr, "grpc.test", "sleep2500", &[]);
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert!(r["elapsed"].as_f64().unwrap() < 2.0, "{r}");
}

#[test]
fn an_upstream_killed_mid_stream_is_unavailable() {
    let mut backend = Backend::start(&[]);
    let gw = h2c_gateway("", backend.port);
    let r = call(gw.addrs[0], "grpc.test", "die", &[]);
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    assert_eq!(r["details"], "upstream stream failed", "{r}");
    // The messages sent before the backend died reached the client.
    assert_eq!(r["got"], serde_json::json!(["one", "two"]), "{r}");
    assert_eq!(backend.exited(), Some(3));
}

#[test]
fn an_http2_head_refused_before_it_is_a_request_is_a_grpc_status() {
    let backend = Backend::start(&[]);
    let gw = h2c_gateway("", backend.port);
    // A 10 000-byte path: over `max_request_line_bytes` (8 KiB), under the header list limit
    // (16 KiB): refused by Torii (414) once the HTTP/2 head was decoded, so its content-type
    // is known. 414 has no gRPC equivalent: UNKNOWN, with Torii's message.
    let r = raw(gw.addrs[0], "grpc.test", "long_path");
    let head = &r["headers"];
    assert_eq!(head[":status"], "200", "{r}");
    assert_eq!(head["content-type"], "application/grpc", "{r}");
    assert_eq!(head["grpc-status"], "2", "{r}");
    assert!(head["grpc-message"].as_str().is_some(), "{r}");
}

#[test]
fn a_second_connection_opens_when_the_first_is_at_its_stream_limit() {
    // The backend allows 2 concurrent streams per connection.
    let backend = Backend::start(&["--max-streams", "2"]);
    let gw = h2c_gateway("", backend.port);
    let addr = gw.addrs[0];
    // One call first: Torii's connection exists and has the backend's SETTINGS.
    assert_eq!(call(addr, "grpc.test", "unary", &[])["code"], "OK");
    // Six calls at once, each held 1 s: on one connection they would take 3 s in three
    // rounds; Torii opens more connections and they run together.
    let r = call(addr, "grpc.test", "concurrent6", &[]);
    assert_eq!(r["codes"], serde_json::json!(vec!["OK"; 6]), "{r}");
    assert!(r["elapsed"].as_f64().unwrap() < 2.5, "{r}");
    let ev = backend.events();
    assert!(ev["max_inflight"].as_u64().unwrap() >= 4, "{ev}");
    let peers: std::collections::HashSet<&str> = ev["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(peers.len() >= 2, "{ev}");
}
