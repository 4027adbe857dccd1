//! Parsing token and introspection request bodies: `application/x-www-form-urlencoded`
//! (RFC 6749 §4.4.2) and `application/json` (Otoroshi's tutorial), capped at [`MAX_BODY_LEN`].
//!
//! Rules: a parameter given twice is `invalid_request` (RFC 6749 §3.2: "request
//! and response parameters MUST NOT be included more than once"), in a form (names compared
//! after percent-decoding, so `client_id` and `client%5Fid` are the same parameter) and in JSON
//! (names compared after unescaping, `crate::strict_json`; `serde_json` alone would keep the
//! last, so `{"client_id":"key-b","client_id":"key-a"}` would authenticate as `key-a` while a
//! first-wins reader sees `key-b`); JSON values may be strings, numbers or booleans (turned
//! into strings, as Otoroshi does), `null` counts as absent (but still counts as given for the
//! duplicate rule), arrays and objects are `invalid_request`; client authentication is HTTP
//! Basic (id and secret URL-decoded, RFC 6749 §2.3.1) **or** `client_id`/`client_secret` in the
//! body, never both (`invalid_request`); only `grant_type=client_credentials`
//! (`unsupported_grant_type`). The parsers never panic on any input (property-tested).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ErrorCode, OAuthError};
use crate::apikey::{percent_decode, strip_scheme, BasicCredentials, ClientSecret};
use crate::jws::{json_depth_within, MAX_JSON_DEPTH};
use crate::strict_json::{parse_object, JsonError};

/// Largest accepted body, in bytes. The engine should stop reading past it.
pub const MAX_BODY_LEN: usize = 8 * 1024;

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `Authorization: Basic` (`client_secret_basic`).
    Basic,
    /// Body fields (`client_secret_post`).
    Body,
}

/// Client credentials from a request. The secret's `Debug` is redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: ClientSecret,
    /// Where they came from.
    pub method: ClientAuthMethod,
}

/// A valid `client_credentials` token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The client.
    pub client: ClientAuth,
    /// Requested scopes (space-separated), if any (an empty value counts as absent).
    pub scope: Option<String>,
}

/// An introspection request (RFC 7662 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// The caller.
    pub client: ClientAuth,
    /// The token to introspect.
    pub token: String,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

enum Kind {
    Form,
    Json,
}

fn content_kind(content_type: Option<&[u8]>) -> Result<Kind, OAuthError> {
    let ct = content_type.unwrap_or_default();
    let media = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if media.eq_ignore_ascii_case(b"application/x-www-form-urlencoded") {
        Ok(Kind::Form)
    } else if media.eq_ignore_ascii_case(b"application/json") {
        Ok(Kind::Json)
    } else {
        Err(invalid(
            "content type must be application/x-www-form-urlencoded or application/json",
        ))
    }
}

const GIVEN_TWICE: &str = "parameter given more than once";

fn insert(map: &mut BTreeMap<String, String>, k: String, v: String) -> Result<(), OAuthError> {
    if map.contains_key(&k) {
        return Err(invalid(GIVEN_TWICE));
    }
    map.insert(k, v);
    Ok(())
}

fn parse_form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let mut map = BTreeMap::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let k = String::from_utf8(percent_decode(k, true).into_owned())
            .map_err(|_| invalid("form is not UTF-8"))?;
        let v = String::from_utf8(percent_decode(v, true).into_owned())
            .map_err(|_| invalid("form is not UTF-8"))?;
        insert(&mut map, k, v)?;
    }
    Ok(map)
}

fn parse_json(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    if !json_depth_within(body, MAX_JSON_DEPTH) {
        return Err(invalid("JSON nested too deep"));
    }
    let obj = parse_object(body).map_err(|e| match e {
        JsonError::DuplicateMember => invalid(GIVEN_TWICE),
        JsonError::Invalid => invalid("body is not a JSON object"),
    })?;
    let mut map = BTreeMap::new();
    for (k, v) in obj {
        let v = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid("parameters must be strings"));
            }
        };
        map.insert(k, v);
    }
    Ok(map)
}

/// Parses the body and the client authentication shared by both endpoints.
fn parse_common(
    content_type: Option<&[u8]>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<(BTreeMap<String, String>, ClientAuth), OAuthError> {
    if body.len() > MAX_BODY_LEN {
        return Err(OAuthError::body_too_large());
    }
    let mut params = match content_kind(content_type)? {
        Kind::Form => parse_form(body)?,
        Kind::Json => parse_json(body)?,
    };
    let basic = authorization.and_then(|v| strip_scheme(v, "Basic"));
    let body_id = params.remove("client_id").filter(|s| !s.is_empty());
    let body_secret = params.remove("client_secret").filter(|s| !s.is_empty());
    let client = match basic {
        Some(b64) => {
            if body_id.is_some() || body_secret.is_some() {
                return Err(invalid(
                    "client authentication by both Basic and body parameters",
                ));
            }
            let creds = BasicCredentials::decode(b64).ok_or(OAuthError::bad_client(true))?;
            let (id, secret) = creds.oauth_decoded();
            let client_id =
                String::from_utf8(id.into_owned()).map_err(|_| OAuthError::bad_client(true))?;
            ClientAuth {
                client_id,
                client_secret: ClientSecret::new(secret.into_owned()),
                method: ClientAuthMethod::Basic,
            }
        }
        None => match (body_id, body_secret) {
            (Some(client_id), Some(secret)) => ClientAuth {
                client_id,
                client_secret: ClientSecret::new(secret.into_bytes()),
                method: ClientAuthMethod::Body,
            },
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClient,
                    "client authentication required",
                ))
            }
        },
    };
    Ok((params, client))
}

/// Parses a `POST …/token` request from its `Content-Type` and `Authorization` header values
/// and its body. Cost: one pass over the body (at most [`MAX_BODY_LEN`] bytes).
pub fn parse_token_request(
    content_type: Option<&[u8]>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<TokenRequest, OAuthError> {
    let (mut params, client) = parse_common(content_type, authorization, body)?;
    let basic_used = client.method == ClientAuthMethod::Basic;
    let with_basic = |mut e: OAuthError| {
        e.basic_used = basic_used;
        e
    };
    match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None | Some("") => return Err(with_basic(invalid("grant_type is required"))),
        Some(other) => {
            let mut shown: String = other.chars().take(64).collect();
            shown.retain(|c| !c.is_control());
            return Err(with_basic(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("Grant type '{shown}' not supported !"),
            )));
        }
    }
    let scope = params
        .remove("scope")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    Ok(TokenRequest { client, scope })
}

/// Parses a `POST …/token/introspect` request: client authentication as for the token
/// endpoint, and a required `token` parameter.
pub fn parse_introspection_request(
    content_type: Option<&[u8]>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Result<IntrospectionRequest, OAuthError> {
    let (mut params, client) = parse_common(content_type, authorization, body)?;
    match params.remove("token").filter(|t| !t.is_empty()) {
        Some(token) => Ok(IntrospectionRequest { client, token }),
        None => {
            let mut e = invalid("token is required");
            e.basic_used = client.method == ClientAuthMethod::Basic;
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded; charset=UTF-8");

    #[test]
    fn form_duplicates_refused() {
        let e = parse_token_request(
            FORM,
            None,
            b"grant_type=client_credentials&client_id=a&client_id=b&client_secret=s",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn content_types() {
        let body = br#"{"grant_type":"client_credentials","client_id":"a","client_secret":"s"}"#;
        assert!(parse_token_request(Some(b"Application/JSON"), None, body).is_ok());
        for ct in [None, Some(&b"text/plain"[..]), Some(b"application/jsonx")] {
            let e = parse_token_request(ct, None, body).unwrap_err();
            assert_eq!(e.status(), 400);
        }
    }
}
