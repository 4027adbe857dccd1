//! API key extraction and validation: every extractor crossed with every kind of bad key (one
//! table), Basic edge cases, carriers to wipe, and query/cookie handling.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use torii_protocol::apikey::{
    authenticate, extract, ApiKey, ApiKeyError, ApiKeyStore, BasicCredentials, Carrier,
    ExtractorKind, Extractors, Presented, SimpleRequest,
};

const NOW: u64 = 1_700_000_000;
const ROUTE: &str = "myservice";

/// Keys: good, disabled, expired, other-route, plus id-only variants of each.
pub fn store() -> ApiKeyStore {
    let mut keys = Vec::new();
    for (id, enabled, valid_until, route) in [
        ("good", true, Some(NOW + 1), ROUTE),
        ("disabled", false, None, ROUTE),
        ("expired", true, Some(NOW), ROUTE),
        ("other", true, None, "elsewhere"),
    ] {
        for id_only in [false, true] {
            let id = if id_only {
                format!("{id}-idonly")
            } else {
                id.to_owned()
            };
            let mut key = ApiKey::new(&id, "s3cret:with+chars", "a key");
            key.enabled = enabled;
            key.valid_until = valid_until;
            key.routes = vec![route.to_owned()];
            key.allow_client_id_only = id_only;
            keys.push(key);
        }
    }
    ApiKeyStore::new(keys).unwrap()
}

const SECRET: &str = "s3cret:with+chars";

#[derive(Clone, Copy, Debug)]
enum Via {
    ClientIdHeader,
    ClientIdQuery,
    ClientIdCookie,
    Headers,
    AuthorizationBasic,
    OtoroshiAuthorization,
    BasicQuery,
    Custom,
}

fn request(via: Via, id: &str, secret: &str) -> SimpleRequest {
    let b64 = STANDARD.encode(format!("{id}:{secret}"));
    let r = SimpleRequest::new();
    match via {
        Via::ClientIdHeader => r.with_header("X-Api-Key", id),
        Via::ClientIdQuery => r.with_query(&format!("x-api-key={id}")),
        Via::ClientIdCookie => r.with_header("Cookie", format!("a=b; x-api-key={id}")),
        Via::Headers => r
            .with_header("Otoroshi-Client-Id", id)
            .with_header("Otoroshi-Client-Secret", secret),
        Via::AuthorizationBasic => r.with_header("Authorization", format!("Basic {b64}")),
        Via::OtoroshiAuthorization => r.with_header("Otoroshi-Authorization", b64),
        Via::BasicQuery => r.with_query(&format!(
            "basic_auth={}",
            URL_SAFE.encode(format!("{id}:{secret}"))
        )),
        Via::Custom => r
            .with_header("X-Client", id)
            .with_header("X-Secret", secret),
    }
}

fn extractors() -> Extractors {
    Extractors {
        custom: Some(("X-Client".into(), "X-Secret".into())),
        ..Extractors::default()
    }
}

fn run(via: Via, id: &str, secret: &str) -> Result<String, ApiKeyError> {
    let store = store();
    let req = request(via, id, secret);
    let ex = extractors();
    let out = extract(&req, &ex);
    authenticate(&store, None, out.found.as_ref(), ROUTE, NOW)
        .map(|a| a.key.key().client_id.clone())
}

#[test]
fn every_extractor_against_every_bad_key() {
    let id_vias = [Via::ClientIdHeader, Via::ClientIdQuery, Via::ClientIdCookie];
    let pair_vias = [
        Via::Headers,
        Via::AuthorizationBasic,
        Via::OtoroshiAuthorization,
        Via::BasicQuery,
        Via::Custom,
    ];
    let mut checked = 0;
    for via in id_vias {
        let cases: [(&str, Result<&str, ApiKeyError>); 6] = [
            ("good-idonly", Ok("good-idonly")),
            ("nobody", Err(ApiKeyError::Unknown)),
            // A key without allow_client_id_only: the id alone is not a credential.
            ("good", Err(ApiKeyError::BadSecret)),
            ("disabled-idonly", Err(ApiKeyError::Disabled)),
            ("expired-idonly", Err(ApiKeyError::Expired)),
            ("other-idonly", Err(ApiKeyError::NotAuthorized)),
        ];
        for (id, want) in cases {
            let got = run(via, id, "");
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{via:?} {id}");
            checked += 1;
        }
    }
    for via in pair_vias {
        let cases: [(&str, &str, Result<&str, ApiKeyError>); 6] = [
            ("good", SECRET, Ok("good")),
            ("nobody", SECRET, Err(ApiKeyError::Unknown)),
            ("good", "s3cret:with+chars ", Err(ApiKeyError::BadSecret)),
            ("disabled", SECRET, Err(ApiKeyError::Disabled)),
            ("expired", SECRET, Err(ApiKeyError::Expired)),
            ("other", SECRET, Err(ApiKeyError::NotAuthorized)),
        ];
        for (id, secret, want) in cases {
            let got = run(via, id, secret);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{via:?} {id}");
            if let Err(e) = got {
                let status = if e == ApiKeyError::NotAuthorized {
                    403
                } else {
                    401
                };
                assert_eq!(e.status(), status);
            }
            checked += 1;
        }
        // Wrong secret on a route the key lacks: 401, never a 403 that confirms the key.
        assert_eq!(run(via, "other", "nope"), Err(ApiKeyError::BadSecret));
    }
    assert_eq!(checked, 3 * 6 + 5 * 6);
}

#[test]
fn nothing_found() {
    let store = store();
    let ex = extractors();
    let req = SimpleRequest::new().with_header("Authorization", "Digest abc");
    let out = extract(&req, &ex);
    let err = authenticate(&store, None, out.found.as_ref(), ROUTE, NOW).unwrap_err();
    assert_eq!(err, ApiKeyError::NoneProvided);
    assert_eq!(err.status(), 401);
    assert_eq!(err.body(), r#"{"Otoroshi-Error":"No ApiKey provided"}"#);
    assert!(out.carriers.is_empty());
}

#[test]
fn disabled_extractors_are_not_used() {
    let store = store();
    let ex = Extractors {
        client_id: false,
        headers: false,
        bearer: false,
        basic: false,
        custom: None,
    };
    for via in [Via::ClientIdHeader, Via::Headers, Via::AuthorizationBasic] {
        let req = request(via, "good", SECRET);
        let out = extract(&req, &ex);
        assert!(out.found.is_none());
        let err = authenticate(&store, None, out.found.as_ref(), ROUTE, NOW).unwrap_err();
        assert_eq!(err, ApiKeyError::NoneProvided);
    }
}

#[test]
fn bearer_without_key_pairs_is_a_bad_token() {
    let store = store();
    let ex = extractors();
    let req = SimpleRequest::new().with_header("Authorization", "Bearer a.b.c");
    let out = extract(&req, &ex);
    let err = authenticate(&store, None, out.found.as_ref(), ROUTE, NOW).unwrap_err();
    assert_eq!(err, ApiKeyError::BadToken("no_key_pairs"));
}

#[test]
fn bearer_locations_in_order() {
    let ex = Extractors::default();
    let req = SimpleRequest::new()
        .with_header("Cookie", "access_token=fromcookie")
        .with_query("bearer_auth=fromquery")
        .with_header("Authorization", "bearer fromauth")
        .with_header("Otoroshi-Token", "Bearer fromtoken");
    let out = extract(&req, &ex);
    let found = out.found.unwrap();
    assert_eq!(found.extractor, ExtractorKind::Bearer);
    assert_eq!(found.presented, Presented::Bearer(b"fromtoken"[..].into()));
    assert_eq!(
        out.carriers,
        [
            Carrier::Header("Otoroshi-Token"),
            Carrier::Header("Authorization"),
            Carrier::Query("bearer_auth"),
            Carrier::Cookie("access_token"),
        ]
    );
    let req = SimpleRequest::new()
        .with_header("Cookie", "access_token=fromcookie")
        .with_query("bearer_auth=from%20query");
    let found = extract(&req, &ex).found.unwrap();
    assert_eq!(found.presented, Presented::Bearer(b"from query"[..].into()));
    assert_eq!(found.location, Carrier::Query("bearer_auth"));
}

#[test]
fn basic_edge_cases() {
    let dec = |s: &str| BasicCredentials::decode(s.as_bytes());
    // Split at the first colon only.
    let c = dec(&STANDARD.encode("id:a:b:c")).unwrap();
    assert_eq!((c.id(), c.secret()), (&b"id"[..], &b"a:b:c"[..]));
    // Standard alphabet with '+' and '/', URL-safe with '-' and '_', padded or not.
    let raw = "id:\u{fb}\u{ff}\u{fe}>?";
    for enc in [
        STANDARD.encode(raw),
        URL_SAFE.encode(raw),
        URL_SAFE_NO_PAD.encode(raw),
        STANDARD.encode(raw).trim_end_matches('=').to_owned(),
    ] {
        let c = dec(&enc).unwrap_or_else(|| panic!("{enc}"));
        assert_eq!(c.secret(), "\u{fb}\u{ff}\u{fe}>?".as_bytes());
    }
    assert!(STANDARD.encode(raw).contains(['+', '/']));
    // No colon, empty id, empty secret, not base64, too long, mixed alphabets.
    for bad in [
        STANDARD.encode("nocolon"),
        STANDARD.encode(":secret"),
        STANDARD.encode("id:"),
        "***".to_owned(),
        "a".repeat(5000),
        "ab+-".to_owned(),
    ] {
        assert!(dec(&bad).is_none(), "{bad}");
    }
    // Route Basic is not URL-decoded; OAuth client auth is (RFC 6749 §2.3.1).
    let c = dec(&STANDARD.encode("my%20id:p%3Ass+word:x")).unwrap();
    assert_eq!(c.secret(), b"p%3Ass+word:x");
    let (id, secret) = c.oauth_decoded();
    assert_eq!((&*id, &*secret), (&b"my id"[..], &b"p:ss word:x"[..]));
}

#[test]
fn malformed_basic_is_refused_not_skipped() {
    let store = store();
    let ex = extractors();
    let req = SimpleRequest::new()
        .with_header("Authorization", "Basic !!!")
        .with_header("X-Client", "good")
        .with_header("X-Secret", SECRET);
    let out = extract(&req, &ex);
    assert_eq!(out.found.as_ref().unwrap().presented, Presented::Malformed);
    let err = authenticate(&store, None, out.found.as_ref(), ROUTE, NOW).unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(out.carriers.contains(&Carrier::Header("X-Secret")));
}

#[test]
fn secrets_with_colon_percent_and_plus_in_every_pair_extractor() {
    let mut key = ApiKey::new("k", "a:b%3Ac+d", "k");
    key.routes = vec![ROUTE.into()];
    let store = ApiKeyStore::new(vec![key]).unwrap();
    let ex = extractors();
    for via in [
        Via::Headers,
        Via::AuthorizationBasic,
        Via::OtoroshiAuthorization,
        Via::BasicQuery,
        Via::Custom,
    ] {
        let req = request(via, "k", "a:b%3Ac+d");
        let out = extract(&req, &ex);
        let ok = authenticate(&store, None, out.found.as_ref(), ROUTE, NOW);
        assert!(ok.is_ok(), "{via:?}");
    }
}
