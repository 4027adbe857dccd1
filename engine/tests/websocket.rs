//! WebSocket through the gateway, against a client and a server that are not Torii's code
//! (Python's `websockets` package, `tests/websocket/ws_peer.py`), on real sockets on 127.0.0.1:
//! text and binary frames, a 1 MiB message, ping/pong and the close handshake; 200 tunnels at
//! once; TLS on both sides; a V2 challenge and an info token answered and checked on the `101`;
//! a backend that refuses the upgrade (its 400 relayed, the connection still HTTP); a fake `101`
//! (502, nothing tunnelled); the idle timeout; the tunnel limit (503); `websocket = false`; the
//! client's first frame pipelined behind its upgrade request; the mirror's echo.
//!
//! The gateways run in process; `.ci/test` runs this file under io_uring and under epoll
//! (`MONOIO_FORCE_LEGACY_DRIVER=1`). Reload and drain with a tunnel open: `websocket_proc.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::tls::TestCa;
use common::ws::{header_values, ws_client, ws_run, ws_server};
use common::*;
use serde_json::Value;
use torii_engine::control::Gateway;
use torii_engine::mirror::secured::{ChallengeMode, Misbehave};

const SECRET: &str = "torii-websocket-tests-0123456789abcdef0123456789abcdef012345";
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A gateway with one route `ws` (domain 127.0.0.1) to `target`, `route_extra` appended to the
/// route, `limits` in `[limits]`, and an access log in `dir`.
fn ws_gateway(dir: &TempDir, target: &str, route_extra: &str, limits: &str) -> Gateway {
    gateway(&format!(
        "{}[access_log]\npath = \"{}\"\n\n[[routes]]\nid = \"ws\"\nname = \"ws-service\"\n\
         domains = [\"127.0.0.1\", \"localhost\"]\ntargets = [\"{target}\"]\n{route_extra}\n",
        gateway_header(limits),
        dir.0.join("access.log").display()
    ))
}

fn url(gw: &Gateway, path: &str) -> String {
    format!("ws://{}{path}", gw.addrs[0])
}

/// The value of a series in the gateway's `/metrics` text (`name{labels}`), 0 when absent.
fn metric(gw: &Gateway, series: &str) -> f64 {
    let mut text = String::new();
    torii_engine::admin::render::render(&gw.shared, &mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `series` reaches `want` (tunnels are counted by the worker when they close).
fn wait_metric(gw: &Gateway, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(gw, series) != want {
        assert!(
            Instant::now() < deadline,
            "{series} = {}, want {want}",
            metric(gw, series)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The access-log lines with status 101 (tunnels, written when they close), waiting for `n`.
fn tunnel_lines(dir: &TempDir, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(dir.0.join("access.log")).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["status"] == 101)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            assert_eq!(lines.len(), n, "{text}");
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An upgrade request for `path` with the RFC's example key, `extra` header lines appended.
fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Reads a response head (a 101 included) from `s`; leaves what follows it in `buf`.
fn read_head(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..p + 4).collect();
            return String::from_utf8(head).unwrap();
        }
        assert!(fill(s, buf), "EOF before a response head: {buf:?}");
    }
}

/// A masked client text frame (RFC 6455 §5.2) carrying `text` (under 126 bytes).
fn client_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn frames_a_large_message_ping_and_the_close_handshake_go_through() {
    let dir = TempDir::new("ws-basic");
    let server = ws_server(&["--mode", "echo"]);
    let gw = ws_gateway(&dir, &format!("http://{}", server.addr), "", "");
    let r = ws_run(
        &url(&gw, "/chat?room=1"),
        "basic",
        &[
            "--whoami",
            "--subprotocol",
            "chat",
            "--header",
            "Origin=https://app.test",
        ],
    );
    assert_eq!(r["close_code"], 1000, "{r}");
    assert_eq!(r["close_reason"], "done");
    assert!(r["close_received"].as_bool().unwrap() && r["close_sent"].as_bool().unwrap());
    // Negotiated end to end: the subprotocol and the compression extension.
    assert_eq!(r["subprotocol"], "chat");
    assert_eq!(r["extensions"][0], "permessage-deflate", "{r}");
    let seen = &r["whoami"]["headers"];
    assert_eq!(r["whoami"]["path"], "/chat?room=1");
    assert_eq!(header_values(seen, "upgrade"), ["websocket"], "{seen}");
    assert_eq!(header_values(seen, "connection"), ["upgrade"], "{seen}");
    assert_eq!(header_values(seen, "origin"), ["https://app.test"]);
    assert_eq!(header_values(seen, "sec-websocket-version"), ["13"]);
    assert_eq!(header_values(seen, "sec-websocket-protocol"), ["chat"]);
    assert_eq!(header_values(seen, "sec-websocket-key").len(), 1);
    assert_eq!(header_values(seen, "x-forwarded-for"), ["127.0.0.1"]);
    let resp = &r["response_headers"];
    assert_eq!(header_values(resp, "upgrade"), ["websocket"], "{resp}");
    assert_eq!(header_values(resp, "connection"), ["upgrade"], "{resp}");

    wait_metric(&gw, "torii_websocket_tunnels_active{worker=\"0\"}", 0.0);
    // The backend closes the TCP connection first after the close handshake (RFC 6455 §7.1.1).
    wait_metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"upstream_closed\"}",
        1.0,
    );
    let up = metric(
        &gw,
        "torii_websocket_bytes_total{route=\"ws\",direction=\"client_to_upstream\"}",
    );
    let down = metric(
        &gw,
        "torii_websocket_bytes_total{route=\"ws\",direction=\"upstream_to_client\"}",
    );
    assert!(up > 1_000_000.0 && down > 1_000_000.0, "{up} {down}");
    assert_eq!(
        metric(
            &gw,
            "torii_requests_total{route=\"ws\",status=\"1xx\",proto=\"http/1.1\"}"
        ),
        1.0
    );
    let lines = tunnel_lines(&dir, 1);
    let l = &lines[0];
    assert_eq!(l["route"], "ws");
    assert_eq!(l["path"], "/chat");
    assert_eq!(l["closed_by"], "upstream");
    assert_eq!(l["websocket_bytes_in"].as_f64().unwrap(), up, "{l}");
    assert_eq!(l["websocket_bytes_out"].as_f64().unwrap(), down, "{l}");
    assert!(l["websocket_ms"].as_f64().unwrap() > 0.0);
    assert!(l["upstream"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn two_hundred_tunnels_at_once() {
    let dir = TempDir::new("ws-many");
    let server = ws_server(&["--mode", "echo"]);
    let gw = ws_gateway(&dir, &format!("http://{}", server.addr), "", "");
    let mut client = ws_client(
        &url(&gw, "/"),
        "many",
        &["--count", "200", "--timeout", "60"],
    );
    let open = client.json(Duration::from_secs(60));
    assert_eq!(open["open"], 200);
    assert_eq!(gw.shared.websocket_tunnels(), 200);
    assert_eq!(
        metric(&gw, "torii_websocket_tunnels_active{worker=\"0\"}"),
        200.0
    );
    client.send("go");
    assert_eq!(client.json(Duration::from_secs(60))["done"], 200);
    client.finish(Duration::from_secs(30));
    wait_metric(&gw, "torii_websocket_tunnels_active{worker=\"0\"}", 0.0);
    let closed = metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"upstream_closed\"}",
    ) + metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"client_closed\"}",
    );
    assert_eq!(closed, 200.0);
    assert_eq!(tunnel_lines(&dir, 200).len(), 200);
}

#[test]
fn tls_on_both_sides() {
    let dir = TempDir::new("ws-tls");
    let ca = TestCa::new("ws CA");
    let ca_path = dir.write("ca.pem", &ca.pem());
    let (gw_cert, gw_key) = ca.leaf(&["localhost"]).write(&dir.0, "gateway");
    let (be_cert, be_key) = ca.leaf(&["127.0.0.1"]).write(&dir.0, "backend");
    let server = ws_server(&[
        "--mode",
        "echo",
        "--cert",
        be_cert.to_str().unwrap(),
        "--key",
        be_key.to_str().unwrap(),
    ]);
    let gw = gateway(&format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\n\n\
         [[certificates]]\nid = \"gw\"\ncert = \"{}\"\nkey = \"{}\"\n\n\
         [[routes]]\nid = \"ws\"\ndomains = [\"localhost\"]\ntargets = [\"https://{}\"]\n\
         upstream_tls = {{ ca = \"{}\" }}\n",
        gw_cert.display(),
        gw_key.display(),
        server.addr,
        ca_path.display()
    ));
    let url = format!("wss://localhost:{}/secure", gw.addrs[0].port());
    let r = ws_run(
        &url,
        "basic",
        &["--ca", ca_path.to_str().unwrap(), "--whoami"],
    );
    assert_eq!(r["close_code"], 1000, "{r}");
    assert_eq!(
        header_values(&r["whoami"]["headers"], "x-forwarded-proto"),
        ["https"]
    );
    wait_metric(&gw, "torii_websocket_tunnels_active{worker=\"0\"}", 0.0);
}

#[test]
fn a_v2_challenge_and_an_info_token_are_answered_and_checked_on_the_101() {
    let dir = TempDir::new("ws-challenge");
    let server = ws_server(&[
        "--mode",
        "echo",
        "--secret",
        SECRET,
        "--audience",
        "ws-service",
    ]);
    let security = format!(
        "[routes.challenge]\nversion = \"v2\"\nsecret = \"{SECRET}\"\n\
         [routes.info_token]\nsecret = \"{SECRET}\"\n"
    );
    let gw = ws_gateway(&dir, &format!("http://{}", server.addr), &security, "");
    let r = ws_run(&url(&gw, "/secured"), "basic", &["--whoami"]);
    assert_eq!(r["close_code"], 1000, "{r}");
    // The backend verified the info token (PyJWT) and saw the state token.
    let claim = &r["whoami"]["claim"];
    assert_eq!(claim["iss"], "Otoroshi", "{r}");
    assert_eq!(claim["aud"], "ws-service");
    let seen = &r["whoami"]["headers"];
    assert_eq!(header_values(seen, "otoroshi-state").len(), 1);
    // The answer never reaches the client.
    assert!(
        header_values(&r["response_headers"], "otoroshi-state-resp").is_empty(),
        "{r}"
    );
    let snap = gw.shared.snapshot.load();
    let failures: u64 = torii_engine::metrics::route::CHALLENGE_REASONS
        .iter()
        .map(|f| snap.routes[0].metrics.challenge_failures(*f))
        .sum();
    assert_eq!(failures, 0);
}

#[test]
fn a_101_failing_the_challenge_is_a_502_and_nothing_is_tunnelled() {
    for misbehave in [Misbehave::NoAnswer, Misbehave::WrongKey] {
        let dir = TempDir::new("ws-challenge-bad");
        let mirror = secured_mirror(ChallengeMode::V2, SECRET, misbehave);
        let security = format!("[routes.challenge]\nversion = \"v2\"\nsecret = \"{SECRET}\"\n");
        let gw = ws_gateway(&dir, &format!("http://{mirror}"), &security, "");
        let r = ws_run(&url(&gw, "/"), "status", &[]);
        assert_eq!(r["status"], 502, "{misbehave:?}: {r}");
        assert_eq!(r["headers"]["otoroshi-error"], "true");
        assert!(r["headers"].get("otoroshi-state-resp").is_none());
        wait_metric(
            &gw,
            "torii_websocket_tunnels_total{route=\"ws\",result=\"bad_handshake\"}",
            1.0,
        );
        assert_eq!(gw.shared.websocket_tunnels(), 0);
    }
}

#[test]
fn a_refused_upgrade_is_relayed_and_the_connection_stays_http() {
    let dir = TempDir::new("ws-refuse");
    let server = ws_server(&["--mode", "refuse"]);
    let gw = ws_gateway(&dir, &format!("http://{}", server.addr), "", "");
    let r = ws_run(&url(&gw, "/"), "status", &[]);
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["body"], "no websocket here\n");
    // Over one raw connection: the 400, then an ordinary request on the same connection.
    let mut s = connect(gw.addrs[0]);
    s.write_all(upgrade_request("/first", "").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let refused = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(refused.status, 400);
    assert_eq!(refused.text(), "no websocket here\n");
    s.write_all(b"GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let second = read_response(&mut s, &mut buf, "GET").expect("the connection stayed HTTP");
    assert_eq!(second.status, 400, "{}", second.text());
    wait_metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"refused\"}",
        2.0,
    );
}

#[test]
fn a_fake_101_is_a_502_and_nothing_is_tunnelled() {
    let dir = TempDir::new("ws-fake");
    // A backend that answers any request with a 101 whose accept value is not the key's, then
    // tries to talk; everything it receives is logged.
    let backend = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        if read_request(&mut s, &mut buf, log).is_none() {
            return;
        }
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: bm90IHRoZSBhY2NlcHQgdmFsdWU=\r\n\r\n\x81\x05raw!!",
        );
        let mut rest = [0u8; 1024];
        while let Ok(n) = s.read(&mut rest) {
            if n == 0 {
                break;
            }
            log.lock().unwrap().extend_from_slice(&rest[..n]);
        }
    });
    let gw = ws_gateway(&dir, &format!("http://{}", backend.addr), "", "");
    let mut s = connect(gw.addrs[0]);
    let mut req = upgrade_request("/", "").into_bytes();
    req.extend(client_text_frame("smuggled"));
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET").unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        closes_within(&mut s, Duration::from_secs(5)),
        "the client connection ends after the 502"
    );
    std::thread::sleep(Duration::from_millis(200));
    let received = backend.received.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.ends_with("\r\n\r\n"),
        "only the head reached the backend: {text:?}"
    );
    assert!(!text.contains("smuggled"));
    wait_metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"bad_handshake\"}",
        1.0,
    );
    let lines: Vec<Value> = std::fs::read_to_string(dir.0.join("access.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["reason"] == "websocket.bad_accept"),
        "{lines:?}"
    );
}

#[test]
fn an_idle_tunnel_is_cut_at_its_timeout() {
    let dir = TempDir::new("ws-idle");
    let server = ws_server(&["--mode", "echo"]);
    let gw = ws_gateway(
        &dir,
        &format!("http://{}", server.addr),
        "",
        "websocket_idle_timeout = \"1s\"",
    );
    let r = ws_run(&url(&gw, "/"), "idle", &["--timeout", "20"]);
    let after = r["closed_after"].as_f64().unwrap();
    assert!((0.9..4.0).contains(&after), "closed after {after} s");
    wait_metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"idle_timeout\"}",
        1.0,
    );
    assert_eq!(tunnel_lines(&dir, 1)[0]["closed_by"], "idle_timeout");
}

#[test]
fn beyond_the_tunnel_limit_an_upgrade_gets_503_before_the_backend() {
    let dir = TempDir::new("ws-limit");
    let server = ws_server(&["--mode", "echo"]);
    let gw = ws_gateway(
        &dir,
        &format!("http://{}", server.addr),
        "",
        "max_websocket_tunnels_per_worker = 1",
    );
    let mut first = ws_client(&url(&gw, "/"), "interactive", &[]);
    assert_eq!(first.json(Duration::from_secs(20))["open"], true);
    let r = ws_run(&url(&gw, "/"), "status", &[]);
    assert_eq!(r["status"], 503, "{r}");
    assert_eq!(
        metric(
            &gw,
            "torii_websocket_tunnels_total{route=\"ws\",result=\"over_limit\"}"
        ),
        1.0
    );
    first.send("echo still open");
    assert_eq!(first.json(Duration::from_secs(10))["echo"], "still open");
    first.send("close");
    first.finish(Duration::from_secs(20));
    wait_metric(&gw, "torii_websocket_tunnels_active{worker=\"0\"}", 0.0);
    let r = ws_run(&url(&gw, "/"), "status", &[]);
    assert_eq!(r["status"], 101, "the slot was given back: {r}");
}

#[test]
fn a_route_without_websocket_drops_the_upgrade() {
    let dir = TempDir::new("ws-off");
    let gw = ws_gateway(
        &dir,
        &format!("http://{}", mirror()),
        "websocket = false",
        "",
    );
    // The mirror answers a plain GET with its JSON description: no Upgrade reached it.
    let r = ws_run(&url(&gw, "/"), "status", &[]);
    assert_eq!(r["status"], 200, "{r}");
    let seen: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert!(seen["headers"].get("upgrade").is_none(), "{seen}");
    assert!(seen["headers"].get("connection").is_none(), "{seen}");
}

#[test]
fn h2c_and_bodies_are_refused_as_upgrades() {
    let dir = TempDir::new("ws-h2c");
    let gw = ws_gateway(&dir, &format!("http://{}", mirror()), "", "");
    let r = request(
        gw.addrs[0],
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = r.json();
    for h in ["upgrade", "connection", "http2-settings"] {
        assert!(seen["headers"].get(h).is_none(), "{h}: {seen}");
    }
    let r = request(
        gw.addrs[0],
        &upgrade_request("/", "Content-Length: 5\r\n").replace("\r\n\r\n", "\r\n\r\nhello"),
    );
    assert_eq!(r.status, 400);
    let r = request(
        gw.addrs[0],
        &upgrade_request("/", "").replace(KEY, "not-a-key"),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_first_frame_pipelined_behind_the_upgrade_is_forwarded() {
    let dir = TempDir::new("ws-pipelined");
    let server = ws_server(&["--mode", "echo"]);
    let gw = ws_gateway(&dir, &format!("http://{}", server.addr), "", "");
    let mut s = connect(gw.addrs[0]);
    let mut req = upgrade_request("/", "").into_bytes();
    req.extend(client_text_frame("first frame"));
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "sec-websocket-accept: {}",
            ACCEPT.to_ascii_lowercase()
        )),
        "{head}"
    );
    while buf.len() < 2 + "first frame".len() {
        assert!(fill(&mut s, &mut buf), "no echo");
    }
    assert_eq!(&buf[..2], &[0x81, 11]);
    assert_eq!(&buf[2..13], b"first frame");
}

#[test]
fn the_mirror_is_an_echo_server_behind_the_gateway() {
    let dir = TempDir::new("ws-mirror");
    let gw = ws_gateway(&dir, &format!("http://{}", mirror()), "", "");
    let r = ws_run(&url(&gw, "/echo"), "basic", &[]);
    assert_eq!(r["close_code"], 1000, "{r}");
    let sock: SocketAddr = gw.addrs[0];
    assert!(sock.ip().is_loopback());
}

#[test]
fn a_frame_the_backend_sends_with_its_101_reaches_the_client() {
    let dir = TempDir::new("ws-backend-first");
    // The 101 and the backend's first frame in one write (one packet on loopback), then
    // whatever the client sends is logged.
    let backend = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        if read_request(&mut s, &mut buf, log).is_none() {
            return;
        }
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
        .into_bytes();
        answer.extend_from_slice(b"\x81\x05hello");
        let _ = s.write_all(&answer);
        let mut rest = [0u8; 1024];
        while let Ok(n) = s.read(&mut rest) {
            if n == 0 {
                break;
            }
            log.lock().unwrap().extend_from_slice(&rest[..n]);
        }
    });
    let gw = ws_gateway(&dir, &format!("http://{}", backend.addr), "", "");
    let mut s = connect(gw.addrs[0]);
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    while buf.len() < 7 {
        assert!(fill(&mut s, &mut buf), "no first frame");
    }
    assert_eq!(&buf[..7], b"\x81\x05hello");
    // And the other way: the client's frame reaches the backend after its request head.
    let frame = client_text_frame("back");
    s.write_all(&frame).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = backend.received.lock().unwrap().clone();
        if got.ends_with(&frame) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client's frame did not arrive: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(s);
    wait_metric(
        &gw,
        "torii_websocket_tunnels_total{route=\"ws\",result=\"client_closed\"}",
        1.0,
    );
    // The tunnel's line names the endpoint the upgrade went to, and its one try.
    let l = &tunnel_lines(&dir, 1)[0];
    assert_eq!(l["upstream"], backend.addr.to_string(), "{l}");
    assert_eq!(l["attempts"], 1, "{l}");
}
