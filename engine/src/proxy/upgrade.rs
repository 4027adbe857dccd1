//! WebSocket upgrades in the request phases: which requests ask for one (phase 4b), and the
//! backend's `101` checked and sent on (the WebSocket part of phases 6 and 7).
//!
//! Owns the WebSocket rules of docs/security.md §5 on the request path: an upgrade is carried only
//! on a route with `websocket = true`, only for the `websocket` token (RFC 6455 §4.1: `GET`,
//! HTTP/1.1, `Upgrade: websocket`, `Connection: Upgrade`, one valid `Sec-WebSocket-Key`); any
//! other `Upgrade` (`h2c`…) is dropped like every hop-by-hop header, a WebSocket upgrade with a
//! body is refused (400: after a `101` those bytes would be read as frames by one side and as
//! a body by the other), and one beyond `limits.max_websocket_tunnels_per_worker` gets 503
//! before anything is sent upstream. On the way back a `101` becomes a tunnel only with
//! `Upgrade: websocket` and the `Sec-WebSocket-Accept` the key implies (RFC 6455 §4.2.2);
//! phase 6 has already checked the challenge answer on it. Anything else is a 502 and the
//! upstream connection is closed, so a backend can never open a raw tunnel through the gateway.
//!
//! It never runs the tunnel: [`switch`] returns [`Outcome::Upgrade`] and the connection loop
//! does the rest.

use torii_protocol::websocket::{accept_matches, is_valid_key, list_has_token, KEY_LEN};

use crate::http1::{eq_ignore_case, HeaderField, HeaderKind, Method, RequestHead};
use crate::metrics::TunnelResult;
use crate::proxy::context::{has_body, Outcome, RequestCtx, Upgraded, WebSocketUpgrade};
use crate::proxy::downstream::Downstream;
use crate::proxy::error::{ProxyError, Side};
use crate::proxy::response::{answer_header_of, is_hidden};
use crate::proxy::upstream_response::UpstreamResponse;
use crate::worker::Worker;

/// `Sec-WebSocket-Key`, `Sec-WebSocket-Accept`.
const KEY_HEADER: &[u8] = b"sec-websocket-key";
const ACCEPT_HEADER: &[u8] = b"sec-websocket-accept";

/// What a request head says about a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Not a WebSocket upgrade (no `Upgrade: websocket` with `Connection: Upgrade` on a GET):
    /// any `Upgrade` header is dropped as hop-by-hop.
    No,
    /// A valid WebSocket opening handshake with this key.
    WebSocket([u8; KEY_LEN]),
    /// A WebSocket upgrade that must be refused (400); the reason label.
    Refused(&'static str),
}

/// Reads the WebSocket opening handshake of a client head (RFC 6455 §4.1, §4.2.1). Pure: the
/// head's bytes `data` and its header spans.
pub fn websocket_asked(data: &[u8], head: &RequestHead, headers: &[HeaderField]) -> Asked {
    // `head.upgrade` is false on HTTP/1.0 (RFC 9110 §7.8).
    if !head.upgrade || head.method != Method::Get {
        return Asked::No;
    }
    let has = |kind: HeaderKind, token: &[u8]| {
        headers
            .iter()
            .any(|h| h.kind == kind && list_has_token(h.value.get(data), token))
    };
    if !has(HeaderKind::Upgrade, b"websocket") || !has(HeaderKind::Connection, b"upgrade") {
        return Asked::No;
    }
    if has_body(head) {
        return Asked::Refused("websocket.upgrade_with_body");
    }
    let mut keys = headers
        .iter()
        .filter(|h| eq_ignore_case(h.name.get(data), KEY_HEADER));
    match (keys.next(), keys.next()) {
        (Some(k), None) if is_valid_key(k.value.get(data)) => {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(k.value.get(data));
            Asked::WebSocket(key)
        }
        _ => Asked::Refused("websocket.bad_key"),
    }
}

/// Phase 4b: a WebSocket upgrade on a route that carries them takes one of the worker's
/// tunnel slots (503 when none is left, before anything is sent upstream); a malformed one is
/// refused (400). Runs after admission, so an upgrade counts against quotas like any call.
pub fn admit_upgrade(worker: &Worker, ctx: &mut RequestCtx<'_>) -> Result<(), ProxyError> {
    let Some(route) = ctx.route else {
        return Ok(());
    };
    if !route.websocket {
        return Ok(());
    }
    let key = match websocket_asked(ctx.data(), &ctx.head, ctx.fields()) {
        Asked::No => return Ok(()),
        Asked::Refused(reason) => return Err(ProxyError::client(400, "Bad request", reason)),
        Asked::WebSocket(key) => key,
    };
    let max = ctx.snap.limits.max_websocket_tunnels_per_worker;
    let Some(slot) = worker.tunnel_slots.try_take(max) else {
        route.metrics.tunnel(worker.id, TunnelResult::OverLimit);
        return Err(ProxyError::client(
            503,
            "Too many WebSocket tunnels",
            "websocket.too_many_tunnels",
        ));
    };
    ctx.upgrade = Some(WebSocketUpgrade { key, slot });
    Ok(())
}

/// Counts how an upgrade attempt ended before any tunnel (its slot is given back when the
/// request's context goes).
pub fn count(worker: &Worker, ctx: &RequestCtx<'_>, result: TunnelResult) {
    if let (Some(route), Some(_)) = (ctx.route, &ctx.upgrade) {
        route.metrics.tunnel(worker.id, result);
    }
}

/// Why a backend's `101` cannot become a tunnel, if it cannot: `Upgrade` must name
/// `websocket` and `Sec-WebSocket-Accept` (exactly one) must be the value `key` implies.
pub fn check_switch(
    data: &[u8],
    headers: &[HeaderField],
    key: &[u8; KEY_LEN],
) -> Result<(), &'static str> {
    let upgrade = headers
        .iter()
        .any(|h| h.kind == HeaderKind::Upgrade && list_has_token(h.value.get(data), b"websocket"));
    if !upgrade {
        return Err("websocket.no_upgrade_header");
    }
    let mut accepts = headers
        .iter()
        .filter(|h| eq_ignore_case(h.name.get(data), ACCEPT_HEADER));
    match (accepts.next(), accepts.next()) {
        (Some(a), None) if accept_matches(key, a.value.get(data)) => Ok(()),
        _ => Err("websocket.bad_accept"),
    }
}

/// Phases 6 and 7 for a `101` answering an upgrade (its challenge answer already checked):
/// the switch is verified, then the `101` goes to the client (headers as the backend sent
/// them minus hop-by-hop ones and the challenge answer, plus Torii's own `Upgrade` and
/// `Connection`) and the connection's fate is [`Outcome::Upgrade`]. A failed check is the 502
/// to answer; the upstream connection is dropped (closed) with it.
pub async fn switch<D: Downstream>(
    worker: &Worker,
    down: &mut D,
    ctx: &mut RequestCtx<'_>,
    resp: UpstreamResponse,
) -> Result<Outcome, ProxyError> {
    // Only an HTTP/1.1 connection switches (no 101 over HTTP/2).
    let (Some(ws), UpstreamResponse::Http1(mut resp)) = (ctx.upgrade.take(), resp) else {
        return Err(ProxyError::bad_response("upstream.unexpected_101"));
    };
    if let Err(reason) = check_switch(resp.head_bytes(), &ctx.bufs.resp_headers, &ws.key) {
        if let Some(route) = ctx.route {
            route.metrics.tunnel(worker.id, TunnelResult::BadHandshake);
            tracing::debug!(route = %route.id, reason, "backend's 101 refused; answering 502");
        }
        // Closing: a client that sent its first frames right behind the upgrade request must
        // not have them read as the next HTTP request.
        return Err(ProxyError::new(
            Side::Upstream,
            502,
            "Upstream sent an invalid response",
            reason,
        )
        .closing());
    }
    let answer_header = answer_header_of(ctx);
    let hidden = |name: &[u8]| is_hidden(answer_header, name);
    if !down.send_switch(ctx, &mut resp, hidden).await {
        if let Some(route) = ctx.route {
            route.metrics.tunnel(worker.id, TunnelResult::ClientClosed);
        }
        return Ok(Outcome::Close);
    }
    Ok(Outcome::Upgrade(Box::new(Upgraded {
        up: resp.into_tunnel(),
        slot: ws.slot,
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http1::{parse_request_head, parse_response_head, HeadLimits};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn asked(raw: &str) -> Asked {
        let mut headers = Vec::new();
        let head = parse_request_head(raw.as_bytes(), &HeadLimits::default(), &mut headers)
            .unwrap()
            .unwrap();
        websocket_asked(raw.as_bytes(), &head, &headers)
    }

    fn upgrade(extra: &str) -> String {
        format!("GET /ws HTTP/1.1\r\nHost: a.test\r\n{extra}\r\n")
    }

    #[test]
    fn which_requests_ask_for_a_websocket() {
        let key = |k: &str| {
            let mut out = [0u8; KEY_LEN];
            out.copy_from_slice(k.as_bytes());
            Asked::WebSocket(out)
        };
        let cases: &[(&str, Asked)] = &[
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                key(KEY),
            ),
            (
                "upgrade: h2c, WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-key:  dGhlIHNhbXBsZSBub25jZQ== \r\n",
                key(KEY),
            ),
            // Two Connection headers: their tokens add up.
            (
                "Upgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                key(KEY),
            ),
            // h2c (request smuggling towards HTTP/2 backends) and other tokens: not carried.
            ("Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", Asked::No),
            ("Upgrade: websocket/13\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", Asked::No),
            // No Connection: Upgrade: not an upgrade request (RFC 9110 §7.8).
            ("Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", Asked::No),
            ("Upgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", Asked::No),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\n",
                Asked::Refused("websocket.bad_key"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\n",
                Asked::Refused("websocket.bad_key"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                Asked::Refused("websocket.bad_key"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 5\r\n",
                Asked::Refused("websocket.upgrade_with_body"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nTransfer-Encoding: chunked\r\n",
                Asked::Refused("websocket.upgrade_with_body"),
            ),
            (
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n",
                key(KEY),
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(asked(&upgrade(extra)), *want, "{extra}");
        }
        // Only GET on HTTP/1.1.
        let post = "POST /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(asked(post), Asked::No);
        let http10 = "GET /ws HTTP/1.0\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(asked(http10), Asked::No);
    }

    fn switch_check(head: &str) -> Result<(), &'static str> {
        let mut headers = Vec::new();
        let resp = parse_response_head(
            head.as_bytes(),
            &HeadLimits::default(),
            Method::Get,
            &mut headers,
        )
        .unwrap()
        .unwrap();
        assert_eq!(resp.status, 101);
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(KEY.as_bytes());
        check_switch(head.as_bytes(), &headers, &key)
    }

    #[test]
    fn a_101_switches_only_with_the_implied_accept() {
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(switch_check(ok), Ok(()));
        let cases = [
            ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "websocket.no_upgrade_header"),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "websocket.no_upgrade_header"),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "websocket.bad_accept"),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", "websocket.bad_accept"),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "websocket.bad_accept"),
        ];
        for (head, why) in cases {
            assert_eq!(switch_check(head), Err(why), "{head}");
        }
    }
}
