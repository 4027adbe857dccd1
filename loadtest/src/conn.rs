//! One keep-alive connection's request loop: connect (and reconnect on close or error; for
//! `https://` the TLS handshake is part of the connect), wait for the open-loop send time, write
//! the pre-rendered request, read and account the response.
//!
//! Owns the IO and the per-request timeout; parsing is [`crate::response`], the send times are
//! [`crate::schedule`], the counting is [`crate::stats`]. Every loop here stops at the run's
//! deadline, when the shared request budget is spent, or when the stop flag is raised, and each
//! read loop is bounded by the response size limits and the per-request timeout.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::TlsConnector;
use torii_engine::tls::stream::UpStream;

use crate::response::{BadResponse, Checks, Complete, ResponseReader};
use crate::schedule::{corrected_latency, Schedule};
use crate::stats::{Progress, Stats};
use crate::tls::TlsClient;

/// Read buffer size of each connection (it grows for larger responses).
const READ_CHUNK: usize = 16 * 1024;
/// Pause after a failed connect, so a dead target is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// Upper bound on reads for one response (the size limits stop it far earlier).
const MAX_READS_PER_RESPONSE: usize = 1 << 20;

/// The shared number of requests a run may still start (`-n`); absent = unlimited.
#[derive(Debug)]
pub struct Budget(AtomicU64);

impl Budget {
    /// A budget of `n` request attempts.
    pub fn new(n: u64) -> Self {
        Budget(AtomicU64::new(n))
    }

    /// Takes one attempt; false once the budget is spent. Lock-free, one atomic per request.
    pub fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Everything a thread's connections share. Built once per thread.
#[derive(Debug)]
pub struct ConnCtx {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `https://`: the shared TLS client (config, resumption store, server name).
    pub tls: Option<TlsClient>,
    /// The request bytes every connection repeats.
    pub request: Vec<u8>,
    /// Whether the method is HEAD (responses then have no body).
    pub head_request: bool,
    /// Per-response checks.
    pub checks: Checks,
    /// Per-request timeout (connect, write and the whole response).
    pub timeout: Duration,
    /// No request starts after this instant.
    pub deadline: Instant,
    /// `-n`: request attempts left across all threads.
    pub budget: Option<Arc<Budget>>,
    /// Raised by the coordinator to stop early.
    pub stop: Arc<AtomicBool>,
    /// This thread's measurements.
    pub stats: Rc<RefCell<Stats>>,
    /// This thread's counters for the progress line.
    pub progress: Arc<Progress>,
}

impl ConnCtx {
    fn may_start(&self, now: Instant) -> bool {
        now < self.deadline
            && !self.stop.load(Ordering::Relaxed)
            && self.budget.as_ref().is_none_or(|b| b.take())
    }
}

/// Why a new connection could not be used.
enum ConnectFailure {
    Tcp,
    Tls(String),
}

/// TCP connect, then the TLS handshake for an `https://` target.
async fn open(ctx: &ConnCtx) -> Result<UpStream, ConnectFailure> {
    let tcp = TcpStream::connect_addr(ctx.addr)
        .await
        .map_err(|_| ConnectFailure::Tcp)?;
    // Best effort: Nagle only matters for requests split over writes.
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &ctx.tls else {
        return Ok(UpStream::Plain(tcp));
    };
    let fd = tcp.as_raw_fd();
    let connector = TlsConnector::from(tls.config.clone());
    match connector.connect(tls.server_name.clone(), tcp).await {
        Ok(stream) => Ok(UpStream::tls(stream, fd)),
        // monoio-rustls' own Display says only "io error"; the io::Error carries the reason.
        Err(e) => Err(ConnectFailure::Tls(std::io::Error::from(e).to_string())),
    }
}

/// Why a request produced no complete response.
#[derive(Debug)]
enum Failure {
    Write,
    Read,
    Bad(BadResponse),
}

/// Runs one connection until the deadline, the budget or the stop flag ends it. `schedule` is
/// present in open-loop mode. Errors are counted, never returned.
pub async fn run_connection(ctx: Rc<ConnCtx>, mut schedule: Option<Schedule>) {
    let mut request = ctx.request.clone();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut stream: Option<UpStream> = None;
    let mut reader = ResponseReader::new(ctx.head_request);
    loop {
        let intended = schedule.as_mut().map(Schedule::next_send);
        if let Some(at) = intended {
            if at >= ctx.deadline {
                break;
            }
            let now = Instant::now();
            if at > now {
                monoio::time::sleep(at - now).await;
            }
        }
        if !ctx.may_start(Instant::now()) {
            break;
        }
        let start = intended.unwrap_or_else(Instant::now);
        let request_deadline = Instant::now() + ctx.timeout;
        if stream.is_none() {
            // The handshake is part of the connect: same timeout, and its time is in the
            // latency of the request that needed it.
            let opened = monoio::time::timeout(ctx.timeout, open(&ctx)).await;
            match opened {
                Ok(Ok(s)) => {
                    if s.is_tls() {
                        ctx.stats.borrow_mut().tls_handshakes += 1;
                    }
                    stream = Some(s);
                    buf.clear();
                    reader.reset();
                }
                Ok(Err(failure)) => {
                    {
                        let mut stats = ctx.stats.borrow_mut();
                        match failure {
                            ConnectFailure::Tcp => stats.errors.connect += 1,
                            ConnectFailure::Tls(why) => {
                                stats.errors.tls += 1;
                                if stats.tls_error_example.is_none() {
                                    stats.tls_error_example = Some(why);
                                }
                            }
                        }
                    }
                    ctx.progress.error();
                    monoio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
                Err(_) => {
                    ctx.stats.borrow_mut().errors.connect += 1;
                    ctx.progress.error();
                    monoio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(conn) = stream.as_mut() else {
            continue;
        };
        let remaining = request_deadline.saturating_duration_since(Instant::now());
        let exchange = exchange(conn, &mut request, &mut buf, &mut reader, &ctx.checks);
        let outcome = monoio::time::timeout(remaining, exchange).await;
        if request.is_empty() {
            // A timeout dropped the write while it owned the buffer.
            request = ctx.request.clone();
        }
        let mut stats = ctx.stats.borrow_mut();
        match outcome {
            Ok(Ok(done)) => {
                let latency = corrected_latency(start, Instant::now());
                stats.record_response(done.status, latency, done.checks_passed);
                ctx.progress.count(!done.checks_passed);
                let rest = buf.len().saturating_sub(done.consumed);
                buf.drain(..buf.len() - rest);
                reader.reset();
                if !done.keep_alive {
                    stream = None;
                }
            }
            Ok(Err(failure)) => {
                match failure {
                    Failure::Write => stats.errors.write += 1,
                    Failure::Read => stats.errors.read += 1,
                    Failure::Bad(why) => {
                        stats.errors.bad_response += 1;
                        if stats.bad_response_example.is_none() {
                            stats.bad_response_example = Some(why.to_string());
                        }
                    }
                }
                ctx.progress.error();
                stream = None;
            }
            Err(_) => {
                stats.errors.timeout += 1;
                ctx.progress.error();
                stream = None;
            }
        }
    }
}

/// Writes the request and reads one response. `request` is handed to the kernel and back; it is
/// left empty only when this future is dropped mid-write.
async fn exchange(
    stream: &mut UpStream,
    request: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    reader: &mut ResponseReader,
    checks: &Checks,
) -> Result<Complete, Failure> {
    let out = std::mem::take(request);
    let (res, out) = stream.write_all(out).await;
    *request = out;
    if res.is_err() {
        return Err(Failure::Write);
    }
    for _ in 0..MAX_READS_PER_RESPONSE {
        if let Some(done) = reader.poll(buf, false, checks).map_err(Failure::Bad)? {
            return Ok(done);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let owned = std::mem::take(buf);
        let len = owned.len();
        let (res, slice) = stream.read(owned.slice_mut(len..)).await;
        *buf = slice.into_inner();
        match res {
            Ok(0) if buf.is_empty() => return Err(Failure::Read),
            Ok(0) => {
                return match reader.poll(buf, true, checks) {
                    Ok(Some(done)) => Ok(done),
                    Ok(None) => Err(Failure::Bad(BadResponse::Truncated)),
                    Err(e) => Err(Failure::Bad(e)),
                };
            }
            Ok(_) => {}
            Err(_) => return Err(Failure::Read),
        }
    }
    Err(Failure::Bad(BadResponse::BodyTooLarge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_down_to_zero_and_stays_there() {
        let b = Budget::new(2);
        assert!(b.take());
        assert!(b.take());
        assert!(!b.take());
        assert!(!b.take());
    }
}
