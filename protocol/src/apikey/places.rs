//! Where API-key credentials are carried and which extractors a route runs: the names of
//! Otoroshi's places (headers, query parameters, cookies) and [`Extractors`], the switches of
//! `[routes.apikeys]`. Plain data, below the extraction (`extract`) and the answers
//! (`accepts`, `validate`) that read it.

/// Default client-id-only name (header, query parameter and cookie).
pub const API_KEY_NAME: &str = "x-api-key";
/// Client id header of the `headers` extractor.
pub const CLIENT_ID_HEADER: &str = "Otoroshi-Client-Id";
/// Client secret header of the `headers` extractor.
pub const CLIENT_SECRET_HEADER: &str = "Otoroshi-Client-Secret";
/// Token header of the `bearer` extractor.
pub const TOKEN_HEADER: &str = "Otoroshi-Token";
/// Query parameter of the `bearer` extractor.
pub const BEARER_QUERY: &str = "bearer_auth";
/// Cookie of the `bearer` extractor.
pub const BEARER_COOKIE: &str = "access_token";
/// Header of the `basic` extractor (value with or without `Basic `).
pub const BASIC_HEADER: &str = "Otoroshi-Authorization";
/// Query parameter of the `basic` extractor.
pub const BASIC_QUERY: &str = "basic_auth";
/// The standard authorization header.
pub const AUTHORIZATION: &str = "Authorization";

/// Which extractors run on a route (`[routes.apikeys] extractors`, `custom_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extractors {
    /// Client id alone from `x-api-key`.
    pub client_id: bool,
    /// `Otoroshi-Client-Id` / `Otoroshi-Client-Secret`.
    pub headers: bool,
    /// Access tokens.
    pub bearer: bool,
    /// HTTP Basic.
    pub basic: bool,
    /// The route's own (client id header, client secret header).
    pub custom: Option<(String, String)>,
}

impl Default for Extractors {
    /// All four standard extractors on, no custom headers.
    fn default() -> Self {
        Extractors {
            client_id: true,
            headers: true,
            bearer: true,
            basic: true,
            custom: None,
        }
    }
}

#[cfg(test)]
impl Extractors {
    /// Every extractor off, then `f` (tests: a route that reads only what `f` switches on).
    pub(crate) fn only(f: impl FnOnce(&mut Extractors)) -> Extractors {
        let mut ex = Extractors {
            client_id: false,
            headers: false,
            bearer: false,
            basic: false,
            custom: None,
        };
        f(&mut ex);
        ex
    }
}
