//! Response heads from upstreams: [`parse_response_head`] with the same line-level strictness
//! as requests (CRLF only, no obs-fold, limits) and conservative framing: anything ambiguous is
//! a [`ResponseError`], which the proxy answers with 502 and which forbids reusing the upstream
//! connection. Also owns the rule for statuses that never have content
//! ([`status_has_no_content`]): their framing headers are not forwarded, and a head that
//! announces a body anyway makes its connection unusable. Sans-IO, no allocation beyond the
//! caller's reusable `Vec<HeaderField>`.

use std::mem::MaybeUninit;

use super::request::{collect_headers, httparse_reason, RequestError, MAX_PARSED_HEADERS};
use super::scan::{scan_head, ScanError};
use super::{HeadLimits, HeaderField, Method, Span};

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: HEAD request, 1xx (101 included), 204, 304.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the upstream closes (never reusable).
    UntilClose,
}

/// A parsed response head. Spans point into the buffer given to [`parse_response_head`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=599.
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// The status line, CRLF included.
    pub status_line: Span,
    /// Bytes of the head including the final CRLF CRLF: the body starts at this offset.
    pub head_len: usize,
    /// How the body is framed.
    pub body: ResponseBody,
    /// Whether the upstream connection may be reused after this response: false for
    /// `Connection: close`, HTTP/1.0 without `keep-alive`, [`ResponseBody::UntilClose`], 101,
    /// and a 204 or 304 whose head announces a body (see [`parse_response_head`]).
    pub keep_alive: bool,
}

/// True for the statuses that never carry content whatever their header fields say: 1xx,
/// 204 and 304 (RFC 9110 §15.2, §15.3.5, §15.4.5; RFC 9112 §6.3 rule 1). A server must not
/// send `Content-Length` or `Transfer-Encoding` on 1xx and 204 (RFC 9110 §8.6, RFC 9112
/// §6.1); on 304 a `Content-Length` only describes the stored representation, and a cache
/// does not take it from the 304 (RFC 9111 §3.2). So no copy of such a head, HTTP/1.1 or
/// HTTP/2, carries either field: a client that honoured one would read the next response as
/// this one's body.
#[inline]
pub fn status_has_no_content(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Why a response head was refused. All mean 502 to the client and "do not reuse" upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Head over `max_head_bytes`.
    HeadTooLarge,
    /// More than `max_headers` fields.
    TooManyHeaders,
    /// Malformed or ambiguous head; the text names the rule.
    Invalid(&'static str),
}

impl ResponseError {
    /// A short reason for logs (never echoes input).
    pub fn reason(&self) -> &'static str {
        match self {
            ResponseError::HeadTooLarge => "upstream response head too large",
            ResponseError::TooManyHeaders => "too many upstream response header fields",
            ResponseError::Invalid(r) => r,
        }
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResponseError {}

impl From<ScanError> for ResponseError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::HeadTooLarge => ResponseError::HeadTooLarge,
            ScanError::TooManyHeaders => ResponseError::TooManyHeaders,
            ScanError::LineTooLong => ResponseError::Invalid("status line too long"),
            ScanError::Invalid(r) => ResponseError::Invalid(r),
        }
    }
}

impl From<RequestError> for ResponseError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::HeadTooLarge => ResponseError::HeadTooLarge,
            RequestError::TooManyHeaders => ResponseError::TooManyHeaders,
            other => ResponseError::Invalid(other.reason()),
        }
    }
}

/// Parses a response head at the start of `buf`.
///
/// `request_method` decides HEAD framing; 1xx (101 included), 204 and 304 have no body.
/// `Ok(None)`: incomplete, read more. A 1xx other than 101 is an interim response: forward or
/// skip it and parse again at `head_len`. Framing rules: both Content-Length and
/// Transfer-Encoding, several Content-Length (even equal), a Transfer-Encoding other than
/// exactly `chunked` or on HTTP/1.0 are all refused, even where the status means no body.
///
/// A head whose status has no content ([`status_has_no_content`]) but which announces a body
/// (`Transfer-Encoding`, or a `Content-Length` other than 0) was written by a server that
/// means to send bytes no response owns: RFC 9112 §6.3 ends such a response at its head, so
/// those bytes would be read as the start of the next one. A 204 or 304 is kept (its status
/// is final whatever follows) with `keep_alive` false, so the connection is closed after it;
/// an interim 1xx is refused, since the bytes after it are this request's final response by
/// one reading and a body by the other. A HEAD answer's `Content-Length` is the GET's
/// length (RFC 9110 §9.3.2) and announces nothing.
pub fn parse_response_head(
    buf: &[u8],
    limits: &HeadLimits,
    request_method: Method,
    headers: &mut Vec<HeaderField>,
) -> Result<Option<ResponseHead>, ResponseError> {
    headers.clear();
    let Some(scan) = scan_head(buf, limits, 0)? else {
        return Ok(None);
    };
    if scan.header_lines > MAX_PARSED_HEADERS {
        return Err(ResponseError::TooManyHeaders);
    }
    let head = buf.get(scan.start..scan.head_len).unwrap_or_default();
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_PARSED_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, &mut raw)
    {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(ResponseError::Invalid("malformed head")),
        Err(e) => return Err(ResponseError::Invalid(httparse_reason(e))),
    }
    let (Some(status), Some(version_minor)) = (resp.code, resp.version) else {
        return Err(ResponseError::Invalid("malformed head"));
    };
    if !(100..=599).contains(&status) {
        return Err(ResponseError::Invalid("status code out of range"));
    }
    if resp.headers.len() != scan.header_lines {
        return Err(ResponseError::Invalid("malformed head"));
    }
    let summary = collect_headers(buf, &scan, resp.headers, headers)?;
    let no_content = status_has_no_content(status);
    let announces_body =
        no_content && (summary.chunked || summary.content_length.is_some_and(|n| n > 0));
    if announces_body && status < 200 && status != 101 {
        return Err(ResponseError::Invalid("interim response announces a body"));
    }
    let no_body = request_method == Method::Head || no_content;
    let body = match (summary.content_length, summary.chunked) {
        (Some(_), true) => {
            return Err(ResponseError::Invalid(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (None, true) if version_minor == 0 => {
            return Err(ResponseError::Invalid("Transfer-Encoding on HTTP/1.0"))
        }
        _ if no_body => ResponseBody::None,
        (Some(n), false) => ResponseBody::Length(n),
        (None, true) => ResponseBody::Chunked,
        (None, false) => ResponseBody::UntilClose,
    };
    let conn = summary.connection;
    let keep_alive = !conn.close
        && (version_minor == 1 || conn.keep_alive)
        && body != ResponseBody::UntilClose
        && status != 101
        && !announces_body;
    let status_line_end = scan.start_line_cr + 2;
    let status_line = Span::from_range(scan.start, status_line_end)
        .ok_or(ResponseError::Invalid("malformed head"))?;
    Ok(Some(ResponseHead {
        status,
        version_minor,
        status_line,
        head_len: scan.head_len,
        body,
        keep_alive,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "response_tests.rs"]
mod tests;
