//! Operations: the admin listener's `/metrics` after a known sequence of requests (and across
//! reloads), `/ready` flipping to 503 during a drain while systemd hears READY / RELOADING /
//! STOPPING from the real binary, access-log lines that are valid JSON and hold no credential
//! whatever the client sent, and the connections a low open-file limit lets the binary hold.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::held::held_backend;
use common::process::{TempDir, Torii};
use common::seen::seen;
use common::*;
use torii_engine::{config, control};

fn header(workers: usize, extra: &str) -> String {
    format!(
        "[gateway]\nworkers = {workers}\nhttp = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\ndrain_timeout = \"5s\"\n{extra}\n"
    )
}

/// Scrapes `/metrics` into `series → value` (comments skipped).
fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let r = get(admin, "admin", "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// Waits until the series `key` has `want` (metrics are recorded just after the response is
/// written, so a scrape may run a moment ahead of them).
fn wait_metric(admin: SocketAddr, key: &str, want: f64) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(admin);
        if m.get(key) == Some(&want) || Instant::now() > deadline {
            assert_eq!(m.get(key), Some(&want), "{key} in {m:#?}");
            return m;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_after_a_known_sequence_of_requests_survive_reloads() {
    let m = mirror();
    let dead = dead_addr();
    let dir = TempDir::new("metrics");
    let routes = format!(
        "{}{}",
        route("svc", "svc.test", "/", &[m]),
        route("dead", "dead.test", "/", &[dead])
    );
    let path = dir.write("torii.toml", &format!("{}{routes}", header(2, "")));
    let gw = control::start(config::load_file(&path).unwrap()).unwrap();
    let admin = gw.admin_addr.unwrap();
    let addr = gw.addrs[0];

    for _ in 0..3 {
        assert_eq!(get(addr, "svc.test", "/a").status, 200);
    }
    assert_eq!(get(addr, "nothing.test", "/").status, 404);
    assert_eq!(get(addr, "dead.test", "/").status, 502);

    wait_metric(
        admin,
        "torii_requests_total{route=\"svc\",status=\"2xx\",proto=\"http/1.1\"}",
        3.0,
    );
    let got = wait_metric(
        admin,
        "torii_requests_total{route=\"dead\",status=\"5xx\",proto=\"http/1.1\"}",
        1.0,
    );
    let want = [
        (
            "torii_requests_total{route=\"-\",status=\"4xx\",proto=\"http/1.1\"}",
            1.0,
        ),
        (
            "torii_requests_total{route=\"dead\",status=\"5xx\",proto=\"http/1.1\"}",
            1.0,
        ),
        ("torii_upstream_connect_errors_total{route=\"dead\"}", 1.0),
        ("torii_upstream_connect_errors_total{route=\"svc\"}", 0.0),
        ("torii_request_duration_seconds_count{route=\"svc\"}", 3.0),
        (
            "torii_request_duration_seconds_bucket{route=\"svc\",le=\"+Inf\"}",
            3.0,
        ),
        ("torii_config_version", 1.0),
        ("torii_config_reloads_total{result=\"ok\"}", 0.0),
        ("torii_config_reloads_total{result=\"failed\"}", 0.0),
        ("torii_draining", 0.0),
        ("torii_access_log_dropped_total", 0.0),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k), Some(&v), "{k} in {got:#?}");
    }
    assert!(!got
        .keys()
        .any(|k| k.contains("status=\"2xx\"") && k.contains("dead")));
    let requests: f64 = (0..2)
        .map(|w| got[&format!("torii_worker_requests_total{{worker=\"{w}\"}}")])
        .sum();
    assert_eq!(requests, 5.0, "per-worker counts merge to the total");
    let drivers = got
        .keys()
        .filter(|k| k.starts_with("torii_driver_info{"))
        .count();
    assert_eq!(drivers, 2, "one driver line per worker");
    assert!(got.contains_key("torii_active_connections{worker=\"1\"}"));
    assert!(got.contains_key("torii_upstream_idle_connections{worker=\"0\"}"));
    // Buckets are cumulative and end with the count.
    let svc_buckets: Vec<f64> = got
        .iter()
        .filter(|(k, _)| k.starts_with("torii_request_duration_seconds_bucket{route=\"svc\""))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(svc_buckets.len(), 19);
    assert!(svc_buckets.iter().all(|v| *v <= 3.0));

    // A reload keeps the counters of the routes it keeps.
    let more = route("new", "new.test", "/", &[m]);
    dir.write("torii.toml", &format!("{}{routes}{more}", header(2, "")));
    assert!(gw.reload(&path));
    assert_eq!(get(addr, "svc.test", "/").status, 200);
    assert_eq!(get(addr, "new.test", "/").status, 200);
    let got = wait_metric(
        admin,
        "torii_requests_total{route=\"svc\",status=\"2xx\",proto=\"http/1.1\"}",
        4.0,
    );
    assert_eq!(got["torii_config_version"], 2.0);
    assert_eq!(got["torii_config_reloads_total{result=\"ok\"}"], 1.0);
    wait_metric(
        admin,
        "torii_requests_total{route=\"new\",status=\"2xx\",proto=\"http/1.1\"}",
        1.0,
    );

    // A rejected reload is counted and changes nothing else.
    dir.write("torii.toml", "[gateway]\nworkerz = 2\n");
    assert!(!gw.reload(&path));
    let got = scrape(admin);
    assert_eq!(got["torii_config_reloads_total{result=\"failed\"}"], 1.0);
    assert_eq!(got["torii_config_version"], 2.0);

    // The other endpoints.
    assert_eq!(get(admin, "admin", "/health").status, 200);
    assert_eq!(get(admin, "admin", "/ready").status, 200);
    assert_eq!(get(admin, "admin", "/nope").status, 404);
    let r = request(
        admin,
        "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    gw.drain(Duration::from_secs(2));
}

#[test]
fn challenge_failures_are_counted_by_route_and_reason() {
    use torii_engine::mirror::secured::{ChallengeMode, Misbehave};
    let secret = "0123456789abcdef0123456789abcdef0123456789";
    let backend = secured_mirror(ChallengeMode::V1, secret, Misbehave::WrongState);
    let toml = format!(
        "{}{}[routes.challenge]\nversion = \"v1\"\n",
        header(1, ""),
        route("sec", "sec.test", "/", &[backend])
    );
    let gw = control::start(config::load_str(&toml, Path::new(".")).unwrap()).unwrap();
    let admin = gw.admin_addr.unwrap();
    assert_eq!(get(gw.addrs[0], "sec.test", "/").status, 502);
    assert_eq!(get(gw.addrs[0], "sec.test", "/").status, 502);
    let got = wait_metric(
        admin,
        "torii_requests_total{route=\"sec\",status=\"5xx\",proto=\"http/1.1\"}",
        2.0,
    );
    let failures: Vec<(&String, &f64)> = got
        .iter()
        .filter(|(k, _)| k.starts_with("torii_challenge_failures_total{route=\"sec\""))
        .collect();
    assert_eq!(failures.len(), 1, "one reason: {failures:?}");
    assert_eq!(*failures[0].1, 2.0);
    gw.drain(Duration::from_secs(2));
}

fn recv_notify(sock: &UnixDatagram, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    loop {
        assert!(Instant::now() < deadline, "no {want} from the gateway");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    }
}

#[test]
fn ready_flips_to_503_during_drain_and_systemd_hears_every_phase() {
    let slow = held_backend();
    let dir = TempDir::new("sdnotify");
    let sock_path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let path = dir.write(
        "torii.toml",
        &format!(
            "{}{}",
            header(2, ""),
            route("s", "slow.test", "/", &[slow.addr])
        ),
    );
    let mut torii = Torii::run_env(&path, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())]);
    let line = torii.wait_log("admin endpoint up", Duration::from_secs(10));
    let admin: SocketAddr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    recv_notify(&sock, "READY=1");
    assert_eq!(get(admin, "admin", "/ready").status, 200);
    assert_eq!(get(admin, "admin", "/health").status, 200);

    torii.signal(libc::SIGHUP);
    let reloading = recv_notify(&sock, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = recv_notify(&sock, "READY=1");
    assert!(ready.contains("config version 2"), "{ready}");

    // In flight for as long as the test needs: the backend holds it until released.
    let mut busy = connect(torii.addr);
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: slow.test\r\n\r\n")
        .unwrap();
    slow.wait_arrived(Duration::from_secs(10));
    torii.signal(libc::SIGTERM);
    recv_notify(&sock, "STOPPING=1");
    let r = get(admin, "admin", "/ready");
    assert_eq!(r.status, 503, "not ready while draining: {}", r.text());
    assert_eq!(r.text(), "draining\n");
    assert_eq!(get(admin, "admin", "/health").status, 200, "still live");
    let m = scrape(admin);
    assert_eq!(m["torii_draining"], 1.0);
    slow.release();
    let r = read_response(&mut busy, &mut Vec::new(), "GET").expect("in-flight request completes");
    assert_eq!(r.status, 200);
    let status = torii.wait_exit(Duration::from_secs(8)).expect("exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn access_log_lines_are_json_and_hold_no_credentials() {
    let m = mirror();
    let dir = TempDir::new("accesslog");
    let path = dir.write(
        "torii.toml",
        &format!(
            "{}{}",
            header(
                1,
                "\n[access_log]\npath = \"access.log\"\nformat = \"json\"\n"
            ),
            route("svc", "svc.test", "/", &[m])
        ),
    );
    let gw = control::start(config::load_file(&path).unwrap()).unwrap();
    let addr = gw.addrs[0];
    let r = request(
        addr,
        "GET /a/b?access_token=SECRET-Q1&bearer_auth=SECRET-Q2&x=1 HTTP/1.1\r\nHost: svc.test\r\n\
         Authorization: Bearer SECRET-H1\r\nOtoroshi-Client-Id: id\r\n\
         Otoroshi-Client-Secret: SECRET-H2\r\nOtoroshi-Authorization: Basic U0VDUkVULUgz\r\n\
         Cookie: access_token=SECRET-H4\r\nX-Api-Key: SECRET-H5\r\n\
         Otoroshi-Request-Id: SPOOFED-ID\r\n\r\n",
    );
    let backend_id = seen(&r).one("otoroshi-request-id").unwrap().to_owned();
    assert_eq!(
        backend_id.len(),
        36,
        "a UUID, not the client's: {backend_id}"
    );
    let r = request(
        addr,
        "POST /form?client_secret=SECRET-Q3 HTTP/1.1\r\nHost: svc.test\r\n\
         Authorization: Basic U0VDUkVULUg2\r\nContent-Length: 20\r\n\r\nsecret=SECRET-BODY-1",
    );
    assert_eq!(r.status, 200);
    let r = request(
        addr,
        "GET /x?apikey=SECRET-Q4 HTTP/1.1\r\nHost: unknown.test\r\nAuthorization: Bearer SECRET-H7\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    // A head refused before parsing (a space before the colon) still gets its line, without
    // any of its bytes.
    let r = request(
        addr,
        "GET /bad?access_token=SECRET-Q5 HTTP/1.1\r\nHost : svc.test\r\n\r\n",
    );
    assert_eq!(r.status, 400);

    let log_path = dir.0.join("access.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.lines().count() >= 4 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!text.contains("SECRET"), "a credential leaked: {text}");
    assert!(
        !text.contains("SPOOFED"),
        "the client's request id is not trusted: {text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let (a, b, c, d) = (&lines[0], &lines[1], &lines[2], &lines[3]);
    assert_eq!(
        a["request_id"],
        backend_id.as_str(),
        "the backend saw the logged id"
    );
    assert_eq!(a["method"], "GET");
    assert_eq!(a["host"], "svc.test");
    assert_eq!(a["path"], "/a/b");
    assert_eq!(a["route"], "svc");
    assert_eq!(a["status"], 200);
    assert_eq!(a["upstream"], m.to_string());
    assert_eq!(a["client"], "127.0.0.1");
    assert!(a["duration_ms"].as_f64().unwrap() >= a["upstream_ms"].as_f64().unwrap());
    assert!(a["bytes_in"].as_u64().unwrap() > 100);
    assert!(a["bytes_out"].as_u64().unwrap() > 100);
    assert_eq!(b["method"], "POST");
    assert_eq!(b["path"], "/form");
    assert_eq!(b["status"], 200);
    assert!(b["bytes_in"].as_u64().unwrap() >= 20 + 60);
    assert_eq!(
        a["reason"],
        serde_json::Value::Null,
        "answered by the backend"
    );
    assert_eq!(c["status"], 404);
    assert_eq!(c["reason"], "route.not_found");
    assert_eq!(c["route"], serde_json::Value::Null);
    assert_eq!(c["upstream"], serde_json::Value::Null);
    assert_eq!(d["status"], 400);
    assert_eq!(d["reason"], "head.invalid");
    assert_eq!(d["method"], "");
    assert_eq!(d["path"], "");
    assert_eq!(d["route"], serde_json::Value::Null);
    assert!(d["bytes_in"].as_u64().unwrap() > 0);
    let ids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "one id per request");
    gw.drain(Duration::from_secs(2));
}

/// Under a hard open-file limit below the configuration's need, the real binary says once, at
/// `info` (a user cannot raise a hard limit from their shell), how many connections each worker
/// holds and how to raise the limit; and it holds no more: a client past the cap waits in the
/// listen backlog until a connection ends, instead of being accepted without the descriptor for
/// its upstream connection.
#[test]
fn a_low_open_file_limit_caps_the_connections_and_says_so_once() {
    let m = mirror();
    let dir = TempDir::new("nofile");
    let path = dir.write(
        "torii.toml",
        &format!("{}{}", header(1, ""), route("a", "a.test", "/", &[m])),
    );
    // Needed: 1 x (2 x 10000 + 1 listener + 4) + 64 = 20069; 75 descriptors hold
    // (75 - 64 - 1 - 4) / 2 = 3 client connections with their upstream ones.
    let torii = Torii::run_limited(&path, &[], Some(75));
    let said: Vec<String> = torii
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("open-file limit"))
        .cloned()
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    let line = &said[0];
    assert!(line.contains(" INFO "), "{line}");
    for part in [
        "open-file limit (RLIMIT_NOFILE) 75 is the hard limit: each worker holds at most 3 client connections, 3 in all (max_connections_per_worker is 10000; 20069 descriptors would hold them all)",
        "LimitNOFILE=",
        "`ulimit -Hn 20069` as root",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }

    let ask = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let mut held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut s = connect(torii.addr);
            s.write_all(ask).unwrap();
            let r = read_response(&mut s, &mut Vec::new(), "GET").unwrap();
            assert_eq!(r.status, 200);
            s
        })
        .collect();
    let mut fourth = connect(torii.addr);
    fourth.write_all(ask).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = Vec::new();
    assert!(
        !fill(&mut fourth, &mut buf) && buf.is_empty(),
        "a fourth connection was served: {}",
        String::from_utf8_lossy(&buf)
    );
    drop(held.pop());
    fourth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let r = read_response(&mut fourth, &mut buf, "GET").unwrap();
    assert_eq!(r.status, 200, "served once a connection ended");
}

#[test]
fn the_systemd_unit_is_notify_reloads_with_sighup_and_sets_limits() {
    use clap::Parser;
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/torii.service"
    ))
    .unwrap();
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(values("Type"), ["notify"]);
    assert!(values("ExecReload").contains(&"/bin/kill -HUP $MAINPID".to_owned()));
    let nofile: u64 = values("LimitNOFILE")[0].parse().unwrap();
    assert!(nofile >= 65_536);
    // The commands the unit runs are ones the binary accepts.
    for cmd in values("ExecStart")
        .iter()
        .chain(&values("ExecStartPre"))
        .chain(values("ExecReload").iter().filter(|c| c.contains("torii")))
    {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        assert!(args[0].ends_with("/torii"), "{cmd}");
        torii_engine::cli::Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
}
