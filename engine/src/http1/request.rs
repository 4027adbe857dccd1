//! Request heads: [`parse_request_head`] turns the bytes a client sent into a [`RequestHead`]
//! plus [`HeaderField`] spans, or a final [`RequestError`] the caller answers and then closes.
//!
//! This is where the HTTP/1.1 request refusal rules (docs/security.md §5) live: framing
//! (Content-Length / Transfer-Encoding), Host, the request target, the version, and — through
//! [`super::scan`] — line endings, obs-fold and the size limits. No IO, no allocation (the
//! caller's `Vec<HeaderField>` is cleared and reused), no panic on any input.

use std::mem::MaybeUninit;

use super::header::{
    is_exact_chunked, mark_connection_named, parse_content_length, ConnectionFlags,
};
use super::scan::{scan_head, HeadScan, ScanError, MAX_LEADING_EMPTY_LINES};
use super::{eq_ignore_case, HeadLimits, HeaderField, HeaderKind, Span};

/// Capacity of the stack array handed to `httparse`; `max_headers` above this is clamped.
pub(crate) const MAX_PARSED_HEADERS: usize = 256;

/// Request methods the proxy distinguishes (case-sensitive, as RFC 9110 says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: responses carry no body.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`: the only method that may use the `*` target.
    Options,
    /// `PATCH`.
    Patch,
    /// `TRACE`.
    Trace,
    /// `CONNECT`: always refused (Torii does not tunnel).
    Connect,
    /// Any other token; see [`RequestHead::method_span`] for the bytes.
    Other,
}

impl Method {
    /// Classifies a method token (exact, case-sensitive match).
    pub fn from_bytes(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// Idempotent methods of RFC 9110 §9.2.2 (GET HEAD PUT DELETE OPTIONS TRACE): the only ones
    /// the proxy may retry.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Put
                | Method::Delete
                | Method::Options
                | Method::Trace
        )
    }
}

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (neither Content-Length nor Transfer-Encoding).
    None,
    /// `Content-Length: n` (`n` may be 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`: decode with [`super::ChunkedDecoder`].
    Chunked,
}

/// A parsed request head. Spans point into the buffer given to [`parse_request_head`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The classified method.
    pub method: Method,
    /// The method token as sent.
    pub method_span: Span,
    /// The request target as sent (origin-form, `*`, or absolute-form).
    pub target: Span,
    /// The path: the target up to `?`; for absolute-form, from the `/` after the authority.
    pub path: Span,
    /// The query, after `?` (possibly empty); `None` without `?`.
    pub query: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// The request line, CRLF included.
    pub request_line: Span,
    /// Bytes of the head including any skipped leading CRLFs and the final CRLF CRLF: the body
    /// (or the next request) starts at this offset.
    pub head_len: usize,
    /// The value of the single Host header.
    pub host: Option<Span>,
    /// How the body is framed.
    pub body: BodyFraming,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// HTTP/1.1 with `Expect: 100-continue` (ignored on HTTP/1.0, RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// An `Upgrade` header on HTTP/1.1 (ignored on HTTP/1.0, RFC 9110 §7.8). The proxy keeps
    /// parsing HTTP unless the upstream answers 101.
    pub upgrade: bool,
}

/// Why a request head was refused. Final: answer [`RequestError::status`] and close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Head over `max_head_bytes` (431).
    HeadTooLarge,
    /// More than `max_headers` fields (431).
    TooManyHeaders,
    /// Request line over `max_request_line_bytes` (414).
    UriTooLong,
    /// Malformed or ambiguous request (400); the text names the rule.
    Invalid(&'static str),
    /// A well-formed `HTTP/x.y` other than 1.0 and 1.1 (505).
    UnsupportedVersion,
}

impl RequestError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => 431,
            RequestError::UriTooLong => 414,
            RequestError::Invalid(_) => 400,
            RequestError::UnsupportedVersion => 505,
        }
    }

    /// A short reason, fit for logs and error bodies (never echoes input).
    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::HeadTooLarge => "request header section too large",
            RequestError::TooManyHeaders => "too many header fields",
            RequestError::UriTooLong => "request line too long",
            RequestError::Invalid(reason) => reason,
            RequestError::UnsupportedVersion => "HTTP version not supported",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for RequestError {}

impl From<ScanError> for RequestError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::HeadTooLarge => RequestError::HeadTooLarge,
            ScanError::TooManyHeaders => RequestError::TooManyHeaders,
            ScanError::LineTooLong => RequestError::UriTooLong,
            ScanError::Invalid(r) => RequestError::Invalid(r),
        }
    }
}

/// The span of `part`, a sub-slice of `buf`, as offsets into `buf`.
pub(crate) fn span_in(buf: &[u8], part: &[u8]) -> Option<Span> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    if end > buf.len() {
        return None;
    }
    Span::from_range(start, end)
}

/// Maps an `httparse` error on a head the scan accepted to a reason.
pub(crate) fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header field name",
        httparse::Error::HeaderValue => "invalid byte in header field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// True for `HTTP/` DIGIT `.` DIGIT: a version we can name but may not support.
fn is_version_shaped(v: &[u8]) -> bool {
    matches!(v, [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Bytes allowed in a Host value / absolute-form authority: reg-name, IP literals, port.
pub(crate) fn is_authority_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b)
}

/// Splits and checks the request target; returns (target without its fragment, path, query,
/// absolute-form authority).
///
/// Accepted: origin-form (`/...`), `*` for OPTIONS, and absolute-form `http(s)://authority/...`
/// (RFC 9112 §3.2.2 says a server MUST accept it); absolute-form must have a path and no
/// userinfo, and its authority must equal the Host header (checked by the caller) so the
/// routing host and the host the backend sees cannot differ. Non-ASCII bytes are refused
/// (`httparse` already refuses controls and spaces).
///
/// A `#fragment` is cut off: the target ends before `#`, so the fragment is neither routed on
/// nor forwarded. It has no meaning in a request (RFC 9112 §3.2: origin-form is path and query;
/// RFC 9110 §4.2.5: fragments are the client's), and this is the one rule both protocols can
/// keep: over HTTP/2 the `h2` crate builds `:path` with the `http` crate's URI parser, which
/// drops a fragment (WHATWG URL rules) before any of Torii's code sees the stream. nginx does
/// the same. What matters is that the path routed and the path forwarded are one: a fragment
/// forwarded to a backend that reads it as part of the path (HAProxy's CVE-2023-45539) is what
/// made `#` dangerous.
pub(crate) fn check_target(
    buf: &[u8],
    target: Span,
    method: Method,
) -> Result<(Span, Span, Option<Span>, Option<Span>), RequestError> {
    let bad = RequestError::Invalid("invalid request target");
    let whole = target.get(buf);
    if whole.iter().any(|&b| b >= 0x80) {
        return Err(bad);
    }
    let target = match memchr::memchr(b'#', whole) {
        Some(0) => return Err(bad),
        Some(cut) => {
            Span::from_range(target.start as usize, target.start as usize + cut).ok_or(bad)?
        }
        None => target,
    };
    let t = target.get(buf);
    if t == b"*" {
        return if method == Method::Options {
            Ok((target, target, None, None))
        } else {
            Err(bad)
        };
    }
    let (path_start, authority) = match t.first() {
        Some(b'/') => (target.start as usize, None),
        _ => {
            let has_prefix = |p: &[u8]| t.get(..p.len()).is_some_and(|h| eq_ignore_case(h, p));
            let scheme_len = if has_prefix(b"http://") {
                7
            } else if has_prefix(b"https://") {
                8
            } else {
                return Err(bad);
            };
            let rest = t.get(scheme_len..).unwrap_or_default();
            let auth_len = rest.iter().position(|&b| b == b'/' || b == b'?');
            let Some(auth_len) = auth_len.filter(|&n| rest.get(n) == Some(&b'/')) else {
                return Err(RequestError::Invalid("absolute-form target without path"));
            };
            let auth = rest.get(..auth_len).unwrap_or_default();
            if auth.is_empty() || !auth.iter().all(|&b| is_authority_byte(b)) {
                return Err(bad);
            }
            let auth_start = target.start as usize + scheme_len;
            let auth_span = Span::from_range(auth_start, auth_start + auth_len).ok_or(bad)?;
            (auth_start + auth_len, Some(auth_span))
        }
    };
    let end = target.end as usize;
    let rest = buf.get(path_start..end).ok_or(bad)?;
    let (path, query) = match memchr::memchr(b'?', rest) {
        Some(q) => (
            Span::from_range(path_start, path_start + q).ok_or(bad)?,
            Some(Span::from_range(path_start + q + 1, end).ok_or(bad)?),
        ),
        None => (Span::from_range(path_start, end).ok_or(bad)?, None),
    };
    Ok((target, path, query, authority))
}

/// Parses a request head at the start of `buf`.
///
/// `Ok(None)`: incomplete, read more and call again with the longer buffer (the whole head is
/// re-parsed; heads are small). Errors are final: answer `status()` and close. On success
/// `headers` holds one [`HeaderField`] per header line, in order. Cost: one memchr pass, one
/// `httparse` pass, one classification per header; no allocation once `headers` has grown.
pub fn parse_request_head(
    buf: &[u8],
    limits: &HeadLimits,
    headers: &mut Vec<HeaderField>,
) -> Result<Option<RequestHead>, RequestError> {
    headers.clear();
    let Some(scan) = scan_head(buf, limits, MAX_LEADING_EMPTY_LINES)? else {
        return Ok(None);
    };
    if scan.header_lines > MAX_PARSED_HEADERS {
        return Err(RequestError::TooManyHeaders);
    }
    let head = buf.get(scan.start..scan.head_len).unwrap_or_default();
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_PARSED_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(head, &mut raw) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(RequestError::Invalid("malformed head")),
        Err(httparse::Error::Version) => {
            // 505 only for `method SP target SP HTTP/d.d`; anything else is garbage (400)
            let line = buf.get(scan.start..scan.start_line_cr).unwrap_or_default();
            let mut parts = line.split(|&b| b == b' ');
            let shaped = matches!(
                (parts.next(), parts.next(), parts.next(), parts.next()),
                (Some(m), Some(t), Some(v), None)
                    if !m.is_empty() && !t.is_empty() && is_version_shaped(v)
            );
            return Err(if shaped {
                RequestError::UnsupportedVersion
            } else {
                RequestError::Invalid("invalid HTTP version")
            });
        }
        Err(e) => return Err(RequestError::Invalid(httparse_reason(e))),
    }
    let internal = RequestError::Invalid("malformed head");
    let (Some(method_str), Some(target_str), Some(version_minor)) =
        (req.method, req.path, req.version)
    else {
        return Err(internal);
    };
    let method_span = span_in(buf, method_str.as_bytes()).ok_or(internal)?;
    let method = Method::from_bytes(method_str.as_bytes());
    if method == Method::Connect {
        return Err(RequestError::Invalid("CONNECT is not supported"));
    }
    let target = span_in(buf, target_str.as_bytes()).ok_or(internal)?;
    let (target, path, query, authority) = check_target(buf, target, method)?;
    if req.headers.len() != scan.header_lines {
        return Err(internal);
    }
    let summary = collect_headers(buf, &scan, req.headers, headers)?;

    let host = summary.host;
    if version_minor == 1 && host.is_none() {
        return Err(RequestError::Invalid("missing Host header"));
    }
    if let Some(h) = host {
        let v = h.get(buf);
        if v.is_empty() || !v.iter().all(|&b| is_authority_byte(b)) {
            return Err(RequestError::Invalid("invalid Host header"));
        }
        if let Some(a) = authority {
            if !eq_ignore_case(a.get(buf), v) {
                return Err(RequestError::Invalid(
                    "Host differs from the target authority",
                ));
            }
        }
    }
    let body = match (summary.content_length, summary.chunked) {
        (Some(_), true) => {
            return Err(RequestError::Invalid(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (Some(n), false) => BodyFraming::Length(n),
        (None, true) if version_minor == 0 => {
            return Err(RequestError::Invalid("Transfer-Encoding on HTTP/1.0"))
        }
        (None, true) => BodyFraming::Chunked,
        (None, false) => BodyFraming::None,
    };
    let conn = summary.connection;
    let keep_alive = !conn.close && (version_minor == 1 || conn.keep_alive);
    Ok(Some(RequestHead {
        method,
        method_span,
        target,
        path,
        query,
        version_minor,
        request_line: Span::from_range(scan.start, scan.start_line_cr + 2).ok_or(internal)?,
        head_len: scan.head_len,
        host,
        body,
        keep_alive,
        expect_continue: version_minor == 1 && summary.expect_continue,
        upgrade: version_minor == 1 && summary.upgrade,
    }))
}

/// True for `Content_Length` / `Transfer_Encoding` in any mix of `_` and `-` with at least one
/// `_`: servers that map `_` to `-` (CGI-style environments) would read a second framing header
/// that this parser does not see, so such names are refused rather than forwarded.
pub(crate) fn is_disguised_framing(name: &[u8]) -> bool {
    let same = |want: &[u8]| {
        name.len() == want.len()
            && name.contains(&b'_')
            && name
                .iter()
                .zip(want)
                .all(|(&a, &b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    };
    same(b"content-length") || same(b"transfer-encoding")
}

/// What the header lines of a head say about framing and connection handling.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeaderSummary {
    /// The single Host value.
    pub host: Option<Span>,
    /// The single, valid Content-Length value.
    pub content_length: Option<u64>,
    /// A single Transfer-Encoding header whose value is exactly `chunked`.
    pub chunked: bool,
    /// Folded Connection tokens.
    pub connection: ConnectionFlags,
    /// `Expect: 100-continue` seen.
    pub expect_continue: bool,
    /// An Upgrade header seen.
    pub upgrade: bool,
}

/// Turns `httparse` headers into [`HeaderField`]s (pushed into `out`) and folds the framing
/// headers, refusing duplicates and malformed values. Shared with responses.
pub(crate) fn collect_headers(
    buf: &[u8],
    scan: &HeadScan,
    parsed: &[httparse::Header<'_>],
    out: &mut Vec<HeaderField>,
) -> Result<HeaderSummary, RequestError> {
    let internal = RequestError::Invalid("malformed head");
    let mut s = HeaderSummary::default();
    let mut te_seen = false;
    let last_line_end = scan.head_len.checked_sub(2).ok_or(internal)?;
    for (i, h) in parsed.iter().enumerate() {
        let name = span_in(buf, h.name.as_bytes()).ok_or(internal)?;
        let value = span_in(buf, h.value).ok_or(internal)?;
        let line_end = match parsed.get(i + 1) {
            Some(next) => span_in(buf, next.name.as_bytes()).ok_or(internal)?.start as usize,
            None => last_line_end,
        };
        let line = Span::from_range(name.start as usize, line_end).ok_or(internal)?;
        let kind = HeaderKind::classify(h.name.as_bytes());
        match kind {
            HeaderKind::Host => {
                let duplicate = s.host.replace(value).is_some();
                if duplicate {
                    return Err(RequestError::Invalid("several Host headers"));
                }
            }
            HeaderKind::ContentLength => {
                if s.content_length.is_some() {
                    return Err(RequestError::Invalid("several Content-Length headers"));
                }
                s.content_length = Some(
                    parse_content_length(h.value)
                        .ok_or(RequestError::Invalid("invalid Content-Length"))?,
                );
            }
            HeaderKind::TransferEncoding => {
                if te_seen || !is_exact_chunked(h.value) {
                    return Err(RequestError::Invalid(
                        "Transfer-Encoding other than chunked",
                    ));
                }
                te_seen = true;
                s.chunked = true;
            }
            HeaderKind::Connection => s.connection.add(h.value),
            HeaderKind::Expect => {
                s.expect_continue |= eq_ignore_case(h.value, b"100-continue");
            }
            HeaderKind::Upgrade => s.upgrade = true,
            HeaderKind::Other if is_disguised_framing(h.name.as_bytes()) => {
                return Err(RequestError::Invalid(
                    "underscore spelling of a framing header",
                ));
            }
            _ => {}
        }
        out.push(HeaderField {
            name,
            value,
            line,
            kind,
            underscore: memchr::memchr(b'_', h.name.as_bytes()).is_some(),
            hop_by_hop: kind.is_hop_by_hop(),
        });
    }
    if s.connection.names_headers {
        mark_connection_named(buf, out);
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "request_tests.rs"]
mod tests;
