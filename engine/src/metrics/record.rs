//! What the request path learned about one request, for metrics and the access log.
//!
//! Owns [`RequestRecord`], a small `Copy`-free struct kept in each request's context (`proxy::context::RequestCtx`)
//! and reset per request. The proxy sets each fact at the point where it already knows it
//! (one line per point: the route matched, the target connected, the status sent, the bytes
//! moved); `serve_client` reads it once the request ended. Nothing here allocates or does IO.

use std::time::Duration;

use torii_protocol::challenge::JTI_LEN;

/// The protocol a request arrived with: the `proto` label of `torii_requests_total` and the
/// access log's `proto` field. HTTP/1.0 requests count as `http/1.1` (one connection code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.x on its own connection.
    #[default]
    Http11,
    /// One stream of an HTTP/2 connection.
    H2,
}

impl Protocol {
    /// The label value: `http/1.1` or `h2` (the ALPN names).
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http11 => "http/1.1",
            Protocol::H2 => "h2",
        }
    }
}

/// Facts about the request in progress on a connection.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Status sent to the client; 0 while none was sent (and for requests that got none).
    pub status: u16,
    /// Index of the matched route in the request's snapshot.
    pub route: Option<usize>,
    /// Index of the target (in the route) of the last upstream connection used.
    pub target: Option<usize>,
    /// The endpoint (address) of the last upstream try.
    pub endpoint: Option<std::net::SocketAddr>,
    /// Upstream tries made (retries included; 0: none).
    pub attempts: u8,
    /// Request bytes read from the client: head plus body.
    pub bytes_in: u64,
    /// Response bytes written to the client: head plus body.
    pub bytes_out: u64,
    /// Time from the first upstream connect attempt to the upstream response head (or the
    /// upstream failure).
    pub upstream: Option<Duration>,
    /// Request header lines not forwarded because their name contains `_`.
    pub underscore_dropped: u32,
    /// Why Torii answered the request itself (`ProxyError::reason`), when it did.
    pub reason: Option<&'static str>,
    /// The request was for the OAuth2 token service (counted under its own label).
    pub token_service: bool,
    /// The request id: a random UUIDv4 from the worker's CSPRNG, sent to the backend as
    /// `Otoroshi-Request-Id` and written to the access log.
    pub request_id: [u8; JTI_LEN],
    /// The protocol of the client connection (set once per connection, kept by `reset`).
    pub protocol: Protocol,
    /// A gRPC call's status (0 to 16) as the client got it: the backend's `grpc-status`
    /// (trailers, or a Trailers-Only head), or Torii's own; `None` for other requests.
    pub grpc_status: Option<u8>,
}

impl Default for RequestRecord {
    fn default() -> Self {
        Self {
            status: 0,
            route: None,
            target: None,
            endpoint: None,
            attempts: 0,
            bytes_in: 0,
            bytes_out: 0,
            upstream: None,
            underscore_dropped: 0,
            reason: None,
            token_service: false,
            request_id: [b'0'; JTI_LEN],
            protocol: Protocol::Http11,
            grpc_status: None,
        }
    }
}

impl RequestRecord {
    /// Clears the facts of the previous request (keeps the id buffer, which is overwritten).
    #[inline]
    pub fn reset(&mut self, head_len: usize) {
        self.status = 0;
        self.route = None;
        self.target = None;
        self.endpoint = None;
        self.attempts = 0;
        self.bytes_in = head_len as u64;
        self.bytes_out = 0;
        self.upstream = None;
        self.underscore_dropped = 0;
        self.reason = None;
        self.token_service = false;
        self.grpc_status = None;
    }

    /// Notes an answer of `status` whose first write is `bytes` long.
    #[inline]
    pub fn answered(&mut self, status: u16, bytes: usize) {
        self.status = status;
        self.bytes_out += bytes as u64;
    }

    /// The request id as text.
    pub fn request_id_str(&self) -> &str {
        std::str::from_utf8(&self.request_id).unwrap_or("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_clears_the_previous_request() {
        let mut r = RequestRecord::default();
        r.answered(502, 100);
        r.route = Some(3);
        r.target = Some(1);
        r.bytes_out += 5;
        r.upstream = Some(Duration::from_millis(2));
        r.grpc_status = Some(14);
        r.reset(77);
        assert_eq!(r.grpc_status, None);
        assert_eq!(r.status, 0);
        assert_eq!(r.route, None);
        assert_eq!(r.target, None);
        assert_eq!(r.bytes_in, 77);
        assert_eq!(r.bytes_out, 0);
        assert_eq!(r.upstream, None);
        assert_eq!(r.request_id_str().len(), JTI_LEN);
    }
}
