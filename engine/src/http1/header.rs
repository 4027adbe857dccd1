//! Header fields: the [`HeaderField`] record, the classification of well-known names into
//! [`HeaderKind`], and the small value grammars shared by requests and responses
//! (`Content-Length` digits, `Transfer-Encoding: chunked`, `Connection` tokens).
//!
//! Pure functions over byte slices; nothing here allocates or panics.

use super::{eq_ignore_case, Span};

/// Longest name [`HeaderKind::classify_dashed`] looks at: longer than every special name.
const MAX_DASHED_NAME: usize = 32;

/// True when two header names are the same for a CGI/WSGI-style backend: ASCII
/// case-insensitive, with `_` and `-` equal.
pub fn eq_name_dashed(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            let dash = |c: u8| {
                if c == b'_' {
                    b'-'
                } else {
                    c.to_ascii_lowercase()
                }
            };
            dash(x) == dash(y)
        })
}

/// The header names the proxy treats specially; everything else is [`HeaderKind::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderKind {
    /// `Host`.
    Host,
    /// `Content-Length`.
    ContentLength,
    /// `Transfer-Encoding` (hop-by-hop).
    TransferEncoding,
    /// `Connection` (hop-by-hop).
    Connection,
    /// `Keep-Alive` (hop-by-hop).
    KeepAlive,
    /// `Proxy-Connection` (hop-by-hop, non-standard).
    ProxyConnection,
    /// `TE` (hop-by-hop).
    Te,
    /// `Trailer` (hop-by-hop).
    Trailer,
    /// `Upgrade` (hop-by-hop).
    Upgrade,
    /// `Expect`.
    Expect,
    /// `Proxy-Authorization` (hop-by-hop).
    ProxyAuthorization,
    /// `Proxy-Authenticate` (hop-by-hop).
    ProxyAuthenticate,
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// `X-Forwarded-Proto`.
    XForwardedProto,
    /// `X-Forwarded-Host`.
    XForwardedHost,
    /// A forwarding or rewrite header that only a proxy may set, removed from client requests
    /// because Torii is the edge: `Forwarded`, `X-Real-IP`, `True-Client-IP`, `X-Client-IP`,
    /// `X-Forwarded-Port`, `X-Forwarded-Ssl`, `X-Forwarded-Scheme`, `X-Forwarded-Prefix`,
    /// `X-Original-URL`, `X-Rewrite-URL` (backends and frameworks trust them for the client's
    /// address, scheme or the path to serve).
    ClientForwarding,
    /// one of the spoofable names Otoroshi's engine removes on the way in: Otoroshi-State, Otoroshi-Claim,
    /// Otoroshi-Request-Id, Otoroshi-Client-Id, Otoroshi-Client-Secret, Otoroshi-Authorization,
    /// Otoroshi-Try-It-Request-Id, X-Forwarded-Protocol, Raw-Request-Uri, Remote-Address, Timeout-Access, Tls-Session-Info
    OtoroshiSpoofable,
    /// Any other name.
    Other,
}

impl HeaderKind {
    /// Classifies a header name, ASCII case-insensitively. Dispatches on the length first, so
    /// most names cost one or two comparisons.
    pub fn classify(name: &[u8]) -> HeaderKind {
        use HeaderKind::*;
        let candidates: &[(&[u8], HeaderKind)] = match name.len() {
            2 => &[(b"te", Te)],
            4 => &[(b"host", Host)],
            6 => &[(b"expect", Expect)],
            7 => &[(b"upgrade", Upgrade), (b"trailer", Trailer)],
            9 => &[
                (b"forwarded", ClientForwarding),
                (b"x-real-ip", ClientForwarding),
            ],
            10 => &[(b"connection", Connection), (b"keep-alive", KeepAlive)],
            11 => &[(b"x-client-ip", ClientForwarding)],
            13 => &[(b"x-rewrite-url", ClientForwarding)],
            14 => &[
                (b"content-length", ContentLength),
                (b"otoroshi-state", OtoroshiSpoofable),
                (b"otoroshi-claim", OtoroshiSpoofable),
                (b"remote-address", OtoroshiSpoofable),
                (b"timeout-access", OtoroshiSpoofable),
                (b"true-client-ip", ClientForwarding),
                (b"x-original-url", ClientForwarding),
            ],
            15 => &[
                (b"x-forwarded-for", XForwardedFor),
                (b"raw-request-uri", OtoroshiSpoofable),
                (b"x-forwarded-ssl", ClientForwarding),
            ],
            16 => &[
                (b"x-forwarded-host", XForwardedHost),
                (b"proxy-connection", ProxyConnection),
                (b"tls-session-info", OtoroshiSpoofable),
                (b"x-forwarded-port", ClientForwarding),
            ],
            17 => &[
                (b"transfer-encoding", TransferEncoding),
                (b"x-forwarded-proto", XForwardedProto),
            ],
            18 => &[
                (b"proxy-authenticate", ProxyAuthenticate),
                (b"otoroshi-client-id", OtoroshiSpoofable),
                (b"x-forwarded-scheme", ClientForwarding),
                (b"x-forwarded-prefix", ClientForwarding),
            ],
            19 => &[
                (b"proxy-authorization", ProxyAuthorization),
                (b"otoroshi-request-id", OtoroshiSpoofable),
            ],
            20 => &[(b"x-forwarded-protocol", OtoroshiSpoofable)],
            22 => &[
                (b"otoroshi-client-secret", OtoroshiSpoofable),
                (b"otoroshi-authorization", OtoroshiSpoofable),
            ],
            26 => &[(b"otoroshi-try-it-request-id", OtoroshiSpoofable)],
            _ => return Other,
        };
        candidates
            .iter()
            .find(|(n, _)| eq_ignore_case(n, name))
            .map_or(Other, |&(_, k)| k)
    }

    /// The kind `name` would have with every `_` read as `-`: what a CGI/WSGI-style backend
    /// makes of it (`X_Forwarded_For` and `X-Forwarded-For` both become
    /// `HTTP_X_FORWARDED_FOR`). Only for names that contain `_`; such names are never framing
    /// or routing headers for Torii itself (those keep their exact classification).
    pub fn classify_dashed(name: &[u8]) -> HeaderKind {
        let mut buf = [0u8; MAX_DASHED_NAME];
        let Some(out) = buf.get_mut(..name.len()) else {
            return HeaderKind::Other;
        };
        for (o, &b) in out.iter_mut().zip(name) {
            *o = if b == b'_' { b'-' } else { b };
        }
        HeaderKind::classify(out)
    }

    /// True for the hop-by-hop headers of RFC 9110 §7.6.1 (plus `Proxy-Connection` and the proxy
    /// authentication pair): they describe one connection and are never forwarded.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            HeaderKind::Connection
                | HeaderKind::KeepAlive
                | HeaderKind::ProxyConnection
                | HeaderKind::Te
                | HeaderKind::Trailer
                | HeaderKind::TransferEncoding
                | HeaderKind::Upgrade
                | HeaderKind::ProxyAuthorization
                | HeaderKind::ProxyAuthenticate
        )
    }
}

/// One header line of a parsed head, as spans into the parse buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name, as sent.
    pub name: Span,
    /// The value, without leading and trailing whitespace.
    pub value: Span,
    /// The whole line including its CRLF, for verbatim forwarding.
    pub line: Span,
    /// The classified name.
    pub kind: HeaderKind,
    /// The name contains `_` (dropped on the way in unless the listener allows underscores;
    /// always dropped when it reads as a special name with `-`).
    pub underscore: bool,
    /// `kind.is_hop_by_hop()`, or the name is listed in a `Connection` header (except `Host` and
    /// `Content-Length`, which a client cannot turn into hop-by-hop headers: dropping them when
    /// forwarding would change the framing or the routing the backend sees).
    pub hop_by_hop: bool,
}

/// Parses a `Content-Length` value: `1*DIGIT`, no sign, no inner whitespace, no list.
/// `None` on any other form or on `u64` overflow.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Trims optional whitespace (SP / HTAB) at both ends.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// True when a `Transfer-Encoding` value is exactly `chunked` (case-insensitive, OWS trimmed
/// around the whole value only).
pub(crate) fn is_exact_chunked(value: &[u8]) -> bool {
    eq_ignore_case(trim_ows(value), b"chunked")
}

/// Iterates the comma-separated tokens of a list header (`Connection`), OWS trimmed, empty
/// elements skipped.
pub(crate) fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// What a head's `Connection` headers say, folded over all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectionFlags {
    /// A `close` token was seen.
    pub close: bool,
    /// A `keep-alive` token was seen.
    pub keep_alive: bool,
    /// Some other token was seen: the named headers are hop-by-hop.
    pub names_headers: bool,
}

impl ConnectionFlags {
    /// Folds one `Connection` value into the flags.
    pub(crate) fn add(&mut self, value: &[u8]) {
        for t in list_tokens(value) {
            if eq_ignore_case(t, b"close") {
                self.close = true;
            } else if eq_ignore_case(t, b"keep-alive") {
                self.keep_alive = true;
            } else {
                self.names_headers = true;
            }
        }
    }
}

/// Marks as hop-by-hop every header named by a token of a `Connection` header (RFC 9110
/// §7.6.1). `Host` and `Content-Length` are never marked. Quadratic in the worst case but only
/// run when a `Connection` header names something other than `close` / `keep-alive`.
pub(crate) fn mark_connection_named(buf: &[u8], headers: &mut [HeaderField]) {
    for ci in 0..headers.len() {
        let Some(conn) = headers.get(ci).copied() else {
            continue;
        };
        if conn.kind != HeaderKind::Connection {
            continue;
        }
        for token in list_tokens(conn.value.get(buf)) {
            for h in headers.iter_mut() {
                if !matches!(h.kind, HeaderKind::Host | HeaderKind::ContentLength)
                    && eq_ignore_case(h.name.get(buf), token)
                {
                    h.hop_by_hop = true;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classify_known_names_any_case() {
        let cases: &[(&[u8], HeaderKind)] = &[
            (b"Host", HeaderKind::Host),
            (b"CONTENT-LENGTH", HeaderKind::ContentLength),
            (b"transfer-encoding", HeaderKind::TransferEncoding),
            (b"Connection", HeaderKind::Connection),
            (b"Keep-Alive", HeaderKind::KeepAlive),
            (b"Proxy-Connection", HeaderKind::ProxyConnection),
            (b"te", HeaderKind::Te),
            (b"Trailer", HeaderKind::Trailer),
            (b"Upgrade", HeaderKind::Upgrade),
            (b"Expect", HeaderKind::Expect),
            (b"Proxy-Authorization", HeaderKind::ProxyAuthorization),
            (b"Proxy-Authenticate", HeaderKind::ProxyAuthenticate),
            (b"X-Forwarded-For", HeaderKind::XForwardedFor),
            (b"x-forwarded-proto", HeaderKind::XForwardedProto),
            (b"X-Forwarded-Host", HeaderKind::XForwardedHost),
            (b"Otoroshi-State", HeaderKind::OtoroshiSpoofable),
            (b"Otoroshi-Claim", HeaderKind::OtoroshiSpoofable),
            (b"Otoroshi-Request-Id", HeaderKind::OtoroshiSpoofable),
            (b"Otoroshi-Client-Id", HeaderKind::OtoroshiSpoofable),
            (b"Otoroshi-Client-Secret", HeaderKind::OtoroshiSpoofable),
            (b"OTOROSHI-AUTHORIZATION", HeaderKind::OtoroshiSpoofable),
            (b"Otoroshi-Try-It-Request-Id", HeaderKind::OtoroshiSpoofable),
            (b"X-Forwarded-Protocol", HeaderKind::OtoroshiSpoofable),
            (b"Raw-Request-Uri", HeaderKind::OtoroshiSpoofable),
            (b"Remote-Address", HeaderKind::OtoroshiSpoofable),
            (b"Timeout-Access", HeaderKind::OtoroshiSpoofable),
            (b"Tls-Session-Info", HeaderKind::OtoroshiSpoofable),
            (b"Accept", HeaderKind::Other),
            (b"", HeaderKind::Other),
            (b"Hostx", HeaderKind::Other),
            (b"Content-Lengtx", HeaderKind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(
                HeaderKind::classify(name),
                *kind,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn hop_by_hop_set() {
        assert!(HeaderKind::Connection.is_hop_by_hop());
        assert!(HeaderKind::TransferEncoding.is_hop_by_hop());
        assert!(HeaderKind::ProxyAuthorization.is_hop_by_hop());
        assert!(HeaderKind::Te.is_hop_by_hop());
        assert!(!HeaderKind::Host.is_hop_by_hop());
        assert!(!HeaderKind::ContentLength.is_hop_by_hop());
        assert!(!HeaderKind::Expect.is_hop_by_hop());
        assert!(!HeaderKind::OtoroshiSpoofable.is_hop_by_hop());
    }

    #[test]
    fn content_length_grammar() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"0042"), Some(42));
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"+1",
            b"-1",
            b"1 2",
            b"1,1",
            b"0x10",
            b"18446744073709551616",
            b"99999999999999999999999",
            b" 1",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chunked_value_exact() {
        assert!(is_exact_chunked(b"chunked"));
        assert!(is_exact_chunked(b"ChUnKeD"));
        assert!(is_exact_chunked(b" chunked\t"));
        for bad in [
            &b"gzip, chunked"[..],
            b"chunked, chunked",
            b"xchunked",
            b"chunked;q=1",
            b"chunk ed",
            b"",
            b"identity",
        ] {
            assert!(!is_exact_chunked(bad), "{bad:?}");
        }
    }

    #[test]
    fn connection_tokens() {
        let mut f = ConnectionFlags::default();
        f.add(b" Keep-Alive ,, x-custom");
        assert!(f.keep_alive && f.names_headers && !f.close);
        f.add(b"CLOSE");
        assert!(f.close);
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(list_tokens(b" , ,").count(), 0);
    }
}
