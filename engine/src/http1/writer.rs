//! Writers for the heads Torii sends: status lines and headers it makes itself, and the
//! verbatim copy of a parsed request or response head for forwarding (minus hop-by-hop,
//! spoofable and caller-selected headers) — no re-serialising of untouched headers.
//!
//! Everything appends to a caller-owned `Vec<u8>`; numbers are formatted on the stack. The
//! writers do not validate what they are given: names and values passed to [`write_header`]
//! must come from configuration or from this module's parser (see [`is_valid_header_value`]).

use super::response::status_has_no_content;
use super::{HeaderField, HeaderKind, RequestHead, ResponseHead};

/// Appends the decimal form of `n` without allocating.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// The canonical reason phrase of RFC 9110 for `status`; a class name ("Client Error"…) for
/// codes without one, "Unknown" outside 100..=599.
pub fn reason_phrase(status: u16) -> &'static str {
    if let Some(reason) = canonical_reason(status) {
        return reason;
    }
    match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Unknown",
    }
}

/// The reason phrases RFC 9110 §15 defines.
fn canonical_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// Appends `"HTTP/1.1 {status} {reason}\r\n"` with the canonical reason phrase.
pub fn write_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `"name: value\r\n"`. The bytes are not checked: see [`is_valid_header_value`].
pub fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `"content-length: N\r\n"`, formatting N on the stack.
pub fn write_content_length(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"content-length: ");
    write_u64(out, len);
    out.extend_from_slice(b"\r\n");
}

/// True when `value` can be written as a header value without changing the message structure:
/// no CR, LF, NUL or other control byte but HTAB. Use it on values built from request data.
pub fn is_valid_header_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// True for headers never forwarded upstream whatever the caller says: hop-by-hop, the
/// spoofable Otoroshi set, the X-Forwarded-* that Torii writes itself, the other forwarding
/// headers only a proxy may set, and names with `_` — always when they read as one of those
/// with `-` (`X_Forwarded_For`, `Otoroshi_Claim`: CGI/WSGI stacks give both spellings the same
/// variable), and every one unless the listener allows underscores (nginx's default,
/// `underscores_in_headers off`).
fn stripped_on_request(h: &HeaderField, buf: &[u8], allow_underscores: bool) -> bool {
    h.hop_by_hop
        || matches!(
            h.kind,
            HeaderKind::OtoroshiSpoofable
                | HeaderKind::XForwardedFor
                | HeaderKind::XForwardedProto
                | HeaderKind::XForwardedHost
                | HeaderKind::ClientForwarding
        )
        || (h.underscore
            && (!allow_underscores
                || HeaderKind::classify_dashed(h.name.get(buf)) != HeaderKind::Other))
}

/// What [`copy_request_head`] left out that the caller counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopiedHead {
    /// Header lines dropped because their name has `_`.
    pub underscore_dropped: u32,
}

/// Copies a request head for forwarding: the request line (`METHOD path[?query] HTTP/1.1`),
/// then every header line verbatim (`line` bytes) except those [`stripped_on_request`] names
/// and those for which `drop(field)` returns true. Does NOT write the final CRLF (the caller
/// appends its own headers, then "\r\n").
///
/// `path` is the path to send: the canonical path (or the client's bytes when they are
/// canonical or the route forwards them raw); the query is the client's, unchanged. The target
/// is written in origin-form (an absolute-form target loses its scheme and authority; Host
/// already equals that authority). The caller adds framing for the body it sends
/// (`Transfer-Encoding` is hop-by-hop and never copied; `Content-Length` is), and `Host`.
pub fn copy_request_head(
    buf: &[u8],
    head: &RequestHead,
    path: &[u8],
    headers: &[HeaderField],
    allow_underscores: bool,
    out: &mut Vec<u8>,
    mut drop: impl FnMut(&HeaderField) -> bool,
) -> CopiedHead {
    let mut copied = CopiedHead::default();
    out.reserve(head.head_len);
    out.extend_from_slice(head.method_span.get(buf));
    out.push(b' ');
    out.extend_from_slice(path);
    if let Some(q) = head.query {
        out.push(b'?');
        out.extend_from_slice(q.get(buf));
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        if stripped_on_request(h, buf, allow_underscores) {
            copied.underscore_dropped += u32::from(h.underscore);
        } else if !drop(h) {
            out.extend_from_slice(h.line.get(buf));
        }
    }
    copied
}

/// Same for a response head: status line verbatim (normalised to HTTP/1.1), headers verbatim
/// except hop_by_hop ones (`Transfer-Encoding` among them), `Content-Length` on a status that
/// has no content ([`status_has_no_content`]: 1xx, 204, 304) and those `drop` selects; no
/// final CRLF.
pub fn copy_response_head(
    buf: &[u8],
    head: &ResponseHead,
    headers: &[HeaderField],
    out: &mut Vec<u8>,
    mut drop: impl FnMut(&HeaderField) -> bool,
) {
    out.reserve(head.head_len);
    let line = head.status_line.get(buf);
    match line.get(8..) {
        Some(rest) if line.starts_with(b"HTTP/1.") => {
            out.extend_from_slice(b"HTTP/1.1");
            out.extend_from_slice(rest);
        }
        _ => write_status_line(out, head.status),
    }
    let no_content = status_has_no_content(head.status);
    for h in headers {
        let framing = no_content && h.kind == HeaderKind::ContentLength;
        if !h.hop_by_hop && !framing && !drop(h) {
            out.extend_from_slice(h.line.get(buf));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{parse_request_head, parse_response_head, HeadLimits, Method};
    use super::*;

    #[test]
    fn numbers_and_status_lines() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            out.clear();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        out.clear();
        write_status_line(&mut out, 200);
        write_status_line(&mut out, 431);
        write_status_line(&mut out, 599);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nHTTP/1.1 431 Request Header Fields Too Large\r\nHTTP/1.1 599 Server Error\r\n"
        );
        assert_eq!(reason_phrase(502), "Bad Gateway");
        assert_eq!(reason_phrase(1000), "Unknown");
    }

    #[test]
    fn headers_and_content_length() {
        let mut out = Vec::new();
        write_header(&mut out, b"x-a", b"b c");
        write_content_length(&mut out, 0);
        write_content_length(&mut out, 1_000_000);
        assert_eq!(
            out,
            b"x-a: b c\r\ncontent-length: 0\r\ncontent-length: 1000000\r\n"
        );
        assert!(is_valid_header_value(b"a\tb \xff"));
        assert!(!is_valid_header_value(b"a\r\nb"));
        assert!(!is_valid_header_value(b"a\0"));
    }

    #[test]
    fn copy_request_strips_hop_by_hop_spoofable_and_forwarded() {
        let buf = b"POST http://h/p?q=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\n\
X-Hop: 1\r\nOtoroshi-Claim: forged\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: http\r\n\
X-Forwarded-Host: evil\r\nTransfer-Encoding: chunked\r\nProxy-Authorization: x\r\n\
Accept:  */* \r\nTE: trailers\r\nUpgrade: h2c\r\nX-Api-Key: secret\r\nKeep-Alive: 5\r\n\r\n";
        let mut hs = Vec::new();
        let head = parse_request_head(buf, &HeadLimits::default(), &mut hs)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        copy_request_head(buf, &head, head.path.get(buf), &hs, false, &mut out, |h| {
            h.name.get(buf).eq_ignore_ascii_case(b"x-api-key")
        });
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /p?q=1 HTTP/1.1\r\nHost: h\r\nAccept:  */* \r\n"
        );
    }

    #[test]
    fn copy_request_normalises_version() {
        let buf = b"GET /x HTTP/1.0\r\nUser-Agent: a\r\n\r\n";
        let mut hs = Vec::new();
        let head = parse_request_head(buf, &HeadLimits::default(), &mut hs)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        copy_request_head(buf, &head, head.path.get(buf), &hs, false, &mut out, |_| {
            false
        });
        assert_eq!(out, b"GET /x HTTP/1.1\r\nUser-Agent: a\r\n");
    }

    #[test]
    fn copy_response_verbatim_minus_hop_by_hop() {
        let buf =
            b"HTTP/1.0 201 Created Here\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
Content-Length: 2\r\nOtoroshi-State-Resp: x\r\nSet-Cookie: a=b; Path=/\r\n\r\nok";
        let mut hs = Vec::new();
        let head = parse_response_head(buf, &HeadLimits::default(), Method::Get, &mut hs)
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let mut out = Vec::new();
        copy_response_head(buf, &head, &hs, &mut out, |h| {
            h.name.get(buf).eq_ignore_ascii_case(b"otoroshi-state-resp")
        });
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 201 Created Here\r\nContent-Length: 2\r\nSet-Cookie: a=b; Path=/\r\n"
        );
        // a head that does not belong to `buf` falls back to a canonical status line
        out.clear();
        copy_response_head(b"", &head, &[], &mut out, |_| false);
        assert_eq!(out, b"HTTP/1.1 201 Created\r\n");
        // …and so does one whose bytes at the status line's place are not an HTTP/1 line.
        out.clear();
        copy_response_head(&[b'X'; 64], &head, &[], &mut out, |_| false);
        assert_eq!(out, b"HTTP/1.1 201 Created\r\n");
    }

    #[test]
    fn copy_response_drops_framing_where_the_status_has_no_content() {
        // RFC 9110 §8.6: no Content-Length on 1xx or 204; RFC 9111 §3.2: a 304's is not used.
        let copy = |method: Method, status: &str| {
            let buf = format!("HTTP/1.1 {status}\r\nContent-Length: 15\r\nETag: \"e\"\r\n\r\n");
            let buf = buf.as_bytes();
            let mut hs = Vec::new();
            let head = parse_response_head(buf, &HeadLimits::default(), method, &mut hs)
                .unwrap()
                .unwrap();
            let mut out = Vec::new();
            copy_response_head(buf, &head, &hs, &mut out, |_| false);
            String::from_utf8(out).unwrap()
        };
        for status in [
            "204 No Content",
            "304 Not Modified",
            "101 Switching Protocols",
        ] {
            assert_eq!(
                copy(Method::Get, status),
                format!("HTTP/1.1 {status}\r\nETag: \"e\"\r\n"),
            );
        }
        // A HEAD answer's length is the GET's (RFC 9110 §9.3.2): kept.
        assert_eq!(
            copy(Method::Head, "200 OK"),
            "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nETag: \"e\"\r\n"
        );
    }

    #[test]
    fn copy_request_counts_the_underscore_lines_it_drops() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX_Api_Key: a\r\nX-Ok: 1\r\nX_Other: b\r\n\r\n";
        let mut hs = Vec::new();
        let head = parse_request_head(buf, &HeadLimits::default(), &mut hs)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        let copied =
            copy_request_head(buf, &head, head.path.get(buf), &hs, false, &mut out, |_| {
                false
            });
        assert_eq!(copied.underscore_dropped, 2);
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\nX-Ok: 1\r\n");
        out.clear();
        let copied = copy_request_head(buf, &head, head.path.get(buf), &hs, true, &mut out, |_| {
            false
        });
        assert_eq!(copied.underscore_dropped, 0);
    }
}
