//! End-to-end tests of the generator against a tiny HTTP/1.1 server on 127.0.0.1:0: request
//! counts, keep-alive and reconnects, chunked bodies, checks, socket errors, and the binary's
//! exit code and JSON report.

// Test-only helpers (outside #[test] functions) may panic on setup failures.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use torii_loadtest::generator::{run, RunOptions};
use torii_loadtest::response::Checks;
use torii_loadtest::target::RequestSpec;
use torii_loadtest::tls::TlsOptions;

/// How the test server answers request number `n` (counted over all connections).
#[derive(Clone, Copy)]
enum Style {
    /// Content-Length and chunked alternately, always 200, keep-alive.
    Mixed,
    /// Every 10th response is a 500 with `Connection: close`.
    SomeFailures,
}

/// Starts the server; returns its address and the count of requests it answered.
fn server(style: Style) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let served = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1000).flatten() {
            let served = served.clone();
            std::thread::spawn(move || serve(stream, style, &served));
        }
    });
    (addr, count)
}

fn serve(stream: TcpStream, style: Style, served: &AtomicU64) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..100_000 {
        // Read one request head (GET, no body).
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
        }
        if !saw_request {
            return;
        }
        let n = served.fetch_add(1, Ordering::SeqCst);
        let response: Vec<u8> = match style {
            Style::SomeFailures if n % 10 == 9 => {
                b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 4\r\n\r\nfail".to_vec()
            }
            Style::Mixed if n % 2 == 1 => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n3\r\n{\"o\r\n5\r\nk\":1}\r\n0\r\n\r\n".to_vec()
            }
            _ => b"HTTP/1.1 200 OK\r\nX-Kind: length\r\nContent-Length: 7\r\n\r\n{\"ok\":1".to_vec(),
        };
        if writer.write_all(&response).is_err() {
            return;
        }
        if response.starts_with(b"HTTP/1.1 500") {
            return;
        }
    }
}

fn options(addr: SocketAddr, n: u64) -> RunOptions {
    RunOptions {
        url: format!("http://{addr}/hello?x=1"),
        tls: TlsOptions::default(),
        request: RequestSpec {
            method: "GET".into(),
            ..RequestSpec::default()
        },
        connections: 4,
        threads: 2,
        duration: Duration::from_secs(30),
        max_requests: Some(n),
        rate: None,
        timeout: Duration::from_secs(5),
        checks: Checks::default(),
        allow_remote: false,
        progress: false,
    }
}

#[test]
fn closed_loop_sends_exactly_n_requests_over_keep_alive() {
    let (addr, served) = server(Style::Mixed);
    let mut o = options(addr, 200);
    o.checks = Checks {
        status: Some(200),
        headers: vec![("x-kind".into(), None)],
        body_contains: Some(b"\"ok\"".to_vec()),
        ..Checks::default()
    };
    let r = run(o).unwrap();
    assert_eq!(r.stats.responses(), 200);
    assert_eq!(r.stats.status.get(&200), Some(&200));
    assert_eq!(r.stats.errors.total(), 0, "{:?}", r.stats.errors);
    assert_eq!(r.stats.check_failures, 0);
    assert_eq!(r.stats.latency.len(), 200);
    assert_eq!(served.load(Ordering::SeqCst), 200);
    assert!(r.cpu.total_s() > 0.0);
}

#[test]
fn closes_are_followed_by_reconnects_and_failed_checks_are_counted() {
    let (addr, served) = server(Style::SomeFailures);
    let mut o = options(addr, 200);
    o.checks.status = Some(200);
    let r = run(o).unwrap();
    assert_eq!(r.stats.responses(), 200, "{:?}", r.stats.errors);
    assert_eq!(r.stats.status.get(&500), Some(&20));
    assert_eq!(r.stats.check_failures, 20);
    assert_eq!(r.stats.errors.total(), 0);
    assert_eq!(served.load(Ordering::SeqCst), 200);
}

#[test]
fn open_loop_paces_requests() {
    let (addr, served) = server(Style::Mixed);
    let mut o = options(addr, 1_000_000);
    o.rate = Some(200.0);
    o.duration = Duration::from_millis(500);
    let r = run(o).unwrap();
    let n = r.stats.responses();
    // 200 req/s for 0.5 s: 100 requests, give or take scheduling at the edges.
    assert!((90..=101).contains(&n), "{n}");
    assert_eq!(served.load(Ordering::SeqCst), n);
    assert_eq!(r.stats.errors.total(), 0);
}

#[test]
fn refused_connections_are_connect_errors() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut o = options(addr, 6);
    o.connections = 2;
    let r = run(o).unwrap();
    assert_eq!(r.stats.responses(), 0);
    assert_eq!(r.stats.errors.connect, 6);
}

#[test]
fn remote_targets_are_refused_before_sending() {
    let mut o = options("127.0.0.1:9".parse().unwrap(), 1);
    o.url = "http://10.255.255.1:80/".into();
    assert!(run(o.clone()).unwrap_err().contains("--allow-remote"));
    o.url = "https://10.255.255.1/".into();
    assert!(run(o).unwrap_err().contains("--allow-remote"));
}

#[test]
fn binary_exit_code_and_json_report() {
    let (addr, _) = server(Style::SomeFailures);
    let dir = std::env::temp_dir().join(format!("torii-lt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let bin = env!("CARGO_BIN_EXE_torii-loadtest");
    let url = format!("http://{addr}/");
    let ok = std::process::Command::new(bin)
        .args([
            "run",
            "--url",
            &url,
            "-n",
            "9",
            "-c",
            "1",
            "--quiet",
            "--expect-status",
            "200",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let mut text = String::new();
    std::fs::File::open(&json)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["requests"], 9);
    assert_eq!(v["status"]["200"], 9);
    assert!(v["latency"]["percentiles_us"]["p99.9"].as_u64().is_some());
    assert!(v["cpu_us_per_request"].as_f64().is_some());
    // The next 10 include the 500: exit code 1 and a FAILED line.
    let bad = std::process::Command::new(bin)
        .args([
            "run",
            "--url",
            &url,
            "-n",
            "10",
            "-c",
            "1",
            "--quiet",
            "--expect-status",
            "200",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains("FAILED: 0 errors and 1 check failures"),
        "{out}"
    );
    let remote = std::process::Command::new(bin)
        .args(["run", "--url", "http://10.255.255.1/", "-n", "1"])
        .output()
        .unwrap();
    assert_eq!(remote.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
