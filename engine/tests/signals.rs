//! The real `torii` binary under signals: SIGHUP reloads (including a broken file, and under
//! load with zero failed requests), SIGTERM drains with a slow request in flight and exits 0,
//! a second instance on a served port fails clearly, and `torii check` reports errors with key
//! paths.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::held::held_backend;
use common::process::{spawn, TempDir, Torii};
use common::*;

fn config_with(routes: &str) -> String {
    format!("[gateway]\nworkers = 2\nhttp = [\"127.0.0.1:0\"]\ndrain_timeout = \"5s\"\n\n{routes}")
}

#[test]
fn sighup_applies_a_new_config_and_a_broken_one_keeps_the_old() {
    let m = mirror();
    let dir = TempDir::new("reload");
    let path = dir.write("torii.toml", &config_with(&route("a", "a.test", "/", &[m])));
    let torii = Torii::run(&path);
    assert_eq!(get(torii.addr, "a.test", "/").status, 200);
    assert_eq!(get(torii.addr, "b.test", "/").status, 404);

    dir.write(
        "torii.toml",
        &config_with(&format!(
            "{}{}",
            route("a", "a.test", "/", &[m]),
            route("b", "b.test", "/", &[m])
        )),
    );
    torii.signal(libc::SIGHUP);
    torii.wait_log("configuration reloaded", Duration::from_secs(10));
    assert_eq!(get(torii.addr, "b.test", "/").status, 200);

    dir.write(
        "torii.toml",
        &config_with(&format!(
            "{}[routes.challenge]\ntll = \"3s\"\n",
            route("a", "a.test", "/", &[m])
        )),
    );
    torii.signal(libc::SIGHUP);
    let line = torii.wait_log("reload rejected", Duration::from_secs(10));
    assert!(
        line.contains("routes[0].challenge.tll"),
        "error names its key path: {line}"
    );
    assert_eq!(
        get(torii.addr, "b.test", "/").status,
        200,
        "old config still serving"
    );
    assert_eq!(get(torii.addr, "a.test", "/").status, 200);
}

/// Every record of a rejected reload is one line naming the file (`path=`), the key when there
/// is one (`key=`), and the message with its line breaks joined: a TOML syntax error's message
/// has two lines ("invalid array" / "expected `]`").
#[test]
fn a_rejected_reload_logs_one_line_per_error_with_the_file() {
    let m = mirror();
    let dir = TempDir::new("reload-log");
    let good = config_with(&route("a", "a.test", "/", &[m]));
    let path = dir.write("torii.toml", &good);
    let torii = Torii::run(&path);
    let file = path.display().to_string();

    // The closing `]` of the gateway's listener list is missing.
    let broken = good.replacen("\"127.0.0.1:0\"]", "\"127.0.0.1:0\"", 1);
    assert_ne!(broken, good);
    dir.write("torii.toml", &broken);
    let seen_before = torii.log.lock().unwrap().len();
    torii.signal(libc::SIGHUP);
    let line = torii.wait_log("reload rejected", Duration::from_secs(10));
    assert!(line.contains(&format!(" path={file} ")), "{line}");
    assert!(!line.contains(" key="), "a syntax error has no key: {line}");
    assert!(
        line.contains("error=invalid TOML at line ")
            && line.ends_with("invalid array; expected `]`"),
        "the whole message is on the record's line: {line}"
    );
    // No line of the log is a continuation of another record: each starts with its timestamp.
    std::thread::sleep(Duration::from_millis(200));
    for l in &torii.log.lock().unwrap()[seen_before..] {
        assert!(l.starts_with("20"), "a line that is not a record: {l:?}");
    }

    dir.write(
        "torii.toml",
        &config_with(&format!(
            "{}[routes.challenge]\ntll = \"3s\"\n",
            route("a", "a.test", "/", &[m])
        )),
    );
    torii.signal(libc::SIGHUP);
    let line = torii.wait_log("reload rejected", Duration::from_secs(10));
    assert!(
        line.contains(&format!(
            " path={file} key=routes[0].challenge.tll error=unknown key"
        )),
        "{line}"
    );
    assert_eq!(get(torii.addr, "a.test", "/").status, 200);
}

#[test]
fn reload_under_load_fails_no_request() {
    let m = mirror();
    let dir = TempDir::new("reload-load");
    let one = config_with(&route("a", "a.test", "/", &[m]));
    let two = config_with(&format!(
        "{}{}",
        route("a", "a.test", "/", &[m]),
        route("b", "b.test", "/x", &[m])
    ));
    let path = dir.write("torii.toml", &one);
    let torii = Torii::run(&path);
    let addr = torii.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        clients.push(std::thread::spawn(move || {
            let mut s = connect(addr);
            let mut buf = Vec::new();
            let started = Instant::now();
            // Bounded in count and time.
            for _ in 0..50_000 {
                if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(20) {
                    break;
                }
                s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    .unwrap();
                match read_response(&mut s, &mut buf, "GET") {
                    Some(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for i in 0..10 {
        dir.write("torii.toml", if i % 2 == 0 { &two } else { &one });
        torii.signal(libc::SIGHUP);
        torii.wait_log("configuration reloaded", Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) > 100, "load actually ran");
    assert_eq!(failed.load(Ordering::Relaxed), 0);
}

/// SIGTERM with a request in flight: the listeners close, the in-flight request completes
/// (with `Connection: close`), the idle keep-alive connection is closed, and the process exits
/// 0 once nothing is in flight, within `drain_timeout` (5 s). Event-driven: the request is
/// known to be in flight because the backend holds it (it said so), and it is released only
/// once the listeners are seen closed.
#[test]
fn sigterm_drains_a_slow_request_and_exits_zero() {
    let backend = held_backend();
    let dir = TempDir::new("drain");
    let path = dir.write(
        "torii.toml",
        &config_with(&route("s", "slow.test", "/", &[backend.addr])),
    );
    let mut torii = Torii::run(&path);
    let addr = torii.addr;

    let mut idle = connect(addr);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut idle, &mut Vec::new(), "GET")
            .unwrap()
            .status,
        200
    );

    let mut busy = connect(addr);
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: slow.test\r\n\r\n")
        .unwrap();
    backend.wait_arrived(Duration::from_secs(10));
    let started = Instant::now();
    torii.signal(libc::SIGTERM);

    // The workers see the drain (they poll every 50 ms) and close their listeners while the
    // request is held: wait for that, bounded by the drain timeout.
    loop {
        match std::net::TcpStream::connect(addr) {
            Err(_) => break,
            Ok(_) => assert!(
                started.elapsed() < Duration::from_secs(4),
                "still accepting {:?} after SIGTERM",
                started.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    backend.release();
    let r = read_response(&mut busy, &mut Vec::new(), "GET").expect("in-flight request completes");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "held");
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "drain announces the close"
    );
    assert!(
        closes_within(&mut idle, Duration::from_secs(3)),
        "idle keep-alive closed by the drain"
    );
    let status = torii
        .wait_exit(Duration::from_secs(6))
        .expect("exits within drain_timeout");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[test]
fn a_second_instance_on_a_served_port_fails_clearly() {
    let m = mirror();
    let dir = TempDir::new("twice");
    let path = dir.write("a.toml", &config_with(&route("a", "a.test", "/", &[m])));
    let first = Torii::run(&path);
    let second_cfg = format!(
        "[gateway]\nworkers = 1\nhttp = [\"{}\"]\n\n{}",
        first.addr,
        route("a", "a.test", "/", &[m])
    );
    let second_path = dir.write("b.toml", &second_cfg);
    let (mut child, lines, _log) = spawn(&["run", "--config", second_path.to_str().unwrap()]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    // The reader thread ends at EOF on stderr: collect every line it saw.
    let log: Vec<String> = lines.iter().collect();
    let log = log.join("\n");
    assert!(log.contains("already in use"), "{log}");
    assert_eq!(
        get(first.addr, "a.test", "/").status,
        200,
        "first instance unaffected"
    );
}

#[test]
fn check_reports_summary_or_every_error_with_its_path() {
    let dir = TempDir::new("check");
    let good = dir.write(
        "good.toml",
        &config_with(&route(
            "a",
            "a.test",
            "/",
            &["127.0.0.1:9".parse().unwrap()],
        )),
    );
    let out = std::process::Command::new(common::process::torii_bin())
        .args(["check", "--config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 route"));

    let bad = dir.write(
        "bad.toml",
        "[gateway]\nworkers = 0\nhttp = [\"127.0.0.1:0\"]\n[limits]\nkeepalive_timeout = \"10\"\n[[routes]]\nid = \"x\"\ndomains = [\"a.test\"]\ntargets = [\"ftp://nope\"]\n",
    );
    let out = std::process::Command::new(common::process::torii_bin())
        .args(["check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "gateway.workers",
        "limits.keepalive_timeout",
        "routes[0].targets[0]",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
}
