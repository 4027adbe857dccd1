//! gRPC-aware answers: every answer Torii makes itself to a gRPC request (a refusal, a
//! failed upstream) is a gRPC *Trailers-Only* response — HTTP status 200, `content-type:
//! application/grpc`, `grpc-status` and `grpc-message` in the one header block, no body — so a
//! gRPC client sees a gRPC status instead of an HTTP error it reports as `UNKNOWN` or
//! `UNAVAILABLE` with no message.
//!
//! Owns the rules only, pure: what a gRPC request is ([`is_grpc`]), the status mapping
//! ([`grpc_status_for`]), the encoding of `grpc-message` ([`push_grpc_message`]), the status a
//! client reads from a relayed response ([`status_read`]) and the deadline a call asks for
//! ([`parse_grpc_timeout`]). The
//! downstreams render the answer (`LocalBody::Grpc`); `answer` decides to use it. The mapping
//! follows the gRPC project's "HTTP to gRPC Status Code Mapping"
//! (doc/http-grpc-status-mapping.md) for the statuses it lists, with one deliberate
//! difference: 429 is `RESOURCE_EXHAUSTED` (8), not `UNAVAILABLE` (14), because Torii's 429
//! means a quota or rate limit was reached — gRPC's own meaning of RESOURCE_EXHAUSTED ("some
//! resource has been exhausted, perhaps a per-user quota") — and UNAVAILABLE tells clients to
//! retry at once, which a quota refusal must not invite.
//!
//! | HTTP | gRPC |
//! |---|---|
//! | 400 | INTERNAL (13) |
//! | 401 | UNAUTHENTICATED (16) |
//! | 403 | PERMISSION_DENIED (7) |
//! | 404 | UNIMPLEMENTED (12) |
//! | 408, 504 | DEADLINE_EXCEEDED (4) |
//! | 413 | RESOURCE_EXHAUSTED (8) |
//! | 429 | RESOURCE_EXHAUSTED (8) |
//! | 502, 503 | UNAVAILABLE (14) |
//! | anything else | UNKNOWN (2) |

/// True for a request `content-type` of gRPC: `application/grpc`, alone or followed by `+`
/// (a codec: `application/grpc+proto`) or `;` (parameters), any case.
pub fn is_grpc(content_type: &[u8]) -> bool {
    const PREFIX: &[u8] = b"application/grpc";
    content_type.len() >= PREFIX.len()
        && content_type[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(content_type.get(PREFIX.len()), None | Some(b'+' | b';'))
}

/// The gRPC status code of an answer Torii would have given with HTTP `status`. See the
/// module header for the table and why 429 differs from the gRPC project's.
pub fn grpc_status_for(status: u16) -> u8 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        408 | 504 => 4,
        413 | 429 => 8,
        502 | 503 => 14,
        _ => 2,
    }
}

/// The gRPC status a client reads from a relayed answer: `grpc_status`, the `grpc-status` field
/// of its trailers (or of a Trailers-Only head), when it is a number; without one, what a gRPC
/// client makes of the HTTP status `http` (Torii's table above; `UNKNOWN` for a 200 without a
/// status). Codes above 255 read as `UNKNOWN`.
pub fn status_read(grpc_status: Option<&[u8]>, http: u16) -> u8 {
    let parsed = grpc_status
        .filter(|v| !v.is_empty() && v.len() <= 3 && v.iter().all(u8::is_ascii_digit))
        .map(|v| v.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')));
    match parsed {
        Some(n) => u8::try_from(n).unwrap_or(2),
        None if http == 200 => 2,
        None => grpc_status_for(http),
    }
}

/// The deadline of a `grpc-timeout` value (gRPC over HTTP/2: `TimeoutValue TimeoutUnit`, 1 to
/// 8 digits and one of `H M S m u n`); `None` for anything else (the call then has none).
pub fn parse_grpc_timeout(value: &[u8]) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Appends `message` percent-encoded as `grpc-message` requires (gRPC over HTTP/2, "Responses"):
/// every byte outside `0x20..=0x7E`, and `%` itself, as `%XX` (UTF-8 bytes of non-ASCII
/// characters each encoded).
pub fn push_grpc_message(out: &mut Vec<u8>, message: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// Appends an answer's gRPC fields as HTTP/1.1 header lines: `content-type`, `grpc-status`,
/// `grpc-message` (the HTTP/1.1 rendering of a Trailers-Only response).
pub fn push_grpc_lines(out: &mut Vec<u8>, status: u16, message: &str) {
    out.extend_from_slice(b"content-type: application/grpc\r\ngrpc-status: ");
    let code = grpc_status_for(status);
    if code >= 10 {
        out.push(b'0' + code / 10);
    }
    out.push(b'0' + code % 10);
    out.extend_from_slice(b"\r\ngrpc-message: ");
    push_grpc_message(out, message);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        for yes in [
            &b"application/grpc"[..],
            b"application/grpc+proto",
            b"Application/GRPC;charset=x",
        ] {
            assert!(is_grpc(yes), "{:?}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b"application/grpc-web"[..],
            b"application/json",
            b"application/grp",
            b"",
        ] {
            assert!(!is_grpc(no), "{:?}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn the_status_table() {
        let table = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (408, 4),
            (413, 8),
            (429, 8),
            (500, 2),
            (502, 14),
            (503, 14),
            (504, 4),
            (505, 2),
        ];
        for (http, grpc) in table {
            assert_eq!(grpc_status_for(http), grpc, "{http}");
        }
    }

    #[test]
    fn the_status_a_client_reads() {
        assert_eq!(status_read(Some(b"0"), 200), 0);
        assert_eq!(status_read(Some(b"14"), 200), 14);
        assert_eq!(status_read(Some(b"16"), 503), 16);
        assert_eq!(status_read(Some(b"300"), 200), 2);
        assert_eq!(status_read(Some(b"x"), 200), 2);
        assert_eq!(status_read(Some(b"1234"), 200), 2);
        assert_eq!(status_read(None, 200), 2);
        assert_eq!(status_read(None, 503), 14);
        assert_eq!(status_read(Some(b""), 401), 16);
    }

    #[test]
    fn grpc_timeouts() {
        use std::time::Duration;
        assert_eq!(
            parse_grpc_timeout(b"200m"),
            Some(Duration::from_millis(200))
        );
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_grpc_timeout(b"99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout(b"5n"), Some(Duration::from_nanos(5)));
        for bad in [
            &b""[..],
            b"m",
            b"123456789m",
            b"10x",
            b"-1S",
            b"1.5S",
            b"10 S",
        ] {
            assert_eq!(
                parse_grpc_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn messages_are_percent_encoded() {
        let mut out = Vec::new();
        push_grpc_message(&mut out, "No route found: 100% caf\u{e9}\n");
        assert_eq!(out, b"No route found: 100%25 caf%C3%A9%0A");
        let mut lines = Vec::new();
        push_grpc_lines(&mut lines, 401, "No ApiKey provided");
        assert_eq!(
            lines,
            b"content-type: application/grpc\r\ngrpc-status: 16\r\ngrpc-message: No ApiKey provided\r\n"
        );
    }
}
