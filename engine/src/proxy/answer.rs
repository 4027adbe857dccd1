//! The one way a [`ProxyError`] becomes an answer: the Otoroshi error response on the wire,
//! the request's record, and whether the client connection stays open.
//!
//! Owns the keep-alive rule for Torii's own answers (docs/security.md §5): the
//! connection closes when the error says so, when part of the request body is still unread
//! (it would be read as the next request), when the client asked for it, or while draining.
//! Every error answer of every phase goes through [`answer`]; a head refused before a request
//! context exists goes through [`answer_unparsed`], which shares the writer.

use crate::http1::Method;
use crate::io::{write_all_timeout, Stream};
use crate::metrics::RequestRecord;
use crate::proxy::client::ClientConn;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::error::{ProxyError, Side};
use crate::proxy::respond::write_error;
use crate::worker::Worker;

/// Answers `e` for the request in `ctx` and says how the connection goes on.
pub async fn answer<C: Stream>(
    worker: &Worker,
    conn: &mut ClientConn<C>,
    ctx: &mut RequestCtx<'_>,
    e: ProxyError,
) -> Outcome {
    log(&e);
    ctx.rec.reason = Some(e.reason);
    if e.is_silent() {
        return Outcome::Close;
    }
    let close = e.close || ctx.body_unread() || !ctx.head.keep_alive || worker.is_draining();
    let timeout = ctx.snap.limits.body_timeout;
    let head_only = ctx.head.method == Method::Head;
    if send(conn, &mut ctx.rec, &e, close, head_only, timeout).await {
        Outcome::keep_alive_unless(close)
    } else {
        Outcome::Close
    }
}

/// Answers a head that could not be parsed (no request context exists) and closes.
pub async fn answer_unparsed<C: Stream>(
    conn: &mut ClientConn<C>,
    rec: &mut RequestRecord,
    e: &ProxyError,
    timeout: std::time::Duration,
) -> Outcome {
    rec.reason = Some(e.reason);
    send(conn, rec, e, true, false, timeout).await;
    Outcome::Close
}

/// Writes the error response and notes it in `rec`. False when the write failed.
/// `head_only`: the request was `HEAD`, so the answer has no content (RFC 9110 §9.3.2: the
/// head, with the `Content-Length` a GET would get, and no body; a body would be read by the
/// client as the start of the next response).
async fn send<C: Stream>(
    conn: &mut ClientConn<C>,
    rec: &mut RequestRecord,
    e: &ProxyError,
    close: bool,
    head_only: bool,
    timeout: std::time::Duration,
) -> bool {
    conn.wbuf.clear();
    let mut digits = [0u8; 20];
    let retry_after = e.retry_after.map(|s| decimal(s, &mut digits));
    let extra = [
        e.www_authenticate.map(|v| ("www-authenticate", v)),
        retry_after.map(|v| ("retry-after", v)),
    ];
    let (one, two);
    let extra: &[(&str, &str)] = match extra {
        [Some(a), Some(b)] => {
            two = [a, b];
            &two
        }
        [Some(a), None] | [None, Some(a)] => {
            one = [a];
            &one
        }
        [None, None] => &[],
    };
    write_error(&mut conn.wbuf, e.status, e.message, close, extra);
    if head_only {
        truncate_to_head(&mut conn.wbuf);
    }
    rec.answered(e.status, conn.wbuf.len());
    write_all_timeout(&mut conn.stream, &mut conn.wbuf, timeout)
        .await
        .is_ok()
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Cuts a rendered response after its head (the first blank line).
pub(crate) fn truncate_to_head(out: &mut Vec<u8>) {
    if let Some(end) = memchr::memmem::find(out, b"\r\n\r\n") {
        out.truncate(end + 4);
    }
}

/// Logs an error at the level its side deserves: Torii's own failures always, the others at
/// debug (they are counted in metrics; a flood of refused clients must not flood the log).
fn log(e: &ProxyError) {
    match e.side {
        Side::Internal => {
            tracing::error!(reason = e.reason, "could not build the upstream request")
        }
        Side::Upstream => tracing::debug!(reason = e.reason, status = e.status, "upstream failure"),
        Side::Client => tracing::debug!(reason = e.reason, status = e.status, "request refused"),
    }
}
