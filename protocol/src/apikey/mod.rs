//! API keys (reference §3, decisions.md "API keys"): the key model and the store built from
//! `[[apikeys]]`, and the single [`ApiKeyStore::validate`] that every credential goes through.
//!
//! Wiring for the engine, per request on a route with `[routes.apikeys]`:
//! 1. extract what the request presents (client id, id + secret, or a bearer token);
//! 2. turn it into [`Credentials`] (a bearer token is verified first with the key pair named by
//!    its `kid`);
//! 3. call [`ApiKeyStore::validate`] with the route id and `now`; on error answer
//!    [`ApiKeyError::status`] with [`ApiKeyError::body`] (and [`ApiKeyError::www_authenticate`]).
//!
//! Nothing here reads a clock or does IO: `now` (Unix seconds) is always a parameter.

mod extract;
mod model;
mod validate;
mod view;

pub use extract::{
    authenticate, extract, Authenticated, BearerVerifier, Carrier, Extraction, ExtractorKind,
    Extractors, Found, Presented, API_KEY_NAME, AUTHORIZATION, BASIC_HEADER, BASIC_QUERY,
    BEARER_COOKIE, BEARER_QUERY, CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, TOKEN_HEADER,
};
pub use model::{
    ApiKey, ApiKeyStore, ClientSecret, StoreError, StoredKey, META_JWT_SIGN_KEYPAIR, META_SCOPE,
};
pub use validate::{
    ApiKeyError, Credentials, ACCESS_TOKEN_AUDIENCE, MSG_BAD_KEY, MSG_NONE_PROVIDED,
    MSG_NOT_AUTHORIZED,
};
pub use view::{
    cookie, cow_utf8, percent_decode, query_param, strip_scheme, BasicCredentials, RequestView,
    SimpleRequest, MAX_BASIC_LEN,
};
