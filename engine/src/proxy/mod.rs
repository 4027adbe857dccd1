//! The request phases of the gateway, from a parsed head to the end of the response.
//!
//! Owns the order of the phases (design.md "The request path"): OAuth2 endpoints → route →
//! local answers → API keys →
//! upstream connection → request head and body → response head → response body → connection
//! reuse. Each phase lives in its own submodule; this one only sequences them and decides
//! whether the client connection stays open. It returns `true` when the connection can serve
//! another request.

pub mod body;
pub mod respond;
pub mod response;
pub mod upstream_call;

use std::rc::Rc;
use std::sync::Arc;

use crate::auth::check::{check, Admitted, HeadView};
use crate::auth::endpoints::{endpoint_for, refuse};
use crate::http1::{BodyFraming, RequestHead};
use crate::io::{write_all_timeout, Stream};
use crate::metrics::{RejectReason, RejectionKind};
use crate::secure::unix_now;
use crate::server::conn::ClientState;
use crate::server::worker::Worker;
use crate::snapshot::{Route, Snapshot};
use torii_protocol::jwt_verifier::ClaimFailure;
use torii_protocol::ExternalJwtError;

use respond::{write_error, NO_ROUTE};

/// Handles one request whose head is at the start of `st.rbuf`. Returns whether the client
/// connection may be kept alive.
pub async fn handle_request<C: Stream>(
    worker: &Rc<Worker>,
    snap: &Rc<Arc<Snapshot>>,
    client: &mut C,
    st: &mut ClientState,
    head: RequestHead,
) -> bool {
    let data = st.rbuf.data();
    let host = head.host.map(|s| s.get(data)).unwrap_or(b"");
    let path = head.path.get(data);
    if let Some(ep) = endpoint_for(snap, host, head.method_span.get(data), path) {
        return Box::pin(crate::auth::endpoints::serve(
            worker, snap, ep, client, st, &head,
        ))
        .await;
    }
    let Some(route_idx) = snap.table.find(host, path) else {
        return Box::pin(answer_locally(
            worker, snap, client, st, &head, 404, NO_ROUTE,
        ))
        .await;
    };
    st.rec.route = Some(route_idx);
    if let Err((status, message)) = check_jwt(worker.id, &snap.routes[route_idx], st, &head) {
        return Box::pin(answer_locally(
            worker, snap, client, st, &head, status, message,
        ))
        .await;
    }
    if let BodyFraming::Length(n) = head.body {
        if n > snap.limits.max_body_bytes {
            return Box::pin(answer_locally(
                worker,
                snap,
                client,
                st,
                &head,
                413,
                "Request body too large",
            ))
            .await;
        }
    }
    let route = &snap.routes[route_idx];
    let admitted = match &route.apikeys {
        None => Admitted::default(),
        Some(keys) => {
            let view = HeadView::new(st.rbuf.data(), &st.headers, &head);
            match check(&snap.auth, keys, &route.id, &view, unix_now()) {
                Ok(a) => a,
                Err(e) => return Box::pin(refuse(worker, snap, client, st, &head, route, e)).await,
            }
        }
    };
    upstream_call::forward(worker, snap, route_idx, client, st, head, admitted).await
}

/// The route's external JWT check (`[routes.jwt]`), after routing. On success the claims to
/// exchange, if any, are left in `st.jwt_extra`; on failure the status (401, or 403 for a
/// valid token lacking a required scope or claim) and the message naming the reason.
fn check_jwt(
    worker_id: usize,
    route: &Route,
    st: &mut ClientState,
    head: &RequestHead,
) -> Result<(), (u16, &'static str)> {
    st.jwt_extra = None;
    let Some(jwt) = &route.jwt else {
        return Ok(());
    };
    match jwt.check(st.rbuf.data(), head, &st.headers, unix_now()) {
        Ok(extra) => {
            st.jwt_extra = extra;
            Ok(())
        }
        Err(e) => {
            tracing::debug!(route = %route.id, reason = e.reason(), "external JWT refused");
            route.metrics.rejection(
                worker_id,
                RejectionKind::Jwt,
                RejectReason::from_token_label(e.reason()),
            );
            Err((e.status(), jwt_failure_message(&e)))
        }
    }
}

/// The `Otoroshi-Error` text of a refused external JWT.
fn jwt_failure_message(e: &ExternalJwtError) -> &'static str {
    use torii_protocol::JwtError as J;
    match e {
        ExternalJwtError::Missing => "error.expected.token.not.found",
        ExternalJwtError::UnknownKid | ExternalJwtError::MissingKid => {
            "error.bad.token: unknown key"
        }
        ExternalJwtError::KeysUnavailable => "error.bad.token: key set unavailable",
        ExternalJwtError::Forbidden(ClaimFailure::MissingScope) => "error.insufficient.scope",
        ExternalJwtError::Forbidden(ClaimFailure::ClaimNotAllowed) => "error.claim.not.allowed",
        ExternalJwtError::Token(t) => match t {
            J::Expired => "error.bad.token: expired",
            J::NotYetValid | J::IssuedInFuture => "error.bad.token: not yet valid",
            J::WrongIssuer => "error.bad.token: wrong issuer",
            J::WrongAudience => "error.bad.token: wrong audience",
            J::AlgNone | J::AlgMismatch | J::MissingAlg => "error.bad.token: algorithm not allowed",
            J::BadSignature => "error.bad.token: bad signature",
            J::TooLong => "error.bad.token: too long",
            J::MissingClaim(_) => "error.bad.token: missing claim",
            J::ClaimNotNumber(_)
            | J::ClaimNotInteger(_)
            | J::ClaimNegative(_)
            | J::ClaimOutOfRange(_) => "error.bad.token: invalid time claim",
            _ => "error.bad.token: malformed",
        },
    }
}

/// True when the request has a body that has not been read.
fn has_unread_body(head: &RequestHead) -> bool {
    match head.body {
        BodyFraming::None | BodyFraming::Length(0) => false,
        BodyFraming::Length(_) | BodyFraming::Chunked => true,
    }
}

/// Answers a request with one of Torii's own errors, before its body was read. When a body
/// follows the head, the connection is closed after the answer, so that the body is never read
/// as the next request (hardening.md "Connection reuse").
pub async fn answer_locally<C: Stream>(
    worker: &Worker,
    snap: &Snapshot,
    client: &mut C,
    st: &mut ClientState,
    head: &RequestHead,
    status: u16,
    message: &str,
) -> bool {
    let close = has_unread_body(head) || !head.keep_alive || worker.is_draining();
    st.rbuf.consume(head.head_len);
    st.wbuf.clear();
    write_error(&mut st.wbuf, status, message, close, &[]);
    st.rec.answered(status, st.wbuf.len());
    if write_all_timeout(client, &mut st.wbuf, snap.limits.body_timeout)
        .await
        .is_err()
    {
        return false;
    }
    !close
}
