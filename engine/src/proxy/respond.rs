//! Answers that Torii makes itself: Otoroshi-style JSON errors and small JSON bodies.
//!
//! Owns the one function that turns a gateway error into bytes on the wire, so every error
//! Torii produces has the same shape: `{"Otoroshi-Error":"<message>"}` with
//! `Otoroshi-Error: true` and `Otoroshi-Error-Msg`, as Otoroshi's errors look. Always
//! JSON, never the HTML page Otoroshi serves to clients without `Accept`.

use crate::http1::{write_content_length, write_header, write_status_line};

/// Message of the 404 answer when no route matches (docs/compatibility.md §7).
pub const NO_ROUTE: &str = "No route found";
/// Message of the challenge-failure 502: the text of Otoroshi's tutorial "Secure the communication
/// between a downstream app and Otoroshi".
pub const NOT_SECURED: &str =
    "Downstream microservice does not seems to be secured. Cancelling request !";

/// Appends `s` to `out` as the inside of a JSON string (quotes and control characters escaped).
pub fn push_json_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
}

/// Writes a complete error response: status line, JSON headers, the Otoroshi error headers,
/// `extra` headers, `Connection: close` when `close`, and `{"Otoroshi-Error":"<message>"}`.
/// The message must be a fixed, header-safe text (no CR/LF): it is also sent as a header.
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    close: bool,
    extra: &[(&str, &str)],
) {
    let mut body = Vec::with_capacity(message.len() + 24);
    body.extend_from_slice(b"{\"Otoroshi-Error\":\"");
    push_json_escaped(&mut body, message.as_bytes());
    body.extend_from_slice(b"\"}");
    write_status_line(out, status);
    write_header(out, b"content-type", b"application/json");
    write_header(out, b"otoroshi-error", b"true");
    write_header(out, b"otoroshi-error-msg", message.as_bytes());
    for (name, value) in extra {
        write_header(out, name.as_bytes(), value.as_bytes());
    }
    if close {
        write_header(out, b"connection", b"close");
    }
    write_content_length(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
}

/// Writes the gRPC Trailers-Only form of an error answer (`status` Torii's, mapped to
/// `grpc-status`): status line 200, the gRPC fields, the extra headers, no body.
pub fn write_grpc(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    close: bool,
    extra: &[(&str, &str)],
) {
    write_status_line(out, 200);
    crate::proxy::grpc::push_grpc_lines(out, status, message);
    for (name, value) in extra {
        write_header(out, name.as_bytes(), value.as_bytes());
    }
    if close {
        write_header(out, b"connection", b"close");
    }
    write_content_length(out, 0);
    out.extend_from_slice(b"\r\n");
}

/// Writes a response without content (a redirect, a CORS preflight): `Content-Length: 0`,
/// except on a `204`, which carries none (RFC 9110 §8.6).
pub fn write_empty(out: &mut Vec<u8>, status: u16, close: bool) {
    write_status_line(out, status);
    if close {
        write_header(out, b"connection", b"close");
    }
    if status != 204 {
        write_content_length(out, 0);
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a JSON response with the given body and extra headers.
pub fn write_json(
    out: &mut Vec<u8>,
    status: u16,
    body: &[u8],
    close: bool,
    extra: &[(&str, &str)],
) {
    write_status_line(out, status);
    write_header(out, b"content-type", b"application/json");
    for (name, value) in extra {
        write_header(out, name.as_bytes(), value.as_bytes());
    }
    write_json_tail(out, body, close);
}

/// Writes a JSON response with extra pre-rendered header lines (each ending in CRLF).
pub fn write_json_with_lines(
    out: &mut Vec<u8>,
    status: u16,
    body: &[u8],
    close: bool,
    lines: &[u8],
) {
    write_status_line(out, status);
    write_header(out, b"content-type", b"application/json");
    out.extend_from_slice(lines);
    write_json_tail(out, body, close);
}

fn write_json_tail(out: &mut Vec<u8>, body: &[u8], close: bool) {
    if close {
        write_header(out, b"connection", b"close");
    }
    write_content_length(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_and_headers() {
        let mut out = Vec::new();
        write_error(&mut out, 404, NO_ROUTE, false, &[]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("otoroshi-error: true\r\n"));
        assert!(text.contains("otoroshi-error-msg: No route found\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"Otoroshi-Error\":\"No route found\"}"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(!text.contains("connection: close"));
    }

    #[test]
    fn json_escaping() {
        let mut out = Vec::new();
        push_json_escaped(&mut out, b"a\"b\\c\n\x01");
        assert_eq!(out, b"a\\\"b\\\\c\\n\\u0001");
    }
}
