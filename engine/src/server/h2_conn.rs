//! One HTTP/2 client connection: the `h2` server connection driven on the worker, one task per
//! stream, each stream's request run through the phases over its [`H2Downstream`] (so every
//! stream goes through the same phases, error answers, records and upstream pools as an
//! HTTP/1.1 request, with no HTTP/1.1 connection loop and no response translation).
//!
//! Owns the connection's settings and lifetime: `SETTINGS_MAX_CONCURRENT_STREAMS` =
//! `limits.h2_max_concurrent_streams` (more are refused with `REFUSED_STREAM`), the header list
//! size = `limits.max_header_bytes`, bounded flow-control windows and send buffers, the
//! handshake deadline (`limits.client_header_timeout` for the preface), the head deadline
//! (`limits.client_header_timeout` again for every header block the client leaves unfinished:
//! GOAWAY `ENHANCE_YOUR_CALM` and close, as an HTTP/1.1 head that does not arrive gets 408),
//! the idle deadline
//! (`limits.keepalive_timeout` without a stream), PING-based liveness while streams are open,
//! and GOAWAY when the worker drains (the listeners stop) or the connection idles out: streams
//! in flight finish (drain is bounded by `gateway.drain_timeout`), new ones are refused. A
//! stream the client resets — or whose connection dies — has its task's future dropped, and
//! with it the upstream connection it held (closed, never pooled). A gRPC call's `grpc-timeout`
//! is its deadline: past it, the phases' future is dropped the same way (the upstream stream
//! reset with `CANCEL`) and the client gets `DEADLINE_EXCEEDED`. It must not frame HTTP:
//! `crate::h2` checks heads and answers.

use crate::proxy::downstream::Downstream;
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use h2::server::{Connection, SendResponse};
use h2::{Ping, RecvStream};
use http::Request;
use monoio::time::{sleep_until, Instant};

use crate::h2::downstream::H2Downstream;
use crate::h2::io::{H2Io, HeadOpenSince, WatchedIo};
use crate::h2::request_head::{read_request_head, Refusal};
use crate::h2::send::{reset_of, ResponseSide};
use crate::http1::{RequestError, RequestHead};
use crate::metrics::Protocol;
use crate::proxy::answer::answer_unparsed;
use crate::proxy::client::ClientFacts;
use crate::proxy::context::{RequestBuffers, RequestCtx};
use crate::proxy::error::ProxyError;
use crate::proxy::grpc::{is_grpc, parse_grpc_timeout};
use crate::proxy::head::OwnedHead;
use crate::proxy::{phases, record};
use crate::worker::signal::Signal;
use crate::worker::{ConnGuard, Worker};

/// Initial flow-control window of each stream (request bodies the phases have not read yet,
/// buffered by `h2`): 256 KiB, so an upload is not held to one 64 KiB window per round trip.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// Initial flow-control window of the connection: at most this much request data of all its
/// streams together is buffered before the client must wait for the phases to read.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Response bytes `h2` buffers per stream beyond what it wrote (a client that does not read
/// holds at most this per stream, `h2_max_concurrent_streams` times per connection).
pub const SEND_BUFFER: usize = 64 * 1024;
/// While streams are open, a PING is sent this long after the last PONG...
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// ...and the connection is closed when its PONG has not come within this.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(20);
/// After GOAWAY (drain or idle), once no stream is left, how long the connection is given to
/// end on its own (the client's PING answer, the last frames flushed) before it is dropped.
pub const GOAWAY_GRACE: Duration = Duration::from_secs(1);
/// How long stream tasks get to end on their own once the connection is gone, before they are
/// cancelled.
const STREAM_END_GRACE: Duration = Duration::from_secs(1);

/// Per-connection state the stream tasks share with the connection task.
#[derive(Debug, Default)]
struct ConnState {
    /// Fired when the connection is gone and the remaining stream tasks must stop.
    gone: Signal,
    /// Stream tasks alive.
    streams: Cell<usize>,
    /// The connection task's waker, woken when a stream task ends.
    waker: RefCell<Option<Waker>>,
}

/// Counts a live HTTP/2 connection in the worker's gauge.
struct ConnGauge(Rc<Worker>);

impl ConnGauge {
    fn new(worker: Rc<Worker>) -> Self {
        worker
            .stats()
            .h2_connections
            .fetch_add(1, Ordering::Relaxed);
        Self(worker)
    }
}

impl Drop for ConnGauge {
    fn drop(&mut self) {
        self.0
            .stats()
            .h2_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Held by a stream task: counts it (gauge and connection state) and wakes the connection task
/// when it ends.
struct StreamGuard {
    worker: Rc<Worker>,
    state: Rc<ConnState>,
}

impl StreamGuard {
    fn new(worker: Rc<Worker>, state: Rc<ConnState>) -> Self {
        worker.stats().h2_streams.fetch_add(1, Ordering::Relaxed);
        state.streams.set(state.streams.get() + 1);
        Self { worker, state }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.worker
            .stats()
            .h2_streams
            .fetch_sub(1, Ordering::Relaxed);
        self.state
            .streams
            .set(self.state.streams.get().saturating_sub(1));
        if let Some(w) = self.state.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// What woke the connection task.
enum Event {
    Stream(Box<(Request<RecvStream>, SendResponse<Bytes>)>),
    Closed,
    Failed(h2::Error),
    Drain,
    Pong,
    Timer,
    StreamsChanged,
    HeadChanged,
}

/// Serves an HTTP/2 connection over `io` until it ends, then returns once its stream tasks
/// have ended.
pub async fn serve_h2(guard: ConnGuard, io: H2Io, facts: Rc<ClientFacts>) {
    let worker = guard.worker().clone();
    let (builder, handshake_timeout, keepalive) = {
        let snap = worker.snapshot();
        let l = &snap.config.limits;
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(l.h2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX))
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buffer_size(SEND_BUFFER);
        (b, l.client_header_timeout, l.keepalive_timeout)
    };
    let open_since = HeadOpenSince::default();
    let io = WatchedIo::new(io, open_since.clone());
    let conn = match monoio::time::timeout(handshake_timeout, builder.handshake(io)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(peer = %facts.peer, error = %e, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %facts.peer, "HTTP/2 handshake timed out");
            return;
        }
    };
    let _gauge = ConnGauge::new(worker.clone());
    let state = Rc::new(ConnState::default());
    let deadlines = Deadlines {
        keepalive,
        head: handshake_timeout,
        open_since,
    };
    drive(&worker, conn, &state, facts, deadlines).await;
    // The connection is gone (dropped: `h2` fails every stream still open, which wakes their
    // tasks). Give them a moment to end on their own, then cancel the rest.
    let all_ended = poll_fn(|cx| {
        if state.streams.get() == 0 {
            return Poll::Ready(());
        }
        *state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    });
    if monoio::time::timeout(STREAM_END_GRACE, all_ended)
        .await
        .is_err()
    {
        state.gone.fire();
        poll_fn(|cx| {
            if state.streams.get() == 0 {
                return Poll::Ready(());
            }
            *state.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// The connection's time limits besides PING liveness.
struct Deadlines {
    /// `limits.keepalive_timeout`: how long the connection may stay without a stream.
    keepalive: Duration,
    /// `limits.client_header_timeout`: how long a header block may stay unfinished.
    head: Duration,
    /// Since when the client's current header block is open.
    open_since: HeadOpenSince,
}

/// The connection loop: accepts streams, and ends the connection on drain, idleness, an
/// unfinished header block, a missing PONG or an error. Returns once the connection should be
/// dropped.
async fn drive(
    worker: &Rc<Worker>,
    mut conn: Connection<WatchedIo, Bytes>,
    state: &Rc<ConnState>,
    facts: Rc<ClientFacts>,
    limits: Deadlines,
) {
    let keepalive = limits.keepalive;
    let mut ping = conn.ping_pong();
    let mut drain = pin!(worker.drain.wait());
    let mut timer = pin!(sleep_until(Instant::now() + keepalive));
    let mut draining = false;
    // Set once GOAWAY was sent: the time after which the connection is dropped even if the
    // client has not closed it, counted from when no stream is left.
    let mut closing = false;
    let mut quiet_since = Instant::now();
    let mut pong_due: Option<Instant> = None;
    let mut next_ping = Instant::now() + PING_INTERVAL;
    loop {
        let streams = state.streams.get();
        let head_open = limits.open_since.get();
        let deadline = if closing {
            (streams == 0).then_some(quiet_since + GOAWAY_GRACE)
        } else {
            let head_due = head_open.map(|t| t + limits.head);
            let other = if streams == 0 {
                quiet_since + keepalive
            } else {
                pong_due.unwrap_or(next_ping)
            };
            Some(head_due.map_or(other, |h| h.min(other)))
        };
        if let Some(d) = deadline {
            timer.as_mut().reset(d);
        }
        let event = poll_fn(|cx| {
            *state.waker.borrow_mut() = Some(cx.waker().clone());
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok(s))) => return Poll::Ready(Event::Stream(Box::new(s))),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Event::Failed(e)),
                Poll::Ready(None) => return Poll::Ready(Event::Closed),
                Poll::Pending => {}
            }
            if !draining && drain.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Drain);
            }
            if let (Some(p), Some(_)) = (ping.as_mut(), pong_due) {
                if p.poll_pong(cx).is_ready() {
                    return Poll::Ready(Event::Pong);
                }
            }
            if state.streams.get() != streams {
                return Poll::Ready(Event::StreamsChanged);
            }
            if limits.open_since.get() != head_open {
                return Poll::Ready(Event::HeadChanged);
            }
            if deadline.is_some() && timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Timer);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Stream(s) => {
                let (req, respond) = *s;
                spawn_stream(worker, state, req, respond, facts.clone());
            }
            Event::Closed => return,
            Event::Failed(e) => {
                tracing::debug!(peer = %facts.peer, error = %e, "HTTP/2 connection failed");
                return;
            }
            Event::Drain => {
                // GOAWAY: streams in flight finish, new ones are refused; the client opens a
                // new connection elsewhere (operations.md, "Drain").
                draining = true;
                if !closing {
                    conn.graceful_shutdown();
                    closing = true;
                    quiet_since = Instant::now();
                }
            }
            Event::Pong => {
                pong_due = None;
                next_ping = Instant::now() + PING_INTERVAL;
            }
            Event::StreamsChanged => {
                if state.streams.get() == 0 {
                    quiet_since = Instant::now();
                } else if streams == 0 {
                    next_ping = Instant::now() + PING_INTERVAL;
                }
            }
            // The deadline is computed again at the top of the loop.
            Event::HeadChanged => {}
            Event::Timer => {
                let now = Instant::now();
                let head_late = limits
                    .open_since
                    .get()
                    .is_some_and(|t| now >= t + limits.head);
                if head_late && !closing {
                    // RFC 9113 has no timeout code; a client holding a header block open is
                    // the excessive load ENHANCE_YOUR_CALM names (§7). Streams in flight are
                    // reset with the connection, as an HTTP/1.1 connection closes after 408.
                    tracing::debug!(peer = %facts.peer, "HTTP/2 header block unfinished at client_header_timeout; closing");
                    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    closing = true;
                    quiet_since = now;
                } else if closing {
                    if state.streams.get() == 0 && now >= quiet_since + GOAWAY_GRACE {
                        return;
                    }
                } else if state.streams.get() == 0 {
                    if now >= quiet_since + keepalive {
                        conn.graceful_shutdown();
                        closing = true;
                        quiet_since = now;
                    }
                } else if let Some(due) = pong_due {
                    if now >= due {
                        tracing::debug!(peer = %facts.peer, "HTTP/2 client did not answer PING; closing");
                        return;
                    }
                } else if now >= next_ping {
                    match ping.as_mut().map(|p| p.send_ping(Ping::opaque())) {
                        Some(Ok(())) => pong_due = Some(now + PONG_TIMEOUT),
                        _ => next_ping = now + PING_INTERVAL,
                    }
                }
            }
        }
    }
}

/// Starts the task of one stream.
fn spawn_stream(
    worker: &Rc<Worker>,
    state: &Rc<ConnState>,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    facts: Rc<ClientFacts>,
) {
    let guard = StreamGuard::new(worker.clone(), state.clone());
    monoio::spawn(async move {
        let worker = guard.worker.clone();
        let state = guard.state.clone();
        monoio::select! {
            _ = serve_stream(&worker, req, respond, facts) => {}
            _ = state.gone.wait() => {}
        }
        drop(guard);
    });
}

/// The access log's `reason` of a gRPC call cut at its `grpc-timeout`.
const REASON_GRPC_DEADLINE: &str = "grpc.deadline_exceeded";

/// Counts and logs a malformed request as an HTTP/1.1 head refused with 400 is (`route="-"`,
/// status 400, reason `head.invalid`, an access-log line with `proto` `h2`), although the
/// client gets `RST_STREAM PROTOCOL_ERROR` (RFC 9113 §8.1.1) rather than an answer.
fn record_malformed(worker: &Worker, client: &ClientFacts) {
    let snap = worker.snapshot();
    let started = std::time::Instant::now();
    let mut log_head = Vec::new();
    let (mut rec, logged) = record::begin_unparsed(worker, &snap, Protocol::H2, &mut log_head, 0);
    rec.reason = Some(ProxyError::from_head(&RequestError::Invalid("")).reason);
    rec.answered(400, 0);
    record::finish(
        worker,
        &snap,
        &rec,
        &log_head,
        logged,
        client.client_ip(),
        started,
    );
}

/// Serves one stream: its head checked (RFC 9113 §8) and read into the request's own head,
/// then the phases over the stream's [`H2Downstream`], until the response is sent or the
/// stream is reset.
async fn serve_stream(
    worker: &Rc<Worker>,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    facts: Rc<ClientFacts>,
) {
    let (parts, body) = req.into_parts();
    let grpc = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc(v.as_bytes()));
    let deadline = parts
        .headers
        .get("grpc-timeout")
        .filter(|_| grpc)
        .and_then(|v| parse_grpc_timeout(v.as_bytes()));
    let side = ResponseSide::new(respond);
    let limits = worker.snapshot().limits;
    let mut head_store = OwnedHead::new();
    let head = read_request_head(
        &parts.method,
        &parts.uri,
        &parts.headers,
        body.is_end_stream(),
        &limits.head,
        &mut head_store,
    );
    let head = match head {
        Ok(head) => Ok(head),
        Err(Refusal::Refused(e)) => Err(e),
        Err(Refusal::Malformed(why)) => {
            tracing::debug!(peer = %facts.peer, why, "malformed HTTP/2 request; stream reset");
            side.borrow_mut().reset(h2::Reason::PROTOCOL_ERROR);
            record_malformed(worker, &facts);
            return;
        }
    };
    let peer = facts.peer;
    let mut down = H2Downstream::new(body, side.clone(), facts);
    monoio::select! {
        _ = serve_request(worker, &mut down, head, &head_store, (grpc, deadline)) => {}
        reason = reset_of(&side) => {
            // The upstream request, if any, goes with the dropped future: its connection is
            // closed, never pooled.
            tracing::debug!(%peer, %reason, "HTTP/2 stream reset; request cancelled");
        }
    }
}

/// Runs the one request of a stream, whose head (read into `req`) is `head` or was refused as
/// an HTTP/1.1 head would be (431, 414, 400: answered and recorded as for an HTTP/1.1 client,
/// as a gRPC status to a gRPC call): the phases (within the call's deadline, for a gRPC call
/// that gave one), the record, and the end of the stream. `grpc`: whether it is a gRPC call,
/// and its deadline.
async fn serve_request(
    worker: &Rc<Worker>,
    down: &mut H2Downstream,
    head: Result<RequestHead, RequestError>,
    req: &OwnedHead,
    (grpc, deadline): (bool, Option<Duration>),
) {
    let snap = worker.snapshot();
    let started = std::time::Instant::now();
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            let mut log_head = Vec::new();
            let received = req.bytes().len();
            let (mut rec, logged) =
                record::begin_unparsed(worker, &snap, Protocol::H2, &mut log_head, received);
            let e = ProxyError::from_head(&e);
            let timeout = snap.limits.client_header_timeout;
            answer_unparsed(down, &mut rec, &e, timeout, grpc).await;
            record::finish(
                worker,
                &snap,
                &rec,
                &log_head,
                logged,
                down.client().client_ip(),
                started,
            );
            down.finish();
            return;
        }
    };
    let mut bufs = RequestBuffers::new();
    let mut ctx = RequestCtx::new(&snap, head, req, &mut bufs, started);
    ctx.rec.protocol = Protocol::H2;
    record::begin(worker, &mut ctx);
    // `Outcome` means nothing here: the stream carries one request (and no upgrade: `Upgrade`
    // is refused with the head).
    let handled = phases::handle_request(worker, down, &mut ctx);
    match deadline {
        None => {
            let _ = handled.await;
        }
        Some(d) => {
            let left = d.saturating_sub(started.elapsed());
            if monoio::time::timeout(left, handled).await.is_err() {
                // The phases' future is gone, and with it the upstream stream (reset CANCEL).
                ctx.rec.reason = Some(REASON_GRPC_DEADLINE);
                if ctx.rec.status == 0 {
                    ctx.rec.answered(504, 0);
                }
                if let Some(code) = down.end_grpc_call(504, "Deadline exceeded") {
                    ctx.rec.grpc_status = Some(code);
                }
            }
        }
    }
    record::finish(
        worker,
        &snap,
        &ctx.rec,
        &ctx.bufs.log_head,
        ctx.logged,
        down.client().client_ip(),
        started,
    );
    down.finish();
}
