//! Message bodies streamed from one connection to another through bounded buffers.
//!
//! Owns [`pump`]: given the framing of a message (length, chunked or until-close), it forwards
//! exactly that message's body from `src` to `dst`, leaving any following bytes (a pipelined
//! request, say) unread in the source buffer. Chunked bodies are decoded and re-chunked in a
//! canonical form, so the receiver never sees framing that a second parser could read
//! differently. Errors say which side failed.

use std::io;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http1::{ChunkedDecoder, ChunkedError, ChunkedOutput};
use crate::io::{write_all_timeout, ReadBuf};

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
    /// Minimum average rate (bytes per second) once the grace period is over; `None` for no
    /// minimum. Guards against slow-body (slowloris-style) clients.
    pub min_rate: Option<(u64, Duration)>,
}

/// Tracks a body's average rate against [`PumpOptions::min_rate`].
#[derive(Debug)]
struct Progress {
    started: Instant,
    bytes: u64,
}

impl Progress {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn add(&mut self, n: usize, opts: &PumpOptions) -> Result<(), PumpError> {
        self.bytes += n as u64;
        if let Some((rate, grace)) = opts.min_rate {
            let elapsed = self.started.elapsed();
            if rate > 0
                && elapsed > grace
                && (self.bytes as f64) < rate as f64 * elapsed.as_secs_f64()
            {
                return Err(PumpError::TooSlow);
            }
        }
        Ok(())
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
) -> Result<usize, PumpError> {
    match src_buf
        .fill_timeout(src, opts.buffer_bytes, opts.read_timeout)
        .await
    {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(PumpError::SourceTimeout),
        Err(e) => Err(PumpError::Source(e)),
    }
}

/// Reads more body bytes; the source closing before the body's end is an error.
async fn read_some<R: AsyncReadRent>(
    src: &mut R,
    src_buf: &mut ReadBuf,
    opts: &PumpOptions,
) -> Result<usize, PumpError> {
    match read_more(src, src_buf, opts).await? {
        0 => Err(PumpError::Source(io::ErrorKind::UnexpectedEof.into())),
        n => Ok(n),
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
    let mut progress = Progress::new();
    while remaining > 0 {
        if src_buf.is_empty() {
            let n = read_some(src, src_buf, &opts).await?;
            progress.add(n, &opts)?;
        }
        let take = (src_buf.len() as u64).min(remaining) as usize;
        write_prefix(src_buf, dst, take, &opts).await?;
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
    loop {
        if src_buf.is_empty() {
            match read_more(src, src_buf, &opts).await {
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
        write_prefix(src_buf, dst, take, &opts).await?;
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
    let mut rate = Progress::new();
    loop {
        if src_buf.is_empty() {
            let n = read_some(src, src_buf, &opts).await?;
            rate.add(n, &opts)?;
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
            write_all_timeout(dst, scratch, opts.write_timeout)
                .await
                .map_err(PumpError::Dest)?;
        }
        if progress.done {
            return Ok(total);
        }
        if progress.consumed == 0 && !src_buf.is_empty() {
            // The decoder needs more bytes than are buffered (a split size line): read more.
            let n = read_some(src, src_buf, &opts).await?;
            rate.add(n, &opts)?;
        }
    }
}

async fn write_prefix<W: AsyncWriteRent>(
    src_buf: &mut ReadBuf,
    dst: &mut W,
    n: usize,
    opts: &PumpOptions,
) -> Result<(), PumpError> {
    match monoio::time::timeout(opts.write_timeout, src_buf.write_prefix_to(dst, n)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(PumpError::Dest(e)),
        Err(_) => Err(PumpError::Dest(io::ErrorKind::TimedOut.into())),
    }
}
