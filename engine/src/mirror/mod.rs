//! `torii mirror`: a backend that answers every request with a JSON description of what it
//! received (method, path, query, headers, body size). Used by the demo, the tests and the
//! load-test suite as the service behind Torii.
//!
//! Headers are described twice: `header_lines`, every line as `[name, value]` in arrival order
//! (names as sent), which is what a test asserting "this header reached the backend once, with
//! this value" must read; and `headers`, an object by lower-case name where repeated lines are
//! joined with `", "`, for convenience. Neither view can hide a second line of a name.
//!
//! Owns the mirror's request loop, built on the same sans-IO HTTP/1.1 code and runtime as the
//! gateway (one worker per core, `SO_REUSEPORT`), so it is fast enough not to be the bottleneck
//! of a benchmark. It keeps connections alive, reads bodies fully (up to a cap) before
//! answering, and never panics on input. With [`secured`] options it also answers the
//! exchange protocol and verifies the info token, like a correctly secured Otoroshi backend.

pub mod secured;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;

use crate::http1::{eq_ignore_case, find_header};
use crate::http1::{
    parse_request_head, BodyFraming, ChunkedDecoder, ChunkedOutput, HeadLimits, HeaderField,
    RequestHead,
};
use crate::io::{write_all_timeout, ReadBuf};
use crate::proxy::respond::{push_json_escaped, write_error, write_json, write_json_with_lines};
use crate::runtime::{bind_listeners, spawn_workers, WorkerMain};
use crate::secure::unix_now;
use secured::{ChallengeMode, MirrorSecurity, SecuredMirror, SecurityOutcome};

/// Largest request body the mirror reads.
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Deadline for each read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run a mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// Exchange protocol and claim verification (`None`: a plain mirror).
    pub security: Option<MirrorSecurity>,
    /// Answer every admitted request with a JSON body of exactly this many bytes instead of the
    /// description (`--body-bytes`): benchmarks compare routes with equal answers this way (the
    /// description echoes the request's headers, so a route that adds ~1 KB of tokens would
    /// also get ~1 KB more back).
    pub fixed_body: Option<usize>,
}

/// The smallest `--body-bytes`: `{"pad":""}`.
pub const MIN_FIXED_BODY: usize = 10;

/// A JSON document of exactly `len` bytes (at least [`MIN_FIXED_BODY`]): `{"pad":"xx…"}`.
pub fn fixed_body(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len.max(MIN_FIXED_BODY));
    body.extend_from_slice(b"{\"pad\":\"");
    body.resize(len.max(MIN_FIXED_BODY) - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// A running mirror (its workers run until the process exits).
#[derive(Debug)]
pub struct MirrorHandle {
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
}

/// Starts a mirror in background threads and returns once it listens.
pub fn start(opts: MirrorOptions) -> Result<MirrorHandle, String> {
    if let Some(sec) = &opts.security {
        // Fail at start, not per request, on unusable keys.
        SecuredMirror::new(sec.clone())?;
        // Only a secret that was given and is used (V2, or the claim check) is worth a word.
        let short = |s: &[u8]| !s.is_empty() && s.len() < 32;
        if short(&sec.secret) || sec.claim_secret.as_deref().is_some_and(short) {
            tracing::warn!(
                "mirror secret shorter than 32 bytes: accepted for tests, refused by torii run"
            );
        }
    }
    let bound = bind_listeners(
        &[opts.listen],
        opts.workers,
        crate::config::ConnectionSteering::Hash,
    )
    .map_err(|e| e.to_string())?;
    let addr = bound.addrs[0];
    // Which exchange protocol it answers, so that the demo's three mirrors are told apart.
    let challenge = match opts.security.as_ref().and_then(|s| s.challenge) {
        Some(ChallengeMode::V1) => "v1",
        Some(ChallengeMode::V2) => "v2",
        None => "none",
    };
    let security = opts.security.clone();
    let fixed: Option<Arc<[u8]>> = opts.fixed_body.map(|n| fixed_body(n).into());
    let main: Arc<WorkerMain> = Arc::new(move |_id, _driver, listeners| {
        let secured = security
            .clone()
            .and_then(|s| SecuredMirror::new(s).ok())
            .map(std::rc::Rc::new);
        let fixed = fixed.clone();
        Box::pin(async move {
            let mut loops = Vec::new();
            for listener in listeners {
                let secured = secured.clone();
                let fixed = fixed.clone();
                loops.push(monoio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                monoio::spawn(serve(stream, secured.clone(), fixed.clone()));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "mirror accept failed");
                                monoio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }));
            }
            for l in loops {
                l.await;
            }
        })
    });
    spawn_workers("torii-mirror", "mirror", bound.per_worker, false, main)
        .map_err(|e| e.to_string())?;
    tracing::info!(%addr, challenge, "mirror listening");
    Ok(MirrorHandle { addr })
}

async fn serve(
    mut stream: TcpStream,
    secured: Option<std::rc::Rc<SecuredMirror>>,
    fixed: Option<Arc<[u8]>>,
) {
    let _ = stream.set_nodelay(true);
    let limits = HeadLimits::default();
    let mut rbuf = ReadBuf::with_capacity(4096);
    let mut headers: Vec<HeaderField> = Vec::with_capacity(32);
    let mut out = Vec::with_capacity(2048);
    let mut body = Vec::with_capacity(2048);
    loop {
        let head = loop {
            if !rbuf.is_empty() {
                match parse_request_head(rbuf.data(), &limits, &mut headers) {
                    Ok(Some(h)) => break h,
                    Ok(None) => {}
                    Err(e) => {
                        out.clear();
                        write_error(&mut out, e.status(), e.reason(), true, &[]);
                        let _ = write_all_timeout(&mut stream, &mut out, IO_TIMEOUT).await;
                        return;
                    }
                }
            }
            match rbuf
                .fill_timeout(&mut stream, limits.max_head_bytes + 1, IO_TIMEOUT)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let (body_len, message_len) =
            match read_body(&mut stream, &mut rbuf, &head, &mut body).await {
                Some(n) => n,
                None => return,
            };
        out.clear();
        let data = rbuf.data();
        let outcome = match &secured {
            Some(sec) => sec.answer(
                find_header(data, &headers, b"otoroshi-state"),
                find_header(data, &headers, b"otoroshi-claim"),
                unix_now(),
            ),
            None => SecurityOutcome::default(),
        };
        if let (None, Some(key)) = (
            &outcome.refusal,
            websocket::upgrade_key(data, &head, &headers),
        ) {
            websocket::write_switch(&mut out, &key, &outcome.answer_line);
            rbuf.consume(message_len);
            if write_all_timeout(&mut stream, &mut out, IO_TIMEOUT)
                .await
                .is_ok()
            {
                websocket::echo(stream, rbuf).await;
            }
            return;
        }
        match &outcome.refusal {
            Some(why) => {
                let mut body = b"{\"error\":\"".to_vec();
                push_json_escaped(&mut body, why.as_bytes());
                body.extend_from_slice(b"\"}");
                write_json(&mut out, 401, &body, !head.keep_alive, &[]);
            }
            None => match &fixed {
                Some(body) => write_json_with_lines(
                    &mut out,
                    200,
                    body,
                    !head.keep_alive,
                    &outcome.answer_line,
                ),
                None => describe(&mut out, &head, &headers, body_len, data, &outcome),
            },
        }
        rbuf.consume(message_len);
        if write_all_timeout(&mut stream, &mut out, IO_TIMEOUT)
            .await
            .is_err()
            || !head.keep_alive
        {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads the request body into the buffer behind the head (which stays at the start of
/// `rbuf`). Returns the body size and the length of the whole message (head and framed body),
/// or `None` when the connection must close.
async fn read_body(
    stream: &mut TcpStream,
    rbuf: &mut ReadBuf,
    head: &RequestHead,
    scratch: &mut Vec<u8>,
) -> Option<(u64, usize)> {
    match head.body {
        BodyFraming::None => Some((0, head.head_len)),
        BodyFraming::Length(n) if n > MAX_BODY => None,
        BodyFraming::Length(n) => {
            let need = head.head_len + n as usize;
            while rbuf.len() < need {
                match rbuf.fill_timeout(stream, need, IO_TIMEOUT).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
            Some((n, need))
        }
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut pos = head.head_len;
            loop {
                scratch.clear();
                let data = rbuf.data().get(pos..).unwrap_or(&[]);
                let progress = decoder.decode(data, scratch, ChunkedOutput::Payload).ok()?;
                pos += progress.consumed;
                if decoder.payload_bytes() > MAX_BODY {
                    return None;
                }
                if progress.done {
                    return Some((decoder.payload_bytes(), pos));
                }
                match rbuf.fill_timeout(stream, pos + 64 * 1024, IO_TIMEOUT).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Writes the 200 JSON answer describing the request.
fn describe(
    out: &mut Vec<u8>,
    head: &RequestHead,
    headers: &[HeaderField],
    body_len: u64,
    data: &[u8],
    security: &SecurityOutcome,
) {
    let mut json = Vec::with_capacity(512);
    json.extend_from_slice(b"{\"method\":\"");
    push_json_escaped(&mut json, head.method_span.get(data));
    json.extend_from_slice(b"\",\"path\":\"");
    push_json_escaped(&mut json, head.path.get(data));
    json.extend_from_slice(b"\",\"query\":\"");
    if let Some(q) = head.query {
        push_json_escaped(&mut json, q.get(data));
    }
    json.extend_from_slice(b"\",\"headers\":{");
    push_header_object(&mut json, headers, data);
    json.extend_from_slice(b"},\"header_lines\":[");
    for (i, h) in headers.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"[\"");
        push_json_escaped(&mut json, h.name.get(data));
        json.extend_from_slice(b"\",\"");
        push_value(&mut json, h.value.get(data));
        json.extend_from_slice(b"\"]");
    }
    json.extend_from_slice(b"]");
    json.extend_from_slice(b",\"body_bytes\":");
    json.extend_from_slice(body_len.to_string().as_bytes());
    if let Some(version) = security.version {
        json.extend_from_slice(b",\"challengeVersion\":\"");
        json.extend_from_slice(version.as_bytes());
        json.push(b'"');
    }
    if let Some(claim) = &security.claim_json {
        json.extend_from_slice(b",\"token\":");
        json.extend_from_slice(claim);
    }
    json.push(b'}');
    write_json_with_lines(out, 200, &json, !head.keep_alive, &security.answer_line);
}

/// Writes the members of the `headers` object: one per field name (lower case), in order of
/// first appearance, its value being every line of that name joined with `", "` in arrival
/// order (the combination RFC 9110 §5.3 allows). A JSON object with the same key twice would
/// let a reader keep one line and silently lose the other; joined, a second line shows.
fn push_header_object(json: &mut Vec<u8>, headers: &[HeaderField], data: &[u8]) {
    let mut first = true;
    for (i, h) in headers.iter().enumerate() {
        let name = h.name.get(data);
        let same = |other: &HeaderField| eq_ignore_case(other.name.get(data), name);
        if headers[..i].iter().any(same) {
            continue; // already written with the first line of this name
        }
        if !first {
            json.push(b',');
        }
        first = false;
        json.push(b'"');
        let start = json.len();
        push_json_escaped(json, name);
        json[start..].make_ascii_lowercase();
        json.extend_from_slice(b"\":\"");
        for (n, line) in headers[i..].iter().filter(|h| same(h)).enumerate() {
            if n > 0 {
                json.extend_from_slice(b", ");
            }
            push_value(json, line.value.get(data));
        }
        json.push(b'"');
    }
}

/// A header value as JSON string content (invalid UTF-8 replaced, as in the rest of the body).
fn push_value(json: &mut Vec<u8>, value: &[u8]) {
    push_json_escaped(json, String::from_utf8_lossy(value).as_bytes());
}

/// `torii mirror`: runs a mirror until the process is stopped.
pub fn run(opts: MirrorOptions) -> Result<(), String> {
    let _handle = start(opts)?;
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The JSON body the mirror writes for `raw` (a request head without body).
    fn described(raw: &[u8]) -> serde_json::Value {
        let mut headers = Vec::new();
        let head = parse_request_head(raw, &HeadLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        describe(
            &mut out,
            &head,
            &headers,
            0,
            raw,
            &SecurityOutcome::default(),
        );
        let body = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&out[body..]).unwrap()
    }

    #[test]
    fn fixed_bodies_are_json_of_the_asked_size() {
        for n in [0usize, 10, 11, 1024] {
            let body = fixed_body(n);
            assert_eq!(body.len(), n.max(MIN_FIXED_BODY));
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["pad"].as_str().unwrap().len(), n.max(MIN_FIXED_BODY) - 10);
        }
    }

    #[test]
    fn repeated_headers_are_all_reported_in_order() {
        let j = described(
            b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Quote: a \"b\"\r\n\
              x-forwarded-for: 127.0.0.1\r\nX-FORWARDED-FOR: 10.0.0.1\r\n\r\n",
        );
        assert_eq!(j["path"], "/p");
        assert_eq!(j["query"], "q=1");
        assert_eq!(
            j["header_lines"],
            serde_json::json!([
                ["Host", "h"],
                ["X-Forwarded-For", "6.6.6.6"],
                ["X-Quote", "a \"b\""],
                ["x-forwarded-for", "127.0.0.1"],
                ["X-FORWARDED-FOR", "10.0.0.1"]
            ])
        );
        let h = j["headers"].as_object().unwrap();
        assert_eq!(h.len(), 3, "one member per name: {h:?}");
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1, 10.0.0.1");
        assert_eq!(h["x-quote"], "a \"b\"");
        assert_eq!(h["host"], "h");
    }

    #[test]
    fn single_headers_keep_their_plain_value() {
        let j = described(b"GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            j["headers"],
            serde_json::json!({"host": "h", "accept": "*/*"})
        );
        assert_eq!(j["body_bytes"], 0);
    }
}
