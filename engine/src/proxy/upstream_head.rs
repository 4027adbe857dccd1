//! The upstream request head: what the backend receives, rendered by one pure function.
//!
//! Owns the security-critical rewrite, sans IO: the request line with the path the route sends
//! (canonical by default) and the client's query (minus wiped credentials); the client's header
//! lines copied byte for byte minus hop-by-hop ones (RFC 9110 §7.6.1, plus those a `Connection`
//! header lists), the spoofable `Otoroshi-*` names and every forwarding header only a proxy may
//! set (in any letter case, and in their `_` spellings), `Host` and `Expect`, the route's own
//! security header names, and the credentials `[routes.apikeys]` wipes; then Torii's own lines:
//! `Otoroshi-State`, `Otoroshi-Claim`, `Host` (the target's), `Otoroshi-Request-Id`,
//! `X-Forwarded-For/-Proto/-Host`, the body framing, `Upgrade: websocket` and
//! `Connection: upgrade` for an admitted WebSocket upgrade; then a small buffered body. Heads with
//! obs-fold never get here: the parser refuses them.
//!
//! Cost: one pass over the client's header spans, token signatures (prepared prefixes), no
//! allocation beyond the caller's reused buffers.

use torii_protocol::info_token::{ExtraClaims, KeyedPrefix};

use crate::auth::check::Admitted;
use crate::auth::wipe;
use crate::config::PathNormalization;
use crate::http1::{
    copy_request_head, eq_name_dashed, BodyFraming, CopiedHead, HeaderField, HeaderKind,
    RequestHead,
};
use crate::proxy::context::SecurityDraw;
use crate::rules::Vars;
use crate::snapshot::{Route, Target};

/// Everything the upstream head is made of.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamHead<'a> {
    /// The bytes the client head was parsed from.
    pub data: &'a [u8],
    /// The client head.
    pub head: &'a RequestHead,
    /// Its header spans.
    pub headers: &'a [HeaderField],
    /// The canonical path, when it differs from the client's bytes.
    pub canonical_path: Option<&'a [u8]>,
    /// The path the route's rules make (`strip_prefix`, `rewrite`, `target_root`), which
    /// replaces the canonical one.
    pub rule_path: Option<&'a [u8]>,
    /// The listener keeps header names with `_`.
    pub allow_underscores: bool,
    /// The route.
    pub route: &'a Route,
    /// The target the head goes to.
    pub target: &'a Target,
    /// The admitted API key and the credentials to wipe.
    pub admitted: &'a Admitted<'a>,
    /// The cached info-token prefix of (route, key), when there is one.
    pub keyed: Option<&'a KeyedPrefix>,
    /// Claims of a verified external JWT to carry in the info token.
    pub jwt_extra: Option<&'a ExtraClaims>,
    /// The challenge state and token ids of this request.
    pub security: &'a SecurityDraw,
    /// Unix seconds, for the tokens.
    pub now: u64,
    /// The request id (`Otoroshi-Request-Id`).
    pub request_id: &'a [u8],
    /// `x-forwarded-for: <client ip>\r\n`.
    pub xff_line: &'a [u8],
    /// The scheme the client used (`http` or `https`).
    pub proto: &'a [u8],
    /// A WebSocket upgrade is asked of the backend (phase 4b admitted one): Torii's own
    /// `upgrade: websocket` and `connection: upgrade` lines are sent.
    pub websocket: bool,
    /// The variables of the route's `request_headers` (default without any).
    pub vars: Vars<'a>,
    /// A small body, already buffered, sent in the same write as the head.
    pub body: Option<&'a [u8]>,
}

/// True for incoming headers that carry the same names as the route's security headers:
/// clients must not be able to send their own (Otoroshi strips its default names the same
/// way; a route may configure others). `_` and `-` count as equal, as CGI/WSGI backends read
/// them.
pub fn is_route_security_header(route: &Route, name: &[u8]) -> bool {
    route
        .challenge
        .as_ref()
        .is_some_and(|c| eq_name_dashed(name, &c.request_header))
        || route
            .info_token
            .as_ref()
            .is_some_and(|t| eq_name_dashed(name, &t.header))
        || route.jwt.as_ref().is_some_and(|j| j.strips_header(name))
}

impl UpstreamHead<'_> {
    /// The path the backend receives: the canonical path unless the route forwards raw
    /// paths (or the client's path was already canonical).
    pub fn path(&self) -> &[u8] {
        if let Some(p) = self.rule_path {
            return p;
        }
        match self.canonical_path {
            Some(p) if self.route.path_normalization != PathNormalization::ForwardRaw => p,
            _ => self.head.path.get(self.data),
        }
    }

    /// Renders the head (and the buffered body) into `out`, cleared first. `scratch` is a
    /// reusable buffer. `Err` names the token that could not be signed.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<CopiedHead, &'static str> {
        out.clear();
        let data = self.data;
        let route = self.route;
        let wipe = &self.admitted.wipe;
        let path = self.path();
        let copied = copy_request_head(
            data,
            self.head,
            path,
            self.headers,
            self.allow_underscores,
            out,
            |f| {
                matches!(f.kind, HeaderKind::Host | HeaderKind::Expect)
                    || is_route_security_header(route, f.name.get(data))
                    || wipe::drops_header(wipe, f.name.get(data))
                    || (!route.rules.empty && route.rules.request_headers.drops(f.name.get(data)))
            },
        );
        if !wipe.is_empty() {
            wipe::rewrite_request_line(wipe, data, self.head, path.len(), out, scratch);
            if wipe.touches_cookies() {
                wipe::write_cookie_lines(wipe, data, self.headers, out);
            }
        }
        if self.security.challenge_sent {
            if let Some(ch) = &route.challenge {
                let s = self.security;
                ch.render_state_header(&s.state, &s.state_jti, self.now, out)
                    .map_err(|_| "challenge state token")?;
            }
        }
        if let Some(info) = &route.info_token {
            let key = self.admitted.key.map(|k| k.prepared());
            info.render_with(
                key,
                self.jwt_extra,
                self.keyed,
                &self.security.info_jti,
                self.now,
                out,
            )
            .map_err(|_| "info token")?;
        }
        match self.head.host.filter(|_| route.rules.preserve_host) {
            Some(host) => {
                out.extend_from_slice(b"host: ");
                out.extend_from_slice(host.get(data));
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(&self.target.host_line),
        }
        out.extend_from_slice(b"otoroshi-request-id: ");
        out.extend_from_slice(self.request_id);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.xff_line);
        out.extend_from_slice(b"x-forwarded-proto: ");
        out.extend_from_slice(self.proto);
        out.extend_from_slice(b"\r\n");
        if let Some(host) = self.head.host {
            out.extend_from_slice(b"x-forwarded-host: ");
            out.extend_from_slice(host.get(data));
            out.extend_from_slice(b"\r\n");
        }
        let ops = &route.rules.request_headers;
        if !route.rules.empty && !ops.is_empty() {
            // Written after every line the head carries, so `set_if_missing` sees them all.
            scratch.clear();
            ops.write_lines(&self.vars, |n| has_line(out, n), scratch);
            out.extend_from_slice(scratch);
        }
        if matches!(self.head.body, BodyFraming::Chunked) {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        if self.websocket {
            // Only the `websocket` token, whatever else the client's `Upgrade` listed (`h2c`
            // towards a backend that speaks HTTP/2 would smuggle requests past every check).
            // `Sec-WebSocket-Key`, `-Version`, `-Protocol`, `-Extensions` and `Origin` are
            // end-to-end headers, copied above.
            out.extend_from_slice(b"upgrade: websocket\r\nconnection: upgrade\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(body) = self.body {
            out.extend_from_slice(body);
        }
        Ok(copied)
    }
}

/// Whether the rendered `head` (request line and header lines) has a line named `name`.
fn has_line(head: &[u8], name: &[u8]) -> bool {
    head.split(|&b| b == b'\n').skip(1).any(|line| {
        line.get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && line.get(name.len()) == Some(&b':')
    })
}

#[cfg(test)]
#[path = "upstream_head_tests.rs"]
mod tests;
