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

use crate::http1::{canonical_host, BodyFraming, MAX_HOST_BYTES};
use crate::proxy::answer::{answer, respond};
use crate::proxy::context::{Outcome, RequestCtx};
use crate::proxy::downstream::{Downstream, LocalAnswer, LocalBody, SmallBody};
use crate::proxy::error::ProxyError;
use crate::secure::unix_now;
use crate::worker::Worker;

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
async fn send<D: Downstream>(
    worker: &Worker,
    down: &mut D,
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
        lines: &[],
        headers: &extra,
    };
    respond(worker, down, ctx, &local, false).await
}

/// Reads the token request's body whole (at most [`MAX_BODY_LEN`] payload bytes) under the
/// same rate and `100-continue` rules as a proxied body (the rate counts from the head).
async fn read_body<D: Downstream>(
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    body: &mut Vec<u8>,
) -> SmallBody {
    if let BodyFraming::Length(n) = ctx.head.body {
        if n > MAX_BODY_LEN as u64 {
            // Refused at once: a local endpoint does not wait for what it will refuse.
            return SmallBody::TooLarge;
        }
    }
    let (clock, waited) = down.await_body(ctx).await;
    if let Err(e) = waited {
        return SmallBody::Failed(e);
    }
    down.read_small_body(ctx, &clock, body, MAX_BODY_LEN).await
}

/// Answers one request for the token service and says how the connection goes on.
pub async fn serve<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    endpoint: Endpoint,
) -> Outcome {
    let snap = ctx.snap;
    ctx.rec.token_service = true;
    let (Some(oauth), Some(keys)) = (snap.auth.oauth.as_ref(), snap.auth.key_pairs.as_ref()) else {
        let e = OAuthError::new(ErrorCode::ServerError, "token service unavailable");
        return send(worker, down, ctx, Err(e)).await;
    };
    let early = match endpoint {
        Endpoint::NotFound => Some(Err(OAuthError::not_found())),
        _ if oauth.secure && !down.client().is_secure() => Some(Err(OAuthError::insecure())),
        Endpoint::Jwks => Some(Ok(keys.jwks_json().to_vec())),
        Endpoint::Token | Endpoint::Introspect => None,
    };
    if let Some(answer) = early {
        return send(worker, down, ctx, answer).await;
    }
    let mut body = std::mem::take(&mut ctx.bufs.scratch);
    body.clear();
    let read = read_body(down, ctx, &mut body).await;
    let raw = match read {
        SmallBody::Complete { raw } => raw,
        SmallBody::Failed(e) => {
            ctx.bufs.scratch = body;
            return answer(worker, down, ctx, ProxyError::from_body_wait(&e)).await;
        }
        SmallBody::TooLarge | SmallBody::Malformed => {
            ctx.bufs.scratch = body;
            let e = match read {
                SmallBody::TooLarge => OAuthError::body_too_large(),
                _ => OAuthError::new(ErrorCode::InvalidRequest, "malformed chunked body"),
            };
            return send(worker, down, ctx, Err(e)).await;
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
        let scheme = if down.client().is_secure() {
            "https"
        } else {
            "http"
        };
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
    down.consume_body(raw);
    ctx.body_done = true;
    send(worker, down, ctx, answer).await
}
