//! The admin listener (`gateway.admin`): `/metrics`, `/health`, `/ready`, `/upstreams` and
//! `/quotas/{client_id}` over plain HTTP/1.1.
//!
//! Owns its own thread with blocking std sockets: it is not the request path, it must keep
//! answering while the workers are busy or draining, and it never touches a worker's state
//! except through the atomics in `Shared`. Each connection gets a short-lived thread (at most
//! [`MAX_CONCURRENT`] at once; beyond that a connection is closed at once), reads one request
//! head under a deadline, answers with `Connection: close` and ends. Bind it to loopback or a
//! private interface: it has no authentication. The Prometheus text of `/metrics` is rendered
//! by [`render`] (with `render_tunnel`, [`upstreams`] and the `text` helpers), next to its only
//! caller; `/upstreams` (JSON) by [`upstreams`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub mod render;
mod render_tunnel;
mod text;
pub mod upstreams;

use crate::shared::Shared;

/// Admin connections served at once.
pub const MAX_CONCURRENT: usize = 16;
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Deadline for reading the head and for writing the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `addr` and serves the admin endpoints on a thread of their own. Returns the bound
/// address (port 0 resolved). Fails when the address cannot be bound.
pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("torii-admin".to_owned())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    continue; // dropped: closed
                }
                let shared = shared.clone();
                let busy2 = busy.clone();
                let spawned = std::thread::Builder::new()
                    .name("torii-admin-conn".to_owned())
                    .spawn(move || {
                        serve(stream, &shared);
                        busy2.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })?;
    Ok(bound)
}

/// An answer: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

fn text(status: u16, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
    }
}

/// What the admin listener answers to `method` `target` (pure but for reading `shared`).
pub fn route(shared: &Shared, method: &str, target: &str) -> Answer {
    let path = target.split('?').next().unwrap_or("");
    if !matches!(method, "GET" | "HEAD") {
        return text(405, "method not allowed\n");
    }
    match path {
        "/health" => text(200, "ok\n"),
        "/ready" if shared.is_draining() => match shared.websocket_tunnels() {
            0 => text(503, "draining\n"),
            // Tunnels stay open until `drain_timeout`, then their workers close them.
            n => text(
                503,
                &format!("draining\n{n} websocket tunnels open until drain_timeout\n"),
            ),
        },
        "/ready" if !shared.is_ready() => text(503, "starting\n"),
        "/ready" => text(200, "ready\n"),
        p if p.starts_with("/quotas/") => quotas(shared, &p["/quotas/".len()..]),
        "/upstreams" => {
            let snapshot = shared.snapshot.load();
            let views = upstreams::views(&snapshot);
            let doc = upstreams::document(&views, crate::upstream::endpoint::now_ms());
            Answer {
                status: 200,
                content_type: "application/json",
                body: format!("{doc}\n"),
            }
        }
        "/metrics" => {
            let mut body = String::with_capacity(16 * 1024);
            render::render(shared, &mut body);
            Answer {
                status: 200,
                content_type: render::CONTENT_TYPE,
                body,
            }
        }
        _ => text(
            404,
            "not found: try /metrics, /health, /ready, /upstreams or /quotas/{client_id}\n",
        ),
    }
}

/// `GET /quotas/{client_id}`: the key's limits, counts and resets (JSON), or a JSON 404. The id
/// is percent-decoded (client ids may hold any printable character).
fn quotas(shared: &Shared, raw_id: &str) -> Answer {
    let json = |status: u16, body: String| Answer {
        status,
        content_type: "application/json",
        body,
    };
    let id = torii_protocol::apikey::percent_decode(raw_id.as_bytes(), false);
    let id = String::from_utf8_lossy(&id);
    let snapshot = shared.snapshot.load();
    let now_ms = crate::quota::unix_ms(std::time::SystemTime::now());
    match crate::quota::report::quota_document(
        &snapshot.auth.store,
        &snapshot.quotas,
        shared.quotas.store(),
        &id,
        now_ms,
    ) {
        Some(doc) => json(200, format!("{doc}\n")),
        None => json(
            404,
            format!(
                "{}\n",
                serde_json::json!({ "error": "no API key with this client id", "clientId": id })
            ),
        ),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Reads one request head; `Err(status)` when it is invalid or too large.
fn read_head(stream: &mut TcpStream) -> Result<(String, String), u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            break;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let line = std::str::from_utf8(line).map_err(|_| 400u16)?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if v.starts_with("HTTP/1.") && t.starts_with('/') => {
            Ok((m.to_owned(), t.to_owned()))
        }
        _ => Err(400),
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let (answer, head_only) = match read_head(&mut stream) {
        Ok((method, target)) => (route(shared, &method, &target), method == "HEAD"),
        Err(status) => (text(status, "bad request\n"), false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        answer.status,
        reason(answer.status),
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(answer.body.as_bytes());
    }
    let _ = stream.write_all(&out);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Let the client read the answer before the socket closes (no reset on unread input).
    let _ = stream.read(&mut [0u8; 256]);
}
