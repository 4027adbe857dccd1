//! The minimum request-body rate, and waiting for a request body before any upstream
//! connection is taken for it.
//!
//! Owns [`BodyClock`]: `limits.body_min_rate` measured from the moment the body was first
//! expected — the end of the request head — not from the first body byte, so a client that
//! announces `Content-Length: 5000000` and sends nothing is cut when the grace period ends
//! (5 s by default), not after `body_idle_timeout` (30 s). Every read of a request body waits at
//! most until the average rate would fall below the minimum.
//!
//! And [`await_body`]: before the proxy connects upstream, a request with a body waits here
//! until its body is buffered (bodies up to [`BUFFERED_BODY_BYTES`], sent with the head in one
//! write, as nginx buffers small bodies) or until its first body byte arrived (larger and
//! chunked bodies, which then stream). A client that never sends its body therefore never holds
//! an upstream connection. `Expect: 100-continue` is answered here, since the client waits for
//! it before sending the body. No allocation: bytes go into the connection's read buffer.
//! `Downstream::await_body` of an HTTP/1.1 connection runs it for one request, under the
//! snapshot's limits: what the proxy and the token endpoint both call.

use std::io;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http1::{BodyFraming, RequestHead};
use crate::io::{write_all_timeout, ReadBuf};

/// Bodies up to this size are read whole before the upstream connection is taken, and sent in
/// the same write as the head. Larger bodies wait only for their first byte, then stream.
pub const BUFFERED_BODY_BYTES: u64 = 16 * 1024;

/// `limits.body_min_rate` over one request body, from the end of its head.
#[derive(Debug, Clone, Copy)]
pub struct BodyClock {
    since: Instant,
    rate: u64,
    grace: Duration,
}

impl BodyClock {
    /// A clock started at `since` (when the head was complete). `rate` 0 disables the minimum.
    pub fn new(since: Instant, rate: u64, grace: Duration) -> Self {
        Self { since, rate, grace }
    }

    /// How long the next read may wait when `bytes` body bytes have arrived so far: until the
    /// average rate would fall below the minimum (never before the grace period ends), or
    /// `idle`, whichever comes first. The flag is true when the rate decided.
    pub fn read_timeout(&self, bytes: u64, idle: Duration) -> (Duration, bool) {
        if self.rate == 0 {
            return (idle, false);
        }
        let nanos = u128::from(bytes).saturating_mul(1_000_000_000) / u128::from(self.rate);
        let due = u64::try_from(nanos)
            .map_or(Duration::MAX, Duration::from_nanos)
            .max(self.grace);
        let left = due.saturating_sub(self.since.elapsed());
        if left < idle {
            (left, true)
        } else {
            (idle, false)
        }
    }

    /// Whether `bytes` body bytes are enough at this moment.
    pub fn is_too_slow(&self, bytes: u64) -> bool {
        let elapsed = self.since.elapsed();
        self.rate > 0
            && elapsed > self.grace
            && u128::from(bytes).saturating_mul(1_000_000_000)
                < u128::from(self.rate).saturating_mul(elapsed.as_nanos())
    }
}

/// Why waiting for a request body failed.
#[derive(Debug)]
pub enum BodyWaitError {
    /// The body arrived more slowly than the minimum rate (408).
    TooSlow,
    /// No byte within `body_idle_timeout` (408).
    Idle,
    /// The client closed or failed (no answer possible).
    Gone,
}

/// Reads more bytes of a request body into `rbuf` (up to `cap` bytes buffered) under the body
/// clock. `body_bytes` is how many body bytes arrived so far. Returns the bytes read.
pub async fn read_body_bytes<S: AsyncReadRent>(
    client: &mut S,
    rbuf: &mut ReadBuf,
    cap: usize,
    clock: &BodyClock,
    body_bytes: u64,
    idle: Duration,
) -> Result<usize, BodyWaitError> {
    let (timeout, by_rate) = clock.read_timeout(body_bytes, idle);
    if timeout.is_zero() {
        return Err(if by_rate {
            BodyWaitError::TooSlow
        } else {
            BodyWaitError::Idle
        });
    }
    match rbuf.fill_timeout(client, cap, timeout).await {
        Ok(0) => Err(BodyWaitError::Gone),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut && by_rate => Err(BodyWaitError::TooSlow),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(BodyWaitError::Idle),
        Err(_) => Err(BodyWaitError::Gone),
    }
}

/// What [`await_body`] left in the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStart {
    /// No body, or an empty one.
    None,
    /// The whole body (this many bytes) is buffered at the start of the read buffer.
    Buffered(usize),
    /// At least the first body byte is buffered; the rest streams.
    Streaming,
}

/// Waits, before any upstream connection is taken, until the request's body is buffered (up
/// to [`BUFFERED_BODY_BYTES`]) or its first byte arrived, in `rbuf` (which starts with the
/// body: the connection consumed the head when the request took it). Sends `100 Continue` first when the
/// client asked for it and nothing of the body is here yet (then returns with
/// `continue_sent = true` so that nobody sends it twice).
pub async fn await_body<S: AsyncReadRent + AsyncWriteRent>(
    client: &mut S,
    rbuf: &mut ReadBuf,
    wbuf: &mut Vec<u8>,
    head: &RequestHead,
    clock: &BodyClock,
    idle: Duration,
    continue_sent: &mut bool,
) -> Result<BodyStart, BodyWaitError> {
    let want = match head.body {
        BodyFraming::None | BodyFraming::Length(0) => return Ok(BodyStart::None),
        BodyFraming::Length(n) if n <= BUFFERED_BODY_BYTES => n as usize,
        BodyFraming::Length(_) | BodyFraming::Chunked => 1,
    };
    // The head was consumed: the read buffer starts with the body.
    let buffered = |rbuf: &ReadBuf| rbuf.len();
    if buffered(rbuf) < want && head.expect_continue && buffered(rbuf) == 0 && !*continue_sent {
        wbuf.clear();
        wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        write_all_timeout(client, wbuf, idle)
            .await
            .map_err(|_| BodyWaitError::Gone)?;
        *continue_sent = true;
    }
    let cap = want.max(BUFFERED_BODY_BYTES as usize);
    while buffered(rbuf) < want {
        read_body_bytes(client, rbuf, cap, clock, buffered(rbuf) as u64, idle).await?;
    }
    Ok(match head.body {
        BodyFraming::Length(n) if n <= BUFFERED_BODY_BYTES => BodyStart::Buffered(n as usize),
        _ => BodyStart::Streaming,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);

    #[test]
    fn the_rate_counts_from_the_end_of_the_head() {
        let grace = Duration::from_secs(5);
        let clock = BodyClock::new(Instant::now(), 1024, grace);
        // Nothing arrived: the read may wait until the grace period ends, not the idle timeout.
        let (t, by_rate) = clock.read_timeout(0, IDLE);
        assert!(by_rate && t <= grace && t > Duration::from_secs(4), "{t:?}");
        // 10 KiB at 1 KiB/s buy 10 s from the start.
        let (t, by_rate) = clock.read_timeout(10 * 1024, IDLE);
        assert!(by_rate && t <= Duration::from_secs(10) && t > Duration::from_secs(9));
        // Enough bytes to outlast the idle timeout: the idle timeout decides.
        assert_eq!(clock.read_timeout(1 << 30, IDLE), (IDLE, false));
        assert!(!clock.is_too_slow(0), "within the grace period");
    }

    #[test]
    fn a_started_clock_past_its_due_time_leaves_no_wait() {
        let since = Instant::now() - Duration::from_secs(10);
        let clock = BodyClock::new(since, 1024, Duration::from_secs(5));
        assert_eq!(clock.read_timeout(100, IDLE), (Duration::ZERO, true));
        assert!(clock.is_too_slow(100));
        assert!(!clock.is_too_slow(20 * 1024));
    }

    #[test]
    fn a_zero_rate_is_off() {
        let since = Instant::now() - Duration::from_secs(100);
        let clock = BodyClock::new(since, 0, Duration::ZERO);
        assert_eq!(clock.read_timeout(0, IDLE), (IDLE, false));
        assert!(!clock.is_too_slow(0));
    }
}
