//! API keys (Otoroshi's model, with the differences of docs/compatibility.md): the key model and the store built from
//! `[[apikeys]]`, the extraction of credentials from a request head in Otoroshi's NG order, and
//! the single [`ApiKeyStore::validate`] that every credential goes through, whatever extractor
//! found it: no extractor path skips a check.
//!
//! Nothing here reads a clock or does IO: `now` (Unix seconds) is always a parameter, and the
//! request is read through the [`RequestView`] trait, which the engine implements over its
//! parsed head without copying.
//!
//! # At config load
//!
//! * [`ApiKeyStore::new`] from the `[[apikeys]]` entries (duplicate or blank ids and empty
//!   secrets are refused with a [`StoreError`] naming the id). Each key gets its info-token
//!   chunks ([`StoredKey::prepared`]) and a SHA-256 of its secret.
//! * One [`Extractors`] per route from `[routes.apikeys]` (`extractors`, `custom_headers`).
//! * `oauth::KeyPairs` from `[[key_pairs]]`: it implements [`BearerVerifier`], so the access
//!   tokens of the client-credentials service work as bearer credentials.
//!
//! # Per request on a route with `[routes.apikeys]`
//!
//! 1. [`extract`] runs the enabled extractors and returns the first credential found plus
//!    every carrier (header, query parameter, cookie) to remove before forwarding when
//!    `wipe_credentials` is on; [`Extraction::credential`] refuses a place that occurs more
//!    than once ([`ApiKeyError::Duplicate`], 400);
//! 2. [`authenticate`] verifies a bearer token (key pair chosen by `kid`, a map lookup) and
//!    calls [`ApiKeyStore::validate_entry`];
//!    When nothing was found, [`missing`] tells a request that sent nothing
//!    ([`ApiKeyError::NoneProvided`]) from one that sent a credential where the route does not
//!    read one ([`ApiKeyError::NotAccepted`], whose message lists what the route accepts);
//! 3. on error, answer [`ApiKeyError::status`] with [`ApiKeyError::body`] and, for 401,
//!    [`ApiKeyError::www_authenticate`]; log [`ApiKeyError::reason`];
//! 4. on success, [`check_required`] applies the route's required scopes and claims (403
//!    [`ApiKeyError::Forbidden`]), and [`Authenticated::key`] gives the key and its prepared
//!    info-token chunks for `InfoTokenSigner`.
//!
//! ```
//! use torii_protocol::apikey::{
//!     authenticate, extract, ApiKey, ApiKeyError, ApiKeyStore, Carrier, Extractors,
//!     SimpleRequest,
//! };
//!
//! // Config load.
//! let mut key = ApiKey::new("my-id", "my-secret", "my app");
//! key.routes = vec!["myservice".to_owned()];
//! let store = ApiKeyStore::new(vec![key]).expect("valid keys");
//! let extractors = Extractors::default();
//!
//! // A request (the engine passes its own RequestView implementation instead).
//! let req = SimpleRequest::new()
//!     .with_header("Otoroshi-Client-Id", "my-id")
//!     .with_header("Otoroshi-Client-Secret", "my-secret")
//!     .with_query("x=1");
//! let now = 1_700_000_000;
//! let extraction = extract(&req, &extractors);
//! let ok = authenticate(&store, None, extraction.found.as_ref(), "myservice", now);
//! assert_eq!(ok.map(|a| a.key.key().name.as_str()), Ok("my app"));
//! // Both headers are to be removed before forwarding.
//! assert_eq!(
//!     extraction.carriers,
//!     [
//!         Carrier::Header("Otoroshi-Client-Id"),
//!         Carrier::Header("Otoroshi-Client-Secret")
//!     ]
//! );
//!
//! // The same key on another route: 403.
//! let err = authenticate(&store, None, extraction.found.as_ref(), "admin", now);
//! assert_eq!(err.map(|_| ()), Err(ApiKeyError::NotAuthorized));
//! assert_eq!(ApiKeyError::NotAuthorized.status(), 403);
//! ```
//!
//! # Decisions taken here
//!
//! * **Client id only** (`x-api-key`) authenticates a key only when its
//!   [`ApiKey::allow_client_id_only`] is true (Otoroshi's `allowClientIdOnly`; the engine should
//!   read it from an `allow_client_id_only` boolean in `[[apikeys]]`, default false). For any
//!   other key the id alone is refused as [`ApiKeyError::BadSecret`] (401 `Bad API key`), not
//!   skipped, so a request cannot fall through to a weaker extractor.
//! * **Order of checks**: known id → proof (secret, id-only allowed, or token bound to the
//!   key) → enabled → not expired → route. A wrong secret on a route the key lacks is 401,
//!   never a 403 that would confirm the key exists.
//! * **Secrets** are compared as SHA-256 digests in constant time (`subtle`), so neither the
//!   content nor the length of the configured secret leaks; an unknown id costs the same hash.
//! * **Undecodable Basic** is [`Presented::Malformed`] and refused (401), not skipped.
//! * **Bearer tokens** must have `aud` containing `otoroshi`, an `exp`, `sub` equal to `cid`,
//!   and, when the key has `jwt-sign-keypair` metadata, a `kid` equal to it. A V2 challenge
//!   token (`aud` `Otoroshi`, no `kid`) never passes.
//! * **Carriers** list only places of *enabled* extractors: an `Authorization: Basic` header on
//!   a route whose Basic extractor is off is the backend's business and is not listed.
//! * **Not implemented**: Otoroshi's `otoapk_` bearers, JWTs signed with the client secret
//!   (HS*), route-path-parameter extractors, key restrictions, secret rotation and routing by
//!   tags/metadata.
//! * **Quotas**: a key carries its limits ([`ApiKey::throttling_quota`], `daily_quota`,
//!   `monthly_quota`); the rules are in `crate::quota` and the counting is the engine's, which
//!   finds a key's counters by [`StoredKey::position`].

mod accepts;
mod extract;
mod model;
mod places;
mod required;
mod validate;
mod view;

pub use accepts::Accepts;
pub use extract::{
    authenticate, extract, missing, Authenticated, BearerVerifier, Carrier, Carriers, Extraction,
    ExtractorKind, Found, Presented, MAX_CARRIERS,
};
pub use model::{
    ApiKey, ApiKeyStore, ClientSecret, StoreError, StoredKey, META_JWT_SIGN_KEYPAIR, META_SCOPE,
};
pub use places::{
    Extractors, API_KEY_NAME, AUTHORIZATION, BASIC_HEADER, BASIC_QUERY, BEARER_COOKIE,
    BEARER_QUERY, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, TOKEN_HEADER,
};
pub use required::check_required;
pub use validate::{
    ApiKeyError, Credentials, ACCESS_TOKEN_AUDIENCE, MSG_BAD_KEY, MSG_CLAIM_NOT_ALLOWED,
    MSG_DUPLICATE, MSG_INSUFFICIENT_SCOPE, MSG_NONE_PROVIDED, MSG_NOT_AUTHORIZED,
};
pub use view::{
    cookie, cow_bytes, cow_utf8, percent_decode, query_param, strip_scheme, BasicCredentials,
    Occurs, RequestView, SimpleRequest, MAX_BASIC_LEN,
};
