//! gRPC peers for the integration tests, on grpcio (`tests/grpc/grpc_peer.py`, and the example
//! backend `examples/grpc/challenge_backend.py`): a backend process that prints its port and
//! serves until its stdin closes (killed on drop), and one client scenario run through a
//! gateway, its JSON report parsed.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::python::require_imports;

/// `tests/grpc/grpc_peer.py`.
pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/grpc/grpc_peer.py")
}

/// `examples/grpc/challenge_backend.py`.
pub fn example_backend() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/grpc/challenge_backend.py")
}

/// Fails the test unless grpcio imports; the interpreter.
pub fn require_grpcio() -> String {
    require_imports("import grpc", "grpcio", "the gRPC tests")
}

/// A gRPC backend process; stdin closed, then killed, on drop.
pub struct Backend {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Backend {
    /// `grpc_peer.py server` with `args` (`--tls CERT KEY`, `--max-streams N`).
    pub fn start(args: &[&str]) -> Backend {
        let mut all = vec!["server"];
        all.extend_from_slice(args);
        Backend::script(peer_script(), &all)
    }

    /// Runs `script` with `args`; waits for its `{"port": N}` line.
    pub fn script(script: PathBuf, args: &[&str]) -> Backend {
        let py = require_grpcio();
        let mut child = Command::new(py)
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the grpcio server did not start within 20 s");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{e}: the backend printed {line:?}"));
        let port = v["port"].as_u64().unwrap() as u16;
        Backend { child, port }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Writes `line` (and a newline) to its stdin.
    pub fn tell(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Whether the process ended (with its exit code).
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .unwrap()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// What the backend noticed (`Events`, asked directly over h2c).
    pub fn events(&self) -> serde_json::Value {
        let r = call(self.addr(), "backend", "events", &[]);
        r["events"].clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one client scenario through `addr` with `:authority` `authority`; `args`: metadata
/// `key=value`, `--tls-ca=PEM`, `--tls-name=NAME`. Its JSON report.
pub fn call(addr: SocketAddr, authority: &str, scenario: &str, args: &[&str]) -> serde_json::Value {
    let py = require_grpcio();
    let out = Command::new("timeout")
        .args(["60", &py])
        .arg(peer_script())
        .args(["client", &addr.to_string(), authority, scenario])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client {scenario} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `authorization=Basic …` metadata for `id:secret`.
pub fn basic_md(id: &str, secret: &str) -> String {
    format!(
        "authorization=Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{id}:{secret}")
        )
    )
}

/// Runs `grpc_peer.py raw ADDR AUTHORITY CASE` (a call written with the `h2` package); its
/// JSON report.
pub fn raw(addr: SocketAddr, authority: &str, case: &str) -> serde_json::Value {
    let py = require_imports("import grpc, h2", "grpcio h2", "the gRPC tests");
    let out = Command::new("timeout")
        .args(["30", &py])
        .arg(peer_script())
        .args(["raw", &addr.to_string(), authority, case])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "raw {case} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}
