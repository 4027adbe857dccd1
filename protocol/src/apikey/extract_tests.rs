//! Tests of the extractors: order, carriers, and the places that occur more than once.
#![allow(clippy::unwrap_used)]
use super::super::view::SimpleRequest;
use super::*;

#[test]
fn order_and_carriers() {
    let req = SimpleRequest::new()
        .with_header("Authorization", "Bearer a.b.c")
        .with_header("x-api-key", "id1")
        .with_query("basic_auth=zzz");
    let ex = Extractors::default();
    let out = extract(&req, &ex);
    let found = out.found.unwrap();
    assert_eq!(found.extractor, ExtractorKind::ClientId);
    assert_eq!(found.presented, Presented::IdOnly(Cow::Borrowed(b"id1")));
    assert_eq!(
        out.carriers,
        [
            Carrier::Header("x-api-key"),
            Carrier::Header("Authorization"),
            Carrier::Query("basic_auth"),
        ]
    );
    let ex = Extractors {
        client_id: false,
        ..Extractors::default()
    };
    let out = extract(&req, &ex);
    assert_eq!(out.found.unwrap().extractor, ExtractorKind::Bearer);
    assert!(!out.carriers.contains(&Carrier::Header("x-api-key")));
}

/// The engine wipes every carrier by iterating over `&Carriers`: an iterator that yielded
/// fewer places would leave a credential in the forwarded request. The array comparison
/// the tests use must also tell different lists apart.
#[test]
fn carriers_iterate_and_compare_as_exactly_the_places_found() {
    let req = SimpleRequest::new()
        .with_header("x-api-key", "id1")
        .with_query("basic_auth=zzz");
    let ex = Extractors::default();
    let out = extract(&req, &ex);
    let mut iterated = Vec::new();
    for c in &out.carriers {
        iterated.push(*c);
    }
    assert_eq!(
        iterated,
        [Carrier::Header("x-api-key"), Carrier::Query("basic_auth")]
    );
    assert!(out.carriers != [Carrier::Header("x-api-key")]);
    assert!(out.carriers != [Carrier::Query("basic_auth"), Carrier::Header("x-api-key")]);
    assert!(out.carriers == [Carrier::Header("x-api-key"), Carrier::Query("basic_auth")]);
}

#[test]
fn authorization_kept_when_its_extractor_is_off() {
    let req = SimpleRequest::new().with_header("authorization", "Basic YTpi");
    let ex = Extractors {
        basic: false,
        ..Extractors::default()
    };
    let out = extract(&req, &ex);
    assert!(out.found.is_none());
    assert!(out.carriers.is_empty());
}

#[test]
fn half_a_pair_is_not_a_credential_but_is_wiped() {
    let req = SimpleRequest::new().with_header("otoroshi-client-id", "id");
    let ex = Extractors::default();
    let out = extract(&req, &ex);
    assert!(out.found.is_none());
    assert_eq!(out.carriers, [Carrier::Header(CLIENT_ID_HEADER)]);
}

#[test]
fn every_carrier_at_once_fits() {
    let mut req = SimpleRequest::new()
        .with_query("x-api-key=a&bearer_auth=b&basic_auth=c")
        .with_header("x-api-key", "a")
        .with_header("cookie", "x-api-key=a; access_token=t")
        .with_header("otoroshi-client-id", "i")
        .with_header("otoroshi-client-secret", "s")
        .with_header("otoroshi-token", "t")
        .with_header("authorization", "Bearer t")
        .with_header("otoroshi-authorization", "Basic YTpi")
        .with_header("x-client", "i")
        .with_header("x-secret", "s");
    let ex = Extractors {
        custom: Some(("x-client".into(), "x-secret".into())),
        ..Extractors::default()
    };
    let out = extract(&req, &ex);
    assert_eq!(out.carriers.len(), 13, "{:?}", out.carriers);
    // Authorization with the other scheme is one carrier too (never both).
    req = req.with_header("authorization", "Basic YTpi");
    assert!(extract(&req, &ex).carriers.len() <= MAX_CARRIERS);
}

/// Every place of every enabled extractor, repeated, refuses the request, whichever copy
/// would have won and whatever the other extractors found first.
#[test]
fn a_repeated_place_refuses_the_request() {
    let ex = Extractors {
        custom: Some(("x-client".into(), "x-secret".into())),
        ..Extractors::default()
    };
    let valid = SimpleRequest::new()
        .with_header("otoroshi-client-id", "i")
        .with_header("otoroshi-client-secret", "s");
    let cases: Vec<(SimpleRequest, Carrier<'_>)> = vec![
        (
            valid
                .clone()
                .with_header("X-Api-Key", "b")
                .with_header("x-api-key", "b"),
            Carrier::Header(API_KEY_NAME),
        ),
        (
            SimpleRequest::new()
                .with_header("x-api-key", "a")
                .with_header("X-API-KEY", "b"),
            Carrier::Header(API_KEY_NAME),
        ),
        (
            valid.clone().with_query("x-api-key=a&x%2dapi-key=b"),
            Carrier::Query(API_KEY_NAME),
        ),
        (
            valid
                .clone()
                .with_header("cookie", "a=1")
                .with_header("cookie", "x-api-key=b; c=2; x-api-key=c"),
            Carrier::Cookie(API_KEY_NAME),
        ),
        (
            valid.clone().with_header("Otoroshi-Client-Id", "j"),
            Carrier::Header(CLIENT_ID_HEADER),
        ),
        (
            valid.clone().with_header("otoroshi-client-secret", "t"),
            Carrier::Header(CLIENT_SECRET_HEADER),
        ),
        (
            valid
                .clone()
                .with_header("otoroshi-token", "a")
                .with_header("otoroshi-token", "b"),
            Carrier::Header(TOKEN_HEADER),
        ),
        (
            valid
                .clone()
                .with_header("authorization", "Bearer a")
                .with_header("authorization", "Bearer b"),
            Carrier::Header(AUTHORIZATION),
        ),
        (
            valid
                .clone()
                .with_header("authorization", "Digest x")
                .with_header("authorization", "Basic YTpi"),
            Carrier::Header(AUTHORIZATION),
        ),
        (
            valid.clone().with_query("bearer_auth=a&bearer%5Fauth="),
            Carrier::Query(BEARER_QUERY),
        ),
        (
            valid
                .clone()
                .with_header("cookie", "access_token=a")
                .with_header("cookie", "access_token=b"),
            Carrier::Cookie(BEARER_COOKIE),
        ),
        (
            valid
                .clone()
                .with_header("otoroshi-authorization", "YTpi")
                .with_header("otoroshi-authorization", "YTpj"),
            Carrier::Header(BASIC_HEADER),
        ),
        (
            valid.clone().with_query("basic_auth=a&basic_auth=a"),
            Carrier::Query(BASIC_QUERY),
        ),
        (
            valid
                .clone()
                .with_header("x-client", "i")
                .with_header("x-client", "j")
                .with_header("x-secret", "s"),
            Carrier::Header("x-client"),
        ),
    ];
    for (req, place) in &cases {
        let out = extract(req, &ex);
        assert_eq!(out.duplicate, Some(*place), "{req:?}");
        assert_eq!(out.credential(), Err(ApiKeyError::Duplicate), "{req:?}");
        assert!(
            out.carriers.contains(place),
            "a repeated place is wiped too"
        );
        assert_eq!(ApiKeyError::Duplicate.status(), 400);
    }
    // The same requests with no repetition are not refused.
    assert_eq!(extract(&valid, &ex).duplicate, None);
    assert!(extract(&valid, &ex).credential().unwrap().is_some());
}

/// A disabled extractor's places are the backend's business, repeated or not.
#[test]
fn a_repeated_place_of_a_disabled_extractor_is_not_looked_at() {
    let req = SimpleRequest::new()
        .with_header("x-api-key", "a")
        .with_header("authorization", "Basic YTpi")
        .with_header("authorization", "Basic YTpj")
        .with_query("basic_auth=a&basic_auth=b");
    let ex = Extractors {
        basic: false,
        bearer: false,
        ..Extractors::default()
    };
    let out = extract(&req, &ex);
    assert_eq!(out.duplicate, None);
    assert_eq!(out.carriers, [Carrier::Header(API_KEY_NAME)]);
}

#[test]
fn secrets_not_in_debug() {
    let p = Presented::IdSecret(Cow::Borrowed(b"id"), Cow::Borrowed(b"topsecret"));
    assert!(!format!("{p:?}").contains("topsecret"));
}

/// A place of each switched-off extractor, alone on the request, gives `NotAccepted`; the
/// same request on a route that reads it, or nothing at all, gives `NoneProvided`.
#[test]
fn a_place_of_a_switched_off_extractor_is_told_apart() {
    let bearer_only = Extractors::only(|e| e.bearer = true);
    let basic_only = Extractors::only(|e| e.basic = true);
    let not_accepted = ApiKeyError::NotAccepted(Accepts::of(&bearer_only));
    let cases = [
        SimpleRequest::new().with_header("x-api-key", "a"),
        SimpleRequest::new().with_query("x-api-key=a"),
        SimpleRequest::new().with_header("cookie", "x-api-key=a"),
        SimpleRequest::new().with_header("otoroshi-client-id", "a"),
        SimpleRequest::new().with_header("otoroshi-client-secret", "s"),
        SimpleRequest::new().with_header("otoroshi-authorization", "YTpi"),
        SimpleRequest::new().with_header("authorization", "Basic YTpi"),
        SimpleRequest::new().with_query("basic_auth=YTpi"),
    ];
    for req in &cases {
        assert_eq!(missing(req, &bearer_only), not_accepted, "{req:?}");
    }
    for req in [
        SimpleRequest::new().with_header("otoroshi-token", "t"),
        SimpleRequest::new().with_header("authorization", "Bearer t"),
        SimpleRequest::new().with_query("bearer_auth=t"),
        SimpleRequest::new().with_header("cookie", "access_token=t"),
    ] {
        assert_eq!(
            missing(&req, &basic_only),
            ApiKeyError::NotAccepted(Accepts::of(&basic_only)),
            "{req:?}"
        );
        assert_eq!(missing(&req, &bearer_only), ApiKeyError::NoneProvided);
    }
    let all = Extractors::default();
    for req in &cases {
        assert_eq!(missing(req, &all), ApiKeyError::NoneProvided, "{req:?}");
    }
    // Nothing sent, or only what no extractor reads.
    for req in [
        SimpleRequest::new(),
        SimpleRequest::new()
            .with_header("authorization", "Digest x")
            .with_header("cookie", "session=1")
            .with_query("token=t"),
    ] {
        assert_eq!(missing(&req, &bearer_only), ApiKeyError::NoneProvided);
    }
}
