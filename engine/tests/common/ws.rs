//! The WebSocket peers of the tunnel tests: `tests/websocket/ws_peer.py`, a client and a server
//! on Python's `websockets` package (and PyJWT), run as child processes. Python's `websockets`
//! is required (`.ci/test` installs it): without it these helpers fail, never skip.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::Value;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/websocket/ws_peer.py")
}

/// Fails the test unless the tests' interpreter ([`super::python::python`]) can import
/// `websockets` and PyJWT; returns it.
pub fn require_websockets() -> String {
    super::python::require_imports(
        "import websockets, jwt",
        "websockets 'pyjwt[crypto]'",
        "the WebSocket tests",
    )
}

/// A child process speaking JSON lines on stdout; killed on drop.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let py = require_websockets();
        let mut child = Command::new(py)
            .arg(script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            stdin,
            lines: rx,
        }
    }

    /// The next stdout line, within `within`.
    pub fn line(&self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no line from the Python peer within {within:?}: {e}"))
    }

    /// The next stdout line as JSON.
    pub fn json(&self, within: Duration) -> Value {
        let line = self.line(within);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Writes a command line to the peer's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the peer to exit; fails unless it exits 0 within `within`.
    pub fn finish(mut self, within: Duration) {
        self.stdin.take();
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "Python peer failed: {status}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Python peer still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `ws_peer.py server` (its stdin is kept open: it exits when the test drops it).
pub struct WsServer {
    pub peer: Peer,
    pub addr: SocketAddr,
}

/// Starts `ws_peer.py server` with `args` and waits for its port.
pub fn ws_server(args: &[&str]) -> WsServer {
    let mut all = vec!["server"];
    all.extend_from_slice(args);
    let peer = Peer::spawn(&all);
    let line = peer.line(Duration::from_secs(20));
    let port: u16 = line
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("server did not start: {line}"))
        .trim()
        .parse()
        .unwrap();
    WsServer {
        peer,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Starts `ws_peer.py client --url url --scenario scenario` with `args`.
pub fn ws_client(url: &str, scenario: &str, args: &[&str]) -> Peer {
    let mut all = vec!["client", "--url", url, "--scenario", scenario];
    all.extend_from_slice(args);
    Peer::spawn(&all)
}

/// Runs a client scenario to its end and returns its single JSON result.
pub fn ws_run(url: &str, scenario: &str, args: &[&str]) -> Value {
    let peer = ws_client(url, scenario, args);
    let v = peer.json(Duration::from_secs(60));
    peer.finish(Duration::from_secs(30));
    v
}

/// The value of header `name` in a `[[name, value], …]` list (case-insensitive), all of them.
pub fn header_values<'a>(list: &'a Value, name: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|p| p[1].as_str().unwrap())
        .collect()
}
