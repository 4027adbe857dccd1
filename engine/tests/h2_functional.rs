//! HTTP/2 towards clients, end to end with independent clients (`curl --http2`,
//! `--http2-prior-knowledge` and `h2load`, installed by `.ci/test`): ALPN `h2` on https
//! listeners (and `gateway.http2 = false`), h2c with prior knowledge on plain listeners (and
//! the `Upgrade: h2c` dance refused), every stream through the same phases as an HTTP/1.1
//! request (V1 and V2 exchange protocol with the info token, API keys, the OAuth2 token
//! endpoint and its bearer tokens, the same error bodies), a large upload and download, many
//! concurrent streams on one connection, the `proto` label and access-log field, the HTTP/2
//! gauges, and GOAWAY on drain with the stream in flight finished.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::auth::{basic, config_text, temp_dir, API, SECRET};
use common::process::TempDir;
use common::tls::TestCa;
use common::*;
use torii_engine::mirror::secured::{ChallengeMode, Misbehave};

const CHALLENGE_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What curl reported for one transfer.
#[derive(Debug)]
struct Curl {
    version: String,
    status: u16,
    connects: u32,
    body: String,
}

impl Curl {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Runs curl with `args` (a URL among them); fails the test if curl is missing or fails.
fn curl(args: &[&str]) -> Curl {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n@@%{http_version} %{http_code} %{num_connects}",
        ])
        .args(args)
        .output()
        .expect("curl is required (.ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, tail) = text.rsplit_once("\n@@").unwrap();
    let mut it = tail.split_whitespace();
    Curl {
        version: it.next().unwrap().to_owned(),
        status: it.next().unwrap().parse().unwrap(),
        connects: it.next().unwrap().parse().unwrap(),
        body: body.to_owned(),
    }
}

/// A plain gateway (h2c on) with `routes`.
fn h2c_gateway(routes: &str, gateway_extra: &str) -> torii_engine::control::Gateway {
    let header = gateway_header("").replace(
        "drain_timeout = \"2s\"\n",
        &format!("drain_timeout = \"2s\"\nh2c = true\n{gateway_extra}\n"),
    );
    gateway(&format!("{header}{routes}"))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[test]
fn tls_listener_negotiates_h2_by_alpn_and_http11_when_asked() {
    let dir = TempDir::new("h2-alpn");
    let ca = TestCa::new("h2 CA");
    let leaf = ca.leaf(&["a.test"]);
    let (cert, key) = leaf.write(&dir.0, "a");
    let ca_path = dir.write("ca.pem", &ca.pem());
    let m = mirror();
    for (extra, expected) in [("", "2"), ("http2 = false", "1.1")] {
        let cfg = format!(
            "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\n{extra}\n[[certificates]]\nid = \"a\"\ncert = \"{}\"\nkey = \"{}\"\n{}",
            cert.display(),
            key.display(),
            route("a", "a.test", "/", &[m])
        );
        let gw = gateway(&cfg);
        let port = gw.addrs[0].port();
        let resolve = format!("a.test:{port}:127.0.0.1");
        let target = format!("https://a.test:{port}/p?q=1");
        let r = curl(&[
            "--http2",
            "--cacert",
            ca_path.to_str().unwrap(),
            "--resolve",
            &resolve,
            "-H",
            "cookie: a=1",
            "-H",
            "cookie: b=2",
            &target,
        ]);
        assert_eq!((r.version.as_str(), r.status), (expected, 200), "{extra:?}");
        let j = r.json();
        assert_eq!(j["path"], "/p");
        assert_eq!(j["query"], "q=1");
        assert_eq!(j["headers"]["x-forwarded-proto"], "https");
        assert_eq!(j["headers"]["x-forwarded-host"], format!("a.test:{port}"));
        if expected == "2" {
            assert_eq!(j["headers"]["cookie"], "a=1; b=2", "cookie fields joined");
        }
        // curl offers h2 then http/1.1; a client offering http/1.1 only gets it.
        let r = curl(&[
            "--http1.1",
            "--cacert",
            ca_path.to_str().unwrap(),
            "--resolve",
            &resolve,
            &target,
        ]);
        assert_eq!((r.version.as_str(), r.status), ("1.1", 200));
    }
}

#[test]
fn h2c_by_prior_knowledge_and_no_upgrade_dance() {
    let m = mirror();
    let routes = route("m", "m.test", "/", &[m]);
    let on = h2c_gateway(&routes, "");
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "host: m.test",
        &url(on.addrs[0], "/x"),
    ]);
    assert_eq!((r.version.as_str(), r.status), ("2", 200));
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "http");
    // The same listener still serves HTTP/1.1, pipelining included.
    let r = get(on.addrs[0], "m.test", "/h1");
    assert_eq!(r.status, 200);
    // `curl --http2` on http:// asks for `Upgrade: h2c`: answered over HTTP/1.1, and neither
    // the upgrade nor its settings reach the backend.
    let r = curl(&["--http2", "-H", "host: m.test", &url(on.addrs[0], "/up")]);
    assert_eq!((r.version.as_str(), r.status), ("1.1", 200));
    let h = &r.json()["headers"];
    for name in ["upgrade", "http2-settings", "connection"] {
        assert!(h.get(name).is_none(), "{name} forwarded: {h}");
    }
    // h2c off (the default): the preface is not HTTP/1.1, and is refused as such.
    let off = gateway(&format!("{}{routes}", gateway_header("")));
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
            "-H",
            "host: m.test",
        ])
        .arg(url(off.addrs[0], "/x"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "h2c must be off by default");
}

#[test]
fn v1_and_v2_with_the_info_token_over_h2() {
    for (version, mode) in [("v1", ChallengeMode::V1), ("v2", ChallengeMode::V2)] {
        let m = secured_mirror(mode, CHALLENGE_SECRET, Misbehave::None);
        let routes = format!(
            "{}name = \"my-service\"\n[routes.challenge]\nversion = \"{version}\"\nsecret = \"{CHALLENGE_SECRET}\"\n[routes.info_token]\nversion = \"latest\"\nsecret = \"{CHALLENGE_SECRET}\"\n",
            route("sec", "sec.test", "/", &[m])
        );
        let g = h2c_gateway(&routes, "");
        let r = curl(&[
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-H",
            "host: sec.test",
            &url(g.addrs[0], "/hello"),
        ]);
        assert_eq!(
            (r.version.as_str(), r.status),
            ("2", 200),
            "{version}: {}",
            r.body
        );
        let (head, body) = r.body.split_once("\r\n\r\n").unwrap();
        assert!(
            !head.to_ascii_lowercase().contains("otoroshi-state-resp"),
            "{head}"
        );
        let j: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(j["challengeVersion"], version.to_uppercase());
        assert_eq!(j["token"]["aud"], "my-service");
        assert_eq!(j["token"]["iss"], "Otoroshi");
        // A backend that fails the challenge gets the Otoroshi 502, over HTTP/2 too.
        let bad = mirror();
        let routes = format!(
            "{}[routes.challenge]\nversion = \"{version}\"\nsecret = \"{CHALLENGE_SECRET}\"\n",
            route("bad", "bad.test", "/", &[bad])
        );
        let g = h2c_gateway(&routes, "");
        let r = curl(&[
            "--http2-prior-knowledge",
            "-H",
            "host: bad.test",
            &url(g.addrs[0], "/"),
        ]);
        assert_eq!((r.version.as_str(), r.status), ("2", 502));
        assert_eq!(
            r.json()["Otoroshi-Error"],
            "Downstream microservice does not seems to be secured. Cancelling request !"
        );
    }
}

#[test]
fn api_keys_token_endpoint_and_bearer_over_h2() {
    let dir = temp_dir("h2-auth");
    std::fs::write(
        dir.join("ec.pem"),
        torii_engine::auth::keygen::generate_pem(torii_engine::auth::keygen::KeyKind::EcP256)
            .unwrap(),
    )
    .unwrap();
    let cfg = config_text(&dir, mirror(), false, "").replace(
        "drain_timeout = \"2s\"\n",
        "drain_timeout = \"2s\"\nh2c = true\n",
    );
    let g = gateway(&cfg);
    let base = |p: &str| url(g.addrs[0], p);
    let host = format!("host: {API}");
    // No key: the same 401 and body as over HTTP/1.1.
    let r = curl(&["--http2-prior-knowledge", "-H", &host, &base("/hello")]);
    assert_eq!((r.version.as_str(), r.status, r.connects), ("2", 401, 1));
    assert_eq!(r.body, r#"{"Otoroshi-Error":"No ApiKey provided"}"#);
    // Basic credentials: admitted, and wiped before the backend.
    let auth = format!("authorization: {}", basic("my-client", SECRET));
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &host,
        "-H",
        &auth,
        &base("/hello"),
    ]);
    assert_eq!((r.version.as_str(), r.status), ("2", 200), "{}", r.body);
    assert!(r.json()["headers"].get("authorization").is_none());
    // A wrong secret: 401 Bad API key.
    let auth = format!("authorization: {}", basic("my-client", "wrong"));
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &host,
        "-H",
        &auth,
        &base("/hello"),
    ]);
    assert_eq!(r.status, 401);
    // The token endpoint (a local endpoint, answered by Torii) over HTTP/2, then the bearer.
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"my-client","client_secret":"{SECRET}"}}"#
    );
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "host: oauth.test",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &body,
        &base("/.well-known/otoroshi/oauth/token"),
    ]);
    assert_eq!((r.version.as_str(), r.status), ("2", 200), "{}", r.body);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("authorization: Bearer {token}");
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &host,
        "-H",
        &bearer,
        &base("/hello?a=1"),
    ]);
    assert_eq!((r.version.as_str(), r.status), ("2", 200), "{}", r.body);
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &host,
        "-H",
        "authorization: Bearer nope",
        &base("/hello"),
    ]);
    assert_eq!(r.status, 401);
    // No route: the Otoroshi 404.
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "host: nowhere.test",
        &base("/"),
    ]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"Otoroshi-Error":"No route found"}"#)
    );
}

/// A backend answering every request with `size` bytes of a repeating pattern.
fn big_backend(size: usize) -> SocketAddr {
    raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        while read_request(&mut s, &mut buf, log).is_some() {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        }
    })
    .addr
}

#[test]
fn large_upload_and_download_over_h2() {
    let dir = TempDir::new("h2-big");
    let up = dir.0.join("up.bin");
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    std::fs::write(&up, &data).unwrap();
    let size = 32 * 1024 * 1024;
    let routes = format!(
        "{}{}",
        route("m", "m.test", "/", &[mirror()]),
        route("big", "big.test", "/", &[big_backend(size)])
    );
    let g = h2c_gateway(&routes, "");
    let at = format!("@{}", up.display());
    // With content-length (curl --data-binary) and without (curl -T - : chunked upstream).
    for args in [vec!["--data-binary", at.as_str()], vec!["-T", "-"]] {
        let mut cmd = vec!["--http2-prior-knowledge", "-H", "host: m.test"];
        cmd.extend(args.iter().copied());
        let u = url(g.addrs[0], "/upload");
        cmd.push(&u);
        let r = if args[0] == "-T" {
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "30",
                    "-w",
                    "\n@@%{http_version} %{http_code} 0",
                ])
                .args(&cmd)
                .stdin(std::fs::File::open(&up).unwrap())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (body, tail) = text.rsplit_once("\n@@").unwrap();
            assert!(tail.starts_with("2 200"), "{tail} {body}");
            body.to_owned()
        } else {
            let r = curl(&cmd);
            assert_eq!((r.version.as_str(), r.status), ("2", 200));
            r.body
        };
        let j: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(j["body_bytes"], data.len(), "{args:?}");
    }
    let out_path = dir.0.join("down.bin");
    let r = curl(&[
        "--http2-prior-knowledge",
        "-H",
        "host: big.test",
        "-o",
        out_path.to_str().unwrap(),
        &url(g.addrs[0], "/download"),
    ]);
    assert_eq!((r.version.as_str(), r.status), ("2", 200));
    let got = std::fs::read(&out_path).unwrap();
    assert_eq!(got.len(), size);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, &b)| b == ((i % 65536) % 251) as u8));
}

#[test]
fn many_concurrent_streams_on_one_connection() {
    let m = mirror();
    // curl --parallel over TLS (curl 7.88 fails pending transfers on a prior-knowledge
    // connection with "Error in the HTTP2 framing layer" before sending them, against any
    // server: nginx too), then h2load over h2c.
    let dir = TempDir::new("h2-many");
    let ca = TestCa::new("many CA");
    let (cert, key) = ca.leaf(&["a.test"]).write(&dir.0, "a");
    let ca_path = dir.write("ca.pem", &ca.pem());
    let tls = gateway(&format!(
        "[gateway]\nworkers = 1\nhttps = [\"127.0.0.1:0\"]\n[[certificates]]\nid = \"a\"\ncert = \"{}\"\nkey = \"{}\"\n{}",
        cert.display(),
        key.display(),
        route("a", "a.test", "/", &[m])
    ));
    let port = tls.addrs[0].port();
    let list: String = (0..100)
        .map(|i| format!("url = \"https://a.test:{port}/s{i}\"\noutput = \"/dev/null\"\n"))
        .collect();
    let cfg = dir.write("urls.txt", &list);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--parallel",
            "--parallel-max",
            "100",
            "--cacert",
        ])
        .arg(&ca_path)
        .args(["--resolve", &format!("a.test:{port}:127.0.0.1")])
        .args(["-w", "%{http_version} %{http_code} %{num_connects}\n", "-K"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 100);
    assert!(lines.iter().all(|l| l.starts_with("2 200 ")), "{lines:?}");
    let connects: u32 = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap())
        .sum();
    assert_eq!(connects, 1, "all 100 streams on one connection");

    let routes = route("any", "*", "/", &[m]);
    let g = h2c_gateway(&routes, "admin = \"127.0.0.1:0\"");
    // h2load: 2 connections x 50 concurrent streams, 2000 requests, every one a 2xx.
    let out = Command::new("h2load")
        .args(["-n", "2000", "-c", "2", "-m", "50"])
        .arg(url(g.addrs[0], "/load"))
        .output()
        .expect("h2load is required (.ci/test installs nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");

    // The proto label counts them; the gauges go back to zero.
    let admin = g.admin_addr.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = get(admin, "admin", "/metrics").text();
        let h2 = metrics.lines().find(|l| {
            l.starts_with("torii_requests_total{route=\"any\",status=\"2xx\",proto=\"h2\"}")
        });
        let gauges_zero = metrics.contains("torii_h2_active_connections{worker=\"0\"} 0")
            && metrics.contains("torii_h2_active_streams{worker=\"0\"} 0");
        if h2 == Some("torii_requests_total{route=\"any\",status=\"2xx\",proto=\"h2\"} 2000")
            && gauges_zero
        {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_access_log_says_which_protocol() {
    let dir = TempDir::new("h2-log");
    let log = dir.0.join("access.log");
    let routes = format!(
        "[access_log]\npath = \"{}\"\n{}",
        log.display(),
        route("m", "m.test", "/", &[mirror()])
    );
    let g = h2c_gateway(&routes, "");
    curl(&[
        "--http2-prior-knowledge",
        "-H",
        "host: m.test",
        &url(g.addrs[0], "/two"),
    ]);
    curl(&["--http1.1", "-H", "host: m.test", &url(g.addrs[0], "/one")]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() == 2 {
            let by_path = |p: &str| lines.iter().find(|l| l["path"] == p).unwrap().clone();
            assert_eq!(by_path("/two")["proto"], "h2");
            assert_eq!(by_path("/one")["proto"], "http/1.1");
            assert_eq!(by_path("/two")["status"], 200);
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drain_sends_goaway_and_the_stream_in_flight_finishes() {
    // A backend that answers after 1 s.
    let slow = raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        while read_request(&mut s, &mut buf, log).is_some() {
            std::thread::sleep(Duration::from_secs(1));
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow")
                .is_err()
            {
                return;
            }
        }
    });
    let g = h2c_gateway(&route("slow", "slow.test", "/", &[slow.addr]), "");
    let addr = g.addrs[0];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2/hostile.py");
    let child = Command::new(common::python::require_h2())
        .args([script, "drain_probe", &addr.to_string(), "slow.test"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain once the request is at the backend (in flight).
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let drain = std::thread::spawn(move || g.drain(Duration::from_secs(5)));
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["goaway"], 0, "GOAWAY(NO_ERROR) on drain: {r}");
    assert_eq!(
        r["statuses"]["1"], 200,
        "the stream in flight finished: {r}"
    );
    assert_eq!(r["data"]["1"], 4, "{r}");
}
