//! Backends that count the requests they answer and can be killed mid-test: each answers
//! with its name as the body (or a fixed status, or never, or by closing after reading the
//! request), counts every request it read, and on [`Backend::kill`] (or drop) closes its
//! listener and every connection it holds, so that a port that served a moment ago now
//! refuses. Also a keep-alive client that reconnects when the gateway closes, and the one-route
//! configs and request loops of the upstream policy tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{connect, fill, gateway_header, read_request, read_response, Response};

/// What a backend does with each request it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200` with the backend's name as the body, keep-alive.
    Ok,
    /// This status with the backend's name as the body, keep-alive.
    Status(u16),
    /// Never answers: holds the connection until the gateway (or the kill) closes it.
    Hang,
    /// Closes the connection without a byte of response.
    CloseAfterRequest,
}

/// A running counting backend; killed on drop.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

/// Starts a backend named `name` on 127.0.0.1:0.
pub fn backend(name: &str, behaviour: Behaviour) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let (h, st, cs, body) = (hits.clone(), stop.clone(), conns.clone(), name.to_owned());
    let accept = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if st.load(Ordering::SeqCst) {
                return; // the listener is dropped here: the port refuses from now on
            }
            let Ok(stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            stream.set_nodelay(true).ok();
            cs.lock().unwrap().push(stream.try_clone().unwrap());
            let (h, body) = (h.clone(), body.clone());
            std::thread::spawn(move || {
                let mut stream = stream;
                serve(&mut stream, behaviour, &h, &body);
                // Closes the socket now, though `conns` still holds a handle on it.
                let _ = stream.shutdown(Shutdown::Both);
            });
        }
    });
    Backend {
        addr,
        name: name.to_owned(),
        hits,
        stop,
        conns,
        accept: Some(accept),
    }
}

fn serve(s: &mut TcpStream, behaviour: Behaviour, hits: &AtomicUsize, body: &str) {
    let log = Mutex::new(Vec::new());
    let mut buf = Vec::new();
    while read_request(s, &mut buf, &log).is_some() {
        log.lock().unwrap().clear();
        hits.fetch_add(1, Ordering::SeqCst);
        let status = match behaviour {
            Behaviour::Ok => 200,
            Behaviour::Status(code) => code,
            Behaviour::Hang => {
                while fill(s, &mut buf) {}
                return;
            }
            Behaviour::CloseAfterRequest => return,
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

impl Backend {
    /// Requests read so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Closes the listener, then every connection accepted: the port refuses from now on and
    /// a request in flight on it sees its connection close. Idempotent.
    pub fn kill(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept, which sees the flag and returns, dropping the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        accept.join().unwrap();
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A keep-alive client of one gateway address: a new connection when the gateway closed the
/// last one.
pub struct Client {
    addr: SocketAddr,
    conn: Option<(TcpStream, Vec<u8>)>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    /// Sends `raw` (a whole request) and reads its response; `None` when the connection
    /// closed before one (the next call reconnects).
    pub fn send(&mut self, raw: &str) -> Option<Response> {
        let (s, buf) = self
            .conn
            .get_or_insert_with(|| (connect(self.addr), Vec::new()));
        let method = raw.split(' ').next().unwrap_or("GET").to_owned();
        let r = s
            .write_all(raw.as_bytes())
            .ok()
            .and_then(|()| read_response(s, buf, &method));
        if r.as_ref()
            .is_none_or(|r| r.header("connection") == Some("close"))
        {
            self.conn = None;
        }
        r
    }

    /// `GET path` with `Host: host` and `extra` header lines (each ending in `\r\n`).
    pub fn get(&mut self, host: &str, path: &str, extra: &str) -> Option<Response> {
        self.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        ))
    }
}

/// Polls `cond` every 5 ms until it holds; false after `within`.
pub fn eventually(within: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A gateway config: one route `r` on `up.test` to `targets` (TOML array items), with `extra`
/// lines (route keys first, then sub-tables).
pub fn config(targets: &[String], extra: &str) -> String {
    format!(
        "{}[[routes]]\nid = \"r\"\ndomains = [\"up.test\"]\npaths = [\"/\"]\ntargets = [{}]\n{extra}\n",
        gateway_header(""),
        targets.join(", ")
    )
}

pub fn url(b: &Backend) -> String {
    format!("\"http://{}\"", b.addr)
}

pub fn table(b: &Backend, keys: &str) -> String {
    format!("{{ url = \"http://{}\", {keys} }}", b.addr)
}

/// Sends `n` sequential keep-alive GETs (extra headers from `extra(i)`); the body (the
/// answering backend's name) of each, panicking on anything but a 200.
pub fn get_n(addr: SocketAddr, n: usize, extra: impl Fn(usize) -> String) -> Vec<String> {
    let mut c = Client::new(addr);
    (0..n)
        .map(|i| {
            let r = c
                .get("up.test", &format!("/{i}"), &extra(i))
                .expect("no response");
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            r.text()
        })
        .collect()
}

pub fn count(bodies: &[String], name: &str) -> usize {
    bodies.iter().filter(|b| *b == name).count()
}
