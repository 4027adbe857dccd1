//! A real `redis-server` per test (the Debian package; `.ci/test` installs it when missing):
//! started on a free loopback port with `--save '' --appendonly no`, waited for until it
//! answers, and killed by its PID when the guard drops (also when the test fails).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port: bound once with port 0, then released for the server to take.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running redis-server, killed on drop.
pub struct RedisServer {
    child: Child,
    /// The port it listens on (plain, or TLS for [`RedisServer::start_tls`]).
    pub port: u16,
    /// Its working directory (empty: nothing to load at start), removed on drop.
    _dir: super::process::TempDir,
}

impl RedisServer {
    /// A plain server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A plain server on `port` (to restart one where a client expects it).
    pub fn start_on(port: u16) -> Self {
        let p = port.to_string();
        let s = Self::spawn(port, &["--port", &p]);
        s.wait_for_pong();
        s
    }

    /// A TLS-only server on a free port with certificate files from `dir` and a password.
    pub fn start_tls(cert: &Path, key: &Path, ca: &Path, password: &str) -> Self {
        let port = free_port();
        let p = port.to_string();
        let s = Self::spawn(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &p,
                "--tls-cert-file",
                cert.to_str().unwrap(),
                "--tls-key-file",
                key.to_str().unwrap(),
                "--tls-ca-cert-file",
                ca.to_str().unwrap(),
                "--tls-auth-clients",
                "no",
                "--requirepass",
                password,
            ],
        );
        s.wait_for_listen();
        s
    }

    fn spawn(port: u16, args: &[&str]) -> Self {
        let dir = super::process::TempDir::new("redis");
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install the Debian package redis-server \
                     (.ci/test does it when it is missing)"
                )
            });
        RedisServer {
            child,
            port,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn wait_for_listen(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_pong(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(self.addr()) {
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() {
                    if let Ok(n) = s.read(&mut buf) {
                        if buf[..n].starts_with(b"+PONG") {
                            return;
                        }
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A direct connection for assertions.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap()
    }

    /// Kills the server (SIGKILL by PID) and waits for it: as abrupt as a crash.
    pub fn kill(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Polls `f` every 20 ms until it is true or `within` passed; returns whether it became true.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
