//! An HTTP/2 request head read straight into the request's own head ([`OwnedHead`]): the
//! fields `h2` decoded become the request's fields, with no HTTP/1.1 request rendered or parsed.
//!
//! Owns the rules of RFC 9113 §8 that decide whether a request the `h2` crate decoded may be
//! forwarded at all (the crate already refuses unknown or misplaced pseudo-headers and most
//! connection-specific fields; this checks again, byte by byte, so no field can carry a line
//! break or a second request to the HTTP/1.1 upstream): connection-specific fields
//! (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`) and a `te`
//! other than `trailers` are malformed (§8.2.2); field values must not hold CR, LF or NUL, nor
//! start or end with whitespace (§8.2.1); `:authority` must not carry userinfo and must agree
//! with a `Host` field when both are sent (§8.3.1). A malformed request is reset
//! ([`Refusal::Malformed`]). Several `cookie` fields are joined with `"; "` into one field
//! (§8.2.3). The body is framed for the HTTP/1.1 upstream by its `content-length`, or chunked
//! when the client sent none and the stream does not end with its head.
//!
//! It also holds the head to the rules an HTTP/1.1 head is held to, with the same answers
//! ([`Refusal::Refused`]: 431 over `max_head_bytes` or `max_headers`, 414 over
//! `max_request_line_bytes`, both measured on the head as it would read over HTTP/1.1; 400 for
//! `CONNECT`, a `*` target on another method than `OPTIONS`, no host at all, an invalid host, an
//! underscore spelling of a framing field) — the HTTP/1.1 parser's own checks
//! (`http1::check_target`, `is_authority_byte`, `is_disguised_framing`), so both protocols
//! refuse the same requests. Sans-IO; no allocation once the head's buffers have grown.

use http::header::{HeaderMap, HeaderValue, COOKIE, HOST};
use http::{Method, Uri};

use crate::http1::{self, check_target, eq_ignore_case, is_authority_byte, is_disguised_framing};
use crate::http1::{write_u64, MAX_PARSED_HEADERS};
use crate::http1::{BodyFraming, HeadLimits, HeaderKind, RequestError, RequestHead, Span};
use crate::proxy::head::OwnedHead;

/// ` HTTP/1.1`: what the request line of the same head would carry over HTTP/1.1, counted in
/// its limits.
const VERSION_BYTES: usize = 9;
/// `transfer-encoding: chunked` CRLF: the line a body without `content-length` would carry over
/// HTTP/1.1, counted in the limits.
const CHUNKED_LINE_BYTES: usize = 28;

/// Why a request head cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed request (RFC 9113 §8.1.1): the stream is reset with `PROTOCOL_ERROR`. The
    /// text names the rule, never the client's bytes.
    Malformed(&'static str),
    /// A head refused as the same HTTP/1.1 head would be: answered with its status.
    Refused(RequestError),
}

/// Reads the request head of a stream into `out` (cleared first) and returns its parsed form,
/// whose spans index `out`. `end_of_stream` is true when the HEADERS frame ended the stream
/// (no body).
pub fn read_request_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap<HeaderValue>,
    end_of_stream: bool,
    limits: &HeadLimits,
    out: &mut OwnedHead,
) -> Result<RequestHead, Refusal> {
    out.clear();
    let too_large = Refusal::Refused(RequestError::HeadTooLarge);
    let authority = match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            return Err(Refusal::Malformed("userinfo in :authority"))
        }
        Some(a) => Some(a.as_str().as_bytes()),
        None => None,
    };
    let mut hosts = headers.get_all(HOST).iter();
    let host_field = hosts.next().map(HeaderValue::as_bytes);
    if hosts.next().is_some() {
        return Err(Refusal::Malformed("several host fields"));
    }
    let host = match (authority, host_field) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            return Err(Refusal::Malformed(":authority and host differ"))
        }
        (Some(a), _) => Some(a),
        (None, h) => h,
    };
    // CONNECT has no :path (RFC 9113 §8.5): its target is the authority, refused below as an
    // HTTP/1.1 CONNECT is.
    let target: &[u8] = if method == Method::CONNECT {
        host.unwrap_or(b"")
    } else {
        match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() => pq.as_str().as_bytes(),
            _ => return Err(Refusal::Malformed("empty :path")),
        }
    };
    if !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Refusal::Malformed("invalid byte in :path"));
    }
    let method_span = out.push(method.as_str().as_bytes()).ok_or(too_large)?;
    out.push(b" ").ok_or(too_large)?;
    let target_span = out.push(target).ok_or(too_large)?;
    out.push(b"\r\n").ok_or(too_large)?;
    let request_line = Span::from_range(0, out.bytes().len()).ok_or(too_large)?;

    let mut lines = 0usize;
    let mut host_span = None;
    if let Some(h) = host {
        if !valid_value(h) {
            return Err(Refusal::Malformed("invalid byte in :authority or host"));
        }
        let f = out
            .push_field_with(b"host", |b| b.extend_from_slice(h))
            .ok_or(too_large)?;
        host_span = Some(f.value);
        lines += 1;
    }
    let mut content_length: Option<u64> = None;
    let mut cookies = 0usize;
    let mut expect_continue = false;
    let mut disguised = false;
    for (name, value) in headers {
        let v = value.as_bytes();
        if !valid_value(v) {
            return Err(Refusal::Malformed("invalid field value"));
        }
        match name.as_str() {
            "host" => {}
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" => {
                return Err(Refusal::Malformed("connection-specific field"))
            }
            // `te: trailers` is the one value allowed (§8.2.2). Kept in the head: an HTTP/2
            // upstream gets it (gRPC needs it, `proxy::upstream_head_h2`); the HTTP/1.1
            // upstream head drops it as hop-by-hop (`HeaderKind::Te`).
            "te" if v.eq_ignore_ascii_case(b"trailers") => {
                out.push_field_with(b"te", |b| b.extend_from_slice(b"trailers"))
                    .ok_or(too_large)?;
                lines += 1;
            }
            "te" => return Err(Refusal::Malformed("te other than trailers")),
            "content-length" => {
                let n = parse_length(v).ok_or(Refusal::Malformed("invalid content-length"))?;
                if content_length.replace(n).is_some() {
                    return Err(Refusal::Malformed("several content-length fields"));
                }
            }
            "cookie" => cookies += 1,
            n => {
                let f = out
                    .push_field_with(n.as_bytes(), |b| b.extend_from_slice(v))
                    .ok_or(too_large)?;
                lines += 1;
                expect_continue |=
                    f.kind == HeaderKind::Expect && eq_ignore_case(v, b"100-continue");
                disguised |= f.kind == HeaderKind::Other && is_disguised_framing(n.as_bytes());
            }
        }
    }
    if cookies > 0 {
        out.push_field_with(b"cookie", |b| {
            for (i, c) in headers.get_all(COOKIE).iter().enumerate() {
                if i > 0 {
                    b.extend_from_slice(b"; ");
                }
                b.extend_from_slice(c.as_bytes());
            }
        })
        .ok_or(too_large)?;
        lines += 1;
    }
    let mut h1_extra = VERSION_BYTES;
    let body = match (content_length, end_of_stream) {
        (Some(n), _) => {
            out.push_field_with(b"content-length", |b| write_u64(b, n))
                .ok_or(too_large)?;
            lines += 1;
            BodyFraming::Length(n)
        }
        (None, true) => BodyFraming::None,
        (None, false) => {
            lines += 1;
            h1_extra += CHUNKED_LINE_BYTES;
            BodyFraming::Chunked
        }
    };
    out.push(b"\r\n").ok_or(too_large)?;
    let head_len = out.bytes().len();

    // The limits of the same head over HTTP/1.1 (`http1::scan`), with the same answers.
    if head_len + h1_extra > limits.max_head_bytes {
        return Err(too_large);
    }
    if request_line.len() - 2 + VERSION_BYTES > limits.max_request_line_bytes {
        return Err(Refusal::Refused(RequestError::UriTooLong));
    }
    if lines > limits.max_headers || lines > MAX_PARSED_HEADERS {
        return Err(Refusal::Refused(RequestError::TooManyHeaders));
    }
    let refused = |why| Err(Refusal::Refused(RequestError::Invalid(why)));
    let method = http1::Method::from_bytes(method.as_str().as_bytes());
    if method == http1::Method::Connect {
        return refused("CONNECT is not supported");
    }
    let data = out.bytes();
    let (target, path, query, target_authority) =
        check_target(data, target_span, method).map_err(Refusal::Refused)?;
    if disguised {
        return refused("underscore spelling of a framing header");
    }
    let Some(host) = host_span else {
        return refused("missing Host header");
    };
    let host_value = host.get(data);
    if host_value.is_empty() || !host_value.iter().all(|&b| is_authority_byte(b)) {
        return refused("invalid Host header");
    }
    if let Some(a) = target_authority {
        if !eq_ignore_case(a.get(data), host_value) {
            return refused("Host differs from the target authority");
        }
    }
    Ok(RequestHead {
        method,
        method_span,
        target,
        path,
        query,
        version_minor: 1,
        request_line,
        head_len,
        host: Some(host),
        body,
        // A stream carries one request; its end is the stream's, not the connection's.
        keep_alive: true,
        expect_continue,
        upgrade: false,
    })
}

/// A field value HTTP/2 allows (RFC 9113 §8.2.1) that also reads as one HTTP/1.1 field value
/// for the upstream: no NUL, CR or LF (no control byte but tab), no whitespace at either end.
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
