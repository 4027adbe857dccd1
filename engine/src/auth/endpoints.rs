//! Every answer of machine authentication that Torii makes itself: the OAuth2 endpoints under
//! `/.well-known/otoroshi/oauth/` (token, introspection, JWKS; answered before route matching on
//! hosts matching `[client_credentials] domain`) and the 401/403 refusals of protected routes.
//!
//! Owns the IO around `torii_protocol::oauth`: choosing the endpoint, the `secure` rule (a
//! connection is secure when the listener is TLS, `ClientState::proto == b"https"`), reading a
//! request body of at most [`MAX_BODY_LEN`] bytes (Content-Length or chunked, with the
//! connection's body deadline), and writing RFC 6749 answers with `Cache-Control: no-store`.
//! Decisions (who gets a token, what it says) are the protocol's. A body that was not read whole
//! closes the connection after the answer (hardening.md "Connection reuse").

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use torii_protocol::apikey::ApiKeyError;
use torii_protocol::oauth::{
    parse_introspection_request, parse_token_request, Endpoint, ErrorCode, OAuthError,
    MAX_BODY_LEN, NO_STORE_HEADERS, PREFIX,
};

use crate::http1::{
    find_header, BodyFraming, ChunkedDecoder, ChunkedOutput, HeaderField, RequestHead,
};
use crate::io::write_all_timeout;
use crate::metrics::{RejectReason, RejectionKind};
use crate::proxy::respond::{write_error, write_json};
use crate::secure::unix_now;
use crate::server::conn::ClientState;
use crate::server::worker::Worker;
use crate::snapshot::{Route, RuntimeLimits, Snapshot};

/// Raw chunked bytes read at most for a body of [`MAX_BODY_LEN`] payload bytes (framing and
/// small chunks cost extra).
const MAX_CHUNKED_RAW: usize = MAX_BODY_LEN * 2 + 1024;

/// The host without its port (`[v6]:p` → `[v6]`, `name:p` → `name`).
fn host_without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        let end = host
            .iter()
            .position(|&b| b == b']')
            .map_or(host.len(), |i| i + 1);
        return host.get(..end).unwrap_or(host);
    }
    match host.iter().position(|&b| b == b':') {
        Some(i) => host.get(..i).unwrap_or(host),
        None => host,
    }
}

/// The endpoint this request is for, when the token service is on, the path is under
/// [`PREFIX`] and the Host (without port) matches `domain`. Cost for other requests: one prefix
/// comparison.
pub fn endpoint_for(snap: &Snapshot, host: &[u8], method: &[u8], path: &[u8]) -> Option<Endpoint> {
    let oauth = snap.auth.oauth.as_ref()?;
    if !path.starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let host = std::str::from_utf8(host_without_port(host)).ok()?;
    if !oauth.domain.is_match(host) {
        return None;
    }
    let method = std::str::from_utf8(method).ok()?;
    let path = std::str::from_utf8(path).ok()?;
    Endpoint::from_request(method, path)
}

fn has_unread_body(head: &RequestHead) -> bool {
    !matches!(head.body, BodyFraming::None | BodyFraming::Length(0))
}

/// Writes the answer and says whether the connection may stay open.
async fn send<S: AsyncWriteRent>(
    worker: &Worker,
    client: &mut S,
    st: &mut ClientState,
    head: &RequestHead,
    limits: &RuntimeLimits,
    answer: Result<Vec<u8>, OAuthError>,
    body_unread: bool,
) -> bool {
    let close = body_unread || !head.keep_alive || worker.is_draining();
    st.wbuf.clear();
    let mut extra: Vec<(&str, &str)> = NO_STORE_HEADERS[1..].to_vec();
    let status = match &answer {
        Ok(body) => {
            write_json(&mut st.wbuf, 200, body, close, &extra);
            200
        }
        Err(e) => {
            if let Some(www) = e.www_authenticate() {
                extra.push(("www-authenticate", www));
            }
            write_json(&mut st.wbuf, e.status(), &e.body(), close, &extra);
            e.status()
        }
    };
    st.rec.answered(status, st.wbuf.len());
    write_all_timeout(client, &mut st.wbuf, limits.body_timeout)
        .await
        .is_ok()
        && !close
}

/// How reading a token request body ended.
enum BodyRead {
    /// The body is in the output buffer; `raw` bytes follow the head in `rbuf`.
    Complete { raw: usize },
    /// Over [`MAX_BODY_LEN`].
    TooLarge,
    /// Bad chunked framing.
    Malformed,
    /// The client went away or was too slow: close without an answer.
    Gone,
}

/// Reads the request body behind the head (the head stays in `rbuf`, so its spans stay valid).
async fn read_body<S: AsyncReadRent + AsyncWriteRent>(
    client: &mut S,
    st: &mut ClientState,
    head: &RequestHead,
    limits: &RuntimeLimits,
    body: &mut Vec<u8>,
) -> BodyRead {
    let start = head.head_len;
    let need = match head.body {
        BodyFraming::None | BodyFraming::Length(0) => return BodyRead::Complete { raw: 0 },
        BodyFraming::Length(n) if n > MAX_BODY_LEN as u64 => return BodyRead::TooLarge,
        BodyFraming::Length(n) => Some(start + n as usize),
        BodyFraming::Chunked => None,
    };
    if head.expect_continue && st.rbuf.len() == start {
        st.wbuf.clear();
        st.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        if write_all_timeout(client, &mut st.wbuf, limits.body_timeout)
            .await
            .is_err()
        {
            return BodyRead::Gone;
        }
    }
    let cap = need.unwrap_or(start + MAX_CHUNKED_RAW);
    let mut decoder = ChunkedDecoder::new();
    let mut pos = start;
    loop {
        let data = st.rbuf.data();
        match need {
            Some(n) if data.len() >= n => {
                body.extend_from_slice(data.get(start..n).unwrap_or_default());
                return BodyRead::Complete { raw: n - start };
            }
            Some(_) => {}
            None => {
                let input = data.get(pos..).unwrap_or_default();
                match decoder.decode(input, body, ChunkedOutput::Payload) {
                    Err(_) => return BodyRead::Malformed,
                    Ok(p) => {
                        pos += p.consumed;
                        if body.len() > MAX_BODY_LEN {
                            return BodyRead::TooLarge;
                        }
                        if p.done {
                            return BodyRead::Complete { raw: pos - start };
                        }
                    }
                }
                if st.rbuf.len() >= cap {
                    return BodyRead::TooLarge;
                }
            }
        }
        match st.rbuf.fill_timeout(client, cap, limits.body_timeout).await {
            Ok(0) | Err(_) => return BodyRead::Gone,
            Ok(_) => {}
        }
    }
}

fn header<'a>(data: &'a [u8], headers: &[HeaderField], name: &[u8]) -> Option<&'a [u8]> {
    find_header(data, headers, name)
}

/// Answers one request for the token service. Returns whether the connection may stay open.
pub async fn serve<S: AsyncReadRent + AsyncWriteRent>(
    worker: &Worker,
    snap: &Snapshot,
    endpoint: Endpoint,
    client: &mut S,
    st: &mut ClientState,
    head: &RequestHead,
) -> bool {
    let limits = snap.limits;
    let (Some(oauth), Some(keys)) = (snap.auth.oauth.as_ref(), snap.auth.key_pairs.as_ref()) else {
        st.rbuf.consume(head.head_len);
        let e = OAuthError::new(ErrorCode::ServerError, "token service unavailable");
        return send(
            worker,
            client,
            st,
            head,
            &limits,
            Err(e),
            has_unread_body(head),
        )
        .await;
    };
    let early = match endpoint {
        Endpoint::NotFound => Some(Err(OAuthError::not_found())),
        _ if oauth.secure && st.proto != b"https" => Some(Err(OAuthError::insecure())),
        Endpoint::Jwks => Some(Ok(keys.jwks_json().to_vec())),
        Endpoint::Token | Endpoint::Introspect => None,
    };
    if let Some(answer) = early {
        st.rbuf.consume(head.head_len);
        return send(
            worker,
            client,
            st,
            head,
            &limits,
            answer,
            has_unread_body(head),
        )
        .await;
    }
    let mut body = std::mem::take(&mut st.scratch);
    body.clear();
    let read = read_body(client, st, head, &limits, &mut body).await;
    let raw = match read {
        BodyRead::Complete { raw } => raw,
        BodyRead::Gone => {
            st.scratch = body;
            return false;
        }
        BodyRead::TooLarge | BodyRead::Malformed => {
            st.scratch = body;
            st.rbuf.consume(head.head_len);
            let e = match read {
                BodyRead::TooLarge => OAuthError::body_too_large(),
                _ => OAuthError::new(ErrorCode::InvalidRequest, "malformed chunked body"),
            };
            return send(worker, client, st, head, &limits, Err(e), true).await;
        }
    };
    let data = st.rbuf.data();
    let content_type = header(data, &st.headers, b"content-type");
    let authorization = header(data, &st.headers, b"authorization");
    let now = unix_now();
    let answer = if endpoint == Endpoint::Token {
        let mut jti = [0u8; 36];
        worker.rng.borrow_mut().fill_jti(&mut jti);
        let jti = std::str::from_utf8(&jti).unwrap_or("0");
        let scheme = if st.proto == b"https" {
            "https"
        } else {
            "http"
        };
        let host = head.host.map(|h| h.get(data)).unwrap_or_default();
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
    st.scratch = body;
    st.rbuf.consume(head.head_len + raw);
    send(worker, client, st, head, &limits, answer, false).await
}

/// Answers a protected route's refusal (401 with `WWW-Authenticate`, or 403) before the
/// request body was read: the connection closes when a body follows. Returns whether the
/// connection may stay open.
pub async fn refuse<S: AsyncWriteRent>(
    worker: &Worker,
    snap: &Snapshot,
    client: &mut S,
    st: &mut ClientState,
    head: &RequestHead,
    route: &Route,
    e: ApiKeyError,
) -> bool {
    tracing::debug!(route = route.id, reason = e.reason(), "API key refused");
    route
        .metrics
        .rejection(worker.id, RejectionKind::ApiKey, metric_reason(&e));
    let close = has_unread_body(head) || !head.keep_alive || worker.is_draining();
    st.rbuf.consume(head.head_len);
    st.wbuf.clear();
    let extra: &[(&str, &str)] = match e.www_authenticate() {
        Some(www) => &[("www-authenticate", www)],
        None => &[],
    };
    write_error(&mut st.wbuf, e.status(), e.message(), close, extra);
    st.rec.answered(e.status(), st.wbuf.len());
    write_all_timeout(client, &mut st.wbuf, snap.limits.body_timeout)
        .await
        .is_ok()
        && !close
}

/// The metrics label of a refusal.
fn metric_reason(e: &ApiKeyError) -> RejectReason {
    match e {
        ApiKeyError::NoneProvided => RejectReason::Missing,
        ApiKeyError::Unknown => RejectReason::UnknownKey,
        ApiKeyError::BadSecret => RejectReason::BadSecret,
        ApiKeyError::Disabled => RejectReason::Disabled,
        ApiKeyError::Expired => RejectReason::Expired,
        ApiKeyError::NotAuthorized => RejectReason::NotAuthorized,
        ApiKeyError::BadToken(label) => RejectReason::from_token_label(label),
        ApiKeyError::Forbidden(f) => RejectReason::from_token_label(f.reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(host_without_port(b"a.b:8080"), b"a.b");
        assert_eq!(host_without_port(b"a.b"), b"a.b");
        assert_eq!(host_without_port(b"[::1]:80"), b"[::1]");
        assert_eq!(host_without_port(b""), b"");
    }
}
