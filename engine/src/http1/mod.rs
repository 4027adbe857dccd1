//! Sans-IO HTTP/1.1 core: request and response head parsing with hard limits, body framing,
//! the chunked decoder and the writers that copy heads for forwarding.
//!
//! This module owns the wire format of HTTP/1.x and the request refusal rules (RFC 9112 framing
//! read strictly: docs/security.md §5): everything that decides whether bytes from a client
//! or an upstream are acceptable and how the message that follows is framed. It must not do IO,
//! be async, read a clock or allocate per request in the parsing path: callers pass reusable
//! buffers (`Vec<HeaderField>`, output `Vec<u8>`), and parsed items are [`Span`]s into the
//! caller's buffer, never owned strings.
//!
//! Parsing is layered: [`scan`] does one linear pass over the head (line endings, obs-fold, size
//! and count limits) that closes the gaps `httparse` leaves open (it accepts bare LF), then
//! `httparse` tokenises with SIMD, then [`request`] / [`response`] apply the framing rules.

mod chunked;
mod header;
mod host;
mod path;
mod request;
mod response;
mod scan;
mod writer;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod roundtrip_tests;

pub(crate) use chunked::push_hex_line;
pub use chunked::{ChunkedDecoder, ChunkedError, ChunkedOutput, DecodeProgress, MAX_CHUNK_SIZE};
pub use header::{eq_name_dashed, HeaderField, HeaderKind};
pub use host::{canonical_host, MAX_HOST_BYTES};
pub use path::{canonicalize_path, is_plainly_canonical, PathError};
pub(crate) use request::{
    check_target, is_authority_byte, is_disguised_framing, MAX_PARSED_HEADERS,
};
pub use request::{parse_request_head, BodyFraming, Method, RequestError, RequestHead};
pub use response::{
    parse_response_head, status_has_no_content, ResponseBody, ResponseError, ResponseHead,
};
pub use writer::{
    copy_request_head, copy_response_head, is_valid_header_value, reason_phrase,
    write_content_length, write_header, write_status_line, write_u64, CopiedHead,
};

/// A byte range `[start, end)` into the buffer a head was parsed from.
///
/// Offsets are `u32` to keep [`HeaderField`] small; heads are bounded by
/// [`HeadLimits::max_head_bytes`], far below 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte (inclusive).
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from `usize` offsets; `None` when they do not fit in `u32` or are reversed.
    #[inline]
    pub fn from_range(start: usize, end: usize) -> Option<Span> {
        if start > end {
            return None;
        }
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// The bytes this span covers in `buf`; an empty slice if the span does not fit in `buf`
    /// (never panics, even with a span from another buffer).
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// Length in bytes (0 for a reversed span).
    #[inline]
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// True when the span covers no byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Size and count limits applied while parsing a head (request or response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes in the whole head, request line and final CRLF CRLF included (431 beyond).
    pub max_head_bytes: usize,
    /// Most header fields (431 beyond). Values above 256 act as 256: `httparse` parses into a
    /// fixed array on the stack.
    pub max_headers: usize,
    /// Most bytes in the request (or status) line, CRLF excluded (414 beyond, for requests).
    pub max_request_line_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 16384,
            max_headers: 100,
            max_request_line_bytes: 8192,
        }
    }
}

/// ASCII case-insensitive equality of two byte strings (header names, tokens). No allocation.
#[inline]
pub fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The value of the first header named `name` (ASCII case-insensitive), as bytes of `buf`.
///
/// Linear in the number of headers; use [`HeaderField::kind`] for the well-known names instead.
pub fn find_header<'a>(buf: &'a [u8], headers: &[HeaderField], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.len() == name.len() && eq_ignore_case(h.name.get(buf), name))
        .map(|h| h.value.get(buf))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn span_get_is_checked() {
        let buf = b"hello world";
        let s = Span { start: 6, end: 11 };
        assert_eq!(s.get(buf), b"world");
        assert_eq!(s.len(), 5);
        assert!(!s.is_empty());
        let out = Span { start: 6, end: 40 };
        assert_eq!(out.get(buf), b"");
        let reversed = Span { start: 8, end: 2 };
        assert_eq!(reversed.get(buf), b"");
        assert_eq!(reversed.len(), 0);
        assert!(reversed.is_empty());
        assert!(Span::default().is_empty());
    }

    #[test]
    fn span_from_range_checks() {
        assert_eq!(Span::from_range(1, 3), Some(Span { start: 1, end: 3 }));
        assert_eq!(Span::from_range(3, 1), None);
        assert_eq!(Span::from_range(0, usize::MAX), None);
    }

    #[test]
    fn eq_ignore_case_works() {
        assert!(eq_ignore_case(b"Content-Length", b"content-length"));
        assert!(eq_ignore_case(b"", b""));
        assert!(!eq_ignore_case(b"Host", b"Hosts"));
        assert!(!eq_ignore_case(b"ab", b"a\xc2"));
    }

    #[test]
    fn default_limits() {
        let l = HeadLimits::default();
        assert_eq!(
            (l.max_head_bytes, l.max_headers, l.max_request_line_bytes),
            (16384, 100, 8192)
        );
    }

    #[test]
    fn find_header_first_match_case_insensitive() {
        let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Y: 1\r\nx-y: 2\r\n\r\n";
        let mut headers = Vec::new();
        let head = parse_request_head(buf, &HeadLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        assert_eq!(head.head_len, buf.len());
        assert_eq!(find_header(buf, &headers, b"X-y"), Some(&b"1"[..]));
        assert_eq!(find_header(buf, &headers, b"HOST"), Some(&b"a"[..]));
        assert_eq!(find_header(buf, &headers, b"missing"), None);
    }
}
