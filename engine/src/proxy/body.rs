//! Message bodies streamed from one connection to another through bounded buffers.
//!
//! Owns [`pump`]: given the framing of a message (length, chunked or until-close), it forwards
//! exactly that message's body from `src` to `dst`, leaving any following bytes (a pipelined
//! request, say) unread in the source buffer. Chunked bodies are decoded and re-chunked in a
//! canonical form, so the receiver never sees framing that a second parser could read
//! differently. Errors say which side failed.
//!
//! Two minimum rates guard against slow peers: `min_rate` on the bytes read from the source
//! (a client trickling a request body), `min_send_rate` on the time spent writing to the
//! destination (a client trickling a response out of its receive window). Neither allocates;
//! the send rate reads the monotonic clock twice per write once a body is past its first
//! 64 KiB, and nothing at all for smaller bodies.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http1::{ChunkedDecoder, ChunkedError, ChunkedOutput};
use crate::io::{write_all, ReadBuf};
use crate::proxy::body_rate::BodyClock;

/// Read-buffer cap while streaming a body (either direction).
pub const BODY_BUFFER_BYTES: usize = 64 * 1024;

/// How the body to forward is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the source closes (responses only).
    UntilClose,
}

/// What to do with a chunked body on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedMode {
    /// Forward it chunked (canonical framing, trailers dropped).
    Rechunk,
    /// Forward only the payload (the receiver reads until close: HTTP/1.0 clients).
    Dechunk,
}

/// Limits and deadlines for one body.
#[derive(Debug, Clone, Copy)]
pub struct PumpOptions {
    /// Longest wait for the next bytes from the source.
    pub read_timeout: Duration,
    /// Longest wait for a write to the destination.
    pub write_timeout: Duration,
    /// Refuse bodies larger than this (decoded size for chunked bodies).
    pub max_bytes: u64,
    /// Read-buffer cap while forwarding.
    pub buffer_bytes: usize,
    /// Chunked handling.
    pub chunked: ChunkedMode,
    /// Minimum average rate of the bytes read from the source, measured from when the body was
    /// first expected ([`BodyClock`]); `None` for no minimum. Guards against slow-body
    /// (slowloris-style) clients: each read waits at most until the rate would be broken.
    pub min_rate: Option<BodyClock>,
    /// Minimum average rate (bytes per second) at which the destination takes the body,
    /// measured over the time spent writing to it (a slow source is not the destination's
    /// fault), in windows of the grace period's length (see [`SendRate`]); `None` or a zero
    /// rate for no minimum. Guards against clients that read a response a few bytes at a time.
    pub min_send_rate: Option<(u64, Duration)>,
}

/// Bytes a body may send before [`SendRate`] starts timing writes: below this, nothing is
/// measured (the socket's send buffer takes such a body without waiting on the reader).
const SEND_RATE_FREE_BYTES: u64 = 64 * 1024;

/// Tracks the time spent writing a body against [`PumpOptions::min_send_rate`], over
/// successive windows: a window closes after a write that brings its writing time to the grace
/// period, and within a window the destination must take `rate` bytes per second of writing
/// time (the grace period's worth of bytes at least). Each write's deadline is shortened to
/// the moment when even its completion would break that, so a trickling reader is cut during
/// the write that makes it too slow, with no timer beyond the write deadline that exists
/// anyway. Windows keep a burst into the socket's send buffer from paying for a later trickle.
#[derive(Debug)]
struct SendRate {
    /// Bytes the destination has taken in all.
    sent: u64,
    /// Bytes taken in the current window.
    window_bytes: u64,
    /// Writing time in the current window.
    window_spent: Duration,
}

impl SendRate {
    fn new() -> Self {
        Self {
            sent: 0,
            window_bytes: 0,
            window_spent: Duration::ZERO,
        }
    }

    /// The minimum rate and grace, when one applies to the next write.
    fn active(&self, opts: &PumpOptions) -> Option<(u64, Duration)> {
        match opts.min_send_rate {
            Some((rate, grace)) if rate > 0 && self.sent >= SEND_RATE_FREE_BYTES => {
                Some((rate, grace))
            }
            _ => None,
        }
    }

    /// The deadline for writing `n` more bytes in the current window, and whether it is the
    /// rate's (not the plain write timeout).
    fn deadline(
        &self,
        n: usize,
        rate: u64,
        grace: Duration,
        write_timeout: Duration,
    ) -> (Duration, bool) {
        let bytes = u128::from(self.window_bytes) + n as u128;
        let nanos = bytes.saturating_mul(1_000_000_000) / u128::from(rate.max(1));
        let needed = u64::try_from(nanos).map_or(Duration::MAX, Duration::from_nanos);
        let allowed = needed.max(grace).saturating_sub(self.window_spent);
        if allowed < write_timeout {
            (allowed, true)
        } else {
            (write_timeout, false)
        }
    }

    /// Accounts a completed write of `n` bytes that took `took`.
    fn record(&mut self, n: usize, took: Duration, grace: Duration) {
        self.window_bytes += n as u64;
        self.window_spent += took;
        if self.window_spent >= grace {
            self.window_bytes = 0;
            self.window_spent = Duration::ZERO;
        }
    }

    /// Runs one write of `n` bytes under the write timeout, or the rate's deadline when that
    /// comes first (→ [`PumpError::DestTooSlow`]).
    async fn write<F>(&mut self, n: usize, opts: &PumpOptions, write: F) -> Result<(), PumpError>
    where
        F: Future<Output = io::Result<()>>,
    {
        let active = self.active(opts);
        self.sent += n as u64;
        let Some((rate, grace)) = active else {
            return match monoio::time::timeout(opts.write_timeout, write).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PumpError::Dest(e)),
                Err(_) => Err(PumpError::Dest(io::ErrorKind::TimedOut.into())),
            };
        };
        let (limit, by_rate) = self.deadline(n, rate, grace, opts.write_timeout);
        let started = Instant::now();
        match monoio::time::timeout(limit, write).await {
            Ok(Ok(())) => {
                self.record(n, started.elapsed(), grace);
                Ok(())
            }
            Ok(Err(e)) => Err(PumpError::Dest(e)),
            Err(_) if by_rate => Err(PumpError::DestTooSlow),
            Err(_) => Err(PumpError::Dest(io::ErrorKind::TimedOut.into())),
        }
    }
}

/// Tracks a body's average rate against [`PumpOptions::min_rate`].
#[derive(Debug)]
struct Progress {
    bytes: u64,
}

impl Progress {
    /// Starts counting with the body bytes already buffered (they arrived after the head,
    /// when the clock started).
    fn new(buffered: usize) -> Self {
        Self {
            bytes: buffered as u64,
        }
    }

    fn add(&mut self, n: usize, opts: &PumpOptions) -> Result<(), PumpError> {
        self.bytes += n as u64;
        match opts.min_rate {
            Some(clock) if clock.is_too_slow(self.bytes) => Err(PumpError::TooSlow),
            _ => Ok(()),
        }
    }

    /// The wait for the next read: the read timeout, or less when the minimum rate would be
    /// broken first.
    fn read_timeout(&self, opts: &PumpOptions) -> (Duration, bool) {
        match opts.min_rate {
            Some(clock) => clock.read_timeout(self.bytes, opts.read_timeout),
            None => (opts.read_timeout, false),
        }
    }
}

/// Why a body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    /// The source failed or closed before the body was complete.
    #[error("source failed: {0}")]
    Source(io::Error),
    /// The source sent no bytes within the read timeout.
    #[error("source timed out")]
    SourceTimeout,
    /// The destination failed.
    #[error("destination failed: {0}")]
    Dest(io::Error),
    /// The chunked framing was invalid.
    #[error("bad chunked framing: {0}")]
    Framing(ChunkedError),
    /// The body exceeded `max_bytes`.
    #[error("body too large")]
    TooLarge,
    /// The body arrived more slowly than the minimum rate.
    #[error("body too slow")]
    TooSlow,
    /// The destination took the body more slowly than the minimum send rate.
    #[error("destination reads too slowly")]
    DestTooSlow,
}

/// Forwards one body from `src` (with its already-buffered bytes in `src_buf`) to `dst`.
/// Returns the number of payload bytes forwarded. `scratch` is a reusable buffer for chunked
/// re-encoding. Bytes after the body stay in `src_buf`.
pub async fn pump<R, W>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    dst: &mut W,
    framing: Framing,
    scratch: &mut Vec<u8>,
    opts: PumpOptions,
) -> Result<u64, PumpError>
where
    R: AsyncReadRent,
    W: AsyncWriteRent,
{
    match framing {
        Framing::Length(len) => pump_length(src, src_buf, dst, len, opts).await,
        Framing::UntilClose => pump_until_close(src, src_buf, dst, opts).await,
        Framing::Chunked => pump_chunked(src, src_buf, dst, scratch, opts).await,
    }
}

async fn read_more<R: AsyncReadRent>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    opts: &PumpOptions,
    timeout: (Duration, bool),
) -> Result<usize, PumpError> {
    let (timeout, by_rate) = timeout;
    if timeout.is_zero() && by_rate {
        return Err(PumpError::TooSlow);
    }
    match src_buf.fill_timeout(src, opts.buffer_bytes, timeout).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut && by_rate => Err(PumpError::TooSlow),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(PumpError::SourceTimeout),
        Err(e) => Err(PumpError::Source(e)),
    }
}

/// Reads more request-body bytes under the minimum rate and counts them; the source closing
/// before the body's end is an error.
async fn read_some<R: AsyncReadRent>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    opts: &PumpOptions,
    progress: &mut Progress,
) -> Result<usize, PumpError> {
    match read_more(src, src_buf, opts, progress.read_timeout(opts)).await? {
        0 => Err(PumpError::Source(io::ErrorKind::UnexpectedEof.into())),
        n => {
            progress.add(n, opts)?;
            Ok(n)
        }
    }
}

async fn pump_length<R, W>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    dst: &mut W,
    len: u64,
    opts: PumpOptions,
) -> Result<u64, PumpError>
where
    R: AsyncReadRent,
    W: AsyncWriteRent,
{
    if len > opts.max_bytes {
        return Err(PumpError::TooLarge);
    }
    let mut remaining = len;
    let mut progress = Progress::new(src_buf.len());
    let mut sent = SendRate::new();
    while remaining > 0 {
        if src_buf.is_empty() {
            read_some(src, src_buf, &opts, &mut progress).await?;
        }
        let take = (src_buf.len() as u64).min(remaining) as usize;
        sent.write(take, &opts, src_buf.write_prefix_to(dst, take))
            .await?;
        remaining -= take as u64;
    }
    Ok(len)
}

async fn pump_until_close<R, W>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    dst: &mut W,
    opts: PumpOptions,
) -> Result<u64, PumpError>
where
    R: AsyncReadRent,
    W: AsyncWriteRent,
{
    let mut total = 0u64;
    let mut sent = SendRate::new();
    loop {
        if src_buf.is_empty() {
            match read_more(src, src_buf, &opts, (opts.read_timeout, false)).await {
                Ok(0) => return Ok(total),
                Ok(_) => {}
                // A reset at the end of a close-delimited body cannot be told from the end.
                Err(PumpError::Source(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok(total)
                }
                Err(e) => return Err(e),
            }
        }
        let take = src_buf.len();
        total += take as u64;
        if total > opts.max_bytes {
            return Err(PumpError::TooLarge);
        }
        sent.write(take, &opts, src_buf.write_prefix_to(dst, take))
            .await?;
    }
}

async fn pump_chunked<R, W>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    dst: &mut W,
    scratch: &mut Vec<u8>,
    opts: PumpOptions,
) -> Result<u64, PumpError>
where
    R: AsyncReadRent,
    W: AsyncWriteRent,
{
    let mut decoder = ChunkedDecoder::new();
    let mode = match opts.chunked {
        ChunkedMode::Rechunk => ChunkedOutput::Rechunk,
        ChunkedMode::Dechunk => ChunkedOutput::Payload,
    };
    let mut rate = Progress::new(src_buf.len());
    let mut sent = SendRate::new();
    loop {
        if src_buf.is_empty() {
            read_some(src, src_buf, &opts, &mut rate).await?;
        }
        scratch.clear();
        let progress = decoder
            .decode(src_buf.data(), scratch, mode)
            .map_err(PumpError::Framing)?;
        src_buf.consume(progress.consumed);
        let total = decoder.payload_bytes();
        if total > opts.max_bytes {
            return Err(PumpError::TooLarge);
        }
        if !scratch.is_empty() {
            let n = scratch.len();
            sent.write(n, &opts, write_scratch(dst, scratch)).await?;
        }
        if progress.done {
            return Ok(total);
        }
        if progress.consumed == 0 && !src_buf.is_empty() {
            // The decoder needs more bytes than are buffered (a split size line): read more.
            read_some(src, src_buf, &opts, &mut rate).await?;
        }
    }
}

/// Writes `scratch` and puts the buffer back for reuse (lost only if the write is dropped at a
/// deadline, when the connection is closed anyway).
async fn write_scratch<W: AsyncWriteRent>(dst: &mut W, scratch: &mut Vec<u8>) -> io::Result<()> {
    let (res, back) = write_all(dst, std::mem::take(scratch)).await;
    *scratch = back;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(30);

    fn opts(min_send_rate: Option<(u64, Duration)>) -> PumpOptions {
        PumpOptions {
            read_timeout: W,
            write_timeout: W,
            max_bytes: u64::MAX,
            buffer_bytes: 1024,
            chunked: ChunkedMode::Rechunk,
            min_rate: None,
            min_send_rate,
        }
    }

    #[test]
    fn send_rate_is_free_for_small_bodies_and_when_off() {
        let mut r = SendRate::new();
        let on = opts(Some((1024, Duration::from_secs(1))));
        assert_eq!(r.active(&on), None);
        r.sent = SEND_RATE_FREE_BYTES;
        assert_eq!(r.active(&on), Some((1024, Duration::from_secs(1))));
        assert_eq!(r.active(&opts(Some((0, Duration::ZERO)))), None);
        assert_eq!(r.active(&opts(None)), None);
    }

    #[test]
    fn deadline_is_the_grace_then_the_rate() {
        let g = Duration::from_secs(1);
        let mut r = SendRate::new();
        // 1 KiB at 1 KiB/s needs 1 s: the grace period covers it.
        assert_eq!(r.deadline(1024, 1024, g, W), (g, true));
        // 4 KiB at 1 KiB/s: 4 s.
        assert_eq!(r.deadline(4096, 1024, g, W), (Duration::from_secs(4), true));
        // Time already spent in the window counts against it.
        r.record(1024, Duration::from_millis(600), g);
        assert_eq!(
            r.deadline(1024, 1024, g, W),
            (Duration::from_millis(1400), true)
        );
        // The plain write timeout when it comes first.
        assert_eq!(r.deadline(1 << 30, 1, g, W), (W, false));
        assert_eq!(r.deadline(usize::MAX, 1, g, W), (W, false));
    }

    #[test]
    fn a_window_closes_once_its_writing_time_reaches_the_grace() {
        let g = Duration::from_secs(1);
        let mut r = SendRate::new();
        // A burst: many bytes, no time. It does not pay for what follows once the window ends.
        r.record(4 << 20, Duration::ZERO, g);
        assert_eq!(r.window_bytes, 4 << 20);
        r.record(1024, Duration::from_millis(1000), g);
        assert_eq!((r.window_bytes, r.window_spent), (0, Duration::ZERO));
        // The next window: 64 KiB at 16 KiB/s needs 4 s, not less.
        assert_eq!(
            r.deadline(65536, 16384, g, W),
            (Duration::from_secs(4), true)
        );
    }
}
