//! Buffered reading and writing over monoio's owned-buffer ("rent") IO.
//!
//! Owns [`ReadBuf`], the per-connection read buffer that the HTTP head parser looks into and
//! that bodies are forwarded from without copying (the buffer itself is lent to the write
//! operation), [`write_all`], and [`SliceSink`], which turns anything that sends bytes a slice
//! at a time (an HTTP/2 stream's DATA frames) into an owned-buffer writer. It must not know
//! about HTTP: framing lives in `http1` and `proxy::body`.

use std::io;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, RawBuf};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::BufResult;

/// A byte stream monoio can read and write with owned buffers: a plain `TcpStream` or a TLS
/// stream over one. Client connections and the proxy phases are generic over it (monomorphised
/// once per transport, no dynamic dispatch per read or write).
pub trait Stream: AsyncReadRent + AsyncWriteRent {}

impl<T: AsyncReadRent + AsyncWriteRent> Stream for T {}

/// Smallest free space a read is given; below it the buffer is compacted or grown.
const MIN_READ_SPACE: usize = 4096;

/// A growable read buffer with a consumed prefix: unread data is `buf[start..]`.
///
/// Reads append after the unread data; `consume` advances `start`. The allocation is kept
/// between requests on a keep-alive connection, so steady-state reads allocate nothing.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    /// A buffer with `capacity` bytes reserved up front.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            start: 0,
        }
    }

    /// The unread bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Number of unread bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// True when no unread bytes remain.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks `n` unread bytes as consumed. When everything is consumed the buffer rewinds.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Capacity currently allocated (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases the allocation when the buffer holds no unread data and has grown beyond
    /// `keep` bytes, so that idle connections do not pin large buffers.
    pub fn shrink_idle(&mut self, keep: usize) {
        if self.is_empty() && self.buf.capacity() > keep {
            self.buf = Vec::with_capacity(keep);
            self.start = 0;
        }
    }

    /// Reads once from `src`, appending at most up to a total of `max_total` unread bytes.
    /// Returns the number of bytes read; 0 means end of stream (or no room: check
    /// [`ReadBuf::len`] against `max_total`).
    ///
    /// If the future is dropped while the read is in flight (a timeout), the allocation goes
    /// with it and the buffer is left empty: callers close the connection in that case.
    pub async fn fill<S: AsyncReadRent>(
        &mut self,
        src: &mut S,
        max_total: usize,
    ) -> io::Result<usize> {
        if self.start > 0
            && (self.buf.capacity() - self.buf.len() < MIN_READ_SPACE
                || self.start == self.buf.len())
        {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let unread = self.len();
        if unread >= max_total {
            return Ok(0);
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < MIN_READ_SPACE {
            let want = (unread + MIN_READ_SPACE)
                .max(self.buf.capacity() * 2)
                .min(max_total.max(MIN_READ_SPACE));
            self.buf.reserve(want.saturating_sub(self.buf.len()));
        }
        let room = (max_total - unread)
            .min(self.buf.capacity() - self.buf.len())
            .max(1);
        let begin = self.buf.len();
        let buf = std::mem::take(&mut self.buf);
        let (res, slice) = src.read(buf.slice_mut(begin..begin + room)).await;
        self.buf = slice.into_inner();
        res
    }

    /// Like [`ReadBuf::fill`] with a deadline; a timeout gives `ErrorKind::TimedOut`.
    pub async fn fill_timeout<S: AsyncReadRent>(
        &mut self,
        src: &mut S,
        max_total: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        match monoio::time::timeout(timeout, self.fill(src, max_total)).await {
            Ok(res) => res,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Writes the first `n` unread bytes to `dst` without copying them (the allocation is lent
    /// to the write) and consumes them.
    pub async fn write_prefix_to<W: AsyncWriteRent>(
        &mut self,
        dst: &mut W,
        n: usize,
    ) -> io::Result<()> {
        let n = n.min(self.len());
        if n == 0 {
            return Ok(());
        }
        let begin = self.start;
        let buf = std::mem::take(&mut self.buf);
        let (res, slice) = dst.write_all(buf.slice(begin..begin + n)).await;
        self.buf = slice.into_inner();
        res?;
        self.consume(n);
        Ok(())
    }
}

/// A destination that takes bytes from a borrowed slice (an HTTP/2 stream under flow control):
/// what [`SliceSink`] adapts to monoio's owned-buffer writes.
// Its futures are `!Send` by design: a worker's streams never leave its thread.
#[allow(async_fn_in_trait)]
pub trait SendSlice {
    /// Sends a prefix of `src` (all of it, or as much as the destination takes now) and returns
    /// how many bytes went. Called with a non-empty slice.
    async fn send_slice(&mut self, src: &[u8]) -> io::Result<usize>;
}

/// An owned-buffer writer over a [`SendSlice`], for the body pumps (`proxy::body::pump`) that
/// write to an `AsyncWriteRent`. Flush and shutdown do nothing: ending the stream is the
/// destination's own call.
#[derive(Debug)]
pub struct SliceSink<S>(pub S);

impl<S: SendSlice> AsyncWriteRent for SliceSink<S> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: `IoBuf` promises `read_ptr()` is valid for reads of `bytes_init()` bytes
        // while we hold `buf`.
        let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        let res = if src.is_empty() {
            Ok(0)
        } else {
            self.0.send_slice(src).await
        };
        (res, buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // SAFETY: the first iovec of `buf` is valid for reads while we hold `buf`.
        let res = match unsafe { RawBuf::new_from_iovec(&buf) } {
            Some(raw) => self.write(raw).await.0,
            None => Ok(0),
        };
        (res, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes all of `buf` to `dst` and gives the buffer back, contents unchanged, for reuse.
pub async fn write_all<W: AsyncWriteRent>(dst: &mut W, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let (res, buf) = dst.write_all(buf).await;
    (res.map(|_| ()), buf)
}

/// Writes `buf` with a deadline; a timeout gives `ErrorKind::TimedOut` and loses the buffer
/// (the caller closes the connection).
pub async fn write_all_timeout<W: AsyncWriteRent>(
    dst: &mut W,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> io::Result<()> {
    let owned = std::mem::take(buf);
    match monoio::time::timeout(timeout, write_all(dst, owned)).await {
        Ok((res, back)) => {
            *buf = back;
            res
        }
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
impl ReadBuf {
    /// Test helper: appends bytes as if they had been read.
    pub(crate) fn test_extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_rewinds_when_empty() {
        let mut rb = ReadBuf::with_capacity(16);
        rb.buf.extend_from_slice(b"hello");
        rb.consume(2);
        assert_eq!(rb.data(), b"llo");
        rb.consume(10);
        assert!(rb.is_empty());
        assert_eq!(rb.start, 0);
    }

    #[test]
    fn shrink_idle_only_when_empty() {
        let mut rb = ReadBuf::with_capacity(64 * 1024);
        rb.buf.push(1);
        rb.shrink_idle(1024);
        assert!(rb.capacity() >= 64 * 1024);
        rb.consume(1);
        rb.shrink_idle(1024);
        assert!(rb.capacity() < 64 * 1024);
    }
}
