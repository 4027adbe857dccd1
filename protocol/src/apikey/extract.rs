//! Finding the API key credential on a request, in the order of Otoroshi's NG engine, each
//! extractor switchable per route:
//!
//! 1. `client_id`: `x-api-key` header → `x-api-key` query → `x-api-key` cookie (client id only);
//! 2. `headers`: `Otoroshi-Client-Id` + `Otoroshi-Client-Secret` (both needed);
//! 3. `bearer`: `Otoroshi-Token` header (optional `Bearer ` prefix) → `Authorization: Bearer` →
//!    `bearer_auth` query → `access_token` cookie;
//! 4. `basic`: `Otoroshi-Authorization` (optional `Basic ` prefix) → `Authorization: Basic` →
//!    `basic_auth` query; standard or URL-safe base64, split at the first `:`, no URL-decoding
//!    (that is for OAuth2 client authentication only);
//! 5. `custom`: the route's own id and secret header names (both needed).
//!
//! The first hit wins. Besides it, [`Extraction::carriers`] lists every header, query parameter
//! and cookie of an *enabled* extractor that was present, so the engine can remove all of them
//! before forwarding (an `Authorization` header counts only when its scheme is that of an
//! enabled extractor). A place of an enabled extractor that occurs more than once (two header
//! lines, a query name twice after percent-decoding, a cookie twice over all `Cookie` fields)
//! is [`Extraction::duplicate`], and [`Extraction::credential`] refuses the request
//! ([`ApiKeyError::Duplicate`]) rather than check one copy and forward the others; two
//! `Authorization` lines count as repeated whatever their schemes (the field is a singleton,
//! RFC 9110 §11.6.2). Extraction checks nothing: everything found goes through
//! [`crate::apikey::ApiKeyStore::validate`]; a Basic value that cannot be decoded is reported as
//! [`Presented::Malformed`] and refused there rather than skipped.

use std::borrow::Cow;

use super::accepts::Accepts;
use super::model::{ApiKeyStore, StoredKey};
use super::places::{
    Extractors, API_KEY_NAME, AUTHORIZATION, BASIC_HEADER, BASIC_QUERY, BEARER_COOKIE,
    BEARER_QUERY, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, TOKEN_HEADER,
};
use super::validate::{ApiKeyError, Credentials};
use super::view::{cow_bytes, strip_scheme, BasicCredentials, Occurs, RequestView};
use crate::jws::VerifiedToken;

/// The extractor that found a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtractorKind {
    /// `client_id`.
    ClientId,
    /// `headers`.
    Headers,
    /// `bearer`.
    Bearer,
    /// `basic`.
    Basic,
    /// `custom`.
    Custom,
}

/// Where a credential was carried. Names are the configured spellings (headers compare
/// case-insensitively, query parameters and cookies exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier<'a> {
    /// A request header.
    Header(&'a str),
    /// A query parameter.
    Query(&'a str),
    /// A cookie.
    Cookie(&'a str),
}

/// What a request presents, borrowed from the request where possible.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// A client id alone.
    IdOnly(Cow<'a, [u8]>),
    /// A client id and a secret.
    IdSecret(Cow<'a, [u8]>, Cow<'a, [u8]>),
    /// A bearer token, not verified yet.
    Bearer(Cow<'a, [u8]>),
    /// A Basic value that is not base64 of `id:secret` (refused as a bad key).
    Malformed,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::IdOnly(id) => write!(f, "IdOnly({:?})", String::from_utf8_lossy(id)),
            Presented::IdSecret(id, _) => {
                write!(f, "IdSecret({:?}, <redacted>)", String::from_utf8_lossy(id))
            }
            Presented::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Presented::Malformed => f.write_str("Malformed"),
        }
    }
}

/// The credential that won, with the extractor and place it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    /// The extractor.
    pub extractor: ExtractorKind,
    /// Where the credential (or, for id + secret headers, the id) was.
    pub location: Carrier<'a>,
    /// The credential.
    pub presented: Presented<'a>,
}

/// The result of running the extractors over a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction<'a> {
    /// The first credential found, if any.
    pub found: Option<Found<'a>>,
    /// Every place of an enabled extractor that carried something: wipe these before
    /// forwarding.
    pub carriers: Carriers<'a>,
    /// The first place of an enabled extractor that occurred more than once.
    pub duplicate: Option<Carrier<'a>>,
}

impl<'a> Extraction<'a> {
    /// The credential to validate: `Err(Duplicate)` when any place of an enabled extractor
    /// occurred more than once (whether or not it was the one that won), else the first hit.
    pub fn credential(&self) -> Result<Option<&Found<'a>>, ApiKeyError> {
        match self.duplicate {
            Some(_) => Err(ApiKeyError::Duplicate),
            None => Ok(self.found.as_ref()),
        }
    }
}

/// Most places [`extract`] can look at: `x-api-key` (header, query, cookie), the client id and
/// secret headers, `Otoroshi-Token`, `Authorization` (once, whatever its scheme),
/// `bearer_auth`, `access_token`, `Otoroshi-Authorization`, `basic_auth`, and the two custom
/// headers: 14, each recorded at most once per lookup.
pub const MAX_CARRIERS: usize = 16;

/// The carriers of one request, kept inline (no allocation per request). Reads as a slice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Carriers<'a> {
    items: [Carrier<'a>; MAX_CARRIERS],
    len: usize,
}

impl Default for Carriers<'_> {
    fn default() -> Self {
        Self {
            items: [Carrier::Header(""); MAX_CARRIERS],
            len: 0,
        }
    }
}

impl<'a> Carriers<'a> {
    /// Records `c`. The extractors look at no more than [`MAX_CARRIERS`] places (a test
    /// checks a request carrying all of them), so the list never overflows; if a future
    /// extractor made it, the push would panic in debug builds and keep the first
    /// [`MAX_CARRIERS`] in release.
    fn push(&mut self, c: Carrier<'a>) {
        debug_assert!(self.len < MAX_CARRIERS, "carrier list overflow");
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }
}

impl<'a> std::ops::Deref for Carriers<'a> {
    type Target = [Carrier<'a>];
    fn deref(&self) -> &[Carrier<'a>] {
        &self.items[..self.len]
    }
}

impl<'s, 'a> IntoIterator for &'s Carriers<'a> {
    type Item = &'s Carrier<'a>;
    type IntoIter = std::slice::Iter<'s, Carrier<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::fmt::Debug for Carriers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, const N: usize> PartialEq<[Carrier<'a>; N]> for Carriers<'a> {
    fn eq(&self, other: &[Carrier<'a>; N]) -> bool {
        **self == other[..]
    }
}

struct Run<'a, V: ?Sized> {
    view: &'a V,
    out: Extraction<'a>,
}

impl<'a, V: RequestView + ?Sized> Run<'a, V> {
    /// Records `carrier` when the place is present (a repeated place also as the duplicate)
    /// and gives its value when it occurs once.
    fn seen<T>(&mut self, carrier: Carrier<'a>, occurs: Occurs<T>) -> Option<T> {
        match occurs {
            Occurs::Absent => None,
            Occurs::Once(v) => {
                self.out.carriers.push(carrier);
                Some(v)
            }
            Occurs::Repeated => {
                self.out.carriers.push(carrier);
                self.out.duplicate.get_or_insert(carrier);
                None
            }
        }
    }
    fn header(&mut self, name: &'a str) -> Option<&'a [u8]> {
        let v = self.view.header(name.as_bytes());
        self.seen(Carrier::Header(name), v)
    }
    fn query(&mut self, name: &'a str) -> Option<Cow<'a, [u8]>> {
        let v = self.view.query_param(name);
        self.seen(Carrier::Query(name), v).map(cow_bytes)
    }
    fn cookie(&mut self, name: &'a str) -> Option<&'a [u8]> {
        let v = self.view.cookie(name);
        self.seen(Carrier::Cookie(name), v)
    }
    /// `Authorization: <scheme> <rest>`, recorded as a carrier only when the scheme matches;
    /// two `Authorization` lines are repeated whatever their schemes. Looked at once even when
    /// both the bearer and the Basic extractors read it.
    fn authorization(&mut self, scheme: &str) -> Option<&'a [u8]> {
        let v = match self.view.header(AUTHORIZATION.as_bytes()) {
            Occurs::Absent => return None,
            Occurs::Repeated => {
                let carrier = Carrier::Header(AUTHORIZATION);
                if !self.out.carriers.contains(&carrier) {
                    self.out.carriers.push(carrier);
                }
                self.out.duplicate.get_or_insert(carrier);
                return None;
            }
            Occurs::Once(v) => v,
        };
        let rest = strip_scheme(v, scheme)?;
        self.out.carriers.push(Carrier::Header(AUTHORIZATION));
        Some(rest)
    }
    fn offer(&mut self, extractor: ExtractorKind, location: Carrier<'a>, p: Presented<'a>) {
        if self.out.found.is_none() {
            self.out.found = Some(Found {
                extractor,
                location,
                presented: p,
            });
        }
    }
    fn pair(&mut self, kind: ExtractorKind, id_name: &'a str, secret_name: &'a str) {
        let id = self.header(id_name);
        let secret = self.header(secret_name);
        if let (Some(id), Some(secret)) = (id, secret) {
            let p = Presented::IdSecret(Cow::Borrowed(id), Cow::Borrowed(secret));
            self.offer(kind, Carrier::Header(id_name), p);
        }
    }
}

fn basic(value: &[u8]) -> Presented<'static> {
    match BasicCredentials::decode(value) {
        Some(c) => {
            Presented::IdSecret(Cow::Owned(c.id().to_vec()), Cow::Owned(c.secret().to_vec()))
        }
        None => Presented::Malformed,
    }
}

/// Runs the enabled extractors over `view` in order. Every enabled extractor is looked at (to
/// list all carriers), but only the first hit is kept. Cost: a few header lookups; no
/// allocation unless a value needs decoding (Basic, escaped query).
pub fn extract<'a, V: RequestView + ?Sized>(view: &'a V, ex: &'a Extractors) -> Extraction<'a> {
    let mut run = Run {
        view,
        out: Extraction::default(),
    };
    if ex.client_id {
        let kind = ExtractorKind::ClientId;
        if let Some(v) = run.header(API_KEY_NAME) {
            run.offer(
                kind,
                Carrier::Header(API_KEY_NAME),
                Presented::IdOnly(v.into()),
            );
        }
        if let Some(v) = run.query(API_KEY_NAME) {
            run.offer(kind, Carrier::Query(API_KEY_NAME), Presented::IdOnly(v));
        }
        if let Some(v) = run.cookie(API_KEY_NAME) {
            run.offer(
                kind,
                Carrier::Cookie(API_KEY_NAME),
                Presented::IdOnly(v.into()),
            );
        }
    }
    if ex.headers {
        run.pair(
            ExtractorKind::Headers,
            CLIENT_ID_HEADER,
            CLIENT_SECRET_HEADER,
        );
    }
    if ex.bearer {
        let kind = ExtractorKind::Bearer;
        if let Some(v) = run.header(TOKEN_HEADER) {
            let token = strip_scheme(v, "Bearer").unwrap_or(v).trim_ascii();
            run.offer(
                kind,
                Carrier::Header(TOKEN_HEADER),
                Presented::Bearer(token.into()),
            );
        }
        if let Some(v) = run.authorization("Bearer") {
            run.offer(
                kind,
                Carrier::Header(AUTHORIZATION),
                Presented::Bearer(v.into()),
            );
        }
        if let Some(v) = run.query(BEARER_QUERY) {
            run.offer(kind, Carrier::Query(BEARER_QUERY), Presented::Bearer(v));
        }
        if let Some(v) = run.cookie(BEARER_COOKIE) {
            run.offer(
                kind,
                Carrier::Cookie(BEARER_COOKIE),
                Presented::Bearer(v.into()),
            );
        }
    }
    if ex.basic {
        let kind = ExtractorKind::Basic;
        if let Some(v) = run.header(BASIC_HEADER) {
            let b64 = strip_scheme(v, "Basic").unwrap_or(v);
            run.offer(kind, Carrier::Header(BASIC_HEADER), basic(b64));
        }
        if let Some(v) = run.authorization("Basic") {
            run.offer(kind, Carrier::Header(AUTHORIZATION), basic(v));
        }
        if let Some(v) = run.query(BASIC_QUERY) {
            run.offer(kind, Carrier::Query(BASIC_QUERY), basic(&v));
        }
    }
    if let Some((id, secret)) = &ex.custom {
        run.pair(ExtractorKind::Custom, id, secret);
    }
    run.out
}

/// The refusal of a request on which no enabled extractor of `ex` found a credential:
/// [`ApiKeyError::NotAccepted`] when the request carries a place of a standard extractor that
/// `ex` switches off (an `Authorization` header counts only with that extractor's scheme),
/// [`ApiKeyError::NoneProvided`] otherwise. A few header lookups, on refused requests only.
pub fn missing<V: RequestView + ?Sized>(view: &V, ex: &Extractors) -> ApiKeyError {
    let header = |name: &str| !matches!(view.header(name.as_bytes()), Occurs::Absent);
    let query = |name: &str| !matches!(view.query_param(name), Occurs::Absent);
    let cookie = |name: &str| !matches!(view.cookie(name), Occurs::Absent);
    let authorization = |scheme: &str| match view.header(AUTHORIZATION.as_bytes()) {
        Occurs::Once(v) => strip_scheme(v, scheme).is_some(),
        Occurs::Absent | Occurs::Repeated => false,
    };
    let elsewhere = (!ex.client_id
        && (header(API_KEY_NAME) || query(API_KEY_NAME) || cookie(API_KEY_NAME)))
        || (!ex.headers && (header(CLIENT_ID_HEADER) || header(CLIENT_SECRET_HEADER)))
        || (!ex.bearer
            && (header(TOKEN_HEADER)
                || authorization("Bearer")
                || query(BEARER_QUERY)
                || cookie(BEARER_COOKIE)))
        || (!ex.basic && (header(BASIC_HEADER) || authorization("Basic") || query(BASIC_QUERY)));
    if elsewhere {
        ApiKeyError::NotAccepted(Accepts::of(ex))
    } else {
        ApiKeyError::NoneProvided
    }
}

/// Verifies bearer tokens for [`authenticate`]: signature with the key named by `kid`, time
/// claims and audience. Implemented by `oauth::KeyPairs`. The error is a stable reason label.
pub trait BearerVerifier {
    /// Verifies `token` at `now` (Unix seconds).
    fn verify_bearer(&self, token: &[u8], now: u64) -> Result<VerifiedToken, &'static str>;
}

/// A request authenticated by an API key.
#[derive(Debug, Clone)]
pub struct Authenticated<'s> {
    /// The key, with its prepared info-token chunks.
    pub key: &'s StoredKey,
    /// The extractor that found it.
    pub extractor: ExtractorKind,
    /// The verified access token, for bearer credentials.
    pub token: Option<VerifiedToken>,
}

/// Validates what [`extract`] found for `route_id` at `now`: nothing → `NoneProvided`; a
/// bearer token is verified with `bearer` (none configured → `BadToken("no_key_pairs")`);
/// then [`ApiKeyStore::validate_entry`], the same check for every extractor.
pub fn authenticate<'s>(
    store: &'s ApiKeyStore,
    bearer: Option<&dyn BearerVerifier>,
    found: Option<&Found<'_>>,
    route_id: &str,
    now: u64,
) -> Result<Authenticated<'s>, ApiKeyError> {
    let found = found.ok_or(ApiKeyError::NoneProvided)?;
    let (key, token) = match &found.presented {
        Presented::IdOnly(id) => (
            store.validate_entry(&Credentials::IdOnly(id), route_id, now)?,
            None,
        ),
        Presented::IdSecret(id, secret) => {
            let creds = Credentials::IdSecret(id, secret);
            (store.validate_entry(&creds, route_id, now)?, None)
        }
        Presented::Malformed => return Err(ApiKeyError::BadSecret),
        Presented::Bearer(raw) => {
            let verifier = bearer.ok_or(ApiKeyError::BadToken("no_key_pairs"))?;
            let verified = verifier
                .verify_bearer(raw, now)
                .map_err(ApiKeyError::BadToken)?;
            let key = store.validate_entry(&Credentials::Bearer(&verified), route_id, now)?;
            (key, Some(verified))
        }
    };
    Ok(Authenticated {
        key,
        extractor: found.extractor,
        token,
    })
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
