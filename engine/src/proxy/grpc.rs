//! gRPC-aware answers: every answer Torii makes itself to a gRPC request (a refusal, a
//! failed upstream) is a gRPC *Trailers-Only* response — HTTP status 200, `content-type:
//! application/grpc`, `grpc-status` and `grpc-message` in the one header block, no body — so a
//! gRPC client sees a gRPC status instead of an HTTP error it reports as `UNKNOWN` or
//! `UNAVAILABLE` with no message.
//!
//! Owns the rules only, pure: what a gRPC request is ([`is_grpc`]), the status mapping
//! ([`grpc_status_for`]) and the encoding of `grpc-message` ([`push_grpc_message`]). The
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
