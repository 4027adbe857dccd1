//! The OAuth2 client-credentials service (Otoroshi's Client Credential Service, with the
//! differences listed in docs/compatibility.md), as pure documents: parse a token or introspection request body, authenticate the
//! client against the [`crate::apikey::ApiKeyStore`], issue a signed access token, answer
//! introspection (RFC 7662) and publish the JWKS; plus verification of those tokens when they
//! come back as bearer credentials on a route ([`KeyPairs::verify_access_token`]).
//!
//! Engine wiring, for a request whose Host matches `[client_credentials] domain`:
//! 1. [`Endpoint::from_request`] on method and path (`None` → not ours, `NotFound` → 404);
//! 2. `secure` and not HTTPS → [`OAuthError::insecure`];
//! 3. `Jwks` → 200 [`KeyPairs::jwks_json`]; `Token` → [`parse_token_request`] then
//!    [`ClientCredentials::token`]; `Introspect` → [`parse_introspection_request`] then
//!    [`ClientCredentials::introspect`]. Bodies are read up to [`MAX_BODY_LEN`] bytes; longer
//!    ones are refused without reading more ([`OAuthError::body_too_large`]).
//! 4. Every answer carries [`NO_STORE_HEADERS`]; errors also [`OAuthError::www_authenticate`].

mod keys;
mod request;
mod service;

pub use keys::{KeyPair, KeyPairError, KeyPairs};
pub use request::{
    parse_introspection_request, parse_token_request, ClientAuth, ClientAuthMethod,
    IntrospectionRequest, TokenRequest, MAX_BODY_LEN,
};
pub use service::{ClientCredentials, ClientCredentialsConfig, TokenResponse};

/// Headers for every OAuth2 answer (RFC 6749 §5.1).
pub const NO_STORE_HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
];

/// The path prefix of the service.
pub const PREFIX: &str = "/.well-known/otoroshi/oauth/";

/// Which endpoint a request under [`PREFIX`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET …/jwks.json`.
    Jwks,
    /// `POST …/token`.
    Token,
    /// `POST …/token/introspect`.
    Introspect,
    /// Anything else under the prefix: 404 [`OAuthError::not_found`].
    NotFound,
}

impl Endpoint {
    /// Routes `method` and `path` (without the query string). `None` when the path is not
    /// under [`PREFIX`] (route matching continues).
    pub fn from_request(method: &str, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix(PREFIX)?;
        Some(match (method, rest) {
            ("GET", "jwks.json") => Endpoint::Jwks,
            ("POST", "token") => Endpoint::Token,
            ("POST", "token/introspect") => Endpoint::Introspect,
            _ => Endpoint::NotFound,
        })
    }
}

/// RFC 6749 §5.2 error codes (plus the two this service needs outside the token endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: malformed request, both client authentication methods at once, missing field.
    InvalidRequest,
    /// 401: client authentication failed.
    InvalidClient,
    /// 400: `grant_type` other than `client_credentials`.
    UnsupportedGrantType,
    /// 400: requested scope not within the key's scopes.
    InvalidScope,
    /// 413 (`error` = `invalid_request`): a body over [`MAX_BODY_LEN`], declared or announced
    /// by a chunk size, refused before it is read.
    BodyTooLarge,
    /// 404: unknown endpoint.
    NotFound,
    /// 500: configuration problem (a key names a key pair that does not exist).
    ServerError,
}

impl ErrorCode {
    /// The `error` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::BodyTooLarge => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServerError => "server_error",
        }
    }
}

/// An OAuth2 error answer. The description never contains a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// `error_description`.
    pub description: String,
    /// Whether the client authenticated with HTTP Basic (adds `WWW-Authenticate` on 401).
    pub basic_used: bool,
}

impl OAuthError {
    /// An error with this code and description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_used: false,
        }
    }
    /// 400 `invalid_request` "use a secure channel" (plain HTTP while `secure = true`).
    pub fn insecure() -> Self {
        Self::new(ErrorCode::InvalidRequest, "use a secure channel")
    }
    /// 404 `not_found` "resource not found".
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "resource not found")
    }
    /// 413 `invalid_request` for a body over [`MAX_BODY_LEN`] (RFC 9110 §15.5.14: the
    /// status says why; the body keeps RFC 6749's error shape).
    pub fn body_too_large() -> Self {
        Self::new(ErrorCode::BodyTooLarge, "request body too large")
    }
    /// 401 `invalid_client` "Bad client credentials".
    pub fn bad_client(basic_used: bool) -> Self {
        OAuthError {
            basic_used,
            ..Self::new(ErrorCode::InvalidClient, "Bad client credentials")
        }
    }
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::ServerError => 500,
            _ => 400,
        }
    }
    /// `WWW-Authenticate` for a 401 after Basic authentication (RFC 6749 §5.2).
    pub fn www_authenticate(&self) -> Option<&'static str> {
        (self.code == ErrorCode::InvalidClient && self.basic_used)
            .then_some("Basic realm=\"otoroshi\"")
    }
    /// `{"error":…,"error_description":…}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        }))
        .unwrap_or_default()
    }
}
