//! Target names re-resolved while the real `torii` runs, against a DNS server the test starts
//! (`tests/dns/dns_server.py`, Python's `dnslib`: UDP on 127.0.0.1, a port of its own, A and
//! AAAA records of `app.test.` read from a file at every query, TTL 1 s).
//!
//! Two backends listen on 127.0.0.2:P and 127.0.0.3:P (one port; Linux routes 127/8 to the
//! loopback) and answer with their own address. The gateway's `[dns] servers` is that server,
//! so it answers at load too; the route's target is `http://app.test:P`, re-resolved each
//! second (the TTL of 1 within the default `resolve_interval`). The test checks that requests
//! go to .2; that once the file says .3 every request goes to .3 within 5 s, while a slow
//! request already on .2 completes there (drained, not cut); that an AAAA record is an
//! endpoint too (and leaves with the next answer); and that with the DNS server gone the last good address keeps serving.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{TempDir, Torii};
use common::{get, read_request};

/// The test's DNS server: killed (by its PID) on drop.
struct DnsServer {
    child: Child,
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl DnsServer {
    fn start(answers: &Path) -> DnsServer {
        let py = common::python::require_imports("import dnslib", "dnslib", "the DNS tests");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dns/dns_server.py");
        let mut child = Command::new(py)
            .arg(script)
            .arg(answers)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("DNS server did not start: {line:?}"))
            .trim()
            .parse()
            .unwrap();
        DnsServer {
            child,
            _stdin: stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A backend answering every request with its own IP address as the body (keep-alive);
/// `GET /slow` waits [`SLOW`] first. Stopped on drop.
struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// `GET /slow` requests received so far.
    slow_seen: Arc<AtomicUsize>,
}

const SLOW: Duration = Duration::from_millis(2500);

impl Backend {
    fn serve(listener: TcpListener) -> Backend {
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let slow_seen = Arc::new(AtomicUsize::new(0));
        let (stop2, seen2) = (stop.clone(), slow_seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let seen = seen2.clone();
                std::thread::spawn(move || answer_all(conn, addr, &seen));
            }
        });
        Backend {
            addr,
            stop,
            slow_seen,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and ends (dropping the listener).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn answer_all(mut conn: TcpStream, me: SocketAddr, slow_seen: &AtomicUsize) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let log = Mutex::new(Vec::new());
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf, &log) {
        if req.starts_with(b"GET /slow ") {
            slow_seen.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(SLOW);
        }
        let body = me.ip().to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// Two backends on 127.0.0.2:P and 127.0.0.3:P, one port P (retried if .3 has P taken).
fn backend_pair() -> (Backend, Backend) {
    for _ in 0..20 {
        let two = TcpListener::bind("127.0.0.2:0").unwrap();
        let port = two.local_addr().unwrap().port();
        if let Ok(three) = TcpListener::bind(("127.0.0.3", port)) {
            return (Backend::serve(two), Backend::serve(three));
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// Replaces the DNS server's answer file at once (the server reads it at every query).
fn set_answers(dir: &TempDir, text: &str) -> PathBuf {
    let tmp = dir.write("answers.tmp", text);
    let path = dir.0.join("answers");
    std::fs::rename(tmp, &path).unwrap();
    path
}

/// The body of `GET /` through the gateway: the address of the backend that answered.
fn who(gw: SocketAddr) -> String {
    let r = get(gw, "app.local", "/");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[test]
fn target_names_follow_dns_answers_drain_the_old_address_and_survive_a_dead_server() {
    let dir = TempDir::new("dns");
    let answers = set_answers(&dir, "127.0.0.2\n");
    let dns = DnsServer::start(&answers);
    let (two, three) = backend_pair();
    let port = two.addr.port();
    let config = dir.write(
        "torii.toml",
        &format!(
            "[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n\n\
             [dns]\nservers = [\"{}\"]\ntimeout = \"500ms\"\n\n\
             [[routes]]\nid = \"app\"\ndomains = [\"app.local\"]\ntargets = [\"http://app.test:{port}\"]\n",
            dns.addr
        ),
    );
    let torii = Torii::run(&config);
    let gw = torii.addr;

    // Resolved at load by the test's server: .2 serves.
    for _ in 0..6 {
        assert_eq!(who(gw), "127.0.0.2");
    }

    // A slow request, in flight on .2 when the answer changes.
    let slow = std::thread::spawn(move || {
        let r = get(gw, "app.local", "/slow");
        (r.status, r.text())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while two.slow_seen.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow request never reached .2"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let changed_at = Instant::now();
    set_answers(&dir, "127.0.0.3\n");

    // Within 5 s every new request goes to .3.
    let deadline = changed_at + Duration::from_secs(5);
    loop {
        if who(gw) == "127.0.0.3" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests still go to .2 five seconds after the answer changed: {:?}",
            torii.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = torii.wait_log("target addresses changed", Duration::from_secs(5));
    assert!(
        line.contains(&format!("old=127.0.0.2:{port}"))
            && line.contains(&format!("new=127.0.0.3:{port}"))
            && line.contains("route=app"),
        "{line}"
    );
    for _ in 0..10 {
        assert_eq!(who(gw), "127.0.0.3", "a request went to the old address");
    }
    assert!(
        !slow.is_finished(),
        "the slow request ended before the switch was checked; SLOW is too short"
    );
    // The request that was on .2 completed there: drained, not cut.
    assert_eq!(slow.join().unwrap(), (200, "127.0.0.2".to_owned()));
    assert_eq!(two.slow_seen.load(Ordering::SeqCst), 1);
    assert_eq!(three.slow_seen.load(Ordering::SeqCst), 0);

    // AAAA records are endpoints too; then back to .3 alone (nothing listens on [::1]:P).
    set_answers(&dir, "127.0.0.3\n::1\n");
    let line = torii.wait_log("target addresses changed", Duration::from_secs(5));
    assert!(
        line.contains(&format!("new=127.0.0.3:{port} [::1]:{port}")),
        "{line}"
    );
    set_answers(&dir, "127.0.0.3\n");
    let line = torii.wait_log("target addresses changed", Duration::from_secs(5));
    assert!(
        line.trim_end().ends_with(&format!(
            "old=127.0.0.3:{port} [::1]:{port} new=127.0.0.3:{port}"
        )),
        "{line}"
    );
    assert_eq!(who(gw), "127.0.0.3");

    // The DNS server gone: failures are logged, the last good addresses keep serving.
    drop(dns);
    let line = torii.wait_log("target name resolution failed", Duration::from_secs(5));
    assert!(
        line.contains("route=app") && line.contains("app.test"),
        "{line}"
    );
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(who(gw), "127.0.0.3");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(torii);
}
