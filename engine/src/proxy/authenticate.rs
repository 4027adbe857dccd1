//! Phase 3, authenticate: the route's external JWT (`[routes.jwt]`) and its API keys
//! (`[routes.apikeys]`: every extractor, bearer tokens from Torii's token service included).
//!
//! Owns turning the decisions of `secure::jwt` and `auth::check` (pure checks over the parsed
//! head) into the request's facts (the admitted key and the credentials to wipe, the claims to
//! exchange) or into the answer: 401 with `WWW-Authenticate`, or 403. Each refusal is counted
//! in the route's metrics with its reason. No IO: the sequencer answers.

use torii_protocol::apikey::ApiKeyError;
use torii_protocol::jwt_verifier::ClaimFailure;
use torii_protocol::ExternalJwtError;

use crate::auth::check::{check, HeadView};
use crate::metrics::{RejectReason, RejectionKind};
use crate::proxy::context::RequestCtx;
use crate::proxy::error::ProxyError;
use crate::secure::token_cache::CacheUse;
use crate::secure::unix_now;
use crate::snapshot::Route;
use crate::worker::Worker;

/// Runs the route's checks on the request's head, with the worker's verified-token cache
/// (`limits.verified_token_cache`) and metrics slot.
pub fn authenticate(worker: &Worker, ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    let now = unix_now();
    let cache = CacheUse {
        cache: &worker.token_cache,
        version: ctx.snap.version,
        cap: ctx.snap.limits.verified_token_cache,
    };
    external_jwt(worker.id, route, ctx, now, cache)?;
    if let Some(keys) = &route.apikeys {
        let view = HeadView::new(ctx.data(), ctx.fields(), &ctx.head);
        match check(&ctx.snap.auth, keys, &route.id, &view, now, Some(cache)) {
            Ok(admitted) => ctx.admitted = admitted,
            Err(e) => {
                tracing::debug!(route = route.id, reason = e.reason(), "API key refused");
                route
                    .metrics
                    .rejection(worker.id, RejectionKind::ApiKey, metric_reason(&e));
                return Err(api_key_error(&e));
            }
        }
    }
    Ok(())
}

/// The route's external JWT check. On success the claims to exchange, if any, are kept.
fn external_jwt(
    worker: usize,
    route: &Route,
    ctx: &mut RequestCtx<'_>,
    now: u64,
    cache: CacheUse<'_>,
) -> Result<(), ProxyError> {
    let Some(jwt) = &route.jwt else {
        return Ok(());
    };
    let route_idx = ctx.rec.route.unwrap_or(usize::MAX);
    match jwt.check(
        ctx.data(),
        &ctx.head,
        ctx.fields(),
        now,
        Some((cache, route_idx)),
        &mut ctx.bufs.token_sub,
    ) {
        Ok(extra) => {
            ctx.jwt_extra = extra;
            Ok(())
        }
        Err(e) => {
            tracing::debug!(route = %route.id, reason = e.reason(), "external JWT refused");
            route.metrics.rejection(
                worker,
                RejectionKind::Jwt,
                RejectReason::from_token_label(e.reason()),
            );
            let reason = match e.status() {
                403 => "jwt.forbidden",
                400 => "jwt.duplicate",
                _ => "jwt.refused",
            };
            Err(ProxyError::client(
                e.status(),
                jwt_failure_message(&e),
                reason,
            ))
        }
    }
}

/// The answer to a refused API key: its status (401 or 403), its message, and the
/// `WWW-Authenticate` challenge of a 401.
fn api_key_error(e: &ApiKeyError) -> ProxyError {
    let reason = match e {
        ApiKeyError::NoneProvided => "apikey.missing",
        ApiKeyError::NotAccepted(_) => "apikey.not_accepted",
        ApiKeyError::Unknown => "apikey.unknown",
        ApiKeyError::BadSecret => "apikey.bad_secret",
        ApiKeyError::Disabled => "apikey.disabled",
        ApiKeyError::Expired => "apikey.expired",
        ApiKeyError::NotAuthorized => "apikey.not_authorized",
        ApiKeyError::BadToken(_) => "apikey.bad_token",
        ApiKeyError::Forbidden(ClaimFailure::MissingScope) => "apikey.insufficient_scope",
        ApiKeyError::Forbidden(ClaimFailure::ClaimNotAllowed) => "apikey.claim_not_allowed",
        ApiKeyError::Duplicate => "apikey.duplicate",
    };
    ProxyError::client(e.status(), e.message(), reason).with_www_authenticate(e.www_authenticate())
}

/// The metrics label of a refused API key.
fn metric_reason(e: &ApiKeyError) -> RejectReason {
    match e {
        // The route found no credential it reads, wherever else one was.
        ApiKeyError::NoneProvided | ApiKeyError::NotAccepted(_) => RejectReason::Missing,
        ApiKeyError::Unknown => RejectReason::UnknownKey,
        ApiKeyError::BadSecret => RejectReason::BadSecret,
        ApiKeyError::Disabled => RejectReason::Disabled,
        ApiKeyError::Expired => RejectReason::Expired,
        ApiKeyError::NotAuthorized => RejectReason::NotAuthorized,
        ApiKeyError::BadToken(label) => RejectReason::from_token_label(label),
        ApiKeyError::Forbidden(f) => RejectReason::from_token_label(f.reason()),
        ApiKeyError::Duplicate => RejectReason::Duplicate,
    }
}

/// The `Otoroshi-Error` text of a refused external JWT.
fn jwt_failure_message(e: &ExternalJwtError) -> &'static str {
    use torii_protocol::JwtError as J;
    match e {
        ExternalJwtError::Missing => "error.expected.token.not.found",
        ExternalJwtError::Duplicate => "error.token.sent.more.than.once",
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
