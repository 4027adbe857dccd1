//! The API-key check of one request on a protected route (after routing, before any upstream
//! work): run the route's extractors over the parsed head, validate what they found with the
//! protocol's single `authenticate`, and note which carriers to wipe before forwarding. A request
//! on which nothing was found is refused with the protocol's `missing` (`No ApiKey provided`, or
//! what the route reads when the credential was sent in a place the route does not read).
//!
//! Owns [`HeadView`], the protocol's `RequestView` over a parsed head (every line of a header
//! by name, a query parameter by percent-decoded name, a cookie over every `Cookie` line; all
//! borrowed from the connection's read buffer, each saying whether it occurs once or more), and the mapping from the protocol's [`Carrier`]s to a small
//! bit set ([`Wipe`]) that outlives the borrow of the read buffer, so the proxy can render the
//! upstream head later without holding onto the request's bytes. Per request: a few header lookups, one SHA-256 or one
//! signature check, and the protocol's carrier list (a small `Vec`); no other allocation.

use std::borrow::Cow;

use torii_protocol::apikey::{
    authenticate, check_required, cookie, extract, missing, query_param, ApiKeyError,
    BearerVerifier, Carrier, Occurs, RequestView, StoredKey, API_KEY_NAME, AUTHORIZATION,
    BASIC_HEADER, BASIC_QUERY, BEARER_COOKIE, BEARER_QUERY, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER,
    TOKEN_HEADER,
};

use super::{AuthState, RouteApiKeys};
use crate::http1::{eq_ignore_case, HeaderField, RequestHead};
use crate::secure::token_cache::{CacheUse, CachedBearer};

/// One credential carrier, as a bit of [`Wipe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Slot {
    /// `x-api-key` header.
    ApiKeyHeader = 1,
    /// `Otoroshi-Client-Id` header.
    ClientIdHeader = 1 << 1,
    /// `Otoroshi-Client-Secret` header.
    ClientSecretHeader = 1 << 2,
    /// `Otoroshi-Token` header.
    TokenHeader = 1 << 3,
    /// `Authorization` header (Bearer or Basic, when that extractor is on).
    Authorization = 1 << 4,
    /// `Otoroshi-Authorization` header.
    BasicHeader = 1 << 5,
    /// The route's custom client id header.
    CustomId = 1 << 6,
    /// The route's custom client secret header.
    CustomSecret = 1 << 7,
    /// `x-api-key` query parameter.
    ApiKeyQuery = 1 << 8,
    /// `bearer_auth` query parameter.
    BearerQuery = 1 << 9,
    /// `basic_auth` query parameter.
    BasicQuery = 1 << 10,
    /// `x-api-key` cookie.
    ApiKeyCookie = 1 << 11,
    /// `access_token` cookie.
    BearerCookie = 1 << 12,
}

/// Query-parameter slots and their names.
pub(crate) const QUERY_SLOTS: [(Slot, &str); 3] = [
    (Slot::ApiKeyQuery, API_KEY_NAME),
    (Slot::BearerQuery, BEARER_QUERY),
    (Slot::BasicQuery, BASIC_QUERY),
];
/// Cookie slots and their names.
pub(crate) const COOKIE_SLOTS: [(Slot, &str); 2] = [
    (Slot::ApiKeyCookie, API_KEY_NAME),
    (Slot::BearerCookie, BEARER_COOKIE),
];
/// Standard header slots and their names.
pub(crate) const HEADER_SLOTS: [(Slot, &str); 6] = [
    (Slot::ApiKeyHeader, API_KEY_NAME),
    (Slot::ClientIdHeader, CLIENT_ID_HEADER),
    (Slot::ClientSecretHeader, CLIENT_SECRET_HEADER),
    (Slot::TokenHeader, TOKEN_HEADER),
    (Slot::Authorization, AUTHORIZATION),
    (Slot::BasicHeader, BASIC_HEADER),
];

const QUERY_MASK: u16 =
    Slot::ApiKeyQuery as u16 | Slot::BearerQuery as u16 | Slot::BasicQuery as u16;
const COOKIE_MASK: u16 = Slot::ApiKeyCookie as u16 | Slot::BearerCookie as u16;

/// The carriers to remove from the forwarded request: a bit set plus the route's custom header
/// names. `Wipe::default()` removes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wipe<'s> {
    bits: u16,
    custom: Option<&'s (String, String)>,
}

impl<'s> Wipe<'s> {
    /// True when `slot` is to be removed.
    #[inline]
    pub fn has(&self, slot: Slot) -> bool {
        self.bits & slot as u16 != 0
    }

    /// True when nothing is to be removed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// True when a query parameter is to be removed (the request line is rewritten).
    #[inline]
    pub fn touches_query(&self) -> bool {
        self.bits & QUERY_MASK != 0
    }

    /// True when a cookie is to be removed (the `Cookie` lines are rewritten).
    #[inline]
    pub fn touches_cookies(&self) -> bool {
        self.bits & COOKIE_MASK != 0
    }

    /// The route's custom (id, secret) header names.
    pub fn custom(&self) -> Option<&'s (String, String)> {
        self.custom
    }

    fn add(&mut self, carrier: &Carrier<'_>) {
        let slot = match *carrier {
            Carrier::Header(name) => HEADER_SLOTS
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .map(|(s, _)| *s)
                .or_else(|| {
                    let (id, secret) = self.custom?;
                    if id.eq_ignore_ascii_case(name) {
                        Some(Slot::CustomId)
                    } else if secret.eq_ignore_ascii_case(name) {
                        Some(Slot::CustomSecret)
                    } else {
                        None
                    }
                }),
            Carrier::Query(name) => QUERY_SLOTS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(s, _)| *s),
            Carrier::Cookie(name) => COOKIE_SLOTS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(s, _)| *s),
        };
        if let Some(s) = slot {
            self.bits |= s as u16;
        }
    }
}

/// What a protected route admitted: the key (for the info token) and what to wipe.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admitted<'s> {
    /// The API key that authenticated the request; `None` on a public route.
    pub key: Option<&'s StoredKey>,
    /// Carriers to remove before forwarding.
    pub wipe: Wipe<'s>,
}

/// Checks the request seen through `view` against route `route_id`'s API-key settings at
/// `now` (Unix seconds). `Err` carries the answer (status, body, `WWW-Authenticate`); a place
/// of an enabled extractor that occurs more than once is `Err(Duplicate)` before anything is
/// verified.
pub fn check<'s>(
    auth: &'s AuthState,
    route: &'s RouteApiKeys,
    route_id: &str,
    view: &HeadView<'_>,
    now: u64,
    cache: Option<CacheUse<'_>>,
) -> Result<Admitted<'s>, ApiKeyError> {
    let extraction = extract(view, &route.extractors);
    let cached = auth
        .key_pairs
        .as_ref()
        .map(|pairs| CachedBearer { pairs, cache });
    let bearer = cached.as_ref().map(|b| b as &dyn BearerVerifier);
    let Some(found) = extraction.credential()? else {
        // Nothing the route reads: say what it reads when a key was sent elsewhere.
        return Err(missing(view, &route.extractors));
    };
    let ok = authenticate(&auth.store, bearer, Some(found), route_id, now)?;
    // Required scopes and claims (403): a pure check in the protocol.
    check_required(&ok, &route.required)?;
    let mut wipe = Wipe {
        bits: 0,
        custom: route.extractors.custom.as_ref(),
    };
    if route.wipe_credentials {
        for c in &extraction.carriers {
            wipe.add(c);
        }
    }
    Ok(Admitted {
        key: Some(ok.key),
        wipe,
    })
}

/// A parsed head seen through [`RequestView`].
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    data: &'a [u8],
    headers: &'a [HeaderField],
    query: &'a [u8],
}

impl<'a> HeadView<'a> {
    /// The head `head` whose spans index `data` (the connection's unread bytes).
    pub fn new(data: &'a [u8], headers: &'a [HeaderField], head: &RequestHead) -> Self {
        HeadView {
            data,
            headers,
            query: head.query.map(|q| q.get(data)).unwrap_or_default(),
        }
    }
}

impl<'a> HeadView<'a> {
    /// The values of every line of header `name`.
    fn fields<'n>(&self, name: &'n [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        let data = self.data;
        self.headers
            .iter()
            .filter(move |h| h.name.len() == name.len() && eq_ignore_case(h.name.get(data), name))
            .map(move |h| h.value.get(data))
    }
}

impl RequestView for HeadView<'_> {
    fn header(&self, name: &[u8]) -> Occurs<&[u8]> {
        self.fields(name).collect()
    }

    fn query_param(&self, name: &str) -> Occurs<Cow<'_, str>> {
        if self.query.is_empty() {
            return Occurs::Absent;
        }
        query_param(self.query, name)
    }

    fn cookie(&self, name: &str) -> Occurs<&[u8]> {
        cookie(self.fields(b"cookie"), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{parse_request_head, HeadLimits};

    #[test]
    fn reads_headers_query_and_cookies() {
        let buf = b"GET /p?a=1&x-api-key=id%2B1 HTTP/1.1\r\nHost: h\r\n\
                    OTOROSHI-CLIENT-ID: me\r\nCookie: access_token=t; b=2\r\n\r\n";
        let mut headers = Vec::new();
        let parsed = parse_request_head(buf, &HeadLimits::default(), &mut headers);
        let Ok(Some(head)) = parsed else {
            panic!("head does not parse")
        };
        let v = HeadView::new(buf, &headers, &head);
        assert_eq!(v.header(b"otoroshi-client-id"), Occurs::Once(&b"me"[..]));
        assert_eq!(
            v.query_param("x-api-key"),
            Occurs::Once(Cow::Borrowed("id+1"))
        );
        assert_eq!(v.query_param("zz"), Occurs::Absent);
        assert_eq!(v.cookie("access_token"), Occurs::Once(&b"t"[..]));
        assert_eq!(v.cookie("nope"), Occurs::Absent);
    }

    /// Every line counts: a second header line or `Cookie` line is seen, not skipped.
    #[test]
    fn sees_every_line() {
        let buf = b"GET /p?%74oken=a&token=b HTTP/1.1\r\nHost: h\r\n\
                    Authorization: Bearer a\r\nCookie: a=1\r\nAUTHORIZATION: Bearer b\r\n\
                    Cookie: x-api-key=bob; access_token=forged\r\n\r\n";
        let mut headers = Vec::new();
        let parsed = parse_request_head(buf, &HeadLimits::default(), &mut headers);
        let Ok(Some(head)) = parsed else {
            panic!("head does not parse")
        };
        let v = HeadView::new(buf, &headers, &head);
        assert_eq!(v.header(b"authorization"), Occurs::Repeated);
        assert_eq!(v.query_param("token"), Occurs::Repeated);
        assert_eq!(v.cookie("a"), Occurs::Once(&b"1"[..]));
        assert_eq!(v.cookie("access_token"), Occurs::Once(&b"forged"[..]));
        assert_eq!(v.cookie("x-api-key"), Occurs::Once(&b"bob"[..]));
    }
}
