//! `torii demo` as a user runs it: the real binary on 127.0.0.1:0, its printed walk-through,
//! and every route it advertises answering as described.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::seen::seen;
use common::*;

/// Replays the printed API-key and client-credentials commands (same hosts, paths, headers
/// and bodies as the curl lines) with the demo key's secret read from the walk-through.
fn api_key_and_token_flow(addr: SocketAddr, text: &str) {
    let secret = text
        .split("Otoroshi-Client-Secret: ")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("the walk-through prints the demo key's secret")
        .to_owned();
    assert!(text.contains("curl -si -H 'Host: api.oto.tools'"), "{text}");
    assert!(
        text.contains("/.well-known/otoroshi/oauth/token/introspect"),
        "{text}"
    );
    let r = get(addr, "api.oto.tools", "/hello");
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), r#"{"Otoroshi-Error":"No ApiKey provided"}"#);
    let r = request(
        addr,
        &format!(
            "GET /hello HTTP/1.1\r\nHost: api.oto.tools\r\nOtoroshi-Client-Id: demo-client\r\n\
             Otoroshi-Client-Secret: {secret}\r\n\r\n"
        ),
    );
    assert!(!seen(&r).has("otoroshi-client-secret"));
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"demo-client","client_secret":"{secret}"}}"#
    );
    let r = request(
        addr,
        &format!(
            "POST /.well-known/otoroshi/oauth/token HTTP/1.1\r\nHost: oauth.oto.tools\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = request(
        addr,
        &format!(
            "GET /hello HTTP/1.1\r\nHost: api.oto.tools\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
    );
    assert!(!seen(&r).has("authorization"));
    let jwks = get(
        addr,
        "oauth.oto.tools",
        "/.well-known/otoroshi/oauth/jwks.json",
    );
    assert_eq!(jwks.json()["keys"][0]["alg"], "ES256");
    // The quota walk-through: three calls pass with the remaining calls, the fourth is 429.
    assert!(text.contains("Host: limited.oto.tools"), "{text}");
    let limited = |addr| {
        request(
            addr,
            &format!(
                "GET /hello HTTP/1.1\r\nHost: limited.oto.tools\r\nOtoroshi-Client-Id: limited-client\r\n\
                 Otoroshi-Client-Secret: {secret}\r\n\r\n"
            ),
        )
    };
    // The throttling window is aligned on the clock (10 s): start well inside one.
    let in_window = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 10_000
    };
    while in_window() > 8_000 {
        std::thread::sleep(Duration::from_millis(50));
    }
    for left in ["2", "1", "0"] {
        let r = limited(addr);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("ratelimit-remaining"), Some(left));
        assert!(r.header("otoroshi-daily-calls-remaining").is_some());
    }
    let r = limited(addr);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
}

#[test]
fn demo_routes_answer_as_printed() {
    let mut child = Command::new(common::process::torii_bin())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut printed = Vec::new();
    let addr: SocketAddr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("demo prints its address");
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("Torii demo is running on http://") {
            break rest.trim().parse().unwrap();
        }
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        printed.push(line);
    }
    let text = printed.join("\n");
    assert!(text.contains("curl -s -H 'Host: v2.oto.tools'"), "{text}");

    let plain = get(addr, "plain.oto.tools", "/hello");
    assert_eq!(seen(&plain)["path"], "/hello");
    let v1 = get(addr, "v1.oto.tools", "/hello");
    assert_eq!(v1.status, 200);
    assert_eq!(seen(&v1)["challengeVersion"], "V1");
    let v2 = get(addr, "v2.oto.tools", "/hello");
    assert_eq!(v2.status, 200);
    let v2 = seen(&v2);
    assert_eq!(v2["challengeVersion"], "V2");
    assert_eq!(v2["token"]["aud"], "v2-service");
    assert_eq!(get(addr, "v2.oto.tools", "/health").status, 200);
    let bad = get(addr, "unsecured.oto.tools", "/hello");
    assert_eq!(bad.status, 502);
    assert_eq!(bad.header("otoroshi-error"), Some("true"));
    assert_eq!(get(addr, "nowhere.oto.tools", "/").status, 404);
    websocket_line(addr, &text);
    api_key_and_token_flow(addr, &text);

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "demo exits on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

/// The walk-through's WebSocket line, run as printed (curl, which the tests and the tutorials
/// use already; no WebSocket client the project does not install): a 101 with the accept value
/// of the RFC's example key, through the V2 route. Then the same handshake by hand and an
/// echoed frame.
fn websocket_line(addr: SocketAddr, text: &str) {
    assert!(!text.contains("websocat"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("-H 'Upgrade: websocket'"))
        .unwrap_or_else(|| panic!("no WebSocket line: {text}"));
    assert!(
        line.starts_with("curl ") && line.contains("--max-time 2"),
        "{line}"
    );
    if Command::new("curl").arg("--version").output().is_ok() {
        let started = Instant::now();
        let out = Command::new("sh").args(["-c", line]).output().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(shown.starts_with("http/1.1 101 "), "{line}: {shown}");
        assert!(
            shown.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{shown}"
        );
        // curl holds the upgraded connection until --max-time (exit 28), then stops.
        assert_eq!(out.status.code(), Some(28), "{line}");
        assert!(started.elapsed() < Duration::from_secs(10));
    } else {
        common::prereq::missing("curl", "curl is not installed (the demo prints curl lines)");
    }
    let mut s = common::connect(addr);
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: v2.oto.tools\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .unwrap();
    // A masked text frame "hi".
    s.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2])
        .unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        assert!(common::fill(&mut s, &mut buf), "no 101: {buf:?}");
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    assert!(!head.contains("otoroshi-state-resp"), "{head}");
    while buf.len() < head_end + 4 {
        assert!(common::fill(&mut s, &mut buf), "no echo");
    }
    assert_eq!(&buf[head_end..head_end + 4], &[0x81, 2, b'h', b'i']);
}

/// Runs `torii args…` until `ready` appears on stdout or stderr, then 300 ms more, and returns
/// its stderr lines; the process is killed afterwards.
fn start_up_log(args: &[&str], ready: &str) -> Vec<String> {
    let mut child = Command::new(common::process::torii_bin())
        .args(args)
        .env("TORII_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((false, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send((true, line));
        }
    });
    let mut stderr = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (is_err, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no {ready:?} from torii {args:?}: {stderr:#?}"));
        let done = line.contains(ready);
        if is_err {
            stderr.push(line);
        }
        if done {
            break;
        }
    }
    while let Ok((is_err, line)) = rx.recv_timeout(Duration::from_millis(300)) {
        if is_err {
            stderr.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    stderr
}

fn warnings(stderr: &[String]) -> Vec<&String> {
    stderr
        .iter()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

#[test]
fn the_demo_and_the_mirror_start_without_a_warning() {
    let demo = start_up_log(
        &["demo", "--listen", "127.0.0.1:0"],
        "Torii demo is running",
    );
    assert!(
        demo.iter().any(|l| l.contains("listening")),
        "the demo logs at info: {demo:#?}"
    );
    // The gateway's worker and the three mirrors' each say which they are.
    let started: Vec<&String> = demo
        .iter()
        .filter(|l| l.contains("worker started"))
        .collect();
    let of = |c: &str| {
        started
            .iter()
            .filter(|l| l.contains(&format!(" component=\"{c}\" ")))
            .count()
    };
    assert_eq!(
        (of("gateway"), of("mirror"), started.len()),
        (1, 3, 4),
        "{started:#?}"
    );
    let mirrors: Vec<&String> = demo
        .iter()
        .filter(|l| l.contains("mirror listening"))
        .collect();
    for challenge in ["v1", "v2", "none"] {
        let n = mirrors
            .iter()
            .filter(|l| l.ends_with(&format!(" challenge=\"{challenge}\"")))
            .count();
        assert_eq!(n, 1, "{challenge}: {mirrors:#?}");
    }
    assert_eq!(warnings(&demo), Vec::<&String>::new(), "{demo:#?}");
    for args in [
        &["mirror", "--listen", "127.0.0.1:0"][..],
        &["mirror", "--listen", "127.0.0.1:0", "--challenge", "v1"][..],
    ] {
        let log = start_up_log(args, "worker started");
        assert_eq!(warnings(&log), Vec::<&String>::new(), "{args:?}: {log:#?}");
    }
    // A short secret that is given and used is still worth a warning.
    let short = start_up_log(
        &[
            "mirror",
            "--listen",
            "127.0.0.1:0",
            "--challenge",
            "v2",
            "--secret",
            "short",
        ],
        "worker started",
    );
    let w = warnings(&short);
    assert_eq!(w.len(), 1, "{short:#?}");
    assert!(
        w[0].contains("mirror secret shorter than 32 bytes"),
        "{w:?}"
    );
}
