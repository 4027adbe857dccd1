//! One client connection: reads request heads under their deadlines and hands each request to
//! the proxy, for as long as the connection is kept alive.
//!
//! Owns the per-connection buffers (reused for every request on the connection: no allocation
//! per request in the steady state) and the rules for reading a head: the idle deadline
//! between requests, the absolute deadline for a head once its first byte arrived (408), the
//! size limits (431/414, from the parser) and closing idle connections when draining starts.
//! Once a request ended it records it: route metrics (the worker's own slot) and, when
//! `[access_log]` is on, one line in the worker's access-log buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use torii_protocol::challenge::{JTI_LEN, STATE_LEN};

use crate::access_log::line::{capture_head, write_line, LineContext};
use crate::http1::{parse_request_head, HeaderField, RequestError, RequestHead};
use crate::io::{write_all_timeout, ReadBuf, Stream};
use crate::metrics::RequestRecord;
use crate::proxy;
use crate::proxy::respond::write_error;
use crate::server::worker::{ConnGuard, Worker};
use crate::snapshot::{RuntimeLimits, Snapshot};

/// Initial capacity of a connection's read buffer.
const READ_BUF_INITIAL: usize = 4096;
/// Capacity an idle keep-alive connection keeps (memory per idle connection).
const READ_BUF_IDLE: usize = 4096;

/// Buffers and facts of one client connection, reused for every request on it.
#[derive(Debug)]
pub struct ClientState {
    /// Bytes read from the client and not yet consumed (head, body start, pipelined requests).
    pub rbuf: ReadBuf,
    /// Heads and small bodies being written to the client.
    pub wbuf: Vec<u8>,
    /// The upstream request head being sent (kept until the response head arrives, so that a
    /// request can be retried on a fresh connection).
    pub up_head: Vec<u8>,
    /// Header spans of the current request head.
    pub headers: Vec<HeaderField>,
    /// Header spans of the current upstream response head.
    pub resp_headers: Vec<HeaderField>,
    /// Scratch buffer for chunked re-encoding.
    pub scratch: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
    /// `x-forwarded-for: <peer ip>\r\n`, rendered once per connection.
    pub xff_line: Vec<u8>,
    /// Scheme seen by the client (`http` or `https`).
    pub proto: &'static [u8],
    /// The challenge state sent with the current request.
    pub state: [u8; STATE_LEN],
    /// The `jti` of the current request's V2 state token.
    pub state_jti: [u8; JTI_LEN],
    /// The `jti` of the current request's info token.
    pub info_jti: [u8; JTI_LEN],
    /// True when the current request carries a challenge whose answer must be checked.
    pub challenge_sent: bool,
    /// What the proxy learned about the current request (metrics, access log).
    pub rec: RequestRecord,
    /// The current request's method, host and path as JSON fields, captured before the proxy
    /// consumes the head (only while the access log is on).
    pub log_head: Vec<u8>,
    /// Claims of the current request's external JWT to carry in the info token
    /// (`[routes.jwt] forward = "exchange"`).
    pub jwt_extra: Option<torii_protocol::info_token::ExtraClaims>,
    /// When the current request's head was complete: its body's minimum rate counts from here.
    pub head_done: Instant,
    /// `100 Continue` was already sent for the current request.
    pub continue_sent: bool,
    /// The current request's canonical path, when it differs from the bytes the client sent
    /// (`path_rewritten`); empty otherwise (the client's path is canonical).
    pub path_buf: Vec<u8>,
    /// `path_buf` holds the canonical path.
    pub path_rewritten: bool,
    /// The listener lets header names with `_` through (`gateway.underscores_in_headers`).
    pub allow_underscores: bool,
}

impl ClientState {
    /// Fresh state for a connection from `peer`.
    pub fn new(peer: SocketAddr, proto: &'static [u8]) -> Self {
        Self {
            rbuf: ReadBuf::with_capacity(READ_BUF_INITIAL),
            wbuf: Vec::with_capacity(1024),
            up_head: Vec::with_capacity(1024),
            headers: Vec::with_capacity(32),
            resp_headers: Vec::with_capacity(32),
            scratch: Vec::new(),
            peer,
            xff_line: format!("x-forwarded-for: {}\r\n", peer.ip()).into_bytes(),
            proto,
            state: [0; STATE_LEN],
            state_jti: [0; JTI_LEN],
            info_jti: [0; JTI_LEN],
            challenge_sent: false,
            rec: RequestRecord::default(),
            log_head: Vec::new(),
            jwt_extra: None,
            head_done: Instant::now(),
            continue_sent: false,
            path_buf: Vec::new(),
            path_rewritten: false,
            allow_underscores: false,
        }
    }

    /// The canonical path of the current request: what routing matched and, unless the route
    /// says `path_normalization = "forward_raw"`, what the backend receives.
    pub fn canonical_path<'a>(&'a self, head: &RequestHead) -> &'a [u8] {
        if self.path_rewritten {
            &self.path_buf
        } else {
            head.path.get(self.rbuf.data())
        }
    }
}

/// Outcome of waiting for a request head.
enum HeadRead {
    /// A complete head is at the start of `rbuf`.
    Head(RequestHead),
    /// The client went away, stayed idle too long, or draining started while idle.
    Closed,
    /// The head is invalid or too slow: answer this status and close.
    Reject(u16, &'static str),
}

/// Serves one client connection until it closes. `client` is the plain or TLS stream (already
/// past its handshake); `proto` is the scheme the client sees (`http` or `https`);
/// `allow_underscores` is the listener's `gateway.underscores_in_headers` at accept time.
pub async fn serve_client<C: Stream>(
    guard: ConnGuard,
    mut client: C,
    peer: SocketAddr,
    proto: &'static [u8],
    allow_underscores: bool,
) {
    let worker = guard.worker().clone();
    let mut st = ClientState::new(peer, proto);
    st.allow_underscores = allow_underscores;
    loop {
        let limits = worker.snapshot().limits;
        match read_head(&worker, &mut client, &mut st, &limits).await {
            HeadRead::Head(head) => {
                // Loaded once the head is in, so a request that waited on an idle keep-alive
                // connection runs on the config in force when it arrived.
                let snap = worker.snapshot();
                let start = Instant::now();
                st.head_done = start;
                st.continue_sent = false;
                let logged = begin_request(&worker, &snap, &mut st, &head);
                let keep_alive =
                    proxy::handle_request(&worker, &snap, &mut client, &mut st, head).await;
                end_request(&worker, &snap, &st, start, logged);
                if !keep_alive {
                    break;
                }
                st.rbuf.shrink_idle(READ_BUF_IDLE);
            }
            HeadRead::Closed => break,
            HeadRead::Reject(status, message) => {
                let snap = worker.snapshot();
                let start = Instant::now();
                let logged = begin_rejected(&worker, &snap, &mut st);
                st.wbuf.clear();
                write_error(&mut st.wbuf, status, message, true, &[]);
                st.rec.answered(status, st.wbuf.len());
                let _ = write_all_timeout(&mut client, &mut st.wbuf, limits.client_header_timeout)
                    .await;
                end_request(&worker, &snap, &st, start, logged);
                break;
            }
        }
    }
    let _ = client.shutdown().await;
}

/// Resets the request record, draws the request id and, when the access log is on, captures
/// the head's fields for the line. Returns whether a line will be written.
fn begin_request(
    worker: &Worker,
    snap: &Snapshot,
    st: &mut ClientState,
    head: &RequestHead,
) -> bool {
    st.rec.reset(head.head_len);
    worker.rng.borrow_mut().fill_jti(&mut st.rec.request_id);
    if snap.config.access_log.is_none() {
        return false;
    }
    let data = st.rbuf.data();
    let host = head.host.map_or(&b""[..], |h| h.get(data));
    capture_head(
        &mut st.log_head,
        head.method_span.get(data),
        host,
        head.path.get(data),
    );
    true
}

/// [`begin_request`] for a head refused before it could be parsed (400, 408, 414, 431): the
/// line has empty method, host and path, since nothing of the head can be trusted, and the
/// bytes received so far as `bytes_in`. Returns whether a line will be written.
fn begin_rejected(worker: &Worker, snap: &Snapshot, st: &mut ClientState) -> bool {
    st.rec.reset(st.rbuf.len());
    worker.rng.borrow_mut().fill_jti(&mut st.rec.request_id);
    if snap.config.access_log.is_none() {
        return false;
    }
    capture_head(&mut st.log_head, b"", b"", b"");
    true
}

/// Records the request that just ended: the worker's request count, the route's (or the
/// unrouted) counters and latency, and the access-log line.
fn end_request(
    worker: &Worker,
    snap: &Arc<Snapshot>,
    st: &ClientState,
    start: Instant,
    logged: bool,
) {
    let elapsed = start.elapsed();
    let stats = worker.stats();
    let n = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    stats
        .requests
        .store(n + 1, std::sync::atomic::Ordering::Relaxed);
    if st.rec.underscore_dropped > 0 {
        // Only this worker writes its counter: a plain load and store, no locked add.
        let d = &stats.underscore_headers_dropped;
        let n = d.load(std::sync::atomic::Ordering::Relaxed);
        d.store(
            n + u64::from(st.rec.underscore_dropped),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let route = st.rec.route.and_then(|i| snap.routes.get(i));
    let metrics = route.map_or(worker.shared.metrics.unrouted(), |r| &r.metrics);
    metrics.request(worker.id, st.rec.status, elapsed);
    if !logged {
        return;
    }
    let ctx = LineContext {
        time: SystemTime::now(),
        elapsed,
        worker: worker.id,
        client_ip: client_ip(&st.xff_line),
        route: route.map(|r| r.id.as_str()),
        upstream: route
            .zip(st.rec.target)
            .and_then(|(r, t)| r.targets.get(t))
            .map(|t| &*t.addr_text),
    };
    let sink = &worker.shared.access_log;
    worker
        .access_log
        .append(sink, |out| write_line(out, &ctx, &st.rec, &st.log_head));
    if worker.is_draining() {
        worker.access_log.flush(sink);
    }
}

/// The client's IP as text, out of the connection's pre-rendered `x-forwarded-for` line.
fn client_ip(xff_line: &[u8]) -> &[u8] {
    xff_line
        .strip_prefix(b"x-forwarded-for: ")
        .and_then(|v| v.strip_suffix(b"\r\n"))
        .unwrap_or(b"")
}

/// Waits for the next complete request head on the connection.
async fn read_head<S: monoio::io::AsyncReadRent>(
    worker: &Worker,
    client: &mut S,
    st: &mut ClientState,
    limits: &RuntimeLimits,
) -> HeadRead {
    // Room for the whole head plus one byte, so an over-long head is seen as such.
    let cap = limits.head.max_head_bytes + 1;
    let mut deadline: Option<Instant> = None;
    loop {
        if !st.rbuf.is_empty() {
            match parse_request_head(st.rbuf.data(), &limits.head, &mut st.headers) {
                Ok(Some(head)) => return HeadRead::Head(head),
                Ok(None) => {}
                Err(e) => return reject(&e),
            }
            if st.rbuf.len() >= cap {
                return HeadRead::Reject(431, "Request header fields too large");
            }
        }
        let idle = st.rbuf.is_empty() && deadline.is_none();
        let res = if idle {
            if worker.is_draining() {
                return HeadRead::Closed;
            }
            monoio::select! {
                r = st.rbuf.fill_timeout(client, cap, limits.keepalive_timeout) => r,
                _ = worker.drain.wait() => return HeadRead::Closed,
            }
        } else {
            let d = *deadline.get_or_insert_with(|| Instant::now() + limits.client_header_timeout);
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return HeadRead::Reject(408, "Request timeout");
            }
            st.rbuf.fill_timeout(client, cap, left).await
        };
        match res {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {
                if deadline.is_none() {
                    deadline = Some(Instant::now() + limits.client_header_timeout);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !idle => {
                return HeadRead::Reject(408, "Request timeout");
            }
            Err(_) => return HeadRead::Closed,
        }
    }
}

fn reject(e: &RequestError) -> HeadRead {
    let message = match e {
        RequestError::HeadTooLarge | RequestError::TooManyHeaders => {
            "Request header fields too large"
        }
        RequestError::UriTooLong => "URI too long",
        RequestError::UnsupportedVersion => "HTTP version not supported",
        RequestError::Invalid(_) => "Bad request",
    };
    HeadRead::Reject(e.status(), message)
}
