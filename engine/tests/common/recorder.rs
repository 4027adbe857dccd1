//! A recording backend for the adversarial tests: it keeps the exact bytes each upstream
//! connection delivered, answers every request it can frame with `200 ok`, and says, with its
//! own strict HTTP/1.1 framing (independent of the engine's parser), what those bytes are:
//! nothing, exactly one well-framed request, the prefix of one request cut by a close, or
//! something a second parser could read differently.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one upstream connection carried.
#[derive(Debug, Default, Clone)]
pub struct ConnRecord {
    /// Every byte received, in order.
    pub bytes: Vec<u8>,
    /// The peer (Torii) closed the connection.
    pub closed: bool,
}

/// A backend that records every connection.
pub struct Recorder {
    pub addr: SocketAddr,
    pub conns: Arc<Mutex<Vec<ConnRecord>>>,
}

/// How a request is framed, by the strict rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete request of this many bytes, with its request target.
    Complete(usize, String),
    /// A strict prefix of a request: more bytes are needed.
    Incomplete,
    /// Bytes that do not frame one unambiguous request; the text says why.
    Ambiguous(String),
}

/// What the backend received over all its connections.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// No byte at all.
    Nothing,
    /// Exactly one complete, unambiguous request (this target), nothing after it.
    One(String),
    /// The prefix of one request on a connection Torii then closed.
    Truncated,
    /// Anything else.
    Bad(String),
}

fn ambiguous(why: impl Into<String>) -> Frame {
    Frame::Ambiguous(why.into())
}

/// Strict chunked body: hex size (no prefix, no blank), optional `;ext`, CRLF everywhere, no
/// trailers. Returns the bytes of the body, `Ok(None)` when incomplete.
fn chunked_len(b: &[u8]) -> Result<Option<usize>, String> {
    let mut i = 0;
    loop {
        let Some(rel) = b[i..].windows(2).position(|w| w == b"\r\n") else {
            if b[i..].contains(&b'\n') {
                return Err("bare LF in chunk line".into());
            }
            return Ok(None);
        };
        let line = &b[i..i + rel];
        if line.contains(&b'\n') || line.contains(&b'\r') {
            return Err("bare CR/LF in chunk line".into());
        }
        let size_part = line.split(|&c| c == b';').next().unwrap();
        if size_part.is_empty()
            || !size_part.iter().all(u8::is_ascii_hexdigit)
            || size_part.len() > 15
        {
            return Err(format!(
                "chunk size {:?}",
                String::from_utf8_lossy(size_part)
            ));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size_part).unwrap(), 16).unwrap();
        i += rel + 2;
        if size == 0 {
            return match b.get(i..i + 2) {
                Some(b"\r\n") => Ok(Some(i + 2)),
                Some(_) => Err("trailer after the last chunk".into()),
                None => Ok(None),
            };
        }
        if b.len() < i + size + 2 {
            return Ok(None);
        }
        if &b[i + size..i + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        i += size + 2;
    }
}

/// Frames the request at the start of `b` with strict rules: CRLF-only head, no obs-fold, no
/// NUL, a single Host, at most one Content-Length (digits), Transfer-Encoding only as a single
/// exact `chunked`, never both.
pub fn frame_request(b: &[u8]) -> Frame {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        if b.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') || b.first() == Some(&b'\n') {
            return ambiguous("bare LF in head");
        }
        return Frame::Incomplete;
    };
    let head = &b[..end + 4];
    for (i, &c) in head.iter().enumerate() {
        let bad = match c {
            b'\n' => i == 0 || head[i - 1] != b'\r',
            b'\r' => head.get(i + 1) != Some(&b'\n'),
            0 => true,
            _ => false,
        };
        if bad {
            return ambiguous(format!("bare CR/LF or NUL at {i}"));
        }
    }
    let mut lines = head[..end]
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let parts: Vec<&str> = request_line.split(' ').collect();
    if parts.len() != 3 || parts[2] != "HTTP/1.1" {
        return ambiguous(format!("request line {request_line:?}"));
    }
    let (mut cl, mut te, mut hosts) = (Vec::new(), Vec::new(), 0);
    // Torii's own pair for an admitted WebSocket upgrade: exactly `upgrade: websocket` and
    // `connection: upgrade`, once each (a plain HTTP backend like this one answers without a
    // 101, and the connection goes on as HTTP). Any other hop-by-hop line is ambiguous.
    let (mut ws_upgrade, mut ws_connection) = (0, 0);
    for line in lines {
        if line.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
            return ambiguous("obs-fold");
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return ambiguous("header line without colon");
        };
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        // A name that some servers normalise (`_` → `-`) into a framing header.
        let normalised = name.replace('_', "-");
        let disguised = name.contains('_')
            && (normalised == "content-length" || normalised == "transfer-encoding");
        if name.is_empty() || name.bytes().any(|c| c.is_ascii_whitespace()) || disguised {
            return ambiguous(format!("field name {name:?}"));
        }
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        match name.as_str() {
            "content-length" => cl.push(value),
            "transfer-encoding" => te.push(value),
            "host" => hosts += 1,
            "upgrade" if value == "websocket" => ws_upgrade += 1,
            "connection" if value == "upgrade" => ws_connection += 1,
            "upgrade" | "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" => {
                return ambiguous(format!("hop-by-hop header {name} forwarded"));
            }
            _ => {}
        }
    }
    if hosts != 1 {
        return ambiguous(format!("{hosts} Host headers"));
    }
    if (ws_upgrade, ws_connection) != (0, 0) && (ws_upgrade, ws_connection) != (1, 1) {
        return ambiguous("hop-by-hop header upgrade or connection forwarded");
    }
    let target = parts[1].to_owned();
    let body_start = end + 4;
    let body_len = match (cl.as_slice(), te.as_slice()) {
        ([], []) => 0,
        ([v], []) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => {
            match v.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return ambiguous("Content-Length overflow"),
            }
        }
        ([], [v]) if v == "chunked" => match chunked_len(&b[body_start..]) {
            Ok(Some(n)) => n,
            Ok(None) => return Frame::Incomplete,
            Err(why) => return ambiguous(why),
        },
        _ => return ambiguous(format!("framing CL={cl:?} TE={te:?}")),
    };
    if b.len() < body_start + body_len {
        return Frame::Incomplete;
    }
    Frame::Complete(body_start + body_len, target)
}

/// Starts a recording backend on 127.0.0.1:0.
pub fn recorder() -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns: Arc<Mutex<Vec<ConnRecord>>> = Arc::default();
    let c2 = conns.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let idx = {
                let mut g = c2.lock().unwrap();
                g.push(ConnRecord::default());
                g.len() - 1
            };
            let c3 = c2.clone();
            std::thread::spawn(move || serve(stream, idx, &c3));
        }
    });
    Recorder { addr, conns }
}

fn serve(mut s: TcpStream, idx: usize, conns: &Mutex<Vec<ConnRecord>>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut pending: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        let n = match s.read(&mut tmp) {
            Ok(0) | Err(_) => {
                conns.lock().unwrap()[idx].closed = true;
                return;
            }
            Ok(n) => n,
        };
        conns.lock().unwrap()[idx]
            .bytes
            .extend_from_slice(&tmp[..n]);
        pending.extend_from_slice(&tmp[..n]);
        while let Frame::Complete(len, _) = frame_request(&pending) {
            pending.drain(..len);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    }
}

impl Recorder {
    /// Classifies everything received so far. A prefix-only connection counts as
    /// [`Received::Truncated`] only once Torii closed it (waits up to `close_wait` for that).
    pub fn received(&self, close_wait: Duration) -> Received {
        let deadline = Instant::now() + close_wait;
        loop {
            let conns = self.conns.lock().unwrap().clone();
            let used: Vec<&ConnRecord> = conns.iter().filter(|c| !c.bytes.is_empty()).collect();
            let verdict = match used.as_slice() {
                [] => Received::Nothing,
                [one] => match frame_request(&one.bytes) {
                    Frame::Complete(n, target) if n == one.bytes.len() => Received::One(target),
                    Frame::Complete(n, _) => Received::Bad(format!(
                        "bytes after the first request: {:?}",
                        String::from_utf8_lossy(&one.bytes[n..])
                    )),
                    Frame::Incomplete if one.closed => Received::Truncated,
                    Frame::Incomplete => Received::Bad("incomplete request left open".into()),
                    Frame::Ambiguous(why) => {
                        Received::Bad(format!("{why}: {:?}", String::from_utf8_lossy(&one.bytes)))
                    }
                },
                more => Received::Bad(format!("{} upstream connections used", more.len())),
            };
            let waiting = matches!(&verdict, Received::Bad(w) if w.starts_with("incomplete"));
            if !waiting || Instant::now() >= deadline {
                return verdict;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
