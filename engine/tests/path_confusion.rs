//! The gateway and the backend must agree on the path: every vector of the dot-segment
//! API-key bypass, end to end, against a backend from another ecosystem that resolves dot
//! segments and percent-encodings itself (Python's `http.server`, a real process on a free
//! loopback port). A public route `/public` and a protected route `/private` (API key) on one
//! host: no vector may read `/private/secret.txt` without the key.
//!
//! Also the per-route `path_normalization` modes (against the mirror, which reports the path it
//! received) and the 400 for each ambiguous form.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::TempDir;
use common::*;

const SECRET: &str = "the private file: only for API-key holders";
const PUBLIC: &str = "a public file";

/// Python's `http.server` serving a directory, stopped by PID on drop.
struct FileServer {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `python3 -m http.server` on a free loopback port over a tree with `public/` and
/// `private/secret.txt`, and waits until it answers.
fn file_server() -> FileServer {
    let dir = TempDir::new("fileserver");
    std::fs::create_dir_all(dir.0.join("public")).unwrap();
    std::fs::create_dir_all(dir.0.join("private")).unwrap();
    std::fs::write(dir.0.join("public/hello.txt"), PUBLIC).unwrap();
    std::fs::write(dir.0.join("private/secret.txt"), SECRET).unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let python = std::env::var("TORII_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let child = Command::new(python)
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is required for this test (.ci/test installs it)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "python http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    FileServer {
        child,
        addr,
        _dir: dir,
    }
}

/// Sends `GET {target}` exactly as written (curl's `--path-as-is`) and returns status and body.
fn raw_get(addr: SocketAddr, host: &str, target: &str, extra: &str) -> (u16, String) {
    let mut s = connect(addr);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, "GET").expect("a response");
    (r.status, r.text())
}

fn gateway_for(backend: SocketAddr) -> torii_engine::control::Gateway {
    let cfg = format!(
        r#"{header}
[[apikeys]]
client_id = "fs-client"
client_secret = "fs-secret-value"
routes = ["private"]

[[routes]]
id = "public"
domains = ["fs.test"]
paths = ["/public"]
targets = ["http://{backend}"]

[[routes]]
id = "private"
domains = ["fs.test"]
paths = ["/private"]
targets = ["http://{backend}"]
[routes.apikeys]
"#,
        header = gateway_header(""),
    );
    gateway(&cfg)
}

#[test]
fn the_backend_really_resolves_dot_segments() {
    // Without the gateway, the backend serves the private file for the bypass vectors: the
    // tests below would fail against a gateway that forwarded them unchanged.
    let fs = file_server();
    for target in [
        "/public/../private/secret.txt",
        "/public/%2e%2e/private/secret.txt",
        "/public/..%2fprivate/secret.txt",
        "/public/%2E%2E%2Fprivate%2Fsecret.txt",
    ] {
        let (status, body) = raw_get(fs.addr, "fs.test", target, "");
        assert_eq!((status, body.as_str()), (200, SECRET), "{target}");
    }
}

#[test]
fn no_vector_reaches_the_private_file_without_a_key() {
    let fs = file_server();
    let gw = gateway_for(fs.addr);
    let addr = gw.addrs[0];
    // The public route works, the private one asks for a key.
    assert_eq!(
        raw_get(addr, "fs.test", "/public/hello.txt", ""),
        (200, PUBLIC.to_owned())
    );
    assert_eq!(raw_get(addr, "fs.test", "/private/secret.txt", "").0, 401);
    // Resolved to /private/…: routed there, so the key is asked for.
    for target in [
        "/public/../private/secret.txt",
        "/public/%2e%2e/private/secret.txt",
        "/public/%2E%2E/private/secret.txt",
        "/public/.%2E/private/secret.txt",
        "/public/./../private/secret.txt",
        "/%70rivate/secret.txt",
        "/public//../private/secret.txt",
        "/private;x/secret.txt",
        "/private;jsessionid=1",
    ] {
        let (status, body) = raw_get(addr, "fs.test", target, "");
        assert_eq!(status, 401, "{target}: {body}");
        assert!(!body.contains(SECRET), "{target}");
    }
    // No single meaning across backends: refused before routing.
    for target in [
        "/public/..%2fprivate/secret.txt",
        "/public/%2E%2E%2Fprivate%2Fsecret.txt",
        "/public/..;/private/secret.txt",
        "/public/.;/../private/secret.txt",
        "/public\\..\\private\\secret.txt",
        "/public/%5c..%5cprivate%5csecret.txt",
        "/public/%00/../private/secret.txt",
        "/public/%zz",
        "/public/../../private/secret.txt",
        "/..",
    ] {
        let (status, body) = raw_get(addr, "fs.test", target, "");
        assert_eq!(status, 400, "{target}: {body}");
        assert!(!body.contains(SECRET), "{target}");
    }
}

#[test]
fn with_the_key_the_backend_serves_the_canonical_path() {
    let fs = file_server();
    let gw = gateway_for(fs.addr);
    let addr = gw.addrs[0];
    let key = "Otoroshi-Client-Id: fs-client\r\nOtoroshi-Client-Secret: fs-secret-value\r\n";
    for target in [
        "/private/secret.txt",
        "/public/../private/secret.txt",
        "/%70rivate/./secret.txt",
        "/private//secret.txt",
    ] {
        assert_eq!(
            raw_get(addr, "fs.test", target, key),
            (200, SECRET.to_owned()),
            "{target}"
        );
    }
    // The public route never serves the private file, key or not.
    let (status, _) = raw_get(addr, "fs.test", "/public/../private/secret.txt", "");
    assert_eq!(status, 401);
}

#[test]
fn the_backend_receives_the_canonical_path_and_the_query_untouched() {
    let rec = recorder::recorder();
    let cfg = format!(
        "{}{}",
        gateway_header(""),
        route("r", "r.test", "/", &[rec.addr])
    );
    let gw = gateway(&cfg);
    let mut s = connect(gw.addrs[0]);
    s.write_all(b"GET /a/./b/../%63%2d%7e/x%3a?q=/../%2e&k=%41 HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        rec.received(Duration::from_secs(5)),
        recorder::Received::One("/a/c-~/x%3A?q=/../%2e&k=%41".to_owned())
    );
}

#[test]
fn path_normalization_modes() {
    let m = mirror();
    let cfg = format!(
        r#"{header}
[[routes]]
id = "canonical"
domains = ["canonical.test"]
targets = ["http://{m}"]

[[routes]]
id = "strict"
domains = ["strict.test"]
path_normalization = "refuse_ambiguous"
targets = ["http://{m}"]

[[routes]]
id = "raw"
domains = ["raw.test"]
path_normalization = "forward_raw"
targets = ["http://{m}"]
"#,
        header = gateway_header(""),
    );
    let gw = gateway(&cfg);
    let addr = gw.addrs[0];
    let path_seen = |host: &str, target: &str| {
        let (status, body) = raw_get(addr, host, target, "");
        assert_eq!(status, 200, "{host}{target}: {body}");
        let j: serde_json::Value = serde_json::from_str(&body).unwrap();
        j["path"].as_str().unwrap().to_owned()
    };
    assert_eq!(path_seen("canonical.test", "/x/../y//z/%7e"), "/y/z/~");
    assert_eq!(path_seen("strict.test", "/y/z/~"), "/y/z/~");
    assert_eq!(raw_get(addr, "strict.test", "/x/../y", "").0, 400);
    assert_eq!(raw_get(addr, "strict.test", "/%7e", "").0, 400);
    assert_eq!(path_seen("raw.test", "/x/../y//z/%7e"), "/x/../y//z/%7e");
    // Ambiguous forms are refused whatever the mode.
    for host in ["canonical.test", "strict.test", "raw.test"] {
        assert_eq!(raw_get(addr, host, "/a%2fb", "").0, 400, "{host}");
        assert_eq!(raw_get(addr, host, "/..", "").0, 400, "{host}");
    }
}
