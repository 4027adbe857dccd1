//! The HTTP/2 attacks of the last years against the real `torii` binary, each with a hostile
//! client written with the Python HTTP/2 stack (`tests/h2/hostile.py`: hyperframe and hpack,
//! frame by frame): rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316),
//! SETTINGS and PING floods, a window that never opens (slow reader), a body that never ends
//! (slow body), too many streams, an oversized header block, malformed header lists (invalid
//! pseudo-headers, connection-specific fields), `content-length` disagreeing with the DATA
//! frames, and a stream reset while its upstream request is in flight.
//!
//! In every case: the attack gets the answer RFC 9113 and the `h2` crate's defences give
//! (GOAWAY, RST_STREAM, 408, 431…); the gateway stays up and another client is served while
//! the attack runs; Torii's resident memory (VmRSS) returns near the level measured after a
//! warm-up; and the recording backend received nothing malformed (every upstream connection
//! carries only complete, well-framed requests, or the prefix of one on a connection Torii
//! closed), and none of the refused requests.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{TempDir, Torii};
use common::recorder::{frame_request, recorder, Frame, Recorder};
use common::*;
use serde_json::Value;

/// How much VmRSS may stay above the warm-up level once an attack is over.
const RSS_MARGIN_KIB: u64 = 4096;
/// REFUSED_STREAM, PROTOCOL_ERROR, ENHANCE_YOUR_CALM (RFC 9113 §7).
const REFUSED_STREAM: u64 = 7;
const PROTOCOL_ERROR: u64 = 1;
const ENHANCE_YOUR_CALM: u64 = 11;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A backend streaming a 64 MiB response, counting the responses cut by Torii closing.
fn big_backend(cut: Arc<AtomicUsize>) -> SocketAddr {
    raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        let chunk = vec![b'x'; 65536];
        while read_request(&mut s, &mut buf, log).is_some() {
            let size = 64 * 1024 * 1024;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
            s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..size / chunk.len() {
                if s.write_all(&chunk).is_err() {
                    cut.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    })
    .addr
}

/// A backend that reads a request and never answers; counts the connections Torii closed,
/// and how long after the request each close came.
fn hanging_backend(closed_after_ms: Arc<std::sync::Mutex<Vec<u128>>>) -> SocketAddr {
    raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        if read_request(&mut s, &mut buf, log).is_none() {
            return;
        }
        let start = Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut tmp = [0u8; 1024];
        loop {
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return,
            }
        }
        closed_after_ms
            .lock()
            .unwrap()
            .push(start.elapsed().as_millis());
    })
    .addr
}

struct Fixture {
    torii: Torii,
    rec: Recorder,
    big_cut: Arc<AtomicUsize>,
    hang_closed: Arc<std::sync::Mutex<Vec<u128>>>,
    _dir: TempDir,
}

impl Fixture {
    fn start(tag: &str) -> Fixture {
        let rec = recorder();
        let big_cut = Arc::new(AtomicUsize::new(0));
        let big = big_backend(big_cut.clone());
        let hang_closed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hang = hanging_backend(hang_closed.clone());
        let dir = TempDir::new(tag);
        let cfg = format!(
            "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nh2c = true\ndrain_timeout = \"2s\"\nmax_connections_per_worker = 1000\n\n\
             [limits]\nclient_header_timeout = \"2s\"\nbody_idle_timeout = \"3s\"\nbody_min_rate_grace = \"2s\"\nresponse_min_rate_grace = \"2s\"\nupstream_timeout = \"10s\"\n\n{}{}{}",
            route("rec", "rec.test", "/", &[rec.addr]),
            route("big", "big.test", "/", &[big]),
            route("hang", "hang.test", "/", &[hang]),
        );
        let path = dir.write("torii.toml", &cfg);
        let torii = Torii::run(&path);
        Fixture {
            torii,
            rec,
            big_cut,
            hang_closed,
            _dir: dir,
        }
    }

    fn addr(&self) -> String {
        self.torii.addr.to_string()
    }

    /// One request by another client (alternately HTTP/2 and HTTP/1.1): its status.
    fn other_client(&self, h2: bool) -> u16 {
        let proto = if h2 {
            "--http2-prior-knowledge"
        } else {
            "--http1.1"
        };
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "10",
                "-w",
                "%{http_code}",
                proto,
            ])
            .args(["-H", "host: rec.test"])
            .arg(format!("http://{}/other", self.addr()))
            .output()
            .expect("curl is required (.ci/test installs it)");
        String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
    }

    /// Requests over HTTP/2 and HTTP/1.1 until the memory settles; the warm-up VmRSS.
    fn warm_up(&self) -> u64 {
        for _ in 0..3 {
            let r = hostile("ok", &self.addr(), "rec.test", 50);
            assert_eq!(r["statuses"].as_object().unwrap().len(), 50, "{r}");
            assert_eq!(self.other_client(false), 200);
        }
        std::thread::sleep(Duration::from_millis(300));
        rss_kib(self.torii.child.id())
    }

    /// Runs `attack` while another client keeps being served; checks memory and the backend
    /// afterwards. Returns the attack's report.
    fn attack(&self, attack: &str, authority: &str, n: u64) -> Value {
        let rss0 = self.warm_up();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2/hostile.py");
        let mut child = Command::new(common::python::require_h2())
            .args([script, attack, &self.addr(), authority, &n.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Python interpreter runs");
        let mut served = 0;
        let mut round = 0;
        while child.try_wait().unwrap().is_none() {
            round += 1;
            let status = self.other_client(round % 2 == 0);
            assert_eq!(status, 200, "another client during {attack}");
            served += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "hostile.py {attack} failed");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(self.other_client(true), 200, "after {attack}");
        assert_eq!(self.other_client(false), 200, "after {attack}");
        // Memory back near the warm-up level (the attack's connection is gone or idle).
        let pid = self.torii.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rss1 = rss_kib(pid);
        while rss1 > rss0 + RSS_MARGIN_KIB && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            rss1 = rss_kib(pid);
        }
        eprintln!(
            "{attack}: VmRSS {rss0} KiB -> {rss1} KiB; {served} other requests served during it"
        );
        assert!(
            rss1 <= rss0 + RSS_MARGIN_KIB,
            "{attack}: VmRSS grew from {rss0} KiB to {rss1} KiB"
        );
        report
    }

    /// Every request target the recording backend received; fails on anything that is not a
    /// sequence of complete, well-framed requests (a cut prefix only on a closed connection).
    fn backend_targets(&self) -> Vec<String> {
        let conns = self.rec.conns.lock().unwrap().clone();
        let mut targets = Vec::new();
        for c in &conns {
            let mut rest = &c.bytes[..];
            loop {
                match frame_request(rest) {
                    Frame::Complete(n, target) => {
                        targets.push(target);
                        rest = &rest[n..];
                        if rest.is_empty() {
                            break;
                        }
                    }
                    Frame::Incomplete if rest.is_empty() => break,
                    Frame::Incomplete => {
                        assert!(
                            c.closed,
                            "a cut request left open: {:?}",
                            String::from_utf8_lossy(rest)
                        );
                        targets.push("<truncated>".into());
                        break;
                    }
                    Frame::Ambiguous(why) => {
                        panic!(
                            "malformed upstream bytes ({why}): {:?}",
                            String::from_utf8_lossy(rest)
                        )
                    }
                }
            }
        }
        targets
    }

    fn assert_backend_never_saw(&self, paths: &[&str]) {
        let targets = self.backend_targets();
        for t in &targets {
            assert!(
                !paths.iter().any(|p| t.starts_with(p)),
                "{t} reached the backend: {targets:?}"
            );
        }
    }
}

/// Runs hostile.py once and parses its report.
fn hostile(attack: &str, addr: &str, authority: &str, n: u64) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2/hostile.py");
    let out = Command::new(common::python::require_h2())
        .args([script, attack, addr, authority, &n.to_string()])
        .output()
        .expect("the Python interpreter runs");
    assert!(
        out.status.success(),
        "hostile.py {attack}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn code(v: &Value) -> Option<u64> {
    v.as_u64()
}

#[test]
fn rapid_reset_is_cut_with_enhance_your_calm() {
    let fx = Fixture::start("h2-rapid");
    let r = fx.attack("rapid_reset", "rec.test", 20_000);
    assert_eq!(code(&r["goaway"]), Some(ENHANCE_YOUR_CALM), "{r}");
    assert!(
        r["sent"].as_u64().unwrap() < 20_000,
        "cut before the end: {r}"
    );
    fx.backend_targets();
}

#[test]
fn continuation_flood_is_cut() {
    let fx = Fixture::start("h2-cont");
    let r = fx.attack("continuation_flood", "rec.test", 64);
    assert!(r["goaway"].is_u64(), "{r}");
    assert!(r["sent"].as_u64().unwrap() < 64 * 1024 * 1024, "{r}");
    fx.assert_backend_never_saw(&["/cont"]);
}

/// Slowloris over HTTP/2: a header block left unfinished — opened then silent, dripped one
/// CONTINUATION every half second, or one HEADERS frame whose payload stops short — is cut at
/// `client_header_timeout` (2 s here) with GOAWAY `ENHANCE_YOUR_CALM`, as an HTTP/1.1 head is
/// cut with 408, not at the idle timeout (60 s); nothing reaches the backend and other clients
/// are served meanwhile.
#[test]
fn an_unfinished_header_block_is_cut_at_the_head_timeout() {
    let fx = Fixture::start("h2-slowhead");
    for attack in ["slow_head", "drip_head", "partial_head_frame"] {
        let r = fx.attack(attack, "rec.test", 20);
        let cut = r["cut_after"].as_f64().unwrap();
        assert!(
            (1.5..6.0).contains(&cut),
            "{attack}: cut after {cut} s: {r}"
        );
        assert_eq!(r["goaway"], 0xb, "{attack}: GOAWAY ENHANCE_YOUR_CALM: {r}");
        assert_eq!(fx.other_client(true), 200, "{attack}");
    }
    fx.assert_backend_never_saw(&["/slow-head", "/drip-head", "/partial-head"]);
}

/// One rule for `#` on both protocols: the fragment is cut off the target, so the path routed
/// and the path forwarded are the path before it (the `h2` crate drops it from `:path`; the
/// HTTP/1.1 parser does the same), and no fragment ever reaches a backend.
#[test]
fn a_fragment_is_cut_off_over_both_protocols() {
    let fx = Fixture::start("h2-fragment");
    let r = hostile("fragment_path", &fx.addr(), "rec.test", 0);
    assert_eq!(r["statuses"]["1"], 200, "{r}");
    let mut s = connect(fx.torii.addr);
    s.write_all(b"GET /frag-h1?q=1#/../private HTTP/1.1\r\nHost: rec.test\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut s, &mut Vec::new(), "GET").expect("a response");
    assert_eq!(resp.status, 200);
    let targets = fx.backend_targets();
    assert!(targets.contains(&"/frag-h2?q=1".to_owned()), "{targets:?}");
    assert!(targets.contains(&"/frag-h1?q=1".to_owned()), "{targets:?}");
    assert!(targets.iter().all(|t| !t.contains('#')), "{targets:?}");
}

#[test]
fn settings_flood_stays_bounded() {
    let fx = Fixture::start("h2-settings");
    let r = fx.attack("settings_flood", "rec.test", 200_000);
    assert!(r.get("goaway").is_some(), "{r}");
    fx.backend_targets();
}

#[test]
fn ping_flood_stays_bounded() {
    let fx = Fixture::start("h2-ping");
    let r = fx.attack("ping_flood", "rec.test", 200_000);
    assert!(r.get("goaway").is_some(), "{r}");
    fx.backend_targets();
}

#[test]
fn a_window_that_never_opens_is_cut_and_its_upstream_closed() {
    let fx = Fixture::start("h2-slowread");
    let r = fx.attack("slow_reader", "big.test", 30);
    let cut = r["cut_after"].as_f64().unwrap();
    assert!(
        r["resets"].get("1").is_some() || r["closed"] == true || r["goaway"].is_u64(),
        "{r}"
    );
    assert!(cut < 20.0, "cut after {cut} s: {r}");
    assert_eq!(r["data"].get("1"), None, "no DATA without window: {r}");
    // The upstream response was abandoned: Torii closed that connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fx.big_cut.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream connection was never closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_body_that_never_ends_gets_408() {
    let fx = Fixture::start("h2-slowbody");
    let r = fx.attack("slow_body", "rec.test", 20);
    assert_eq!(r["statuses"]["1"], 408, "{r}");
    assert!(r["cut_after"].as_f64().unwrap() < 10.0, "{r}");
    // At most the cut prefix of that request, on a connection Torii closed.
    let targets = fx.backend_targets();
    assert!(
        targets
            .iter()
            .all(|t| t == "<truncated>" || t == "/other" || t.starts_with("/ok-")),
        "{targets:?}"
    );
}

#[test]
fn streams_beyond_the_limit_are_refused() {
    let fx = Fixture::start("h2-streams");
    let r = fx.attack("too_many_streams", "rec.test", 300);
    let statuses = r["statuses"].as_object().unwrap();
    let resets = r["resets"].as_object().unwrap();
    assert_eq!(statuses.len() + resets.len(), 300, "{r}");
    assert!(
        statuses.len() <= 100,
        "at most h2_max_concurrent_streams at once: {r}"
    );
    assert!(statuses.values().all(|s| s == 200), "{r}");
    assert!(
        !resets.is_empty() && resets.values().all(|c| code(c) == Some(REFUSED_STREAM)),
        "{r}"
    );
    fx.backend_targets();
}

#[test]
fn an_oversized_header_block_gets_431_and_the_connection_goes_on() {
    let fx = Fixture::start("h2-oversized");
    let r = fx.attack("oversized_header", "rec.test", 20);
    assert_eq!(r["statuses"]["1"], 431, "{r}");
    assert_eq!(r["statuses"]["3"], 200, "the next stream is served: {r}");
    fx.assert_backend_never_saw(&["/oversized"]);
}

#[test]
fn malformed_header_lists_are_refused() {
    let fx = Fixture::start("h2-malformed");
    let r = fx.attack("invalid_pseudo", "rec.test", 0);
    for (case, report) in r.as_object().unwrap() {
        let stream = code(&report["resets"]["1"]);
        let conn = code(&report["goaway"]);
        assert!(
            stream == Some(PROTOCOL_ERROR) || conn == Some(PROTOCOL_ERROR),
            "{case}: {report}"
        );
        assert!(report["statuses"].get("1").is_none(), "{case}: {report}");
    }
    fx.assert_backend_never_saw(&["/m"]);
}

/// A request the `h2` crate accepts but Torii refuses (userinfo in `:authority`) is reset with
/// `PROTOCOL_ERROR`, counted and logged like an HTTP/1.1 head refused with 400 (route `-`,
/// status 400, reason `head.invalid`, `proto` `h2`); the connection goes on.
#[test]
fn a_malformed_request_is_counted_and_logged_like_an_http1_400() {
    let dir = TempDir::new("h2-malformed-log");
    let log = dir.0.join("access.log");
    let rec = recorder();
    let cfg = format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\nh2c = true\n\n[access_log]\npath = \"{}\"\n\n{}",
        log.display(),
        route("rec", "rec.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    let r = hostile(
        "userinfo_authority",
        &gw.addrs[0].to_string(),
        "rec.test",
        0,
    );
    assert_eq!(code(&r["resets"]["1"]), Some(PROTOCOL_ERROR), "{r}");
    assert_eq!(r["statuses"]["3"], 200, "the connection goes on: {r}");
    let mut text = String::new();
    torii_engine::admin::render::render(&gw.shared, &mut text);
    let bad = text
        .lines()
        .find(|l| l.starts_with("torii_requests_total{route=\"-\",status=\"4xx\",proto=\"h2\"}"))
        .unwrap_or_else(|| panic!("no unrouted 4xx series:\n{text}"));
    assert!(bad.ends_with(" 1"), "{bad}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if let Some(line) = lines.iter().find(|l| l["status"] == 400) {
            assert_eq!(line["proto"], "h2", "{line}");
            assert_eq!(line["reason"], "head.invalid", "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "no 400 line: {lines:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn content_length_disagreeing_with_data_is_refused() {
    let fx = Fixture::start("h2-cl");
    let r = fx.attack("cl_mismatch", "rec.test", 0);
    for case in ["short", "long"] {
        assert_eq!(
            code(&r[case]["resets"]["1"]),
            Some(PROTOCOL_ERROR),
            "{case}: {r}"
        );
        assert!(r[case]["statuses"].get("1").is_none(), "{case}: {r}");
    }
    fx.assert_backend_never_saw(&["/cl-"]);
}

#[test]
fn a_reset_stream_cancels_its_upstream_request() {
    let fx = Fixture::start("h2-reset");
    let r = fx.attack("reset_in_flight", "hang.test", 0);
    // The connection went on: the next stream (to the same hanging route) was taken.
    assert!(r["goaway"].is_null(), "{r}");
    // Torii closed the upstream connection of the cancelled request soon after the reset
    // (the backend would have waited 20 s), instead of keeping or pooling it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closed = fx.hang_closed.lock().unwrap().clone();
        if let Some(ms) = closed.first() {
            assert!(*ms < 3000, "closed {ms} ms after the request");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream request was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
