//! An HTTP/2 upstream's response relayed to an HTTP/1.1 client: its head rendered as an
//! HTTP/1.1 status line and header lines, its DATA as the body, its trailers as chunked
//! trailers.
//!
//! Owns the framing of such a response for the client: the upstream's `content-length` when it
//! sent one; else chunked for an HTTP/1.1 client (the trailers written in the last chunk when
//! the client's `TE` lists `trailers`, RFC 9110 §6.5 and §10.1.4, and dropped otherwise: a
//! client that did not say it takes them may not parse them); else close-delimited for an
//! HTTP/1.0 client (trailers dropped). Flow control follows the bytes: the upstream's window
//! reopens only as the client's socket takes them. For a gRPC call, the status the client reads
//! (`RequestRecord::grpc_status`) comes from the trailers or the Trailers-Only head. It must not decide the keep-alive rule
//! (`close` comes in) nor which fields are hidden.

use std::future::poll_fn;
use std::io::Write;
use std::time::Duration;

use http::HeaderMap;

use crate::http1::{status_has_no_content, HeaderKind};
use crate::io::{write_all_timeout, Stream};
use crate::proxy::context::RequestCtx;
use crate::proxy::downstream::Relayed;
use crate::proxy::grpc::{is_grpc, status_read};
use crate::proxy::h2_response::H2Response;
use crate::proxy::upstream_head_h2::te_lists_trailers;

/// How the body goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framed {
    None,
    Length,
    Chunked { trailers: bool },
    UntilClose,
}

/// Relays `resp` to the HTTP/1.1 client on `stream` through `wbuf`; `close`: the connection
/// ends after it (it does as well for a close-delimited body).
pub async fn relay_h2_to_h1<C: Stream>(
    stream: &mut C,
    wbuf: &mut Vec<u8>,
    ctx: &mut RequestCtx<'_>,
    resp: &mut H2Response,
    hidden: &impl Fn(&[u8]) -> bool,
    close: bool,
) -> Relayed {
    let status = resp.status();
    let no_content = status_has_no_content(status) || is_head_request(ctx);
    let has_length = resp.head.headers.contains_key(http::header::CONTENT_LENGTH);
    let http10 = ctx.head.version_minor == 0;
    let framed = if no_content || (resp.body.is_end_stream() && !status_has_no_content(status)) {
        if no_content {
            Framed::None
        } else {
            Framed::Length
        }
    } else if has_length {
        Framed::Length
    } else if http10 {
        Framed::UntilClose
    } else {
        let te = crate::http1::find_header(ctx.data(), ctx.fields(), b"te");
        Framed::Chunked {
            trailers: te.is_some_and(te_lists_trailers),
        }
    };
    let close = close || framed == Framed::UntilClose;
    wbuf.clear();
    let reason = resp.head.status.canonical_reason().unwrap_or("");
    let _ = write!(wbuf, "HTTP/1.1 {status} {reason}\r\n");
    push_fields(wbuf, &resp.head.headers, |name| {
        hidden(name) || (status_has_no_content(status) && name == b"content-length")
    });
    if resp.body.is_end_stream() && !has_length && !status_has_no_content(status) {
        wbuf.extend_from_slice(b"content-length: 0\r\n");
    }
    if matches!(framed, Framed::Chunked { .. }) {
        wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        wbuf.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        wbuf.extend_from_slice(b"connection: keep-alive\r\n");
    }
    wbuf.extend_from_slice(&ctx.bufs.quota_headers);
    wbuf.extend_from_slice(b"\r\n");
    ctx.rec.answered(status, wbuf.len());
    let grpc =
        crate::http1::find_header(ctx.data(), ctx.fields(), b"content-type").is_some_and(is_grpc);
    let mut grpc_status = resp.head.headers.get("grpc-status").cloned();
    let limits = ctx.snap.limits;
    if write_all_timeout(stream, wbuf, limits.body_timeout)
        .await
        .is_err()
    {
        return Relayed::Failed;
    }
    if framed == Framed::None || resp.body.is_end_stream() {
        if grpc {
            let code = grpc_status.as_ref().map(|v| v.as_bytes());
            ctx.rec.grpc_status = Some(status_read(code, status));
        }
        return Relayed::Complete { close };
    }
    match pump(
        stream,
        wbuf,
        resp,
        framed,
        ctx.upstream_idle_timeout(),
        limits.body_timeout,
        &mut grpc_status,
    )
    .await
    {
        Ok(n) => {
            ctx.rec.bytes_out += n;
            if grpc {
                let code = grpc_status.as_ref().map(|v| v.as_bytes());
                ctx.rec.grpc_status = Some(status_read(code, status));
            }
            Relayed::Complete { close }
        }
        Err(why) => {
            tracing::debug!(why, "HTTP/2 upstream's body failed; closing");
            Relayed::Failed
        }
    }
}

/// The body's DATA, framed, then its end (and trailers when the client takes them; their
/// `grpc-status` into `grpc_status`).
async fn pump<C: Stream>(
    stream: &mut C,
    wbuf: &mut Vec<u8>,
    resp: &mut H2Response,
    framed: Framed,
    idle: Duration,
    write_timeout: Duration,
    grpc_status: &mut Option<http::HeaderValue>,
) -> Result<u64, &'static str> {
    let mut sent = 0u64;
    loop {
        let next = monoio::time::timeout(idle, poll_fn(|cx| resp.body.poll_data(cx))).await;
        let chunk = match next {
            Err(_) => return Err("upstream idle"),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err("upstream stream failed"),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if chunk.is_empty() {
            continue;
        }
        wbuf.clear();
        if matches!(framed, Framed::Chunked { .. }) {
            let _ = write!(wbuf, "{:x}\r\n", chunk.len());
        }
        wbuf.extend_from_slice(&chunk);
        if matches!(framed, Framed::Chunked { .. }) {
            wbuf.extend_from_slice(b"\r\n");
        }
        write_all_timeout(stream, wbuf, write_timeout)
            .await
            .map_err(|_| "client write failed")?;
        sent += chunk.len() as u64;
        let _ = resp.body.flow_control().release_capacity(chunk.len());
    }
    let polled = monoio::time::timeout(idle, poll_fn(|cx| resp.body.poll_trailers(cx))).await;
    let map = match polled {
        Err(_) => return Err("upstream idle"),
        Ok(Err(_)) => return Err("upstream stream failed"),
        Ok(Ok(map)) => map,
    };
    if let Some(v) = map.as_ref().and_then(|m| m.get("grpc-status")) {
        *grpc_status = Some(v.clone());
    }
    let Framed::Chunked { trailers } = framed else {
        return Ok(sent);
    };
    wbuf.clear();
    wbuf.extend_from_slice(b"0\r\n");
    if let Some(map) = map.filter(|_| trailers) {
        push_fields(wbuf, &map, |_| false);
    }
    wbuf.extend_from_slice(b"\r\n");
    write_all_timeout(stream, wbuf, write_timeout)
        .await
        .map_err(|_| "client write failed")?;
    Ok(sent)
}

/// Appends `name: value\r\n` for each field not `skip`ped and not hop-by-hop.
fn push_fields(out: &mut Vec<u8>, map: &HeaderMap, skip: impl Fn(&[u8]) -> bool) {
    for (name, value) in map {
        let name = name.as_str().as_bytes();
        if skip(name) || HeaderKind::classify(name).is_hop_by_hop() {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn is_head_request(ctx: &RequestCtx<'_>) -> bool {
    crate::proxy::downstream::is_head(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_render_as_lines_minus_skipped_and_hop_by_hop() {
        let mut map = HeaderMap::new();
        map.append("grpc-status", "0".parse().unwrap());
        map.append("x-a", "1".parse().unwrap());
        map.append("x-a", "2".parse().unwrap());
        map.append("otoroshi-state-resp", "t".parse().unwrap());
        map.append("keep-alive", "1".parse().unwrap());
        let mut out = Vec::new();
        push_fields(&mut out, &map, |n| n == b"otoroshi-state-resp");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "grpc-status: 0\r\nx-a: 1\r\nx-a: 2\r\n"
        );
    }
}
