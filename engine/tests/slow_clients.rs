//! Slow and greedy clients against the real `torii` binary (issue 9, point 3): slowloris
//! (a header byte every 200 ms), a slow body, a slow reader (never reads a large response) and
//! many idle connections, all at once, while a normal client measures its own latency.
//!
//! Asserted: every attack connection is cut near its deadline (client_header_timeout,
//! body_min_rate, body_idle_timeout for writes to the client, keepalive_timeout, and in its own
//! test response_min_rate for a client that reads, but too slowly); Torii's
//! resident memory does not grow with the response the slow reader refuses to read (bodies
//! stream through a bounded buffer); and the normal client's p99 stays within 2× of its quiet
//! p99 — with an absolute floor of 25 ms, because on a loaded 2-core CI machine a sub-millisecond
//! loopback request can be delayed by scheduling alone; a worker stalled by an attacker would
//! show delays of the order of the attack deadlines (≥ 1 s), far above the floor.
//! Deadlines here are short (1–2 s) to keep the test bounded; the time scale is all that differs
//! from the defaults.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::process::{TempDir, Torii};
use common::*;

const BIG_BODY: usize = 64 * 1024 * 1024;

/// A backend answering `/big` with a 64 MiB body and anything else with `ok`.
fn backend() -> RawBackend {
    raw_backend(|_, mut s, log| {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut s, &mut buf, log) {
            if req.starts_with(b"GET /big ") {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG_BODY}\r\n\r\n");
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..BIG_BODY / chunk.len() {
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                }
            } else if s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Waits until the peer closes `s` (EOF or reset), reading and discarding; the time it took.
fn time_to_close(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut tmp = [0u8; 65536];
    while start.elapsed() < within {
        match s.read(&mut tmp) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed())
            }
            Err(_) => {}
        }
    }
    None
}

/// Sends `GET /` on one keep-alive connection `n` times; the sorted latencies.
fn latencies(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = connect(addr);
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, &mut buf, "GET").unwrap();
        assert_eq!(r.status, 200);
        out.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    out.sort();
    out
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

#[test]
fn slow_and_greedy_clients_are_cut_and_do_not_slow_a_normal_client() {
    let b = backend();
    let toml = format!(
        "{}{}",
        gateway_header(
            "client_header_timeout = \"1s\"\nkeepalive_timeout = \"2s\"\nbody_idle_timeout = \"1s\"\nbody_min_rate = 1024\nbody_min_rate_grace = \"1s\""
        ),
        route("slow", "slow.test", "/", &[b.addr])
    );
    let dir = TempDir::new("slow");
    let torii = Torii::run(&dir.write("torii.toml", &toml));
    let (addr, pid) = (torii.addr, torii.child.id());

    let quiet = latencies(addr, 200);
    let rss_before = rss_kib(pid);
    let mut attackers = Vec::new();

    // Slowloris: one header byte every 200 ms, never finishing the head (deadline 1 s).
    for _ in 0..20 {
        attackers.push(std::thread::spawn(move || {
            let mut s = connect(addr);
            let head =
                b"GET / HTTP/1.1\r\nHost: slow.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let start = Instant::now();
            for &byte in head.iter() {
                if s.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
                if start.elapsed() > Duration::from_secs(4) {
                    break;
                }
            }
            let cut = start.elapsed()
                + time_to_close(&mut s, Duration::from_secs(3)).unwrap_or(Duration::MAX / 2);
            ("slowloris", cut, Duration::from_secs(3))
        }));
    }
    // Slow body: 10 bytes every 200 ms (50 B/s, under body_min_rate after its 1 s grace).
    for _ in 0..5 {
        attackers.push(std::thread::spawn(move || {
            let mut s = connect(addr);
            s.write_all(b"POST / HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 100000\r\n\r\n")
                .unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if s.write_all(&[b'x'; 10]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let cut = start.elapsed()
                + time_to_close(&mut s, Duration::from_secs(3)).unwrap_or(Duration::MAX / 2);
            ("slow body", cut, Duration::from_secs(4))
        }));
    }
    // Slow reader: asks for 64 MiB and reads nothing for 3 s; by then Torii's writes to it
    // have waited longer than body_idle_timeout and the connection must be cut.
    attackers.push(std::thread::spawn(move || {
        // A small receive buffer, set before connecting so the window is small from the start.
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut s: TcpStream = sock.into();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: slow.test\r\n\r\n")
            .unwrap();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let mut total = 0usize;
        let mut tmp = vec![0u8; 1 << 16];
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // Bounded: a connection still delivering after 10 s fails the time bound below.
        while start.elapsed() < Duration::from_secs(10) {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        assert!(
            total < BIG_BODY / 2,
            "slow reader got {total} bytes: not cut"
        );
        ("slow reader", start.elapsed(), Duration::from_secs(7))
    }));
    // Idle connections: never send a byte (keepalive_timeout 2 s).
    for _ in 0..100 {
        attackers.push(std::thread::spawn(move || {
            let mut s = connect(addr);
            let cut = time_to_close(&mut s, Duration::from_secs(5)).unwrap_or(Duration::MAX / 2);
            ("idle", cut, Duration::from_secs(4))
        }));
    }

    std::thread::sleep(Duration::from_millis(300));
    let loaded = latencies(addr, 200);
    let rss_during = rss_kib(pid);
    for a in attackers {
        let (what, cut, bound) = a.join().unwrap();
        assert!(
            cut <= bound,
            "{what} connection cut after {cut:?} (bound {bound:?})"
        );
    }
    let (q, l) = (p99(&quiet), p99(&loaded));
    eprintln!("p99 quiet {q:?}, under attack {l:?}; VmRSS {rss_before} KiB -> {rss_during} KiB");
    let bound = (q * 2).max(Duration::from_millis(25));
    assert!(
        l <= bound,
        "p99 under attack {l:?} over {bound:?} (quiet {q:?})"
    );
    assert!(
        rss_during < rss_before + 16 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_during} KiB while a client refused a 64 MiB body"
    );
}

/// Size of the responses of the minimum-send-rate test.
const RATE_BODY: usize = 16 * 1024 * 1024;

/// A backend for the send-rate test: `/big` is a 16 MiB body written as fast as Torii takes
/// it (the handler counts, in `aborted`, responses whose writes failed: Torii closed the
/// connection mid-body); `/trickle` is 320 KiB sent in 16 KiB pieces every 100 ms (a slow
/// upstream, 160 KiB/s).
fn rate_backend(aborted: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> RawBackend {
    raw_backend(move |_, mut s, log| {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut s, &mut buf, log) {
            let trickle = req.starts_with(b"GET /trickle ");
            let (len, piece) = if trickle {
                (320 * 1024, 16 * 1024)
            } else {
                (RATE_BODY, 64 * 1024)
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            let chunk = vec![b'y'; piece];
            let ok = s.write_all(head.as_bytes()).is_ok()
                && (0..len / piece).all(|_| {
                    if trickle {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    s.write_all(&chunk).is_ok()
                });
            if !ok {
                aborted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return;
            }
        }
    })
}

/// Sends `GET path` and reads the whole response at full speed; its body length.
fn fetch_body_len(addr: SocketAddr, path: &str) -> usize {
    let mut s = connect(addr);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: rate.test\r\n\r\n").as_bytes())
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), "GET").unwrap();
    assert_eq!(r.status, 200);
    r.body.len()
}

/// `response_min_rate`: a client that keeps reading, but only ~40 KiB/s through a 4 KiB receive
/// buffer, never waits out `body_idle_timeout` (60 s here) yet is cut once the bytes Torii handed
/// to the kernel (the socket's send buffer, a few MiB on loopback) would have taken it longer
/// than the minimum rate allows; the upstream connection is then closed mid-body, not pooled.
/// A client reading at full speed gets the whole body, and so does a fast client behind a slow
/// upstream (only the time spent writing to the client counts).
///
/// The cut is observed on the server side (the backend sees its connection closed): bytes
/// already queued in the kernel still reach the client after Torii closes its socket.
#[test]
fn trickle_reader_is_cut_by_the_minimum_send_rate() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    let aborted = Arc::new(AtomicUsize::new(0));
    let b = rate_backend(aborted.clone());
    let toml = format!(
        "{}{}",
        gateway_header(
            "body_idle_timeout = \"60s\"\nresponse_min_rate = 1048576\nresponse_min_rate_grace = \"1s\""
        ),
        route("rate", "rate.test", "/", &[b.addr])
    );
    let dir = TempDir::new("send-rate");
    let torii = Torii::run(&dir.write("torii.toml", &toml));
    let addr = torii.addr;

    // Full speed: the whole 16 MiB, and the slow upstream's whole body.
    assert_eq!(fetch_body_len(addr, "/big"), RATE_BODY);
    assert_eq!(fetch_body_len(addr, "/trickle"), 320 * 1024);
    assert_eq!(aborted.load(SeqCst), 0);

    // The trickle reader: 2 KiB every 50 ms, until the backend sees the cut (20 s at most).
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let reader = std::thread::spawn(move || {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut s: TcpStream = sock.into();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: rate.test\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (start, mut total) = (Instant::now(), 0usize);
        let mut tmp = [0u8; 2048];
        while !done2.load(SeqCst) && start.elapsed() < Duration::from_secs(20) {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        total
    });
    let start = Instant::now();
    while aborted.load(SeqCst) == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    done.store(true, SeqCst);
    let total = reader.join().unwrap();
    eprintln!("trickle reader cut after {took:?} ({total} bytes read by then)");
    assert_eq!(aborted.load(SeqCst), 1, "not cut after {took:?}");
    assert!(total < RATE_BODY / 4, "the reader got {total} bytes");
    // Well before body_idle_timeout (60 s): the rate cut it.
    assert!(took < Duration::from_secs(15), "cut only after {took:?}");
    // The gateway still serves a full-speed client.
    assert_eq!(fetch_body_len(addr, "/big"), RATE_BODY);
}
