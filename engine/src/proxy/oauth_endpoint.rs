//! Phase 1, local endpoints: the OAuth2 client-credentials service under
//! `/.well-known/otoroshi/oauth/` (token, introspection, JWKS), answered before route matching
//! on hosts matching `[client_credentials] domain`.
//!
//! Owns the IO around `torii_protocol::oauth`: choosing the endpoint (canonical host and path),
//! the `secure` rule (a connection is secure when its listener is TLS), reading a request body
//! of at most [`MAX_BODY_LEN`] bytes (Content-Length or chunked, under the same minimum rate as a
//! proxied body; a size declared or announced over the cap is refused at once), and RFC 6749
//! answers with `Cache-Control: no-store`, sent through the one answer path
//! (`crate::proxy::answer::respond`). Decisions (who gets a token, what it says)
//! are the protocol's. A body that was not read whole closes the connection after the answer
//! (docs/security.md §5).

use torii_protocol::oauth::{
    parse_introspection_request, parse_token_request, Endpoint, ErrorCode, OAuthError,
    MAX_BODY_LEN, NO_STORE_HEADERS, PREFIX,
};

use crate::http1::{canonical_host, BodyFraming, ChunkedDecoder, ChunkedOutput, MAX_HOST_BYTES};
use crate::io::Stream;
use crate::proxy::answer::{answer, respond};
use crate::proxy::body_rate::{await_request_body, read_body_bytes, BodyWaitError};
use crate::proxy::client::ClientConn;
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::{LocalAnswer, LocalBody};
use crate::proxy::error::ProxyError;
use crate::secure::unix_now;
use crate::worker::Worker;

/// Raw chunked bytes read at most for a body of [`MAX_BODY_LEN`] payload bytes (framing and
/// small chunks cost extra).
const MAX_CHUNKED_RAW: usize = MAX_BODY_LEN * 2 + 1024;

/// The endpoint this request is for, when the token service is on, the canonical path is under
/// [`PREFIX`] and the canonical host ([`canonical_host`], the form routing matches) matches
/// `domain`. Cost for other requests: one prefix comparison.
pub fn endpoint_for(ctx: &RequestCtx<'_>) -> Option<Endpoint> {
    let oauth = ctx.snap.auth.oauth.as_ref()?;
    let data = ctx.data();
    let path = ctx.canonical_path();
    if !path.starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let host = ctx.head.host.map(|s| s.get(data)).unwrap_or(b"");
    let mut buf = [0u8; MAX_HOST_BYTES];
    let host = std::str::from_utf8(canonical_host(host, &mut buf)?).ok()?;
    if !oauth.domain.is_match(host) {
        return None;
    }
    let method = std::str::from_utf8(ctx.head.method_span.get(data)).ok()?;
    let path = std::str::from_utf8(path).ok()?;
    Endpoint::from_request(method, path)
}

/// Sends an RFC 6749 answer through the one answer path and says how the connection goes on.
async fn send<C: Stream>(
    worker: &Worker,
    conn: &mut ClientConn<C>,
    ctx: &mut RequestCtx<'_>,
    answer: Result<Vec<u8>, OAuthError>,
) -> Outcome {
    let mut extra: Vec<(&str, &str)> = NO_STORE_HEADERS[1..].to_vec();
    let refused;
    let (status, body) = match &answer {
        Ok(body) => (200, &body[..]),
        Err(e) => {
            if let Some(www) = e.www_authenticate() {
                extra.push(("www-authenticate", www));
            }
            refused = e.body();
            (e.status(), &refused[..])
        }
    };
    let local = LocalAnswer {
        status,
        body: LocalBody::Json(body),
        headers: &extra,
    };
    respond(worker, conn, ctx, &local, false).await
}

/// How reading a token request body ended.
enum BodyRead {
    /// The body is in the output buffer; it was the first `raw` bytes of `rbuf`.
    Complete { raw: usize },
    /// Over [`MAX_BODY_LEN`].
    TooLarge,
    /// Bad chunked framing.
    Malformed,
    /// The body did not come (too slow, idle) or the client left.
    Failed(BodyWaitError),
}

/// Reads the request body (the start of `rbuf`: the head was consumed from it), leaving it
/// there until the answer is decided.
async fn read_body<C: Stream>(
    conn: &mut ClientConn<C>,
    ctx: &mut RequestCtx<'_>,
    body: &mut Vec<u8>,
) -> BodyRead {
    let need = match ctx.head.body {
        BodyFraming::None | BodyFraming::Length(0) => return BodyRead::Complete { raw: 0 },
        BodyFraming::Length(n) if n > MAX_BODY_LEN as u64 => return BodyRead::TooLarge,
        BodyFraming::Length(n) => Some(n as usize),
        BodyFraming::Chunked => None,
    };
    // The same rate and 100-continue rules as a proxied body (the rate counts from the head).
    let (clock, waited) = await_request_body(conn, ctx).await;
    if let Err(e) = waited {
        return BodyRead::Failed(e);
    }
    let idle = ctx.snap.limits.body_timeout;
    let cap = need.unwrap_or(MAX_CHUNKED_RAW);
    let mut decoder = ChunkedDecoder::new();
    let mut pos = 0;
    loop {
        let data = conn.rbuf.data();
        match need {
            Some(n) if data.len() >= n => {
                body.extend_from_slice(data.get(..n).unwrap_or_default());
                return BodyRead::Complete { raw: n };
            }
            Some(_) => {}
            None => {
                let input = data.get(pos..).unwrap_or_default();
                match decoder.decode(input, body, ChunkedOutput::Payload) {
                    Err(_) => return BodyRead::Malformed,
                    Ok(p) => {
                        pos += p.consumed;
                        // A chunk announced over the cap is refused at once, before its data
                        // (a local endpoint does not wait for what it will refuse).
                        if decoder.committed_bytes() > MAX_BODY_LEN as u64 {
                            return BodyRead::TooLarge;
                        }
                        if p.done {
                            return BodyRead::Complete { raw: pos };
                        }
                    }
                }
                if conn.rbuf.len() >= cap {
                    return BodyRead::TooLarge;
                }
            }
        }
        let arrived = conn.rbuf.len() as u64;
        let read =
            read_body_bytes(&mut conn.stream, &mut conn.rbuf, cap, &clock, arrived, idle).await;
        if let Err(e) = read {
            return BodyRead::Failed(e);
        }
    }
}

/// Answers one request for the token service and says how the connection goes on.
pub async fn serve<C: Stream>(
    worker: &Worker,
    conn: &mut ClientConn<C>,
    ctx: &mut RequestCtx<'_>,
    endpoint: Endpoint,
) -> Outcome {
    let snap = ctx.snap;
    ctx.rec.token_service = true;
    let (Some(oauth), Some(keys)) = (snap.auth.oauth.as_ref(), snap.auth.key_pairs.as_ref()) else {
        let e = OAuthError::new(ErrorCode::ServerError, "token service unavailable");
        return send(worker, conn, ctx, Err(e)).await;
    };
    let early = match endpoint {
        Endpoint::NotFound => Some(Err(OAuthError::not_found())),
        _ if oauth.secure && !conn.is_secure() => Some(Err(OAuthError::insecure())),
        Endpoint::Jwks => Some(Ok(keys.jwks_json().to_vec())),
        Endpoint::Token | Endpoint::Introspect => None,
    };
    if let Some(answer) = early {
        return send(worker, conn, ctx, answer).await;
    }
    let mut body = std::mem::take(&mut ctx.bufs.scratch);
    body.clear();
    let read = read_body(conn, ctx, &mut body).await;
    let raw = match read {
        BodyRead::Complete { raw } => raw,
        BodyRead::Failed(e) => {
            ctx.bufs.scratch = body;
            return answer(worker, conn, ctx, ProxyError::from_body_wait(&e)).await;
        }
        BodyRead::TooLarge | BodyRead::Malformed => {
            ctx.bufs.scratch = body;
            let e = match read {
                BodyRead::TooLarge => OAuthError::body_too_large(),
                _ => OAuthError::new(ErrorCode::InvalidRequest, "malformed chunked body"),
            };
            return send(worker, conn, ctx, Err(e)).await;
        }
    };
    let data = ctx.data();
    let content_type = ctx.req.find(b"content-type");
    let authorization = ctx.req.find(b"authorization");
    let now = unix_now();
    let answer = if endpoint == Endpoint::Token {
        let mut jti = [0u8; 36];
        worker.rng.borrow_mut().fill_jti(&mut jti);
        let jti = std::str::from_utf8(&jti).unwrap_or("0");
        let scheme = if conn.is_secure() { "https" } else { "http" };
        let host = ctx.head.host.map(|h| h.get(data)).unwrap_or_default();
        let issuer = oauth
            .service
            .issuer(|| format!("{scheme}://{}", String::from_utf8_lossy(host)));
        parse_token_request(content_type, authorization, &body)
            .and_then(|req| {
                oauth
                    .service
                    .token(&snap.auth.store, keys, &req, &issuer, now, jti)
            })
            .map(|t| t.body())
    } else {
        parse_introspection_request(content_type, authorization, &body)
            .and_then(|req| oauth.service.introspect(&snap.auth.store, keys, &req, now))
    };
    if let Err(e) = &answer {
        tracing::debug!(error = %e, "client-credentials request refused");
    }
    ctx.bufs.scratch = body;
    conn.rbuf.consume(raw);
    ctx.body_done = true;
    send(worker, conn, ctx, answer).await
}
