//! An HTTP/2 request head rendered as an HTTP/1.1 request head, so that the stream can be
//! served by the same connection code and phases as an HTTP/1.1 request.
//!
//! Owns the rules of RFC 9113 §8 that decide whether a request the `h2` crate decoded may be
//! forwarded at all (the crate already refuses unknown or misplaced pseudo-headers and most
//! connection-specific fields; this checks again, byte by byte, so the rendered head can never
//! carry a line break or a second request): connection-specific fields (`connection`,
//! `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`) and a `te` other than
//! `trailers` are malformed (§8.2.2); field values must not hold CR, LF or NUL, nor start or
//! end with whitespace (§8.2.1); `:authority` must not carry userinfo and must agree with a
//! `Host` field when both are sent (§8.3.1). Several `cookie` fields are joined with `"; "`
//! into one line (§8.2.3). The body is framed for HTTP/1.1 by its `content-length`, or
//! chunked when the client sent none and the stream does not end with its head.
//!
//! It does not enforce the head limits: the rendered head goes through the HTTP/1.1 parser,
//! which answers 431/414 with the same bodies as for an HTTP/1.1 client (and `h2` already
//! caps the header list at `limits.max_header_bytes`). Sans-IO: no allocation beyond `out`.

use http::header::{HeaderMap, HeaderValue, COOKIE, HOST};
use http::{Method, Uri};

/// How the rendered request's body is framed for the HTTP/1.1 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: the stream ended with its head.
    None,
    /// `content-length: n`, as the client declared it (`h2` refuses DATA that disagrees).
    Length(u64),
    /// No `content-length`: the DATA frames are sent as chunks.
    Chunked,
}

/// Why a request cannot be forwarded: the stream is reset with `PROTOCOL_ERROR` (a malformed
/// request, RFC 9113 §8.1.1). The text names the rule, never the client's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Renders the request line, the fields and the framing header of a request into `out`
/// (cleared first), ending with the empty line. `end_of_stream` is true when the HEADERS frame
/// ended the stream (no body).
pub fn render_request_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap<HeaderValue>,
    end_of_stream: bool,
    out: &mut Vec<u8>,
) -> Result<BodyFraming, Malformed> {
    out.clear();
    let authority = match uri.authority() {
        Some(a) if a.as_str().contains('@') => return Err(Malformed("userinfo in :authority")),
        Some(a) => Some(a.as_str().as_bytes()),
        None => None,
    };
    let mut hosts = headers.get_all(HOST).iter();
    let host_field = hosts.next().map(HeaderValue::as_bytes);
    if hosts.next().is_some() {
        return Err(Malformed("several host fields"));
    }
    let host = match (authority, host_field) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            return Err(Malformed(":authority and host differ"))
        }
        (Some(a), _) => Some(a),
        (None, h) => h,
    };
    // The request line. CONNECT has no :path (RFC 9113 §8.5): its target is the authority, and
    // the HTTP/1.1 code answers it as it answers an HTTP/1.1 CONNECT.
    let target: &[u8] = if method == Method::CONNECT {
        host.unwrap_or(b"")
    } else {
        match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() => pq.as_str().as_bytes(),
            _ => return Err(Malformed("empty :path")),
        }
    };
    if !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Malformed("invalid byte in :path"));
    }
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(h) = host {
        if !valid_value(h) {
            return Err(Malformed("invalid byte in :authority or host"));
        }
        push_line(out, b"host", h);
    }

    let mut content_length: Option<u64> = None;
    let mut cookies = 0usize;
    for (name, value) in headers {
        let v = value.as_bytes();
        if !valid_value(v) {
            return Err(Malformed("invalid field value"));
        }
        match name.as_str() {
            "host" => {}
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {
                return Err(Malformed("connection-specific field"))
            }
            // `te: trailers` is the one value allowed (§8.2.2). It means something only to
            // the next hop, and Torii's HTTP/1.1 side drops trailers anyway: not forwarded.
            "te" if v.eq_ignore_ascii_case(b"trailers") => {}
            "te" => return Err(Malformed("te other than trailers")),
            "content-length" => {
                let n = parse_length(v).ok_or(Malformed("invalid content-length"))?;
                if content_length.replace(n).is_some() {
                    return Err(Malformed("several content-length fields"));
                }
            }
            "cookie" => cookies += 1,
            n => push_line(out, n.as_bytes(), v),
        }
    }
    if cookies > 0 {
        out.extend_from_slice(b"cookie: ");
        for (i, c) in headers.get_all(COOKIE).iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    let framing = match (content_length, end_of_stream) {
        (Some(n), _) => {
            out.extend_from_slice(b"content-length: ");
            crate::http1::write_u64(out, n);
            out.extend_from_slice(b"\r\n");
            if n == 0 {
                BodyFraming::None
            } else {
                BodyFraming::Length(n)
            }
        }
        (None, true) => BodyFraming::None,
        (None, false) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            BodyFraming::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A field value HTTP/2 allows (RFC 9113 §8.2.1) that also reads as one HTTP/1.1 field value:
/// no NUL, CR or LF (no control byte but tab), no whitespace at either end.
fn valid_value(v: &[u8]) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        && !v.first().is_some_and(ws)
        && !v.last().is_some_and(ws)
}

/// Decimal digits only, at most 19 (no sign, no blank, no list).
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "request_head_tests.rs"]
mod tests;
