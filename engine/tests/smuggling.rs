//! The request-smuggling corpus: hostile requests sent through a running
//! Torii to a recording backend. For each vector the client must get the expected statuses,
//! and the backend must receive either nothing or exactly one well-framed request (judged by
//! the backend's own strict framing, not the engine's parser). A chunked body found invalid
//! mid-stream is the one case where the backend may see the *prefix* of a request: the head
//! was already forwarded, and Torii then closes that upstream connection, so no parser can read
//! the bytes as a complete request (`Truncated`).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::recorder::{recorder, Received};
use common::*;

/// What the backend may have received for a vector.
#[derive(Debug, Clone, Copy)]
enum Up {
    /// Nothing at all.
    Nothing,
    /// Exactly one well-framed request for this target.
    One(&'static str),
    /// Nothing, or the prefix of one request on a connection Torii closed.
    NothingOrTruncated,
}

struct Vector {
    name: &'static str,
    bytes: Vec<u8>,
    statuses: &'static [u16],
    up: Up,
}

fn v(name: &'static str, bytes: impl Into<Vec<u8>>, statuses: &'static [u16], up: Up) -> Vector {
    Vector {
        name,
        bytes: bytes.into(),
        statuses,
        up,
    }
}

/// `POST / HTTP/1.1` to the routed host with `headers` (CRLF-terminated lines) and `body`.
fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /s HTTP/1.1\r\nHost: smuggle.test\r\n{headers}\r\n{body}").into_bytes()
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: smuggle.test\r\n\r\n";

fn vectors() -> Vec<Vector> {
    use Up::*;
    let te_body = "0\r\n\r\n";
    let mut list = vec![
        // Content-Length and Transfer-Encoding together, in every spelling.
        v("cl_then_te", post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX"), &[400], Nothing),
        v("te_then_cl", post("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", "0\r\n\r\nX"), &[400], Nothing),
        v("te_uppercase_with_cl", post("Content-Length: 5\r\nTRANSFER-ENCODING: CHUNKED\r\n", te_body), &[400], Nothing),
        v("te_padded_with_cl", post("Content-Length: 5\r\nTransfer-Encoding:   chunked  \r\n", te_body), &[400], Nothing),
        v("te_tab_with_cl", post("Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n", te_body), &[400], Nothing),
        v("te_vtab_value", post("Transfer-Encoding: \x0bchunked\r\n", te_body), &[400], Nothing),
        v("te_list_chunked_last", post("Transfer-Encoding: identity, chunked\r\n", te_body), &[400], Nothing),
        v("te_list_chunked_first", post("Transfer-Encoding: chunked, identity\r\n", te_body), &[400], Nothing),
        v("te_twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", te_body), &[400], Nothing),
        v("te_chunked_and_gzip_lines", post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", te_body), &[400], Nothing),
        v("te_xchunked", post("Transfer-Encoding: xchunked\r\n", te_body), &[400], Nothing),
        v("te_quoted", post("Transfer-Encoding: \"chunked\"\r\n", te_body), &[400], Nothing),
        v("te_space_before_colon", post("Transfer-Encoding : chunked\r\n", te_body), &[400], Nothing),
        v("te_underscore_with_cl", post("Content-Length: 5\r\nTransfer_Encoding: chunked\r\n", te_body), &[400], Nothing),
        v("te_on_http10", "POST /s HTTP/1.0\r\nHost: smuggle.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &[400], Nothing),
        v("te_obs_fold", post("Transfer-Encoding:\r\n chunked\r\n", te_body), &[400], Nothing),
        // Content-Length variants.
        v("cl_twice_equal", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), &[400], Nothing),
        v("cl_twice_different", post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), &[400], Nothing),
        v("cl_list", post("Content-Length: 5, 5\r\n", "hello"), &[400], Nothing),
        v("cl_plus_sign", post("Content-Length: +5\r\n", "hello"), &[400], Nothing),
        v("cl_negative", post("Content-Length: -1\r\n", "hello"), &[400], Nothing),
        v("cl_hex", post("Content-Length: 0x5\r\n", "hello"), &[400], Nothing),
        v("cl_overflow", post("Content-Length: 184467440737095516160\r\n", "hello"), &[400], Nothing),
        v("cl_inner_space", post("Content-Length: 1 0\r\n", "hello"), &[400], Nothing),
        v("cl_space_before_colon", post("Content-Length : 5\r\n", "hello"), &[400], Nothing),
        v("cl_underscore", post("Content_Length: 5\r\n", "hello"), &[400], Nothing),
        v("cl_obs_fold", post("Content-Length:\r\n 5\r\n", "hello"), &[400], Nothing),
        // Line structure and bytes.
        v("bare_lf_head", "GET /s HTTP/1.1\nHost: smuggle.test\n\n", &[400], Nothing),
        v("bare_lf_one_line", "GET /s HTTP/1.1\r\nHost: smuggle.test\nX-A: 1\r\n\r\n", &[400], Nothing),
        v("bare_cr_in_value", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\rb\r\n\r\n", &[400], Nothing),
        v("nul_in_value", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\0b\r\n\r\n", &[400], Nothing),
        v("nul_in_target", "GET /s\0x HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("obs_fold_plain", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\nX-A: a\r\n\tb\r\n\r\n", &[400], Nothing),
        v("empty_field_name", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\n: x\r\n\r\n", &[400], Nothing),
        v("space_in_field_name", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\nX A: 1\r\n\r\n", &[400], Nothing),
        v("missing_host", "GET /s HTTP/1.1\r\nAccept: */*\r\n\r\n", &[400], Nothing),
        v("two_hosts", "GET /s HTTP/1.1\r\nHost: smuggle.test\r\nHost: other.test\r\n\r\n", &[400], Nothing),
        v("host_differs_from_target", "GET http://other.test/s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("invalid_target", "GET s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("http2_version", "GET /s HTTP/2.0\r\nHost: smuggle.test\r\n\r\n", &[505], Nothing),
        v("connect_method", "CONNECT smuggle.test:443 HTTP/1.1\r\nHost: smuggle.test:443\r\n\r\n", &[400], Nothing),
        // Invalid chunked bodies: the head may already be upstream, then the connection is cut.
        v("chunk_size_0x", post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_size_plus", post("Transfer-Encoding: chunked\r\n", "+5\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_size_minus", post("Transfer-Encoding: chunked\r\n", "-5\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_size_empty", post("Transfer-Encoding: chunked\r\n", "\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_size_overflow", post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_line_bare_lf", post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_data_overrun", post("Transfer-Encoding: chunked\r\n", "3\r\nhelloGET / HTTP/1.1\r\n\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        v("chunk_ext_control", post("Transfer-Encoding: chunked\r\n", "5;a=\x01\r\nhello\r\n0\r\n\r\n"), &[400], NothingOrTruncated),
        // Pipelined requests behind answers Torii makes itself.
        v("body_hides_request_404", format!("POST /x HTTP/1.1\r\nHost: unknown.test\r\nContent-Length: {}\r\n\r\n{SMUGGLED}", SMUGGLED.len()), &[404], Nothing),
        v("cl_te_then_pipelined", format!("POST /s HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"), &[400], Nothing),
        v("valid_then_cl_te", "GET /first HTTP/1.1\r\nHost: smuggle.test\r\n\r\nPOST /s HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &[200, 400], One("/first")),
        v("cl_body_then_garbage", post("Content-Length: 5\r\n", "helloGARBAGE\r\n\r\n"), &[200, 400], One("/s")),
        v("chunked_body_then_404", post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: unknown.test\r\n\r\n"), &[200, 404], One("/s")),
        // Upgrade without 101: Torii keeps parsing HTTP; the bytes after the head are a request.
        // The WebSocket upgrade reaches the backend (`upgrade: websocket`, `connection: upgrade`
        // only), which answers without switching; h2c never does.
        v("websocket_no_101", "GET /ws HTTP/1.1\r\nHost: smuggle.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nGET /x HTTP/1.1\r\nHost: unknown.test\r\n\r\n", &[200, 404], One("/ws")),
        v("h2c_upgrade_no_101", "GET /h2c HTTP/1.1\r\nHost: smuggle.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[200, 505], One("/h2c")),
        // Paths: routed and forwarded in their one canonical form, or refused (400).
        v("path_dot_segments", "GET /x/../s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[200], One("/s")),
        v("path_encoded_dot_segments", "GET /x/%2e%2E/./s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[200], One("/s")),
        v("path_encoded_unreserved", "GET /%73?a=%2e%2e HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[200], One("/s?a=%2e%2e")),
        v("path_merged_slashes", "GET //s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[200], One("/s")),
        v("path_encoded_slash", "GET /x/..%2Fs HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_encoded_backslash", "GET /x/..%5cs HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_backslash", "GET /x\\..\\s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_above_root", "GET /../s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_tomcat_parameter", "GET /x/..;/s HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_nul", "GET /s%00.html HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_bad_escape", "GET /s%g0 HTTP/1.1\r\nHost: smuggle.test\r\n\r\n", &[400], Nothing),
        v("path_refused_then_pipelined", format!("GET /%2e%2e HTTP/1.1\r\nHost: smuggle.test\r\n\r\n{SMUGGLED}"), &[400, 200], One("/smuggled")),
        v("path_refused_with_body", format!("POST /a%2fb HTTP/1.1\r\nHost: smuggle.test\r\nContent-Length: {}\r\n\r\n{SMUGGLED}", SMUGGLED.len()), &[400], Nothing),
    ];
    // Oversized heads.
    let big = "a".repeat(20_000);
    list.push(v(
        "header_block_too_large",
        format!("GET /s HTTP/1.1\r\nHost: smuggle.test\r\nX-Big: {big}\r\n\r\n"),
        &[431],
        Nothing,
    ));
    let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    list.push(v(
        "too_many_headers",
        format!("GET /s HTTP/1.1\r\nHost: smuggle.test\r\n{many}\r\n"),
        &[431],
        Nothing,
    ));
    let long = "a".repeat(9_000);
    list.push(v(
        "request_line_too_long",
        format!("GET /{long} HTTP/1.1\r\nHost: smuggle.test\r\n\r\n"),
        &[414],
        Nothing,
    ));
    list
}

/// Sends one vector through a fresh gateway and backend; `Err` describes a failure.
fn run(vector: &Vector) -> Result<(), String> {
    let backend = recorder();
    let cfg = format!(
        "{}{}",
        gateway_header("client_header_timeout = \"3s\"\nbody_idle_timeout = \"2s\""),
        route("s", "smuggle.test", "/", &[backend.addr])
    );
    let gw = gateway(&cfg);
    let mut s = connect(gw.addrs[0]);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A write may fail once Torii has answered and closed: the statuses say what happened.
    let _ = s.write_all(&vector.bytes);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    for _ in vector.statuses {
        match read_response(&mut s, &mut buf, "POST") {
            Some(r) => got.push(r.status),
            None => break,
        }
    }
    let received = backend.received(Duration::from_secs(3));
    let up_ok = match (vector.up, &received) {
        (Up::Nothing, Received::Nothing) => true,
        (Up::One(t), Received::One(got)) => got == t,
        (Up::NothingOrTruncated, Received::Nothing | Received::Truncated) => true,
        _ => false,
    };
    if got != vector.statuses || !up_ok {
        return Err(format!(
            "{}: client got {got:?} (want {:?}); backend received {received:?} (want {:?})",
            vector.name, vector.statuses, vector.up
        ));
    }
    Ok(())
}

#[test]
fn corpus_has_at_least_40_distinct_vectors() {
    let list = vectors();
    let mut names: Vec<&str> = list.iter().map(|v| v.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), list.len(), "duplicate vector names");
    assert!(list.len() >= 40, "only {} vectors", list.len());
}

#[test]
fn smuggling_vectors_get_their_status_and_never_reach_the_backend_ambiguously() {
    let failures: Vec<String> = vectors().iter().filter_map(|v| run(v).err()).collect();
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_recorder_sees_through_a_naive_forward() {
    // The oracle itself must be able to fail: bytes a lenient proxy would forward are caught.
    use common::recorder::{frame_request, Frame};
    let cl_te = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(matches!(frame_request(cl_te), Frame::Ambiguous(_)));
    let two = [
        &b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        SMUGGLED.as_bytes(),
    ]
    .concat();
    assert_eq!(frame_request(&two), Frame::Complete(28, "/a".into()));
    assert_eq!(
        frame_request(b"GET /a HTTP/1.1\r\nHost: a\r\n"),
        Frame::Incomplete
    );
    assert!(matches!(
        frame_request(b"GET / HTTP/1.1\nHost: a\n\n"),
        Frame::Ambiguous(_)
    ));
}
