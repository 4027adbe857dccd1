//! The pre-scan of a message head: one linear pass (memchr2 over CR/LF) that finds where the
//! head ends and enforces what `httparse` does not: every line ends in CRLF (no bare LF, no bare
//! CR), no obs-fold (a line starting with SP or HTAB), at most a few empty lines before the
//! start line, and the size / count limits — including on an incomplete head that is already
//! too long, so a slow client cannot make the caller buffer without bound.
//!
//! It only looks at line structure; tokens and field syntax are left to `httparse`.

use super::HeadLimits;

/// How many empty lines (CRLF) may precede a request line. RFC 9112 §2.2 says a server SHOULD
/// ignore at least one; some clients send a CRLF after a POST body. Beyond this, 400.
pub(crate) const MAX_LEADING_EMPTY_LINES: usize = 4;

/// Where the parts of a complete head lie in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadScan {
    /// Offset of the start line (after skipped empty lines).
    pub start: usize,
    /// Offset of the CR that ends the start line.
    pub start_line_cr: usize,
    /// Bytes of the whole head, from offset 0 through the final CRLF CRLF.
    pub head_len: usize,
    /// Number of header lines.
    pub header_lines: usize,
}

/// Why a head was refused by the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The head is, or will be, over `max_head_bytes`.
    HeadTooLarge,
    /// More than `max_headers` header lines.
    TooManyHeaders,
    /// The start line is, or will be, over `max_request_line_bytes`.
    LineTooLong,
    /// Malformed line structure; the text says which rule.
    Invalid(&'static str),
}

/// Finds the CR of the next CRLF at or after `from`. `Ok(None)` when more bytes are needed.
#[inline]
fn find_line_end(buf: &[u8], from: usize) -> Result<Option<usize>, ScanError> {
    let Some(rest) = buf.get(from..) else {
        return Ok(None);
    };
    let Some(rel) = memchr::memchr2(b'\r', b'\n', rest) else {
        return Ok(None);
    };
    let i = from + rel;
    match (buf.get(i), buf.get(i + 1)) {
        (Some(b'\n'), _) => Err(ScanError::Invalid("bare LF line ending")),
        (Some(_), None) => Ok(None),
        (Some(_), Some(b'\n')) => Ok(Some(i)),
        _ => Err(ScanError::Invalid("bare CR in head")),
    }
}

/// Scans the head at the start of `buf`. `Ok(None)`: incomplete and still within limits.
///
/// `max_leading_empty` is [`MAX_LEADING_EMPTY_LINES`] for requests and 0 for responses.
/// Cost: one memchr2 per line over at most `max_head_bytes` bytes.
pub(crate) fn scan_head(
    buf: &[u8],
    limits: &HeadLimits,
    max_leading_empty: usize,
) -> Result<Option<HeadScan>, ScanError> {
    let cap = limits.max_head_bytes.min(u32::MAX as usize);
    let window = buf.get(..cap).unwrap_or(buf);
    let incomplete = || {
        if buf.len() >= cap {
            Err(ScanError::HeadTooLarge)
        } else {
            Ok(None)
        }
    };

    let mut pos = 0usize;
    let mut empty = 0usize;
    loop {
        match window.get(pos) {
            None => return incomplete(),
            Some(b'\r') => match window.get(pos + 1) {
                None => return incomplete(),
                Some(b'\n') => {
                    empty += 1;
                    if empty > max_leading_empty {
                        return Err(ScanError::Invalid("empty line before the start line"));
                    }
                    pos += 2;
                }
                Some(_) => return Err(ScanError::Invalid("bare CR in head")),
            },
            Some(b'\n') => return Err(ScanError::Invalid("bare LF line ending")),
            Some(b' ' | b'\t') => return Err(ScanError::Invalid("whitespace before start line")),
            Some(_) => break,
        }
    }
    let start = pos;

    let start_line_cr = match find_line_end(window, start)? {
        Some(cr) => {
            if cr - start > limits.max_request_line_bytes {
                return Err(ScanError::LineTooLong);
            }
            cr
        }
        None => {
            let seen = window.len() - start - usize::from(window.last() == Some(&b'\r'));
            if seen > limits.max_request_line_bytes {
                return Err(ScanError::LineTooLong);
            }
            return incomplete();
        }
    };

    pos = start_line_cr + 2;
    let mut header_lines = 0usize;
    loop {
        match window.get(pos) {
            None => return incomplete(),
            Some(b' ' | b'\t') => return Err(ScanError::Invalid("obs-fold line")),
            Some(_) => {}
        }
        let Some(cr) = find_line_end(window, pos)? else {
            return incomplete();
        };
        if cr == pos {
            return Ok(Some(HeadScan {
                start,
                start_line_cr,
                head_len: cr + 2,
                header_lines,
            }));
        }
        header_lines += 1;
        if header_lines > limits.max_headers {
            return Err(ScanError::TooManyHeaders);
        }
        pos = cr + 2;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scan(buf: &[u8]) -> Result<Option<HeadScan>, ScanError> {
        scan_head(buf, &HeadLimits::default(), MAX_LEADING_EMPTY_LINES)
    }

    #[test]
    fn complete_head() {
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nbody";
        let s = scan(buf).unwrap().unwrap();
        assert_eq!(s.start, 0);
        assert_eq!(s.start_line_cr, 14);
        assert_eq!(s.head_len, buf.len() - 4);
        assert_eq!(s.header_lines, 2);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = b"\r\nGET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
        for i in 0..buf.len() {
            assert_eq!(scan(&buf[..i]), Ok(None), "prefix {i}");
        }
        assert_eq!(scan(buf).unwrap().unwrap().start, 2);
    }

    #[test]
    fn bare_lf_anywhere_is_refused() {
        for buf in [
            &b"GET / HTTP/1.1\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n\r\n",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n",
        ] {
            assert_eq!(
                scan(buf),
                Err(ScanError::Invalid("bare LF line ending")),
                "{buf:?}"
            );
        }
    }

    #[test]
    fn bare_cr_is_refused() {
        for buf in [
            &b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"[..],
            b"GET / HTTP/1.1\rX\r\n\r\n",
            b"\rGET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        ] {
            assert_eq!(
                scan(buf),
                Err(ScanError::Invalid("bare CR in head")),
                "{buf:?}"
            );
        }
    }

    #[test]
    fn obs_fold_is_refused() {
        for buf in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        ] {
            assert_eq!(scan(buf), Err(ScanError::Invalid("obs-fold line")));
        }
    }

    #[test]
    fn leading_empty_lines_bounded() {
        let ok = b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan(ok).unwrap().unwrap().start, 8);
        let bad = b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert!(matches!(scan(bad), Err(ScanError::Invalid(_))));
        let resp = b"\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert!(matches!(
            scan_head(resp, &HeadLimits::default(), 0),
            Err(ScanError::Invalid(_))
        ));
    }

    #[test]
    fn limits_on_complete_and_incomplete_heads() {
        let limits = HeadLimits {
            max_head_bytes: 40,
            max_headers: 2,
            max_request_line_bytes: 16,
        };
        let s = |b: &[u8]| scan_head(b, &limits, 0);
        // exactly at the limit: fine
        let exact = b"GET / HTTP/1.1\r\nA: 12345678901234567\r\n\r\n";
        assert_eq!(exact.len(), 40);
        assert!(s(exact).unwrap().is_some());
        // one byte more
        let over = b"GET / HTTP/1.1\r\nA: 123456789012345678\r\n\r\n";
        assert_eq!(s(over), Err(ScanError::HeadTooLarge));
        // incomplete but already at the limit
        assert_eq!(s(&over[..40]), Err(ScanError::HeadTooLarge));
        assert_eq!(s(&over[..39]), Ok(None));
        // too many headers, even before the head is complete
        assert_eq!(
            s(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n"),
            Err(ScanError::TooManyHeaders)
        );
        // start line too long, complete or not
        assert_eq!(
            s(b"GET /0123456789 HTTP/1.1\r\n\r\n"),
            Err(ScanError::LineTooLong)
        );
        assert_eq!(s(b"GET /0123456789 H"), Err(ScanError::LineTooLong));
        assert_eq!(s(b"GET /0123456789\r"), Ok(None));
        assert_eq!(s(b"GET /01234567890\r"), Ok(None));
        assert_eq!(s(b"GET /012345678901\r"), Err(ScanError::LineTooLong));
    }
}
