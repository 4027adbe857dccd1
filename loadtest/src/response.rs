//! Sans-IO HTTP/1.1 response reading for the generator: head parsing (httparse), body framing
//! (Content-Length, chunked, until close, none), keep-alive decision and the per-response checks.
//!
//! It owns no socket and reads no clock: the connection code feeds it the bytes it has read and
//! asks whether a whole response is there. It never allocates per response unless a body check
//! needs the body of a chunked response.

use std::fmt;

/// Most headers a response may carry before it is counted as bad.
const MAX_HEADERS: usize = 64;
/// Largest response head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest response body accepted (a load test of something bigger is out of scope).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Per-response checks (`--expect-status`, `--expect-header`, `--expect-body-contains`,
/// `--expect-body-lacks`).
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The status every response must have.
    pub status: Option<u16>,
    /// Headers that must be present: (lowercased name, optional substring of the value).
    pub headers: Vec<(String, Option<String>)>,
    /// A string the body must contain.
    pub body_contains: Option<Vec<u8>>,
    /// Strings the body must not contain (e.g. a credential the gateway should have removed
    /// before the backend echoed the request).
    pub body_lacks: Vec<Vec<u8>>,
}

impl Checks {
    /// Whether any check is configured.
    pub fn any(&self) -> bool {
        self.status.is_some() || !self.headers.is_empty() || self.needs_body()
    }

    /// Whether a check looks at the body (chunked bodies are then decoded and kept).
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || !self.body_lacks.is_empty()
    }
}

/// Why a response was counted as bad (a protocol error, not a check failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadResponse {
    /// httparse refused the head.
    Head(String),
    /// The head is larger than [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// Content-Length is not a number, or appears twice with different values.
    ContentLength,
    /// A chunk size line is malformed.
    Chunk,
    /// The body is larger than [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// The connection closed before the response was complete.
    Truncated,
}

impl fmt::Display for BadResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadResponse::Head(e) => write!(f, "malformed response head: {e}"),
            BadResponse::HeadTooLarge => f.write_str("response head too large"),
            BadResponse::ContentLength => f.write_str("invalid Content-Length"),
            BadResponse::Chunk => f.write_str("malformed chunked body"),
            BadResponse::BodyTooLarge => f.write_str("response body too large"),
            BadResponse::Truncated => f.write_str("connection closed mid-response"),
        }
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Parsed head of the response being read.
#[derive(Debug, Clone)]
struct Head {
    status: u16,
    head_len: usize,
    framing: Framing,
    keep_alive: bool,
    headers_ok: bool,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complete {
    /// The status code.
    pub status: u16,
    /// Bytes of the buffer the response used (head and body); the rest belongs to the next one.
    pub consumed: usize,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// Whether every configured check passed.
    pub checks_passed: bool,
}

/// Reads one response at a time out of a connection's buffer. Reset with [`ResponseReader::reset`]
/// (or make a new one) after each complete response.
#[derive(Debug, Default)]
pub struct ResponseReader {
    head: Option<Head>,
    /// Chunked: offset (from the buffer start) of the next chunk-size line.
    chunk_pos: usize,
    /// Chunked with a body check: the decoded body so far.
    body: Vec<u8>,
    /// Whether the request was HEAD (no body whatever the headers say).
    head_request: bool,
}

impl ResponseReader {
    /// A reader for the response to a request with the given method.
    pub fn new(head_request: bool) -> Self {
        ResponseReader {
            head_request,
            ..ResponseReader::default()
        }
    }

    /// Forgets the current response; call after [`Complete`] before reading the next one.
    pub fn reset(&mut self) {
        self.head = None;
        self.chunk_pos = 0;
        self.body.clear();
    }

    /// Looks at `buf` (everything read since the end of the previous response) and says whether
    /// a whole response is there. `eof` is true once the server closed the connection. Cheap to
    /// call after every read: the head is parsed once and chunks are walked incrementally.
    pub fn poll(
        &mut self,
        buf: &[u8],
        eof: bool,
        checks: &Checks,
    ) -> Result<Option<Complete>, BadResponse> {
        if self.head.is_none() {
            match parse_head(buf, self.head_request, checks)? {
                Some(head) => {
                    self.chunk_pos = head.head_len;
                    self.head = Some(head);
                }
                None if eof => return Err(BadResponse::Truncated),
                None => return Ok(None),
            }
        }
        let Some(head) = self.head.clone() else {
            return Ok(None);
        };
        let body_end = match head.framing {
            Framing::Empty => Some(head.head_len),
            Framing::Length(n) => {
                let end = head.head_len.saturating_add(n);
                if buf.len() >= end {
                    Some(end)
                } else if eof {
                    return Err(BadResponse::Truncated);
                } else {
                    None
                }
            }
            Framing::UntilClose => {
                if buf.len() - head.head_len > MAX_BODY_BYTES {
                    return Err(BadResponse::BodyTooLarge);
                }
                eof.then_some(buf.len())
            }
            Framing::Chunked => match self.walk_chunks(buf, checks.needs_body())? {
                Some(end) => Some(end),
                None if eof => return Err(BadResponse::Truncated),
                None => None,
            },
        };
        let Some(end) = body_end else {
            return Ok(None);
        };
        let body_ok = !checks.needs_body() || {
            let body: &[u8] = if head.framing == Framing::Chunked {
                &self.body
            } else {
                &buf[head.head_len..end]
            };
            checks
                .body_contains
                .as_ref()
                .is_none_or(|needle| contains(body, needle))
                && !checks
                    .body_lacks
                    .iter()
                    .any(|needle| !needle.is_empty() && contains(body, needle))
        };
        let status_ok = checks.status.is_none_or(|s| s == head.status);
        Ok(Some(Complete {
            status: head.status,
            consumed: end,
            keep_alive: head.keep_alive && head.framing != Framing::UntilClose,
            checks_passed: status_ok && head.headers_ok && body_ok,
        }))
    }

    /// Advances over complete chunks; returns the end of the body (after the trailers) once the
    /// last chunk and the trailer section are in `buf`.
    fn walk_chunks(&mut self, buf: &[u8], keep_body: bool) -> Result<Option<usize>, BadResponse> {
        // Each iteration consumes one chunk; a chunk is at least 3 bytes ("0\r\n"), so the
        // count is bounded by the buffer length.
        for _ in 0..=buf.len() {
            let rest = buf.get(self.chunk_pos..).ok_or(BadResponse::Chunk)?;
            let (line_len, size) = match httparse::parse_chunk_size(rest) {
                Ok(httparse::Status::Complete(v)) => v,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(_) => return Err(BadResponse::Chunk),
            };
            let size = usize::try_from(size).map_err(|_| BadResponse::BodyTooLarge)?;
            if size == 0 {
                // Trailer section: header lines until an empty line.
                let trailers = &rest[line_len..];
                return Ok(find_trailer_end(trailers).map(|t| self.chunk_pos + line_len + t));
            }
            if self.body.len().saturating_add(size) > MAX_BODY_BYTES {
                return Err(BadResponse::BodyTooLarge);
            }
            let data_start = line_len;
            let data_end = data_start.saturating_add(size);
            let Some(crlf) = rest.get(data_end..data_end.saturating_add(2)) else {
                return Ok(None);
            };
            if crlf != b"\r\n" {
                return Err(BadResponse::Chunk);
            }
            if keep_body {
                self.body.extend_from_slice(&rest[data_start..data_end]);
            }
            self.chunk_pos += data_end + 2;
        }
        Err(BadResponse::Chunk)
    }
}

/// Offset just past the empty line ending a trailer section, if it is complete.
fn find_trailer_end(trailers: &[u8]) -> Option<usize> {
    if trailers.starts_with(b"\r\n") {
        return Some(2);
    }
    trailers
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// Whether `haystack` contains `needle` (an empty needle is always found).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn parse_head(
    buf: &[u8],
    head_request: bool,
    checks: &Checks,
) -> Result<Option<Head>, BadResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(BadResponse::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(e) => return Err(BadResponse::Head(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut keep_alive = http11;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(BadResponse::ContentLength)?;
            if content_length.is_some_and(|old| old != v) {
                return Err(BadResponse::ContentLength);
            }
            content_length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_length {
        if n > MAX_BODY_BYTES {
            return Err(BadResponse::BodyTooLarge);
        }
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let headers_ok = checks.headers.iter().all(|(name, sub)| {
        resp.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && sub.as_ref().is_none_or(|s| contains(h.value, s.as_bytes()))
        })
    });
    Ok(Some(Head {
        status,
        head_len,
        framing,
        keep_alive,
        headers_ok,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_all(raw: &[u8], checks: &Checks) -> Result<Option<Complete>, BadResponse> {
        ResponseReader::new(false).poll(raw, false, checks)
    }

    #[test]
    fn content_length_response_completes_only_with_its_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let none = Checks::default();
        for cut in 0..raw.len() {
            let mut r = ResponseReader::new(false);
            assert_eq!(r.poll(&raw[..cut], false, &none), Ok(None), "cut {cut}");
        }
        let done = poll_all(raw, &none).unwrap().unwrap();
        assert_eq!(done.status, 200);
        assert_eq!(done.consumed, raw.len());
        assert!(done.keep_alive && done.checks_passed);
    }

    #[test]
    fn pipelined_bytes_after_the_response_are_left_alone() {
        let raw = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";
        let done = poll_all(raw, &Checks::default()).unwrap().unwrap();
        assert_eq!(done.status, 204);
        assert_eq!(done.consumed, 27);
    }

    #[test]
    fn chunked_body_is_decoded_incrementally_and_checked() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\r\n\r\n3\r\ncde\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let checks = Checks {
            body_contains: Some(b"b\r\ncd".to_vec()),
            ..Checks::default()
        };
        let mut r = ResponseReader::new(false);
        for cut in 0..raw.len() - 4 {
            assert_eq!(r.poll(&raw[..cut], false, &checks), Ok(None), "cut {cut}");
        }
        let done = r.poll(raw, false, &checks).unwrap().unwrap();
        assert_eq!(done.consumed, raw.len() - 4);
        assert!(done.checks_passed, "decoded body is ab\\r\\ncde");
        let mut r = ResponseReader::new(false);
        let miss = Checks {
            body_contains: Some(b"zz".to_vec()),
            ..Checks::default()
        };
        assert!(!r.poll(raw, false, &miss).unwrap().unwrap().checks_passed);
    }

    #[test]
    fn malformed_chunks_and_lengths_are_bad_responses() {
        let c = Checks::default();
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(poll_all(bad_chunk, &c), Err(BadResponse::Chunk));
        let bad_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX";
        assert_eq!(poll_all(bad_crlf, &c), Err(BadResponse::Chunk));
        let bad_len = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
        assert_eq!(poll_all(bad_len, &c), Err(BadResponse::ContentLength));
        let two_lens = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(poll_all(two_lens, &c), Err(BadResponse::ContentLength));
        assert!(matches!(
            poll_all(b"HTTX/1.1 200 OK\r\n\r\n", &c),
            Err(BadResponse::Head(_))
        ));
    }

    #[test]
    fn eof_mid_response_is_truncated_and_until_close_completes_on_eof() {
        let c = Checks::default();
        let mut r = ResponseReader::new(false);
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(r.poll(partial, true, &c), Err(BadResponse::Truncated));
        let close = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        let mut r = ResponseReader::new(false);
        assert_eq!(r.poll(close, false, &c), Ok(None));
        let done = r.poll(close, true, &c).unwrap().unwrap();
        assert_eq!(done.consumed, close.len());
        assert!(!done.keep_alive);
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        let c = Checks::default();
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(!poll_all(close, &c).unwrap().unwrap().keep_alive);
        let ka10 = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(poll_all(ka10, &c).unwrap().unwrap().keep_alive);
        let plain10 = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(!poll_all(plain10, &c).unwrap().unwrap().keep_alive);
    }

    #[test]
    fn head_requests_and_bodyless_statuses_have_no_body() {
        let c = Checks::default();
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let done = ResponseReader::new(true)
            .poll(raw, false, &c)
            .unwrap()
            .unwrap();
        assert_eq!(done.consumed, raw.len());
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n";
        assert!(poll_all(not_modified, &c).unwrap().is_some());
    }

    #[test]
    fn status_and_header_checks() {
        let raw =
            b"HTTP/1.1 503 Busy\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let mut checks = Checks {
            status: Some(200),
            ..Checks::default()
        };
        assert!(!poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.status = Some(503);
        checks.headers = vec![("content-type".into(), Some("json".into()))];
        assert!(poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.headers = vec![("content-type".into(), Some("xml".into()))];
        assert!(!poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.headers = vec![("x-missing".into(), None)];
        assert!(!poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.headers = vec![];
        checks.body_contains = Some(b"{}".to_vec());
        assert!(poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.body_lacks = vec![b"secret".to_vec()];
        assert!(poll_all(raw, &checks).unwrap().unwrap().checks_passed);
        checks.body_lacks.push(b"}".to_vec());
        assert!(!poll_all(raw, &checks).unwrap().unwrap().checks_passed);
    }

    #[test]
    fn body_lacks_looks_at_the_decoded_chunked_body() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nret\r\n0\r\n\r\n";
        let lacks = |s: &[u8]| Checks {
            body_lacks: vec![s.to_vec()],
            ..Checks::default()
        };
        let mut r = ResponseReader::new(false);
        let split = r.poll(raw, false, &lacks(b"secret")).unwrap().unwrap();
        assert!(!split.checks_passed, "found across two chunks");
        let mut r = ResponseReader::new(false);
        assert!(
            r.poll(raw, false, &lacks(b"3\r\nret"))
                .unwrap()
                .unwrap()
                .checks_passed
        );
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused() {
        let c = Checks::default();
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert_eq!(poll_all(&big, &c), Err(BadResponse::HeadTooLarge));
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(
            poll_all(huge.as_bytes(), &c),
            Err(BadResponse::BodyTooLarge)
        );
    }
}
