//! The one answer path: every response Torii makes itself — a [`ProxyError`] as the Otoroshi
//! error response, the token service's RFC 6749 answers, introspection, the JWKS document —
//! goes through [`respond`], over the request's [`Downstream`].
//!
//! Owns turning an answer into the request's record and the connection's [`Outcome`]: the
//! keep-alive decision is the downstream's (`Downstream::must_close`, docs/security.md §5),
//! plus what the answer forces (an error that says the connection ends). A head refused
//! before a request context exists goes through [`answer_unparsed`], which shares the
//! downstream's writer and always closes.

use crate::metrics::RequestRecord;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::{is_head, Downstream, LocalAnswer, LocalBody};
use crate::proxy::error::{ProxyError, Side};
use crate::proxy::grpc::{grpc_status_for, is_grpc};
use crate::worker::Worker;

/// Sends `local`, Torii's own answer to the request in `ctx`, through `down` and says how the
/// connection goes on. `force_close`: the answer ends the connection whatever the keep-alive
/// rule says.
pub async fn respond<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    local: &LocalAnswer<'_>,
    force_close: bool,
) -> Outcome {
    let close = force_close || down.must_close(ctx, worker.is_draining());
    let timeout = ctx.snap.limits.body_timeout;
    let head_only = is_head(ctx);
    if down
        .send_local(&mut ctx.rec, local, close, head_only, timeout)
        .await
    {
        Outcome::keep_alive_unless(close)
    } else {
        Outcome::Close
    }
}

/// Answers `e` for the request in `ctx` and says how the connection goes on.
pub async fn answer<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    e: ProxyError,
) -> Outcome {
    log(&e);
    ctx.rec.reason = Some(e.reason);
    if e.is_silent() {
        return Outcome::Close;
    }
    let mut digits = [0u8; 20];
    let mut headers = [("", ""); 2];
    let mut local = error_answer(&e, &mut digits, &mut headers);
    let content_type = crate::http1::find_header(ctx.data(), ctx.fields(), b"content-type");
    if content_type.is_some_and(is_grpc) {
        local.body = LocalBody::Grpc(e.message);
        ctx.rec.grpc_status = Some(grpc_status_for(local.status));
    } else if e.bare {
        local.body = LocalBody::Empty;
    }
    // A route rule's lines (`Allow`, `Location`, CORS): taken out of the context for the
    // answer and put back (their capacity kept).
    let mut lines = std::mem::take(&mut ctx.bufs.answer_lines);
    if !e.reason.starts_with("cors.") {
        // Torii's own answers on a CORS route carry the CORS lines too, so that a browser
        // shows the page the status (a 401, a 429) and not a CORS failure.
        crate::proxy::route_rules::write_actual_cors(ctx, &mut lines);
    }
    local.lines = &lines;
    let outcome = respond(worker, down, ctx, &local, e.close).await;
    ctx.bufs.answer_lines = lines;
    outcome
}

/// Answers a head that could not be parsed (no request context exists) and closes. `grpc`:
/// the head's `content-type` is known to be gRPC's (an HTTP/2 head, whose fields were decoded
/// before it was refused), so the answer is a gRPC status; an HTTP/1.1 head refused while
/// being parsed has no field Torii may trust, and gets the usual answer.
pub async fn answer_unparsed<D: Downstream>(
    down: &mut D,
    rec: &mut RequestRecord,
    e: &ProxyError,
    timeout: std::time::Duration,
    grpc: bool,
) -> Outcome {
    rec.reason = Some(e.reason);
    let mut digits = [0u8; 20];
    let mut headers = [("", ""); 2];
    let mut local = error_answer(e, &mut digits, &mut headers);
    if grpc {
        local.body = LocalBody::Grpc(e.message);
    }
    down.send_local(rec, &local, true, false, timeout).await;
    Outcome::Close
}

/// The Otoroshi error answer of `e`, its extra headers written into `headers` (the
/// `Retry-After` digits into `digits`): no allocation.
fn error_answer<'a>(
    e: &'a ProxyError,
    digits: &'a mut [u8; 20],
    headers: &'a mut [(&'a str, &'a str); 2],
) -> LocalAnswer<'a> {
    let mut n = 0;
    if let Some(v) = e.www_authenticate {
        headers[n] = ("www-authenticate", v);
        n += 1;
    }
    if let Some(secs) = e.retry_after {
        headers[n] = ("retry-after", decimal(secs, digits));
        n += 1;
    }
    LocalAnswer {
        status: e.status,
        body: LocalBody::Error(e.message),
        headers: &headers[..n],
        lines: &[],
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_www_authenticate_are_rendered_without_allocation() {
        let e = ProxyError::client(429, "You performed too much requests", "quota.window")
            .with_www_authenticate(Some("Bearer"));
        let mut e = e;
        e.retry_after = Some(1234);
        let mut digits = [0u8; 20];
        let mut headers = [("", ""); 2];
        let local = error_answer(&e, &mut digits, &mut headers);
        assert_eq!(
            local.headers,
            &[("www-authenticate", "Bearer"), ("retry-after", "1234")]
        );
        assert_eq!(decimal(0, &mut [0u8; 20]), "0");
        assert_eq!(decimal(u64::MAX, &mut [0u8; 20]), "18446744073709551615");
    }
}
