//! Shared helpers for the engine's integration tests: in-process gateways and mirrors on
//! 127.0.0.1:0, scripted raw TCP backends, and a minimal blocking HTTP/1.1 client.
#![allow(dead_code, clippy::unwrap_used)]

pub mod auth;
pub mod counting;
pub mod grpc;
pub mod held;
pub mod jwks_server;
pub mod prereq;
pub mod process;
pub mod python;
pub mod recorder;
pub mod redis_server;
pub mod scripted;
pub mod seen;
pub mod tls;
pub mod ws;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use torii_engine::config;
use torii_engine::control::{self, Gateway};
use torii_engine::mirror::{self, MirrorOptions};

/// Starts an in-process mirror with one worker.
pub fn mirror() -> SocketAddr {
    mirror::start(MirrorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        security: None,
        fixed_body: None,
    })
    .unwrap()
    .addr
}

/// Starts an in-process secured mirror answering the exchange protocol with `secret`.
pub fn secured_mirror(
    challenge: torii_engine::mirror::secured::ChallengeMode,
    secret: &str,
    misbehave: torii_engine::mirror::secured::Misbehave,
) -> SocketAddr {
    mirror::start(MirrorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        security: Some(torii_engine::mirror::secured::MirrorSecurity {
            challenge: Some(challenge),
            secret: secret.as_bytes().to_vec(),
            claim_secret: Some(secret.as_bytes().to_vec()),
            misbehave,
        }),
        fixed_body: None,
    })
    .unwrap()
    .addr
}

/// Default `[gateway]` + `[limits]` block for tests (one worker, loopback, port 0).
pub fn gateway_header(limits: &str) -> String {
    format!(
        "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\ndrain_timeout = \"2s\"\n\n[limits]\n{limits}\n"
    )
}

/// A route block to `targets`.
pub fn route(id: &str, domain: &str, path: &str, targets: &[SocketAddr]) -> String {
    let t: Vec<String> = targets.iter().map(|a| format!("\"http://{a}\"")).collect();
    format!(
        "[[routes]]\nid = \"{id}\"\ndomains = [\"{domain}\"]\npaths = [\"{path}\"]\ntargets = [{}]\n",
        t.join(", ")
    )
}

/// Starts an in-process gateway on `toml`.
pub fn gateway(toml: &str) -> Gateway {
    let cfg = config::load_str(toml, Path::new("."))
        .unwrap_or_else(|e| panic!("bad test config: {e}\n{toml}"));
    control::start(cfg).unwrap()
}

/// Connects to `addr` with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Reads one response from `s` (after a request with `method`). `None` on EOF before a head.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, method: &str) -> Option<Response> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = resp.parse(buf) {
            let status = resp.code.unwrap();
            let hs: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            buf.drain(..n);
            if (100..200).contains(&status) {
                continue;
            }
            let mut r = Response {
                status,
                headers: hs,
                body: Vec::new(),
            };
            let no_body = method == "HEAD" || status == 204 || status == 304;
            if no_body {
                return Some(r);
            }
            if let Some(cl) = r.header("content-length") {
                let cl: usize = cl.trim().parse().unwrap();
                while buf.len() < cl {
                    if !fill(s, buf) {
                        panic!("EOF in body");
                    }
                }
                r.body = buf.drain(..cl).collect();
            } else if r
                .header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
            {
                r.body = read_chunked(s, buf);
            } else {
                while fill(s, buf) {}
                r.body = std::mem::take(buf);
            }
            return Some(r);
        }
        if !fill(s, buf) {
            return None;
        }
    }
}

fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            assert!(fill(s, buf), "EOF in chunk size");
        };
        let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap().trim(), 16)
            .unwrap();
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            assert!(fill(s, buf), "EOF in chunk");
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return body;
        }
    }
}

/// Reads more bytes; false on EOF or error.
pub fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 16384];
    match s.read(&mut tmp) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            true
        }
    }
}

/// Sends one request on a new connection and reads the response.
pub fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut s = connect(addr);
    s.write_all(raw.as_bytes()).unwrap();
    let method = raw.split(' ').next().unwrap_or("GET").to_string();
    read_response(&mut s, &mut Vec::new(), &method).expect("no response")
}

/// `GET path` with `Host: host` on a new connection.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"),
    )
}

/// True when the peer closes `s` within `within` (reads until EOF, ignoring data).
pub fn closes_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let deadline = Instant::now() + within;
    let mut tmp = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut tmp) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// A scripted raw TCP backend: `handler(conn_index, stream, log)` runs per connection on its
/// own thread; every byte it reads should be appended to `log` by the handler.
pub struct RawBackend {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<u8>>>,
}

pub fn raw_backend<F>(handler: F) -> RawBackend
where
    F: Fn(usize, TcpStream, &Mutex<Vec<u8>>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let (c, r) = (connections.clone(), received.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let idx = c.fetch_add(1, Ordering::SeqCst);
            let (h, r) = (handler.clone(), r.clone());
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                h(idx, stream, &r)
            });
        }
    });
    RawBackend {
        addr,
        connections,
        received,
    }
}

/// Reads one request head (and a Content-Length body) from a raw backend connection,
/// appending the bytes to `log`. Returns the raw request, or `None` on EOF.
pub fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>, log: &Mutex<Vec<u8>>) -> Option<Vec<u8>> {
    loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head_len = p + 4;
            let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
            let cl = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < head_len + cl {
                let before = buf.len();
                if !fill(s, buf) {
                    return None;
                }
                log.lock().unwrap().extend_from_slice(&buf[before..]);
            }
            return Some(buf.drain(..head_len + cl).collect());
        }
        let before = buf.len();
        if !fill(s, buf) {
            return None;
        }
        log.lock().unwrap().extend_from_slice(&buf[before..]);
    }
}

/// An address on which nothing listens (bound then released).
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
