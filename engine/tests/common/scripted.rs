//! A scripted recording backend: every request Torii forwards is parsed (with `httparse`, not
//! the engine's parser), recorded with the index of the upstream connection it came on, and
//! answered with the raw bytes a test's closure returns, so a test can send any response a
//! misbehaving backend could (interim answers, duplicate headers, bodies it never finishes)
//! and see, from the backend's side, whether Torii reused or closed the connection.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{raw_backend, read_request, RawBackend};

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Index of the upstream connection it came on (0 = the first one accepted).
    pub conn: usize,
    pub method: String,
    pub path: String,
    /// Every header line, `(name as sent, value)`, in order.
    pub lines: Vec<(String, String)>,
}

impl Request {
    /// Every value of `name` (case-insensitive), in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the backend saw: every request, and the connections that ended (Torii closed them,
/// or a write to them failed because Torii had).
#[derive(Debug, Default)]
pub struct Log {
    pub requests: Vec<Request>,
    pub closed: Vec<usize>,
}

/// Starts the backend; `answer(request)` gives the raw bytes to write back.
pub fn scripted<F>(answer: F) -> (RawBackend, Arc<Mutex<Log>>)
where
    F: Fn(&Request) -> Vec<u8> + Send + Sync + 'static,
{
    let log: Arc<Mutex<Log>> = Arc::default();
    let log2 = log.clone();
    let b = raw_backend(move |conn, mut s, bytes| {
        let mut buf = Vec::new();
        while let Some(raw) = read_request(&mut s, &mut buf, bytes) {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(&raw).unwrap();
            let seen = Request {
                conn,
                method: req.method.unwrap().to_owned(),
                path: req.path.unwrap().to_owned(),
                lines: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            log2.lock().unwrap().requests.push(seen.clone());
            if s.write_all(&answer(&seen)).is_err() {
                break;
            }
        }
        log2.lock().unwrap().closed.push(conn);
    });
    (b, log)
}

/// Waits until `pred(log)` holds (5 s at most) and returns the log, held.
pub fn wait_until(log: &Mutex<Log>, pred: impl Fn(&Log) -> bool) -> MutexGuard<'_, Log> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = log.lock().unwrap();
        if pred(&g) || Instant::now() > deadline {
            return g;
        }
        drop(g);
        std::thread::sleep(Duration::from_millis(10));
    }
}
