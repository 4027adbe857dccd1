//! Why a request ends with an answer Torii makes itself: one error type for every phase.
//!
//! Owns [`ProxyError`]: the status and Otoroshi error message the client gets, which side
//! failed (the client, the upstream, Torii itself), a machine-readable reason (a fixed
//! `area.kind` label, never a secret or a value from the request), whether the connection must
//! close whatever else holds, and whether the upstream exchange may be retried. The retry rule
//! of the design lives here, in [`retry_allowed`], and nowhere else. Turning an error into bytes,
//! a record and a keep-alive decision is `proxy::answer`'s job.

use std::io;

use crate::http1::{Method, RequestError};
use crate::proxy::body::PumpError;
use crate::proxy::body_rate::BodyWaitError;
use crate::proxy::connect::ConnectError;
use crate::quota::Refused;

/// Which side a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client's request was refused (bad head, no route, no key, too large, too slow).
    Client,
    /// The upstream failed (connect, reset, timeout, bad response, failed challenge).
    Upstream,
    /// Torii could not do its part (a token could not be signed).
    Internal,
}

/// An answer Torii makes itself, or the decision that no answer is possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// The status; 0 when the client went away and nothing can be answered.
    pub status: u16,
    /// The `Otoroshi-Error` message (a fixed, header-safe text).
    pub message: &'static str,
    /// Which side failed.
    pub side: Side,
    /// A fixed label for logs and the access log (`path.encoded_slash`, `apikey.bad_secret`,
    /// `upstream.connect_refused`…).
    pub reason: &'static str,
    /// The connection closes after the answer (the request's body end is unknown).
    pub close: bool,
    /// The upstream exchange may be tried again on a fresh connection ([`retry_allowed`]).
    pub retry: bool,
    /// A `WWW-Authenticate` value for 401 answers.
    pub www_authenticate: Option<&'static str>,
    /// A `Retry-After` value, seconds (429 and 503 answers of the quotas).
    pub retry_after: Option<u64>,
    /// Answered without content (a redirect, a CORS preflight), not as the error document.
    pub bare: bool,
}

impl ProxyError {
    /// An error answered with `status` and `message`.
    pub const fn new(side: Side, status: u16, message: &'static str, reason: &'static str) -> Self {
        Self {
            status,
            message,
            side,
            reason,
            close: false,
            retry: false,
            www_authenticate: None,
            retry_after: None,
            bare: false,
        }
    }

    /// A client error (4xx) answered before the upstream was involved.
    pub const fn client(status: u16, message: &'static str, reason: &'static str) -> Self {
        Self::new(Side::Client, status, message, reason)
    }

    /// The client went away: nothing is answered and the connection closes.
    pub const fn client_gone(reason: &'static str) -> Self {
        let mut e = Self::new(Side::Client, 0, "", reason);
        e.close = true;
        e
    }

    /// The same answer, without content ([`ProxyError::bare`]).
    pub const fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// The same error, closing the connection after the answer.
    pub const fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The same error with a `WWW-Authenticate` challenge.
    pub const fn with_www_authenticate(mut self, value: Option<&'static str>) -> Self {
        self.www_authenticate = value;
        self
    }

    /// A call refused by the quotas or the per-address limit (429 `You performed too much
    /// requests`, as Otoroshi answers), or a metered call refused while the shared store is
    /// down in `on_redis_error = "deny"` mode (503); both with `Retry-After`.
    pub fn from_quota(r: &Refused) -> Self {
        let mut e = Self::client(r.status(), r.message(), r.reason());
        e.retry_after = Some(r.retry_after_secs());
        e
    }

    /// True when nothing can be answered (the client is gone).
    pub fn is_silent(&self) -> bool {
        self.status == 0
    }

    /// 404 `No route found`.
    pub const fn no_route() -> Self {
        Self::client(404, crate::proxy::respond::NO_ROUTE, "route.not_found")
    }

    /// A request head refused by the parser (400, 408, 414, 431, 505); always closes.
    pub fn from_head(e: &RequestError) -> Self {
        let (message, reason) = match e {
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => {
                ("Request header fields too large", "head.too_large")
            }
            RequestError::UriTooLong => ("URI too long", "head.uri_too_long"),
            RequestError::UnsupportedVersion => {
                ("HTTP version not supported", "head.unsupported_version")
            }
            RequestError::Invalid(_) => ("Bad request", "head.invalid"),
        };
        Self::client(e.status(), message, reason).closing()
    }

    /// The head did not arrive within `client_header_timeout` (408); closes.
    pub const fn head_timeout() -> Self {
        Self::client(408, "Request timeout", "head.timeout").closing()
    }

    /// A request body that did not come (408) or whose client left (no answer); closes.
    pub fn from_body_wait(e: &BodyWaitError) -> Self {
        match e {
            BodyWaitError::TooSlow => {
                Self::client(408, "Request body too slow", "body.too_slow").closing()
            }
            BodyWaitError::Idle => Self::client(408, "Request timeout", "body.timeout").closing(),
            BodyWaitError::Gone => Self::client_gone("body.client_gone"),
        }
    }

    /// The request body could not be streamed upstream; the body's end is unknown, so the
    /// connection closes.
    pub fn from_request_body(e: &PumpError) -> Self {
        let e = match e {
            PumpError::TooLarge => Self::client(413, "Request body too large", "body.too_large"),
            PumpError::Framing(_) => Self::client(400, "Bad request", "body.bad_framing"),
            PumpError::SourceTimeout => Self::client(408, "Request timeout", "body.timeout"),
            PumpError::TooSlow => Self::client(408, "Request body too slow", "body.too_slow"),
            PumpError::Source(_) => Self::client_gone("body.client_gone"),
            PumpError::Dest(_) | PumpError::DestTooSlow => Self::new(
                Side::Upstream,
                502,
                "Upstream connection failed",
                "upstream.body_write_failed",
            ),
        };
        e.closing()
    }

    /// Connecting failed on every target tried.
    pub const fn from_connect(e: ConnectError) -> Self {
        match e {
            ConnectError::Refused => Self::new(
                Side::Upstream,
                502,
                "Upstream connection refused",
                "upstream.connect_refused",
            ),
            ConnectError::TimedOut => Self::new(
                Side::Upstream,
                504,
                "Upstream connection timed out",
                "upstream.connect_timeout",
            ),
            ConnectError::NoTarget => Self::new(
                Side::Upstream,
                502,
                "No upstream target",
                "upstream.no_target",
            ),
            ConnectError::Tls => Self::new(
                Side::Upstream,
                502,
                "Upstream TLS handshake failed",
                "upstream.tls_handshake",
            ),
        }
    }

    /// The upstream failed (reset, closed) before any response byte; `retry` as
    /// [`retry_allowed`] decides.
    pub fn before_response(_e: &io::Error, retry: bool) -> Self {
        let mut e = Self::new(
            Side::Upstream,
            502,
            "Upstream connection failed",
            "upstream.failed_before_response",
        );
        e.retry = retry;
        e
    }

    /// The upstream answered `status` (502, 503 or 504), the request was retried and no
    /// endpoint was left to try: answered with the same status.
    pub const fn from_upstream_status(status: u16) -> Self {
        Self::new(
            Side::Upstream,
            status,
            "Upstream answered with an error",
            "upstream.error_status",
        )
    }

    /// No response head within `upstream_timeout` (504).
    pub const fn response_timeout() -> Self {
        Self::new(
            Side::Upstream,
            504,
            "Upstream timed out",
            "upstream.response_timeout",
        )
    }

    /// The upstream's response head was invalid (`why` names the rule).
    pub const fn bad_response(why: &'static str) -> Self {
        Self::new(
            Side::Upstream,
            502,
            "Upstream sent an invalid response",
            why,
        )
    }

    /// Torii could not build the upstream request (a token could not be signed).
    pub const fn internal(why: &'static str) -> Self {
        Self::new(Side::Internal, 500, "Internal error", why)
    }
}

/// The retry rule (one place): an upstream exchange is tried again, once, on a fresh
/// connection, only when it failed on a **reused** pooled connection (which the upstream may
/// have closed while it sat idle), before any response byte, on the **first** attempt, for an
/// **idempotent** method (RFC 9110 §9.2.2), and when no request body was streamed (a streamed
/// body cannot be sent twice).
pub fn retry_allowed(reused: bool, attempt: u32, method: Method, body_streamed: bool) -> bool {
    reused && attempt == 1 && method.is_idempotent() && !body_streamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_only_for_a_reused_idempotent_first_attempt_without_streamed_body() {
        assert!(retry_allowed(true, 1, Method::Get, false));
        assert!(retry_allowed(true, 1, Method::Put, false));
        assert!(
            !retry_allowed(false, 1, Method::Get, false),
            "fresh connection"
        );
        assert!(
            !retry_allowed(true, 2, Method::Get, false),
            "second attempt"
        );
        assert!(
            !retry_allowed(true, 1, Method::Post, false),
            "not idempotent"
        );
        assert!(!retry_allowed(true, 1, Method::Put, true), "body streamed");
    }

    #[test]
    fn statuses_and_sides() {
        assert_eq!(ProxyError::from_connect(ConnectError::TimedOut).status, 504);
        assert_eq!(ProxyError::from_connect(ConnectError::Refused).status, 502);
        assert_eq!(ProxyError::response_timeout().status, 504);
        assert_eq!(ProxyError::internal("x").side, Side::Internal);
        let gone = ProxyError::from_body_wait(&BodyWaitError::Gone);
        assert!(gone.is_silent() && gone.close);
        let big = ProxyError::from_request_body(&PumpError::TooLarge);
        assert_eq!((big.status, big.close), (413, true));
        let head = ProxyError::from_head(&RequestError::UriTooLong);
        assert_eq!(
            (head.status, head.close, head.reason),
            (414, true, "head.uri_too_long")
        );
        assert!(ProxyError::before_response(&io::ErrorKind::ConnectionReset.into(), true).retry);
    }
}
